/* SPDX-License-Identifier: MIT */
/*
 * testbus: forked helper processes. The parent drives a child with command
 * lines and reads its report lines. Functions named testbus_peer_* run in
 * the child, where Check must not be used: a child reports a failure to its
 * parent as a "FAIL: ..." line and exits non-zero.
 */
#pragma once

#include <sys/types.h>

#include <ipcbus/ipcbus.h>

#include "tests/lib/broker.h"
#include "tests/lib/lines.h"

/* The parent's handle on a child. */
struct testbus_child {
        pid_t pid;
        int cmd_fd;               /* write commands to the child */
        struct testbus_lines out; /* the child's report lines */
        char unique[256];         /* the child's unique name, from its "ready" line */
};

/* The child's side. */
struct testbus_peer {
        struct testbus *tb;
        int report_fd;
        struct testbus_lines cmd;
};

typedef int (*testbus_child_fn)(struct testbus_peer *p, void *arg);

/* Fork a child running fn(peer, arg); its return value is its exit status. */
void testbus_child_start(struct testbus *tb, struct testbus_child *c, testbus_child_fn fn, void *arg);
/* The same, the child running as uid and gid with no supplementary group. */
void testbus_child_start_as(struct testbus *tb, struct testbus_child *c, uid_t uid, gid_t gid, testbus_child_fn fn,
                            void *arg);
/* The same with credentials (NULL: as the test). */
void testbus_child_start_cred(struct testbus *tb, struct testbus_child *c, const struct testbus_cred *cred,
                              testbus_child_fn fn, void *arg);
/* Read the child's "ready <unique name>" line into c->unique. */
void testbus_child_ready(struct testbus_child *c);
/* The next report line (malloc'd). Fails on timeout, on EOF and on a child's "FAIL:" line. */
char *testbus_child_read(struct testbus_child *c, int timeout_ms);
/* The next report line must be `line`. */
void testbus_child_expect(struct testbus_child *c, const char *line);
/* Send a command line. */
void testbus_child_send(struct testbus_child *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Close the command pipe (the child's cue to finish), wait, assert it exited 0. */
void testbus_child_finish(struct testbus_child *c);
/* SIGKILL the child and reap it. */
void testbus_child_kill(struct testbus_child *c);

/* Child side: report a line to the parent. */
void testbus_peer_report(struct testbus_peer *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Child side: report "FAIL: ..." and exit 1. */
_Noreturn void testbus_peer_fail(struct testbus_peer *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define testbus_peer_check(p, expr)                                                                                    \
        do {                                                                                                           \
                if (!(expr))                                                                                           \
                        testbus_peer_fail((p), "%s:%d: check '%s' failed", __FILE__, __LINE__, #expr);                 \
        } while (0)
/* Child side: connect to the bus. */
ipcbus_bus *testbus_peer_connect(struct testbus_peer *p);
/*
 * Child side: serve the connection until the parent closes the command pipe
 * (returns 0) or on_command returns > 0; on_command (may be NULL) gets each
 * command line. Losing the connection fails the child.
 */
int testbus_peer_run(struct testbus_peer *p, ipcbus_bus *bus,
                     int (*on_command)(struct testbus_peer *p, const char *line, void *userdata), void *userdata);
