/* SPDX-License-Identifier: MIT */
/* Unit tests for protocol/message: golden frames, validation, stitching, building. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/frame.h"
#include "protocol/ipcbus/wire.h"
#include "protocol/message.h"
#include "protocol/proto-error.h"
#include "tests/check-run.h"

static const char *const golden[] = {
        "call-hello",     "call-echo",      "call-noreply", "return", "error", "signal", "signal-stamped",
        "signal-unicode", "call-memfd",
};

/* Read tests/data/NAME.frame; returns a malloc'd buffer. */
static uint8_t *read_golden(const char *name, size_t *ret_size)
{
        const char *dir = getenv("IPCBUS_TEST_DATA");
        char path[4096];
        uint8_t *buf = malloc(1 << 16);
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s.frame", dir ? dir : "tests/data", name);
        f = fopen(path, "rb");
        ck_assert_msg(f != NULL, "cannot open %s", path);
        *ret_size = fread(buf, 1, 1 << 16, f);
        fclose(f);
        return buf;
}

/* Cut the one frame of data out with a frame_reader fed one byte at a time. */
static void view_of(const uint8_t *data, size_t size, struct frame_reader *r, struct frame_view *v)
{
        frame_reader_init(r, 0, 0);
        for (size_t i = 0; i < size; i++) {
                uint8_t *space;
                size_t n;
                ck_assert_int_eq(frame_reader_next(r, v), 0);
                ck_assert_ptr_null(v->data);
                ck_assert_int_eq(frame_reader_space(r, 1, &space, &n), 0);
                *space = data[i];
                frame_reader_commit(r, 1);
        }
        ck_assert_int_eq(frame_reader_next(r, v), 0);
        ck_assert_ptr_nonnull(v->data);
}

/* Build a frame view over a header and body given as text (no copy). */
static struct frame_view text_view(uint8_t *buf, const char *header, const char *body)
{
        struct frame_view v = {0};
        size_t hl = strlen(header), bl = body ? strlen(body) : 0;

        frame_prefix_encode(buf, (uint32_t) hl, (uint32_t) bl, 0);
        memcpy(buf + 16, header, hl);
        if (bl)
                memcpy(buf + 16 + hl, body, bl);
        v.data = buf;
        v.size = 16 + hl + bl;
        frame_prefix_decode(buf, 0, 0, &v.prefix);
        v.header = (const char *) buf + 16;
        v.body = bl ? v.header + hl : NULL;
        return v;
}

static int parse_text(const char *header, const char *body, unsigned flags, struct msg **ret)
{
        static uint8_t buf[1 << 17];
        struct frame_view v = text_view(buf, header, body);

        return msg_parse(&v, NULL, flags, NULL, ret, NULL, NULL);
}

START_TEST(test_golden_roundtrip)
{
        const char *name = golden[_i];
        struct frame_reader r;
        struct frame_view v;
        struct msg *m = NULL, *b = NULL;
        int none[IPCBUS_FDS_MAX] = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1};
        uint8_t *data;
        size_t size;

        data = read_golden(name, &size);
        view_of(data, size, &r, &v);
        /* descriptors announced (call-memfd's) stand in as -1: the codec only counts them */
        ck_assert_int_eq(msg_parse(&v, NULL, MSG_PARSE_FROM_BROKER, v.prefix.n_fds ? none : NULL, &m, NULL, NULL), 0);
        ck_assert_uint_eq(m->size, size);
        ck_assert_int_eq(memcmp(m->data, data, size), 0);
        ck_assert_int_eq(m->data[m->size], '\0');
        /* re-encode from the decoded header and the body bytes: byte for byte */
        ck_assert_int_eq(msg_build_fds(&m->h, m->body, m->body_len, none, m->n_fds, 0, &b), 0);
        ck_assert_msg(b->size == size && memcmp(b->data, data, size) == 0, "%s: re-encoded differs:\n%.*s", name,
                      (int) b->header_len, b->header);
        msg_unref(b);
        msg_unref(m);
        frame_reader_deinit(&r);
        free(data);
}
END_TEST

START_TEST(test_golden_fields)
{
        uint8_t *data;
        size_t size;
        struct frame_reader r;
        struct frame_view v;
        struct msg *m;

        data = read_golden("call-echo", &size);
        view_of(data, size, &r, &v);
        ck_assert_int_eq(msg_parse(&v, NULL, 0, NULL, &m, NULL, NULL), 0);
        ck_assert_int_eq(m->h.type, MSG_CALL);
        ck_assert_uint_eq(m->h.serial, 2);
        ck_assert_str_eq(m->h.destination, "org.example.Echo");
        ck_assert_str_eq(m->h.path, "/org/example/Echo");
        ck_assert_str_eq(m->h.interface, "org.example.Echo");
        ck_assert_str_eq(m->h.member, "Echo");
        ck_assert_uint_eq(m->h.timeout_ms, 5000);
        ck_assert_ptr_null(m->h.sender);
        ck_assert_str_eq(m->body, "{\"data\":\"hello, world\"}");
        ck_assert_str_eq(msg_get_arg(m, "data"), "hello, world");
        msg_unref(m);
        frame_reader_deinit(&r);
        free(data);

        data = read_golden("signal-unicode", &size);
        view_of(data, size, &r, &v);
        ck_assert_int_eq(msg_parse(&v, NULL, 0, NULL, &m, NULL, NULL), 0);
        ck_assert_str_eq(msg_get_arg(m, "text"), "gr\xc3\xbc\xc3\x9f"
                                                 "e \xc3\xa9 \xf0\x9f\x98\x80");
        ck_assert_ptr_null(msg_get_arg(m, "nested"));
        msg_unref(m);
        frame_reader_deinit(&r);
        free(data);

        data = read_golden("call-noreply", &size);
        view_of(data, size, &r, &v);
        ck_assert_int_eq(msg_parse(&v, NULL, 0, NULL, &m, NULL, NULL), 0);
        ck_assert(m->h.no_reply);
        ck_assert(m->h.no_auto_start);
        msg_unref(m);
        frame_reader_deinit(&r);
        free(data);
}
END_TEST

START_TEST(test_stitch_golden)
{
        /* What the broker forwards: signal.frame stamped equals signal-stamped.frame. */
        struct msg_stamp stamp = {.sender = ":1.7", .uid = 1000, .pid = 4242};
        uint8_t *in, *want;
        size_t in_size, want_size;
        struct frame_reader r;
        struct frame_view v;
        struct msg *m;

        in = read_golden("signal", &in_size);
        want = read_golden("signal-stamped", &want_size);
        view_of(in, in_size, &r, &v);
        ck_assert_int_eq(msg_parse(&v, &stamp, 0, NULL, &m, NULL, NULL), 0);
        ck_assert_uint_eq(m->size, want_size);
        ck_assert_int_eq(memcmp(m->data, want, want_size), 0);
        ck_assert_str_eq(m->h.sender, ":1.7");
        ck_assert_int_eq(m->h.sender_uid, 1000);
        ck_assert_int_eq(m->h.sender_pid, 4242);
        /* the body bytes are forwarded unchanged */
        ck_assert_int_eq(memcmp(m->body, v.body, v.prefix.body_len), 0);
        msg_unref(m);
        frame_reader_deinit(&r);
        free(in);
        free(want);
}
END_TEST

START_TEST(test_stitch_in_place)
{
        /* A frame that comes in its own buffer is stamped in its headroom, not
         * copied, and forwards exactly what the copying path makes. */
        static uint8_t buf[1 << 17];
        struct msg_stamp stamp = {.sender = ":1.42", .uid = 1000, .pid = 99};
        static char body[70000];
        struct frame_view v;
        struct msg *copied, *m;
        uint8_t *owned;
        const size_t headroom = 400;

        memset(body, 'z', sizeof(body) - 1);
        memcpy(body, "{\"s\":\"", 6);
        memcpy(body + sizeof(body) - 3, "\"}", 3);
        v = text_view(buf, " {\"type\":\"signal\",\"serial\":5,\"path\":\"/a\",\"interface\":\"a.b\",\"member\":\"C\"}",
                      body);
        ck_assert_int_eq(msg_parse(&v, &stamp, 0, NULL, &copied, NULL, NULL), 0);

        owned = malloc(headroom + v.size + 1);
        ck_assert_ptr_nonnull(owned);
        memcpy(owned + headroom, buf, v.size);
        owned[headroom + v.size] = '\0';
        v.data = owned + headroom;
        v.header = (const char *) v.data + 16;
        v.body = v.header + v.prefix.header_len;
        v.owned = &owned;
        ck_assert_int_eq(msg_parse(&v, &stamp, 0, NULL, &m, NULL, NULL), 0);
        ck_assert_ptr_null(owned); /* taken */
        ck_assert_ptr_eq(m->body, v.body);
        ck_assert_uint_eq(m->size, copied->size);
        ck_assert_int_eq(memcmp(m->data, copied->data, m->size), 0);
        ck_assert_int_eq(m->data[m->size], '\0');
        ck_assert_str_eq(m->h.sender, ":1.42");
        msg_unref(m);
        msg_unref(copied);
}
END_TEST

START_TEST(test_stitch_keeps_body_bytes)
{
        static uint8_t buf[1024];
        struct msg_stamp stamp = {.sender = ":1.2", .uid = 0, .pid = 1};
        const char *body = " { \"a\" :\t\"x\" ,\n \"b\": [ 1 ] } ";
        struct frame_view v = text_view(
                buf,
                " \r\n\t {\"type\":\"signal\", \"serial\":5,\"path\":\"/a\",\"interface\":\"a.b\",\"member\":\"C\"}",
                body);
        struct msg *m;

        ck_assert_int_eq(msg_parse(&v, &stamp, 0, NULL, &m, NULL, NULL), 0);
        ck_assert_str_eq(m->body, body);
        ck_assert_int_eq(strncmp(m->header, "{\"sender\":\":1.2\",\"sender_uid\":0,\"sender_pid\":1,\"type\"", 52), 0);
        /* The stamped frame is exactly one whole frame: what a receiver reads. (White
         * space before the header's '{' once made it longer than its prefix said.) */
        {
                struct frame_prefix p;

                ck_assert_int_eq(frame_prefix_decode(m->data, 0, 0, &p), 0);
                ck_assert_uint_eq(p.header_len, m->header_len);
                ck_assert_uint_eq(p.body_len, strlen(body));
                ck_assert_uint_eq(m->size, IPCBUS_FRAME_PREFIX_SIZE + m->header_len + m->body_len);
                ck_assert_ptr_eq(m->body, m->header + m->header_len);
                ck_assert_uint_eq(strlen(m->header), m->header_len + m->body_len);
        }
        msg_unref(m);
}
END_TEST

START_TEST(test_stitch_never_exceeds_limit)
{
        /* A full-size header cannot take the sender fields: refused, not forwarded oversized. */
        static uint8_t buf[IPCBUS_HEADER_MAX + 64];
        static char header[IPCBUS_HEADER_MAX + 1];
        const char *sig = "{\"type\":\"signal\",\"serial\":5,\"path\":\"/a\",\"interface\":\"a.b\",\"member\":\"C\"}";
        struct msg_stamp stamp = {.sender = ":1.2", .uid = 0, .pid = 1};
        struct frame_view v;
        struct msg *m = NULL;

        memset(header, ' ', IPCBUS_HEADER_MAX);
        memcpy(header, sig, strlen(sig));
        v = text_view(buf, header, NULL);
        ck_assert_int_eq(msg_parse(&v, &stamp, 0, NULL, &m, NULL, NULL), PROTO_E_HEADER_TOO_LARGE);
        ck_assert_ptr_null(m);
        /* the client maximum leaves room */
        header[IPCBUS_CLIENT_HEADER_MAX] = '\0';
        v = text_view(buf, header, NULL);
        ck_assert_int_eq(msg_parse(&v, &stamp, 0, NULL, &m, NULL, NULL), 0);
        ck_assert_uint_le(m->header_len, IPCBUS_HEADER_MAX);
        msg_unref(m);
}
END_TEST

static const struct {
        const char *header;
        const char *body;
        int error;
} invalid[] = {
        {"[1]", NULL, PROTO_E_HEADER_NOT_OBJECT},
        {"{\"type\":\"call\",\"serial\":1,\"path\":\"/\",\"member\":\"M\"}", "[1]", PROTO_E_BODY_NOT_OBJECT},
        {"{\"type\":\"call\",\"serial\":1,\"path\":\"/\",\"member\":\"M\"}", "\"s\"", PROTO_E_BODY_NOT_OBJECT},
        {"{\"type\":\"error\",\"serial\":1,\"reply_serial\":1,\"error\":\"a.b\"}", "{\"message\":5}",
         PROTO_E_BAD_ERROR_BODY},
        {"{\"type\":\"error\",\"serial\":1,\"reply_serial\":1,\"error\":\"a.b\"}", "{\"other\":1}",
         PROTO_E_BAD_ERROR_BODY},
        {"{\"type\":\"error\",\"serial\":1,\"reply_serial\":1,\"error\":\"a.b\"}", "{}", PROTO_E_BAD_ERROR_BODY},
        {"{\"type\":\"error\",\"serial\":1,\"reply_serial\":1,\"error\":\"a.b\"}",
         "{\"message\":\"m\",\"message\":null}", PROTO_E_BAD_ERROR_BODY},
        {"{\"type\":\"call\",\"serial\":1,\"path\":\"/\",\"member\":\"M\",\"color\":\"red\"}", NULL,
         PROTO_E_UNKNOWN_FIELD},
        {"{\"type\":\"call\",\"serial\":1,\"serial\":2,\"path\":\"/\",\"member\":\"M\"}", NULL,
         PROTO_E_DUPLICATE_FIELD},
        {"{\"type\":\"call\",\"serial\":\"1\",\"path\":\"/\",\"member\":\"M\"}", NULL, PROTO_E_FIELD_TYPE},
        {"{\"type\":1,\"serial\":1,\"path\":\"/\",\"member\":\"M\"}", NULL, PROTO_E_FIELD_TYPE},
        {"{\"type\":\"call\",\"serial\":1,\"path\":\"/\",\"member\":\"M\",\"no_reply\":1}", NULL, PROTO_E_FIELD_TYPE},
        {"{\"type\":\"call\",\"serial\":1,\"path\":\"/\"}", NULL, PROTO_E_MISSING_FIELD},
        {"{\"serial\":1,\"path\":\"/\",\"member\":\"M\"}", NULL, PROTO_E_MISSING_FIELD},
        {"{\"type\":\"call\",\"path\":\"/\",\"member\":\"M\"}", NULL, PROTO_E_MISSING_FIELD},
        {"{\"type\":\"return\",\"serial\":1,\"reply_serial\":1}", NULL, PROTO_E_MISSING_FIELD},
        {"{\"type\":\"error\",\"serial\":1,\"reply_serial\":1,\"destination\":\":1.1\"}", NULL, PROTO_E_MISSING_FIELD},
        {"{\"type\":\"error\",\"serial\":1,\"error\":\"a.b\",\"destination\":\":1.1\"}", NULL, PROTO_E_MISSING_FIELD},
        {"{\"type\":\"signal\",\"serial\":1,\"path\":\"/\",\"member\":\"M\"}", NULL, PROTO_E_MISSING_FIELD},
        {"{\"type\":\"call\",\"serial\":1,\"reply_serial\":3,\"path\":\"/\",\"member\":\"M\"}", NULL,
         PROTO_E_FIELD_NOT_ALLOWED},
        {"{\"type\":\"return\",\"serial\":1,\"reply_serial\":3,\"destination\":\":1.1\",\"member\":\"M\"}", NULL,
         PROTO_E_FIELD_NOT_ALLOWED},
        {"{\"type\":\"signal\",\"serial\":1,\"path\":\"/\",\"interface\":\"a.b\",\"member\":\"M\",\"timeout_ms\":5}",
         NULL, PROTO_E_FIELD_NOT_ALLOWED},
        {"{\"type\":\"method\",\"serial\":1,\"path\":\"/\",\"member\":\"M\"}", NULL, PROTO_E_UNKNOWN_TYPE},
        {"{\"type\":\"call\",\"serial\":0,\"path\":\"/\",\"member\":\"M\"}", NULL, PROTO_E_BAD_SERIAL},
        {"{\"type\":\"call\",\"serial\":4294967296,\"path\":\"/\",\"member\":\"M\"}", NULL, PROTO_E_BAD_SERIAL},
        {"{\"type\":\"call\",\"serial\":1.5,\"path\":\"/\",\"member\":\"M\"}", NULL, PROTO_E_BAD_SERIAL},
        {"{\"type\":\"call\",\"serial\":1,\"path\":\"/\",\"member\":\"M\",\"timeout_ms\":0}", NULL,
         PROTO_E_BAD_TIMEOUT},
        {"{\"sender\":\":1.1\",\"type\":\"call\",\"serial\":1,\"path\":\"/\",\"member\":\"M\"}", NULL,
         PROTO_E_BROKER_FIELD},
        {"{\"type\":\"call\",\"serial\":1,\"path\":\"/\",\"member\":\"M\",\"sender_uid\":0}", NULL,
         PROTO_E_BROKER_FIELD},
        {"{\"type\":\"call\",\"serial\":1,\"path\":\"/\",\"member\":\"M\",\"sender_pid\":1}", NULL,
         PROTO_E_BROKER_FIELD},
        {"{\"type\":\"call\",\"serial\":1,\"destination\":\"nodots\",\"path\":\"/\",\"member\":\"M\"}", NULL,
         PROTO_E_BAD_BUS_NAME},
        {"{\"type\":\"call\",\"serial\":1,\"path\":\"/a/\",\"member\":\"M\"}", NULL, PROTO_E_BAD_PATH},
        {"{\"type\":\"call\",\"serial\":1,\"path\":\"/\",\"interface\":\"x\",\"member\":\"M\"}", NULL,
         PROTO_E_BAD_INTERFACE},
        {"{\"type\":\"call\",\"serial\":1,\"path\":\"/\",\"member\":\"M.x\"}", NULL, PROTO_E_BAD_MEMBER},
        {"{\"type\":\"error\",\"serial\":1,\"reply_serial\":1,\"error\":\"bad\"}", NULL, PROTO_E_BAD_ERROR_NAME},
        /* malformed: fatal */
        {"{\"type\":\"call\",", NULL, PROTO_E_BAD_JSON},
        {"{\"type\":\"c\xff\"}", NULL, PROTO_E_BAD_UTF8},
        {"{\"type\":\"call\",\"serial\":1,\"path\":\"/\",\"member\":\"M\"}", "{\"a\":", PROTO_E_BAD_JSON},
};

#define CALL_HEAD_5 "{\"type\":\"call\",\"serial\":5,\"path\":\"/\",\"member\":\"M\""

START_TEST(test_invalid)
{
        struct msg *m = NULL;
        int e = parse_text(invalid[_i].header, invalid[_i].body, 0, &m);

        ck_assert_msg(e == invalid[_i].error, "case %d (%s): got %d (%s), want %d (%s)", _i, invalid[_i].header, e,
                      proto_strerror(e), invalid[_i].error, proto_strerror(invalid[_i].error));
        ck_assert_ptr_null(m);
}
END_TEST

/*
 * What msg_parse_why says for each kind of fault: the field, what it got and
 * what was expected; for broken or NUL-holding JSON the part and where.
 */
static const struct {
        const char *header;
        const char *body;
        int error;
        const char *why;
} whys[] = {
        {CALL_HEAD_5 ",\"color\":\"red\"}", NULL, PROTO_E_UNKNOWN_FIELD, "unknown header field 'color'"},
        {CALL_HEAD_5 ",\"member\":\"N\"}", NULL, PROTO_E_DUPLICATE_FIELD, "header field 'member' appears twice"},
        {"{\"type\":\"call\",\"serial\":\"1\",\"path\":\"/\",\"member\":\"M\"}", NULL, PROTO_E_FIELD_TYPE,
         "header field 'serial' has the wrong JSON type: got string, expected integer"},
        {CALL_HEAD_5 ",\"no_reply\":1}", NULL, PROTO_E_FIELD_TYPE,
         "header field 'no_reply' has the wrong JSON type: got number, expected boolean"},
        {"{\"type\":\"call\",\"serial\":1,\"path\":[],\"member\":\"M\"}", NULL, PROTO_E_FIELD_TYPE,
         "header field 'path' has the wrong JSON type: got array, expected string"},
        {"{\"type\":\"call\",\"serial\":0,\"path\":\"/\",\"member\":\"M\"}", NULL, PROTO_E_BAD_SERIAL,
         "header field 'serial' must be an integer from 1 to 4294967295, got 0"},
        {CALL_HEAD_5 ",\"timeout_ms\":1.5}", NULL, PROTO_E_BAD_TIMEOUT,
         "header field 'timeout_ms' must be an integer from 1 to 2147483647, got 1.5"},
        {"{\"type\":\"method\",\"serial\":1,\"path\":\"/\",\"member\":\"M\"}", NULL, PROTO_E_UNKNOWN_TYPE,
         "header field 'type' must be call, return, error or signal, got 'method'"},
        /* control characters quoted escaped: the sentence is logged, and must not forge a line or a terminal code */
        {"{\"type\":\"x\\n<0>forged\\u001b[31m\\u0085\",\"serial\":1,\"path\":\"/\",\"member\":\"M\"}", NULL,
         PROTO_E_UNKNOWN_TYPE,
         "header field 'type' must be call, return, error or signal, got 'x\\x0a<0>forged\\x1b[31m\\u0085'"},
        {"{\"serial\":1,\"path\":\"/\",\"member\":\"M\"}", NULL, PROTO_E_MISSING_FIELD,
         "header field 'type' is missing: every message has one"},
        {"{\"type\":\"signal\",\"serial\":1,\"path\":\"/\",\"member\":\"M\"}", NULL, PROTO_E_MISSING_FIELD,
         "header field 'interface' is missing: a signal needs it"},
        {CALL_HEAD_5 ",\"reply_serial\":3}", NULL, PROTO_E_FIELD_NOT_ALLOWED,
         "header field 'reply_serial' is not allowed in a call"},
        {CALL_HEAD_5 ",\"sender_pid\":1}", NULL, PROTO_E_BROKER_FIELD,
         "header field 'sender_pid' is set by the broker only"},
        {CALL_HEAD_5 ",\"body_size\":10}", NULL, PROTO_E_BAD_BODY_FD,
         "header field 'body_fd' is missing: 'body_fd' and 'body_size' come together"},
        {"{\"type\":\"call\",\"serial\":1,\"destination\":\"org..x\",\"path\":\"/\",\"member\":\"M\"}", NULL,
         PROTO_E_BAD_BUS_NAME,
         "header field 'destination' is not a valid bus name: got 'org..x', expected a unique name such as ':1.42', "
         "or two or more elements of [A-Za-z0-9_-] joined by '.', none empty or starting with a digit, at most 255 "
         "bytes (PROTOCOL.md 5)"},
        {"{\"type\":\"call\",\"serial\":1,\"path\":\"/a/\",\"member\":\"M\"}", NULL, PROTO_E_BAD_PATH,
         "header field 'path' is not a valid object path: got '/a/', expected '/', or elements of [A-Za-z0-9_] each "
         "after a '/', none empty, no trailing '/', at most 1024 bytes (PROTOCOL.md 5)"},
        {"{\"type\":\"call\",\"serial\":1,\"path\":\"/\",\"member\":\"1M\"}", NULL, PROTO_E_BAD_MEMBER,
         "header field 'member' is not a valid member name: got '1M', expected one element of [A-Za-z0-9_], not "
         "empty, not starting with a digit, at most 255 bytes (PROTOCOL.md 5)"},
        /* a long value is cut at a character's boundary, the sentence stays UTF-8 */
        {CALL_HEAD_5 ",\"\\u00e9\\u00e9\":1}", NULL, PROTO_E_UNKNOWN_FIELD, "unknown header field '\\u00e9\\u00e9'"},
        {CALL_HEAD_5 ",\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                     "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                     "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                     "\xc3\xa9\xc3\xa9x\":1}",
         NULL, PROTO_E_UNKNOWN_FIELD,
         "unknown header field '\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
         "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
         "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9...'"},
        /* the body */
        {CALL_HEAD_5 "}", "[1]", PROTO_E_BODY_NOT_OBJECT, "the body is not a JSON object: got array"},
        {CALL_HEAD_5 "}", "{\"a\":\"x\\u0000\"}", PROTO_E_NUL,
         "the body holds a NUL character (a \\u0000 escape) at byte 7: PROTOCOL.md 2 forbids it"},
        {CALL_HEAD_5 ",\"color\":1}", "{\"a\":\"\\u0000\"}", PROTO_E_UNKNOWN_FIELD, "unknown header field 'color'"},
        /* a NUL in the header is told first: a field's fault may come of it */
        {CALL_HEAD_5 ",\"col\\u0000or\":1}", NULL, PROTO_E_NUL,
         "the header holds a NUL character (a \\u0000 escape) at byte 54: PROTOCOL.md 2 forbids it"},
        /* broken JSON: which part, where */
        {"{\"type\":\"call\",", NULL, PROTO_E_BAD_JSON, "the header is not well-formed JSON at byte 15"},
        {CALL_HEAD_5 "}", "{\"a\":\"\xff\"}", PROTO_E_BAD_UTF8, "the body is not valid UTF-8 at byte 6"},
        {"[1]", NULL, PROTO_E_HEADER_NOT_OBJECT, "the header is not a JSON object: got array"},
        /* no sentence of its own: proto_strerror's */
        {"{\"type\":\"error\",\"serial\":1,\"reply_serial\":1,\"error\":\"a.b\"}", "{}", PROTO_E_BAD_ERROR_BODY,
         "the body of an error is not an object whose member \"message\" is a string"},
};

START_TEST(test_why)
{
        static uint8_t buf[1 << 12];
        struct frame_view v = text_view(buf, whys[_i].header, whys[_i].body);
        struct msg *m = NULL;
        char why[MSG_WHY_MAX];
        int e = msg_parse_why(&v, NULL, 0, NULL, &m, NULL, NULL, why);

        ck_assert_msg(e == whys[_i].error, "case %d (%s): got %d (%s)", _i, whys[_i].header, e, why);
        ck_assert_str_eq(why, whys[_i].why);
        ck_assert_ptr_null(m);
}
END_TEST

/* A frame of header and body text announcing n_fds descriptors, parsed with that many (-1) stand-ins. */
static int parse_fds(const char *header, const char *body, uint16_t n_fds, struct msg **ret)
{
        static uint8_t buf[1 << 12];
        int none[IPCBUS_FDS_MAX] = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1};
        struct frame_view v = text_view(buf, header, body);

        frame_prefix_encode(buf, v.prefix.header_len, v.prefix.body_len, n_fds);
        v.prefix.n_fds = n_fds;
        return msg_parse(&v, NULL, 0, n_fds ? none : NULL, ret, NULL, NULL);
}

#define CALL_HEAD "{\"type\":\"call\",\"serial\":1,\"path\":\"/\",\"member\":\"M\""

/* PROTOCOL.md 14: body_fd and body_size, both or neither, the last descriptor, no body in the frame. */
static const struct {
        const char *header;
        const char *body;
        uint16_t n_fds;
        int error;
} body_fd_cases[] = {
        {CALL_HEAD ",\"body_fd\":0,\"body_size\":10}", NULL, 1, 0},
        {CALL_HEAD ",\"body_fd\":2,\"body_size\":67108864}", NULL, 3, 0},
        {"{\"type\":\"return\",\"serial\":2,\"reply_serial\":1,\"destination\":\":1.1\",\"body_fd\":0,"
         "\"body_size\":2}",
         NULL, 1, 0},
        {"{\"type\":\"signal\",\"serial\":2,\"path\":\"/\",\"interface\":\"a.b\",\"member\":\"C\",\"body_fd\":0,"
         "\"body_size\":2}",
         NULL, 1, 0},
        {"{\"type\":\"error\",\"serial\":2,\"reply_serial\":1,\"error\":\"a.b\",\"body_fd\":0,\"body_size\":2}", NULL,
         1, PROTO_E_FIELD_NOT_ALLOWED},
        {CALL_HEAD ",\"body_fd\":0,\"body_size\":10}", NULL, 2, PROTO_E_BAD_BODY_FD},   /* not the last */
        {CALL_HEAD ",\"body_fd\":0,\"body_size\":10}", NULL, 0, PROTO_E_BAD_BODY_FD},   /* no descriptor */
        {CALL_HEAD ",\"body_fd\":0,\"body_size\":10}", "{}", 1, PROTO_E_BAD_BODY_FD},   /* a body besides */
        {CALL_HEAD ",\"body_fd\":0}", NULL, 1, PROTO_E_BAD_BODY_FD},                     /* no size */
        {CALL_HEAD ",\"body_size\":10}", NULL, 1, PROTO_E_BAD_BODY_FD},                  /* no descriptor index */
        {CALL_HEAD ",\"body_fd\":16,\"body_size\":10}", NULL, 16, PROTO_E_BAD_BODY_FD}, /* out of range */
        {CALL_HEAD ",\"body_fd\":-1,\"body_size\":10}", NULL, 1, PROTO_E_BAD_BODY_FD},
        {CALL_HEAD ",\"body_fd\":0,\"body_size\":0}", NULL, 1, PROTO_E_BAD_BODY_FD},
        {CALL_HEAD ",\"body_fd\":0,\"body_size\":67108865}", NULL, 1, PROTO_E_BAD_BODY_FD},
        {CALL_HEAD ",\"body_fd\":\"0\",\"body_size\":10}", NULL, 1, PROTO_E_FIELD_TYPE},
        {CALL_HEAD ",\"body_fd\":0,\"body_size\":1.0}", NULL, 1, PROTO_E_BAD_BODY_FD},
};

START_TEST(test_body_fd)
{
        struct msg *m = NULL;
        int e = parse_fds(body_fd_cases[_i].header, body_fd_cases[_i].body, body_fd_cases[_i].n_fds, &m);

        ck_assert_msg(e == body_fd_cases[_i].error, "case %d (%s, %u fds): got %d (%s), want %d (%s)", _i,
                      body_fd_cases[_i].header, body_fd_cases[_i].n_fds, e, proto_strerror(e),
                      body_fd_cases[_i].error, proto_strerror(body_fd_cases[_i].error));
        if (e == 0) {
                ck_assert_uint_eq(m->h.body_fd, body_fd_cases[_i].n_fds - 1);
                ck_assert_uint_gt(m->h.body_size, 0);
                ck_assert_ptr_null(m->body);
                ck_assert_uint_eq(m->body_len, 0);
        }
        msg_unref(m);
}
END_TEST

START_TEST(test_body_fd_build)
{
        static const char want[] = "{\"type\":\"call\",\"serial\":9,\"path\":\"/\",\"member\":\"M\",\"timeout_ms\":5,"
                                   "\"body_fd\":1,\"body_size\":123}";
        int fds[2] = {-1, -1};
        struct msg_header h;
        struct msg *m = NULL;

        msg_header_init(&h);
        h.type = MSG_CALL;
        h.serial = 9;
        h.path = "/";
        h.member = "M";
        h.timeout_ms = 5;
        h.body_fd = 1;
        h.body_size = 123;
        /* canonical: after timeout_ms, in the order of the table */
        ck_assert_int_eq(msg_build_fds(&h, NULL, 0, fds, 2, 0, &m), 0);
        ck_assert_uint_eq(m->header_len, strlen(want));
        ck_assert_int_eq(memcmp(m->header, want, m->header_len), 0);
        msg_unref(m);
        /* the codec refuses to build what it would refuse to read */
        ck_assert_int_eq(msg_build_fds(&h, "{}", 2, fds, 2, 0, &m), PROTO_E_BAD_BODY_FD);
        ck_assert_int_eq(msg_build_fds(&h, NULL, 0, fds, 1, 0, &m), PROTO_E_BAD_BODY_FD);
}
END_TEST

START_TEST(test_fatal_classes)
{
        ck_assert(proto_error_is_fatal(PROTO_E_BAD_MAGIC));
        ck_assert(proto_error_is_fatal(PROTO_E_BAD_JSON));
        ck_assert(proto_error_is_fatal(PROTO_E_BAD_UTF8));
        ck_assert(proto_error_is_fatal(PROTO_E_TOO_DEEP));
        ck_assert(proto_error_is_fatal(PROTO_E_HEADER_NOT_OBJECT));
        ck_assert(!proto_error_is_fatal(PROTO_E_BODY_NOT_OBJECT));
        ck_assert(!proto_error_is_fatal(PROTO_E_BROKER_FIELD));
        ck_assert(!proto_error_is_fatal(PROTO_E_UNKNOWN_FIELD));
        for (int c = PROTO_E_BAD_MAGIC; c < _PROTO_E_MAX; c++)
                ck_assert_str_ne(proto_strerror(c), "unknown protocol error");
}
END_TEST

START_TEST(test_serial_of_invalid)
{
        static uint8_t buf[512];
        struct frame_view v = text_view(buf, "{\"type\":\"call\",\"bogus\":1,\"serial\":77,\"no_reply\":true}", NULL);
        struct msg *m = NULL;
        uint32_t serial = 0;
        bool no_reply = false;

        ck_assert_int_eq(msg_parse(&v, NULL, 0, NULL, &m, &serial, &no_reply), PROTO_E_UNKNOWN_FIELD);
        ck_assert_uint_eq(serial, 77);
        ck_assert(no_reply);
        /* no_reply excuses only calls from an error reply */
        v = text_view(buf, "{\"type\":\"signal\",\"serial\":78,\"no_reply\":true,\"path\":\"/\"}", NULL);
        ck_assert_int_ne(msg_parse(&v, NULL, 0, NULL, &m, &serial, &no_reply), 0);
        ck_assert_uint_eq(serial, 78);
        ck_assert(!no_reply);
}
END_TEST

START_TEST(test_broker_fields_from_broker)
{
        struct msg *m;

        ck_assert_int_eq(
                parse_text("{\"sender\":\"org.ipcbus.Bus\",\"sender_uid\":0,\"sender_pid\":1,\"type\":\"error\","
                           "\"serial\":1,\"error\":\"org.ipcbus.Error.ProtocolError\"}",
                           "{\"message\":\"x\"}", MSG_PARSE_FROM_BROKER, &m),
                0);
        ck_assert_str_eq(m->h.sender, "org.ipcbus.Bus");
        ck_assert_uint_eq(m->h.reply_serial, 0);
        msg_unref(m);
}
END_TEST

START_TEST(test_build)
{
        struct msg_header h;
        struct msg *m;
        char *text;
        size_t len;

        msg_header_init(&h);
        h.type = MSG_CALL;
        h.serial = 12;
        h.destination = "org.example.X";
        h.path = "/x";
        h.member = "Go";
        h.no_reply = true;
        ck_assert_int_eq(msg_header_encode(&h, &text, &len), 0);
        ck_assert_str_eq(text, "{\"type\":\"call\",\"serial\":12,\"destination\":\"org.example.X\",\"path\":\"/x\","
                               "\"member\":\"Go\",\"no_reply\":true}");
        free(text);
        ck_assert_int_eq(msg_build(&h, "{\"k\":\"v\"}", 9, &m), 0);
        ck_assert_str_eq(msg_get_arg(m, "k"), "v");
        ck_assert_str_eq(m->body, "{\"k\":\"v\"}");
        msg_unref(m);
        /* invalid bodies and names are refused */
        ck_assert_int_eq(msg_build(&h, "[]", 2, &m), PROTO_E_BODY_NOT_OBJECT);
        ck_assert_int_eq(msg_build(&h, "{", 1, &m), PROTO_E_BAD_JSON);
        h.path = "bad";
        ck_assert_int_eq(msg_build(&h, NULL, 0, &m), PROTO_E_BAD_PATH);
        h.path = "/x";
        h.type = MSG_SIGNAL;
        ck_assert_int_eq(msg_build(&h, NULL, 0, &m), PROTO_E_MISSING_FIELD);
}
END_TEST

/*
 * A body the library vouches for is not scanned again (so even a broken one
 * passes: the flag is a promise), its header still is; a frame that comes
 * in is scanned whatever flags the caller passes.
 */
START_TEST(test_build_body_checked)
{
        static const char *const hdr = "{\"type\":\"call\",\"serial\":1,\"path\":\"/\",\"member\":\"M\"}";
        struct msg_header h;
        struct msg *m;

        msg_header_init(&h);
        h.type = MSG_CALL;
        h.serial = 3;
        h.path = "/x";
        h.member = "Go";
        ck_assert_int_eq(msg_build_fds(&h, "{\"k\":\"v\"}", 9, NULL, 0, MSG_BUILD_BODY_CHECKED, &m), 0);
        ck_assert_str_eq(msg_get_arg(m, "k"), "v");
        msg_unref(m);
        ck_assert_int_eq(msg_build_fds(&h, "{\"k\":\"\xff\"}", 9, NULL, 0, 0, &m), PROTO_E_BAD_UTF8);
        ck_assert_int_eq(msg_build_fds(&h, "{\"k\":\"\xff\"}", 9, NULL, 0, MSG_BUILD_BODY_CHECKED, &m), 0);
        msg_unref(m);
        h.path = "bad";
        ck_assert_int_eq(msg_build_fds(&h, "{}", 2, NULL, 0, MSG_BUILD_BODY_CHECKED, &m), PROTO_E_BAD_PATH);
        ck_assert_int_eq(parse_text(hdr, "{\"k\":\"\xff\"}", MSG_BUILD_BODY_CHECKED, &m), PROTO_E_BAD_UTF8);
        ck_assert_int_eq(parse_text(hdr, "{\"k\":[}", MSG_BUILD_BODY_CHECKED, &m), PROTO_E_BAD_JSON);
}
END_TEST

START_TEST(test_args)
{
        struct msg *m;
        const struct msg_arg *args;
        size_t n;

        ck_assert_int_eq(
                parse_text("{\"type\":\"signal\",\"serial\":1,\"path\":\"/\",\"interface\":\"a.b\",\"member\":\"M\"}",
                           "{\"s\":\"one\",\"n\":1,\"o\":{\"s\":\"inner\"},\"t\":\"tw\\u006f\"}", 0, &m),
                0);
        ck_assert_int_eq(msg_get_args(m, &args, &n), 0);
        ck_assert_uint_eq(n, 4);
        ck_assert_str_eq(args[0].key, "s");
        ck_assert_str_eq(args[0].value, "one");
        ck_assert_str_eq(args[1].key, "n");
        ck_assert_ptr_null(args[1].value);
        ck_assert_str_eq(args[2].key, "o");
        ck_assert_ptr_null(args[2].value);
        ck_assert_str_eq(args[3].key, "t");
        ck_assert_str_eq(args[3].value, "two");
        ck_assert_ptr_null(msg_get_arg(m, "n"));
        ck_assert_ptr_null(msg_get_arg(m, "o"));
        msg_unref(m);
}
END_TEST

/* Of duplicate members, the last counts, whatever its type (PROTOCOL.md 4). */
START_TEST(test_args_duplicates)
{
        struct msg *m;

        ck_assert_int_eq(
                parse_text("{\"type\":\"signal\",\"serial\":1,\"path\":\"/\",\"interface\":\"a.b\",\"member\":\"M\"}",
                           "{\"k\":\"x\",\"k\":\"y\",\"j\":\"x\",\"j\":5}", 0, &m),
                0);
        ck_assert_str_eq(msg_get_arg(m, "k"), "y");
        ck_assert_ptr_null(msg_get_arg(m, "j"));
        msg_unref(m);
}
END_TEST

/*
 * Through the index: msg_get_arg decodes just the member asked for (the
 * last of a key), msg_get_args gives the same members in order as a walk of
 * the text, and the message's bytes stay as they came.
 */
START_TEST(test_args_index)
{
        static const char body[] = "{\"s\":\"one\",\"n\":1,\"o\":{\"s\":\"inner\"},\"t\":\"tw\\u006f\",\"k\\u0065y\":\"v\","
                                   "\"s\":\"last\"}";
        struct msg *m, *walked;
        const struct msg_arg *args, *wargs;
        const char *t;
        size_t n, wn;

        for (int i = 0; i < 2; i++)
                ck_assert_int_eq(parse_text("{\"type\":\"signal\",\"serial\":1,\"path\":\"/\",\"interface\":\"a.b\","
                                            "\"member\":\"M\"}",
                                            body, 0, i ? &walked : &m),
                                 0);
        ck_assert_int_eq(msg_body_index(m), 0);
        ck_assert_ptr_nonnull(m->nodes);
        ck_assert_str_eq(msg_get_arg(m, "s"), "last");
        ck_assert_str_eq(msg_get_arg(m, "key"), "v");
        ck_assert_ptr_null(msg_get_arg(m, "ke"));
        ck_assert_ptr_null(msg_get_arg(m, "o"));
        ck_assert_ptr_null(msg_get_arg(m, "n"));
        ck_assert_ptr_null(msg_get_arg(m, "inner"));
        t = msg_get_arg(m, "t");
        ck_assert_str_eq(t, "two");
        ck_assert_int_eq(memcmp(m->body, body, sizeof(body) - 1), 0);

        ck_assert_int_eq(msg_get_args(m, &args, &n), 0);
        ck_assert_int_eq(msg_get_args(walked, &wargs, &wn), 0);
        ck_assert_uint_eq(n, 6);
        ck_assert_uint_eq(wn, 6);
        for (size_t i = 0; i < n; i++) {
                ck_assert_str_eq(args[i].key, wargs[i].key);
                ck_assert(args[i].value == wargs[i].value ||
                          (args[i].value && wargs[i].value && strcmp(args[i].value, wargs[i].value) == 0));
        }
        ck_assert_ptr_eq(args[3].value, t); /* decoded once, in one place */
        ck_assert_str_eq(msg_get_arg(m, "s"), "last");
        msg_unref(walked);
        msg_unref(m);
}
END_TEST

START_TEST(test_refcount)
{
        struct msg *m;

        ck_assert_int_eq(parse_text("{\"type\":\"call\",\"serial\":1,\"path\":\"/\",\"member\":\"M\"}", NULL, 0, &m),
                         0);
        ck_assert_ptr_eq(msg_ref(m), m);
        ck_assert_uint_eq(m->n_ref, 2);
        ck_assert_ptr_null(msg_unref(m));
        ck_assert_ptr_null(msg_unref(m));
        ck_assert_ptr_null(msg_unref(NULL));
}
END_TEST

static Suite *message_suite(void)
{
        Suite *s = suite_create("protocol_message");
        TCase *tc = tcase_create("core");

        tcase_add_loop_test(tc, test_golden_roundtrip, 0, (int) (sizeof(golden) / sizeof(*golden)));
        tcase_add_test(tc, test_golden_fields);
        tcase_add_test(tc, test_stitch_golden);
        tcase_add_test(tc, test_stitch_keeps_body_bytes);
        tcase_add_test(tc, test_stitch_in_place);
        tcase_add_test(tc, test_stitch_never_exceeds_limit);
        tcase_add_loop_test(tc, test_invalid, 0, (int) (sizeof(invalid) / sizeof(*invalid)));
        tcase_add_loop_test(tc, test_why, 0, (int) (sizeof(whys) / sizeof(*whys)));
        tcase_add_loop_test(tc, test_body_fd, 0, (int) (sizeof(body_fd_cases) / sizeof(*body_fd_cases)));
        tcase_add_test(tc, test_body_fd_build);
        tcase_add_test(tc, test_fatal_classes);
        tcase_add_test(tc, test_serial_of_invalid);
        tcase_add_test(tc, test_broker_fields_from_broker);
        tcase_add_test(tc, test_build);
        tcase_add_test(tc, test_build_body_checked);
        tcase_add_test(tc, test_args);
        tcase_add_test(tc, test_args_duplicates);
        tcase_add_test(tc, test_args_index);
        tcase_add_test(tc, test_refcount);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return check_run(message_suite());
}
