/* SPDX-License-Identifier: MIT */
/*
 * Bodies in sealed memfds in libipcbus (PROTOCOL.md 14), without a broker:
 * what memfd_body_outgoing makes of a message (a sealed file, the frame's
 * last descriptor, no body in the frame), and what memfd_body_incoming does
 * with one that arrives, mapped or read with pread (the fallback gives the
 * same body), and with every file that breaks the rules.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <json-c/json.h>

#include "libclient/bus-internal.h"
#include "libclient/memfd.h"
#include "protocol/frame.h"
#include "protocol/ipcbus/wire.h"
#include "protocol/message.h"
#include "tests/check-run.h"

/* A call with body text, built as the library builds one. */
static struct msg *call_with(const char *body, const int *fds, unsigned n_fds)
{
        struct msg_header h;
        struct msg *m = NULL;
        int dups[IPCBUS_FDS_MAX];

        msg_header_init(&h);
        h.type = MSG_CALL;
        h.serial = 7;
        h.destination = ":1.9";
        h.path = "/a";
        h.member = "Big";
        for (unsigned i = 0; i < n_fds; i++)
                dups[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
        ck_assert_int_eq(msg_build_fds(&h, body, body ? strlen(body) : 0, dups, n_fds, 0, &m), 0);
        return m;
}

/* What a receiver makes of m's frame: parsed as the broker's, with duplicates of its descriptors. */
static struct msg *received(const struct msg *m)
{
        struct frame_view v = {.data = m->data, .size = m->size};
        int fds[IPCBUS_FDS_MAX];
        struct msg *r = NULL;

        ck_assert_int_eq(frame_prefix_decode(m->data, 0, 0, &v.prefix), 0);
        v.header = (const char *) m->data + IPCBUS_FRAME_PREFIX_SIZE;
        v.body = v.prefix.body_len ? v.header + v.prefix.header_len : NULL;
        for (unsigned i = 0; i < m->n_fds; i++)
                fds[i] = fcntl(m->fds[i], F_DUPFD_CLOEXEC, 3);
        ck_assert_int_eq(msg_parse(&v, NULL, MSG_PARSE_FROM_BROKER, m->n_fds ? fds : NULL, &r, NULL, NULL), 0);
        return r;
}

/* {"data":"<n bytes of text>","end":"é"}, malloc'd. */
static char *big_body(size_t n)
{
        char *s = malloc(n + 64);
        size_t len;

        strcpy(s, "{\"data\":\"");
        len = strlen(s);
        for (size_t i = 0; i < n; i++)
                s[len++] = (char) ('a' + i % 26);
        strcpy(s + len, "\",\"end\":\"\xc3\xa9\"}");
        return s;
}

START_TEST(test_outgoing_below_threshold)
{
        struct msg *m = call_with("{\"a\":1}", NULL, 0), *out = NULL;

        ck_assert_int_eq(memfd_body_outgoing(m, 8, &out), 0);
        ck_assert_int_eq(memfd_body_outgoing(m, 0, &out), 0); /* 0: never */
        ck_assert_int_eq(memfd_body_outgoing(m, 7, &out), 1);
        msg_unref(out);
        msg_unref(m);
}
END_TEST

START_TEST(test_outgoing_frame)
{
        char *body = big_body(300000);
        int pipe_fds[2];
        struct msg *m, *out = NULL;
        int seals;
        char *text;

        ck_assert_int_eq(pipe2(pipe_fds, O_CLOEXEC), 0);
        m = call_with(body, pipe_fds, 1);
        ck_assert_int_eq(memfd_body_outgoing(m, 1000, &out), 1);
        /* the frame: no body, the memfd last, the other descriptors where they were */
        ck_assert_uint_eq(out->body_len, 0);
        ck_assert_ptr_null(out->body);
        ck_assert_uint_eq(out->n_fds, 2);
        ck_assert_uint_eq(out->h.body_fd, 1);
        ck_assert_uint_eq(out->h.body_size, strlen(body));
        ck_assert_uint_eq(out->h.serial, 7);
        ck_assert_str_eq(out->h.member, "Big");
        ck_assert_ptr_nonnull(memmem(out->header, out->header_len, "\"body_fd\":1,\"body_size\":", 24));
        /* the file: sealed for good, the text and its NUL */
        seals = fcntl(out->fds[1], F_GET_SEALS);
        ck_assert_int_eq(seals & (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
                         F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
        ck_assert_int_eq(lseek(out->fds[1], 0, SEEK_END), (off_t) strlen(body) + 1);
        text = mmap(NULL, strlen(body) + 1, PROT_READ, MAP_SHARED, out->fds[1], 0);
        ck_assert_ptr_ne(text, MAP_FAILED);
        ck_assert_str_eq(text, body);
        munmap(text, strlen(body) + 1);
        /* the message as it was built stays as it was */
        ck_assert_uint_eq(m->body_len, strlen(body));
        ck_assert_uint_eq(m->n_fds, 1);
        msg_unref(out);
        msg_unref(m);
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        free(body);
}
END_TEST

START_TEST(test_outgoing_not_eligible)
{
        char *body = big_body(5000);
        int fds[IPCBUS_FDS_MAX], null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        struct msg_header h;
        struct msg *m = NULL, *out = NULL;

        for (unsigned i = 0; i < IPCBUS_FDS_MAX; i++)
                fds[i] = null_fd;
        /* no room for one more descriptor */
        m = call_with(body, fds, IPCBUS_FDS_MAX);
        ck_assert_int_eq(memfd_body_outgoing(m, 100, &out), 0);
        msg_unref(m);
        /* the driver reads no body in a memfd */
        msg_header_init(&h);
        h.type = MSG_CALL;
        h.serial = 1;
        h.destination = IPCBUS_DRIVER_NAME;
        h.path = IPCBUS_DRIVER_PATH;
        h.member = "UpdateActivationEnvironment";
        ck_assert_int_eq(msg_build(&h, body, strlen(body), &m), 0);
        ck_assert_int_eq(memfd_body_outgoing(m, 100, &out), 0);
        msg_unref(m);
        /* nor does an error's body go */
        msg_header_init(&h);
        h.type = MSG_ERROR;
        h.serial = 2;
        h.reply_serial = 1;
        h.error_name = "org.example.Error";
        ck_assert_int_eq(msg_build(&h, "{\"message\":\"long enough to go, were it not an error\"}", 53, &m), 0);
        ck_assert_int_eq(memfd_body_outgoing(m, 10, &out), 0);
        msg_unref(m);
        close(null_fd);
        free(body);
}
END_TEST

/* Send m's body through a memfd and receive it, mapped or read; returns the received message. */
static struct msg *round_trip(struct msg *m, enum memfd_read how)
{
        struct msg *out = NULL, *in;

        ck_assert_int_eq(memfd_body_outgoing(m, 1, &out), 1);
        in = received(out);
        msg_unref(out);
        ck_assert_int_eq(memfd_body_incoming(in, how), 0);
        return in;
}

START_TEST(test_incoming_map_and_pread)
{
        char *body = big_body(1 << 20);
        int pipe_fds[2];
        struct msg *m, *mapped, *read;

        ck_assert_int_eq(pipe2(pipe_fds, O_CLOEXEC), 0);
        m = call_with(body, &pipe_fds[1], 1);
        mapped = round_trip(m, MEMFD_READ_MAP);
        read = round_trip(m, MEMFD_READ_PREAD);
        /* the same body either way, the memfd gone from the descriptors, the others kept */
        ck_assert_uint_eq(mapped->body_len, strlen(body));
        ck_assert_str_eq(mapped->body, body);
        ck_assert_uint_eq(read->body_len, strlen(body));
        ck_assert_str_eq(read->body, body);
        ck_assert_uint_eq(mapped->n_fds, 1);
        ck_assert_uint_eq(read->n_fds, 1);
        ck_assert_int_ge(fcntl(mapped->fds[0], F_GETFD), 0);
        ck_assert_int_eq(write(mapped->fds[0], "x", 1), 1); /* the pipe's write end, still usable */
        /* the body's members read as any body's */
        ck_assert_str_eq(msg_get_arg(mapped, "end"), "\xc3\xa9");
        ck_assert_str_eq(msg_get_arg(read, "end"), "\xc3\xa9");
        ck_assert_uint_eq(strlen(msg_get_arg(read, "data")), 1 << 20);
        msg_unref(mapped);
        msg_unref(read);
        msg_unref(m);
        close(pipe_fds[0]);
        close(pipe_fds[1]);
        free(body);
}
END_TEST

/* A received call whose body_fd (its only descriptor) is fd, announcing body_size. */
static struct msg *arriving(int fd, uint32_t body_size)
{
        char header[256];
        struct msg *m = NULL;
        struct frame_view v = {0};
        static uint8_t buf[512];
        size_t hl;

        hl = (size_t) snprintf(header, sizeof(header),
                               "{\"type\":\"call\",\"serial\":3,\"path\":\"/\",\"member\":\"M\",\"body_fd\":0,"
                               "\"body_size\":%u}",
                               body_size);
        frame_prefix_encode(buf, (uint32_t) hl, 0, 1);
        memcpy(buf + 16, header, hl);
        v.data = buf;
        v.size = 16 + hl;
        ck_assert_int_eq(frame_prefix_decode(buf, 0, 0, &v.prefix), 0);
        v.header = (const char *) buf + 16;
        ck_assert_int_eq(msg_parse(&v, NULL, MSG_PARSE_FROM_BROKER, &fd, &m, NULL, NULL), 0);
        return m;
}

/* A memfd holding len bytes of data, with `seals` added. */
static int memfd_of(const void *data, size_t len, int seals)
{
        int fd = memfd_create("test", MFD_CLOEXEC | MFD_ALLOW_SEALING);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, data, len), (ssize_t) len);
        if (seals)
                ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, seals), 0);
        return fd;
}

#define SEALED (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW)

static const struct {
        const char *what;
        const char *data;
        size_t len;
        int seals;
        uint32_t body_size;
        int want;
} incoming_cases[] = {
        {"good", "{\"a\":1}\0", 8, SEALED, 7, 0},
        {"good, with a binary area", "{\"a\":1}\0\x01\x02", 10, SEALED, 7, 0},
        {"no seals", "{\"a\":1}\0", 8, 0, 7, MEMFD_BODY_E_INVALID},
        {"not sealed against writing", "{\"a\":1}\0", 8, F_SEAL_SHRINK | F_SEAL_GROW, 7, MEMFD_BODY_E_INVALID},
        {"not sealed against growing", "{\"a\":1}\0", 8, F_SEAL_WRITE | F_SEAL_SHRINK, 7, MEMFD_BODY_E_INVALID},
        {"shorter than body_size and its NUL", "{\"a\":1}", 7, SEALED, 7, MEMFD_BODY_E_INVALID},
        {"no NUL after the text", "{\"a\":1}xx", 9, SEALED, 7, MEMFD_BODY_E_INVALID},
        {"not JSON", "{\"a\":}\0", 7, SEALED, 6, MEMFD_BODY_E_INVALID},
        {"not an object", "[1,2]\0", 6, SEALED, 5, MEMFD_BODY_E_INVALID},
        {"a NUL inside the text", "{\"a\"\0:1}\0", 9, SEALED, 8, MEMFD_BODY_E_INVALID},
};

START_TEST(test_incoming_rules)
{
        for (int map = 0; map <= 1; map++) {
                enum memfd_read how = map ? MEMFD_READ_MAP : MEMFD_READ_PREAD;
                int fd = memfd_of(incoming_cases[_i].data, incoming_cases[_i].len, incoming_cases[_i].seals);
                struct msg *m = arriving(fd, incoming_cases[_i].body_size);
                int r = memfd_body_incoming(m, how);

                ck_assert_msg(r == incoming_cases[_i].want, "%s (%s): got %d, want %d", incoming_cases[_i].what,
                              map ? "mapped" : "read", r, incoming_cases[_i].want);
                /* the descriptor is taken either way */
                ck_assert_uint_eq(m->n_fds, 0);
                ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
                if (r == 0) {
                        ck_assert_uint_eq(m->body_len, incoming_cases[_i].body_size);
                        ck_assert_int_eq(memcmp(m->body, incoming_cases[_i].data, m->body_len), 0);
                } else {
                        ck_assert_ptr_null(m->body);
                }
                msg_unref(m);
        }
}
END_TEST

START_TEST(test_incoming_pipe)
{
        int p[2];
        struct msg *m;

        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        ck_assert_int_eq(write(p[1], "{}", 3), 3);
        m = arriving(p[0], 2);
        ck_assert_int_eq(memfd_body_incoming(m, MEMFD_READ_AUTO), MEMFD_BODY_E_INVALID);
        msg_unref(m);
        close(p[1]);
}
END_TEST

START_TEST(test_threshold_env)
{
        unsetenv("IPCBUS_MEMFD_THRESHOLD");
        ck_assert_uint_eq(memfd_body_threshold(), MEMFD_BODY_THRESHOLD_DEFAULT);
        setenv("IPCBUS_MEMFD_THRESHOLD", "0", 1);
        ck_assert_uint_eq(memfd_body_threshold(), 0);
        setenv("IPCBUS_MEMFD_THRESHOLD", "4096", 1);
        ck_assert_uint_eq(memfd_body_threshold(), 4096);
        setenv("IPCBUS_MEMFD_THRESHOLD", "lots", 1);
        ck_assert_uint_eq(memfd_body_threshold(), MEMFD_BODY_THRESHOLD_DEFAULT);
        setenv("IPCBUS_MEMFD_THRESHOLD", "-1", 1);
        ck_assert_uint_eq(memfd_body_threshold(), MEMFD_BODY_THRESHOLD_DEFAULT);
        unsetenv("IPCBUS_MEMFD_THRESHOLD");
}
END_TEST

/* ---- bytes apart (PROTOCOL.md 14.5) ---- */

static const struct {
        const char *json;
        int want;
        uint64_t offset, length;
} refs[] = {
        {"{\"$bytes\":[0,5]}", 0, 0, 5},
        {"{\"$bytes\": [ 7 , 0 ] }", 0, 7, 0},
        {"{\"$bytes\":[0,5],\"x\":1}", -EBADMSG, 0, 0},
        {"{\"$bytes\":[0]}", -EBADMSG, 0, 0},
        {"{\"$bytes\":[0,1,2]}", -EBADMSG, 0, 0},
        {"{\"$bytes\":[-1,2]}", -EBADMSG, 0, 0},
        {"{\"$bytes\":[\"0\",2]}", -EBADMSG, 0, 0},
        {"{\"$bytes\":[1.0,2]}", -EBADMSG, 0, 0},
        {"{\"$bytes\":{}}", -EBADMSG, 0, 0},
        {"{\"bytes\":[0,5]}", -EBADMSG, 0, 0},
        {"[0,5]", -EBADMSG, 0, 0},
};

START_TEST(test_bytes_parse)
{
        struct json_object *v = json_tokener_parse(refs[_i].json);
        uint64_t offset = 99, length = 99;

        ck_assert_ptr_nonnull(v);
        ck_assert_int_eq(memfd_bytes_parse(v, &offset, &length), refs[_i].want);
        if (refs[_i].want == 0) {
                ck_assert_uint_eq(offset, refs[_i].offset);
                ck_assert_uint_eq(length, refs[_i].length);
        }
        json_object_put(v);
}
END_TEST

/* {"a":1,"b":BLOB1,"c":[BLOB2]} with two blobs of 5000 and 6000 bytes, built by threshold. */
static struct msg *build_with_blobs(size_t threshold, uint8_t *blob1, uint8_t *blob2)
{
        struct memfd_blobs *blobs = NULL;
        struct jbuf text;
        struct msg_header h;
        struct msg *m = NULL;

        for (size_t i = 0; i < 5000; i++)
                blob1[i] = (uint8_t) i;
        for (size_t i = 0; i < 6000; i++)
                blob2[i] = (uint8_t) (255 - i % 251);
        jbuf_init(&text);
        jbuf_puts(&text, "{\"a\":1,\"b\":");
        ck_assert_int_eq(memfd_blobs_add(&blobs, text.len, blob1, 5000), 0);
        jbuf_puts(&text, ",\"c\":[");
        ck_assert_int_eq(memfd_blobs_add(&blobs, text.len, blob2, 6000), 0);
        jbuf_puts(&text, "]}");
        msg_header_init(&h);
        h.type = MSG_SIGNAL;
        h.serial = 4;
        h.path = "/a";
        h.interface = "org.example.I";
        h.member = "Blobs";
        ck_assert_int_eq(memfd_blobs_build(blobs, threshold, &h, text.data, text.len, NULL, 0, &m), 0);
        memfd_blobs_free(blobs);
        jbuf_deinit(&text);
        return m;
}

START_TEST(test_blobs_raw)
{
        uint8_t blob1[5000], blob2[6000], file[11100];
        const void *p = NULL;
        struct msg *m = build_with_blobs(1000, blob1, blob2), *in;
        const char *text = "{\"a\":1,\"b\":{\"$bytes\":[0,5000]},\"c\":[{\"$bytes\":[5000,6000]}]}";
        size_t len = strlen(text);

        /* the frame: the memfd, no body; the sender reads its own message as a receiver would */
        ck_assert_uint_eq(m->n_fds, 1);
        ck_assert_uint_eq(m->h.body_fd, 0);
        ck_assert_uint_eq(m->h.body_size, len);
        ck_assert_str_eq(m->body, text);
        ck_assert_int_eq(memfd_bytes_ref(m, 5000, 6000, &p), 0);
        ck_assert_int_eq(memcmp(p, blob2, 6000), 0);
        ck_assert_int_eq(memfd_bytes_ref(m, 5000, 6001, &p), -ERANGE);
        ck_assert_int_eq(memfd_bytes_ref(m, 11001, 0, &p), -ERANGE);
        /* the file: the text, its NUL, the blobs one after the other */
        ck_assert_int_eq(pread(m->fds[0], file, sizeof(file), 0), (ssize_t) (len + 1 + 11000));
        ck_assert_int_eq(memcmp(file, text, len + 1), 0);
        ck_assert_int_eq(memcmp(file + len + 1, blob1, 5000), 0);
        ck_assert_int_eq(memcmp(file + len + 1 + 5000, blob2, 6000), 0);
        /* and a receiver finds them where the references say */
        in = received(m);
        ck_assert_int_eq(memfd_body_incoming(in, MEMFD_READ_PREAD), 0);
        ck_assert_int_eq(memfd_bytes_ref(in, 0, 5000, &p), 0);
        ck_assert_int_eq(memcmp(p, blob1, 5000), 0);
        ck_assert_ptr_eq(p, in->body + len + 1);
        msg_unref(in);
        msg_unref(m);
}
END_TEST

START_TEST(test_blobs_base64)
{
        uint8_t blob1[5000], blob2[6000];
        const void *p = NULL;
        struct jbuf want;
        struct msg *m;

        jbuf_init(&want);
        {
                /* 0: never by memfd, even with 11000 bytes of blobs */
                m = build_with_blobs(0, blob1, blob2);
                jbuf_reset(&want);
                jbuf_puts(&want, "{\"a\":1,\"b\":");
                value_base64_put(&want, blob1, 5000);
                jbuf_puts(&want, ",\"c\":[");
                value_base64_put(&want, blob2, 6000);
                jbuf_puts(&want, "]}");
                ck_assert_uint_eq(m->n_fds, 0);
                ck_assert_uint_eq(m->h.body_size, 0);
                ck_assert_uint_eq(m->body_len, want.len);
                ck_assert_int_eq(memcmp(m->body, want.data, want.len), 0);
                ck_assert_int_eq(memfd_bytes_ref(m, 0, 1, &p), -ENXIO);
                msg_unref(m);
        }
        /* a threshold above the body's size in base64 (about 14.7 KB), but 11000 bytes of blobs: by memfd */
        m = build_with_blobs(1u << 20, blob1, blob2);
        ck_assert_uint_eq(m->n_fds, 1);
        msg_unref(m);
        jbuf_deinit(&want);
}
END_TEST

/* One blob of n bytes, {"v":BLOB}: by memfd only from the threshold, below MEMFD_BLOBS_BY_MEMFD. */
START_TEST(test_blobs_small)
{
        static uint8_t blob[MEMFD_BLOBS_BY_MEMFD];
        struct memfd_blobs *blobs = NULL;
        const char *text = "{\"v\":}";
        struct msg_header h;
        struct msg *m = NULL;

        msg_header_init(&h);
        h.type = MSG_CALL;
        h.serial = 5;
        h.destination = ":1.3";
        h.path = "/";
        h.member = "M";
        ck_assert_int_eq(memfd_blobs_add(&blobs, 5, blob, MEMFD_BLOBS_BY_MEMFD - 1), 0);
        /* base64: 4 * 2731 + 2 quotes + 6 = 10932 bytes */
        ck_assert_int_eq(memfd_blobs_build(blobs, 10933, &h, text, strlen(text), NULL, 0, &m), 0);
        ck_assert_uint_eq(m->n_fds, 0);
        msg_unref(m);
        ck_assert_int_eq(memfd_blobs_build(blobs, 10932, &h, text, strlen(text), NULL, 0, &m), 0);
        ck_assert_uint_eq(m->n_fds, 1);
        msg_unref(m);
        memfd_blobs_free(blobs);
        blobs = NULL;
        /* as many bytes as MEMFD_BLOBS_BY_MEMFD: by memfd whatever the threshold, but 0 (the message by memfd
         * took the bytes over: the blobs are only to be freed then) */
        ck_assert_int_eq(memfd_blobs_add(&blobs, 5, blob, MEMFD_BLOBS_BY_MEMFD), 0);
        ck_assert_int_eq(memfd_blobs_build(blobs, 1u << 30, &h, text, strlen(text), NULL, 0, &m), 0);
        ck_assert_uint_eq(m->n_fds, 1);
        msg_unref(m);
        memfd_blobs_free(blobs);
        blobs = NULL;
        ck_assert_int_eq(memfd_blobs_add(&blobs, 5, blob, MEMFD_BLOBS_BY_MEMFD), 0);
        ck_assert_int_eq(memfd_blobs_build(blobs, 0, &h, text, strlen(text), NULL, 0, &m), 0);
        ck_assert_uint_eq(m->n_fds, 0);
        msg_unref(m);
        memfd_blobs_free(blobs);
}
END_TEST

static Suite *memfd_suite(void)
{
        Suite *s = suite_create("client_memfd");
        TCase *tc = tcase_create("memfd");

        tcase_add_test(tc, test_outgoing_below_threshold);
        tcase_add_test(tc, test_outgoing_frame);
        tcase_add_test(tc, test_outgoing_not_eligible);
        tcase_add_test(tc, test_incoming_map_and_pread);
        tcase_add_loop_test(tc, test_incoming_rules, 0, (int) (sizeof(incoming_cases) / sizeof(*incoming_cases)));
        tcase_add_test(tc, test_incoming_pipe);
        tcase_add_test(tc, test_threshold_env);
        tcase_add_loop_test(tc, test_bytes_parse, 0, (int) (sizeof(refs) / sizeof(*refs)));
        tcase_add_test(tc, test_blobs_raw);
        tcase_add_test(tc, test_blobs_base64);
        tcase_add_test(tc, test_blobs_small);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return check_run(memfd_suite());
}
