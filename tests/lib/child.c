/* SPDX-License-Identifier: MIT */
/* testbus: forked helper processes, the parent's side and the child's. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/lib/child.h"
#include "tests/lib/internal.h"

void child_prepare(pid_t parent, int keep_a, int keep_b)
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

int child_become(const struct testbus_cred *cred, pid_t parent)
{
        if (setgroups(cred->n_groups, cred->n_groups ? cred->groups : NULL) < 0 || setgid(cred->gid) < 0 ||
            setuid(cred->uid) < 0)
                return -errno;
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
                _exit(1);
        return 0;
}

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
                testbus_share_dirs(tb);
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

void testbus_child_ready(struct testbus_child *c)
{
        char *line = testbus_child_read(c, TESTBUS_WAIT_MS);

        ck_assert_msg(strncmp(line, "ready :", 7) == 0, "child reported '%s' instead of ready", line);
        snprintf(c->unique, sizeof(c->unique), "%s", line + 6);
        free(line);
}
