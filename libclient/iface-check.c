/* SPDX-License-Identifier: MIT */
/*
 * Checking JSON values against the types of interface descriptions
 * (PROTOCOL.md 13.3): a body against a method's or signal's arguments, one
 * value against a type, with a sentence naming the field that does not fit.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "libclient/bus-internal.h"
#include "libclient/iface.h"
#include "libclient/memfd.h"
#include "protocol/jbuf.h"

/* ---- checking values ------------------------------------------------------------- */

struct check {
        bool strict;
        unsigned n_fds;
        int64_t binary_len; /* IFACE_NO_BINARY: no $bytes references */
        char *err;
        size_t err_size;
        struct json_path path;
};

/* "argument 'notes[2].id': " + the sentence into c->err. Returns -EBADMSG. */
static int check_fail(struct check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int check_fail(struct check *c, const char *fmt, ...)
{
        va_list ap;
        int n;

        if (!c->err || c->err_size == 0)
                return -EBADMSG;
        n = snprintf(c->err, c->err_size, "argument '%s': ", c->path.s);
        if (n >= 0 && (size_t) n < c->err_size) {
                va_start(ap, fmt);
                vsnprintf(c->err + n, c->err_size - (size_t) n, fmt, ap);
                va_end(ap);
        }
        return -EBADMSG;
}

/* What came, for "got ...": the JSON kind of v. */
static const char *json_kind(struct json_object *v)
{
        switch (json_object_get_type(v)) {
        case json_type_null:
                return "null";
        case json_type_boolean:
                return "boolean";
        case json_type_int:
                return "integer";
        case json_type_double:
                return "number";
        case json_type_string:
                return "string";
        case json_type_array:
                return "array";
        case json_type_object:
                return "object";
        }
        return "?";
}

/* "expected T, got K" or "missing (expected T)" (v_missing). */
static int check_fail_type(struct check *c, const struct iface_type *t, struct json_object *v, bool missing)
{
        struct jbuf b;
        int r;

        jbuf_init(&b);
        iface_type_format(t, &b);
        if (missing)
                r = check_fail(c, "missing (expected %s)", b.failed ? "?" : b.data);
        else
                r = check_fail(c, "expected %s, got %s", b.failed ? "?" : b.data, json_kind(v));
        jbuf_deinit(&b);
        return r;
}

/* A decimal integer string: "-"? digits. 0, -EINVAL when it is not one, -ERANGE beyond 64 bits. */
static int decimal_parse(const char *s, bool *ret_negative, uint64_t *ret_magnitude)
{
        bool negative = *s == '-';
        uint64_t m = 0;

        s += negative;
        if (!*s)
                return -EINVAL;
        for (; *s; s++) {
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                if (m > (UINT64_MAX - (uint64_t) (*s - '0')) / 10)
                        return -ERANGE;
                m = m * 10 + (uint64_t) (*s - '0');
        }
        *ret_negative = negative;
        *ret_magnitude = m;
        return 0;
}

/* int and uint: a JSON integer or a decimal string, within 64 bits of the type's sign. */
static int check_integer(struct check *c, const struct iface_type *t, struct json_object *v)
{
        bool negative = false;
        uint64_t m = 0;
        int r = 0;

        if (json_object_is_type(v, json_type_int)) {
                int64_t i = json_object_get_int64(v);

                negative = i < 0;
                m = negative ? (uint64_t) 0 - (uint64_t) i : json_object_get_uint64(v);
        } else if (json_object_is_type(v, json_type_string)) {
                r = decimal_parse(json_object_get_string(v), &negative, &m);
                if (r == -EINVAL)
                        return check_fail(c, "expected %s, got string (not a decimal integer)",
                                          iface_scalar_names[t->kind]);
        } else {
                return check_fail_type(c, t, v, false);
        }
        if (r == -ERANGE || (t->kind == IFACE_UINT && negative && m > 0) ||
            (t->kind == IFACE_INT && m > (negative ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX)))
                return check_fail(c, "out of range for %s", iface_scalar_names[t->kind]);
        return 0;
}

/* RFC 4648 base64, standard alphabet, padded. */
static bool is_base64(const char *s, size_t len)
{
        size_t pad = 0;

        if (len % 4 != 0)
                return false;
        if (len > 0 && s[len - 1] == '=')
                pad = len > 1 && s[len - 2] == '=' ? 2 : 1;
        for (size_t i = 0; i < len - pad; i++)
                if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
                      s[i] == '+' || s[i] == '/'))
                        return false;
        return true;
}

static int check_type(struct check *c, const struct iface_type *t, struct json_object *v);

/* bytes written as a reference {"$bytes":[OFFSET,LENGTH]} into a memfd body's binary area (PROTOCOL.md 14.5). */
static int check_bytes_ref(struct check *c, struct json_object *v)
{
        uint64_t offset, length;

        if (memfd_bytes_parse(v, &offset, &length) < 0)
                return check_fail(c, "expected bytes, got object (not {\"$bytes\":[offset,length]})");
        if (c->binary_len == IFACE_NO_BINARY)
                return check_fail(c, "expected bytes, got a $bytes reference in a body that came in its frame");
        if (offset > (uint64_t) c->binary_len || length > (uint64_t) c->binary_len - offset)
                return check_fail(c, "bytes %" PRIu64 "+%" PRIu64 " beyond the binary area (%" PRId64 " bytes)", offset,
                                  length, c->binary_len);
        return 0;
}

/* The named fields of a struct (or the arguments of a body) in the object obj (NULL: {}). */
static int check_fields(struct check *c, const struct iface_field *fields, size_t n, struct json_object *obj)
{
        int r = 0;

        for (size_t i = 0; i < n && r == 0; i++) {
                struct json_object *v = NULL;
                size_t old = iface_path_push(&c->path, fields[i].name);

                if (obj && json_object_object_get_ex(obj, fields[i].name, &v))
                        r = check_type(c, fields[i].type, v);
                else if (fields[i].type->kind != IFACE_OPTIONAL)
                        r = check_fail_type(c, fields[i].type, NULL, true);
                iface_path_pop(&c->path, old);
        }
        if (r < 0 || !c->strict || !obj)
                return r;
        json_object_object_foreach(obj, key, unused)
        {
                size_t i = 0, old;

                (void) unused;
                while (i < n && strcmp(fields[i].name, key) != 0)
                        i++;
                if (i < n)
                        continue;
                old = iface_path_push(&c->path, key);
                r = check_fail(c, "not in the description");
                iface_path_pop(&c->path, old);
                return r;
        }
        return 0;
}

/* The elements of an array, or the values of a map. */
static int check_elements(struct check *c, const struct iface_type *t, struct json_object *v)
{
        int r = 0;

        if (t->kind == IFACE_ARRAY) {
                size_t n = json_object_array_length(v);

                for (size_t i = 0; i < n && r == 0; i++) {
                        size_t old = iface_path_pushf(&c->path, "[%zu]", i);

                        r = check_type(c, t->elem, json_object_array_get_idx(v, i));
                        iface_path_pop(&c->path, old);
                }
                return r;
        }
        json_object_object_foreach(v, key, member)
        {
                size_t old = iface_path_push(&c->path, key);

                r = check_type(c, t->elem, member);
                iface_path_pop(&c->path, old);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int check_type(struct check *c, const struct iface_type *t, struct json_object *v)
{
        enum json_type jt = json_object_get_type(v);

        switch (t->kind) {
        case IFACE_BOOL:
                return jt == json_type_boolean ? 0 : check_fail_type(c, t, v, false);
        case IFACE_INT:
        case IFACE_UINT:
                return check_integer(c, t, v);
        case IFACE_DOUBLE:
                return jt == json_type_double || jt == json_type_int ? 0 : check_fail_type(c, t, v, false);
        case IFACE_STRING:
                return jt == json_type_string ? 0 : check_fail_type(c, t, v, false);
        case IFACE_BYTES:
                if (jt == json_type_object)
                        return check_bytes_ref(c, v);
                if (jt != json_type_string)
                        return check_fail_type(c, t, v, false);
                if (!is_base64(json_object_get_string(v), (size_t) json_object_get_string_len(v)))
                        return check_fail(c, "expected bytes, got string (not base64)");
                return 0;
        case IFACE_FD:
                if (jt != json_type_int)
                        return check_fail_type(c, t, v, false);
                if (json_object_get_int64(v) < 0 || json_object_get_int64(v) >= (int64_t) c->n_fds)
                        return check_fail(c, "descriptor index %" PRId64 " is out of range (the message carries %u)",
                                          json_object_get_int64(v), c->n_fds);
                return 0;
        case IFACE_ANY:
                return 0;
        case IFACE_OPTIONAL:
                return jt == json_type_null ? 0 : check_type(c, t->elem, v);
        case IFACE_ARRAY:
                return jt == json_type_array ? check_elements(c, t, v) : check_fail_type(c, t, v, false);
        case IFACE_MAP:
                return jt == json_type_object ? check_elements(c, t, v) : check_fail_type(c, t, v, false);
        case IFACE_STRUCT:
                return jt == json_type_object ? check_fields(c, t->fields, t->n_fields, v)
                                              : check_fail_type(c, t, v, false);
        }
        return check_fail(c, "unknown type");
}

int iface_check_value(const struct iface_type *t, struct json_object *v, const char *where, bool strict, unsigned n_fds,
                      char *err, size_t err_size)
{
        const struct iface_refs refs = {.n_fds = n_fds, .binary_len = IFACE_NO_BINARY};

        return iface_check_value_refs(t, v, where, strict, &refs, err, err_size);
}

/* A check of one value or body against refs, its sentence going to err. */
static struct check check_start(bool strict, const struct iface_refs *refs, char *err, size_t err_size)
{
        return (struct check){
                .strict = strict,
                .n_fds = refs->n_fds,
                .binary_len = refs->binary_len,
                .err = err,
                .err_size = err_size,
        };
}

int iface_check_value_refs(const struct iface_type *t, struct json_object *v, const char *where, bool strict,
                           const struct iface_refs *refs, char *err, size_t err_size)
{
        struct check c = check_start(strict, refs, err, err_size);

        iface_path_pushf(&c.path, "%s", where ? where : "value");
        return check_type(&c, t, v);
}

int iface_check_args(const struct iface_args *args, struct json_object *body, bool strict, unsigned n_fds, char *err,
                     size_t err_size)
{
        const struct iface_refs refs = {.n_fds = n_fds, .binary_len = IFACE_NO_BINARY};

        return iface_check_args_refs(args, body, strict, &refs, err, err_size);
}

int iface_check_args_refs(const struct iface_args *args, struct json_object *body, bool strict,
                          const struct iface_refs *refs, char *err, size_t err_size)
{
        struct check c = check_start(strict, refs, err, err_size);

        if (body && !json_object_is_type(body, json_type_object)) {
                if (err && err_size > 0)
                        snprintf(err, err_size, "the body is not a JSON object but %s", json_kind(body));
                return -EBADMSG;
        }
        return check_fields(&c, args->fields, args->n, body);
}

/* What `type` and `member` name in iface: a method's arguments or results, a signal's arguments. */
static int interface_check_args(const ipcbus_interface *iface, ipcbus_message_type type, const char *member,
                                const struct iface_args **ret)
{
        const struct iface_method *m;
        const struct iface_signal *s;

        switch (type) {
        case IPCBUS_MESSAGE_CALL:
        case IPCBUS_MESSAGE_RETURN:
                m = iface_find_method(iface, member);
                if (!m)
                        return client_fail(-ENOENT, "interface %s has no method '%.255s'", iface->name, member);
                *ret = m->unchecked ? NULL : type == IPCBUS_MESSAGE_CALL ? &m->in : &m->out;
                return 0;
        case IPCBUS_MESSAGE_SIGNAL:
                s = iface_find_signal(iface, member);
                if (!s)
                        return client_fail(-ENOENT, "interface %s has no signal '%.255s'", iface->name, member);
                *ret = &s->args;
                return 0;
        default:
                return client_fail(-EINVAL, "type: only calls, returns and signals are described");
        }
}

_public_ int ipcbus_interface_check(const ipcbus_interface *iface, ipcbus_message_type type, const char *member,
                                    const char *body, ipcbus_error *ret_error)
{
        const struct iface_args *args = NULL;
        struct json_object *root = NULL;
        char err[1024];
        int r;

        if (!iface || !member)
                return client_fail(-EINVAL, "ipcbus_interface_check: %s is NULL", iface ? "member" : "iface");
        r = interface_check_args(iface, type, member, &args);
        if (r < 0)
                return r;
        if (!args)
                return 0; /* an unchecked method */
        if (body && *body) {
                r = value_json_parse(body, strlen(body), false, &root);
                if (r < 0)
                        return r;
        }
        /* What fits is what a receiver accepts (PROTOCOL.md 13.3); fd indexes within what a frame can carry. */
        r = iface_check_args(args, root, false, IPCBUS_FDS_MAX, err, sizeof(err));
        json_object_put(root);
        if (r < 0) {
                if (ret_error)
                        (void) ipcbus_error_set(ret_error, IPCBUS_ERROR_INVALID_ARGS, err);
                return client_fail(r, "%s", err);
        }
        return 0;
}
