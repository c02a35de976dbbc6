/* SPDX-License-Identifier: MIT */
/*
 * Method calls between processes through a real ipcbusd: routing by unique
 * and well-known name, bodies forwarded byte for byte, error replies,
 * ServiceUnknown, no_reply calls, reply tracking (UnexpectedReply, replies
 * from a peer that is not the callee), NoReply when the callee disconnects,
 * broker timeouts, sender stamping and large bodies.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/testbus.h"

#define SERVICE "org.example.Calls"

/* Answers of async calls, in arrival order. */
struct answers {
        size_t want;
        size_t n;
        ipcbus_message *msgs[8];
        int64_t at_ms[8];
};

static int on_answer(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct answers *a = userdata;

        ck_assert_uint_lt(a->n, 8);
        a->at_ms[a->n] = testbus_now_ms();
        a->msgs[a->n++] = ipcbus_message_ref(m);
        return 0;
}

static bool answers_done(void *userdata)
{
        struct answers *a = userdata;

        return a->n >= a->want;
}

static void answers_wait(ipcbus_bus *bus, struct answers *a, int timeout_ms)
{
        ipcbus_bus *buses[] = {bus, NULL};

        ck_assert_msg(testbus_pump_until(buses, answers_done, a, timeout_ms), "%zu of %zu answers within %d ms", a->n,
                      a->want, timeout_ms);
}

static void answers_deinit(struct answers *a)
{
        for (size_t i = 0; i < a->n; i++)
                ipcbus_message_unref(a->msgs[i]);
}

static void call_async(ipcbus_bus *bus, const char *dest, const char *member, const char *body, uint64_t timeout_usec,
                       struct answers *a)
{
        int r = ipcbus_call_async(bus, NULL, dest, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, member, body,
                                  timeout_usec, on_answer, a);

        ck_assert_msg(r >= 0, "ipcbus_call_async(%s): %s", member, ipcbus_strerror(r));
}

/* The text of the error answer m, which must be `name` (the caller frees it). */
static char *error_text(ipcbus_message *m, const char *name)
{
        ipcbus_error e = IPCBUS_ERROR_NULL;
        char *text;

        ck_assert_int_eq(ipcbus_message_get_type(m), IPCBUS_MESSAGE_ERROR);
        ck_assert_int_ge(ipcbus_message_get_error(m, &e), 0);
        ck_assert_str_eq(e.name, name);
        text = strdup(e.message ? e.message : "");
        ipcbus_error_free(&e);
        return text;
}

/* Wait until the service reports it holds a call. */
static void expect_held(struct testbus_child *svc)
{
        char *line = testbus_child_read(svc, TESTBUS_WAIT_MS);

        ck_assert_msg(strncmp(line, "held ", 5) == 0, "service reported '%s'", line);
        free(line);
}

/* A call whose reply body must be exactly `expected`; returns nothing, checks the reply's header too. */
static void call_expect_body(ipcbus_bus *bus, const char *dest, const char *member, const char *body,
                             const char *expected, const char *expected_sender)
{
        ipcbus_message *reply = NULL;
        ipcbus_error e = IPCBUS_ERROR_NULL;
        const char *got;
        size_t len = 0;
        int r;

        r = ipcbus_call(bus, dest, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, member, body, 10 * 1000000ull,
                        &reply, &e);
        ck_assert_msg(r >= 0, "%s on %s: %s %s", member, dest, r == -EREMOTEIO ? e.name : ipcbus_strerror(r),
                      e.message ? e.message : "");
        ck_assert_int_eq(ipcbus_message_get_type(reply), IPCBUS_MESSAGE_RETURN);
        ck_assert_str_eq(ipcbus_message_get_sender(reply), expected_sender);
        ck_assert_str_eq(ipcbus_message_get_destination(reply), ipcbus_get_unique_name(bus));
        got = ipcbus_message_get_body(reply, &len);
        ck_assert_uint_eq(len, strlen(expected));
        ck_assert_msg(memcmp(got, expected, len) == 0, "body changed on the way: sent '%s', got '%s'", expected, got);
        ipcbus_message_unref(reply);
}

/* ---- routing ------------------------------------------------------------------- */

START_TEST(test_call_by_unique_and_well_known_name)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        ipcbus_bus *bus;

        testbus_service_start(tb, &svc, SERVICE);
        bus = testbus_connect(tb);
        call_expect_body(bus, svc.unique, "Echo", "{\"via\":\"unique\"}", "{\"via\":\"unique\"}", svc.unique);
        /* the answer to a call by well-known name comes from the owner's unique name */
        call_expect_body(bus, SERVICE, "Echo", "{\"via\":\"well-known\"}", "{\"via\":\"well-known\"}", svc.unique);
        testbus_child_finish(&svc);
        ipcbus_unref(bus);
}
END_TEST

START_TEST(test_body_bytes_unchanged)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        ipcbus_bus *bus;
        static const char odd[] = "{ \"s\" : \"x\\u00e9\\n\\\"q\\\"\" ,\t\"n\":[1, 2.50e3 ,{ }, -0.0] ,\r\n"
                                  "  \"u\":\"\\ud83d\\ude00 \xc3\xa9\",\"e\":\"\" }  ";

        testbus_service_start(tb, &svc, SERVICE);
        bus = testbus_connect(tb);
        /* the service's bytes reach the caller untouched */
        call_expect_body(bus, SERVICE, "Fixed", NULL, TESTBUS_FIXED_BODY, svc.unique);
        /* and the caller's reach the service untouched (it sends them back) */
        call_expect_body(bus, SERVICE, "Echo", odd, odd, svc.unique);
        testbus_child_finish(&svc);
        ipcbus_unref(bus);
}
END_TEST

START_TEST(test_error_reply)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct answers a = {.want = 1};
        ipcbus_bus *bus;
        ipcbus_error e = IPCBUS_ERROR_NULL;
        char *message;

        testbus_service_start(tb, &svc, SERVICE);
        bus = testbus_connect(tb);
        message = testbus_call_error(bus, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Fail", NULL,
                                     TESTBUS_SERVICE_ERROR);
        ck_assert_str_eq(message, "failed on purpose");
        free(message);

        /* the error message as it arrives: from the callee, to the caller */
        call_async(bus, SERVICE, "Fail", NULL, 10 * 1000000ull, &a);
        answers_wait(bus, &a, TESTBUS_WAIT_MS);
        ck_assert_int_eq(ipcbus_message_get_type(a.msgs[0]), IPCBUS_MESSAGE_ERROR);
        ck_assert_str_eq(ipcbus_message_get_sender(a.msgs[0]), svc.unique);
        ck_assert_str_eq(ipcbus_message_get_destination(a.msgs[0]), ipcbus_get_unique_name(bus));
        ck_assert_int_eq(ipcbus_message_get_error(a.msgs[0], &e), 0);
        ck_assert_str_eq(e.name, TESTBUS_SERVICE_ERROR);
        ck_assert_str_eq(e.message, "failed on purpose");
        ipcbus_error_free(&e);
        answers_deinit(&a);
        testbus_child_finish(&svc);
        ipcbus_unref(bus);
}
END_TEST

START_TEST(test_service_unknown)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *bus = testbus_connect(tb);
        int fd;

        free(testbus_call_error(bus, "org.example.Nobody", TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Echo",
                                NULL, IPCBUS_ERROR_SERVICE_UNKNOWN));
        free(testbus_call_error(bus, ":1.999999", TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Echo", NULL,
                                IPCBUS_ERROR_SERVICE_UNKNOWN));
        ipcbus_unref(bus);

        /* a call without destination is addressed to no one */
        fd = testbus_raw_connect(tb);
        free(testbus_raw_hello(fd));
        testbus_raw_send_frame(
                fd, "{\"type\":\"call\",\"serial\":2,\"path\":\"/org/example/Test\",\"member\":\"Echo\"}", NULL);
        testbus_raw_expect_reply(fd, 2, IPCBUS_ERROR_SERVICE_UNKNOWN, NULL);
        close(fd);
}
END_TEST

/* Several client processes call one service at the same time; each gets its own answers. */
static int caller_main(struct testbus_peer *p, void *arg)
{
        ipcbus_bus *bus = testbus_peer_connect(p);

        for (int i = 0; i < 50; i++) {
                ipcbus_message *reply = NULL;
                char body[128];
                const char *got;
                int r;

                snprintf(body, sizeof(body), "{\"pid\":%d,\"i\":%d}", (int) getpid(), i);
                r = ipcbus_call(bus, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Echo", body,
                                10 * 1000000ull, &reply, NULL);
                if (r < 0)
                        testbus_peer_fail(p, "Echo %d: %s", i, ipcbus_strerror(r));
                got = ipcbus_message_get_body(reply, NULL);
                if (strcmp(got, body) != 0)
                        testbus_peer_fail(p, "sent %s, got %s", body, got);
                ipcbus_message_unref(reply);
        }
        testbus_peer_report(p, "done");
        ipcbus_unref(bus);
        return 0;
}

START_TEST(test_concurrent_callers)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc, callers[3];

        testbus_service_start(tb, &svc, SERVICE);
        for (int i = 0; i < 3; i++)
                testbus_child_start(tb, &callers[i], caller_main, NULL);
        for (int i = 0; i < 3; i++) {
                testbus_child_expect(&callers[i], "done");
                testbus_child_finish(&callers[i]);
        }
        testbus_child_finish(&svc);
}
END_TEST

/* ---- reply tracking ------------------------------------------------------------------ */

START_TEST(test_no_reply_call)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct testbus_rec rec;
        ipcbus_bus *bus;
        int r;

        testbus_service_start(tb, &svc, SERVICE);
        bus = testbus_connect(tb);
        testbus_rec_init(&rec, bus, 0);
        r = ipcbus_send_oneway(bus, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Record", "{\"x\":1}");
        ck_assert_int_ge(r, 0);
        /* the service sees the no_reply flag; its reply is not sent, nothing comes back */
        testbus_child_expect(&svc, "record 1 {\"x\":1}");
        call_expect_body(bus, SERVICE, "Echo", "{}", "{}", svc.unique);
        testbus_rec_expect_quiet(&rec);
        testbus_rec_deinit(&rec);
        testbus_child_finish(&svc);
        ipcbus_unref(bus);
}
END_TEST

/* A return to a no_reply call is not forwarded: the broker answers UnexpectedReply. */
START_TEST(test_no_reply_call_raw)
{
        struct testbus *tb = testbus_current();
        struct testbus_frame f;
        int caller = testbus_raw_connect(tb), callee = testbus_raw_connect(tb);
        char *caller_name = testbus_raw_hello(caller), *callee_name = testbus_raw_hello(callee);
        char header[512];

        snprintf(header, sizeof(header),
                 "{\"type\":\"call\",\"serial\":5,\"destination\":\"%s\",\"path\":\"/x\",\"member\":\"M\","
                 "\"no_reply\":true}",
                 callee_name);
        testbus_raw_send_frame(caller, header, "{\"a\":1}");
        for (;;) {
                ck_assert_int_eq(testbus_raw_recv(callee, TESTBUS_WAIT_MS, &f), 1);
                if (strcmp(testbus_frame_string(&f, "type"), "call") == 0)
                        break;
                testbus_frame_deinit(&f);
        }
        ck_assert_str_eq(testbus_frame_string(&f, "sender"), caller_name);
        ck_assert_int_eq(testbus_frame_int(&f, "serial"), 5);
        ck_assert(json_object_get_boolean(json_object_object_get(f.h, "no_reply")));
        ck_assert_str_eq(f.body, "{\"a\":1}");
        testbus_frame_deinit(&f);

        snprintf(header, sizeof(header), "{\"type\":\"return\",\"serial\":9,\"reply_serial\":5,\"destination\":\"%s\"}",
                 caller_name);
        testbus_raw_send_frame(callee, header, "{}");
        testbus_raw_expect_reply(callee, 9, IPCBUS_ERROR_UNEXPECTED_REPLY, NULL);
        /* the caller's next answer is to its own Ping: the return was dropped */
        testbus_raw_ping(caller, 6);
        free(caller_name);
        free(callee_name);
        close(caller);
        close(callee);
}
END_TEST

START_TEST(test_unexpected_reply)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *bus = testbus_connect(tb);
        struct testbus_rec rec;
        int fd = testbus_raw_connect(tb);
        char header[512];

        testbus_rec_init(&rec, bus, 0);
        free(testbus_raw_hello(fd));
        snprintf(header, sizeof(header),
                 "{\"type\":\"return\",\"serial\":4,\"reply_serial\":77,\"destination\":\"%s\"}",
                 ipcbus_get_unique_name(bus));
        testbus_raw_send_frame(fd, header, "{\"unasked\":true}");
        testbus_raw_expect_reply(fd, 4, IPCBUS_ERROR_UNEXPECTED_REPLY, NULL);
        snprintf(header, sizeof(header),
                 "{\"type\":\"error\",\"serial\":5,\"reply_serial\":78,\"destination\":\"%s\","
                 "\"error\":\"org.example.Error.Unasked\"}",
                 ipcbus_get_unique_name(bus));
        testbus_raw_send_frame(fd, header, NULL);
        testbus_raw_expect_reply(fd, 5, IPCBUS_ERROR_UNEXPECTED_REPLY, NULL);
        /* neither reached the addressee */
        testbus_rec_expect_quiet(&rec);
        testbus_rec_deinit(&rec);
        close(fd);
        ipcbus_unref(bus);
}
END_TEST

START_TEST(test_reply_from_wrong_peer)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct testbus_frame f;
        char header[512];
        int caller, impostor;
        char *caller_name;

        testbus_service_start(tb, &svc, SERVICE);
        caller = testbus_raw_connect(tb);
        caller_name = testbus_raw_hello(caller);
        snprintf(header, sizeof(header),
                 "{\"type\":\"call\",\"serial\":7,\"destination\":\"%s\",\"path\":\"%s\",\"interface\":\"%s\","
                 "\"member\":\"Hold\"}",
                 SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE);
        testbus_raw_send_frame(caller, header, NULL);
        expect_held(&svc);

        /* a third party answers the pending call: refused */
        impostor = testbus_raw_connect(tb);
        free(testbus_raw_hello(impostor));
        snprintf(header, sizeof(header), "{\"type\":\"return\",\"serial\":2,\"reply_serial\":7,\"destination\":\"%s\"}",
                 caller_name);
        testbus_raw_send_frame(impostor, header, "{\"fake\":true}");
        testbus_raw_expect_reply(impostor, 2, IPCBUS_ERROR_UNEXPECTED_REPLY, NULL);

        /* the real callee's answer still gets through, and it is the first the caller sees */
        testbus_child_send(&svc, "release");
        testbus_child_expect(&svc, "released 1");
        testbus_raw_expect_reply(caller, 7, NULL, &f);
        ck_assert_str_eq(testbus_frame_string(&f, "sender"), svc.unique);
        ck_assert_str_eq(f.body, "{\"released\":true}");
        testbus_frame_deinit(&f);

        free(caller_name);
        close(caller);
        close(impostor);
        testbus_child_finish(&svc);
}
END_TEST

START_TEST(test_callee_disconnect_no_reply)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct answers a = {.want = 3};
        ipcbus_bus *bus;
        int64_t t0;

        char by_name[2 * IPCBUS_NAME_MAX + 64], by_unique[IPCBUS_NAME_MAX + 64];
        char *text;

        testbus_service_start(tb, &svc, SERVICE);
        bus = testbus_connect(tb);
        /* two calls to the well-known name, the last to the unique name */
        for (int i = 0; i < 3; i++)
                call_async(bus, i < 2 ? SERVICE : svc.unique, "Hold", NULL, 15 * 1000000ull, &a);
        for (int i = 0; i < 3; i++)
                expect_held(&svc);
        snprintf(by_name, sizeof(by_name), "%s (%s) disconnected without answering the call", SERVICE, svc.unique);
        snprintf(by_unique, sizeof(by_unique), "%s disconnected without answering the call", svc.unique);

        t0 = testbus_now_ms();
        testbus_child_kill(&svc);
        answers_wait(bus, &a, TESTBUS_WAIT_MS);
        for (size_t i = 0; i < 3; i++) {
                /* each names the callee as its caller did (the answers come in the calls' order) */
                text = error_text(a.msgs[i], IPCBUS_ERROR_NO_REPLY);
                ck_assert_str_eq(text, i < 2 ? by_name : by_unique);
                free(text);
                ck_assert_str_eq(ipcbus_message_get_sender(a.msgs[i]), IPCBUS_DRIVER_NAME);
                /* at once, not at the 15 s timeout (the bound is loose for loaded machines) */
                ck_assert_int_lt(a.at_ms[i] - t0, 7500);
        }
        answers_deinit(&a);
        ipcbus_unref(bus);
}
END_TEST

START_TEST(test_broker_timeout)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct answers a = {.want = 2};
        struct testbus_rec rec;
        char by_name[2 * IPCBUS_NAME_MAX + 64], by_unique[IPCBUS_NAME_MAX + 64];
        bool seen[2] = {false, false};
        ipcbus_bus *bus;
        int64_t t0;
        char *line;

        testbus_service_start(tb, &svc, SERVICE);
        bus = testbus_connect(tb);
        testbus_rec_init(&rec, bus, (1u << IPCBUS_MESSAGE_RETURN) | (1u << IPCBUS_MESSAGE_ERROR));
        snprintf(by_name, sizeof(by_name), "%s (%s) did not answer within 300 ms", SERVICE, svc.unique);
        snprintf(by_unique, sizeof(by_unique), "%s did not answer within 300 ms", svc.unique);
        t0 = testbus_now_ms();
        call_async(bus, SERVICE, "Hold", NULL, 300 * 1000ull, &a);
        call_async(bus, svc.unique, "Hold", NULL, 300 * 1000ull, &a);
        expect_held(&svc);
        expect_held(&svc);
        answers_wait(bus, &a, TESTBUS_WAIT_MS);
        for (size_t i = 0; i < 2; i++) {
                /* the broker's Timeout (its sender is the driver; a local one would not be), naming the
                 * callee as its caller did: the well-known name with the unique one, or the unique one */
                char *text = error_text(a.msgs[i], IPCBUS_ERROR_TIMEOUT);
                bool is_name = strcmp(text, by_name) == 0;

                ck_assert_msg(is_name || strcmp(text, by_unique) == 0, "Timeout text '%s', expected '%s' or '%s'", text,
                              by_name, by_unique);
                ck_assert(!seen[is_name]);
                seen[is_name] = true;
                free(text);
                ck_assert_str_eq(ipcbus_message_get_sender(a.msgs[i]), IPCBUS_DRIVER_NAME);
                /* not early, and by the call's own 300 ms rather than the 25 s default */
                ck_assert_int_ge(a.at_ms[i] - t0, 290);
                ck_assert_int_lt(a.at_ms[i] - t0, 12500);
        }
        testbus_rec_skip(&rec);

        /* the late answers are refused, and the caller does not get them */
        testbus_child_send(&svc, "release");
        testbus_child_expect(&svc, "released 2");
        for (int i = 0; i < 2; i++) {
                line = testbus_child_read(&svc, TESTBUS_WAIT_MS);
                ck_assert_str_eq(line, "error " IPCBUS_ERROR_UNEXPECTED_REPLY);
                free(line);
        }
        testbus_rec_expect_quiet(&rec);

        testbus_rec_deinit(&rec);
        answers_deinit(&a);
        testbus_child_finish(&svc);
        ipcbus_unref(bus);
}
END_TEST

/* ---- stamping and size ---------------------------------------------------------------- */

START_TEST(test_sender_stamping)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        ipcbus_message *reply = NULL;
        ipcbus_bus *bus;
        json_object *o;

        testbus_service_start(tb, &svc, SERVICE);
        bus = testbus_connect(tb);
        /* what the callee sees of the caller */
        o = testbus_call(bus, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "WhoAmI", NULL);
        ck_assert_str_eq(testbus_json_string(o, "sender"), ipcbus_get_unique_name(bus));
        ck_assert_int_eq(testbus_json_int(o, "uid"), getuid());
        ck_assert_int_eq(testbus_json_int(o, "pid"), getpid());
        json_object_put(o);

        /* and what the caller sees of the callee */
        ck_assert_int_ge(ipcbus_call(bus, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Echo", "{}",
                                     10 * 1000000ull, &reply, NULL),
                         0);
        ck_assert_str_eq(ipcbus_message_get_sender(reply), svc.unique);
        ck_assert_int_eq(ipcbus_message_get_sender_uid(reply), getuid());
        ck_assert_int_eq(ipcbus_message_get_sender_pid(reply), svc.pid);
        ipcbus_message_unref(reply);
        testbus_child_finish(&svc);
        ipcbus_unref(bus);
}
END_TEST

START_TEST(test_large_body)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        ipcbus_bus *bus;
        size_t n = 1024 * 1024;
        char *body = malloc(n + 32);

        ck_assert_ptr_nonnull(body);
        strcpy(body, "{\"data\":\"");
        for (size_t i = strlen(body); i < n; i++)
                body[i] = (char) ('a' + i % 26);
        strcpy(body + n, "\"}");
        testbus_service_start(tb, &svc, SERVICE);
        bus = testbus_connect(tb);
        call_expect_body(bus, SERVICE, "Echo", body, body, svc.unique);
        free(body);
        testbus_child_finish(&svc);
        ipcbus_unref(bus);
}
END_TEST

static Suite *calls_suite(void)
{
        Suite *s = suite_create("bus_calls");
        TCase *tc;

        tc = testbus_tcase("routing");
        tcase_add_test(tc, test_call_by_unique_and_well_known_name);
        tcase_add_test(tc, test_body_bytes_unchanged);
        tcase_add_test(tc, test_error_reply);
        tcase_add_test(tc, test_service_unknown);
        tcase_add_test(tc, test_concurrent_callers);
        suite_add_tcase(s, tc);

        tc = testbus_tcase("replies");
        tcase_add_test(tc, test_no_reply_call);
        tcase_add_test(tc, test_no_reply_call_raw);
        tcase_add_test(tc, test_unexpected_reply);
        tcase_add_test(tc, test_reply_from_wrong_peer);
        tcase_add_test(tc, test_callee_disconnect_no_reply);
        tcase_add_test(tc, test_broker_timeout);
        suite_add_tcase(s, tc);

        tc = testbus_tcase("stamping");
        tcase_add_test(tc, test_sender_stamping);
        tcase_add_test(tc, test_large_body);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return testbus_run_suite(calls_suite());
}
