/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon/launch/activation.h"
#include "daemon/launch/service.h"
#include "daemon/log.h"
#include "protocol/ipcbus/wire.h"
#include "util/util.h"

#ifndef SYSTEMCTL
#define SYSTEMCTL "/usr/bin/systemctl"
#endif
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* A process the broker started, until it is reaped. */
struct activation_child {
        struct list link;
        pid_t pid;
        struct activation *act; /* while its activation is in progress; NULL after */
        bool quiet;             /* a look at a unit (systemctl show): reaped without a log line */
        char what[300];         /* "org.x.Y (/usr/bin/y)", for logs */
};

/* Looks at a started unit: first after this, then each twice as late, up to the maximum. */
#define WATCH_FIRST_MS 20u
#define WATCH_MAX_MS 1000u

/* What a child reports through its error pipe before it exits. */
struct child_error {
        int step; /* enum child_step */
        int error;
};

enum child_step {
        STEP_SETSID,
        STEP_STDIN,
        STEP_GROUPS,
        STEP_GID,
        STEP_UID,
        STEP_EXEC,
};

static const char *const step_names[] = {
        [STEP_SETSID] = "setsid",
        [STEP_STDIN] = "opening /dev/null",
        [STEP_GROUPS] = "setting the supplementary groups",
        [STEP_GID] = "setting the group id",
        [STEP_UID] = "setting the user id",
        [STEP_EXEC] = "exec",
};

/* Who a program runs as, looked up before fork. */
struct run_as {
        bool switch_user; /* false: the broker's own credentials */
        uid_t uid;
        gid_t gid;
        gid_t groups[64];
        int n_groups;
        char name[64];
        char home[256];
};

/* ---- environment ------------------------------------------------------------- */

struct env {
        char **vars; /* "KEY=VALUE", NULL-terminated */
        size_t n;
};

static void env_free(struct env *e)
{
        for (size_t i = 0; i < e->n; i++)
                free(e->vars[i]);
        free(e->vars);
        e->vars = NULL;
        e->n = 0;
}

static bool env_key_is(const char *var, const char *key, size_t key_len)
{
        return strncmp(var, key, key_len) == 0 && var[key_len] == '=';
}

/* Set KEY to VALUE, replacing an earlier value. Returns 0 or -ENOMEM. */
static int env_set(struct env *e, const char *key, const char *value)
{
        size_t key_len = strlen(key);
        char *var, **vars;

        if (asprintf(&var, "%s=%s", key, value) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < e->n; i++)
                if (env_key_is(e->vars[i], key, key_len)) {
                        free(e->vars[i]);
                        e->vars[i] = var;
                        return 0;
                }
        vars = realloc(e->vars, (e->n + 2) * sizeof(*vars));
        if (!vars) {
                free(var);
                return -ENOMEM;
        }
        e->vars = vars;
        e->vars[e->n++] = var;
        e->vars[e->n] = NULL;
        return 0;
}

/* env_set with "KEY=VALUE" */
static int env_put(struct env *e, const char *var)
{
        const char *eq = strchr(var, '=');
        char key[256];

        if (!eq || (size_t) (eq - var) >= sizeof(key))
                return 0;
        memcpy(key, var, (size_t) (eq - var));
        key[eq - var] = '\0';
        return env_set(e, key, eq + 1);
}

int activation_update_environment(struct activation_registry *reg, const char *const *keys, const char *const *values,
                                  size_t n)
{
        struct env e = {0};
        int r = 0;

        for (size_t i = 0; r >= 0 && i < reg->n_env; i++)
                r = env_put(&e, reg->env[i]);
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = env_set(&e, keys[i], values[i]);
        if (r >= 0 && e.n > ACTIVATION_ENV_MAX)
                r = ACTIVATION_E_ENV_FULL;
        if (r) {
                env_free(&e);
                return r;
        }
        for (size_t i = 0; i < reg->n_env; i++)
                free(reg->env[i]);
        free(reg->env);
        reg->env = e.vars;
        reg->n_env = e.n;
        return 0;
}

/* The clean environment of a started program (CONFIG.md): the basics, then the activation environment. */
static int build_env(struct activation_registry *reg, const struct run_as *ra, struct env *e)
{
        const char *bus_type = reg->type == BUS_TYPE_SYSTEM ? "system" : "session";
        const char *runtime_dir = getenv("XDG_RUNTIME_DIR");
        int r;

        r = env_set(e, "PATH", DEFAULT_PATH);
        if (r >= 0 && ra->home[0])
                r = env_set(e, "HOME", ra->home);
        if (r >= 0 && ra->name[0])
                r = env_set(e, "USER", ra->name);
        if (r >= 0 && ra->name[0])
                r = env_set(e, "LOGNAME", ra->name);
        if (r >= 0 && reg->type == BUS_TYPE_SESSION && runtime_dir && runtime_dir[0] == '/')
                r = env_set(e, "XDG_RUNTIME_DIR", runtime_dir);
        if (r >= 0 && reg->address[0])
                r = env_set(e, reg->type == BUS_TYPE_SYSTEM ? "IPCBUS_SYSTEM_ADDRESS" : "IPCBUS_ADDRESS", reg->address);
        for (size_t i = 0; r >= 0 && i < reg->n_env; i++)
                r = env_put(e, reg->env[i]);
        /* Last, so the activation environment cannot misdirect the service. */
        if (r >= 0 && reg->address[0])
                r = env_set(e, "IPCBUS_STARTER_ADDRESS", reg->address);
        if (r >= 0)
                r = env_set(e, "IPCBUS_STARTER_BUS_TYPE", bus_type);
        return r;
}

/* A copy of the broker's own environment (for systemctl, which needs it to find the service manager). */
static int copy_environ(struct env *e)
{
        extern char **environ;
        int r = 0;

        for (char **v = environ; r >= 0 && v && *v; v++)
                r = env_put(e, *v);
        if (r >= 0 && !e->vars)
                r = env_set(e, "PATH", DEFAULT_PATH);
        return r;
}

/* ---- the child ----------------------------------------------------------------- */

static _Noreturn void child_fail(int err_fd, enum child_step step)
{
        struct child_error ce = {.step = step, .error = errno};
        ssize_t n;

        do
                n = write(err_fd, &ce, sizeof(ce));
        while (n < 0 && errno == EINTR);
        _exit(127);
}

/* Close every descriptor from `from` up. */
static void close_from(int from)
{
        DIR *d;
        struct dirent *de;

        if (close_range((unsigned) from, ~0u, 0) == 0)
                return;
        d = opendir("/proc/self/fd");
        if (!d) {
                for (int fd = from; fd < 65536; fd++)
                        close(fd);
                return;
        }
        while ((de = readdir(d))) {
                int fd = atoi(de->d_name);

                if (fd >= from && fd != dirfd(d))
                        close(fd);
        }
        closedir(d);
}

/* In the forked child: a clean process, then exec. Never returns. */
static _Noreturn void child_exec(int err_fd, int out_fd, char *const *argv, char *const *envp, const struct run_as *ra)
{
        struct rlimit rl;
        sigset_t none;
        int fd;

        for (int sig = 1; sig < NSIG; sig++)
                signal(sig, SIG_DFL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (setsid() < 0)
                child_fail(err_fd, STEP_SETSID);

        fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0 || dup2(fd, STDIN_FILENO) < 0)
                child_fail(err_fd, STEP_STDIN);
        if (out_fd >= 0 && dup2(out_fd, STDOUT_FILENO) < 0)
                child_fail(err_fd, STEP_STDIN);
        /* The error pipe becomes fd 3 (still close-on-exec); everything above it goes. */
        if (err_fd != 3) {
                if (dup3(err_fd, 3, O_CLOEXEC) < 0)
                        child_fail(err_fd, STEP_STDIN);
                err_fd = 3;
        }
        close_from(4);

        /* Undo what the broker set up for itself: its OOM protection (a
         * system bus runs with OOMScoreAdjust=-900) and its descriptor limit
         * (raised for its many connections; select() wants FD_SETSIZE). */
        fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
                (void) !write(fd, "0", 1);
                close(fd);
        }
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > FD_SETSIZE) {
                rl.rlim_cur = FD_SETSIZE;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }

        if (ra->switch_user) {
                if (setgroups((size_t) ra->n_groups, ra->groups) < 0)
                        child_fail(err_fd, STEP_GROUPS);
                if (setresgid(ra->gid, ra->gid, ra->gid) < 0)
                        child_fail(err_fd, STEP_GID);
                if (setresuid(ra->uid, ra->uid, ra->uid) < 0)
                        child_fail(err_fd, STEP_UID);
        }
        if (!ra->home[0] || chdir(ra->home) < 0)
                (void) chdir("/");

        execve(argv[0], argv, envp);
        child_fail(err_fd, STEP_EXEC);
}

/* ---- the parent ---------------------------------------------------------------- */

/* Look up the user a program runs as. Returns 0, or -1 with the reason in msg. */
static int resolve_user(const struct service *s, struct run_as *ra, char *msg, size_t msg_size)
{
        const struct passwd *pw;
        char *end;
        unsigned long id;

        *ra = (struct run_as){0};
        if (!s->user) {
                pw = getpwuid(geteuid());
        } else {
                errno = 0;
                id = strtoul(s->user, &end, 10);
                pw = *end == '\0' && s->user[0] >= '0' && s->user[0] <= '9' && errno == 0 && id <= UINT32_MAX
                             ? getpwuid((uid_t) id)
                             : getpwnam(s->user);
                if (!pw) {
                        snprintf(msg, msg_size, "Cannot start %s: there is no user '%s'", s->name, s->user);
                        return -1;
                }
        }
        if (pw) {
                snprintf(ra->name, sizeof(ra->name), "%s", pw->pw_name);
                snprintf(ra->home, sizeof(ra->home), "%s", pw->pw_dir ? pw->pw_dir : "");
        }
        if (!s->user || pw->pw_uid == geteuid())
                return 0;

        if (geteuid() != 0) {
                snprintf(msg, msg_size, "Cannot start %s as user %s: only a broker running as root may switch users",
                         s->name, s->user);
                return -1;
        }
        ra->switch_user = true;
        ra->uid = pw->pw_uid;
        ra->gid = pw->pw_gid;
        ra->n_groups = (int) ELEMENTSOF(ra->groups);
        if (getgrouplist(pw->pw_name, pw->pw_gid, ra->groups, &ra->n_groups) < 0) {
                snprintf(msg, msg_size, "Cannot start %s as user %s: the user is in too many groups", s->name, s->user);
                return -1;
        }
        return 0;
}

static const char *systemctl_path(void)
{
        const char *p = getenv("IPCBUSD_SYSTEMCTL");

        return p && p[0] == '/' ? p : SYSTEMCTL;
}

static void activation_free(struct activation *a);
static void activation_watch_stop(struct activation *a);
static void activation_watch_schedule(struct activation *a, uint32_t delay_ms);
static int spawn(char *const *argv, char *const *envp, const struct run_as *ra, int out_fd, pid_t *ret_pid,
                 int *ret_fd);
static void activation_fail(struct activation *a, const char *error, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void activation_fail(struct activation *a, const char *error, const char *fmt, ...)
{
        struct activation_registry *reg = a->reg;
        char message[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(message, sizeof(message), fmt, ap);
        va_end(ap);
        log_warning("activation of %s failed: %s", a->name, message);
        reg->done(a, error, message, reg->userdata);
        activation_free(a);
}

static void activation_on_timeout(evutil_socket_t fd, short what, void *userdata)
{
        struct activation *a = userdata;

        if (a->owned) {
                log_info("activation of %s succeeded", a->name);
                a->reg->done(a, NULL, NULL, a->reg->userdata);
                activation_free(a);
                return;
        }
        if (a->pid > 0) {
                kill(a->pid, SIGTERM);
                activation_fail(a, IPCBUS_ERROR_SPAWN_TIMEOUT,
                                "%s (pid %d) did not own %s within %" PRIu32 " ms; it was sent SIGTERM",
                                a->service->unit ? "systemctl" : a->service->argv[0], (int) a->pid, a->name,
                                a->reg->timeout_ms);
        } else {
                activation_fail(a, IPCBUS_ERROR_SPAWN_TIMEOUT, "Nobody owned %s within %" PRIu32 " ms of starting %s",
                                a->name, a->reg->timeout_ms, a->service->unit ? a->service->unit : "it");
        }
}

static struct activation_child *child_of(struct activation *a)
{
        struct activation_child *c;

        list_for_each_entry(c, &a->reg->children, link)
                if (c->act == a)
                        return c;
        return NULL;
}

static void activation_free(struct activation *a)
{
        struct activation_child *c = child_of(a);

        if (c)
                c->act = NULL;
        map_remove(&a->reg->by_name, &a->node);
        if (a->timer)
                event_free(a->timer);
        if (a->status_fd >= 0)
                close(a->status_fd);
        activation_watch_stop(a);
        if (a->watch_timer)
                event_free(a->watch_timer);
        reply_owner_deinit(&a->replies);
        service_free(a->service);
        free(a->name);
        free(a);
}

void activation_owned(struct activation *a)
{
        if (a->owned)
                return;
        a->owned = true;
        event_del(a->timer);
        event_active(a->timer, EV_TIMEOUT, 0);
}

static bool activation_name_eq(const struct map_node *node, const void *key)
{
        return strcmp(container_of(node, struct activation, node)->name, key) == 0;
}

struct activation *activation_find(struct activation_registry *reg, const char *name)
{
        struct map_node *n = map_find(&reg->by_name, map_hash_string(name), activation_name_eq, name);

        return n ? container_of(n, struct activation, node) : NULL;
}

/* ---- watching a started unit ------------------------------------------------------ */

/* Stop the look under way, if any (its systemctl is reaped quietly when it exits). */
static void activation_watch_stop(struct activation *a)
{
        if (a->watch_read)
                event_free(a->watch_read);
        a->watch_read = NULL;
        if (a->watch_fd >= 0)
                close(a->watch_fd);
        a->watch_fd = -1;
}

/* The value of KEY=VALUE line `key` in text (copied into buf), or "" when absent. */
static const char *watch_value(const char *text, const char *key, char *buf, size_t size)
{
        size_t n = strlen(key);

        buf[0] = '\0';
        for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
                if (strncmp(p, key, n) == 0 && p[n] == '=') {
                        size_t len = strcspn(p + n + 1, "\n");

                        snprintf(buf, size, "%.*s", (int) len, p + n + 1);
                        break;
                }
        }
        return buf;
}

/*
 * What `systemctl show -p ActiveState,Result UNIT` said: a unit that is
 * failed or inactive will not own the name, and the activation fails at
 * once; otherwise the next look comes later.
 */
static void activation_watch_judge(struct activation *a)
{
        char state[64], result[64];

        a->watch_out[a->watch_len] = '\0';
        watch_value(a->watch_out, "ActiveState", state, sizeof(state));
        watch_value(a->watch_out, "Result", result, sizeof(result));
        if (strcmp(state, "failed") == 0 || strcmp(state, "inactive") == 0) {
                activation_fail(a, IPCBUS_ERROR_SPAWN_UNIT_FAILED,
                                "The unit %s of %s is %s (result: %s) before anyone owned the name", a->service->unit,
                                a->name, state, result[0] ? result : "unknown");
                return;
        }
        activation_watch_schedule(a, a->watch_delay_ms * 2 > WATCH_MAX_MS ? WATCH_MAX_MS : a->watch_delay_ms * 2);
}

static void activation_on_watch_read(evutil_socket_t fd, short what, void *userdata)
{
        struct activation *a = userdata;
        ssize_t n;

        n = read(fd, a->watch_out + a->watch_len, sizeof(a->watch_out) - 1 - a->watch_len);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return;
        if (n > 0) {
                a->watch_len += (size_t) n;
                if (a->watch_len < sizeof(a->watch_out) - 1)
                        return;
        }
        activation_watch_stop(a);
        activation_watch_judge(a); /* may free a */
}

/* Time for a look: run systemctl show with its output into a pipe the loop reads. */
static void activation_on_watch_timer(evutil_socket_t fd, short what, void *userdata)
{
        struct activation *a = userdata;
        struct activation_registry *reg = a->reg;
        struct activation_child *child = NULL;
        struct run_as ra = {0};
        struct env env = {0};
        char *argv[8] = {0};
        int out[2] = {-1, -1}, status_fd = -1;
        size_t i = 0;
        pid_t pid;

        if (a->owned || a->watch_fd >= 0)
                return;
        argv[i++] = (char *) systemctl_path();
        if (reg->type == BUS_TYPE_SESSION)
                argv[i++] = (char *) "--user";
        argv[i++] = (char *) "show";
        argv[i++] = (char *) "-p";
        argv[i++] = (char *) "ActiveState,Result";
        argv[i++] = a->service->unit;
        child = calloc(1, sizeof(*child));
        if (!child || copy_environ(&env) < 0 || pipe2(out, O_CLOEXEC) < 0 ||
            spawn(argv, env.vars, &ra, out[1], &pid, &status_fd) < 0) {
                log_warning("activation of %s: cannot look at the unit %s now: %s", a->name, a->service->unit,
                            strerror(errno));
                goto later;
        }
        close(status_fd); /* its exit is all the outcome there is */
        close(out[1]);
        out[1] = -1;
        a->watch_read = event_new(reg->base, out[0], EV_READ | EV_PERSIST, activation_on_watch_read, a);
        if (!a->watch_read || event_add(a->watch_read, NULL) < 0) {
                if (a->watch_read)
                        event_free(a->watch_read);
                a->watch_read = NULL;
        } else {
                a->watch_fd = out[0];
                out[0] = -1;
                a->watch_len = 0;
        }
        child->pid = pid;
        child->quiet = true;
        snprintf(child->what, sizeof(child->what), "%s (systemctl show %s)", a->name, a->service->unit);
        list_link_tail(&reg->children, &child->link);
        child = NULL;
        env_free(&env);
        if (a->watch_fd >= 0)
                return;
later:
        free(child);
        env_free(&env);
        if (out[0] >= 0)
                close(out[0]);
        if (out[1] >= 0)
                close(out[1]);
        activation_watch_schedule(a, WATCH_MAX_MS);
}

/* Look at a's unit again in delay_ms (libevent timers never block the loop). */
static void activation_watch_schedule(struct activation *a, uint32_t delay_ms)
{
        struct timeval tv = {.tv_sec = delay_ms / 1000, .tv_usec = (delay_ms % 1000) * 1000};

        if (!a->watch_timer)
                a->watch_timer = evtimer_new(a->reg->base, activation_on_watch_timer, a);
        if (!a->watch_timer)
                return; /* out of memory: the activation timeout still ends it */
        a->watch_delay_ms = delay_ms;
        evtimer_add(a->watch_timer, &tv);
}

/* The child of an activation exited before anyone owned the name. */
static void activation_child_exited(struct activation *a, int status)
{
        struct child_error ce;
        const char *unit = a->service->unit;
        pid_t pid = a->pid;
        ssize_t n;

        a->pid = 0;
        if (a->owned)
                return; /* it did its job */
        do
                n = read(a->status_fd, &ce, sizeof(ce));
        while (n < 0 && errno == EINTR);
        close(a->status_fd);
        a->status_fd = -1;

        if (n == (ssize_t) sizeof(ce) && ce.step >= 0 && ce.step <= STEP_EXEC) {
                const char *program = unit ? systemctl_path() : a->service->argv[0];

                if (ce.step == STEP_EXEC)
                        activation_fail(a, IPCBUS_ERROR_SPAWN_EXEC_FAILED, "Cannot execute %s to start %s: %s", program,
                                        a->name, strerror(ce.error));
                else
                        activation_fail(a, IPCBUS_ERROR_SPAWN_FAILED_TO_SETUP, "Cannot start %s: %s failed: %s",
                                        a->name, step_names[ce.step], strerror(ce.error));
                return;
        }
        if (unit) {
                if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
                        /* the unit is started; now its program must own the name, unless the unit fails */
                        activation_watch_schedule(a, WATCH_FIRST_MS);
                        return;
                }
                if (WIFEXITED(status))
                        activation_fail(a, IPCBUS_ERROR_SPAWN_UNIT_FAILED,
                                        "systemctl start %s failed with exit status %d while starting %s", unit,
                                        WEXITSTATUS(status), a->name);
                else
                        activation_fail(a, IPCBUS_ERROR_SPAWN_UNIT_FAILED,
                                        "systemctl start %s was killed by signal %d while starting %s", unit,
                                        WTERMSIG(status), a->name);
                return;
        }
        if (WIFEXITED(status))
                activation_fail(a, IPCBUS_ERROR_SPAWN_CHILD_EXITED,
                                "%s (pid %d) exited with status %d before owning %s", a->service->argv[0], (int) pid,
                                WEXITSTATUS(status), a->name);
        else
                activation_fail(a, IPCBUS_ERROR_SPAWN_CHILD_SIGNALED,
                                "%s (pid %d) was killed by signal %d (%s) before owning %s", a->service->argv[0],
                                (int) pid, WTERMSIG(status), strsignal(WTERMSIG(status)), a->name);
}

/* SIGCHLD: reap the broker's children; an activation whose child died fails (or, for systemctl, goes on). */
static void activation_on_sigchld(evutil_socket_t fd, short what, void *userdata)
{
        struct activation_registry *reg = userdata;
        struct activation_child *c, *tmp;

        list_for_each_entry_safe(c, tmp, &reg->children, link) {
                int status;
                pid_t r = waitpid(c->pid, &status, WNOHANG);

                if (r == 0 || (r < 0 && errno == EINTR))
                        continue;
                list_unlink(&c->link);
                if (r > 0 && c->act) {
                        activation_child_exited(c->act, status);
                } else if (r > 0 && !c->quiet) {
                        if (WIFEXITED(status))
                                log_info("%s (pid %d) exited with status %d", c->what, (int) c->pid,
                                         WEXITSTATUS(status));
                        else
                                log_info("%s (pid %d) was killed by signal %d", c->what, (int) c->pid,
                                         WTERMSIG(status));
                }
                free(c);
        }
}

int activation_registry_init(struct activation_registry *reg, struct event_base *base, enum bus_type type,
                             uint32_t timeout_ms, activation_done_fn done, void *userdata)
{
        *reg = (struct activation_registry){
                .base = base,
                .timeout_ms = timeout_ms,
                .type = type,
                .done = done,
                .userdata = userdata,
        };
        map_init(&reg->by_name);
        list_init(&reg->children);
        reg->sigchld = evsignal_new(base, SIGCHLD, activation_on_sigchld, reg);
        if (!reg->sigchld || evsignal_add(reg->sigchld, NULL) < 0)
                return -ENOMEM;
        return 0;
}

void activation_registry_deinit(struct activation_registry *reg)
{
        struct map_node *n, *next;
        struct activation_child *c;

        for (n = map_first(&reg->by_name); n; n = next) {
                next = map_next(&reg->by_name, n);
                activation_free(container_of(n, struct activation, node));
        }
        map_deinit(&reg->by_name);
        while ((c = list_first_entry(&reg->children, struct activation_child, link))) {
                list_unlink(&c->link);
                free(c);
        }
        if (reg->sigchld)
                event_free(reg->sigchld);
        reg->sigchld = NULL;
        for (size_t i = 0; i < reg->n_env; i++)
                free(reg->env[i]);
        free(reg->env);
        reg->env = NULL;
        reg->n_env = 0;
        free(reg->buckets);
        reg->buckets = NULL;
        reg->n_buckets = 0;
}

int activation_charge(struct activation_registry *reg, uid_t uid, uint32_t per_interval, uint32_t interval_ms,
                      int64_t now_ms)
{
        const uint64_t full = (uint64_t) per_interval * interval_ms;
        struct activation_bucket *b = NULL;

        /* Refill every bucket; a full one is as good as none. */
        for (size_t i = 0; i < reg->n_buckets;) {
                struct activation_bucket *x = &reg->buckets[i];
                uint64_t elapsed = now_ms > x->at_ms ? (uint64_t) (now_ms - x->at_ms) : 0;

                x->credit = elapsed >= full ? full : x->credit + elapsed * per_interval;
                if (x->credit > full)
                        x->credit = full;
                x->at_ms = now_ms;
                if (x->credit == full)
                        *x = reg->buckets[--reg->n_buckets];
                else
                        i++;
        }
        for (size_t i = 0; i < reg->n_buckets && !b; i++)
                if (reg->buckets[i].uid == uid)
                        b = &reg->buckets[i];
        if (!b) {
                struct activation_bucket *grown = realloc(reg->buckets, (reg->n_buckets + 1) * sizeof(*grown));

                if (!grown)
                        return -ENOMEM;
                reg->buckets = grown;
                b = &reg->buckets[reg->n_buckets++];
                *b = (struct activation_bucket){.uid = uid, .credit = full, .at_ms = now_ms};
        }
        if (b->credit < interval_ms)
                return ACTIVATION_E_RATE_LIMITED;
        b->credit -= interval_ms;
        return 0;
}

/*
 * fork and exec argv; the child reports a failure before exec through the
 * returned pipe. Its standard output is out_fd, or the broker's when -1.
 */
static int spawn(char *const *argv, char *const *envp, const struct run_as *ra, int out_fd, pid_t *ret_pid, int *ret_fd)
{
        int p[2];
        pid_t pid;

        sigset_t all, old;
        int saved;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        /* No signal may reach the broker's handlers in the child before it resets them. */
        sigfillset(&all);
        sigprocmask(SIG_SETMASK, &all, &old);
        pid = fork();
        saved = errno;
        if (pid == 0) {
                close(p[0]);
                child_exec(p[1], out_fd, argv, envp, ra);
        }
        sigprocmask(SIG_SETMASK, &old, NULL);
        if (pid < 0) {
                close(p[0]);
                close(p[1]);
                return -saved;
        }
        close(p[1]);
        *ret_pid = pid;
        *ret_fd = p[0];
        return 0;
}

/* A new activation of s, in reg's table, its timer not yet armed; NULL when memory ran out. */
static struct activation *activation_new(struct activation_registry *reg, const struct service *s)
{
        struct activation *a = calloc(1, sizeof(*a));

        if (!a || !(a->name = strdup(s->name)) || service_copy(s, &a->service) < 0 ||
            !(a->timer = evtimer_new(reg->base, activation_on_timeout, a)) ||
            map_add(&reg->by_name, &a->node, map_hash_string(a->name)) < 0) {
                if (a) {
                        if (a->timer)
                                event_free(a->timer);
                        service_free(a->service);
                        free(a->name);
                        free(a);
                }
                return NULL;
        }
        a->reg = reg;
        a->status_fd = -1;
        a->watch_fd = -1;
        list_init(&a->requests);
        reply_owner_init(&a->replies);
        return a;
}

/*
 * Remember the process a started (argv[0]) among reg's children. Returns 0,
 * or -1 with ret_message written when memory ran out: the process is killed
 * and reaped then, and a is still the caller's.
 */
static int activation_track_child(struct activation_registry *reg, struct activation *a, const struct service *s,
                                  char *const *argv, char *ret_message, size_t message_size)
{
        _cleanup_(freep) struct activation_child *child = NULL;

        /* Only now: a forked child that fails before exec has nothing of its own unreachable. */
        child = calloc(1, sizeof(*child));
        if (!child) {
                int status;

                kill(a->pid, SIGKILL);
                (void) waitpid(a->pid, &status, 0);
                snprintf(ret_message, message_size, "Cannot start %s: out of memory", s->name);
                return -1;
        }
        child->pid = a->pid;
        child->act = a;
        snprintf(child->what, sizeof(child->what), "%s (%s)", s->name, argv[0]);
        list_link_tail(&reg->children, &steal_pointer(&child)->link);
        return 0;
}

int activation_start(struct activation_registry *reg, const struct service *s, struct activation **ret,
                     const char **ret_error, char *ret_message, size_t message_size)
{
        struct activation *a;
        struct run_as ra = {0};
        struct env env = {0};
        char *unit_argv[5] = {0};
        char *const *argv;
        const struct timeval tv = {.tv_sec = reg->timeout_ms / 1000, .tv_usec = (reg->timeout_ms % 1000) * 1000};
        int r;

        *ret_error = IPCBUS_ERROR_SPAWN_FAILED_TO_SETUP;
        if (s->unit) {
                size_t i = 0;

                unit_argv[i++] = (char *) systemctl_path();
                if (reg->type == BUS_TYPE_SESSION)
                        unit_argv[i++] = (char *) "--user";
                unit_argv[i++] = (char *) "start";
                unit_argv[i++] = s->unit;
                argv = unit_argv;
                r = copy_environ(&env);
        } else {
                if (resolve_user(s, &ra, ret_message, message_size) < 0)
                        return -1;
                argv = s->argv;
                r = build_env(reg, &ra, &env);
        }

        a = r < 0 ? NULL : activation_new(reg, s);
        if (!a) {
                snprintf(ret_message, message_size, "Cannot start %s: out of memory", s->name);
                env_free(&env);
                return -1;
        }

        r = spawn(argv, env.vars, &ra, -1, &a->pid, &a->status_fd);
        env_free(&env);
        if (r < 0) {
                snprintf(ret_message, message_size, "Cannot start %s: fork failed: %s", s->name, strerror(-r));
                activation_free(a);
                return -1;
        }
        evtimer_add(a->timer, &tv);

        if (activation_track_child(reg, a, s, argv, ret_message, message_size) < 0) {
                activation_free(a);
                return -1;
        }
        log_info("activating %s: started %s (pid %d)%s%s", s->name, argv[0], (int) a->pid, ra.switch_user ? " as " : "",
                 ra.switch_user ? ra.name : "");
        *ret = a;
        return 0;
}
