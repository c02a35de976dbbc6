/* SPDX-License-Identifier: MIT */
/*
 * ipcbus_message: a refcounted handle on one protocol message (struct msg)
 * and the connection it came in on, or on one being built (builder.c); its
 * descriptors; and the replies to calls.
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

void message_set_method(ipcbus_message *m, const ipcbus_interface *iface, const struct iface_method *method)
{
        ipcbus_interface_unref(m->method_iface);
        m->method_iface = ipcbus_interface_ref((ipcbus_interface *) iface);
        m->method = method;
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
        ipcbus_interface_unref(m->method_iface);
        builder_free(m->builder);
        reader_free(m->reader);
        free(m->header_text);
        client_unref(m->bus);
        free(m);
        return NULL;
}

_public_ ipcbus_message_type ipcbus_message_get_type(ipcbus_message *m)
{
        return m ? (ipcbus_message_type) message_header(m)->type : 0;
}

_public_ uint32_t ipcbus_message_get_serial(ipcbus_message *m)
{
        return m ? message_header(m)->serial : 0;
}

_public_ uint32_t ipcbus_message_get_reply_serial(ipcbus_message *m)
{
        return m ? message_header(m)->reply_serial : 0;
}

_public_ const char *ipcbus_message_get_sender(ipcbus_message *m)
{
        return m ? message_header(m)->sender : NULL;
}

_public_ const char *ipcbus_message_get_destination(ipcbus_message *m)
{
        return m ? message_header(m)->destination : NULL;
}

_public_ const char *ipcbus_message_get_path(ipcbus_message *m)
{
        return m ? message_header(m)->path : NULL;
}

_public_ const char *ipcbus_message_get_interface(ipcbus_message *m)
{
        return m ? message_header(m)->interface : NULL;
}

_public_ const char *ipcbus_message_get_member(ipcbus_message *m)
{
        return m ? message_header(m)->member : NULL;
}

_public_ const char *ipcbus_message_get_error_name(ipcbus_message *m)
{
        return m ? message_header(m)->error_name : NULL;
}

_public_ int64_t ipcbus_message_get_sender_uid(ipcbus_message *m)
{
        return m ? message_header(m)->sender_uid : -1;
}

_public_ int64_t ipcbus_message_get_sender_pid(ipcbus_message *m)
{
        return m ? message_header(m)->sender_pid : -1;
}

_public_ bool ipcbus_message_get_no_reply(ipcbus_message *m)
{
        return m && message_header(m)->no_reply;
}

/* The body bytes as they came; the codec keeps a NUL after the frame. */
_public_ const char *ipcbus_message_get_body(ipcbus_message *m, size_t *ret_len)
{
        if (!m)
                return NULL;
        if (!m->msg) {
                if (ret_len)
                        *ret_len = 0;
                return "";
        }
        if (ret_len)
                *ret_len = m->msg->body ? m->msg->body_len : 0;
        return m->msg->body ? m->msg->body : "";
}

/* The header is not NUL-terminated inside the frame: copy it once on demand. */
_public_ const char *ipcbus_message_get_header(ipcbus_message *m, size_t *ret_len)
{
        if (!m || !m->msg)
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
                return client_fail_null(!m ? "m" : "e");
        if (!m->msg || m->msg->h.type != MSG_ERROR)
                return client_fail(-EINVAL, "m: not a received error");
        return error_from_msg(m->msg, e);
}

/* Through the body's index, which a typed read of the same message then reuses: one scan. */
_public_ const char *ipcbus_message_get_arg(ipcbus_message *m, const char *key)
{
        if (!m || !key || !m->msg || msg_body_index(m->msg) < 0)
                return NULL;
        return msg_get_arg(m->msg, key);
}

_public_ ipcbus_bus *ipcbus_message_get_bus(ipcbus_message *m)
{
        return m ? m->bus : NULL;
}

/* ---- descriptors ---- */

_public_ unsigned ipcbus_message_get_n_fds(ipcbus_message *m)
{
        if (!m)
                return 0;
        return m->msg ? m->msg->n_fds : builder_n_fds(m->builder);
}

/* The place of descriptor index of a received (or sent) message. */
static int message_fd_slot(ipcbus_message *m, unsigned index, int **ret)
{
        if (!m)
                return client_fail(-EINVAL, "message: NULL");
        if (!m->msg || index >= m->msg->n_fds)
                return client_fail(-ENXIO, "index %u: the message has %u descriptors", index,
                                   ipcbus_message_get_n_fds(m));
        if (m->msg->fds[index] < 0)
                return client_fail(-EBADF, "index %u: the descriptor was taken", index);
        *ret = &m->msg->fds[index];
        return 0;
}

_public_ int ipcbus_message_get_fd(ipcbus_message *m, unsigned index)
{
        int *slot = NULL;
        int r = message_fd_slot(m, index, &slot);

        return r < 0 ? r : *slot;
}

_public_ int ipcbus_message_take_fd(ipcbus_message *m, unsigned index)
{
        int *slot = NULL, fd;
        int r = message_fd_slot(m, index, &slot);

        if (r < 0)
                return r;
        fd = *slot;
        *slot = -1; /* msg_unref closes only what is left */
        return fd;
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
        return client_fail_proto(msg_build(&h, body, body_len, ret));
}

/* Common checks for answering `call`: 1 when an answer is to be sent, 0 when
 * the caller asked for none, negative errno when it cannot be answered. */
static int reply_check(ipcbus_message *call)
{
        int r;

        if (!call || !call->msg || call->msg->h.type != MSG_CALL || !call->msg->h.sender)
                return client_fail(-EINVAL, "call: not a received method call");
        r = client_enter(call->bus, true);
        if (r < 0)
                return r;
        if (call->msg->h.no_reply)
                return 0;
        if (call->replied)
                return client_fail(-EALREADY, "call: already answered");
        return 1;
}

_public_ int ipcbus_send(ipcbus_bus *bus, ipcbus_message *m)
{
        _cleanup_(ipcbus_message_unrefp) ipcbus_message *call = NULL;
        enum msg_type type;
        int r;

        if (!m)
                return client_fail(-EINVAL, "message: NULL");
        if (bus && bus != m->bus)
                return client_fail(-EINVAL, "message: made for another connection");
        if (m->sent)
                return client_fail(-EALREADY, "message: already sent");
        if (!m->built)
                return client_fail(-EPERM, "message: received; only a built message can be sent");
        r = client_enter(m->bus, true);
        if (r < 0)
                return r;

        call = ipcbus_message_ref(message_answered_call(m));
        if (call) {
                r = reply_check(call);
                if (r <= 0) {
                        m->sent = r == 0; /* the caller wants no answer: done */
                        return r;
                }
        }
        r = message_seal(m, IPCBUS_TIMEOUT_DEFAULT);
        if (r < 0)
                return r;
        type = m->msg->h.type;
        if (type == MSG_RETURN || type == MSG_SIGNAL) {
                r = object_check_outgoing(m->bus, m);
                if (r < 0)
                        return r;
        }
        r = client_send(m->bus, m->msg);
        if (r < 0)
                return r;
        m->sent = true;
        if (call)
                call->replied = true;
        return 0;
}

/* Answer call with a return built from format and ap (format NULL: no body). */
static int reply_with(ipcbus_message *call, const char *format, va_list ap)
{
        _cleanup_(ipcbus_message_unrefp) ipcbus_message *m = NULL;
        int r;

        r = reply_check(call);
        if (r <= 0)
                return r;
        r = ipcbus_message_new_return(call, &m);
        if (r == 0 && format)
                r = ipcbus_message_appendv(m, format, ap);
        if (r == 0)
                r = ipcbus_send(call->bus, m);
        return r;
}

_public_ int ipcbus_reply_method(ipcbus_message *call, const char *format, ...)
{
        va_list ap;
        int r;

        va_start(ap, format);
        r = reply_with(call, format, ap);
        va_end(ap);
        return r;
}

/*
 * A return whose body is text: built straight from the caller's bytes (one
 * validation and one copy, as a large reply deserves), checked against the
 * method's results when the call was dispatched to a described one.
 */
_public_ int ipcbus_reply(ipcbus_message *call, const char *body)
{
        _cleanup_(ipcbus_message_unrefp) ipcbus_message *m = NULL;
        _cleanup_(msg_unrefp) struct msg *msg = NULL;
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
        r = client_build_text(&h, body, &msg);
        if (r < 0)
                return r;
        if (call->method) {
                m = message_new(call->bus, msg);
                if (!m)
                        return -ENOMEM;
                message_set_method(m, call->method_iface, call->method);
                r = object_check_outgoing(call->bus, m);
                if (r < 0)
                        return r;
        }
        r = client_send(call->bus, msg);
        if (r >= 0)
                call->replied = true;
        return r;
}

_public_ int ipcbus_reply_error(ipcbus_message *call, const char *name, const char *message)
{
        _cleanup_(msg_unrefp) struct msg *m = NULL;
        int r;

        r = client_check_name("name", name, CLIENT_NAME_ERROR);
        if (r < 0)
                return r;
        r = reply_check(call);
        if (r <= 0)
                return r;

        r = message_build_error(call->msg->h.serial, client_next_serial(call->bus), NULL, call->msg->h.sender, name,
                                message, &m);
        if (r < 0)
                return r;

        r = client_send(call->bus, m);
        if (r >= 0)
                call->replied = true;
        return r;
}
_public_ int ipcbus_reply_errorf(ipcbus_message *call, const char *name, const char *fmt, ...)
{
        _cleanup_(freep) char *message = NULL;
        va_list ap;
        int r;

        if (!fmt)
                return client_fail_null("fmt");

        va_start(ap, fmt);
        r = vasprintf(&message, fmt, ap);
        va_end(ap);
        if (r < 0) {
                message = NULL;
                return -ENOMEM;
        }

        return ipcbus_reply_error(call, name, message);
}
