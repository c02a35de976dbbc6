/* SPDX-License-Identifier: MIT */
/*
 * ipc-soak: keep many clients busy on one broker for a set time, with
 * clients and services disconnecting abruptly and being killed mid-call, then
 * check that every call got an answer and that the broker gave back the
 * descriptors and memory it held. Issue 3, point 7; not part of `make check`.
 *
 * Processes (all forked from this one; see soak.h):
 *   - ipcbusd, unless --address names a running bus: started as
 *     `ipcbusd --address unix:path=TMPDIR/bus --print-address`, found as
 *     --ipcbusd, else $IPCBUSD, else in PATH; its log goes to TMPDIR/ipcbusd.log;
 *   - K services (service.c), each SIGKILLed now and then and restarted;
 *   - the ledger client processes (client.c), 250 connections each at most,
 *     which close connections abruptly themselves and keep a ledger;
 *   - two victim client processes holding 1/20 of the clients, SIGKILLed
 *     whole now and then and restarted (their calls die with them).
 *
 * Prints RESULT lines in the form of ipc-bench (BENCHMARKS.md) and exits 0
 * when everything held, 1 when something did not, 2 on a usage error.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ipcbus/ipcbus.h>
#include <json-c/json.h>

#include "tests/soak/soak.h"

#define EXIT_USAGE 2

#define CLIENTS_PER_PROC 250
#define VICTIM_SHARE 20 /* one client in 20 lives in a victim process */
#define VICTIM_PROCS 2
#define SERVICE_KILL_MAX_MS 8000 /* a service is killed every 0-8 s (4 s on average) */
#define SERVICE_RESTART_MAX_MS 1000
#define VICTIM_KILL_MAX_MS 6000
#define TICK_MS 50 /* the parent's loop */
#define SAMPLE_MS 500
#define PROGRESS_MS 10000
#define SERVICES_START_MS 500 /* head start of the services over the clients */
#define READY_TIMEOUT_MS 10000
#define LEDGER_TIMEOUT_MS 45000 /* the clients' settle time (30 s) and a margin */
#define REAP_TIMEOUT_MS 10000
#define BROKER_SETTLE_MS 30000
/*
 * How far above idle the broker's RSS may stay. Not zero: after a thousand
 * clients the allocator keeps ~2.3 MB of freed chunks between the few small
 * allocations that live on (measured: heap in use plateaus at ~310 KB over
 * repeated runs, so nothing grows per connection), and malloc_trim cannot
 * give back pages that are partly used. A leak shows as a run-length
 * dependent excess well beyond this.
 */
#define RSS_MARGIN_KB 4096
#define LOG_TAIL_LINES 15

struct child {
        pid_t pid; /* 0: not running */
        int ctl_fd;
        int report_fd; /* ledger client processes only */
        bool killed;   /* by us: its death is expected */
        uint64_t restart_at_ns;
        unsigned generation;
};

struct broker_stats {
        int64_t fds;
        int64_t rss_kb;
};

struct soak {
        /* options */
        unsigned duration_s;
        unsigned n_clients;
        unsigned n_services;
        uint64_t seed;
        const char *address;
        const char *ipcbusd;

        /* our own broker */
        pid_t broker_child;
        char tmpdir[PATH_MAX];
        char owned_address[PATH_MAX + 16];
        char log_path[PATH_MAX + 16];

        int64_t broker_pid;
        struct broker_stats idle, peak, end;

        struct child services[SOAK_SERVICES_MAX];
        struct soak_client_config *cfgs; /* ledger processes, then victims */
        struct child *procs;
        unsigned n_ledger_procs;
        unsigned n_victim_procs;

        struct rng rng;
        uint64_t service_kills, victim_kills;
        uint64_t unexpected_exits; /* services and victims that died on their own */
        bool broker_died;
        struct soak_ledger total;

        char failures[1024]; /* the reasons, for the last line */
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
        interrupted = 1;
}

static void soak_failure(struct soak *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void soak_failure(struct soak *s, const char *fmt, ...)
{
        size_t len = strlen(s->failures);
        va_list ap;

        if (len + 3 >= sizeof(s->failures))
                return;
        if (len > 0) {
                strcpy(s->failures + len, "; ");
                len += 2;
        }
        va_start(ap, fmt);
        vsnprintf(s->failures + len, sizeof(s->failures) - len, fmt, ap);
        va_end(ap);
}

static void sleep_ms(unsigned ms)
{
        poll(NULL, 0, (int) ms);
}

/* ---- child processes ------------------------------------------------------ */

/*
 * In a new child: the control pipe's read end becomes SOAK_CTL_FD, the
 * report pipe's write end (or -1) SOAK_REPORT_FD, and every other descriptor
 * above 2 is closed, so that no child keeps another's pipe open.
 */
static int child_setup_fds(int ctl, int report)
{
        int hi_ctl = fcntl(ctl, F_DUPFD, 10), hi_report = report >= 0 ? fcntl(report, F_DUPFD, 10) : -1;

        if (hi_ctl < 0 || (report >= 0 && hi_report < 0))
                return -errno;
        if (dup2(hi_ctl, SOAK_CTL_FD) < 0 || (hi_report >= 0 && dup2(hi_report, SOAK_REPORT_FD) < 0))
                return -errno;
        if (close_range(hi_report >= 0 ? SOAK_REPORT_FD + 1 : SOAK_CTL_FD + 1, ~0u, 0) < 0)
                return -errno;
        return 0;
}

enum role {
        ROLE_SERVICE,
        ROLE_CLIENTS, /* a ledger client process */
        ROLE_VICTIM,
};

/*
 * Fork the process of `role` number `index` (a service, or an entry of
 * s->procs). It dies with the parent. Returns 0 or negative errno.
 */
static int soak_spawn(struct soak *s, enum role role, unsigned index)
{
        struct child *c = role == ROLE_SERVICE ? &s->services[index] : &s->procs[index];
        int ctl[2], report[2] = {-1, -1};
        pid_t parent = getpid(), pid;

        if (pipe2(ctl, O_CLOEXEC) < 0)
                return -errno;
        if (role == ROLE_CLIENTS && pipe2(report, O_CLOEXEC) < 0) {
                close(ctl[0]);
                close(ctl[1]);
                return -errno;
        }
        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid == 0) {
                struct sigaction dfl = {.sa_handler = SIG_DFL};
                int status;

                sigaction(SIGINT, &dfl, NULL);
                sigaction(SIGTERM, &dfl, NULL);
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent ||
                    child_setup_fds(ctl[0], report[1]) < 0)
                        _exit(EXIT_FAILURE);
                if (role == ROLE_SERVICE) {
                        status = soak_service_main(s->address, index, s->seed ^ ((uint64_t) c->generation << 32));
                } else {
                        struct soak_client_config cfg = s->cfgs[index];

                        cfg.seed ^= (uint64_t) c->generation << 32;
                        status = soak_client_main(&cfg);
                }
                _exit(status);
        }
        close(ctl[0]);
        if (report[1] >= 0)
                close(report[1]);
        if (pid < 0) {
                int r = -errno;

                close(ctl[1]);
                if (report[0] >= 0)
                        close(report[0]);
                return r;
        }
        c->pid = pid;
        c->ctl_fd = ctl[1];
        if (role == ROLE_CLIENTS)
                c->report_fd = report[0];
        c->killed = false;
        c->restart_at_ns = 0;
        c->generation++;
        return 0;
}

static void child_close_ctl(struct child *c)
{
        if (c->ctl_fd >= 0)
                close(c->ctl_fd);
        c->ctl_fd = -1;
}

/* Wait up to timeout_ms for the child to exit (SIGKILL after that); returns its wait status. */
static int child_reap(struct child *c, int timeout_ms)
{
        int status = 0;

        if (c->pid <= 0)
                return 0;
        for (int waited = 0;; waited += TICK_MS) {
                pid_t r = waitpid(c->pid, &status, WNOHANG);

                if (r == c->pid || (r < 0 && errno != EINTR))
                        break;
                if (waited >= timeout_ms) {
                        kill(c->pid, SIGKILL);
                        waitpid(c->pid, &status, 0);
                        break;
                }
                sleep_ms(TICK_MS);
        }
        c->pid = 0;
        return status;
}

static void describe_status(int status, char *buf, size_t size)
{
        if (WIFEXITED(status))
                snprintf(buf, size, "exit status %d", WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
                snprintf(buf, size, "killed by signal %d", WTERMSIG(status));
        else
                snprintf(buf, size, "wait status %d", status);
}

/* ---- the broker --------------------------------------------------------------- */

/*
 * Start ipcbusd on TMPDIR/bus with --print-address, its stderr in
 * TMPDIR/ipcbusd.log, and wait for the address line. Returns 0 or negative errno.
 */
static int broker_start(struct soak *s)
{
        const char *tmp = getenv("TMPDIR");
        const char *exe = s->ipcbusd ? s->ipcbusd : getenv("IPCBUSD");
        char line[sizeof(s->owned_address)];
        size_t len = 0;
        int out[2], log_fd;

        if (!exe || !*exe)
                exe = "ipcbusd";
        snprintf(s->tmpdir, sizeof(s->tmpdir), "%s/ipc-soak.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(s->tmpdir)) {
                s->tmpdir[0] = '\0';
                return -errno;
        }
        snprintf(s->owned_address, sizeof(s->owned_address), "unix:path=%s/bus", s->tmpdir);
        snprintf(s->log_path, sizeof(s->log_path), "%s/ipcbusd.log", s->tmpdir);
        log_fd = open(s->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (log_fd < 0)
                return -errno;
        if (pipe2(out, O_CLOEXEC) < 0) {
                close(log_fd);
                return -errno;
        }
        fflush(stdout);
        fflush(stderr);
        s->broker_child = fork();
        if (s->broker_child == 0) {
                if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || dup2(out[1], STDOUT_FILENO) < 0 ||
                    dup2(log_fd, STDERR_FILENO) < 0)
                        _exit(127);
                signal(SIGPIPE, SIG_DFL);
                execlp(exe, exe, "--address", s->owned_address, "--print-address", (char *) NULL);
                fprintf(stderr, "ipc-soak: cannot run %s: %s\n", exe, strerror(errno));
                _exit(127);
        }
        close(out[1]);
        close(log_fd);
        if (s->broker_child < 0) {
                s->broker_child = 0;
                close(out[0]);
                return -errno;
        }
        while (len < sizeof(line) - 1 && !memchr(line, '\n', len)) {
                struct pollfd p = {.fd = out[0], .events = POLLIN};
                ssize_t n;

                if (poll(&p, 1, READY_TIMEOUT_MS) <= 0)
                        break;
                n = read(out[0], line + len, sizeof(line) - 1 - len);
                if (n <= 0)
                        break;
                len += (size_t) n;
        }
        close(out[0]);
        line[len] = '\0';
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '\0') {
                fprintf(stderr, "ipc-soak: %s did not print its address (log: %s; set --ipcbusd or $IPCBUSD)\n", exe,
                        s->log_path);
                return -EPIPE;
        }
        snprintf(s->owned_address, sizeof(s->owned_address), "%s", line);
        s->address = s->owned_address;
        return 0;
}

/* Print the last lines of the broker's log to stderr. */
static void broker_log_tail(const struct soak *s)
{
        FILE *f = s->log_path[0] ? fopen(s->log_path, "re") : NULL;
        char *lines[LOG_TAIL_LINES] = {}, *line = NULL;
        size_t n = 0, cap = 0;

        if (!f)
                return;
        while (getline(&line, &cap, f) > 0) {
                free(lines[n % LOG_TAIL_LINES]);
                lines[n % LOG_TAIL_LINES] = strdup(line);
                n++;
        }
        free(line);
        fclose(f);
        fprintf(stderr, "ipc-soak: the broker's log, %s, has %zu line(s)%s\n", s->log_path, n, n ? "; the last:" : "");
        for (size_t i = n > LOG_TAIL_LINES ? n - LOG_TAIL_LINES : 0; i < n; i++)
                if (lines[i % LOG_TAIL_LINES])
                        fprintf(stderr, "  %s", lines[i % LOG_TAIL_LINES]);
        for (size_t i = 0; i < LOG_TAIL_LINES; i++)
                free(lines[i]);
}

/* Stop our broker (SIGTERM); it must exit with 0. Remove its directory unless keep. */
static void broker_stop(struct soak *s, bool keep)
{
        if (s->broker_child > 0) {
                struct child c = {.pid = s->broker_child};
                char why[64];
                int status;

                kill(s->broker_child, SIGTERM);
                status = child_reap(&c, REAP_TIMEOUT_MS);
                s->broker_child = 0;
                if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
                        describe_status(status, why, sizeof(why));
                        soak_failure(s, "ipcbusd ended with %s after SIGTERM", why);
                        keep = true;
                }
        }
        if (!s->tmpdir[0])
                return;
        if (keep) {
                broker_log_tail(s);
                return;
        }
        unlink(s->log_path);
        if (s->owned_address[0]) {
                char path[sizeof(s->tmpdir) + 8];

                snprintf(path, sizeof(path), "%s/bus", s->tmpdir);
                unlink(path);
        }
        rmdir(s->tmpdir);
}

/* The broker's pid: GetConnectionCredentials of the driver itself, asked on bus. */
static int broker_get_pid(struct soak *s, ipcbus_bus *bus)
{
        ipcbus_message *reply = NULL;
        ipcbus_error e = IPCBUS_ERROR_NULL;
        struct json_object *obj = NULL, *pid;
        int r;

        r = ipcbus_call(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE,
                        "GetConnectionCredentials", "{\"name\":\"" IPCBUS_DRIVER_NAME "\"}", IPCBUS_TIMEOUT_DEFAULT,
                        &reply, &e);
        if (r >= 0) {
                obj = json_tokener_parse(ipcbus_message_get_body(reply, NULL));
                if (obj && json_object_object_get_ex(obj, "pid", &pid) && json_object_is_type(pid, json_type_int) &&
                    json_object_get_int64(pid) > 0)
                        s->broker_pid = json_object_get_int64(pid);
                else
                        r = -EBADMSG;
        }
        if (r < 0)
                fprintf(stderr, "ipc-soak: GetConnectionCredentials: %s\n", e.name ? e.name : ipcbus_strerror(r));
        json_object_put(obj);
        ipcbus_error_free(&e);
        ipcbus_message_unref(reply);
        return r;
}

/* Descriptors (entries of /proc/PID/fd) and VmRSS of the broker. Returns 0 or negative errno. */
static int broker_stats_read(const struct soak *s, struct broker_stats *ret)
{
        char path[64], line[256];
        struct dirent *de;
        int64_t fds = 0, rss = -1;
        FILE *f;
        DIR *d;

        snprintf(path, sizeof(path), "/proc/%" PRId64 "/fd", s->broker_pid);
        d = opendir(path);
        if (!d)
                return -errno;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        fds++;
        closedir(d);
        snprintf(path, sizeof(path), "/proc/%" PRId64 "/status", s->broker_pid);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmRSS: %" SCNd64 " kB", &rss) == 1)
                        break;
        fclose(f);
        if (rss < 0)
                return -ENODATA;
        *ret = (struct broker_stats){.fds = fds, .rss_kb = rss};
        return 0;
}

static void broker_sample_peak(struct soak *s)
{
        struct broker_stats now;

        if (broker_stats_read(s, &now) < 0)
                return;
        if (now.fds > s->peak.fds)
                s->peak.fds = now.fds;
        if (now.rss_kb > s->peak.rss_kb)
                s->peak.rss_kb = now.rss_kb;
}

/*
 * Learn the broker's pid and its idle figures: descriptors and VmRSS once the
 * connection used to ask has gone again. Returns 0 or negative errno.
 */
static int broker_measure_idle(struct soak *s)
{
        struct broker_stats connected = {}, now = {};
        ipcbus_bus *bus = NULL;
        int r;

        r = ipcbus_open_address(s->address, &bus);
        if (r < 0) {
                fprintf(stderr, "ipc-soak: cannot connect to %s: %s\n", s->address, ipcbus_strerror(r));
                return r;
        }
        r = broker_get_pid(s, bus);
        if (r >= 0)
                r = broker_stats_read(s, &connected);
        ipcbus_unref(bus);
        for (int waited = 0; r >= 0; waited += TICK_MS) {
                r = broker_stats_read(s, &now);
                if (r < 0 || now.fds < connected.fds || waited >= READY_TIMEOUT_MS)
                        break;
                sleep_ms(TICK_MS);
        }
        if (r < 0) {
                if (s->broker_pid > 0)
                        fprintf(stderr, "ipc-soak: cannot read /proc/%" PRId64 ": %s\n", s->broker_pid, strerror(-r));
                return r;
        }
        s->idle = s->peak = now;
        return 0;
}

/* ---- the run -------------------------------------------------------------- */

/* Raise RLIMIT_NOFILE for the broker we start and the client processes. */
static int raise_nofile(rlim_t want)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return -errno;
        if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= want)
                return 0;
        rl.rlim_cur = want;
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
                rl.rlim_max = want; /* only root may; otherwise the error says why */
        return setrlimit(RLIMIT_NOFILE, &rl) < 0 ? -errno : 0;
}

/* Share the clients out: ledger processes of at most CLIENTS_PER_PROC, and the victims. */
static int soak_plan(struct soak *s)
{
        unsigned victims = s->n_clients / VICTIM_SHARE, ledger = s->n_clients - victims, id = 0;
        unsigned n_procs;

        s->n_victim_procs = victims < VICTIM_PROCS ? victims : VICTIM_PROCS;
        s->n_ledger_procs = (ledger + CLIENTS_PER_PROC - 1) / CLIENTS_PER_PROC;
        n_procs = s->n_ledger_procs + s->n_victim_procs;
        s->cfgs = calloc(n_procs, sizeof(*s->cfgs));
        s->procs = calloc(n_procs, sizeof(*s->procs));
        if (!s->cfgs || !s->procs)
                return -ENOMEM;
        for (unsigned i = 0; i < n_procs; i++) {
                bool victim = i >= s->n_ledger_procs;
                unsigned n = victim ? s->n_victim_procs : s->n_ledger_procs, j = victim ? i - s->n_ledger_procs : i;
                unsigned total = victim ? victims : ledger;

                s->cfgs[i] = (struct soak_client_config){
                        .address = s->address,
                        .first_id = id,
                        .n_clients = total / n + (j < total % n),
                        .n_services = s->n_services,
                        .seed = s->seed,
                        .victim = victim,
                };
                id += s->cfgs[i].n_clients;
                s->procs[i] = (struct child){.ctl_fd = -1, .report_fd = -1};
        }
        for (unsigned k = 0; k < s->n_services; k++)
                s->services[k] = (struct child){.ctl_fd = -1, .report_fd = -1};
        return 0;
}

/* Collect the children that died during the load; schedule their restart. */
static void soak_reap(struct soak *s, uint64_t now)
{
        unsigned n_procs = s->n_ledger_procs + s->n_victim_procs;
        pid_t pid;
        int status;

        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
                struct child *c = NULL;
                char why[64], who[64];

                describe_status(status, why, sizeof(why));
                if (pid == s->broker_child) {
                        s->broker_child = 0;
                        s->broker_died = true;
                        soak_failure(s, "ipcbusd died during the run (%s)", why);
                        fprintf(stderr, "ipc-soak: ipcbusd died: %s\n", why);
                        continue;
                }
                for (unsigned k = 0; !c && k < s->n_services; k++)
                        if (s->services[k].pid == pid) {
                                c = &s->services[k];
                                snprintf(who, sizeof(who), "service S%u", k);
                                c->restart_at_ns = now + rng_below(&s->rng, SERVICE_RESTART_MAX_MS + 1) * 1000000u;
                        }
                for (unsigned i = 0; !c && i < n_procs; i++)
                        if (s->procs[i].pid == pid) {
                                c = &s->procs[i];
                                snprintf(who, sizeof(who), "%s process %u", s->cfgs[i].victim ? "victim" : "client", i);
                                c->restart_at_ns = s->cfgs[i].victim ? now : UINT64_MAX;
                        }
                if (!c)
                        continue;
                c->pid = 0;
                child_close_ctl(c);
                if (!c->killed) {
                        s->unexpected_exits++;
                        fprintf(stderr, "ipc-soak: %s ended on its own: %s\n", who, why);
                }
        }
}

/* SIGKILL a random running child among n; returns whether one was. */
static bool kill_one(struct soak *s, struct child *children, unsigned n)
{
        unsigned start = (unsigned) rng_below(&s->rng, n);

        for (unsigned i = 0; i < n; i++) {
                struct child *c = &children[(start + i) % n];

                if (c->pid > 0 && !c->killed) {
                        kill(c->pid, SIGKILL);
                        c->killed = true;
                        return true;
                }
        }
        return false;
}

/* Restart what is due; kill a service or a victim process when it is time. */
static void soak_chaos(struct soak *s, uint64_t now, uint64_t *next_service_kill, uint64_t *next_victim_kill)
{
        for (unsigned k = 0; k < s->n_services; k++) {
                struct child *c = &s->services[k];

                if (c->pid == 0 && now >= c->restart_at_ns && soak_spawn(s, ROLE_SERVICE, k) < 0)
                        c->restart_at_ns = now + 1000000000u;
        }
        for (unsigned i = s->n_ledger_procs; i < s->n_ledger_procs + s->n_victim_procs; i++) {
                struct child *c = &s->procs[i];

                if (c->pid == 0 && now >= c->restart_at_ns && soak_spawn(s, ROLE_VICTIM, i) < 0)
                        c->restart_at_ns = now + 1000000000u;
        }
        if (now >= *next_service_kill) {
                if (kill_one(s, s->services, s->n_services))
                        s->service_kills++;
                *next_service_kill = now + rng_below(&s->rng, SERVICE_KILL_MAX_MS + 1) * 1000000u;
        }
        if (s->n_victim_procs > 0 && now >= *next_victim_kill) {
                if (kill_one(s, s->procs + s->n_ledger_procs, s->n_victim_procs))
                        s->victim_kills++;
                *next_victim_kill = now + rng_below(&s->rng, VICTIM_KILL_MAX_MS + 1) * 1000000u;
        }
}

/* Start everything and keep the chaos going for the duration. Returns 0 or negative errno. */
static int soak_load(struct soak *s)
{
        uint64_t start = soak_now_ns(), end = start + s->duration_s * UINT64_C(1000000000);
        uint64_t next_service_kill = start + SERVICE_KILL_MAX_MS * UINT64_C(1000000) / 2;
        uint64_t next_victim_kill = start + VICTIM_KILL_MAX_MS * UINT64_C(1000000) / 2;
        uint64_t next_sample = start, next_progress = start + PROGRESS_MS * UINT64_C(1000000);
        int r = 0;

        for (unsigned k = 0; r >= 0 && k < s->n_services; k++)
                r = soak_spawn(s, ROLE_SERVICE, k);
        if (r >= 0)
                sleep_ms(SERVICES_START_MS);
        for (unsigned i = 0; r >= 0 && i < s->n_ledger_procs + s->n_victim_procs; i++)
                r = soak_spawn(s, s->cfgs[i].victim ? ROLE_VICTIM : ROLE_CLIENTS, i);
        if (r < 0) {
                fprintf(stderr, "ipc-soak: cannot start the processes: %s\n", strerror(-r));
                soak_failure(s, "could not start the processes");
                return r;
        }
        for (uint64_t now = soak_now_ns(); now < end && !interrupted && !s->broker_died; now = soak_now_ns()) {
                soak_reap(s, now);
                soak_chaos(s, now, &next_service_kill, &next_victim_kill);
                if (now >= next_sample) {
                        broker_sample_peak(s);
                        next_sample = now + SAMPLE_MS * UINT64_C(1000000);
                }
                if (now >= next_progress) {
                        struct broker_stats st = {};

                        broker_stats_read(s, &st);
                        fprintf(stderr,
                                "ipc-soak: %" PRIu64 "/%u s: broker fds=%" PRId64 " rss=%" PRId64 " kB; killed %" PRIu64
                                " services, %" PRIu64 " victim processes\n",
                                (now - start) / 1000000000u, s->duration_s, st.fds, st.rss_kb, s->service_kills,
                                s->victim_kills);
                        next_progress = now + PROGRESS_MS * UINT64_C(1000000);
                }
                sleep_ms(TICK_MS);
        }
        soak_reap(s, soak_now_ns());
        return 0;
}

static void ledger_add(struct soak_ledger *t, const struct soak_ledger *l)
{
        t->n_clients += l->n_clients;
        t->calls += l->calls;
        t->returns += l->returns;
        t->bad_returns += l->bad_returns;
        for (int e = 0; e < SOAK_ERR_MAX; e++)
                t->errors[e] += l->errors[e];
        for (unsigned i = 0; i < SOAK_OTHER_NAMES && l->other[i].name[0]; i++)
                soak_named_add(t->other, l->other[i].name, l->other[i].count);
        t->driver_calls += l->driver_calls;
        t->driver_returns += l->driver_returns;
        t->driver_errors += l->driver_errors;
        t->abandoned += l->abandoned;
        t->unanswered += l->unanswered;
        t->unexpected_replies += l->unexpected_replies;
        t->unexpected_messages += l->unexpected_messages;
        t->signals += l->signals;
        t->bad_signals += l->bad_signals;
        t->connects += l->connects;
        t->connect_failures += l->connect_failures;
        t->hangups += l->hangups;
        t->drops += l->drops;
        t->partial_frames += l->partial_frames;
        if (l->max_answer_ms > t->max_answer_ms)
                t->max_answer_ms = l->max_answer_ms;
}

/* Every call sent ends in exactly one way (soak.h); a ledger that does not add up is a bug here. */
static bool ledger_balanced(const struct soak_ledger *l)
{
        uint64_t ended =
                l->returns + l->bad_returns + l->driver_returns + l->driver_errors + l->abandoned + l->unanswered;

        for (int e = 0; e < SOAK_ERR_MAX; e++)
                ended += l->errors[e];
        return ended == l->calls + l->driver_calls;
}

/* Read a ledger process's report, waiting until deadline_ns. Returns 0 or negative errno. */
static int ledger_read(struct child *c, uint64_t deadline_ns, struct soak_ledger *ret)
{
        struct pollfd p = {.fd = c->report_fd, .events = POLLIN};
        uint64_t now = soak_now_ns();
        ssize_t n;

        if (c->report_fd < 0)
                return -EBADF;
        if (poll(&p, 1, now < deadline_ns ? (int) ((deadline_ns - now) / 1000000u) : 0) <= 0)
                return -ETIMEDOUT;
        do
                n = read(c->report_fd, ret, sizeof(*ret));
        while (n < 0 && errno == EINTR);
        return n == (ssize_t) sizeof(*ret) ? 0 : n < 0 ? -errno : -EPIPE;
}

/*
 * Stop the load: victims are killed, the ledger processes let their calls
 * settle and report, then the services stop. Every process is gone after.
 */
static void soak_stop(struct soak *s)
{
        uint64_t deadline = soak_now_ns() + LEDGER_TIMEOUT_MS * UINT64_C(1000000);
        char why[64];

        for (unsigned i = s->n_ledger_procs; i < s->n_ledger_procs + s->n_victim_procs; i++) {
                struct child *c = &s->procs[i];

                if (c->pid > 0)
                        kill(c->pid, SIGKILL);
                child_reap(c, REAP_TIMEOUT_MS);
                child_close_ctl(c);
        }
        for (unsigned i = 0; i < s->n_ledger_procs; i++)
                child_close_ctl(&s->procs[i]);
        for (unsigned i = 0; i < s->n_ledger_procs; i++) {
                struct child *c = &s->procs[i];
                struct soak_ledger l;
                int r = ledger_read(c, deadline, &l), status;

                if (r < 0) {
                        fprintf(stderr, "ipc-soak: client process %u sent no ledger: %s\n", i, strerror(-r));
                        soak_failure(s, "client process %u sent no ledger", i);
                } else {
                        ledger_add(&s->total, &l);
                        if (l.error < 0)
                                soak_failure(s, "client process %u failed: %s", i, strerror(-l.error));
                }
                if (c->pid > 0) {
                        status = child_reap(c, REAP_TIMEOUT_MS);
                        if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
                                describe_status(status, why, sizeof(why));
                                soak_failure(s, "client process %u ended with %s", i, why);
                        }
                }
                if (c->report_fd >= 0)
                        close(c->report_fd);
                c->report_fd = -1;
        }
        for (unsigned k = 0; k < s->n_services; k++)
                child_close_ctl(&s->services[k]);
        for (unsigned k = 0; k < s->n_services; k++) {
                struct child *c = &s->services[k];
                int status;

                if (c->pid <= 0)
                        continue;
                status = child_reap(c, REAP_TIMEOUT_MS);
                if (!c->killed && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
                        describe_status(status, why, sizeof(why));
                        soak_failure(s, "service S%u ended with %s", k, why);
                }
        }
}

/* Wait for the broker to give back what the load made it hold (or for BROKER_SETTLE_MS). */
static void broker_settle(struct soak *s)
{
        for (int waited = 0;; waited += TICK_MS) {
                if (broker_stats_read(s, &s->end) < 0) {
                        s->end = (struct broker_stats){.fds = -1, .rss_kb = -1};
                        return;
                }
                if ((s->end.fds == s->idle.fds && s->end.rss_kb <= s->idle.rss_kb + RSS_MARGIN_KB) ||
                    waited >= BROKER_SETTLE_MS)
                        return;
                sleep_ms(TICK_MS);
        }
}

/* ---- results ------------------------------------------------------------------ */

static void result_line(const char *scenario, uint64_t value, const char *unit, uint64_t lost, uint64_t failed,
                        const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void result_line(const char *scenario, uint64_t value, const char *unit, uint64_t lost, uint64_t failed,
                        const char *fmt, ...)
{
        va_list ap;

        printf("RESULT broker=ipcbus scenario=%s value=%" PRIu64 " unit=%s", scenario, value, unit);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        if (lost)
                printf(" lost=%" PRIu64, lost);
        if (failed)
                printf(" failed=%" PRIu64, failed);
        putchar('\n');
        fflush(stdout);
}

/* Print the RESULT lines and record every failure they show. */
static void soak_results(struct soak *s)
{
        const struct soak_ledger *t = &s->total;
        uint64_t answered = t->returns + t->bad_returns, failed;
        bool balanced = ledger_balanced(t);
        char others[SOAK_OTHER_NAMES * 96] = "";

        for (int e = 0; e < SOAK_ERR_MAX; e++)
                answered += t->errors[e];
        for (unsigned i = 0; i < SOAK_OTHER_NAMES && t->other[i].name[0]; i++)
                snprintf(others + strlen(others), sizeof(others) - strlen(others), " %s=%" PRIu64, t->other[i].name,
                         t->other[i].count);

        failed = t->bad_returns + t->errors[SOAK_ERR_OTHER] + t->unexpected_replies + !balanced + (answered == 0);
        result_line("soak_calls", answered, "calls", t->unanswered, failed,
                    " duration_s=%u clients=%u services=%u calls_per_s=%.0f returns=%" PRIu64 " %s=%" PRIu64
                    " %s=%" PRIu64 " %s=%" PRIu64 " %s=%" PRIu64 "%s abandoned=%" PRIu64 " max_answer_ms=%" PRIu64,
                    s->duration_s, s->n_clients, s->n_services, (double) t->calls / s->duration_s, t->returns,
                    soak_error_key(SOAK_ERR_NO_REPLY), t->errors[SOAK_ERR_NO_REPLY], soak_error_key(SOAK_ERR_TIMEOUT),
                    t->errors[SOAK_ERR_TIMEOUT], soak_error_key(SOAK_ERR_SERVICE_UNKNOWN),
                    t->errors[SOAK_ERR_SERVICE_UNKNOWN], soak_error_key(SOAK_ERR_OTHER), t->errors[SOAK_ERR_OTHER],
                    others, t->abandoned, t->max_answer_ms);
        if (t->unanswered)
                soak_failure(s, "%" PRIu64 " calls without an answer", t->unanswered);
        if (t->bad_returns || t->errors[SOAK_ERR_OTHER] || t->unexpected_replies)
                soak_failure(s, "wrong answers: %" PRIu64 " bodies, %" PRIu64 " other errors, %" PRIu64 " unexpected",
                             t->bad_returns, t->errors[SOAK_ERR_OTHER], t->unexpected_replies);
        if (!balanced)
                soak_failure(s, "the ledger does not add up");
        if (answered == 0)
                soak_failure(s, "no call was answered");

        failed = t->driver_errors + t->hangups + t->connect_failures + t->unexpected_messages + s->unexpected_exits;
        result_line("soak_connections", t->connects, "connections", 0, failed,
                    " driver_calls=%" PRIu64 " driver_errors=%" PRIu64 " hangups=%" PRIu64 " connect_failures=%" PRIu64
                    " unexpected_messages=%" PRIu64 " drops=%" PRIu64 " partial_frames=%" PRIu64
                    " service_kills=%" PRIu64 " victim_kills=%" PRIu64 " unexpected_exits=%" PRIu64,
                    t->driver_calls, t->driver_errors, t->hangups, t->connect_failures, t->unexpected_messages,
                    t->drops, t->partial_frames, s->service_kills, s->victim_kills, s->unexpected_exits);
        if (failed)
                soak_failure(s,
                             "connections: %" PRIu64 " driver errors, %" PRIu64 " hang-ups, %" PRIu64
                             " connect failures, %" PRIu64 " unexpected messages, %" PRIu64 " unexpected exits",
                             t->driver_errors, t->hangups, t->connect_failures, t->unexpected_messages,
                             s->unexpected_exits);

        result_line("soak_signals", t->signals, "signals", 0, t->bad_signals + (t->signals == 0),
                    " unexpected=%" PRIu64, t->bad_signals);
        if (t->bad_signals)
                soak_failure(s, "%" PRIu64 " Tick signals to clients that did not ask", t->bad_signals);
        if (t->signals == 0)
                soak_failure(s, "no Tick signal arrived");

        result_line("soak_broker_fds", (uint64_t) (s->end.fds < 0 ? 0 : s->end.fds), "fds", 0,
                    s->end.fds != s->idle.fds, " idle=%" PRId64 " peak=%" PRId64 " pid=%" PRId64, s->idle.fds,
                    s->peak.fds, s->broker_pid);
        if (s->end.fds != s->idle.fds)
                soak_failure(s, "the broker holds %" PRId64 " descriptors, %" PRId64 " when idle", s->end.fds,
                             s->idle.fds);

        result_line("soak_broker_rss_kb", (uint64_t) (s->end.rss_kb < 0 ? 0 : s->end.rss_kb), "kB", 0,
                    s->end.rss_kb < 0 || s->end.rss_kb > s->idle.rss_kb + RSS_MARGIN_KB,
                    " idle=%" PRId64 " peak=%" PRId64 " limit=%" PRId64, s->idle.rss_kb, s->peak.rss_kb,
                    s->idle.rss_kb + RSS_MARGIN_KB);
        if (s->end.rss_kb < 0 || s->end.rss_kb > s->idle.rss_kb + RSS_MARGIN_KB)
                soak_failure(s, "the broker's RSS is %" PRId64 " kB, %" PRId64 " kB when idle", s->end.rss_kb,
                             s->idle.rss_kb);
}

/* ---- main --------------------------------------------------------------------- */

static void help(void)
{
        printf("Usage: ipc-soak [OPTIONS]\n"
               "\n"
               "Keep many clients calling and subscribing on one broker for a while, with\n"
               "clients and services disconnecting abruptly and being killed mid-call; then\n"
               "check that every call got a reply or an error and that the broker's\n"
               "descriptors and memory came back to their idle level. Prints RESULT lines\n"
               "(as ipc-bench does); exit status 0 when everything held, 1 otherwise.\n"
               "\n"
               "Options:\n"
               "  --duration SEC   how long the load runs (default 600)\n"
               "  --clients N      client connections (default 1000)\n"
               "  --services K     services, 1 to %d (default 8)\n"
               "  --address ADDR   use the running bus at ADDR (its pid must be readable in /proc)\n"
               "  --ipcbusd PATH   the broker to start when no --address (default: $IPCBUSD,\n"
               "                   else ipcbusd from PATH)\n"
               "  --seed S         seed of the random choices (default: from the clock)\n"
               "  -h, --help       show this help\n",
               SOAK_SERVICES_MAX);
}

/* An unsigned number in [min, max]; false if s is not one. */
static bool parse_number(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
        char *end;
        unsigned long long v;

        errno = 0;
        v = strtoull(s, &end, 0);
        if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
                return false;
        *ret = v;
        return true;
}

int main(int argc, char **argv)
{
        enum { OPT_DURATION = 0x100, OPT_CLIENTS, OPT_SERVICES, OPT_ADDRESS, OPT_IPCBUSD, OPT_SEED };
        static const struct option options[] = {
                {"duration", required_argument, NULL, OPT_DURATION},
                {"clients", required_argument, NULL, OPT_CLIENTS},
                {"services", required_argument, NULL, OPT_SERVICES},
                {"address", required_argument, NULL, OPT_ADDRESS},
                {"ipcbusd", required_argument, NULL, OPT_IPCBUSD},
                {"seed", required_argument, NULL, OPT_SEED},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        struct soak s = {.duration_s = 600, .n_clients = 1000, .n_services = 8};
        struct sigaction sa = {.sa_handler = on_signal};
        uint64_t v;
        int opt, r;

        s.seed = soak_now_ns() ^ ((uint64_t) getpid() << 32);
        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (opt) {
                case OPT_DURATION:
                        if (!parse_number(optarg, 1, 7 * 24 * 3600, &v))
                                goto bad_value;
                        s.duration_s = (unsigned) v;
                        break;
                case OPT_CLIENTS:
                        if (!parse_number(optarg, 1, 1000000, &v))
                                goto bad_value;
                        s.n_clients = (unsigned) v;
                        break;
                case OPT_SERVICES:
                        if (!parse_number(optarg, 1, SOAK_SERVICES_MAX, &v))
                                goto bad_value;
                        s.n_services = (unsigned) v;
                        break;
                case OPT_ADDRESS:
                        s.address = optarg;
                        break;
                case OPT_IPCBUSD:
                        s.ipcbusd = optarg;
                        break;
                case OPT_SEED:
                        if (!parse_number(optarg, 0, UINT64_MAX, &v))
                                goto bad_value;
                        s.seed = v;
                        break;
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                default:
                        fputs("(see ipc-soak --help)\n", stderr);
                        return EXIT_USAGE;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "ipc-soak: unexpected argument '%s' (see ipc-soak --help)\n", argv[optind]);
                return EXIT_USAGE;
        }

        signal(SIGPIPE, SIG_IGN);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        rng_init(&s.rng, s.seed, 0, 0);
        fprintf(stderr, "ipc-soak: %u clients, %u services, %u s, seed %" PRIu64 "\n", s.n_clients, s.n_services,
                s.duration_s, s.seed);

        /* the broker we start inherits the limit: it holds every client's socket */
        r = raise_nofile((rlim_t) s.n_clients + 1024);
        if (r < 0) {
                fprintf(stderr, "ipc-soak: cannot raise RLIMIT_NOFILE to %u: %s\n", s.n_clients + 1024, strerror(-r));
                return EXIT_FAILURE;
        }
        if (!s.address) {
                r = broker_start(&s);
                if (r < 0) {
                        fprintf(stderr, "ipc-soak: cannot start ipcbusd: %s\n", strerror(-r));
                        broker_stop(&s, true);
                        return EXIT_FAILURE;
                }
        }
        r = broker_measure_idle(&s);
        if (r >= 0)
                r = soak_plan(&s);
        if (r < 0) {
                broker_stop(&s, true);
                return EXIT_FAILURE;
        }
        fprintf(stderr, "ipc-soak: broker pid %" PRId64 " at %s: idle %" PRId64 " fds, %" PRId64 " kB\n", s.broker_pid,
                s.address, s.idle.fds, s.idle.rss_kb);

        soak_load(&s);
        soak_stop(&s);
        if (!s.broker_died)
                broker_settle(&s);
        soak_results(&s);
        if (interrupted)
                soak_failure(&s, "interrupted");
        broker_stop(&s, s.failures[0] != '\0');
        free(s.cfgs);
        free(s.procs);
        if (s.failures[0]) {
                printf("ipc-soak: FAIL: %s\n", s.failures);
                return EXIT_FAILURE;
        }
        printf("ipc-soak: PASS\n");
        return EXIT_SUCCESS;

bad_value:
        fprintf(stderr, "ipc-soak: invalid value '%s' for --%s (see ipc-soak --help)\n", optarg,
                options[opt - OPT_DURATION].name);
        return EXIT_USAGE;
}
