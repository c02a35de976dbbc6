/* SPDX-License-Identifier: MIT */
/*
 * Typed reads: the body is parsed once with json-c into a tree kept by the
 * message, and read through a stack of cursors (an object read by member
 * name, an array by position, a single value). Strings handed out point
 * into the tree; decoded bytes are kept by the reader; both live as long as
 * the message.
 */
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <string.h>

#include "libclient/bus-internal.h"
#include "libclient/memfd.h"

struct rframe {
        char kind;             /* '{' an object, '[' an array, '=' one value (message_enter_value) */
        struct json_object *v; /* the container, or the single value (NULL: null or absent) */
        bool present;          /* '=': the member is there (maybe null) */
        size_t next;           /* '[': the next element */
        size_t path_len;       /* the member path's length before this frame's name */
};

struct reader_blob {
        struct reader_blob *next;
        uint8_t data[];
};

struct message_reader {
        struct json_object *tree;
        struct rframe stack[IPCBUS_DEPTH_MAX + 2];
        unsigned depth; /* frames in use; stack[0] is the body */
        struct jbuf where;
        struct reader_blob *blobs;
};

void reader_free(struct message_reader *r)
{
        if (!r)
                return;
        json_object_put(r->tree);
        jbuf_deinit(&r->where);
        while (r->blobs) {
                struct reader_blob *next = r->blobs->next;

                free(r->blobs);
                r->blobs = next;
        }
        free(r);
}

/* Parse the body of m (sealed or received) into a new reader. */
static int reader_new(ipcbus_message *m, struct message_reader **ret)
{
        struct message_reader *r = NULL;
        struct json_object *tree;

        if (m->msg->body) {
                int k = value_json_parse(m->msg->body, m->msg->body_len, true, &tree);

                if (k == -ENOMEM)
                        return k;
                if (k < 0 || !json_object_is_type(tree, json_type_object)) {
                        if (k == 0)
                                json_object_put(tree);
                        return client_fail(-EBADMSG, "body: not a JSON object");
                }
        } else if (!(tree = json_object_new_object()))
                return -ENOMEM;

        r = calloc(1, sizeof(*r));
        if (!r) {
                json_object_put(tree);
                return -ENOMEM;
        }
        r->tree = tree;
        jbuf_init(&r->where);
        r->stack[0] = (struct rframe){.kind = '{', .v = tree};
        r->depth = 1;
        *ret = r;
        return 0;
}

/* The reader of m, made on first use. */
static int reader_get(ipcbus_message *m, struct message_reader **ret)
{
        int r;

        if (!m)
                return client_fail(-EINVAL, "message: NULL");
        if (!m->msg)
                return client_fail(-EPERM, "message: being built; it can be read once it is sent");
        if (!m->reader) {
                r = reader_new(m, &m->reader);
                if (r < 0)
                        return r;
        }
        *ret = m->reader;
        return 0;
}

static struct rframe *reader_top(struct message_reader *r)
{
        return &r->stack[r->depth - 1];
}

/* What came, for errors: the protocol's names where one fits. */
static const char *json_kind(struct json_object *v)
{
        switch (json_object_get_type(v)) {
        case json_type_null:
                return "null";
        case json_type_boolean:
                return "bool";
        case json_type_double:
                return "double";
        case json_type_int:
                return "int";
        case json_type_object:
                return "object";
        case json_type_array:
                return "array";
        case json_type_string:
                return "string";
        }
        return "?";
}

static int fail_type(struct message_reader *r, char type, struct json_object *v)
{
        return client_fail(-EBADMSG, "argument '%s': expected %s, got %s", value_path(&r->where), value_type_name(type),
                           json_kind(v));
}

static int fail_range(struct message_reader *r, char type, const char *range)
{
        return client_fail(-EBADMSG, "argument '%s': out of range for %s (%s)", value_path(&r->where),
                           value_type_name(type), range);
}

/*
 * An integer as a sign and magnitude: a JSON integer, or a string of decimal
 * digits with an optional leading '-' (PROTOCOL.md 13.2). 0, or -ERANGE
 * beyond 64 bits, or -EBADMSG when v is neither.
 */
static int json_integer(struct json_object *v, bool *ret_negative, uint64_t *ret_magnitude)
{
        if (json_object_is_type(v, json_type_int)) {
                int64_t s = json_object_get_int64(v);

                *ret_negative = s < 0;
                *ret_magnitude = s < 0 ? -(uint64_t) s : s == INT64_MAX ? json_object_get_uint64(v) : (uint64_t) s;
                return 0;
        }
        if (json_object_is_type(v, json_type_string)) {
                const char *p = json_object_get_string(v);
                uint64_t n = 0;

                *ret_negative = *p == '-';
                p += *ret_negative;
                if (*p == '\0')
                        return -EBADMSG;
                for (; *p; p++) {
                        if (*p < '0' || *p > '9')
                                return -EBADMSG;
                        if (n > (UINT64_MAX - (uint64_t) (*p - '0')) / 10)
                                return -ERANGE;
                        n = n * 10 + (uint64_t) (*p - '0');
                }
                *ret_magnitude = n;
                return 0;
        }
        return -EBADMSG;
}

/* Read a signed integer within [min, max]. */
static int read_signed(struct message_reader *r, char type, struct json_object *v, int64_t min, int64_t max,
                       int64_t *ret)
{
        uint64_t magnitude = 0;
        bool negative = false;
        int k = json_integer(v, &negative, &magnitude);

        if (k == -EBADMSG)
                return fail_type(r, type, v);
        if (k < 0 || (negative ? magnitude > -(uint64_t) min : magnitude > (uint64_t) max))
                return fail_range(r, type, type == 'i' ? "32-bit" : "64-bit");
        *ret = negative ? (int64_t) -magnitude : (int64_t) magnitude;
        return 0;
}

static int read_unsigned(struct message_reader *r, char type, struct json_object *v, uint64_t max, uint64_t *ret)
{
        uint64_t magnitude = 0;
        bool negative = false;
        int k = json_integer(v, &negative, &magnitude);

        if (k == -EBADMSG)
                return fail_type(r, type, v);
        if (k < 0 || (negative && magnitude > 0) || magnitude > max)
                return fail_range(r, type, type == 'u' ? "32-bit" : "64-bit");
        *ret = magnitude;
        return 0;
}

/*
 * Bytes written as a reference {"$bytes":[OFFSET,LENGTH]} into the binary
 * area of a body that came in a memfd (PROTOCOL.md 14.5): a pointer into it,
 * no copy. -EBADMSG for anything else, or a reference beyond the area.
 */
static int read_bytes_ref(ipcbus_message *m, struct message_reader *r, struct json_object *v, const void **ret,
                          size_t *ret_size)
{
        uint64_t offset, length;
        int k;

        if (memfd_bytes_parse(v, &offset, &length) < 0)
                return fail_type(r, 'y', v);
        k = memfd_bytes_ref(m->msg, offset, length, ret);
        if (k == -ENXIO)
                return client_fail(-EBADMSG, "argument '%s': a $bytes reference in a body that came in its frame",
                                   value_path(&r->where));
        if (k < 0)
                return client_fail(-EBADMSG, "argument '%s': bytes %" PRIu64 "+%" PRIu64 " beyond the binary area",
                                   value_path(&r->where), offset, length);
        *ret_size = (size_t) length;
        return 0;
}

static int read_bytes(ipcbus_message *m, struct message_reader *r, struct json_object *v, const void **ret,
                      size_t *ret_size)
{
        struct reader_blob *blob;
        size_t len;

        if (json_object_is_type(v, json_type_object))
                return read_bytes_ref(m, r, v, ret, ret_size);
        if (!json_object_is_type(v, json_type_string))
                return fail_type(r, 'y', v);
        len = (size_t) json_object_get_string_len(v);
        blob = malloc(sizeof(*blob) + len / 4 * 3 + 1);
        if (!blob)
                return -ENOMEM;
        if (value_base64_decode(json_object_get_string(v), len, blob->data, ret_size) < 0) {
                free(blob);
                return client_fail(-EBADMSG, "argument '%s': not base64", value_path(&r->where));
        }
        blob->next = r->blobs;
        r->blobs = blob;
        *ret = blob->data;
        return 0;
}

static int read_fd(ipcbus_message *m, struct message_reader *r, struct json_object *v, int *ret)
{
        int64_t index;
        int k = read_signed(r, 'h', v, 0, INT_MAX, &index);

        if (k < 0)
                return k;
        if ((uint64_t) index >= m->msg->n_fds)
                return client_fail(-EBADMSG, "argument '%s': descriptor %" PRId64 " of %u", value_path(&r->where),
                                   index, m->msg->n_fds);
        if (m->msg->fds[index] < 0)
                return client_fail(-EBADF, "argument '%s': descriptor %" PRId64 " was taken", value_path(&r->where),
                                   index);
        *ret = m->msg->fds[index];
        return 0;
}

/* Read v (present, not null unless 'v') as a letter type, storing to the next output of ap. */
static int read_scalar(ipcbus_message *m, struct message_reader *r, char type, struct json_object *v, va_list *ap)
{
        int64_t s = 0;
        uint64_t u = 0;
        int k;

        switch (type) {
        case 'b':
                if (!json_object_is_type(v, json_type_boolean))
                        return fail_type(r, type, v);
                *va_arg(*ap, bool *) = json_object_get_boolean(v);
                return 0;
        case 'i':
        case 'x':
                k = read_signed(r, type, v, type == 'i' ? INT_MIN : INT64_MIN, type == 'i' ? INT_MAX : INT64_MAX, &s);
                if (k < 0)
                        return k;
                if (type == 'i')
                        *va_arg(*ap, int *) = (int) s;
                else
                        *va_arg(*ap, int64_t *) = s;
                return 0;
        case 'u':
        case 't':
                k = read_unsigned(r, type, v, type == 'u' ? UINT_MAX : UINT64_MAX, &u);
                if (k < 0)
                        return k;
                if (type == 'u')
                        *va_arg(*ap, unsigned *) = (unsigned) u;
                else
                        *va_arg(*ap, uint64_t *) = u;
                return 0;
        case 'd':
                if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
                        return fail_type(r, type, v);
                *va_arg(*ap, double *) = json_object_get_double(v);
                return 0;
        case 's':
                if (!json_object_is_type(v, json_type_string))
                        return fail_type(r, type, v);
                *va_arg(*ap, const char **) = json_object_get_string(v);
                return 0;
        case 'y': {
                const void **p = va_arg(*ap, const void **);

                return read_bytes(m, r, v, p, va_arg(*ap, size_t *));
        }
        case 'h':
                return read_fd(m, r, v, va_arg(*ap, int *));
        case 'v':
                *va_arg(*ap, const char **) =
                        json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
                return 0;
        default:
                return client_fail(-EINVAL, "argument '%s': 'n' (null) is not for reading", value_path(&r->where));
        }
}

static int read_items(ipcbus_message *m, struct message_reader *r, struct fmt *f, char end, va_list *ap, bool skip);

/* Consume the outputs of an item without storing (an absent optional member). */
static int skip_item(ipcbus_message *m, struct message_reader *r, struct fmt *f, const struct fmt_item *it, va_list *ap)
{
        if (it->type == '{') {
                int k = read_items(m, r, f, '}', ap, true);

                if (k < 0)
                        return k;
                f->p++;
                return 0;
        }
        (void) va_arg(*ap, void *);
        if (it->type == 'y')
                (void) va_arg(*ap, void *);
        return 0;
}

/* Read one value v (present: the member is there) of item it. */
static int read_value(ipcbus_message *m, struct message_reader *r, struct fmt *f, const struct fmt_item *it,
                      struct json_object *v, bool present, va_list *ap)
{
        int k;

        if (!present || (!v && it->type != 'v') || (!v && it->optional)) {
                if (it->optional)
                        return skip_item(m, r, f, it, ap);
                if (!present)
                        return client_fail(-EBADMSG, "argument '%s': missing (expected %s)", value_path(&r->where),
                                           value_type_name(it->type));
                return fail_type(r, it->type, v);
        }
        if (it->type != '{')
                return read_scalar(m, r, it->type, v, ap);
        if (!json_object_is_type(v, json_type_object))
                return fail_type(r, it->type, v);
        if (r->depth >= sizeof(r->stack) / sizeof(r->stack[0]))
                return client_fail(-EINVAL, "format '%s': nested too deep", f->format);
        r->stack[r->depth++] = (struct rframe){.kind = '{', .v = v};
        k = read_items(m, r, f, '}', ap, false);
        r->depth--;
        if (k < 0)
                return k;
        f->p++;
        return 0;
}

/*
 * The value item `it` names in the current frame: a member of an object,
 * the next element of an array (-ENODATA at its end), the single value.
 */
static int frame_value(struct message_reader *r, const struct fmt_item *it, struct json_object **ret, bool *ret_present,
                       size_t *ret_path_len)
{
        struct rframe *top = reader_top(r);

        *ret_path_len = r->where.len;
        switch (top->kind) {
        case '{':
                *ret_present = json_object_object_get_ex(top->v, it->name, ret);
                value_path_push(&r->where, it->name, 0);
                return 0;
        case '[':
                if (top->next >= json_object_array_length(top->v))
                        return -ENODATA;
                *ret = json_object_array_get_idx(top->v, top->next);
                *ret_present = true;
                value_path_push(&r->where, NULL, top->next++);
                return 0;
        default:
                *ret = top->v;
                *ret_present = top->present;
                return 0;
        }
}

/*
 * Read (or with skip, only consume the outputs of) the items of f up to
 * `end`. Returns 1, or 0 when an array ended before the first item, or a
 * negative errno.
 */
static int read_items(ipcbus_message *m, struct message_reader *r, struct fmt *f, char end, va_list *ap, bool skip)
{
        for (bool first = true;; first = false) {
                struct fmt_item it;
                struct json_object *v = NULL;
                bool present = false;
                size_t path_len;
                int k;

                k = fmt_next(f, skip ? true : reader_top(r)->kind == '{', end, &it);
                if (k <= 0)
                        return k < 0 ? k : 1;
                if (it.percent)
                        it.name = va_arg(*ap, const char *);
                if (it.percent && !it.name)
                        return client_fail(-EINVAL, "format '%s': NULL name for '%%'", f->format);
                if (skip) {
                        k = skip_item(m, r, f, &it, ap);
                        if (k < 0)
                                return k;
                        continue;
                }
                k = frame_value(r, &it, &v, &present, &path_len);
                if (k == -ENODATA && first)
                        return 0;
                if (k == -ENODATA)
                        return client_fail(-EBADMSG, "argument '%s': the array ended (expected %s)",
                                           value_path(&r->where), value_type_name(it.type));
                k = read_value(m, r, f, &it, v, present, ap);
                value_path_pop(&r->where, path_len);
                if (k < 0)
                        return k;
        }
}

_public_ int ipcbus_message_readv(ipcbus_message *m, const char *format, va_list ap)
{
        struct message_reader *r = NULL;
        struct fmt f = {format, format};
        unsigned depth;
        size_t where_len, next;
        va_list aq;
        int k;

        k = reader_get(m, &r);
        if (k < 0)
                return k;
        if (!format)
                return client_fail(-EINVAL, "format: NULL");

        /* a failed read leaves the cursor where it was */
        depth = r->depth;
        where_len = r->where.len;
        next = reader_top(r)->next;
        va_copy(aq, ap);
        k = read_items(m, r, &f, '\0', &aq, false);
        va_end(aq);
        if (k < 0) {
                r->depth = depth;
                value_path_pop(&r->where, where_len);
                reader_top(r)->next = next;
        }
        return k;
}

_public_ int ipcbus_message_read(ipcbus_message *m, const char *format, ...)
{
        va_list ap;
        int r;

        va_start(ap, format);
        r = ipcbus_message_readv(m, format, ap);
        va_end(ap);
        return r;
}

static int reader_push(struct message_reader *r, struct rframe frame)
{
        if (r->depth >= sizeof(r->stack) / sizeof(r->stack[0]))
                return client_fail(-EINVAL, "argument '%s': nested too deep", value_path(&r->where));
        r->stack[r->depth++] = frame;
        return 0;
}

_public_ int ipcbus_message_enter(ipcbus_message *m, const char *name)
{
        struct message_reader *r = NULL;
        struct fmt_item it = {.name = name};
        struct json_object *v = NULL;
        bool present = false;
        size_t path_len;
        int k;

        k = reader_get(m, &r);
        if (k < 0)
                return k;
        if ((reader_top(r)->kind == '{') != !!name)
                return client_fail(-EINVAL, "name: %s", name ? "given outside an object" : "needed inside an object");
        k = frame_value(r, &it, &v, &present, &path_len);
        if (k == -ENODATA)
                return 0;
        if (!present || !v)
                k = client_fail(-ENXIO, "argument '%s': missing", value_path(&r->where));
        else if (!json_object_is_type(v, json_type_object) && !json_object_is_type(v, json_type_array))
                k = client_fail(-EBADMSG, "argument '%s': expected array or object, got %s", value_path(&r->where),
                                json_kind(v));
        else
                k = reader_push(r, (struct rframe){.kind = json_object_is_type(v, json_type_array) ? '[' : '{',
                                                   .v = v,
                                                   .path_len = path_len});
        if (k < 0) {
                value_path_pop(&r->where, path_len);
                if (reader_top(r)->kind == '[')
                        reader_top(r)->next--;
                return k;
        }
        return 1;
}

_public_ int ipcbus_message_exit(ipcbus_message *m)
{
        struct message_reader *r = NULL;
        int k;

        k = reader_get(m, &r);
        if (k < 0)
                return k;
        if (r->depth <= 1)
                return client_fail(-EINVAL, "message: not inside a container");
        value_path_pop(&r->where, reader_top(r)->path_len);
        r->depth--;
        return 0;
}

_public_ int ipcbus_message_rewind(ipcbus_message *m)
{
        struct message_reader *r = NULL;
        int k;

        k = reader_get(m, &r);
        if (k < 0)
                return k;
        r->depth = 1;
        r->stack[0].next = 0;
        value_path_pop(&r->where, 0);
        return 0;
}

int message_enter_value(ipcbus_message *m, const char *name)
{
        struct message_reader *r = NULL;
        struct json_object *v = NULL;
        bool present;
        size_t path_len;
        int k;

        k = reader_get(m, &r);
        if (k < 0)
                return k;
        if (!name || reader_top(r)->kind != '{')
                return client_fail(-EINVAL, "value: a member of an object is needed");
        present = json_object_object_get_ex(reader_top(r)->v, name, &v);
        path_len = value_path_push(&r->where, name, 0);
        k = reader_push(r, (struct rframe){.kind = '=', .v = v, .present = present, .path_len = path_len});
        if (k < 0)
                value_path_pop(&r->where, path_len);
        return k;
}

_public_ int ipcbus_message_get_json(ipcbus_message *m, struct json_object **ret)
{
        struct message_reader *r = NULL;
        int k;

        if (!ret)
                return client_fail(-EINVAL, "ret: NULL");
        k = reader_get(m, &r);
        if (k < 0)
                return k;
        *ret = json_object_get(r->tree);
        return 0;
}
