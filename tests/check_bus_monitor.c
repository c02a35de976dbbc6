/* SPDX-License-Identifier: MIT */
/*
 * Monitoring (PROTOCOL.md 11) against a real ipcbusd: a monitor sees calls,
 * returns, errors, signals and the driver's own messages with their sender
 * fields; rules filter what it sees; it loses its names; a monitor that sends
 * is disconnected; everybody else carries on.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/testbus.h"

#define SERVICE "org.example.Monitored"

struct monitor {
        ipcbus_bus *bus;
        struct testbus_rec rec; /* every message the monitor receives */
};

static void monitor_open(struct monitor *m, const char *const *rules, size_t n_rules)
{
        int r;

        m->bus = testbus_connect(testbus_current());
        r = ipcbus_become_monitor(m->bus, rules, n_rules, NULL);
        ck_assert_msg(r >= 0, "ipcbus_become_monitor: %s", ipcbus_strerror(r));
        testbus_rec_init(&m->rec, m->bus, 0);
}

static void monitor_close(struct monitor *m)
{
        testbus_rec_deinit(&m->rec);
        ipcbus_unref(m->bus);
}

struct wanted {
        struct testbus_rec *rec;
        ipcbus_message_type type;
        const char *name;   /* member, or error name for errors; NULL: any */
        const char *sender; /* NULL: any */
        const char *destination;
        const char *arg_name;  /* the body's "name" member; NULL: any */
        uint32_t reply_serial; /* 0: any */
        size_t found;          /* index + 1 */
};

static bool message_is(ipcbus_message *m, const struct wanted *w)
{
        const char *name =
                w->type == IPCBUS_MESSAGE_ERROR ? ipcbus_message_get_error_name(m) : ipcbus_message_get_member(m);
        const char *sender = ipcbus_message_get_sender(m), *dest = ipcbus_message_get_destination(m);
        const char *arg = w->arg_name ? ipcbus_message_get_arg(m, "name") : NULL;

        return ipcbus_message_get_type(m) == w->type && (!w->name || (name && strcmp(name, w->name) == 0)) &&
               (!w->sender || (sender && strcmp(sender, w->sender) == 0)) &&
               (!w->destination || (dest && strcmp(dest, w->destination) == 0)) &&
               (!w->arg_name || (arg && strcmp(arg, w->arg_name) == 0)) &&
               (!w->reply_serial || ipcbus_message_get_reply_serial(m) == w->reply_serial);
}

static bool wanted_seen(void *userdata)
{
        struct wanted *w = userdata;

        for (size_t i = 0; i < w->rec->n; i++)
                if (message_is(w->rec->msgs[i], w)) {
                        w->found = i + 1;
                        return true;
                }
        return false;
}

/* Wait until the monitor has seen a message like w; returns its index among all it saw. */
static size_t monitor_wait(struct monitor *m, struct wanted w)
{
        ipcbus_bus *buses[] = {m->bus, NULL};

        w.rec = &m->rec;
        ck_assert_msg(testbus_pump_until(buses, wanted_seen, &w, TESTBUS_WAIT_MS),
                      "the monitor did not see a message of type %d %s from %s to %s", (int) w.type,
                      w.name ? w.name : "", w.sender ? w.sender : "anyone", w.destination ? w.destination : "anyone");
        return w.found - 1;
}

static size_t monitor_expect(struct monitor *m, ipcbus_message_type type, const char *name, const char *sender,
                             const char *destination)
{
        return monitor_wait(m,
                            (struct wanted){.type = type, .name = name, .sender = sender, .destination = destination});
}

/* ---- what a monitor sees ---------------------------------------------------------- */

START_TEST(test_monitor_sees_calls_returns_errors)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct monitor mon;
        ipcbus_bus *c;
        ipcbus_message *call, *ret, *err;
        const char *me;
        size_t i_call, i_ret, i_err;

        testbus_service_start(tb, &svc, SERVICE);
        monitor_open(&mon, NULL, 0);
        c = testbus_connect(tb);
        me = ipcbus_get_unique_name(c);

        json_object_put(
                testbus_call(c, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Echo", "{\"k\": \"v\"}"));
        i_call = monitor_expect(&mon, IPCBUS_MESSAGE_CALL, "Echo", me, SERVICE);
        i_ret = monitor_expect(&mon, IPCBUS_MESSAGE_RETURN, NULL, svc.unique, me);
        ck_assert_uint_lt(i_call, i_ret);
        call = mon.rec.msgs[i_call];
        ret = mon.rec.msgs[i_ret];
        ck_assert_str_eq(ipcbus_message_get_body(call, NULL), "{\"k\": \"v\"}");
        ck_assert_str_eq(ipcbus_message_get_path(call), TESTBUS_SERVICE_PATH);
        ck_assert_int_eq(ipcbus_message_get_sender_uid(call), getuid());
        ck_assert_int_eq(ipcbus_message_get_sender_pid(call), getpid());
        ck_assert_uint_eq(ipcbus_message_get_reply_serial(ret), ipcbus_message_get_serial(call));
        ck_assert_str_eq(ipcbus_message_get_body(ret, NULL), "{\"k\": \"v\"}");
        ck_assert_int_eq(ipcbus_message_get_sender_pid(ret), svc.pid);

        free(testbus_call_error(c, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Fail", NULL,
                                TESTBUS_SERVICE_ERROR));
        i_err = monitor_expect(&mon, IPCBUS_MESSAGE_ERROR, TESTBUS_SERVICE_ERROR, svc.unique, me);
        err = mon.rec.msgs[i_err];
        ck_assert_int_eq(ipcbus_message_get_sender_uid(err), getuid());
        ck_assert_int_eq(ipcbus_message_get_sender_pid(err), svc.pid);

        /* an error the broker makes */
        free(testbus_call_error(c, "org.example.Nobody", "/", NULL, "M", NULL, IPCBUS_ERROR_SERVICE_UNKNOWN));
        monitor_expect(&mon, IPCBUS_MESSAGE_CALL, "M", me, "org.example.Nobody");
        monitor_expect(&mon, IPCBUS_MESSAGE_ERROR, IPCBUS_ERROR_SERVICE_UNKNOWN, IPCBUS_DRIVER_NAME, me);

        monitor_close(&mon);
        ipcbus_unref(c);
        testbus_child_finish(&svc);
}
END_TEST

START_TEST(test_monitor_sees_signals)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct monitor mon;
        ipcbus_bus *c;
        size_t i;

        testbus_service_start(tb, &svc, SERVICE);
        monitor_open(&mon, NULL, 0);
        c = testbus_connect(tb);
        /* a broadcast nobody subscribed to */
        ck_assert_int_ge(ipcbus_emit_signal(c, NULL, "/org/example/Mon", "org.example.Mon", "Changed", "{\"a\":1}"), 0);
        i = monitor_expect(&mon, IPCBUS_MESSAGE_SIGNAL, "Changed", ipcbus_get_unique_name(c), NULL);
        ck_assert_str_eq(ipcbus_message_get_body(mon.rec.msgs[i], NULL), "{\"a\":1}");
        ck_assert_int_eq(ipcbus_message_get_sender_pid(mon.rec.msgs[i]), getpid());
        /* a unicast signal */
        ck_assert_int_ge(ipcbus_emit_signal(c, SERVICE, "/org/example/Mon", "org.example.Mon", "Direct", "{}"), 0);
        monitor_expect(&mon, IPCBUS_MESSAGE_SIGNAL, "Direct", ipcbus_get_unique_name(c), SERVICE);
        monitor_close(&mon);
        ipcbus_unref(c);
        testbus_child_finish(&svc);
}
END_TEST

START_TEST(test_monitor_sees_driver_traffic)
{
        struct testbus *tb = testbus_current();
        struct monitor mon;
        ipcbus_bus *c;
        const char *me;
        size_t i;

        monitor_open(&mon, NULL, 0);
        c = testbus_connect(tb);
        me = ipcbus_get_unique_name(c);
        /* the new connection's Hello, the driver's answer and its NameOwnerChanged */
        monitor_expect(&mon, IPCBUS_MESSAGE_CALL, "Hello", NULL, IPCBUS_DRIVER_NAME);
        monitor_expect(&mon, IPCBUS_MESSAGE_RETURN, NULL, IPCBUS_DRIVER_NAME, me);
        i = monitor_wait(&mon, (struct wanted){.type = IPCBUS_MESSAGE_SIGNAL,
                                               .name = "NameOwnerChanged",
                                               .sender = IPCBUS_DRIVER_NAME,
                                               .arg_name = me});
        ck_assert_str_eq(ipcbus_message_get_arg(mon.rec.msgs[i], "new_owner"), me);
        /* a driver call and its answer */
        json_object_put(testbus_driver(c, "GetId", NULL));
        i = monitor_expect(&mon, IPCBUS_MESSAGE_CALL, "GetId", me, IPCBUS_DRIVER_NAME);
        monitor_wait(&mon, (struct wanted){.type = IPCBUS_MESSAGE_RETURN,
                                           .sender = IPCBUS_DRIVER_NAME,
                                           .destination = me,
                                           .reply_serial = ipcbus_message_get_serial(mon.rec.msgs[i])});
        /* NameAcquired, unicast by the driver */
        ck_assert_int_eq(testbus_request_name(c, "org.example.Acquired", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        monitor_wait(&mon, (struct wanted){.type = IPCBUS_MESSAGE_SIGNAL,
                                           .name = "NameAcquired",
                                           .sender = IPCBUS_DRIVER_NAME,
                                           .destination = me,
                                           .arg_name = "org.example.Acquired"});
        monitor_close(&mon);
        ipcbus_unref(c);
}
END_TEST

START_TEST(test_monitor_filtered)
{
        static const char *const one[] = {"type=signal,member=Wanted"};
        static const char *const two[] = {"member=A", "member=B"};
        struct testbus *tb = testbus_current();
        struct monitor m1, m2;
        ipcbus_bus *c;

        monitor_open(&m1, one, 1);
        monitor_open(&m2, two, 2);
        c = testbus_connect(tb);
        ck_assert_int_ge(ipcbus_emit_signal(c, NULL, "/x", "org.example.Mon", "Unwanted", NULL), 0);
        json_object_put(testbus_driver(c, "GetId", NULL));
        ck_assert_int_ge(ipcbus_emit_signal(c, NULL, "/x", "org.example.Mon", "A", NULL), 0);
        ck_assert_int_ge(ipcbus_emit_signal(c, NULL, "/x", "org.example.Mon", "C", NULL), 0);
        ck_assert_int_ge(ipcbus_emit_signal(c, NULL, "/x", "org.example.Mon", "Wanted", NULL), 0);
        ck_assert_int_ge(ipcbus_emit_signal(c, NULL, "/x", "org.example.Mon", "B", NULL), 0);
        ck_assert_int_ge(ipcbus_flush(c), 0);

        /* everything c did came before its last signal: once that is in, the rest would be too */
        monitor_expect(&m1, IPCBUS_MESSAGE_SIGNAL, "Wanted", ipcbus_get_unique_name(c), NULL);
        ck_assert_uint_eq(m1.rec.n, 1);
        monitor_expect(&m2, IPCBUS_MESSAGE_SIGNAL, "B", ipcbus_get_unique_name(c), NULL);
        ck_assert_uint_eq(m2.rec.n, 2);
        ck_assert_str_eq(ipcbus_message_get_member(m2.rec.msgs[0]), "A");
        ck_assert_str_eq(ipcbus_message_get_member(m2.rec.msgs[1]), "B");
        monitor_close(&m1);
        monitor_close(&m2);
        ipcbus_unref(c);
}
END_TEST

/* ---- what becoming a monitor does ------------------------------------------------------ */

struct lost {
        struct testbus_rec *rec;
        const char *unique;
};

/* Has the NameOwnerChanged of both the monitor's names (well-known and unique) to "" come? */
static bool both_names_lost(void *userdata)
{
        struct lost *l = userdata;
        int found = 0;

        for (size_t i = 0; i < l->rec->n; i++) {
                ipcbus_message *m = l->rec->msgs[i];
                const char *name = ipcbus_message_get_arg(m, "name");
                const char *old_owner = ipcbus_message_get_arg(m, "old_owner");
                const char *new_owner = ipcbus_message_get_arg(m, "new_owner");

                if (!name || !old_owner || !new_owner || strcmp(old_owner, l->unique) != 0 || new_owner[0])
                        continue;
                if (strcmp(name, "org.example.MonName") == 0)
                        found |= 1;
                if (strcmp(name, l->unique) == 0)
                        found |= 2;
        }
        return found == 3;
}

START_TEST(test_monitor_loses_names)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *a = testbus_connect(tb), *m = testbus_connect(tb);
        ipcbus_bus *buses[] = {a, NULL};
        struct testbus_rec rec;
        char *m_name = strdup(ipcbus_get_unique_name(m));
        struct lost lost = {&rec, m_name};
        json_object *o;
        char body[256];

        ck_assert_int_eq(testbus_request_name(m, "org.example.MonName", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        testbus_add_match(a, "{\"type\":\"signal\",\"sender\":\"org.ipcbus.Bus\",\"member\":\"NameOwnerChanged\"}");
        testbus_rec_init(&rec, a, TESTBUS_REC_SIGNALS);
        ck_assert_int_ge(ipcbus_become_monitor(m, NULL, 0, NULL), 0);
        /* its well-known name is released and its unique name announced as lost */
        ck_assert_msg(testbus_pump_until(buses, both_names_lost, &lost, TESTBUS_WAIT_MS),
                      "NameOwnerChanged for the monitor's names did not come");
        ck_assert_ptr_null(testbus_name_owner(a, "org.example.MonName"));
        snprintf(body, sizeof(body), "{\"name\":\"%s\"}", m_name);
        o = testbus_driver(a, "NameHasOwner", body);
        ck_assert(!testbus_json_bool(o, "has_owner"));
        json_object_put(o);
        free(m_name);
        testbus_rec_deinit(&rec);
        ipcbus_unref(m);
        ipcbus_unref(a);
}
END_TEST

START_TEST(test_become_monitor_invalid_rules)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        ipcbus_bus *bus;
        json_object *o;

        testbus_service_start(tb, &svc, SERVICE);
        bus = testbus_connect(tb);
        testbus_driver_error(bus, "BecomeMonitor", "{\"rules\":[{\"bogus\":1}]}", IPCBUS_ERROR_MATCH_RULE_INVALID);
        testbus_driver_error(bus, "BecomeMonitor", "{\"rules\":[{\"path\":\"/a\",\"path_namespace\":\"/a\"}]}",
                             IPCBUS_ERROR_MATCH_RULE_INVALID);
        /* still an ordinary connection */
        o = testbus_call(bus, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Echo", "{\"still\":\"here\"}");
        ck_assert_str_eq(testbus_json_string(o, "still"), "here");
        json_object_put(o);
        ipcbus_unref(bus);
        testbus_child_finish(&svc);
}
END_TEST

/* Read until the broker closes the connection; any frames before (monitored copies) are fine. */
static void raw_drain_until_closed(int fd)
{
        int64_t deadline = testbus_now_ms() + TESTBUS_WAIT_MS;
        struct testbus_frame f;
        int r;

        while ((r = testbus_raw_recv(fd, (int) (deadline - testbus_now_ms()), &f)) == 1)
                testbus_frame_deinit(&f);
        ck_assert_msg(r == 0 || r == -ECONNRESET, "the monitor that sent was not disconnected (%s)",
                      r == -ETIMEDOUT ? "still open" : strerror(-r));
}

START_TEST(test_monitor_that_sends_is_disconnected)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct testbus_frame f;
        ipcbus_bus *c, *lib_monitor;
        json_object *o;
        char *name;
        int fd, r;
        int64_t deadline;

        testbus_service_start(tb, &svc, SERVICE);
        c = testbus_connect(tb);

        /* a raw monitor: BecomeMonitor is answered, then any message it sends closes it */
        fd = testbus_raw_connect(tb);
        name = testbus_raw_hello(fd);
        testbus_raw_send_frame(fd,
                               "{\"type\":\"call\",\"serial\":2,\"destination\":\"org.ipcbus.Bus\","
                               "\"path\":\"/org/ipcbus/Bus\",\"member\":\"BecomeMonitor\"}",
                               "{}");
        for (;;) {
                ck_assert_int_eq(testbus_raw_recv(fd, TESTBUS_WAIT_MS, &f), 1);
                if (testbus_frame_int(&f, "reply_serial") == 2 && testbus_frame_string(&f, "destination") &&
                    strcmp(testbus_frame_string(&f, "destination"), name) == 0)
                        break;
                testbus_frame_deinit(&f);
        }
        ck_assert_str_eq(testbus_frame_string(&f, "type"), "return");
        testbus_json_keys(f.b, NULL);
        testbus_frame_deinit(&f);
        /* the monitor sees c's traffic... */
        o = testbus_call(c, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Echo", "{}");
        json_object_put(o);
        /* ...and is closed as soon as it sends */
        testbus_raw_send_frame(fd,
                               "{\"type\":\"signal\",\"serial\":3,\"path\":\"/x\",\"interface\":\"org.example.Mon\","
                               "\"member\":\"Chatty\"}",
                               NULL);
        raw_drain_until_closed(fd);
        close(fd);
        free(name);

        /* the same through libipcbus */
        lib_monitor = testbus_connect(tb);
        ck_assert_int_ge(ipcbus_become_monitor(lib_monitor, NULL, 0, NULL), 0);
        ipcbus_emit_signal(lib_monitor, NULL, "/x", "org.example.Mon", "Chatty", NULL);
        deadline = testbus_now_ms() + TESTBUS_WAIT_MS;
        while ((r = ipcbus_process(lib_monitor)) >= 0 && testbus_now_ms() < deadline)
                if (r == 0)
                        ipcbus_wait(lib_monitor, 100 * 1000);
        ck_assert_msg(r < 0, "the library monitor that sent is still connected");
        ck_assert(!ipcbus_is_open(lib_monitor));
        ipcbus_unref(lib_monitor);

        /* everybody else carries on */
        ck_assert(testbus_alive(tb));
        o = testbus_call(c, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Echo", "{\"after\":\"close\"}");
        ck_assert_str_eq(testbus_json_string(o, "after"), "close");
        json_object_put(o);
        testbus_sync(c);
        ipcbus_unref(c);
        testbus_child_finish(&svc);
}
END_TEST

/* Clients do not receive what only monitors should see. */
START_TEST(test_others_unaffected_by_monitor)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct monitor mon;
        struct testbus_rec rec;
        ipcbus_bus *c, *bystander;
        json_object *o;

        testbus_service_start(tb, &svc, SERVICE);
        monitor_open(&mon, NULL, 0);
        c = testbus_connect(tb);
        bystander = testbus_connect(tb);
        testbus_rec_init(&rec, bystander, 0);
        o = testbus_call(c, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Echo", "{\"n\":\"1\"}");
        ck_assert_str_eq(testbus_json_string(o, "n"), "1");
        json_object_put(o);
        ck_assert_int_ge(ipcbus_emit_signal(c, NULL, "/x", "org.example.Mon", "Changed", NULL), 0);
        monitor_expect(&mon, IPCBUS_MESSAGE_SIGNAL, "Changed", NULL, NULL);
        /* the bystander without rules got none of it */
        testbus_rec_expect_quiet(&rec);
        testbus_rec_deinit(&rec);
        monitor_close(&mon);
        ipcbus_unref(c);
        ipcbus_unref(bystander);
        testbus_child_finish(&svc);
}
END_TEST

/*
 * A monitor that does not read never holds the bus back: the sender's
 * signals and calls go on while the monitor's queue is full. The copies it
 * had no room for are dropped, counted, and announced: once it reads again
 * it gets MessagesLost {"count": N}, and what it saw plus N is everything.
 */
#define SMALL_QUEUE_CONFIG                                                                                             \
        "{\"limits\":{\"max_frame_bytes\":262144,\"max_body_bytes\":200000,"                                           \
        "\"max_queued_bytes_per_connection\":262144,\"backpressure_bytes\":65536,"                                     \
        "\"max_monitor_queued_bytes\":262144}}"

START_TEST(test_monitor_told_of_losses)
{
        enum { N = 400 };
        struct testbus *tb = testbus_current();
        struct testbus_frame f;
        ipcbus_bus *c;
        char body[10100], *name;
        int64_t last = 0, seen = 0, lost = -1;
        int fd;

        fd = testbus_raw_connect(tb);
        name = testbus_raw_hello(fd);
        testbus_raw_send_frame(fd,
                               "{\"type\":\"call\",\"serial\":2,\"destination\":\"org.ipcbus.Bus\","
                               "\"path\":\"/org/ipcbus/Bus\",\"member\":\"BecomeMonitor\"}",
                               "{\"rules\":[{\"member\":\"Flood\"}]}");
        testbus_raw_expect_reply(fd, 2, NULL, NULL);

        /* 400 x 10 KB is far more than the monitor's 256 KiB queue and its socket */
        c = testbus_connect(tb);
        for (int i = 1; i <= N; i++) {
                int n = snprintf(body, sizeof(body), "{\"i\":%d,\"pad\":\"", i);

                memset(body + n, 'm', 10000);
                strcpy(body + n + 10000, "\"}");
                ck_assert_int_ge(ipcbus_emit_signal(c, NULL, "/x", "org.example.Mon", "Flood", body), 0);
        }
        /* the sender was not held back by the monitor */
        testbus_sync(c);
        testbus_log_expect(tb, "monitor fell behind");

        while (lost < 0) {
                ck_assert_int_eq(testbus_raw_recv(fd, TESTBUS_WAIT_MS, &f), 1);
                if (strcmp(testbus_frame_string(&f, "member"), "Flood") == 0) {
                        int64_t i = testbus_json_int(f.b, "i");

                        ck_assert_int_gt(i, last); /* in order, some missing */
                        last = i;
                        seen++;
                } else {
                        ck_assert_str_eq(testbus_frame_string(&f, "member"), "MessagesLost");
                        ck_assert_str_eq(testbus_frame_string(&f, "sender"), IPCBUS_DRIVER_NAME);
                        ck_assert_str_eq(testbus_frame_string(&f, "destination"), name);
                        lost = testbus_json_int(f.b, "count");
                }
                testbus_frame_deinit(&f);
        }
        ck_assert_int_gt(lost, 0);
        ck_assert_int_eq(seen + lost, N);

        /* caught up: it sees new traffic again */
        ck_assert_int_ge(ipcbus_emit_signal(c, NULL, "/x", "org.example.Mon", "Flood", "{\"i\":1000}"), 0);
        testbus_sync(c);
        ck_assert_int_eq(testbus_raw_recv(fd, TESTBUS_WAIT_MS, &f), 1);
        ck_assert_int_eq(testbus_json_int(f.b, "i"), 1000);
        testbus_frame_deinit(&f);

        free(name);
        close(fd);
        ipcbus_unref(c);
}
END_TEST

static Suite *monitor_suite(void)
{
        Suite *s = suite_create("bus_monitor");
        TCase *tc;

        tc = testbus_tcase("sees");
        tcase_add_test(tc, test_monitor_sees_calls_returns_errors);
        tcase_add_test(tc, test_monitor_sees_signals);
        tcase_add_test(tc, test_monitor_sees_driver_traffic);
        tcase_add_test(tc, test_monitor_filtered);
        suite_add_tcase(s, tc);

        tc = testbus_tcase("becoming");
        tcase_add_test(tc, test_monitor_loses_names);
        tcase_add_test(tc, test_become_monitor_invalid_rules);
        tcase_add_test(tc, test_monitor_that_sends_is_disconnected);
        tcase_add_test(tc, test_others_unaffected_by_monitor);
        suite_add_tcase(s, tc);

        tc = testbus_tcase_config("behind", SMALL_QUEUE_CONFIG);
        tcase_add_test(tc, test_monitor_told_of_losses);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return testbus_run_suite(monitor_suite());
}
