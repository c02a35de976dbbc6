/* SPDX-License-Identifier: MIT */
/* Unit tests for protocol/frame: the prefix and incremental framing. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/frame.h"
#include "protocol/ipcbus/wire.h"
#include "protocol/proto-error.h"
#include "tests/check-run.h"

/* A frame with the given header and body texts into buf; returns its size. */
static size_t make_frame(uint8_t *buf, const char *header, const char *body)
{
        size_t hl = strlen(header), bl = body ? strlen(body) : 0;

        frame_prefix_encode(buf, (uint32_t) hl, (uint32_t) bl, 0);
        memcpy(buf + 16, header, hl);
        if (bl)
                memcpy(buf + 16 + hl, body, bl);
        return 16 + hl + bl;
}

/* Feed `n` bytes to the reader `chunk` at a time; count frames seen (the last into *last),
 * or return minus the framing code. */
static int feed(struct frame_reader *r, const uint8_t *data, size_t n, size_t chunk, struct frame_view *last)
{
        int frames = 0;

        for (size_t off = 0; off < n;) {
                struct frame_view v;
                uint8_t *space;
                size_t size, k;
                int e;

                ck_assert_int_eq(frame_reader_space(r, chunk, &space, &size), 0);
                ck_assert_uint_ge(size, chunk);
                k = n - off < chunk ? n - off : chunk;
                memcpy(space, data + off, k);
                frame_reader_commit(r, k);
                off += k;
                while ((e = frame_reader_next(r, &v)) == 0 && v.data) {
                        *last = v;
                        frames++;
                }
                if (e != 0)
                        return -e;
        }
        return frames;
}

START_TEST(test_prefix_roundtrip)
{
        uint8_t p[16];
        struct frame_prefix fp;

        frame_prefix_encode(p, 99, 0x01020304, 3);
        ck_assert_int_eq(memcmp(p, "IPCB\x01\x00\x03\x00\x63\x00\x00\x00\x04\x03\x02\x01", 16), 0);
        ck_assert_int_eq(frame_prefix_decode(p, 0, 0, &fp), 0);
        ck_assert_uint_eq(fp.header_len, 99);
        ck_assert_uint_eq(fp.body_len, 0x01020304);
        ck_assert_uint_eq(fp.n_fds, 3);
}
END_TEST

START_TEST(test_prefix_errors)
{
        uint8_t p[16];
        struct frame_prefix fp;

        frame_prefix_encode(p, 10, 0, 0);
        p[0] = 'X';
        ck_assert_int_eq(frame_prefix_decode(p, 0, 0, &fp), PROTO_E_BAD_MAGIC);
        frame_prefix_encode(p, 10, 0, 0);
        p[4] = 2;
        ck_assert_int_eq(frame_prefix_decode(p, 0, 0, &fp), PROTO_E_BAD_VERSION);
        frame_prefix_encode(p, 10, 0, 0);
        p[5] = 1;
        ck_assert_int_eq(frame_prefix_decode(p, 0, 0, &fp), PROTO_E_BAD_RESERVED);
        frame_prefix_encode(p, 1, 0, 0);
        ck_assert_int_eq(frame_prefix_decode(p, 0, 0, &fp), PROTO_E_HEADER_EMPTY);
        frame_prefix_encode(p, IPCBUS_HEADER_MAX + 1, 0, 0);
        ck_assert_int_eq(frame_prefix_decode(p, 0, 0, &fp), PROTO_E_HEADER_TOO_LARGE);
        frame_prefix_encode(p, IPCBUS_HEADER_MAX, 0, 0);
        ck_assert_int_eq(frame_prefix_decode(p, 0, 0, &fp), 0);
        frame_prefix_encode(p, 10, IPCBUS_BODY_MAX + 1, 0);
        ck_assert_int_eq(frame_prefix_decode(p, 0, 0, &fp), PROTO_E_BODY_TOO_LARGE);
        frame_prefix_encode(p, 10, 1001, 0);
        ck_assert_int_eq(frame_prefix_decode(p, 0, 1000, &fp), PROTO_E_BODY_TOO_LARGE);
        frame_prefix_encode(p, 10, 0, IPCBUS_FDS_MAX + 1);
        ck_assert_int_eq(frame_prefix_decode(p, 0, 0, &fp), PROTO_E_TOO_MANY_FDS);
}
END_TEST

START_TEST(test_reader_chunks)
{
        static const size_t chunks[] = {1, 2, 3, 7, 16, 17, 100, 4096};
        uint8_t stream[4096];
        size_t n = 0;

        n += make_frame(stream + n, "{\"a\":1}", "{\"b\":2}");
        n += make_frame(stream + n, "{\"type\":\"call\"}", NULL);
        n += make_frame(stream + n, "{}", "{\"big\":\"0123456789012345678901234567890123456789\"}");
        for (size_t i = 0; i < sizeof(chunks) / sizeof(*chunks); i++) {
                struct frame_reader r;
                struct frame_view v;

                frame_reader_init(&r, 0, 0);
                ck_assert_int_eq(feed(&r, stream, n, chunks[i], &v), 3);
                ck_assert_uint_eq(v.prefix.header_len, 2);
                ck_assert_int_eq(memcmp(v.header, "{}", 2), 0);
                ck_assert_int_eq(memcmp(v.body, "{\"big\"", 6), 0);
                ck_assert_uint_eq(frame_reader_pending(&r), 0);
                frame_reader_deinit(&r);
        }
}
END_TEST

START_TEST(test_reader_views)
{
        uint8_t stream[256];
        struct frame_reader r;
        struct frame_view v;
        uint8_t *space;
        size_t size, n = 0;

        n += make_frame(stream + n, "{\"x\":1}", NULL);
        n += make_frame(stream + n, "{\"y\":2}", "{}");
        frame_reader_init(&r, 0, 0);
        ck_assert_int_eq(frame_reader_space(&r, n, &space, &size), 0);
        memcpy(space, stream, n - 1); /* all but the last byte */
        frame_reader_commit(&r, n - 1);
        ck_assert_int_eq(frame_reader_next(&r, &v), 0);
        ck_assert_ptr_nonnull(v.data);
        ck_assert_ptr_null(v.body);
        ck_assert_int_eq(memcmp(v.header, "{\"x\":1}", 7), 0);
        ck_assert_int_eq(frame_reader_next(&r, &v), 0);
        ck_assert_ptr_null(v.data);
        ck_assert_uint_eq(frame_reader_pending(&r), 16 + 7 + 1);
        ck_assert_int_eq(frame_reader_space(&r, 1, &space, &size), 0);
        space[0] = '}';
        frame_reader_commit(&r, 1);
        ck_assert_int_eq(frame_reader_next(&r, &v), 0);
        ck_assert_ptr_nonnull(v.data);
        ck_assert_uint_eq(v.size, 16 + 7 + 2);
        frame_reader_deinit(&r);
}
END_TEST

START_TEST(test_reader_garbage)
{
        struct frame_reader r;
        struct frame_view v;

        /* A wrong first byte is a framing error at once, before 16 bytes arrive. */
        frame_reader_init(&r, 0, 0);
        ck_assert_int_eq(feed(&r, (const uint8_t *) "GET / HTTP/1.1\r\n", 16, 1, &v), -PROTO_E_BAD_MAGIC);
        /* and sticky */
        ck_assert_int_eq(frame_reader_next(&r, &v), PROTO_E_BAD_MAGIC);
        frame_reader_deinit(&r);

        frame_reader_init(&r, 0, 0);
        ck_assert_int_eq(feed(&r, (const uint8_t *) "IPCX", 4, 4, &v), -PROTO_E_BAD_MAGIC);
        frame_reader_deinit(&r);
}
END_TEST

START_TEST(test_reader_limits)
{
        uint8_t p[16];
        struct frame_reader r;
        struct frame_view v;

        frame_reader_init(&r, 128, 1024);
        frame_prefix_encode(p, 129, 0, 0);
        ck_assert_int_eq(feed(&r, p, 16, 16, &v), -PROTO_E_HEADER_TOO_LARGE);
        frame_reader_deinit(&r);
        frame_reader_init(&r, 128, 1024);
        frame_prefix_encode(p, 10, 1025, 0);
        ck_assert_int_eq(feed(&r, p, 16, 5, &v), -PROTO_E_BODY_TOO_LARGE);
        frame_reader_deinit(&r);
        /* header and body each within bounds, together over max_frame */
        frame_reader_init(&r, 128, 1024);
        r.max_frame = 16 + 100 + 900;
        frame_prefix_encode(p, 100, 901, 0);
        ck_assert_int_eq(feed(&r, p, 16, 5, &v), -PROTO_E_FRAME_TOO_LARGE);
        frame_reader_deinit(&r);
}
END_TEST

START_TEST(test_reader_large)
{
        /* A frame larger than the initial buffer grows it as its bytes arrive. */
        static uint8_t stream[300000];
        static char body[200000];
        struct frame_reader r;
        struct frame_view v;
        size_t n;

        memset(body, 'a', sizeof(body) - 1);
        body[0] = '"';
        body[sizeof(body) - 2] = '"';
        n = make_frame(stream, "{}", body);
        frame_reader_init(&r, 0, 0);
        ck_assert_int_eq(feed(&r, stream, n, 1000, &v), 1);
        ck_assert_uint_eq(v.prefix.body_len, strlen(body));
        frame_reader_deinit(&r);
}
END_TEST

START_TEST(test_reader_grows_by_arrival)
{
        /* A prefix that announces the largest frame reserves nothing for it: the
         * buffer follows the bytes that came, at most doubling them. */
        struct frame_reader r;
        uint8_t p[16];
        uint8_t *space;
        size_t size;

        frame_reader_init(&r, 0, 0);
        frame_prefix_encode(p, 1024, 64u * 1024u * 1024u, 0);
        ck_assert_int_eq(frame_reader_space(&r, sizeof(p), &space, &size), 0);
        memcpy(space, p, sizeof(p));
        frame_reader_commit(&r, sizeof(p));
        for (size_t have = sizeof(p); have < 1024u * 1024u; have += size) {
                ck_assert_int_eq(frame_reader_space(&r, 4096, &space, &size), 0);
                ck_assert_uint_le(r.size, 2 * have + 2 * 4096);
                memset(space, ' ', size);
                frame_reader_commit(&r, size);
        }
        frame_reader_deinit(&r);
}
END_TEST

/*
 * Feed a stream `chunk` bytes at a time to a reader for large frames and
 * return its first frame, taken over when it came in a buffer of its own
 * (*ret_owned, else NULL: the view lies in the reader's buffer).
 */
static void feed_own(struct frame_reader *r, const uint8_t *data, size_t n, size_t chunk, struct frame_view *ret,
                     uint8_t **ret_owned)
{
        *ret_owned = NULL;
        for (size_t off = 0; off < n;) {
                uint8_t *space;
                size_t size, k;

                ck_assert_int_eq(frame_reader_space(r, chunk, &space, &size), 0);
                k = n - off < chunk ? n - off : chunk;
                k = k < size ? k : size;
                memcpy(space, data + off, k);
                frame_reader_commit(r, k);
                off += k;
                ck_assert_int_eq(frame_reader_next(r, ret), 0);
                if (ret->data) {
                        if (ret->owned) {
                                *ret_owned = *ret->owned;
                                *ret->owned = NULL;
                        }
                        return;
                }
        }
        ck_abort_msg("no frame came");
}

START_TEST(test_reader_own_large)
{
        /* A large frame comes in a buffer of its own, with the headroom before it
         * and a NUL after; the reader never read past it, and goes on after it. */
        static uint8_t stream[40000];
        static char body[30000];
        const size_t reserve_max[] = {0, 8192};
        size_t n;

        memset(body, 'a', sizeof(body) - 1);
        body[0] = '"';
        body[sizeof(body) - 2] = '"';
        n = make_frame(stream, "{}", body);
        n += make_frame(stream + n, "{\"next\":1}", NULL);
        for (size_t i = 0; i < 2; i++) {
                struct frame_reader r;
                struct frame_view v;
                uint8_t *own;

                frame_reader_init(&r, 0, 0);
                r.own_min = 4096;
                r.own_reserve_max = reserve_max[i];
                r.headroom = 100;
                feed_own(&r, stream, n, 1000, &v, &own);
                ck_assert_ptr_nonnull(own);
                ck_assert_uint_ge((size_t) (v.data - own), 100);
                ck_assert_uint_eq(v.prefix.body_len, strlen(body));
                ck_assert_int_eq(v.data[v.size], '\0');
                ck_assert_int_eq(memcmp(v.body, body, strlen(body)), 0);
                /* the small frame after it was not read into its buffer */
                ck_assert_uint_eq(frame_reader_pending(&r), 0);
                free(own);
                feed_own(&r, stream + v.size, n - v.size, 1000, &v, &own);
                ck_assert_ptr_null(own);
                ck_assert_int_eq(memcmp(v.header, "{\"next\":1}", 10), 0);
                frame_reader_deinit(&r);
        }
}
END_TEST

START_TEST(test_reader_own_reserve)
{
        /* Up to own_reserve_max a large frame's prefix reserves its buffer, and
         * the reader says it holds that much; past it, only what arrived. */
        const size_t announce[] = {20000, 200000};
        uint8_t p[16];

        for (size_t i = 0; i < 2; i++) {
                struct frame_reader r;
                uint8_t *space;
                size_t size;

                frame_reader_init(&r, 0, 0);
                r.own_min = 4096;
                r.own_reserve_max = 65536;
                frame_prefix_encode(p, 2, (uint32_t) announce[i] - 18, 0);
                ck_assert_int_eq(frame_reader_space(&r, sizeof(p), &space, &size), 0);
                memcpy(space, p, sizeof(p));
                frame_reader_commit(&r, sizeof(p));
                ck_assert_int_eq(frame_reader_space(&r, 4096, &space, &size), 0);
                if (i == 0) {
                        ck_assert_uint_eq(frame_reader_held(&r), announce[0]);
                        ck_assert_uint_eq(size, announce[0] - sizeof(p));
                } else {
                        ck_assert_uint_eq(frame_reader_held(&r), sizeof(p));
                        ck_assert_uint_lt(r.size, 16384);
                }
                frame_reader_deinit(&r);
        }
}
END_TEST

START_TEST(test_reader_own_not_alone)
{
        /* A large frame read together with the next one's bytes stays in the
         * reader's buffer (the caller copies it). */
        static uint8_t stream[20000];
        static char body[10000];
        struct frame_reader r;
        struct frame_view v;
        uint8_t *own;
        size_t n;

        memset(body, 'b', sizeof(body) - 1);
        body[0] = '"';
        body[sizeof(body) - 2] = '"';
        n = make_frame(stream, "{}", body);
        n += make_frame(stream + n, "{}", NULL);
        frame_reader_init(&r, 0, 0);
        r.own_min = 4096;
        r.headroom = 100;
        feed_own(&r, stream, n, n, &v, &own);
        ck_assert_ptr_null(own);
        ck_assert_ptr_null(v.owned);
        ck_assert_uint_eq(v.prefix.body_len, strlen(body));
        frame_reader_deinit(&r);
}
END_TEST

static Suite *frame_suite(void)
{
        Suite *s = suite_create("protocol_frame");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_prefix_roundtrip);
        tcase_add_test(tc, test_prefix_errors);
        tcase_add_test(tc, test_reader_chunks);
        tcase_add_test(tc, test_reader_views);
        tcase_add_test(tc, test_reader_garbage);
        tcase_add_test(tc, test_reader_limits);
        tcase_add_test(tc, test_reader_large);
        tcase_add_test(tc, test_reader_grows_by_arrival);
        tcase_add_test(tc, test_reader_own_large);
        tcase_add_test(tc, test_reader_own_reserve);
        tcase_add_test(tc, test_reader_own_not_alone);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return check_run(frame_suite());
}
