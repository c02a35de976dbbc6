/* SPDX-License-Identifier: MIT */
/*
 * Integration tests for what match rules cost the broker (issue 9, item 5):
 * routing a message visits only the rules that could match it, argument
 * rules read the body once, so one user's rules, however many within its
 * limits, cannot slow down or freeze another user's traffic.
 *
 * The attacker is uid 65534 on raw sockets: 16 connections with 4,096
 * argument rules each, the default per-connection limit, 65,536 in all, the
 * default per-uid limit. The bystander is another uid whose calls must keep
 * being answered within a second; its broadcasts must keep a sane rate.
 * Each attack test prints its figures on a FIGURE line.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/testbus.h"

#define ATTACKER_UID 65534
#define RULES_PER_CONNECTION 4096 /* the default max_matches_per_connection */
#define ATTACK_CONNECTIONS 16     /* x 4096 = 65,536, the default max_matches_per_uid */
#define BIG_MEMBERS 80000
#define BIG_SIGNALS 2

#define SVC "org.example.Costs"

static const struct testbus_cred attacker = {.uid = ATTACKER_UID, .gid = ATTACKER_UID};
static const struct testbus_cred bob = {.uid = 4243, .gid = 4243};
static const struct testbus_cred carol = {.uid = 4244, .gid = 4244};

/* ---- the attacker: raw connections full of rules -------------------------------------- */

typedef void (*rule_fn)(unsigned i, char *buf, size_t size);

/* Argument rule i: a key and a value no message of the bystanders carries. */
static void arg_rule(unsigned i, char *buf, size_t size)
{
        snprintf(buf, size, "{\"args\":{\"%u\":\"v%u\"}}", i, i);
}

/*
 * A raw connection as cred holding rules first .. first + n - 1 (AddMatch
 * pipelined 256 at a time, each answered without error). Returns its fd.
 */
static int rules_install(struct testbus *tb, const struct testbus_cred *cred, rule_fn rule, unsigned first, unsigned n)
{
        int fd = testbus_raw_connect_as(tb, cred);
        uint32_t serial = 1;

        free(testbus_raw_hello(fd));
        for (unsigned done = 0; done < n;) {
                unsigned batch = n - done < 256 ? n - done : 256;

                for (unsigned k = 0; k < batch; k++) {
                        char header[256], rule_text[192], body[256];

                        snprintf(header, sizeof(header),
                                 "{\"type\":\"call\",\"serial\":%u,\"destination\":\"org.ipcbus.Bus\","
                                 "\"path\":\"/org/ipcbus/"
                                 "Bus\",\"interface\":\"org.ipcbus.Bus\",\"member\":\"AddMatch\"}",
                                 serial + 1 + k);
                        rule(first + done + k, rule_text, sizeof(rule_text));
                        snprintf(body, sizeof(body), "{\"rule\":%s}", rule_text);
                        testbus_raw_send_frame(fd, header, body);
                }
                for (unsigned k = 0; k < batch; k++)
                        testbus_raw_expect_reply(fd, serial + 1 + k, NULL, NULL);
                serial += batch;
                done += batch;
        }
        return fd;
}

/* The attacker's 65,536 argument rules on 16 connections (fds into fds[16]). */
static void attack_install(struct testbus *tb, int fds[ATTACK_CONNECTIONS])
{
        for (unsigned c = 0; c < ATTACK_CONNECTIONS; c++)
                fds[c] = rules_install(tb, &attacker, arg_rule, c * RULES_PER_CONNECTION, RULES_PER_CONNECTION);
}

static void attack_close(int fds[ATTACK_CONNECTIONS])
{
        for (unsigned c = 0; c < ATTACK_CONNECTIONS; c++)
                close(fds[c]);
}

/* ---- the bystander's broadcasts --------------------------------------------------------- */

#define TICKS 1000

static int64_t now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * Signals per second from `from` to the subscriber sub (recording): TICKS
 * signals with string members, timed until the last has arrived. The best
 * of three rounds, the machine being shared.
 */
static double broadcast_rate(ipcbus_bus *from, struct testbus_rec *sub)
{
        double best = 0;

        for (int round = 0; round < 3; round++) {
                int64_t t0 = now_us(), took;
                size_t got = 0;
                double rate;

                for (int i = 0; i < TICKS; i++) {
                        char body[96];

                        snprintf(body, sizeof(body), "{\"name\":\"tick\",\"n\":\"%d\",\"round\":\"%d\"}", i, round);
                        ck_assert_int_ge(
                                ipcbus_emit_signal(from, NULL, "/org/example/Ticks", "org.example.Ticks", "Tick", body),
                                0);
                }
                ck_assert_int_ge(ipcbus_flush(from), 0);
                while (got < TICKS) {
                        ipcbus_message *m = testbus_rec_next(sub, 60 * 1000);

                        ck_assert_msg(m, "only %zu of %d signals arrived", got, TICKS);
                        ck_assert_str_eq(ipcbus_message_get_member(m), "Tick");
                        got++;
                }
                took = now_us() - t0;
                rate = TICKS * 1e6 / (double) (took > 0 ? took : 1);
                if (rate > best)
                        best = rate;
        }
        return best;
}

/*
 * (a) One uid fills its rule limit with argument rules: another uid's
 * broadcasts keep a sane rate and its calls are answered within a second.
 */
START_TEST(test_arg_rules_limit_bystander)
{
        struct testbus *tb = testbus_current();
        struct testbus_child by;
        struct testbus_rec rec;
        ipcbus_bus *emitter, *sub;
        int fds[ATTACK_CONNECTIONS];
        double before, after;
        long long worst;
        int64_t t;
        long rss;

        emitter = testbus_connect_as(tb, &bob);
        sub = testbus_connect_as(tb, &bob);
        testbus_add_match(sub, "{\"type\":\"signal\",\"member\":\"Tick\"}");
        testbus_rec_init(&rec, sub, TESTBUS_REC_SIGNALS);
        before = broadcast_rate(emitter, &rec);

        testbus_bystander_start(&by, &carol, NULL);
        t = testbus_now_ms();
        attack_install(tb, fds);
        t = testbus_now_ms() - t;
        after = broadcast_rate(emitter, &rec);
        worst = testbus_bystander_finish(&by);
        rss = testbus_rss_kb(tb);

        fprintf(stderr,
                "FIGURE item=5 test=arg_rules_limit rules=%d install_ms=%lld broadcast_per_s_before=%.0f "
                "broadcast_per_s_after=%.0f bystander_worst_ms=%lld rss_kb=%ld\n",
                ATTACK_CONNECTIONS * RULES_PER_CONNECTION, (long long) t, before, after, worst, rss);
        ck_assert_msg(after * 8 >= before, "broadcasts fell from %.0f/s to %.0f/s with the rules installed", before,
                      after);
        ck_assert_msg(worst < 1000 * testbus_slow_factor(), "a bystander's call took %lld ms", worst);
        /* 65,536 small rules: a few tens of MiB at most */
        ck_assert_msg(rss < 256 * 1024, "broker RSS %ld kB", rss);

        testbus_rec_deinit(&rec);
        ipcbus_unref(sub);
        ipcbus_unref(emitter);
        attack_close(fds);
}
END_TEST

/* A broadcast signal of BIG_MEMBERS string members ("0":"", "1":"", ...): about 900 KiB. */
static char *big_body(size_t *ret_len)
{
        size_t cap = 16 + BIG_MEMBERS * 12, len = 0;
        char *body = malloc(cap);

        ck_assert_ptr_nonnull(body);
        body[len++] = '{';
        for (unsigned i = 0; i < BIG_MEMBERS; i++)
                len += (size_t) snprintf(body + len, cap - len, "%s\"%u\":\"\"", i ? "," : "", i);
        body[len++] = '}';
        body[len] = '\0';
        *ret_len = len;
        return body;
}

/* Ping the driver on a raw connection and wait up to timeout_ms for the answer, skipping signals. */
static void raw_ping_wait(int fd, uint32_t serial, int timeout_ms)
{
        int64_t deadline = testbus_now_ms() + timeout_ms;
        char header[192];

        snprintf(header, sizeof(header),
                 "{\"type\":\"call\",\"serial\":%u,\"destination\":\"org.ipcbus.Bus\",\"path\":\"/org/ipcbus/Bus\","
                 "\"member\":\"Ping\"}",
                 serial);
        testbus_raw_send_frame(fd, header, NULL);
        for (;;) {
                struct testbus_frame f;
                int64_t left = deadline - testbus_now_ms();
                int r = testbus_raw_recv(fd, left > 0 ? (int) left : 0, &f);
                bool answer;

                ck_assert_msg(r == 1, "no answer to Ping: %s", r == 0 ? "EOF" : strerror(-r));
                answer = testbus_frame_int(&f, "reply_serial") == serial;
                testbus_frame_deinit(&f);
                if (answer)
                        return;
        }
}

/*
 * (b) With the 65,536 argument rules in place, the attacker sends signals of
 * 80,000 string members: the broker routes them without freezing, and a
 * bystander's calls during them are answered within a second.
 */
START_TEST(test_big_signal_with_arg_rules)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc, by;
        int fds[ATTACK_CONNECTIONS];
        size_t len;
        char *body = big_body(&len);
        long long worst;
        int64_t t;
        long rss;

        testbus_service_start_as(tb, &svc, &bob, SVC);
        attack_install(tb, fds);
        testbus_bystander_start(&by, &carol, SVC);
        t = testbus_now_ms();
        for (unsigned i = 0; i < BIG_SIGNALS; i++) {
                char header[160];

                snprintf(header, sizeof(header),
                         "{\"type\":\"signal\",\"serial\":%u,\"path\":\"/org/example/Big\","
                         "\"interface\":\"org.example.Big\",\"member\":\"Big\"}",
                         100000 + i);
                testbus_raw_send_frame(fds[0], header, body);
        }
        /* the broker answers the Ping after it has routed them all (however long that takes) */
        raw_ping_wait(fds[0], 100010, 120 * 1000 * testbus_slow_factor());
        t = testbus_now_ms() - t;
        worst = testbus_bystander_finish(&by);
        rss = testbus_rss_kb(tb);

        fprintf(stderr,
                "FIGURE item=5 test=big_signal rules=%d members=%d body_bytes=%zu signals=%d routed_ms=%lld "
                "bystander_worst_ms=%lld rss_kb=%ld\n",
                ATTACK_CONNECTIONS * RULES_PER_CONNECTION, BIG_MEMBERS, len, BIG_SIGNALS, (long long) t, worst, rss);
        ck_assert_msg(worst < 1000 * testbus_slow_factor(), "a bystander's call took %lld ms", worst);
        ck_assert_msg(rss < 256 * 1024, "broker RSS %ld kB", rss);

        free(body);
        attack_close(fds);
        testbus_child_finish(&svc);
}
END_TEST

/* ---- unrelated rules change nothing ------------------------------------------------------ */

/* Unrelated rule i: one kind after another, each naming a value no test signal carries. */
static void unrelated_rule(unsigned i, char *buf, size_t size)
{
        switch (i % 10) {
        case 0:
                snprintf(buf, size, "{\"sender\":\"org.example.Other%u\"}", i);
                break;
        case 1:
                snprintf(buf, size, "{\"sender\":\":1.%u\"}", 1000000 + i);
                break;
        case 2:
                snprintf(buf, size, "{\"interface\":\"org.example.Other%u\",\"member\":\"A\"}", i);
                break;
        case 3:
                snprintf(buf, size, "{\"member\":\"Other%u\",\"path\":\"/org/example/tree\"}", i);
                break;
        case 4:
                snprintf(buf, size, "{\"path\":\"/org/example/tree/other%u\"}", i);
                break;
        case 5:
                snprintf(buf, size, "{\"path_namespace\":\"/org/example/tree/other%u\"}", i);
                break;
        case 6:
                snprintf(buf, size, "{\"args\":{\"color\":\"other%u\"}}", i);
                break;
        case 7:
                snprintf(buf, size, "{\"member\":\"A\",\"args\":{\"other%u\":\"red\"}}", i);
                break;
        case 8:
                snprintf(buf, size, "{\"destination\":\":1.%u\"}", 1000000 + i);
                break;
        default:
                snprintf(buf, size, "{\"sender\":\"org.example.Emitter\",\"member\":\"Other%u\"}", i);
                break;
        }
}

struct costs_signal {
        const char *path, *interface, *member, *body;
};

/* What the emitter (owner of org.example.Emitter) sends; "n" tells them apart. */
static const struct costs_signal costs_signals[] = {
        {"/org/example/tree/leaf", "org.example.Iface", "A", "{\"n\":\"1\",\"color\":\"red\",\"size\":\"big\"}"},
        {"/org/example/other", "org.example.Iface2", "B", "{\"n\":\"2\",\"size\":\"big\"}"},
        {"/org/example/treeX", "org.example.Iface", "C", "{\"n\":\"3\",\"color\":\"blue\"}"},
        {"/org/example/tree", "org.example.Iface", "B", "{\"size\":\"small\",\"n\":\"4\",\"color\":\"red\"}"},
        /* near misses of unrelated rules 4, 5 and 7; the last "color" wins */
        {"/org/example/tree/other4/x", "org.example.Iface", "A", "{\"n\":\"5\",\"color\":\"red\",\"color\":\"green\"}"},
        {"/", "org.example.Iface2", "Other3", "{\"n\":\"6\",\"size\":\"big\",\"other7\":\"red\"}"},
};

/* Each subscriber's rule and the signals ("n" values) it must get, in order. */
static const struct {
        const char *rule, *expect;
} costs_subs[] = {
        {"{\"sender\":\"org.example.Emitter\",\"member\":\"A\"}", "1 5"},
        {"{\"path_namespace\":\"/org/example/tree\"}", "1 4 5"},
        {"{\"interface\":\"org.example.Iface2\"}", "2 6"},
        {"{\"args\":{\"color\":\"red\"}}", "1 4"},
        {"{\"member\":\"B\",\"args\":{\"size\":\"big\"}}", "2"},
        {"{\"path\":\"/org/example/tree/leaf\",\"member\":\"A\",\"args\":{\"size\":\"big\",\"color\":\"red\"}}", "1"},
        {"{\"type\":\"signal\"}", "1 2 3 4 5 6"},
        {"{\"sender\":\"org.example.Nobody\"}", ""},
};

#define N_COSTS_SUBS (sizeof(costs_subs) / sizeof(costs_subs[0]))
#define UNRELATED_RULES 10000

/*
 * (c) 10,000 rules of other connections on other senders, interfaces,
 * members, paths, namespaces, destinations and argument values change
 * nothing of what subscribers get. (Speed is ipc-bench's
 * signal_fanout_rules, not asserted here.)
 */
START_TEST(test_unrelated_rules_deliver_the_same)
{
        struct testbus *tb = testbus_current();
        struct testbus_rec recs[N_COSTS_SUBS];
        ipcbus_bus *subs[N_COSTS_SUBS], *emitter;
        int fds[3];

        for (unsigned c = 0; c < 3; c++) {
                unsigned first = c * 4000, n = c < 2 ? 4000 : UNRELATED_RULES - 8000;

                fds[c] = rules_install(tb, &attacker, unrelated_rule, first, n);
        }
        emitter = testbus_connect_as(tb, &bob);
        ck_assert_int_eq(testbus_request_name(emitter, "org.example.Emitter", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        for (size_t i = 0; i < N_COSTS_SUBS; i++) {
                subs[i] = testbus_connect_as(tb, &carol);
                testbus_add_match(subs[i], costs_subs[i].rule);
                testbus_add_match(subs[i], "{\"member\":\"End\"}");
                testbus_rec_init(&recs[i], subs[i], TESTBUS_REC_SIGNALS);
        }
        for (size_t k = 0; k < sizeof(costs_signals) / sizeof(costs_signals[0]); k++) {
                const struct costs_signal *s = &costs_signals[k];

                ck_assert_int_ge(ipcbus_emit_signal(emitter, NULL, s->path, s->interface, s->member, s->body), 0);
        }
        ck_assert_int_ge(ipcbus_emit_signal(emitter, NULL, "/end", "org.example.End", "End", "{}"), 0);
        ck_assert_int_ge(ipcbus_flush(emitter), 0);

        for (size_t i = 0; i < N_COSTS_SUBS; i++) {
                char got[64] = "";

                for (;;) {
                        ipcbus_message *m = testbus_rec_next(&recs[i], TESTBUS_WAIT_MS * testbus_slow_factor());
                        const char *n;

                        ck_assert_msg(m, "subscriber %zu (%s): no End after \"%s\"", i, costs_subs[i].rule, got);
                        if (strcmp(ipcbus_message_get_sender(m), IPCBUS_DRIVER_NAME) == 0)
                                continue; /* NameOwnerChanged of the other subscribers */
                        if (strcmp(ipcbus_message_get_member(m), "End") == 0)
                                break;
                        n = ipcbus_message_get_arg(m, "n");
                        ck_assert_ptr_nonnull(n);
                        snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", *got ? " " : "", n);
                }
                ck_assert_msg(strcmp(got, costs_subs[i].expect) == 0, "subscriber %zu (%s) got \"%s\", wants \"%s\"", i,
                              costs_subs[i].rule, got, costs_subs[i].expect);
                testbus_rec_deinit(&recs[i]);
                ipcbus_unref(subs[i]);
        }
        /*
         * None of the unrelated rules matched: their connections got nothing
         * from the emitter (what it sent was queued for them, if at all,
         * before End reached the subscribers).
         */
        for (unsigned c = 0; c < 3; c++) {
                struct testbus_frame f;
                int r;

                while ((r = testbus_raw_recv(fds[c], 200, &f)) == 1) {
                        const char *sender = testbus_frame_string(&f, "sender");

                        ck_assert_msg(sender && strcmp(sender, IPCBUS_DRIVER_NAME) == 0,
                                      "an unrelated rule matched: %s", f.header);
                        testbus_frame_deinit(&f);
                }
                ck_assert_int_eq(r, -ETIMEDOUT);
                close(fds[c]);
        }
        ipcbus_unref(emitter);
}
END_TEST

static Suite *match_costs_suite(void)
{
        Suite *s = suite_create("bus_match_costs");
        /* a system bus (every uid may connect and own names) with the default limits */
        TCase *tc = testbus_tcase_config("costs", "{\"type\":\"system\"}");

        /* the attacker installs 65,536 rules over raw sockets; under valgrind that takes a while */
        tcase_set_timeout(tc, 120 * testbus_slow_factor());
        tcase_add_test(tc, test_arg_rules_limit_bystander);
        tcase_add_test(tc, test_big_signal_with_arg_rules);
        tcase_add_test(tc, test_unrelated_rules_deliver_the_same);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return testbus_run_suite(match_costs_suite());
}
