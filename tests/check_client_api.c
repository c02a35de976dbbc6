/* SPDX-License-Identifier: MIT */
/*
 * The libipcbus API against a real ipcbusd: opening, sync and async calls
 * (ipcbus_process / ipcbus_wait, and a libevent event_base), local timeouts,
 * slots, matches (also by well-known sender, as names change hands),
 * filters, exported objects and their errors, deferred replies, the error
 * helpers, messages arriving during a sync call, and losing the connection;
 * the connection's lifetime (ipcbus_ref, ipcbus_close, ipcbus_unref, a
 * forked child's -ECHILD, ipcbus_open_starter, also from an activated
 * service), and the broker's refusals handed back named (AddMatch,
 * BecomeMonitor).
 */
#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/testbus.h"

#define SERVICE "org.example.Client"
#define SECOND 1000000ull

static uint64_t now_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * SECOND + (uint64_t) ts.tv_nsec / 1000u;
}

/* Messages handed to a callback. */
struct got {
        size_t n;
        ipcbus_message *msgs[16];
};

static int on_message(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct got *g = userdata;

        ck_assert_uint_lt(g->n, 16);
        g->msgs[g->n++] = ipcbus_message_ref(m);
        return 0;
}

static void got_deinit(struct got *g)
{
        for (size_t i = 0; i < g->n; i++)
                ipcbus_message_unref(g->msgs[i]);
        g->n = 0;
}

struct got_wait {
        struct got *got;
        size_t want;
};

static bool got_enough(void *userdata)
{
        struct got_wait *w = userdata;

        return w->got->n >= w->want;
}

/* Drive bus (and others) until g has `want` messages. */
static void got_wait(ipcbus_bus *const *buses, struct got *g, size_t want)
{
        struct got_wait w = {g, want};

        ck_assert_msg(testbus_pump_until(buses, got_enough, &w, TESTBUS_WAIT_MS), "%zu of %zu messages came", g->n,
                      want);
}

/* ---- connections -------------------------------------------------------------------- */

START_TEST(test_open)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *bus = NULL, *sentinel = (ipcbus_bus *) &bus;
        char missing[300];
        const char *name;

        ck_assert_int_eq(ipcbus_open_address(tb->address, &bus), 0);
        name = ipcbus_get_unique_name(bus);
        ck_assert_msg(name && strncmp(name, ":1.", 3) == 0, "unique name '%s'", name ? name : "(null)");
        ck_assert(ipcbus_is_open(bus));
        ck_assert_int_ge(ipcbus_get_fd(bus), 0);
        ipcbus_unref(bus);
        ck_assert_ptr_null(ipcbus_unref(NULL));

        /* the session bus comes from $IPCBUS_ADDRESS */
        setenv("IPCBUS_ADDRESS", tb->address, 1);
        bus = NULL;
        ck_assert_int_eq(ipcbus_open_session(&bus), 0);
        ck_assert(ipcbus_is_open(bus));
        ipcbus_unref(bus);

        /* failures leave the output alone */
        bus = sentinel;
        ck_assert_int_eq(ipcbus_open_address("tcp:host=localhost", &bus), -EINVAL);
        ck_assert_int_eq(ipcbus_open_address("unix:path=relative/bus", &bus), -EINVAL);
        snprintf(missing, sizeof(missing), "unix:path=%s/nothing-here", tb->dir);
        ck_assert_int_lt(ipcbus_open_address(missing, &bus), 0);
        ck_assert_ptr_eq(bus, sentinel);
        ck_assert_ptr_nonnull(ipcbus_strerror(-ENOTCONN));
        ck_assert_ptr_nonnull(ipcbus_strerror(-EREMOTEIO));
}
END_TEST

/* ---- calls ----------------------------------------------------------------------------- */

START_TEST(test_sync_call)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        ipcbus_message *reply = NULL, *sentinel;
        ipcbus_error e = IPCBUS_ERROR_NULL;
        ipcbus_bus *bus;
        size_t len;

        testbus_service_start(tb, &svc, SERVICE);
        bus = testbus_connect(tb);
        ck_assert_int_eq(ipcbus_call(bus, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Echo",
                                     "{\"title\":\"hi\",\"n\":2}", 5 * SECOND, &reply, &e),
                         0);
        ck_assert(!ipcbus_error_is_set(&e));
        ck_assert_int_eq(ipcbus_message_get_type(reply), IPCBUS_MESSAGE_RETURN);
        ck_assert_str_eq(ipcbus_message_get_sender(reply), svc.unique);
        ck_assert_str_eq(ipcbus_message_get_destination(reply), ipcbus_get_unique_name(bus));
        ck_assert_uint_gt(ipcbus_message_get_reply_serial(reply), 0);
        ck_assert_str_eq(ipcbus_message_get_body(reply, &len), "{\"title\":\"hi\",\"n\":2}");
        ck_assert_uint_eq(len, strlen("{\"title\":\"hi\",\"n\":2}"));
        ck_assert_str_eq(ipcbus_message_get_arg(reply, "title"), "hi");
        ck_assert_ptr_null(ipcbus_message_get_arg(reply, "n"));
        ck_assert_ptr_eq(ipcbus_message_get_bus(reply), bus);
        ck_assert_ptr_nonnull(ipcbus_message_get_header(reply, &len));
        ck_assert_uint_gt(len, 2);
        ipcbus_message_unref(reply);

        /* an error reply: -EREMOTEIO, the error filled, the reply pointer untouched */
        sentinel = (ipcbus_message *) &reply;
        reply = sentinel;
        ck_assert_int_eq(ipcbus_call(bus, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Fail", NULL,
                                     5 * SECOND, &reply, &e),
                         -EREMOTEIO);
        ck_assert_ptr_eq(reply, sentinel);
        ck_assert_str_eq(e.name, TESTBUS_SERVICE_ERROR);
        ck_assert_str_eq(e.message, "failed on purpose");
        ipcbus_error_free(&e);

        /* the reply and the error are optional */
        ck_assert_int_eq(ipcbus_call(bus, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Echo", NULL,
                                     5 * SECOND, NULL, NULL),
                         0);
        ck_assert_int_eq(ipcbus_call(bus, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Fail", NULL,
                                     5 * SECOND, NULL, NULL),
                         -EREMOTEIO);
        /* an invalid body is refused locally */
        ck_assert_int_eq(ipcbus_call(bus, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Echo", "{not json",
                                     5 * SECOND, NULL, NULL),
                         -EINVAL);
        testbus_child_finish(&svc);
        ipcbus_unref(bus);
}
END_TEST

START_TEST(test_broker_timeout_sync)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        ipcbus_error e = IPCBUS_ERROR_NULL;
        ipcbus_bus *bus;
        int64_t t0;

        testbus_service_start(tb, &svc, SERVICE);
        bus = testbus_connect(tb);
        t0 = testbus_now_ms();
        ck_assert_int_eq(ipcbus_call(bus, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Hold", NULL,
                                     300 * 1000, NULL, &e),
                         -EREMOTEIO);
        ck_assert_str_eq(e.name, IPCBUS_ERROR_TIMEOUT);
        ck_assert_int_ge(testbus_now_ms() - t0, 290);
        ck_assert_int_lt(testbus_now_ms() - t0, 3000);
        ipcbus_error_free(&e);
        testbus_child_finish(&svc);
        ipcbus_unref(bus);
}
END_TEST

struct numbered {
        int index;
        int calls;
        char body[64];
};

static int on_numbered(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct numbered *n = userdata;

        n->calls++;
        snprintf(n->body, sizeof(n->body), "%s", ipcbus_message_get_body(m, NULL));
        return 0;
}

START_TEST(test_async_calls_process_wait)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct numbered calls[10];
        ipcbus_slot *slots[5];
        ipcbus_bus *bus;
        int64_t deadline;
        int done = 0;

        testbus_service_start(tb, &svc, SERVICE);
        bus = testbus_connect(tb);
        for (int i = 0; i < 10; i++) {
                char body[64];

                calls[i] = (struct numbered){.index = i};
                snprintf(body, sizeof(body), "{\"i\":\"%d\"}", i);
                /* half with a slot, half floating */
                ck_assert_int_ge(ipcbus_call_async(bus, i < 5 ? &slots[i] : NULL, SERVICE, TESTBUS_SERVICE_PATH,
                                                   TESTBUS_SERVICE_INTERFACE, "Echo", body, 5 * SECOND, on_numbered,
                                                   &calls[i]),
                                 0);
        }
        for (int i = 0; i < 5; i++)
                ck_assert_ptr_eq(ipcbus_slot_get_userdata(slots[i]), &calls[i]);
        deadline = testbus_now_ms() + TESTBUS_WAIT_MS;
        while (done < 10 && testbus_now_ms() < deadline) {
                int r = ipcbus_process(bus);

                ck_assert_int_ge(r, 0);
                if (r == 0)
                        ck_assert_int_ge(ipcbus_wait(bus, 100 * 1000), 0);
                done = 0;
                for (int i = 0; i < 10; i++)
                        done += calls[i].calls > 0;
        }
        for (int i = 0; i < 10; i++) {
                char want[64];

                snprintf(want, sizeof(want), "{\"i\":\"%d\"}", i);
                ck_assert_int_eq(calls[i].calls, 1);
                ck_assert_str_eq(calls[i].body, want);
        }
        for (int i = 0; i < 5; i++)
                ck_assert_ptr_null(ipcbus_slot_unref(slots[i]));
        testbus_child_finish(&svc);
        ipcbus_unref(bus);
}
END_TEST

/* Each answer issues the next call from inside the callback, until five are done. */
struct chain {
        ipcbus_bus *bus;
        struct event_base *base;
        int done;
        bool bad;
};

static int on_chain(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct chain *c = userdata;
        char want[64];

        snprintf(want, sizeof(want), "{\"step\":%d}", c->done);
        if (ipcbus_message_get_type(m) != IPCBUS_MESSAGE_RETURN || strcmp(ipcbus_message_get_body(m, NULL), want) != 0)
                c->bad = true;
        if (++c->done == 5) {
                event_base_loopbreak(c->base);
                return 0;
        }
        snprintf(want, sizeof(want), "{\"step\":%d}", c->done);
        if (ipcbus_call_async(c->bus, NULL, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Echo", want,
                              5 * SECOND, on_chain, c) < 0)
                c->bad = true;
        return 0;
}

static void on_guard(evutil_socket_t fd, short what, void *userdata)
{
        event_base_loopbreak(userdata);
}

START_TEST(test_async_calls_libevent)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct chain c = {0};
        struct timeval guard_tv = {.tv_sec = 10};
        struct event *guard;

        testbus_service_start(tb, &svc, SERVICE);
        c.bus = testbus_connect(tb);
        c.base = event_base_new();
        ck_assert_ptr_nonnull(c.base);
        guard = evtimer_new(c.base, on_guard, c.base);
        evtimer_add(guard, &guard_tv);
        ck_assert_int_eq(ipcbus_attach_event(c.bus, c.base), 0);
        ck_assert_int_ge(ipcbus_call_async(c.bus, NULL, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE,
                                           "Echo", "{\"step\":0}", 5 * SECOND, on_chain, &c),
                         0);
        event_base_dispatch(c.base);
        ck_assert_msg(c.done == 5, "%d of 5 chained calls answered through libevent", c.done);
        ck_assert(!c.bad);
        ck_assert_int_eq(ipcbus_detach_event(c.bus), 0);
        event_free(guard);
        event_base_free(c.base);
        testbus_child_finish(&svc);
        ipcbus_unref(c.bus);
}
END_TEST

/* A signal subscription also runs from the event_base. */
static int on_signal_break(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        event_base_loopbreak(userdata);
        return 0;
}

START_TEST(test_match_libevent)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *sub = testbus_connect(tb), *emitter = testbus_connect(tb);
        struct event_base *base = event_base_new();
        struct timeval guard_tv = {.tv_sec = 10};
        struct event *guard = evtimer_new(base, on_guard, base);
        ipcbus_slot *slot = NULL;
        int64_t t0;

        ck_assert_int_ge(
                ipcbus_add_match(sub, &slot, "interface=org.example.Client,member=Ping2", on_signal_break, base, NULL),
                0);
        ck_assert_int_eq(ipcbus_attach_event(sub, base), 0);
        evtimer_add(guard, &guard_tv);
        ck_assert_int_ge(ipcbus_emit_signal(emitter, NULL, "/x", "org.example.Client", "Ping2", NULL), 0);
        ck_assert_int_ge(ipcbus_flush(emitter), 0);
        t0 = testbus_now_ms();
        event_base_dispatch(base);
        ck_assert_int_lt(testbus_now_ms() - t0, 5000);
        ipcbus_detach_event(sub);
        ipcbus_slot_unref(slot);
        event_free(guard);
        event_base_free(base);
        ipcbus_unref(sub);
        ipcbus_unref(emitter);
}
END_TEST

START_TEST(test_local_timeout)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *bus = testbus_connect(tb), *buses[] = {bus, NULL};
        ipcbus_error e = IPCBUS_ERROR_NULL;
        struct got got = {0};
        int64_t t0;
        int r;

        /* a broker that does not answer at all: only the library's own deadline ends the call */
        ck_assert_int_eq(kill(tb->pid, SIGSTOP), 0);
        t0 = testbus_now_ms();
        r = ipcbus_call(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE, "Ping", NULL, 200 * 1000,
                        NULL, &e);
        ck_assert_int_eq(r, -ETIMEDOUT);
        ck_assert_int_ge(testbus_now_ms() - t0, 200);
        ck_assert_int_lt(testbus_now_ms() - t0, 5000);

        /* async: the callback gets a synthesised Timeout error */
        ck_assert_int_ge(ipcbus_call_async(bus, NULL, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE,
                                           "Ping", NULL, 200 * 1000, on_message, &got),
                         0);
        got_wait(buses, &got, 1);
        ck_assert_int_eq(ipcbus_message_get_type(got.msgs[0]), IPCBUS_MESSAGE_ERROR);
        ck_assert_str_eq(ipcbus_message_get_error_name(got.msgs[0]), IPCBUS_ERROR_TIMEOUT);
        ck_assert_int_eq(kill(tb->pid, SIGCONT), 0);

        /* the late answers are dropped and the connection goes on */
        testbus_sync(bus);
        ck_assert_uint_eq(got.n, 1);
        got_deinit(&got);
        ipcbus_unref(bus);
}
END_TEST

START_TEST(test_drop_slot_cancels_callback)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct got got = {0};
        ipcbus_slot *slot = NULL;
        ipcbus_bus *bus;
        char *line;

        testbus_service_start(tb, &svc, SERVICE);
        bus = testbus_connect(tb);
        ck_assert_int_ge(ipcbus_call_async(bus, &slot, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Hold",
                                           NULL, 5 * SECOND, on_message, &got),
                         0);
        line = testbus_child_read(&svc, TESTBUS_WAIT_MS);
        ck_assert_msg(strncmp(line, "held ", 5) == 0, "service reported '%s'", line);
        free(line);
        ck_assert_ptr_null(ipcbus_slot_unref(slot));
        testbus_child_send(&svc, "release");
        testbus_child_expect(&svc, "released 1");
        /* the answer has come by the time a later call is answered; it runs nothing */
        json_object_put(testbus_call(bus, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Echo", "{}"));
        testbus_pump(bus);
        ck_assert_uint_eq(got.n, 0);
        testbus_child_finish(&svc);
        ipcbus_unref(bus);
}
END_TEST

/* get_timeout reports the earliest async deadline on CLOCK_MONOTONIC, UINT64_MAX without one. */
START_TEST(test_get_timeout)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct got got = {0};
        ipcbus_bus *bus, *buses[2] = {NULL, NULL};
        uint64_t t = 0, before;

        testbus_service_start(tb, &svc, SERVICE);
        bus = testbus_connect(tb);
        buses[0] = bus;
        ck_assert_int_eq(ipcbus_get_timeout(bus, &t), 0);
        ck_assert_uint_eq(t, UINT64_MAX);
        before = now_usec();
        ck_assert_int_ge(ipcbus_call_async(bus, NULL, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Hold",
                                           NULL, 8 * SECOND, on_message, &got),
                         0);
        ck_assert_int_eq(ipcbus_get_timeout(bus, &t), 0);
        ck_assert_uint_ge(t, before + 7 * SECOND);
        ck_assert_uint_le(t, now_usec() + 10 * SECOND);
        free(testbus_child_read(&svc, TESTBUS_WAIT_MS));
        testbus_child_send(&svc, "release");
        got_wait(buses, &got, 1);
        ck_assert_int_eq(ipcbus_get_timeout(bus, &t), 0);
        ck_assert_uint_eq(t, UINT64_MAX);
        got_deinit(&got);
        testbus_child_finish(&svc);
        ipcbus_unref(bus);
}
END_TEST

START_TEST(test_send_oneway)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        ipcbus_bus *bus;

        testbus_service_start(tb, &svc, SERVICE);
        bus = testbus_connect(tb);
        ck_assert_int_ge(ipcbus_send_oneway(bus, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Record",
                                            "{\"once\":true}"),
                         0);
        ck_assert_int_ge(ipcbus_flush(bus), 0);
        testbus_child_expect(&svc, "record 1 {\"once\":true}");
        testbus_child_finish(&svc);
        ipcbus_unref(bus);
}
END_TEST

/* ---- matches and filters ------------------------------------------------------------------ */

START_TEST(test_add_match)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *sub = testbus_connect(tb), *emitter = testbus_connect(tb), *buses[] = {NULL, NULL};
        struct got got = {0}, sentinel = {0};
        ipcbus_slot *slot = NULL, *sentinel_slot = NULL, *sentinel_slot2 = NULL;
        struct testbus_rec rec;

        buses[0] = sub;
        testbus_rec_init(&rec, sub, TESTBUS_REC_SIGNALS);
        /* "type=signal" is implied */
        ck_assert_int_ge(
                ipcbus_add_match(sub, &slot, "interface=org.example.Client,member=Changed", on_message, &got, NULL), 0);
        ck_assert_int_ge(
                ipcbus_add_match(sub, &sentinel_slot, "interface=org.example.Sentinel", on_message, &sentinel, NULL),
                0);
        ck_assert_int_ge(ipcbus_emit_signal(emitter, NULL, "/x", "org.example.Client", "Other", "{}"), 0);
        ck_assert_int_ge(ipcbus_emit_signal(emitter, NULL, "/x", "org.example.Client", "Changed", "{\"title\":\"t\"}"),
                         0);
        ck_assert_int_ge(ipcbus_emit_signal(emitter, NULL, "/", "org.example.Sentinel", "S", NULL), 0);
        ck_assert_int_ge(ipcbus_flush(emitter), 0);
        got_wait(buses, &sentinel, 1);
        ck_assert_uint_eq(got.n, 1);
        ck_assert_str_eq(ipcbus_message_get_member(got.msgs[0]), "Changed");
        ck_assert_str_eq(ipcbus_message_get_arg(got.msgs[0], "title"), "t");
        ck_assert_str_eq(ipcbus_message_get_sender(got.msgs[0]), ipcbus_get_unique_name(emitter));
        /* the broker did not even send "Other" */
        ck_assert_uint_eq(testbus_rec_count(&rec, "Other"), 0);

        /* dropping the slot removes the match on the broker too */
        ck_assert_ptr_null(ipcbus_slot_unref(slot));
        testbus_sync(sub);
        testbus_rec_skip(&rec);
        ck_assert_int_ge(ipcbus_emit_signal(emitter, NULL, "/x", "org.example.Client", "Changed", "{}"), 0);
        ck_assert_int_ge(ipcbus_emit_signal(emitter, NULL, "/", "org.example.Sentinel", "S", NULL), 0);
        ck_assert_int_ge(ipcbus_flush(emitter), 0);
        got_wait(buses, &sentinel, 2);
        ck_assert_uint_eq(got.n, 1);
        ck_assert_uint_eq(testbus_rec_count(&rec, "Changed"), 0);

        /* invalid rules */
        ck_assert_int_eq(ipcbus_add_match(sub, &sentinel_slot2, "bogus=1", on_message, &got, NULL), -EINVAL);
        ck_assert_msg(strstr(ipcbus_last_error(), "unknown key 'bogus'") &&
                              strstr(ipcbus_last_error(), "interface, member"),
                      "last error: %s", ipcbus_last_error());
        ck_assert_int_eq(ipcbus_add_match(sub, &sentinel_slot2, "type=nonsense", on_message, &got, NULL), -EINVAL);
        ck_assert_str_eq(ipcbus_last_error(),
                         "rule: type: 'nonsense' is not a message type (call, return, error, signal)");
        ck_assert_int_eq(ipcbus_add_match(sub, &sentinel_slot2, "member='Changed", on_message, &got, NULL), -EINVAL);
        ck_assert_msg(strstr(ipcbus_last_error(), "member: unterminated quote"), "last error: %s", ipcbus_last_error());
        ck_assert_ptr_null(sentinel_slot2);
        {
                const char *const rules[] = {"interface=org.example.I", "member=a.b"};

                ck_assert_int_eq(ipcbus_become_monitor(sub, rules, 2, NULL), -EINVAL);
                ck_assert_str_eq(ipcbus_last_error(), "rules[1]: member: 'a.b' is not a valid member name");
        }

        got_deinit(&got);
        got_deinit(&sentinel);
        ipcbus_slot_unref(sentinel_slot);
        testbus_rec_deinit(&rec);
        ipcbus_unref(sub);
        ipcbus_unref(emitter);
}
END_TEST

static int eat_filter(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct got *g = userdata;
        const char *member = ipcbus_message_get_member(m);

        on_message(m, g, ret_error);
        return member && strcmp(member, "Eaten") == 0 ? 1 : 0;
}

START_TEST(test_filters)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *sub = testbus_connect(tb), *emitter = testbus_connect(tb), *buses[] = {NULL, NULL};
        struct got matched = {0}, filtered = {0};
        ipcbus_slot *match = NULL, *filter = NULL;

        buses[0] = sub;
        ck_assert_int_ge(ipcbus_add_match(sub, &match, "interface=org.example.Client", on_message, &matched, NULL), 0);
        ck_assert_int_ge(ipcbus_add_filter(sub, &filter, eat_filter, &filtered), 0);
        ck_assert_int_ge(ipcbus_emit_signal(emitter, NULL, "/x", "org.example.Client", "Eaten", NULL), 0);
        ck_assert_int_ge(ipcbus_emit_signal(emitter, NULL, "/x", "org.example.Client", "Kept", NULL), 0);
        ck_assert_int_ge(ipcbus_flush(emitter), 0);
        got_wait(buses, &matched, 1);
        testbus_sync(sub);
        /* the filter saw both, first; the one it consumed went no further */
        ck_assert_uint_ge(filtered.n, 2);
        ck_assert_uint_eq(matched.n, 1);
        ck_assert_str_eq(ipcbus_message_get_member(matched.msgs[0]), "Kept");

        ck_assert_ptr_null(ipcbus_slot_unref(filter));
        ck_assert_int_ge(ipcbus_emit_signal(emitter, NULL, "/x", "org.example.Client", "Eaten", NULL), 0);
        ck_assert_int_ge(ipcbus_flush(emitter), 0);
        got_wait(buses, &matched, 2);
        ck_assert_str_eq(ipcbus_message_get_member(matched.msgs[1]), "Eaten");
        got_deinit(&matched);
        got_deinit(&filtered);
        ipcbus_slot_unref(match);
        ipcbus_unref(sub);
        ipcbus_unref(emitter);
}
END_TEST

START_TEST(test_messages_during_sync_call_not_lost)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct got ticks = {0};
        ipcbus_slot *slot = NULL;
        ipcbus_bus *bus;

        testbus_service_start(tb, &svc, SERVICE);
        bus = testbus_connect(tb);
        ck_assert_int_ge(ipcbus_add_match(bus, &slot, "interface=" TESTBUS_SERVICE_INTERFACE ",member=Tick", on_message,
                                          &ticks, NULL),
                         0);
        /* the service emits three signals, then answers: they arrive while we wait for the answer */
        json_object_put(testbus_call(bus, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "EmitThenReply",
                                     "{\"n\":3}"));
        ck_assert_uint_eq(ticks.n, 0);
        testbus_pump(bus);
        ck_assert_uint_eq(ticks.n, 3);
        for (size_t i = 0; i < 3; i++) {
                char want[32];

                snprintf(want, sizeof(want), "{\"i\":%zu}", i);
                ck_assert_str_eq(ipcbus_message_get_body(ticks.msgs[i], NULL), want);
        }
        got_deinit(&ticks);
        ipcbus_slot_unref(slot);
        testbus_child_finish(&svc);
        ipcbus_unref(bus);
}
END_TEST

/* ---- well-known senders ------------------------------------------------------------------------------ */

#define NAME_A "org.example.A"
#define NAME_B "org.example.B"
#define RULE_A "sender=" NAME_A ",interface=" TESTBUS_SERVICE_INTERFACE ",member=M"
#define RULE_B "sender=" NAME_B ",interface=" TESTBUS_SERVICE_INTERFACE ",member=M"
#define RULE_DONE "interface=" TESTBUS_SERVICE_INTERFACE ",member=Done"

/* The i-th message of g is the signal M {"from": from}, sent by `sender`. */
static void got_assert_from(struct got *g, size_t i, const char *from, const char *sender)
{
        ck_assert_uint_gt(g->n, i);
        ck_assert_str_eq(ipcbus_message_get_member(g->msgs[i]), "M");
        ck_assert_str_eq(ipcbus_message_get_arg(g->msgs[i], "from"), from);
        ck_assert_str_eq(ipcbus_message_get_sender(g->msgs[i]), sender);
}

/* A forked service emits M {"from": from}, then the sentinel Done. */
static void service_emit(struct testbus_child *c, const char *from)
{
        testbus_child_send(c, "emit M {\"from\":\"%s\"}", from);
        testbus_child_expect(c, "emitted");
        testbus_child_send(c, "emit Done");
        testbus_child_expect(c, "emitted");
}

/* A connection of this process does the same. */
static void bus_emit(ipcbus_bus *bus, const char *from)
{
        char body[64];

        snprintf(body, sizeof(body), "{\"from\":\"%s\"}", from);
        ck_assert_int_ge(ipcbus_emit_signal(bus, NULL, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "M", body), 0);
        ck_assert_int_ge(ipcbus_emit_signal(bus, NULL, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Done", NULL),
                         0);
        ck_assert_int_ge(ipcbus_flush(bus), 0);
}

/*
 * Two rules that differ only in their well-known sender, owned by two
 * services: the broker delivers each signal once (both rules are the
 * connection's), and only the slot of the sender's own name runs.
 */
START_TEST(test_match_sender_well_known)
{
        struct testbus *tb = testbus_current();
        struct testbus_child a, b;
        struct got got_a = {0}, got_b = {0}, done = {0};
        ipcbus_slot *slot_a = NULL, *slot_b = NULL, *slot_done = NULL;
        ipcbus_bus *bus, *buses[] = {NULL, NULL};

        testbus_service_start(tb, &a, NAME_A);
        testbus_service_start(tb, &b, NAME_B);
        bus = testbus_connect(tb);
        buses[0] = bus;
        ck_assert_int_ge(ipcbus_add_match(bus, &slot_a, RULE_A, on_message, &got_a, NULL), 0);
        ck_assert_int_ge(ipcbus_add_match(bus, &slot_b, RULE_B, on_message, &got_b, NULL), 0);
        ck_assert_int_ge(ipcbus_add_match(bus, &slot_done, RULE_DONE, on_message, &done, NULL), 0);

        service_emit(&a, "a");
        service_emit(&b, "b");
        service_emit(&a, "a2");
        got_wait(buses, &done, 3);
        ck_assert_uint_eq(got_a.n, 2);
        got_assert_from(&got_a, 0, "a", a.unique);
        got_assert_from(&got_a, 1, "a2", a.unique);
        ck_assert_uint_eq(got_b.n, 1);
        got_assert_from(&got_b, 0, "b", b.unique);

        got_deinit(&got_a);
        got_deinit(&got_b);
        got_deinit(&done);
        ipcbus_slot_unref(slot_a);
        ipcbus_slot_unref(slot_b);
        ipcbus_slot_unref(slot_done);
        testbus_child_finish(&a);
        testbus_child_finish(&b);
        ipcbus_unref(bus);
}
END_TEST

/*
 * The names change hands: the slots follow their new owners, whether the
 * names were owned when subscribing or not, as long as any slot uses them;
 * once none does, the library stops following them.
 */
START_TEST(test_match_sender_owner_moves)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *bus = testbus_connect(tb), *one = testbus_connect(tb), *two = testbus_connect(tb);
        ipcbus_bus *buses[] = {bus, NULL};
        const char *u1 = ipcbus_get_unique_name(one), *u2 = ipcbus_get_unique_name(two);
        struct got got_a = {0}, got_a2 = {0}, got_b = {0}, done = {0};
        ipcbus_slot *slot_a = NULL, *slot_a2 = NULL, *slot_b = NULL, *slot_done = NULL;
        struct testbus_rec rec;

        /* nobody owns the names yet */
        ck_assert_int_ge(ipcbus_add_match(bus, &slot_a, RULE_A, on_message, &got_a, NULL), 0);
        ck_assert_int_ge(ipcbus_add_match(bus, &slot_b, RULE_B, on_message, &got_b, NULL), 0);
        ck_assert_int_ge(ipcbus_add_match(bus, &slot_done, RULE_DONE, on_message, &done, NULL), 0);
        ck_assert_int_eq(testbus_request_name(one, NAME_A, 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        ck_assert_int_eq(testbus_request_name(two, NAME_B, 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        bus_emit(one, "one");
        bus_emit(two, "two");
        got_wait(buses, &done, 2);
        ck_assert_uint_eq(got_a.n, 1);
        got_assert_from(&got_a, 0, "one", u1);
        ck_assert_uint_eq(got_b.n, 1);
        got_assert_from(&got_b, 0, "two", u2);

        /* swap: A goes to two, B to one; the old owners' signals no longer run the old slots */
        ck_assert_int_eq(testbus_release_name(one, NAME_A), IPCBUS_RELEASE_NAME_RELEASED);
        ck_assert_int_eq(testbus_release_name(two, NAME_B), IPCBUS_RELEASE_NAME_RELEASED);
        ck_assert_int_eq(testbus_request_name(two, NAME_A, 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        ck_assert_int_eq(testbus_request_name(one, NAME_B, 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        bus_emit(one, "one");
        bus_emit(two, "two");
        got_wait(buses, &done, 4);
        ck_assert_uint_eq(got_a.n, 2);
        got_assert_from(&got_a, 1, "two", u2);
        ck_assert_uint_eq(got_b.n, 2);
        got_assert_from(&got_b, 1, "one", u1);

        /* a second slot on A shares the followed owner; dropping the first keeps it followed */
        ck_assert_int_ge(ipcbus_add_match(bus, &slot_a2, RULE_A, on_message, &got_a2, NULL), 0);
        ck_assert_ptr_null(ipcbus_slot_unref(slot_a));
        ck_assert_int_eq(testbus_release_name(two, NAME_A), IPCBUS_RELEASE_NAME_RELEASED);
        ck_assert_int_eq(testbus_request_name(one, NAME_A, 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        bus_emit(two, "two");
        bus_emit(one, "one");
        got_wait(buses, &done, 6);
        ck_assert_uint_eq(got_a.n, 2);
        ck_assert_uint_eq(got_a2.n, 1);
        got_assert_from(&got_a2, 0, "one", u1);
        ck_assert_uint_eq(got_b.n, 3);
        got_assert_from(&got_b, 2, "one", u1);

        /* with no slot left on the names, their NameOwnerChanged no longer comes */
        ck_assert_ptr_null(ipcbus_slot_unref(slot_a2));
        ck_assert_ptr_null(ipcbus_slot_unref(slot_b));
        testbus_sync(bus);
        testbus_rec_init(&rec, bus, TESTBUS_REC_SIGNALS);
        ck_assert_int_eq(testbus_release_name(one, NAME_A), IPCBUS_RELEASE_NAME_RELEASED);
        ck_assert_int_eq(testbus_request_name(two, NAME_A, 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        ck_assert_int_eq(testbus_release_name(one, NAME_B), IPCBUS_RELEASE_NAME_RELEASED);
        testbus_rec_expect_quiet(&rec);

        testbus_rec_deinit(&rec);
        got_deinit(&got_a);
        got_deinit(&got_a2);
        got_deinit(&got_b);
        got_deinit(&done);
        ipcbus_slot_unref(slot_done);
        ipcbus_unref(bus);
        ipcbus_unref(one);
        ipcbus_unref(two);
}
END_TEST

/* ---- exported objects ---------------------------------------------------------------------------- */

START_TEST(test_object_errors)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        ipcbus_bus *bus;
        json_object *o;
        char *message;

        testbus_service_start(tb, &svc, SERVICE);
        bus = testbus_connect(tb);
        free(testbus_call_error(bus, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "NoSuchMethod", NULL,
                                IPCBUS_ERROR_UNKNOWN_METHOD));
        free(testbus_call_error(bus, SERVICE, "/org/example/Nowhere", TESTBUS_SERVICE_INTERFACE, "Echo", NULL,
                                IPCBUS_ERROR_UNKNOWN_OBJECT));
        free(testbus_call_error(bus, SERVICE, TESTBUS_SERVICE_PATH, "org.example.Other", "Echo", NULL,
                                IPCBUS_ERROR_UNKNOWN_INTERFACE));
        /* without an interface, the member is looked up at the path */
        o = testbus_call(bus, SERVICE, TESTBUS_SERVICE_PATH, NULL, "Echo", "{\"no\":\"interface\"}");
        ck_assert_str_eq(testbus_json_string(o, "no"), "interface");
        json_object_put(o);
        free(testbus_call_error(bus, SERVICE, TESTBUS_SERVICE_PATH, NULL, "NoSuchMethod", NULL,
                                IPCBUS_ERROR_UNKNOWN_METHOD));
        /* a handler returning a negative errno without an error: Failed, with the errno's text */
        message = testbus_call_error(bus, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "FailErrno", NULL,
                                     IPCBUS_ERROR_FAILED);
        ck_assert_msg(message && strstr(message, strerror(ENOENT)), "message '%s' does not say '%s'",
                      message ? message : "(none)", strerror(ENOENT));
        free(message);
        /* a handler that set an error: that error */
        message = testbus_call_error(bus, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "FailCustom", NULL,
                                     TESTBUS_SERVICE_CUSTOM_ERROR);
        ck_assert_str_eq(message, "custom failure");
        free(message);
        testbus_child_finish(&svc);
        ipcbus_unref(bus);
}
END_TEST

/* An in-process service that keeps calls to answer them later, outside any callback. */
struct keeper {
        ipcbus_message *held;
        int calls;
};

static int keep_call(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct keeper *k = userdata;

        k->calls++;
        k->held = ipcbus_message_ref(m);
        return 0;
}

static const ipcbus_method keeper_methods[] = {
        {"Later", keep_call},
        {NULL, NULL},
};

static bool keeper_has_call(void *userdata)
{
        return ((struct keeper *) userdata)->held != NULL;
}

START_TEST(test_deferred_reply)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *server = testbus_connect(tb), *client = testbus_connect(tb);
        ipcbus_bus *both[] = {server, client, NULL}, *just_client[] = {client, NULL};
        struct keeper k = {0};
        struct got got = {0};
        ipcbus_slot *object = NULL;
        struct testbus_child svc;

        ck_assert_int_ge(
                ipcbus_add_object(server, &object, "/org/example/Later", "org.example.Later", keeper_methods, &k), 0);
        ck_assert_int_ge(ipcbus_call_async(client, NULL, ipcbus_get_unique_name(server), "/org/example/Later",
                                           "org.example.Later", "Later", "{}", 5 * SECOND, on_message, &got),
                         0);
        ck_assert(testbus_pump_until(both, keeper_has_call, &k, TESTBUS_WAIT_MS));
        testbus_sync(client);
        ck_assert_uint_eq(got.n, 0);
        /* answered later, from outside the handler */
        ck_assert_int_ge(ipcbus_reply(k.held, "{\"deferred\":true}"), 0);
        ipcbus_message_unref(k.held);
        got_wait(just_client, &got, 1);
        ck_assert_int_eq(ipcbus_message_get_type(got.msgs[0]), IPCBUS_MESSAGE_RETURN);
        ck_assert_str_eq(ipcbus_message_get_body(got.msgs[0], NULL), "{\"deferred\":true}");
        got_deinit(&got);
        ck_assert_int_eq(k.calls, 1);

        /* and across processes: the service answers a held call when told, from another callback */
        testbus_service_start(tb, &svc, SERVICE);
        ck_assert_int_ge(ipcbus_call_async(client, NULL, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE,
                                           "Hold", NULL, 5 * SECOND, on_message, &got),
                         0);
        free(testbus_child_read(&svc, TESTBUS_WAIT_MS));
        testbus_child_send(&svc, "release");
        got_wait(just_client, &got, 1);
        ck_assert_str_eq(ipcbus_message_get_body(got.msgs[0], NULL), "{\"released\":true}");
        got_deinit(&got);

        /* after dropping the object, its path is unknown */
        ck_assert_ptr_null(ipcbus_slot_unref(object));
        ck_assert_int_ge(ipcbus_call_async(client, NULL, ipcbus_get_unique_name(server), "/org/example/Later",
                                           "org.example.Later", "Later", "{}", 5 * SECOND, on_message, &got),
                         0);
        got_wait(both, &got, 1);
        ck_assert_str_eq(ipcbus_message_get_error_name(got.msgs[0]), IPCBUS_ERROR_UNKNOWN_OBJECT);
        ck_assert_int_eq(k.calls, 1);
        got_deinit(&got);
        testbus_child_finish(&svc);
        ipcbus_unref(server);
        ipcbus_unref(client);
}
END_TEST

/* Objects sharing a path: each answers for its own interface, and without one the first exported runs. */
static int say_who(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        char body[64];

        snprintf(body, sizeof(body), "{\"who\":\"%s\"}", (const char *) userdata);
        return ipcbus_reply(m, body);
}

static const ipcbus_method who_methods[] = {
        {"Who", say_who},
        {NULL, NULL},
};

#define SHARED_PATH "/org/example/Shared"

/* Call Who at SHARED_PATH: the "who" of the answer, or the error's name; caller frees. */
static char *call_who(ipcbus_bus *server, ipcbus_bus *client, const char *interface)
{
        ipcbus_bus *both[] = {server, client, NULL};
        struct got got = {0};
        char *who;

        ck_assert_int_ge(ipcbus_call_async(client, NULL, ipcbus_get_unique_name(server), SHARED_PATH, interface, "Who",
                                           "{}", 5 * SECOND, on_message, &got),
                         0);
        got_wait(both, &got, 1);
        if (ipcbus_message_get_type(got.msgs[0]) == IPCBUS_MESSAGE_ERROR)
                who = strdup(ipcbus_message_get_error_name(got.msgs[0]));
        else
                who = strdup(ipcbus_message_get_arg(got.msgs[0], "who"));
        got_deinit(&got);
        ck_assert_ptr_nonnull(who);
        return who;
}

#define ck_assert_who(server, client, interface, want)                                                                 \
        do {                                                                                                           \
                char *who_ = call_who(server, client, interface);                                                      \
                ck_assert_str_eq(who_, want);                                                                          \
                free(who_);                                                                                            \
        } while (0)

START_TEST(test_objects_share_path)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *server = testbus_connect(tb), *client = testbus_connect(tb);
        ipcbus_slot *a = NULL, *b = NULL, *other = NULL, *dup = NULL;

        ck_assert_int_ge(ipcbus_add_object(server, &a, SHARED_PATH, "org.example.A", who_methods, (void *) "a"), 0);
        ck_assert_int_ge(ipcbus_add_object(server, &b, SHARED_PATH, "org.example.B", who_methods, (void *) "b"), 0);
        ck_assert_int_eq(ipcbus_add_object(server, &dup, SHARED_PATH, "org.example.A", who_methods, (void *) "dup"),
                         -EEXIST);
        ck_assert_ptr_null(dup);
        ck_assert_int_ge(
                ipcbus_add_object(server, &other, "/org/example/Other", "org.example.A", who_methods, (void *) "o"), 0);

        ck_assert_who(server, client, NULL, "a");
        ck_assert_who(server, client, "org.example.A", "a");
        ck_assert_who(server, client, "org.example.B", "b");
        ck_assert_who(server, client, "org.example.C", IPCBUS_ERROR_UNKNOWN_INTERFACE);

        /* without A, B answers; exported again, A comes after B */
        ck_assert_ptr_null(ipcbus_slot_unref(a));
        ck_assert_who(server, client, NULL, "b");
        ck_assert_who(server, client, "org.example.A", IPCBUS_ERROR_UNKNOWN_INTERFACE);
        ck_assert_int_ge(ipcbus_add_object(server, &a, SHARED_PATH, "org.example.A", who_methods, (void *) "a"), 0);
        ck_assert_who(server, client, NULL, "b");
        ck_assert_who(server, client, "org.example.A", "a");

        /* the last object gone, the path is unknown; another path is untouched */
        ck_assert_ptr_null(ipcbus_slot_unref(b));
        ck_assert_ptr_null(ipcbus_slot_unref(a));
        ck_assert_who(server, client, NULL, IPCBUS_ERROR_UNKNOWN_OBJECT);
        ck_assert_ptr_null(ipcbus_slot_unref(other));
        ipcbus_unref(server);
        ipcbus_unref(client);
}
END_TEST

/* ---- errors and connection loss --------------------------------------------------------------------- */

START_TEST(test_error_helpers)
{
        ipcbus_error e = IPCBUS_ERROR_NULL;

        ck_assert(!ipcbus_error_is_set(&e));
        ck_assert(!ipcbus_error_has_name(&e, IPCBUS_ERROR_FAILED));
        ck_assert_int_eq(ipcbus_error_set(&e, IPCBUS_ERROR_INVALID_ARGS, "bad thing"), 0);
        ck_assert(ipcbus_error_is_set(&e));
        ck_assert(ipcbus_error_has_name(&e, IPCBUS_ERROR_INVALID_ARGS));
        ck_assert(!ipcbus_error_has_name(&e, IPCBUS_ERROR_FAILED));
        ck_assert_str_eq(e.name, IPCBUS_ERROR_INVALID_ARGS);
        ck_assert_str_eq(e.message, "bad thing");
        ipcbus_error_free(&e);
        ck_assert_ptr_null(e.name);
        ck_assert_ptr_null(e.message);
        ck_assert(!ipcbus_error_is_set(&e));

        ck_assert_int_eq(ipcbus_error_setf(&e, "org.example.Error.Count", "%d of %s", 3, "five"), 0);
        ck_assert_str_eq(e.name, "org.example.Error.Count");
        ck_assert_str_eq(e.message, "3 of five");
        ipcbus_error_free(&e);

        ck_assert_int_eq(ipcbus_error_set(&e, "not an error name", "x"), -EINVAL);
        ck_assert(!ipcbus_error_is_set(&e));
        ck_assert_int_eq(ipcbus_error_set(&e, "org.example.Error.NoMessage", NULL), 0);
        ck_assert(ipcbus_error_is_set(&e));
        ipcbus_error_free(&e);
        ipcbus_error_free(&e);
}
END_TEST

START_TEST(test_connection_lost)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *bus = testbus_connect(tb);
        struct got got = {0};
        int64_t deadline;
        int r = 0;

        /* a monitor that sends is disconnected by the broker: a way to lose the connection */
        ck_assert_int_ge(ipcbus_become_monitor(bus, NULL, 0, NULL), 0);
        ck_assert_int_ge(ipcbus_call_async(bus, NULL, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE,
                                           "Ping", NULL, 5 * SECOND, on_message, &got),
                         0);
        deadline = testbus_now_ms() + TESTBUS_WAIT_MS;
        while (testbus_now_ms() < deadline && (r = ipcbus_process(bus)) >= 0)
                if (r == 0)
                        ipcbus_wait(bus, 100 * 1000);
        ck_assert_int_eq(r, -ECONNRESET);
        ck_assert(!ipcbus_is_open(bus));
        /* the pending call ends with an error, not silence */
        while (ipcbus_process(bus) > 0)
                ;
        ck_assert_uint_eq(got.n, 1);
        ck_assert_int_eq(ipcbus_message_get_type(got.msgs[0]), IPCBUS_MESSAGE_ERROR);
        ck_assert_str_eq(ipcbus_message_get_error_name(got.msgs[0]), IPCBUS_ERROR_DISCONNECTED);
        got_deinit(&got);
        ck_assert_int_eq(
                ipcbus_call(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, NULL, "Ping", NULL, SECOND, NULL, NULL),
                -ENOTCONN);
        ck_assert_int_eq(ipcbus_emit_signal(bus, NULL, "/x", "org.example.I", "M", NULL), -ENOTCONN);
        ipcbus_unref(bus);
}
END_TEST

/* ---- lifetime: references, closing, fork, the starter bus ------------------------------------------- */

static int count_calls(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        if (userdata)
                (*(int *) userdata)++;
        return 0;
}

/*
 * Every function on bus returns want (-ENOTCONN after ipcbus_close, -ECHILD
 * in a forked child) and makes nothing. Returns the first that did not, or
 * NULL. Usable in a forked child, where Check's assertions are not.
 */
static const char *every_function_gives(ipcbus_bus *bus, int want)
{
        struct event_base *base = event_base_new();
        ipcbus_slot *slot = NULL;
        const char *failed = NULL;
        uint64_t t;

#define GIVES(call)                                                                                                    \
        do {                                                                                                           \
                if (!failed && (call) != want)                                                                         \
                        failed = #call;                                                                                \
        } while (0)
        GIVES(ipcbus_call(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, NULL, "Ping", NULL, SECOND, NULL, NULL));
        GIVES(ipcbus_call_async(bus, &slot, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, NULL, "Ping", NULL, SECOND,
                                count_calls, NULL));
        GIVES(ipcbus_send_oneway(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, NULL, "Ping", NULL));
        GIVES(ipcbus_emit_signal(bus, NULL, "/x", "org.example.I", "M", NULL));
        GIVES(ipcbus_add_match(bus, &slot, "interface=org.example.I", count_calls, NULL, NULL));
        GIVES(ipcbus_add_filter(bus, &slot, count_calls, NULL));
        GIVES(ipcbus_add_object(bus, &slot, "/org/example/Later", "org.example.Later", keeper_methods, NULL));
        GIVES(ipcbus_request_name(bus, "org.example.Gives", 0, NULL));
        GIVES(ipcbus_release_name(bus, "org.example.Gives", NULL));
        GIVES(ipcbus_become_monitor(bus, NULL, 0, NULL));
        GIVES(ipcbus_get_fd(bus));
        GIVES(ipcbus_get_events(bus));
        GIVES(ipcbus_get_timeout(bus, &t));
        GIVES(ipcbus_process(bus));
        GIVES(ipcbus_wait(bus, 0));
        GIVES(ipcbus_flush(bus));
        GIVES(ipcbus_attach_event(bus, base));
#undef GIVES
        if (!failed && ipcbus_is_open(bus))
                failed = "ipcbus_is_open";
        if (!failed && slot)
                failed = "a slot was made";
        event_base_free(base);
        return failed;
}

/* The starter bus: $IPCBUS_STARTER_ADDRESS when set and not empty, else the session bus; no fallback on failure. */
START_TEST(test_open_starter)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *bus = NULL, *sentinel = (ipcbus_bus *) &bus;
        char missing[300];

        snprintf(missing, sizeof(missing), "unix:path=%s/nothing-here", tb->dir);
        unsetenv("IPCBUS_STARTER_ADDRESS");
        setenv("IPCBUS_ADDRESS", tb->address, 1);
        ck_assert_int_eq(ipcbus_open_starter(&bus), 0);
        ck_assert(ipcbus_is_open(bus));
        bus = ipcbus_unref(bus);

        /* the starter address wins over the session's */
        setenv("IPCBUS_STARTER_ADDRESS", tb->address, 1);
        setenv("IPCBUS_ADDRESS", missing, 1);
        ck_assert_int_eq(ipcbus_open_starter(&bus), 0);
        ck_assert(ipcbus_is_open(bus));
        bus = ipcbus_unref(bus);

        /* ... and is not quietly replaced by the session bus when it fails */
        setenv("IPCBUS_STARTER_ADDRESS", missing, 1);
        setenv("IPCBUS_ADDRESS", tb->address, 1);
        bus = sentinel;
        ck_assert_int_lt(ipcbus_open_starter(&bus), 0);
        ck_assert_ptr_eq(bus, sentinel);

        /* empty is unset */
        setenv("IPCBUS_STARTER_ADDRESS", "", 1);
        bus = NULL;
        ck_assert_int_eq(ipcbus_open_starter(&bus), 0);
        ipcbus_unref(bus);
        ck_assert_int_eq(ipcbus_open_starter(NULL), -EINVAL);
}
END_TEST

/*
 * A service the broker starts reaches the bus that started it through
 * ipcbus_open_starter (tests/test-service uses it), even when its activation
 * environment points IPCBUS_ADDRESS elsewhere: the broker sets
 * IPCBUS_STARTER_ADDRESS last.
 */
START_TEST(test_activated_service_opens_starter)
{
        static const char name[] = "org.example.Started";
        struct testbus *tb = testbus_current();
        char dir[256], path[400], config[600], file[600];
        json_object *o, *env;
        ipcbus_bus *bus;

        testbus_mkdtemp(dir, sizeof(dir), "services");
        snprintf(file, sizeof(file), "{\"name\":\"%s\",\"exec\":[\"%s\",\"--name\",\"%s\"]}", name,
                 testbus_test_service(), name);
        snprintf(path, sizeof(path), "%s/%s.service", dir, name);
        testbus_write_text(path, file);
        snprintf(config, sizeof(config),
                 "{\"type\":\"session\",\"standard_service_dirs\":false,\"service_dirs\":[\"%s\"]}", dir);
        testbus_start_config(tb, config);
        bus = testbus_connect(tb);
        json_object_put(testbus_driver(bus, "UpdateActivationEnvironment",
                                       "{\"environment\":{\"IPCBUS_ADDRESS\":\"unix:path=/nonexistent/ipcbus\"}}"));

        o = testbus_call(bus, name, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Env", NULL);
        env = json_object_object_get(o, "env");
        ck_assert_str_eq(testbus_json_string(env, "IPCBUS_STARTER_ADDRESS"), tb->address);
        ck_assert_str_eq(testbus_json_string(env, "IPCBUS_ADDRESS"), "unix:path=/nonexistent/ipcbus");
        json_object_put(o);
        ipcbus_unref(bus);
}
END_TEST

/*
 * ipcbus_ref adds a reference, ipcbus_unref drops one and only the last
 * closes; ipcbus_close closes now and keeps the handle: every function gives
 * -ENOTCONN, the slots' callbacks never run, messages and slots stay usable
 * until dropped, and the broker sees the connection end.
 */
START_TEST(test_ref_close_unref)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *bus = testbus_connect(tb), *other = testbus_connect(tb);
        ipcbus_bus *both[] = {bus, other, NULL}, *just_other[] = {other, NULL};
        ipcbus_slot *object = NULL, *other_object = NULL, *match = NULL, *pending = NULL;
        struct keeper k = {0}, other_k = {0};
        struct got answers = {0};
        int signals = 0, replies = 0;
        char *name;

        ck_assert_ptr_eq(ipcbus_ref(bus), bus);
        ck_assert_ptr_null(ipcbus_unref(bus));
        ck_assert(ipcbus_is_open(bus));
        ck_assert_int_eq(
                ipcbus_call(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, NULL, "Ping", NULL, SECOND, NULL, NULL), 0);
        name = strdup(ipcbus_get_unique_name(bus));

        /* bus serves a call of other's that it holds, waits for other's answer, and listens */
        ck_assert_int_ge(ipcbus_add_object(bus, &object, "/org/example/Later", "org.example.Later", keeper_methods, &k),
                         0);
        ck_assert_int_ge(ipcbus_add_object(other, &other_object, "/org/example/Later", "org.example.Later",
                                           keeper_methods, &other_k),
                         0);
        ck_assert_int_ge(ipcbus_add_match(bus, &match, "interface=org.example.Closing", count_calls, &signals, NULL),
                         0);
        ck_assert_int_ge(ipcbus_call_async(other, NULL, name, "/org/example/Later", "org.example.Later", "Later", "{}",
                                           5 * SECOND, on_message, &answers),
                         0);
        ck_assert_int_ge(ipcbus_call_async(bus, &pending, ipcbus_get_unique_name(other), "/org/example/Later",
                                           "org.example.Later", "Later", "{}", 5 * SECOND, count_calls, &replies),
                         0);
        ck_assert(testbus_pump_until(both, keeper_has_call, &k, TESTBUS_WAIT_MS));
        ck_assert(testbus_pump_until(both, keeper_has_call, &other_k, TESTBUS_WAIT_MS));
        ck_assert_int_ge(ipcbus_emit_signal(other, NULL, "/x", "org.example.Closing", "Now", NULL), 0);
        ck_assert_int_ge(ipcbus_reply(other_k.held, "{}"), 0);
        testbus_sync(other);

        ipcbus_close(bus);
        ipcbus_close(bus); /* idempotent */
        ck_assert_msg(!every_function_gives(bus, -ENOTCONN), "after ipcbus_close: %s",
                      every_function_gives(bus, -ENOTCONN));
        ck_assert_int_eq(ipcbus_reply(k.held, "{}"), -ENOTCONN);
        ck_assert_str_eq(ipcbus_get_unique_name(bus), name); /* still known, for logs */
        ck_assert_int_eq(signals + replies, 0);
        ck_assert_ptr_eq(ipcbus_slot_get_userdata(match), &signals);

        /* the broker saw it go: other's call to it fails */
        got_wait(just_other, &answers, 1);
        ck_assert_int_eq(ipcbus_message_get_type(answers.msgs[0]), IPCBUS_MESSAGE_ERROR);
        got_deinit(&answers);

        ipcbus_slot_unref(match);
        ipcbus_slot_unref(pending);
        ipcbus_unref(bus);
        /* a message outlives the handle; the last reference frees both */
        ck_assert_ptr_eq(ipcbus_message_get_bus(k.held), bus);
        ipcbus_slot_unref(object);
        ipcbus_message_unref(k.held);
        ipcbus_message_unref(other_k.held);
        ipcbus_slot_unref(other_object);
        ipcbus_unref(other);
        free(name);
}
END_TEST

static int close_from_filter(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        ipcbus_close(ipcbus_message_get_bus(m));
        return 0;
}

/* Closing from inside a callback ends processing cleanly. */
START_TEST(test_close_in_callback)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *bus = testbus_connect(tb), *emitter = testbus_connect(tb);
        int r = 0;

        ck_assert_int_ge(ipcbus_add_filter(bus, NULL, close_from_filter, NULL), 0);
        ck_assert_int_ge(ipcbus_add_match(bus, NULL, "interface=org.example.I", count_calls, NULL, NULL), 0);
        ck_assert_int_ge(ipcbus_emit_signal(emitter, NULL, "/x", "org.example.I", "M", NULL), 0);
        testbus_sync(emitter);
        for (int64_t deadline = testbus_now_ms() + TESTBUS_WAIT_MS; testbus_now_ms() < deadline && r >= 0;)
                if ((r = ipcbus_process(bus)) == 0)
                        ipcbus_wait(bus, 100 * 1000);
        ck_assert_int_eq(r, -ENOTCONN);
        ck_assert(!ipcbus_is_open(bus));
        ipcbus_unref(bus);
        ipcbus_unref(emitter);
}
END_TEST

/* ipcbus_run serves until the connection ends, and says 0 for an end that
 * was asked for: a callback closing it, or the broker hanging up. */
START_TEST(test_run)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *bus = testbus_connect(tb), *emitter = testbus_connect(tb), *orphan = testbus_connect(tb);

        ck_assert_int_ge(ipcbus_add_filter(bus, NULL, close_from_filter, NULL), 0);
        ck_assert_int_ge(ipcbus_add_match(bus, NULL, "interface=org.example.I", count_calls, NULL, NULL), 0);
        ck_assert_int_ge(ipcbus_emit_signal(emitter, NULL, "/x", "org.example.I", "M", NULL), 0);
        ck_assert_int_eq(ipcbus_run(bus), 0);
        ck_assert(!ipcbus_is_open(bus));

        testbus_stop(tb);
        ck_assert_int_eq(ipcbus_run(orphan), 0);
        ipcbus_unref(bus);
        ipcbus_unref(emitter);
        ipcbus_unref(orphan);
}
END_TEST

/*
 * After fork(), the child's copy of a connection gives -ECHILD everywhere,
 * and dropping it there (slots, the last reference) writes and reads
 * nothing: the parent's connection goes on with its match, its name and the
 * unread message waiting in the socket.
 */
START_TEST(test_fork)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *bus = testbus_connect(tb), *emitter = testbus_connect(tb), *buses[] = {bus, NULL};
        ipcbus_slot *match = NULL;
        struct got got = {0};
        char *owner;
        pid_t pid;
        int status;

        ck_assert_int_ge(ipcbus_add_match(bus, &match, "interface=org.example.Fork", on_message, &got, NULL), 0);
        ck_assert_int_eq(ipcbus_request_name(bus, "org.example.Fork", 0, NULL), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        /* waits unread in bus's socket while the child runs */
        ck_assert_int_ge(ipcbus_emit_signal(emitter, NULL, "/x", "org.example.Fork", "Before", NULL), 0);
        testbus_sync(emitter);

        fflush(stdout);
        fflush(stderr);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                const char *failed = every_function_gives(bus, -ECHILD);

                if (!failed && ipcbus_get_unique_name(bus))
                        failed = "ipcbus_get_unique_name";
                if (!failed && ipcbus_ref(bus) != bus)
                        failed = "ipcbus_ref";
                ipcbus_close(bus); /* nothing, in a child */
                ipcbus_slot_unref(match);
                ipcbus_unref(bus);
                ipcbus_unref(bus); /* the last: frees, closes this process's copy of the socket */
                ipcbus_unref(emitter);
                if (failed)
                        fprintf(stderr, "in the forked child: %s\n", failed);
                _exit(failed ? 1 : 0);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child: status %d", status);

        got_wait(buses, &got, 1);
        ck_assert_str_eq(ipcbus_message_get_member(got.msgs[0]), "Before");
        ck_assert_int_ge(ipcbus_emit_signal(emitter, NULL, "/x", "org.example.Fork", "After", NULL), 0);
        testbus_sync(emitter);
        got_wait(buses, &got, 2);
        ck_assert_str_eq(ipcbus_message_get_member(got.msgs[1]), "After");
        owner = testbus_name_owner(emitter, "org.example.Fork");
        ck_assert_str_eq(owner, ipcbus_get_unique_name(bus));
        free(owner);
        ck_assert_int_eq(
                ipcbus_call(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, NULL, "Ping", NULL, SECOND, NULL, NULL), 0);
        got_deinit(&got);
        ipcbus_slot_unref(match);
        ipcbus_unref(bus);
        ipcbus_unref(emitter);
}
END_TEST

/* ---- the broker's refusals come back named ----------------------------------------------------------- */

/* An empty policy: everyone may connect, and the built-in default refuses monitors but to root. */
#define REFUSALS_CONFIG "{\"limits\":{\"max_matches_per_connection\":2},\"policy\":[]}"

static const struct testbus_cred alice = {.uid = 4242, .gid = 4242};

START_TEST(test_add_match_refused)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *bus = testbus_connect(tb);
        ipcbus_slot *a = NULL, *b = NULL, *sentinel = (ipcbus_slot *) &bus, *c = sentinel;
        ipcbus_error e = IPCBUS_ERROR_NULL;

        ck_assert_int_ge(ipcbus_add_match(bus, &a, "interface=org.example.I,member=A", count_calls, NULL, &e), 0);
        ck_assert_int_ge(ipcbus_add_match(bus, &b, "interface=org.example.I,member=B", count_calls, NULL, &e), 0);
        ck_assert(!ipcbus_error_is_set(&e));
        ck_assert_int_eq(ipcbus_add_match(bus, &c, "interface=org.example.I,member=C", count_calls, NULL, &e),
                         -EREMOTEIO);
        ck_assert_ptr_eq(c, sentinel);
        ck_assert_str_eq(e.name, IPCBUS_ERROR_LIMITS_EXCEEDED);
        ck_assert_msg(e.message && strstr(e.message, "max_matches_per_connection"), "message: %s",
                      e.message ? e.message : "(null)");
        ipcbus_error_free(&e);
        /* without a ret_error, the same return */
        ck_assert_int_eq(ipcbus_add_match(bus, &c, "interface=org.example.I,member=C", count_calls, NULL, NULL),
                         -EREMOTEIO);

        /* BecomeMonitor with more rules than a connection may have */
        ck_assert_int_eq(ipcbus_become_monitor(bus, (const char *const[]){"member=A", "member=B", "member=C"}, 3, &e),
                         -EREMOTEIO);
        ck_assert_str_eq(e.name, IPCBUS_ERROR_LIMITS_EXCEEDED);
        ipcbus_error_free(&e);
        ipcbus_slot_unref(a);
        ipcbus_slot_unref(b);
        ipcbus_unref(bus);
}
END_TEST

/* The policy's default lets only root monitor: another uid gets AccessDenied. */
START_TEST(test_become_monitor_refused)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *bus = testbus_connect_as(tb, &alice);
        ipcbus_error e = IPCBUS_ERROR_NULL;
        ipcbus_slot *slot = NULL;

        ck_assert_int_eq(ipcbus_become_monitor(bus, NULL, 0, &e), -EREMOTEIO);
        ck_assert_str_eq(e.name, IPCBUS_ERROR_ACCESS_DENIED);
        ck_assert_msg(e.message && strstr(e.message, "4242"), "message: %s", e.message ? e.message : "(null)");
        ipcbus_error_free(&e);
        /* still an ordinary connection */
        ck_assert_int_ge(ipcbus_add_match(bus, &slot, "interface=org.example.I", count_calls, NULL, &e), 0);
        ck_assert_int_eq(
                ipcbus_call(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, NULL, "Ping", NULL, SECOND, NULL, NULL), 0);
        ipcbus_slot_unref(slot);
        ipcbus_unref(bus);
}
END_TEST

static Suite *client_suite(void)
{
        Suite *s = suite_create("client_api");
        TCase *tc;

        tc = testbus_tcase("calls");
        tcase_add_test(tc, test_open);
        tcase_add_test(tc, test_sync_call);
        tcase_add_test(tc, test_broker_timeout_sync);
        tcase_add_test(tc, test_async_calls_process_wait);
        tcase_add_test(tc, test_async_calls_libevent);
        tcase_add_test(tc, test_local_timeout);
        tcase_add_test(tc, test_drop_slot_cancels_callback);
        tcase_add_test(tc, test_get_timeout);
        tcase_add_test(tc, test_send_oneway);
        suite_add_tcase(s, tc);

        tc = testbus_tcase("dispatch");
        tcase_add_test(tc, test_add_match);
        tcase_add_test(tc, test_match_libevent);
        tcase_add_test(tc, test_filters);
        tcase_add_test(tc, test_messages_during_sync_call_not_lost);
        tcase_add_test(tc, test_match_sender_well_known);
        tcase_add_test(tc, test_match_sender_owner_moves);
        tcase_add_test(tc, test_object_errors);
        tcase_add_test(tc, test_deferred_reply);
        tcase_add_test(tc, test_objects_share_path);
        suite_add_tcase(s, tc);

        tc = testbus_tcase("errors");
        tcase_add_test(tc, test_error_helpers);
        tcase_add_test(tc, test_connection_lost);
        suite_add_tcase(s, tc);

        tc = testbus_tcase("lifetime");
        tcase_add_test(tc, test_open_starter);
        tcase_add_test(tc, test_ref_close_unref);
        tcase_add_test(tc, test_close_in_callback);
        tcase_add_test(tc, test_run);
        tcase_add_test(tc, test_fork);
        suite_add_tcase(s, tc);

        tc = testbus_tcase_bare("activation");
        tcase_add_test(tc, test_activated_service_opens_starter);
        suite_add_tcase(s, tc);

        tc = testbus_tcase_config("refusals", REFUSALS_CONFIG);
        tcase_add_test(tc, test_add_match_refused);
        tcase_add_test(tc, test_become_monitor_refused);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return testbus_run_suite(client_suite());
}
