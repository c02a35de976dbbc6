/* SPDX-License-Identifier: MIT */
/*
 * Bad input on raw sockets (PROTOCOL.md 2-5 and 9) against a real ipcbusd.
 * Framing errors and malformed JSON get a ProtocolError (no reply_serial, a
 * message naming the violation) and the connection closes; invalid messages
 * get InvalidMessage and the connection stays usable; calls before Hello get
 * AccessDenied and a close. In every test a well-behaved client connected
 * before the bad one keeps making calls afterwards, and the broker survives.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/testbus.h"

#define GOOD_SERVICE "org.example.Good"
#define PING_HEADER                                                                                                    \
        "{\"type\":\"call\",\"serial\":5,\"destination\":\"org.ipcbus.Bus\",\"path\":\"/org/ipcbus/Bus\","             \
        "\"member\":\"Ping\"}"
#define S(text) text, sizeof(text) - 1

/* The well-behaved party: a service process and a client calling it. */
struct good {
        struct testbus_child svc;
        ipcbus_bus *bus;
};

static void good_open(struct good *g)
{
        struct testbus *tb = testbus_current();

        testbus_service_start(tb, &g->svc, GOOD_SERVICE);
        g->bus = testbus_connect(tb);
}

/* The broker is alive and the good client's calls work, as do new connections. */
static void good_check_and_close(struct good *g)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *fresh;
        json_object *o;

        ck_assert_msg(testbus_alive(tb), "ipcbusd died");
        o = testbus_call(g->bus, GOOD_SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Echo",
                         "{\"still\":\"working\"}");
        ck_assert_str_eq(testbus_json_string(o, "still"), "working");
        json_object_put(o);
        testbus_sync(g->bus);
        fresh = testbus_connect(tb);
        o = testbus_call(fresh, GOOD_SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Echo", "{}");
        json_object_put(o);
        ipcbus_unref(fresh);
        ipcbus_unref(g->bus);
        testbus_child_finish(&g->svc);
}

/* A raw connection that has said Hello. */
static int raw_open(void)
{
        int fd = testbus_raw_connect(testbus_current());

        free(testbus_raw_hello(fd));
        return fd;
}

/* The error in f has a message, holding `says` when not NULL. */
static void expect_message_saying(struct testbus_frame *f, const char *says)
{
        const char *message;

        ck_assert_msg(f->b, "an error without a body");
        message = testbus_json_string(f->b, "message");
        ck_assert_msg(message && strlen(message) > 0, "an error with an empty message");
        ck_assert_msg(!says || strstr(message, says), "the error says '%s', not '%s'", message, says);
}

/* The broker answers ProtocolError (no reply_serial, a message saying why and holding `says`), then closes. */
static void expect_protocol_error_saying(int fd, const char *says)
{
        struct testbus_frame f;

        testbus_raw_expect_reply(fd, 0, IPCBUS_ERROR_PROTOCOL, &f);
        expect_message_saying(&f, says);
        testbus_frame_deinit(&f);
        testbus_raw_expect_eof(fd);
}

static void expect_protocol_error(int fd)
{
        expect_protocol_error_saying(fd, NULL);
}

/* The broker answers InvalidMessage to serial 5 (its message holding `says`) and the connection still works. */
static void expect_invalid_message_saying(int fd, const char *says)
{
        struct testbus_frame f;

        testbus_raw_expect_reply(fd, 5, IPCBUS_ERROR_INVALID_MESSAGE, &f);
        expect_message_saying(&f, says);
        testbus_frame_deinit(&f);
        testbus_raw_ping(fd, 6);
}

static void expect_invalid_message(int fd)
{
        expect_invalid_message_saying(fd, NULL);
}

/* Send a frame whose header and body are given as bytes (they may hold anything). */
static void send_frame_bytes(int fd, const char *header, size_t header_len, const char *body, size_t body_len)
{
        uint8_t *frame = malloc(16 + header_len + body_len);

        ck_assert_ptr_nonnull(frame);
        testbus_raw_prefix(frame, (uint32_t) header_len, (uint32_t) body_len, 0);
        memcpy(frame + 16, header, header_len);
        if (body_len)
                memcpy(frame + 16 + header_len, body, body_len);
        testbus_raw_send(fd, frame, 16 + header_len + body_len);
        free(frame);
}

/* ---- framing errors ------------------------------------------------------------------- */

START_TEST(test_garbage_before_hello)
{
        static const char http[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
        struct good g;
        int fd;

        good_open(&g);
        fd = testbus_raw_connect(testbus_current());
        testbus_raw_send(fd, http, sizeof(http) - 1);
        expect_protocol_error(fd);
        close(fd);
        good_check_and_close(&g);
}
END_TEST

struct framing_case {
        const char *what;
        char magic[5];
        uint8_t version;
        uint8_t reserved;
        uint16_t n_fds;
        int64_t header_len; /* -1: the Ping header's */
        uint32_t body_len;
        bool send_header;
};

static const struct framing_case framing_cases[] = {
        {"bad magic", "IPCX", 1, 0, 0, -1, 0, true},
        {"lowercase magic", "ipcb", 1, 0, 0, -1, 0, true},
        {"version 0", "IPCB", 0, 0, 0, -1, 0, true},
        {"version 2", "IPCB", 2, 0, 0, -1, 0, true},
        {"reserved byte set", "IPCB", 1, 1, 0, -1, 0, true},
        {"header_len 0", "IPCB", 1, 0, 0, 0, 0, false},
        {"header_len 1", "IPCB", 1, 0, 0, 1, 0, false},
        {"header_len over 64 KiB", "IPCB", 1, 0, 0, 65537, 0, false},
        {"header_len 4 GiB", "IPCB", 1, 0, 0, 0xffffffff, 0, false},
        {"body_len over 64 MiB", "IPCB", 1, 0, 0, -1, 64u * 1024 * 1024 + 1, true},
        {"body_len 4 GiB", "IPCB", 1, 0, 0, -1, 0xffffffffu, true},
        {"17 fds", "IPCB", 1, 0, 17, -1, 0, true},
        {"fd count without fds", "IPCB", 1, 0, 1, -1, 0, true},
};

START_TEST(test_framing_error)
{
        const struct framing_case *c = &framing_cases[_i];
        size_t ping_len = strlen(PING_HEADER);
        uint32_t header_len = c->header_len < 0 ? (uint32_t) ping_len : (uint32_t) c->header_len;
        uint8_t prefix[16];
        struct good g;
        int fd;

        good_open(&g);
        fd = raw_open();
        testbus_raw_prefix(prefix, header_len, c->body_len, c->n_fds);
        memcpy(prefix, c->magic, 4);
        prefix[4] = c->version;
        prefix[5] = c->reserved;
        testbus_raw_send(fd, prefix, sizeof(prefix));
        /* the broker may close before it reads this: a failed write is fine */
        if (c->send_header)
                testbus_raw_write(fd, PING_HEADER, ping_len);
        expect_protocol_error(fd);
        close(fd);
        good_check_and_close(&g);
}
END_TEST

START_TEST(test_truncated_frame_then_hangup)
{
        struct good g;
        uint8_t prefix[16];
        int fd, r;
        struct testbus_frame f;

        good_open(&g);
        fd = raw_open();
        testbus_raw_prefix(prefix, (uint32_t) strlen(PING_HEADER), 0, 0);
        testbus_raw_send(fd, prefix, sizeof(prefix));
        testbus_raw_send(fd, PING_HEADER, 20);
        shutdown(fd, SHUT_WR);
        /* whatever it says last, the broker closes its side */
        while ((r = testbus_raw_recv(fd, TESTBUS_WAIT_MS, &f)) == 1)
                testbus_frame_deinit(&f);
        ck_assert_msg(r == 0 || r == -ECONNRESET, "connection not closed after a hang-up mid-frame (%d)", r);
        close(fd);

        /* a hang-up in the middle of the prefix, and right after connecting */
        fd = raw_open();
        testbus_raw_send(fd, "IPCB\x01", 5);
        close(fd);
        fd = testbus_raw_connect(testbus_current());
        close(fd);
        good_check_and_close(&g);
}
END_TEST

/* ---- malformed JSON ---------------------------------------------------------------------- */

struct malformed_case {
        const char *what;
        const char *header;
        size_t header_len;
        const char *body;
        size_t body_len;
        const char *says; /* in the error's message, when not NULL */
};

#define CALL_START "{\"type\":\"call\",\"serial\":5,\"destination\":\"org.ipcbus.Bus\",\"path\":\"/org/ipcbus/Bus\","

static const struct malformed_case malformed_cases[] = {
        {"header not JSON", S(CALL_START "\"member\":"), NULL, 0, "the header is not well-formed JSON at byte 91"},
        {"header with trailing garbage", S(PING_HEADER " x"), NULL, 0, NULL},
        {"header of two JSON texts", S(PING_HEADER PING_HEADER), NULL, 0, NULL},
        {"header with single quotes", S("{'type':'call','serial':5}"), NULL, 0, NULL},
        {"header with a trailing comma", S(CALL_START "\"member\":\"Ping\",}"), NULL, 0, NULL},
        {"invalid UTF-8 in header", S(CALL_START "\"member\":\"P\xffng\"}"), NULL, 0,
         "the header is not valid UTF-8 at byte 93"},
        {"overlong UTF-8 in header", S(CALL_START "\"member\":\"P\xc0\xafng\"}"), NULL, 0, NULL},
        {"UTF-8 encoded surrogate", S(CALL_START "\"member\":\"P\xed\xa0\x80ng\"}"), NULL, 0, NULL},
        {"truncated UTF-8 sequence", S(CALL_START "\"member\":\"Ping\xe2\x82\"}"), NULL, 0, NULL},
        {"unpaired surrogate escape", S(CALL_START "\"member\":\"P\\ud800ng\"}"), NULL, 0, NULL},
        /* a NUL where no serial can be read: said, and the connection closed */
        {"NUL escape, no serial", S("{\"type\":\"call\\u0000\"}"), NULL, 0,
         "the serial is missing or unreadable, and the header holds a NUL character (a \\u0000 escape) at byte 13: "
         "PROTOCOL.md 2 forbids it"},
        {"NUL outside a string", S("{\"type\":\"call\",\0\"serial\":5}"), NULL, 0,
         "the header is not well-formed JSON at byte 15"},
        {"raw control character in a string", S(CALL_START "\"member\":\"Pi\x01ng\"}"), NULL, 0, NULL},
        {"byte-order mark", S("\xef\xbb\xbf" PING_HEADER), NULL, 0, NULL},
        {"body not JSON", S(PING_HEADER), S("{\"a\":"), NULL},
        {"invalid UTF-8 in body", S(PING_HEADER), S("{\"a\":\"\xfe\"}"), "the body is not valid UTF-8 at byte 6"},
        {"body with trailing garbage", S(PING_HEADER), S("{} {}"), NULL},
        {"body with a bad number", S(PING_HEADER), S("{\"n\":01}"), NULL},
};

/* Open a good connection in g, and a raw one that sends c's frame; returns the raw one. */
static int send_case(struct good *g, const struct malformed_case *c)
{
        int fd;

        good_open(g);
        fd = raw_open();
        send_frame_bytes(fd, c->header, c->header_len, c->body, c->body_len);
        return fd;
}

START_TEST(test_malformed)
{
        struct good g;
        int fd = send_case(&g, &malformed_cases[_i]);

        expect_protocol_error_saying(fd, malformed_cases[_i].says);
        close(fd);
        good_check_and_close(&g);
}
END_TEST

/*
 * A NUL inside a string of JSON that is otherwise well-formed (PROTOCOL.md
 * 2): the message is invalid, not the stream. The sender hears where, and
 * the connection stays.
 */
static const struct malformed_case nul_cases[] = {
        {"NUL escape in the header", S(CALL_START "\"member\":\"Ping\\u0000\"}"), NULL, 0,
         "the header holds a NUL character (a \\u0000 escape) at byte 96: PROTOCOL.md 2 forbids it"},
        {"raw NUL byte in the header", S(CALL_START "\"member\":\"Pi\0ng\"}"), NULL, 0,
         "the header holds a NUL character (a zero byte) at byte 94: PROTOCOL.md 2 forbids it"},
        {"NUL escape in a header key", S(CALL_START "\"member\":\"Ping\",\"x\\u0000\":1}"), NULL, 0,
         "the header holds a NUL character (a \\u0000 escape) at byte 100"},
        {"NUL escape in the body", S(PING_HEADER), S("{\"a\":\"\\u0000\"}"),
         "the body holds a NUL character (a \\u0000 escape) at byte 6: PROTOCOL.md 2 forbids it"},
        {"raw NUL byte in a body key", S(PING_HEADER), S("{\"a\":1,\"b\0\":2}"),
         "the body holds a NUL character (a zero byte) at byte 9"},
};

START_TEST(test_nul)
{
        struct good g;
        int fd = send_case(&g, &nul_cases[_i]);

        expect_invalid_message_saying(fd, nul_cases[_i].says);
        close(fd);
        good_check_and_close(&g);
}
END_TEST

/* A body nested n deep: an object holding n - 1 nested arrays. */
static char *nested_body(int depth)
{
        char *b = malloc((size_t) depth * 2 + 16), *p = b;

        ck_assert_ptr_nonnull(b);
        p += sprintf(p, "{\"a\":");
        for (int i = 1; i < depth; i++)
                *p++ = '[';
        for (int i = 1; i < depth; i++)
                *p++ = ']';
        strcpy(p, "}");
        return b;
}

START_TEST(test_json_nesting_limit)
{
        struct good g;
        char *body;
        int fd;

        good_open(&g);
        /* 64 deep is allowed */
        fd = raw_open();
        body = nested_body(64);
        testbus_raw_send_frame(fd,
                               "{\"type\":\"signal\",\"serial\":4,\"path\":\"/x\",\"interface\":\"org.example.Deep\","
                               "\"member\":\"Deep\"}",
                               body);
        free(body);
        testbus_raw_ping(fd, 5);
        close(fd);
        /* 65 is not */
        fd = raw_open();
        body = nested_body(65);
        testbus_raw_send_frame(fd,
                               "{\"type\":\"signal\",\"serial\":4,\"path\":\"/x\",\"interface\":\"org.example.Deep\","
                               "\"member\":\"Deep\"}",
                               body);
        free(body);
        expect_protocol_error(fd);
        close(fd);
        good_check_and_close(&g);
}
END_TEST

/* ---- invalid messages ------------------------------------------------------------------------ */

struct invalid_case {
        const char *what;
        const char *header;
        const char *body;
        const char *says; /* in the error's message, when not NULL: the field named */
};

static const struct invalid_case invalid_cases[] = {
        {"unknown field", CALL_START "\"member\":\"Ping\",\"color\":\"red\"}", NULL, "unknown header field 'color'"},
        {"duplicate field", CALL_START "\"member\":\"Ping\",\"member\":\"Ping\"}", NULL,
         "header field 'member' appears twice"},
        {"member not a string", CALL_START "\"member\":5}", NULL,
         "header field 'member' has the wrong JSON type: got number, expected string"},
        {"path not a string",
         "{\"type\":\"call\",\"serial\":5,\"destination\":\"org.ipcbus.Bus\",\"path\":true,\"member\":\"Ping\"}", NULL,
         NULL},
        {"destination null",
         "{\"type\":\"call\",\"serial\":5,\"destination\":null,\"path\":\"/org/ipcbus/Bus\",\"member\":\"Ping\"}", NULL,
         NULL},
        {"interface an array", CALL_START "\"interface\":[\"org.ipcbus.Bus\"],\"member\":\"Ping\"}", NULL, NULL},
        {"no_reply a string", CALL_START "\"member\":\"Ping\",\"no_reply\":\"yes\"}", NULL,
         "header field 'no_reply' has the wrong JSON type: got string, expected boolean"},
        {"timeout_ms a string", CALL_START "\"member\":\"Ping\",\"timeout_ms\":\"10\"}", NULL,
         "header field 'timeout_ms' has the wrong JSON type: got string, expected integer"},
        {"timeout_ms 0", CALL_START "\"member\":\"Ping\",\"timeout_ms\":0}", NULL,
         "header field 'timeout_ms' must be an integer from 1 to 2147483647, got 0"},
        {"timeout_ms negative", CALL_START "\"member\":\"Ping\",\"timeout_ms\":-5}", NULL, NULL},
        {"timeout_ms too large", CALL_START "\"member\":\"Ping\",\"timeout_ms\":2147483648}", NULL, NULL},
        {"timeout_ms a fraction", CALL_START "\"member\":\"Ping\",\"timeout_ms\":1.5}", NULL, NULL},
        {"type not a string",
         "{\"type\":1,\"serial\":5,\"destination\":\"org.ipcbus.Bus\",\"path\":\"/org/ipcbus/"
         "Bus\",\"member\":\"Ping\"}",
         NULL, NULL},
        {"unknown type",
         "{\"type\":\"bogus\",\"serial\":5,\"destination\":\"org.ipcbus.Bus\",\"path\":\"/org/ipcbus/Bus\","
         "\"member\":\"Ping\"}",
         NULL, "header field 'type' must be call, return, error or signal, got 'bogus'"},
        {"missing type",
         "{\"serial\":5,\"destination\":\"org.ipcbus.Bus\",\"path\":\"/org/ipcbus/Bus\",\"member\":\"Ping\"}", NULL,
         "header field 'type' is missing: every message has one"},
        {"call without member", CALL_START "\"interface\":\"org.ipcbus.Bus\"}", NULL,
         "header field 'member' is missing: a call needs it"},
        {"call without path", "{\"type\":\"call\",\"serial\":5,\"destination\":\"org.ipcbus.Bus\",\"member\":\"Ping\"}",
         NULL, NULL},
        {"call with an error field", CALL_START "\"member\":\"Ping\",\"error\":\"org.example.E\"}", NULL, NULL},
        {"call with reply_serial", CALL_START "\"member\":\"Ping\",\"reply_serial\":3}", NULL,
         "header field 'reply_serial' is not allowed in a call"},
        {"signal without interface", "{\"type\":\"signal\",\"serial\":5,\"path\":\"/x\",\"member\":\"M\"}", NULL, NULL},
        {"signal with no_reply",
         "{\"type\":\"signal\",\"serial\":5,\"path\":\"/x\",\"interface\":\"org.example.I\",\"member\":\"M\","
         "\"no_reply\":true}",
         NULL, NULL},
        {"return without reply_serial", "{\"type\":\"return\",\"serial\":5,\"destination\":\"org.ipcbus.Bus\"}", NULL,
         NULL},
        {"return without destination", "{\"type\":\"return\",\"serial\":5,\"reply_serial\":1}", NULL, NULL},
        {"return with a path",
         "{\"type\":\"return\",\"serial\":5,\"reply_serial\":1,\"destination\":\"org.ipcbus.Bus\",\"path\":\"/x\"}",
         NULL, NULL},
        {"reply_serial a string",
         "{\"type\":\"return\",\"serial\":5,\"reply_serial\":\"1\",\"destination\":\"org.ipcbus.Bus\"}", NULL,
         "header field 'reply_serial' has the wrong JSON type: got string, expected integer"},
        {"reply_serial 0", "{\"type\":\"return\",\"serial\":5,\"reply_serial\":0,\"destination\":\"org.ipcbus.Bus\"}",
         NULL, NULL},
        {"error without error name", "{\"type\":\"error\",\"serial\":5,\"reply_serial\":1}", NULL, NULL},
        {"error without reply_serial", "{\"type\":\"error\",\"serial\":5,\"error\":\"org.example.Error.E\"}", NULL,
         NULL},
        {"invalid error name", "{\"type\":\"error\",\"serial\":5,\"reply_serial\":1,\"error\":\"bad\"}", NULL, NULL},
        {"broker-only sender", CALL_START "\"member\":\"Ping\",\"sender\":\":1.1\"}", NULL,
         "header field 'sender' is set by the broker only"},
        {"broker-only sender first",
         "{\"sender\":\":1.1\",\"type\":\"call\",\"serial\":5,\"destination\":\"org.ipcbus.Bus\","
         "\"path\":\"/org/ipcbus/Bus\",\"member\":\"Ping\"}",
         NULL, NULL},
        {"broker-only sender_uid", CALL_START "\"member\":\"Ping\",\"sender_uid\":0}", NULL, NULL},
        {"broker-only sender_pid", CALL_START "\"member\":\"Ping\",\"sender_pid\":1}", NULL, NULL},
        {"invalid destination",
         "{\"type\":\"call\",\"serial\":5,\"destination\":\"not a name\",\"path\":\"/x\",\"member\":\"M\"}", NULL,
         "header field 'destination' is not a valid bus name"},
        {"destination with an empty element",
         "{\"type\":\"call\",\"serial\":5,\"destination\":\"org..x\",\"path\":\"/x\",\"member\":\"M\"}", NULL, NULL},
        {"invalid interface", CALL_START "\"interface\":\"nodots\",\"member\":\"Ping\"}", NULL,
         "header field 'interface' is not a valid interface name"},
        {"interface element starting with a digit", CALL_START "\"interface\":\"org.1x\",\"member\":\"Ping\"}", NULL,
         NULL},
        {"member with a dot", CALL_START "\"member\":\"Pi.ng\"}", NULL,
         "header field 'member' is not a valid member name"},
        {"member starting with a digit", CALL_START "\"member\":\"1Ping\"}", NULL, NULL},
        {"empty member", CALL_START "\"member\":\"\"}", NULL, NULL},
        {"path with a trailing slash",
         "{\"type\":\"call\",\"serial\":5,\"destination\":\"org.ipcbus.Bus\",\"path\":\"/org/\",\"member\":\"Ping\"}",
         NULL, "header field 'path' is not a valid object path: got '/org/', expected '/', or elements"},
        {"relative path",
         "{\"type\":\"call\",\"serial\":5,\"destination\":\"org.ipcbus.Bus\",\"path\":\"org\",\"member\":\"Ping\"}",
         NULL, NULL},
        {"path with an empty element",
         "{\"type\":\"call\",\"serial\":5,\"destination\":\"org.ipcbus.Bus\",\"path\":\"/a//b\",\"member\":\"Ping\"}",
         NULL, NULL},
        {"path with a dash",
         "{\"type\":\"call\",\"serial\":5,\"destination\":\"org.ipcbus.Bus\",\"path\":\"/a-b\",\"member\":\"Ping\"}",
         NULL, NULL},
        {"body an array", PING_HEADER, "[1,2]", "the body is not a JSON object: got array"},
        {"body a string", PING_HEADER, "\"text\"", NULL},
        {"body a number", PING_HEADER, "42", NULL},
        {"body null", PING_HEADER, "null", NULL},
        /* wrong field types */
        {"no_auto_start a string", CALL_START "\"member\":\"Ping\",\"no_auto_start\":\"yes\"}", NULL, NULL},
        {"no_reply a number", CALL_START "\"member\":\"Ping\",\"no_reply\":1}", NULL, NULL},
        {"destination a number",
         "{\"type\":\"call\",\"serial\":5,\"destination\":7,\"path\":\"/org/ipcbus/Bus\",\"member\":\"Ping\"}", NULL,
         NULL},
        {"interface null", CALL_START "\"interface\":null,\"member\":\"Ping\"}", NULL,
         "header field 'interface' has the wrong JSON type: got null, expected string"},
        {"member an object", CALL_START "\"member\":{\"name\":\"Ping\"}}", NULL, NULL},
        {"path a number",
         "{\"type\":\"call\",\"serial\":5,\"destination\":\"org.ipcbus.Bus\",\"path\":1,\"member\":\"Ping\"}", NULL,
         NULL},
        {"error name a number", "{\"type\":\"error\",\"serial\":5,\"reply_serial\":1,\"error\":3}", NULL, NULL},
        {"reply_serial a fraction",
         "{\"type\":\"return\",\"serial\":5,\"reply_serial\":1.5,\"destination\":\"org.ipcbus.Bus\"}", NULL, NULL},
        {"reply_serial negative",
         "{\"type\":\"return\",\"serial\":5,\"reply_serial\":-1,\"destination\":\"org.ipcbus.Bus\"}", NULL, NULL},
        {"reply_serial over 32 bits",
         "{\"type\":\"return\",\"serial\":5,\"reply_serial\":4294967296,\"destination\":\"org.ipcbus.Bus\"}", NULL,
         NULL},
        {"type an object",
         "{\"type\":{\"call\":true},\"serial\":5,\"destination\":\"org.ipcbus.Bus\",\"path\":\"/org/ipcbus/Bus\","
         "\"member\":\"Ping\"}",
         NULL, NULL},
        /* unknown message types */
        {"type in capitals",
         "{\"type\":\"CALL\",\"serial\":5,\"destination\":\"org.ipcbus.Bus\",\"path\":\"/org/ipcbus/Bus\","
         "\"member\":\"Ping\"}",
         NULL, NULL},
        {"D-Bus type name",
         "{\"type\":\"method_call\",\"serial\":5,\"destination\":\"org.ipcbus.Bus\",\"path\":\"/org/ipcbus/Bus\","
         "\"member\":\"Ping\"}",
         NULL, NULL},
        {"empty type",
         "{\"type\":\"\",\"serial\":5,\"destination\":\"org.ipcbus.Bus\",\"path\":\"/org/ipcbus/Bus\","
         "\"member\":\"Ping\"}",
         NULL, NULL},
        /* broker-only fields on every type */
        {"broker-only sender on a signal",
         "{\"sender\":\":1.1\",\"type\":\"signal\",\"serial\":5,\"path\":\"/x\",\"interface\":\"org.example.I\","
         "\"member\":\"M\"}",
         NULL, NULL},
        {"broker-only sender_uid on a return",
         "{\"type\":\"return\",\"serial\":5,\"reply_serial\":1,\"destination\":\"org.ipcbus.Bus\",\"sender_uid\":0}",
         NULL, NULL},
        {"broker-only sender_pid on an error",
         "{\"type\":\"error\",\"serial\":5,\"reply_serial\":1,\"error\":\"org.example.Error.E\",\"sender_pid\":1}",
         NULL, NULL},
        {"broker-only sender null", CALL_START "\"member\":\"Ping\",\"sender\":null}", NULL, NULL},
        /* invalid names and paths */
        {"unique destination with an empty element",
         "{\"type\":\"call\",\"serial\":5,\"destination\":\":1..2\",\"path\":\"/x\",\"member\":\"M\"}", NULL, NULL},
        {"unique destination of one element",
         "{\"type\":\"call\",\"serial\":5,\"destination\":\":1\",\"path\":\"/x\",\"member\":\"M\"}", NULL, NULL},
        {"bare colon destination",
         "{\"type\":\"call\",\"serial\":5,\"destination\":\":\",\"path\":\"/x\",\"member\":\"M\"}", NULL, NULL},
        {"destination element starting with a digit",
         "{\"type\":\"call\",\"serial\":5,\"destination\":\"org.1example\",\"path\":\"/x\",\"member\":\"M\"}", NULL,
         NULL},
        {"destination with a space",
         "{\"type\":\"call\",\"serial\":5,\"destination\":\"org.exa mple\",\"path\":\"/x\",\"member\":\"M\"}", NULL,
         NULL},
        {"interface with a dash", CALL_START "\"interface\":\"org.ex-ample.I\",\"member\":\"Ping\"}", NULL, NULL},
        {"member with a dash", CALL_START "\"member\":\"Pi-ng\"}", NULL, NULL},
        {"member with non-ASCII letters", CALL_START "\"member\":\"P\u00efng\"}", NULL, NULL},
        {"empty path",
         "{\"type\":\"call\",\"serial\":5,\"destination\":\"org.ipcbus.Bus\",\"path\":\"\",\"member\":\"Ping\"}", NULL,
         NULL},
        {"path with a dot element",
         "{\"type\":\"call\",\"serial\":5,\"destination\":\"org.ipcbus.Bus\",\"path\":\"/a/../b\",\"member\":\"Ping\"}",
         NULL, NULL},
        {"signal destination invalid",
         "{\"type\":\"signal\",\"serial\":5,\"destination\":\"nodots\",\"path\":\"/x\",\"interface\":\"org.example.I\","
         "\"member\":\"M\"}",
         NULL, NULL},
        {"signal with an invalid path",
         "{\"type\":\"signal\",\"serial\":5,\"path\":\"x\",\"interface\":\"org.example.I\",\"member\":\"M\"}", NULL,
         NULL},
};

START_TEST(test_invalid_message)
{
        const struct invalid_case *c = &invalid_cases[_i];
        struct good g;
        int fd;

        good_open(&g);
        fd = raw_open();
        testbus_raw_send_frame(fd, c->header, c->body);
        expect_invalid_message_saying(fd, c->says);
        close(fd);
        good_check_and_close(&g);
}
END_TEST

/* Names and paths at and over their length limits. */
START_TEST(test_name_length_limits)
{
        char member[300], path[1100], header[1400];
        struct good g;
        int fd;

        good_open(&g);
        fd = raw_open();
        memset(member, 'M', 255);
        member[255] = '\0';
        snprintf(header, sizeof(header), CALL_START "\"member\":\"%s\"}", member);
        testbus_raw_send_frame(fd, header, NULL);
        testbus_raw_expect_reply(fd, 5, IPCBUS_ERROR_UNKNOWN_METHOD, NULL);
        strcpy(member + 255, "M");
        snprintf(header, sizeof(header), CALL_START "\"member\":\"%s\"}", member);
        testbus_raw_send_frame(fd, header, NULL);
        expect_invalid_message(fd);

        for (size_t i = 0; i < 1024; i += 2)
                memcpy(path + i, "/p", 2);
        path[1024] = '\0';
        snprintf(header, sizeof(header),
                 "{\"type\":\"call\",\"serial\":5,\"destination\":\"org.ipcbus.Bus\",\"path\":\"%s\","
                 "\"member\":\"Ping\"}",
                 path);
        testbus_raw_send_frame(fd, header, NULL);
        testbus_raw_expect_reply(fd, 5, IPCBUS_ERROR_UNKNOWN_OBJECT, NULL);
        strcpy(path + 1024, "/p");
        snprintf(header, sizeof(header),
                 "{\"type\":\"call\",\"serial\":5,\"destination\":\"org.ipcbus.Bus\",\"path\":\"%s\","
                 "\"member\":\"Ping\"}",
                 path);
        testbus_raw_send_frame(fd, header, NULL);
        expect_invalid_message(fd);
        close(fd);
        good_check_and_close(&g);
}
END_TEST

/* Names one byte over 255 (well-formed otherwise) are invalid wherever they appear: header = before name after. */
static const struct {
        const char *before;
        const char *after;
} long_name_headers[] = {
        {"{\"type\":\"call\",\"serial\":5,\"destination\":\"", "\",\"path\":\"/x\",\"member\":\"M\"}"},
        {CALL_START "\"interface\":\"", "\",\"member\":\"Ping\"}"},
        {"{\"type\":\"error\",\"serial\":5,\"reply_serial\":1,\"error\":\"", "\"}"},
        {"{\"type\":\"signal\",\"serial\":5,\"path\":\"/x\",\"interface\":\"", "\",\"member\":\"M\"}"},
};

static void send_long_name(int fd, size_t i, const char *name)
{
        char header[1024];

        snprintf(header, sizeof(header), "%s%s%s", long_name_headers[i].before, name, long_name_headers[i].after);
        testbus_raw_send_frame(fd, header, NULL);
}

START_TEST(test_name_too_long)
{
        char name[300], unique[300];
        struct good g;
        int fd;

        /* "org.aaa…": 256 bytes; ":1.111…": 256 bytes */
        memcpy(name, "org.", 4);
        memset(name + 4, 'a', 252);
        name[256] = '\0';
        memcpy(unique, ":1.", 3);
        memset(unique + 3, '1', 253);
        unique[256] = '\0';

        good_open(&g);
        fd = raw_open();
        for (size_t i = 0; i < sizeof(long_name_headers) / sizeof(long_name_headers[0]); i++) {
                send_long_name(fd, i, name);
                expect_invalid_message(fd);
        }
        send_long_name(fd, 0, unique);
        expect_invalid_message(fd);
        /* one byte less is a name: nobody owns it */
        name[255] = '\0';
        send_long_name(fd, 0, name);
        testbus_raw_expect_reply(fd, 5, IPCBUS_ERROR_SERVICE_UNKNOWN, NULL);
        close(fd);
        good_check_and_close(&g);
}
END_TEST

/* An invalid call with no_reply gets no answer, and the connection stays. */
START_TEST(test_invalid_no_reply_call)
{
        struct good g;
        int fd;

        good_open(&g);
        fd = raw_open();
        testbus_raw_send_frame(fd, CALL_START "\"member\":\"Ping\",\"no_reply\":true,\"color\":\"red\"}", NULL);
        /* the next answer is the Ping's */
        testbus_raw_ping(fd, 6);
        close(fd);
        good_check_and_close(&g);
}
END_TEST

/*
 * A header that is JSON but not an object, or an object without a readable
 * serial, leaves nothing to address an answer to: ProtocolError, then close.
 */
static const char *const unanswerable_headers[] = {
        "[\"type\",\"call\",\"serial\",5]",
        "\"call\"",
        "{\"type\":\"call\",\"path\":\"/x\",\"member\":\"M\"}",
        "{\"type\":\"call\",\"serial\":0,\"path\":\"/x\",\"member\":\"M\"}",
        "{\"type\":\"call\",\"serial\":\"5\",\"path\":\"/x\",\"member\":\"M\"}",
        "{\"type\":\"call\",\"serial\":5.0,\"path\":\"/x\",\"member\":\"M\"}",
        "{\"type\":\"call\",\"serial\":-5,\"path\":\"/x\",\"member\":\"M\"}",
        "{\"type\":\"call\",\"serial\":4294967296,\"path\":\"/x\",\"member\":\"M\"}",
        "{\"type\":\"call\",\"serial\":null,\"path\":\"/x\",\"member\":\"M\"}",
        "{}",
};

START_TEST(test_header_unanswerable)
{
        struct good g;
        int fd;

        good_open(&g);
        fd = raw_open();
        testbus_raw_send_frame(fd, unanswerable_headers[_i], NULL);
        expect_protocol_error(fd);
        close(fd);
        good_check_and_close(&g);
}
END_TEST

/* ---- protocol state ---------------------------------------------------------------------------- */

static const char *const before_hello[] = {
        PING_HEADER,
        "{\"type\":\"signal\",\"serial\":5,\"path\":\"/x\",\"interface\":\"org.example.I\",\"member\":\"Early\"}",
        "{\"type\":\"return\",\"serial\":5,\"reply_serial\":1,\"destination\":\"org.ipcbus.Bus\"}",
        ("{\"type\":\"call\",\"serial\":5,\"destination\":\"org.example.Good\",\"path\":\"/org/example/Test\","
         "\"interface\":\"org.example.Test\",\"member\":\"Echo\"}"),
};

START_TEST(test_message_before_hello)
{
        struct good g;
        int fd;

        good_open(&g);
        fd = testbus_raw_connect(testbus_current());
        testbus_raw_send_frame(fd, before_hello[_i], "{}");
        testbus_raw_expect_reply(fd, 5, IPCBUS_ERROR_ACCESS_DENIED, NULL);
        testbus_raw_expect_eof(fd);
        close(fd);
        good_check_and_close(&g);
}
END_TEST

START_TEST(test_second_hello)
{
        struct good g;
        int fd;

        good_open(&g);
        fd = raw_open();
        testbus_raw_send_frame(fd,
                               "{\"type\":\"call\",\"serial\":5,\"destination\":\"org.ipcbus.Bus\","
                               "\"path\":\"/org/ipcbus/Bus\",\"member\":\"Hello\"}",
                               NULL);
        testbus_raw_expect_reply(fd, 5, IPCBUS_ERROR_FAILED, NULL);
        testbus_raw_ping(fd, 6);
        close(fd);
        good_check_and_close(&g);
}
END_TEST

START_TEST(test_reply_to_call_never_made)
{
        struct good g;
        char header[256];
        int fd;

        good_open(&g);
        fd = raw_open();
        snprintf(header, sizeof(header), "{\"type\":\"return\",\"serial\":5,\"reply_serial\":1,\"destination\":\"%s\"}",
                 ipcbus_get_unique_name(g.bus));
        testbus_raw_send_frame(fd, header, "{}");
        testbus_raw_expect_reply(fd, 5, IPCBUS_ERROR_UNEXPECTED_REPLY, NULL);
        /* also to the driver, and as an error */
        testbus_raw_send_frame(fd,
                               "{\"type\":\"error\",\"serial\":7,\"reply_serial\":1,\"destination\":\"org.ipcbus.Bus\","
                               "\"error\":\"org.example.Error.E\"}",
                               NULL);
        testbus_raw_expect_reply(fd, 7, IPCBUS_ERROR_UNEXPECTED_REPLY, NULL);
        testbus_raw_ping(fd, 8);
        close(fd);
        good_check_and_close(&g);
}
END_TEST

/* ---- what must work ------------------------------------------------------------------------------ */

START_TEST(test_frame_split_into_single_bytes)
{
        static const char hello[] = "{\"type\":\"call\",\"serial\":1,\"destination\":\"org.ipcbus.Bus\","
                                    "\"path\":\"/org/ipcbus/Bus\",\"member\":\"Hello\"}";
        uint8_t frame[16 + sizeof(hello)];
        struct testbus_frame f;
        struct good g;
        int fd;

        good_open(&g);
        fd = testbus_raw_connect(testbus_current());
        testbus_raw_prefix(frame, sizeof(hello) - 1, 0, 0);
        memcpy(frame + 16, hello, sizeof(hello) - 1);
        for (size_t i = 0; i < 16 + sizeof(hello) - 1; i++) {
                testbus_raw_send(fd, frame + i, 1);
                usleep(500); /* let the broker read each byte on its own */
        }
        testbus_raw_expect_reply(fd, 1, NULL, &f);
        ck_assert_str_eq(testbus_frame_string(&f, "destination"), testbus_json_string(f.b, "name"));
        testbus_frame_deinit(&f);
        close(fd);
        good_check_and_close(&g);
}
END_TEST

START_TEST(test_several_frames_in_one_write)
{
        static const char *const headers[] = {
                "{\"type\":\"call\",\"serial\":1,\"destination\":\"org.ipcbus.Bus\",\"path\":\"/org/ipcbus/Bus\","
                "\"member\":\"Hello\"}",
                "{\"type\":\"call\",\"serial\":2,\"destination\":\"org.ipcbus.Bus\",\"path\":\"/org/ipcbus/Bus\","
                "\"member\":\"Ping\"}",
                "{\"type\":\"call\",\"serial\":3,\"destination\":\"org.ipcbus.Bus\",\"path\":\"/org/ipcbus/Bus\","
                "\"member\":\"GetId\"}",
        };
        uint8_t buf[1024];
        size_t n = 0;
        struct testbus_frame f;
        struct good g;
        int fd;

        good_open(&g);
        fd = testbus_raw_connect(testbus_current());
        for (size_t i = 0; i < 3; i++) {
                size_t hl = strlen(headers[i]);

                testbus_raw_prefix(buf + n, (uint32_t) hl, 2, 0);
                memcpy(buf + n + 16, headers[i], hl);
                memcpy(buf + n + 16 + hl, "{}", 2);
                n += 16 + hl + 2;
        }
        testbus_raw_send(fd, buf, n);
        testbus_raw_expect_reply(fd, 1, NULL, NULL);
        testbus_raw_expect_reply(fd, 2, NULL, NULL);
        testbus_raw_expect_reply(fd, 3, NULL, &f);
        ck_assert_uint_eq(strlen(testbus_json_string(f.b, "id")), 32);
        testbus_frame_deinit(&f);
        close(fd);
        good_check_and_close(&g);
}
END_TEST

/*
 * The largest header a client may send, padded with whitespace, is accepted
 * and forwarded: after the broker stitches in the sender fields, the
 * subscriber's reader still takes it. One byte more is a framing error.
 */
START_TEST(test_header_at_limit)
{
        static const char signal[] = "{\"type\":\"signal\",\"serial\":5,\"path\":\"/x\","
                                     "\"interface\":\"org.example.Notes\",\"member\":\"Big\"}";
        struct testbus *tb = testbus_current();
        ipcbus_bus *sub = testbus_connect(tb);
        char *header = malloc(IPCBUS_CLIENT_HEADER_MAX + 2);
        struct testbus_rec rec;
        ipcbus_message *m;
        size_t len;
        int fd;

        ck_assert_ptr_nonnull(header);
        testbus_add_match(sub, "{\"interface\":\"org.example.Notes\"}");
        testbus_rec_init(&rec, sub, TESTBUS_REC_SIGNALS);
        memcpy(header, signal, strlen(signal));
        memset(header + strlen(signal), ' ', IPCBUS_CLIENT_HEADER_MAX + 1 - strlen(signal));
        header[IPCBUS_CLIENT_HEADER_MAX] = '\0';

        fd = raw_open();
        testbus_raw_send_frame(fd, header, "{\"n\":\"1\"}");
        m = testbus_rec_wait_member(&rec, "Big", TESTBUS_WAIT_MS);
        ck_assert_msg(m != NULL, "a header of the client maximum was not forwarded");
        ipcbus_message_get_header(m, &len);
        ck_assert_uint_gt(len, IPCBUS_CLIENT_HEADER_MAX);
        ck_assert_uint_le(len, IPCBUS_HEADER_MAX);
        ck_assert(ipcbus_is_open(sub));

        header[IPCBUS_CLIENT_HEADER_MAX] = ' ';
        header[IPCBUS_CLIENT_HEADER_MAX + 1] = '\0';
        testbus_raw_send_frame(fd, header, NULL);
        expect_protocol_error(fd);
        testbus_rec_expect_quiet(&rec);
        ck_assert(ipcbus_is_open(sub));

        free(header);
        close(fd);
        testbus_rec_deinit(&rec);
        ipcbus_unref(sub);
}
END_TEST

/* The golden frames of tests/data, sent byte for byte as a client would. */
START_TEST(test_golden_frames)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *sub = testbus_connect(tb);
        struct testbus_rec rec;
        struct testbus_frame f;
        ipcbus_message *m;
        char *frame;
        size_t len;
        int fd = testbus_raw_connect(tb);

        testbus_add_match(sub, "{\"interface\":\"org.example.Notes\"}");
        testbus_rec_init(&rec, sub, TESTBUS_REC_SIGNALS);

        frame = testbus_data_file("call-hello.frame", &len);
        testbus_raw_send(fd, frame, len);
        free(frame);
        testbus_raw_expect_reply(fd, 1, NULL, &f);
        ck_assert_str_eq(testbus_frame_string(&f, "destination"), testbus_json_string(f.b, "name"));
        testbus_frame_deinit(&f);

        /* a call to a name nobody owns */
        frame = testbus_data_file("call-echo.frame", &len);
        testbus_raw_send(fd, frame, len);
        free(frame);
        testbus_raw_expect_reply(fd, 2, IPCBUS_ERROR_SERVICE_UNKNOWN, NULL);

        /* a broadcast signal reaches the subscriber with its body bytes */
        frame = testbus_data_file("signal.frame", &len);
        testbus_raw_send(fd, frame, len);
        free(frame);
        m = testbus_rec_wait_member(&rec, "Changed", TESTBUS_WAIT_MS);
        ck_assert_ptr_nonnull(m);
        ck_assert_str_eq(ipcbus_message_get_body(m, NULL), "{\"title\":\"hello\",\"count\":3}");

        /* the same signal as the broker stamps it: a client may not send that */
        frame = testbus_data_file("signal-stamped.frame", &len);
        testbus_raw_send(fd, frame, len);
        free(frame);
        testbus_raw_expect_reply(fd, 9, IPCBUS_ERROR_INVALID_MESSAGE, NULL);
        testbus_raw_ping(fd, 11);
        testbus_rec_expect_quiet(&rec);

        testbus_rec_deinit(&rec);
        ipcbus_unref(sub);
        close(fd);
}
END_TEST

/*
 * A flood of messages the receiver did not ask for (unicast signals to a
 * peer that does not read), from many senders: each sender whose chunk was
 * queued is held back (the broker stops reading it, so its Ping waits);
 * once the receiver's queue is over its limit the next senders get
 * LimitsExceeded and carry on. Nothing is dropped silently: the slow
 * receiver stays connected and gets every accepted chunk, in each sender's
 * order, and as it reads the held senders are served again.
 */
#define FLOOD_CONFIG                                                                                                   \
        "{\"limits\":{\"max_frame_bytes\":2097152,\"max_body_bytes\":2000000,"                                         \
        "\"max_queued_bytes_per_connection\":8388608,\"stall_timeout_ms\":3600000}}"

START_TEST(test_flood_unrequested)
{
        enum { N = 20 };
        /* 20 x 1.9 MB is more than the 8 MiB queue limit (FLOOD_CONFIG); one chunk stays
         * congested (over half the 1 MiB backpressure) whatever the socket takes of it */
        const size_t chunk = 1900000;
        struct testbus *tb = testbus_current();
        bool refused[N] = {false}, answered[N] = {false};
        unsigned n_refused = 0, n_answered = 0, delivered = 0;
        char header[512], *body, *name, *senders[N];
        int fd_recv, fd_send[N];
        int64_t deadline, quiet_ms;
        struct good g;

        good_open(&g);
        fd_recv = testbus_raw_connect(tb);
        name = testbus_raw_hello(fd_recv);
        body = malloc(chunk + 16);
        ck_assert_ptr_nonnull(body);
        strcpy(body, "{\"data\":\"");
        memset(body + 9, 'x', chunk);
        strcpy(body + 9 + chunk, "\"}");

        for (unsigned i = 0; i < N; i++) {
                fd_send[i] = testbus_raw_connect(tb);
                senders[i] = testbus_raw_hello(fd_send[i]);
                snprintf(header, sizeof(header),
                         "{\"type\":\"signal\",\"serial\":%u,\"destination\":\"%s\",\"path\":\"/x\","
                         "\"interface\":\"org.example.Flood\",\"member\":\"Chunk\"}",
                         100 + i, name);
                testbus_raw_send_frame(fd_send[i], header, body);
                testbus_raw_send_frame(fd_send[i], PING_HEADER, NULL);
        }

        /* Refusals come at once; a held sender hears nothing until the receiver reads.
         * Listen until the answers have stopped coming for a while. */
        quiet_ms = (int64_t) 2000 * testbus_slow_factor();
        deadline = testbus_now_ms() + 2 * quiet_ms;
        while (testbus_now_ms() < deadline) {
                for (unsigned i = 0; i < N; i++) {
                        struct testbus_frame f;

                        if (answered[i] || testbus_raw_recv(fd_send[i], 0, &f) != 1)
                                continue;
                        if (strcmp(testbus_frame_string(&f, "type"), "signal") != 0) {
                                if (testbus_frame_int(&f, "reply_serial") == 100 + i) {
                                        ck_assert_str_eq(testbus_frame_string(&f, "error"),
                                                         IPCBUS_ERROR_LIMITS_EXCEEDED);
                                        ck_assert_ptr_nonnull(strstr(testbus_json_string(f.b, "message"),
                                                                     "max_queued_bytes_per_connection"));
                                        refused[i] = true;
                                        n_refused++;
                                        deadline = testbus_now_ms() + quiet_ms;
                                } else {
                                        ck_assert_int_eq(testbus_frame_int(&f, "reply_serial"), 5);
                                        ck_assert_msg(refused[i], "sender %u was answered though its chunk was queued",
                                                      i);
                                        answered[i] = true;
                                        n_answered++;
                                }
                        }
                        testbus_frame_deinit(&f);
                }
                usleep(10 * 1000);
        }
        ck_assert_msg(n_refused > 0 && n_refused < N, "%u of %u senders refused", n_refused, N);
        ck_assert_uint_eq(n_answered, n_refused);

        /* The receiver is still connected and gets every accepted chunk, none of the refused. */
        while (delivered < N - n_refused) {
                struct testbus_frame f;

                ck_assert_int_eq(testbus_raw_recv(fd_recv, TESTBUS_WAIT_MS, &f), 1);
                if (strcmp(testbus_frame_string(&f, "type"), "signal") == 0 &&
                    strcmp(testbus_frame_string(&f, "member"), "Chunk") == 0) {
                        int64_t serial = testbus_frame_int(&f, "serial");

                        ck_assert(serial >= 100 && serial < 100 + N);
                        ck_assert_msg(!refused[serial - 100], "a refused chunk was delivered");
                        ck_assert_str_eq(testbus_frame_string(&f, "sender"), senders[serial - 100]);
                        ck_assert_uint_eq(f.body_len, strlen(body));
                        delivered++;
                }
                testbus_frame_deinit(&f);
        }
        testbus_raw_ping(fd_recv, 77);
        /* ... and the held senders are read again: their Pings are answered now. */
        for (unsigned i = 0; i < N; i++) {
                if (!refused[i])
                        testbus_raw_expect_reply(fd_send[i], 5, NULL, NULL);
                testbus_raw_ping(fd_send[i], 2000);
                close(fd_send[i]);
                free(senders[i]);
        }

        free(body);
        free(name);
        close(fd_recv);
        good_check_and_close(&g);
}
END_TEST

/* Many misbehaving connections at once do not take the broker down. */
START_TEST(test_many_bad_connections)
{
        int fds[32];
        struct good g;

        good_open(&g);
        for (size_t i = 0; i < 32; i++) {
                fds[i] = testbus_raw_connect(testbus_current());
                testbus_raw_write(fds[i], "\xff\xfe garbage garbage garbage", 25);
        }
        for (size_t i = 0; i < 32; i++) {
                expect_protocol_error(fds[i]);
                close(fds[i]);
        }
        good_check_and_close(&g);
}
END_TEST

/* ---- connections that never speak ----------------------------------------------------------------- */

#define SILENT_HELLO_TIMEOUT_MS 1000
#define SILENT_CONFIG "{\"limits\":{\"hello_timeout_ms\":1000,\"max_connections_per_uid\":8}}"

/*
 * A flood of connections of one user that never say Hello: as many as the
 * per-uid limit get in, the rest are refused at once, and all of them are
 * gone after the Hello timeout, which gives their places back. The good
 * client (another user) works throughout.
 */
START_TEST(test_flood_of_silent_connections)
{
        static const struct testbus_cred mallory = {.uid = 4666, .gid = 4666};
        struct testbus *tb = testbus_current();
        int64_t t0 = testbus_now_ms(), took;
        struct good g;
        char *message;
        int fds[40];

        good_open(&g);
        for (size_t i = 0; i < 40; i++)
                fds[i] = testbus_raw_connect_as(tb, &mallory);
        for (size_t i = 8; i < 40; i++) {
                message = testbus_raw_expect_refused(fds[i], IPCBUS_ERROR_LIMITS_EXCEEDED);
                ck_assert_msg(testbus_text_names(message, "max_connections_per_uid"), "connection %zu: %s", i, message);
                free(message);
                close(fds[i]);
        }
        json_object_put(
                testbus_call(g.bus, GOOD_SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Echo", "{}"));
        for (size_t i = 0; i < 8; i++) {
                message = testbus_raw_expect_refused(fds[i], IPCBUS_ERROR_LIMITS_EXCEEDED);
                ck_assert_msg(testbus_text_names(message, "hello_timeout_ms"), "connection %zu: %s", i, message);
                free(message);
                close(fds[i]);
        }
        took = testbus_now_ms() - t0;
        ck_assert_msg(took >= SILENT_HELLO_TIMEOUT_MS - 50, "silent connections closed after %lld ms",
                      (long long) took);
        testbus_log_expect(tb, "hello_timeout_ms");
        /* their places are free again */
        fds[0] = testbus_raw_connect_as(tb, &mallory);
        free(testbus_raw_hello(fds[0]));
        testbus_raw_ping(fds[0], 2);
        close(fds[0]);
        good_check_and_close(&g);
}
END_TEST

static Suite *badinput_suite(void)
{
        Suite *s = suite_create("bus_badinput");
        TCase *tc;

        tc = testbus_tcase("framing");
        tcase_add_test(tc, test_garbage_before_hello);
        tcase_add_loop_test(tc, test_framing_error, 0, (int) (sizeof(framing_cases) / sizeof(framing_cases[0])));
        tcase_add_test(tc, test_truncated_frame_then_hangup);
        tcase_add_test(tc, test_many_bad_connections);
        suite_add_tcase(s, tc);

        tc = testbus_tcase("malformed");
        tcase_add_loop_test(tc, test_malformed, 0, (int) (sizeof(malformed_cases) / sizeof(malformed_cases[0])));
        tcase_add_loop_test(tc, test_nul, 0, (int) (sizeof(nul_cases) / sizeof(nul_cases[0])));
        tcase_add_test(tc, test_json_nesting_limit);
        suite_add_tcase(s, tc);

        tc = testbus_tcase("invalid");
        tcase_add_loop_test(tc, test_invalid_message, 0, (int) (sizeof(invalid_cases) / sizeof(invalid_cases[0])));
        tcase_add_test(tc, test_name_length_limits);
        tcase_add_test(tc, test_name_too_long);
        tcase_add_test(tc, test_invalid_no_reply_call);
        tcase_add_loop_test(tc, test_header_unanswerable, 0,
                            (int) (sizeof(unanswerable_headers) / sizeof(unanswerable_headers[0])));
        suite_add_tcase(s, tc);

        tc = testbus_tcase("state");
        tcase_add_loop_test(tc, test_message_before_hello, 0, (int) (sizeof(before_hello) / sizeof(before_hello[0])));
        tcase_add_test(tc, test_second_hello);
        tcase_add_test(tc, test_reply_to_call_never_made);
        suite_add_tcase(s, tc);

        tc = testbus_tcase("accepted");
        tcase_add_test(tc, test_frame_split_into_single_bytes);
        tcase_add_test(tc, test_several_frames_in_one_write);
        tcase_add_test(tc, test_header_at_limit);
        tcase_add_test(tc, test_golden_frames);
        suite_add_tcase(s, tc);

        tc = testbus_tcase_config("flood", FLOOD_CONFIG);
        tcase_add_test(tc, test_flood_unrequested);
        suite_add_tcase(s, tc);

        tc = testbus_tcase_config("silent", SILENT_CONFIG);
        if (geteuid() == 0)
                tcase_add_test(tc, test_flood_of_silent_connections);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return testbus_run_suite(badinput_suite());
}
