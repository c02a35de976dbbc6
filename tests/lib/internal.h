/* SPDX-License-Identifier: MIT */
/*
 * What the files of tests/lib share and the suites do not see: the test
 * case's directory, the registry of helper processes, clocks, files,
 * forking and credentials. Suites include tests/testbus.h, never this.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tests/lib/broker.h"
#include "tests/lib/lines.h"

/* ---- fixture.c ---------------------------------------------------------- */

/* The running test case's directory ("" outside a testbus test case); it holds one directory per test. */
extern char base_dir[128];

/* Remember a forked helper process: the fixture kills the ones a test leaves behind (at most 64). */
void helpers_add(pid_t pid);
/* Forget a helper process that was reaped. */
void helpers_remove(pid_t pid);
/* SIGKILL and reap every helper process still remembered. */
void helpers_kill_all(void);

/* ---- util.c ------------------------------------------------------------- */

/* Monotonic clock in microseconds. */
uint64_t now_usec(void);
/* Milliseconds from now until the deadline (testbus_now_ms() time), 0 when it passed, at most INT_MAX. */
int ms_left(int64_t deadline);
/* A wait status in words, for failure messages (static buffer). */
const char *status_text(int status);
/* waitpid with a deadline: returns pid once it exited, 0 when it is still running at the deadline. */
pid_t wait_deadline(pid_t pid, int *ret_status, int timeout_ms);
/* Remove a directory and everything below it ("": nothing). */
void remove_tree(const char *dir);
/* Where temporary directories go: $TMPDIR when short enough for a socket path, else /tmp. */
const char *tmp_dir(void);
/* The last bytes of a file, from a line start, into buf (empty when unreadable). */
const char *file_tail(const char *path, char *buf, size_t size);
/* The whole file (malloc'd, NUL-terminated; "" when it cannot be read). */
char *file_read(const char *path);

/* ---- lines.c ------------------------------------------------------------ */

/* Wait up to timeout_ms for input and read what is there once. Returns false on timeout. */
bool lines_fill(struct testbus_lines *l, int timeout_ms);
/* Drain two readers at once (a process can block on either pipe); true when both reached EOF. */
bool lines_drain_two(struct testbus_lines *a, struct testbus_lines *b, int64_t deadline_ms);

/* ---- child.c ------------------------------------------------------------ */

/*
 * In a freshly forked child: die with the test process (a failed assertion
 * ends it with _exit, skipping every teardown), and close every inherited
 * descriptor from 3 up except keep_a and keep_b (-1: none), so a child does
 * not hold the parent's bus connections open.
 */
void child_prepare(pid_t parent, int keep_a, int keep_b);
/*
 * In a forked child (after child_prepare): become cred's user for good.
 * Returns 0 or -errno. A change of credentials clears the parent-death
 * signal, so it is set again.
 */
int child_become(const struct testbus_cred *cred, pid_t parent);

/* ---- client.c ----------------------------------------------------------- */

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
void cred_enter(struct testbus *tb, const struct testbus_cred *cred, struct saved_cred *s);
/* Be the test process again (aborts when that fails: the rest of the test would run with the wrong rights). */
void cred_leave(const struct saved_cred *s);
