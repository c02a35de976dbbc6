/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "ipcbus/wire.h"
#include "match.h"

/*
 * A bucket holds the rules keyed by one member ("M" + member) or, for rules
 * without member, by one interface ("I" + interface).
 */
struct match_bucket {
        struct map_node node;
        struct list entries; /* struct match_entry.bucket_link */
        char key[];
};

#define MATCH_KEY_MAX (1 + IPCBUS_NAME_MAX + 1)

/* The bucket key of kind 'M' or 'I' for name into buf. */
static const char *match_key(char buf[static MATCH_KEY_MAX], char kind, const char *name)
{
        buf[0] = kind;
        snprintf(buf + 1, MATCH_KEY_MAX - 1, "%s", name);
        return buf;
}

struct match_entry {
        struct match_rule rule;
        unsigned n_ref;
        struct match_owner *owner;
        struct match_bucket *bucket; /* NULL: in the wildcard list */
        struct list owner_link;
        struct list bucket_link;
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
        map_init(&idx->buckets);
        list_init(&idx->wildcard);
        idx->generation = 0;
}

static bool match_bucket_eq(const struct map_node *node, const void *key)
{
        return strcmp(container_of(node, struct match_bucket, node)->key, key) == 0;
}

static struct match_bucket *match_index_find_bucket(const struct match_index *idx, const char *key)
{
        struct map_node *node = map_find(&idx->buckets, map_hash_string(key), match_bucket_eq, key);

        return node ? container_of(node, struct match_bucket, node) : NULL;
}

static struct match_bucket *match_index_make_bucket(struct match_index *idx, const char *key)
{
        struct match_bucket *b = match_index_find_bucket(idx, key);
        size_t len;

        if (b)
                return b;

        len = strlen(key);
        b = malloc(sizeof(*b) + len + 1);
        if (!b)
                return NULL;
        memcpy(b->key, key, len + 1);
        list_init(&b->entries);
        if (map_add(&idx->buckets, &b->node, map_hash_string(key)) < 0) {
                free(b);
                return NULL;
        }
        return b;
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
        if (b && list_is_empty(&b->entries)) {
                map_remove(&idx->buckets, &b->node);
                free(b);
        }
        match_rule_deinit(&e->rule);
        free(e);
}

void match_index_deinit(struct match_index *idx)
{
        struct map_node *node, *next;
        struct match_entry *e, *tmp;

        list_for_each_entry_safe(e, tmp, &idx->wildcard, bucket_link)
                match_entry_free(idx, e);

        for (node = map_first(&idx->buckets); node; node = next) {
                struct match_bucket *b = container_of(node, struct match_bucket, node);

                next = map_next(&idx->buckets, node);
                /* Freeing the last entry frees the bucket too: stop before touching it. */
                for (;;) {
                        bool last;

                        e = list_first_entry(&b->entries, struct match_entry, bucket_link);
                        last = e->bucket_link.next == &b->entries;
                        match_entry_free(idx, e);
                        if (last)
                                break;
                }
        }
        map_deinit(&idx->buckets);
}

static struct match_entry *match_owner_find(struct match_owner *owner, const struct match_rule *rule)
{
        struct match_entry *e;

        list_for_each_entry(e, &owner->rules, owner_link)
                if (match_rule_equal(&e->rule, rule))
                        return e;
        return NULL;
}

int match_index_add(struct match_index *idx, struct match_owner *owner, struct match_rule *rule)
{
        struct match_entry *e = match_owner_find(owner, rule);
        struct match_bucket *b = NULL;
        char key[MATCH_KEY_MAX];

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
        if (rule->member || rule->interface) {
                b = match_index_make_bucket(idx, rule->member ? match_key(key, 'M', rule->member)
                                                              : match_key(key, 'I', rule->interface));
                if (!b) {
                        free(e);
                        return -ENOMEM;
                }
        }

        e->rule = *rule;
        match_rule_init(rule);
        e->n_ref = 1;
        e->owner = owner;
        e->bucket = b;
        list_link_tail(&owner->rules, &e->owner_link);
        list_link_tail(b ? &b->entries : &idx->wildcard, &e->bucket_link);
        match_owner_count(owner, 1);
        return 0;
}

int match_index_remove(struct match_index *idx, struct match_owner *owner, const struct match_rule *rule)
{
        struct match_entry *e = match_owner_find(owner, rule);

        if (!e)
                return -ENOENT;
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

static void match_route_list(struct match_index *idx, struct list *entries, struct msg *m, match_owner_fn owns,
                             match_deliver_fn deliver, void *userdata)
{
        struct match_entry *e;

        list_for_each_entry(e, entries, bucket_link) {
                struct match_owner *owner = e->owner;

                if (owner->generation == idx->generation)
                        continue;
                if (!match_rule_matches(&e->rule, m, owns, userdata))
                        continue;
                owner->generation = idx->generation;
                deliver(owner, userdata);
        }
}

void match_index_route(struct match_index *idx, struct msg *m, match_owner_fn owns, match_deliver_fn deliver,
                       void *userdata)
{
        char key[MATCH_KEY_MAX];

        /* A fresh generation marks, in O(1), every owner as "not delivered yet". */
        idx->generation++;

        if (m->h.member) {
                struct match_bucket *b = match_index_find_bucket(idx, match_key(key, 'M', m->h.member));

                if (b)
                        match_route_list(idx, &b->entries, m, owns, deliver, userdata);
        }
        if (m->h.interface) {
                struct match_bucket *b = match_index_find_bucket(idx, match_key(key, 'I', m->h.interface));

                if (b)
                        match_route_list(idx, &b->entries, m, owns, deliver, userdata);
        }
        match_route_list(idx, &idx->wildcard, m, owns, deliver, userdata);
}
