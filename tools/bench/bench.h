/* SPDX-License-Identifier: MIT */
/*
 * ipc-bench's harness, for its scenarios (internal to ipc-bench).
 *
 * The harness (harness.c, broker.c) forks the processes a scenario needs,
 * collects their reports, times them and prints the RESULT lines; it starts
 * and stops the private broker. A scenario family (raw.c, calls.c,
 * signals.c, connect.c, memory.c) holds the code its child processes run and
 * the scenario_* functions ipc-bench.c lists in its table.
 *
 * Every server and client is a forked process with its own connection; each
 * reports to the parent over a pipe (struct report), and the parent prints
 * one line per scenario (result_print).
 */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <ipcbus/ipcbus.h>

#include "util/clock.h"

#define BENCH_NAME "org.ipcbus.Bench"
#define BENCH_PATH "/org/ipcbus/Bench"
#define BENCH_INTERFACE "org.ipcbus.Bench"

#define SMALL_PAYLOAD 64
#define CALL_RTT_SMALL_WARMUP 1000
#define CALL_RTT_SMALL_COUNT 20000
#define FANOUT_SUBSCRIBERS 10
#define FANOUT_RULES_DEFAULT 10000

/* How long the parent waits for a child to get ready, and to finish its work. */
#define READY_TIMEOUT_MS (30 * 1000)
#define DONE_TIMEOUT_MS (600 * 1000)
#define REAP_TIMEOUT_MS (10 * 1000)

/* The fds a child finds open (see child_spawn). */
#define REPORT_FD 3 /* write end of its report pipe */
#define CTL_FD 4    /* read end of its control pipe: EOF means stop */
#define EXTRA_FD 5  /* first of the extra fds the parent passed (raw sockets) */

struct bench {
        const char *address;
        double scale;
        uint64_t rules; /* signal_fanout_rules: unrelated rules installed */
        size_t payload; /* --payload: the large-call scenarios' payload in bytes (0: their own) */
        /* our own broker, when not given --address */
        pid_t broker_pid;
        char *tmpdir;
        char *socket_path;
        char *owned_address;
};

/* Set by SIGINT/SIGTERM in the parent: run no further scenario. */
extern volatile sig_atomic_t bench_interrupted;

/* CLOCK_MONOTONIC in ns. */

/* A scenario's count multiplied by --scale, at least 1. */
uint64_t bench_scaled(const struct bench *b, uint64_t n);

/* A warm-up and a timed count of operations: the argument of several clients. */
struct count_arg {
        uint64_t warmup;
        uint64_t count;
};

/* ---- reports: child -> parent --------------------------------------------- */

enum { REPORT_READY = 1, REPORT_DONE = 2 };

/* What a process spent: minor page faults and CPU time (user and system). */
struct usage {
        uint64_t minflt;
        uint64_t cpu_ns;
};

struct report {
        int32_t kind;     /* REPORT_* */
        int32_t error;    /* 0, or the negative errno that stopped the child */
        uint64_t count;   /* operations completed */
        uint64_t failed;  /* operations answered wrongly or with an error */
        uint64_t lost;    /* operations that never completed */
        uint64_t t_start; /* CLOCK_MONOTONIC ns: the timed part began */
        uint64_t t_end;   /* ... and ended */
        uint64_t p50_ns;
        uint64_t p99_ns;
        struct usage usage; /* what the child spent in the timed part, when it measures it */
};

/* Send a report to the parent (one write: the struct is below PIPE_BUF, so it is atomic). */
void report_send(struct report *r, int kind);

/* Our own process's usage so far (getrusage RUSAGE_SELF, every thread). */
void usage_self(struct usage *ret);

/*
 * Process pid's usage so far, from /proc/PID/stat (minflt, utime + stime).
 * Returns 0 or negative errno.
 */
int usage_proc(pid_t pid, struct usage *ret);

/* Add after - before to *sum. */
void usage_add_delta(struct usage *sum, const struct usage *before, const struct usage *after);

/*
 * In a client that measures after a warm-up: tell the parent the warm-up is
 * done (a READY report) and wait for its go (child_go). Returns 0, or
 * -ECANCELED when the parent closed the control pipe instead.
 */
int client_wait_go(void);

/* The same with what the client measured so far in its READY report (r is sent as REPORT_READY). */
int client_report_wait_go(struct report *r);

/* Latency samples in ns, for p50/p99. */
struct samples {
        uint64_t *v;
        size_t n;
};

/* Room for n samples. Returns 0 or -ENOMEM. */
int samples_init(struct samples *s, size_t n);

/* Sort the samples and store p50/p99 (nearest rank) in the report; frees them. */
void samples_finish(struct samples *s, struct report *r);

/* ---- child processes ------------------------------------------------------- */

struct child {
        pid_t pid;
        int report_fd; /* read end of its report pipe; -1 when closed */
        int ctl_fd;    /* write end of its control pipe; -1 when closed */
};

#define CHILD_NULL ((struct child){.pid = 0, .report_fd = -1, .ctl_fd = -1})

typedef int (*child_main_fn)(const struct bench *b, void *arg);

/*
 * Fork a child that runs fn(b, arg) and exits with 0 when it returns 0. It
 * gets a report pipe (REPORT_FD), a control pipe (CTL_FD) and the extra fds
 * from EXTRA_FD on. Returns 0 or negative errno.
 */
int child_spawn(struct child *c, const struct bench *b, child_main_fn fn, void *arg, const int *extra, size_t n_extra);

/*
 * Wait up to timeout_ms for the child's next report. Returns 0 when it is of
 * the given kind, -EPROTO when it is another (a child that failed sends DONE
 * with its error instead of READY), -EPIPE when the child died without one,
 * -ETIMEDOUT, or -EINTR when ipc-bench was interrupted.
 */
int child_wait_report(struct child *c, int kind, int timeout_ms, struct report *ret);

/* Let a child waiting in client_wait_go start its timed part. Returns 0 or negative errno. */
int child_go(struct child *c);

/* Tell the child to stop (EOF on its control pipe). */
void child_stop(struct child *c);

/*
 * Stop the child and wait for it to exit; kill it if it has not within
 * REAP_TIMEOUT_MS. Returns 0 when it exited with status 0.
 */
int child_reap(struct child *c);

/* Print why a child did not report, for the scenario `name`. */
void child_complain(const char *name, const char *who, int r, const struct report *rep);

/* ---- the bus side of children ------------------------------------------------ */

/* Connect to the bus under test; says why on failure. Returns 0 or negative errno. */
int bench_connect(const struct bench *b, ipcbus_bus **ret);

/*
 * Drive the connection until *done becomes true (done may be NULL), the parent
 * closes the control pipe, or the connection fails. Returns 0 or negative errno.
 */
int bus_run(ipcbus_bus *bus, const bool *done);

/* A JSON body {"data":"<n bytes>"} (caller frees). */
char *payload_body(size_t n);

/* ---- the parent: results ----------------------------------------------------- */

/*
 * Print the RESULT line. `extra` is more " key=value" text; lost and failed
 * are added when not zero. Returns 0, or 1 when something was lost or failed.
 */
int result_print(const char *scenario, double value, const char *unit, uint64_t lost, uint64_t failed, const char *fmt,
                 ...) __attribute__((format(printf, 6, 7)));

/* ns as µs. */
double bench_us(uint64_t ns);

/* Operations per second between two CLOCK_MONOTONIC instants. */
double bench_rate(uint64_t n, uint64_t t_start, uint64_t t_end);

/*
 * Wait for the DONE report of the measuring client; on trouble say why and
 * count every operation as failed. Returns 0 or 1.
 */
int client_result(const char *name, struct child *client, uint64_t expected, struct report *rep);

/*
 * Run one measuring client process (fn with arg) and collect its report.
 * Returns 0, or 1 when it did not report cleanly (then rep counts `expected`
 * operations as failed).
 */
int client_run(const struct bench *b, const char *name, child_main_fn fn, void *arg, uint64_t expected,
               struct report *rep);

/* What a timed run (client_run_timed) measured. */
struct timed_run {
        struct report rep;    /* the measuring client's report */
        struct usage clients; /* every client process of the scenario, its server included */
        struct usage broker;  /* the broker's */
        bool broker_known;    /* broker holds a figure: its pid is known and its /proc was readable */
};

/*
 * Run one measuring client process (fn with arg) that calls client_wait_go
 * after its warm-up, and collect its report into run->rep and its usage into
 * run->clients. The usage of process broker_pid (0: none) is sampled around
 * the timed part into run->broker. Returns 0, or 1 when the client did not
 * report cleanly (then run->rep counts `expected` operations as failed).
 */
int client_run_timed(const struct bench *b, const char *name, child_main_fn fn, void *arg, uint64_t expected,
                     pid_t broker_pid, struct timed_run *run);

/*
 * Write the per-call usage keys of a timed run of `calls` calls into buf
 * (" broker_minflt_per_call=... client_cpu_us_per_call=..."; the broker's
 * only when known, nothing when no call completed). Returns buf.
 */
const char *timed_run_keys(const struct timed_run *run, uint64_t calls, char *buf, size_t size);

/* ---- echo calls (calls.c), for the scenarios that make calls ----------------- */

enum payload_kind {
        PAYLOAD_STRING, /* {"data":"<letters>"}, echoed as text */
        PAYLOAD_BYTES,  /* data:y of pseudo-random bytes, built and read with the typed API */
};

/* One call's payload, made once and sent with every call. */
struct echo_payload {
        enum payload_kind kind;
        size_t len;     /* of the string, or of the binary data */
        char *body;     /* PAYLOAD_STRING: the JSON body */
        uint8_t *bytes; /* PAYLOAD_BYTES: the data */
};

/* Make a payload of len bytes of the kind. Returns 0 or -ENOMEM; deinit in both cases. */
int echo_payload_init(struct echo_payload *p, enum payload_kind kind, size_t len);
void echo_payload_deinit(struct echo_payload *p);

/* What an echo server and its callers are given: the payload and how many calls they make. */
struct call_arg {
        enum payload_kind kind;
        size_t payload;
        uint64_t warmup;
        uint64_t count;
        bool timed_before_go; /* call_client_main times count calls before the go too */
};

/*
 * The sequential caller (a child_main_fn taking a struct call_arg): warm-up
 * calls; with timed_before_go, count timed calls whose figures go in its
 * READY report; the parent's go (child_go); count timed calls, reported with
 * what this process spent on them in its DONE report.
 */
int call_client_main(const struct bench *b, void *arg);

/* n untimed Echo calls (a warm-up). Returns 0 or negative errno. */
int call_warmup(ipcbus_bus *bus, const struct echo_payload *p, uint64_t n);

/*
 * n timed sequential Echo calls, each reply checked: *rep gets the count,
 * failed and lost calls, t_start/t_end, p50/p99 and this process's usage.
 * Returns 0 or negative errno (rep->error too).
 */
int call_series(ipcbus_bus *bus, const struct echo_payload *p, uint64_t n, struct report *rep);

/*
 * Start the echo server (a process owning BENCH_NAME that answers Echo for
 * the payload kind of a; its warm-up count tells where its usage starts) and
 * wait until it owns its name. Returns 0 or negative errno (said).
 */
int echo_server_start(const struct bench *b, const char *name, struct call_arg *a, struct child *srv);

/* Stop the echo server and add what it spent in the timed part to *clients. Returns 0 or 1. */
int echo_server_finish(const char *name, struct child *srv, struct usage *clients);

/* ---- signal fan-out (signals.c), for the scenarios that broadcast ------------ */

struct fanout_arg {
        uint64_t count; /* signals the emitter sends; 0: a flood, until it is stopped */
};

/* One fan-out: its subscribers, its emitter and what they reported. */
struct fanout {
        struct fanout_arg a;
        struct child subs[FANOUT_SUBSCRIBERS];
        struct report reps[FANOUT_SUBSCRIBERS];
        bool reported[FANOUT_SUBSCRIBERS]; /* reps[i] is the final report already */
        size_t n_subs;                     /* started */
        struct child emitter;
        struct report erep;                      /* the emitter's final report: count is what it sent */
        uint64_t delivered, lost, failed, t_end; /* the subscribers' sums; the last delivery */
};

/* An empty fan-out of count signals (0: a flood). */
void fanout_init(struct fanout *f, uint64_t count);

/*
 * Start the FANOUT_SUBSCRIBERS subscribers and wait until every one holds its
 * match, before the first signal goes out. Returns 0 or negative errno (said;
 * f->n_subs were started).
 */
int fanout_subscribe(const struct bench *b, const char *name, struct fanout *f);

/* Run the emitter of a counted fan-out to its end. Returns 0 or negative errno (said); f->erep has its report. */
int fanout_emit(const struct bench *b, const char *name, struct fanout *f);

/*
 * Start a flood (a fan-out of count 0): the emitter sends until
 * fanout_flood_stop, held back only by the broker's backpressure. Returns
 * once it is under way, 0 or negative errno (said).
 */
int fanout_flood_start(const struct bench *b, const char *name, struct fanout *f);

/* Stop the flood; its Done tells the subscribers the count. Returns 0 or negative errno (said). */
int fanout_flood_stop(const char *name, struct fanout *f);

/*
 * Collect the subscribers' final reports (emitted: the emitter's Done went
 * out, else they are told to stop) and add them up in f: every subscriber
 * must have every signal. Returns 0, or 1 when one failed.
 */
int fanout_collect(const char *name, struct fanout *f, bool emitted);

/* Stop and reap the emitter and the subscribers. */
void fanout_reap(struct fanout *f);

/* ---- our own broker (broker.c) ----------------------------------------------- */

/*
 * Start ipcbusd on a socket in a new temporary directory, with
 * --print-address, and read the address it prints; b->address is then it.
 * Returns 0 or negative errno (call broker_stop in both cases).
 */
int broker_start(struct bench *b);

/* Stop our broker (SIGTERM, then SIGKILL after a while) and remove its directory. */
void broker_stop(struct bench *b);

/*
 * The broker's pid as the bus itself tells it (GetConnectionCredentials on
 * the driver). Returns 0 or negative errno; says why on failure.
 */
int broker_query_pid(const struct bench *b, pid_t *ret);

/*
 * The pid of the broker under test: ours, else the one the bus tells
 * (--address); 0 when it cannot be known.
 */
pid_t broker_pid_for_usage(const struct bench *b);

/* ---- the scenarios: each prints its RESULT line and returns 0, or 1 on loss or failure */

/* raw.c: the floors, without a broker */
int scenario_raw_pingpong(const struct bench *b, const char *name);
int scenario_raw_relay_pingpong(const struct bench *b, const char *name);
int scenario_raw_relay_64k(const struct bench *b, const char *name);

/* calls.c: method calls to an echo server */
int scenario_call_rtt_small(const struct bench *b, const char *name);
int scenario_call_pipelined(const struct bench *b, const char *name);
int scenario_call_rtt_64k(const struct bench *b, const char *name);
int scenario_call_rtt_1m(const struct bench *b, const char *name);
int scenario_call_rtt_64k_bytes(const struct bench *b, const char *name);
int scenario_call_rtt_1m_bytes(const struct bench *b, const char *name);

/* flood.c: calls while signals flood other peers */
int scenario_call_under_flood(const struct bench *b, const char *name);

/* signals.c: signal fan-out */
int scenario_signal_fanout(const struct bench *b, const char *name);
int scenario_signal_fanout_rules(const struct bench *b, const char *name);

/* connect.c: connections */
int scenario_connect_hello(const struct bench *b, const char *name);

/* memory.c: the broker's memory */
int scenario_broker_rss(const struct bench *b, const char *name);
