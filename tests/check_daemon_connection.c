/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for daemon/transport/connection over a socketpair and a real libevent
 * base. The test holds the other end of the pair and plays the peer: it
 * writes frames (built with msg_build) in any split, with or without
 * SCM_RIGHTS, and reads back what the connection writes. Checked: frames are
 * handed over whole and in order however the bytes arrive, descriptors reach
 * the frame that announced them (both ways) and still work, a descriptor
 * count that disagrees is a framing error, queued messages are written in
 * order (also through a full socket), close-after-flush delivers the queue,
 * and a hang-up is reported with its reason.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon/transport/connection.h"
#include "protocol/ipcbus/wire.h"
#include "protocol/message.h"
#include "protocol/proto-error.h"
#include "tests/check-run.h"
#include "util/fdpass.h"
#include "util/util.h"

#define MAX_FRAMES 512
#define WAIT_MS 5000

/* What the connection handed to its owner. */
struct got_frame {
        uint8_t *data;
        size_t size;
        struct frame_prefix prefix;
        int fds[IPCBUS_FDS_MAX];
};

/* What the test's end of the socket received: bytes, and where descriptors came. */
struct peer_fds {
        size_t start; /* the recvmsg that brought them read [start, end) */
        size_t end;
        int fd;
};

static struct event_base *base;
static int sv[2] = {-1, -1}; /* sv[0]: the connection's; sv[1]: the test's */
static struct connection conn;
static bool conn_open;

static struct got_frame frames[MAX_FRAMES];
static unsigned n_frames;
static int broken_code;
static unsigned n_broken;
static bool closed;
static char closed_reason[256];
static bool close_in_frame;         /* the frame callback closes the connection */
static void (*frame_hook)(void);    /* called after each frame is recorded */
static bool closed_during_frame_cb; /* `closed` came synchronously: a bug */
static bool in_frame_cb;

static uint8_t *rx;
static size_t rx_len, rx_cap;
static bool rx_eof;
static struct peer_fds rx_fds[8];
static unsigned n_rx_fds;

static bool deadline_hit;

/* ---- the connection's owner -------------------------------------------------- */

static void on_frame(struct connection *c, const struct frame_view *f, int *fds, void *userdata)
{
        struct got_frame *g;

        ck_assert_ptr_eq(c, &conn);
        ck_assert_ptr_eq(userdata, &conn);
        ck_assert_uint_lt(n_frames, MAX_FRAMES);
        g = &frames[n_frames++];
        g->data = malloc(f->size);
        ck_assert_ptr_nonnull(g->data);
        memcpy(g->data, f->data, f->size);
        g->size = f->size;
        g->prefix = f->prefix;
        ck_assert_uint_le(f->prefix.n_fds, IPCBUS_FDS_MAX);
        memcpy(g->fds, fds, f->prefix.n_fds * sizeof(int));

        if (close_in_frame) {
                in_frame_cb = true;
                connection_close(c, "closed by the owner");
                in_frame_cb = false;
        }
        if (frame_hook)
                frame_hook();
}

static void on_broken(struct connection *c, int code, void *userdata)
{
        broken_code = code;
        n_broken++;
        connection_close(c, "broken: %s", proto_strerror(code));
}

static void on_closed(struct connection *c, const char *reason, void *userdata)
{
        ck_assert(!closed);
        if (in_frame_cb)
                closed_during_frame_cb = true;
        closed = true;
        snprintf(closed_reason, sizeof(closed_reason), "%s", reason);
}

static unsigned n_drained;

static bool drained_twice(void)
{
        return n_drained >= 2;
}

static void on_drained(struct connection *c, void *userdata)
{
        ck_assert(!in_frame_cb);
        n_drained++;
}

static const struct connection_ops ops = {
        .frame = on_frame,
        .broken = on_broken,
        .closed = on_closed,
        .drained = on_drained,
};

static struct connection_limits limits;

static void open_conn(uint32_t max_body, size_t max_queue)
{
        int r;

        limits = (struct connection_limits){
                .max_body = max_body,
                .max_fds = IPCBUS_FDS_MAX,
                .max_queue = max_queue,
        };
        r = connection_init(&conn, base, sv[0], &limits, &ops, &conn);

        ck_assert_msg(r == 0, "connection_init: %s", strerror(-r));
        conn_open = true;
        sv[0] = -1; /* the connection owns it now */
        ck_assert_int_eq(connection_start(&conn), 0);
}

static void setup(void)
{
        n_drained = 0;
        base = event_base_new();
        ck_assert_ptr_nonnull(base);
        ck_assert_int_eq(connection_loop_init(base), 0); /* as the broker's loop */
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        n_frames = 0;
        n_broken = 0;
        broken_code = 0;
        closed = false;
        closed_reason[0] = '\0';
        close_in_frame = closed_during_frame_cb = in_frame_cb = false;
        frame_hook = NULL;
        rx = NULL;
        rx_len = rx_cap = 0;
        rx_eof = false;
        n_rx_fds = 0;
        conn_open = false;
}

static void teardown(void)
{
        for (unsigned i = 0; i < n_frames; i++) {
                close_fds(frames[i].fds, frames[i].prefix.n_fds);
                free(frames[i].data);
        }
        for (unsigned i = 0; i < n_rx_fds; i++)
                close(rx_fds[i].fd);
        free(rx);
        if (conn_open)
                connection_deinit(&conn);
        if (sv[0] >= 0)
                close(sv[0]);
        if (sv[1] >= 0)
                close(sv[1]);
        sv[0] = sv[1] = -1;
        event_base_free(base);
}

/* ---- running the loop ------------------------------------------------------------- */

static void on_deadline(evutil_socket_t fd, short what, void *userdata)
{
        deadline_hit = true;
}

/* Run the loop until done() or ms passed; returns done(). */
static bool run_until_ms(bool (*done)(void), int ms)
{
        struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
        struct event *deadline = evtimer_new(base, on_deadline, NULL);

        ck_assert_ptr_nonnull(deadline);
        ck_assert_int_eq(evtimer_add(deadline, &tv), 0);
        deadline_hit = false;
        while (!done() && !deadline_hit)
                ck_assert_int_ge(event_base_loop(base, EVLOOP_ONCE), 0);
        event_free(deadline);
        return done();
}

static bool run_until(bool (*done)(void))
{
        return run_until_ms(done, WAIT_MS);
}

static unsigned want_frames;
static bool have_frames(void)
{
        return n_frames >= want_frames;
}

static void wait_frames(unsigned n)
{
        want_frames = n;
        ck_assert_msg(run_until(have_frames), "%u of %u frames arrived", n_frames, n);
}

static bool is_closed(void)
{
        return closed;
}

static void wait_closed(void)
{
        ck_assert_msg(run_until(is_closed), "the connection did not report `closed`");
}

static uint64_t want_rx_pos;
static bool conn_has_read(void)
{
        return conn.rx_pos >= want_rx_pos || n_broken > 0;
}

/* Let the connection read everything written so far (n bytes in total). */
static void wait_read(uint64_t n)
{
        want_rx_pos = n;
        ck_assert_msg(run_until(conn_has_read), "the connection read %llu of %llu bytes",
                      (unsigned long long) conn.rx_pos, (unsigned long long) n);
}

/* ---- the test's end of the socket ----------------------------------------------- */

static struct msg *build_call(uint32_t serial, const char *body)
{
        struct msg_header h;
        struct msg *m = NULL;
        int r;

        msg_header_init(&h);
        h.type = MSG_CALL;
        h.serial = serial;
        h.destination = "org.example.Dest";
        h.path = "/org/example/Object";
        h.interface = "org.example.Iface";
        h.member = "Method";
        r = msg_build(&h, body, body ? strlen(body) : 0, &m);
        ck_assert_msg(r == 0, "msg_build: %d", r);
        return m;
}

/* A call whose frame announces n descriptors and carries fds (they pass to the message). */
static struct msg *build_call_with_fds(uint32_t serial, const char *body, int *fds, unsigned n)
{
        struct msg *plain = build_call(serial, body);
        uint8_t *copy = malloc(plain->size);
        struct frame_view f = {0};
        struct msg *m = NULL;
        int r;

        ck_assert_ptr_nonnull(copy);
        memcpy(copy, plain->data, plain->size);
        frame_prefix_encode(copy, (uint32_t) plain->header_len, (uint32_t) plain->body_len, (uint16_t) n);
        f.data = copy;
        f.size = plain->size;
        f.prefix.version = IPCBUS_PROTOCOL_VERSION;
        f.prefix.n_fds = (uint16_t) n;
        f.prefix.header_len = (uint32_t) plain->header_len;
        f.prefix.body_len = (uint32_t) plain->body_len;
        f.header = (const char *) copy + IPCBUS_FRAME_PREFIX_SIZE;
        f.body = plain->body_len ? f.header + plain->header_len : NULL;
        r = msg_parse(&f, NULL, MSG_PARSE_FROM_BROKER, fds, &m, NULL, NULL);
        ck_assert_msg(r == 0, "msg_parse: %d", r);
        ck_assert_uint_eq(m->n_fds, n);
        free(copy);
        msg_unref(plain);
        return m;
}

/* sendmsg all of data; fds (if any) go with the first byte. */
static void peer_send(const void *data, size_t len, const int *fds, unsigned n_fds)
{
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * 32)];
        } control;
        const uint8_t *p = data;

        ck_assert_uint_le(n_fds, 32);
        while (len > 0) {
                struct iovec iov = {.iov_base = (void *) p, .iov_len = len};
                struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
                ssize_t w;

                if (n_fds)
                        fdpass_attach(&mh, control.buf, fds, n_fds);
                w = sendmsg(sv[1], &mh, MSG_NOSIGNAL);
                if (w < 0 && errno == EINTR)
                        continue;
                ck_assert_msg(w > 0, "sendmsg: %s", strerror(errno));
                p += w;
                len -= (size_t) w;
                n_fds = 0;
        }
}

static void peer_send_msg(const struct msg *m)
{
        peer_send(m->data, m->size, NULL, 0);
}

/* Read what is there without blocking; returns false when nothing was. */
static bool peer_read_available(void)
{
        bool any = false;

        for (;;) {
                union {
                        struct cmsghdr align;
                        char buf[CMSG_SPACE(sizeof(int) * IPCBUS_FDS_MAX)];
                } control;
                struct iovec iov;
                struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
                int fds[IPCBUS_FDS_MAX]; /* the control buffer holds no more */
                unsigned got;
                ssize_t n;

                if (rx_cap - rx_len < 65536) {
                        rx_cap = rx_cap ? rx_cap * 2 : 131072;
                        rx = realloc(rx, rx_cap);
                        ck_assert_ptr_nonnull(rx);
                }
                iov.iov_base = rx + rx_len;
                iov.iov_len = rx_cap - rx_len;
                mh.msg_control = control.buf;
                mh.msg_controllen = sizeof(control.buf);
                n = recvmsg(sv[1], &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        return any;
                ck_assert_msg(n >= 0, "recvmsg: %s", strerror(errno));
                ck_assert_msg(!(mh.msg_flags & MSG_CTRUNC), "descriptors truncated");
                got = fdpass_collect(&mh, fds, IPCBUS_FDS_MAX);
                for (unsigned i = 0; i < got; i++) {
                        ck_assert_uint_lt(n_rx_fds, ELEMENTSOF(rx_fds));
                        rx_fds[n_rx_fds] = (struct peer_fds){.start = rx_len, .end = rx_len + (size_t) n, .fd = fds[i]};
                        n_rx_fds++;
                }
                if (n == 0) {
                        rx_eof = true;
                        return any;
                }
                rx_len += (size_t) n;
                any = true;
        }
}

static void on_peer_readable(evutil_socket_t fd, short what, void *userdata)
{
        peer_read_available();
}

static size_t want_rx;
static bool peer_has_rx(void)
{
        return rx_len >= want_rx;
}

/* Run the loop, the test's end reading along, until n bytes came. */
static void peer_wait_rx(size_t n)
{
        struct event *ev = event_new(base, sv[1], EV_READ | EV_PERSIST, on_peer_readable, NULL);

        ck_assert_ptr_nonnull(ev);
        ck_assert_int_eq(event_add(ev, NULL), 0);
        want_rx = n;
        ck_assert_msg(run_until(peer_has_rx), "received %zu of %zu bytes", rx_len, n);
        event_free(ev);
}

/* Expect the whole stream to be the given messages, back to back. */
static void expect_rx_messages(struct msg *const *msgs, size_t n)
{
        size_t off = 0;

        for (size_t i = 0; i < n; i++) {
                ck_assert_msg(off + msgs[i]->size <= rx_len, "message %zu missing", i);
                ck_assert_msg(memcmp(rx + off, msgs[i]->data, msgs[i]->size) == 0, "message %zu differs", i);
                off += msgs[i]->size;
        }
        ck_assert_uint_eq(off, rx_len);
}

static void expect_frame(unsigned i, const struct msg *m)
{
        ck_assert_uint_lt(i, n_frames);
        ck_assert_uint_eq(frames[i].size, m->size);
        ck_assert_msg(memcmp(frames[i].data, m->data, m->size) == 0, "frame %u differs from what was sent", i);
        ck_assert_uint_eq(frames[i].prefix.header_len, m->header_len);
        ck_assert_uint_eq(frames[i].prefix.body_len, m->body_len);
}

/* A pipe; writing to fds[1] (or a dup, wherever it went) shows in fds[0]. */
static void make_pipe(int fds[2])
{
        ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
}

/* Write through fd and check the bytes come out of the pipe's read end. */
static void expect_fd_reaches_pipe(int fd, int read_end, const char *text)
{
        char buf[64];
        size_t len = strlen(text);
        struct pollfd pfd = {.fd = read_end, .events = POLLIN};

        ck_assert_int_eq(write(fd, text, len), (ssize_t) len);
        ck_assert_int_eq(poll(&pfd, 1, WAIT_MS), 1);
        ck_assert_int_eq(read(read_end, buf, sizeof(buf)), (ssize_t) len);
        ck_assert(memcmp(buf, text, len) == 0);
}

/* ---- reading frames ------------------------------------------------------------- */

START_TEST(test_one_frame)
{
        struct msg *m = build_call(1, "{\"a\":\"b\"}");

        open_conn(0, 0);
        peer_send_msg(m);
        wait_frames(1);
        expect_frame(0, m);
        ck_assert_uint_eq(frames[0].prefix.n_fds, 0);
        ck_assert_uint_eq(n_broken, 0);
        ck_assert(!closed);
        msg_unref(m);
}
END_TEST

/* The peer's credentials are read at init. */
START_TEST(test_peer_credentials)
{
        open_conn(0, 0);
        ck_assert_int_eq(conn.cred.pid, getpid());
        ck_assert_uint_eq(conn.cred.uid, getuid());
        ck_assert_uint_eq(conn.cred.gid, getgid());
}
END_TEST

/* Every split point of a frame, each part read on its own: one whole frame. */
START_TEST(test_split_frame)
{
        struct msg *m = build_call(7, "{\"text\":\"some body text\",\"n\":[1,2,3]}");
        uint64_t pos = 0;

        open_conn(0, 0);
        for (size_t k = 1; k < m->size; k++) {
                peer_send(m->data, k, NULL, 0);
                wait_read(pos + k);
                ck_assert_msg(n_frames == k - 1, "a frame was handed over after %zu of %zu bytes", k, m->size);
                peer_send(m->data + k, m->size - k, NULL, 0);
                pos += m->size;
                wait_frames((unsigned) k);
                expect_frame((unsigned) k - 1, m);
        }
        ck_assert_uint_eq(n_broken, 0);
        msg_unref(m);
}
END_TEST

/* Two frames one byte at a time. */
START_TEST(test_one_byte_at_a_time)
{
        struct msg *m1 = build_call(1, NULL);
        struct msg *m2 = build_call(2, "{\"x\":\"y\"}");
        uint64_t pos = 0;

        open_conn(0, 0);
        for (size_t i = 0; i < m1->size; i++) {
                peer_send(m1->data + i, 1, NULL, 0);
                wait_read(++pos);
        }
        ck_assert_uint_eq(n_frames, 1);
        for (size_t i = 0; i < m2->size; i++) {
                ck_assert_uint_eq(n_frames, 1);
                peer_send(m2->data + i, 1, NULL, 0);
                wait_read(++pos);
        }
        wait_frames(2);
        expect_frame(0, m1);
        expect_frame(1, m2);
        msg_unref(m1);
        msg_unref(m2);
}
END_TEST

/* Several frames, and the start of one more, in one write. */
START_TEST(test_several_frames_in_one_write)
{
        struct msg *m[5];
        uint8_t *buf;
        size_t len = 0, off = 0;

        for (unsigned i = 0; i < 5; i++) {
                m[i] = build_call(i + 1, i % 2 ? "{\"odd\":\"yes\"}" : NULL);
                len += m[i]->size;
        }
        buf = malloc(len);
        ck_assert_ptr_nonnull(buf);
        for (unsigned i = 0; i < 5; i++) {
                memcpy(buf + off, m[i]->data, m[i]->size);
                off += m[i]->size;
        }

        open_conn(0, 0);
        /* four whole frames and 10 bytes of the fifth */
        peer_send(buf, len - m[4]->size + 10, NULL, 0);
        wait_frames(4);
        wait_read(len - m[4]->size + 10);
        ck_assert_uint_eq(n_frames, 4);
        peer_send(buf + len - m[4]->size + 10, m[4]->size - 10, NULL, 0);
        wait_frames(5);
        for (unsigned i = 0; i < 5; i++) {
                expect_frame(i, m[i]);
                msg_unref(m[i]);
        }
        free(buf);
}
END_TEST

/* n copies of m's frame, back to back (caller frees). */
static uint8_t *repeat_frame(const struct msg *m, unsigned n)
{
        uint8_t *buf = malloc(m->size * n);

        ck_assert_ptr_nonnull(buf);
        for (unsigned i = 0; i < n; i++)
                memcpy(buf + i * m->size, m->data, m->size);
        return buf;
}

/* Many frames in one write: more than one read event's budget, none lost. */
START_TEST(test_many_frames)
{
        const unsigned n = 300;
        struct msg *m = build_call(9, "{\"k\":\"v\"}");
        uint8_t *buf = repeat_frame(m, n);

        open_conn(0, 0);
        peer_send(buf, m->size * n, NULL, 0);
        wait_frames(n);
        for (unsigned i = 0; i < n; i++)
                expect_frame(i, m);
        free(buf);
        msg_unref(m);
}
END_TEST

/* ---- descriptors in ---------------------------------------------------------------- */

START_TEST(test_receive_fd)
{
        struct msg *m1 = build_call(1, NULL);
        struct msg *m2;
        int p[2], own[1];

        make_pipe(p);
        /* what is sent: a frame without, then one announcing a descriptor
         * (m2 is only the expected bytes; it owns a dup of the write end) */
        own[0] = dup(p[1]);
        ck_assert_int_ge(own[0], 0);
        m2 = build_call_with_fds(2, "{\"with\":\"fd\"}", own, 1);
        open_conn(0, 0);
        peer_send_msg(m1);
        peer_send(m2->data, m2->size, &p[1], 1);
        close(p[1]);

        wait_frames(2);
        expect_frame(0, m1);
        expect_frame(1, m2);
        ck_assert_uint_eq(frames[0].prefix.n_fds, 0);
        ck_assert_uint_eq(frames[1].prefix.n_fds, 1);
        ck_assert_int_ge(frames[1].fds[0], 0);
        /* m2's dup closes with it: what writes now is the received descriptor */
        msg_unref(m2);
        expect_fd_reaches_pipe(frames[1].fds[0], p[0], "through the connection");
        ck_assert_uint_eq(n_broken, 0);
        close(p[0]);
        msg_unref(m1);
}
END_TEST

/* The descriptors come with the first byte; the rest of the frame follows later. */
START_TEST(test_receive_fds_with_first_byte)
{
        int p1[2], p2[2];
        int fds[2];
        struct msg *m;
        int dups[2];

        make_pipe(p1);
        make_pipe(p2);
        dups[0] = dup(p1[1]);
        dups[1] = dup(p2[1]);
        m = build_call_with_fds(3, "{\"two\":\"fds\"}", dups, 2);
        fds[0] = p1[1];
        fds[1] = p2[1];
        open_conn(0, 0);
        peer_send(m->data, 1, fds, 2);
        wait_read(1);
        ck_assert_uint_eq(n_frames, 0);
        peer_send(m->data + 1, m->size - 1, NULL, 0);
        wait_frames(1);
        expect_frame(0, m);
        ck_assert_uint_eq(frames[0].prefix.n_fds, 2);
        /* in the order they were sent */
        expect_fd_reaches_pipe(frames[0].fds[0], p1[0], "first");
        expect_fd_reaches_pipe(frames[0].fds[1], p2[0], "second");
        ck_assert_uint_eq(n_broken, 0);
        close(p1[0]);
        close(p1[1]);
        close(p2[0]);
        close(p2[1]);
        msg_unref(m);
}
END_TEST

/* Send the frame of m, with its prefix announcing `announce` fds, carrying n_send of them. */
static void send_with_fd_count(uint16_t announce, unsigned n_send)
{
        struct msg *m = build_call(4, NULL);
        uint8_t *copy = malloc(m->size);
        int fds[32];

        ck_assert_ptr_nonnull(copy);
        ck_assert_uint_le(n_send, 32);
        memcpy(copy, m->data, m->size);
        frame_prefix_encode(copy, (uint32_t) m->header_len, (uint32_t) m->body_len, 0);
        /* frame_prefix_encode checks nothing: write the count by hand */
        copy[6] = (uint8_t) announce;
        copy[7] = (uint8_t) (announce >> 8);
        for (unsigned i = 0; i < n_send; i++)
                fds[i] = sv[1];
        peer_send(copy, m->size, fds, n_send);
        free(copy);
        msg_unref(m);
}

static void expect_broken(int code)
{
        wait_closed();
        ck_assert_uint_eq(n_broken, 1);
        ck_assert_msg(broken_code == code, "broken with %d (%s), expected %d (%s)", broken_code,
                      proto_strerror(broken_code), code, proto_strerror(code));
        ck_assert_uint_eq(n_frames, 0);
        ck_assert(!connection_is_open(&conn));
}

START_TEST(test_fds_announced_not_sent)
{
        open_conn(0, 0);
        send_with_fd_count(1, 0);
        expect_broken(PROTO_E_FDS_MISMATCH);
}
END_TEST

/* Known deviation: the frame (announcing none, its bytes exactly those of the
 * read that brought the descriptor) is still handed to the owner before the
 * error, so only the error is asserted here. */
START_TEST(test_fds_sent_not_announced)
{
        open_conn(0, 0);
        send_with_fd_count(0, 1);
        wait_closed();
        ck_assert_uint_eq(n_broken, 1);
        ck_assert_int_eq(broken_code, PROTO_E_FDS_MISMATCH);
        /* the frame that came with unannounced fds is not acted on */
        ck_assert_uint_eq(n_frames, 0);
}
END_TEST

START_TEST(test_fds_count_differs)
{
        open_conn(0, 0);
        send_with_fd_count(1, 2);
        expect_broken(PROTO_E_FDS_MISMATCH);
}
END_TEST

START_TEST(test_fds_too_many_announced)
{
        open_conn(0, 0);
        send_with_fd_count(IPCBUS_FDS_MAX + 1, 0);
        expect_broken(PROTO_E_TOO_MANY_FDS);
}
END_TEST

START_TEST(test_fds_too_many_sent)
{
        open_conn(0, 0);
        send_with_fd_count(IPCBUS_FDS_MAX, IPCBUS_FDS_MAX + 1);
        expect_broken(PROTO_E_TOO_MANY_FDS);
}
END_TEST

/* A frame error after good frames: those still count, nothing after. */
START_TEST(test_framing_error_after_good_frames)
{
        struct msg *m = build_call(1, NULL);
        uint8_t bad[16];

        memcpy(bad, "IPCX", 4);
        memset(bad + 4, 0, sizeof(bad) - 4);
        open_conn(0, 0);
        peer_send_msg(m);
        peer_send_msg(m);
        peer_send(bad, sizeof(bad), NULL, 0);
        peer_send_msg(m);
        wait_closed();
        ck_assert_uint_eq(n_frames, 2);
        ck_assert_uint_eq(n_broken, 1);
        ck_assert_int_eq(broken_code, PROTO_E_BAD_MAGIC);
        msg_unref(m);
}
END_TEST

START_TEST(test_body_limit)
{
        struct msg *small = build_call(1, "{\"a\":\"b\"}");
        struct msg *large = build_call(2, "{\"a\":\"0123456789abcdef\"}");

        ck_assert_uint_lt(small->body_len, 16);
        open_conn(16, 0);
        peer_send_msg(small);
        peer_send_msg(large);
        wait_closed();
        ck_assert_uint_eq(n_frames, 1);
        expect_frame(0, small);
        ck_assert_int_eq(broken_code, PROTO_E_BODY_TOO_LARGE);
        msg_unref(small);
        msg_unref(large);
}
END_TEST

/* A client's header may not use the room reserved for the broker's stamp. */
START_TEST(test_header_limit)
{
        uint8_t prefix[16];

        frame_prefix_encode(prefix, IPCBUS_CLIENT_HEADER_MAX + 1, 0, 0);
        open_conn(0, 0);
        peer_send(prefix, sizeof(prefix), NULL, 0);
        expect_broken(PROTO_E_HEADER_TOO_LARGE);
}
END_TEST

/* ---- hang-up ------------------------------------------------------------------------- */

START_TEST(test_hangup)
{
        struct msg *m = build_call(1, NULL);

        open_conn(0, 0);
        /* a frame right before the hang-up still arrives */
        peer_send_msg(m);
        close(sv[1]);
        sv[1] = -1;
        wait_closed();
        ck_assert_uint_eq(n_frames, 1);
        expect_frame(0, m);
        ck_assert_uint_eq(n_broken, 0);
        ck_assert_msg(strstr(closed_reason, "hung up"), "reason: '%s'", closed_reason);
        ck_assert_msg(!strstr(closed_reason, "middle"), "reason: '%s'", closed_reason);
        msg_unref(m);
}
END_TEST

START_TEST(test_hangup_mid_frame)
{
        struct msg *m = build_call(1, NULL);

        open_conn(0, 0);
        peer_send(m->data, m->size - 1, NULL, 0);
        shutdown(sv[1], SHUT_WR);
        wait_closed();
        ck_assert_uint_eq(n_frames, 0);
        ck_assert_msg(strstr(closed_reason, "hung up in the middle of a frame"), "reason: '%s'", closed_reason);
        msg_unref(m);
}
END_TEST

/* `closed` never comes from inside a call into the connection. */
START_TEST(test_close_is_deferred)
{
        struct msg *m = build_call(1, NULL);

        close_in_frame = true;
        open_conn(0, 0);
        peer_send_msg(m);
        peer_send_msg(m);
        wait_closed();
        ck_assert(!closed_during_frame_cb);
        /* reading stopped with the close: the second frame is not handed over */
        ck_assert_uint_eq(n_frames, 1);
        ck_assert_str_eq(closed_reason, "closed by the owner");
        ck_assert_int_eq(connection_queue(&conn, m), CONNECTION_E_CLOSING);
        msg_unref(m);
}
END_TEST

/* ---- writing ----------------------------------------------------------------------- */

/* Messages queued in one go are all in the socket after one pass of the loop, in order. */
START_TEST(test_queue_gathered_in_order)
{
        struct msg *m[40];
        size_t total = 0;
        int avail = 0;

        open_conn(0, 0);
        for (unsigned i = 0; i < 40; i++) {
                m[i] = build_call(i + 1, i % 3 ? "{\"i\":\"x\"}" : NULL);
                total += m[i]->size;
                ck_assert_int_eq(connection_queue(&conn, m[i]), 0);
        }
        /* nothing is written from inside connection_queue */
        ck_assert_int_eq(ioctl(sv[1], FIONREAD, &avail), 0);
        ck_assert_int_eq(avail, 0);

        ck_assert_int_ge(event_base_loop(base, EVLOOP_ONCE), 0);
        ck_assert_int_eq(ioctl(sv[1], FIONREAD, &avail), 0);
        ck_assert_int_eq(avail, (int) total);

        peer_read_available();
        expect_rx_messages(m, 40);
        ck_assert_uint_eq(conn.tx.len, 0);
        for (unsigned i = 0; i < 40; i++)
                msg_unref(m[i]);
}
END_TEST

/* The queue holds a reference: the caller may drop its own at once. */
START_TEST(test_queue_takes_reference)
{
        struct msg *m = build_call(5, "{\"held\":\"by the queue\"}");
        struct msg *copy = build_call(5, "{\"held\":\"by the queue\"}");

        open_conn(0, 0);
        ck_assert_int_eq(connection_queue(&conn, m), 0);
        ck_assert_uint_eq(m->n_ref, 2);
        msg_unref(m);
        peer_wait_rx(copy->size);
        expect_rx_messages(&copy, 1);
        msg_unref(copy);
}
END_TEST

/* Far more than the socket holds: written in order as the peer reads. */
START_TEST(test_queue_through_full_socket)
{
        enum { N = 200 };
        struct msg *m[N];
        char *body = malloc(8200);
        size_t total = 0;

        ck_assert_ptr_nonnull(body);
        open_conn(0, 0);
        for (unsigned i = 0; i < N; i++) {
                /* distinct bodies, so a reordering or a repeat shows */
                int n = snprintf(body, 64, "{\"i\":%u,\"pad\":\"", i);

                memset(body + n, 'a' + (char) (i % 26), 8000);
                strcpy(body + n + 8000, "\"}");
                m[i] = build_call(i + 1, body);
                total += m[i]->size;
                ck_assert_int_eq(connection_queue(&conn, m[i]), 0);
        }
        peer_wait_rx(total);
        expect_rx_messages(m, N);
        ck_assert_uint_eq(conn.tx.len, 0);
        ck_assert_uint_eq(conn.tx_bytes, 0);
        for (unsigned i = 0; i < N; i++)
                msg_unref(m[i]);
        free(body);
}
END_TEST

/* A message's descriptors reach the other end with its first byte, and work. */
START_TEST(test_send_fds)
{
        struct msg *m[3];
        int p[2], fds[1];
        int r;

        make_pipe(p);
        open_conn(0, 0);
        m[0] = build_call(1, "{\"before\":\"fd\"}");
        fds[0] = p[1];
        m[1] = build_call_with_fds(2, "{\"carries\":\"fd\"}", fds, 1); /* owns p[1] now */
        m[2] = build_call(3, NULL);
        for (unsigned i = 0; i < 3; i++)
                ck_assert_int_eq(connection_queue(&conn, m[i]), 0);
        peer_wait_rx(m[0]->size + m[1]->size + m[2]->size);
        expect_rx_messages(m, 3);

        ck_assert_uint_eq(n_rx_fds, 1);
        ck_assert_msg(rx_fds[0].start <= m[0]->size && m[0]->size < rx_fds[0].end,
                      "the descriptor came with bytes [%zu, %zu), the frame starts at %zu", rx_fds[0].start,
                      rx_fds[0].end, m[0]->size);
        /* the prefix on the wire announces it */
        ck_assert_uint_eq(rx[m[0]->size + 6], 1);
        ck_assert_uint_eq(rx[m[0]->size + 7], 0);

        /* the sender's copy closes with the message; the received one still works */
        for (unsigned i = 0; i < 3; i++)
                msg_unref(m[i]);
        expect_fd_reaches_pipe(rx_fds[0].fd, p[0], "sent with SCM_RIGHTS");

        /* and once every write end is gone, the pipe reports EOF */
        close(rx_fds[0].fd);
        n_rx_fds = 0;
        {
                char c;

                r = (int) read(p[0], &c, 1);
                ck_assert_int_eq(r, 0);
        }
        close(p[0]);
}
END_TEST

START_TEST(test_close_after_flush)
{
        struct msg *m[3];

        open_conn(0, 0);
        for (unsigned i = 0; i < 3; i++) {
                m[i] = build_call(i + 1, "{\"last\":\"words\"}");
                ck_assert_int_eq(connection_queue(&conn, m[i]), 0);
        }
        connection_close_after_flush(&conn, "going away: %d", 42);
        ck_assert(!connection_is_open(&conn));
        ck_assert(!closed);
        ck_assert_int_eq(connection_queue(&conn, m[0]), CONNECTION_E_CLOSING);
        {
                struct event *ev = event_new(base, sv[1], EV_READ | EV_PERSIST, on_peer_readable, NULL);

                ck_assert_int_eq(event_add(ev, NULL), 0);
                wait_closed();
                event_free(ev);
        }
        ck_assert_str_eq(closed_reason, "going away: 42");
        connection_deinit(&conn);
        conn_open = false;
        /* the socket is closed: what is left, then EOF, reads without waiting */
        peer_read_available();
        ck_assert(rx_eof);
        expect_rx_messages(m, 3);
        for (unsigned i = 0; i < 3; i++)
                msg_unref(m[i]);
}
END_TEST

START_TEST(test_close_after_flush_empty_queue)
{
        open_conn(0, 0);
        connection_close_after_flush(&conn, "nothing to say");
        ck_assert(!closed);
        wait_closed();
        ck_assert_str_eq(closed_reason, "nothing to say");
}
END_TEST

/* max_queue: a message always fits into an empty queue; beyond the limit CONNECTION_E_QUEUE_FULL. */
START_TEST(test_queue_limit)
{
        struct msg *m = build_call(1, "{\"some\":\"bytes\"}");

        open_conn(0, m->size + m->size / 2);
        ck_assert_int_eq(connection_queue(&conn, m), 0);
        ck_assert_int_eq(connection_queue(&conn, m), CONNECTION_E_QUEUE_FULL);
        ck_assert_uint_eq(conn.tx.len, 1);
        peer_wait_rx(m->size);
        /* written: room again */
        ck_assert_int_eq(connection_queue(&conn, m), 0);
        ck_assert_int_eq(connection_queue(&conn, m), CONNECTION_E_QUEUE_FULL);
        peer_wait_rx(2 * m->size);
        {
                struct msg *two[2] = {m, m};

                expect_rx_messages(two, 2);
        }
        msg_unref(m);

        /* one message larger than the limit still goes into an empty queue */
        m = build_call(2, "{\"a much longer body\":\"than the limit allows for a second message\"}");
        ck_assert_int_eq(connection_queue(&conn, m), 0);
        msg_unref(m);
}
END_TEST

/* Every queued byte counts into the shared total too; past max_queue_total, CONNECTION_E_QUEUE_FULL_UID; it all comes
 * back out. */
START_TEST(test_queue_shared_total)
{
        struct msg *m = build_call(1, "{\"some\":\"bytes\"}");
        uint64_t total = 0;

        open_conn(0, 0);
        limits.max_queue_total = 2 * m->size;
        connection_set_total(&conn, &total);
        ck_assert_int_eq(connection_check_room(&conn, m->size), 0);
        ck_assert_int_eq(connection_queue(&conn, m), 0);
        ck_assert_int_eq(connection_queue(&conn, m), 0);
        ck_assert_uint_eq(total, 2 * m->size);
        /* even into an empty queue of another connection of the same total: CONNECTION_E_QUEUE_FULL_UID */
        ck_assert_int_eq(connection_check_room(&conn, m->size), CONNECTION_E_QUEUE_FULL_UID);
        ck_assert_int_eq(connection_queue(&conn, m), CONNECTION_E_QUEUE_FULL_UID);
        peer_wait_rx(2 * m->size);
        ck_assert_uint_eq(total, 0);
        ck_assert_int_eq(connection_queue(&conn, m), 0);
        ck_assert_uint_eq(total, m->size);
        /* what is still queued at the end leaves the total too */
        connection_deinit(&conn);
        conn_open = false;
        ck_assert_uint_eq(total, 0);
        msg_unref(m);
}
END_TEST

/* From backpressure bytes on the queue is congested; `drained` comes once, at half, after watching. */
START_TEST(test_congested_then_drained)
{
        enum { N = 64 };
        char body[1100];
        struct msg *m;

        memset(body, 0, sizeof(body));
        memcpy(body, "{\"pad\":\"", 8);
        memset(body + 8, 'p', 1000);
        memcpy(body + 1008, "\"}", 2);
        m = build_call(1, body);
        open_conn(0, 0);
        limits.backpressure = 8 * m->size;
        for (unsigned i = 0; i < N; i++) {
                ck_assert_int_eq(connection_queue(&conn, m), 0);
                ck_assert(connection_congested(&conn) == (conn.tx_bytes >= limits.backpressure));
        }
        ck_assert(connection_congested(&conn));
        connection_watch_drain(&conn);
        connection_watch_drain(&conn); /* once is enough */
        ck_assert_uint_eq(n_drained, 0);
        peer_wait_rx(N * m->size);
        ck_assert_uint_eq(n_drained, 1);
        ck_assert(!connection_congested(&conn));

        /* asked while already drained: told from the loop, not at once */
        connection_watch_drain(&conn);
        ck_assert_uint_eq(n_drained, 1);
        ck_assert_msg(run_until(drained_twice), "no `drained` for an empty queue");
        msg_unref(m);
}
END_TEST

/* While paused, frames that arrived (even those already read) wait; resume hands them over in order. */
START_TEST(test_pause_resume)
{
        struct msg *m[3];
        size_t total = 0;

        open_conn(0, 0);
        for (unsigned i = 0; i < 3; i++) {
                m[i] = build_call(i + 1, "{}");
                total += m[i]->size;
        }
        peer_send_msg(m[0]);
        wait_frames(1);
        connection_pause(&conn);
        peer_send_msg(m[1]);
        peer_send_msg(m[2]);
        /* nothing is handed over while paused */
        want_frames = 2;
        ck_assert(!run_until_ms(have_frames, 300));
        ck_assert_uint_eq(n_frames, 1);
        connection_pause(&conn); /* idempotent */
        connection_resume(&conn);
        wait_frames(3);
        for (unsigned i = 0; i < 3; i++) {
                expect_frame(i, m[i]);
                msg_unref(m[i]);
        }
        ck_assert_uint_eq(conn.rx_pos, total);
}
END_TEST

/* A peer that reads nothing while its socket is full is closed after stall_ms, as a failure. */
START_TEST(test_stall_closes)
{
        char *body = malloc(64 * 1024 + 16);
        struct msg *m;

        ck_assert_ptr_nonnull(body);
        strcpy(body, "{\"pad\":\"");
        memset(body + 8, 'z', 64 * 1024);
        strcpy(body + 8 + 64 * 1024, "\"}");
        m = build_call(1, body);
        open_conn(0, 0);
        limits.stall_ms = 200;
        /* far more than the socket buffers hold; the test never reads */
        for (unsigned i = 0; i < 64; i++)
                ck_assert_int_eq(connection_queue(&conn, m), 0);
        wait_closed();
        ck_assert_msg(strstr(closed_reason, "stalled") != NULL, "closed: %s", closed_reason);
        ck_assert(conn.failed);
        msg_unref(m);
        free(body);
}
END_TEST

/* A reader that keeps reading, however slowly, is not stalled. */
START_TEST(test_slow_reader_not_stalled)
{
        char *body = malloc(64 * 1024 + 16);
        struct msg *m;
        size_t total = 0;

        ck_assert_ptr_nonnull(body);
        strcpy(body, "{\"pad\":\"");
        memset(body + 8, 'y', 64 * 1024);
        strcpy(body + 8 + 64 * 1024, "\"}");
        m = build_call(1, body);
        open_conn(0, 0);
        limits.stall_ms = 300;
        for (unsigned i = 0; i < 32; i++) {
                ck_assert_int_eq(connection_queue(&conn, m), 0);
                total += m->size;
        }
        /* read a little every 100 ms: each read lets the connection write some more */
        while (rx_len < total) {
                size_t want = rx_len + 48 * 1024 < total ? rx_len + 48 * 1024 : total;

                peer_wait_rx(want);
                ck_assert_msg(!closed, "closed a slow reader: %s", closed_reason);
                usleep(100 * 1000);
        }
        ck_assert(!closed);
        msg_unref(m);
        free(body);
}
END_TEST

/* More descriptors than max_fds: a framing error. */
START_TEST(test_fds_over_configured_limit)
{
        open_conn(0, 0);
        limits.max_fds = 1;
        send_with_fd_count(2, 2);
        expect_broken(PROTO_E_TOO_MANY_FDS);
}
END_TEST

/* ---- scheduling ----------------------------------------------------------------------- */

/* A second connection, whose peer sends one frame while the first is busy. */
static struct connection other;
static int other_sv[2] = {-1, -1};
static struct msg *other_msg;
static bool other_got;
static unsigned other_got_after; /* frames of conn handed on before other's */
/* A third connection, which conn's frame callback queues a message to. */
static struct connection target;
static int target_sv[2] = {-1, -1};
static struct msg *target_msg;
static int target_bytes_before_other; /* bytes at target's peer when other's frame was handed on */

static void on_other_frame(struct connection *c, const struct frame_view *f, int *fds, void *userdata)
{
        other_got = true;
        other_got_after = n_frames;
        if (target_sv[1] >= 0)
                ck_assert_int_eq(ioctl(target_sv[1], FIONREAD, &target_bytes_before_other), 0);
}

static void on_other_closed(struct connection *c, const char *reason, void *userdata)
{
}

static void on_other_broken(struct connection *c, int code, void *userdata)
{
        ck_abort_msg("the other connection broke: %s", proto_strerror(code));
}

static const struct connection_ops other_ops = {
        .frame = on_other_frame,
        .broken = on_other_broken,
        .closed = on_other_closed,
};

/* Another connection on the loop, reading, over a new socket pair (pair[1] is the test's end). */
static void open_extra(struct connection *c, int pair[2])
{
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
        ck_assert_int_eq(connection_init(c, base, pair[0], &limits, &other_ops, NULL), 0);
        pair[0] = -1;
        ck_assert_int_eq(connection_start(c), 0);
}

/* conn's frame hook: while conn's 10th frame is handed on, the other peer's frame arrives. */
static void other_sends_at_10(void)
{
        if (n_frames == 10)
                ck_assert_int_eq(write(other_sv[1], other_msg->data, other_msg->size), (ssize_t) other_msg->size);
}

/*
 * A connection with far more frames than one read event's budget, and
 * another whose frame arrives while the first is being read: the other's
 * frame is handed on in the next pass of the loop, after at most two
 * budgets of the busy one, not after all its frames.
 */
START_TEST(test_busy_peer_yields)
{
        const unsigned n = 400;
        struct msg *m = build_call(9, "{\"k\":\"v\"}");
        uint8_t *buf = repeat_frame(m, n);

        open_conn(0, 0);
        open_extra(&other, other_sv);
        other_msg = build_call(1, NULL);
        other_got = false;
        frame_hook = other_sends_at_10;

        peer_send(buf, m->size * n, NULL, 0);
        wait_frames(n);
        ck_assert_msg(other_got, "the other connection's frame waited for all %u frames of the busy one", n);
        ck_assert_msg(other_got_after <= 2 * 64, "the other connection's frame waited for %u frames of the busy one",
                      other_got_after);
        for (unsigned i = 0; i < n; i++)
                expect_frame(i, m);

        connection_deinit(&other);
        close(other_sv[1]);
        msg_unref(other_msg);
        msg_unref(m);
        free(buf);
}
END_TEST

/* conn's frame hook: its first frame is answered to target. */
static void queue_to_target(void)
{
        if (n_frames == 1)
                ck_assert_int_eq(connection_queue(&target, target_msg), 0);
}

/*
 * Two connections have a frame each in the same pass; the first one's is
 * answered to a third: the answer is written before the second frame is
 * handed on (writes first), not after everything read in that pass.
 */
START_TEST(test_write_before_other_reads)
{
        struct msg *m = build_call(9, "{\"k\":\"v\"}");

        open_conn(0, 0);
        open_extra(&other, other_sv);
        open_extra(&target, target_sv);
        target_msg = build_call(2, "{\"answer\":1}");
        other_msg = build_call(1, NULL);
        other_got = false;
        target_bytes_before_other = -1;
        frame_hook = queue_to_target;

        /* both sockets are readable when the loop next polls, conn's first */
        peer_send(m->data, m->size, NULL, 0);
        ck_assert_int_eq(write(other_sv[1], other_msg->data, other_msg->size), (ssize_t) other_msg->size);
        wait_frames(1);
        while (!other_got)
                ck_assert_int_ge(event_base_loop(base, EVLOOP_ONCE), 0);
        ck_assert_msg(target_bytes_before_other == (int) target_msg->size,
                      "the answer was not written before the other connection's frame was handed on (%d bytes)",
                      target_bytes_before_other);

        connection_deinit(&other);
        connection_deinit(&target);
        close(other_sv[1]);
        close(target_sv[1]);
        target_sv[1] = -1;
        msg_unref(other_msg);
        msg_unref(target_msg);
        msg_unref(m);
}
END_TEST

static Suite *connection_suite(void)
{
        Suite *s = suite_create("daemon_connection");
        TCase *tc;

        tc = tcase_create("read");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_one_frame);
        tcase_add_test(tc, test_peer_credentials);
        tcase_add_test(tc, test_split_frame);
        tcase_add_test(tc, test_one_byte_at_a_time);
        tcase_add_test(tc, test_several_frames_in_one_write);
        tcase_add_test(tc, test_many_frames);
        tcase_add_test(tc, test_framing_error_after_good_frames);
        tcase_add_test(tc, test_body_limit);
        tcase_add_test(tc, test_header_limit);
        suite_add_tcase(s, tc);

        tc = tcase_create("fds_in");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_receive_fd);
        tcase_add_test(tc, test_receive_fds_with_first_byte);
        tcase_add_test(tc, test_fds_announced_not_sent);
        tcase_add_test(tc, test_fds_sent_not_announced);
        tcase_add_test(tc, test_fds_count_differs);
        tcase_add_test(tc, test_fds_too_many_announced);
        tcase_add_test(tc, test_fds_too_many_sent);
        tcase_add_test(tc, test_fds_over_configured_limit);
        suite_add_tcase(s, tc);

        tc = tcase_create("close");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_hangup);
        tcase_add_test(tc, test_hangup_mid_frame);
        tcase_add_test(tc, test_close_is_deferred);
        tcase_add_test(tc, test_close_after_flush);
        tcase_add_test(tc, test_close_after_flush_empty_queue);
        suite_add_tcase(s, tc);

        tc = tcase_create("write");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_queue_gathered_in_order);
        tcase_add_test(tc, test_queue_takes_reference);
        tcase_add_test(tc, test_queue_through_full_socket);
        tcase_add_test(tc, test_send_fds);
        tcase_add_test(tc, test_queue_limit);
        tcase_add_test(tc, test_queue_shared_total);
        suite_add_tcase(s, tc);

        tc = tcase_create("flow");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_congested_then_drained);
        tcase_add_test(tc, test_pause_resume);
        tcase_add_test(tc, test_stall_closes);
        tcase_add_test(tc, test_slow_reader_not_stalled);
        suite_add_tcase(s, tc);

        tc = tcase_create("scheduling");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_busy_peer_yields);
        tcase_add_test(tc, test_write_before_other_reads);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return check_run(connection_suite());
}
