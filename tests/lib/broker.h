/* SPDX-License-Identifier: MIT */
/* testbus: starting and stopping ipcbusd, and reading its log. */
#pragma once

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "tests/lib/util.h"

/* A running broker. */
struct testbus {
        char dir[192]; /* fresh mkdtemp directory holding the socket */
        char socket_path[256];
        char address[272];  /* "unix:path=<dir>/bus" */
        pid_t pid;          /* ipcbusd */
        int stdout_fd;      /* read end of the broker's stdout */
        char log_path[256]; /* the broker's stderr: "<dir>/log" */
};

/* Who a connection, a helper process or the broker runs as (the tests run as root). */
struct testbus_cred {
        uid_t uid;
        gid_t gid;
        size_t n_groups;
        gid_t groups[8]; /* supplementary groups */
};

/* How to start a broker (testbus_start_with). Every member may be 0 / NULL. */
struct testbus_options {
        const char *config;              /* text written to <dir>/config.json, passed as --config */
        const char *const *args;         /* more arguments (NULL-terminated), before --address */
        const struct testbus_cred *cred; /* run ipcbusd as this user (its directory is given to it) */
};

/*
 * Start ipcbusd with --address unix:path=DIR/bus --print-address -v, its
 * stderr going to DIR/log; wait for the address line.
 */
void testbus_start(struct testbus *tb);
/* The same, with options (NULL: none). A broker that fails to start fails the test, showing its log. */
void testbus_start_with(struct testbus *tb, const struct testbus_options *o);
/* The same, with --config DIR/config.json holding config_json (the --address wins over its "listen"). */
void testbus_start_config(struct testbus *tb, const char *config_json);
/*
 * Check the broker is still running (it must never crash), SIGTERM it, check
 * it exits 0 and remove its directory. (The fixture of testbus_tcase() also
 * kills the helper processes a test left behind, first.)
 */
void testbus_stop(struct testbus *tb);
/* True while the broker process has not exited. */
bool testbus_alive(struct testbus *tb);
/* Let other users reach the broker's socket (testbus_connect_as does it too). */
void testbus_share_dirs(struct testbus *tb);

/*
 * Wait up to timeout_ms for a line of the broker's log that contains every
 * one of the strings (NULL-terminated); true when one came.
 */
bool testbus_log_wait_line(struct testbus *tb, int timeout_ms, ...) __attribute__((sentinel));
/* The same for one string. */
bool testbus_log_wait(struct testbus *tb, const char *substring, int timeout_ms);
/* Assert such a line comes within TESTBUS_WAIT_MS; the failure shows the log. */
#define testbus_log_expect(tb, ...)                                                                                    \
        ck_assert_msg(testbus_log_wait_line((tb), TESTBUS_WAIT_MS, __VA_ARGS__, (const char *) NULL),                  \
                      "no line with %s in the broker's log:\n%s", #__VA_ARGS__, testbus_log_tail((tb)))
/* The last few KiB of the broker's log (static buffer), for failure messages. */
const char *testbus_log_tail(struct testbus *tb);
