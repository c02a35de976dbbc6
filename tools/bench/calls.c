/* SPDX-License-Identifier: MIT */
/*
 * Method calls to an echo server process: sequential small, 64 KiB and 1 MiB
 * calls, as JSON strings or binary (the `bytes` type), and pipelined calls
 * (call_rtt_small, call_rtt_64k, call_rtt_1m, call_rtt_64k_bytes,
 * call_rtt_1m_bytes, call_pipelined). Each also reports the minor page
 * faults and the CPU time per call of the broker and of the client processes
 * (caller and server), counted over the timed calls only. The echo server
 * and the sequential calls serve call_under_flood too (flood.c).
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
#include "util/random.h"

#define LARGE_PAYLOAD (64 * 1024)
#define HUGE_PAYLOAD (1024 * 1024)
#define PIPELINE_WINDOW 64

/* ---- payloads -------------------------------------------------------------- */

int echo_payload_init(struct echo_payload *p, enum payload_kind kind, size_t len)
{
        *p = (struct echo_payload){.kind = kind, .len = len};
        if (kind == PAYLOAD_STRING) {
                p->body = payload_body(len);
                return p->body ? 0 : -ENOMEM;
        }
        p->bytes = malloc(len ? len : 1);
        if (!p->bytes)
                return -ENOMEM;
        /* pseudo-random, so that no layer can take a shortcut on text or on runs */
        random_bytes(p->bytes, len);
        return 0;
}

void echo_payload_deinit(struct echo_payload *p)
{
        free(p->body);
        free(p->bytes);
        *p = (struct echo_payload){};
}

struct echo_server {
        struct jbuf reply; /* reused for every answer */
        uint64_t served;
        uint64_t warmup;    /* calls before the timed part */
        struct usage start; /* our usage when the first timed call came */
};

/* Count a call; the first timed one starts the usage count. */
static void echo_server_count(struct echo_server *srv)
{
        if (srv->served == srv->warmup)
                usage_self(&srv->start);
        srv->served++;
}

/* Echo: answer {"data": <the same string>}. */
static int echo_method(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct echo_server *srv = userdata;
        const char *data = ipcbus_message_get_arg(m, "data");

        echo_server_count(srv);
        if (!data)
                return ipcbus_reply_error(m, IPCBUS_ERROR_INVALID_ARGS, "the string argument data is missing");
        jbuf_reset(&srv->reply);
        jbuf_puts(&srv->reply, "{\"data\":");
        jbuf_put_string(&srv->reply, data);
        jbuf_putc(&srv->reply, '}');
        if (srv->reply.failed)
                return -ENOMEM;
        return ipcbus_reply(m, srv->reply.data);
}

/* Echo of bytes: read data:y, answer with the same bytes, typed both ways. */
static int echo_bytes_method(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct echo_server *srv = userdata;
        const void *data;
        size_t len;

        echo_server_count(srv);
        if (ipcbus_message_read(m, "data:y", &data, &len) < 0)
                return ipcbus_reply_error(m, IPCBUS_ERROR_INVALID_ARGS, ipcbus_last_error());
        return ipcbus_reply_method(m, "data:y", data, len);
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
 * The echo server: owns the bench name and serves Echo (for the payload kind
 * of arg) until told to stop. Its DONE report carries its usage from the
 * first timed call (after the client's warm-up calls, arg's) to the stop.
 */
static int echo_server_main(const struct bench *b, void *arg)
{
        const struct call_arg *a = arg;
        static const ipcbus_method string_methods[] = {
                {"Echo", echo_method},
                {},
        };
        static const ipcbus_method bytes_methods[] = {
                {"Echo", echo_bytes_method},
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
                r = ipcbus_add_object(bus, &slot, BENCH_PATH, BENCH_INTERFACE,
                                      a->kind == PAYLOAD_BYTES ? bytes_methods : string_methods, &srv);
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

/*
 * Whether a reply carries back the payload we sent: a string of its length,
 * or exactly its bytes.
 */
static bool echo_reply_ok(ipcbus_message *reply, const struct echo_payload *p)
{
        const char *data;
        const void *bytes;
        size_t len;

        if (ipcbus_message_get_type(reply) != IPCBUS_MESSAGE_RETURN)
                return false;
        if (p->kind == PAYLOAD_BYTES)
                return ipcbus_message_read(reply, "data:y", &bytes, &len) >= 0 && len == p->len &&
                       memcmp(bytes, p->bytes, len) == 0;
        data = ipcbus_message_get_arg(reply, "data");
        return data && strlen(data) == p->len;
}

/*
 * One sequential Echo call of the payload: JSON text as is, or bytes built
 * with the typed builder; *ok says whether the payload came back. An error
 * reply is counted in *errors (the first one said), not fatal. Returns 0 or
 * negative errno.
 */
static int call_echo(ipcbus_bus *bus, const struct echo_payload *p, uint64_t *errors, bool *ok)
{
        _cleanup_(ipcbus_message_unrefp) ipcbus_message *reply = NULL;
        _cleanup_(ipcbus_error_freep) ipcbus_error e = IPCBUS_ERROR_NULL;
        int r;

        if (p->kind == PAYLOAD_BYTES)
                r = ipcbus_call_method(bus, BENCH_NAME, BENCH_PATH, BENCH_INTERFACE, "Echo", IPCBUS_TIMEOUT_DEFAULT,
                                       &reply, &e, "data:y", p->bytes, p->len);
        else
                r = ipcbus_call(bus, BENCH_NAME, BENCH_PATH, BENCH_INTERFACE, "Echo", p->body, IPCBUS_TIMEOUT_DEFAULT,
                                &reply, &e);
        *ok = r >= 0 && echo_reply_ok(reply, p);
        if (r == -EREMOTEIO) {
                if ((*errors)++ == 0)
                        fprintf(stderr, "ipc-bench: Echo: %s: %s\n", e.name ? e.name : "?", e.message ? e.message : "");
                return 0;
        }
        if (r < 0)
                fprintf(stderr, "ipc-bench: Echo: %s\n", ipcbus_strerror(r));
        return r;
}

int call_warmup(ipcbus_bus *bus, const struct echo_payload *p, uint64_t n)
{
        uint64_t errors = 0;
        bool ok;
        int r = 0;

        for (uint64_t i = 0; r >= 0 && i < n; i++)
                r = call_echo(bus, p, &errors, &ok);
        return r;
}

int call_series(ipcbus_bus *bus, const struct echo_payload *p, uint64_t n, struct report *rep)
{
        struct samples s = {};
        struct usage start, end;
        uint64_t errors = 0;
        bool ok;
        int r;

        *rep = (struct report){};
        r = samples_init(&s, n);
        usage_self(&start);
        rep->t_start = clock_now_nsec(CLOCK_MONOTONIC);
        for (uint64_t i = 0; r >= 0 && i < n; i++) {
                uint64_t t0 = clock_now_nsec(CLOCK_MONOTONIC);

                r = call_echo(bus, p, &errors, &ok);
                if (r < 0)
                        break;
                s.v[s.n++] = clock_now_nsec(CLOCK_MONOTONIC) - t0;
                rep->count++;
                if (!ok)
                        rep->failed++;
        }
        rep->t_end = clock_now_nsec(CLOCK_MONOTONIC);
        usage_self(&end);
        usage_add_delta(&rep->usage, &start, &end);
        rep->error = r < 0 ? r : 0;
        rep->lost = n - rep->count;
        if (s.v)
                samples_finish(&s, rep);
        return r;
}

int call_client_main(const struct bench *b, void *arg)
{
        const struct call_arg *a = arg;
        _cleanup_(ipcbus_unrefp) ipcbus_bus *bus = NULL;
        struct echo_payload p;
        struct report quiet = {}, rep = {.lost = a->count};
        int r;

        r = echo_payload_init(&p, a->kind, a->payload);
        if (r >= 0)
                r = bench_connect(b, &bus);
        if (r >= 0)
                r = call_warmup(bus, &p, a->warmup);
        if (r >= 0 && a->timed_before_go)
                r = call_series(bus, &p, a->count, &quiet);
        if (r >= 0)
                r = client_report_wait_go(&quiet);
        if (r >= 0)
                r = call_series(bus, &p, a->count, &rep);
        rep.error = r < 0 ? r : 0;
        report_send(&rep, REPORT_DONE);
        echo_payload_deinit(&p);
        return r < 0 ? r : 0;
}

/* call_pipelined's calls: JSON string payloads only. */
struct pipeline {
        const struct echo_payload *payload;
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
static int pipeline_run(ipcbus_bus *bus, struct pipeline *pl, uint64_t n)
{
        uint64_t target = pl->answered + n, last = pl->sent + n;

        while (pl->answered < target) {
                int r;

                while (pl->sent < last && pl->sent - pl->answered < PIPELINE_WINDOW) {
                        r = ipcbus_call_async(bus, NULL, BENCH_NAME, BENCH_PATH, BENCH_INTERFACE, "Echo",
                                              pl->payload->body, IPCBUS_TIMEOUT_DEFAULT, pipeline_on_reply, pl);
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
        struct echo_payload p;
        struct pipeline pl = {.payload = &p};
        struct report rep = {};
        struct usage start, end;
        int r;

        r = echo_payload_init(&p, PAYLOAD_STRING, a->payload);
        if (r >= 0)
                r = bench_connect(b, &bus);
        if (r >= 0)
                r = pipeline_run(bus, &pl, a->warmup);
        if (r >= 0)
                r = client_wait_go();
        pl.answered = pl.sent = pl.failed = 0;
        usage_self(&start);
        rep.t_start = clock_now_nsec(CLOCK_MONOTONIC);
        if (r >= 0)
                r = pipeline_run(bus, &pl, a->count);
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
        echo_payload_deinit(&p);
        return r < 0 ? r : 0;
}

int echo_server_start(const struct bench *b, const char *name, struct call_arg *a, struct child *srv)
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

int echo_server_finish(const char *name, struct child *srv, struct usage *clients)
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
        struct call_arg a = {.kind = PAYLOAD_STRING,
                             .payload = SMALL_PAYLOAD,
                             .warmup = bench_scaled(b, CALL_RTT_SMALL_WARMUP),
                             .count = bench_scaled(b, CALL_RTT_SMALL_COUNT)};
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
        struct call_arg a = {.kind = PAYLOAD_STRING,
                             .payload = SMALL_PAYLOAD,
                             .warmup = bench_scaled(b, 1000),
                             .count = bench_scaled(b, 200000)};
        struct timed_run run;
        int bad = run_with_echo_server(b, name, pipeline_client_main, &a, &run);
        const struct report *rep = &run.rep;
        char usage[256];

        return result_print(name, bench_rate(rep->count, rep->t_start, rep->t_end), "calls/s", rep->lost, rep->failed,
                            " window=%d count=%" PRIu64 "%s", PIPELINE_WINDOW, rep->count,
                            timed_run_keys(&run, rep->count, usage, sizeof(usage))) |
               bad;
}

/*
 * Sequential calls of a large payload of the given kind (call_rtt_64k,
 * call_rtt_1m, and their _bytes twins): MB/s of payload.
 */
static int call_rtt_large(const struct bench *b, const char *name, enum payload_kind kind, size_t payload,
                          uint64_t warmup, uint64_t count)
{
        struct call_arg a = {
                .kind = kind, .warmup = bench_scaled(b, warmup), .count = bench_scaled(b, count)};
        struct timed_run run;
        int bad;

        if (b->payload)
                payload = b->payload;
        a.payload = payload;
        bad = run_with_echo_server(b, name, call_client_main, &a, &run);
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
        return call_rtt_large(b, name, PAYLOAD_STRING, LARGE_PAYLOAD, 100, 5000);
}

/* 1 MiB, far below the broker's default max_body_bytes (64 MiB). */
int scenario_call_rtt_1m(const struct bench *b, const char *name)
{
        return call_rtt_large(b, name, PAYLOAD_STRING, HUGE_PAYLOAD, 20, 200);
}

/* The payload counted in MB/s is the binary one; base64 makes it a third bigger on the wire. */
int scenario_call_rtt_64k_bytes(const struct bench *b, const char *name)
{
        return call_rtt_large(b, name, PAYLOAD_BYTES, LARGE_PAYLOAD, 100, 5000);
}

int scenario_call_rtt_1m_bytes(const struct bench *b, const char *name)
{
        return call_rtt_large(b, name, PAYLOAD_BYTES, HUGE_PAYLOAD, 20, 200);
}
