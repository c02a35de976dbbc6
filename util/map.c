/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/map.h"
#include "util/random.h"

void map_init(struct map *m)
{
        *m = (struct map){0};
}

void map_deinit(struct map *m)
{
        free(m->buckets);
        *m = (struct map){0};
}

static size_t map_index(const struct map *m, uint64_t hash)
{
        return (size_t) (hash & (m->n_buckets - 1));
}

/* Rehash every node into a new array of n buckets (a power of two). */
static int map_resize(struct map *m, size_t n)
{
        struct map_node **buckets = calloc(n, sizeof(*buckets));

        if (!buckets)
                return -ENOMEM;

        for (size_t i = 0; i < m->n_buckets; i++) {
                struct map_node *node = m->buckets[i];

                while (node) {
                        struct map_node *next = node->next;
                        size_t idx = (size_t) (node->hash & (n - 1));

                        node->next = buckets[idx];
                        buckets[idx] = node;
                        node = next;
                }
        }

        free(m->buckets);
        m->buckets = buckets;
        m->n_buckets = n;
        return 0;
}

int map_add(struct map *m, struct map_node *node, uint64_t hash)
{
        size_t idx;

        if (m->n_entries >= m->n_buckets) {
                int r = map_resize(m, m->n_buckets ? m->n_buckets * 2 : 8);

                /* A table that cannot grow still works, only with longer chains. */
                if (r < 0 && m->n_buckets == 0)
                        return r;
        }

        node->hash = hash;
        idx = map_index(m, hash);
        node->next = m->buckets[idx];
        m->buckets[idx] = node;
        m->n_entries++;
        return 0;
}

void map_remove(struct map *m, struct map_node *node)
{
        struct map_node **pp;

        assert(m->n_buckets > 0);
        for (pp = &m->buckets[map_index(m, node->hash)]; *pp; pp = &(*pp)->next) {
                if (*pp == node) {
                        *pp = node->next;
                        node->next = NULL;
                        m->n_entries--;
                        return;
                }
        }
        assert(!"map_remove: node not in map");
}

struct map_node *map_find(const struct map *m, uint64_t hash, map_eq_fn eq, const void *key)
{
        if (m->n_buckets == 0)
                return NULL;

        for (struct map_node *node = m->buckets[map_index(m, hash)]; node; node = node->next)
                if (node->hash == hash && eq(node, key))
                        return node;

        return NULL;
}

static struct map_node *map_scan(const struct map *m, size_t from)
{
        for (size_t i = from; i < m->n_buckets; i++)
                if (m->buckets[i])
                        return m->buckets[i];
        return NULL;
}

struct map_node *map_first(const struct map *m)
{
        return map_scan(m, 0);
}

struct map_node *map_next(const struct map *m, const struct map_node *node)
{
        if (node->next)
                return node->next;
        return map_scan(m, map_index(m, node->hash) + 1);
}

/* ---- SipHash-2-4 ---------------------------------------------------------- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND                                                                                                       \
        do {                                                                                                           \
                v0 += v1;                                                                                              \
                v1 = ROTL(v1, 13);                                                                                     \
                v1 ^= v0;                                                                                              \
                v0 = ROTL(v0, 32);                                                                                     \
                v2 += v3;                                                                                              \
                v3 = ROTL(v3, 16);                                                                                     \
                v3 ^= v2;                                                                                              \
                v0 += v3;                                                                                              \
                v3 = ROTL(v3, 21);                                                                                     \
                v3 ^= v0;                                                                                              \
                v2 += v1;                                                                                              \
                v1 = ROTL(v1, 17);                                                                                     \
                v1 ^= v2;                                                                                              \
                v2 = ROTL(v2, 32);                                                                                     \
        } while (0)

static uint64_t read_le64(const uint8_t *p)
{
        uint64_t v;

        memcpy(&v, p, sizeof(v));
        return le64toh(v);
}

static uint64_t siphash24(const void *data, size_t len, const uint8_t key[16])
{
        const uint8_t *in = data;
        const uint8_t *end = in + len - (len % 8);
        uint64_t k0 = read_le64(key), k1 = read_le64(key + 8);
        uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
        uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
        uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
        uint64_t v3 = 0x7465646279746573ULL ^ k1;
        uint64_t b = ((uint64_t) len) << 56;

        for (; in != end; in += 8) {
                uint64_t mi = read_le64(in);

                v3 ^= mi;
                SIPROUND;
                SIPROUND;
                v0 ^= mi;
        }

        switch (len & 7) {
        case 7:
                b |= ((uint64_t) in[6]) << 48;
                /* fall through */
        case 6:
                b |= ((uint64_t) in[5]) << 40;
                /* fall through */
        case 5:
                b |= ((uint64_t) in[4]) << 32;
                /* fall through */
        case 4:
                b |= ((uint64_t) in[3]) << 24;
                /* fall through */
        case 3:
                b |= ((uint64_t) in[2]) << 16;
                /* fall through */
        case 2:
                b |= ((uint64_t) in[1]) << 8;
                /* fall through */
        case 1:
                b |= ((uint64_t) in[0]);
                break;
        default:
                break;
        }

        v3 ^= b;
        SIPROUND;
        SIPROUND;
        v0 ^= b;
        v2 ^= 0xff;
        SIPROUND;
        SIPROUND;
        SIPROUND;
        SIPROUND;
        return v0 ^ v1 ^ v2 ^ v3;
}

/* The per-process hash key: random, made on first use without ever blocking. */
static const uint8_t *map_key(void)
{
        static uint8_t key[16];
        static bool done;

        if (!done) {
                random_bytes(key, sizeof(key));
                done = true;
        }
        return key;
}

uint64_t map_hash(const void *data, size_t len)
{
        return siphash24(data, len, map_key());
}

uint64_t map_hash_string(const char *s)
{
        return map_hash(s, strlen(s));
}
