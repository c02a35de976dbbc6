/* SPDX-License-Identifier: MIT */
/*
 * Error objects (a remote error's name and message), the library's
 * strerror, the last local failure's sentence and the name checks.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "libclient/bus-internal.h"
#include "protocol/jscan.h"
#include "protocol/names.h"
#include "protocol/proto-error.h"

/*
 * Replace the contents of e with copies of name and message (which may be
 * NULL). On failure e is left as it was.
 */
_public_ int ipcbus_error_set(ipcbus_error *e, const char *name, const char *message)
{
        char *n, *m = NULL;
        int r;

        if (!e)
                return client_fail_null("e");
        r = client_check_name("name", name, CLIENT_NAME_ERROR);
        if (r < 0)
                return r;

        n = strdup(name);
        if (!n)
                return -ENOMEM;
        if (message) {
                m = strdup(message);
                if (!m) {
                        free(n);
                        return -ENOMEM;
                }
        }

        ipcbus_error_free(e);
        e->name = n;
        e->message = m;
        return 0;
}

_public_ int ipcbus_error_setf(ipcbus_error *e, const char *name, const char *fmt, ...)
{
        _cleanup_(freep) char *m = NULL;
        va_list ap;
        int r;

        if (!e || !name || !fmt)
                return client_fail_null(!e ? "e" : !name ? "name" : "fmt");

        va_start(ap, fmt);
        r = vasprintf(&m, fmt, ap);
        va_end(ap);
        if (r < 0) {
                m = NULL;
                return -ENOMEM;
        }

        return ipcbus_error_set(e, name, m);
}

_public_ bool ipcbus_error_is_set(const ipcbus_error *e)
{
        return e && e->name;
}

_public_ bool ipcbus_error_has_name(const ipcbus_error *e, const char *name)
{
        return e && e->name && name && strcmp(e->name, name) == 0;
}

_public_ void ipcbus_error_free(ipcbus_error *e)
{
        if (!e)
                return;
        free(e->name);
        free(e->message);
        e->name = NULL;
        e->message = NULL;
}

/* Fill e from an error message: its error name and the body's "message" member. */
int error_from_msg(struct msg *m, ipcbus_error *e)
{
        if (m->h.type != MSG_ERROR || !m->h.error_name)
                return -EINVAL;
        return ipcbus_error_set(e, m->h.error_name, msg_get_arg(m, "message"));
}

/*
 * Map a protocol/ result to the library's convention: a positive PROTO_E_*
 * (the caller's input broke the protocol) becomes -EINVAL.
 */
int error_from_proto(int r)
{
        return r > 0 ? -EINVAL : r;
}

_public_ const char *ipcbus_strerror(int error)
{
        switch (error) {
        case 0:
                return "Success";
        case -EREMOTEIO:
                return "The remote side answered with an error";
        case -ETIMEDOUT:
                return "No answer arrived in time";
        case -ENOTCONN:
                return "Not connected to the bus";
        case -ECONNRESET:
                return "The bus closed the connection";
        case -EBADMSG:
                return "The bus sent a malformed message";
        case -ENOBUFS:
                return "Too much queued on the connection";
        default:
                return strerror(error < 0 ? -error : error);
        }
}

/* ---- the last local failure ---- */

static _Thread_local char last_error[512];

int client_fail(int r, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(last_error, sizeof(last_error), fmt, ap);
        va_end(ap);
        return r;
}

_public_ const char *ipcbus_last_error(void)
{
        return last_error;
}

/* ---- names ---- */

_public_ bool ipcbus_is_bus_name(const char *s)
{
        return s && names_is_bus_name(s);
}

_public_ bool ipcbus_is_unique_name(const char *s)
{
        return s && names_is_unique(s);
}

_public_ bool ipcbus_is_well_known_name(const char *s)
{
        return s && names_is_well_known(s);
}

_public_ bool ipcbus_is_object_path(const char *s)
{
        return s && names_is_path(s);
}

_public_ bool ipcbus_is_interface_name(const char *s)
{
        return s && names_is_interface(s);
}

_public_ bool ipcbus_is_member_name(const char *s)
{
        return s && names_is_member(s);
}

_public_ bool ipcbus_is_error_name(const char *s)
{
        return s && names_is_error_name(s);
}

/* Each kind of name, the check and the rule PROTOCOL.md section 5 gives for it. */
static const struct {
        const char *what;
        bool (*check)(const char *);
        const char *rule;
} name_rules[] = {
        [CLIENT_NAME_BUS] = {"bus name", names_is_bus_name,
                             "a unique name (':1.42') or a well-known name ('org.example.Notes'): two or more "
                             "elements of [A-Za-z0-9_-], at most 255 bytes"},
        [CLIENT_NAME_WELL_KNOWN] = {"well-known name", names_is_well_known,
                                    "two or more elements of [A-Za-z0-9_-] separated by '.', not starting with a "
                                    "digit or ':', at most 255 bytes"},
        [CLIENT_NAME_PATH] = {"object path", names_is_path,
                              "'/' or '/'-separated elements of [A-Za-z0-9_], no trailing '/', at most 1024 bytes"},
        [CLIENT_NAME_INTERFACE] = {"interface name", names_is_interface,
                                   "two or more elements of [A-Za-z0-9_] separated by '.', not starting with a "
                                   "digit, at most 255 bytes"},
        [CLIENT_NAME_MEMBER] = {"member name", names_is_member,
                                "one element of [A-Za-z0-9_], not starting with a digit, at most 255 bytes"},
        [CLIENT_NAME_ERROR] = {"error name", names_is_error_name,
                               "two or more elements of [A-Za-z0-9_] separated by '.', not starting with a digit, "
                               "at most 255 bytes"},
};

int client_fail_null(const char *arg)
{
        return client_fail(-EINVAL, "%s: NULL", arg);
}

int client_check_name(const char *arg, const char *value, enum client_name kind)
{
        if (!value)
                return client_fail(-EINVAL, "%s: NULL (expected a %s)", arg, name_rules[kind].what);
        if (!name_rules[kind].check(value))
                return client_fail(-EINVAL, "%s '%.255s': not a valid %s (PROTOCOL.md section 5: %s)", arg, value,
                                   name_rules[kind].what, name_rules[kind].rule);
        return 0;
}

/* One header field: absent (allowed unless required) or a valid name of its kind. */
static int check_field(const char *field, const char *value, bool required, enum client_name kind)
{
        if (!value)
                return required ? client_fail(-EINVAL, "%s: missing", field) : 0;
        return client_check_name(field, value, kind);
}

int client_check_header(const struct msg_header *h)
{
        bool call_or_signal = h->type == MSG_CALL || h->type == MSG_SIGNAL;
        int r;

        r = check_field("destination", h->destination, false, CLIENT_NAME_BUS);
        if (r == 0)
                r = check_field("path", h->path, call_or_signal, CLIENT_NAME_PATH);
        if (r == 0)
                r = check_field("interface", h->interface, h->type == MSG_SIGNAL, CLIENT_NAME_INTERFACE);
        if (r == 0)
                r = check_field("member", h->member, call_or_signal, CLIENT_NAME_MEMBER);
        if (r == 0)
                r = check_field("error name", h->error_name, h->type == MSG_ERROR, CLIENT_NAME_ERROR);
        return r;
}

int client_check_body(const char *body)
{
        enum jscan_kind kind;
        int r;

        if (!body)
                return 0;
        r = jscan_validate(body, strlen(body), IPCBUS_DEPTH_MAX, &kind);
        if (r != 0)
                return client_fail(-EINVAL, "body: not valid JSON (%s)", proto_strerror(r));
        if (kind != JSCAN_OBJECT)
                return client_fail(-EINVAL, "body: not a JSON object");
        return 0;
}

int client_fail_proto(int r)
{
        if (r > 0)
                return client_fail(-EINVAL, "message: %s", proto_strerror(r));
        return r;
}
