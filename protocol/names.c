/* SPDX-License-Identifier: MIT */
#include <stdbool.h>
#include <string.h>

#include "protocol/ipcbus/wire.h"
#include "protocol/names.h"

static bool is_alpha_(char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

/*
 * Check dot-separated elements: at least `min_elements`, each non-empty, of
 * [A-Za-z0-9_] plus '-' when `dash`, not starting with a digit unless
 * `digit_first`. `s` is the text after any leading ':'.
 */
static bool elements_valid(const char *s, unsigned min_elements, bool dash, bool digit_first)
{
        unsigned n = 0;
        size_t len = 0;

        for (const char *p = s;; p++) {
                char c = *p;
                if (c == '.' || c == '\0') {
                        if (len == 0)
                                return false;
                        n++;
                        len = 0;
                        if (c == '\0')
                                break;
                        continue;
                }
                if (is_digit(c)) {
                        if (len == 0 && !digit_first)
                                return false;
                } else if (!(is_alpha_(c) || (dash && c == '-'))) {
                        return false;
                }
                len++;
        }
        return n >= min_elements;
}

bool names_is_unique(const char *s)
{
        if (!s || s[0] != ':' || strlen(s) > IPCBUS_NAME_MAX)
                return false;
        return elements_valid(s + 1, 2, true, true);
}

bool names_is_well_known(const char *s)
{
        if (!s || s[0] == ':' || strlen(s) > IPCBUS_NAME_MAX)
                return false;
        return elements_valid(s, 2, true, false);
}

bool names_is_bus_name(const char *s)
{
        return names_is_unique(s) || names_is_well_known(s);
}

bool names_is_interface(const char *s)
{
        if (!s || strlen(s) > IPCBUS_NAME_MAX)
                return false;
        return elements_valid(s, 2, false, false);
}

bool names_is_error_name(const char *s)
{
        return names_is_interface(s);
}

bool names_is_member(const char *s)
{
        if (!s || !*s || strlen(s) > IPCBUS_NAME_MAX || is_digit(s[0]))
                return false;
        for (const char *p = s; *p; p++)
                if (!is_alpha_(*p) && !is_digit(*p))
                        return false;
        return true;
}

bool names_is_path(const char *s)
{
        size_t len;

        if (!s || s[0] != '/')
                return false;
        len = strlen(s);
        if (len > IPCBUS_PATH_MAX)
                return false;
        if (len == 1)
                return true;
        if (s[len - 1] == '/')
                return false;
        for (const char *p = s + 1; *p; p++) {
                if (*p == '/') {
                        if (p[-1] == '/')
                                return false;
                } else if (!is_alpha_(*p) && !is_digit(*p)) {
                        return false;
                }
        }
        return true;
}

bool names_path_in_namespace(const char *path, const char *ns)
{
        size_t n = strlen(ns);

        if (n == 1) /* "/" */
                return true;
        if (strncmp(path, ns, n) != 0)
                return false;
        return path[n] == '\0' || path[n] == '/';
}
