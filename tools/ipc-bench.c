/* SPDX-License-Identifier: MIT */
/*
 * ipc-bench: the scenarios of BENCHMARKS.md. Every server and client is a
 * forked process with its own connection; each reports to the parent over a
 * pipe, and the parent prints one line per scenario:
 *
 *   RESULT broker=ipcbus scenario=<name> value=<number> unit=<unit> [key=value ...]
 *
 * Without --address it starts its own ipcbusd on a socket in a temporary
 * directory and stops it at the end. Exit status: 0 when every scenario ran
 * and lost and failed nothing, 1 otherwise, 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ipcbus/ipcbus.h>

#include "format.h"
#include "jbuf.h"

#define EXIT_USAGE 2

#define BENCH_NAME "org.ipcbus.Bench"
#define BENCH_PATH "/org/ipcbus/Bench"
#define BENCH_INTERFACE "org.ipcbus.Bench"

#define SMALL_PAYLOAD 64
#define LARGE_PAYLOAD (64 * 1024)
#define PIPELINE_WINDOW 64
#define FANOUT_SUBSCRIBERS 10
#define FANOUT_RULES_DEFAULT 10000
#define RULES_PER_HOLDER 4000 /* below the default max_matches_per_connection */

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
        /* our own broker, when not given --address */
        pid_t broker_pid;
        char *tmpdir;
        char *socket_path;
        char *owned_address;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
        interrupted = 1;
}

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* A count from BENCHMARKS.md multiplied by --scale, at least 1. */
static uint64_t scaled(const struct bench *b, uint64_t n)
{
        double v = round((double) n * b->scale);

        return v < 1 ? 1 : (uint64_t) v;
}

/* ---- reports: child -> parent --------------------------------------------- */

enum { REPORT_READY = 1, REPORT_DONE = 2 };

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
};

/* Send a report to the parent (one write: the struct is below PIPE_BUF, so it is atomic). */
static void report_send(struct report *r, int kind)
{
        ssize_t n;

        r->kind = kind;
        do
                n = write(REPORT_FD, r, sizeof(*r));
        while (n < 0 && errno == EINTR);
}

/* Latency samples in ns, for p50/p99. */
struct samples {
        uint64_t *v;
        size_t n;
};

static int samples_init(struct samples *s, size_t n)
{
        s->v = calloc(n ? n : 1, sizeof(*s->v));
        s->n = 0;
        return s->v ? 0 : -ENOMEM;
}

static int u64_compare(const void *x, const void *y)
{
        uint64_t a = *(const uint64_t *) x, b = *(const uint64_t *) y;

        return a < b ? -1 : a > b;
}

/* Sort the samples and store p50/p99 (nearest rank) in the report; frees them. */
static void samples_finish(struct samples *s, struct report *r)
{
        if (s->n > 0) {
                qsort(s->v, s->n, sizeof(*s->v), u64_compare);
                r->p50_ns = s->v[(size_t) ceil(0.50 * (double) s->n) - 1];
                r->p99_ns = s->v[(size_t) ceil(0.99 * (double) s->n) - 1];
        }
        free(s->v);
        s->v = NULL;
}

/* ---- child processes ------------------------------------------------------- */

struct child {
        pid_t pid;
        int report_fd; /* read end of its report pipe; -1 when closed */
        int ctl_fd;    /* write end of its control pipe; -1 when closed */
};

#define CHILD_NULL ((struct child){.pid = 0, .report_fd = -1, .ctl_fd = -1})

typedef int (*child_main_fn)(const struct bench *b, void *arg);

/*
 * Give the child exactly the fds it needs, at fixed numbers: fds[i] ends up
 * at 3 + i, every other fd above 2 is closed (so pipes of other children
 * reach EOF when they should, and no child holds the parent's connections).
 */
static int child_setup_fds(const int *fds, size_t n)
{
        int tmp[8];
        int top = 3 + (int) n;

        if (n > sizeof(tmp) / sizeof(tmp[0]))
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                tmp[i] = fcntl(fds[i], F_DUPFD, top);
                if (tmp[i] < 0)
                        return -errno;
        }
        for (size_t i = 0; i < n; i++)
                if (dup2(tmp[i], 3 + (int) i) < 0)
                        return -errno;
        if (close_range((unsigned) top, ~0u, 0) < 0) {
                long max = sysconf(_SC_OPEN_MAX);

                for (long fd = top; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
                        close((int) fd);
        }
        return 0;
}

/*
 * Fork a child that runs fn(b, arg) and exits with 0 when it returns 0. It
 * gets a report pipe (REPORT_FD), a control pipe (CTL_FD) and the extra fds
 * from EXTRA_FD on. Returns 0 or negative errno.
 */
static int child_spawn(struct child *c, const struct bench *b, child_main_fn fn, void *arg, const int *extra,
                       size_t n_extra)
{
        int report[2], ctl[2];
        pid_t pid;

        if (pipe2(report, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(ctl, O_CLOEXEC) < 0) {
                close(report[0]);
                close(report[1]);
                return -errno;
        }
        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid < 0) {
                int r = -errno;

                close(report[0]);
                close(report[1]);
                close(ctl[0]);
                close(ctl[1]);
                return r;
        }
        if (pid == 0) {
                int fds[8] = {report[1], ctl[0]};

                signal(SIGINT, SIG_DFL);
                signal(SIGTERM, SIG_DFL);
                for (size_t i = 0; i < n_extra && i + 2 < sizeof(fds) / sizeof(fds[0]); i++)
                        fds[2 + i] = extra[i];
                if (child_setup_fds(fds, 2 + n_extra) < 0)
                        _exit(EXIT_FAILURE);
                _exit(fn(b, arg) == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
        }
        close(report[1]);
        close(ctl[0]);
        *c = (struct child){.pid = pid, .report_fd = report[0], .ctl_fd = ctl[1]};
        return 0;
}

/*
 * Wait up to timeout_ms for the child's next report. Returns 0 when it is of
 * the given kind, -EPROTO when it is another (a child that failed sends DONE
 * with its error instead of READY), -EPIPE when the child died without one,
 * -ETIMEDOUT, or -EINTR when ipc-bench was interrupted.
 */
static int child_wait_report(struct child *c, int kind, int timeout_ms, struct report *ret)
{
        struct pollfd p = {.fd = c->report_fd, .events = POLLIN};
        ssize_t n;
        int r;

        r = poll(&p, 1, timeout_ms);
        if (r < 0)
                return -errno;
        if (r == 0)
                return -ETIMEDOUT;
        do
                n = read(c->report_fd, ret, sizeof(*ret));
        while (n < 0 && errno == EINTR && !interrupted);
        if (n < 0)
                return -errno;
        if (n != (ssize_t) sizeof(*ret))
                return -EPIPE;
        return ret->kind == kind ? 0 : -EPROTO;
}

/* Tell the child to stop (EOF on its control pipe). */
static void child_stop(struct child *c)
{
        if (c->ctl_fd >= 0)
                close(c->ctl_fd);
        c->ctl_fd = -1;
}

/*
 * Stop the child and wait for it to exit; kill it if it has not within
 * REAP_TIMEOUT_MS. Returns 0 when it exited with status 0.
 */
static int child_reap(struct child *c)
{
        int status = 0;

        if (c->pid <= 0)
                return 0;
        child_stop(c);
        for (int waited = 0;; waited += 10) {
                pid_t r = waitpid(c->pid, &status, WNOHANG);

                if (r == c->pid || (r < 0 && errno != EINTR))
                        break;
                if (waited >= REAP_TIMEOUT_MS) {
                        kill(c->pid, SIGKILL);
                        waitpid(c->pid, &status, 0);
                        break;
                }
                usleep(10 * 1000);
        }
        if (c->report_fd >= 0)
                close(c->report_fd);
        *c = CHILD_NULL;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -ECHILD;
}

/* Print why a child did not report, for the scenario `name`. */
static void child_complain(const char *name, const char *who, int r, const struct report *rep)
{
        if (r == -EPROTO && rep->error < 0)
                r = rep->error;
        fprintf(stderr, "ipc-bench: %s: %s: %s\n", name, who,
                r == -ETIMEDOUT ? "no answer in time"
                : r == -EPIPE   ? "died"
                                : ipcbus_strerror(r));
}

/* ---- raw sockets: the floors ------------------------------------------------ */

/* Read exactly n bytes. Returns n, 0 on EOF at the start, or negative errno. */
static ssize_t read_full(int fd, void *buf, size_t n)
{
        size_t done = 0;

        while (done < n) {
                ssize_t k = read(fd, (char *) buf + done, n - done);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return done == 0 ? 0 : -EPIPE;
                done += (size_t) k;
        }
        return (ssize_t) n;
}

static int write_full(int fd, const void *buf, size_t n)
{
        size_t done = 0;

        while (done < n) {
                ssize_t k = send(fd, (const char *) buf + done, n - done, MSG_NOSIGNAL);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                done += (size_t) k;
        }
        return 0;
}

/* Raw echo (EXTRA_FD): send back every 64-byte message until EOF. */
static int raw_echo_main(const struct bench *b, void *arg)
{
        char buf[SMALL_PAYLOAD];

        for (;;) {
                ssize_t n = read_full(EXTRA_FD, buf, sizeof(buf));

                if (n <= 0)
                        return (int) n;
                if (write_full(EXTRA_FD, buf, sizeof(buf)) < 0)
                        return -1;
        }
}

/* Raw relay between EXTRA_FD and EXTRA_FD + 1: read, write, nothing else. */
static int raw_relay_main(const struct bench *b, void *arg)
{
        struct pollfd p[2] = {{.fd = EXTRA_FD, .events = POLLIN}, {.fd = EXTRA_FD + 1, .events = POLLIN}};
        char buf[64 * 1024];

        for (;;) {
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                for (int i = 0; i < 2; i++) {
                        ssize_t n;

                        if (!p[i].revents)
                                continue;
                        n = read(p[i].fd, buf, sizeof(buf));
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0) {
                                /* one side closed: pass the EOF on */
                                shutdown(p[1 - i].fd, SHUT_WR);
                                return n < 0 ? -errno : 0;
                        }
                        if (write_full(p[1 - i].fd, buf, (size_t) n) < 0)
                                return -1;
                }
        }
}

struct pingpong_arg {
        uint64_t warmup;
        uint64_t count;
};

/* Raw client (EXTRA_FD): timed 64-byte round trips; reports latencies. */
static int raw_client_main(const struct bench *b, void *arg)
{
        const struct pingpong_arg *a = arg;
        struct report rep = {};
        struct samples s;
        char out[SMALL_PAYLOAD], in[SMALL_PAYLOAD];
        int r;

        memset(out, 'p', sizeof(out));
        r = samples_init(&s, a->count);
        for (uint64_t i = 0; r == 0 && i < a->warmup + a->count; i++) {
                uint64_t t0 = now_ns();

                if (i == a->warmup)
                        rep.t_start = t0;
                r = write_full(EXTRA_FD, out, sizeof(out));
                if (r == 0 && read_full(EXTRA_FD, in, sizeof(in)) != (ssize_t) sizeof(in))
                        r = -EPIPE;
                if (r < 0)
                        break;
                if (i >= a->warmup) {
                        s.v[s.n++] = now_ns() - t0;
                        rep.count++;
                        if (memcmp(in, out, sizeof(in)) != 0)
                                rep.failed++;
                }
        }
        rep.t_end = now_ns();
        rep.error = r;
        rep.lost = a->count - rep.count;
        samples_finish(&s, &rep);
        report_send(&rep, REPORT_DONE);
        return r;
}

/* ---- the bus side: servers and clients ------------------------------------ */

static int bench_connect(const struct bench *b, ipcbus_bus **ret)
{
        int r = ipcbus_open_address(b->address, ret);

        if (r < 0)
                fprintf(stderr, "ipc-bench: cannot connect to %s: %s\n", b->address, ipcbus_strerror(r));
        return r;
}

/*
 * Drive the connection until *done becomes true (done may be NULL), the parent
 * closes the control pipe, or the connection fails. Returns 0 or negative errno.
 */
static int bus_run(ipcbus_bus *bus, const bool *done)
{
        for (;;) {
                struct pollfd p[2] = {
                        {.fd = ipcbus_get_fd(bus), .events = (short) ipcbus_get_events(bus)},
                        {.fd = CTL_FD, .events = POLLIN},
                };
                uint64_t deadline = UINT64_MAX;
                int timeout = -1, r;

                while ((r = ipcbus_process(bus)) > 0)
                        if (done && *done)
                                return 0;
                if (r < 0)
                        return r;
                if (done && *done)
                        return 0;
                ipcbus_get_timeout(bus, &deadline);
                if (deadline != UINT64_MAX) {
                        uint64_t now = now_ns() / 1000;

                        timeout = deadline > now ? (int) ((deadline - now + 999) / 1000) : 0;
                }
                if (poll(p, 2, timeout) < 0 && errno != EINTR)
                        return -errno;
                if (p[1].revents)
                        return 0;
        }
}

/* A JSON body {"data":"<n bytes>"} (caller frees). */
static char *payload_body(size_t n)
{
        struct jbuf b;
        char *s, *body;

        s = malloc(n + 1);
        if (!s)
                return NULL;
        for (size_t i = 0; i < n; i++)
                s[i] = (char) ('a' + i % 26);
        s[n] = '\0';
        jbuf_init(&b);
        jbuf_puts(&b, "{\"data\":");
        jbuf_put_string(&b, s);
        jbuf_putc(&b, '}');
        body = jbuf_steal(&b, NULL);
        jbuf_deinit(&b);
        free(s);
        return body;
}

struct echo_server {
        struct jbuf reply; /* reused for every answer */
        uint64_t served;
};

/* Echo: answer {"data": <the same string>}. */
static int echo_method(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct echo_server *srv = userdata;
        const char *data = ipcbus_message_get_arg(m, "data");

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

/* The echo server: owns the bench name and serves Echo until told to stop. */
static int echo_server_main(const struct bench *b, void *arg)
{
        static const ipcbus_method methods[] = {
                {"Echo", echo_method},
                {},
        };
        _cleanup_(ipcbus_unrefp) ipcbus_bus *bus = NULL;
        struct echo_server srv = {};
        struct report rep = {};
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

struct call_arg {
        size_t payload;
        uint64_t warmup;
        uint64_t count;
};

/* Sequential Echo calls: warm-up, then timed calls; reports latencies. */
static int call_client_main(const struct bench *b, void *arg)
{
        const struct call_arg *a = arg;
        _cleanup_(ipcbus_unrefp) ipcbus_bus *bus = NULL;
        _cleanup_(freep) char *body = payload_body(a->payload);
        struct report rep = {};
        struct samples s = {};
        uint64_t errors = 0;
        int r;

        r = body ? samples_init(&s, a->count) : -ENOMEM;
        if (r >= 0)
                r = bench_connect(b, &bus);
        for (uint64_t i = 0; r >= 0 && i < a->warmup + a->count; i++) {
                _cleanup_(ipcbus_message_unrefp) ipcbus_message *reply = NULL;
                _cleanup_(ipcbus_error_freep) ipcbus_error e = IPCBUS_ERROR_NULL;
                uint64_t t0 = now_ns();
                bool ok;

                if (i == a->warmup)
                        rep.t_start = t0;
                r = ipcbus_call(bus, BENCH_NAME, BENCH_PATH, BENCH_INTERFACE, "Echo", body, IPCBUS_TIMEOUT_DEFAULT,
                                &reply, &e);
                ok = r >= 0 && echo_reply_ok(reply, a->payload);
                if (r == -EREMOTEIO) {
                        if (errors++ == 0)
                                fprintf(stderr, "ipc-bench: Echo: %s: %s\n", e.name ? e.name : "?",
                                        e.message ? e.message : "");
                        r = 0; /* an error reply: counted, not fatal */
                }
                if (r < 0) {
                        fprintf(stderr, "ipc-bench: Echo: %s\n", ipcbus_strerror(r));
                        break;
                }
                if (i < a->warmup)
                        continue;
                s.v[s.n++] = now_ns() - t0;
                rep.count++;
                if (!ok)
                        rep.failed++;
        }
        rep.t_end = now_ns();
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
        int r;

        r = body ? bench_connect(b, &bus) : -ENOMEM;
        if (r >= 0)
                r = pipeline_run(bus, &pl, body, a->warmup);
        pl.answered = pl.sent = pl.failed = 0;
        rep.t_start = now_ns();
        if (r >= 0)
                r = pipeline_run(bus, &pl, body, a->count);
        rep.t_end = now_ns();
        if (r < 0)
                fprintf(stderr, "ipc-bench: Echo: %s\n", ipcbus_strerror(r));
        rep.error = r < 0 ? r : 0;
        rep.count = pl.answered;
        rep.failed = pl.failed;
        rep.lost = a->count - pl.answered;
        report_send(&rep, REPORT_DONE);
        return r < 0 ? r : 0;
}

struct fanout_arg {
        uint64_t count; /* signals the emitter sends */
};

struct subscriber {
        uint64_t expected;
        uint64_t received;
        uint64_t t_last; /* when the expected-th Tick came */
        bool done;
};

/* Ticks are counted; Done (sent last, so it comes last) ends the wait. */
static int subscriber_on_signal(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct subscriber *sub = userdata;
        const char *member = ipcbus_message_get_member(m);

        if (member && strcmp(member, "Tick") == 0) {
                if (++sub->received == sub->expected)
                        sub->t_last = now_ns();
        } else if (member && strcmp(member, "Done") == 0) {
                sub->done = true;
        }
        return 0;
}

static int subscriber_main(const struct bench *b, void *arg)
{
        const struct fanout_arg *a = arg;
        _cleanup_(ipcbus_unrefp) ipcbus_bus *bus = NULL;
        struct subscriber sub = {.expected = a->count};
        struct report rep = {};
        ipcbus_slot *slot = NULL;
        int r;

        r = bench_connect(b, &bus);
        if (r >= 0) {
                r = ipcbus_add_match(bus, &slot, "type=signal,path=" BENCH_PATH ",interface=" BENCH_INTERFACE,
                                     subscriber_on_signal, &sub);
                if (r >= 0) {
                        report_send(&rep, REPORT_READY);
                        r = bus_run(bus, &sub.done);
                }
                if (r < 0)
                        fprintf(stderr, "ipc-bench: subscriber: %s\n", ipcbus_strerror(r));
        }
        rep.error = r < 0 ? r : 0;
        rep.count = sub.received;
        rep.lost = sub.received < sub.expected ? sub.expected - sub.received : 0;
        rep.failed = sub.received > sub.expected ? sub.received - sub.expected : 0;
        rep.t_end = sub.t_last ? sub.t_last : now_ns();
        ipcbus_slot_unref(slot);
        report_send(&rep, REPORT_DONE);
        return r < 0 ? r : 0;
}

/* The emitter: count Tick signals with a 64-byte payload, then Done. */
static int emitter_main(const struct bench *b, void *arg)
{
        const struct fanout_arg *a = arg;
        _cleanup_(ipcbus_unrefp) ipcbus_bus *bus = NULL;
        _cleanup_(freep) char *body = payload_body(SMALL_PAYLOAD);
        struct report rep = {};
        int r;

        r = body ? bench_connect(b, &bus) : -ENOMEM;
        rep.t_start = now_ns();
        for (uint64_t i = 0; r >= 0 && i < a->count; i++) {
                r = ipcbus_emit_signal(bus, NULL, BENCH_PATH, BENCH_INTERFACE, "Tick", body);
                /* write out regularly: the socket's backpressure paces the emitter */
                if (r >= 0 && i % 64 == 63)
                        r = ipcbus_flush(bus);
                if (r >= 0)
                        rep.count++;
        }
        if (r >= 0)
                r = ipcbus_emit_signal(bus, NULL, BENCH_PATH, BENCH_INTERFACE, "Done", NULL);
        if (r >= 0)
                r = ipcbus_flush(bus);
        rep.t_end = now_ns();
        if (r < 0)
                fprintf(stderr, "ipc-bench: emitter: %s\n", ipcbus_strerror(r));
        rep.error = r < 0 ? r : 0;
        rep.lost = a->count - rep.count;
        report_send(&rep, REPORT_DONE);
        return r < 0 ? r : 0;
}

struct rules_arg {
        uint64_t first, count; /* the rules this holder installs: first .. first + count - 1 */
};

/*
 * Unrelated rule number i, one kind after another: a well-known or unique
 * sender, an interface, a member, a path, a path namespace, an argument.
 * None matches the fan-out's signals.
 */
static void rule_text(uint64_t i, char *buf, size_t size)
{
        switch (i % 7) {
        case 0:
                snprintf(buf, size, "{\"type\":\"signal\",\"sender\":\"org.ipcbus.BenchOther.N%" PRIu64 "\"}", i);
                break;
        case 1:
                snprintf(buf, size, "{\"type\":\"signal\",\"interface\":\"org.ipcbus.BenchOther.I%" PRIu64 "\"}", i);
                break;
        case 2:
                snprintf(buf, size, "{\"type\":\"signal\",\"member\":\"Other%" PRIu64 "\"}", i);
                break;
        case 3:
                snprintf(buf, size, "{\"type\":\"signal\",\"path\":\"/org/ipcbus/BenchOther/p%" PRIu64 "\"}", i);
                break;
        case 4:
                snprintf(buf, size, "{\"type\":\"signal\",\"path_namespace\":\"/org/ipcbus/BenchOther/n%" PRIu64 "\"}",
                         i);
                break;
        case 5:
                snprintf(buf, size, "{\"type\":\"signal\",\"args\":{\"data\":\"other%" PRIu64 "\"}}", i);
                break;
        default:
                /* a unique name no connection has: far above any the broker hands out in a run */
                snprintf(buf, size, "{\"type\":\"signal\",\"sender\":\":1.%" PRIu64 "\"}", 1000000000 + i);
                break;
        }
}

/* A connection holding unrelated rules until the parent says stop. */
static int rules_holder_main(const struct bench *b, void *arg)
{
        const struct rules_arg *a = arg;
        _cleanup_(ipcbus_unrefp) ipcbus_bus *bus = NULL;
        struct report rep = {};
        int r;

        r = bench_connect(b, &bus);
        for (uint64_t i = a->first; r >= 0 && i < a->first + a->count; i++) {
                ipcbus_error e = IPCBUS_ERROR_NULL;
                char body[256];

                memcpy(body, "{\"rule\":", 8);
                rule_text(i, body + 8, sizeof(body) - 9);
                strcat(body, "}");
                r = ipcbus_call(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE, "AddMatch", body,
                                30 * 1000000ull, NULL, &e);
                if (r < 0)
                        fprintf(stderr, "ipc-bench: AddMatch: %s\n", r == -EREMOTEIO ? e.name : ipcbus_strerror(r));
                ipcbus_error_free(&e);
                if (r >= 0)
                        rep.count++;
        }
        rep.error = r < 0 ? r : 0;
        report_send(&rep, REPORT_READY);
        if (r >= 0)
                r = bus_run(bus, NULL);
        return r < 0 ? r : 0;
}

/* connect_hello's client: connect (Hello included), disconnect, count times. */
static int connect_client_main(const struct bench *b, void *arg)
{
        const struct pingpong_arg *a = arg;
        struct report rep = {};
        struct samples s;
        int r;

        r = samples_init(&s, a->count);
        rep.t_start = now_ns();
        for (uint64_t i = 0; r >= 0 && i < a->count; i++) {
                ipcbus_bus *bus = NULL;
                uint64_t t0 = now_ns();

                r = ipcbus_open_address(b->address, &bus);
                if (r < 0) {
                        if (rep.failed++ == 0)
                                fprintf(stderr, "ipc-bench: connect: %s\n", ipcbus_strerror(r));
                        r = 0;
                        continue;
                }
                ipcbus_unref(bus);
                s.v[s.n++] = now_ns() - t0;
                rep.count++;
        }
        rep.t_end = now_ns();
        rep.error = r < 0 ? r : 0;
        if (s.v)
                samples_finish(&s, &rep);
        report_send(&rep, REPORT_DONE);
        return r < 0 ? r : 0;
}

/* ---- the parent: scenarios -------------------------------------------------- */

/*
 * Print the RESULT line. `extra` is more " key=value" text; lost and failed
 * are added when not zero. Returns 0, or 1 when something was lost or failed.
 */
static int result_print(const char *scenario, double value, const char *unit, uint64_t lost, uint64_t failed,
                        const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int result_print(const char *scenario, double value, const char *unit, uint64_t lost, uint64_t failed,
                        const char *fmt, ...)
{
        va_list ap;

        printf("RESULT broker=ipcbus scenario=%s value=%.*f unit=%s", scenario, value >= 100 ? 0 : 2, value, unit);
        if (fmt) {
                va_start(ap, fmt);
                vprintf(fmt, ap);
                va_end(ap);
        }
        if (lost)
                printf(" lost=%" PRIu64, lost);
        if (failed)
                printf(" failed=%" PRIu64, failed);
        putchar('\n');
        fflush(stdout);
        return lost || failed ? 1 : 0;
}

static double us(uint64_t ns)
{
        return (double) ns / 1000.0;
}

/* Operations per second between two CLOCK_MONOTONIC instants. */
static double rate(uint64_t n, uint64_t t_start, uint64_t t_end)
{
        return t_end > t_start ? (double) n * 1e9 / (double) (t_end - t_start) : 0.0;
}

/*
 * Wait for the DONE report of the measuring client; on trouble say why and
 * count every operation as failed. Returns 0 or 1.
 */
static int client_result(const char *name, struct child *client, uint64_t expected, struct report *rep)
{
        int r = child_wait_report(client, REPORT_DONE, DONE_TIMEOUT_MS, rep);

        if (r < 0 && r != -EPROTO) {
                child_complain(name, "client", r, rep);
                *rep = (struct report){.failed = expected};
                return 1;
        }
        if (rep->error < 0)
                child_complain(name, "client", -EPROTO, rep);
        return rep->error < 0 ? 1 : 0;
}

/* raw_pingpong and raw_relay_pingpong. */
static int run_raw(const struct bench *b, const char *name, bool relay)
{
        struct pingpong_arg a = {.warmup = scaled(b, 1000), .count = scaled(b, 100000)};
        struct child echo = CHILD_NULL, mid = CHILD_NULL, client = CHILD_NULL;
        int client_sp[2] = {-1, -1}, echo_sp[2] = {-1, -1};
        struct report rep = {};
        int r, bad = 0;

        r = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, client_sp);
        if (r == 0 && relay)
                r = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, echo_sp);
        if (r < 0) {
                r = -errno;
        } else if (relay) {
                int mid_fds[2] = {client_sp[1], echo_sp[0]};

                r = child_spawn(&echo, b, raw_echo_main, NULL, &echo_sp[1], 1);
                if (r >= 0)
                        r = child_spawn(&mid, b, raw_relay_main, NULL, mid_fds, 2);
        } else {
                r = child_spawn(&echo, b, raw_echo_main, NULL, &client_sp[1], 1);
        }
        if (r >= 0)
                r = child_spawn(&client, b, raw_client_main, &a, &client_sp[0], 1);
        for (int i = 0; i < 2; i++) {
                if (client_sp[i] >= 0)
                        close(client_sp[i]);
                if (echo_sp[i] >= 0)
                        close(echo_sp[i]);
        }
        if (r < 0) {
                fprintf(stderr, "ipc-bench: %s: %s\n", name, strerror(-r));
                rep.failed = a.count;
                bad = 1;
        } else {
                bad = client_result(name, &client, a.count, &rep);
        }
        child_reap(&client);
        child_reap(&mid);
        child_reap(&echo);
        return result_print(name, us(rep.p50_ns), "us", rep.lost, rep.failed,
                            " p99_us=%.2f round_trips_per_s=%.0f count=%" PRIu64, us(rep.p99_ns),
                            rate(rep.count, rep.t_start, rep.t_end), rep.count) |
               bad;
}

static int scenario_raw_pingpong(const struct bench *b, const char *name)
{
        return run_raw(b, name, false);
}

static int scenario_raw_relay_pingpong(const struct bench *b, const char *name)
{
        return run_raw(b, name, true);
}

/* Start the echo server and wait until it owns its name. */
static int echo_server_start(const struct bench *b, const char *name, struct child *srv)
{
        struct report rep = {};
        int r;

        r = child_spawn(srv, b, echo_server_main, NULL, NULL, 0);
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

/*
 * Run the echo server and one client process (fn with arg) against it.
 * Returns 0, or 1 when the client did not report cleanly (then rep counts
 * every call as failed).
 */
static int run_with_echo_server(const struct bench *b, const char *name, child_main_fn fn, void *arg, uint64_t expected,
                                struct report *rep)
{
        struct child srv = CHILD_NULL, client = CHILD_NULL;
        int r, bad;

        *rep = (struct report){.failed = expected};
        r = echo_server_start(b, name, &srv);
        if (r < 0)
                return 1;
        r = child_spawn(&client, b, fn, arg, NULL, 0);
        if (r < 0) {
                fprintf(stderr, "ipc-bench: %s: %s\n", name, strerror(-r));
                bad = 1;
        } else {
                bad = client_result(name, &client, expected, rep);
        }
        child_reap(&client);
        child_reap(&srv);
        return bad;
}

static int scenario_call_rtt_small(const struct bench *b, const char *name)
{
        struct call_arg a = {.payload = SMALL_PAYLOAD, .warmup = scaled(b, 1000), .count = scaled(b, 20000)};
        struct report rep;
        int bad = run_with_echo_server(b, name, call_client_main, &a, a.count, &rep);

        return result_print(name, us(rep.p50_ns), "us", rep.lost, rep.failed,
                            " p99_us=%.2f calls_per_s=%.0f count=%" PRIu64, us(rep.p99_ns),
                            rate(rep.count, rep.t_start, rep.t_end), rep.count) |
               bad;
}

static int scenario_call_pipelined(const struct bench *b, const char *name)
{
        struct call_arg a = {.payload = SMALL_PAYLOAD, .warmup = scaled(b, 1000), .count = scaled(b, 200000)};
        struct report rep;
        int bad = run_with_echo_server(b, name, pipeline_client_main, &a, a.count, &rep);

        return result_print(name, rate(rep.count, rep.t_start, rep.t_end), "calls/s", rep.lost, rep.failed,
                            " window=%d count=%" PRIu64, PIPELINE_WINDOW, rep.count) |
               bad;
}

static int scenario_call_rtt_64k(const struct bench *b, const char *name)
{
        struct call_arg a = {.payload = LARGE_PAYLOAD, .warmup = scaled(b, 100), .count = scaled(b, 5000)};
        struct report rep;
        int bad = run_with_echo_server(b, name, call_client_main, &a, a.count, &rep);
        /* payload carried both ways: the argument and the echoed result */
        double mbs = rate(rep.count, rep.t_start, rep.t_end) * 2.0 * LARGE_PAYLOAD / 1e6;

        return result_print(name, mbs, "MB/s", rep.lost, rep.failed,
                            " p50_us=%.2f p99_us=%.2f payload_bytes=%d count=%" PRIu64, us(rep.p50_ns), us(rep.p99_ns),
                            LARGE_PAYLOAD, rep.count) |
               bad;
}

/*
 * Collect a subscriber's final report. After the emitter is done it gets
 * `wait_ms`; one still waiting then (its Done never came) is told to stop and
 * reports what it has.
 */
static int subscriber_collect(const char *name, struct child *sub, int wait_ms, struct report *rep)
{
        int r = child_wait_report(sub, REPORT_DONE, wait_ms, rep);

        if (r == -ETIMEDOUT) {
                child_stop(sub);
                r = child_wait_report(sub, REPORT_DONE, REAP_TIMEOUT_MS, rep);
        }
        if (r < 0)
                child_complain(name, "subscriber", r, rep);
        return r;
}

/*
 * Start the holders of n_rules unrelated rules (RULES_PER_HOLDER each) and
 * wait until they hold them all. *ret is an array of *ret_n children (also
 * on failure, for stopping them). Returns 0 or negative errno.
 */
static int rules_holders_start(const struct bench *b, const char *name, uint64_t n_rules, struct child **ret,
                               size_t *ret_n, struct rules_arg **ret_args)
{
        size_t n = (size_t) ((n_rules + RULES_PER_HOLDER - 1) / RULES_PER_HOLDER), started = 0;
        struct child *holders = calloc(n ? n : 1, sizeof(*holders));
        struct rules_arg *args = calloc(n ? n : 1, sizeof(*args));
        int r = holders && args ? 0 : -ENOMEM;

        for (; r >= 0 && started < n; started++) {
                args[started].first = (uint64_t) started * RULES_PER_HOLDER;
                args[started].count = n_rules - args[started].first < RULES_PER_HOLDER ? n_rules - args[started].first
                                                                                       : RULES_PER_HOLDER;
                holders[started] = CHILD_NULL;
                r = child_spawn(&holders[started], b, rules_holder_main, &args[started], NULL, 0);
                if (r < 0)
                        fprintf(stderr, "ipc-bench: %s: %s\n", name, strerror(-r));
        }
        for (size_t i = 0; r >= 0 && i < started; i++) {
                struct report rep = {};

                r = child_wait_report(&holders[i], REPORT_READY, DONE_TIMEOUT_MS, &rep);
                if (r >= 0 && rep.error < 0)
                        r = rep.error;
                if (r < 0)
                        child_complain(name, "rule holder", r, &rep);
        }
        *ret = holders;
        *ret_n = holders ? started : 0;
        *ret_args = args;
        return r;
}

/* signal_fanout_10, and signal_fanout_rules (with_rules) with b->rules unrelated rules installed first. */
static int run_fanout(const struct bench *b, const char *name, bool with_rules)
{
        struct fanout_arg a = {.count = scaled(b, 100000)};
        struct child subs[FANOUT_SUBSCRIBERS], emitter = CHILD_NULL, *holders = NULL;
        struct report reps[FANOUT_SUBSCRIBERS] = {}, erep = {};
        bool reported[FANOUT_SUBSCRIBERS] = {};
        uint64_t delivered = 0, lost = 0, failed = 0, t_end = 0, deadline;
        struct rules_arg *holder_args = NULL;
        uint64_t n_rules = with_rules ? b->rules : 0;
        size_t n_subs = 0, n_holders = 0;
        int r = 0, bad = 0;

        for (size_t i = 0; i < FANOUT_SUBSCRIBERS; i++)
                subs[i] = CHILD_NULL;
        if (n_rules > 0)
                r = rules_holders_start(b, name, n_rules, &holders, &n_holders, &holder_args);
        if (r < 0)
                bad = 1; /* no subscriber starts: every signal counts as lost */
        /* every subscriber holds its match before the first signal goes out */
        for (; r >= 0 && n_subs < FANOUT_SUBSCRIBERS; n_subs++) {
                r = child_spawn(&subs[n_subs], b, subscriber_main, &a, NULL, 0);
                if (r < 0) {
                        fprintf(stderr, "ipc-bench: %s: %s\n", name, strerror(-r));
                        break;
                }
        }
        for (size_t i = 0; r >= 0 && i < n_subs; i++) {
                r = child_wait_report(&subs[i], REPORT_READY, READY_TIMEOUT_MS, &reps[i]);
                if (r == -EPROTO)
                        reported[i] = true; /* it failed and sent its final report */
                if (r < 0)
                        child_complain(name, "subscriber", r, &reps[i]);
        }
        if (r >= 0) {
                r = child_spawn(&emitter, b, emitter_main, &a, NULL, 0);
                if (r < 0)
                        fprintf(stderr, "ipc-bench: %s: %s\n", name, strerror(-r));
        }
        if (r >= 0) {
                r = child_wait_report(&emitter, REPORT_DONE, DONE_TIMEOUT_MS, &erep);
                if (r < 0 || erep.error < 0)
                        child_complain(name, "emitter", r < 0 ? r : -EPROTO, &erep);
        }
        if (r < 0 || erep.error < 0) {
                /* no Done will come: the subscribers report what they have */
                for (size_t i = 0; i < n_subs; i++)
                        child_stop(&subs[i]);
                bad = 1;
        }
        /* what the broker has accepted it delivers within a minute, or something is wrong */
        deadline = now_ns() + 60 * UINT64_C(1000000000);
        for (size_t i = 0; i < n_subs; i++) {
                uint64_t now = now_ns();
                int wait_ms = now < deadline ? (int) ((deadline - now) / 1000000) : 0;

                if (!reported[i] && subscriber_collect(name, &subs[i], wait_ms, &reps[i]) < 0) {
                        reps[i] = (struct report){.lost = a.count};
                        bad = 1;
                }
                if (reps[i].error < 0)
                        bad = 1;
                delivered += reps[i].count;
                lost += reps[i].lost;
                failed += reps[i].failed;
                if (reps[i].t_end > t_end)
                        t_end = reps[i].t_end;
        }
        if (n_subs < FANOUT_SUBSCRIBERS)
                lost += (uint64_t) (FANOUT_SUBSCRIBERS - n_subs) * a.count;
        child_reap(&emitter);
        for (size_t i = 0; i < n_subs; i++)
                child_reap(&subs[i]);
        for (size_t i = 0; i < n_holders; i++)
                child_reap(&holders[i]);
        free(holders);
        free(holder_args);
        if (with_rules)
                return result_print(name, erep.t_start ? rate(delivered, erep.t_start, t_end) : 0.0, "signals/s", lost,
                                    failed, " subscribers=%d signals=%" PRIu64 " delivered=%" PRIu64 " rules=%" PRIu64,
                                    FANOUT_SUBSCRIBERS, a.count, delivered, n_rules) |
                       bad;
        return result_print(name, erep.t_start ? rate(delivered, erep.t_start, t_end) : 0.0, "signals/s", lost, failed,
                            " subscribers=%d signals=%" PRIu64 " delivered=%" PRIu64, FANOUT_SUBSCRIBERS, a.count,
                            delivered) |
               bad;
}

static int scenario_signal_fanout(const struct bench *b, const char *name)
{
        return run_fanout(b, name, false);
}

static int scenario_signal_fanout_rules(const struct bench *b, const char *name)
{
        return run_fanout(b, name, true);
}

static int scenario_connect_hello(const struct bench *b, const char *name)
{
        struct pingpong_arg a = {.count = scaled(b, 2000)};
        struct child client = CHILD_NULL;
        struct report rep = {.failed = a.count};
        int r, bad;

        r = child_spawn(&client, b, connect_client_main, &a, NULL, 0);
        if (r < 0) {
                fprintf(stderr, "ipc-bench: %s: %s\n", name, strerror(-r));
                bad = 1;
        } else {
                bad = client_result(name, &client, a.count, &rep);
        }
        child_reap(&client);
        return result_print(name, rate(rep.count, rep.t_start, rep.t_end), "conn/s", 0, rep.failed,
                            " p50_us=%.2f p99_us=%.2f count=%" PRIu64, us(rep.p50_ns), us(rep.p99_ns), rep.count) |
               bad;
}

/* VmHWM of process pid in kB, or negative errno. */
static int64_t proc_vmhwm_kb(int64_t pid)
{
        char path[64], line[256];
        int64_t kb = -ENOENT;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%" PRId64 "/status", pid);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmHWM: %" SCNd64 " kB", &kb) == 1)
                        break;
        fclose(f);
        return kb;
}

/* The broker's pid, from GetConnectionCredentials on the driver itself. */
static int broker_pid(const struct bench *b, int64_t *ret)
{
        _cleanup_(ipcbus_unrefp) ipcbus_bus *bus = NULL;
        _cleanup_(ipcbus_message_unrefp) ipcbus_message *reply = NULL;
        _cleanup_(ipcbus_error_freep) ipcbus_error e = IPCBUS_ERROR_NULL;
        _cleanup_(json_object_putp) struct json_object *obj = NULL;
        struct json_object *pid;
        const char *text;
        size_t len = 0;
        int r;

        r = bench_connect(b, &bus);
        if (r < 0)
                return r;
        r = ipcbus_call(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE,
                        "GetConnectionCredentials", "{\"name\":\"" IPCBUS_DRIVER_NAME "\"}", IPCBUS_TIMEOUT_DEFAULT,
                        &reply, &e);
        if (r < 0) {
                fprintf(stderr, "ipc-bench: GetConnectionCredentials: %s\n", e.name ? e.name : ipcbus_strerror(r));
                return r;
        }
        text = ipcbus_message_get_body(reply, &len);
        if (format_json_parse(text, len, &obj) < 0 || !json_object_object_get_ex(obj, "pid", &pid) ||
            !json_object_is_type(pid, json_type_int) || json_object_get_int64(pid) <= 0) {
                fprintf(stderr, "ipc-bench: GetConnectionCredentials: no pid in the reply\n");
                return -EBADMSG;
        }
        *ret = json_object_get_int64(pid);
        return 0;
}

static int scenario_broker_rss(const struct bench *b, const char *name)
{
        int64_t pid = 0, kb;
        int r;

        r = broker_pid(b, &pid);
        kb = r < 0 ? r : proc_vmhwm_kb(pid);
        if (kb < 0) {
                if (r >= 0)
                        fprintf(stderr, "ipc-bench: %s: cannot read VmHWM of pid %" PRId64 ": %s\n", name, pid,
                                strerror((int) -kb));
                return result_print(name, 0, "kB", 0, 1, " pid=%" PRId64, pid) | 1;
        }
        return result_print(name, (double) kb, "kB", 0, 0, " pid=%" PRId64, pid);
}

static const struct scenario {
        const char *name;
        const char *summary;
        bool needs_bus;
        int (*run)(const struct bench *b, const char *name);
} scenarios[] = {
        {"raw_pingpong", "direct Unix socket 64-byte ping-pong, 100,000 round trips (no broker)", false,
         scenario_raw_pingpong},
        {"raw_relay_pingpong", "the same through a forwarding process (no broker)", false, scenario_raw_relay_pingpong},
        {"call_rtt_small", "sequential 64-byte Echo calls, 20,000 after 1,000 warm-up", true, scenario_call_rtt_small},
        {"call_pipelined", "Echo calls with 64 outstanding, 200,000 calls", true, scenario_call_pipelined},
        {"signal_fanout_10", "100,000 signals to 10 subscriber processes", true, scenario_signal_fanout},
        {"call_rtt_64k", "sequential Echo calls with 64 KiB, 5,000 calls", true, scenario_call_rtt_64k},
        {"connect_hello", "2,000 cycles of connect, Hello, disconnect", true, scenario_connect_hello},
        {"broker_rss_kb", "the broker's peak resident memory (VmHWM)", true, scenario_broker_rss},
        /* after broker_rss_kb, whose figure then leaves out the rules this one installs */
        {"signal_fanout_rules", "signal_fanout_10 with --rules unrelated rules of other connections", true,
         scenario_signal_fanout_rules},
};

#define N_SCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

/* ---- our own broker ----------------------------------------------------------- */

/* Where ipcbusd is: $IPCBUSD, beside this binary, ../daemon/ from it (build tree), else PATH. */
static char *broker_find(void)
{
        const char *env = getenv("IPCBUSD");
        char self[PATH_MAX], *dir, *path;
        ssize_t n;

        if (env && *env)
                return strdup(env);
        n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n > 0) {
                self[n] = '\0';
                dir = dirname(self);
                /* a libtool build runs the binary from .libs/ */
                n = (ssize_t) strlen(dir);
                if (n >= 6 && strcmp(dir + n - 6, "/.libs") == 0)
                        dir[n - 6] = '\0';
                for (int i = 0; i < 2; i++) {
                        if (asprintf(&path, i == 0 ? "%s/ipcbusd" : "%s/../daemon/ipcbusd", dir) < 0)
                                return NULL;
                        if (access(path, X_OK) == 0)
                                return path;
                        free(path);
                }
        }
        return strdup("ipcbusd");
}

/*
 * Start ipcbusd on a socket in a new temporary directory, with
 * --print-address, and read the address it prints. Returns 0 or negative errno.
 */
static int broker_start(struct bench *b)
{
        _cleanup_(freep) char *exe = broker_find();
        char template[] = "/tmp/ipc-bench.XXXXXX", line[PATH_MAX + 64];
        size_t len = 0;
        int out[2], r = 0;

        if (!exe || !mkdtemp(template))
                return -errno;
        b->tmpdir = strdup(template);
        if (!b->tmpdir || asprintf(&b->socket_path, "%s/bus", template) < 0 ||
            asprintf(&b->owned_address, "unix:path=%s", b->socket_path) < 0)
                return -ENOMEM;
        if (pipe2(out, O_CLOEXEC) < 0)
                return -errno;
        fflush(stdout);
        fflush(stderr);
        b->broker_pid = fork();
        if (b->broker_pid < 0) {
                r = -errno;
                b->broker_pid = 0;
                close(out[0]);
                close(out[1]);
                return r;
        }
        if (b->broker_pid == 0) {
                signal(SIGPIPE, SIG_DFL);
                if (dup2(out[1], STDOUT_FILENO) < 0)
                        _exit(127);
                execlp(exe, exe, "--address", b->owned_address, "--print-address", (char *) NULL);
                fprintf(stderr, "ipc-bench: cannot run %s: %s (set $IPCBUSD)\n", exe, strerror(errno));
                _exit(127);
        }
        close(out[1]);
        /* the first line it prints is the address, once it listens */
        while (len < sizeof(line) - 1 && (len == 0 || line[len - 1] != '\n')) {
                struct pollfd p = {.fd = out[0], .events = POLLIN};
                ssize_t n;

                if (poll(&p, 1, READY_TIMEOUT_MS) <= 0) {
                        r = -ETIMEDOUT;
                        break;
                }
                n = read(out[0], line + len, sizeof(line) - 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        r = -EPIPE;
                        break;
                }
                len += (size_t) n;
        }
        close(out[0]);
        line[len] = '\0';
        line[strcspn(line, "\n")] = '\0';
        if (r < 0 || line[0] == '\0') {
                fprintf(stderr, "ipc-bench: %s did not print its address\n", exe);
                return r < 0 ? r : -EPIPE;
        }
        if (strcmp(line, b->owned_address) != 0) {
                free(b->owned_address);
                b->owned_address = strdup(line);
                if (!b->owned_address)
                        return -ENOMEM;
        }
        b->address = b->owned_address;
        return 0;
}

/* Stop our broker (SIGTERM, then SIGKILL after a while) and remove its directory. */
static void broker_stop(struct bench *b)
{
        if (b->broker_pid > 0) {
                struct child c = {.pid = b->broker_pid, .report_fd = -1, .ctl_fd = -1};

                kill(b->broker_pid, SIGTERM);
                child_reap(&c);
        }
        if (b->socket_path)
                unlink(b->socket_path);
        if (b->tmpdir)
                rmdir(b->tmpdir);
        free(b->socket_path);
        free(b->tmpdir);
        free(b->owned_address);
}

/* ---- main ------------------------------------------------------------------- */

static void help(void)
{
        printf("Usage: ipc-bench [OPTIONS]\n"
               "\n"
               "Run the ipcbus benchmark scenarios and print one line per scenario:\n"
               "  RESULT broker=ipcbus scenario=NAME value=NUMBER unit=UNIT [key=value ...]\n"
               "lost=N and failed=N appear when messages were lost or failed; the exit\n"
               "status is then 1. call_rtt_64k counts the payload both ways (argument and\n"
               "result) in its MB/s (10^6 bytes).\n"
               "\n"
               "Options:\n"
               "  --address ADDR     use the running bus at ADDR; otherwise start ipcbusd\n"
               "                     ($IPCBUSD, beside ipc-bench, or from PATH) on a\n"
               "                     temporary socket\n"
               "  --scenario NAME    run NAME (repeatable; default: all, in order)\n"
               "  --scale F          multiply every count by F (e.g. 0.01 for a smoke run)\n"
               "  --rules N          unrelated match rules signal_fanout_rules installs\n"
               "                     (default 10000; not scaled)\n"
               "  --list             list the scenarios\n"
               "  -h, --help         show this help\n"
               "  --version          show the version\n"
               "\n"
               "Example:\n"
               "  ipc-bench --scale 0.1 --scenario call_rtt_small --scenario signal_fanout_10\n");
}

int main(int argc, char **argv)
{
        enum { OPT_ADDRESS = 0x100, OPT_SCENARIO, OPT_SCALE, OPT_LIST, OPT_VERSION, OPT_RULES };
        static const struct option options[] = {
                {"address", required_argument, NULL, OPT_ADDRESS},
                {"scenario", required_argument, NULL, OPT_SCENARIO},
                {"scale", required_argument, NULL, OPT_SCALE},
                {"rules", required_argument, NULL, OPT_RULES},
                {"list", no_argument, NULL, OPT_LIST},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, OPT_VERSION},
                {},
        };
        struct bench b = {.scale = 1.0, .rules = FANOUT_RULES_DEFAULT};
        bool selected[N_SCENARIOS] = {}, any = false, need_bus = false;
        struct sigaction sa = {.sa_handler = on_signal};
        int opt, r, status = 0;

        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (opt) {
                case OPT_ADDRESS:
                        b.address = optarg;
                        break;
                case OPT_SCENARIO: {
                        size_t i;

                        for (i = 0; i < N_SCENARIOS && strcmp(scenarios[i].name, optarg) != 0; i++)
                                ;
                        if (i == N_SCENARIOS) {
                                fprintf(stderr, "ipc-bench: unknown scenario '%s' (see ipc-bench --list)\n", optarg);
                                return EXIT_USAGE;
                        }
                        selected[i] = any = true;
                        break;
                }
                case OPT_SCALE: {
                        char *end;

                        errno = 0;
                        b.scale = strtod(optarg, &end);
                        if (errno != 0 || end == optarg || *end != '\0' || !isfinite(b.scale) || b.scale <= 0 ||
                            b.scale > 1000) {
                                fprintf(stderr, "ipc-bench: invalid scale '%s' (a number above 0)\n", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                }
                case OPT_RULES: {
                        char *end;
                        unsigned long long n;

                        errno = 0;
                        n = strtoull(optarg, &end, 10);
                        if (errno != 0 || end == optarg || *end != '\0' || optarg[0] == '-' || n > 1000000) {
                                fprintf(stderr, "ipc-bench: invalid rule count '%s' (0 to 1000000)\n", optarg);
                                return EXIT_USAGE;
                        }
                        b.rules = n;
                        break;
                }
                case OPT_LIST:
                        for (size_t i = 0; i < N_SCENARIOS; i++)
                                printf("%-20s %s\n", scenarios[i].name, scenarios[i].summary);
                        return 0;
                case 'h':
                        help();
                        return 0;
                case OPT_VERSION:
                        printf("ipc-bench %s\n", PACKAGE_VERSION);
                        return 0;
                default:
                        fputs("(see ipc-bench --help)\n", stderr);
                        return EXIT_USAGE;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "ipc-bench: unexpected argument '%s' (see ipc-bench --help)\n", argv[optind]);
                return EXIT_USAGE;
        }

        signal(SIGPIPE, SIG_IGN);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);

        for (size_t i = 0; i < N_SCENARIOS; i++)
                if ((!any || selected[i]) && scenarios[i].needs_bus)
                        need_bus = true;
        if (!b.address && need_bus) {
                r = broker_start(&b);
                if (r < 0) {
                        fprintf(stderr, "ipc-bench: cannot start ipcbusd: %s\n", strerror(-r));
                        broker_stop(&b);
                        return EXIT_FAILURE;
                }
        }
        for (size_t i = 0; i < N_SCENARIOS && !interrupted; i++)
                if (!any || selected[i])
                        status |= scenarios[i].run(&b, scenarios[i].name);
        if (interrupted) {
                fprintf(stderr, "ipc-bench: interrupted\n");
                status = 1;
        }
        broker_stop(&b);
        return status ? EXIT_FAILURE : EXIT_SUCCESS;
}
