/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/ipcbus/wire.h"
#include "protocol/jbuf.h"
#include "protocol/jscan.h"
#include "protocol/match.h"
#include "protocol/names.h"
#include "protocol/proto-error.h"

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

/* Set one string-valued key of a rule (not "args"); takes ownership of value. */
static int rule_set(struct match_rule *r, const char *key, char *value)
{
        char **slot = NULL;
        bool ok = false;

        if (strcmp(key, "type") == 0) {
                enum msg_type t = msg_type_from_string(value);
                free(value);
                if (t == MSG_TYPE_INVALID || r->type != MSG_TYPE_INVALID)
                        return PROTO_E_BAD_MATCH;
                r->type = t;
                return 0;
        }
        if (strcmp(key, "sender") == 0) {
                slot = &r->sender;
                ok = names_is_bus_name(value);
        } else if (strcmp(key, "interface") == 0) {
                slot = &r->interface;
                ok = names_is_interface(value);
        } else if (strcmp(key, "member") == 0) {
                slot = &r->member;
                ok = names_is_member(value);
        } else if (strcmp(key, "path") == 0) {
                slot = &r->path;
                ok = names_is_path(value) && !r->path_namespace;
        } else if (strcmp(key, "path_namespace") == 0) {
                slot = &r->path_namespace;
                ok = names_is_path(value) && !r->path;
        } else if (strcmp(key, "destination") == 0) {
                slot = &r->destination;
                ok = names_is_bus_name(value);
        }
        if (!slot || !ok || *slot) {
                free(value);
                return PROTO_E_BAD_MATCH;
        }
        *slot = value;
        return 0;
}

static int arg_compare(const void *a, const void *b)
{
        return strcmp(((const struct match_arg *) a)->key, ((const struct match_arg *) b)->key);
}

/* Add an argument match (takes ownership of both strings). */
static int rule_add_arg(struct match_rule *r, char *key, char *value)
{
        struct match_arg *args;

        if (r->n_args >= MATCH_ARGS_MAX || !*key) {
                free(key);
                free(value);
                return PROTO_E_BAD_MATCH;
        }
        for (size_t i = 0; i < r->n_args; i++)
                if (strcmp(r->args[i].key, key) == 0) {
                        free(key);
                        free(value);
                        return PROTO_E_BAD_MATCH;
                }
        args = realloc(r->args, (r->n_args + 1) * sizeof(*args));
        if (!args) {
                free(key);
                free(value);
                return -ENOMEM;
        }
        r->args = args;
        r->args[r->n_args++] = (struct match_arg){key, value};
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

int match_rule_parse_json(struct match_rule *r, const char *json, size_t len)
{
        struct jscan_iter it, ait;
        struct jscan_member m, am;
        enum jscan_kind kind;
        bool seen_args = false;
        int e;

        match_rule_init(r);
        if (jscan_validate(json, len, 3, &kind) != 0 || kind != JSCAN_OBJECT)
                return PROTO_E_BAD_MATCH;
        jscan_object_begin(&it, json, len);
        while (jscan_object_next(&it, &m) > 0) {
                char *key = decode_dup(m.key, m.key_len);
                if (!key) {
                        e = -ENOMEM;
                        goto fail;
                }
                if (strcmp(key, "args") == 0) {
                        free(key);
                        if (m.kind != JSCAN_OBJECT || seen_args) {
                                e = PROTO_E_BAD_MATCH;
                                goto fail;
                        }
                        seen_args = true;
                        jscan_object_begin(&ait, m.value, m.value_len);
                        while (jscan_object_next(&ait, &am) > 0) {
                                char *k, *v;
                                if (am.kind != JSCAN_STRING) {
                                        e = PROTO_E_BAD_MATCH;
                                        goto fail;
                                }
                                k = decode_dup(am.key, am.key_len);
                                v = decode_dup(am.value, am.value_len);
                                if (!k || !v) {
                                        free(k);
                                        free(v);
                                        e = -ENOMEM;
                                        goto fail;
                                }
                                e = rule_add_arg(r, k, v);
                                if (e)
                                        goto fail;
                        }
                        continue;
                }
                if (m.kind != JSCAN_STRING) {
                        free(key);
                        e = PROTO_E_BAD_MATCH;
                        goto fail;
                }
                e = rule_set(r, key, decode_dup(m.value, m.value_len));
                free(key);
                if (e)
                        goto fail;
        }
        return 0;
fail:
        match_rule_deinit(r);
        return e;
}

int match_rule_parse_string(struct match_rule *r, const char *s)
{
        const char *p = s;
        int e;

        match_rule_init(r);
        /* Keys and values become JSON strings: they must be UTF-8 as the JSON form's are. */
        if (!jscan_utf8_valid(s, strlen(s)))
                return PROTO_E_BAD_MATCH;
        while (*p) {
                const char *eq = strchr(p, '='), *v, *vend, *next;
                char *key, *value;

                if (!eq) {
                        e = PROTO_E_BAD_MATCH;
                        goto fail;
                }
                v = eq + 1;
                if (*v == '\'') {
                        v++;
                        vend = strchr(v, '\'');
                        if (!vend) {
                                e = PROTO_E_BAD_MATCH;
                                goto fail;
                        }
                        next = vend + 1;
                        if (*next && *next != ',') {
                                e = PROTO_E_BAD_MATCH;
                                goto fail;
                        }
                } else {
                        vend = strchrnul(v, ',');
                        next = vend;
                }
                key = strndup(p, (size_t) (eq - p));
                value = strndup(v, (size_t) (vend - v));
                if (!key || !value) {
                        free(key);
                        free(value);
                        e = -ENOMEM;
                        goto fail;
                }
                if (strncmp(key, "arg.", 4) == 0) {
                        char *k = strdup(key + 4);
                        free(key);
                        if (!k) {
                                free(value);
                                e = -ENOMEM;
                                goto fail;
                        }
                        e = rule_add_arg(r, k, value);
                } else {
                        e = rule_set(r, key, value);
                        free(key);
                }
                if (e)
                        goto fail;
                p = *next ? next + 1 : next;
        }
        return 0;
fail:
        match_rule_deinit(r);
        return e;
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
