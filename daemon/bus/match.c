/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/bus/match.h"
#include "protocol/jscan.h"
#include "util/util.h"

/*
 * The kinds of bucket, in the order that breaks ties between equally full
 * buckets when a rule is filed (the most selective first). A bucket's key is
 * the kind's letter followed by the value; an argument's name and value are
 * separated by a NUL.
 */
enum match_kind {
        MATCH_KIND_ARG,
        MATCH_KIND_MEMBER,
        MATCH_KIND_PATH,
        MATCH_KIND_DESTINATION,
        MATCH_KIND_INTERFACE,
        MATCH_KIND_NAMESPACE,
        MATCH_KIND_SENDER,      /* a unique name, or the driver's own name when it is the sender */
        MATCH_KIND_SENDER_NAME, /* a well-known name, found through the names the sender owns */
};

static const char match_kind_letter[] = "AMPDINSW";

struct match_bucket {
        struct map_node node;
        struct list entries; /* struct match_entry.bucket_link */
        size_t n_entries;
        enum match_kind kind;
        size_t len;
        char key[];
};

struct match_entry {
        struct match_rule rule;
        unsigned n_ref;
        struct match_owner *owner;
        struct match_bucket *bucket; /* NULL: in the wildcard list */
        struct map_node node;        /* idx->entries */
        struct list owner_link;
        struct list bucket_link;
};

/* A key to look up: `len` bytes at `data`. */
struct match_key {
        const char *data;
        size_t len;
};

void match_owner_init(struct match_owner *owner)
{
        list_init(&owner->rules);
        owner->n_rules = 0;
        owner->total = NULL;
        owner->generation = 0;
}

void match_owner_deinit(struct match_owner *owner)
{
        assert(list_is_empty(&owner->rules));
        assert(owner->n_rules == 0);
}

void match_index_init(struct match_index *idx)
{
        *idx = (struct match_index){0};
        map_init(&idx->buckets);
        map_init(&idx->entries);
        list_init(&idx->wildcard);
}

/* Make room for a key of len bytes in idx->key_buf. Returns 0 or -ENOMEM. */
static int match_index_reserve_key(struct match_index *idx, size_t len)
{
        char *buf;

        if (len <= idx->key_cap)
                return 0;
        buf = realloc(idx->key_buf, len);
        if (!buf)
                return -ENOMEM;
        idx->key_buf = buf;
        idx->key_cap = len;
        return 0;
}

/*
 * Build the key of kind for value a (and, for an argument, b) into
 * idx->key_buf, which the caller has made big enough (match_key_len).
 */
static size_t match_key_len(const char *a, const char *b)
{
        return 1 + strlen(a) + (b ? 1 + strlen(b) : 0);
}

static struct match_key match_key_build(struct match_index *idx, enum match_kind kind, const char *a, const char *b)
{
        char *p = idx->key_buf;
        size_t n = strlen(a);

        *p++ = match_kind_letter[kind];
        memcpy(p, a, n);
        p += n;
        if (b) {
                *p++ = '\0';
                n = strlen(b);
                memcpy(p, b, n);
                p += n;
        }
        return (struct match_key){idx->key_buf, (size_t) (p - idx->key_buf)};
}

static bool match_bucket_eq(const struct map_node *node, const void *key)
{
        const struct match_bucket *b = container_of(node, struct match_bucket, node);
        const struct match_key *k = key;

        return b->len == k->len && memcmp(b->key, k->data, k->len) == 0;
}

static struct match_bucket *match_index_find_bucket(const struct match_index *idx, struct match_key key)
{
        struct map_node *node = map_find(&idx->buckets, map_hash(key.data, key.len), match_bucket_eq, &key);

        return node ? container_of(node, struct match_bucket, node) : NULL;
}

static unsigned *match_index_kind_count(struct match_index *idx, enum match_kind kind)
{
        switch (kind) {
        case MATCH_KIND_ARG:
                return &idx->n_arg_buckets;
        case MATCH_KIND_SENDER_NAME:
                return &idx->n_name_buckets;
        case MATCH_KIND_NAMESPACE:
                return &idx->n_namespace_buckets;
        default:
                return NULL;
        }
}

static struct match_bucket *match_index_make_bucket(struct match_index *idx, enum match_kind kind, struct match_key key)
{
        struct match_bucket *b = match_index_find_bucket(idx, key);
        unsigned *count;

        if (b)
                return b;

        b = malloc(sizeof(*b) + key.len);
        if (!b)
                return NULL;
        memcpy(b->key, key.data, key.len);
        b->len = key.len;
        b->kind = kind;
        b->n_entries = 0;
        list_init(&b->entries);
        if (map_add(&idx->buckets, &b->node, map_hash(key.data, key.len)) < 0) {
                free(b);
                return NULL;
        }
        count = match_index_kind_count(idx, kind);
        if (count)
                (*count)++;
        if (key.len > idx->key_max)
                idx->key_max = key.len;
        return b;
}

static void match_index_drop_bucket(struct match_index *idx, struct match_bucket *b)
{
        unsigned *count = match_index_kind_count(idx, b->kind);

        if (count)
                (*count)--;
        map_remove(&idx->buckets, &b->node);
        free(b);
}

/* Count rule instances in and out of the owner (and its shared total). */
static void match_owner_count(struct match_owner *owner, int delta)
{
        owner->n_rules += (unsigned) delta;
        if (owner->total)
                *owner->total += (unsigned) delta;
}

/* Unlink and free an entry whatever its reference count; drop its bucket when empty. */
static void match_entry_free(struct match_index *idx, struct match_entry *e)
{
        struct match_bucket *b = e->bucket;

        match_owner_count(e->owner, -(int) e->n_ref);
        list_unlink(&e->owner_link);
        list_unlink(&e->bucket_link);
        map_remove(&idx->entries, &e->node);
        if (b && --b->n_entries == 0)
                match_index_drop_bucket(idx, b);
        match_rule_deinit(&e->rule);
        free(e);
}

void match_index_deinit(struct match_index *idx)
{
        struct map_node *node;

        /* Freeing an entry may free its bucket: take entries from the entry map only. */
        while ((node = map_first(&idx->entries)))
                match_entry_free(idx, container_of(node, struct match_entry, node));
        assert(map_size(&idx->buckets) == 0 && list_is_empty(&idx->wildcard));
        map_deinit(&idx->buckets);
        map_deinit(&idx->entries);
        free(idx->key_buf);
        *idx = (struct match_index){0};
}

/* ---- finding an owner's equal rule --------------------------------------- */

struct match_entry_key {
        const struct match_owner *owner;
        const struct match_rule *rule;
};

static bool match_entry_eq(const struct map_node *node, const void *key)
{
        const struct match_entry *e = container_of(node, struct match_entry, node);
        const struct match_entry_key *k = key;

        return e->owner == k->owner && match_rule_equal(&e->rule, k->rule);
}

static uint64_t match_hash_mix(uint64_t h, const char *s)
{
        /* an absent key mixes in a constant of its own, so it differs from any value */
        return (h ^ (s ? map_hash_string(s) : UINT64_C(0x9e3779b97f4a7c15))) * UINT64_C(0x100000001b3);
}

/* The hash of an owner's rule: of its every key, each hashed with the map's keyed hash. */
static uint64_t match_entry_hash(const struct match_owner *owner, const struct match_rule *r)
{
        const char *const keys[] = {r->sender, r->interface, r->member, r->path, r->path_namespace, r->destination};
        uintptr_t who = (uintptr_t) owner;
        uint64_t h = map_hash(&who, sizeof(who)) ^ (uint64_t) r->type;

        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
                h = match_hash_mix(h, keys[i]);
        for (size_t i = 0; i < r->n_args; i++)
                h = match_hash_mix(match_hash_mix(h, r->args[i].key), r->args[i].value);
        return h;
}

static struct match_entry *match_index_find_entry(const struct match_index *idx, const struct match_owner *owner,
                                                  const struct match_rule *rule, uint64_t hash)
{
        struct match_entry_key key = {owner, rule};
        struct map_node *node = map_find(&idx->entries, hash, match_entry_eq, &key);

        return node ? container_of(node, struct match_entry, node) : NULL;
}

/* ---- filing a rule -------------------------------------------------------- */

struct match_file_key {
        enum match_kind kind;
        const char *a, *b; /* the value; for an argument its name and value */
};

/*
 * The bucket a new rule goes to: the smallest among those of its keys (ties
 * to the first kind), created if needed. *ret is NULL for a rule that fixes
 * no indexed key. Returns 0 or -ENOMEM.
 */
static int match_index_file(struct match_index *idx, const struct match_rule *r, struct match_bucket **ret)
{
        struct match_file_key keys[MATCH_ARGS_MAX + 6], best = {0};
        size_t n = 0, need = 0, best_size = SIZE_MAX;
        struct match_bucket *b;

        for (size_t i = 0; i < r->n_args; i++)
                keys[n++] = (struct match_file_key){MATCH_KIND_ARG, r->args[i].key, r->args[i].value};
        if (r->member)
                keys[n++] = (struct match_file_key){MATCH_KIND_MEMBER, r->member, NULL};
        if (r->path)
                keys[n++] = (struct match_file_key){MATCH_KIND_PATH, r->path, NULL};
        if (r->destination)
                keys[n++] = (struct match_file_key){MATCH_KIND_DESTINATION, r->destination, NULL};
        if (r->interface)
                keys[n++] = (struct match_file_key){MATCH_KIND_INTERFACE, r->interface, NULL};
        if (r->path_namespace)
                keys[n++] = (struct match_file_key){MATCH_KIND_NAMESPACE, r->path_namespace, NULL};
        if (r->sender)
                keys[n++] = (struct match_file_key){r->sender[0] == ':' ? MATCH_KIND_SENDER : MATCH_KIND_SENDER_NAME,
                                                    r->sender, NULL};
        *ret = NULL;
        if (n == 0)
                return 0;

        for (size_t i = 0; i < n; i++) {
                size_t len = match_key_len(keys[i].a, keys[i].b);

                if (len > need)
                        need = len;
        }
        /* room to decode a body member that may shorten to a key this long (match_route_body) */
        if (match_index_reserve_key(idx, 6 * need + 3) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < n && best_size > 0; i++) {
                struct match_bucket *found =
                        match_index_find_bucket(idx, match_key_build(idx, keys[i].kind, keys[i].a, keys[i].b));
                size_t size = found ? found->n_entries : 0;

                if (size < best_size) {
                        best_size = size;
                        best = keys[i];
                }
        }
        b = match_index_make_bucket(idx, best.kind, match_key_build(idx, best.kind, best.a, best.b));
        if (!b)
                return -ENOMEM;
        *ret = b;
        return 0;
}

int match_index_add(struct match_index *idx, struct match_owner *owner, struct match_rule *rule)
{
        uint64_t hash = match_entry_hash(owner, rule);
        struct match_entry *e = match_index_find_entry(idx, owner, rule, hash);
        struct match_bucket *b;

        if (e) {
                e->n_ref++;
                match_owner_count(owner, 1);
                match_rule_deinit(rule);
                match_rule_init(rule);
                return 0;
        }

        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        if (map_add(&idx->entries, &e->node, hash) < 0) {
                free(e);
                return -ENOMEM;
        }
        if (match_index_file(idx, rule, &b) < 0) {
                map_remove(&idx->entries, &e->node);
                free(e);
                return -ENOMEM;
        }

        e->rule = *rule;
        match_rule_init(rule);
        e->n_ref = 1;
        e->owner = owner;
        e->bucket = b;
        list_link_tail(&owner->rules, &e->owner_link);
        if (b) {
                list_link_tail(&b->entries, &e->bucket_link);
                b->n_entries++;
        } else {
                list_link_tail(&idx->wildcard, &e->bucket_link);
        }
        match_owner_count(owner, 1);
        return 0;
}

int match_index_remove(struct match_index *idx, struct match_owner *owner, const struct match_rule *rule)
{
        struct match_entry *e = match_index_find_entry(idx, owner, rule, match_entry_hash(owner, rule));

        if (!e)
                return MATCH_E_NOT_FOUND;
        if (e->n_ref > 1) {
                e->n_ref--;
                match_owner_count(owner, -1);
                return 0;
        }
        match_entry_free(idx, e);
        return 0;
}

void match_index_remove_owner(struct match_index *idx, struct match_owner *owner)
{
        struct match_entry *e, *tmp;

        list_for_each_entry_safe(e, tmp, &owner->rules, owner_link)
                match_entry_free(idx, e);
}

/* ---- routing -------------------------------------------------------------- */

struct match_route {
        struct match_index *idx;
        struct msg *m;
        match_owner_fn owns;
        match_deliver_fn deliver;
        void *userdata;
        struct match_args args; /* built on first need */
        bool args_built;
        bool args_failed;
};

/* The message's arguments, sorted for lookups; NULL when they cannot be had (no memory). */
static const struct match_args *match_route_args(struct match_route *r)
{
        if (!r->args_built && !r->args_failed) {
                if (match_args_init(&r->args, r->m) < 0)
                        r->args_failed = true;
                else
                        r->args_built = true;
        }
        return r->args_built ? &r->args : NULL;
}

static void match_route_bucket(struct match_route *r, struct match_bucket *b)
{
        struct match_index *idx = r->idx;
        struct match_entry *e;

        list_for_each_entry(e, &b->entries, bucket_link) {
                struct match_owner *owner = e->owner;
                const struct match_args *args = NULL;

                idx->n_visited++;
                if (owner->generation == idx->generation)
                        continue;
                if (e->rule.n_args > 0 && !(args = match_route_args(r)))
                        continue; /* no memory to look: as msg_get_arg, no match */
                if (!match_rule_matches_args(&e->rule, r->m, r->owns, r->userdata, args))
                        continue;
                owner->generation = idx->generation;
                r->deliver(owner, r->userdata);
        }
}

/* Route through the bucket of kind for value a (and b), if there is one. */
static void match_route_key(struct match_route *r, enum match_kind kind, const char *a, const char *b)
{
        struct match_index *idx = r->idx;
        struct match_bucket *bucket;
        size_t len = match_key_len(a, b);

        /* no bucket key is longer than key_max, and key_buf holds that much */
        if (len > idx->key_max)
                return;
        bucket = match_index_find_bucket(idx, match_key_build(idx, kind, a, b));
        if (bucket)
                match_route_bucket(r, bucket);
}

/* Look up every namespace the path is in: "/", "/a", "/a/b" for "/a/b". */
static void match_route_namespaces(struct match_route *r, const char *path)
{
        struct match_index *idx = r->idx;

        /* prefixes longer than key_max - 1 have no bucket (and no room in key_buf) */
        for (size_t i = 1; path[i - 1] && 1 + i <= idx->key_max; i++) {
                struct match_bucket *b;

                if (i > 1 && path[i] != '/' && path[i] != '\0')
                        continue;
                idx->key_buf[0] = match_kind_letter[MATCH_KIND_NAMESPACE];
                memcpy(idx->key_buf + 1, path, i);
                b = match_index_find_bucket(idx, (struct match_key){idx->key_buf, 1 + i});
                if (b)
                        match_route_bucket(r, b);
        }
}

/*
 * Look up the bucket of each top-level string member of the body, reading
 * it once, in place: nothing is allocated or kept (the sorted members are
 * built only when a rule found here is checked). A member that a later
 * duplicate hides may lead to a rule, which that check rejects.
 */
static void match_route_body(struct match_route *r)
{
        struct match_index *idx = r->idx;
        struct jscan_iter it;
        struct jscan_member mem;

        if (jscan_object_begin(&it, r->m->body, r->m->body_len) != 0)
                return;
        while (jscan_object_next(&it, &mem) > 0) {
                char *p = idx->key_buf;
                size_t k, v;

                if (mem.kind != JSCAN_STRING)
                        continue;
                /* decoding shortens by at most 6 to 1 (\u0000); key_buf holds 6 * key_max + 3 */
                if (mem.key_len + mem.value_len + 2 > (mem.escaped ? 6 * idx->key_max : idx->key_max))
                        continue;
                p[0] = match_kind_letter[MATCH_KIND_ARG];
                /* as C strings, like the rule's: an escaped NUL ends one */
                k = jscan_string_decode(mem.key, mem.key_len, p + 1);
                k = strnlen(p + 1, k);
                v = jscan_string_decode(mem.value, mem.value_len, p + 2 + k);
                v = strnlen(p + 2 + k, v);
                if (2 + k + v <= idx->key_max) {
                        struct match_bucket *b = match_index_find_bucket(idx, (struct match_key){p, 2 + k + v});

                        if (b)
                                match_route_bucket(r, b);
                }
        }
}

struct match_name_visit {
        struct match_route *route;
};

static bool match_route_name(const char *name, const void *arg)
{
        const struct match_name_visit *v = arg;

        match_route_key(v->route, MATCH_KIND_SENDER_NAME, name, NULL);
        return false;
}

void match_index_route(struct match_index *idx, struct msg *m, match_owner_fn owns, match_names_fn names,
                       match_deliver_fn deliver, void *userdata)
{
        struct match_route r = {idx, m, owns, deliver, userdata, {0}, false, false};
        const struct msg_header *h = &m->h;
        struct match_entry *e;

        /* A fresh generation marks, in O(1), every owner as "not delivered yet". */
        idx->generation++;
        idx->n_visited = 0;

        if (map_size(&idx->buckets) > 0) {
                if (h->member)
                        match_route_key(&r, MATCH_KIND_MEMBER, h->member, NULL);
                if (h->path)
                        match_route_key(&r, MATCH_KIND_PATH, h->path, NULL);
                if (h->destination)
                        match_route_key(&r, MATCH_KIND_DESTINATION, h->destination, NULL);
                if (h->interface)
                        match_route_key(&r, MATCH_KIND_INTERFACE, h->interface, NULL);
                if (h->path && idx->n_namespace_buckets > 0)
                        match_route_namespaces(&r, h->path);
                if (h->sender) {
                        match_route_key(&r, h->sender[0] == ':' ? MATCH_KIND_SENDER : MATCH_KIND_SENDER_NAME, h->sender,
                                        NULL);
                        if (idx->n_name_buckets > 0) {
                                struct match_name_visit v = {&r};

                                names(h->sender, match_route_name, &v, userdata);
                        }
                }
                if (idx->n_arg_buckets > 0 && m->body)
                        match_route_body(&r);
        }

        list_for_each_entry(e, &idx->wildcard, bucket_link) {
                idx->n_visited++;
                if (e->owner->generation == idx->generation || !match_rule_matches(&e->rule, m, owns, userdata))
                        continue;
                e->owner->generation = idx->generation;
                deliver(e->owner, userdata);
        }
        if (r.args_built)
                match_args_deinit(&r.args);
}
