/* SPDX-License-Identifier: MIT */
/*
 * Name ownership (PROTOCOL.md 7.3) against a real ipcbusd: every RequestName
 * and ReleaseName transition, the queue order, the NameAcquired / NameLost /
 * NameOwnerChanged signals each party gets and their order, disconnection of
 * owners and queued connections, and invalid names.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testbus.h"

#define NAME "org.example.Names"

/* One connection of a scenario: it records every signal it gets and watches NameOwnerChanged of one name. */
struct party {
        ipcbus_bus *bus;
        struct testbus_rec rec;
};

static void party_open(struct party *p, const char *watch)
{
        char rule[512];

        p->bus = testbus_connect(testbus_current());
        snprintf(rule, sizeof(rule),
                 "{\"type\":\"signal\",\"sender\":\"org.ipcbus.Bus\",\"member\":\"NameOwnerChanged\","
                 "\"args\":{\"name\":\"%s\"}}",
                 watch);
        testbus_add_match(p->bus, rule);
        testbus_rec_init(&p->rec, p->bus, TESTBUS_REC_SIGNALS);
}

static void party_close(struct party *p)
{
        testbus_rec_deinit(&p->rec);
        ipcbus_unref(p->bus);
        p->bus = NULL;
}

static const char *uname_of(struct party *p)
{
        return ipcbus_get_unique_name(p->bus);
}

/* The next signal p gets is NameAcquired or NameLost of `name`, unicast from the driver. */
static void expect_unicast(struct party *p, const char *member, const char *name)
{
        ipcbus_message *m = testbus_rec_expect(&p->rec, member, name);

        ck_assert_str_eq(ipcbus_message_get_sender(m), IPCBUS_DRIVER_NAME);
        ck_assert_str_eq(ipcbus_message_get_destination(m), uname_of(p));
}

/* The next signal p gets is NameOwnerChanged {name, old_owner, new_owner}. */
static void expect_noc(struct party *p, const char *name, const char *old_owner, const char *new_owner)
{
        ipcbus_message *m = testbus_rec_expect(&p->rec, "NameOwnerChanged", name);
        json_object *o = testbus_message_json(m);

        ck_assert_str_eq(ipcbus_message_get_sender(m), IPCBUS_DRIVER_NAME);
        ck_assert_ptr_null(ipcbus_message_get_destination(m));
        testbus_json_keys(o, "name", "old_owner", "new_owner", NULL);
        ck_assert_str_eq(testbus_json_string(o, "old_owner"), old_owner);
        ck_assert_str_eq(testbus_json_string(o, "new_owner"), new_owner);
        json_object_put(o);
}

static void expect_quiet(struct party *parties, size_t n)
{
        for (size_t i = 0; i < n; i++)
                testbus_rec_expect_quiet(&parties[i].rec);
}

/* ListQueuedOwners(name) is exactly the given unique names, in order (NULL-terminated). */
static void assert_queue(ipcbus_bus *bus, const char *name, ...)
{
        json_object *o, *owners;
        char body[512];
        va_list ap;
        size_t n = 0;

        snprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
        o = testbus_driver(bus, "ListQueuedOwners", body);
        testbus_json_keys(o, "owners", NULL);
        owners = testbus_json_array(o, "owners");
        va_start(ap, name);
        for (const char *want; (want = va_arg(ap, const char *)); n++) {
                json_object *v = json_object_array_get_idx(owners, n);

                ck_assert_msg(v && json_object_is_type(v, json_type_string) &&
                                      strcmp(json_object_get_string(v), want) == 0,
                              "queue of %s: expected %s at %zu in %s", name, want, n, json_object_to_json_string(o));
        }
        va_end(ap);
        ck_assert_msg(json_object_array_length(owners) == n, "queue of %s: expected %zu owners, got %s", name, n,
                      json_object_to_json_string(o));
        json_object_put(o);
}

static void assert_owner(ipcbus_bus *bus, const char *name, const char *owner)
{
        char *got = testbus_name_owner(bus, name);

        ck_assert_msg(got && strcmp(got, owner) == 0, "owner of %s is %s, expected %s", name, got ? got : "(none)",
                      owner);
        free(got);
}

/* a takes NAME as its first owner and everybody has seen it. */
static void take_name(struct party *ps, size_t n, struct party *a, unsigned flags)
{
        ck_assert_int_eq(testbus_request_name(a->bus, NAME, flags), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        for (size_t i = 0; i < n; i++) {
                testbus_sync(ps[i].bus);
                testbus_rec_skip(&ps[i].rec);
        }
}

/* ---- RequestName ---------------------------------------------------------------- */

START_TEST(test_request_primary_owner)
{
        struct party p[2];

        party_open(&p[0], NAME);
        party_open(&p[1], NAME);
        ck_assert_int_eq(testbus_request_name(p[0].bus, NAME, 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        /* the new owner: NameAcquired, then NameOwnerChanged */
        expect_unicast(&p[0], "NameAcquired", NAME);
        expect_noc(&p[0], NAME, "", uname_of(&p[0]));
        /* an onlooker: only NameOwnerChanged */
        expect_noc(&p[1], NAME, "", uname_of(&p[0]));
        expect_quiet(p, 2);
        assert_owner(p[1].bus, NAME, uname_of(&p[0]));
        assert_queue(p[1].bus, NAME, uname_of(&p[0]), NULL);
        party_close(&p[0]);
        party_close(&p[1]);
}
END_TEST

START_TEST(test_request_already_owner)
{
        struct party p[1];

        party_open(&p[0], NAME);
        take_name(p, 1, &p[0], 0);
        ck_assert_int_eq(testbus_request_name(p[0].bus, NAME, 0), IPCBUS_REQUEST_NAME_ALREADY_OWNER);
        ck_assert_int_eq(testbus_request_name(p[0].bus, NAME, IPCBUS_NAME_DO_NOT_QUEUE),
                         IPCBUS_REQUEST_NAME_ALREADY_OWNER);
        expect_quiet(p, 1);
        assert_queue(p[0].bus, NAME, uname_of(&p[0]), NULL);
        party_close(&p[0]);
}
END_TEST

START_TEST(test_request_exists_do_not_queue)
{
        struct party p[2];

        party_open(&p[0], NAME);
        party_open(&p[1], NAME);
        take_name(p, 2, &p[0], 0);
        ck_assert_int_eq(testbus_request_name(p[1].bus, NAME, IPCBUS_NAME_DO_NOT_QUEUE), IPCBUS_REQUEST_NAME_EXISTS);
        expect_quiet(p, 2);
        assert_owner(p[1].bus, NAME, uname_of(&p[0]));
        assert_queue(p[1].bus, NAME, uname_of(&p[0]), NULL);
        party_close(&p[0]);
        party_close(&p[1]);
}
END_TEST

START_TEST(test_request_in_queue)
{
        struct party p[3];

        for (int i = 0; i < 3; i++)
                party_open(&p[i], NAME);
        take_name(p, 3, &p[0], 0);
        ck_assert_int_eq(testbus_request_name(p[1].bus, NAME, 0), IPCBUS_REQUEST_NAME_IN_QUEUE);
        ck_assert_int_eq(testbus_request_name(p[2].bus, NAME, 0), IPCBUS_REQUEST_NAME_IN_QUEUE);
        assert_queue(p[0].bus, NAME, uname_of(&p[0]), uname_of(&p[1]), uname_of(&p[2]), NULL);
        /* asking again while queued keeps the place in the queue */
        ck_assert_int_eq(testbus_request_name(p[1].bus, NAME, 0), IPCBUS_REQUEST_NAME_IN_QUEUE);
        assert_queue(p[0].bus, NAME, uname_of(&p[0]), uname_of(&p[1]), uname_of(&p[2]), NULL);
        expect_quiet(p, 3);
        assert_owner(p[2].bus, NAME, uname_of(&p[0]));
        for (int i = 0; i < 3; i++)
                party_close(&p[i]);
}
END_TEST

START_TEST(test_replacement_allowed)
{
        struct party p[3]; /* 0: owner allowing replacement, 1: replaces, 2: queued */

        for (int i = 0; i < 3; i++)
                party_open(&p[i], NAME);
        take_name(p, 3, &p[0], IPCBUS_NAME_ALLOW_REPLACEMENT);
        ck_assert_int_eq(testbus_request_name(p[2].bus, NAME, 0), IPCBUS_REQUEST_NAME_IN_QUEUE);
        ck_assert_int_eq(testbus_request_name(p[1].bus, NAME, IPCBUS_NAME_REPLACE_EXISTING),
                         IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        /* the loser hears NameLost first, the winner NameAcquired first */
        expect_unicast(&p[0], "NameLost", NAME);
        expect_noc(&p[0], NAME, uname_of(&p[0]), uname_of(&p[1]));
        expect_unicast(&p[1], "NameAcquired", NAME);
        expect_noc(&p[1], NAME, uname_of(&p[0]), uname_of(&p[1]));
        expect_noc(&p[2], NAME, uname_of(&p[0]), uname_of(&p[1]));
        expect_quiet(p, 3);
        /* the old owner goes back to the head of the waiting part of the queue */
        assert_queue(p[2].bus, NAME, uname_of(&p[1]), uname_of(&p[0]), uname_of(&p[2]), NULL);
        assert_owner(p[2].bus, NAME, uname_of(&p[1]));
        for (int i = 0; i < 3; i++)
                party_close(&p[i]);
}
END_TEST

START_TEST(test_replacement_not_allowed)
{
        struct party p[3];

        for (int i = 0; i < 3; i++)
                party_open(&p[i], NAME);
        take_name(p, 3, &p[0], 0);
        ck_assert_int_eq(testbus_request_name(p[1].bus, NAME, IPCBUS_NAME_REPLACE_EXISTING),
                         IPCBUS_REQUEST_NAME_IN_QUEUE);
        ck_assert_int_eq(testbus_request_name(p[2].bus, NAME, IPCBUS_NAME_REPLACE_EXISTING | IPCBUS_NAME_DO_NOT_QUEUE),
                         IPCBUS_REQUEST_NAME_EXISTS);
        expect_quiet(p, 3);
        assert_owner(p[2].bus, NAME, uname_of(&p[0]));
        assert_queue(p[2].bus, NAME, uname_of(&p[0]), uname_of(&p[1]), NULL);
        for (int i = 0; i < 3; i++)
                party_close(&p[i]);
}
END_TEST

START_TEST(test_replaced_owner_with_do_not_queue_leaves)
{
        struct party p[2];

        party_open(&p[0], NAME);
        party_open(&p[1], NAME);
        take_name(p, 2, &p[0], IPCBUS_NAME_ALLOW_REPLACEMENT | IPCBUS_NAME_DO_NOT_QUEUE);
        ck_assert_int_eq(testbus_request_name(p[1].bus, NAME, IPCBUS_NAME_REPLACE_EXISTING),
                         IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        expect_unicast(&p[0], "NameLost", NAME);
        expect_noc(&p[0], NAME, uname_of(&p[0]), uname_of(&p[1]));
        expect_unicast(&p[1], "NameAcquired", NAME);
        expect_noc(&p[1], NAME, uname_of(&p[0]), uname_of(&p[1]));
        expect_quiet(p, 2);
        assert_queue(p[0].bus, NAME, uname_of(&p[1]), NULL);
        /* it is not in the queue, so it has nothing to release */
        ck_assert_int_eq(testbus_release_name(p[0].bus, NAME), IPCBUS_RELEASE_NAME_NOT_OWNER);
        party_close(&p[0]);
        party_close(&p[1]);
}
END_TEST

START_TEST(test_owner_flags_updated)
{
        struct party p[2];

        party_open(&p[0], NAME);
        party_open(&p[1], NAME);
        take_name(p, 2, &p[0], 0);
        /* the owner now allows replacement (4: its flags are updated) */
        ck_assert_int_eq(testbus_request_name(p[0].bus, NAME, IPCBUS_NAME_ALLOW_REPLACEMENT),
                         IPCBUS_REQUEST_NAME_ALREADY_OWNER);
        ck_assert_int_eq(testbus_request_name(p[1].bus, NAME, IPCBUS_NAME_REPLACE_EXISTING),
                         IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        expect_unicast(&p[0], "NameLost", NAME);
        expect_unicast(&p[1], "NameAcquired", NAME);
        assert_queue(p[0].bus, NAME, uname_of(&p[1]), uname_of(&p[0]), NULL);
        party_close(&p[0]);
        party_close(&p[1]);
}
END_TEST

START_TEST(test_queued_flags_updated)
{
        struct party p[3];

        for (int i = 0; i < 3; i++)
                party_open(&p[i], NAME);
        take_name(p, 3, &p[0], 0);
        ck_assert_int_eq(testbus_request_name(p[1].bus, NAME, 0), IPCBUS_REQUEST_NAME_IN_QUEUE);
        /* re-requesting while queued updates the flags the connection will own the name with */
        ck_assert_int_eq(testbus_request_name(p[1].bus, NAME, IPCBUS_NAME_ALLOW_REPLACEMENT),
                         IPCBUS_REQUEST_NAME_IN_QUEUE);
        ck_assert_int_eq(testbus_release_name(p[0].bus, NAME), IPCBUS_RELEASE_NAME_RELEASED);
        assert_owner(p[2].bus, NAME, uname_of(&p[1]));
        ck_assert_int_eq(testbus_request_name(p[2].bus, NAME, IPCBUS_NAME_REPLACE_EXISTING),
                         IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        assert_queue(p[2].bus, NAME, uname_of(&p[2]), uname_of(&p[1]), NULL);
        for (int i = 0; i < 3; i++)
                party_close(&p[i]);
}
END_TEST

/* ---- ReleaseName and disconnection ----------------------------------------------------- */

START_TEST(test_release_by_owner_next_in_queue)
{
        struct party p[3];

        for (int i = 0; i < 3; i++)
                party_open(&p[i], NAME);
        take_name(p, 3, &p[0], 0);
        ck_assert_int_eq(testbus_request_name(p[1].bus, NAME, 0), IPCBUS_REQUEST_NAME_IN_QUEUE);
        ck_assert_int_eq(testbus_request_name(p[2].bus, NAME, 0), IPCBUS_REQUEST_NAME_IN_QUEUE);
        ck_assert_int_eq(testbus_release_name(p[0].bus, NAME), IPCBUS_RELEASE_NAME_RELEASED);
        expect_unicast(&p[0], "NameLost", NAME);
        expect_noc(&p[0], NAME, uname_of(&p[0]), uname_of(&p[1]));
        expect_unicast(&p[1], "NameAcquired", NAME);
        expect_noc(&p[1], NAME, uname_of(&p[0]), uname_of(&p[1]));
        expect_noc(&p[2], NAME, uname_of(&p[0]), uname_of(&p[1]));
        expect_quiet(p, 3);
        assert_owner(p[0].bus, NAME, uname_of(&p[1]));
        assert_queue(p[0].bus, NAME, uname_of(&p[1]), uname_of(&p[2]), NULL);
        for (int i = 0; i < 3; i++)
                party_close(&p[i]);
}
END_TEST

START_TEST(test_release_last_owner)
{
        struct party p[2];

        party_open(&p[0], NAME);
        party_open(&p[1], NAME);
        take_name(p, 2, &p[0], 0);
        ck_assert_int_eq(testbus_release_name(p[0].bus, NAME), IPCBUS_RELEASE_NAME_RELEASED);
        expect_unicast(&p[0], "NameLost", NAME);
        expect_noc(&p[0], NAME, uname_of(&p[0]), "");
        expect_noc(&p[1], NAME, uname_of(&p[0]), "");
        expect_quiet(p, 2);
        ck_assert_ptr_null(testbus_name_owner(p[1].bus, NAME));
        testbus_driver_error(p[1].bus, "ListQueuedOwners", "{\"name\":\"" NAME "\"}", IPCBUS_ERROR_NAME_HAS_NO_OWNER);
        party_close(&p[0]);
        party_close(&p[1]);
}
END_TEST

START_TEST(test_release_by_queued)
{
        struct party p[3];

        for (int i = 0; i < 3; i++)
                party_open(&p[i], NAME);
        take_name(p, 3, &p[0], 0);
        ck_assert_int_eq(testbus_request_name(p[1].bus, NAME, 0), IPCBUS_REQUEST_NAME_IN_QUEUE);
        ck_assert_int_eq(testbus_request_name(p[2].bus, NAME, 0), IPCBUS_REQUEST_NAME_IN_QUEUE);
        ck_assert_int_eq(testbus_release_name(p[1].bus, NAME), IPCBUS_RELEASE_NAME_RELEASED);
        /* the owner did not change: nobody hears anything */
        expect_quiet(p, 3);
        assert_owner(p[1].bus, NAME, uname_of(&p[0]));
        assert_queue(p[1].bus, NAME, uname_of(&p[0]), uname_of(&p[2]), NULL);
        for (int i = 0; i < 3; i++)
                party_close(&p[i]);
}
END_TEST

START_TEST(test_release_non_existent_and_not_owner)
{
        struct party p[2];

        party_open(&p[0], NAME);
        party_open(&p[1], NAME);
        ck_assert_int_eq(testbus_release_name(p[0].bus, NAME), IPCBUS_RELEASE_NAME_NON_EXISTENT);
        take_name(p, 2, &p[0], 0);
        ck_assert_int_eq(testbus_release_name(p[1].bus, NAME), IPCBUS_RELEASE_NAME_NOT_OWNER);
        expect_quiet(p, 2);
        assert_owner(p[1].bus, NAME, uname_of(&p[0]));
        party_close(&p[0]);
        party_close(&p[1]);
}
END_TEST

START_TEST(test_owner_disconnect_next_owner)
{
        struct testbus *tb = testbus_current();
        struct testbus_child owner;
        struct party p[2]; /* 0: queued, 1: onlooker */

        testbus_service_start(tb, &owner, NAME);
        party_open(&p[0], NAME);
        party_open(&p[1], NAME);
        ck_assert_int_eq(testbus_request_name(p[0].bus, NAME, 0), IPCBUS_REQUEST_NAME_IN_QUEUE);
        assert_queue(p[1].bus, NAME, owner.unique, uname_of(&p[0]), NULL);

        /* the owning process dies */
        testbus_child_kill(&owner);
        expect_unicast(&p[0], "NameAcquired", NAME);
        expect_noc(&p[0], NAME, owner.unique, uname_of(&p[0]));
        expect_noc(&p[1], NAME, owner.unique, uname_of(&p[0]));
        expect_quiet(p, 2);
        assert_owner(p[1].bus, NAME, uname_of(&p[0]));
        assert_queue(p[1].bus, NAME, uname_of(&p[0]), NULL);
        party_close(&p[0]);
        party_close(&p[1]);
}
END_TEST

START_TEST(test_queued_disconnect_leaves_queue)
{
        struct party p[3];
        struct party watcher;
        char *gone;

        for (int i = 0; i < 3; i++)
                party_open(&p[i], NAME);
        take_name(p, 3, &p[0], 0);
        ck_assert_int_eq(testbus_request_name(p[1].bus, NAME, 0), IPCBUS_REQUEST_NAME_IN_QUEUE);
        ck_assert_int_eq(testbus_request_name(p[2].bus, NAME, 0), IPCBUS_REQUEST_NAME_IN_QUEUE);

        gone = strdup(uname_of(&p[1]));
        party_open(&watcher, gone);
        party_close(&p[1]);
        expect_noc(&watcher, gone, gone, "");
        assert_queue(p[0].bus, NAME, uname_of(&p[0]), uname_of(&p[2]), NULL);
        /* the owner did not change */
        testbus_rec_expect_quiet(&p[0].rec);
        testbus_rec_expect_quiet(&p[2].rec);
        free(gone);
        party_close(&watcher);
        party_close(&p[0]);
        party_close(&p[2]);
}
END_TEST

/* A disconnecting owner of several names loses all of them at once. */
START_TEST(test_owner_disconnect_several_names)
{
        struct party p[2]; /* 0: queued for the second name, 1: watches the first */
        ipcbus_bus *owner = testbus_connect(testbus_current());
        char *owner_name = strdup(ipcbus_get_unique_name(owner));

        party_open(&p[0], "org.example.Second");
        party_open(&p[1], NAME);
        ck_assert_int_eq(testbus_request_name(owner, NAME, 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        ck_assert_int_eq(testbus_request_name(owner, "org.example.Second", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        ck_assert_int_eq(testbus_request_name(p[0].bus, "org.example.Second", 0), IPCBUS_REQUEST_NAME_IN_QUEUE);
        for (int i = 0; i < 2; i++) {
                testbus_sync(p[i].bus);
                testbus_rec_skip(&p[i].rec);
        }

        ipcbus_unref(owner);
        expect_unicast(&p[0], "NameAcquired", "org.example.Second");
        expect_noc(&p[0], "org.example.Second", owner_name, uname_of(&p[0]));
        expect_noc(&p[1], NAME, owner_name, "");
        expect_quiet(p, 2);
        ck_assert_ptr_null(testbus_name_owner(p[1].bus, NAME));
        assert_owner(p[1].bus, "org.example.Second", uname_of(&p[0]));
        free(owner_name);
        party_close(&p[0]);
        party_close(&p[1]);
}
END_TEST

/* ---- invalid names ------------------------------------------------------------------ */

START_TEST(test_invalid_names)
{
        ipcbus_bus *bus = testbus_connect(testbus_current());
        char long_name[300], body[512], *owner;
        static const char *const invalid[] = {
                "",
                "org",
                "org..example",
                "org.example.",
                ".org.example",
                "org.1example",
                "org.exa mple",
                "org.example/x",
                "org.ex\\u00e9mple",
                ":1.5",
                IPCBUS_DRIVER_NAME,
                NULL,
        };

        for (size_t i = 0; invalid[i]; i++) {
                snprintf(body, sizeof(body), "{\"name\":\"%s\"}", invalid[i]);
                testbus_driver_error(bus, "RequestName", body, IPCBUS_ERROR_INVALID_ARGS);
                testbus_driver_error(bus, "ReleaseName", body, IPCBUS_ERROR_INVALID_ARGS);
        }
        /* its own unique name is not requestable either */
        snprintf(body, sizeof(body), "{\"name\":\"%s\"}", ipcbus_get_unique_name(bus));
        testbus_driver_error(bus, "RequestName", body, IPCBUS_ERROR_INVALID_ARGS);

        /* 255 bytes is the longest name */
        memset(long_name, 'a', sizeof(long_name));
        memcpy(long_name, "org.", 4);
        long_name[255] = '\0';
        ck_assert_int_eq(testbus_request_name(bus, long_name, 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        long_name[255] = 'a';
        long_name[256] = '\0';
        snprintf(body, sizeof(body), "{\"name\":\"%s\"}", long_name);
        testbus_driver_error(bus, "RequestName", body, IPCBUS_ERROR_INVALID_ARGS);

        /* '-' and '_' are allowed in well-known names */
        ck_assert_int_eq(testbus_request_name(bus, "org.ex-ample_1.x", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        owner = testbus_name_owner(bus, "org.ex-ample_1.x");
        ck_assert_str_eq(owner, ipcbus_get_unique_name(bus));
        free(owner);
        ipcbus_unref(bus);
}
END_TEST

START_TEST(test_list_queued_owners_no_owner)
{
        ipcbus_bus *bus = testbus_connect(testbus_current());

        testbus_driver_error(bus, "ListQueuedOwners", "{\"name\":\"org.example.Nobody\"}",
                             IPCBUS_ERROR_NAME_HAS_NO_OWNER);
        ipcbus_unref(bus);
}
END_TEST

static Suite *names_suite(void)
{
        Suite *s = suite_create("bus_names");
        TCase *tc;

        tc = testbus_tcase("request");
        tcase_add_test(tc, test_request_primary_owner);
        tcase_add_test(tc, test_request_already_owner);
        tcase_add_test(tc, test_request_exists_do_not_queue);
        tcase_add_test(tc, test_request_in_queue);
        tcase_add_test(tc, test_replacement_allowed);
        tcase_add_test(tc, test_replacement_not_allowed);
        tcase_add_test(tc, test_replaced_owner_with_do_not_queue_leaves);
        tcase_add_test(tc, test_owner_flags_updated);
        tcase_add_test(tc, test_queued_flags_updated);
        suite_add_tcase(s, tc);

        tc = testbus_tcase("release");
        tcase_add_test(tc, test_release_by_owner_next_in_queue);
        tcase_add_test(tc, test_release_last_owner);
        tcase_add_test(tc, test_release_by_queued);
        tcase_add_test(tc, test_release_non_existent_and_not_owner);
        tcase_add_test(tc, test_owner_disconnect_next_owner);
        tcase_add_test(tc, test_queued_disconnect_leaves_queue);
        tcase_add_test(tc, test_owner_disconnect_several_names);
        suite_add_tcase(s, tc);

        tc = testbus_tcase("invalid");
        tcase_add_test(tc, test_invalid_names);
        tcase_add_test(tc, test_list_queued_owners_no_owner);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return testbus_run_suite(names_suite());
}
