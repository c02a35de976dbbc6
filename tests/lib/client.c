/* SPDX-License-Identifier: MIT */
/* testbus: clients through libipcbus, and calls. */
#include <check.h>
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/lib/client.h"
#include "tests/lib/internal.h"
#include "tests/lib/json.h"

ipcbus_bus *testbus_connect(struct testbus *tb)
{
        ipcbus_bus *bus = NULL;
        int r = ipcbus_open_address(tb->address, &bus);

        ck_assert_msg(r >= 0, "ipcbus_open_address(%s): %s", tb->address, ipcbus_strerror(r));
        ck_assert_ptr_nonnull(bus);
        testbus_sync(bus);
        return bus;
}

void cred_enter(struct testbus *tb, const struct testbus_cred *cred, struct saved_cred *s)
{
        ck_assert_msg(geteuid() == 0, "acting as another user needs root");
        testbus_share_dirs(tb);
        s->euid = geteuid();
        s->egid = getegid();
        s->n_groups = getgroups(64, s->groups);
        ck_assert_msg(s->n_groups >= 0, "getgroups: %s", strerror(errno));
        ck_assert_msg(setgroups(cred->n_groups, cred->n_groups ? cred->groups : NULL) == 0 && setegid(cred->gid) == 0 &&
                              seteuid(cred->uid) == 0,
                      "cannot act as uid %u gid %u: %s", (unsigned) cred->uid, (unsigned) cred->gid, strerror(errno));
}

void cred_leave(const struct saved_cred *s)
{
        /* the way back must work: the rest of the test would run with the wrong rights */
        if (seteuid(s->euid) < 0 || setegid(s->egid) < 0 || setgroups((size_t) s->n_groups, s->groups) < 0)
                abort();
}

int testbus_open_as(struct testbus *tb, const struct testbus_cred *cred, ipcbus_bus **ret)
{
        struct saved_cred s;
        int r;

        cred_enter(tb, cred, &s);
        r = ipcbus_open_address(tb->address, ret);
        cred_leave(&s);
        return r;
}

ipcbus_bus *testbus_connect_as(struct testbus *tb, const struct testbus_cred *cred)
{
        ipcbus_bus *bus = NULL;
        int r = testbus_open_as(tb, cred, &bus);

        ck_assert_msg(r >= 0, "ipcbus_open_address(%s) as uid %u: %s", tb->address, (unsigned) cred->uid,
                      ipcbus_strerror(r));
        ck_assert_ptr_nonnull(bus);
        testbus_sync(bus);
        return bus;
}

void testbus_pump(ipcbus_bus *bus)
{
        int r;

        while ((r = ipcbus_process(bus)) > 0)
                ;
        ck_assert_msg(r == 0, "ipcbus_process: %s", ipcbus_strerror(r));
}

void testbus_sync(ipcbus_bus *bus)
{
        json_object *o = testbus_driver(bus, "Ping", NULL);

        json_object_put(o);
        testbus_pump(bus);
}

bool testbus_pump_until(ipcbus_bus *const *buses, bool (*done)(void *userdata), void *userdata, int timeout_ms)
{
        int64_t deadline = testbus_now_ms() + timeout_ms;

        for (;;) {
                struct pollfd pfd[16];
                size_t n = 0;
                int timeout;

                for (size_t i = 0; buses[i]; i++)
                        testbus_pump(buses[i]);
                if (done(userdata))
                        return true;
                timeout = ms_left(deadline);
                if (timeout <= 0)
                        return false;
                for (; buses[n]; n++) {
                        uint64_t t = UINT64_MAX, now = now_usec();

                        ck_assert_uint_lt(n, 16);
                        pfd[n] = (struct pollfd){.fd = ipcbus_get_fd(buses[n]),
                                                 .events = (short) ipcbus_get_events(buses[n])};
                        ipcbus_get_timeout(buses[n], &t);
                        if (t != UINT64_MAX) {
                                uint64_t ms = t <= now ? 0 : (t - now + 999) / 1000;
                                if (ms < (uint64_t) timeout)
                                        timeout = (int) ms;
                        }
                }
                poll(pfd, n, timeout);
        }
}

json_object *testbus_call(ipcbus_bus *bus, const char *destination, const char *path, const char *interface,
                          const char *member, const char *body)
{
        ipcbus_message *reply = NULL;
        ipcbus_error e = IPCBUS_ERROR_NULL;
        json_object *o;
        int r;

        r = ipcbus_call(bus, destination, path, interface, member, body, 10 * 1000000ull, &reply, &e);
        ck_assert_msg(r >= 0, "%s on %s failed: %s: %s", member, destination,
                      r == -EREMOTEIO ? e.name : ipcbus_strerror(r), e.message ? e.message : "");
        ck_assert_ptr_nonnull(reply);
        ck_assert_int_eq(ipcbus_message_get_type(reply), IPCBUS_MESSAGE_RETURN);
        o = testbus_message_json(reply);
        ipcbus_message_unref(reply);
        return o;
}

char *testbus_call_error(ipcbus_bus *bus, const char *destination, const char *path, const char *interface,
                         const char *member, const char *body, const char *error_name)
{
        ipcbus_message *reply = NULL;
        ipcbus_error e = IPCBUS_ERROR_NULL;
        char *message;
        int r;

        r = ipcbus_call(bus, destination, path, interface, member, body, 10 * 1000000ull, &reply, &e);
        ck_assert_msg(r == -EREMOTEIO, "%s(%s) on %s: expected %s, got %s", member, body ? body : "", destination,
                      error_name, r >= 0 ? "a return" : ipcbus_strerror(r));
        ck_assert_msg(e.name && strcmp(e.name, error_name) == 0, "%s(%s) on %s: expected %s, got %s: %s", member,
                      body ? body : "", destination, error_name, e.name ? e.name : "(no name)",
                      e.message ? e.message : "");
        ipcbus_message_unref(reply);
        message = e.message ? strdup(e.message) : NULL;
        ipcbus_error_free(&e);
        return message;
}

json_object *testbus_driver(ipcbus_bus *bus, const char *member, const char *body)
{
        return testbus_call(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE, member, body);
}

void testbus_driver_error(ipcbus_bus *bus, const char *member, const char *body, const char *error_name)
{
        free(testbus_call_error(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE, member, body,
                                error_name));
}

/* A driver call on one name (with optional flags) whose reply is {"result": N}. */
static int name_call(ipcbus_bus *bus, const char *member, const char *name, int flags)
{
        json_object *o;
        char *body;
        int result;

        ck_assert_int_ge(
                asprintf(&body, flags >= 0 ? "{\"name\":\"%s\",\"flags\":%d}" : "{\"name\":\"%s\"}", name, flags), 0);
        o = testbus_driver(bus, member, body);
        testbus_json_keys(o, "result", NULL);
        result = (int) testbus_json_int(o, "result");
        json_object_put(o);
        free(body);
        return result;
}

int testbus_request_name(ipcbus_bus *bus, const char *name, unsigned flags)
{
        return name_call(bus, "RequestName", name, (int) flags);
}

int testbus_release_name(ipcbus_bus *bus, const char *name)
{
        return name_call(bus, "ReleaseName", name, -1);
}

char *testbus_name_owner(ipcbus_bus *bus, const char *name)
{
        ipcbus_message *reply = NULL;
        ipcbus_error e = IPCBUS_ERROR_NULL;
        json_object *o;
        char *body, *owner;
        int r;

        ck_assert_int_ge(asprintf(&body, "{\"name\":\"%s\"}", name), 0);
        r = ipcbus_call(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE, "GetNameOwner", body,
                        10 * 1000000ull, &reply, &e);
        free(body);
        if (r == -EREMOTEIO && ipcbus_error_has_name(&e, IPCBUS_ERROR_NAME_HAS_NO_OWNER)) {
                ipcbus_error_free(&e);
                return NULL;
        }
        ck_assert_msg(r >= 0, "GetNameOwner(%s): %s %s", name, r == -EREMOTEIO ? e.name : ipcbus_strerror(r),
                      e.message ? e.message : "");
        o = testbus_message_json(reply);
        testbus_json_keys(o, "owner", NULL);
        owner = strdup(testbus_json_string(o, "owner"));
        json_object_put(o);
        ipcbus_message_unref(reply);
        return owner;
}

static void match_call(ipcbus_bus *bus, const char *member, const char *rule_json)
{
        json_object *o;
        char *body;

        ck_assert_int_ge(asprintf(&body, "{\"rule\":%s}", rule_json), 0);
        o = testbus_driver(bus, member, body);
        testbus_json_keys(o, NULL);
        json_object_put(o);
        free(body);
}

void testbus_add_match(ipcbus_bus *bus, const char *rule_json)
{
        match_call(bus, "AddMatch", rule_json);
}

void testbus_remove_match(ipcbus_bus *bus, const char *rule_json)
{
        match_call(bus, "RemoveMatch", rule_json);
}

static int pumped_on_answer(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        ipcbus_message **answer = userdata;

        (void) ret_error;
        *answer = ipcbus_message_ref(m);
        return 0;
}

static bool pumped_answered(void *userdata)
{
        return *(ipcbus_message **) userdata != NULL;
}

ipcbus_message *testbus_call_pumped(ipcbus_bus *const *buses, ipcbus_bus *caller, ipcbus_message *call)
{
        ipcbus_message *answer = NULL;
        int r;

        r = ipcbus_call_message_async(caller, NULL, call, 0, pumped_on_answer, &answer);
        ck_assert_msg(r == 0, "ipcbus_call_message_async: %s (%s)", ipcbus_strerror(r), ipcbus_last_error());
        ck_assert_msg(testbus_pump_until(buses, pumped_answered, &answer, TESTBUS_WAIT_MS), "no answer came");
        return answer;
}
