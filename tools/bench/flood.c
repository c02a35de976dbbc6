/* SPDX-License-Identifier: MIT */
/*
 * Calls under a signal flood (call_under_flood): call_rtt_small's
 * sequential Echo calls, first on a quiet bus and then while the emitter of
 * signal_fanout_10 floods its 10 subscribers, in one run; the figure is the
 * flooded p99 and its ratio to the quiet one. The echo server and the calls
 * are calls.c's, the flood is signals.c's.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "tools/bench/bench.h"

/* Calls in each half (quiet, flooded): half of call_rtt_small's, to stay near 10 s on a busy machine. */
#define FLOOD_CALLS 10000

/* What one call_under_flood run measured. */
struct flood_run {
        struct report quiet;   /* the caller's calls on a quiet bus */
        struct report flooded; /* ... and during the flood */
        struct usage clients;  /* the caller and the echo server, over the flooded calls */
        struct usage broker;   /* the broker, from the flood's start to its last delivery */
        bool broker_known;
        struct fanout f;
};

/*
 * With the echo server and the subscribers in place: the caller's quiet
 * calls, the flood, its flooded calls, the flood's end and its deliveries.
 * Returns 0, or 1 when something did not report cleanly.
 */
static int flood_calls(const struct bench *b, const char *name, struct call_arg *a, pid_t broker_pid,
                       struct flood_run *run)
{
        struct child client = CHILD_NULL;
        struct usage before, after;
        int r, bad = 0;
        bool emitted = false;

        r = child_spawn(&client, b, call_client_main, a, NULL, 0);
        if (r < 0) {
                fprintf(stderr, "ipc-bench: %s: %s\n", name, strerror(-r));
                return 1;
        }
        /* a client that failed before its quiet calls were done sends its DONE instead: -EPROTO */
        r = child_wait_report(&client, REPORT_READY, DONE_TIMEOUT_MS, &run->quiet);
        if (r < 0)
                child_complain(name, "client", r, &run->quiet);
        run->broker_known = broker_pid > 0 && usage_proc(broker_pid, &before) == 0;
        if (r >= 0)
                r = fanout_flood_start(b, name, &run->f);
        if (r >= 0) {
                r = child_go(&client);
                bad |= client_result(name, &client, a->count, &run->flooded);
                usage_add_delta(&run->clients, &(struct usage){}, &run->flooded.usage);
        }
        if (run->f.emitter.pid > 0)
                emitted = fanout_flood_stop(name, &run->f) >= 0;
        bad |= fanout_collect(name, &run->f, emitted) | !emitted;
        run->broker_known = run->broker_known && usage_proc(broker_pid, &after) == 0;
        if (run->broker_known)
                usage_add_delta(&run->broker, &before, &after);
        if (r < 0)
                bad = 1;
        child_reap(&client);
        return bad;
}

int scenario_call_under_flood(const struct bench *b, const char *name)
{
        /* the echo server's usage starts with the first flooded call */
        struct call_arg a = {.kind = PAYLOAD_STRING,
                             .payload = SMALL_PAYLOAD,
                             .warmup = bench_scaled(b, CALL_RTT_SMALL_WARMUP),
                             .count = bench_scaled(b, FLOOD_CALLS),
                             .timed_before_go = true};
        struct call_arg srv_a = a;
        pid_t broker = broker_pid_for_usage(b);
        struct child srv = CHILD_NULL;
        struct flood_run run = {.flooded = {.failed = a.count}};
        const struct report *q = &run.quiet, *fl = &run.flooded;
        double ratio, n_msgs;
        char usage[256] = "";
        int bad = 0;

        srv_a.warmup = a.warmup + a.count;
        fanout_init(&run.f, 0);
        if (fanout_subscribe(b, name, &run.f) < 0 || echo_server_start(b, name, &srv_a, &srv) < 0)
                bad = 1;
        else
                bad = flood_calls(b, name, &a, broker, &run);
        if (srv.pid > 0)
                bad |= echo_server_finish(name, &srv, &run.clients);
        fanout_reap(&run.f);

        ratio = q->p99_ns ? (double) fl->p99_ns / (double) q->p99_ns : 0.0;
        /* what the broker carried meanwhile: every signal delivered, every call and its reply */
        n_msgs = (double) run.f.delivered + 2.0 * (double) fl->count;
        if (fl->count > 0) {
                int len = snprintf(usage, sizeof(usage), " client_minflt_per_call=%.2f client_cpu_us_per_call=%.2f",
                                   (double) run.clients.minflt / (double) fl->count,
                                   (double) run.clients.cpu_ns / 1000.0 / (double) fl->count);

                if (run.broker_known && n_msgs > 0 && len > 0 && (size_t) len < sizeof(usage))
                        snprintf(usage + len, sizeof(usage) - (size_t) len,
                                 " broker_minflt_per_msg=%.3f broker_cpu_us_per_msg=%.3f",
                                 (double) run.broker.minflt / n_msgs, (double) run.broker.cpu_ns / 1000.0 / n_msgs);
        }
        return result_print(name, bench_us(fl->p99_ns), "us", fl->lost + q->lost + run.f.lost,
                            fl->failed + q->failed + run.f.failed,
                            " p50_us=%.2f p99_us=%.2f p99_ratio=%.2f unloaded_p50_us=%.2f unloaded_p99_us=%.2f"
                            " count=%" PRIu64 " subscribers=%d signals=%" PRIu64 " delivered=%" PRIu64
                            " signals_per_s=%.0f%s",
                            bench_us(fl->p50_ns), bench_us(fl->p99_ns), ratio, bench_us(q->p50_ns), bench_us(q->p99_ns),
                            fl->count, FANOUT_SUBSCRIBERS, run.f.erep.count, run.f.delivered,
                            run.f.erep.t_start ? bench_rate(run.f.delivered, run.f.erep.t_start, run.f.t_end) : 0.0,
                            usage) |
               bad;
}
