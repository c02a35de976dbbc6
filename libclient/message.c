/* SPDX-License-Identifier: MIT */
/*
 * ipcbus_message: a refcounted handle on one protocol message (struct msg)
 * and the connection it came in on; and the replies to calls.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "libclient/bus-internal.h"
#include "protocol/jbuf.h"
#include "protocol/jscan.h"
#include "protocol/names.h"
#include "protocol/proto-error.h"

/* Wrap m (a new reference is taken) for the user; NULL on allocation failure. */
ipcbus_message *message_new(ipcbus_bus *bus, struct msg *m)
{
        ipcbus_message *msg;

        msg = calloc(1, sizeof(*msg));
        if (!msg)
                return NULL;
        msg->n_ref = 1;
        msg->bus = client_ref(bus);
        msg->msg = msg_ref(m);
        return msg;
}

_public_ ipcbus_message *ipcbus_message_ref(ipcbus_message *m)
{
        if (m)
                m->n_ref++;
        return m;
}

_public_ ipcbus_message *ipcbus_message_unref(ipcbus_message *m)
{
        if (!m || --m->n_ref > 0)
                return NULL;
        msg_unref(m->msg);
        free(m->header_text);
        client_unref(m->bus);
        free(m);
        return NULL;
}

_public_ ipcbus_message_type ipcbus_message_get_type(ipcbus_message *m)
{
        return m ? (ipcbus_message_type) m->msg->h.type : 0;
}

_public_ uint32_t ipcbus_message_get_serial(ipcbus_message *m)
{
        return m ? m->msg->h.serial : 0;
}

_public_ uint32_t ipcbus_message_get_reply_serial(ipcbus_message *m)
{
        return m ? m->msg->h.reply_serial : 0;
}

_public_ const char *ipcbus_message_get_sender(ipcbus_message *m)
{
        return m ? m->msg->h.sender : NULL;
}

_public_ const char *ipcbus_message_get_destination(ipcbus_message *m)
{
        return m ? m->msg->h.destination : NULL;
}

_public_ const char *ipcbus_message_get_path(ipcbus_message *m)
{
        return m ? m->msg->h.path : NULL;
}

_public_ const char *ipcbus_message_get_interface(ipcbus_message *m)
{
        return m ? m->msg->h.interface : NULL;
}

_public_ const char *ipcbus_message_get_member(ipcbus_message *m)
{
        return m ? m->msg->h.member : NULL;
}

_public_ const char *ipcbus_message_get_error_name(ipcbus_message *m)
{
        return m ? m->msg->h.error_name : NULL;
}

_public_ int64_t ipcbus_message_get_sender_uid(ipcbus_message *m)
{
        return m ? m->msg->h.sender_uid : -1;
}

_public_ int64_t ipcbus_message_get_sender_pid(ipcbus_message *m)
{
        return m ? m->msg->h.sender_pid : -1;
}

_public_ bool ipcbus_message_get_no_reply(ipcbus_message *m)
{
        return m && m->msg->h.no_reply;
}

/* The body bytes as they came; the codec keeps a NUL after the frame. */
_public_ const char *ipcbus_message_get_body(ipcbus_message *m, size_t *ret_len)
{
        if (!m)
                return NULL;
        if (ret_len)
                *ret_len = m->msg->body ? m->msg->body_len : 0;
        return m->msg->body ? m->msg->body : "";
}

/* The header is not NUL-terminated inside the frame: copy it once on demand. */
_public_ const char *ipcbus_message_get_header(ipcbus_message *m, size_t *ret_len)
{
        if (!m)
                return NULL;
        if (!m->header_text) {
                m->header_text = strndup(m->msg->header, m->msg->header_len);
                if (!m->header_text)
                        return NULL;
        }
        if (ret_len)
                *ret_len = m->msg->header_len;
        return m->header_text;
}

_public_ int ipcbus_message_get_error(ipcbus_message *m, ipcbus_error *e)
{
        if (!m || !e)
                return -EINVAL;
        return error_from_msg(m->msg, e);
}

_public_ const char *ipcbus_message_get_arg(ipcbus_message *m, const char *key)
{
        if (!m || !key)
                return NULL;
        return msg_get_arg(m->msg, key);
}

_public_ ipcbus_bus *ipcbus_message_get_bus(ipcbus_message *m)
{
        return m ? m->bus : NULL;
}

/*
 * Read the top-level integer member `key` of m's body into *ret, within
 * [min, max]. Returns 0, -ENOENT when absent, -EBADMSG when not a number in
 * range.
 */
int message_get_int(struct msg *m, const char *key, int64_t min, int64_t max, int64_t *ret)
{
        struct jscan_iter it;
        struct jscan_member member;

        if (!m->body || jscan_object_begin(&it, m->body, m->body_len) != 0)
                return -ENOENT;

        while (jscan_object_next(&it, &member) > 0) {
                if (!jscan_key_equal(&member, key))
                        continue;
                if (member.kind != JSCAN_NUMBER ||
                    jscan_number_to_int64(member.value, member.value_len, min, max, ret) < 0)
                        return -EBADMSG;
                return 0;
        }
        return -ENOENT;
}

/*
 * Build an error message answering reply_serial, with body {"message": text}
 * when text is not NULL. sender is set only for errors the library
 * synthesises on the broker's behalf. Returns 0, -ENOMEM or -EINVAL.
 */
int message_build_error(uint32_t reply_serial, uint32_t serial, const char *sender, const char *destination,
                        const char *error_name, const char *text, struct msg **ret)
{
        _cleanup_(freep) char *body = NULL;
        struct msg_header h;
        size_t body_len = 0;

        if (text) {
                struct jbuf b;

                jbuf_init(&b);
                jbuf_puts(&b, "{\"message\":");
                jbuf_put_string(&b, text);
                jbuf_putc(&b, '}');
                body = jbuf_steal(&b, &body_len);
                jbuf_deinit(&b);
                if (!body)
                        return -ENOMEM;
        }

        msg_header_init(&h);
        h.type = MSG_ERROR;
        h.serial = serial;
        h.reply_serial = reply_serial;
        h.sender = sender;
        h.destination = destination;
        h.error_name = error_name;
        return error_from_proto(msg_build(&h, body, body_len, ret));
}

/* Common checks for answering `call`: 1 when an answer is to be sent, 0 when
 * the caller asked for none, negative errno when it cannot be answered. */
static int reply_check(ipcbus_message *call)
{
        int r;

        if (!call || call->msg->h.type != MSG_CALL || !call->msg->h.sender)
                return -EINVAL;
        r = client_enter(call->bus, true);
        if (r < 0)
                return r;
        if (call->msg->h.no_reply)
                return 0;
        if (call->replied)
                return -EALREADY;
        return 1;
}

static int reply_send(ipcbus_message *call, struct msg *m)
{
        int r;

        r = client_send(call->bus, m);
        if (r >= 0)
                call->replied = true;
        return r;
}

_public_ int ipcbus_reply(ipcbus_message *call, const char *body)
{
        _cleanup_(msg_unrefp) struct msg *m = NULL;
        struct msg_header h;
        int r;

        r = reply_check(call);
        if (r <= 0)
                return r;

        msg_header_init(&h);
        h.type = MSG_RETURN;
        h.serial = client_next_serial(call->bus);
        h.reply_serial = call->msg->h.serial;
        h.destination = call->msg->h.sender;
        r = msg_build(&h, body, body ? strlen(body) : 0, &m);
        if (r != 0)
                return error_from_proto(r);

        return reply_send(call, m);
}

_public_ int ipcbus_reply_error(ipcbus_message *call, const char *name, const char *message)
{
        _cleanup_(msg_unrefp) struct msg *m = NULL;
        int r;

        if (!name || !names_is_error_name(name))
                return -EINVAL;
        r = reply_check(call);
        if (r <= 0)
                return r;

        r = message_build_error(call->msg->h.serial, client_next_serial(call->bus), NULL, call->msg->h.sender, name,
                                message, &m);
        if (r < 0)
                return r;

        return reply_send(call, m);
}

_public_ int ipcbus_reply_errorf(ipcbus_message *call, const char *name, const char *fmt, ...)
{
        _cleanup_(freep) char *message = NULL;
        va_list ap;
        int r;

        if (!fmt)
                return -EINVAL;

        va_start(ap, fmt);
        r = vasprintf(&message, fmt, ap);
        va_end(ap);
        if (r < 0) {
                message = NULL;
                return -ENOMEM;
        }

        return ipcbus_reply_error(call, name, message);
}
