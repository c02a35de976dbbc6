/* SPDX-License-Identifier: MIT */
/* testbus: raw sockets and frames. */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "tests/lib/raw.h"
#include "tests/lib/internal.h"
#include "tests/lib/json.h"
#include "util/fdpass.h"

int testbus_raw_connect(struct testbus *tb)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
        ck_assert_uint_lt(strlen(tb->socket_path), sizeof(sa.sun_path));
        strcpy(sa.sun_path, tb->socket_path);
        ck_assert_msg(connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0, "connect(%s): %s", tb->socket_path,
                      strerror(errno));
        return fd;
}

int testbus_raw_connect_as(struct testbus *tb, const struct testbus_cred *cred)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct saved_cred s;
        int fd, r, err;

        ck_assert_uint_lt(strlen(tb->socket_path), sizeof(sa.sun_path));
        strcpy(sa.sun_path, tb->socket_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
        cred_enter(tb, cred, &s);
        r = connect(fd, (struct sockaddr *) &sa, sizeof(sa));
        err = errno;
        cred_leave(&s);
        ck_assert_msg(r == 0, "connect(%s) as uid %u: %s", tb->socket_path, (unsigned) cred->uid, strerror(err));
        return fd;
}

int testbus_raw_write(int fd, const void *data, size_t len)
{
        const uint8_t *p = data;

        while (len) {
                ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

void testbus_raw_send(int fd, const void *data, size_t len)
{
        int r = testbus_raw_write(fd, data, len);

        ck_assert_msg(r == 0, "send: %s", strerror(-r));
}

static void put_le32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t) v;
        p[1] = (uint8_t) (v >> 8);
        p[2] = (uint8_t) (v >> 16);
        p[3] = (uint8_t) (v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

void testbus_raw_prefix(uint8_t out[16], uint32_t header_len, uint32_t body_len, uint16_t n_fds)
{
        memcpy(out, "IPCB", 4);
        out[4] = 1; /* version */
        out[5] = 0; /* reserved */
        out[6] = (uint8_t) n_fds;
        out[7] = (uint8_t) (n_fds >> 8);
        put_le32(out + 8, header_len);
        put_le32(out + 12, body_len);
}

void testbus_raw_send_frame(int fd, const char *header, const char *body)
{
        size_t hl = strlen(header), bl = body ? strlen(body) : 0;
        uint8_t *frame = malloc(16 + hl + bl);

        ck_assert_ptr_nonnull(frame);
        testbus_raw_prefix(frame, (uint32_t) hl, (uint32_t) bl, 0);
        memcpy(frame + 16, header, hl);
        if (bl)
                memcpy(frame + 16 + hl, body, bl);
        testbus_raw_send(fd, frame, 16 + hl + bl);
        free(frame);
}

int testbus_raw_send_frame_fds(int fd, const char *header, const char *body, const int *fds, unsigned n)
{
        return testbus_raw_send_frame_announcing(fd, header, body, (uint16_t) n, fds, n);
}

int testbus_raw_send_frame_announcing(int fd, const char *header, const char *body, uint16_t announce, const int *fds,
                                      unsigned n)
{
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * 64)];
        } control;
        size_t hl = strlen(header), bl = body ? strlen(body) : 0, len = 16 + hl + bl, off = 0;
        uint8_t *frame = malloc(len);
        int r = 0;

        /* No Check assertion here: forked children use it too, and Check's
         * bookkeeping would write into whatever descriptor its pipe had. */
        if (!frame || n > 64) {
                free(frame);
                return -EINVAL;
        }
        testbus_raw_prefix(frame, (uint32_t) hl, (uint32_t) bl, announce);
        memcpy(frame + 16, header, hl);
        if (bl)
                memcpy(frame + 16 + hl, body, bl);
        while (off < len) {
                struct iovec iov = {.iov_base = frame + off, .iov_len = len - off};
                struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
                ssize_t w;

                if (off == 0 && n > 0)
                        fdpass_attach(&mh, control.buf, fds, n);
                w = sendmsg(fd, &mh, MSG_NOSIGNAL);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0) {
                        r = -errno;
                        break;
                }
                off += (size_t) w;
        }
        free(frame);
        return r;
}

/* Read exactly len bytes. 1, 0 at EOF before the first byte, -EPROTO at EOF after it, -ETIMEDOUT, -errno. */
static int read_exact(int fd, void *buf, size_t len, int64_t deadline)
{
        uint8_t *p = buf;
        size_t got = 0;

        while (got < len) {
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                ssize_t n;
                int r = poll(&pfd, 1, ms_left(deadline));

                if (r < 0 && errno == EINTR)
                        continue;
                if (r == 0)
                        return -ETIMEDOUT;
                n = recv(fd, p + got, len - got, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return got ? -EPROTO : 0;
                got += (size_t) n;
        }
        return 1;
}

int testbus_raw_recv(int fd, int timeout_ms, struct testbus_frame *ret)
{
        int64_t deadline = testbus_now_ms() + timeout_ms;
        struct testbus_frame f = {0};
        uint8_t prefix[16];
        int r;

        r = read_exact(fd, prefix, sizeof(prefix), deadline);
        if (r <= 0)
                return r;
        ck_assert_msg(memcmp(prefix, "IPCB", 4) == 0 && prefix[4] == 1 && prefix[5] == 0,
                      "broker sent a bad frame prefix");
        /* A frame that has begun gets the time a large one takes to come whole. */
        if (deadline < testbus_now_ms() + (int64_t) TESTBUS_WAIT_MS * testbus_slow_factor())
                deadline = testbus_now_ms() + (int64_t) TESTBUS_WAIT_MS * testbus_slow_factor();
        f.header_len = get_le32(prefix + 8);
        f.body_len = get_le32(prefix + 12);
        ck_assert_msg(f.header_len >= 2 && f.header_len <= IPCBUS_HEADER_MAX && f.body_len <= IPCBUS_BODY_MAX,
                      "broker sent a frame with header_len %zu, body_len %zu", f.header_len, f.body_len);
        f.header = malloc(f.header_len + 1);
        ck_assert_ptr_nonnull(f.header);
        r = read_exact(fd, f.header, f.header_len, deadline);
        ck_assert_msg(r == 1, "truncated frame header from the broker (%d)", r);
        f.header[f.header_len] = '\0';
        f.h = testbus_json(f.header, f.header_len);
        ck_assert_msg(json_object_is_type(f.h, json_type_object), "header is not an object: %s", f.header);
        if (f.body_len) {
                f.body = malloc(f.body_len + 1);
                ck_assert_ptr_nonnull(f.body);
                r = read_exact(fd, f.body, f.body_len, deadline);
                ck_assert_msg(r == 1, "truncated frame body from the broker (%d)", r);
                f.body[f.body_len] = '\0';
                f.b = testbus_json(f.body, f.body_len);
        }
        *ret = f;
        return 1;
}

void testbus_frame_deinit(struct testbus_frame *f)
{
        free(f->header);
        free(f->body);
        json_object_put(f->h);
        json_object_put(f->b);
        *f = (struct testbus_frame){0};
}

const char *testbus_frame_string(struct testbus_frame *f, const char *field)
{
        json_object *v;

        if (!json_object_object_get_ex(f->h, field, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

int64_t testbus_frame_int(struct testbus_frame *f, const char *field)
{
        json_object *v;

        if (!json_object_object_get_ex(f->h, field, &v) || !json_object_is_type(v, json_type_int))
                return -1;
        return json_object_get_int64(v);
}

static bool frame_is_signal(struct testbus_frame *f)
{
        const char *t = testbus_frame_string(f, "type");

        return t && strcmp(t, "signal") == 0;
}

char *testbus_raw_hello(int fd)
{
        struct testbus_frame f;
        char *name;

        testbus_raw_send_frame(fd,
                               "{\"type\":\"call\",\"serial\":1,\"destination\":\"org.ipcbus.Bus\","
                               "\"path\":\"/org/ipcbus/Bus\",\"interface\":\"org.ipcbus.Bus\",\"member\":\"Hello\"}",
                               NULL);
        testbus_raw_expect_reply(fd, 1, NULL, &f);
        name = strdup(testbus_json_string(f.b, "name"));
        testbus_frame_deinit(&f);
        return name;
}

void testbus_raw_expect_reply(int fd, uint32_t reply_serial, const char *error_name, struct testbus_frame *ret)
{
        struct testbus_frame f;
        const char *type, *error;

        for (;;) {
                int r = testbus_raw_recv(fd, TESTBUS_WAIT_MS, &f);

                ck_assert_msg(r == 1, "expected %s answering serial %u, got %s", error_name ? error_name : "a return",
                              reply_serial, r == 0 ? "EOF" : strerror(-r));
                if (!frame_is_signal(&f))
                        break;
                testbus_frame_deinit(&f);
        }
        type = testbus_frame_string(&f, "type");
        error = testbus_frame_string(&f, "error");
        ck_assert_msg(type && strcmp(type, error_name ? "error" : "return") == 0, "expected %s, got %s %s",
                      error_name ? error_name : "a return", f.header, f.body ? f.body : "");
        if (error_name)
                ck_assert_msg(error && strcmp(error, error_name) == 0, "expected %s, got %s %s", error_name, f.header,
                              f.body ? f.body : "");
        if (reply_serial)
                ck_assert_msg(testbus_frame_int(&f, "reply_serial") == reply_serial,
                              "expected an answer to serial %u, got %s", reply_serial, f.header);
        else
                ck_assert_msg(testbus_frame_int(&f, "reply_serial") == -1, "expected no reply_serial: %s", f.header);
        if (ret)
                *ret = f;
        else
                testbus_frame_deinit(&f);
}

void testbus_raw_expect_eof(int fd)
{
        struct testbus_frame f;
        int r;

        while ((r = testbus_raw_recv(fd, TESTBUS_WAIT_MS, &f)) == 1) {
                ck_assert_msg(frame_is_signal(&f), "expected the connection to close, got %s %s", f.header,
                              f.body ? f.body : "");
                testbus_frame_deinit(&f);
        }
        ck_assert_msg(r == 0 || r == -ECONNRESET, "expected the connection to close, got %s",
                      r == -ETIMEDOUT ? "nothing (still open)" : strerror(-r));
}

char *testbus_raw_expect_refused(int fd, const char *error_name)
{
        struct testbus_frame f;
        json_object *v = NULL;
        char *message;

        testbus_raw_expect_reply(fd, 0, error_name, &f);
        ck_assert_msg(f.b && json_object_object_get_ex(f.b, "message", &v) && json_object_is_type(v, json_type_string),
                      "%s without a message: %s", error_name, f.body ? f.body : "(no body)");
        message = strdup(json_object_get_string(v));
        ck_assert_ptr_nonnull(message);
        testbus_frame_deinit(&f);
        testbus_raw_expect_eof(fd);
        return message;
}

bool testbus_text_names(const char *text, const char *word)
{
        size_t n = strlen(word);

        for (const char *p = text; text && (p = strstr(p, word)); p++) {
                char before = p > text ? p[-1] : ' ', after = p[n];

                if (!(before == '_' || (before >= 'a' && before <= 'z')) &&
                    !(after == '_' || (after >= 'a' && after <= 'z')))
                        return true;
        }
        return false;
}

void testbus_raw_ping(int fd, uint32_t serial)
{
        struct testbus_frame f;
        char header[256];

        snprintf(header, sizeof(header),
                 "{\"type\":\"call\",\"serial\":%u,\"destination\":\"org.ipcbus.Bus\",\"path\":\"/org/ipcbus/Bus\","
                 "\"member\":\"Ping\"}",
                 serial);
        testbus_raw_send_frame(fd, header, NULL);
        testbus_raw_expect_reply(fd, serial, NULL, &f);
        testbus_frame_deinit(&f);
}
