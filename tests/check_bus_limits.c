/* SPDX-License-Identifier: MIT */
/*
 * The broker's limits (daemon/CONFIG.md, "limits") against a real ipcbusd
 * started with small ones. Each exceeded limit gives LimitsExceeded whose
 * message names the limit's key, or a ProtocolError naming it and a logged
 * disconnect; the per-uid limits count every connection of a uid together
 * (opening more connections buys no more quota) and leave other uids alone.
 * Connections of other users are made as those users (the suite runs as
 * root); without root those tests are left out.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/testbus.h"

static const struct testbus_cred alice = {.uid = 4242, .gid = 4242};
static const struct testbus_cred bob = {.uid = 4243, .gid = 4243};

#define HOLDER "org.example.Holder"

/* A call's message must name the limit `key` (and not a longer key that starts with it). */
#define ck_assert_names(message, key)                                                                                  \
        ck_assert_msg(testbus_text_names((message), (key)), "the error does not name %s: %s", (key),                   \
                      (message) ? (message) : "(no message)")

static int64_t deadline_left(int64_t deadline)
{
        int64_t left = deadline - testbus_now_ms();

        return left < 0 ? 0 : left;
}

/* A raw connection of cred's user (NULL: the test's) that has said Hello; its unique name in *ret_name. */
static int raw_open_as(const struct testbus_cred *cred, char **ret_name)
{
        struct testbus *tb = testbus_current();
        int fd = cred ? testbus_raw_connect_as(tb, cred) : testbus_raw_connect(tb);
        char *name = testbus_raw_hello(fd);

        if (ret_name)
                *ret_name = name;
        else
                free(name);
        return fd;
}

/* A new connection of cred's user is refused at once with LimitsExceeded naming key. */
static void expect_connection_refused(const struct testbus_cred *cred, const char *key)
{
        struct testbus *tb = testbus_current();
        int fd = cred ? testbus_raw_connect_as(tb, cred) : testbus_raw_connect(tb);
        char *message = testbus_raw_expect_refused(fd, IPCBUS_ERROR_LIMITS_EXCEEDED);

        ck_assert_names(message, key);
        free(message);
        close(fd);
        testbus_log_expect(tb, key);
}

/* A watcher of NameOwnerChanged: tells when a connection is gone (and its quota given back). */
static void watch_open(struct testbus_rec *rec, ipcbus_bus *bus)
{
        testbus_add_match(bus, "{\"member\":\"NameOwnerChanged\"}");
        testbus_rec_init(rec, bus, TESTBUS_REC_SIGNALS);
}

static void watch_gone(struct testbus_rec *rec, const char *unique)
{
        int64_t deadline = testbus_now_ms() + TESTBUS_WAIT_MS;
        ipcbus_message *m;

        while ((m = testbus_rec_wait_member(rec, "NameOwnerChanged", (int) deadline_left(deadline)))) {
                const char *name = ipcbus_message_get_arg(m, "name"), *owner = ipcbus_message_get_arg(m, "new_owner");

                if (name && strcmp(name, unique) == 0 && owner && !owner[0])
                        return;
        }
        ck_abort_msg("no NameOwnerChanged for %s leaving", unique);
}

/* ---- connections ------------------------------------------------------------------------------ */

#define CONNECTIONS_CONFIG "{\"limits\":{\"max_connections\":6,\"max_connections_per_uid\":3}}"

START_TEST(test_connections_per_uid)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *good = testbus_connect(tb);
        struct testbus_rec rec;
        char *name3;
        int fd2, fd3, fd_alice;

        watch_open(&rec, good);
        fd2 = raw_open_as(NULL, NULL);
        fd3 = raw_open_as(NULL, &name3);
        /* the uid's fourth connection */
        expect_connection_refused(NULL, "max_connections_per_uid");
        /* another uid still gets in, and the others are fine */
        fd_alice = raw_open_as(&alice, NULL);
        testbus_raw_ping(fd_alice, 2);
        testbus_raw_ping(fd2, 2);
        testbus_sync(good);

        /* a connection that leaves gives its place back */
        close(fd3);
        watch_gone(&rec, name3);
        fd3 = raw_open_as(NULL, NULL);
        testbus_raw_ping(fd3, 2);
        expect_connection_refused(NULL, "max_connections_per_uid");

        free(name3);
        close(fd_alice);
        close(fd3);
        close(fd2);
        testbus_rec_deinit(&rec);
        ipcbus_unref(good);
}
END_TEST

START_TEST(test_connections_total)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *good = testbus_connect(tb);
        struct testbus_rec rec;
        int fds[4], fd_bob;
        char *name0;

        watch_open(&rec, good);
        fds[0] = raw_open_as(&alice, &name0);
        fds[1] = raw_open_as(&alice, NULL);
        fds[2] = raw_open_as(&alice, NULL);
        fds[3] = raw_open_as(NULL, NULL);
        fd_bob = raw_open_as(&bob, NULL);
        /* six connections: the bus is full for everyone, whatever their uid */
        expect_connection_refused(&bob, "max_connections");
        expect_connection_refused(NULL, "max_connections");
        testbus_sync(good);
        testbus_raw_ping(fd_bob, 2);

        close(fds[0]);
        watch_gone(&rec, name0);
        fds[0] = raw_open_as(&bob, NULL);
        testbus_raw_ping(fds[0], 2);

        free(name0);
        for (size_t i = 0; i < 4; i++)
                close(fds[i]);
        close(fd_bob);
        testbus_rec_deinit(&rec);
        ipcbus_unref(good);
}
END_TEST

/* ---- names ------------------------------------------------------------------------------------ */

#define NAMES_CONFIG "{\"limits\":{\"max_names_per_connection\":3,\"max_names_per_uid\":5}}"

static void request_refused(ipcbus_bus *bus, const char *name, const char *key)
{
        char body[300], *message;

        snprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
        message = testbus_call_error(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE,
                                     "RequestName", body, IPCBUS_ERROR_LIMITS_EXCEEDED);
        ck_assert_names(message, key);
        free(message);
        ck_assert_ptr_null(testbus_name_owner(bus, name));
}

START_TEST(test_names_per_connection)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *a = testbus_connect(tb), *b = testbus_connect(tb);

        /* the unique name does not count */
        ck_assert_int_eq(testbus_request_name(a, "org.example.A1", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        ck_assert_int_eq(testbus_request_name(a, "org.example.A2", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        ck_assert_int_eq(testbus_request_name(a, "org.example.A3", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        request_refused(a, "org.example.A4", "max_names_per_connection");
        /* asking again for a name it has is no new name */
        ck_assert_int_eq(testbus_request_name(a, "org.example.A3", 0), IPCBUS_REQUEST_NAME_ALREADY_OWNER);

        /* a place in a queue counts like an owned name */
        ck_assert_int_eq(testbus_request_name(b, "org.example.Queue", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        ck_assert_int_eq(testbus_release_name(a, "org.example.A3"), IPCBUS_RELEASE_NAME_RELEASED);
        ck_assert_int_eq(testbus_request_name(a, "org.example.Queue", 0), IPCBUS_REQUEST_NAME_IN_QUEUE);
        request_refused(a, "org.example.A4", "max_names_per_connection");

        /* releasing gives the place back */
        ck_assert_int_eq(testbus_release_name(a, "org.example.A1"), IPCBUS_RELEASE_NAME_RELEASED);
        ck_assert_int_eq(testbus_request_name(a, "org.example.A4", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        /* another connection has its own quota */
        ck_assert_int_eq(testbus_request_name(b, "org.example.B1", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);

        ipcbus_unref(b);
        ipcbus_unref(a);
}
END_TEST

START_TEST(test_names_per_uid)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *a1 = testbus_connect_as(tb, &alice), *a2 = testbus_connect_as(tb, &alice);
        ipcbus_bus *b = testbus_connect_as(tb, &bob), *root = testbus_connect(tb);
        struct testbus_rec rec;
        char *unique_a1;

        watch_open(&rec, root);
        ck_assert_int_eq(testbus_request_name(a1, "org.example.A1", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        ck_assert_int_eq(testbus_request_name(a1, "org.example.A2", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        ck_assert_int_eq(testbus_request_name(a1, "org.example.A3", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        ck_assert_int_eq(testbus_request_name(a2, "org.example.A4", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        ck_assert_int_eq(testbus_request_name(a2, "org.example.A5", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        /* a2 is below its own limit, but alice has five */
        request_refused(a2, "org.example.A6", "max_names_per_uid");
        /* other users are not affected */
        ck_assert_int_eq(testbus_request_name(b, "org.example.B1", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        ck_assert_int_eq(testbus_request_name(root, "org.example.R1", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);

        /* names given up with a connection count no more */
        unique_a1 = strdup(ipcbus_get_unique_name(a1));
        ipcbus_unref(a1);
        watch_gone(&rec, unique_a1);
        ck_assert_int_eq(testbus_request_name(a2, "org.example.A6", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);

        free(unique_a1);
        testbus_rec_deinit(&rec);
        ipcbus_unref(root);
        ipcbus_unref(b);
        ipcbus_unref(a2);
}
END_TEST

/* ---- match rules ----------------------------------------------------------------------------- */

#define MATCHES_CONFIG "{\"limits\":{\"max_matches_per_connection\":4,\"max_matches_per_uid\":6}}"

static void add_match_n(ipcbus_bus *bus, int n)
{
        char rule[128];

        snprintf(rule, sizeof(rule), "{\"interface\":\"org.example.I\",\"member\":\"M%d\"}", n);
        testbus_add_match(bus, rule);
}

static void add_match_refused(ipcbus_bus *bus, int n, const char *key)
{
        char body[160], *message;

        snprintf(body, sizeof(body), "{\"rule\":{\"interface\":\"org.example.I\",\"member\":\"M%d\"}}", n);
        message = testbus_call_error(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE, "AddMatch",
                                     body, IPCBUS_ERROR_LIMITS_EXCEEDED);
        ck_assert_names(message, key);
        free(message);
}

START_TEST(test_matches_per_connection)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *a = testbus_connect(tb), *b = testbus_connect(tb);

        for (int i = 1; i <= 4; i++)
                add_match_n(a, i);
        add_match_refused(a, 5, "max_matches_per_connection");
        /* the same rule again is one more instance */
        add_match_refused(a, 1, "max_matches_per_connection");
        testbus_remove_match(a, "{\"interface\":\"org.example.I\",\"member\":\"M2\"}");
        add_match_n(a, 5);
        add_match_n(b, 1);
        ipcbus_unref(b);
        ipcbus_unref(a);
}
END_TEST

START_TEST(test_matches_per_uid)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *a1 = testbus_connect_as(tb, &alice), *a2 = testbus_connect_as(tb, &alice);
        ipcbus_bus *b = testbus_connect_as(tb, &bob);

        for (int i = 1; i <= 4; i++)
                add_match_n(a1, i);
        add_match_n(a2, 1);
        add_match_n(a2, 2);
        add_match_refused(a2, 3, "max_matches_per_uid");
        for (int i = 1; i <= 4; i++)
                add_match_n(b, i);
        testbus_remove_match(a1, "{\"interface\":\"org.example.I\",\"member\":\"M4\"}");
        add_match_n(a2, 3);
        ipcbus_unref(b);
        ipcbus_unref(a2);
        ipcbus_unref(a1);
}
END_TEST

/* ---- pending calls ----------------------------------------------------------------------------- */

#define PENDING_CONFIG "{\"limits\":{\"max_pending_calls_per_connection\":3,\"max_pending_calls_per_uid\":5}}"

/* Send a Hold call to the holder; when the broker forwards it the service reports it. */
static void hold_send(int fd, uint32_t serial)
{
        char header[256];

        snprintf(header, sizeof(header),
                 "{\"type\":\"call\",\"serial\":%u,\"destination\":\"" HOLDER "\",\"path\":\"" TESTBUS_SERVICE_PATH
                 "\",\"interface\":\"" TESTBUS_SERVICE_INTERFACE "\",\"member\":\"Hold\"}",
                 serial);
        testbus_raw_send_frame(fd, header, NULL);
}

static void hold(struct testbus_child *svc, int fd, uint32_t serial)
{
        char *line;

        hold_send(fd, serial);
        line = testbus_child_read(svc, TESTBUS_WAIT_MS);
        ck_assert_msg(strncmp(line, "held ", 5) == 0, "service reported '%s'", line);
        free(line);
}

static void hold_refused(int fd, uint32_t serial, const char *key)
{
        struct testbus_frame f;

        hold_send(fd, serial);
        testbus_raw_expect_reply(fd, serial, IPCBUS_ERROR_LIMITS_EXCEEDED, &f);
        ck_assert_msg(f.b, "LimitsExceeded without a body");
        ck_assert_names(testbus_json_string(f.b, "message"), key);
        testbus_frame_deinit(&f);
}

START_TEST(test_pending_per_connection)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        int fd, other;

        testbus_service_start(tb, &svc, HOLDER);
        fd = raw_open_as(NULL, NULL);
        other = raw_open_as(NULL, NULL);
        hold(&svc, fd, 10);
        hold(&svc, fd, 11);
        hold(&svc, fd, 12);
        hold_refused(fd, 13, "max_pending_calls_per_connection");
        /* calls to the driver are answered at once: they are never pending */
        testbus_raw_ping(fd, 14);
        /* another connection has its own quota */
        hold(&svc, other, 10);

        testbus_child_send(&svc, "release");
        testbus_child_expect(&svc, "released 4");
        testbus_raw_expect_reply(fd, 10, NULL, NULL);
        testbus_raw_expect_reply(fd, 11, NULL, NULL);
        testbus_raw_expect_reply(fd, 12, NULL, NULL);
        testbus_raw_expect_reply(other, 10, NULL, NULL);
        /* answered calls count no more */
        hold(&svc, fd, 15);
        testbus_child_send(&svc, "release");
        testbus_child_expect(&svc, "released 1");
        testbus_raw_expect_reply(fd, 15, NULL, NULL);

        close(other);
        close(fd);
        testbus_child_finish(&svc);
}
END_TEST

START_TEST(test_pending_per_uid)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        int a1, a2, b;

        testbus_service_start(tb, &svc, HOLDER);
        a1 = raw_open_as(&alice, NULL);
        a2 = raw_open_as(&alice, NULL);
        b = raw_open_as(&bob, NULL);
        hold(&svc, a1, 10);
        hold(&svc, a1, 11);
        hold(&svc, a1, 12);
        hold(&svc, a2, 10);
        hold(&svc, a2, 11);
        hold_refused(a2, 12, "max_pending_calls_per_uid");
        hold(&svc, b, 10);

        testbus_child_send(&svc, "release");
        testbus_child_expect(&svc, "released 6");
        testbus_raw_expect_reply(a2, 10, NULL, NULL);
        testbus_raw_expect_reply(a2, 11, NULL, NULL);
        hold(&svc, a2, 13);
        testbus_child_send(&svc, "release");
        testbus_child_expect(&svc, "released 1");
        testbus_raw_expect_reply(a2, 13, NULL, NULL);

        close(b);
        close(a2);
        close(a1);
        testbus_child_finish(&svc);
}
END_TEST

/* ---- queued bytes ------------------------------------------------------------------------------- */

#define QUEUE_CONFIG                                                                                                   \
        "{\"limits\":{\"max_body_bytes\":131072,\"max_frame_bytes\":196608,"                                           \
        "\"max_queued_bytes_per_connection\":262144,\"max_queued_bytes_per_uid\":393216,"                              \
        "\"backpressure_bytes\":65536}}"
#define CHUNK (48 * 1024)
#define CHUNK_HEADER                                                                                                   \
        "{\"type\":\"%s\",\"serial\":2,\"destination\":\"%s\",\"path\":\"/x\",\"interface\":\"org.example.Flood\","    \
        "\"member\":\"Chunk\"}"
#define FLOOD_N 20

static char *chunk_body(void)
{
        char *body = malloc(CHUNK + 16);

        ck_assert_ptr_nonnull(body);
        strcpy(body, "{\"data\":\"");
        memset(body + 9, 'x', CHUNK);
        strcpy(body + 9 + CHUNK, "\"}");
        return body;
}

/* A chunk of CHUNK bytes ("signal" or "call", serial 2) to `to` from a fresh connection. */
static int chunk_send(const char *type, const char *to, char **ret_name)
{
        int fd = raw_open_as(NULL, ret_name);
        char header[512], *body = chunk_body();

        snprintf(header, sizeof(header), CHUNK_HEADER, type, to);
        testbus_raw_send_frame(fd, header, body);
        free(body);
        return fd;
}

/*
 * FLOOD_N senders, each sending one chunk the receiver did not ask for and
 * a Ping (serial 3), to a receiver that does not read. A sender whose chunk
 * is queued may be held back (the broker stops reading it); once the queue
 * is full the next ones get LimitsExceeded at once and carry on.
 */
struct flood {
        int fds[FLOOD_N];
        char *names[FLOOD_N];
        bool refused[FLOOD_N];
        bool answered[FLOOD_N]; /* Ping answered */
        unsigned n_refused;
        char *message; /* the first refusal's */
};

static void flood_send(struct flood *fl, const char *to)
{
        int64_t deadline;

        *fl = (struct flood){0};
        for (size_t i = 0; i < FLOOD_N; i++) {
                fl->fds[i] = chunk_send("signal", to, &fl->names[i]);
                testbus_raw_send_frame(fl->fds[i],
                                       "{\"type\":\"call\",\"serial\":3,\"destination\":\"org.ipcbus.Bus\","
                                       "\"path\":\"/org/ipcbus/Bus\",\"member\":\"Ping\"}",
                                       NULL);
        }
        /* refusals come at once; a held sender hears nothing until the receiver reads */
        deadline = testbus_now_ms() + 1000;
        while (testbus_now_ms() < deadline) {
                for (size_t i = 0; i < FLOOD_N; i++) {
                        struct testbus_frame f;

                        if (fl->answered[i] || testbus_raw_recv(fl->fds[i], 0, &f) != 1)
                                continue;
                        if (testbus_frame_int(&f, "reply_serial") == 2) {
                                ck_assert_str_eq(testbus_frame_string(&f, "error"), IPCBUS_ERROR_LIMITS_EXCEEDED);
                                if (!fl->message)
                                        fl->message = strdup(testbus_json_string(f.b, "message"));
                                fl->refused[i] = true;
                                fl->n_refused++;
                        } else if (testbus_frame_int(&f, "reply_serial") == 3) {
                                ck_assert_str_eq(testbus_frame_string(&f, "type"), "return");
                                fl->answered[i] = true;
                        }
                        testbus_frame_deinit(&f);
                }
                usleep(10000);
        }
        ck_assert_msg(fl->n_refused > 0 && fl->n_refused < FLOOD_N, "%u of %d chunks refused", fl->n_refused, FLOOD_N);
        for (size_t i = 0; i < FLOOD_N; i++)
                ck_assert_msg(!fl->refused[i] || fl->answered[i], "sender %zu was refused and then not read", i);
}

/*
 * The receiver (still connected) reads every accepted chunk and none of the
 * refused; then every held sender is read again.
 */
static void flood_drain(struct flood *fl, int fd_recv)
{
        unsigned delivered = 0;

        while (delivered < FLOOD_N - fl->n_refused) {
                struct testbus_frame f;
                const char *member, *sender;

                ck_assert_msg(testbus_raw_recv(fd_recv, TESTBUS_WAIT_MS, &f) == 1, "receiver got %u of %u chunks",
                              delivered, FLOOD_N - fl->n_refused);
                member = testbus_frame_string(&f, "member");
                sender = testbus_frame_string(&f, "sender");
                if (member && strcmp(member, "Chunk") == 0) {
                        size_t i = 0;

                        while (i < FLOOD_N && strcmp(fl->names[i], sender) != 0)
                                i++;
                        ck_assert_msg(i < FLOOD_N && !fl->refused[i], "a chunk from %s was delivered", sender);
                        ck_assert_uint_eq(f.body_len, CHUNK + 11);
                        delivered++;
                }
                testbus_frame_deinit(&f);
        }
        testbus_raw_ping(fd_recv, 99);
        for (size_t i = 0; i < FLOOD_N; i++) {
                if (!fl->answered[i])
                        testbus_raw_expect_reply(fl->fds[i], 3, NULL, NULL);
                testbus_raw_ping(fl->fds[i], 4);
        }
}

static void flood_deinit(struct flood *fl)
{
        for (size_t i = 0; i < FLOOD_N; i++) {
                close(fl->fds[i]);
                free(fl->names[i]);
        }
        free(fl->message);
}

START_TEST(test_queue_per_connection)
{
        struct flood fl;
        char *to;
        int receiver, fd;

        receiver = raw_open_as(NULL, &to);
        flood_send(&fl, to);
        ck_assert_names(fl.message, "max_queued_bytes_per_connection");
        /* a call that does not fit either */
        fd = chunk_send("call", to, NULL);
        testbus_raw_expect_reply(fd, 2, IPCBUS_ERROR_LIMITS_EXCEEDED, NULL);
        testbus_raw_ping(fd, 3);
        close(fd);
        /* nothing was lost */
        flood_drain(&fl, receiver);

        flood_deinit(&fl);
        free(to);
        close(receiver);
}
END_TEST

START_TEST(test_queue_per_uid)
{
        struct flood fl1, fl2, fl3;
        char *to1, *to2, *to3;
        int r1, r2, r3;

        r1 = raw_open_as(&alice, &to1);
        r2 = raw_open_as(&alice, &to2);
        r3 = raw_open_as(&bob, &to3);
        flood_send(&fl1, to1);
        ck_assert_names(fl1.message, "max_queued_bytes_per_connection");
        /* alice's second connection has room of its own, but alice has not */
        flood_send(&fl2, to2);
        ck_assert_names(fl2.message, "max_queued_bytes_per_uid");
        ck_assert_uint_gt(fl2.n_refused, fl1.n_refused);
        /* bob is not affected */
        flood_send(&fl3, to3);
        ck_assert_names(fl3.message, "max_queued_bytes_per_connection");
        ck_assert_uint_lt(fl3.n_refused, fl2.n_refused);

        flood_drain(&fl1, r1);
        flood_drain(&fl2, r2);
        flood_drain(&fl3, r3);

        flood_deinit(&fl1);
        flood_deinit(&fl2);
        flood_deinit(&fl3);
        free(to1);
        free(to2);
        free(to3);
        close(r1);
        close(r2);
        close(r3);
}
END_TEST

/* ---- frames ------------------------------------------------------------------------------------- */

#define FRAMES_CONFIG                                                                                                  \
        "{\"limits\":{\"max_header_bytes\":2048,\"max_body_bytes\":4096,\"max_frame_bytes\":5000,"                     \
        "\"max_fds_per_message\":2}}"

struct frame_case {
        const char *what;
        size_t header_len;
        size_t body_len; /* 0: none */
        unsigned n_fds;
        const char *key; /* NULL: accepted */
};

static const struct frame_case frame_cases[] = {
        {"header at the limit", 2048, 0, 0, NULL},
        {"body at the limit", 200, 4096, 0, NULL},
        {"frame at the limit", 900, 5000 - 16 - 900, 0, NULL},
        {"fds at the limit", 200, 0, 2, NULL},
        {"header over the limit", 2049, 0, 0, "max_header_bytes"},
        {"body over the limit", 200, 4097, 0, "max_body_bytes"},
        {"frame over the limit", 1500, 3600, 0, "max_frame_bytes"},
        {"fds over the limit", 200, 0, 3, "max_fds_per_message"},
};

/* A unicast signal to a name nobody owns (accepted, then dropped): padded to header_len, body of body_len. */
START_TEST(test_frame_limit)
{
        static const char signal[] = "{\"type\":\"signal\",\"serial\":5,\"destination\":\"org.example.Nobody\","
                                     "\"path\":\"/x\",\"interface\":\"org.example.Big\",\"member\":\"Big\"}";
        const struct frame_case *c = &frame_cases[_i];
        struct testbus *tb = testbus_current();
        char *header = malloc(c->header_len + 1), *body = NULL;
        ipcbus_bus *good = testbus_connect(tb);
        int fd, p[2], fds[3];

        ck_assert_ptr_nonnull(header);
        ck_assert_uint_ge(c->header_len, strlen(signal));
        memcpy(header, signal, strlen(signal));
        memset(header + strlen(signal), ' ', c->header_len - strlen(signal));
        header[c->header_len] = '\0';
        if (c->body_len) {
                body = malloc(c->body_len + 1);
                ck_assert_ptr_nonnull(body);
                memcpy(body, "{\"d\":\"", 6);
                memset(body + 6, 'x', c->body_len - 8);
                strcpy(body + c->body_len - 2, "\"}");
        }
        ck_assert_int_eq(pipe(p), 0);
        for (unsigned i = 0; i < c->n_fds; i++)
                fds[i] = p[1];

        fd = raw_open_as(NULL, NULL);
        /* the broker may close before it read all: a failed write is fine */
        testbus_raw_send_frame_fds(fd, header, body, fds, c->n_fds);
        if (c->key) {
                char *message = testbus_raw_expect_refused(fd, IPCBUS_ERROR_PROTOCOL);

                ck_assert_names(message, c->key);
                free(message);
                testbus_log_expect(tb, c->key);
        } else {
                testbus_raw_ping(fd, 6);
        }
        testbus_sync(good);

        close(p[0]);
        close(p[1]);
        close(fd);
        free(body);
        free(header);
        ipcbus_unref(good);
}
END_TEST

/* ---- Hello timeout ----------------------------------------------------------------------------- */

#define HELLO_TIMEOUT_MS 500
#define HELLO_CONFIG "{\"limits\":{\"hello_timeout_ms\":500}}"

/* The broker ends the connection with LimitsExceeded naming hello_timeout_ms, about the timeout after t0. */
static void expect_hello_timeout(int fd, int64_t t0)
{
        struct testbus *tb = testbus_current();
        char *message = testbus_raw_expect_refused(fd, IPCBUS_ERROR_LIMITS_EXCEEDED);
        int64_t took = testbus_now_ms() - t0;

        ck_assert_names(message, "hello_timeout_ms");
        free(message);
        ck_assert_msg(took >= HELLO_TIMEOUT_MS - 50 && took < 2 * HELLO_TIMEOUT_MS + 300 * testbus_slow_factor(),
                      "closed %lld ms after connecting, the Hello timeout is %d ms", (long long) took,
                      HELLO_TIMEOUT_MS);
        testbus_log_expect(tb, "hello_timeout_ms");
}

START_TEST(test_hello_timeout_silent)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *good = testbus_connect(tb);
        int64_t t0 = testbus_now_ms();
        int fd = testbus_raw_connect(tb);

        expect_hello_timeout(fd, t0);
        close(fd);
        testbus_sync(good);
        ipcbus_unref(good);
}
END_TEST

START_TEST(test_hello_timeout_partial_frame)
{
        static const char hello[] = "{\"type\":\"call\",\"serial\":1,\"destination\":\"org.ipcbus.Bus\","
                                    "\"path\":\"/org/ipcbus/Bus\",\"member\":\"Hello\"}";
        struct testbus *tb = testbus_current();
        ipcbus_bus *good = testbus_connect(tb);
        int64_t t0 = testbus_now_ms();
        int fd = testbus_raw_connect(tb);
        uint8_t prefix[16];

        testbus_raw_prefix(prefix, sizeof(hello) - 1, 0, 0);
        testbus_raw_send(fd, prefix, sizeof(prefix));
        testbus_raw_send(fd, hello, 10);
        expect_hello_timeout(fd, t0);
        close(fd);
        testbus_sync(good);
        ipcbus_unref(good);
}
END_TEST

/* A Hello trickling in a byte at a time is not done in time either: the timeout is for Hello, not for silence. */
START_TEST(test_hello_timeout_trickle)
{
        static const char hello[] = "{\"type\":\"call\",\"serial\":1,\"destination\":\"org.ipcbus.Bus\","
                                    "\"path\":\"/org/ipcbus/Bus\",\"member\":\"Hello\"}";
        struct testbus *tb = testbus_current();
        int64_t t0 = testbus_now_ms();
        int fd = testbus_raw_connect(tb);
        uint8_t frame[16 + sizeof(hello)];
        size_t i = 0;

        testbus_raw_prefix(frame, sizeof(hello) - 1, 0, 0);
        memcpy(frame + 16, hello, sizeof(hello) - 1);
        /* one byte every 50 ms (the whole would take 5 s) until the broker speaks */
        for (; i < sizeof(frame) - 1; i++) {
                struct pollfd pfd = {.fd = fd, .events = POLLIN};

                if (testbus_raw_write(fd, frame + i, 1) < 0 || poll(&pfd, 1, 50) > 0)
                        break;
        }
        ck_assert_uint_lt(i, sizeof(frame) - 1);
        expect_hello_timeout(fd, t0);
        close(fd);
}
END_TEST

START_TEST(test_hello_in_time)
{
        struct testbus *tb = testbus_current();
        int fd = raw_open_as(NULL, NULL);

        /* after Hello the timeout is over: idle is fine */
        usleep(3 * HELLO_TIMEOUT_MS * 1000);
        testbus_raw_ping(fd, 2);
        close(fd);
        ck_assert(testbus_alive(tb));
}
END_TEST

static Suite *limits_suite(void)
{
        Suite *s = suite_create("bus_limits");
        bool root = geteuid() == 0;
        TCase *tc;

        if (!root)
                fprintf(stderr, "not root: the tests with other users' connections are left out\n");

        tc = testbus_tcase_config("connections", CONNECTIONS_CONFIG);
        if (root) {
                tcase_add_test(tc, test_connections_per_uid);
                tcase_add_test(tc, test_connections_total);
        }
        suite_add_tcase(s, tc);

        tc = testbus_tcase_config("names", NAMES_CONFIG);
        tcase_add_test(tc, test_names_per_connection);
        if (root)
                tcase_add_test(tc, test_names_per_uid);
        suite_add_tcase(s, tc);

        tc = testbus_tcase_config("matches", MATCHES_CONFIG);
        tcase_add_test(tc, test_matches_per_connection);
        if (root)
                tcase_add_test(tc, test_matches_per_uid);
        suite_add_tcase(s, tc);

        tc = testbus_tcase_config("pending", PENDING_CONFIG);
        tcase_add_test(tc, test_pending_per_connection);
        if (root)
                tcase_add_test(tc, test_pending_per_uid);
        suite_add_tcase(s, tc);

        tc = testbus_tcase_config("queue", QUEUE_CONFIG);
        tcase_add_test(tc, test_queue_per_connection);
        if (root)
                tcase_add_test(tc, test_queue_per_uid);
        suite_add_tcase(s, tc);

        tc = testbus_tcase_config("frames", FRAMES_CONFIG);
        tcase_add_loop_test(tc, test_frame_limit, 0, (int) (sizeof(frame_cases) / sizeof(frame_cases[0])));
        suite_add_tcase(s, tc);

        tc = testbus_tcase_config("hello", HELLO_CONFIG);
        tcase_add_test(tc, test_hello_timeout_silent);
        tcase_add_test(tc, test_hello_timeout_partial_frame);
        tcase_add_test(tc, test_hello_timeout_trickle);
        tcase_add_test(tc, test_hello_in_time);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return testbus_run_suite(limits_suite());
}
