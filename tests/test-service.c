/* SPDX-License-Identifier: MIT */
/*
 * test-service: the program the activation and reload suites
 * (tests/check_bus_activation.c, tests/check_bus_reload.c) name in their
 * service files, so that ipcbusd starts a real service through libipcbus the
 * way it starts any other. What it does is chosen by its arguments, applied
 * in this order:
 *
 *   --touch FILE      append "start PID" to FILE (the tests count starts);
 *                     a SIGTERM then appends "sigterm PID" before it dies of it
 *   --delay-ms N      sleep N ms
 *   --wait-file FILE  wait until FILE exists (exit 1 once FILE's directory is
 *                     gone or after WAIT_FILE_MAX_S): the tests' gate
 *   --signal SIG      kill itself with signal number SIG
 *   --exit STATUS     exit with STATUS
 *   then connect with ipcbus_open_starter ($IPCBUS_STARTER_ADDRESS, else the
 *   session bus), and
 *   --never-own       serve without ever asking for a name, or
 *   --name NAME       request NAME (waiting in its queue if it is owned) and serve.
 *
 * It serves, at TEST_PATH, interface TEST_INTERFACE (testbus's
 * TESTBUS_SERVICE_PATH and TESTBUS_SERVICE_INTERFACE):
 *   Echo  replies with the call's body, byte for byte
 *   Env   replies with what it was started with:
 *         {"env": {every variable}, "uid", "gid", "groups": [...], "pid",
 *          "fds": {"FD": "where it points", ...} for the descriptors open at
 *          start besides 0-2, "stdin", "stdout",
 *          "stderr" (where 0-2 pointed at start), "session_leader": bool,
 *          "ignored": [signals set to SIG_IGN], "blocked": [signals blocked]}
 *   Quit  replies {} and exits 0
 * and exits 0 when the connection ends. Diagnostics go to stderr, which is
 * the broker's (its log).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <ipcbus/ipcbus.h>
#include <json-c/json.h>

#define TEST_PATH "/org/example/Test"
#define TEST_INTERFACE "org.example.Test"
#define WAIT_FILE_MAX_S 300
#define FDS_MAX 64

extern char **environ;

/* What the process looked like before it did anything itself. */
static struct {
        int fds[FDS_MAX];
        char fd_targets[FDS_MAX][PATH_MAX];
        size_t n_fds;
        char std[3][PATH_MAX];
        bool session_leader;
} start_state;

static int touch_fd = -1;
static bool quit;

static void die(const char *what)
{
        fprintf(stderr, "test-service[%d]: %s\n", (int) getpid(), what);
        exit(EXIT_FAILURE);
}

/*
 * Record the descriptors open besides 0-2. Under valgrind the program's own
 * descriptors sit above the soft RLIMIT_NOFILE it reports, so those are
 * not the program's.
 */
static void record_start_state(void)
{
        struct rlimit rl = {.rlim_cur = 1024};
        struct dirent *e;
        DIR *d;

        getrlimit(RLIMIT_NOFILE, &rl);
        d = opendir("/proc/self/fd");
        if (!d)
                die("cannot list /proc/self/fd");
        while ((e = readdir(d))) {
                char *end;
                long fd = strtol(e->d_name, &end, 10);

                if (e->d_name[0] == '.' || *end || fd <= 2 || fd == dirfd(d) || (rlim_t) fd >= rl.rlim_cur)
                        continue;
                if (start_state.n_fds < FDS_MAX) {
                        size_t i = start_state.n_fds++;
                        char link[64];
                        ssize_t n;

                        start_state.fds[i] = (int) fd;
                        snprintf(link, sizeof(link), "/proc/self/fd/%ld", fd);
                        n = readlink(link, start_state.fd_targets[i], sizeof(start_state.fd_targets[i]) - 1);
                        start_state.fd_targets[i][n > 0 ? n : 0] = '\0';
                }
        }
        closedir(d);
        for (int fd = 0; fd < 3; fd++) {
                char link[64];
                ssize_t n;

                snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
                n = readlink(link, start_state.std[fd], sizeof(start_state.std[fd]) - 1);
                start_state.std[fd][n > 0 ? n : 0] = '\0';
        }
        start_state.session_leader = getsid(0) == getpid();
}

/* Append one line to the --touch file (async-signal-safe). */
static void touch_line(const char *what)
{
        char line[64];
        int n;

        if (touch_fd < 0)
                return;
        n = snprintf(line, sizeof(line), "%s %d\n", what, (int) getpid());
        if (n > 0 && write(touch_fd, line, (size_t) n) != n)
                return;
}

static void on_sigterm(int sig)
{
        touch_line("sigterm");
        signal(sig, SIG_DFL);
        raise(sig);
}

static void touch(const char *path)
{
        struct sigaction sa = {.sa_handler = on_sigterm};

        touch_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
        if (touch_fd < 0)
                die("cannot open the --touch file");
        touch_line("start");
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
}

static void sleep_ms(long ms)
{
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static void wait_file(const char *path)
{
        char dir[PATH_MAX], *slash;

        snprintf(dir, sizeof(dir), "%s", path);
        slash = strrchr(dir, '/');
        if (slash && slash != dir)
                *slash = '\0';
        for (long waited = 0; access(path, F_OK) < 0; waited += 10) {
                if (access(dir, F_OK) < 0 || waited > WAIT_FILE_MAX_S * 1000L)
                        die("the --wait-file never came");
                sleep_ms(10);
        }
}

static long number(const char *arg, long min, long max)
{
        char *end;
        long v;

        errno = 0;
        v = strtol(arg, &end, 10);
        if (errno || end == arg || *end || v < min || v > max) {
                fprintf(stderr, "test-service: not a number in %ld...%ld: %s\n", min, max, arg);
                exit(2);
        }
        return v;
}

/* ---- methods ----------------------------------------------------------------------------------- */

static int method_echo(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        size_t len = 0;
        const char *body = ipcbus_message_get_body(m, &len);

        return ipcbus_reply(m, len ? body : NULL);
}

static int method_quit(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        quit = true;
        return ipcbus_reply(m, "{}");
}

/* Add a JSON array of the signals for which is(sig) holds. */
static int add_signals(json_object *o, const char *key, bool (*is)(int sig, const void *data), const void *data)
{
        json_object *a = json_object_new_array();

        if (!a)
                return -ENOMEM;
        for (int sig = 1; sig < NSIG; sig++)
                if (is(sig, data) && json_object_array_add(a, json_object_new_int(sig)) < 0) {
                        json_object_put(a);
                        return -ENOMEM;
                }
        return json_object_object_add(o, key, a) < 0 ? -ENOMEM : 0;
}

static bool signal_ignored(int sig, const void *data)
{
        struct sigaction sa;

        return sigaction(sig, NULL, &sa) == 0 && !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_IGN;
}

static bool signal_blocked(int sig, const void *data)
{
        return sigismember(data, sig) == 1;
}

/* The Env reply, built into o. */
static int env_fill(json_object *o)
{
        json_object *env = json_object_new_object(), *fds = json_object_new_object(), *groups = json_object_new_array();
        static const char *const std_keys[3] = {"stdin", "stdout", "stderr"};
        gid_t list[64];
        sigset_t blocked;
        int n, r = 0;

        if (json_object_object_add(o, "env", env) < 0 || json_object_object_add(o, "fds", fds) < 0 ||
            json_object_object_add(o, "groups", groups) < 0 || !env || !fds || !groups)
                return -ENOMEM;
        for (char **e = environ; *e; e++) {
                const char *eq = strchr(*e, '=');
                char *key;

                if (!eq)
                        continue;
                key = strndup(*e, (size_t) (eq - *e));
                if (!key)
                        return -ENOMEM;
                r = json_object_object_add(env, key, json_object_new_string(eq + 1));
                free(key);
                if (r < 0)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < start_state.n_fds; i++) {
                char key[16];

                snprintf(key, sizeof(key), "%d", start_state.fds[i]);
                if (json_object_object_add(fds, key, json_object_new_string(start_state.fd_targets[i])) < 0)
                        return -ENOMEM;
        }
        n = getgroups(64, list);
        for (int i = 0; i < n; i++)
                if (json_object_array_add(groups, json_object_new_int64((int64_t) list[i])) < 0)
                        return -ENOMEM;
        for (int fd = 0; fd < 3; fd++)
                if (json_object_object_add(o, std_keys[fd], json_object_new_string(start_state.std[fd])) < 0)
                        return -ENOMEM;
        if (json_object_object_add(o, "uid", json_object_new_int64((int64_t) getuid())) < 0 ||
            json_object_object_add(o, "gid", json_object_new_int64((int64_t) getgid())) < 0 ||
            json_object_object_add(o, "pid", json_object_new_int64((int64_t) getpid())) < 0 ||
            json_object_object_add(o, "session_leader", json_object_new_boolean(start_state.session_leader)) < 0)
                return -ENOMEM;
        sigprocmask(SIG_BLOCK, NULL, &blocked);
        r = add_signals(o, "ignored", signal_ignored, NULL);
        if (r >= 0)
                r = add_signals(o, "blocked", signal_blocked, &blocked);
        return r;
}

static int method_env(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        json_object *o = json_object_new_object();
        int r = o ? env_fill(o) : -ENOMEM;

        if (r >= 0)
                r = ipcbus_reply(m, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        return r;
}

static const ipcbus_method methods[] = {
        {"Echo", method_echo},
        {"Env", method_env},
        {"Quit", method_quit},
        {NULL, NULL},
};

/* ---- main ------------------------------------------------------------------------------------- */

static int serve(const char *name, bool never_own)
{
        ipcbus_error e = IPCBUS_ERROR_NULL;
        ipcbus_slot *object = NULL;
        ipcbus_bus *bus = NULL;
        int r;

        /* as an activatable service should: the bus that started it */
        r = ipcbus_open_starter(&bus);
        if (r < 0) {
                fprintf(stderr, "test-service[%d]: connecting to the bus that started it: %s\n", (int) getpid(),
                        ipcbus_strerror(r));
                return EXIT_FAILURE;
        }
        r = ipcbus_add_object(bus, &object, TEST_PATH, TEST_INTERFACE, methods, NULL);
        if (r >= 0 && name && !never_own) {
                r = ipcbus_request_name(bus, name, 0, &e);
                if (r >= 0 && r != IPCBUS_REQUEST_NAME_PRIMARY_OWNER && r != IPCBUS_REQUEST_NAME_IN_QUEUE)
                        r = -EBUSY;
                if (r < 0)
                        fprintf(stderr, "test-service[%d]: RequestName(%s): %s %s\n", (int) getpid(), name,
                                e.name ? e.name : ipcbus_strerror(r), e.message ? e.message : "");
                ipcbus_error_free(&e);
        }
        while (r >= 0 && !quit) {
                while (!quit && (r = ipcbus_process(bus)) > 0)
                        ;
                if (r >= 0 && !quit)
                        r = ipcbus_wait(bus, UINT64_MAX);
        }
        if (quit)
                ipcbus_flush(bus);
        ipcbus_slot_unref(object);
        ipcbus_unref(bus);
        /* the end of the connection is the normal end */
        return quit || r == -ECONNRESET || r == -ENOTCONN || r == -EPIPE ? EXIT_SUCCESS : EXIT_FAILURE;
}

int main(int argc, char **argv)
{
        enum { OPT_TOUCH = 1, OPT_DELAY, OPT_WAIT_FILE, OPT_SIGNAL, OPT_EXIT, OPT_NEVER_OWN, OPT_NAME };
        static const struct option options[] = {
                {"touch", required_argument, NULL, OPT_TOUCH},         {"delay-ms", required_argument, NULL, OPT_DELAY},
                {"wait-file", required_argument, NULL, OPT_WAIT_FILE}, {"signal", required_argument, NULL, OPT_SIGNAL},
                {"exit", required_argument, NULL, OPT_EXIT},           {"never-own", no_argument, NULL, OPT_NEVER_OWN},
                {"name", required_argument, NULL, OPT_NAME},           {},
        };
        const char *touch_path = NULL, *wait_path = NULL, *name = NULL;
        long delay_ms = 0, sig = 0, status = -1;
        bool never_own = false;
        int c;

        record_start_state();
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                switch (c) {
                case OPT_TOUCH:
                        touch_path = optarg;
                        break;
                case OPT_DELAY:
                        delay_ms = number(optarg, 0, 3600000);
                        break;
                case OPT_WAIT_FILE:
                        wait_path = optarg;
                        break;
                case OPT_SIGNAL:
                        sig = number(optarg, 1, NSIG - 1);
                        break;
                case OPT_EXIT:
                        status = number(optarg, 0, 255);
                        break;
                case OPT_NEVER_OWN:
                        never_own = true;
                        break;
                case OPT_NAME:
                        name = optarg;
                        break;
                default:
                        fprintf(stderr, "test-service: bad arguments\n");
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "test-service: unexpected argument %s\n", argv[optind]);
                return 2;
        }

        if (touch_path)
                touch(touch_path);
        if (delay_ms)
                sleep_ms(delay_ms);
        if (wait_path)
                wait_file(wait_path);
        if (sig) {
                signal((int) sig, SIG_DFL);
                kill(getpid(), (int) sig);
                die("still alive after kill()");
        }
        if (status >= 0)
                return (int) status;
        return serve(name, never_own);
}
