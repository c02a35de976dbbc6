/* SPDX-License-Identifier: MIT */
/*
 * Flow control against a real ipcbusd: backpressure without loss and the
 * stall timeout (daemon/CONFIG.md, "backpressure_bytes", "stall_timeout_ms").
 * A sender's burst of broadcast signals reaches every subscriber, in order;
 * when a subscriber falls behind, the broker stops reading the sender
 * instead of buffering or dropping, so its memory stays small; one that stops
 * reading altogether is disconnected after the stall timeout, and only then,
 * and everyone else carries on. Meanwhile a third client's calls keep working.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/testbus.h"

#define FLOW_INTERFACE "org.example.Flow"
#define SVC "org.example.Svc"
#define BODY_PAD 1000

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/* ---- the subscriber: counts Tick signals, which must come in order ------------------------------ */

struct counter {
        unsigned total;      /* reports "done <total>" when the last one came */
        unsigned slow_every; /* sleep slow_us after every slow_every signals (0: never) */
        unsigned slow_us;
        struct testbus_peer *p;
        unsigned next;
};

static int counter_filter(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct counter *c = userdata;
        const char *member = ipcbus_message_get_member(m), *i;

        if (ipcbus_message_get_type(m) != IPCBUS_MESSAGE_SIGNAL || !member || strcmp(member, "Tick") != 0)
                return 0;
        i = ipcbus_message_get_arg(m, "i");
        if (!i || strtoul(i, NULL, 10) != c->next)
                testbus_peer_fail(c->p, "Tick %s came when %u was due", i ? i : "(none)", c->next);
        if (++c->next == c->total)
                testbus_peer_report(c->p, "done %u", c->next);
        if (c->slow_every && c->next % c->slow_every == 0)
                usleep(c->slow_us);
        return 0;
}

/* The filter does the counting; the match only subscribes. */
static int counter_ignore(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        return 0;
}

static int counter_command(struct testbus_peer *p, const char *line, void *userdata)
{
        struct counter *c = userdata;

        testbus_peer_check(p, strcmp(line, "count") == 0);
        testbus_peer_report(p, "count %u", c->next);
        return 0;
}

static int counter_main(struct testbus_peer *p, void *arg)
{
        struct counter *c = arg;
        ipcbus_bus *bus = testbus_peer_connect(p);
        ipcbus_slot *filter = NULL, *match = NULL;

        c->p = p;
        testbus_peer_check(p, ipcbus_add_filter(bus, &filter, counter_filter, c) >= 0);
        testbus_peer_check(p,
                           ipcbus_add_match(bus, &match, "interface=" FLOW_INTERFACE, counter_ignore, NULL, NULL) >= 0);
        testbus_peer_report(p, "ready %s", ipcbus_get_unique_name(bus));
        testbus_peer_run(p, bus, counter_command, c);
        ipcbus_slot_unref(match);
        ipcbus_slot_unref(filter);
        ipcbus_unref(bus);
        return 0;
}

static void counter_start(struct testbus_child *child, unsigned total, unsigned slow_every, unsigned slow_us)
{
        struct counter c = {.total = total, .slow_every = slow_every, .slow_us = slow_us};

        /* the child gets its own copy of c */
        testbus_child_start(testbus_current(), child, counter_main, &c);
        testbus_child_ready(child);
}

/* ---- the sender ----------------------------------------------------------------------------------- */

/* Every error the sender gets is reported: it must get none. */
static int emitter_filter(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        if (ipcbus_message_get_type(m) == IPCBUS_MESSAGE_ERROR)
                testbus_peer_report(userdata, "error %s %s", ipcbus_message_get_error_name(m),
                                    ipcbus_message_get_body(m, NULL));
        return 0;
}

/*
 * "burst N": emit N broadcast Ticks {"i": "<k>", "pad": "..."}, writing out
 * every 64 (so the sender waits whenever the broker does not read it), then
 * a round trip to the broker; reports "sent <ms it took>".
 */
static int emitter_command(struct testbus_peer *p, const char *line, void *userdata)
{
        ipcbus_bus *bus = userdata;
        char body[BODY_PAD + 64], pad[BODY_PAD + 1];
        int64_t t0 = testbus_now_ms();
        unsigned n;
        int r;

        testbus_peer_check(p, sscanf(line, "burst %u", &n) == 1);
        memset(pad, 'x', BODY_PAD);
        pad[BODY_PAD] = '\0';
        for (unsigned i = 0; i < n; i++) {
                snprintf(body, sizeof(body), "{\"i\":\"%u\",\"pad\":\"%s\"}", i, pad);
                r = ipcbus_emit_signal(bus, NULL, "/org/example/Flow", FLOW_INTERFACE, "Tick", body);
                if (r < 0)
                        testbus_peer_fail(p, "emitting Tick %u: %s", i, ipcbus_strerror(r));
                if (i % 64 == 63 && (r = ipcbus_flush(bus)) < 0)
                        testbus_peer_fail(p, "flush: %s", ipcbus_strerror(r));
        }
        r = ipcbus_call(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE, "Ping", NULL,
                        60 * 1000000ull, NULL, NULL);
        if (r < 0)
                testbus_peer_fail(p, "Ping after the burst: %s", ipcbus_strerror(r));
        while ((r = ipcbus_process(bus)) > 0)
                ;
        testbus_peer_report(p, "sent %" PRId64, testbus_now_ms() - t0);
        return 0;
}

static int emitter_main(struct testbus_peer *p, void *arg)
{
        ipcbus_bus *bus = testbus_peer_connect(p);
        ipcbus_slot *filter = NULL;

        testbus_peer_check(p, ipcbus_add_filter(bus, &filter, emitter_filter, p) >= 0);
        testbus_peer_report(p, "ready %s", ipcbus_get_unique_name(bus));
        testbus_peer_run(p, bus, emitter_command, bus);
        ipcbus_slot_unref(filter);
        ipcbus_unref(bus);
        return 0;
}

/* ---- the test's side ---------------------------------------------------------------------------- */

/* A report line of a child if there is one now (malloc'd), else NULL. A child's failure or end fails the test. */
static char *child_poll(struct testbus_child *c)
{
        char *line = testbus_lines_read(&c->out, 1);

        if (!line) {
                ck_assert_msg(!c->out.eof, "child %d ended", (int) c->pid);
                return NULL;
        }
        ck_assert_msg(strncmp(line, "FAIL:", 5) != 0 && strncmp(line, "error ", 6) != 0, "child %d: %s", (int) c->pid,
                      line);
        return line;
}

/* What the third client saw while the burst went on. */
struct watch {
        struct testbus *tb;
        ipcbus_bus *third;
        int64_t t0;
        int64_t worst_call_ms;
        unsigned calls; /* call pairs made before every subscriber was done */
        long rss_idle_kb;
        long rss_peak_kb;
};

/* One round of the third client: a call to the driver and one to a service, each answered soon. */
static void watch_calls(struct watch *w)
{
        int64_t t = testbus_now_ms(), took;
        json_object *o;

        json_object_put(testbus_driver(w->third, "Ping", NULL));
        o = testbus_call(w->third, SVC, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Echo", "{\"k\":\"v\"}");
        ck_assert_str_eq(testbus_json_string(o, "k"), "v");
        json_object_put(o);
        took = testbus_now_ms() - t;
        if (took > w->worst_call_ms)
                w->worst_call_ms = took;
        w->calls++;
}

static void watch_rss(struct watch *w)
{
        long kb = testbus_rss_kb(w->tb);

        if (kb > w->rss_peak_kb)
                w->rss_peak_kb = kb;
}

/*
 * Drive the watch until every counter reported "done <total>" (each at most
 * once, within timeout_ms); done_at[i] is when counter i was done (ms after
 * w->t0). Calls to on_round(userdata) between rounds, if given.
 */
static void watch_until_done(struct watch *w, struct testbus_child *counters, size_t n, unsigned total,
                             int64_t *done_at, void (*on_round)(struct watch *w, void *userdata), void *userdata,
                             int timeout_ms)
{
        int64_t deadline = testbus_now_ms() + timeout_ms;
        size_t n_done = 0;
        char expect[32];

        snprintf(expect, sizeof(expect), "done %u", total);
        for (size_t i = 0; i < n; i++)
                done_at[i] = -1;
        while (n_done < n) {
                if (testbus_now_ms() > deadline) {
                        char counts[256] = "";

                        for (size_t i = 0; i < n; i++) {
                                char *line;

                                testbus_child_send(&counters[i], "count");
                                line = testbus_child_read(&counters[i], TESTBUS_WAIT_MS);
                                snprintf(counts + strlen(counts), sizeof(counts) - strlen(counts), " [%s]", line);
                                free(line);
                        }
                        ck_abort_msg("%zu of %zu subscribers got all %u signals within %d ms:%s", n_done, n, total,
                                     timeout_ms, counts);
                }
                watch_calls(w);
                watch_rss(w);
                if (on_round)
                        on_round(w, userdata);
                for (size_t i = 0; i < n; i++) {
                        char *line = child_poll(&counters[i]);

                        if (!line)
                                continue;
                        ck_assert_msg(strcmp(line, expect) == 0 && done_at[i] < 0, "subscriber %zu: %s", i, line);
                        done_at[i] = testbus_now_ms() - w->t0;
                        n_done++;
                        free(line);
                }
                usleep(10000);
        }
}

/* The sender's "sent <ms>": it got no error on the way. Returns the ms. */
static int64_t expect_sent(struct testbus_child *emitter)
{
        char *line = testbus_child_read(emitter, TESTBUS_WAIT_MS);
        long long ms;

        ck_assert_msg(sscanf(line, "sent %lld", &ms) == 1, "sender reported '%s'", line);
        free(line);
        return ms;
}

/*
 * Under AddressSanitizer freed memory waits in a quarantine (256 MiB by
 * default) that would count as broker memory: keep it small for the broker
 * whose memory is measured.
 */
static void limit_asan_quarantine(void)
{
        const char *old = getenv("ASAN_OPTIONS");
        char *v;

        if (!UNDER_ASAN)
                return;
        ck_assert_int_ge(asprintf(&v, "%s%squarantine_size_mb=1", old ? old : "", old && old[0] ? ":" : ""), 0);
        setenv("ASAN_OPTIONS", v, 1);
        free(v);
}

/* ---- a slow subscriber among fast ones ------------------------------------------------------------ */

#define BURST 20000
/* Far below the 20 MB a subscriber is sent; only what the broker holds counts. */
#define RSS_GROWTH_MAX_KB (8 * 1024)

START_TEST(test_slow_subscriber)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc, emitter, counters[3];
        struct watch w = {.tb = tb};
        int64_t done_at[3], sent_ms;
        int slow = testbus_slow_factor();
        /* a smaller burst when everything runs slowly (under valgrind) */
        unsigned burst = BURST / (unsigned) slow;

        limit_asan_quarantine();
        testbus_start_config(tb, "{\"limits\":{\"backpressure_bytes\":65536}}");
        testbus_service_start(tb, &svc, SVC);
        counter_start(&counters[0], burst, 0, 0);
        counter_start(&counters[1], burst, 0, 0);
        /* far behind: 5 ms asleep every 64 signals, 1.5 s over the burst */
        counter_start(&counters[2], burst, 64, 5000);
        testbus_child_start(tb, &emitter, emitter_main, NULL);
        testbus_child_ready(&emitter);
        w.third = testbus_connect(tb);
        watch_calls(&w);
        w.rss_idle_kb = w.rss_peak_kb = testbus_rss_kb(tb);

        w.t0 = testbus_now_ms();
        w.calls = 0;
        testbus_child_send(&emitter, "burst %u", burst);
        watch_until_done(&w, counters, 3, burst, done_at, NULL, NULL, 45000 * slow);
        sent_ms = expect_sent(&emitter);

        /*
         * The slow one held the burst back: the sender was through only when
         * it had nearly everything (nobody was dropped: a lost connection
         * fails its child).
         */
        ck_assert_msg(sent_ms + 500 * slow >= done_at[2],
                      "the sender was not held back: its burst went out in %lld ms, the slow subscriber had it all "
                      "after %lld ms",
                      (long long) sent_ms, (long long) done_at[2]);
        ck_assert_msg(w.calls >= 5 && w.worst_call_ms < 2000 * slow,
                      "%u calls during the burst, the slowest took %lld ms", w.calls, (long long) w.worst_call_ms);
        /* (under valgrind memcheck's own memory would swamp the figure) */
        ck_assert_msg(slow > 1 || w.rss_peak_kb - w.rss_idle_kb < RSS_GROWTH_MAX_KB,
                      "broker memory grew from %ld kB to %ld kB over a burst of %u signals", w.rss_idle_kb,
                      w.rss_peak_kb, burst);
        fprintf(stderr, "slow subscriber: done after %lld ms, sender took %lld ms, broker RSS %ld -> %ld kB\n",
                (long long) done_at[2], (long long) sent_ms, w.rss_idle_kb, w.rss_peak_kb);

        ipcbus_unref(w.third);
        testbus_child_finish(&emitter);
        for (size_t i = 0; i < 3; i++)
                testbus_child_finish(&counters[i]);
        testbus_child_finish(&svc);
}
END_TEST

/* ---- a subscriber that stops reading --------------------------------------------------------------- */

#define STALL_MS (1500 * testbus_slow_factor())
#define STALL_BURST 4000

struct stall {
        int64_t at;            /* when the broker's log first said the staller was cut off (ms after t0; -1: not yet) */
        unsigned calls_before; /* the third client's call rounds before that */
};

static void note_stall(struct watch *w, void *userdata)
{
        struct stall *st = userdata;

        if (st->at < 0 && testbus_log_wait(w->tb, "stalled", 0)) {
                st->at = testbus_now_ms() - w->t0;
                st->calls_before = w->calls;
        }
}

/* Read and discard until the other end closes (true) or TESTBUS_WAIT_MS pass with the connection open. */
static bool drain_to_eof(int fd)
{
        int64_t deadline = testbus_now_ms() + TESTBUS_WAIT_MS;
        char buf[65536];

        while (testbus_now_ms() < deadline) {
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                ssize_t n;

                if (poll(&pfd, 1, 100) <= 0)
                        continue;
                n = read(fd, buf, sizeof(buf));
                if (n == 0 || (n < 0 && errno == ECONNRESET))
                        return true;
        }
        return false;
}

START_TEST(test_stalled_subscriber)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc, emitter, counters[2];
        struct watch w = {.tb = tb};
        struct stall st = {.at = -1};
        int64_t done_at[2], sent_ms;
        int slow = testbus_slow_factor(), staller;
        char config[128];

        snprintf(config, sizeof(config), "{\"limits\":{\"backpressure_bytes\":65536,\"stall_timeout_ms\":%d}}",
                 STALL_MS);
        testbus_start_config(tb, config);
        testbus_service_start(tb, &svc, SVC);
        counter_start(&counters[0], STALL_BURST, 0, 0);
        counter_start(&counters[1], STALL_BURST, 0, 0);
        testbus_child_start(tb, &emitter, emitter_main, NULL);
        testbus_child_ready(&emitter);
        /* subscribed, then never reads again */
        staller = testbus_raw_connect(tb);
        free(testbus_raw_hello(staller));
        testbus_raw_send_frame(staller,
                               "{\"type\":\"call\",\"serial\":2,\"destination\":\"org.ipcbus.Bus\","
                               "\"path\":\"/org/ipcbus/Bus\",\"member\":\"AddMatch\"}",
                               "{\"rule\":{\"interface\":\"" FLOW_INTERFACE "\"}}");
        testbus_raw_expect_reply(staller, 2, NULL, NULL);
        w.third = testbus_connect(tb);

        w.t0 = testbus_now_ms();
        testbus_child_send(&emitter, "burst %u", STALL_BURST);
        watch_until_done(&w, counters, 2, STALL_BURST, done_at, note_stall, &st, STALL_MS + 10000 * slow);
        note_stall(&w, &st);
        sent_ms = expect_sent(&emitter);

        /* cut off after the stall time, not before, and only then did the rest go through */
        ck_assert_msg(st.at >= STALL_MS - 200 && st.at < STALL_MS + 3000 * slow,
                      "the staller was cut off %lld ms after the burst began (stall timeout %d ms)", (long long) st.at,
                      STALL_MS);
        for (size_t i = 0; i < 2; i++)
                ck_assert_msg(done_at[i] >= STALL_MS - 200, "subscriber %zu had the whole burst after %lld ms", i,
                              (long long) done_at[i]);
        ck_assert_msg(sent_ms + 200 * slow >= st.at, "the sender was not held back: its burst went out in %lld ms",
                      (long long) sent_ms);
        /* the third client was served while the staller stalled */
        ck_assert_msg(st.calls_before >= 5 && w.worst_call_ms < 1000 * slow,
                      "%u calls during the stall, the slowest took %lld ms", st.calls_before,
                      (long long) w.worst_call_ms);

        /* the staller finds what fitted (the last frame may be cut short), then the end */
        ck_assert_msg(drain_to_eof(staller), "the staller's connection is still open");
        close(staller);

        ipcbus_unref(w.third);
        testbus_child_finish(&emitter);
        for (size_t i = 0; i < 2; i++)
                testbus_child_finish(&counters[i]);
        testbus_child_finish(&svc);
}
END_TEST

static Suite *flow_suite(void)
{
        Suite *s = suite_create("bus_flow");
        TCase *tc = testbus_tcase_bare("flow");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_slow_subscriber);
        tcase_add_test(tc, test_stalled_subscriber);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return testbus_run_suite(flow_suite());
}
