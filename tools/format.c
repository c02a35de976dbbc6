/* SPDX-License-Identifier: MIT */
/*
 * Printing for the command-line tools; the formats are described in format.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <string.h>

#include "protocol/address.h"
#include "tools/format.h"

/* json-c counts the top-level value as one level; PROTOCOL.md allows 64 of nesting. */
#define FORMAT_JSON_DEPTH ((int) IPCBUS_DEPTH_MAX + 1)

int format_json_parse(const char *text, size_t len, struct json_object **ret)
{
        struct json_tokener *tok;
        struct json_object *obj;

        if (len > INT32_MAX)
                return -EINVAL;
        tok = json_tokener_new_ex(FORMAT_JSON_DEPTH);
        if (!tok)
                return -ENOMEM;
        obj = json_tokener_parse_ex(tok, text, (int) len);
        json_tokener_free(tok);
        /* A JSON null parses to NULL as well: callers only want objects and arrays. */
        if (!obj)
                return -EINVAL;
        *ret = obj;
        return 0;
}

const char *format_json_string(struct json_object *obj, bool pretty)
{
        int flags = JSON_C_TO_STRING_NOSLASHESCAPE;

        if (pretty)
                flags |= JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED;
        return json_object_to_json_string_ext(obj, flags);
}

void format_put_flat(FILE *f, const char *text, size_t len)
{
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) text[i];

                fputc(c < 0x20 ? ' ' : c, f);
        }
}

void format_print_body(FILE *f, ipcbus_message *m, bool pretty)
{
        _cleanup_(json_object_putp) struct json_object *obj = NULL;
        size_t len = 0;
        const char *text = ipcbus_message_get_body(m, &len);

        /* the library's parse: an integer beyond 64 bits stays the number it is */
        if (ipcbus_message_get_json(m, &obj) < 0)
                format_put_flat(f, text, len);
        else
                fputs(format_json_string(obj, pretty), f);
        fputc('\n', f);
}

int format_json_parse_value(const char *text, struct json_object **ret, const char **ret_reason)
{
        size_t len = strlen(text);
        struct json_tokener *tok;
        struct json_object *obj;
        enum json_tokener_error err;
        size_t end;

        if (len > IPCBUS_BODY_MAX) {
                *ret_reason = "the JSON text is longer than a body may be";
                return -EINVAL;
        }
        tok = json_tokener_new_ex(FORMAT_JSON_DEPTH);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        /* the terminating NUL tells the tokener that a number at the very end is complete */
        obj = json_tokener_parse_ex(tok, text, (int) len + 1);
        err = json_tokener_get_error(tok);
        end = json_tokener_get_parse_end(tok);
        if (err == json_tokener_success && end < len && text[end + strspn(text + end, " \t\r\n")] != '\0')
                err = json_tokener_error_parse_unexpected;
        json_tokener_free(tok);
        if (err != json_tokener_success) {
                json_object_put(obj);
                *ret_reason = err == json_tokener_error_parse_unexpected && obj ? "text after the JSON value"
                                                                                : json_tokener_error_desc(err);
                return -EINVAL;
        }
        *ret = obj;
        return 0;
}

int format_check_body(const char *text, const char **ret_reason)
{
        _cleanup_(json_object_putp) struct json_object *obj = NULL;
        int r;

        r = format_json_parse_value(text, &obj, ret_reason);
        if (r < 0)
                return r;
        if (!json_object_is_type(obj, json_type_object)) {
                *ret_reason = "the arguments must be a JSON object, e.g. '{\"name\": \"value\"}'";
                return -EINVAL;
        }
        return 0;
}

/*
 * Length of the valid UTF-8 sequence at s (at most n bytes), or 0 when the
 * bytes there are not one (overlong forms and surrogates included).
 */
static size_t format_utf8_len(const unsigned char *s, size_t n)
{
        unsigned char lo = 0x80, hi = 0xbf;
        size_t len;

        if (s[0] < 0x80)
                return 1;
        if (s[0] >= 0xc2 && s[0] <= 0xdf)
                len = 2;
        else if (s[0] >= 0xe0 && s[0] <= 0xef)
                len = 3;
        else if (s[0] >= 0xf0 && s[0] <= 0xf4)
                len = 4;
        else
                return 0;
        if (len > n)
                return 0;
        if (s[0] == 0xe0)
                lo = 0xa0;
        else if (s[0] == 0xed)
                hi = 0x9f;
        else if (s[0] == 0xf0)
                lo = 0x90;
        else if (s[0] == 0xf4)
                hi = 0x8f;
        if (s[1] < lo || s[1] > hi)
                return 0;
        for (size_t i = 2; i < len; i++)
                if (s[i] < 0x80 || s[i] > 0xbf)
                        return 0;
        return len;
}

char *format_sanitize(const char *s, size_t len)
{
        const unsigned char *p = (const unsigned char *) s;
        char *out, *o;

        out = malloc(len * 4 + 1);
        if (!out)
                return NULL;
        o = out;
        for (size_t i = 0; i < len;) {
                size_t n = format_utf8_len(p + i, len - i);
                /* C0 controls, DEL, and the C1 controls U+0080..U+009F */
                bool control = n == 1 ? (p[i] < 0x20 || p[i] == 0x7f) : (n == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0);

                if (n == 0 || control) {
                        o += sprintf(o, "\\x%02x", p[i]);
                        i++;
                        continue;
                }
                memcpy(o, p + i, n);
                o += n;
                i += n;
        }
        *o = '\0';
        return out;
}

char *format_bytes(char *buf, size_t size, double v)
{
        static const char units[] = "KMGTPE";
        size_t u = 0;

        if (v < 1024) {
                snprintf(buf, size, "%.0f", v);
                return buf;
        }
        v /= 1024;
        while (v >= 1024 && u + 1 < sizeof(units) - 1) {
                v /= 1024;
                u++;
        }
        snprintf(buf, size, v < 10 ? "%.1f%c" : "%.0f%c", v, units[u]);
        return buf;
}

char *format_duration(char *buf, size_t size, uint64_t usec)
{
        if (usec < 1000)
                snprintf(buf, size, "%" PRIu64 " µs", usec);
        else if (usec < 10000)
                snprintf(buf, size, "%.2f ms", (double) usec / 1e3);
        else if (usec < 1000000)
                snprintf(buf, size, "%.1f ms", (double) usec / 1e3);
        else
                snprintf(buf, size, "%.2f s", (double) usec / 1e6);
        return buf;
}

int format_check_address(const char *prog, const char *address)
{
        _cleanup_(freep) char *safe = NULL;
        const char *reason;

        if (address_check(address, &reason) == 0)
                return 0;
        safe = format_sanitize(address, strlen(address));
        fprintf(stderr, "%s: invalid address '%s': %s\n(see %s --help)\n", prog, safe ? safe : address, reason, prog);
        return -EINVAL;
}

int format_open_bus(const char *prog, const char *address, bool system, ipcbus_bus **ret)
{
        _cleanup_(freep) char *found = NULL, *safe = NULL;
        const char *why;
        int r;

        /* the address the library's ipcbus_open_session and ipcbus_open_system use */
        if (!address) {
                r = system ? address_system(&found) : address_session(&found);
                if (r < 0)
                        return r;
                address = found;
        }
        r = ipcbus_open_address(address, ret);
        if (r >= 0)
                return 0;
        /* one from the environment may not have the form at all */
        if (address_check(address, &why) == 0)
                why = ipcbus_strerror(r);
        safe = format_sanitize(address, strlen(address));
        fprintf(stderr, "%s: cannot connect to %s%s: %s\n", prog,
                !found   ? ""
                : system ? "the system bus at "
                         : "the session bus at ",
                safe ? safe : "?", why);
        return r;
}
