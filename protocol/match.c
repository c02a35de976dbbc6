/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/ipcbus/wire.h"
#include "protocol/jbuf.h"
#include "protocol/jscan.h"
#include "protocol/match.h"
#include "protocol/names.h"
#include "protocol/proto-error.h"
#include "util/util.h"

void match_rule_init(struct match_rule *r)
{
        *r = (struct match_rule){0};
}

void match_rule_deinit(struct match_rule *r)
{
        free(r->sender);
        free(r->interface);
        free(r->member);
        free(r->path);
        free(r->path_namespace);
        free(r->destination);
        for (size_t i = 0; i < r->n_args; i++) {
                free(r->args[i].key);
                free(r->args[i].value);
        }
        free(r->args);
        match_rule_init(r);
}

/* How much of a value a refusal quotes: MATCH_QUOTE_MAX bytes at most, whole UTF-8 characters. */
#define MATCH_QUOTE_MAX 64

static int quote_len(const char *s)
{
        size_t len = strlen(s), n = len < MATCH_QUOTE_MAX ? len : MATCH_QUOTE_MAX;

        if (n < len)
                while (n > 0 && ((unsigned char) s[n] & 0xc0) == 0x80)
                        n--;
        return (int) n;
}

/* Say in err (if any) why the rule is refused; returns PROTO_E_BAD_MATCH. */
__attribute__((format(printf, 2, 3))) static int refuse(struct match_error *err, const char *fmt, ...)
{
        va_list ap;

        if (err) {
                va_start(ap, fmt);
                (void) vsnprintf(err->text, sizeof(err->text), fmt, ap);
                va_end(ap);
        }
        return PROTO_E_BAD_MATCH;
}

/* The two forms name argument keys differently: "arg.NAME" in the string form, "args" in JSON. */
struct rule_form {
        const char *arg_prefix; /* how a refusal names argument key k: prefix k */
        const char *arg_keys;   /* how the key list names them */
        const char *arg_syntax; /* how one is written */
        struct match_error *err;
};

/* Set one string-valued key of a rule (not "args"); takes ownership of value. */
static int rule_set(struct match_rule *r, const char *key, char *value, const struct rule_form *f)
{
        static const struct {
                const char *key;
                size_t offset;
                bool (*valid)(const char *);
                const char *what;
        } keys[] = {
                {"sender", offsetof(struct match_rule, sender), names_is_bus_name, "bus name"},
                {"interface", offsetof(struct match_rule, interface), names_is_interface, "interface name"},
                {"member", offsetof(struct match_rule, member), names_is_member, "member name"},
                {"path", offsetof(struct match_rule, path), names_is_path, "object path"},
                {"path_namespace", offsetof(struct match_rule, path_namespace), names_is_path, "object path"},
                {"destination", offsetof(struct match_rule, destination), names_is_bus_name, "bus name"},
        };
        _cleanup_(freep) char *v = value;
        char **slot;
        size_t i;

        if (strcmp(key, "type") == 0) {
                enum msg_type t = msg_type_from_string(v);

                if (r->type != MSG_TYPE_INVALID)
                        return refuse(f->err, "a key given twice: 'type'");
                if (t == MSG_TYPE_INVALID)
                        return refuse(f->err, "type: '%.*s' is not a message type (call, return, error, signal)",
                                      quote_len(v), v);
                r->type = t;
                return 0;
        }
        for (i = 0; i < ELEMENTSOF(keys) && strcmp(key, keys[i].key) != 0; i++)
                ;
        if (i == ELEMENTSOF(keys))
                return refuse(f->err,
                              "unknown key '%.*s' (keys: type, sender, interface, member, path, path_namespace, "
                              "destination, %s)",
                              quote_len(key), key, f->arg_keys);
        slot = (char **) ((char *) r + keys[i].offset);
        if (*slot)
                return refuse(f->err, "a key given twice: '%s'", key);
        if (!keys[i].valid(v))
                return refuse(f->err, "%s: '%.*s' is not a valid %s", key, quote_len(v), v, keys[i].what);
        if ((slot == &r->path && r->path_namespace) || (slot == &r->path_namespace && r->path))
                return refuse(f->err, "path and path_namespace exclude each other: give one");
        *slot = steal_pointer(&v);
        return 0;
}

static int arg_compare(const void *a, const void *b)
{
        return strcmp(((const struct match_arg *) a)->key, ((const struct match_arg *) b)->key);
}

/* Add an argument match (takes ownership of both strings). */
static int rule_add_arg(struct match_rule *r, char *key, char *value, const struct rule_form *f)
{
        _cleanup_(freep) char *k = key, *v = value;
        struct match_arg *args;

        if (!*k)
                return refuse(f->err, "an empty argument key (expected %s)", f->arg_syntax);
        for (size_t i = 0; i < r->n_args; i++)
                if (strcmp(r->args[i].key, k) == 0)
                        return refuse(f->err, "a key given twice: '%s%.*s'", f->arg_prefix, quote_len(k), k);
        if (r->n_args >= MATCH_ARGS_MAX)
                return refuse(f->err, "%s%.*s: too many argument keys (at most %d)", f->arg_prefix, quote_len(k), k,
                              MATCH_ARGS_MAX);
        args = realloc(r->args, (r->n_args + 1) * sizeof(*args));
        if (!args)
                return -ENOMEM;
        r->args = args;
        r->args[r->n_args++] = (struct match_arg){steal_pointer(&k), steal_pointer(&v)};
        qsort(r->args, r->n_args, sizeof(*r->args), arg_compare);
        return 0;
}

static char *decode_dup(const char *raw, size_t len)
{
        char *s = malloc(len + 1);

        if (s)
                jscan_string_decode(raw, len, s);
        return s;
}

/* The "args" object of the JSON form, m its member. */
static int rule_parse_json_args(struct match_rule *r, const struct jscan_member *m, const struct rule_form *f)
{
        struct jscan_iter it;
        struct jscan_member am;
        int e;

        if (m->kind != JSCAN_OBJECT)
                return refuse(f->err, "args: must be an object of strings (expected %s)", f->arg_syntax);
        jscan_object_begin(&it, m->value, m->value_len);
        while (jscan_object_next(&it, &am) > 0) {
                char *k = decode_dup(am.key, am.key_len), *v;

                if (!k)
                        return -ENOMEM;
                if (am.kind != JSCAN_STRING) {
                        e = refuse(f->err, "args.%.*s: must be a string", quote_len(k), k);
                        free(k);
                        return e;
                }
                v = decode_dup(am.value, am.value_len);
                if (!v) {
                        free(k);
                        return -ENOMEM;
                }
                e = rule_add_arg(r, k, v, f);
                if (e)
                        return e;
        }
        return 0;
}

int match_rule_parse_json_err(struct match_rule *r, const char *json, size_t len, struct match_error *err)
{
        const struct rule_form f = {"args.", "args", "args {\"NAME\":\"VALUE\"}", err};
        struct jscan_iter it;
        struct jscan_member m;
        enum jscan_kind kind;
        bool seen_args = false;
        int e = 0;

        match_rule_init(r);
        if (jscan_validate(json, len, 3, &kind) != 0 || kind != JSCAN_OBJECT)
                return refuse(err, "a match rule is a JSON object of strings (PROTOCOL.md, \"Match rules\")");
        jscan_object_begin(&it, json, len);
        while (e == 0 && jscan_object_next(&it, &m) > 0) {
                _cleanup_(freep) char *key = decode_dup(m.key, m.key_len);

                if (!key)
                        e = -ENOMEM;
                else if (strcmp(key, "args") == 0) {
                        e = seen_args ? refuse(err, "a key given twice: 'args'") : rule_parse_json_args(r, &m, &f);
                        seen_args = true;
                } else if (m.kind != JSCAN_STRING)
                        e = refuse(err, "%.*s: must be a string", quote_len(key), key);
                else {
                        char *v = decode_dup(m.value, m.value_len);
                        e = v ? rule_set(r, key, v, &f) : -ENOMEM;
                }
        }
        if (e)
                match_rule_deinit(r);
        return e;
}

int match_rule_parse_json(struct match_rule *r, const char *json, size_t len)
{
        return match_rule_parse_json_err(r, json, len, NULL);
}

/*
 * One KEY=VALUE of the string form at *p (VALUE plain up to the next comma,
 * or 'quoted'): set it in r and move *p past it and its comma.
 */
static int rule_parse_pair(struct match_rule *r, const char **p, const struct rule_form *f)
{
        const char *eq = strchr(*p, '='), *v, *vend, *next;
        char *key, *value;
        int e;

        if (!eq) {
                int n = quote_len(*p), upto_comma = (int) (strchrnul(*p, ',') - *p);

                return refuse(f->err, "'%.*s': not KEY=VALUE", n < upto_comma ? n : upto_comma, *p);
        }
        v = eq + 1;
        if (*v == '\'') {
                v++;
                vend = strchr(v, '\'');
                if (!vend)
                        return refuse(f->err, "%.*s: unterminated quote (a quoted value ends with ')", (int) (eq - *p),
                                      *p);
                next = vend + 1;
                if (*next && *next != ',')
                        return refuse(f->err, "%.*s: text after the closing quote (expected ',' or the end)",
                                      (int) (eq - *p), *p);
        } else {
                vend = strchrnul(v, ',');
                next = vend;
        }
        key = strndup(*p, (size_t) (eq - *p));
        value = strndup(v, (size_t) (vend - v));
        *p = *next ? next + 1 : next;
        if (!key || !value) {
                free(key);
                free(value);
                return -ENOMEM;
        }
        if (strncmp(key, "arg.", 4) == 0) {
                memmove(key, key + 4, strlen(key + 4) + 1);
                return rule_add_arg(r, key, value, f);
        }
        e = rule_set(r, key, value, f);
        free(key);
        return e;
}

int match_rule_parse_string_err(struct match_rule *r, const char *s, struct match_error *err)
{
        const struct rule_form f = {"arg.", "arg.NAME", "arg.NAME=VALUE", err};
        const char *p = s;
        int e = 0;

        match_rule_init(r);
        /* Keys and values become JSON strings: they must be UTF-8 as the JSON form's are. */
        if (!jscan_utf8_valid(s, strlen(s)))
                return refuse(err, "not valid UTF-8 (keys and values become JSON strings)");
        while (e == 0 && *p)
                e = rule_parse_pair(r, &p, &f);
        if (e)
                match_rule_deinit(r);
        return e;
}

int match_rule_parse_string(struct match_rule *r, const char *s)
{
        return match_rule_parse_string_err(r, s, NULL);
}

static void put_key(struct jbuf *b, bool *first, const char *key, const char *value)
{
        if (!value)
                return;
        if (!*first)
                jbuf_putc(b, ',');
        jbuf_put_string(b, key);
        jbuf_putc(b, ':');
        jbuf_put_string(b, value);
        *first = false;
}

int match_rule_to_json(const struct match_rule *r, char **ret)
{
        struct jbuf b;
        bool first = true;
        char *s;

        jbuf_init(&b);
        jbuf_putc(&b, '{');
        put_key(&b, &first, "type", msg_type_to_string(r->type));
        put_key(&b, &first, "sender", r->sender);
        put_key(&b, &first, "interface", r->interface);
        put_key(&b, &first, "member", r->member);
        put_key(&b, &first, "path", r->path);
        put_key(&b, &first, "path_namespace", r->path_namespace);
        put_key(&b, &first, "destination", r->destination);
        if (r->n_args) {
                bool afirst = true;
                jbuf_puts(&b, first ? "\"args\":{" : ",\"args\":{");
                for (size_t i = 0; i < r->n_args; i++)
                        put_key(&b, &afirst, r->args[i].key, r->args[i].value);
                jbuf_putc(&b, '}');
        }
        jbuf_putc(&b, '}');
        s = jbuf_steal(&b, NULL);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static bool str_equal(const char *a, const char *b)
{
        return a == b || (a && b && strcmp(a, b) == 0);
}

bool match_rule_equal(const struct match_rule *a, const struct match_rule *b)
{
        if (a->type != b->type || !str_equal(a->sender, b->sender) || !str_equal(a->interface, b->interface) ||
            !str_equal(a->member, b->member) || !str_equal(a->path, b->path) ||
            !str_equal(a->path_namespace, b->path_namespace) || !str_equal(a->destination, b->destination) ||
            a->n_args != b->n_args)
                return false;
        for (size_t i = 0; i < a->n_args; i++)
                if (strcmp(a->args[i].key, b->args[i].key) != 0 || strcmp(a->args[i].value, b->args[i].value) != 0)
                        return false;
        return true;
}

/* A rule key that is set must equal the header field, which must be present. */
static bool key_matches(const char *rule, const char *field)
{
        return !rule || (field && strcmp(rule, field) == 0);
}

static int match_arg_ptr_compare(const void *a, const void *b)
{
        const struct msg_arg *x = *(const struct msg_arg *const *) a, *y = *(const struct msg_arg *const *) b;
        int c = strcmp(x->key, y->key);

        /* equal keys keep their body order: they sit in one array */
        return c ? c : (x > y) - (x < y);
}

int match_args_init(struct match_args *a, struct msg *m)
{
        const struct msg_arg *args;
        size_t n, out = 0;

        *a = (struct match_args){0};
        if (msg_get_args(m, &args, &n) < 0)
                return -ENOMEM;
        if (n == 0)
                return 0;
        a->by_key = malloc(n * sizeof(*a->by_key));
        if (!a->by_key)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                a->by_key[i] = &args[i];
        qsort(a->by_key, n, sizeof(*a->by_key), match_arg_ptr_compare);
        /* of equal keys keep the last, as msg_get_arg does */
        for (size_t i = 0; i < n; i++) {
                if (out > 0 && strcmp(a->by_key[out - 1]->key, a->by_key[i]->key) == 0)
                        out--;
                a->by_key[out++] = a->by_key[i];
        }
        a->n = out;
        return 0;
}

void match_args_deinit(struct match_args *a)
{
        free(a->by_key);
        *a = (struct match_args){0};
}

const char *match_args_get(const struct match_args *a, const char *key)
{
        size_t lo = 0, hi = a->n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(key, a->by_key[mid]->key);

                if (c == 0)
                        return a->by_key[mid]->value;
                if (c < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return NULL;
}

bool match_rule_matches_args(const struct match_rule *r, struct msg *m, match_owner_fn owns, void *userdata,
                             const struct match_args *args)
{
        const struct msg_header *h = &m->h;

        if (r->type != MSG_TYPE_INVALID && r->type != h->type)
                return false;
        if (!key_matches(r->interface, h->interface) || !key_matches(r->member, h->member) ||
            !key_matches(r->path, h->path) || !key_matches(r->destination, h->destination))
                return false;
        if (r->path_namespace && (!h->path || !names_path_in_namespace(h->path, r->path_namespace)))
                return false;
        if (r->sender) {
                if (!h->sender)
                        return false;
                if (strcmp(r->sender, h->sender) != 0) {
                        if (r->sender[0] == ':')
                                return false;
                        if (owns && !owns(r->sender, h->sender, userdata))
                                return false;
                }
        }
        /* a body in a memfd is not read here: args never match it (PROTOCOL.md 14), in the broker or a client */
        if (r->n_args > 0 && h->body_size)
                return false;
        for (size_t i = 0; i < r->n_args; i++) {
                const char *v = args ? match_args_get(args, r->args[i].key) : msg_get_arg(m, r->args[i].key);
                if (!v || strcmp(v, r->args[i].value) != 0)
                        return false;
        }
        return true;
}

bool match_rule_matches(const struct match_rule *r, struct msg *m, match_owner_fn owns, void *userdata)
{
        return match_rule_matches_args(r, m, owns, userdata, NULL);
}
