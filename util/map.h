/* SPDX-License-Identifier: MIT */
/*
 * An intrusive hash table. Elements embed a `struct map_node`; the table
 * stores only pointers to those nodes, so adding never copies an element and
 * removing never frees one. Keys are whatever the caller hashes: lookups take
 * the hash and an equality callback. Hashes are keyed SipHash with a random
 * per-process key, so clients that choose names cannot force collisions.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct map_node {
        struct map_node *next;
        uint64_t hash;
};

struct map {
        struct map_node **buckets; /* n_buckets chains; n_buckets is 0 or a power of two */
        size_t n_buckets;
        size_t n_entries;
};

/* Does this node hold `key`? */
typedef bool (*map_eq_fn)(const struct map_node *node, const void *key);

void map_init(struct map *m);
/* Free the bucket array. The nodes belong to the caller and are not touched. */
void map_deinit(struct map *m);

/* Link node under hash. Returns 0, or -ENOMEM only when the first bucket array
 * cannot be allocated (a failed growth later just keeps the table as it is). */
int map_add(struct map *m, struct map_node *node, uint64_t hash);
/* Unlink a node that is in the map. */
void map_remove(struct map *m, struct map_node *node);
/* The node with this hash for which eq(node, key) holds, or NULL. */
struct map_node *map_find(const struct map *m, uint64_t hash, map_eq_fn eq, const void *key);

/* Iteration in no particular order; the current node may be removed once its
 * successor has been fetched. */
struct map_node *map_first(const struct map *m);
struct map_node *map_next(const struct map *m, const struct map_node *node);

static inline size_t map_size(const struct map *m)
{
        return m->n_entries;
}

uint64_t map_hash(const void *data, size_t len);
uint64_t map_hash_string(const char *s);
