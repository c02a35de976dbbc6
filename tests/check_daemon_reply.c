/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for daemon/bus/reply: the pending-reply registry on a real libevent
 * base, with plain reply_owner anchors standing in for peers. Covers slots
 * keyed by (caller, serial), the callee recorded for the "is the answer from
 * the callee" check, the per-owner lists the bus walks on disconnect, and the
 * deadline timers (short timeouts run by event_base_dispatch; a breaker timer
 * bounds each run, so "not fired" means "not fired before it").
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "daemon/bus/reply.h"
#include "tests/check-run.h"

#define MAX_FIRED 256
/* A default long enough never to pass during a test. */
#define LONG_MS 60000

struct fired {
        struct reply_owner *caller;
        struct reply_owner *callee;
        uint32_t serial;
        uint32_t timeout_ms;
        bool registered; /* reply_slot_find saw the slot during the callback */
};

static struct event_base *base;
static struct reply_registry reg;
static struct reply_owner a, b, c;
static struct fired fired[MAX_FIRED];
static unsigned n_fired;

static void on_timeout(struct reply_slot *slot, void *userdata)
{
        ck_assert_ptr_eq(userdata, &reg);
        ck_assert_ptr_eq(slot->reg, &reg);
        if (n_fired < MAX_FIRED)
                fired[n_fired] = (struct fired){
                        .caller = slot->caller,
                        .callee = slot->callee,
                        .serial = slot->serial,
                        .timeout_ms = slot->timeout_ms,
                        .registered = reply_slot_find(&reg, slot->caller, slot->serial) == slot,
                };
        n_fired++;
}

static void setup_with_default(uint32_t default_ms)
{
        base = event_base_new();
        ck_assert_ptr_nonnull(base);
        reply_registry_init(&reg, base, default_ms, on_timeout, &reg);
        reply_owner_init(&a);
        reply_owner_init(&b);
        reply_owner_init(&c);
        n_fired = 0;
}

static void setup(void)
{
        setup_with_default(LONG_MS);
}

static void teardown(void)
{
        reply_registry_deinit(&reg);
        reply_owner_deinit(&a);
        reply_owner_deinit(&b);
        reply_owner_deinit(&c);
        event_base_free(base);
}

static struct reply_slot *slot_new(struct reply_owner *caller, struct reply_owner *callee, uint32_t serial,
                                   uint32_t timeout_ms)
{
        struct reply_slot *slot = NULL;

        ck_assert_int_eq(reply_slot_new(&reg, caller, callee, serial, NULL, timeout_ms, &slot), 0);
        ck_assert_ptr_nonnull(slot);
        return slot;
}

static size_t list_length(const struct list *head)
{
        size_t n = 0;

        for (const struct list *l = head->next; l != head; l = l->next)
                n++;
        return n;
}

static void on_break(evutil_socket_t fd, short what, void *userdata)
{
        event_base_loopbreak(userdata);
}

/* Run the loop for ms (a slot timer that is due by then fires first: libevent
 * runs expired plain timers in deadline order). */
static void run_for(unsigned ms)
{
        struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
        struct event *brk = evtimer_new(base, on_break, base);

        ck_assert_ptr_nonnull(brk);
        ck_assert_int_eq(evtimer_add(brk, &tv), 0);
        ck_assert_int_ge(event_base_dispatch(base), 0);
        event_free(brk);
}

static bool deadline_hit;

static void on_deadline(evutil_socket_t fd, short what, void *userdata)
{
        deadline_hit = true;
}

/* Run the loop until n timeouts fired in all (failing after 5 s). */
static void run_until_fired(unsigned n)
{
        struct timeval tv = {.tv_sec = 5};
        struct event *deadline = evtimer_new(base, on_deadline, NULL);

        ck_assert_ptr_nonnull(deadline);
        ck_assert_int_eq(evtimer_add(deadline, &tv), 0);
        deadline_hit = false;
        while (n_fired < n && !deadline_hit)
                ck_assert_int_ge(event_base_loop(base, EVLOOP_ONCE), 0);
        event_free(deadline);
        ck_assert_msg(n_fired >= n, "%u of %u timeouts fired", n_fired, n);
}

/* ---- slots -------------------------------------------------------------------- */

START_TEST(test_new_and_find)
{
        struct reply_slot *s1 = slot_new(&a, &b, 1, 0);
        struct reply_slot *s2 = slot_new(&a, &c, 2, 500);

        ck_assert_ptr_eq(reply_slot_find(&reg, &a, 1), s1);
        ck_assert_ptr_eq(reply_slot_find(&reg, &a, 2), s2);
        ck_assert_ptr_eq(s1->caller, &a);
        ck_assert_ptr_eq(s1->callee, &b);
        ck_assert_uint_eq(s1->serial, 1);
        ck_assert_ptr_eq(s2->callee, &c);
        /* 0 means the registry's default */
        ck_assert_uint_eq(s1->timeout_ms, LONG_MS);
        ck_assert_uint_eq(s2->timeout_ms, 500);
        ck_assert_uint_eq(a.n_calls, 2);
        ck_assert_uint_eq(b.n_calls, 0);

        /* the key is (caller, serial): not the callee, not another serial */
        ck_assert_ptr_null(reply_slot_find(&reg, &b, 1));
        ck_assert_ptr_null(reply_slot_find(&reg, &c, 2));
        ck_assert_ptr_null(reply_slot_find(&reg, &a, 3));
        ck_assert_ptr_null(reply_slot_find(&reg, &c, 1));

        /* ret_slot may be NULL */
        ck_assert_int_eq(reply_slot_new(&reg, &b, &a, 1, NULL, 0, NULL), 0);
        ck_assert_ptr_nonnull(reply_slot_find(&reg, &b, 1));
        ck_assert_ptr_eq(reply_slot_find(&reg, &b, 1)->callee, &a);
        ck_assert_ptr_eq(reply_slot_find(&reg, &a, 1), s1);
}
END_TEST

/* The bus forwards an answer only when its sender is the slot's callee. */
START_TEST(test_answer_only_from_callee)
{
        struct reply_slot *slot;

        slot_new(&a, &b, 7, 0);
        slot = reply_slot_find(&reg, &a, 7);
        ck_assert_ptr_nonnull(slot);
        ck_assert_ptr_eq(slot->callee, &b);
        ck_assert_ptr_ne(slot->callee, &c);
        ck_assert_ptr_ne(slot->callee, &a);
        /* b is callee, not caller: b's serial 7 awaits nothing */
        ck_assert_ptr_null(reply_slot_find(&reg, &b, 7));
}
END_TEST

START_TEST(test_duplicate_serial)
{
        struct reply_slot *s1 = slot_new(&a, &b, 5, 0);
        struct reply_slot *other = NULL;

        ck_assert_int_eq(reply_slot_new(&reg, &a, &b, 5, NULL, 0, &other), REPLY_E_SERIAL_IN_USE);
        ck_assert_int_eq(reply_slot_new(&reg, &a, &c, 5, NULL, 100, &other), REPLY_E_SERIAL_IN_USE);
        ck_assert_ptr_null(other);
        ck_assert_uint_eq(a.n_calls, 1);
        ck_assert_ptr_eq(reply_slot_find(&reg, &a, 5), s1);
        ck_assert_uint_eq(list_length(&c.as_callee), 0);

        /* another caller may use the same serial */
        slot_new(&c, &b, 5, 0);
        ck_assert_ptr_eq(reply_slot_find(&reg, &a, 5), s1);
        ck_assert_ptr_ne(reply_slot_find(&reg, &c, 5), s1);

        /* once answered, the serial is free again */
        reply_slot_free(s1);
        ck_assert_ptr_null(reply_slot_find(&reg, &a, 5));
        slot_new(&a, &b, 5, 0);
}
END_TEST

START_TEST(test_destination_kept)
{
        struct reply_slot *by_name = NULL, *by_unique = NULL, *none = NULL;

        /* a well-known name is kept for the Timeout and NoReply texts; a unique name is the callee's own */
        ck_assert_int_eq(reply_slot_new(&reg, &a, &b, 1, "org.example.Notes", 0, &by_name), 0);
        ck_assert_int_eq(reply_slot_new(&reg, &a, &b, 2, ":1.64", 0, &by_unique), 0);
        ck_assert_int_eq(reply_slot_new(&reg, &a, &b, 3, NULL, 0, &none), 0);
        ck_assert_str_eq(by_name->destination, "org.example.Notes");
        ck_assert_str_eq(by_unique->destination, "");
        ck_assert_str_eq(none->destination, "");
        ck_assert_ptr_eq(reply_slot_find(&reg, &a, 1), by_name);
}
END_TEST

START_TEST(test_free)
{
        struct reply_slot *s1 = slot_new(&a, &b, 1, 0);
        struct reply_slot *s2 = slot_new(&a, &b, 2, 0);

        ck_assert_uint_eq(list_length(&a.as_caller), 2);
        ck_assert_uint_eq(list_length(&b.as_callee), 2);

        reply_slot_free(s1);
        ck_assert_ptr_null(reply_slot_find(&reg, &a, 1));
        ck_assert_ptr_eq(reply_slot_find(&reg, &a, 2), s2);
        ck_assert_uint_eq(a.n_calls, 1);
        ck_assert_uint_eq(list_length(&a.as_caller), 1);
        ck_assert_uint_eq(list_length(&b.as_callee), 1);

        reply_slot_free(s2);
        reply_slot_free(NULL);
        ck_assert_uint_eq(a.n_calls, 0);
        ck_assert(list_is_empty(&a.as_caller));
        ck_assert(list_is_empty(&b.as_callee));
}
END_TEST

/* The owner lists record each slot on both sides. */
START_TEST(test_owner_lists)
{
        struct reply_slot *slot;
        uint32_t serials = 0;

        slot_new(&a, &c, 1, 0);
        slot_new(&b, &c, 1, 0);
        slot_new(&b, &c, 2, 0);
        slot_new(&c, &a, 9, 0);

        ck_assert_uint_eq(list_length(&a.as_caller), 1);
        ck_assert_uint_eq(list_length(&a.as_callee), 1);
        ck_assert_uint_eq(list_length(&b.as_caller), 2);
        ck_assert_uint_eq(list_length(&b.as_callee), 0);
        ck_assert_uint_eq(list_length(&c.as_caller), 1);
        ck_assert_uint_eq(list_length(&c.as_callee), 3);

        list_for_each_entry(slot, &b.as_caller, caller_link) {
                ck_assert_ptr_eq(slot->caller, &b);
                serials |= 1u << slot->serial;
        }
        ck_assert_uint_eq(serials, (1u << 1) | (1u << 2));
        list_for_each_entry(slot, &c.as_callee, callee_link)
                ck_assert_ptr_eq(slot->callee, &c);
}
END_TEST

/* A callee disconnects: the bus frees every slot on its callee list (telling
 * each caller); the callers' lists and the registry forget those calls, and
 * calls to others stay. */
START_TEST(test_callee_disconnect)
{
        struct reply_slot *slot;
        unsigned n = 0;

        slot_new(&a, &c, 1, 0);
        slot_new(&a, &b, 2, 0);
        slot_new(&b, &c, 1, 0);
        slot_new(&c, &a, 3, 0);

        while ((slot = list_first_entry(&c.as_callee, struct reply_slot, callee_link))) {
                ck_assert(slot->caller == &a || slot->caller == &b);
                reply_slot_free(slot);
                n++;
        }
        ck_assert_uint_eq(n, 2);
        ck_assert_ptr_null(reply_slot_find(&reg, &a, 1));
        ck_assert_ptr_null(reply_slot_find(&reg, &b, 1));
        ck_assert_ptr_nonnull(reply_slot_find(&reg, &a, 2));
        ck_assert_ptr_nonnull(reply_slot_find(&reg, &c, 3));
        ck_assert_uint_eq(a.n_calls, 1);
        ck_assert_uint_eq(b.n_calls, 0);
        ck_assert(list_is_empty(&b.as_caller));
        ck_assert_uint_eq(list_length(&a.as_caller), 1);

        /* c's own calls go when it leaves too */
        while ((slot = list_first_entry(&c.as_caller, struct reply_slot, caller_link)))
                reply_slot_free(slot);
        ck_assert_ptr_null(reply_slot_find(&reg, &c, 3));
        ck_assert(list_is_empty(&a.as_callee));
        ck_assert_uint_eq(c.n_calls, 0);
}
END_TEST

/* A caller disconnects: its pending calls go; calls others made to it stay. */
START_TEST(test_caller_disconnect)
{
        struct reply_slot *slot;

        slot_new(&a, &b, 1, 0);
        slot_new(&a, &c, 2, 0);
        slot_new(&b, &a, 1, 0);

        while ((slot = list_first_entry(&a.as_caller, struct reply_slot, caller_link)))
                reply_slot_free(slot);
        ck_assert_uint_eq(a.n_calls, 0);
        ck_assert_ptr_null(reply_slot_find(&reg, &a, 1));
        ck_assert_ptr_null(reply_slot_find(&reg, &a, 2));
        ck_assert(list_is_empty(&b.as_callee));
        ck_assert(list_is_empty(&c.as_callee));
        ck_assert_ptr_nonnull(reply_slot_find(&reg, &b, 1));
        ck_assert_uint_eq(list_length(&a.as_callee), 1);
}
END_TEST

START_TEST(test_many_slots)
{
        const uint32_t n = 3000;

        for (uint32_t i = 1; i <= n; i++)
                slot_new(i % 2 ? &a : &b, &c, i, 0);
        ck_assert_uint_eq(a.n_calls + b.n_calls, n);
        for (uint32_t i = 1; i <= n; i++) {
                struct reply_slot *slot = reply_slot_find(&reg, i % 2 ? &a : &b, i);

                ck_assert_ptr_nonnull(slot);
                ck_assert_uint_eq(slot->serial, i);
                ck_assert_ptr_null(reply_slot_find(&reg, i % 2 ? &b : &a, i));
        }
        /* teardown's deinit frees them all */
}
END_TEST

/* ---- timeouts ----------------------------------------------------------------- */

START_TEST(test_timeout_fires)
{
        slot_new(&a, &b, 42, 5);

        run_until_fired(1);
        ck_assert_uint_eq(n_fired, 1);
        ck_assert_ptr_eq(fired[0].caller, &a);
        ck_assert_ptr_eq(fired[0].callee, &b);
        ck_assert_uint_eq(fired[0].serial, 42);
        ck_assert_uint_eq(fired[0].timeout_ms, 5);
        ck_assert_msg(fired[0].registered, "the slot was no longer registered during its timeout callback");

        /* and the registry freed it afterwards */
        ck_assert_ptr_null(reply_slot_find(&reg, &a, 42));
        ck_assert_uint_eq(a.n_calls, 0);
        ck_assert(list_is_empty(&a.as_caller));
        ck_assert(list_is_empty(&b.as_callee));
        /* the serial can be used again */
        slot_new(&a, &b, 42, 0);
}
END_TEST

/* Only the short deadline passes; the default one (60 s) does not. */
START_TEST(test_timeout_only_expired)
{
        slot_new(&a, &b, 1, 5);
        slot_new(&a, &b, 2, 0);
        slot_new(&c, &b, 1, LONG_MS + 1);

        run_until_fired(1);
        run_for(20);
        ck_assert_uint_eq(n_fired, 1);
        ck_assert_uint_eq(fired[0].serial, 1);
        ck_assert_ptr_eq(fired[0].caller, &a);
        ck_assert_ptr_null(reply_slot_find(&reg, &a, 1));
        ck_assert_ptr_nonnull(reply_slot_find(&reg, &a, 2));
        ck_assert_ptr_nonnull(reply_slot_find(&reg, &c, 1));
        ck_assert_uint_eq(list_length(&b.as_callee), 2);
}
END_TEST

/* An answered (freed) slot never times out. */
START_TEST(test_freed_does_not_fire)
{
        struct reply_slot *s1 = slot_new(&a, &b, 1, 5);

        /* the later deadline: were s1 still armed, it would come first */
        slot_new(&a, &b, 2, 30);
        reply_slot_free(s1);
        run_until_fired(1);
        ck_assert_uint_eq(fired[0].serial, 2);
        run_for(20);
        ck_assert_uint_eq(n_fired, 1);
}
END_TEST

/* Deinit drops pending slots without calling back; their timers are gone. */
START_TEST(test_deinit_no_callback)
{
        slot_new(&a, &b, 1, 5);
        slot_new(&b, &a, 2, 0);
        reply_registry_deinit(&reg);
        ck_assert(list_is_empty(&a.as_caller));
        ck_assert(list_is_empty(&b.as_callee));
        ck_assert(list_is_empty(&b.as_caller));
        ck_assert(list_is_empty(&a.as_callee));
        ck_assert_uint_eq(a.n_calls + b.n_calls, 0);
        run_for(100);
        ck_assert_uint_eq(n_fired, 0);
        /* teardown deinits again: an empty registry may be */
        reply_registry_init(&reg, base, LONG_MS, on_timeout, &reg);
}
END_TEST

/* A registry whose default is short: timeout_ms 0 uses it (libevent's common timeout queue). */
static void setup_short_default(void)
{
        setup_with_default(5);
}

START_TEST(test_default_timeout_fires)
{
        for (uint32_t i = 1; i <= 100; i++)
                slot_new(i % 2 ? &a : &b, &c, i, 0);
        /* an explicit timeout equal to the default behaves the same */
        slot_new(&a, &c, 1000, 5);
        /* and a longer one does not fire */
        slot_new(&a, &c, 2000, LONG_MS);

        run_until_fired(101);
        run_for(20);
        ck_assert_uint_eq(n_fired, 101);
        for (unsigned i = 0; i < 101; i++) {
                ck_assert_uint_eq(fired[i].timeout_ms, 5);
                ck_assert_ptr_eq(fired[i].callee, &c);
                ck_assert(fired[i].registered);
        }
        ck_assert_uint_eq(list_length(&c.as_callee), 1);
        ck_assert_ptr_nonnull(reply_slot_find(&reg, &a, 2000));
        ck_assert_uint_eq(a.n_calls, 1);
        ck_assert_uint_eq(b.n_calls, 0);
}
END_TEST

/* Without a timeout callback the slot still ends at its deadline. */
START_TEST(test_timeout_without_callback)
{
        reply_registry_deinit(&reg);
        reply_registry_init(&reg, base, LONG_MS, NULL, NULL);
        slot_new(&a, &b, 1, 5);
        run_for(200);
        ck_assert_ptr_null(reply_slot_find(&reg, &a, 1));
        ck_assert_uint_eq(a.n_calls, 0);
        ck_assert(list_is_empty(&b.as_callee));
}
END_TEST

static Suite *reply_suite(void)
{
        Suite *s = suite_create("daemon_reply");
        TCase *tc;

        tc = tcase_create("slots");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_new_and_find);
        tcase_add_test(tc, test_answer_only_from_callee);
        tcase_add_test(tc, test_duplicate_serial);
        tcase_add_test(tc, test_destination_kept);
        tcase_add_test(tc, test_free);
        tcase_add_test(tc, test_owner_lists);
        tcase_add_test(tc, test_callee_disconnect);
        tcase_add_test(tc, test_caller_disconnect);
        tcase_add_test(tc, test_many_slots);
        suite_add_tcase(s, tc);

        tc = tcase_create("timeouts");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_timeout_fires);
        tcase_add_test(tc, test_timeout_only_expired);
        tcase_add_test(tc, test_freed_does_not_fire);
        tcase_add_test(tc, test_deinit_no_callback);
        tcase_add_test(tc, test_timeout_without_callback);
        suite_add_tcase(s, tc);

        tc = tcase_create("default_timeout");
        tcase_add_checked_fixture(tc, setup_short_default, teardown);
        tcase_add_test(tc, test_default_timeout_fires);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return check_run(reply_suite());
}
