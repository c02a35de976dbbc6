/* SPDX-License-Identifier: MIT */
/*
 * What a call to the driver may cost the broker (issue 9; PROTOCOL.md 7.2
 * "Bodies of driver calls", section 4), against a real ipcbusd:
 *
 * - a driver call's body is bounded per method before any of it is read: a
 *   1 MiB Ping or a 4 MiB Hello gets LimitsExceeded, the connection stays,
 *   the broker's peak RSS grows by little more than the frame itself;
 * - an error reply quotes its argument only up to a bound, with a marker:
 *   a 20 MiB AddMatch gets a reply of a few hundred bytes;
 * - an error whose body is not {"message": string} is InvalidMessage for its
 *   sender and never reaches the caller.
 *
 * Each attack runs as uid 4242 while a bystander of another uid (65534)
 * pings the driver in a loop; its worst latency must stay under a second
 * (times testbus_slow_factor()). The figures go to stderr as FIGURE lines.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/testbus.h"

static const struct testbus_cred attacker = {.uid = 4242, .gid = 4242};
static const struct testbus_cred bystander_cred = {.uid = 65534, .gid = 65534};

#define HELLO_HEADER                                                                                                   \
        "{\"type\":\"call\",\"serial\":1,\"destination\":\"org.ipcbus.Bus\",\"path\":\"/org/ipcbus/"                   \
        "Bus\",\"member\":\"Hello\"}"
#define REPLY_SMALL 4096 /* "a few KiB": the most an error reply may take */

/* ---- frames ---------------------------------------------------------------------------------------- */

/* A body {"a":[{},{},...]} of about `size` bytes: valid JSON, shallow, as many objects as fit. */
static char *garbage_body(size_t size)
{
        char *b = malloc(size + 16);
        size_t n = 0;

        ck_assert_ptr_nonnull(b);
        n += (size_t) sprintf(b, "{\"a\":[{}");
        while (n + 3 + 2 < size) {
                memcpy(b + n, ",{}", 3);
                n += 3;
        }
        memcpy(b + n, "]}", 3);
        return b;
}

/* A driver call frame's header, as serial, for member. */
static void driver_header(char *buf, size_t size, uint32_t serial, const char *member)
{
        snprintf(buf, size,
                 "{\"type\":\"call\",\"serial\":%u,\"destination\":\"" IPCBUS_DRIVER_NAME
                 "\",\"path\":\"" IPCBUS_DRIVER_PATH "\",\"interface\":\"" IPCBUS_DRIVER_INTERFACE
                 "\",\"member\":\"%s\"}",
                 serial, member);
}

/* The error's message of frame f (asserting it has one). */
static const char *frame_message(struct testbus_frame *f)
{
        json_object *v;

        ck_assert_msg(f->b && json_object_object_get_ex(f->b, "message", &v) &&
                              json_object_is_type(v, json_type_string),
                      "an error without a message: %s", f->body ? f->body : "(no body)");
        return json_object_get_string(v);
}

/* An answer to a driver call: what the checks look at once the figures are out. */
struct answer {
        char *error; /* the error's name; NULL for a return or no answer */
        char *message;
        size_t size; /* header and body bytes; 0 for no answer */
};

static void answer_deinit(struct answer *a)
{
        free(a->error);
        free(a->message);
}

/* Send a driver call with this body on fd as `serial` and wait (long) for its answer, whatever it is. */
static void driver_call_raw(int fd, uint32_t serial, const char *member, const char *body, struct answer *ret)
{
        struct testbus_frame f;
        char header[512];

        *ret = (struct answer){0};
        driver_header(header, sizeof(header), serial, member);
        testbus_raw_send_frame(fd, header, body);
        while (testbus_raw_recv(fd, 60000 * testbus_slow_factor(), &f) == 1) {
                const char *error = testbus_frame_string(&f, "error");
                json_object *v;

                if (testbus_frame_int(&f, "reply_serial") != serial) {
                        testbus_frame_deinit(&f);
                        continue;
                }
                ret->size = f.header_len + f.body_len;
                ret->error = error ? strdup(error) : NULL;
                if (f.b && json_object_object_get_ex(f.b, "message", &v) && json_object_is_type(v, json_type_string))
                        ret->message = strndup(json_object_get_string(v), 512);
                testbus_frame_deinit(&f);
                return;
        }
}

/* The answer must be the error error_name, of at most REPLY_SMALL bytes, whose message says `needle`. */
static void expect_small_error(struct answer *a, const char *member, const char *error_name, const char *needle)
{
        ck_assert_msg(a->size > 0, "%s: no answer", member);
        ck_assert_msg(a->error && strcmp(a->error, error_name) == 0, "%s: expected %s, got %s", member, error_name,
                      a->error ? a->error : "a return");
        ck_assert_msg(a->size <= REPLY_SMALL, "%s: a reply of %zu bytes", member, a->size);
        ck_assert_msg(a->message && strstr(a->message, needle), "%s: the message does not say '%s': %s", member, needle,
                      a->message ? a->message : "(none)");
}

/* ---- item 3: driver-call bodies ----------------------------------------------------------------- */

/*
 * 1 MiB of `{}` in Ping, then 60 KiB of it in Hello (the connection's first
 * call): each gets LimitsExceeded naming the method's bound, the connection
 * stays (Ping answered, Hello said after), and the broker's peak RSS grows
 * by no more than a few times the frame (the read buffer and one copy). A
 * 4 MiB Hello is over the bound of frames before Hello (64 KiB): refused by
 * its prefix, before its body is read.
 */
START_TEST(test_large_driver_bodies)
{
        struct testbus *tb = testbus_current();
        const size_t ping_size = 1u << 20, hello_size = 60u << 10;
        char *ping_body = garbage_body(ping_size);
        char *hello_body = garbage_body(hello_size);
        struct testbus_child bystander;
        struct answer ping[4], hello;
        long peak0, peak1, peak2, worst;
        uint8_t prefix[16];
        char *refused;
        int fd;

        testbus_bystander_start(&bystander, &bystander_cred, NULL);
        peak0 = testbus_peak_rss_kb(tb);

        fd = testbus_raw_connect_as(tb, &attacker);
        free(testbus_raw_hello(fd));
        for (uint32_t i = 0; i < 4; i++)
                driver_call_raw(fd, 2 + i, "Ping", ping_body, &ping[i]);
        testbus_raw_ping(fd, 6);
        close(fd);
        peak1 = testbus_peak_rss_kb(tb);

        fd = testbus_raw_connect_as(tb, &attacker);
        driver_call_raw(fd, 1, "Hello", hello_body, &hello);
        if (hello.error) /* refused: the connection stays and may say Hello now */
                free(testbus_raw_hello(fd));
        testbus_raw_ping(fd, 2);
        close(fd);

        fd = testbus_raw_connect_as(tb, &attacker);
        testbus_raw_prefix(prefix, (uint32_t) strlen(HELLO_HEADER), 4u << 20, 0);
        testbus_raw_send(fd, prefix, sizeof(prefix)); /* the prefix alone: the broker refuses it at once */
        refused = testbus_raw_expect_refused(fd, IPCBUS_ERROR_PROTOCOL);
        ck_assert_msg(strstr(refused, "65536"), "the refusal does not name the bound: %s", refused);
        free(refused);
        close(fd);
        peak2 = testbus_peak_rss_kb(tb);
        free(ping_body);
        free(hello_body);

        worst = testbus_bystander_finish(&bystander);
        fprintf(stderr, "FIGURE item=3 attack=ping_1MiBx4 peak_rss_kb=%ld rss_growth_kb=%ld bystander_worst_ms=%ld\n",
                peak1, peak1 - peak0, worst);
        fprintf(stderr,
                "FIGURE item=3 attack=hello_60KiB_and_4MiB peak_rss_kb=%ld rss_growth_kb=%ld bystander_worst_ms=%ld\n",
                peak2, peak2 - peak1, worst);

        for (int i = 0; i < 4; i++) {
                expect_small_error(&ping[i], "Ping", IPCBUS_ERROR_LIMITS_EXCEEDED, "Ping");
                answer_deinit(&ping[i]);
        }
        expect_small_error(&hello, "Hello", IPCBUS_ERROR_LIMITS_EXCEEDED, "Hello");
        answer_deinit(&hello);
        ck_assert_msg(worst < 1000 * testbus_slow_factor(), "the bystander waited %ld ms for an answer", worst);
        /* the frame is read whole (up to 2x, rounded up) and copied once: 3x its size, and some slack */
        if (!testbus_memory_bounds_apply("driver bodies"))
                return;
        ck_assert_msg(peak1 - peak0 <= 3 * (long) (ping_size / 1024) + 8192,
                      "1 MiB Pings took the peak RSS from %ld to %ld kB", peak0, peak1);
        ck_assert_msg(peak2 - peak1 <= 3 * (long) (hello_size / 1024) + 8192,
                      "a 60 KiB and a 4 MiB Hello took the peak RSS from %ld to %ld kB", peak1, peak2);
}
END_TEST

/* Bodies within their bound still work, duplicate arguments are read as the last one. */
START_TEST(test_bodies_within_bounds)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *bus = testbus_connect(tb);
        json_object *o;

        o = testbus_driver(bus, "GetNameOwner", "{\"name\":\"nobody.here\",\"name\":\"" IPCBUS_DRIVER_NAME "\"}");
        ck_assert_str_eq(testbus_json_string(o, "owner"), IPCBUS_DRIVER_NAME);
        json_object_put(o);
        o = testbus_driver(bus, "RequestName", "{\"name\":\"org.example.A\\u0042\",\"flags\":4}");
        ck_assert_int_eq(testbus_json_int(o, "result"), 1);
        json_object_put(o);
        free(testbus_name_owner(bus, "org.example.AB"));
        testbus_driver_error(bus, "RequestName", "{\"name\":\"org.example.C\",\"flags\":1.0}",
                             IPCBUS_ERROR_INVALID_ARGS);
        testbus_driver_error(bus, "RequestName", "{\"name\":\"org.example.C\",\"flags\":-1}",
                             IPCBUS_ERROR_INVALID_ARGS);
        testbus_driver_error(bus, "RequestName", "{\"name\":5}", IPCBUS_ERROR_INVALID_ARGS);
        testbus_driver_error(bus, "RequestName", "{\"name\":null}", IPCBUS_ERROR_INVALID_ARGS);
        o = testbus_driver(bus, "BecomeMonitor", "{\"rules\":[{\"type\":\"signal\"},{\"member\":\"X\"}]}");
        json_object_put(o);
        ipcbus_unref(bus);
}
END_TEST

/* ---- item 11: error texts ----------------------------------------------------------------------- */

/*
 * Arguments echoed into errors are cut with a marker: a 20 MiB AddMatch gets
 * a small LimitsExceeded, a 60 KiB invalid rule (within AddMatch's bound) a
 * small MatchRuleInvalid that says it was truncated, a 3000-byte bus name a
 * small InvalidArgs; the bystander keeps being answered meanwhile.
 */
START_TEST(test_error_texts_bounded)
{
        struct testbus *tb = testbus_current();
        const size_t huge = 20u << 20, mid = 60u << 10;
        char *body = malloc(huge + 64);
        struct testbus_child bystander;
        struct answer a_huge, a_mid, a_name, a_utf8;
        long worst;
        int fd;

        ck_assert_ptr_nonnull(body);
        testbus_bystander_start(&bystander, &bystander_cred, NULL);
        fd = testbus_raw_connect_as(tb, &attacker);
        free(testbus_raw_hello(fd));

        /* {"rule":{"member":"aaaa..."}}: an invalid member, as long as asked */
        strcpy(body, "{\"rule\":{\"member\":\"");
        memset(body + strlen(body), 'a', huge);
        strcpy(body + huge + 19, "\"}}");
        driver_call_raw(fd, 2, "AddMatch", body, &a_huge);
        strcpy(body + mid + 19, "\"}}");
        driver_call_raw(fd, 3, "AddMatch", body, &a_mid);
        strcpy(body, "{\"name\":\"");
        memset(body + strlen(body), 'a', 3000);
        strcpy(body + 9 + 3000, "\"}");
        driver_call_raw(fd, 4, "GetNameOwner", body, &a_name);
        /* cut between whole characters: 1000 three-byte characters */
        strcpy(body, "{\"rule\":{\"member\":\"");
        for (int i = 0; i < 1000; i++)
                strcat(body + 19 + 3 * i, "\u20ac");
        strcat(body, "\"}}");
        driver_call_raw(fd, 6, "AddMatch", body, &a_utf8);
        testbus_raw_ping(fd, 5);
        close(fd);
        free(body);
        worst = testbus_bystander_finish(&bystander);
        fprintf(stderr, "FIGURE item=11 reply_bytes_20MiB=%zu reply_bytes_60KiB=%zu bystander_worst_ms=%ld\n",
                a_huge.size, a_mid.size, worst);

        expect_small_error(&a_huge, "AddMatch", IPCBUS_ERROR_LIMITS_EXCEEDED, "AddMatch");
        expect_small_error(&a_mid, "AddMatch", IPCBUS_ERROR_MATCH_RULE_INVALID, "(truncated)");
        expect_small_error(&a_name, "GetNameOwner", IPCBUS_ERROR_INVALID_ARGS, "not a valid bus name");
        expect_small_error(&a_utf8, "AddMatch", IPCBUS_ERROR_MATCH_RULE_INVALID, "(truncated)");
        ck_assert_msg(worst < 1000 * testbus_slow_factor(), "the bystander waited %ld ms for an answer", worst);
        answer_deinit(&a_huge);
        answer_deinit(&a_mid);
        answer_deinit(&a_name);
        answer_deinit(&a_utf8);
}
END_TEST

/* ---- item 13: error bodies ------------------------------------------------------------------------ */

/*
 * A callee answers with an error whose body is {"message": 5}, then
 * {"other": 1}: each is InvalidMessage for the callee and is not forwarded;
 * its well-formed error afterwards reaches the caller.
 */
START_TEST(test_error_body_checked)
{
        struct testbus *tb = testbus_current();
        static const char *const bad[] = {"{\"message\":5}", "{\"other\":1}"};
        struct testbus_frame f;
        char header[512], *callee_name;
        int caller, callee;
        int64_t call_serial;

        caller = testbus_raw_connect(tb);
        free(testbus_raw_hello(caller));
        callee = testbus_raw_connect(tb);
        callee_name = testbus_raw_hello(callee);

        snprintf(header, sizeof(header),
                 "{\"type\":\"call\",\"serial\":2,\"destination\":\"%s\",\"path\":\"/a\",\"member\":\"M\"}",
                 callee_name);
        testbus_raw_send_frame(caller, header, "{}");
        for (;;) {
                ck_assert_int_eq(testbus_raw_recv(callee, TESTBUS_WAIT_MS, &f), 1);
                if (strcmp(testbus_frame_string(&f, "type"), "call") == 0)
                        break;
                testbus_frame_deinit(&f);
        }
        call_serial = testbus_frame_int(&f, "serial");
        testbus_frame_deinit(&f);

        for (uint32_t i = 0; i < 2; i++) {
                snprintf(header, sizeof(header),
                         "{\"type\":\"error\",\"serial\":%u,\"reply_serial\":%lld,\"destination\":\":1.1\","
                         "\"error\":\"org.example.Error.Bad\"}",
                         10 + i, (long long) call_serial);
                testbus_raw_send_frame(callee, header, bad[i]);
                testbus_raw_expect_reply(callee, 10 + i, IPCBUS_ERROR_INVALID_MESSAGE, &f);
                ck_assert_msg(strstr(frame_message(&f), "message"), "InvalidMessage does not say why: %s",
                              frame_message(&f));
                testbus_frame_deinit(&f);
        }
        snprintf(header, sizeof(header),
                 "{\"type\":\"error\",\"serial\":12,\"reply_serial\":%lld,\"destination\":\":1.1\","
                 "\"error\":\"org.example.Error.Good\"}",
                 (long long) call_serial);
        testbus_raw_send_frame(callee, header, "{\"message\":\"fine\",\"detail\":1}");
        testbus_raw_expect_reply(caller, 2, "org.example.Error.Good", &f);
        ck_assert_str_eq(frame_message(&f), "fine");
        testbus_frame_deinit(&f);
        testbus_raw_ping(caller, 3);
        testbus_raw_ping(callee, 13);
        free(callee_name);
        close(callee);
        close(caller);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("bus_driver_costs");
        TCase *tc;

        /* a session bus whose policy lets the test's other users connect */
        tc = testbus_tcase_config("bodies", "{\"type\":\"session\",\"policy\":[]}");
        tcase_add_test(tc, test_large_driver_bodies);
        tcase_add_test(tc, test_bodies_within_bounds);
        tcase_add_test(tc, test_error_texts_bounded);
        tcase_add_test(tc, test_error_body_checked);
        suite_add_tcase(s, tc);

        return testbus_run_suite(s);
}
