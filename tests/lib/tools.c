/* SPDX-License-Identifier: MIT */
/* testbus: running the tools with their output captured. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/lib/tools.h"
#include "tests/lib/broker.h"
#include "tests/lib/internal.h"

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

int testbus_ipcctl(struct testbus_proc *p, struct testbus *tb, ...)
{
        const char *argv[24] = {testbus_program("IPCCTL", "tools/ipcctl"), "--address", tb->address};
        size_t n = 3;
        va_list ap;

        va_start(ap, tb);
        while (n < 23 && (argv[n] = va_arg(ap, const char *)))
                n++;
        va_end(ap);
        argv[n] = NULL;
        return testbus_run(p, argv, TESTBUS_WAIT_MS * testbus_slow_factor());
}

char *testbus_line_starting(const char *text, const char *first)
{
        size_t n = strlen(first);

        for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
                if (strncmp(p, first, n) == 0 && (p[n] == ' ' || p[n] == '\t'))
                        return strndup(p, strcspn(p, "\n"));
        return NULL;
}

size_t testbus_split_words(char *line, char **words, size_t max)
{
        size_t n = 0;

        for (char *save = NULL, *t = strtok_r(line, " \t", &save); t && n < max; t = strtok_r(NULL, " \t", &save))
                words[n++] = t;
        return n;
}
