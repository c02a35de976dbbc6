/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for util/bufcache: large buffers given back are handed out
 * again for requests they fit (at most twice too big), small and huge ones
 * are not kept, the cache holds a bounded number, and trim empties it.
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "tests/check-run.h"
#include "util/bufcache.h"

START_TEST(test_reuse)
{
        size_t cap, cap2;
        void *p = bufcache_alloc(200000, &cap), *q;

        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq(cap, 200000);
        memset(p, 'x', cap);
        bufcache_free(p, cap);
        /* a request it fits takes it back, with its real size */
        q = bufcache_alloc(150000, &cap2);
        ck_assert_ptr_eq(q, p);
        ck_assert_uint_eq(cap2, 200000);
        bufcache_free(q, cap2);
        /* one it is more than twice as big as does not */
        q = bufcache_alloc(BUFCACHE_MIN, &cap2);
        ck_assert_ptr_ne(q, p);
        ck_assert_uint_eq(cap2, BUFCACHE_MIN);
        bufcache_free(q, cap2);
        bufcache_trim();
}
END_TEST

START_TEST(test_bounds)
{
        size_t cap;
        void *small = bufcache_alloc(BUFCACHE_MIN - 1, &cap), *again;
        void *huge, *kept[BUFCACHE_SLOTS + 1];

        ck_assert_uint_eq(cap, BUFCACHE_MIN - 1);
        bufcache_free(small, cap);
        again = bufcache_alloc(BUFCACHE_MIN - 1, &cap);
        bufcache_free(again, cap);
        huge = bufcache_alloc(BUFCACHE_MAX + 1, &cap);
        ck_assert_uint_eq(cap, BUFCACHE_MAX + 1);
        bufcache_free(huge, cap);

        /* one more than the slots: the smallest kept buffer makes way */
        for (size_t i = 0; i <= BUFCACHE_SLOTS; i++)
                kept[i] = bufcache_alloc(BUFCACHE_MIN + i * 1000, &cap);
        for (size_t i = 0; i <= BUFCACHE_SLOTS; i++)
                bufcache_free(kept[i], BUFCACHE_MIN + i * 1000);
        for (size_t i = BUFCACHE_SLOTS + 1; i-- > 1;) {
                void *p = bufcache_alloc(BUFCACHE_MIN + i * 1000, &cap);

                ck_assert_ptr_eq(p, kept[i]);
                bufcache_free(p, cap);
        }
        /* trim empties it (valgrind sees nothing left behind) */
        bufcache_trim();
        huge = bufcache_alloc(BUFCACHE_MIN + BUFCACHE_SLOTS * 1000, &cap);
        ck_assert_uint_eq(cap, BUFCACHE_MIN + BUFCACHE_SLOTS * 1000);
        bufcache_free(huge, cap);
        bufcache_trim();
}
END_TEST

/* What is kept stays within BUFCACHE_KEEP_MAX: a buffer that would pass it is freed, not kept. */
START_TEST(test_total_bound)
{
        size_t cap, n = BUFCACHE_KEEP_MAX / BUFCACHE_MAX + 1;
        void *big[BUFCACHE_SLOTS];

        ck_assert_uint_le(n, BUFCACHE_SLOTS);
        ck_assert_uint_eq(bufcache_kept(), 0);
        for (size_t i = 0; i < n; i++)
                big[i] = bufcache_alloc(BUFCACHE_MAX - i, &cap);
        for (size_t i = 0; i < n; i++)
                bufcache_free(big[i], BUFCACHE_MAX - i);
        /* the ones given back first were kept, the one past the bound was freed */
        ck_assert_uint_eq(bufcache_kept(), (n - 1) * BUFCACHE_MAX - (n - 1) * (n - 2) / 2);
        for (size_t i = 0; i + 1 < n; i++) {
                void *p = bufcache_alloc(BUFCACHE_MAX - i, &cap);

                ck_assert_ptr_eq(p, big[i]);
                ck_assert_uint_eq(cap, BUFCACHE_MAX - i);
                big[i] = p;
        }
        ck_assert_uint_eq(bufcache_kept(), 0);
        for (size_t i = 0; i + 1 < n; i++)
                bufcache_free(big[i], BUFCACHE_MAX - i);
        bufcache_trim();
        ck_assert_uint_eq(bufcache_kept(), 0);
}
END_TEST

/* Limits set for the process (ipcbusd's): bigger buffers are not kept from then on. */
START_TEST(test_set_limits)
{
        size_t cap;
        void *small, *big;

        bufcache_set_limits(2 * BUFCACHE_MIN, 2 * BUFCACHE_MIN);
        small = bufcache_alloc(2 * BUFCACHE_MIN, &cap);
        big = bufcache_alloc(3 * BUFCACHE_MIN, &cap);
        bufcache_free(big, 3 * BUFCACHE_MIN);
        ck_assert_uint_eq(bufcache_kept(), 0);
        bufcache_free(small, 2 * BUFCACHE_MIN);
        ck_assert_uint_eq(bufcache_kept(), 2 * BUFCACHE_MIN);
        bufcache_trim();
        bufcache_set_limits(BUFCACHE_MAX, BUFCACHE_KEEP_MAX);
}
END_TEST

static Suite *bufcache_suite(void)
{
        Suite *s = suite_create("util_bufcache");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_reuse);
        tcase_add_test(tc, test_bounds);
        tcase_add_test(tc, test_total_bound);
        tcase_add_test(tc, test_set_limits);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return check_run(bufcache_suite());
}
