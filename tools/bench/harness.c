/* SPDX-License-Identifier: MIT */
/*
 * ipc-bench's harness: the clock, reports and latency samples, the child
 * processes, the bus side every child shares, and the RESULT lines (see
 * bench.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "protocol/jbuf.h"
#include "tools/bench/bench.h"
#include "tools/format.h"

volatile sig_atomic_t bench_interrupted;

/* A scenario's count multiplied by --scale, at least 1. */
uint64_t bench_scaled(const struct bench *b, uint64_t n)
{
        double v = round((double) n * b->scale);

        return v < 1 ? 1 : (uint64_t) v;
}

/* ---- reports: child -> parent --------------------------------------------- */

/* Send a report to the parent (one write: the struct is below PIPE_BUF, so it is atomic). */
void report_send(struct report *r, int kind)
{
        ssize_t n;

        r->kind = kind;
        do
                n = write(REPORT_FD, r, sizeof(*r));
        while (n < 0 && errno == EINTR);
}

/* ---- usage: page faults and CPU time ----------------------------------------- */

void usage_self(struct usage *ret)
{
        struct rusage ru = {};

        getrusage(RUSAGE_SELF, &ru);
        *ret = (struct usage){
                .minflt = (uint64_t) ru.ru_minflt,
                .cpu_ns = ((uint64_t) ru.ru_utime.tv_sec + (uint64_t) ru.ru_stime.tv_sec) * 1000000000u +
                          ((uint64_t) ru.ru_utime.tv_usec + (uint64_t) ru.ru_stime.tv_usec) * 1000u,
        };
}

/*
 * Process pid's usage so far, from /proc/PID/stat: minflt is field 10,
 * utime and stime fields 14 and 15 in clock ticks. Field 2 (the command) may
 * hold spaces and parentheses, so the fields are counted from its last ')'.
 */
int usage_proc(pid_t pid, struct usage *ret)
{
        char path[64], line[1024], *p;
        unsigned long long minflt, utime, stime;
        long tick = sysconf(_SC_CLK_TCK);
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        p = fgets(line, sizeof(line), f);
        fclose(f);
        p = p ? strrchr(line, ')') : NULL;
        if (!p || tick <= 0 ||
            sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %llu %*u %*u %*u %llu %llu", &minflt, &utime, &stime) != 3)
                return -EBADMSG;
        *ret = (struct usage){
                .minflt = minflt,
                .cpu_ns = (utime + stime) * (1000000000u / (uint64_t) tick),
        };
        return 0;
}

/* Add after - before to *sum. */
void usage_add_delta(struct usage *sum, const struct usage *before, const struct usage *after)
{
        sum->minflt += after->minflt - before->minflt;
        sum->cpu_ns += after->cpu_ns - before->cpu_ns;
}

/*
 * Tell the parent the warm-up is done (READY) and wait for its go: one byte
 * on the control pipe. Returns 0, or -ECANCELED on EOF (the parent stops us).
 */
int client_wait_go(void)
{
        struct report rep = {};

        return client_report_wait_go(&rep);
}

int client_report_wait_go(struct report *rep)
{
        char go;
        ssize_t n;

        report_send(rep, REPORT_READY);
        do
                n = read(CTL_FD, &go, 1);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        return n == 1 ? 0 : -ECANCELED;
}

int samples_init(struct samples *s, size_t n)
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
void samples_finish(struct samples *s, struct report *r)
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
int child_spawn(struct child *c, const struct bench *b, child_main_fn fn, void *arg, const int *extra, size_t n_extra)
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
 * -ETIMEDOUT, or -EINTR when ipc-bench was bench_interrupted.
 */
int child_wait_report(struct child *c, int kind, int timeout_ms, struct report *ret)
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
        while (n < 0 && errno == EINTR && !bench_interrupted);
        if (n < 0)
                return -errno;
        if (n != (ssize_t) sizeof(*ret))
                return -EPIPE;
        return ret->kind == kind ? 0 : -EPROTO;
}

/* Let a child waiting in client_wait_go start its timed part. Returns 0 or negative errno. */
int child_go(struct child *c)
{
        ssize_t n;

        do
                n = write(c->ctl_fd, "g", 1);
        while (n < 0 && errno == EINTR);
        return n == 1 ? 0 : -errno;
}

/* Tell the child to stop (EOF on its control pipe). */
void child_stop(struct child *c)
{
        if (c->ctl_fd >= 0)
                close(c->ctl_fd);
        c->ctl_fd = -1;
}

/*
 * Stop the child and wait for it to exit; kill it if it has not within
 * REAP_TIMEOUT_MS. Returns 0 when it exited with status 0.
 */
int child_reap(struct child *c)
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
void child_complain(const char *name, const char *who, int r, const struct report *rep)
{
        if (r == -EPROTO && rep->error < 0)
                r = rep->error;
        fprintf(stderr, "ipc-bench: %s: %s: %s\n", name, who,
                r == -ETIMEDOUT ? "no answer in time"
                : r == -EPIPE   ? "died"
                                : ipcbus_strerror(r));
}

/* ---- the bus side of children ------------------------------------------------ */

int bench_connect(const struct bench *b, ipcbus_bus **ret)
{
        return format_open_bus("ipc-bench", b->address, false, ret);
}

/*
 * Drive the connection until *done becomes true (done may be NULL), the parent
 * closes the control pipe, or the connection fails. Returns 0 or negative errno.
 */
int bus_run(ipcbus_bus *bus, const bool *done)
{
        for (;;) {
                struct pollfd p[2];
                uint64_t deadline = UINT64_MAX;
                int timeout = -1, r;

                while ((r = ipcbus_process(bus)) > 0)
                        if (done && *done)
                                return 0;
                if (r < 0)
                        return r;
                if (done && *done)
                        return 0;
                /* Asked after processing: a reply it queued may wait for POLLOUT. */
                p[0] = (struct pollfd){.fd = ipcbus_get_fd(bus), .events = (short) ipcbus_get_events(bus)};
                p[1] = (struct pollfd){.fd = CTL_FD, .events = POLLIN};
                ipcbus_get_timeout(bus, &deadline);
                if (deadline != UINT64_MAX) {
                        uint64_t now = clock_now_nsec(CLOCK_MONOTONIC) / 1000;

                        timeout = deadline > now ? (int) ((deadline - now + 999) / 1000) : 0;
                }
                if (poll(p, 2, timeout) < 0 && errno != EINTR)
                        return -errno;
                if (p[1].revents)
                        return 0;
        }
}

/* A JSON body {"data":"<n bytes>"} (caller frees). */
char *payload_body(size_t n)
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
/* ---- the parent: results ----------------------------------------------------- */

/*
 * Print the RESULT line. `extra` is more " key=value" text; lost and failed
 * are added when not zero. Returns 0, or 1 when something was lost or failed.
 */
int result_print(const char *scenario, double value, const char *unit, uint64_t lost, uint64_t failed, const char *fmt,
                 ...)
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

double bench_us(uint64_t ns)
{
        return (double) ns / 1000.0;
}

/* Operations per second between two CLOCK_MONOTONIC instants. */
double bench_rate(uint64_t n, uint64_t t_start, uint64_t t_end)
{
        return t_end > t_start ? (double) n * 1e9 / (double) (t_end - t_start) : 0.0;
}

/*
 * What client_result makes of child_wait_report's answer r for the client's
 * report rep: 0, or 1 after saying why (counting every operation as failed
 * when the client sent nothing).
 */
static int client_result_of(const char *name, int r, uint64_t expected, struct report *rep)
{
        if (r < 0 && r != -EPROTO) {
                child_complain(name, "client", r, rep);
                *rep = (struct report){.failed = expected};
                return 1;
        }
        if (rep->error < 0)
                child_complain(name, "client", -EPROTO, rep);
        return rep->error < 0 ? 1 : 0;
}

/*
 * Wait for the DONE report of the measuring client; on trouble say why and
 * count every operation as failed. Returns 0 or 1.
 */
int client_result(const char *name, struct child *client, uint64_t expected, struct report *rep)
{
        return client_result_of(name, child_wait_report(client, REPORT_DONE, DONE_TIMEOUT_MS, rep), expected, rep);
}

/* Fork a client process (fn with arg); says why on failure. Returns 0 or negative errno. */
static int client_spawn(const struct bench *b, const char *name, child_main_fn fn, void *arg, struct child *ret)
{
        int r = child_spawn(ret, b, fn, arg, NULL, 0);

        if (r < 0)
                fprintf(stderr, "ipc-bench: %s: %s\n", name, strerror(-r));
        return r;
}

int client_run(const struct bench *b, const char *name, child_main_fn fn, void *arg, uint64_t expected,
               struct report *rep)
{
        struct child client = CHILD_NULL;
        int bad;

        *rep = (struct report){.failed = expected};
        bad = client_spawn(b, name, fn, arg, &client) < 0 ? 1 : client_result(name, &client, expected, rep);
        child_reap(&client);
        return bad;
}

/*
 * Wait for the client's READY (its warm-up is done), sample the broker, let
 * the client go, wait for its DONE, sample the broker again. Returns 0 or 1
 * as client_result.
 */
static int client_timed_part(const char *name, struct child *client, uint64_t expected, pid_t broker_pid,
                             struct timed_run *run)
{
        struct usage before, after;
        int r;

        /* a client that failed in its warm-up sends its DONE instead: -EPROTO */
        r = child_wait_report(client, REPORT_READY, DONE_TIMEOUT_MS, &run->rep);
        if (r < 0)
                return client_result_of(name, r, expected, &run->rep);
        run->broker_known = broker_pid > 0 && usage_proc(broker_pid, &before) == 0;
        r = child_go(client);
        if (r < 0)
                return client_result_of(name, r, expected, &run->rep);
        r = client_result(name, client, expected, &run->rep);
        run->broker_known = run->broker_known && usage_proc(broker_pid, &after) == 0;
        if (run->broker_known)
                usage_add_delta(&run->broker, &before, &after);
        usage_add_delta(&run->clients, &(struct usage){}, &run->rep.usage);
        return r;
}

int client_run_timed(const struct bench *b, const char *name, child_main_fn fn, void *arg, uint64_t expected,
                     pid_t broker_pid, struct timed_run *run)
{
        struct child client = CHILD_NULL;
        int bad;

        run->rep = (struct report){.failed = expected};
        bad = client_spawn(b, name, fn, arg, &client) < 0 ? 1
                                                          : client_timed_part(name, &client, expected, broker_pid, run);
        child_reap(&client);
        return bad;
}

const char *timed_run_keys(const struct timed_run *run, uint64_t calls, char *buf, size_t size)
{
        double n = (double) calls;
        int len = 0;

        buf[0] = '\0';
        if (calls == 0)
                return buf;
        if (run->broker_known)
                len = snprintf(buf, size, " broker_minflt_per_call=%.2f broker_cpu_us_per_call=%.2f",
                               (double) run->broker.minflt / n, (double) run->broker.cpu_ns / 1000.0 / n);
        if (len >= 0 && (size_t) len < size)
                snprintf(buf + len, size - (size_t) len, " client_minflt_per_call=%.2f client_cpu_us_per_call=%.2f",
                         (double) run->clients.minflt / n, (double) run->clients.cpu_ns / 1000.0 / n);
        return buf;
}
