/* SPDX-License-Identifier: MIT */
/* testbus: starting and stopping ipcbusd, and reading its log. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/lib/broker.h"
#include "tests/lib/internal.h"
#include "tests/lib/lines.h"

/* Let other users reach the broker's socket: its directory and the test case's (mkdtemp makes them 0700). */
void testbus_share_dirs(struct testbus *tb)
{
        ck_assert_msg(!base_dir[0] || chmod(base_dir, 0755) == 0, "chmod(%s): %s", base_dir, strerror(errno));
        ck_assert_msg(chmod(tb->dir, 0755) == 0, "chmod(%s): %s", tb->dir, strerror(errno));
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
                testbus_write_text(config_path, o->config);
                argv[n++] = "--config";
                argv[n++] = config_path;
        }
        argv[n++] = "--address";
        argv[n++] = tb->address;
        argv[n++] = "--print-address";
        argv[n++] = "-v";
        argv[n] = NULL;
        if (o->cred) {
                testbus_share_dirs(tb);
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

const char *testbus_log_tail(struct testbus *tb)
{
        /* short enough for a Check failure message */
        static char buf[2048];

        return file_tail(tb->log_path, buf, sizeof(buf));
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
