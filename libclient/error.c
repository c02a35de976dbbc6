/* SPDX-License-Identifier: MIT */
/*
 * Error objects (a remote error's name and message) and the library's
 * strerror.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "libclient/bus-internal.h"
#include "protocol/names.h"

/*
 * Replace the contents of e with copies of name and message (which may be
 * NULL). On failure e is left as it was.
 */
_public_ int ipcbus_error_set(ipcbus_error *e, const char *name, const char *message)
{
        char *n, *m = NULL;

        if (!e || !name || !names_is_error_name(name))
                return -EINVAL;

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
                return -EINVAL;

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
