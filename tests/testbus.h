/* SPDX-License-Identifier: MIT */
/*
 * testbus: what the integration suites share. Every suite runs a real
 * ipcbusd on a socket in a fresh temporary directory (one broker per test),
 * talks to it through the real libipcbus, through raw sockets for bad input,
 * through forked client processes, and through the real tools.
 *
 * Functions without "peer" in their name run in the test process and report
 * problems with Check assertions. Functions named testbus_peer_* run in a
 * forked child, where Check must not be used: a child reports a failure to
 * its parent as a "FAIL: ..." line and exits non-zero.
 */
#pragma once

#include <check.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <ipcbus/ipcbus.h>

/* The default per-test timeout (seconds) of testbus_tcase(). */
#define TESTBUS_TIMEOUT_S 20
/* How long helpers wait for something that should happen at once (ms). */
#define TESTBUS_WAIT_MS 5000

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

/* ---- suites ------------------------------------------------------------- */

/*
 * A test case whose every test gets its own broker (testbus_current()),
 * started before and stopped after the test, with a TESTBUS_TIMEOUT_S timeout.
 */
TCase *testbus_tcase(const char *name);
/*
 * The same, with the broker started with --config and this configuration
 * (testbus_start_config). At most 8 such test cases per process.
 */
TCase *testbus_tcase_config(const char *name, const char *config_json);
/*
 * A test case whose tests start their broker themselves (testbus_start*(
 * testbus_current())); it is stopped after the test like the others.
 */
TCase *testbus_tcase_bare(const char *name);
/* The broker of the running test. */
struct testbus *testbus_current(void);
/* Run a suite with CK_NORMAL output; EXIT_SUCCESS or EXIT_FAILURE. */
int testbus_run_suite(Suite *s);

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
/* A "Field: N kB" line of the broker's /proc/PID/status (VmSize, VmRSS, ...). */
long testbus_status_kb(struct testbus *tb, const char *field);
/* The broker's open descriptors (/proc/PID/fd). */
unsigned testbus_fd_count(struct testbus *tb);
/* The broker's resident memory (VmRSS) in KiB. */
long testbus_rss_kb(struct testbus *tb);
/* Its peak resident memory so far (VmHWM) in KiB. */
long testbus_peak_rss_kb(struct testbus *tb);

/* Path of a program under test: $env, else rel (e.g. "daemon/ipcbusd") in the build tree. */
const char *testbus_program(const char *env, const char *rel);

/* The bytes of a file of tests/data ($IPCBUS_TEST_DATA); caller frees. */
char *testbus_data_file(const char *name, size_t *ret_len);

/* Monotonic clock in milliseconds. */
int64_t testbus_now_ms(void);
/*
 * How many times slower than usual the tests run: $CK_TIMEOUT_MULTIPLIER
 * (10 under make check-valgrind), else 1. Time bounds and timeouts that
 * tests set scale with it.
 */
int testbus_slow_factor(void);

/* ---- clients through libipcbus ------------------------------------------ */

/* Open a connection (asserting success) and dispatch what came with Hello. */
ipcbus_bus *testbus_connect(struct testbus *tb);
/*
 * The same as another user: the socket is connected under cred's effective
 * uid, gid and groups, which is what the broker learns (SO_PEERCRED,
 * SO_PEERGROUPS); the test process is root again afterwards.
 */
ipcbus_bus *testbus_connect_as(struct testbus *tb, const struct testbus_cred *cred);
/* ipcbus_open_address as another user: its result (for connections the broker refuses). */
int testbus_open_as(struct testbus *tb, const struct testbus_cred *cred, ipcbus_bus **ret);
/* Dispatch everything already received, without blocking. */
void testbus_pump(ipcbus_bus *bus);
/*
 * Round trip to the broker (Ping), then dispatch everything received: every
 * message the broker queued for this connection before it answered is
 * dispatched when this returns.
 */
void testbus_sync(ipcbus_bus *bus);
/*
 * Dispatch until done(userdata) is true or timeout_ms passed; returns done().
 * Several connections can be driven together (NULL-terminated array).
 */
bool testbus_pump_until(ipcbus_bus *const *buses, bool (*done)(void *userdata), void *userdata, int timeout_ms);

/* Parse JSON text (asserting it is valid). Caller puts it. */
json_object *testbus_json(const char *text, size_t len);
/* Members of a JSON object, asserting presence and type. */
const char *testbus_json_string(json_object *o, const char *key);
int64_t testbus_json_int(json_object *o, const char *key);
bool testbus_json_bool(json_object *o, const char *key);
json_object *testbus_json_array(json_object *o, const char *key);
/* Assert o is an object with exactly these keys (NULL-terminated list). */
void testbus_json_keys(json_object *o, ...) __attribute__((sentinel));
/* True if the JSON array holds the string s. */
bool testbus_json_array_has(json_object *array, const char *s);

/*
 * A call that must succeed: returns the reply body parsed (NULL when the
 * reply had no body). Fails the test on an error reply, naming it.
 */
json_object *testbus_call(ipcbus_bus *bus, const char *destination, const char *path, const char *interface,
                          const char *member, const char *body);
/* A call that must fail with error_name; returns the error's message (malloc'd, may be NULL). */
char *testbus_call_error(ipcbus_bus *bus, const char *destination, const char *path, const char *interface,
                         const char *member, const char *body, const char *error_name);
/* The same, on the driver. */
json_object *testbus_driver(ipcbus_bus *bus, const char *member, const char *body);
void testbus_driver_error(ipcbus_bus *bus, const char *member, const char *body, const char *error_name);
/* RequestName through the driver; returns the result code. */
int testbus_request_name(ipcbus_bus *bus, const char *name, unsigned flags);
int testbus_release_name(ipcbus_bus *bus, const char *name);
/* GetNameOwner: the owner, malloc'd, or NULL when the name has no owner. */
char *testbus_name_owner(ipcbus_bus *bus, const char *name);
/* AddMatch / RemoveMatch with a rule in JSON object form, through the driver. */
void testbus_add_match(ipcbus_bus *bus, const char *rule_json);
void testbus_remove_match(ipcbus_bus *bus, const char *rule_json);

/* ---- recording what a connection receives ------------------------------- */

/* A filter on a connection that keeps a reference to each incoming message of the chosen types. */
struct testbus_rec {
        ipcbus_bus *bus;
        ipcbus_slot *slot;
        unsigned types; /* bit (1 << ipcbus_message_type); 0: every type */
        ipcbus_message **msgs;
        size_t n;
        size_t cap;
        size_t next; /* first message not yet taken */
};

#define TESTBUS_REC_SIGNALS (1u << IPCBUS_MESSAGE_SIGNAL)

void testbus_rec_init(struct testbus_rec *r, ipcbus_bus *bus, unsigned types);
void testbus_rec_deinit(struct testbus_rec *r);
/* The next recorded message (a borrowed reference), dispatching up to timeout_ms; NULL if none came. */
ipcbus_message *testbus_rec_next(struct testbus_rec *r, int timeout_ms);
/*
 * The next recorded message must be a signal `member` whose body member
 * "name" is `name` (unless NULL); returns it. Fails otherwise or if nothing came.
 */
ipcbus_message *testbus_rec_expect(struct testbus_rec *r, const char *member, const char *name);
/* Skip messages until a signal `member` comes; returns it, NULL on timeout. */
ipcbus_message *testbus_rec_wait_member(struct testbus_rec *r, const char *member, int timeout_ms);
/* Sync with the broker, then assert nothing more was recorded. */
void testbus_rec_expect_quiet(struct testbus_rec *r);
/* Forget everything recorded so far. */
void testbus_rec_skip(struct testbus_rec *r);
/* Number of untaken recorded signals named member. */
size_t testbus_rec_count(struct testbus_rec *r, const char *member);

/* Body of a message parsed (NULL when it has none). */
json_object *testbus_message_json(ipcbus_message *m);

/* ---- raw sockets -------------------------------------------------------- */

/* A frame as received: header and body text (NUL-terminated) and parsed. */
struct testbus_frame {
        char *header;
        size_t header_len;
        char *body; /* NULL when body_len is 0 */
        size_t body_len;
        json_object *h;
        json_object *b; /* NULL when no body */
};

/* Connect a socket to the bus without saying Hello. */
int testbus_raw_connect(struct testbus *tb);
/* The same as another user (see testbus_connect_as). */
int testbus_raw_connect_as(struct testbus *tb, const struct testbus_cred *cred);
/* Write all bytes; returns 0 or -errno (no SIGPIPE). */
int testbus_raw_write(int fd, const void *data, size_t len);
/* Write all bytes, asserting success. */
void testbus_raw_send(int fd, const void *data, size_t len);
/* The 16-byte prefix, built by hand as PROTOCOL.md section 2 lays it out. */
void testbus_raw_prefix(uint8_t out[16], uint32_t header_len, uint32_t body_len, uint16_t n_fds);
/* Send one frame: header text and body text (NULL: no body). */
void testbus_raw_send_frame(int fd, const char *header, const char *body);
/* The same with n descriptors (SCM_RIGHTS on the first byte, announced in the prefix); 0 or -errno. */
int testbus_raw_send_frame_fds(int fd, const char *header, const char *body, const int *fds, unsigned n);
/* The same with a prefix that announces `announce` descriptors, however many are sent (n <= 64).
 * Uses no Check assertion: forked children (testbus_peer_*) may call it. */
int testbus_raw_send_frame_announcing(int fd, const char *header, const char *body, uint16_t announce, const int *fds,
                                      unsigned n);
/* Receive one frame: 1, 0 at EOF, -ETIMEDOUT, or another -errno (e.g. -ECONNRESET). */
int testbus_raw_recv(int fd, int timeout_ms, struct testbus_frame *ret);
void testbus_frame_deinit(struct testbus_frame *f);
/* Header fields of a received frame: NULL / -1 when absent. */
const char *testbus_frame_string(struct testbus_frame *f, const char *field);
int64_t testbus_frame_int(struct testbus_frame *f, const char *field);
/* Say Hello (serial 1) and return the unique name (malloc'd). Signals after it are left unread. */
char *testbus_raw_hello(int fd);
/*
 * Read frames, skipping signals, until a return or error comes; assert it
 * answers reply_serial (0: it must have no reply_serial) and is an error with
 * error_name (NULL: a return). Fills ret if not NULL.
 */
void testbus_raw_expect_reply(int fd, uint32_t reply_serial, const char *error_name, struct testbus_frame *ret);
/* Assert the broker closes the connection (EOF or reset) soon; signals before it are skipped. */
void testbus_raw_expect_eof(int fd);
/* Ping the driver with `serial` and expect its return: proves the connection still works. */
void testbus_raw_ping(int fd, uint32_t serial);
/*
 * The broker refuses or ends the connection: one error error_name without
 * reply_serial comes (signals before it are skipped), then EOF. Returns the
 * error's message (malloc'd; the test fails when it has none).
 */
char *testbus_raw_expect_refused(int fd, const char *error_name);
/* Does text mention `word` as a whole word ("max_connections" is not in "max_connections_per_uid")? */
bool testbus_text_names(const char *text, const char *word);

/* ---- forked helper processes -------------------------------------------- */

/* Line reader over a pipe, with timeouts. */
struct testbus_lines {
        int fd;
        char *buf;
        size_t len;
        size_t cap;
        bool eof;
};

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

/* ---- the test service --------------------------------------------------- */

/*
 * A child process serving TESTBUS_SERVICE_INTERFACE at TESTBUS_SERVICE_PATH,
 * owning `name` when not NULL. Methods:
 *   Echo           replies with the call's body bytes unchanged
 *   Fixed          replies with TESTBUS_FIXED_BODY
 *   Fail           replies with error TESTBUS_SERVICE_ERROR "failed on purpose"
 *   FailErrno      the handler returns -ENOENT without setting an error
 *   FailCustom     the handler sets TESTBUS_SERVICE_CUSTOM_ERROR "custom failure", returns -EIO
 *   Hold           keeps the call unanswered and reports "held <serial>"
 *   WhoAmI         replies {"sender":…,"uid":…,"pid":…} as the call's header carried them
 *   Record         reports "record <no_reply 0|1> <body>" and replies {}
 *   EmitThenReply  emits {"n":N} broadcast signals Tick {"i":0..N-1}, then replies {}
 * Commands: "release" answers every held call with {"released":true} and
 * reports "released <count>"; "emit MEMBER BODY" emits a broadcast signal
 * and reports "emitted". Every error message the service receives is
 * reported as "error <name>".
 * Reads the "ready <unique name>" line into c->unique.
 */
#define TESTBUS_SERVICE_PATH "/org/example/Test"
#define TESTBUS_SERVICE_INTERFACE "org.example.Test"
#define TESTBUS_SERVICE_ERROR "org.example.Test.Error.Failed"
#define TESTBUS_SERVICE_CUSTOM_ERROR "org.example.Test.Error.Custom"
#define TESTBUS_FIXED_BODY "{ \"text\" : \"h\\u00e9llo\" ,\n\t\"list\":[ 1, 2.50e3 , true ],  \"nested\":{ } }"
void testbus_service_start(struct testbus *tb, struct testbus_child *c, const char *name);
/* The same, the service running as another user. */
void testbus_service_start_as(struct testbus *tb, struct testbus_child *c, const struct testbus_cred *cred,
                              const char *name);

/*
 * A child process subscribed with each rule of `rules` (string form, NULL
 * terminated) through ipcbus_add_match; reports "ready <unique>", then one
 * line per signal the broker delivers to it (seen by a filter, so a signal
 * matching several rules shows how often the broker sent it):
 * "signal <member> <sender> <body>".
 */
void testbus_subscriber_start(struct testbus *tb, struct testbus_child *c, const char *const *rules);

/* ---- running the tools -------------------------------------------------- */

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

/* ---- line readers ------------------------------------------------------- */

void testbus_lines_init(struct testbus_lines *l, int fd);
void testbus_lines_deinit(struct testbus_lines *l);
/* The next line without '\n' (malloc'd); NULL on timeout or at EOF (l->eof tells). */
char *testbus_lines_read(struct testbus_lines *l, int timeout_ms);
/* Read everything until EOF or the deadline; returns true at EOF. */
bool testbus_lines_drain(struct testbus_lines *l, int64_t deadline_ms);

/* ---- activation and reload suites ---------------------------------------- */

/*
 * A fresh directory "<the test case's directory>/<prefix>-XXXXXX" (0700) into
 * buf; it goes when the test case's directory does, also after a failure.
 */
void testbus_mkdtemp(char *buf, size_t size, const char *prefix);
/* Write text to path (created 0644, or truncated), asserting success. */
void testbus_write_text(const char *path, const char *text);
/* Let other users reach the broker's socket (testbus_connect_as does it too). */
void testbus_share_dirs(struct testbus *tb);
/* tests/test-service: $IPCBUS_TEST_SERVICE, else the build tree's. */
const char *testbus_test_service(void);

/*
 * The bystander of the attack tests: a child with cred's uid and gid that
 * calls the driver's Ping (and then `service`'s Echo, when not NULL) every
 * 10 ms, each failure failing it, until testbus_bystander_finish(), which
 * returns its worst latency in ms and asserts it got answers.
 */
void testbus_bystander_start(struct testbus_child *c, const struct testbus_cred *cred, const char *service);
long testbus_bystander_finish(struct testbus_child *c);
