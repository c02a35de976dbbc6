/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for daemon/bus/name: the name registry on its own, with plain
 * name_owner anchors standing in for connections. Every transition of
 * PROTOCOL.md 7.3 is checked through the reply code, the queue order and
 * the ownership changes the registry reports.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "daemon/bus/name.h"
#include "protocol/ipcbus/wire.h"
#include "tests/check-run.h"

#define ALLOW IPCBUS_NAME_ALLOW_REPLACEMENT
#define REPLACE IPCBUS_NAME_REPLACE_EXISTING
#define NOQUEUE IPCBUS_NAME_DO_NOT_QUEUE

#define MAX_CHANGES 16

struct change {
        char name[64];
        struct name_owner *old_owner;
        struct name_owner *new_owner;
        /* what a lookup from inside the callback saw */
        struct name_owner *seen_owner;
};

static struct name_registry reg;
static struct name_owner o1, o2, o3;
static struct change changes[MAX_CHANGES];
static unsigned n_changes;

static void on_change(struct name_registry *r, const char *name, struct name_owner *old_owner,
                      struct name_owner *new_owner, void *userdata)
{
        ck_assert_ptr_eq(userdata, &reg);
        /* counted always, recorded while there is room */
        if (n_changes < MAX_CHANGES) {
                snprintf(changes[n_changes].name, sizeof(changes[n_changes].name), "%s", name);
                changes[n_changes].old_owner = old_owner;
                changes[n_changes].new_owner = new_owner;
                changes[n_changes].seen_owner = name_registry_lookup(r, name);
        }
        n_changes++;
}

static void setup_limited(unsigned max_per_owner)
{
        name_registry_init(&reg, max_per_owner, 0, on_change, &reg);
        name_owner_init(&o1);
        name_owner_init(&o2);
        name_owner_init(&o3);
        n_changes = 0;
}

static void setup(void)
{
        setup_limited(0);
}

static void teardown(void)
{
        name_registry_remove_owner(&reg, &o1);
        name_registry_remove_owner(&reg, &o2);
        name_registry_remove_owner(&reg, &o3);
        ck_assert_uint_eq(name_registry_size(&reg), 0);
        name_owner_deinit(&o1);
        name_owner_deinit(&o2);
        name_owner_deinit(&o3);
        name_registry_deinit(&reg);
}

static unsigned request(struct name_owner *o, const char *name, unsigned flags)
{
        unsigned result = 0;

        ck_assert_int_eq(name_registry_request(&reg, o, name, flags, &result), 0);
        return result;
}

/* The queue of name as a string like "1,3,2" (primary first), flags of each in *flags. */
struct queue_dump {
        char text[64];
        unsigned flags[8];
        unsigned n;
};

static void queue_add(struct name_owner *owner, unsigned flags, void *userdata)
{
        struct queue_dump *d = userdata;
        size_t len = strlen(d->text);
        int id = owner == &o1 ? 1 : owner == &o2 ? 2 : owner == &o3 ? 3 : 0;

        snprintf(d->text + len, sizeof(d->text) - len, "%s%d", len ? "," : "", id);
        if (d->n < 8)
                d->flags[d->n] = flags;
        d->n++;
}

static struct queue_dump queue_of(const char *name)
{
        struct queue_dump d = {.text = ""};

        if (name_registry_foreach_queued(&reg, name, queue_add, &d) == NAME_E_NOT_FOUND)
                snprintf(d.text, sizeof(d.text), "-");
        return d;
}

static void assert_change(unsigned i, const char *name, struct name_owner *old_owner, struct name_owner *new_owner)
{
        ck_assert_uint_lt(i, n_changes);
        ck_assert_uint_lt(i, MAX_CHANGES);
        ck_assert_str_eq(changes[i].name, name);
        ck_assert_ptr_eq(changes[i].old_owner, old_owner);
        ck_assert_ptr_eq(changes[i].new_owner, new_owner);
        /* the registry was already consistent when it reported the change */
        ck_assert_ptr_eq(changes[i].seen_owner, new_owner);
}

START_TEST(test_request_free_name)
{
        ck_assert_uint_eq(request(&o1, "org.a", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        ck_assert_ptr_eq(name_registry_lookup(&reg, "org.a"), &o1);
        ck_assert_uint_eq(n_changes, 1);
        assert_change(0, "org.a", NULL, &o1);
        ck_assert_uint_eq(o1.n_requests, 1);
        ck_assert_ptr_null(name_registry_lookup(&reg, "org.b"));
}
END_TEST

START_TEST(test_already_owner_updates_flags)
{
        request(&o1, "org.a", 0);
        ck_assert_uint_eq(request(&o1, "org.a", ALLOW), IPCBUS_REQUEST_NAME_ALREADY_OWNER);
        ck_assert_uint_eq(queue_of("org.a").flags[0], ALLOW);
        ck_assert_uint_eq(n_changes, 1);
        ck_assert_uint_eq(o1.n_requests, 1);

        /* the updated flag takes effect: o2 can now replace o1 */
        ck_assert_uint_eq(request(&o2, "org.a", REPLACE), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        assert_change(1, "org.a", &o1, &o2);
}
END_TEST

START_TEST(test_queue_fifo)
{
        request(&o1, "org.a", 0);
        ck_assert_uint_eq(request(&o2, "org.a", 0), IPCBUS_REQUEST_NAME_IN_QUEUE);
        ck_assert_uint_eq(request(&o3, "org.a", 0), IPCBUS_REQUEST_NAME_IN_QUEUE);
        ck_assert_str_eq(queue_of("org.a").text, "1,2,3");
        ck_assert_uint_eq(n_changes, 1);

        /* asking again while queued: still queued, flags updated, no duplicate */
        ck_assert_uint_eq(request(&o2, "org.a", ALLOW), IPCBUS_REQUEST_NAME_IN_QUEUE);
        ck_assert_str_eq(queue_of("org.a").text, "1,2,3");
        ck_assert_uint_eq(queue_of("org.a").flags[1], ALLOW);
        ck_assert_uint_eq(o2.n_requests, 1);
}
END_TEST

START_TEST(test_do_not_queue)
{
        request(&o1, "org.a", 0);
        ck_assert_uint_eq(request(&o2, "org.a", NOQUEUE), IPCBUS_REQUEST_NAME_EXISTS);
        ck_assert_str_eq(queue_of("org.a").text, "1");
        ck_assert_uint_eq(o2.n_requests, 0);

        /* one already waiting that now says do-not-queue leaves the queue (as D-Bus) */
        ck_assert_uint_eq(request(&o2, "org.a", 0), IPCBUS_REQUEST_NAME_IN_QUEUE);
        ck_assert_uint_eq(request(&o3, "org.a", 0), IPCBUS_REQUEST_NAME_IN_QUEUE);
        ck_assert_uint_eq(request(&o2, "org.a", NOQUEUE), IPCBUS_REQUEST_NAME_EXISTS);
        ck_assert_str_eq(queue_of("org.a").text, "1,3");
        ck_assert_uint_eq(n_changes, 1);
}
END_TEST

START_TEST(test_replace_not_allowed)
{
        request(&o1, "org.a", 0);
        /* the owner did not allow replacement: queued, or EXISTS with do-not-queue */
        ck_assert_uint_eq(request(&o2, "org.a", REPLACE), IPCBUS_REQUEST_NAME_IN_QUEUE);
        ck_assert_uint_eq(request(&o3, "org.a", REPLACE | NOQUEUE), IPCBUS_REQUEST_NAME_EXISTS);
        ck_assert_str_eq(queue_of("org.a").text, "1,2");
        ck_assert_ptr_eq(name_registry_lookup(&reg, "org.a"), &o1);
        ck_assert_uint_eq(n_changes, 1);
}
END_TEST

START_TEST(test_replace_allowed_old_owner_requeued)
{
        request(&o1, "org.a", ALLOW);
        request(&o3, "org.a", 0);
        ck_assert_uint_eq(request(&o2, "org.a", REPLACE), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        /* the old owner heads the waiting part, before the one that was waiting */
        ck_assert_str_eq(queue_of("org.a").text, "2,1,3");
        ck_assert_uint_eq(n_changes, 2);
        assert_change(1, "org.a", &o1, &o2);

        /* replacing without the owner's permission does nothing now (o2 did not allow) */
        ck_assert_uint_eq(request(&o1, "org.a", REPLACE), IPCBUS_REQUEST_NAME_IN_QUEUE);
        ck_assert_str_eq(queue_of("org.a").text, "2,1,3");
}
END_TEST

START_TEST(test_replace_allowed_old_owner_do_not_queue)
{
        request(&o1, "org.a", ALLOW | NOQUEUE);
        ck_assert_uint_eq(request(&o2, "org.a", REPLACE), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        ck_assert_str_eq(queue_of("org.a").text, "2");
        ck_assert_uint_eq(o1.n_requests, 0);
        assert_change(1, "org.a", &o1, &o2);
}
END_TEST

START_TEST(test_replace_by_queued)
{
        request(&o1, "org.a", ALLOW);
        request(&o2, "org.a", 0);
        request(&o3, "org.a", 0);
        /* o3 waits at the tail, then replaces: it moves to the head, no duplicate */
        ck_assert_uint_eq(request(&o3, "org.a", REPLACE | NOQUEUE), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        ck_assert_str_eq(queue_of("org.a").text, "3,1,2");
        ck_assert_uint_eq(queue_of("org.a").flags[0], REPLACE | NOQUEUE);
        ck_assert_uint_eq(o3.n_requests, 1);
        assert_change(1, "org.a", &o1, &o3);

        /* o3 did not allow replacement, and would not wait if it had */
        ck_assert_uint_eq(request(&o1, "org.a", REPLACE | NOQUEUE), IPCBUS_REQUEST_NAME_EXISTS);
        ck_assert_str_eq(queue_of("org.a").text, "3,2");
}
END_TEST

START_TEST(test_release_owner)
{
        request(&o1, "org.a", 0);
        request(&o2, "org.a", 0);
        request(&o3, "org.a", 0);
        ck_assert_uint_eq(name_registry_release(&reg, &o1, "org.a"), IPCBUS_RELEASE_NAME_RELEASED);
        ck_assert_ptr_eq(name_registry_lookup(&reg, "org.a"), &o2);
        ck_assert_str_eq(queue_of("org.a").text, "2,3");
        assert_change(1, "org.a", &o1, &o2);
        ck_assert_uint_eq(o1.n_requests, 0);
}
END_TEST

START_TEST(test_release_queued)
{
        request(&o1, "org.a", 0);
        request(&o2, "org.a", 0);
        request(&o3, "org.a", 0);
        ck_assert_uint_eq(name_registry_release(&reg, &o2, "org.a"), IPCBUS_RELEASE_NAME_RELEASED);
        ck_assert_str_eq(queue_of("org.a").text, "1,3");
        /* a waiting one leaving changes no owner */
        ck_assert_uint_eq(n_changes, 1);
}
END_TEST

START_TEST(test_release_errors)
{
        ck_assert_uint_eq(name_registry_release(&reg, &o1, "org.a"), IPCBUS_RELEASE_NAME_NON_EXISTENT);
        request(&o1, "org.a", 0);
        ck_assert_uint_eq(name_registry_release(&reg, &o2, "org.a"), IPCBUS_RELEASE_NAME_NOT_OWNER);
        ck_assert_uint_eq(n_changes, 1);
}
END_TEST

START_TEST(test_release_last)
{
        request(&o1, "org.a", 0);
        ck_assert_uint_eq(name_registry_size(&reg), 1);
        ck_assert_uint_eq(name_registry_release(&reg, &o1, "org.a"), IPCBUS_RELEASE_NAME_RELEASED);
        assert_change(1, "org.a", &o1, NULL);
        ck_assert_uint_eq(name_registry_size(&reg), 0);
        ck_assert_str_eq(queue_of("org.a").text, "-");
        ck_assert_uint_eq(name_registry_release(&reg, &o1, "org.a"), IPCBUS_RELEASE_NAME_NON_EXISTENT);

        /* and the name can be had again */
        ck_assert_uint_eq(request(&o2, "org.a", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        assert_change(2, "org.a", NULL, &o2);
}
END_TEST

START_TEST(test_remove_owner)
{
        request(&o1, "org.a", 0); /* owner, alone */
        request(&o1, "org.b", 0); /* owner, o2 waiting */
        request(&o2, "org.b", 0);
        request(&o3, "org.c", 0); /* o1 waiting */
        request(&o1, "org.c", 0);
        n_changes = 0;

        name_registry_remove_owner(&reg, &o1);
        ck_assert_uint_eq(o1.n_requests, 0);
        ck_assert_uint_eq(n_changes, 2);
        /* in the order o1 made its requests */
        assert_change(0, "org.a", &o1, NULL);
        assert_change(1, "org.b", &o1, &o2);
        ck_assert_ptr_null(name_registry_lookup(&reg, "org.a"));
        ck_assert_str_eq(queue_of("org.b").text, "2");
        ck_assert_str_eq(queue_of("org.c").text, "3");
        ck_assert_uint_eq(name_registry_size(&reg), 2);

        /* nothing left: a second removal is a no-op */
        name_registry_remove_owner(&reg, &o1);
        ck_assert_uint_eq(n_changes, 2);
}
END_TEST

START_TEST(test_quota)
{
        teardown();
        setup_limited(2);

        ck_assert_uint_eq(request(&o1, "org.a", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        request(&o2, "org.b", 0);
        ck_assert_uint_eq(request(&o1, "org.b", 0), IPCBUS_REQUEST_NAME_IN_QUEUE);

        unsigned result = 0;
        ck_assert_int_eq(name_registry_request(&reg, &o1, "org.c", 0, &result), NAME_E_QUOTA);
        ck_assert_int_eq(name_registry_request(&reg, &o1, "org.b2", REPLACE, &result), NAME_E_QUOTA);
        ck_assert_ptr_null(name_registry_lookup(&reg, "org.c"));
        /* what it holds already still answers */
        ck_assert_uint_eq(request(&o1, "org.a", ALLOW), IPCBUS_REQUEST_NAME_ALREADY_OWNER);
        ck_assert_uint_eq(request(&o1, "org.b", ALLOW), IPCBUS_REQUEST_NAME_IN_QUEUE);
        ck_assert_uint_eq(o1.n_requests, 2);

        /* room again after a release */
        name_registry_release(&reg, &o1, "org.a");
        ck_assert_uint_eq(request(&o1, "org.c", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
}
END_TEST

static void count_name(const char *name, struct name_owner *primary, void *userdata)
{
        unsigned *mask = userdata;

        if (strcmp(name, "org.a") == 0 && primary == &o1)
                *mask |= 1;
        else if (strcmp(name, "org.b") == 0 && primary == &o2)
                *mask |= 2;
        else
                *mask |= 4;
}

START_TEST(test_foreach)
{
        unsigned mask = 0;

        request(&o1, "org.a", 0);
        request(&o2, "org.b", 0);
        request(&o1, "org.b", 0);
        name_registry_foreach(&reg, count_name, &mask);
        ck_assert_uint_eq(mask, 3);
        ck_assert_uint_eq(name_registry_size(&reg), 2);
}
END_TEST

START_TEST(test_many_names)
{
        char name[32];

        /* enough to make the table grow several times */
        for (int i = 0; i < 500; i++) {
                snprintf(name, sizeof(name), "org.n%d", i);
                ck_assert_uint_eq(request(i % 2 ? &o1 : &o2, name, 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        }
        for (int i = 0; i < 500; i++) {
                snprintf(name, sizeof(name), "org.n%d", i);
                ck_assert_ptr_eq(name_registry_lookup(&reg, name), i % 2 ? &o1 : &o2);
        }
        name_registry_remove_owner(&reg, &o1);
        ck_assert_uint_eq(name_registry_size(&reg), 250);
        ck_assert_uint_eq(n_changes, 750);
}
END_TEST

static Suite *name_registry_suite(void)
{
        Suite *s = suite_create("daemon_name");
        TCase *tc = tcase_create("queue");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_request_free_name);
        tcase_add_test(tc, test_already_owner_updates_flags);
        tcase_add_test(tc, test_queue_fifo);
        tcase_add_test(tc, test_do_not_queue);
        tcase_add_test(tc, test_replace_not_allowed);
        tcase_add_test(tc, test_replace_allowed_old_owner_requeued);
        tcase_add_test(tc, test_replace_allowed_old_owner_do_not_queue);
        tcase_add_test(tc, test_replace_by_queued);
        tcase_add_test(tc, test_release_owner);
        tcase_add_test(tc, test_release_queued);
        tcase_add_test(tc, test_release_errors);
        tcase_add_test(tc, test_release_last);
        tcase_add_test(tc, test_remove_owner);
        tcase_add_test(tc, test_quota);
        tcase_add_test(tc, test_foreach);
        tcase_add_test(tc, test_many_names);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return check_run(name_registry_suite());
}
