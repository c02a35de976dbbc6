/* SPDX-License-Identifier: MIT */
/*
 * Method calls to an echo server process: sequential small, 64 KiB and 1 MiB
 * calls, and pipelined calls (call_rtt_small, call_rtt_64k, call_rtt_1m,
 * call_pipelined). Each also reports the minor page faults and the CPU time
 * per call of the broker and of the client processes (caller and server),
 * counted over the timed calls only.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "protocol/jbuf.h"
#include "tools/bench/bench.h"
#include "tools/format.h"

#define LARGE_PAYLOAD (64 * 1024)
#define HUGE_PAYLOAD (1024 * 1024)
#define PIPELINE_WINDOW 64

struct call_arg {
        size_t payload;
        uint64_t warmup;
        uint64_t count;
};

struct echo_server {
        struct jbuf reply; /* reused for every answer */
        uint64_t served;
        uint64_t warmup;    /* calls before the timed part */
        struct usage start; /* our usage when the first timed call came */
};

/* Echo: answer {"data": <the same string>}. */
static int echo_method(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct echo_server *srv = userdata;
        const char *data = ipcbus_message_get_arg(m, "data");

        if (srv->served == srv->warmup)
                usage_self(&srv->start);
        if (!data)
                return ipcbus_reply_error(m, IPCBUS_ERROR_INVALID_ARGS, "the string argument data is missing");
        jbuf_reset(&srv->reply);
        jbuf_puts(&srv->reply, "{\"data\":");
        jbuf_put_string(&srv->reply, data);
        jbuf_putc(&srv->reply, '}');
        if (srv->reply.failed)
                return -ENOMEM;
        srv->served++;
        return ipcbus_reply(m, srv->reply.data);
}

/*
 * Take the bench name. The previous scenario's server may still be leaving,
 * so a name that exists is retried for a few seconds.
 */
static int bench_request_name(ipcbus_bus *bus)
{
        for (int i = 0; i < 500; i++) {
                _cleanup_(ipcbus_error_freep) ipcbus_error e = IPCBUS_ERROR_NULL;
                int r = ipcbus_request_name(bus, BENCH_NAME, IPCBUS_NAME_DO_NOT_QUEUE, &e);

                if (r == IPCBUS_REQUEST_NAME_PRIMARY_OWNER || r == IPCBUS_REQUEST_NAME_ALREADY_OWNER)
                        return 0;
                if (r < 0) {
                        fprintf(stderr, "ipc-bench: RequestName: %s%s%s\n", e.name ? e.name : ipcbus_strerror(r),
                                e.message ? ": " : "", e.message ? e.message : "");
                        return r;
                }
                usleep(10 * 1000);
        }
        fprintf(stderr, "ipc-bench: %s stays owned by another connection\n", BENCH_NAME);
        return -EBUSY;
}

/*
 * The echo server: owns the bench name and serves Echo until told to stop.
 * Its DONE report carries its usage from the first timed call (after the
 * client's warm-up calls, arg's) to the stop.
 */
static int echo_server_main(const struct bench *b, void *arg)
{
        const struct call_arg *a = arg;
        static const ipcbus_method methods[] = {
                {"Echo", echo_method},
                {},
        };
        _cleanup_(ipcbus_unrefp) ipcbus_bus *bus = NULL;
        struct echo_server srv = {.warmup = a->warmup};
        struct report rep = {};
        struct usage end;
        ipcbus_slot *slot = NULL;
        int r;

        jbuf_init(&srv.reply);
        r = bench_connect(b, &bus);
        if (r >= 0)
                r = ipcbus_add_object(bus, &slot, BENCH_PATH, BENCH_INTERFACE, methods, &srv);
        if (r >= 0)
                r = bench_request_name(bus);
        if (r >= 0) {
                report_send(&rep, REPORT_READY);
                r = bus_run(bus, NULL);
        }
        usage_self(&end);
        if (srv.served > srv.warmup)
                usage_add_delta(&rep.usage, &srv.start, &end);
        rep.error = r < 0 ? r : 0;
        rep.count = srv.served;
        report_send(&rep, REPORT_DONE);
        ipcbus_slot_unref(slot);
        jbuf_deinit(&srv.reply);
        return r < 0 ? r : 0;
}

/* Whether a reply carries back the `len`-byte payload we sent. */
static bool echo_reply_ok(ipcbus_message *reply, size_t len)
{
        const char *data;

        if (ipcbus_message_get_type(reply) != IPCBUS_MESSAGE_RETURN)
                return false;
        data = ipcbus_message_get_arg(reply, "data");
        return data && strlen(data) == len;
}

/*
 * One sequential Echo call of body; *ok says whether the payload came back.
 * An error reply is counted in *errors (the first one said), not fatal.
 * Returns 0 or negative errno.
 */
static int call_echo(ipcbus_bus *bus, const char *body, size_t payload, uint64_t *errors, bool *ok)
{
        _cleanup_(ipcbus_message_unrefp) ipcbus_message *reply = NULL;
        _cleanup_(ipcbus_error_freep) ipcbus_error e = IPCBUS_ERROR_NULL;
        int r;

        r = ipcbus_call(bus, BENCH_NAME, BENCH_PATH, BENCH_INTERFACE, "Echo", body, IPCBUS_TIMEOUT_DEFAULT, &reply, &e);
        *ok = r >= 0 && echo_reply_ok(reply, payload);
        if (r == -EREMOTEIO) {
                if ((*errors)++ == 0)
                        fprintf(stderr, "ipc-bench: Echo: %s: %s\n", e.name ? e.name : "?", e.message ? e.message : "");
                return 0;
        }
        if (r < 0)
                fprintf(stderr, "ipc-bench: Echo: %s\n", ipcbus_strerror(r));
        return r;
}

/*
 * Sequential Echo calls: warm-up, the parent's go, then timed calls; reports
 * latencies and what this process spent in the timed calls.
 */
static int call_client_main(const struct bench *b, void *arg)
{
        const struct call_arg *a = arg;
        _cleanup_(ipcbus_unrefp) ipcbus_bus *bus = NULL;
        _cleanup_(freep) char *body = payload_body(a->payload);
        struct report rep = {};
        struct samples s = {};
        struct usage start, end;
        uint64_t errors = 0;
        bool ok;
        int r;

        r = body ? samples_init(&s, a->count) : -ENOMEM;
        if (r >= 0)
                r = bench_connect(b, &bus);
        for (uint64_t i = 0; r >= 0 && i < a->warmup; i++)
                r = call_echo(bus, body, a->payload, &errors, &ok);
        if (r >= 0)
                r = client_wait_go();
        usage_self(&start);
        rep.t_start = clock_now_nsec(CLOCK_MONOTONIC);
        for (uint64_t i = 0; r >= 0 && i < a->count; i++) {
                uint64_t t0 = clock_now_nsec(CLOCK_MONOTONIC);

                r = call_echo(bus, body, a->payload, &errors, &ok);
                if (r < 0)
                        break;
                s.v[s.n++] = clock_now_nsec(CLOCK_MONOTONIC) - t0;
                rep.count++;
                if (!ok)
                        rep.failed++;
        }
        rep.t_end = clock_now_nsec(CLOCK_MONOTONIC);
        usage_self(&end);
        usage_add_delta(&rep.usage, &start, &end);
        rep.error = r < 0 ? r : 0;
        rep.lost = a->count - rep.count;
        if (s.v)
                samples_finish(&s, &rep);
        report_send(&rep, REPORT_DONE);
        return r < 0 ? r : 0;
}

struct pipeline {
        size_t payload;
        uint64_t sent;
        uint64_t answered;
        uint64_t failed;
};

static int pipeline_on_reply(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct pipeline *pl = userdata;

        pl->answered++;
        if (!echo_reply_ok(m, pl->payload))
                pl->failed++;
        return 0;
}

/* Complete `n` more calls keeping PIPELINE_WINDOW outstanding. Returns 0 or negative errno. */
static int pipeline_run(ipcbus_bus *bus, struct pipeline *pl, const char *body, uint64_t n)
{
        uint64_t target = pl->answered + n, last = pl->sent + n;

        while (pl->answered < target) {
                int r;

                while (pl->sent < last && pl->sent - pl->answered < PIPELINE_WINDOW) {
                        r = ipcbus_call_async(bus, NULL, BENCH_NAME, BENCH_PATH, BENCH_INTERFACE, "Echo", body,
                                              IPCBUS_TIMEOUT_DEFAULT, pipeline_on_reply, pl);
                        if (r < 0)
                                return r;
                        pl->sent++;
                }
                r = ipcbus_process(bus);
                if (r == 0)
                        r = ipcbus_wait(bus, UINT64_MAX);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* call_pipelined's client: Echo calls with PIPELINE_WINDOW outstanding. */
static int pipeline_client_main(const struct bench *b, void *arg)
{
        const struct call_arg *a = arg;
        _cleanup_(ipcbus_unrefp) ipcbus_bus *bus = NULL;
        _cleanup_(freep) char *body = payload_body(a->payload);
        struct pipeline pl = {.payload = a->payload};
        struct report rep = {};
        struct usage start, end;
        int r;

        r = body ? bench_connect(b, &bus) : -ENOMEM;
        if (r >= 0)
                r = pipeline_run(bus, &pl, body, a->warmup);
        if (r >= 0)
                r = client_wait_go();
        pl.answered = pl.sent = pl.failed = 0;
        usage_self(&start);
        rep.t_start = clock_now_nsec(CLOCK_MONOTONIC);
        if (r >= 0)
                r = pipeline_run(bus, &pl, body, a->count);
        rep.t_end = clock_now_nsec(CLOCK_MONOTONIC);
        usage_self(&end);
        usage_add_delta(&rep.usage, &start, &end);
        if (r < 0 && r != -ECANCELED)
                fprintf(stderr, "ipc-bench: Echo: %s\n", ipcbus_strerror(r));
        rep.error = r < 0 ? r : 0;
        rep.count = pl.answered;
        rep.failed = pl.failed;
        rep.lost = a->count - pl.answered;
        report_send(&rep, REPORT_DONE);
        return r < 0 ? r : 0;
}

/* Start the echo server for the calls of a and wait until it owns its name. */
static int echo_server_start(const struct bench *b, const char *name, struct call_arg *a, struct child *srv)
{
        struct report rep = {};
        int r;

        r = child_spawn(srv, b, echo_server_main, a, NULL, 0);
        if (r < 0) {
                fprintf(stderr, "ipc-bench: %s: %s\n", name, strerror(-r));
                return r;
        }
        r = child_wait_report(srv, REPORT_READY, READY_TIMEOUT_MS, &rep);
        if (r < 0) {
                child_complain(name, "echo server", r, &rep);
                child_reap(srv);
        }
        return r;
}

/* Stop the echo server and add what it spent in the timed part to *clients. Returns 0 or 1. */
static int echo_server_finish(const char *name, struct child *srv, struct usage *clients)
{
        struct report rep = {};
        int r;

        child_stop(srv);
        r = child_wait_report(srv, REPORT_DONE, REAP_TIMEOUT_MS, &rep);
        if (r < 0 || rep.error < 0)
                child_complain(name, "echo server", r < 0 ? r : -EPROTO, &rep);
        else
                usage_add_delta(clients, &(struct usage){}, &rep.usage);
        return child_reap(srv) < 0 || r < 0 || rep.error < 0 ? 1 : 0;
}

/*
 * Run the echo server and one client process (fn with a) against it, and
 * measure the broker and both processes over the timed calls. Returns 0, or
 * 1 when the client or the server did not report cleanly (a client that did
 * not report counts every call as failed).
 */
static int run_with_echo_server(const struct bench *b, const char *name, child_main_fn fn, struct call_arg *a,
                                struct timed_run *run)
{
        pid_t broker = broker_pid_for_usage(b);
        struct child srv = CHILD_NULL;
        int bad;

        *run = (struct timed_run){.rep = {.failed = a->count}};
        if (echo_server_start(b, name, a, &srv) < 0)
                return 1;
        bad = client_run_timed(b, name, fn, a, a->count, broker, run);
        return echo_server_finish(name, &srv, &run->clients) | bad;
}

int scenario_call_rtt_small(const struct bench *b, const char *name)
{
        struct call_arg a = {
                .payload = SMALL_PAYLOAD, .warmup = bench_scaled(b, 1000), .count = bench_scaled(b, 20000)};
        struct timed_run run;
        int bad = run_with_echo_server(b, name, call_client_main, &a, &run);
        const struct report *rep = &run.rep;
        char usage[256];

        return result_print(name, bench_us(rep->p50_ns), "us", rep->lost, rep->failed,
                            " p99_us=%.2f calls_per_s=%.0f count=%" PRIu64 "%s", bench_us(rep->p99_ns),
                            bench_rate(rep->count, rep->t_start, rep->t_end), rep->count,
                            timed_run_keys(&run, rep->count, usage, sizeof(usage))) |
               bad;
}

int scenario_call_pipelined(const struct bench *b, const char *name)
{
        struct call_arg a = {
                .payload = SMALL_PAYLOAD, .warmup = bench_scaled(b, 1000), .count = bench_scaled(b, 200000)};
        struct timed_run run;
        int bad = run_with_echo_server(b, name, pipeline_client_main, &a, &run);
        const struct report *rep = &run.rep;
        char usage[256];

        return result_print(name, bench_rate(rep->count, rep->t_start, rep->t_end), "calls/s", rep->lost, rep->failed,
                            " window=%d count=%" PRIu64 "%s", PIPELINE_WINDOW, rep->count,
                            timed_run_keys(&run, rep->count, usage, sizeof(usage))) |
               bad;
}

/* Sequential calls of a large payload (call_rtt_64k, call_rtt_1m): MB/s. */
static int call_rtt_large(const struct bench *b, const char *name, size_t payload, uint64_t warmup, uint64_t count)
{
        struct call_arg a = {.payload = payload, .warmup = bench_scaled(b, warmup), .count = bench_scaled(b, count)};
        struct timed_run run;
        int bad = run_with_echo_server(b, name, call_client_main, &a, &run);
        const struct report *rep = &run.rep;
        /* payload carried both ways: the argument and the echoed result */
        double mbs = bench_rate(rep->count, rep->t_start, rep->t_end) * 2.0 * (double) payload / 1e6;
        char usage[256];

        return result_print(name, mbs, "MB/s", rep->lost, rep->failed,
                            " p50_us=%.2f p99_us=%.2f payload_bytes=%zu count=%" PRIu64 "%s", bench_us(rep->p50_ns),
                            bench_us(rep->p99_ns), payload, rep->count,
                            timed_run_keys(&run, rep->count, usage, sizeof(usage))) |
               bad;
}

int scenario_call_rtt_64k(const struct bench *b, const char *name)
{
        return call_rtt_large(b, name, LARGE_PAYLOAD, 100, 5000);
}

/* 1 MiB, far below the broker's default max_body_bytes (64 MiB). */
int scenario_call_rtt_1m(const struct bench *b, const char *name)
{
        return call_rtt_large(b, name, HUGE_PAYLOAD, 20, 200);
}
