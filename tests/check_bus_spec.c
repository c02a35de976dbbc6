/* SPDX-License-Identifier: MIT */
/*
 * Corners of protocol/PROTOCOL.md that the broker once decided without the
 * spec saying so (issue 9, item 15), each against a real ipcbusd, mostly
 * through raw frames: where descriptors travel, duplicate members in bodies,
 * what a JSON integer is, whitespace before the header, the driver's
 * arguments and error rows, the activation environment's limit, releasing a
 * name one only waits for, rules that select nothing, the driver's sender
 * fields, nesting depth, Ping at other paths and the default timeout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "tests/testbus.h"
#include "util/fdpass.h"

#define SPEC_SERVICE "org.example.Spec"

/* A raw connection that has said Hello; its unique name in *ret_name (malloc'd) unless NULL. */
static int raw_open(char **ret_name)
{
        int fd = testbus_raw_connect(testbus_current());
        char *name = testbus_raw_hello(fd);

        if (ret_name)
                *ret_name = name;
        else
                free(name);
        return fd;
}

/* Send a call of the driver's `member` with this serial and body (NULL: none). */
static void raw_driver_send(int fd, uint32_t serial, const char *member, const char *body)
{
        char header[256];

        snprintf(header, sizeof(header),
                 "{\"type\":\"call\",\"serial\":%u,\"destination\":\"org.ipcbus.Bus\",\"path\":\"/org/ipcbus/Bus\","
                 "\"member\":\"%s\"}",
                 serial, member);
        testbus_raw_send_frame(fd, header, body);
}

/* A driver call on a raw connection: the return's body (NULL without, or after error_name; caller puts). */
static json_object *raw_driver(int fd, uint32_t serial, const char *member, const char *body, const char *error_name)
{
        struct testbus_frame f;
        json_object *o = NULL;

        raw_driver_send(fd, serial, member, body);
        testbus_raw_expect_reply(fd, serial, error_name, &f);
        if (f.b && !error_name)
                o = json_object_get(f.b);
        testbus_frame_deinit(&f);
        return o;
}

/* The next frame not sent by the driver (whose signals a raw connection gets unasked). */
static void raw_next_from_peer(int fd, struct testbus_frame *ret)
{
        for (;;) {
                int r = testbus_raw_recv(fd, TESTBUS_WAIT_MS * testbus_slow_factor(), ret);
                const char *sender;

                ck_assert_msg(r == 1, "expected a frame, got %s", r == 0 ? "EOF" : strerror(-r));
                sender = testbus_frame_string(ret, "sender");
                if (!sender || strcmp(sender, IPCBUS_DRIVER_NAME) != 0)
                        return;
                testbus_frame_deinit(ret);
        }
}

/* Ping the driver with `serial`: until its answer, nothing may come but the driver's own signals. */
static void raw_expect_quiet(int fd, uint32_t serial)
{
        struct testbus_frame f;

        raw_driver_send(fd, serial, "Ping", NULL);
        for (;;) {
                const char *sender, *type;

                ck_assert_int_eq(testbus_raw_recv(fd, TESTBUS_WAIT_MS * testbus_slow_factor(), &f), 1);
                sender = testbus_frame_string(&f, "sender");
                type = testbus_frame_string(&f, "type");
                ck_assert_msg(sender && strcmp(sender, IPCBUS_DRIVER_NAME) == 0, "unexpected %s %s", f.header,
                              f.body ? f.body : "");
                if (strcmp(type, "return") == 0 && testbus_frame_int(&f, "reply_serial") == serial)
                        break;
                ck_assert_msg(strcmp(type, "signal") == 0, "unexpected %s %s", f.header, f.body ? f.body : "");
                testbus_frame_deinit(&f);
        }
        testbus_frame_deinit(&f);
}

/* The broker answers ProtocolError without reply_serial and closes the connection. */
static void expect_protocol_error(int fd)
{
        testbus_raw_expect_reply(fd, 0, IPCBUS_ERROR_PROTOCOL, NULL);
        testbus_raw_expect_eof(fd);
}

/* Wait until the broker has read everything this socket sent (the kernel frees a read skb). */
static void wait_broker_read(int fd)
{
        int64_t deadline = testbus_now_ms() + (int64_t) TESTBUS_WAIT_MS * testbus_slow_factor();
        int queued = -1;

        while (testbus_now_ms() < deadline) {
                ck_assert_int_eq(ioctl(fd, TIOCOUTQ, &queued), 0);
                if (queued == 0)
                        return;
                usleep(2000);
        }
        ck_abort_msg("the broker did not read %d sent bytes", queued);
}

/* A well-behaved connection's calls are still answered (the broker survived what the test did). */
static void bystander_check(void)
{
        ipcbus_bus *bus = testbus_connect(testbus_current());

        json_object_put(testbus_driver(bus, "Ping", NULL));
        ipcbus_unref(bus);
}

/* ---- 1. descriptors travel with the frame's first byte --------------------------------------- */

#define PING_SERIAL 9
#define PING_HEADER                                                                                                    \
        "{\"type\":\"call\",\"serial\":9,\"destination\":\"org.ipcbus.Bus\",\"path\":\"/org/ipcbus/Bus\","             \
        "\"member\":\"Ping\"}"

/*
 * Send PING_HEADER announcing one descriptor in two writes: the prefix and
 * five header bytes, then (once the broker has read those) the rest. The
 * descriptor goes with the first write or with the second.
 */
static void send_ping_split(int fd, bool fd_with_first)
{
        const size_t hl = strlen(PING_HEADER), first = 16 + 5;
        uint8_t frame[256];
        int pipefd[2];

        ck_assert_int_eq(pipe(pipefd), 0);
        testbus_raw_prefix(frame, (uint32_t) hl, 0, 1);
        memcpy(frame + 16, PING_HEADER, hl);
        for (int part = 0; part < 2; part++) {
                union {
                        struct cmsghdr align;
                        char buf[CMSG_SPACE(sizeof(int))];
                } control;
                struct iovec iov = {.iov_base = frame + (part ? first : 0), .iov_len = part ? 16 + hl - first : first};
                struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

                if ((part == 0) == fd_with_first)
                        fdpass_attach(&mh, control.buf, &pipefd[0], 1);
                ck_assert_int_eq(sendmsg(fd, &mh, MSG_NOSIGNAL), (ssize_t) iov.iov_len);
                if (part == 0)
                        wait_broker_read(fd);
        }
        close(pipefd[0]);
        close(pipefd[1]);
}

START_TEST(test_fds_with_first_byte)
{
        int fd = raw_open(NULL);

        /* The rest of the frame may follow in later writes. */
        send_ping_split(fd, true);
        testbus_raw_expect_reply(fd, PING_SERIAL, NULL, NULL);
        testbus_raw_ping(fd, 10);
        close(fd);
        bystander_check();
}
END_TEST

START_TEST(test_fds_on_later_write)
{
        int fd = raw_open(NULL);

        send_ping_split(fd, false);
        expect_protocol_error(fd);
        close(fd);
        bystander_check();
}
END_TEST

/* ---- 2. duplicate members in bodies: forwarded as they are, the last counts ------------------ */

START_TEST(test_duplicate_driver_arguments)
{
        struct testbus_frame f;
        char *name;
        json_object *o;
        int fd = raw_open(&name);

        o = raw_driver(fd, 2, "RequestName", "{\"name\":\"org.example.First\",\"name\":\"org.example.Second\"}", NULL);
        ck_assert_int_eq(testbus_json_int(o, "result"), 1);
        json_object_put(o);
        o = raw_driver(fd, 3, "GetNameOwner", "{\"name\":\"org.example.Second\"}", NULL);
        ck_assert_str_eq(testbus_json_string(o, "owner"), name);
        json_object_put(o);
        raw_driver(fd, 4, "GetNameOwner", "{\"name\":\"org.example.First\"}", IPCBUS_ERROR_NAME_HAS_NO_OWNER);
        /* the last counts whatever its type */
        raw_driver(fd, 5, "RequestName", "{\"name\":\"org.example.Third\",\"name\":5}", IPCBUS_ERROR_INVALID_ARGS);
        /* but a match rule object names each key once, as its string form does */
        raw_driver(fd, 6, "AddMatch", "{\"rule\":{\"type\":\"signal\",\"member\":\"Wrong\",\"member\":\"Right\"}}",
                   IPCBUS_ERROR_MATCH_RULE_INVALID);
        json_object_put(raw_driver(fd, 11, "AddMatch", "{\"rule\":{\"type\":\"signal\",\"member\":\"Right\"}}", NULL));
        json_object_put(raw_driver(fd, 7, "AddMatch", "{\"rule\":{\"type\":\"signal\",\"member\":\"End\"}}", NULL));
        testbus_raw_send_frame(fd,
                               "{\"type\":\"signal\",\"serial\":8,\"path\":\"/x\",\"interface\":\"org.example.Spec\","
                               "\"member\":\"Wrong\"}",
                               NULL);
        testbus_raw_send_frame(fd,
                               "{\"type\":\"signal\",\"serial\":9,\"path\":\"/x\",\"interface\":\"org.example.Spec\","
                               "\"member\":\"Right\"}",
                               NULL);
        testbus_raw_send_frame(fd,
                               "{\"type\":\"signal\",\"serial\":10,\"path\":\"/x\",\"interface\":\"org.example.Spec\","
                               "\"member\":\"End\"}",
                               NULL);
        raw_next_from_peer(fd, &f);
        ck_assert_str_eq(testbus_frame_string(&f, "member"), "Right");
        testbus_frame_deinit(&f);
        raw_next_from_peer(fd, &f);
        ck_assert_str_eq(testbus_frame_string(&f, "member"), "End");
        testbus_frame_deinit(&f);
        free(name);
        close(fd);
}
END_TEST

/* Signal Dup from the raw connection fd with this serial and body. */
static void send_dup(int fd, uint32_t serial, const char *body)
{
        char header[256];

        snprintf(header, sizeof(header),
                 "{\"type\":\"signal\",\"serial\":%u,\"path\":\"/x\",\"interface\":\"org.example.Spec\","
                 "\"member\":\"Dup\"}",
                 serial);
        testbus_raw_send_frame(fd, header, body);
}

START_TEST(test_duplicate_body_members_in_arg_match)
{
        static const char *const matching[] = {
                "{\"k\":\"x\",\"n\":1,\"k\":\"y\"}",
                "{\"k\":\"x\",\"k\":\"y\",\"n\":4}",
        };
        struct testbus_frame f;
        int sub = raw_open(NULL), pub = raw_open(NULL);

        json_object_put(raw_driver(sub, 2, "AddMatch",
                                   "{\"rule\":{\"type\":\"signal\",\"member\":\"Dup\",\"args\":{\"k\":\"y\"}}}", NULL));
        send_dup(pub, 2, matching[0]);
        send_dup(pub, 3, "{\"k\":\"y\",\"k\":\"x\",\"n\":2}");
        send_dup(pub, 4, "{\"k\":\"y\",\"k\":5,\"n\":3}");
        send_dup(pub, 5, "{\"k\":\"y\",\"k\":null,\"n\":3}");
        send_dup(pub, 6, matching[1]);
        testbus_raw_ping(pub, 7);
        for (size_t i = 0; i < 2; i++) {
                raw_next_from_peer(sub, &f);
                ck_assert_str_eq(testbus_frame_string(&f, "member"), "Dup");
                /* the body as it was sent, duplicates and all */
                ck_assert_str_eq(f.body, matching[i]);
                testbus_frame_deinit(&f);
        }
        raw_expect_quiet(sub, 3); /* and nothing else came */
        close(pub);
        close(sub);
}
END_TEST

/* ---- 3. a JSON integer has neither fraction nor exponent --------------------------------------- */

START_TEST(test_integer_fields)
{
        static const char *const serials[] = {"1.0", "1e0", "1E+0", "-0"};
        json_object *o;
        int fd;

        for (size_t i = 0; i < 4; i++) {
                char header[256];

                snprintf(header, sizeof(header),
                         "{\"type\":\"call\",\"serial\":%s,\"destination\":\"org.ipcbus.Bus\","
                         "\"path\":\"/org/ipcbus/Bus\",\"member\":\"Ping\"}",
                         serials[i]);
                fd = raw_open(NULL);
                testbus_raw_send_frame(fd, header, NULL);
                expect_protocol_error(fd);
                close(fd);
        }

        /* other integer fields: the message is invalid, the connection stays */
        fd = raw_open(NULL);
        testbus_raw_send_frame(fd,
                               "{\"type\":\"call\",\"serial\":5,\"destination\":\"org.ipcbus.Bus\","
                               "\"path\":\"/org/ipcbus/Bus\",\"member\":\"Ping\",\"timeout_ms\":1000.0}",
                               NULL);
        testbus_raw_expect_reply(fd, 5, IPCBUS_ERROR_INVALID_MESSAGE, NULL);
        testbus_raw_send_frame(fd, "{\"type\":\"return\",\"serial\":6,\"reply_serial\":1.0,\"destination\":\":1.1\"}",
                               NULL);
        testbus_raw_expect_reply(fd, 6, IPCBUS_ERROR_INVALID_MESSAGE, NULL);
        /* and integer arguments of the driver */
        raw_driver(fd, 7, "RequestName", "{\"name\":\"org.example.Int\",\"flags\":0.0}", IPCBUS_ERROR_INVALID_ARGS);
        raw_driver(fd, 8, "RequestName", "{\"name\":\"org.example.Int\",\"flags\":4e0}", IPCBUS_ERROR_INVALID_ARGS);
        o = raw_driver(fd, 9, "RequestName", "{\"name\":\"org.example.Int\",\"flags\":4}", NULL);
        ck_assert_int_eq(testbus_json_int(o, "result"), 1);
        json_object_put(o);
        close(fd);
        bystander_check();
}
END_TEST

/* ---- 4. whitespace before the header's '{' is dropped when stamping ---------------------------- */

START_TEST(test_header_leading_whitespace)
{
        char *to_name, *from_name, header[512], expected[768];
        struct testbus_frame f;
        int to = raw_open(&to_name), from = raw_open(&from_name);
        const char *rest;

        snprintf(header, sizeof(header),
                 " \r\n\t{ \"type\":\"signal\",\"serial\":4,\"destination\":\"%s\",\"path\":\"/x\","
                 "\"interface\":\"org.example.Spec\",\"member\":\"Spaced\" } \n",
                 to_name);
        testbus_raw_send_frame(from, header, "{\"a\":1}");
        rest = strchr(header, '{') + 1;
        snprintf(expected, sizeof(expected), "{\"sender\":\"%s\",\"sender_uid\":%u,\"sender_pid\":%d,%s", from_name,
                 (unsigned) geteuid(), (int) getpid(), rest);

        raw_next_from_peer(to, &f);
        ck_assert_str_eq(f.header, expected);
        ck_assert_uint_eq(f.header_len, strlen(expected));
        ck_assert_str_eq(f.body, "{\"a\":1}");
        testbus_frame_deinit(&f);
        free(to_name);
        free(from_name);
        close(from);
        close(to);
}
END_TEST

/* ---- 5. the driver's arguments: flags of StartServiceByName, unknown and null members ----------- */

START_TEST(test_start_service_by_name_flags)
{
        ipcbus_bus *owner = testbus_connect(testbus_current());
        ipcbus_bus *bus = testbus_connect(testbus_current());
        static const char *const ignored[] = {"0", "1", "12345", "null"};
        char body[128];

        ck_assert_int_eq(testbus_request_name(owner, SPEC_SERVICE, 0), 1);
        for (size_t i = 0; i < 4; i++) {
                json_object *o;

                snprintf(body, sizeof(body), "{\"name\":\"%s\",\"flags\":%s}", SPEC_SERVICE, ignored[i]);
                o = testbus_driver(bus, "StartServiceByName", body);
                ck_assert_int_eq(testbus_json_int(o, "result"), 2);
                json_object_put(o);
        }
        testbus_driver_error(bus, "StartServiceByName", "{\"name\":\"" SPEC_SERVICE "\",\"flags\":-1}",
                             IPCBUS_ERROR_INVALID_ARGS);
        testbus_driver_error(bus, "StartServiceByName", "{\"name\":\"" SPEC_SERVICE "\",\"flags\":1.0}",
                             IPCBUS_ERROR_INVALID_ARGS);
        testbus_driver_error(bus, "StartServiceByName", "{\"name\":\"" SPEC_SERVICE "\",\"flags\":\"0\"}",
                             IPCBUS_ERROR_INVALID_ARGS);
        ipcbus_unref(bus);
        ipcbus_unref(owner);
}
END_TEST

START_TEST(test_unknown_and_null_arguments)
{
        ipcbus_bus *bus = testbus_connect(testbus_current());
        json_object *o;

        json_object_put(testbus_driver(bus, "Ping", "{\"extra\":1}"));
        json_object_put(testbus_driver(bus, "GetId", "{\"x\":[1,{\"y\":null}]}"));
        o = testbus_driver(bus, "RequestName", "{\"color\":\"red\",\"name\":\"org.example.Extra\",\"flags\":null}");
        ck_assert_int_eq(testbus_json_int(o, "result"), 1);
        json_object_put(o);
        o = testbus_driver(bus, "NameHasOwner", "{\"name\":\"org.example.Extra\",\"owner\":\"anyone\"}");
        ck_assert(testbus_json_bool(o, "has_owner"));
        json_object_put(o);
        /* null is absent */
        testbus_driver_error(bus, "GetNameOwner", "{\"name\":null}", IPCBUS_ERROR_INVALID_ARGS);
        ipcbus_unref(bus);
}
END_TEST

/* Every error in the rows of 7.2 that the rows once left out. */
START_TEST(test_error_rows)
{
        ipcbus_bus *bus = testbus_connect(testbus_current());
        static const char *const name_methods[] = {"GetNameOwner", "ListQueuedOwners", "GetConnectionCredentials",
                                                   "NameHasOwner"};
        char key[300], body[400];

        for (size_t i = 0; i < 4; i++) {
                testbus_driver_error(bus, name_methods[i], "{}", IPCBUS_ERROR_INVALID_ARGS);
                testbus_driver_error(bus, name_methods[i], "{\"name\":\"not a name\"}", IPCBUS_ERROR_INVALID_ARGS);
                testbus_driver_error(bus, name_methods[i], "{\"name\":7}", IPCBUS_ERROR_INVALID_ARGS);
        }
        testbus_driver_error(bus, "AddMatch", "{\"rule\":5}", IPCBUS_ERROR_INVALID_ARGS);
        testbus_driver_error(bus, "RemoveMatch", "{\"rule\":\"type=signal\"}", IPCBUS_ERROR_INVALID_ARGS);
        testbus_driver_error(bus, "UpdateActivationEnvironment", "{\"environment\":[]}", IPCBUS_ERROR_INVALID_ARGS);
        memset(key, 'K', 256);
        key[256] = '\0';
        snprintf(body, sizeof(body), "{\"environment\":{\"%s\":\"v\"}}", key);
        testbus_driver_error(bus, "UpdateActivationEnvironment", body, IPCBUS_ERROR_INVALID_ARGS);
        testbus_driver_error(bus, "BecomeMonitor", "{\"rules\":5}", IPCBUS_ERROR_INVALID_ARGS);
        testbus_driver_error(bus, "BecomeMonitor", "{\"rules\":[5]}", IPCBUS_ERROR_INVALID_ARGS);
        /* still a member after all that */
        testbus_sync(bus);
        ipcbus_unref(bus);
}
END_TEST

/* ---- 6. what the activation environment's 256 counts ---------------------------------------- */

/* UpdateActivationEnvironment with V<first> ... V<last>; NULL error_name: must succeed. */
static void update_env(ipcbus_bus *bus, int first, int last, const char *error_name)
{
        size_t size = 64 + (size_t) (last - first + 1) * 32;
        char *body = malloc(size), *p = body;

        ck_assert_ptr_nonnull(body);
        p += sprintf(p, "{\"environment\":{");
        for (int i = first; i <= last; i++)
                p += sprintf(p, "%s\"V%d\":\"value %d\"", i > first ? "," : "", i, i);
        strcpy(p, "}}");
        if (error_name)
                testbus_driver_error(bus, "UpdateActivationEnvironment", body, error_name);
        else
                json_object_put(testbus_driver(bus, "UpdateActivationEnvironment", body));
        free(body);
}

START_TEST(test_activation_environment_limit)
{
        ipcbus_bus *bus = testbus_connect(testbus_current());

        update_env(bus, 0, 199, NULL);
        /* distinct names over all calls: 56 new ones make 256 */
        update_env(bus, 150, 255, NULL);
        /* setting a variable again does not count twice */
        update_env(bus, 0, 255, NULL);
        /* the 257th name is one too many, alone or among others */
        update_env(bus, 256, 256, IPCBUS_ERROR_LIMITS_EXCEEDED);
        update_env(bus, 250, 256, IPCBUS_ERROR_LIMITS_EXCEEDED);
        /* and a refused call changed nothing */
        update_env(bus, 100, 101, NULL);
        ipcbus_unref(bus);
}
END_TEST

/* ---- 7. ReleaseName by a connection that only waits -------------------------------------------- */

START_TEST(test_release_name_while_queued)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *owner = testbus_connect(tb), *waiter = testbus_connect(tb), *watcher = testbus_connect(tb);
        struct testbus_rec waiter_rec, watcher_rec, owner_rec;
        json_object *o, *owners;

        ck_assert_int_eq(testbus_request_name(owner, SPEC_SERVICE, 0), 1);
        ck_assert_int_eq(testbus_request_name(waiter, SPEC_SERVICE, 0), 2);
        testbus_add_match(watcher,
                          "{\"type\":\"signal\",\"sender\":\"org.ipcbus.Bus\",\"args\":{\"name\":\"" SPEC_SERVICE
                          "\"}}");
        testbus_rec_init(&waiter_rec, waiter, TESTBUS_REC_SIGNALS);
        testbus_rec_init(&watcher_rec, watcher, TESTBUS_REC_SIGNALS);
        testbus_rec_init(&owner_rec, owner, TESTBUS_REC_SIGNALS);
        /* what the requests brought is no part of the test */
        testbus_sync(owner);
        testbus_sync(waiter);
        testbus_sync(watcher);
        testbus_rec_skip(&owner_rec);
        testbus_rec_skip(&waiter_rec);
        testbus_rec_skip(&watcher_rec);

        ck_assert_int_eq(testbus_release_name(waiter, SPEC_SERVICE), 1);
        o = testbus_driver(waiter, "ListQueuedOwners", "{\"name\":\"" SPEC_SERVICE "\"}");
        owners = testbus_json_array(o, "owners");
        ck_assert_uint_eq(json_object_array_length(owners), 1);
        ck_assert(testbus_json_array_has(owners, ipcbus_get_unique_name(owner)));
        json_object_put(o);
        /* no longer waiting either: not owner */
        ck_assert_int_eq(testbus_release_name(waiter, SPEC_SERVICE), 3);
        ck_assert_int_eq(testbus_release_name(waiter, "org.example.Nobody"), 2);
        /* the owner did not change: no one was told anything */
        testbus_rec_expect_quiet(&waiter_rec);
        testbus_rec_expect_quiet(&watcher_rec);
        testbus_rec_expect_quiet(&owner_rec);
        /* and the waiter no longer follows when the owner goes */
        ck_assert_int_eq(testbus_release_name(owner, SPEC_SERVICE), 1);
        free(testbus_call_error(waiter, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, NULL, "GetNameOwner",
                                "{\"name\":\"" SPEC_SERVICE "\"}", IPCBUS_ERROR_NAME_HAS_NO_OWNER));
        testbus_rec_deinit(&owner_rec);
        testbus_rec_deinit(&watcher_rec);
        testbus_rec_deinit(&waiter_rec);
        ipcbus_unref(watcher);
        ipcbus_unref(waiter);
        ipcbus_unref(owner);
}
END_TEST

/* ---- 8. rules of type call, return or error select nothing ------------------------------------- */

START_TEST(test_rule_types_select_nothing)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        ipcbus_bus *caller;
        json_object *o;
        int watcher = raw_open(NULL);

        testbus_service_start(tb, &svc, SPEC_SERVICE);
        json_object_put(raw_driver(watcher, 2, "AddMatch", "{\"rule\":{\"type\":\"call\"}}", NULL));
        json_object_put(raw_driver(watcher, 3, "AddMatch", "{\"rule\":{\"type\":\"return\"}}", NULL));
        json_object_put(raw_driver(watcher, 4, "AddMatch", "{\"rule\":{\"type\":\"error\"}}", NULL));
        json_object_put(raw_driver(watcher, 5, "AddMatch",
                                   "{\"rule\":{\"type\":\"call\",\"destination\":\"" SPEC_SERVICE "\"}}", NULL));

        caller = testbus_connect(tb);
        o = testbus_call(caller, SPEC_SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Echo", "{\"a\":1}");
        json_object_put(o);
        free(testbus_call_error(caller, SPEC_SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Fail", NULL,
                                TESTBUS_SERVICE_ERROR));
        json_object_put(testbus_driver(caller, "Ping", NULL));

        /* nothing was selected */
        raw_expect_quiet(watcher, 6);
        /* the rules were stored all the same */
        json_object_put(raw_driver(watcher, 7, "RemoveMatch", "{\"rule\":{\"type\":\"call\"}}", NULL));
        ipcbus_unref(caller);
        close(watcher);
        testbus_child_finish(&svc);
}
END_TEST

/* ---- 9. the sender fields of the broker's own messages ------------------------------------------ */

/* f came from the driver: sender org.ipcbus.Bus with the broker's uid and pid, encoded canonically. */
static void assert_from_driver(struct testbus_frame *f)
{
        struct testbus *tb = testbus_current();
        char start[128];

        snprintf(start, sizeof(start), "{\"sender\":\"org.ipcbus.Bus\",\"sender_uid\":%u,\"sender_pid\":%d,",
                 (unsigned) getuid(), (int) tb->pid);
        ck_assert_msg(strncmp(f->header, start, strlen(start)) == 0, "expected a header starting %s, got %s", start,
                      f->header);
}

START_TEST(test_driver_sender_fields)
{
        int fd = testbus_raw_connect(testbus_current());
        struct testbus_frame f;

        raw_driver_send(fd, 1, "Hello", NULL);
        ck_assert_int_eq(testbus_raw_recv(fd, TESTBUS_WAIT_MS, &f), 1); /* the reply */
        ck_assert_int_eq(testbus_frame_int(&f, "reply_serial"), 1);
        assert_from_driver(&f);
        testbus_frame_deinit(&f);
        ck_assert_int_eq(testbus_raw_recv(fd, TESTBUS_WAIT_MS, &f), 1); /* NameAcquired */
        ck_assert_str_eq(testbus_frame_string(&f, "member"), "NameAcquired");
        assert_from_driver(&f);
        testbus_frame_deinit(&f);
        raw_driver_send(fd, 2, "NoSuchMethod", NULL);
        testbus_raw_expect_reply(fd, 2, IPCBUS_ERROR_UNKNOWN_METHOD, &f);
        assert_from_driver(&f);
        testbus_frame_deinit(&f);
        close(fd);
}
END_TEST

/* ---- 10. how nesting depth is counted ----------------------------------------------------------- */

/* open, then `arrays` nested arrays, then close: nested("{\"a\":", 2, "}") is {"a":[[]]}, 3 deep. */
static char *nested(const char *open, int arrays, const char *close)
{
        size_t n = strlen(open);
        char *s = malloc(n + strlen(close) + 2 * (size_t) arrays + 1), *p = s;

        ck_assert_ptr_nonnull(s);
        memcpy(p, open, n);
        p += n;
        for (int i = 0; i < arrays; i++)
                *p++ = '[';
        for (int i = 0; i < arrays; i++)
                *p++ = ']';
        strcpy(p, close);
        return s;
}

START_TEST(test_nesting_depth)
{
        char *text;
        json_object *o;
        int fd = raw_open(NULL);

        /* the header counts from its own object: 1 + 63 arrays is allowed (an unknown field, so invalid) */
        text = nested("{\"type\":\"call\",\"serial\":5,\"destination\":\"org.ipcbus.Bus\",\"path\":\"/org/ipcbus/Bus\","
                      "\"member\":\"Ping\",\"deep\":",
                      63, "}");
        testbus_raw_send_frame(fd, text, NULL);
        free(text);
        testbus_raw_expect_reply(fd, 5, IPCBUS_ERROR_INVALID_MESSAGE, NULL);
        /* a body 64 deep reaches the driver, which reads it */
        text = nested("{\"deep\":", 63, "}");
        o = raw_driver(fd, 6, "Ping", text, NULL);
        free(text);
        json_object_put(o);
        /* a header 65 deep is malformed */
        text = nested("{\"type\":\"call\",\"serial\":7,\"destination\":\"org.ipcbus.Bus\",\"path\":\"/org/ipcbus/Bus\","
                      "\"member\":\"Ping\",\"deep\":",
                      64, "}");
        testbus_raw_send_frame(fd, text, NULL);
        free(text);
        expect_protocol_error(fd);
        close(fd);

        /* and so is a body 65 deep */
        fd = raw_open(NULL);
        text = nested("{\"deep\":", 64, "}");
        raw_driver_send(fd, 2, "Ping", text);
        free(text);
        expect_protocol_error(fd);
        close(fd);
        bystander_check();
}
END_TEST

/* ---- 11. Ping at other paths (7 and 10.1) -------------------------------------------------------- */

START_TEST(test_ping_at_other_paths)
{
        ipcbus_bus *bus = testbus_connect(testbus_current());

        json_object_put(
                testbus_call(bus, IPCBUS_DRIVER_NAME, "/org/example/Else", IPCBUS_PEER_INTERFACE, "Ping", NULL));
        json_object_put(testbus_call(bus, IPCBUS_DRIVER_NAME, "/", IPCBUS_PEER_INTERFACE, "Ping", NULL));
        json_object_put(testbus_call(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_PEER_INTERFACE, "Ping", NULL));
        free(testbus_call_error(bus, IPCBUS_DRIVER_NAME, "/org/example/Else", NULL, "Ping", NULL,
                                IPCBUS_ERROR_UNKNOWN_OBJECT));
        free(testbus_call_error(bus, IPCBUS_DRIVER_NAME, "/org/example/Else", IPCBUS_DRIVER_INTERFACE, "Ping", NULL,
                                IPCBUS_ERROR_UNKNOWN_OBJECT));
        free(testbus_call_error(bus, IPCBUS_DRIVER_NAME, "/org/example/Else", IPCBUS_PEER_INTERFACE, "GetMachineId",
                                NULL, IPCBUS_ERROR_UNKNOWN_OBJECT));
        /* the driver serves org.ipcbus.Peer at its path (Introspect lists it): no such method there */
        free(testbus_call_error(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_PEER_INTERFACE, "GetMachineId",
                                NULL, IPCBUS_ERROR_UNKNOWN_METHOD));
        ipcbus_unref(bus);
}
END_TEST

/* ---- 12. the default timeout is the broker's, and configurable ------------------------------- */

#define TIMEOUT_CONFIG "{\"limits\":{\"reply_timeout_ms\":400}}"

START_TEST(test_default_timeout_configured)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        int64_t start, elapsed;
        int fd = raw_open(NULL);

        testbus_service_start(tb, &svc, SPEC_SERVICE);
        start = testbus_now_ms();
        testbus_raw_send_frame(fd,
                               "{\"type\":\"call\",\"serial\":3,\"destination\":\"" SPEC_SERVICE
                               "\",\"path\":\"" TESTBUS_SERVICE_PATH "\",\"interface\":\"" TESTBUS_SERVICE_INTERFACE
                               "\",\"member\":\"Hold\"}",
                               NULL);
        testbus_raw_expect_reply(fd, 3, IPCBUS_ERROR_TIMEOUT, NULL);
        elapsed = testbus_now_ms() - start;
        ck_assert_msg(elapsed >= 350, "Timeout after %lld ms, before reply_timeout_ms", (long long) elapsed);
        ck_assert_msg(elapsed < 4000 * testbus_slow_factor(), "Timeout after %lld ms: not reply_timeout_ms (400)",
                      (long long) elapsed);
        testbus_child_expect(&svc, "held 3");
        close(fd);
        testbus_child_kill(&svc);
}
END_TEST

static Suite *spec_suite(void)
{
        Suite *s = suite_create("bus_spec");
        TCase *tc;

        tc = testbus_tcase("framing");
        tcase_add_test(tc, test_fds_with_first_byte);
        tcase_add_test(tc, test_fds_on_later_write);
        tcase_add_test(tc, test_duplicate_driver_arguments);
        tcase_add_test(tc, test_duplicate_body_members_in_arg_match);
        tcase_add_test(tc, test_integer_fields);
        tcase_add_test(tc, test_header_leading_whitespace);
        tcase_add_test(tc, test_nesting_depth);
        tcase_add_test(tc, test_driver_sender_fields);
        suite_add_tcase(s, tc);

        tc = testbus_tcase("driver");
        tcase_add_test(tc, test_start_service_by_name_flags);
        tcase_add_test(tc, test_unknown_and_null_arguments);
        tcase_add_test(tc, test_error_rows);
        tcase_add_test(tc, test_activation_environment_limit);
        tcase_add_test(tc, test_release_name_while_queued);
        tcase_add_test(tc, test_rule_types_select_nothing);
        tcase_add_test(tc, test_ping_at_other_paths);
        suite_add_tcase(s, tc);

        tc = testbus_tcase_config("timeout", TIMEOUT_CONFIG);
        tcase_add_test(tc, test_default_timeout_configured);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return testbus_run_suite(spec_suite());
}
