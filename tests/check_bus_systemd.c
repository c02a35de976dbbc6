/* SPDX-License-Identifier: MIT */
/*
 * ipcbusd under systemd's protocols: socket activation (under the real
 * systemd-socket-activate, and with sockets the test hands over itself in
 * LISTEN_FDS), state notification to a NOTIFY_SOCKET the test owns
 * (READY=1, STATUS=, STOPPING=1), the graceful shutdown on SIGTERM, and the
 * log lines: with their syslog priority prefixes when stderr is the journal
 * (JOURNAL_STREAM names it, as systemd sets it; the runs here have it unless
 * a test says otherwise) or with --log-prefix, else with the program's name
 * and the level in words.
 *
 * systemd-socket-activate (package systemd) is taken from $PATH, or from
 * $SYSTEMD_SOCKET_ACTIVATE; the test fails without it.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/testbus.h"

#define HANDED_MAX 4

extern char **environ;

/* ---- the test's processes and sockets ------------------------------------------------ */

static char suite_dir[128]; /* per test case; holds one directory per test */

static void suite_dir_setup(void)
{
        const char *t = getenv("TMPDIR");

        /* socket paths must fit sun_path */
        snprintf(suite_dir, sizeof(suite_dir), "%s/ipcbus-sd-XXXXXX", t && t[0] == '/' && strlen(t) < 40 ? t : "/tmp");
        ck_assert_msg(mkdtemp(suite_dir), "mkdtemp(%s): %s", suite_dir, strerror(errno));
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        remove(path);
        return 0;
}

/* Runs in the runner after the test case, also after a failed test. */
static void suite_dir_teardown(void)
{
        if (suite_dir[0])
                nftw(suite_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        suite_dir[0] = '\0';
}

/* One ipcbusd (or systemd-socket-activate running it), and what the test gave it. */
struct run {
        char dir[192];
        struct testbus tb;       /* socket_path "<dir>/bus" and address, for the testbus client helpers */
        char notify[256];        /* NOTIFY_SOCKET value: "<dir>/notify" or "@name" */
        bool journal;            /* JOURNAL_STREAM names its stderr, as systemd's journal does (run_init: true) */
        char journal_stream[64]; /* else this JOURNAL_STREAM value, when not "" */
        int notify_fd;           /* the test's end of it, -1: none */
        struct testbus_proc p;
};

static void run_init(struct run *r)
{
        memset(r, 0, sizeof(*r));
        r->notify_fd = -1;
        r->journal = true;
        r->tb.stdout_fd = -1;
        snprintf(r->dir, sizeof(r->dir), "%s/t-XXXXXX", suite_dir);
        ck_assert_msg(mkdtemp(r->dir), "mkdtemp(%s): %s", r->dir, strerror(errno));
        snprintf(r->tb.socket_path, sizeof(r->tb.socket_path), "%s/bus", r->dir);
        snprintf(r->tb.address, sizeof(r->tb.address), "unix:path=%s", r->tb.socket_path);
}

static void run_deinit(struct run *r)
{
        testbus_proc_deinit(&r->p);
        if (r->notify_fd >= 0)
                close(r->notify_fd);
        r->notify_fd = -1;
}

static socklen_t unix_address(const char *name, struct sockaddr_un *sa)
{
        size_t len = strlen(name);

        ck_assert_uint_lt(len, sizeof(sa->sun_path));
        memset(sa, 0, sizeof(*sa));
        sa->sun_family = AF_UNIX;
        memcpy(sa->sun_path, name, len);
        if (name[0] == '@')
                sa->sun_path[0] = '\0';
        return (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len + (name[0] == '@' ? 0 : 1));
}

/* The test's NOTIFY_SOCKET: a datagram socket at <dir>/notify, or an abstract one. */
static void run_notify_socket(struct run *r, bool abstract)
{
        struct sockaddr_un sa;
        socklen_t len;

        if (abstract)
                snprintf(r->notify, sizeof(r->notify), "@ipcbus-test-notify-%d-%s", (int) getpid(),
                         strrchr(r->dir, '-') + 1);
        else
                snprintf(r->notify, sizeof(r->notify), "%s/notify", r->dir);
        len = unix_address(r->notify, &sa);
        r->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ck_assert_msg(r->notify_fd >= 0, "socket: %s", strerror(errno));
        ck_assert_msg(bind(r->notify_fd, (struct sockaddr *) &sa, len) == 0, "bind(%s): %s", r->notify,
                      strerror(errno));
}

/* A socket of `type` bound at path (NULL: unbound), listening when asked. */
static int make_socket(int type, const char *path, bool listening)
{
        struct sockaddr_un sa;
        int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

        ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
        if (path) {
                socklen_t len = unix_address(path, &sa);

                ck_assert_msg(bind(fd, (struct sockaddr *) &sa, len) == 0, "bind(%s): %s", path, strerror(errno));
        }
        if (listening)
                ck_assert_msg(listen(fd, 16) == 0, "listen(%s): %s", path, strerror(errno));
        return fd;
}

static ino_t inode_of(const char *path)
{
        struct stat st;

        ck_assert_msg(lstat(path, &st) == 0, "%s: %s", path, strerror(errno));
        ck_assert_msg(S_ISSOCK(st.st_mode), "%s is not a socket", path);
        return st.st_ino;
}

static const char *ipcbusd(void)
{
        return testbus_program("IPCBUSD", "daemon/ipcbusd");
}

/* Does the environment entry `entry` ("KEY=...") set one of the variables the test decides on? */
static bool env_is_ours(const char *entry)
{
        static const char *const keys[] = {
                "NOTIFY_SOCKET=", "LISTEN_PID=", "LISTEN_FDS=", "LISTEN_FDNAMES=", "JOURNAL_STREAM="};

        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
                if (strncmp(entry, keys[i], strlen(keys[i])) == 0)
                        return true;
        return false;
}

/*
 * Start argv[0] with stdout and stderr captured into r->p, stdin /dev/null,
 * the test's environment without systemd's variables, plus NOTIFY_SOCKET
 * when r has one, and JOURNAL_STREAM: stderr's device:inode when r->journal,
 * else r->journal_stream when set. With n_handed > 0 the descriptors
 * handed[] become 3, 4, ... with LISTEN_FDS=n_handed and
 * LISTEN_PID=listen_pid ("self": the pid of the started process). It dies
 * with the test process.
 */
static void run_spawn(struct run *r, const char *const *argv, const int *handed, unsigned n_handed,
                      const char *listen_pid)
{
        char notify_env[300], fds_env[32], pid_env[64], journal_env[80];
        const char **envp;
        size_t n_env = 0, n = 0;
        pid_t parent = getpid(), pid;
        int out[2], err[2];

        ck_assert_uint_le(n_handed, HANDED_MAX);
        for (char **e = environ; *e; e++)
                n_env++;
        envp = calloc(n_env + 5, sizeof(*envp));
        ck_assert_ptr_nonnull(envp);
        for (char **e = environ; *e; e++)
                if (!env_is_ours(*e))
                        envp[n++] = *e;
        if (r->notify_fd >= 0) {
                snprintf(notify_env, sizeof(notify_env), "NOTIFY_SOCKET=%s", r->notify);
                envp[n++] = notify_env;
        }
        if (n_handed > 0) {
                snprintf(fds_env, sizeof(fds_env), "LISTEN_FDS=%u", n_handed);
                envp[n++] = fds_env;
                envp[n++] = pid_env; /* filled in by the child */
        }
        ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
        ck_assert_int_eq(pipe2(err, O_CLOEXEC), 0);
        if (r->journal) {
                struct stat st;

                ck_assert_int_eq(fstat(err[1], &st), 0);
                snprintf(journal_env, sizeof(journal_env), "JOURNAL_STREAM=%ju:%ju", (uintmax_t) st.st_dev,
                         (uintmax_t) st.st_ino);
                envp[n++] = journal_env;
        } else if (r->journal_stream[0]) {
                snprintf(journal_env, sizeof(journal_env), "JOURNAL_STREAM=%s", r->journal_stream);
                envp[n++] = journal_env;
        }
        envp[n] = NULL;
        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid == 0) {
                int null = open("/dev/null", O_RDONLY | O_CLOEXEC), high[HANDED_MAX];

                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(1);
                if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(out[1], STDOUT_FILENO) < 0 ||
                    dup2(err[1], STDERR_FILENO) < 0)
                        _exit(126);
                /* out of the way first: a handed descriptor may sit where another one goes */
                for (unsigned i = 0; i < n_handed; i++)
                        if ((high[i] = fcntl(handed[i], F_DUPFD_CLOEXEC, 100)) < 0)
                                _exit(126);
                for (unsigned i = 0; i < n_handed; i++)
                        if (dup2(high[i], 3 + (int) i) < 0)
                                _exit(126);
                if (close_range(3 + n_handed, ~0u, 0) < 0)
                        for (long fd = 3 + n_handed, max = sysconf(_SC_OPEN_MAX); fd < max; fd++)
                                close((int) fd);
                if (n_handed > 0)
                        snprintf(pid_env, sizeof(pid_env), "LISTEN_PID=%s", listen_pid);
                if (n_handed > 0 && strcmp(listen_pid, "self") == 0)
                        snprintf(pid_env, sizeof(pid_env), "LISTEN_PID=%d", (int) getpid());
                execve(argv[0], (char *const *) argv, (char *const *) envp);
                fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        ck_assert_msg(pid > 0, "fork: %s", strerror(errno));
        free(envp);
        close(out[1]);
        close(err[1]);
        r->p = (struct testbus_proc){.pid = pid};
        testbus_lines_init(&r->p.out, out[0]);
        testbus_lines_init(&r->p.err, err[0]);
        r->tb.pid = pid;
}

/* Start ipcbusd with these arguments (NULL terminated) after argv[0]; see run_spawn. */
static void run_ipcbusd(struct run *r, const char *const *args, const int *handed, unsigned n_handed)
{
        const char *argv[16];
        size_t n = 0;

        argv[n++] = ipcbusd();
        for (size_t i = 0; args[i]; i++) {
                ck_assert_uint_lt(n, 15);
                argv[n++] = args[i];
        }
        argv[n] = NULL;
        run_spawn(r, argv, handed, n_handed, "self");
}

/* What the process wrote to stderr so far (for failure messages; reads what is there). */
static const char *run_stderr(struct run *r)
{
        testbus_lines_drain(&r->p.err, testbus_now_ms() + 100);
        return r->p.err.buf;
}

/* The next line on its stdout (--print-address), which must come. Caller frees. */
static char *run_stdout_line(struct run *r)
{
        char *line = testbus_proc_read_line(&r->p, TESTBUS_WAIT_MS * 2 * testbus_slow_factor());

        ck_assert_msg(line, "no line on ipcbusd's stdout; its stderr:\n%s", run_stderr(r));
        return line;
}

/* SIGTERM it; it must exit 0. */
static void run_terminate(struct run *r)
{
        int status;

        kill(r->p.pid, SIGTERM);
        status = testbus_proc_finish(&r->p, TESTBUS_WAIT_MS * testbus_slow_factor());
        ck_assert_msg(status == 0, "ipcbusd exited %d after SIGTERM; its stderr:\n%s", status, r->p.err.buf);
}

/* The next notification datagram (malloc'd, NUL-terminated), or NULL after timeout_ms. */
static char *notify_recv(struct run *r, int timeout_ms)
{
        struct pollfd pfd = {.fd = r->notify_fd, .events = POLLIN};
        char buf[4096];
        ssize_t n;

        if (poll(&pfd, 1, timeout_ms) <= 0)
                return NULL;
        n = recv(r->notify_fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
        ck_assert_msg(n >= 0, "recv(NOTIFY_SOCKET): %s", strerror(errno));
        buf[n] = '\0';
        return strdup(buf);
}

/* The value of KEY= in a notification (a static copy), or NULL. */
static const char *notify_value(const char *msg, const char *key)
{
        static char value[1024];
        size_t k = strlen(key);

        for (const char *line = msg; *line;) {
                size_t len = strcspn(line, "\n");

                if (len > k && strncmp(line, key, k) == 0 && line[k] == '=') {
                        snprintf(value, sizeof(value), "%.*s", (int) (len - k - 1), line + k + 1);
                        return value;
                }
                line += len;
                if (*line)
                        line++;
        }
        return NULL;
}

/*
 * Wait for a notification that sets KEY to a value containing `containing`
 * (NULL: any value); the ones before it are skipped and counted in
 * *ret_skipped when not NULL. Returns it (malloc'd); fails on timeout.
 */
static char *notify_expect(struct run *r, const char *key, const char *containing, unsigned *ret_skipped)
{
        int64_t deadline = testbus_now_ms() + (int64_t) TESTBUS_WAIT_MS * testbus_slow_factor();
        unsigned skipped = 0;

        for (;;) {
                int64_t left = deadline - testbus_now_ms();
                char *msg = notify_recv(r, left > 0 ? (int) left : 0);
                const char *v;

                ck_assert_msg(msg, "no %s=%s notification came; ipcbusd's stderr:\n%s", key,
                              containing ? containing : "", run_stderr(r));
                v = notify_value(msg, key);
                if (v && (!containing || strstr(v, containing))) {
                        if (ret_skipped)
                                *ret_skipped = skipped;
                        return msg;
                }
                skipped++;
                free(msg);
        }
}

/* A client must be able to say Hello and call the driver: returns its unique name (malloc'd). */
static char *hello_and_get_id(ipcbus_bus *bus)
{
        json_object *o = testbus_driver(bus, "GetId", NULL);
        char *name;

        ck_assert_uint_eq(strlen(testbus_json_string(o, "id")), 32);
        json_object_put(o);
        name = strdup(ipcbus_get_unique_name(bus));
        ck_assert_ptr_nonnull(name);
        return name;
}

static bool list_names_has(ipcbus_bus *bus, const char *name)
{
        json_object *o = testbus_driver(bus, "ListNames", NULL);
        bool has = testbus_json_array_has(testbus_json_array(o, "names"), name);

        json_object_put(o);
        return has;
}

/* Does every line of text start with a syslog priority prefix "<N>"? Names the first that does not. */
static void expect_prefixed_lines(const char *text)
{
        for (const char *line = text; *line;) {
                size_t len = strcspn(line, "\n");

                ck_assert_msg(len >= 3 && line[0] == '<' && line[1] >= '0' && line[1] <= '7' && line[2] == '>',
                              "a stderr line without a priority prefix: '%.*s'; all of it:\n%s", (int) len, line, text);
                line += len;
                if (*line)
                        line++;
        }
}

/* Does every line of text start with the program's name, as on a terminal? Names the first that does not. */
static void expect_named_lines(const char *text)
{
        for (const char *line = text; *line;) {
                size_t len = strcspn(line, "\n");

                ck_assert_msg(strncmp(line, "ipcbusd: ", strlen("ipcbusd: ")) == 0,
                              "a stderr line not starting with 'ipcbusd: ': '%.*s'; all of it:\n%s", (int) len, line,
                              text);
                line += len;
                if (*line)
                        line++;
        }
}

/* Is there a line that starts with prefix and contains `containing`? */
static bool has_line(const char *text, const char *prefix, const char *containing)
{
        for (const char *line = text; *line;) {
                size_t len = strcspn(line, "\n");
                char *copy = strndup(line, len);
                bool hit = strncmp(copy, prefix, strlen(prefix)) == 0 && (!containing || strstr(copy, containing));

                free(copy);
                if (hit)
                        return true;
                line += len;
                if (*line)
                        line++;
        }
        return false;
}

/* Does process pid run ipcbusd (by its command line, which under valgrind is valgrind's, naming ipcbusd)? */
static bool runs_ipcbusd(pid_t pid)
{
        char path[64], buf[4096];
        ssize_t n;
        int fd;

        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        ck_assert_int_gt(n, 0);
        buf[n] = '\0';
        for (const char *arg = buf; arg < buf + n; arg += strlen(arg) + 1) {
                const char *slash = strrchr(arg, '/');

                if (strcmp(slash ? slash + 1 : arg, "ipcbusd") == 0)
                        return true;
        }
        return false;
}

/* Where systemd-socket-activate is: $SYSTEMD_SOCKET_ACTIVATE, else found in $PATH (the test fails without it). */
static const char *socket_activate_program(void)
{
        static char path[PATH_MAX];
        const char *v = getenv("SYSTEMD_SOCKET_ACTIVATE"), *dirs = getenv("PATH");

        if (v && v[0])
                return v;
        for (const char *d = dirs ? dirs : "/usr/bin:/bin"; *d;) {
                size_t len = strcspn(d, ":");

                snprintf(path, sizeof(path), "%.*s/systemd-socket-activate", (int) len, d);
                if (len && access(path, X_OK) == 0)
                        return path;
                d += len;
                if (*d)
                        d++;
        }
        ck_abort_msg("systemd-socket-activate is not installed (Debian package systemd; scripts/deps.sh), "
                     "or set $SYSTEMD_SOCKET_ACTIVATE");
        return NULL;
}

/* ---- socket activation ------------------------------------------------------------------ */

/*
 * The real tool: it binds and listens, waits for the first client, then
 * execs ipcbusd in its own process with LISTEN_FDS=1. ipcbusd serves that
 * socket (the same inode all along, never unlinked) to several clients.
 */
START_TEST(test_socket_activate)
{
        struct run r;
        const char *argv[10];
        ipcbus_bus *a, *b;
        char *line, *name_a, *name_b;
        char tool[256];
        json_object *o;
        ino_t ino;

        run_init(&r);
        /* Run through a link in the test's directory: scripts/valgrind.sh does
         * not trace programs in /usr/bin, which would leave the ipcbusd the tool
         * execs unchecked under make check-valgrind. */
        snprintf(tool, sizeof(tool), "%s/systemd-socket-activate", r.dir);
        ck_assert_msg(symlink(socket_activate_program(), tool) == 0, "symlink %s: %s", tool, strerror(errno));
        argv[0] = tool;
        argv[1] = "-l";
        argv[2] = r.tb.socket_path;
        argv[3] = "-E"; /* it passes on only the variables it is told to */
        argv[4] = "JOURNAL_STREAM";
        argv[5] = ipcbusd();
        argv[6] = "--print-address";
        argv[7] = "-v";
        argv[8] = NULL;
        run_spawn(&r, argv, NULL, 0, NULL);

        /* it listens before it starts anything */
        for (;;) {
                line = testbus_lines_read(&r.p.err, TESTBUS_WAIT_MS * testbus_slow_factor());
                ck_assert_msg(line, "systemd-socket-activate did not say it listens; its output:\n%s", r.p.err.buf);
                if (strstr(line, "Listening on")) {
                        free(line);
                        break;
                }
                free(line);
        }
        ino = inode_of(r.tb.socket_path);

        /* the first client's connection starts ipcbusd */
        a = testbus_connect(&r.tb);
        name_a = hello_and_get_id(a);
        line = run_stdout_line(&r);
        ck_assert_str_eq(line, r.tb.address); /* --print-address: the handed socket's own address */
        free(line);

        /* the broker is the process the tool exec'd: the pid the test started */
        o = testbus_driver(a, "GetConnectionCredentials", "{\"name\":\"org.ipcbus.Bus\"}");
        ck_assert_int_eq(testbus_json_int(o, "pid"), r.p.pid);
        json_object_put(o);
        ck_assert_msg(runs_ipcbusd(r.p.pid), "pid %d does not run ipcbusd", (int) r.p.pid);

        /* a second client; they see each other */
        b = testbus_connect(&r.tb);
        name_b = hello_and_get_id(b);
        ck_assert(list_names_has(b, name_a));
        ck_assert(list_names_has(a, name_b));
        ck_assert(list_names_has(a, "org.ipcbus.Bus"));

        /* it served the handed socket and bound nothing itself */
        ck_assert(inode_of(r.tb.socket_path) == ino);
        ipcbus_unref(a);
        ipcbus_unref(b);
        run_terminate(&r);
        ck_assert_msg(has_line(r.p.err.buf, "<6>serving unix:path=", "descriptor 3"),
                      "no line about serving descriptor 3:\n%s", r.p.err.buf);
        ck_assert_msg(!has_line(r.p.err.buf, "<6>listening on", NULL), "ipcbusd bound a socket:\n%s", r.p.err.buf);
        /* the socket file is the tool's: still there after ipcbusd left */
        ck_assert(inode_of(r.tb.socket_path) == ino);

        free(name_a);
        free(name_b);
        run_deinit(&r);
}
END_TEST

/*
 * Sockets handed over by the test itself (traced under valgrind): two of
 * them, both served, clients on either one on the same bus; --address is
 * not bound; --print-address says the first handed socket's address.
 */
START_TEST(test_listen_fds_two_sockets)
{
        struct run r;
        struct testbus other = {0};
        char second[256], ignored[300], *line, *name_a;
        const char *args[] = {"--print-address", "--address", ignored, NULL};
        int fds[2];
        ipcbus_bus *a, *b;

        run_init(&r);
        snprintf(second, sizeof(second), "%s/second", r.dir);
        snprintf(ignored, sizeof(ignored), "unix:path=%s/ignored", r.dir);
        fds[0] = make_socket(SOCK_STREAM, r.tb.socket_path, true);
        fds[1] = make_socket(SOCK_STREAM, second, true);
        run_ipcbusd(&r, args, fds, 2);
        close(fds[0]);
        close(fds[1]);

        line = run_stdout_line(&r);
        ck_assert_str_eq(line, r.tb.address);
        free(line);

        snprintf(other.socket_path, sizeof(other.socket_path), "%s", second);
        snprintf(other.address, sizeof(other.address), "unix:path=%s", second);
        a = testbus_connect(&r.tb);
        b = testbus_connect(&other);
        name_a = hello_and_get_id(a);
        ck_assert(list_names_has(b, name_a));
        ck_assert_msg(access(ignored + strlen("unix:path="), F_OK) < 0 && errno == ENOENT,
                      "ipcbusd bound --address although sockets were handed over");
        ipcbus_unref(a);
        ipcbus_unref(b);
        run_terminate(&r);
        expect_prefixed_lines(r.p.err.buf);
        ck_assert_msg(has_line(r.p.err.buf, "<4>", "--address"), "no warning about the ignored --address:\n%s",
                      r.p.err.buf);
        /* handed sockets are never removed */
        inode_of(r.tb.socket_path);
        inode_of(second);
        free(name_a);
        run_deinit(&r);
}
END_TEST

/* LISTEN_FDS meant for another process (LISTEN_PID is not ipcbusd's): ignored; it binds its own. */
START_TEST(test_listen_fds_other_pid)
{
        struct run r;
        char handed_path[256], *line;
        const char *argv[] = {ipcbusd(), "--print-address", "--address", NULL, NULL};
        int fd;
        ipcbus_bus *a;

        run_init(&r);
        argv[3] = r.tb.address;
        snprintf(handed_path, sizeof(handed_path), "%s/handed", r.dir);
        fd = make_socket(SOCK_STREAM, handed_path, true);
        run_spawn(&r, argv, &fd, 1, "1"); /* LISTEN_PID=1 */
        close(fd);

        line = run_stdout_line(&r);
        ck_assert_str_eq(line, r.tb.address);
        free(line);
        a = testbus_connect(&r.tb);
        free(hello_and_get_id(a));
        ipcbus_unref(a);
        run_terminate(&r);
        run_deinit(&r);
}
END_TEST

/* What is handed over must be a listening Unix stream socket: else a clear error, exit != 0, nothing bound. */
START_TEST(test_listen_fds_not_listening)
{
        static const struct {
                const char *what;
                const char *says;
        } cases[] = {
                {"a bound stream socket that does not listen", "not listening"},
                {"a datagram socket", "not a stream socket"},
                {"a pipe", "not a socket"},
                {"a TCP socket", "not a Unix socket"},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct run r;
                char path[256], address[300];
                const char *args[] = {"--address", address, NULL};
                int fd, pipefd[2] = {-1, -1}, status;

                run_init(&r);
                snprintf(path, sizeof(path), "%s/handed", r.dir);
                snprintf(address, sizeof(address), "unix:path=%s/own", r.dir);
                switch (i) {
                case 0:
                        fd = make_socket(SOCK_STREAM, path, false);
                        break;
                case 1:
                        fd = make_socket(SOCK_DGRAM, path, false);
                        break;
                case 2:
                        ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);
                        fd = pipefd[0];
                        break;
                default:
                        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                        ck_assert_int_ge(fd, 0);
                        ck_assert_int_eq(listen(fd, 1), 0);
                        break;
                }
                run_ipcbusd(&r, args, &fd, 1);
                close(fd);
                if (pipefd[1] >= 0)
                        close(pipefd[1]);

                status = testbus_proc_finish(&r.p, TESTBUS_WAIT_MS * testbus_slow_factor());
                ck_assert_msg(status != 0, "ipcbusd served %s", cases[i].what);
                expect_prefixed_lines(r.p.err.buf);
                ck_assert_msg(has_line(r.p.err.buf, "<3>", "descriptor 3") &&
                                      has_line(r.p.err.buf, "<3>", cases[i].says),
                              "for %s expected an error line naming descriptor 3 and saying '%s', got:\n%s",
                              cases[i].what, cases[i].says, r.p.err.buf);
                ck_assert_msg(access(address + strlen("unix:path="), F_OK) < 0,
                              "ipcbusd bound its own socket although one was handed over");
                run_deinit(&r);
        }
}
END_TEST

/* ---- notifications -------------------------------------------------------------------------- */

/*
 * Binding its own socket: READY=1 (with a STATUS= line) comes only once the
 * bus accepts connections: the moment it arrives, a client can connect and
 * say Hello.
 */
START_TEST(test_notify_ready_own_socket)
{
        struct run r;
        const char *args[] = {"--address", NULL, NULL};
        char *msg;
        ipcbus_bus *a;
        int fd;

        run_init(&r);
        run_notify_socket(&r, false);
        args[1] = r.tb.address;
        run_ipcbusd(&r, args, NULL, 0);

        msg = notify_expect(&r, "READY", NULL, NULL);
        ck_assert_str_eq(notify_value(msg, "READY"), "1");
        ck_assert_msg(notify_value(msg, "STATUS"), "READY=1 without STATUS=: %s", msg);
        /* accepting already: connect() must not fail now (ENOENT, ECONNREFUSED) */
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        {
                struct sockaddr_un sa;
                socklen_t len = unix_address(r.tb.socket_path, &sa);

                ck_assert_msg(connect(fd, (struct sockaddr *) &sa, len) == 0, "READY=1 came, but connecting failed: %s",
                              strerror(errno));
        }
        close(fd);
        a = testbus_connect(&r.tb);
        free(hello_and_get_id(a));
        ck_assert_msg(strstr(notify_value(msg, "STATUS"), r.tb.address), "STATUS does not name the address: %s", msg);
        free(msg);
        ipcbus_unref(a);
        run_terminate(&r);
        run_deinit(&r);
}
END_TEST

/* SIGHUP: RELOADING=1 (with MONOTONIC_USEC, as systemd wants it), then READY=1 again; clients stay. */
START_TEST(test_notify_reload)
{
        struct run r;
        const char *args[] = {"--address", NULL, NULL};
        char *msg, *id;
        ipcbus_bus *a;

        run_init(&r);
        run_notify_socket(&r, false);
        args[1] = r.tb.address;
        run_ipcbusd(&r, args, NULL, 0);
        free(notify_expect(&r, "READY", NULL, NULL));
        a = testbus_connect(&r.tb);
        id = hello_and_get_id(a);

        kill(r.p.pid, SIGHUP);
        msg = notify_expect(&r, "RELOADING", NULL, NULL);
        ck_assert_str_eq(notify_value(msg, "RELOADING"), "1");
        ck_assert_msg(notify_value(msg, "MONOTONIC_USEC"), "RELOADING=1 without MONOTONIC_USEC=: %s", msg);
        free(msg);
        msg = notify_expect(&r, "READY", NULL, NULL);
        ck_assert_str_eq(notify_value(msg, "READY"), "1");
        free(msg);

        /* The same connection still works, and ReloadConfig notifies the same way. */
        json_object_put(testbus_driver(a, "ReloadConfig", NULL));
        free(notify_expect(&r, "RELOADING", NULL, NULL));
        free(notify_expect(&r, "READY", NULL, NULL));
        free(hello_and_get_id(a));
        free(id);
        ipcbus_unref(a);
        run_terminate(&r);
        run_deinit(&r);
}
END_TEST

/* With a handed socket and an abstract NOTIFY_SOCKET ("@name"). */
START_TEST(test_notify_ready_abstract)
{
        struct run r;
        const char *args[] = {NULL};
        char *msg, want[320];
        ipcbus_bus *a;
        int fd;

        run_init(&r);
        run_notify_socket(&r, true);
        fd = make_socket(SOCK_STREAM, r.tb.socket_path, true);
        run_ipcbusd(&r, args, &fd, 1);
        close(fd);

        msg = notify_expect(&r, "READY", "1", NULL);
        snprintf(want, sizeof(want), "Serving 0 connections on %s", r.tb.address);
        ck_assert_msg(notify_value(msg, "STATUS") && strcmp(notify_value(msg, "STATUS"), want) == 0,
                      "expected STATUS=%s with READY=1, got: %s", want, msg);
        free(msg);
        a = testbus_connect(&r.tb);
        free(hello_and_get_id(a));
        ipcbus_unref(a);
        run_terminate(&r);
        run_deinit(&r);
}
END_TEST

/*
 * STATUS= follows the connections, coalesced: a burst of connections gives
 * a handful of updates, not one per connection, and nothing comes while
 * nothing changes.
 */
START_TEST(test_notify_status_connections)
{
        enum { BURST = 20 };
        struct run r;
        const char *args[] = {NULL};
        ipcbus_bus *c[BURST];
        char *msg, want[320];
        unsigned skipped;
        int64_t start, elapsed;
        int fd;

        run_init(&r);
        run_notify_socket(&r, false);
        fd = make_socket(SOCK_STREAM, r.tb.socket_path, true);
        run_ipcbusd(&r, args, &fd, 1);
        close(fd);
        free(notify_expect(&r, "READY", "1", NULL));

        c[0] = testbus_connect(&r.tb);
        c[1] = testbus_connect(&r.tb);
        snprintf(want, sizeof(want), "Serving 2 connections on %s", r.tb.address);
        msg = notify_expect(&r, "STATUS", "2 connections", NULL);
        ck_assert_str_eq(notify_value(msg, "STATUS"), want);
        free(msg);

        ipcbus_unref(c[1]);
        snprintf(want, sizeof(want), "Serving 1 connection on %s", r.tb.address);
        msg = notify_expect(&r, "STATUS", "1 connection ", NULL);
        ck_assert_str_eq(notify_value(msg, "STATUS"), want);
        free(msg);

        /* a burst: at most about one update per second */
        start = testbus_now_ms();
        for (int i = 1; i < BURST; i++)
                c[i] = testbus_connect(&r.tb);
        msg = notify_expect(&r, "STATUS", "Serving 20 connections", &skipped);
        elapsed = testbus_now_ms() - start;
        free(msg);
        ck_assert_msg(skipped + 1 <= 2 + elapsed / 1000, "%u status updates in %lld ms", skipped + 1,
                      (long long) elapsed);

        /* idle: no more updates */
        msg = notify_recv(&r, 1500);
        ck_assert_msg(!msg, "a notification while nothing changed: %s", msg);

        for (int i = 0; i < BURST; i++)
                ipcbus_unref(c[i]);
        msg = notify_expect(&r, "STATUS", "Serving 0 connections", NULL);
        free(msg);
        run_terminate(&r);
        run_deinit(&r);
}
END_TEST

/*
 * SIGTERM: STOPPING=1; new connections are refused from then on; what a
 * client queued before is still delivered (the broker waits for the
 * receiver to read it all), then every connection closes and ipcbusd exits 0.
 */
#define FLUSH_CHUNKS 64
#define FLUSH_CHUNK_BYTES 65536
#define FLUSH_CONFIG "{\"type\":\"session\",\"limits\":{\"backpressure_bytes\":67108864,\"stall_timeout_ms\":600000}}"

START_TEST(test_sigterm_flush_stopping)
{
        struct run r;
        char config_path[256], *receiver, *sender, *msg, *body, header[512];
        const char *args[] = {"--config", config_path, NULL};
        struct testbus_frame f;
        struct sockaddr_un sa;
        socklen_t sa_len;
        int fd, a, b, got = 0, status, rc;
        FILE *cf;

        run_init(&r);
        run_notify_socket(&r, false);
        snprintf(config_path, sizeof(config_path), "%s/config.json", r.dir);
        cf = fopen(config_path, "we");
        ck_assert_ptr_nonnull(cf);
        fputs(FLUSH_CONFIG, cf);
        fclose(cf);
        fd = make_socket(SOCK_STREAM, r.tb.socket_path, true);
        run_ipcbusd(&r, args, &fd, 1);
        close(fd); /* the broker holds the only listening descriptor */
        free(notify_expect(&r, "READY", "1", NULL));

        /* b receives but does not read yet; a sends it far more than a socket buffer holds */
        b = testbus_raw_connect(&r.tb);
        receiver = testbus_raw_hello(b);
        a = testbus_raw_connect(&r.tb);
        sender = testbus_raw_hello(a);
        body = malloc(FLUSH_CHUNK_BYTES + 64);
        ck_assert_ptr_nonnull(body);
        for (int i = 0; i < FLUSH_CHUNKS; i++) {
                int len = snprintf(body, 64, "{\"i\":%d,\"fill\":\"", i);

                memset(body + len, 'x', FLUSH_CHUNK_BYTES - (size_t) len - 2);
                strcpy(body + FLUSH_CHUNK_BYTES - 2, "\"}");
                snprintf(header, sizeof(header),
                         "{\"type\":\"signal\",\"serial\":%d,\"destination\":\"%s\",\"path\":\"/org/example/Flush\","
                         "\"interface\":\"org.example.Flush\",\"member\":\"Chunk\"}",
                         i + 2, receiver);
                testbus_raw_send_frame(a, header, body);
        }
        free(body);
        /* the driver answers in order: every chunk is routed (queued for b) now */
        testbus_raw_ping(a, FLUSH_CHUNKS + 2);

        kill(r.p.pid, SIGTERM);
        msg = notify_expect(&r, "STOPPING", "1", NULL);
        free(msg);

        /* no new connections */
        sa_len = unix_address(r.tb.socket_path, &sa);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        rc = connect(fd, (struct sockaddr *) &sa, sa_len);
        ck_assert_msg(rc < 0 && errno == ECONNREFUSED, "connecting after STOPPING=1: %s",
                      rc == 0 ? "accepted" : strerror(errno));
        close(fd);
        /* b has not read: the broker is still there, holding b's queue */
        ck_assert_msg(waitpid(r.p.pid, &status, WNOHANG) == 0, "ipcbusd exited before flushing");

        /* everything a sent arrives, in order, then the connection closes */
        for (;;) {
                int rr = testbus_raw_recv(b, TESTBUS_WAIT_MS * testbus_slow_factor(), &f);
                const char *member;

                if (rr == 0 || rr == -ECONNRESET)
                        break;
                ck_assert_msg(rr == 1, "reading the flushed queue: %s", strerror(-rr));
                member = testbus_frame_string(&f, "member");
                if (member && strcmp(member, "Chunk") == 0) {
                        ck_assert_str_eq(testbus_frame_string(&f, "sender"), sender);
                        ck_assert_int_eq(testbus_json_int(f.b, "i"), got);
                        ck_assert_uint_eq(f.body_len, FLUSH_CHUNK_BYTES);
                        got++;
                }
                testbus_frame_deinit(&f);
        }
        ck_assert_int_eq(got, FLUSH_CHUNKS);
        testbus_raw_expect_eof(a);
        close(a);
        close(b);

        status = testbus_proc_finish(&r.p, TESTBUS_WAIT_MS * testbus_slow_factor());
        ck_assert_msg(status == 0, "ipcbusd exited %d; its stderr:\n%s", status, r.p.err.buf);
        /* the handed socket's file stays */
        inode_of(r.tb.socket_path);
        free(receiver);
        free(sender);
        run_deinit(&r);
}
END_TEST

/* ---- logging ------------------------------------------------------------------------------- */

/* By default only warnings and errors: a run with a client says nothing at all. */
START_TEST(test_log_quiet)
{
        struct run r;
        const char *args[] = {"--print-address", "--address", NULL, NULL};
        ipcbus_bus *a;

        run_init(&r);
        args[2] = r.tb.address;
        run_ipcbusd(&r, args, NULL, 0);
        free(run_stdout_line(&r));
        a = testbus_connect(&r.tb);
        free(hello_and_get_id(a));
        ipcbus_unref(a);
        run_terminate(&r);
        expect_prefixed_lines(r.p.err.buf);
        for (int level = 5; level <= 7; level++) {
                char prefix[8];

                snprintf(prefix, sizeof(prefix), "<%d>", level);
                ck_assert_msg(!has_line(r.p.err.buf, prefix, NULL), "a %s line without -v:\n%s", prefix, r.p.err.buf);
        }
        ck_assert_msg(r.p.err.buf[0] == '\0', "ipcbusd logged something in a normal run:\n%s", r.p.err.buf);
        run_deinit(&r);
}
END_TEST

/* -v: the startup says what runs where, at <6>; so do shutdown and exit. */
START_TEST(test_log_verbose)
{
        struct run r;
        const char *args[] = {"-v", "--print-address", "--address", NULL, NULL};
        char want[64];

        run_init(&r);
        run_notify_socket(&r, false);
        args[3] = r.tb.address;
        run_ipcbusd(&r, args, NULL, 0);
        free(run_stdout_line(&r));
        run_terminate(&r);

        expect_prefixed_lines(r.p.err.buf);
        snprintf(want, sizeof(want), "(pid %d,", (int) r.p.pid);
        ck_assert_msg(has_line(r.p.err.buf, "<6>starting, version ", want), "no startup line with the pid:\n%s", r.p.err.buf);
        ck_assert_msg(has_line(r.p.err.buf, "<6>starting, version ", "session bus"), "no bus type:\n%s", r.p.err.buf);
        ck_assert_msg(has_line(r.p.err.buf, "<6>starting, version ", "built-in session.json"), "no configuration:\n%s",
                      r.p.err.buf);
        ck_assert_msg(has_line(r.p.err.buf, "<6>listening on ", r.tb.address), "no address:\n%s", r.p.err.buf);
        ck_assert_msg(has_line(r.p.err.buf, "<6>notifying the service manager", r.notify), "no NOTIFY_SOCKET:\n%s",
                      r.p.err.buf);
        ck_assert_msg(has_line(r.p.err.buf, "<6>SIGTERM", NULL), "no shutdown line:\n%s", r.p.err.buf);
        run_deinit(&r);
}
END_TEST

/*
 * Errors: a line at error level and a non-zero exit, for a bad address as for
 * a bad option: "<3>" when stderr is the journal or with --log-prefix,
 * "ipcbusd: error: " otherwise.
 */
START_TEST(test_log_errors)
{
        static const char *const bad[][3] = {
                {"--address", "tcp:host=localhost", "invalid address"},
                {"--no-such-option", NULL, "--no-such-option"},
                {"--address", NULL, "--address"},
        };
        static const struct {
                bool journal;
                const char *option;
                const char *prefix;
        } forms[] = {
                {true, NULL, "<3>"},
                {false, NULL, "ipcbusd: error: "},
                {false, "--log-prefix", "<3>"},
        };

        for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
                for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                        struct run r;
                        const char *args[] = {bad[i][0], bad[i][1], NULL, NULL};
                        int status;

                        if (forms[f].option) {
                                args[0] = forms[f].option;
                                args[1] = bad[i][0];
                                args[2] = bad[i][1];
                        }
                        run_init(&r);
                        r.journal = forms[f].journal;
                        run_ipcbusd(&r, args, NULL, 0);
                        status = testbus_proc_finish(&r.p, TESTBUS_WAIT_MS * testbus_slow_factor());
                        ck_assert_msg(status != 0, "ipcbusd %s %s exited 0", bad[i][0], bad[i][1] ? bad[i][1] : "");
                        if (forms[f].prefix[0] == '<')
                                expect_prefixed_lines(r.p.err.buf);
                        else
                                expect_named_lines(r.p.err.buf);
                        ck_assert_msg(has_line(r.p.err.buf, forms[f].prefix, bad[i][2]), "no '%s' line with '%s':\n%s",
                                      forms[f].prefix, bad[i][2], r.p.err.buf);
                        run_deinit(&r);
                }
        }
}
END_TEST

/*
 * Not the journal: without JOURNAL_STREAM, or with one naming another file
 * (inherited by a process whose stderr was redirected), every line starts
 * with the program's name and a warning says so in words.
 */
START_TEST(test_log_words)
{
        for (int stale = 0; stale <= 1; stale++) {
                struct run r;
                char ignored[300];
                const char *args[] = {"--print-address", "--address", ignored, NULL};
                struct stat st;
                int fd;

                run_init(&r);
                r.journal = false;
                if (stale) {
                        ck_assert_int_eq(stat(r.dir, &st), 0);
                        snprintf(r.journal_stream, sizeof(r.journal_stream), "%ju:%ju", (uintmax_t) st.st_dev,
                                 (uintmax_t) st.st_ino);
                }
                /* a warning: --address is not bound when a socket is handed over */
                snprintf(ignored, sizeof(ignored), "unix:path=%s/ignored", r.dir);
                fd = make_socket(SOCK_STREAM, r.tb.socket_path, true);
                run_ipcbusd(&r, args, &fd, 1);
                close(fd);
                free(run_stdout_line(&r));
                run_terminate(&r);
                expect_named_lines(r.p.err.buf);
                ck_assert_msg(has_line(r.p.err.buf, "ipcbusd: warning: not listening on --address", ignored),
                              "no warning in words about the ignored --address (%s):\n%s",
                              stale ? "JOURNAL_STREAM naming another file" : "no JOURNAL_STREAM", r.p.err.buf);
                run_deinit(&r);
        }
}
END_TEST

static Suite *systemd_suite(void)
{
        Suite *s = suite_create("bus_systemd");
        TCase *tc;

        tc = testbus_tcase_bare("socket activation");
        tcase_add_unchecked_fixture(tc, suite_dir_setup, suite_dir_teardown);
        tcase_add_test(tc, test_socket_activate);
        tcase_add_test(tc, test_listen_fds_two_sockets);
        tcase_add_test(tc, test_listen_fds_other_pid);
        tcase_add_test(tc, test_listen_fds_not_listening);
        suite_add_tcase(s, tc);

        tc = testbus_tcase_bare("notifications");
        tcase_add_unchecked_fixture(tc, suite_dir_setup, suite_dir_teardown);
        tcase_add_test(tc, test_notify_ready_own_socket);
        tcase_add_test(tc, test_notify_ready_abstract);
        tcase_add_test(tc, test_notify_status_connections);
        tcase_add_test(tc, test_notify_reload);
        tcase_add_test(tc, test_sigterm_flush_stopping);
        suite_add_tcase(s, tc);

        tc = testbus_tcase_bare("logging");
        tcase_add_unchecked_fixture(tc, suite_dir_setup, suite_dir_teardown);
        tcase_add_test(tc, test_log_quiet);
        tcase_add_test(tc, test_log_verbose);
        tcase_add_test(tc, test_log_errors);
        tcase_add_test(tc, test_log_words);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return testbus_run_suite(systemd_suite());
}
