/* SPDX-License-Identifier: MIT */
/*
 * Messages being built: the header fields, the body written as JSON text
 * straight into a jbuf as values are appended (a stack of the containers
 * left open, no trees), and the descriptors duplicated into the message.
 * message_seal() turns the result into a struct msg for sending.
 */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "libclient/bus-internal.h"
#include "libclient/memfd.h"
#include "protocol/jscan.h"
#include "protocol/names.h"

#define JS_SAFE_INTEGER_MAX ((1ull << 53) - 1) /* what a JavaScript number holds exactly */

struct bframe {
        char kind;       /* '{' an object, '[' an array, '=' one unnamed value (message_begin_value) */
        size_t count;    /* values written into it */
        size_t path_len; /* the member path's length before this container's name */
};

struct message_builder {
        struct msg_header h; /* strings point at the copies below */
        char *destination;
        char *path;
        char *interface;
        char *member;
        ipcbus_message *call; /* a return: the call it answers (a reference) */
        struct jbuf body;     /* "{" and what was appended, without the closing '}' */
        bool raw;             /* ipcbus_message_set_body: body holds the whole text */
        struct bframe stack[IPCBUS_DEPTH_MAX];
        unsigned depth; /* frames in use; stack[0] is the body object */
        struct jbuf where;
        int fds[IPCBUS_FDS_MAX];
        unsigned n_fds;
        struct memfd_blobs *blobs; /* large bytes values, apart from body until sealed (memfd.h) */
};

void builder_free(struct message_builder *b)
{
        if (!b)
                return;
        free(b->destination);
        free(b->path);
        free(b->interface);
        free(b->member);
        ipcbus_message_unref(b->call);
        jbuf_deinit(&b->body);
        jbuf_deinit(&b->where);
        close_fds(b->fds, b->n_fds);
        memfd_blobs_free(b->blobs);
        free(b);
}

const struct msg_header *message_header(ipcbus_message *m)
{
        return m->msg ? &m->msg->h : &m->builder->h;
}

/* Replace *field with a copy of value (NULL: none). 0 or -ENOMEM. */
static int builder_set_string(char **field, const char *value)
{
        char *copy = NULL;

        if (value && !(copy = strdup(value)))
                return -ENOMEM;
        free(*field);
        *field = copy;
        return 0;
}

/* A new message of `type` on bus with header h (names checked, copied). */
static int builder_new(ipcbus_bus *bus, const struct msg_header *h, ipcbus_message **ret)
{
        _cleanup_(ipcbus_message_unrefp) ipcbus_message *m = NULL;
        struct message_builder *b = NULL;
        int r;

        if (!bus)
                return client_fail(-EINVAL, "bus: NULL");
        if (!ret)
                return client_fail(-EINVAL, "ret: NULL");
        r = client_enter(bus, false);
        if (r < 0)
                return r;
        r = client_check_header(h);
        if (r < 0)
                return r;
        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->n_ref = 1;
        m->built = true;
        m->bus = client_ref(bus);
        b = m->builder = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->h = *h;
        if (builder_set_string(&b->destination, h->destination) < 0 || builder_set_string(&b->path, h->path) < 0 ||
            builder_set_string(&b->interface, h->interface) < 0 || builder_set_string(&b->member, h->member) < 0)
                return -ENOMEM;
        b->h.destination = b->destination;
        b->h.path = b->path;
        b->h.interface = b->interface;
        b->h.member = b->member;
        jbuf_init(&b->body);
        jbuf_init(&b->where);
        jbuf_putc(&b->body, '{');
        b->stack[0] = (struct bframe){.kind = '{'};
        b->depth = 1;
        *ret = steal_pointer(&m);
        return 0;
}

_public_ int ipcbus_message_new_call(ipcbus_bus *bus, ipcbus_message **ret, const char *destination, const char *path,
                                     const char *interface, const char *member)
{
        struct msg_header h;

        msg_header_init(&h);
        h.type = MSG_CALL;
        h.destination = destination;
        h.path = path;
        h.interface = interface;
        h.member = member;
        return builder_new(bus, &h, ret);
}

_public_ int ipcbus_message_new_signal(ipcbus_bus *bus, ipcbus_message **ret, const char *path, const char *interface,
                                       const char *member)
{
        struct msg_header h;

        msg_header_init(&h);
        h.type = MSG_SIGNAL;
        h.path = path;
        h.interface = interface;
        h.member = member;
        return builder_new(bus, &h, ret);
}

_public_ int ipcbus_message_new_return(ipcbus_message *call, ipcbus_message **ret)
{
        struct msg_header h;
        int r;

        if (!call || !call->msg || call->msg->h.type != MSG_CALL || !call->msg->h.sender)
                return client_fail(-EINVAL, "call: not a received method call");
        msg_header_init(&h);
        h.type = MSG_RETURN;
        h.destination = call->msg->h.sender;
        h.reply_serial = call->msg->h.serial;
        r = builder_new(call->bus, &h, ret);
        if (r < 0)
                return r;
        (*ret)->builder->call = ipcbus_message_ref(call);
        message_set_method(*ret, call->method_iface, call->method);
        return 0;
}

/* The builder of m, or -EPERM (with a sentence) when m is not being built. */
static int builder_get(ipcbus_message *m, struct message_builder **ret)
{
        if (!m)
                return client_fail(-EINVAL, "message: NULL");
        if (!m->builder)
                return client_fail(-EPERM, "message: %s; it cannot be changed", m->sent ? "already sent" : "received");
        *ret = m->builder;
        return 0;
}

_public_ int ipcbus_message_set_destination(ipcbus_message *m, const char *destination)
{
        struct message_builder *b = NULL;
        int r;

        r = builder_get(m, &b);
        if (r < 0)
                return r;
        if (destination) {
                r = client_check_name("destination", destination, CLIENT_NAME_BUS);
                if (r < 0)
                        return r;
        }
        r = builder_set_string(&b->destination, destination);
        if (r < 0)
                return r;
        b->h.destination = b->destination;
        return 0;
}

/* Set a flag of a call (no_reply, no_auto_start). */
static int builder_set_call_flag(ipcbus_message *m, const char *flag, bool value, bool *ret_field)
{
        struct message_builder *b = NULL;
        int r;

        r = builder_get(m, &b);
        if (r < 0)
                return r;
        if (b->h.type != MSG_CALL)
                return client_fail(-EINVAL, "%s: only a method call has it", flag);
        *ret_field = value;
        return 0;
}

_public_ int ipcbus_message_set_no_reply(ipcbus_message *m, bool no_reply)
{
        return builder_set_call_flag(m, "no_reply", no_reply, m && m->builder ? &m->builder->h.no_reply : NULL);
}

_public_ int ipcbus_message_set_no_auto_start(ipcbus_message *m, bool no_auto_start)
{
        return builder_set_call_flag(m, "no_auto_start", no_auto_start,
                                     m && m->builder ? &m->builder->h.no_auto_start : NULL);
}

/* ---- writing values ---- */

static struct bframe *builder_top(struct message_builder *b)
{
        return &b->stack[b->depth - 1];
}

/*
 * Write what goes before a value in the current container: the comma, and
 * in an object the member's name (required there; refused elsewhere). The
 * member path gains the value's name or index; *ret_path_len is its length
 * before, for builder_value_end.
 */
static int builder_value_begin(struct message_builder *b, const char *name, size_t *ret_path_len)
{
        struct bframe *top = builder_top(b);

        if (top->kind == '{' && !name)
                return client_fail(-EINVAL, "value: a name is needed inside an object (at '%s')",
                                   value_path(&b->where));
        if (top->kind != '{' && name)
                return client_fail(-EINVAL, "value '%s': no name is given %s", name,
                                   top->kind == '[' ? "inside an array" : "at a single value");
        if (top->kind == '=') {
                *ret_path_len = b->where.len;
                return 0;
        }
        if (top->count > 0)
                jbuf_putc(&b->body, ',');
        if (name) {
                /* the body goes out unchecked (message_seal): a '%' name is the caller's text */
                if (jbuf_put_string_utf8(&b->body, name, strlen(name)) < 0)
                        return client_fail(-EINVAL, "value '%s': the name is not valid UTF-8", name);
                jbuf_putc(&b->body, ':');
        }
        *ret_path_len = value_path_push(&b->where, name, top->count);
        return 0;
}

/* A value is complete: count it, and leave a single-value context it filled
 * (which completes the member holding it). */
static void builder_value_end(struct message_builder *b, size_t path_len)
{
        struct bframe *top = builder_top(b);

        value_path_pop(&b->where, path_len);
        top->count++;
        if (top->kind == '=') {
                size_t outer = top->path_len;

                b->depth--;
                builder_value_end(b, outer);
        }
}

static int builder_push(struct message_builder *b, char kind, size_t path_len)
{
        if (b->depth >= IPCBUS_DEPTH_MAX)
                return client_fail(-EINVAL, "value '%s': nested deeper than %u", value_path(&b->where),
                                   IPCBUS_DEPTH_MAX);
        b->stack[b->depth++] = (struct bframe){.kind = kind, .path_len = path_len};
        if (kind != '=')
                jbuf_putc(&b->body, kind);
        return 0;
}

/* Write an integer; beyond what a JavaScript number holds exactly, as a decimal string. */
static void put_int(struct jbuf *body, bool negative, uint64_t magnitude)
{
        const char *quote = magnitude > JS_SAFE_INTEGER_MAX ? "\"" : "";

        jbuf_printf(body, "%s%s%llu%s", quote, negative ? "-" : "", (unsigned long long) magnitude, quote);
}

/*
 * The shortest of %.15g / %.17g that reads back as v, written with '.'
 * whatever the locale's decimal point (the body is sent unchecked).
 */
static void put_double(struct jbuf *body, double v)
{
        char text[48];
        size_t i = 0;

        snprintf(text, sizeof(text), "%.15g", v);
        if (strtod(text, NULL) != v)
                snprintf(text, sizeof(text), "%.17g", v);
        while (text[i]) {
                size_t n = strcspn(text + i, "0123456789+-eE");

                if (n == 0) {
                        jbuf_putc(body, text[i++]);
                        continue;
                }
                jbuf_putc(body, '.'); /* the locale's decimal point, maybe several bytes */
                i += n;
        }
}

static int put_fd(struct message_builder *b, int fd)
{
        int copy;

        if (fd < 0)
                return client_fail(-EBADF, "argument '%s': invalid descriptor %d", value_path(&b->where), fd);
        if (b->n_fds >= IPCBUS_FDS_MAX)
                return client_fail(-EINVAL, "argument '%s': more than %u descriptors in one message",
                                   value_path(&b->where), IPCBUS_FDS_MAX);
        copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (copy < 0)
                return client_fail(-errno, "argument '%s': cannot duplicate descriptor %d: %s", value_path(&b->where),
                                   fd, strerror(errno));
        b->fds[b->n_fds] = copy;
        jbuf_printf(&b->body, "%u", b->n_fds++);
        return 0;
}

/* A NULL pointer given for a value of type: null when optional ("?s"), else refused. */
static int put_null(struct message_builder *b, char type, bool optional)
{
        if (!optional)
                return client_fail(-EINVAL, "argument '%s': NULL %s (?%c writes null)", value_path(&b->where),
                                   value_type_name(type), type);
        jbuf_puts(&b->body, "null");
        return 0;
}

static int put_string(struct message_builder *b, const char *s, bool optional)
{
        if (!s)
                return put_null(b, 's', optional);
        if (jbuf_put_string_utf8(&b->body, s, strlen(s)) < 0)
                return client_fail(-EINVAL, "argument '%s': not valid UTF-8", value_path(&b->where));
        return 0;
}

static int put_bytes(struct message_builder *b, const void *p, size_t n, bool optional)
{
        if (!p && (optional || n > 0))
                return put_null(b, 'y', optional);
        if (n > IPCBUS_BODY_MAX)
                return client_fail(-EINVAL, "argument '%s': larger than a body", value_path(&b->where));
        if (n >= MEMFD_BLOB_MIN) /* raw in a memfd body's binary area, else base64, as sealing decides */
                return memfd_blobs_add(&b->blobs, b->body.len, p, n);
        value_base64_put(&b->body, p, n);
        return 0;
}

static int put_json(struct message_builder *b, const char *json, bool optional)
{
        size_t len;

        if (!json)
                return put_null(b, 'v', optional);
        len = strlen(json);
        if (jscan_validate(json, len, IPCBUS_DEPTH_MAX - b->depth, NULL) != 0)
                return client_fail(-EINVAL, "argument '%s': not one JSON value", value_path(&b->where));
        jbuf_put(&b->body, json, len);
        return 0;
}

/* Write one value of a letter type, taking its arguments from ap. */
static int put_scalar(struct message_builder *b, const struct fmt_item *it, va_list *ap)
{
        switch (it->type) {
        case 'b':
                jbuf_puts(&b->body, va_arg(*ap, int) ? "true" : "false");
                return 0;
        case 'i':
        case 'x': {
                int64_t v = it->type == 'i' ? va_arg(*ap, int) : va_arg(*ap, int64_t);

                put_int(&b->body, v < 0, v < 0 ? -(uint64_t) v : (uint64_t) v);
                return 0;
        }
        case 'u':
                put_int(&b->body, false, va_arg(*ap, unsigned));
                return 0;
        case 't':
                put_int(&b->body, false, va_arg(*ap, uint64_t));
                return 0;
        case 'd': {
                double v = va_arg(*ap, double);

                if (!isfinite(v))
                        return client_fail(-EINVAL, "argument '%s': NaN and infinities cannot be sent",
                                           value_path(&b->where));
                put_double(&b->body, v);
                return 0;
        }
        case 's':
                return put_string(b, va_arg(*ap, const char *), it->optional);
        case 'y': {
                const void *p = va_arg(*ap, const void *);

                return put_bytes(b, p, va_arg(*ap, size_t), it->optional);
        }
        case 'h':
                return put_fd(b, va_arg(*ap, int));
        case 'v':
                return put_json(b, va_arg(*ap, const char *), it->optional);
        default: /* 'n' */
                jbuf_puts(&b->body, "null");
                return 0;
        }
}

static int append_items(struct message_builder *b, struct fmt *f, char end, va_list *ap);

/* Append one item: its name, then a letter's value or an inline struct's members. */
static int append_item(struct message_builder *b, struct fmt *f, struct fmt_item *it, va_list *ap)
{
        size_t path_len;
        int r;

        if (it->percent) {
                it->name = va_arg(*ap, const char *);
                if (!it->name)
                        return client_fail(-EINVAL, "format '%s': NULL name for '%%'", f->format);
        }
        r = builder_value_begin(b, it->name, &path_len);
        if (r < 0)
                return r;
        if (it->type == '{') {
                r = builder_push(b, '{', path_len);
                if (r == 0)
                        r = append_items(b, f, '}', ap);
                if (r < 0)
                        return r;
                f->p++; /* the '}' */
                b->depth--;
                jbuf_putc(&b->body, '}');
        } else {
                r = put_scalar(b, it, ap);
                if (r < 0)
                        return r;
        }
        builder_value_end(b, path_len);
        return 0;
}

static int append_items(struct message_builder *b, struct fmt *f, char end, va_list *ap)
{
        for (;;) {
                struct fmt_item it;
                int r;

                r = fmt_next(f, builder_top(b)->kind == '{', end, &it);
                if (r <= 0)
                        return r;
                r = append_item(b, f, &it, ap);
                if (r < 0)
                        return r;
        }
}

/* Where the builder stood before an append, to go back there when it fails. */
struct builder_mark {
        size_t body_len;
        size_t where_len;
        unsigned n_fds;
        unsigned depth;
        struct bframe stack[IPCBUS_DEPTH_MAX];
};

static void builder_mark(const struct message_builder *b, struct builder_mark *mark)
{
        mark->body_len = b->body.len;
        mark->where_len = b->where.len;
        mark->n_fds = b->n_fds;
        mark->depth = b->depth;
        memcpy(mark->stack, b->stack, b->depth * sizeof(b->stack[0]));
}

static void builder_rollback(struct message_builder *b, const struct builder_mark *mark)
{
        jbuf_truncate(&b->body, mark->body_len);
        value_path_pop(&b->where, mark->where_len);
        close_fds(b->fds + mark->n_fds, b->n_fds - mark->n_fds);
        b->n_fds = mark->n_fds;
        b->depth = mark->depth;
        memcpy(b->stack, mark->stack, b->depth * sizeof(b->stack[0]));
}

/* The builder of m if it can take appended values. */
static int builder_get_open(ipcbus_message *m, struct message_builder **ret)
{
        int r = builder_get(m, ret);

        if (r == 0 && (*ret)->raw)
                return client_fail(-EINVAL, "message: its body was set as JSON text; nothing can be appended");
        return r;
}

_public_ int ipcbus_message_appendv(ipcbus_message *m, const char *format, va_list ap)
{
        struct message_builder *b = NULL;
        struct builder_mark mark;
        struct fmt f = {format, format};
        va_list aq;
        int r;

        r = builder_get_open(m, &b);
        if (r < 0)
                return r;
        if (!format)
                return client_fail(-EINVAL, "format: NULL");

        builder_mark(b, &mark);
        va_copy(aq, ap);
        r = append_items(b, &f, '\0', &aq);
        va_end(aq);
        if (r == 0 && (b->body.failed || b->where.failed))
                r = -ENOMEM;
        if (r < 0)
                builder_rollback(b, &mark);
        return r;
}

_public_ int ipcbus_message_append(ipcbus_message *m, const char *format, ...)
{
        va_list ap;
        int r;

        va_start(ap, format);
        r = ipcbus_message_appendv(m, format, ap);
        va_end(ap);
        return r;
}

_public_ int ipcbus_message_open(ipcbus_message *m, char kind, const char *name)
{
        struct message_builder *b = NULL;
        size_t path_len;
        int r;

        r = builder_get_open(m, &b);
        if (r < 0)
                return r;
        if (kind != '[' && kind != '{')
                return client_fail(-EINVAL, "kind '%c': a container is '[' (array) or '{' (object)", kind);
        r = builder_value_begin(b, name, &path_len);
        if (r == 0)
                r = builder_push(b, kind, path_len);
        return r;
}

_public_ int ipcbus_message_close(ipcbus_message *m)
{
        struct message_builder *b = NULL;
        struct bframe top;
        int r;

        r = builder_get_open(m, &b);
        if (r < 0)
                return r;
        top = *builder_top(b);
        if (b->depth <= 1 || top.kind == '=')
                return client_fail(-EINVAL, "message: no container is open");
        jbuf_putc(&b->body, top.kind == '[' ? ']' : '}');
        b->depth--;
        builder_value_end(b, top.path_len);
        return 0;
}

int message_begin_value(ipcbus_message *m, const char *name)
{
        struct message_builder *b = NULL;
        size_t path_len;
        int r;

        r = builder_get_open(m, &b);
        if (r < 0)
                return r;
        r = builder_value_begin(b, name, &path_len);
        if (r == 0)
                r = builder_push(b, '=', path_len);
        return r;
}

_public_ int ipcbus_message_set_body(ipcbus_message *m, const char *json)
{
        struct message_builder *b = NULL;
        int r;

        r = builder_get(m, &b);
        if (r < 0)
                return r;
        if (!json)
                return client_fail(-EINVAL, "body: NULL");
        r = client_check_body(json);
        if (r < 0)
                return r;
        jbuf_reset(&b->body);
        jbuf_puts(&b->body, json);
        if (b->body.failed)
                return -ENOMEM;
        memfd_blobs_free(b->blobs);
        b->blobs = NULL;
        b->raw = true;
        b->depth = 1;
        return 0;
}

/* ---- sealing ---- */

int message_seal(ipcbus_message *m, uint64_t timeout_usec)
{
        struct message_builder *b = m->builder;
        const char *body = NULL;
        size_t body_len = 0;
        int r;

        if (m->msg)
                return 0;
        if (b->depth > 1)
                return client_fail(-EINVAL, "message: %u container%s still open", b->depth - 1,
                                   b->depth > 2 ? "s" : "");
        if (!b->raw && b->stack[0].count > 0)
                jbuf_putc(&b->body, '}');
        if (b->body.failed)
                return -ENOMEM;
        if (b->raw || b->stack[0].count > 0) {
                body = b->body.data;
                body_len = b->body.len;
        }

        b->h.serial = client_next_serial(m->bus);
        if (b->h.type == MSG_CALL && !b->h.no_reply)
                b->h.timeout_ms = client_timeout_ms(timeout_usec);
        /* what the builder wrote is valid by construction, and a set body was checked when set */
        if (b->blobs)
                r = memfd_blobs_build(b->blobs, m->bus->memfd_threshold, &b->h, body, body_len, b->fds, b->n_fds,
                                      &m->msg);
        else {
                /* a large body goes from here into its memfd, not through a frame first */
                r = body ? memfd_text_build(&b->body, m->bus->memfd_threshold, &b->h, b->fds, b->n_fds, &m->msg) : 1;
                if (r == 1)
                        r = msg_build_fds(&b->h, body, body_len, b->fds, b->n_fds, MSG_BUILD_BODY_CHECKED, &m->msg);
        }
        if (r != 0) {
                if (!b->raw && b->stack[0].count > 0)
                        jbuf_truncate(&b->body, b->body.len - 1); /* the '}' again */
                return client_fail_proto(r);
        }
        b->n_fds = 0; /* the message's now */
        m->builder = NULL;
        builder_free(b);
        return 0;
}

/* For ipcbus_send of a return: the call it answers, NULL for other messages. */
ipcbus_message *message_answered_call(ipcbus_message *m)
{
        return m->builder ? m->builder->call : NULL;
}

unsigned builder_n_fds(const struct message_builder *b)
{
        return b ? b->n_fds : 0;
}
