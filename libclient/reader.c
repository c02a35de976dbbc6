/* SPDX-License-Identifier: MIT */
/*
 * Typed reads: the body is indexed once (msg_body_index: one pass, a node
 * per value, shared with ipcbus_message_get_arg) and read through a stack
 * of cursors over the nodes (an object read by member name, an array by
 * position, a single value). Strings are decoded on first read into the
 * message's copy (msg_body_string), so a string read is one copy at memory
 * speed and the pointer lives as long as the message; decoded bytes and
 * JSON text for 'v' are kept by the reader. ipcbus_message_get_json alone
 * parses with json-c, on demand.
 */
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libclient/bus-internal.h"
#include "libclient/memfd.h"
#include "protocol/jscan.h"

#define NO_NODE SIZE_MAX /* an absent value; an empty body is an object without nodes */

struct rframe {
        char kind;       /* '{' an object, '[' an array, '=' one value (message_enter_value) */
        size_t node;     /* the container, or the single value (NO_NODE: absent, or the empty body) */
        bool present;    /* '=': the member is there (maybe null) */
        size_t next;     /* '[': the node of the next element */
        size_t index;    /* '[': its position, for the member path */
        size_t path_len; /* the member path's length before this frame's name */
};

struct reader_blob {
        struct reader_blob *next;
        uint8_t data[];
};

/* The members of a large object sorted by key, made on its first lookup. */
struct object_keys {
        struct object_keys *next;
        size_t node;
        size_t n;
        uint32_t keys[]; /* key nodes, by key then by position */
};

/* Objects with more members than this are looked up through sorted keys. */
#define OBJECT_SCAN_MAX 16

struct message_reader {
        struct msg *msg;
        struct json_object *tree; /* ipcbus_message_get_json's, made on demand */
        struct rframe stack[IPCBUS_DEPTH_MAX + 2];
        unsigned depth; /* frames in use; stack[0] is the body */
        struct jbuf where;
        struct reader_blob *blobs;
        struct object_keys *objects;
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
        while (r->objects) {
                struct object_keys *next = r->objects->next;

                free(r->objects);
                r->objects = next;
        }
        free(r);
}

/* Index the body of m (sealed or received) for a new reader. */
static int reader_new(ipcbus_message *m, struct message_reader **ret)
{
        struct message_reader *r = NULL;
        int k;

        k = msg_body_index(m->msg);
        if (k < 0)
                return k;
        if (m->msg->body && (m->msg->n_nodes == 0 || m->msg->nodes[0].kind != JSCAN_OBJECT))
                return client_fail(-EBADMSG, "body: not a JSON object");
        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->msg = m->msg;
        jbuf_init(&r->where);
        r->stack[0] = (struct rframe){.kind = '{', .node = m->msg->body ? 0 : NO_NODE};
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

static const struct jscan_node *node_of(struct message_reader *r, size_t i)
{
        return &r->msg->nodes[i];
}

/* The raw text of node i (a string's without its quotes). */
static const char *node_text(struct message_reader *r, size_t i)
{
        return r->msg->body + node_of(r, i)->start;
}

/* Whether the node is null (or absent: a member that is not there reads as null where allowed). */
static bool node_is_null(struct message_reader *r, size_t i)
{
        return i == NO_NODE || node_of(r, i)->kind == JSCAN_NULL;
}

/*
 * An integer literal (a JSON number without fraction or exponent) as a sign
 * and magnitude. False for another number, or one beyond 64 bits (-2^63 ..
 * 2^64-1): json-c, which the library read bodies with, takes those for
 * doubles, and so does the reader.
 */
static bool literal_integer(const char *p, size_t len, bool *ret_negative, uint64_t *ret_magnitude)
{
        bool negative = len > 0 && *p == '-';
        uint64_t n = 0;

        for (size_t i = negative; i < len; i++) {
                uint64_t d = (uint64_t) (p[i] - '0');

                if (p[i] < '0' || p[i] > '9' || n > (UINT64_MAX - d) / 10)
                        return false;
                n = n * 10 + d;
        }
        if (negative && n > (uint64_t) INT64_MAX + 1)
                return false;
        *ret_negative = negative;
        *ret_magnitude = n;
        return true;
}

/* What node i is, as json-c types it: "int" or "double" for numbers. */
static enum json_type node_type(struct message_reader *r, size_t i)
{
        const struct jscan_node *n;
        uint64_t magnitude;
        bool negative;

        if (i == NO_NODE)
                return json_type_null;
        n = node_of(r, i);
        switch (n->kind) {
        case JSCAN_OBJECT:
                return json_type_object;
        case JSCAN_ARRAY:
                return json_type_array;
        case JSCAN_STRING:
                return json_type_string;
        case JSCAN_TRUE:
        case JSCAN_FALSE:
                return json_type_boolean;
        case JSCAN_NUMBER:
                return literal_integer(node_text(r, i), n->len, &negative, &magnitude) ? json_type_int
                                                                                      : json_type_double;
        default:
                return json_type_null;
        }
}

/* What came, for errors: the protocol's names where one fits. */
static const char *node_kind(struct message_reader *r, size_t i)
{
        switch (node_type(r, i)) {
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

static int fail_type(struct message_reader *r, char type, size_t v)
{
        return client_fail(-EBADMSG, "argument '%s': expected %s, got %s", value_path(&r->where), value_type_name(type),
                           node_kind(r, v));
}

static int fail_range(struct message_reader *r, char type, const char *range)
{
        return client_fail(-EBADMSG, "argument '%s': out of range for %s (%s)", value_path(&r->where),
                           value_type_name(type), range);
}

/* The decoded text of string node i; NULL when out of memory. */
static const char *node_string(struct message_reader *r, size_t i)
{
        return msg_body_string(r->msg, i);
}

/*
 * An integer as a sign and magnitude: a JSON integer, or a string of decimal
 * digits with an optional leading '-' (PROTOCOL.md 13.2). 0, or -ERANGE
 * beyond 64 bits, -EBADMSG when v is neither, -ENOMEM.
 */
static int node_integer(struct message_reader *r, size_t v, bool *ret_negative, uint64_t *ret_magnitude)
{
        const char *p;
        uint64_t n = 0;

        if (node_type(r, v) == json_type_int) {
                literal_integer(node_text(r, v), node_of(r, v)->len, ret_negative, ret_magnitude);
                if (*ret_magnitude == 0)
                        *ret_negative = false; /* -0 */
                return 0;
        }
        if (node_type(r, v) != json_type_string)
                return -EBADMSG;
        p = node_string(r, v);
        if (!p)
                return -ENOMEM;
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

/* Read a signed integer within [min, max]. */
static int read_signed(struct message_reader *r, char type, size_t v, int64_t min, int64_t max, int64_t *ret)
{
        uint64_t magnitude = 0;
        bool negative = false;
        int k = node_integer(r, v, &negative, &magnitude);

        if (k == -EBADMSG)
                return fail_type(r, type, v);
        if (k == -ENOMEM)
                return k;
        if (k < 0 || (negative ? magnitude > -(uint64_t) min : magnitude > (uint64_t) max))
                return fail_range(r, type, type == 'i' ? "32-bit" : "64-bit");
        *ret = negative ? (int64_t) -magnitude : (int64_t) magnitude;
        return 0;
}

static int read_unsigned(struct message_reader *r, char type, size_t v, uint64_t max, uint64_t *ret)
{
        uint64_t magnitude = 0;
        bool negative = false;
        int k = node_integer(r, v, &negative, &magnitude);

        if (k == -EBADMSG)
                return fail_type(r, type, v);
        if (k == -ENOMEM)
                return k;
        if (k < 0 || (negative && magnitude > 0) || magnitude > max)
                return fail_range(r, type, type == 'u' ? "32-bit" : "64-bit");
        *ret = magnitude;
        return 0;
}

/* A JSON number as a double, whatever the locale's decimal point. */
static int read_double(struct message_reader *r, size_t v, double *ret)
{
        const struct jscan_node *n = node_of(r, v);
        const char *point = localeconv()->decimal_point;
        _cleanup_(freep) char *text = NULL;
        uint64_t magnitude;
        bool negative;
        char *dot;

        if (literal_integer(node_text(r, v), n->len, &negative, &magnitude)) {
                *ret = negative ? -(double) magnitude : (double) magnitude;
                if (magnitude == 0)
                        *ret = 0.0; /* -0 reads as an integer 0 */
                return 0;
        }
        text = malloc(n->len + strlen(point) + 1);
        if (!text)
                return -ENOMEM;
        memcpy(text, node_text(r, v), n->len);
        text[n->len] = '\0';
        dot = strchr(text, '.');
        if (dot && strcmp(point, ".") != 0) {
                memmove(dot + strlen(point), dot + 1, strlen(dot + 1) + 1);
                memcpy(dot, point, strlen(point));
        }
        *ret = strtod(text, NULL);
        return 0;
}

/* Keep a new blob of size bytes for the reader's outputs; NULL when out of memory. */
static uint8_t *reader_blob(struct message_reader *r, size_t size)
{
        struct reader_blob *blob = malloc(sizeof(*blob) + size);

        if (!blob)
                return NULL;
        blob->next = r->blobs;
        r->blobs = blob;
        return blob->data;
}

static int key_equal(struct message_reader *r, size_t k, const char *name, size_t name_len);

/*
 * Bytes written as a reference {"$bytes":[OFFSET,LENGTH]} into the binary
 * area of a body that came in a memfd (PROTOCOL.md 14.5): a pointer into it,
 * no copy. -EBADMSG for anything else, or a reference beyond the area.
 */
static int read_bytes_ref(ipcbus_message *m, struct message_reader *r, size_t v, const void **ret, size_t *ret_size)
{
        uint64_t offset = 0, length = 0;
        bool negative = false;
        size_t key, a, o, l;
        int k;

        /* one member, "$bytes", whose value is an array of two unsigned integers */
        key = v + 1;
        if (node_of(r, v)->end != key + 4 || key_equal(r, key, "$bytes", 6) != 1)
                return fail_type(r, 'y', v);
        a = key + 1;
        o = a + 1;
        l = o + 1;
        if (node_type(r, a) != json_type_array || node_type(r, o) != json_type_int ||
            node_type(r, l) != json_type_int || node_integer(r, o, &negative, &offset) < 0 || negative ||
            node_integer(r, l, &negative, &length) < 0 || negative)
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

static int read_bytes(ipcbus_message *m, struct message_reader *r, size_t v, const void **ret, size_t *ret_size)
{
        const char *s;
        uint8_t *out;
        size_t len;

        if (node_type(r, v) == json_type_object)
                return read_bytes_ref(m, r, v, ret, ret_size);
        if (node_type(r, v) != json_type_string)
                return fail_type(r, 'y', v);
        if (node_of(r, v)->flags & JSCAN_NODE_ESCAPED) { /* "\/", as some writers put it */
                s = node_string(r, v);
                if (!s)
                        return -ENOMEM;
                len = strlen(s);
        } else { /* straight from the text: no copy before the decoding */
                s = node_text(r, v);
                len = node_of(r, v)->len;
        }
        out = reader_blob(r, len / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;
        if (value_base64_decode(s, len, out, ret_size) < 0)
                return client_fail(-EBADMSG, "argument '%s': not base64", value_path(&r->where));
        *ret = out;
        return 0;
}

static int read_fd(ipcbus_message *m, struct message_reader *r, size_t v, int *ret)
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

/* The member `name` of an object: the key node of its last (or first) occurrence, NO_NODE when absent. */
static int object_lookup(struct message_reader *r, size_t object, const char *name, bool first, size_t *ret_key);

/*
 * Write node v as JSON text, as json-c printed it for 'v' (and the library
 * did before): no white space, strings escaped again after decoding, an
 * integer literal beyond 64 bits as the double it reads as (".0" added), of
 * duplicate keys the first's place with the last's value.
 */
static void write_value(struct message_reader *r, struct jbuf *out, size_t v)
{
        const struct jscan_node *n;
        uint64_t magnitude;
        bool negative, first = true;

        if (v == NO_NODE) {
                jbuf_puts(out, "null");
                return;
        }
        n = node_of(r, v);
        switch (n->kind) {
        case JSCAN_STRING: {
                const char *s = node_string(r, v);

                if (!s)
                        out->failed = true;
                else
                        jbuf_put_string(out, s);
                return;
        }
        case JSCAN_NUMBER:
                if (literal_integer(node_text(r, v), n->len, &negative, &magnitude)) {
                        jbuf_printf(out, "%s%" PRIu64, negative && magnitude ? "-" : "", magnitude);
                        return;
                }
                jbuf_put(out, node_text(r, v), n->len);
                if (!memchr(node_text(r, v), '.', n->len) && !memchr(node_text(r, v), 'e', n->len) &&
                    !memchr(node_text(r, v), 'E', n->len))
                        jbuf_puts(out, ".0");
                return;
        case JSCAN_ARRAY:
                jbuf_putc(out, '[');
                for (size_t i = v + 1; i < n->end; i = node_of(r, i)->end) {
                        if (!first)
                                jbuf_putc(out, ',');
                        first = false;
                        write_value(r, out, i);
                }
                jbuf_putc(out, ']');
                return;
        case JSCAN_OBJECT:
                jbuf_putc(out, '{');
                for (size_t k = v + 1; k < n->end; k = node_of(r, k + 1)->end) {
                        const char *key = node_string(r, k);
                        size_t first_key = NO_NODE, last_key = NO_NODE;

                        if (!key || object_lookup(r, v, key, true, &first_key) < 0 ||
                            object_lookup(r, v, key, false, &last_key) < 0) {
                                out->failed = true;
                                return;
                        }
                        if (first_key != k)
                                continue; /* a later duplicate: written at the first's place */
                        if (!first)
                                jbuf_putc(out, ',');
                        first = false;
                        jbuf_put_string(out, key);
                        jbuf_putc(out, ':');
                        write_value(r, out, last_key + 1);
                }
                jbuf_putc(out, '}');
                return;
        default:
                jbuf_put(out, node_text(r, v), n->len);
                return;
        }
}

/* The JSON text of node v for 'v', kept by the reader. */
static int read_json(struct message_reader *r, size_t v, const char **ret)
{
        struct jbuf text;
        uint8_t *out;

        jbuf_init(&text);
        write_value(r, &text, v);
        if (text.failed) {
                jbuf_deinit(&text);
                return -ENOMEM;
        }
        out = reader_blob(r, text.len + 1);
        if (out)
                memcpy(out, text.data, text.len + 1);
        jbuf_deinit(&text);
        if (!out)
                return -ENOMEM;
        *ret = (const char *) out;
        return 0;
}

/* Whether key node k is `name` (name_len bytes). -ENOMEM when its decoding cannot be kept. */
static int key_equal(struct message_reader *r, size_t k, const char *name, size_t name_len)
{
        const struct jscan_node *n = node_of(r, k);
        const char *key;

        if (!(n->flags & JSCAN_NODE_ESCAPED))
                return n->len == name_len && memcmp(node_text(r, k), name, name_len) == 0;
        if (n->len < name_len)
                return false;
        key = node_string(r, k);
        if (!key)
                return -ENOMEM;
        return strcmp(key, name) == 0;
}

struct sorted_key {
        const char *key; /* decoded */
        size_t node;
};

static int sorted_key_compare(const void *a, const void *b)
{
        const struct sorted_key *x = a, *y = b;
        int c = strcmp(x->key, y->key);

        return c ? c : (x->node > y->node) - (x->node < y->node);
}

/* The sorted keys of a large object, made on its first lookup. NULL when out of memory. */
static struct object_keys *object_keys_get(struct message_reader *r, size_t object)
{
        struct object_keys *o;
        struct sorted_key *keys;
        size_t n = 0;

        for (o = r->objects; o; o = o->next)
                if (o->node == object)
                        return o;
        for (size_t k = object + 1; k < node_of(r, object)->end; k = node_of(r, k + 1)->end)
                n++;
        o = malloc(sizeof(*o) + n * sizeof(struct sorted_key));
        if (!o)
                return NULL;
        keys = (struct sorted_key *) (void *) o->keys;
        n = 0;
        for (size_t k = object + 1; k < node_of(r, object)->end; k = node_of(r, k + 1)->end) {
                keys[n] = (struct sorted_key){node_string(r, k), k};
                if (!keys[n++].key) {
                        free(o);
                        return NULL;
                }
        }
        qsort(keys, n, sizeof(*keys), sorted_key_compare);
        o->node = object;
        o->n = n;
        o->next = r->objects;
        r->objects = o;
        return o;
}

static int object_lookup(struct message_reader *r, size_t object, const char *name, bool first, size_t *ret_key)
{
        const struct jscan_node *n;
        struct object_keys *o;
        const struct sorted_key *keys;
        size_t name_len = strlen(name), count = 0, found = NO_NODE, lo = 0, hi;

        *ret_key = NO_NODE;
        if (object == NO_NODE)
                return 0;
        n = node_of(r, object);
        for (size_t k = object + 1; k < n->end && count <= OBJECT_SCAN_MAX; k = node_of(r, k + 1)->end)
                count++;
        if (count <= OBJECT_SCAN_MAX) {
                for (size_t k = object + 1; k < n->end; k = node_of(r, k + 1)->end) {
                        int e = key_equal(r, k, name, name_len);

                        if (e < 0)
                                return e;
                        if (e && (found = k, first))
                                break;
                }
                *ret_key = found;
                return 0;
        }
        o = object_keys_get(r, object);
        if (!o)
                return -ENOMEM;
        keys = (const struct sorted_key *) (const void *) o->keys;
        hi = o->n;
        /* the first key >= name (first), or > name (last: the one before it) */
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(keys[mid].key, name);

                if (c < 0 || (!first && c == 0))
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (first && lo < o->n && strcmp(keys[lo].key, name) == 0)
                *ret_key = keys[lo].node;
        else if (!first && lo > 0 && strcmp(keys[lo - 1].key, name) == 0)
                *ret_key = keys[lo - 1].node;
        return 0;
}

/* Read v (present, not null unless 'v') as a letter type, storing to the next output of ap. */
static int read_scalar(ipcbus_message *m, struct message_reader *r, char type, size_t v, va_list *ap)
{
        enum json_type t = node_type(r, v);
        int64_t s = 0;
        uint64_t u = 0;
        int k;

        switch (type) {
        case 'b':
                if (t != json_type_boolean)
                        return fail_type(r, type, v);
                *va_arg(*ap, bool *) = node_of(r, v)->kind == JSCAN_TRUE;
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
                if (t != json_type_double && t != json_type_int)
                        return fail_type(r, type, v);
                return read_double(r, v, va_arg(*ap, double *));
        case 's': {
                const char *text;

                if (t != json_type_string)
                        return fail_type(r, type, v);
                text = node_string(r, v);
                if (!text)
                        return -ENOMEM;
                *va_arg(*ap, const char **) = text;
                return 0;
        }
        case 'y': {
                const void **p = va_arg(*ap, const void **);

                return read_bytes(m, r, v, p, va_arg(*ap, size_t *));
        }
        case 'h':
                return read_fd(m, r, v, va_arg(*ap, int *));
        case 'v':
                return read_json(r, v, va_arg(*ap, const char **));
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
static int read_value(ipcbus_message *m, struct message_reader *r, struct fmt *f, const struct fmt_item *it, size_t v,
                      bool present, va_list *ap)
{
        bool null = node_is_null(r, v);
        int k;

        if (!present || (null && it->type != 'v') || (null && it->optional)) {
                if (it->optional)
                        return skip_item(m, r, f, it, ap);
                if (!present)
                        return client_fail(-EBADMSG, "argument '%s': missing (expected %s)", value_path(&r->where),
                                           value_type_name(it->type));
                return fail_type(r, it->type, v);
        }
        if (it->type != '{')
                return read_scalar(m, r, it->type, v, ap);
        if (node_type(r, v) != json_type_object)
                return fail_type(r, it->type, v);
        if (r->depth >= sizeof(r->stack) / sizeof(r->stack[0]))
                return client_fail(-EINVAL, "format '%s': nested too deep", f->format);
        r->stack[r->depth++] = (struct rframe){.kind = '{', .node = v};
        k = read_items(m, r, f, '}', ap, false);
        r->depth--;
        if (k < 0)
                return k;
        f->p++;
        return 0;
}

/*
 * The value `name` names in the current frame: a member of an object (name
 * needed), the next element of an array (-ENODATA at its end), the single
 * value. *ret is the value's node (NO_NODE when absent), *ret_present whether
 * it is there. Returns 0, -ENODATA or -ENOMEM.
 */
static int frame_value(struct message_reader *r, const char *name, size_t *ret, bool *ret_present,
                       size_t *ret_path_len)
{
        struct rframe *top = reader_top(r);
        size_t key;
        int k;

        *ret_path_len = r->where.len;
        switch (top->kind) {
        case '{':
                k = object_lookup(r, top->node, name, false, &key);
                if (k < 0)
                        return k;
                *ret = key == NO_NODE ? NO_NODE : key + 1;
                *ret_present = key != NO_NODE;
                value_path_push(&r->where, name, 0);
                return 0;
        case '[':
                if (top->next >= node_of(r, top->node)->end)
                        return -ENODATA;
                *ret = top->next;
                *ret_present = true;
                top->next = node_of(r, top->next)->end;
                value_path_push(&r->where, NULL, top->index++);
                return 0;
        default:
                *ret = top->node;
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
                size_t v = NO_NODE;
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
                k = frame_value(r, it.name, &v, &present, &path_len);
                if (k == -ENODATA && first)
                        return 0;
                if (k == -ENODATA)
                        return client_fail(-EBADMSG, "argument '%s': the array ended (expected %s)",
                                           value_path(&r->where), value_type_name(it.type));
                if (k < 0)
                        return k;
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
        struct rframe top;
        unsigned depth;
        size_t where_len;
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
        top = *reader_top(r);
        va_copy(aq, ap);
        k = read_items(m, r, &f, '\0', &aq, false);
        va_end(aq);
        if (k < 0) {
                r->depth = depth;
                value_path_pop(&r->where, where_len);
                *reader_top(r) = top;
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
        struct rframe top;
        size_t v = NO_NODE, path_len;
        bool present = false;
        enum json_type t;
        int k;

        k = reader_get(m, &r);
        if (k < 0)
                return k;
        if ((reader_top(r)->kind == '{') != !!name)
                return client_fail(-EINVAL, "name: %s", name ? "given outside an object" : "needed inside an object");
        top = *reader_top(r);
        k = frame_value(r, name, &v, &present, &path_len);
        if (k == -ENODATA)
                return 0;
        if (k < 0)
                return k;
        t = node_type(r, v);
        if (!present || t == json_type_null)
                k = client_fail(-ENXIO, "argument '%s': missing", value_path(&r->where));
        else if (t != json_type_object && t != json_type_array)
                k = client_fail(-EBADMSG, "argument '%s': expected array or object, got %s", value_path(&r->where),
                                node_kind(r, v));
        else
                k = reader_push(r, (struct rframe){.kind = t == json_type_array ? '[' : '{',
                                                   .node = v,
                                                   .next = v + 1,
                                                   .path_len = path_len});
        if (k < 0) {
                value_path_pop(&r->where, path_len);
                *reader_top(r) = top;
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
        value_path_pop(&r->where, 0);
        return 0;
}

int message_enter_value(ipcbus_message *m, const char *name)
{
        struct message_reader *r = NULL;
        size_t key, path_len;
        int k;

        k = reader_get(m, &r);
        if (k < 0)
                return k;
        if (!name || reader_top(r)->kind != '{')
                return client_fail(-EINVAL, "value: a member of an object is needed");
        k = object_lookup(r, reader_top(r)->node, name, false, &key);
        if (k < 0)
                return k;
        path_len = value_path_push(&r->where, name, 0);
        k = reader_push(r, (struct rframe){.kind = '=',
                                           .node = key == NO_NODE ? NO_NODE : key + 1,
                                           .present = key != NO_NODE,
                                           .path_len = path_len});
        if (k < 0)
                value_path_pop(&r->where, path_len);
        return k;
}

/* The body as a json-c tree: parsed on first use (the typed reads do not need it) and kept. */
_public_ int ipcbus_message_get_json(ipcbus_message *m, struct json_object **ret)
{
        struct message_reader *r = NULL;
        int k;

        if (!ret)
                return client_fail(-EINVAL, "ret: NULL");
        k = reader_get(m, &r);
        if (k < 0)
                return k;
        if (!r->tree && m->msg->body) {
                k = value_json_parse(m->msg->body, m->msg->body_len, true, &r->tree);
                if (k == -ENOMEM)
                        return k;
                if (k < 0)
                        return client_fail(-EBADMSG, "body: not a JSON object");
        } else if (!r->tree && !(r->tree = json_object_new_object()))
                return -ENOMEM;
        *ret = json_object_get(r->tree);
        return 0;
}
