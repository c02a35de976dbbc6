/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testbus.h"

#define HELPERS_MAX 64

static char base_dir[128]; /* per test case, holds one directory per test */
static struct testbus current_bus;
static pid_t helpers[HELPERS_MAX]; /* forked helpers of this test not yet reaped */

/* ---- time, processes, files --------------------------------------------- */

int64_t testbus_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int testbus_slow_factor(void)
{
        const char *v = getenv("CK_TIMEOUT_MULTIPLIER");
        int f = v ? atoi(v) : 1;

        return f > 1 ? f : 1;
}

static uint64_t now_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static int ms_left(int64_t deadline)
{
        int64_t left = deadline - testbus_now_ms();

        return left < 0 ? 0 : left > INT_MAX ? INT_MAX : (int) left;
}

/* A wait status in words, for failure messages (static buffer). */
static const char *status_text(int status)
{
        static char buf[64];

        if (WIFEXITED(status))
                snprintf(buf, sizeof(buf), "exit status %d", WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
                snprintf(buf, sizeof(buf), "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
        else
                snprintf(buf, sizeof(buf), "wait status 0x%x", status);
        return buf;
}

/* waitpid with a deadline: returns pid once it exited, 0 when it is still running at the deadline. */
static pid_t wait_deadline(pid_t pid, int *ret_status, int timeout_ms)
{
        int64_t deadline = testbus_now_ms() + timeout_ms;
        long nap_us = 200;

        for (;;) {
                pid_t r = waitpid(pid, ret_status, WNOHANG);

                if (r == pid)
                        return pid;
                if (r < 0 && errno != EINTR) {
                        *ret_status = 0;
                        return pid; /* not our child (any more): nothing to wait for */
                }
                if (testbus_now_ms() >= deadline)
                        return 0;
                usleep((useconds_t) nap_us);
                if (nap_us < 10000)
                        nap_us *= 2;
        }
}

static void helpers_add(pid_t pid)
{
        for (size_t i = 0; i < HELPERS_MAX; i++)
                if (helpers[i] <= 0) {
                        helpers[i] = pid;
                        return;
                }
        kill(pid, SIGKILL);
        ck_abort_msg("more than %d helper processes in one test", HELPERS_MAX);
}

static void helpers_remove(pid_t pid)
{
        for (size_t i = 0; i < HELPERS_MAX; i++)
                if (helpers[i] == pid)
                        helpers[i] = 0;
}

static void helpers_kill_all(void)
{
        for (size_t i = 0; i < HELPERS_MAX; i++)
                if (helpers[i] > 0) {
                        kill(helpers[i], SIGKILL);
                        waitpid(helpers[i], NULL, 0);
                        helpers[i] = 0;
                }
}

/*
 * In a freshly forked child: die with the test process (a failed assertion
 * ends it with _exit, skipping every teardown), and close every inherited
 * descriptor from 3 up except keep_a and keep_b (-1: none), so a child does
 * not hold the parent's bus connections open.
 */
static void child_prepare(pid_t parent, int keep_a, int keep_b)
{
        int keep[2] = {keep_a < keep_b ? keep_a : keep_b, keep_a < keep_b ? keep_b : keep_a};
        unsigned first = 3;

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
                _exit(1);
        for (size_t i = 0; i < 2; i++) {
                if (keep[i] < (int) first)
                        continue;
                if ((unsigned) keep[i] > first && close_range(first, (unsigned) keep[i] - 1, 0) < 0)
                        for (int fd = (int) first; fd < keep[i]; fd++)
                                close(fd);
                first = (unsigned) keep[i] + 1;
        }
        if (close_range(first, ~0u, 0) < 0)
                for (long fd = first, max = sysconf(_SC_OPEN_MAX); fd < max; fd++)
                        close((int) fd);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        remove(path);
        return 0;
}

static void remove_tree(const char *dir)
{
        if (dir[0])
                nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *tmp_dir(void)
{
        const char *t = getenv("TMPDIR");

        /* a socket path must fit sun_path */
        return t && t[0] == '/' && strlen(t) < 40 ? t : "/tmp";
}

const char *testbus_program(const char *env, const char *rel)
{
        static struct {
                const char *rel;
                char path[PATH_MAX];
        } cache[8];
        const char *v = getenv(env);
        char exe[PATH_MAX], *slash;
        ssize_t n;
        size_t i;

        if (v && v[0])
                return v;
        for (i = 0; i < 8 && cache[i].rel; i++)
                if (strcmp(cache[i].rel, rel) == 0)
                        return cache[i].path;
        ck_assert_msg(i < 8, "too many programs");
        /* the build tree: <builddir>/tests/[.libs/]check_x -> <builddir>/<rel> */
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        ck_assert_msg(n > 0, "$%s is not set and /proc/self/exe is unreadable", env);
        exe[n] = '\0';
        for (int up = 0; up < 2 && (slash = strrchr(exe, '/')); up++) {
                *slash = '\0';
                if (up == 0 && strlen(exe) >= 6 && strcmp(exe + strlen(exe) - 6, "/.libs") == 0)
                        exe[strlen(exe) - 6] = '\0';
        }
        snprintf(cache[i].path, sizeof(cache[i].path), "%s/%s", exe, rel);
        cache[i].rel = rel;
        ck_assert_msg(access(cache[i].path, X_OK) == 0, "$%s is not set and %s is not there", env, cache[i].path);
        return cache[i].path;
}

char *testbus_data_file(const char *name, size_t *ret_len)
{
        const char *dir = getenv("IPCBUS_TEST_DATA");
        char path[PATH_MAX], *data;
        struct stat st;
        int fd;

        ck_assert_msg(dir && dir[0], "$IPCBUS_TEST_DATA is not set (make check sets it to tests/data)");
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_msg(fd >= 0 && fstat(fd, &st) == 0, "%s: %s", path, strerror(errno));
        data = malloc((size_t) st.st_size + 1);
        ck_assert_ptr_nonnull(data);
        ck_assert_msg(read(fd, data, (size_t) st.st_size) == st.st_size, "reading %s", path);
        data[st.st_size] = '\0';
        close(fd);
        *ret_len = (size_t) st.st_size;
        return data;
}

/* ---- suites and fixtures ------------------------------------------------- */

static void base_setup(void)
{
        snprintf(base_dir, sizeof(base_dir), "%s/ipcbus-test-XXXXXX", tmp_dir());
        ck_assert_msg(mkdtemp(base_dir), "mkdtemp(%s): %s", base_dir, strerror(errno));
}

/* The last bytes of a file, from a line start, into buf (empty when unreadable). */
static const char *file_tail(const char *path, char *buf, size_t size)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        off_t end, start;
        ssize_t n;
        char *nl;

        buf[0] = '\0';
        if (fd < 0)
                return buf;
        end = lseek(fd, 0, SEEK_END);
        start = end > (off_t) size - 1 ? end - (off_t) size + 1 : 0;
        n = pread(fd, buf, size - 1, start);
        close(fd);
        buf[n > 0 ? n : 0] = '\0';
        if (start > 0 && (nl = strchr(buf, '\n')))
                memmove(buf, nl + 1, strlen(nl + 1) + 1);
        return buf;
}

/*
 * A broker directory still there at the end of a test case belongs to a test
 * that failed (testbus_stop removes the others): show its broker's log.
 */
static void base_dump_logs(void)
{
        static char tail[8192];
        DIR *d = opendir(base_dir);
        struct dirent *e;

        if (!d)
                return;
        while ((e = readdir(d))) {
                char path[PATH_MAX];

                if (strncmp(e->d_name, "bus-", 4) != 0)
                        continue;
                snprintf(path, sizeof(path), "%s/%s/log", base_dir, e->d_name);
                if (access(path, R_OK) == 0)
                        fprintf(stderr, "---- %s (a failed test's broker), last lines:\n%s----\n", path,
                                file_tail(path, tail, sizeof(tail)));
        }
        closedir(d);
}

static void base_teardown(void)
{
        base_dump_logs();
        remove_tree(base_dir);
        base_dir[0] = '\0';
}

static void current_setup(void)
{
        testbus_start(&current_bus);
}

static void current_teardown(void)
{
        helpers_kill_all();
        testbus_stop(&current_bus);
}

TCase *testbus_tcase(const char *name)
{
        TCase *tc = tcase_create(name);

        tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
        tcase_add_checked_fixture(tc, current_setup, current_teardown);
        tcase_set_timeout(tc, TESTBUS_TIMEOUT_S);
        return tc;
}

/*
 * Test cases with a configuration. A fixture takes no argument, so each such
 * test case gets its own unchecked setup from a small pool; it runs in the
 * runner before the test case's tests (which are forked from it) and says
 * which configuration they use.
 */
#define CONFIG_TCASES_MAX 8
static const char *config_tcases[CONFIG_TCASES_MAX];
static size_t n_config_tcases;
static const char *current_config;

#define CONFIG_TCASE_SETUP(i)                                                                                          \
        static void config_tcase_setup_##i(void)                                                                       \
        {                                                                                                              \
                current_config = config_tcases[i];                                                                     \
                base_setup();                                                                                          \
        }
CONFIG_TCASE_SETUP(0)
CONFIG_TCASE_SETUP(1)
CONFIG_TCASE_SETUP(2)
CONFIG_TCASE_SETUP(3)
CONFIG_TCASE_SETUP(4)
CONFIG_TCASE_SETUP(5)
CONFIG_TCASE_SETUP(6)
CONFIG_TCASE_SETUP(7)

static void (*const config_tcase_setups[CONFIG_TCASES_MAX])(void) = {
        config_tcase_setup_0, config_tcase_setup_1, config_tcase_setup_2, config_tcase_setup_3,
        config_tcase_setup_4, config_tcase_setup_5, config_tcase_setup_6, config_tcase_setup_7,
};

static void config_setup(void)
{
        testbus_start_config(&current_bus, current_config);
}

TCase *testbus_tcase_config(const char *name, const char *config_json)
{
        TCase *tc = tcase_create(name);

        if (n_config_tcases == CONFIG_TCASES_MAX) {
                fprintf(stderr, "testbus: more than %d test cases with a configuration\n", CONFIG_TCASES_MAX);
                abort();
        }
        config_tcases[n_config_tcases] = config_json;
        tcase_add_unchecked_fixture(tc, config_tcase_setups[n_config_tcases++], base_teardown);
        tcase_add_checked_fixture(tc, config_setup, current_teardown);
        tcase_set_timeout(tc, TESTBUS_TIMEOUT_S);
        return tc;
}

static void bare_setup(void)
{
        memset(&current_bus, 0, sizeof(current_bus));
        current_bus.stdout_fd = -1;
}

TCase *testbus_tcase_bare(const char *name)
{
        TCase *tc = tcase_create(name);

        tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
        tcase_add_checked_fixture(tc, bare_setup, current_teardown);
        tcase_set_timeout(tc, TESTBUS_TIMEOUT_S);
        return tc;
}

struct testbus *testbus_current(void)
{
        return &current_bus;
}

int testbus_run_suite(Suite *s)
{
        SRunner *sr = srunner_create(s);
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* ---- the broker ---------------------------------------------------------- */

/* Let other users reach the broker's socket: its directory and the test case's (mkdtemp makes them 0700). */
static void share_dirs(struct testbus *tb)
{
        ck_assert_msg(!base_dir[0] || chmod(base_dir, 0755) == 0, "chmod(%s): %s", base_dir, strerror(errno));
        ck_assert_msg(chmod(tb->dir, 0755) == 0, "chmod(%s): %s", tb->dir, strerror(errno));
}

/*
 * In a forked child (after child_prepare): become cred's user for good.
 * Returns 0 or -errno. A change of credentials clears the parent-death
 * signal, so it is set again.
 */
static int child_become(const struct testbus_cred *cred, pid_t parent)
{
        if (setgroups(cred->n_groups, cred->n_groups ? cred->groups : NULL) < 0 || setgid(cred->gid) < 0 ||
            setuid(cred->uid) < 0)
                return -errno;
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
                _exit(1);
        return 0;
}

static void write_file(const char *path, const char *text)
{
        size_t len = strlen(text);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
        ck_assert_msg(write(fd, text, len) == (ssize_t) len, "writing %s: %s", path, strerror(errno));
        close(fd);
}

void testbus_start(struct testbus *tb)
{
        testbus_start_with(tb, NULL);
}

void testbus_start_config(struct testbus *tb, const char *config_json)
{
        const struct testbus_options o = {.config = config_json};

        testbus_start_with(tb, &o);
}

void testbus_start_with(struct testbus *tb, const struct testbus_options *o)
{
        static const struct testbus_options none;
        const char *ipcbusd = testbus_program("IPCBUSD", "daemon/ipcbusd");
        const char *argv[32];
        char config_path[256];
        struct testbus_lines l;
        pid_t parent = getpid(), pid;
        int pfd[2], log_fd, status;
        size_t n = 0;
        char *line;

        if (!o)
                o = &none;
        memset(tb, 0, sizeof(*tb));
        tb->stdout_fd = -1;
        signal(SIGPIPE, SIG_IGN);
        snprintf(tb->dir, sizeof(tb->dir), "%s/bus-XXXXXX", base_dir[0] ? base_dir : tmp_dir());
        ck_assert_msg(mkdtemp(tb->dir), "mkdtemp(%s): %s", tb->dir, strerror(errno));
        snprintf(tb->socket_path, sizeof(tb->socket_path), "%s/bus", tb->dir);
        snprintf(tb->address, sizeof(tb->address), "unix:path=%s", tb->socket_path);
        snprintf(tb->log_path, sizeof(tb->log_path), "%s/log", tb->dir);

        argv[n++] = "ipcbusd";
        for (size_t i = 0; o->args && o->args[i]; i++) {
                ck_assert_uint_lt(n, 24);
                argv[n++] = o->args[i];
        }
        if (o->config) {
                snprintf(config_path, sizeof(config_path), "%s/config.json", tb->dir);
                write_file(config_path, o->config);
                argv[n++] = "--config";
                argv[n++] = config_path;
        }
        argv[n++] = "--address";
        argv[n++] = tb->address;
        argv[n++] = "--print-address";
        argv[n++] = "-v";
        argv[n] = NULL;
        if (o->cred) {
                share_dirs(tb);
                ck_assert_msg(chown(tb->dir, o->cred->uid, o->cred->gid) == 0, "chown(%s): %s", tb->dir,
                              strerror(errno));
        }

        log_fd = open(tb->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
        ck_assert_msg(log_fd >= 0, "%s: %s", tb->log_path, strerror(errno));
        ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid == 0) {
                dup2(pfd[1], STDOUT_FILENO);
                dup2(log_fd, STDERR_FILENO);
                child_prepare(parent, -1, -1);
                if (o->cred && child_become(o->cred, parent) < 0) {
                        fprintf(stderr, "cannot run as uid %u: %s\n", (unsigned) o->cred->uid, strerror(errno));
                        _exit(126);
                }
                execv(ipcbusd, (char *const *) argv);
                fprintf(stderr, "exec %s: %s\n", ipcbusd, strerror(errno));
                _exit(127);
        }
        ck_assert_msg(pid > 0, "fork: %s", strerror(errno));
        close(log_fd);
        close(pfd[1]);
        tb->pid = pid;
        tb->stdout_fd = pfd[0];

        testbus_lines_init(&l, pfd[0]);
        line = testbus_lines_read(&l, 10000 * testbus_slow_factor());
        l.fd = -1; /* the descriptor stays with tb until stop */
        testbus_lines_deinit(&l);
        if (!line) {
                const char *why = wait_deadline(pid, &status, 0) ? status_text(status) : "still running";
                const char *log = testbus_log_tail(tb);

                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                tb->pid = 0;
                remove_tree(tb->dir);
                ck_abort_msg("%s did not print its address (%s); its log:\n%s", ipcbusd, why, log);
        }
        ck_assert_msg(strcmp(line, tb->address) == 0, "ipcbusd printed '%s', expected '%s'", line, tb->address);
        free(line);
}

bool testbus_alive(struct testbus *tb)
{
        int status;

        return tb->pid > 0 && waitpid(tb->pid, &status, WNOHANG) == 0;
}

void testbus_stop(struct testbus *tb)
{
        pid_t pid = tb->pid;
        int status;

        if (pid <= 0)
                return;
        tb->pid = 0;
        if (waitpid(pid, &status, WNOHANG) == pid) {
                const char *log = testbus_log_tail(tb);

                remove_tree(tb->dir);
                ck_abort_msg("ipcbusd died during the test: %s; its log:\n%s", status_text(status), log);
        }
        kill(pid, SIGCONT); /* in case a test left it stopped */
        kill(pid, SIGTERM);
        if (!wait_deadline(pid, &status, TESTBUS_WAIT_MS)) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                remove_tree(tb->dir);
                ck_abort_msg("ipcbusd did not exit within %d ms of SIGTERM", TESTBUS_WAIT_MS);
        }
        if (tb->stdout_fd >= 0)
                close(tb->stdout_fd);
        tb->stdout_fd = -1;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                const char *log = testbus_log_tail(tb);

                remove_tree(tb->dir);
                ck_abort_msg("ipcbusd after SIGTERM: %s; its log:\n%s", status_text(status), log);
        }
        remove_tree(tb->dir);
}

/* ---- the broker's log and memory ------------------------------------------------- */

const char *testbus_log_tail(struct testbus *tb)
{
        /* short enough for a Check failure message */
        static char buf[2048];

        return file_tail(tb->log_path, buf, sizeof(buf));
}

/* The whole file (malloc'd, NUL-terminated; "" when it cannot be read). */
static char *file_read(const char *path)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        char *text;
        ssize_t n = 0;

        if (fd >= 0 && fstat(fd, &st) == 0) {
                text = malloc((size_t) st.st_size + 1);
                ck_assert_ptr_nonnull(text);
                n = read(fd, text, (size_t) st.st_size);
        } else {
                text = malloc(1);
                ck_assert_ptr_nonnull(text);
        }
        if (fd >= 0)
                close(fd);
        text[n > 0 ? n : 0] = '\0';
        return text;
}

/* Does a line of text contain every string of want? */
static bool text_has_line(const char *text, const char *const *want, size_t n)
{
        for (const char *line = text; *line;) {
                const char *end = strchrnul(line, '\n');
                size_t i = 0;

                for (; i < n; i++) {
                        const char *hit = memmem(line, (size_t) (end - line), want[i], strlen(want[i]));

                        if (!hit)
                                break;
                }
                if (i == n)
                        return true;
                line = *end ? end + 1 : end;
        }
        return false;
}

bool testbus_log_wait_line(struct testbus *tb, int timeout_ms, ...)
{
        int64_t deadline = testbus_now_ms() + timeout_ms;
        const char *want[8];
        size_t n = 0;
        va_list ap;

        va_start(ap, timeout_ms);
        for (const char *w; (w = va_arg(ap, const char *));) {
                ck_assert_uint_lt(n, 8);
                want[n++] = w;
        }
        va_end(ap);
        for (;;) {
                char *text = file_read(tb->log_path);
                bool found = text_has_line(text, want, n);

                free(text);
                if (found)
                        return true;
                if (ms_left(deadline) <= 0)
                        return false;
                usleep(20000);
        }
}

bool testbus_log_wait(struct testbus *tb, const char *substring, int timeout_ms)
{
        return testbus_log_wait_line(tb, timeout_ms, substring, (const char *) NULL);
}

long testbus_status_kb(struct testbus *tb, const char *field)
{
        char path[64], line[256];
        size_t n = strlen(field);
        long kb = -1;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int) tb->pid);
        f = fopen(path, "re");
        ck_assert_msg(f, "%s: %s", path, strerror(errno));
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, field, n) == 0 && line[n] == ':' && sscanf(line + n + 1, "%ld kB", &kb) == 1)
                        break;
        fclose(f);
        ck_assert_msg(kb > 0, "no %s in %s", field, path);
        return kb;
}

unsigned testbus_fd_count(struct testbus *tb)
{
        char path[64];
        unsigned n = 0;
        struct dirent *e;
        DIR *d;

        snprintf(path, sizeof(path), "/proc/%d/fd", (int) tb->pid);
        d = opendir(path);
        ck_assert_msg(d, "%s: %s", path, strerror(errno));
        while ((e = readdir(d)))
                n += e->d_name[0] != '.';
        closedir(d);
        return n;
}

long testbus_rss_kb(struct testbus *tb)
{
        return testbus_status_kb(tb, "VmRSS");
}

long testbus_peak_rss_kb(struct testbus *tb)
{
        return testbus_status_kb(tb, "VmHWM");
}

/* ---- line readers --------------------------------------------------------- */

/*
 * The line readers also run in forked children, where Check must not be
 * called (its messages would go to whatever descriptor now has the number
 * of Check's pipe, e.g. a bus socket): allocation failure aborts instead.
 */
static void *nonnull(void *p)
{
        if (!p)
                abort();
        return p;
}

void testbus_lines_init(struct testbus_lines *l, int fd)
{
        *l = (struct testbus_lines){.fd = fd};
        l->cap = 4096;
        l->buf = nonnull(malloc(l->cap));
        l->buf[0] = '\0';
}

void testbus_lines_deinit(struct testbus_lines *l)
{
        if (l->fd >= 0)
                close(l->fd);
        free(l->buf);
        *l = (struct testbus_lines){.fd = -1};
}

/* Wait up to timeout_ms for input and read what is there once. Returns false on timeout. */
static bool lines_fill(struct testbus_lines *l, int timeout_ms)
{
        struct pollfd pfd = {.fd = l->fd, .events = POLLIN};
        ssize_t n;
        int r;

        if (l->eof)
                return true;
        r = poll(&pfd, 1, timeout_ms);
        if (r < 0 && errno == EINTR)
                return true;
        if (r <= 0)
                return false;
        if (l->cap - l->len < 65536 + 1) {
                l->cap = (l->len + 65536 + 1) * 2;
                l->buf = nonnull(realloc(l->buf, l->cap));
        }
        n = read(l->fd, l->buf + l->len, 65536);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return true;
        if (n <= 0)
                l->eof = true;
        else
                l->len += (size_t) n;
        l->buf[l->len] = '\0';
        return true;
}

char *testbus_lines_read(struct testbus_lines *l, int timeout_ms)
{
        int64_t deadline = testbus_now_ms() + timeout_ms;

        for (;;) {
                char *nl = memchr(l->buf, '\n', l->len), *line;
                size_t n;

                if (nl || (l->eof && l->len)) {
                        n = nl ? (size_t) (nl - l->buf) : l->len;
                        line = nonnull(strndup(l->buf, n));
                        n = nl ? n + 1 : n;
                        memmove(l->buf, l->buf + n, l->len - n);
                        l->len -= n;
                        l->buf[l->len] = '\0';
                        return line;
                }
                if (l->eof || ms_left(deadline) <= 0)
                        return NULL;
                lines_fill(l, ms_left(deadline));
        }
}

bool testbus_lines_drain(struct testbus_lines *l, int64_t deadline_ms)
{
        while (!l->eof && ms_left(deadline_ms) > 0)
                lines_fill(l, ms_left(deadline_ms));
        return l->eof;
}

/* Drain two readers at once (a process can block on either pipe). */
static bool lines_drain_two(struct testbus_lines *a, struct testbus_lines *b, int64_t deadline_ms)
{
        while ((!a->eof || !b->eof) && ms_left(deadline_ms) > 0) {
                struct pollfd pfd[2] = {
                        {.fd = a->eof ? -1 : a->fd, .events = POLLIN},
                        {.fd = b->eof ? -1 : b->fd, .events = POLLIN},
                };

                if (poll(pfd, 2, ms_left(deadline_ms)) <= 0)
                        continue;
                if (pfd[0].revents)
                        lines_fill(a, 0);
                if (pfd[1].revents)
                        lines_fill(b, 0);
        }
        return a->eof && b->eof;
}

/* ---- clients through libipcbus --------------------------------------------- */

ipcbus_bus *testbus_connect(struct testbus *tb)
{
        ipcbus_bus *bus = NULL;
        int r = ipcbus_open_address(tb->address, &bus);

        ck_assert_msg(r >= 0, "ipcbus_open_address(%s): %s", tb->address, ipcbus_strerror(r));
        ck_assert_ptr_nonnull(bus);
        testbus_sync(bus);
        return bus;
}

/* The test process's own credentials while it acts as another user. */
struct saved_cred {
        uid_t euid;
        gid_t egid;
        int n_groups;
        gid_t groups[64];
};

/*
 * Act as cred's user (effective ids and groups) until cred_leave: a socket
 * connected meanwhile carries these credentials for good. Needs root.
 */
static void cred_enter(struct testbus *tb, const struct testbus_cred *cred, struct saved_cred *s)
{
        ck_assert_msg(geteuid() == 0, "acting as another user needs root");
        share_dirs(tb);
        s->euid = geteuid();
        s->egid = getegid();
        s->n_groups = getgroups(64, s->groups);
        ck_assert_msg(s->n_groups >= 0, "getgroups: %s", strerror(errno));
        ck_assert_msg(setgroups(cred->n_groups, cred->n_groups ? cred->groups : NULL) == 0 && setegid(cred->gid) == 0 &&
                              seteuid(cred->uid) == 0,
                      "cannot act as uid %u gid %u: %s", (unsigned) cred->uid, (unsigned) cred->gid, strerror(errno));
}

static void cred_leave(const struct saved_cred *s)
{
        /* the way back must work: the rest of the test would run with the wrong rights */
        if (seteuid(s->euid) < 0 || setegid(s->egid) < 0 || setgroups((size_t) s->n_groups, s->groups) < 0)
                abort();
}

int testbus_open_as(struct testbus *tb, const struct testbus_cred *cred, ipcbus_bus **ret)
{
        struct saved_cred s;
        int r;

        cred_enter(tb, cred, &s);
        r = ipcbus_open_address(tb->address, ret);
        cred_leave(&s);
        return r;
}

ipcbus_bus *testbus_connect_as(struct testbus *tb, const struct testbus_cred *cred)
{
        ipcbus_bus *bus = NULL;
        int r = testbus_open_as(tb, cred, &bus);

        ck_assert_msg(r >= 0, "ipcbus_open_address(%s) as uid %u: %s", tb->address, (unsigned) cred->uid,
                      ipcbus_strerror(r));
        ck_assert_ptr_nonnull(bus);
        testbus_sync(bus);
        return bus;
}

void testbus_pump(ipcbus_bus *bus)
{
        int r;

        while ((r = ipcbus_process(bus)) > 0)
                ;
        ck_assert_msg(r == 0, "ipcbus_process: %s", ipcbus_strerror(r));
}

void testbus_sync(ipcbus_bus *bus)
{
        json_object *o = testbus_driver(bus, "Ping", NULL);

        json_object_put(o);
        testbus_pump(bus);
}

bool testbus_pump_until(ipcbus_bus *const *buses, bool (*done)(void *userdata), void *userdata, int timeout_ms)
{
        int64_t deadline = testbus_now_ms() + timeout_ms;

        for (;;) {
                struct pollfd pfd[16];
                size_t n = 0;
                int timeout;

                for (size_t i = 0; buses[i]; i++)
                        testbus_pump(buses[i]);
                if (done(userdata))
                        return true;
                timeout = ms_left(deadline);
                if (timeout <= 0)
                        return false;
                for (; buses[n]; n++) {
                        uint64_t t = UINT64_MAX, now = now_usec();

                        ck_assert_uint_lt(n, 16);
                        pfd[n] = (struct pollfd){.fd = ipcbus_get_fd(buses[n]),
                                                 .events = (short) ipcbus_get_events(buses[n])};
                        ipcbus_get_timeout(buses[n], &t);
                        if (t != UINT64_MAX) {
                                uint64_t ms = t <= now ? 0 : (t - now + 999) / 1000;
                                if (ms < (uint64_t) timeout)
                                        timeout = (int) ms;
                        }
                }
                poll(pfd, n, timeout);
        }
}

/* ---- JSON ------------------------------------------------------------------ */

json_object *testbus_json(const char *text, size_t len)
{
        json_tokener *tok = json_tokener_new_ex(200);
        json_object *o;
        size_t end;

        ck_assert_ptr_nonnull(tok);
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        o = json_tokener_parse_ex(tok, text, (int) len);
        ck_assert_msg(json_tokener_get_error(tok) == json_tokener_success, "not JSON (%s): %.*s",
                      json_tokener_error_desc(json_tokener_get_error(tok)), (int) (len > 200 ? 200 : len), text);
        end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        for (; end < len; end++)
                ck_assert_msg(strchr(" \t\r\n", text[end]), "trailing bytes after JSON: %.*s", (int) len, text);
        return o;
}

static json_object *json_member(json_object *o, const char *key, json_type type)
{
        json_object *v = NULL;

        ck_assert_msg(o && json_object_is_type(o, json_type_object), "not a JSON object: %s",
                      o ? json_object_to_json_string(o) : "(none)");
        ck_assert_msg(json_object_object_get_ex(o, key, &v), "no member \"%s\" in %s", key,
                      json_object_to_json_string(o));
        ck_assert_msg(json_object_is_type(v, type), "member \"%s\" has the wrong type in %s", key,
                      json_object_to_json_string(o));
        return v;
}

const char *testbus_json_string(json_object *o, const char *key)
{
        return json_object_get_string(json_member(o, key, json_type_string));
}

int64_t testbus_json_int(json_object *o, const char *key)
{
        return json_object_get_int64(json_member(o, key, json_type_int));
}

bool testbus_json_bool(json_object *o, const char *key)
{
        return json_object_get_boolean(json_member(o, key, json_type_boolean));
}

json_object *testbus_json_array(json_object *o, const char *key)
{
        return json_member(o, key, json_type_array);
}

void testbus_json_keys(json_object *o, ...)
{
        va_list ap;
        int n = 0;

        ck_assert_msg(o && json_object_is_type(o, json_type_object), "not a JSON object: %s",
                      o ? json_object_to_json_string(o) : "(none)");
        va_start(ap, o);
        for (const char *k; (k = va_arg(ap, const char *)); n++)
                ck_assert_msg(json_object_object_get_ex(o, k, NULL), "no member \"%s\" in %s", k,
                              json_object_to_json_string(o));
        va_end(ap);
        ck_assert_msg(json_object_object_length(o) == n, "expected exactly %d members: %s", n,
                      json_object_to_json_string(o));
}

bool testbus_json_array_has(json_object *array, const char *s)
{
        for (size_t i = 0; i < json_object_array_length(array); i++) {
                json_object *v = json_object_array_get_idx(array, i);

                if (json_object_is_type(v, json_type_string) && strcmp(json_object_get_string(v), s) == 0)
                        return true;
        }
        return false;
}

json_object *testbus_message_json(ipcbus_message *m)
{
        size_t len = 0;
        const char *body = ipcbus_message_get_body(m, &len);

        return len ? testbus_json(body, len) : NULL;
}

/* ---- calls -------------------------------------------------------------------- */

json_object *testbus_call(ipcbus_bus *bus, const char *destination, const char *path, const char *interface,
                          const char *member, const char *body)
{
        ipcbus_message *reply = NULL;
        ipcbus_error e = IPCBUS_ERROR_NULL;
        json_object *o;
        int r;

        r = ipcbus_call(bus, destination, path, interface, member, body, 10 * 1000000ull, &reply, &e);
        ck_assert_msg(r >= 0, "%s on %s failed: %s: %s", member, destination,
                      r == -EREMOTEIO ? e.name : ipcbus_strerror(r), e.message ? e.message : "");
        ck_assert_ptr_nonnull(reply);
        ck_assert_int_eq(ipcbus_message_get_type(reply), IPCBUS_MESSAGE_RETURN);
        o = testbus_message_json(reply);
        ipcbus_message_unref(reply);
        return o;
}

char *testbus_call_error(ipcbus_bus *bus, const char *destination, const char *path, const char *interface,
                         const char *member, const char *body, const char *error_name)
{
        ipcbus_message *reply = NULL;
        ipcbus_error e = IPCBUS_ERROR_NULL;
        char *message;
        int r;

        r = ipcbus_call(bus, destination, path, interface, member, body, 10 * 1000000ull, &reply, &e);
        ck_assert_msg(r == -EREMOTEIO, "%s(%s) on %s: expected %s, got %s", member, body ? body : "", destination,
                      error_name, r >= 0 ? "a return" : ipcbus_strerror(r));
        ck_assert_msg(e.name && strcmp(e.name, error_name) == 0, "%s(%s) on %s: expected %s, got %s: %s", member,
                      body ? body : "", destination, error_name, e.name ? e.name : "(no name)",
                      e.message ? e.message : "");
        ipcbus_message_unref(reply);
        message = e.message ? strdup(e.message) : NULL;
        ipcbus_error_free(&e);
        return message;
}

json_object *testbus_driver(ipcbus_bus *bus, const char *member, const char *body)
{
        return testbus_call(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE, member, body);
}

void testbus_driver_error(ipcbus_bus *bus, const char *member, const char *body, const char *error_name)
{
        free(testbus_call_error(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE, member, body,
                                error_name));
}

/* A driver call on one name (with optional flags) whose reply is {"result": N}. */
static int name_call(ipcbus_bus *bus, const char *member, const char *name, int flags)
{
        json_object *o;
        char *body;
        int result;

        ck_assert_int_ge(
                asprintf(&body, flags >= 0 ? "{\"name\":\"%s\",\"flags\":%d}" : "{\"name\":\"%s\"}", name, flags), 0);
        o = testbus_driver(bus, member, body);
        testbus_json_keys(o, "result", NULL);
        result = (int) testbus_json_int(o, "result");
        json_object_put(o);
        free(body);
        return result;
}

int testbus_request_name(ipcbus_bus *bus, const char *name, unsigned flags)
{
        return name_call(bus, "RequestName", name, (int) flags);
}

int testbus_release_name(ipcbus_bus *bus, const char *name)
{
        return name_call(bus, "ReleaseName", name, -1);
}

char *testbus_name_owner(ipcbus_bus *bus, const char *name)
{
        ipcbus_message *reply = NULL;
        ipcbus_error e = IPCBUS_ERROR_NULL;
        json_object *o;
        char *body, *owner;
        int r;

        ck_assert_int_ge(asprintf(&body, "{\"name\":\"%s\"}", name), 0);
        r = ipcbus_call(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE, "GetNameOwner", body,
                        10 * 1000000ull, &reply, &e);
        free(body);
        if (r == -EREMOTEIO && ipcbus_error_has_name(&e, IPCBUS_ERROR_NAME_HAS_NO_OWNER)) {
                ipcbus_error_free(&e);
                return NULL;
        }
        ck_assert_msg(r >= 0, "GetNameOwner(%s): %s %s", name, r == -EREMOTEIO ? e.name : ipcbus_strerror(r),
                      e.message ? e.message : "");
        o = testbus_message_json(reply);
        testbus_json_keys(o, "owner", NULL);
        owner = strdup(testbus_json_string(o, "owner"));
        json_object_put(o);
        ipcbus_message_unref(reply);
        return owner;
}

static void match_call(ipcbus_bus *bus, const char *member, const char *rule_json)
{
        json_object *o;
        char *body;

        ck_assert_int_ge(asprintf(&body, "{\"rule\":%s}", rule_json), 0);
        o = testbus_driver(bus, member, body);
        testbus_json_keys(o, NULL);
        json_object_put(o);
        free(body);
}

void testbus_add_match(ipcbus_bus *bus, const char *rule_json)
{
        match_call(bus, "AddMatch", rule_json);
}

void testbus_remove_match(ipcbus_bus *bus, const char *rule_json)
{
        match_call(bus, "RemoveMatch", rule_json);
}

/* ---- recorder ----------------------------------------------------------------- */

/* One line describing a message, for failure messages (static buffer). */
static const char *message_text(ipcbus_message *m)
{
        static const char *const types[] = {"?", "call", "return", "error", "signal"};
        static char buf[512];
        ipcbus_message_type t = ipcbus_message_get_type(m);
        const char *body = ipcbus_message_get_body(m, NULL);

        snprintf(buf, sizeof(buf), "%s %s%s from %s: %.200s", t >= 1 && t <= 4 ? types[t] : "?",
                 ipcbus_message_get_member(m) ?: "", ipcbus_message_get_error_name(m) ?: "",
                 ipcbus_message_get_sender(m) ?: "?", body ? body : "");
        return buf;
}

static int rec_filter(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct testbus_rec *r = userdata;

        if (r->types && !(r->types & (1u << ipcbus_message_get_type(m))))
                return 0;
        if (r->n == r->cap) {
                r->cap = r->cap ? r->cap * 2 : 16;
                r->msgs = realloc(r->msgs, r->cap * sizeof(*r->msgs));
                ck_assert_ptr_nonnull(r->msgs);
        }
        r->msgs[r->n++] = ipcbus_message_ref(m);
        return 0;
}

void testbus_rec_init(struct testbus_rec *r, ipcbus_bus *bus, unsigned types)
{
        int ret;

        *r = (struct testbus_rec){.bus = bus, .types = types};
        ret = ipcbus_add_filter(bus, &r->slot, rec_filter, r);
        ck_assert_msg(ret >= 0, "ipcbus_add_filter: %s", ipcbus_strerror(ret));
}

void testbus_rec_deinit(struct testbus_rec *r)
{
        ipcbus_slot_unref(r->slot);
        for (size_t i = 0; i < r->n; i++)
                ipcbus_message_unref(r->msgs[i]);
        free(r->msgs);
        *r = (struct testbus_rec){0};
}

static bool rec_has_next(void *userdata)
{
        struct testbus_rec *r = userdata;

        return r->next < r->n;
}

ipcbus_message *testbus_rec_next(struct testbus_rec *r, int timeout_ms)
{
        ipcbus_bus *buses[] = {r->bus, NULL};

        if (!testbus_pump_until(buses, rec_has_next, r, timeout_ms))
                return NULL;
        return r->msgs[r->next++];
}

ipcbus_message *testbus_rec_expect(struct testbus_rec *r, const char *member, const char *name)
{
        ipcbus_message *m = testbus_rec_next(r, TESTBUS_WAIT_MS);
        const char *got;

        ck_assert_msg(m, "expected signal %s(%s) on %s, nothing came", member, name ? name : "",
                      ipcbus_get_unique_name(r->bus));
        ck_assert_msg(ipcbus_message_get_type(m) == IPCBUS_MESSAGE_SIGNAL && ipcbus_message_get_member(m) &&
                              strcmp(ipcbus_message_get_member(m), member) == 0,
                      "expected signal %s(%s) on %s, got %s", member, name ? name : "", ipcbus_get_unique_name(r->bus),
                      message_text(m));
        if (name) {
                got = ipcbus_message_get_arg(m, "name");
                ck_assert_msg(got && strcmp(got, name) == 0, "expected %s(%s) on %s, got %s", member, name,
                              ipcbus_get_unique_name(r->bus), message_text(m));
        }
        return m;
}

ipcbus_message *testbus_rec_wait_member(struct testbus_rec *r, const char *member, int timeout_ms)
{
        int64_t deadline = testbus_now_ms() + timeout_ms;
        ipcbus_message *m;

        while ((m = testbus_rec_next(r, ms_left(deadline)))) {
                const char *mm = ipcbus_message_get_member(m);

                if (ipcbus_message_get_type(m) == IPCBUS_MESSAGE_SIGNAL && mm && strcmp(mm, member) == 0)
                        return m;
        }
        return NULL;
}

void testbus_rec_expect_quiet(struct testbus_rec *r)
{
        testbus_sync(r->bus);
        ck_assert_msg(r->next == r->n, "%s: unexpected %s", ipcbus_get_unique_name(r->bus),
                      r->next < r->n ? message_text(r->msgs[r->next]) : "");
}

void testbus_rec_skip(struct testbus_rec *r)
{
        r->next = r->n;
}

size_t testbus_rec_count(struct testbus_rec *r, const char *member)
{
        size_t n = 0;

        for (size_t i = r->next; i < r->n; i++) {
                const char *mm = ipcbus_message_get_member(r->msgs[i]);

                if (ipcbus_message_get_type(r->msgs[i]) == IPCBUS_MESSAGE_SIGNAL && mm && strcmp(mm, member) == 0)
                        n++;
        }
        return n;
}

/* ---- raw sockets ------------------------------------------------------------- */

int testbus_raw_connect(struct testbus *tb)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
        ck_assert_uint_lt(strlen(tb->socket_path), sizeof(sa.sun_path));
        strcpy(sa.sun_path, tb->socket_path);
        ck_assert_msg(connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0, "connect(%s): %s", tb->socket_path,
                      strerror(errno));
        return fd;
}

int testbus_raw_connect_as(struct testbus *tb, const struct testbus_cred *cred)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct saved_cred s;
        int fd, r, err;

        ck_assert_uint_lt(strlen(tb->socket_path), sizeof(sa.sun_path));
        strcpy(sa.sun_path, tb->socket_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
        cred_enter(tb, cred, &s);
        r = connect(fd, (struct sockaddr *) &sa, sizeof(sa));
        err = errno;
        cred_leave(&s);
        ck_assert_msg(r == 0, "connect(%s) as uid %u: %s", tb->socket_path, (unsigned) cred->uid, strerror(err));
        return fd;
}

int testbus_raw_write(int fd, const void *data, size_t len)
{
        const uint8_t *p = data;

        while (len) {
                ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

void testbus_raw_send(int fd, const void *data, size_t len)
{
        int r = testbus_raw_write(fd, data, len);

        ck_assert_msg(r == 0, "send: %s", strerror(-r));
}

static void put_le32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t) v;
        p[1] = (uint8_t) (v >> 8);
        p[2] = (uint8_t) (v >> 16);
        p[3] = (uint8_t) (v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

void testbus_raw_prefix(uint8_t out[16], uint32_t header_len, uint32_t body_len, uint16_t n_fds)
{
        memcpy(out, "IPCB", 4);
        out[4] = 1; /* version */
        out[5] = 0; /* reserved */
        out[6] = (uint8_t) n_fds;
        out[7] = (uint8_t) (n_fds >> 8);
        put_le32(out + 8, header_len);
        put_le32(out + 12, body_len);
}

void testbus_raw_send_frame(int fd, const char *header, const char *body)
{
        size_t hl = strlen(header), bl = body ? strlen(body) : 0;
        uint8_t *frame = malloc(16 + hl + bl);

        ck_assert_ptr_nonnull(frame);
        testbus_raw_prefix(frame, (uint32_t) hl, (uint32_t) bl, 0);
        memcpy(frame + 16, header, hl);
        if (bl)
                memcpy(frame + 16 + hl, body, bl);
        testbus_raw_send(fd, frame, 16 + hl + bl);
        free(frame);
}

int testbus_raw_send_frame_fds(int fd, const char *header, const char *body, const int *fds, unsigned n)
{
        return testbus_raw_send_frame_announcing(fd, header, body, (uint16_t) n, fds, n);
}

int testbus_raw_send_frame_announcing(int fd, const char *header, const char *body, uint16_t announce, const int *fds,
                                      unsigned n)
{
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * 64)];
        } control;
        size_t hl = strlen(header), bl = body ? strlen(body) : 0, len = 16 + hl + bl, off = 0;
        uint8_t *frame = malloc(len);
        int r = 0;

        /* No Check assertion here: forked children use it too, and Check's
         * bookkeeping would write into whatever descriptor its pipe had. */
        if (!frame || n > 64) {
                free(frame);
                return -EINVAL;
        }
        testbus_raw_prefix(frame, (uint32_t) hl, (uint32_t) bl, announce);
        memcpy(frame + 16, header, hl);
        if (bl)
                memcpy(frame + 16 + hl, body, bl);
        while (off < len) {
                struct iovec iov = {.iov_base = frame + off, .iov_len = len - off};
                struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
                ssize_t w;

                if (off == 0 && n > 0) {
                        struct cmsghdr *cm;

                        memset(&control, 0, sizeof(control));
                        mh.msg_control = control.buf;
                        mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
                        cm = CMSG_FIRSTHDR(&mh);
                        cm->cmsg_level = SOL_SOCKET;
                        cm->cmsg_type = SCM_RIGHTS;
                        cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
                        memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
                }
                w = sendmsg(fd, &mh, MSG_NOSIGNAL);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0) {
                        r = -errno;
                        break;
                }
                off += (size_t) w;
        }
        free(frame);
        return r;
}

/* Read exactly len bytes. 1, 0 at EOF before the first byte, -EPROTO at EOF after it, -ETIMEDOUT, -errno. */
static int read_exact(int fd, void *buf, size_t len, int64_t deadline)
{
        uint8_t *p = buf;
        size_t got = 0;

        while (got < len) {
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                ssize_t n;
                int r = poll(&pfd, 1, ms_left(deadline));

                if (r < 0 && errno == EINTR)
                        continue;
                if (r == 0)
                        return -ETIMEDOUT;
                n = recv(fd, p + got, len - got, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return got ? -EPROTO : 0;
                got += (size_t) n;
        }
        return 1;
}

int testbus_raw_recv(int fd, int timeout_ms, struct testbus_frame *ret)
{
        int64_t deadline = testbus_now_ms() + timeout_ms;
        struct testbus_frame f = {0};
        uint8_t prefix[16];
        int r;

        r = read_exact(fd, prefix, sizeof(prefix), deadline);
        if (r <= 0)
                return r;
        ck_assert_msg(memcmp(prefix, "IPCB", 4) == 0 && prefix[4] == 1 && prefix[5] == 0,
                      "broker sent a bad frame prefix");
        /* A frame that has begun gets the time a large one takes to come whole. */
        if (deadline < testbus_now_ms() + (int64_t) TESTBUS_WAIT_MS * testbus_slow_factor())
                deadline = testbus_now_ms() + (int64_t) TESTBUS_WAIT_MS * testbus_slow_factor();
        f.header_len = get_le32(prefix + 8);
        f.body_len = get_le32(prefix + 12);
        ck_assert_msg(f.header_len >= 2 && f.header_len <= IPCBUS_HEADER_MAX && f.body_len <= IPCBUS_BODY_MAX,
                      "broker sent a frame with header_len %zu, body_len %zu", f.header_len, f.body_len);
        f.header = malloc(f.header_len + 1);
        ck_assert_ptr_nonnull(f.header);
        r = read_exact(fd, f.header, f.header_len, deadline);
        ck_assert_msg(r == 1, "truncated frame header from the broker (%d)", r);
        f.header[f.header_len] = '\0';
        f.h = testbus_json(f.header, f.header_len);
        ck_assert_msg(json_object_is_type(f.h, json_type_object), "header is not an object: %s", f.header);
        if (f.body_len) {
                f.body = malloc(f.body_len + 1);
                ck_assert_ptr_nonnull(f.body);
                r = read_exact(fd, f.body, f.body_len, deadline);
                ck_assert_msg(r == 1, "truncated frame body from the broker (%d)", r);
                f.body[f.body_len] = '\0';
                f.b = testbus_json(f.body, f.body_len);
        }
        *ret = f;
        return 1;
}

void testbus_frame_deinit(struct testbus_frame *f)
{
        free(f->header);
        free(f->body);
        json_object_put(f->h);
        json_object_put(f->b);
        *f = (struct testbus_frame){0};
}

const char *testbus_frame_string(struct testbus_frame *f, const char *field)
{
        json_object *v;

        if (!json_object_object_get_ex(f->h, field, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

int64_t testbus_frame_int(struct testbus_frame *f, const char *field)
{
        json_object *v;

        if (!json_object_object_get_ex(f->h, field, &v) || !json_object_is_type(v, json_type_int))
                return -1;
        return json_object_get_int64(v);
}

static bool frame_is_signal(struct testbus_frame *f)
{
        const char *t = testbus_frame_string(f, "type");

        return t && strcmp(t, "signal") == 0;
}

char *testbus_raw_hello(int fd)
{
        struct testbus_frame f;
        char *name;

        testbus_raw_send_frame(fd,
                               "{\"type\":\"call\",\"serial\":1,\"destination\":\"org.ipcbus.Bus\","
                               "\"path\":\"/org/ipcbus/Bus\",\"interface\":\"org.ipcbus.Bus\",\"member\":\"Hello\"}",
                               NULL);
        testbus_raw_expect_reply(fd, 1, NULL, &f);
        name = strdup(testbus_json_string(f.b, "name"));
        testbus_frame_deinit(&f);
        return name;
}

void testbus_raw_expect_reply(int fd, uint32_t reply_serial, const char *error_name, struct testbus_frame *ret)
{
        struct testbus_frame f;
        const char *type, *error;

        for (;;) {
                int r = testbus_raw_recv(fd, TESTBUS_WAIT_MS, &f);

                ck_assert_msg(r == 1, "expected %s answering serial %u, got %s", error_name ? error_name : "a return",
                              reply_serial, r == 0 ? "EOF" : strerror(-r));
                if (!frame_is_signal(&f))
                        break;
                testbus_frame_deinit(&f);
        }
        type = testbus_frame_string(&f, "type");
        error = testbus_frame_string(&f, "error");
        ck_assert_msg(type && strcmp(type, error_name ? "error" : "return") == 0, "expected %s, got %s %s",
                      error_name ? error_name : "a return", f.header, f.body ? f.body : "");
        if (error_name)
                ck_assert_msg(error && strcmp(error, error_name) == 0, "expected %s, got %s %s", error_name, f.header,
                              f.body ? f.body : "");
        if (reply_serial)
                ck_assert_msg(testbus_frame_int(&f, "reply_serial") == reply_serial,
                              "expected an answer to serial %u, got %s", reply_serial, f.header);
        else
                ck_assert_msg(testbus_frame_int(&f, "reply_serial") == -1, "expected no reply_serial: %s", f.header);
        if (ret)
                *ret = f;
        else
                testbus_frame_deinit(&f);
}

void testbus_raw_expect_eof(int fd)
{
        struct testbus_frame f;
        int r;

        while ((r = testbus_raw_recv(fd, TESTBUS_WAIT_MS, &f)) == 1) {
                ck_assert_msg(frame_is_signal(&f), "expected the connection to close, got %s %s", f.header,
                              f.body ? f.body : "");
                testbus_frame_deinit(&f);
        }
        ck_assert_msg(r == 0 || r == -ECONNRESET, "expected the connection to close, got %s",
                      r == -ETIMEDOUT ? "nothing (still open)" : strerror(-r));
}

char *testbus_raw_expect_refused(int fd, const char *error_name)
{
        struct testbus_frame f;
        json_object *v = NULL;
        char *message;

        testbus_raw_expect_reply(fd, 0, error_name, &f);
        ck_assert_msg(f.b && json_object_object_get_ex(f.b, "message", &v) && json_object_is_type(v, json_type_string),
                      "%s without a message: %s", error_name, f.body ? f.body : "(no body)");
        message = strdup(json_object_get_string(v));
        ck_assert_ptr_nonnull(message);
        testbus_frame_deinit(&f);
        testbus_raw_expect_eof(fd);
        return message;
}

bool testbus_text_names(const char *text, const char *word)
{
        size_t n = strlen(word);

        for (const char *p = text; text && (p = strstr(p, word)); p++) {
                char before = p > text ? p[-1] : ' ', after = p[n];

                if (!(before == '_' || (before >= 'a' && before <= 'z')) &&
                    !(after == '_' || (after >= 'a' && after <= 'z')))
                        return true;
        }
        return false;
}

void testbus_raw_ping(int fd, uint32_t serial)
{
        struct testbus_frame f;
        char header[256];

        snprintf(header, sizeof(header),
                 "{\"type\":\"call\",\"serial\":%u,\"destination\":\"org.ipcbus.Bus\",\"path\":\"/org/ipcbus/Bus\","
                 "\"member\":\"Ping\"}",
                 serial);
        testbus_raw_send_frame(fd, header, NULL);
        testbus_raw_expect_reply(fd, serial, NULL, &f);
        testbus_frame_deinit(&f);
}

/* ---- forked helpers: the parent's side ------------------------------------------- */

void testbus_child_start(struct testbus *tb, struct testbus_child *c, testbus_child_fn fn, void *arg)
{
        testbus_child_start_cred(tb, c, NULL, fn, arg);
}

void testbus_child_start_as(struct testbus *tb, struct testbus_child *c, uid_t uid, gid_t gid, testbus_child_fn fn,
                            void *arg)
{
        const struct testbus_cred cred = {.uid = uid, .gid = gid};

        testbus_child_start_cred(tb, c, &cred, fn, arg);
}

void testbus_child_start_cred(struct testbus *tb, struct testbus_child *c, const struct testbus_cred *cred,
                              testbus_child_fn fn, void *arg)
{
        pid_t parent = getpid(), pid;
        int cmd[2], rep[2];

        if (cred)
                share_dirs(tb);
        ck_assert_int_eq(pipe2(cmd, O_CLOEXEC), 0);
        ck_assert_int_eq(pipe2(rep, O_CLOEXEC), 0);
        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid == 0) {
                struct testbus_peer p = {.tb = tb, .report_fd = rep[1]};

                child_prepare(parent, cmd[0], rep[1]);
                if (cred && child_become(cred, parent) < 0)
                        testbus_peer_fail(&p, "cannot run as uid %u gid %u: %s", (unsigned) cred->uid,
                                          (unsigned) cred->gid, strerror(errno));
                testbus_lines_init(&p.cmd, cmd[0]);
                _exit(fn(&p, arg));
        }
        ck_assert_msg(pid > 0, "fork: %s", strerror(errno));
        close(cmd[0]);
        close(rep[1]);
        *c = (struct testbus_child){.pid = pid, .cmd_fd = cmd[1]};
        testbus_lines_init(&c->out, rep[0]);
        helpers_add(pid);
}

/* Reap an ended child (briefly waiting) and describe how it ended. */
static const char *child_end_text(struct testbus_child *c)
{
        int status;

        if (c->pid <= 0)
                return "already reaped";
        if (!wait_deadline(c->pid, &status, 1000))
                return "its report pipe closed but it is still running";
        helpers_remove(c->pid);
        c->pid = 0;
        return status_text(status);
}

char *testbus_child_read(struct testbus_child *c, int timeout_ms)
{
        char *line = testbus_lines_read(&c->out, timeout_ms);

        if (!line && c->out.eof)
                ck_abort_msg("child ended without reporting: %s", child_end_text(c));
        ck_assert_msg(line, "child %d reported nothing within %d ms", (int) c->pid, timeout_ms);
        if (strncmp(line, "FAIL:", 5) == 0)
                ck_abort_msg("child %d: %s", (int) c->pid, line);
        return line;
}

void testbus_child_expect(struct testbus_child *c, const char *expected)
{
        char *line = testbus_child_read(c, TESTBUS_WAIT_MS);

        ck_assert_msg(strcmp(line, expected) == 0, "child reported '%s', expected '%s'", line, expected);
        free(line);
}

void testbus_child_send(struct testbus_child *c, const char *fmt, ...)
{
        va_list ap;
        char *line;
        int n;

        va_start(ap, fmt);
        n = vasprintf(&line, fmt, ap);
        va_end(ap);
        ck_assert_int_ge(n, 0);
        ck_assert_msg(write(c->cmd_fd, line, (size_t) n) == n && write(c->cmd_fd, "\n", 1) == 1,
                      "writing to child %d: %s", (int) c->pid, strerror(errno));
        free(line);
}

void testbus_child_finish(struct testbus_child *c)
{
        int status;
        char *line, *fail = NULL;

        if (c->cmd_fd >= 0)
                close(c->cmd_fd);
        c->cmd_fd = -1;
        if (c->pid > 0 && !wait_deadline(c->pid, &status, TESTBUS_WAIT_MS)) {
                kill(c->pid, SIGKILL);
                waitpid(c->pid, NULL, 0);
                helpers_remove(c->pid);
                ck_abort_msg("child %d did not finish within %d ms", (int) c->pid, TESTBUS_WAIT_MS);
        }
        /* its last words */
        testbus_lines_drain(&c->out, testbus_now_ms() + 1000);
        while ((line = testbus_lines_read(&c->out, 0))) {
                if (!fail && strncmp(line, "FAIL:", 5) == 0)
                        fail = line;
                else
                        free(line);
        }
        testbus_lines_deinit(&c->out);
        if (c->pid > 0) {
                helpers_remove(c->pid);
                c->pid = 0;
                ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child: %s%s%s", status_text(status),
                              fail ? ": " : "", fail ? fail : "");
        }
        ck_assert_msg(!fail, "child: %s", fail);
}

void testbus_child_kill(struct testbus_child *c)
{
        if (c->pid > 0) {
                kill(c->pid, SIGKILL);
                waitpid(c->pid, NULL, 0);
                helpers_remove(c->pid);
                c->pid = 0;
        }
        if (c->cmd_fd >= 0)
                close(c->cmd_fd);
        c->cmd_fd = -1;
        testbus_lines_deinit(&c->out);
}

/* ---- forked helpers: the child's side ----------------------------------------------- */

__attribute__((format(printf, 3, 0))) static void peer_write_line(struct testbus_peer *p, const char *prefix,
                                                                  const char *fmt, va_list ap)
{
        char *text, *line;
        int n;

        if (vasprintf(&text, fmt, ap) < 0)
                _exit(3);
        n = asprintf(&line, "%s%s\n", prefix, text);
        if (n < 0)
                _exit(3);
        /* one line per report, even when a body had a newline */
        for (int i = 0; i < n - 1; i++)
                if (line[i] == '\n')
                        line[i] = ' ';
        for (ssize_t off = 0, w; off < n; off += w) {
                w = write(p->report_fd, line + off, (size_t) (n - off));
                if (w < 0 && errno == EINTR)
                        w = 0;
                else if (w <= 0)
                        _exit(2); /* the parent is gone */
        }
        free(text);
        free(line);
}

void testbus_peer_report(struct testbus_peer *p, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        peer_write_line(p, "", fmt, ap);
        va_end(ap);
}

void testbus_peer_fail(struct testbus_peer *p, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        peer_write_line(p, "FAIL: ", fmt, ap);
        va_end(ap);
        _exit(1);
}

ipcbus_bus *testbus_peer_connect(struct testbus_peer *p)
{
        ipcbus_bus *bus = NULL;
        ipcbus_error e = IPCBUS_ERROR_NULL;
        int r = ipcbus_open_address(p->tb->address, &bus);

        if (r < 0)
                testbus_peer_fail(p, "ipcbus_open_address(%s): %s", p->tb->address, ipcbus_strerror(r));
        /* dispatch what came with Hello (NameAcquired of the unique name) before handlers exist */
        r = ipcbus_call(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE, "Ping", NULL,
                        10 * 1000000ull, NULL, &e);
        if (r < 0)
                testbus_peer_fail(p, "Ping: %s", r == -EREMOTEIO ? e.name : ipcbus_strerror(r));
        while ((r = ipcbus_process(bus)) > 0)
                ;
        return bus;
}

int testbus_peer_run(struct testbus_peer *p, ipcbus_bus *bus,
                     int (*on_command)(struct testbus_peer *p, const char *line, void *userdata), void *userdata)
{
        for (;;) {
                struct pollfd pfd[2];
                uint64_t t = UINT64_MAX, now;
                char *line;
                int r, timeout = -1;

                while ((r = ipcbus_process(bus)) > 0)
                        ;
                if (r < 0)
                        testbus_peer_fail(p, "connection lost: %s", ipcbus_strerror(r));
                while ((line = testbus_lines_read(&p->cmd, 0))) {
                        r = on_command ? on_command(p, line, userdata) : 0;
                        if (r < 0)
                                testbus_peer_fail(p, "command '%s': %s", line, strerror(-r));
                        free(line);
                        if (r > 0)
                                return 0;
                }
                if (p->cmd.eof)
                        return 0;
                ipcbus_get_timeout(bus, &t);
                now = now_usec();
                if (t != UINT64_MAX)
                        timeout = t <= now ? 0 : (int) ((t - now + 999) / 1000);
                pfd[0] = (struct pollfd){.fd = ipcbus_get_fd(bus), .events = (short) ipcbus_get_events(bus)};
                pfd[1] = (struct pollfd){.fd = p->cmd.fd, .events = POLLIN};
                if (poll(pfd, 2, timeout) > 0 && pfd[1].revents)
                        lines_fill(&p->cmd, 0);
        }
}

/* ---- the test service ------------------------------------------------------------------ */

struct service {
        struct testbus_peer *p;
        ipcbus_bus *bus;
        ipcbus_message *held[64];
        size_t n_held;
};

static int service_echo(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        size_t len = 0;
        const char *body = ipcbus_message_get_body(m, &len);

        return ipcbus_reply(m, len ? body : NULL);
}

static int service_fixed(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        return ipcbus_reply(m, TESTBUS_FIXED_BODY);
}

static int service_fail(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        return ipcbus_reply_error(m, TESTBUS_SERVICE_ERROR, "failed on purpose");
}

static int service_fail_errno(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        return -ENOENT;
}

static int service_fail_custom(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        ipcbus_error_set(ret_error, TESTBUS_SERVICE_CUSTOM_ERROR, "custom failure");
        return -EIO;
}

static int service_hold(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct service *s = userdata;

        testbus_peer_check(s->p, s->n_held < 64);
        s->held[s->n_held++] = ipcbus_message_ref(m);
        testbus_peer_report(s->p, "held %u", ipcbus_message_get_serial(m));
        return 0;
}

static int service_who_am_i(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        const char *sender = ipcbus_message_get_sender(m);
        char body[512];

        snprintf(body, sizeof(body), "{\"sender\":\"%s\",\"uid\":%lld,\"pid\":%lld}", sender ? sender : "",
                 (long long) ipcbus_message_get_sender_uid(m), (long long) ipcbus_message_get_sender_pid(m));
        return ipcbus_reply(m, body);
}

static int service_record(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct service *s = userdata;

        testbus_peer_report(s->p, "record %d %s", ipcbus_message_get_no_reply(m) ? 1 : 0,
                            ipcbus_message_get_body(m, NULL));
        return ipcbus_reply(m, "{}");
}

static int service_emit_then_reply(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct service *s = userdata;
        size_t len = 0;
        const char *body = ipcbus_message_get_body(m, &len);
        json_object *o = len ? json_tokener_parse(body) : NULL, *n = NULL;
        int count = 0, r;

        if (o && json_object_object_get_ex(o, "n", &n))
                count = json_object_get_int(n);
        json_object_put(o);
        for (int i = 0; i < count; i++) {
                char tick[64];

                snprintf(tick, sizeof(tick), "{\"i\":%d}", i);
                r = ipcbus_emit_signal(s->bus, NULL, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Tick", tick);
                if (r < 0)
                        return r;
        }
        return ipcbus_reply(m, "{}");
}

static const ipcbus_method service_methods[] = {
        {"Echo", service_echo},
        {"Fixed", service_fixed},
        {"Fail", service_fail},
        {"FailErrno", service_fail_errno},
        {"FailCustom", service_fail_custom},
        {"Hold", service_hold},
        {"WhoAmI", service_who_am_i},
        {"Record", service_record},
        {"EmitThenReply", service_emit_then_reply},
        {NULL, NULL},
};

static int service_filter(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct service *s = userdata;

        if (ipcbus_message_get_type(m) == IPCBUS_MESSAGE_ERROR)
                testbus_peer_report(s->p, "error %s", ipcbus_message_get_error_name(m));
        return 0;
}

static int service_command(struct testbus_peer *p, const char *line, void *userdata)
{
        struct service *s = userdata;
        char member[256];
        int consumed = 0, r;

        if (strcmp(line, "release") == 0) {
                size_t n = s->n_held;

                for (size_t i = 0; i < n; i++) {
                        r = ipcbus_reply(s->held[i], "{\"released\":true}");
                        testbus_peer_check(p, r >= 0);
                        ipcbus_message_unref(s->held[i]);
                }
                s->n_held = 0;
                testbus_peer_check(p, ipcbus_flush(s->bus) >= 0);
                testbus_peer_report(p, "released %zu", n);
                return 0;
        }
        if (sscanf(line, "emit %255s %n", member, &consumed) == 1 && consumed > 0) {
                r = ipcbus_emit_signal(s->bus, NULL, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, member,
                                       line[consumed] ? line + consumed : NULL);
                testbus_peer_check(p, r >= 0);
                testbus_peer_check(p, ipcbus_flush(s->bus) >= 0);
                testbus_peer_report(p, "emitted");
                return 0;
        }
        testbus_peer_fail(p, "unknown command '%s'", line);
}

static int service_main(struct testbus_peer *p, void *arg)
{
        const char *name = arg;
        struct service s = {.p = p};
        ipcbus_slot *object = NULL, *filter = NULL;
        int r;

        s.bus = testbus_peer_connect(p);
        r = ipcbus_add_object(s.bus, &object, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, service_methods, &s);
        testbus_peer_check(p, r >= 0);
        r = ipcbus_add_filter(s.bus, &filter, service_filter, &s);
        testbus_peer_check(p, r >= 0);
        if (name) {
                r = ipcbus_request_name(s.bus, name, 0, NULL);
                if (r != IPCBUS_REQUEST_NAME_PRIMARY_OWNER)
                        testbus_peer_fail(p, "RequestName(%s) = %d", name, r);
        }
        testbus_peer_report(p, "ready %s", ipcbus_get_unique_name(s.bus));
        testbus_peer_run(p, s.bus, service_command, &s);
        for (size_t i = 0; i < s.n_held; i++)
                ipcbus_message_unref(s.held[i]);
        ipcbus_slot_unref(filter);
        ipcbus_slot_unref(object);
        ipcbus_flush(s.bus);
        ipcbus_unref(s.bus);
        return 0;
}

void testbus_child_ready(struct testbus_child *c)
{
        char *line = testbus_child_read(c, TESTBUS_WAIT_MS);

        ck_assert_msg(strncmp(line, "ready :", 7) == 0, "child reported '%s' instead of ready", line);
        snprintf(c->unique, sizeof(c->unique), "%s", line + 6);
        free(line);
}

void testbus_service_start(struct testbus *tb, struct testbus_child *c, const char *name)
{
        testbus_child_start(tb, c, service_main, (void *) name);
        testbus_child_ready(c);
}

void testbus_service_start_as(struct testbus *tb, struct testbus_child *c, const struct testbus_cred *cred,
                              const char *name)
{
        testbus_child_start_cred(tb, c, cred, service_main, (void *) name);
        testbus_child_ready(c);
}

/* ---- the subscriber ------------------------------------------------------------------ */

static int subscriber_filter(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct testbus_peer *p = userdata;

        if (ipcbus_message_get_type(m) == IPCBUS_MESSAGE_SIGNAL)
                testbus_peer_report(p, "signal %s %s %s", ipcbus_message_get_member(m),
                                    ipcbus_message_get_sender(m) ?: "-", ipcbus_message_get_body(m, NULL));
        return 0;
}

static int subscriber_signal(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        return 0;
}

static int subscriber_main(struct testbus_peer *p, void *arg)
{
        const char *const *rules = arg;
        ipcbus_slot *filter = NULL, *slots[16] = {NULL};
        ipcbus_bus *bus = testbus_peer_connect(p);
        size_t n = 0;
        int r;

        r = ipcbus_add_filter(bus, &filter, subscriber_filter, p);
        testbus_peer_check(p, r >= 0);
        for (; rules[n]; n++) {
                testbus_peer_check(p, n < 16);
                r = ipcbus_add_match(bus, &slots[n], rules[n], subscriber_signal, NULL);
                if (r < 0)
                        testbus_peer_fail(p, "ipcbus_add_match(%s): %s", rules[n], ipcbus_strerror(r));
        }
        testbus_peer_report(p, "ready %s", ipcbus_get_unique_name(bus));
        testbus_peer_run(p, bus, NULL, NULL);
        for (size_t i = 0; i < n; i++)
                ipcbus_slot_unref(slots[i]);
        ipcbus_slot_unref(filter);
        ipcbus_unref(bus);
        return 0;
}

void testbus_subscriber_start(struct testbus *tb, struct testbus_child *c, const char *const *rules)
{
        testbus_child_start(tb, c, subscriber_main, (void *) rules);
        testbus_child_ready(c);
}

/* ---- running the tools ----------------------------------------------------------------- */

void testbus_proc_spawn(struct testbus_proc *p, const char *const *argv)
{
        pid_t parent = getpid(), pid;
        int out[2], err[2];

        ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
        ck_assert_int_eq(pipe2(err, O_CLOEXEC), 0);
        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid == 0) {
                int null = open("/dev/null", O_RDONLY);

                dup2(null, STDIN_FILENO);
                dup2(out[1], STDOUT_FILENO);
                dup2(err[1], STDERR_FILENO);
                child_prepare(parent, -1, -1);
                execv(argv[0], (char *const *) argv);
                fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        ck_assert_msg(pid > 0, "fork: %s", strerror(errno));
        close(out[1]);
        close(err[1]);
        *p = (struct testbus_proc){.pid = pid};
        testbus_lines_init(&p->out, out[0]);
        testbus_lines_init(&p->err, err[0]);
        helpers_add(pid);
}

char *testbus_proc_read_line(struct testbus_proc *p, int timeout_ms)
{
        return testbus_lines_read(&p->out, timeout_ms);
}

int testbus_proc_finish(struct testbus_proc *p, int timeout_ms)
{
        int64_t deadline = testbus_now_ms() + timeout_ms;

        if (!p->done) {
                bool eof = lines_drain_two(&p->out, &p->err, deadline);

                if (!eof || !wait_deadline(p->pid, &p->status, ms_left(deadline))) {
                        kill(p->pid, SIGKILL);
                        waitpid(p->pid, NULL, 0);
                        helpers_remove(p->pid);
                        p->done = true;
                        ck_abort_msg("process did not finish within %d ms; stdout: %s stderr: %s", timeout_ms,
                                     p->out.buf, p->err.buf);
                }
                helpers_remove(p->pid);
                p->done = true;
        }
        ck_assert_msg(WIFEXITED(p->status), "process %s; stderr: %s", status_text(p->status), p->err.buf);
        return WEXITSTATUS(p->status);
}

int testbus_proc_terminate(struct testbus_proc *p)
{
        if (!p->done)
                kill(p->pid, SIGTERM);
        return testbus_proc_finish(p, TESTBUS_WAIT_MS);
}

void testbus_proc_deinit(struct testbus_proc *p)
{
        if (p->pid > 0 && !p->done) {
                kill(p->pid, SIGKILL);
                waitpid(p->pid, NULL, 0);
                helpers_remove(p->pid);
        }
        testbus_lines_deinit(&p->out);
        testbus_lines_deinit(&p->err);
        *p = (struct testbus_proc){0};
}

int testbus_run(struct testbus_proc *p, const char *const *argv, int timeout_ms)
{
        testbus_proc_spawn(p, argv);
        return testbus_proc_finish(p, timeout_ms);
}

/* ---- activation and reload suites ------------------------------------------------ */

void testbus_mkdtemp(char *buf, size_t size, const char *prefix)
{
        ck_assert_msg(base_dir[0], "testbus_mkdtemp needs a testbus test case");
        ck_assert_int_lt(snprintf(buf, size, "%s/%s-XXXXXX", base_dir, prefix), (int) size);
        ck_assert_msg(mkdtemp(buf), "mkdtemp(%s): %s", buf, strerror(errno));
}

void testbus_write_text(const char *path, const char *text)
{
        write_file(path, text);
}

void testbus_share_dirs(struct testbus *tb)
{
        share_dirs(tb);
}

const char *testbus_test_service(void)
{
        return testbus_program("IPCBUS_TEST_SERVICE", "tests/test-service");
}

/* ---- the bystander ------------------------------------------------------- */

/*
 * Child: ping the driver (and Echo arg, a service's name, when not NULL)
 * every 10 ms until told "stop", then report "worst MS pings N". A call
 * that fails fails the child.
 */
static int testbus_bystander_run(struct testbus_peer *p, void *arg)
{
        const char *service = arg;
        ipcbus_bus *bus = testbus_peer_connect(p);
        int64_t worst = 0;
        long n = 0;

        testbus_peer_report(p, "ready %s", ipcbus_get_unique_name(bus));
        for (;;) {
                char *line = testbus_lines_read(&p->cmd, 10);
                ipcbus_error e = IPCBUS_ERROR_NULL;
                int64_t t0 = testbus_now_ms();
                int r;

                free(line);
                if (line || p->cmd.eof)
                        break;
                r = ipcbus_call(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE, "Ping", NULL,
                                60 * 1000000ull, NULL, &e);
                if (r >= 0 && service)
                        r = ipcbus_call(bus, service, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Echo",
                                        "{\"k\":\"v\"}", 60 * 1000000ull, NULL, &e);
                if (r < 0)
                        testbus_peer_fail(p, "call: %s", r == -EREMOTEIO ? e.name : ipcbus_strerror(r));
                if (testbus_now_ms() - t0 > worst)
                        worst = testbus_now_ms() - t0;
                n++;
        }
        testbus_peer_report(p, "worst %lld pings %ld", (long long) worst, n);
        ipcbus_unref(bus);
        return 0;
}

void testbus_bystander_start(struct testbus_child *c, const struct testbus_cred *cred, const char *service)
{
        testbus_child_start_cred(testbus_current(), c, cred, testbus_bystander_run, (void *) service);
        testbus_child_ready(c);
}

long testbus_bystander_finish(struct testbus_child *c)
{
        long worst = -1, pings = 0;
        char *line;

        testbus_child_send(c, "stop");
        line = testbus_child_read(c, 120 * 1000);
        ck_assert_msg(sscanf(line, "worst %ld pings %ld", &worst, &pings) == 2, "bystander said: %s", line);
        free(line);
        testbus_child_finish(c);
        ck_assert_msg(pings > 0, "the bystander never got an answer");
        return worst;
}
