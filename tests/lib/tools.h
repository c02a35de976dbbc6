/* SPDX-License-Identifier: MIT */
/* testbus: running the tools (or any program) with their output captured. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "tests/lib/lines.h"

struct testbus_proc {
        pid_t pid;
        struct testbus_lines out;
        struct testbus_lines err;
        int status; /* wait status once finished */
        bool done;
};

/* Start argv[0] with stdout and stderr captured (stdin is /dev/null). */
void testbus_proc_spawn(struct testbus_proc *p, const char *const *argv);
/* The next stdout line (malloc'd), or NULL on timeout or EOF. */
char *testbus_proc_read_line(struct testbus_proc *p, int timeout_ms);
/*
 * Collect all output until the process exits (killing it after timeout_ms
 * and failing); asserts it exited normally and returns the exit code.
 */
int testbus_proc_finish(struct testbus_proc *p, int timeout_ms);
/* SIGTERM it and collect as testbus_proc_finish does. */
int testbus_proc_terminate(struct testbus_proc *p);
void testbus_proc_deinit(struct testbus_proc *p);
/*
 * spawn + finish; returns the exit code. The output not taken by
 * testbus_proc_read_line is in p->out.buf and p->err.buf (NUL-terminated).
 */
int testbus_run(struct testbus_proc *p, const char *const *argv, int timeout_ms);

struct testbus;
/*
 * Run the ipcctl under test as "ipcctl --address ADDRESS ARGS..." (a NULL
 * terminates ARGS; at most 20); returns its exit code, its output in p.
 */
int testbus_ipcctl(struct testbus_proc *p, struct testbus *tb, ...) __attribute__((sentinel));
/* The line of text whose first word is `first` (malloc'd), or NULL. */
char *testbus_line_starting(const char *text, const char *first);
/* Split line at runs of spaces and tabs into at most max words (pointers into line, which is modified); returns how many. */
size_t testbus_split_words(char *line, char **words, size_t max);
