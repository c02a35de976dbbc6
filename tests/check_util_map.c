/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for util/map: the intrusive hash table. Elements keyed by a
 * string are added, found, removed and iterated; enough of them to make the
 * table grow several times, and some sharing one hash so chains are walked.
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "tests/check-run.h"
#include "util/map.h"
#include "util/util.h"

#define MANY 5000

struct item {
        struct map_node node;
        char key[32];
        int value;
        bool seen;
};

static struct map m;
static struct item items[MANY];

static bool item_eq(const struct map_node *node, const void *key)
{
        return strcmp(container_of(node, struct item, node)->key, key) == 0;
}

static void item_set(struct item *it, const char *key, int value)
{
        snprintf(it->key, sizeof(it->key), "%s", key);
        it->value = value;
        it->seen = false;
}

static void add(struct item *it)
{
        ck_assert_int_eq(map_add(&m, &it->node, map_hash_string(it->key)), 0);
}

static struct item *find(const char *key)
{
        struct map_node *node = map_find(&m, map_hash_string(key), item_eq, key);

        return node ? container_of(node, struct item, node) : NULL;
}

static void setup(void)
{
        map_init(&m);
        memset(items, 0, sizeof(items));
}

static void teardown(void)
{
        map_deinit(&m);
}

START_TEST(test_empty)
{
        ck_assert_uint_eq(map_size(&m), 0);
        ck_assert_ptr_null(find("nothing"));
        ck_assert_ptr_null(map_first(&m));
}
END_TEST

START_TEST(test_add_find_remove)
{
        item_set(&items[0], "org.example.A", 1);
        item_set(&items[1], "org.example.B", 2);
        add(&items[0]);
        add(&items[1]);
        ck_assert_uint_eq(map_size(&m), 2);

        ck_assert_ptr_eq(find("org.example.A"), &items[0]);
        ck_assert_ptr_eq(find("org.example.B"), &items[1]);
        ck_assert_ptr_null(find("org.example.C"));
        ck_assert_ptr_null(find("org.example."));

        map_remove(&m, &items[0].node);
        ck_assert_uint_eq(map_size(&m), 1);
        ck_assert_ptr_null(find("org.example.A"));
        ck_assert_ptr_eq(find("org.example.B"), &items[1]);

        /* a removed node can go back in */
        add(&items[0]);
        ck_assert_ptr_eq(find("org.example.A"), &items[0]);
        map_remove(&m, &items[0].node);
        map_remove(&m, &items[1].node);
        ck_assert_uint_eq(map_size(&m), 0);
        ck_assert_ptr_null(find("org.example.B"));
        ck_assert_ptr_null(map_first(&m));
}
END_TEST

/* The map stores nodes, not copies: a change to the element shows through a lookup. */
START_TEST(test_intrusive)
{
        item_set(&items[0], "k", 1);
        add(&items[0]);
        items[0].value = 42;
        ck_assert_int_eq(find("k")->value, 42);
}
END_TEST

START_TEST(test_hash)
{
        ck_assert(map_hash_string("abc") == map_hash("abc", 3));
        ck_assert(map_hash_string("abc") == map_hash_string("abc"));
        ck_assert(map_hash_string("abc") != map_hash_string("abd"));
        ck_assert(map_hash("", 0) != map_hash("\0", 1));
        /* lengths around SipHash's 8-byte blocks */
        ck_assert(map_hash("12345678", 8) != map_hash("123456789", 9));
        ck_assert(map_hash("1234567", 7) != map_hash("12345678", 8));
}
END_TEST

/* Many entries: the table grows several times and every entry stays findable. */
START_TEST(test_growth)
{
        char key[32];

        for (int i = 0; i < MANY; i++) {
                snprintf(key, sizeof(key), "name.%d", i);
                item_set(&items[i], key, i);
                add(&items[i]);
                ck_assert_uint_eq(map_size(&m), (size_t) i + 1);
                /* the first entry survives each resize */
                ck_assert_ptr_eq(find("name.0"), &items[0]);
        }
        ck_assert_uint_ge(m.n_buckets, MANY / 2);
        for (int i = 0; i < MANY; i++) {
                snprintf(key, sizeof(key), "name.%d", i);
                ck_assert_ptr_eq(find(key), &items[i]);
        }
        ck_assert_ptr_null(find("name.5000"));

        /* remove every other one */
        for (int i = 0; i < MANY; i += 2)
                map_remove(&m, &items[i].node);
        ck_assert_uint_eq(map_size(&m), MANY / 2);
        for (int i = 0; i < MANY; i++) {
                snprintf(key, sizeof(key), "name.%d", i);
                ck_assert_ptr_eq(find(key), i % 2 ? &items[i] : NULL);
        }
}
END_TEST

/* Distinct keys under one hash: lookups walk the chain and use eq. */
START_TEST(test_same_hash)
{
        for (int i = 0; i < 20; i++) {
                char key[32];

                snprintf(key, sizeof(key), "k%d", i);
                item_set(&items[i], key, i);
                ck_assert_int_eq(map_add(&m, &items[i].node, 7), 0);
        }
        for (int i = 0; i < 20; i++) {
                char key[32];

                snprintf(key, sizeof(key), "k%d", i);
                ck_assert_ptr_eq(map_find(&m, 7, item_eq, key), &items[i].node);
                /* the right key under the wrong hash is not found */
                ck_assert_ptr_null(map_find(&m, 8, item_eq, key));
        }
        map_remove(&m, &items[10].node);
        ck_assert_ptr_null(map_find(&m, 7, item_eq, "k10"));
        ck_assert_ptr_eq(map_find(&m, 7, item_eq, "k11"), &items[11].node);
        ck_assert_ptr_eq(map_find(&m, 7, item_eq, "k9"), &items[9].node);
}
END_TEST

/* Iteration visits every entry exactly once. */
START_TEST(test_iterate)
{
        const int n = 1000;
        int count = 0;

        for (int i = 0; i < n; i++) {
                char key[32];

                snprintf(key, sizeof(key), "it.%d", i);
                item_set(&items[i], key, i);
                add(&items[i]);
        }
        for (struct map_node *node = map_first(&m); node; node = map_next(&m, node)) {
                struct item *it = container_of(node, struct item, node);

                ck_assert_msg(!it->seen, "%s visited twice", it->key);
                it->seen = true;
                count++;
        }
        ck_assert_int_eq(count, n);
        for (int i = 0; i < n; i++)
                ck_assert_msg(items[i].seen, "%s not visited", items[i].key);
}
END_TEST

/* The current node may be removed once its successor is fetched: empties the map. */
START_TEST(test_iterate_remove)
{
        const int n = 300;
        struct map_node *node, *next;
        int count = 0;

        for (int i = 0; i < n; i++) {
                char key[32];

                snprintf(key, sizeof(key), "rm.%d", i);
                item_set(&items[i], key, i);
                add(&items[i]);
        }
        for (node = map_first(&m); node; node = next) {
                next = map_next(&m, node);
                map_remove(&m, node);
                count++;
        }
        ck_assert_int_eq(count, n);
        ck_assert_uint_eq(map_size(&m), 0);
        ck_assert_ptr_null(map_first(&m));

        /* and the idiom of reply_registry_deinit: remove the first until none */
        for (int i = 0; i < n; i++)
                add(&items[i]);
        count = 0;
        while ((node = map_first(&m))) {
                map_remove(&m, node);
                count++;
        }
        ck_assert_int_eq(count, n);
}
END_TEST

static Suite *map_suite(void)
{
        Suite *s = suite_create("daemon_map");
        TCase *tc = tcase_create("map");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_empty);
        tcase_add_test(tc, test_add_find_remove);
        tcase_add_test(tc, test_intrusive);
        tcase_add_test(tc, test_hash);
        tcase_add_test(tc, test_growth);
        tcase_add_test(tc, test_same_hash);
        tcase_add_test(tc, test_iterate);
        tcase_add_test(tc, test_iterate_remove);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return check_run(map_suite());
}
