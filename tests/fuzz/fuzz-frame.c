/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the frame reader, the message parser and builder, and
 * the JSON scanner, fed a byte stream as a peer would send it.
 *
 * Input layout:
 *   byte 0      bits 0-2: n, the number of chunk-size bytes that follow
 *               bit 3:    read with the client's header limit (the broker's) or the protocol's
 *               bit 4:    cap bodies at 4096 bytes instead of the protocol's limit
 *   bytes 1..n  chunk sizes, used in turn (0: everything that is left)
 *   the rest    the stream
 *
 * Every frame the reader yields is parsed three ways: as a client reads
 * (broker-only fields allowed), as the broker reads (stamped with a
 * sender), and strictly. The three must agree with each other, and every
 * message that parses must survive msg_build and a second parse unchanged.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/frame.h"
#include "protocol/ipcbus/wire.h"
#include "protocol/jscan.h"
#include "protocol/message.h"
#include "protocol/proto-error.h"
#include "tests/fuzz/fuzz-util.h"

static const struct msg_stamp fuzz_stamp = {.sender = ":1.42", .uid = 1000, .pid = 4242};

/* Descriptors that are not open: msg_unref "closes" them harmlessly. */
static int no_fds[IPCBUS_FDS_MAX] = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1};

/*
 * Index an object text (jscan_index) fully and one level deep: every node
 * lies in the text and within its parent, and the top-level members are the
 * ones jscan_object_next walks (the same raw keys, values and kinds).
 */
static void check_index(const char *text, size_t len)
{
        for (unsigned depth = 1; depth <= 2; depth++) {
                struct jscan_node *nodes = NULL;
                struct jscan_member mem;
                struct jscan_iter it;
                size_t n = 0, k = 1;

                fuzz_assert(jscan_index(text, len, depth == 1 ? 1 : UINT_MAX, &nodes, &n) == 0, "jscan_index failed");
                fuzz_assert(n >= 1 && nodes[0].kind == JSCAN_OBJECT && nodes[0].end == n, "bad root node");
                for (size_t i = 0; i < n; i++)
                        fuzz_assert(nodes[i].start + nodes[i].len <= len && nodes[i].end > i && nodes[i].end <= n &&
                                            (depth == 2 || i == 0 || nodes[i].end == i + 1),
                                    "node %zu out of place", i);
                jscan_object_begin(&it, text, len);
                while (jscan_object_next(&it, &mem) > 0) {
                        const struct jscan_node *key = &nodes[k], *value = &nodes[k + 1];
                        size_t value_start = (size_t) (mem.value - text);

                        fuzz_assert(k + 1 < n, "a member missing from the index");
                        fuzz_assert(key->kind == JSCAN_STRING && text + key->start == mem.key && key->len == mem.key_len,
                                    "key %zu differs", k);
                        fuzz_assert(value->kind == mem.kind && value->start == value_start &&
                                            value->len == mem.value_len,
                                    "value %zu differs", k + 1);
                        fuzz_assert(!!((key->flags | value->flags) & JSCAN_NODE_ESCAPED) == mem.escaped,
                                    "escape flag of %zu differs", k);
                        k = value->end;
                }
                fuzz_assert(k == n, "the index has more members");
                free(nodes);
        }
}

/*
 * Walk one JSON text with the scanner: validate it at two depths (what
 * passes the shallow check must pass the deep one, as the same kind), then
 * iterate an object's members and decode every key and string value.
 */
static void scan_json(const char *text, size_t len)
{
        enum jscan_kind kind, shallow_kind;
        struct jscan_member mem;
        struct jscan_iter it;
        char *buf;
        int r;

        r = jscan_validate(text, len, IPCBUS_DEPTH_MAX, &kind);
        if (jscan_validate(text, len, 2, &shallow_kind) == 0)
                fuzz_assert(r == 0 && kind == shallow_kind, "valid at depth 2, not at depth %u (%d)", IPCBUS_DEPTH_MAX,
                            r);
        if (r != 0) {
                fuzz_assert(r == PROTO_E_BAD_UTF8 || r == PROTO_E_BAD_JSON || r == PROTO_E_TOO_DEEP || r == PROTO_E_NUL,
                            "jscan_validate returned %d", r);
                return;
        }
        if (jscan_object_begin(&it, text, len) != 0) {
                fuzz_assert(kind != JSCAN_OBJECT, "an object that jscan_object_begin refuses");
                return;
        }
        fuzz_assert(kind == JSCAN_OBJECT, "jscan_object_begin accepted a %d", (int) kind);

        check_index(text, len);
        buf = malloc(len + 1);
        fuzz_assert(buf, "out of memory");
        while (jscan_object_next(&it, &mem) > 0) {
                size_t n;

                fuzz_assert(mem.key >= text && mem.key + mem.key_len <= text + len, "key outside the text");
                fuzz_assert(mem.value >= text && mem.value + mem.value_len <= text + len, "value outside the text");
                n = jscan_string_decode(mem.key, mem.key_len, buf);
                fuzz_assert(n <= mem.key_len && buf[n] == '\0', "decoded key longer than raw");
                /* Keys hold no NUL (jscan refuses \u0000), so the decoded key names the member. */
                fuzz_assert(strlen(buf) == n && jscan_key_equal(&mem, buf), "key does not equal its decoding");
                if (mem.kind == JSCAN_STRING) {
                        n = jscan_string_decode(mem.value, mem.value_len, buf);
                        fuzz_assert(n <= mem.value_len && strlen(buf) == n, "bad string decoding");
                } else if (mem.kind == JSCAN_NUMBER) {
                        int64_t v;

                        (void) jscan_number_to_int64(mem.value, mem.value_len, INT64_MIN, INT64_MAX, &v);
                }
        }
        free(buf);
}

/* Parse a buffer that must hold exactly one whole frame (what the codec itself wrote). */
static int parse_one(const uint8_t *data, size_t size, const struct msg_stamp *stamp, unsigned flags, struct msg **ret)
{
        struct frame_reader reader;
        struct frame_view f;
        uint8_t *space;
        size_t space_size;
        int r;

        frame_reader_init(&reader, IPCBUS_HEADER_MAX, 0);
        fuzz_assert(frame_reader_space(&reader, size, &space, &space_size) == 0 && space_size >= size, "no space");
        memcpy(space, data, size);
        frame_reader_commit(&reader, size);
        r = frame_reader_next(&reader, &f);
        fuzz_assert(r == 0 && f.data, "a frame the codec wrote does not read back (%d)", r);
        fuzz_assert(f.size == size && frame_reader_pending(&reader) == 0, "frame size %zu, buffer %zu", f.size, size);
        r = msg_parse(&f, stamp, flags, no_fds, ret, NULL, NULL);
        frame_reader_deinit(&reader);
        return r;
}

/*
 * The top-level members of a and b, as msg_get_args gives them, are the
 * same; b is read through its index (msg_body_index), a by walking its text.
 * Before that, msg_get_arg on b (decoding the one value through the index)
 * agrees with a's members.
 */
static void check_args(struct msg *a, struct msg *b)
{
        const struct msg_arg *aa, *ba;
        size_t an, bn;

        fuzz_assert(msg_body_index(b) == 0, "msg_body_index failed");
        fuzz_assert(msg_get_args(a, &aa, &an) == 0, "msg_get_args failed");
        for (size_t i = 0; i < an; i++) {
                bool last = true;

                for (size_t j = i + 1; j < an && last; j++)
                        last = strcmp(aa[j].key, aa[i].key) != 0;
                if (last)
                        fuzz_assert(fuzz_streq(msg_get_arg(b, aa[i].key), aa[i].value),
                                    "msg_get_arg through the index differs on %s", aa[i].key);
        }

        fuzz_assert(msg_get_args(a, &aa, &an) == 0 && msg_get_args(b, &ba, &bn) == 0, "msg_get_args failed");
        fuzz_assert(an == bn, "%zu args against %zu", an, bn);
        for (size_t i = 0; i < an; i++) {
                bool last = true;

                fuzz_assert(strcmp(aa[i].key, ba[i].key) == 0 && fuzz_streq(aa[i].value, ba[i].value),
                            "arg %zu differs", i);
                /* msg_get_arg gives the last member of a key: its string, or NULL for another type */
                for (size_t j = i + 1; j < an && last; j++)
                        last = strcmp(aa[j].key, aa[i].key) != 0;
                fuzz_assert(!last || msg_get_arg(a, aa[i].key) == aa[i].value, "msg_get_arg misses %s", aa[i].key);
        }
}

/*
 * m parsed: build it again from its decoded header and its body, and check
 * that the result has the canonical header, the same body bytes, and parses
 * back to the same header.
 */
static void check_roundtrip(struct msg *m)
{
        struct msg *built = NULL, *again = NULL;
        char *canonical;
        size_t canonical_len;
        int r;

        /* with its descriptors' count: a body in a memfd names the last of them (PROTOCOL.md 14) */
        r = msg_build_fds(&m->h, m->body, m->body_len, no_fds, m->n_fds, 0, &built);
        fuzz_assert(r == 0, "msg_build refuses a parsed message: %d (%s)", r, r > 0 ? proto_strerror(r) : "errno");
        fuzz_assert(fuzz_header_equal(&built->h, &m->h), "built header differs");
        fuzz_assert(built->body_len == m->body_len && (!m->body_len || memcmp(built->body, m->body, m->body_len) == 0),
                    "built body differs");
        fuzz_assert(msg_header_encode(&m->h, &canonical, &canonical_len) == 0, "msg_header_encode failed");
        fuzz_assert(canonical_len == built->header_len && memcmp(canonical, built->header, canonical_len) == 0,
                    "msg_build's header is not msg_header_encode's");
        free(canonical);

        r = parse_one(built->data, built->size, NULL, MSG_PARSE_FROM_BROKER, &again);
        fuzz_assert(r == 0, "a built message does not parse: %d", r);
        fuzz_assert(fuzz_header_equal(&again->h, &m->h), "reparsed header differs");
        fuzz_assert(again->size == built->size && memcmp(again->data, built->data, built->size) == 0,
                    "reparsed bytes differ");
        check_args(m, again);
        msg_unref(again);
        msg_unref(built);
}

/* One frame from the stream: scan it, parse it three ways, check them against each other. */
static void check_frame(const struct frame_view *f)
{
        struct msg *client = NULL, *broker = NULL, *strict = NULL;
        uint32_t serial_client, serial_broker, serial_strict;
        bool no_reply_client, no_reply_strict;
        int rc, rb, rs;

        scan_json(f->header, f->prefix.header_len);
        if (f->body)
                scan_json(f->body, f->prefix.body_len);

        if (f->prefix.n_fds > 0)
                fuzz_assert(msg_parse(f, NULL, 0, NULL, &strict, NULL, NULL) == PROTO_E_FDS_MISMATCH,
                            "descriptors announced, none given, and no mismatch");

        rc = msg_parse(f, NULL, MSG_PARSE_FROM_BROKER, no_fds, &client, &serial_client, &no_reply_client);
        rb = msg_parse(f, &fuzz_stamp, 0, no_fds, &broker, &serial_broker, NULL);
        rs = msg_parse(f, NULL, 0, no_fds, &strict, &serial_strict, &no_reply_strict);

        fuzz_assert(rc >= 0 && rb >= 0 && rs >= 0, "msg_parse failed with an errno: %d %d %d", rc, rb, rs);
        fuzz_assert(serial_client == serial_strict, "serials %u %u", serial_client, serial_strict);
        fuzz_assert(no_reply_client == no_reply_strict, "no_reply differs");
        /* The broker's parse is the strict one plus the stamp, which may only make the header too large,
         * and never one that the broker's reader let in: whatever it accepts, it can forward. */
        if (rb == PROTO_E_HEADER_TOO_LARGE && rs != PROTO_E_HEADER_TOO_LARGE)
                fuzz_assert(f->prefix.header_len > IPCBUS_CLIENT_HEADER_MAX, "a client-sized header (%u) too large",
                            f->prefix.header_len);
        else
                fuzz_assert(rb == rs && serial_broker == serial_strict, "broker %d (serial %u), strict %d (serial %u)",
                            rb, serial_broker, rs, serial_strict);
        /* What the strict parse takes, a client takes; the client refuses for the strict parse's reason,
         * unless that reason was a broker-only field (checked before all others). */
        fuzz_assert(rc == 0 || rc == rs || rs == PROTO_E_BROKER_FIELD, "client %d, strict %d", rc, rs);
        fuzz_assert(rs != 0 || rc == 0, "strict accepts, client refuses (%d)", rc);

        if (rc == 0) {
                fuzz_assert(client->size == f->size && memcmp(client->data, f->data, f->size) == 0,
                            "an unstamped parse changed the bytes");
                fuzz_assert(client->n_fds == f->prefix.n_fds, "descriptor count changed");
                check_roundtrip(client);
        }
        if (rs == 0)
                fuzz_assert(fuzz_header_equal(&strict->h, &client->h), "strict and client headers differ");
        if (rb == 0) {
                struct msg *forwarded = NULL;
                int r;

                fuzz_assert(fuzz_streq(broker->h.sender, fuzz_stamp.sender) && broker->h.sender_uid == fuzz_stamp.uid &&
                                    broker->h.sender_pid == fuzz_stamp.pid,
                            "stamp not applied");
                fuzz_assert(broker->body_len == f->prefix.body_len &&
                                    (!f->body || memcmp(broker->body, f->body, broker->body_len) == 0),
                            "the broker changed the body");
                /* What the broker forwards, a client must read as the same message. */
                r = parse_one(broker->data, broker->size, NULL, MSG_PARSE_FROM_BROKER, &forwarded);
                fuzz_assert(r == 0, "a stamped message does not parse: %d (%s)", r, r > 0 ? proto_strerror(r) : "");
                fuzz_assert(fuzz_header_equal(&forwarded->h, &broker->h), "forwarded header differs");
                fuzz_assert(forwarded->n_fds == f->prefix.n_fds, "forwarded descriptor count changed");
                check_roundtrip(broker);
                msg_unref(forwarded);
        }
        msg_unref(strict);
        msg_unref(broker);
        msg_unref(client);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct frame_reader reader;
        const uint8_t *chunks, *stream;
        size_t n_chunks, stream_len, off = 0, turn = 0;
        uint8_t config;
        int r = 0;

        if (size < 1)
                return 0;
        config = data[0];
        n_chunks = config & 7u;
        if (size < 1 + n_chunks)
                return 0;
        chunks = data + 1;
        stream = data + 1 + n_chunks;
        stream_len = size - 1 - n_chunks;

        frame_reader_init(&reader, (config & 8u) ? IPCBUS_CLIENT_HEADER_MAX : IPCBUS_HEADER_MAX,
                          (config & 16u) ? 4096u : 0u);
        while (off < stream_len && r == 0) {
                size_t chunk = n_chunks ? chunks[turn++ % n_chunks] : 0;
                size_t left = stream_len - off, space_size;
                struct frame_view f;
                uint8_t *space;

                if (chunk == 0 || chunk > left)
                        chunk = left;
                fuzz_assert(frame_reader_space(&reader, chunk, &space, &space_size) == 0, "frame_reader_space failed");
                fuzz_assert(space_size >= chunk, "space %zu for a want of %zu", space_size, chunk);
                memcpy(space, stream + off, chunk);
                frame_reader_commit(&reader, chunk);
                off += chunk;

                while ((r = frame_reader_next(&reader, &f)) == 0 && f.data) {
                        fuzz_assert(f.size ==
                                            IPCBUS_FRAME_PREFIX_SIZE + (size_t) f.prefix.header_len + f.prefix.body_len,
                                    "frame size");
                        check_frame(&f);
                }
        }
        if (r != 0) {
                struct frame_view f;

                fuzz_assert(r >= PROTO_E_BAD_MAGIC && r < PROTO_E_BAD_UTF8, "frame_reader_next returned %d", r);
                fuzz_assert(frame_reader_next(&reader, &f) == r, "a framing error that is not sticky");
        }
        fuzz_assert(frame_reader_pending(&reader) <= stream_len, "more pending than read");
        frame_reader_deinit(&reader);
        return 0;
}
