/* SPDX-License-Identifier: MIT */
/*
 * File descriptors through a real ipcbusd (PROTOCOL.md 1 and 2): a
 * descriptor sent with a message (SCM_RIGHTS on the sendmsg that carries the
 * frame's first byte) reaches the receiver with the frame that announced it,
 * and works there: what the receiver writes to it comes out of the pipe the
 * test holds. libipcbus cannot send descriptors, so senders are raw sockets;
 * receivers read with recvmsg to get them. Also: descriptors in a return,
 * the maximum of 16, a libipcbus receiver, descriptors the broker consumes
 * itself (none leak), and counts that disagree with what arrived.
 * (17 announced, and announced but not sent, are in check_bus_badinput.)
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tests/testbus.h"
#include "util/fdpass.h"

#define FDS_PATH "/org/example/Fds"
#define FDS_INTERFACE "org.example.Fds"
#define MAX_BATCH_FDS 32
#define MAX_BATCHES 8

/* ---- raw frames with descriptors (no Check inside: forked children use them too) -- */

static int64_t ms_left(int64_t deadline)
{
        int64_t left = deadline - testbus_now_ms();

        return left < 0 ? 0 : left;
}

/* Connect to the bus socket; the fd or -errno. */
static int sock_connect(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return -errno;
        if (strlen(path) >= sizeof(sa.sun_path)) {
                close(fd);
                return -ENAMETOOLONG;
        }
        strcpy(sa.sun_path, path);
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int r = -errno;

                close(fd);
                return r;
        }
        return fd;
}

/* Descriptors one recvmsg brought, and the stream bytes [start, end) it read. */
struct fdr_batch {
        uint64_t start;
        uint64_t end;
        unsigned n;
        int fds[MAX_BATCH_FDS];
};

/* A reader of frames and the descriptors that come with them. */
struct fdr {
        int sock;
        uint8_t *buf;
        size_t len;
        size_t cap;
        uint64_t base; /* stream offset of buf[0] */
        struct fdr_batch batches[MAX_BATCHES];
        unsigned n_batches;
        bool truncated; /* MSG_CTRUNC seen */
};

struct fdr_frame {
        char *header; /* NUL-terminated */
        char *body;   /* NULL when body_len is 0 */
        json_object *h;
        unsigned n_fds; /* announced by the prefix; fds holds them */
        int fds[IPCBUS_FDS_MAX];
};

static void fdr_init(struct fdr *r, int sock)
{
        *r = (struct fdr){.sock = sock};
}

/* Close the socket and any descriptors no frame claimed; returns how many those were. */
static unsigned fdr_deinit(struct fdr *r)
{
        unsigned stray = 0;

        for (unsigned i = 0; i < r->n_batches; i++) {
                for (unsigned k = 0; k < r->batches[i].n; k++)
                        close(r->batches[i].fds[k]);
                stray += r->batches[i].n;
        }
        free(r->buf);
        if (r->sock >= 0)
                close(r->sock);
        *r = (struct fdr){.sock = -1};
        return stray;
}

static void fdr_frame_deinit(struct fdr_frame *f)
{
        for (unsigned i = 0; i < f->n_fds; i++)
                if (f->fds[i] >= 0)
                        close(f->fds[i]);
        free(f->header);
        free(f->body);
        json_object_put(f->h);
        *f = (struct fdr_frame){0};
}

static uint32_t le32(const uint8_t *p)
{
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

/* One recvmsg (waiting until the deadline). 1, 0 at EOF, -ETIMEDOUT, -errno. */
static int fdr_recv(struct fdr *r, int64_t deadline)
{
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * MAX_BATCH_FDS)];
        } control;
        struct pollfd pfd = {.fd = r->sock, .events = POLLIN};
        struct iovec iov;
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        struct fdr_batch b = {0};
        ssize_t n;
        int p;

        if (r->cap - r->len < 65536) {
                size_t cap = r->cap ? r->cap * 2 : 131072;
                uint8_t *buf = realloc(r->buf, cap);

                if (!buf)
                        return -ENOMEM;
                r->buf = buf;
                r->cap = cap;
        }
        p = poll(&pfd, 1, (int) ms_left(deadline));
        if (p < 0)
                return errno == EINTR ? 1 : -errno;
        if (p == 0)
                return -ETIMEDOUT;

        iov.iov_base = r->buf + r->len;
        iov.iov_len = r->cap - r->len;
        mh.msg_control = control.buf;
        mh.msg_controllen = sizeof(control.buf);
        n = recvmsg(r->sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n < 0)
                return errno == EINTR || errno == EAGAIN ? 1 : -errno;
        if (mh.msg_flags & MSG_CTRUNC)
                r->truncated = true;
        b.n = fdpass_collect(&mh, b.fds, MAX_BATCH_FDS);
        if (n == 0)
                return 0;
        b.start = r->base + r->len;
        b.end = b.start + (uint64_t) n;
        r->len += (size_t) n;
        if (b.n > 0) {
                if (r->n_batches == MAX_BATCHES) {
                        for (unsigned i = 0; i < b.n; i++)
                                close(b.fds[i]);
                        r->truncated = true;
                } else {
                        r->batches[r->n_batches++] = b;
                }
        }
        return 1;
}

/*
 * The next frame: 1, 0 at EOF between frames, -ETIMEDOUT, -EPROTO (a frame
 * the broker should not have sent, or descriptors that do not match its
 * prefix: they must be the oldest batch, received with its first byte).
 */
static int fdr_next(struct fdr *r, int timeout_ms, struct fdr_frame *ret)
{
        int64_t deadline = testbus_now_ms() + timeout_ms;
        struct fdr_frame f = {0};
        uint32_t hl, bl;
        size_t size;
        int k;

        for (;;) {
                if (r->len >= 16) {
                        hl = le32(r->buf + 8);
                        bl = le32(r->buf + 12);
                        if (memcmp(r->buf, "IPCB\x01\x00", 6) != 0 || hl < 2 || hl > IPCBUS_HEADER_MAX ||
                            bl > IPCBUS_BODY_MAX)
                                return -EPROTO;
                        size = 16 + (size_t) hl + bl;
                        if (r->len >= size)
                                break;
                }
                k = fdr_recv(r, deadline);
                if (k == 0)
                        return r->len ? -EPROTO : 0;
                if (k < 0)
                        return k;
        }

        f.n_fds = (unsigned) (r->buf[6] | r->buf[7] << 8);
        if (f.n_fds > IPCBUS_FDS_MAX)
                return -EPROTO;
        if (f.n_fds > 0) {
                struct fdr_batch *b = &r->batches[0];

                if (r->n_batches == 0 || b->n != f.n_fds || b->start > r->base || b->end <= r->base)
                        return -EPROTO;
                memcpy(f.fds, b->fds, f.n_fds * sizeof(int));
                r->n_batches--;
                memmove(&r->batches[0], &r->batches[1], r->n_batches * sizeof(r->batches[0]));
        }
        f.header = strndup((const char *) r->buf + 16, hl);
        if (bl)
                f.body = strndup((const char *) r->buf + 16 + hl, bl);
        f.h = f.header ? json_tokener_parse(f.header) : NULL;
        r->base += size;
        r->len -= size;
        memmove(r->buf, r->buf + size, r->len);
        if (!f.h || !json_object_is_type(f.h, json_type_object) || (bl && !f.body)) {
                fdr_frame_deinit(&f);
                return -EPROTO;
        }
        *ret = f;
        return 1;
}

static const char *fdr_string(struct fdr_frame *f, const char *field)
{
        json_object *v;

        if (!json_object_object_get_ex(f->h, field, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static int64_t fdr_int(struct fdr_frame *f, const char *field)
{
        json_object *v;

        if (!json_object_object_get_ex(f->h, field, &v) || !json_object_is_type(v, json_type_int))
                return -1;
        return json_object_get_int64(v);
}

/* A signal from the driver (NameAcquired and the like), which tests skip. */
static bool fdr_is_driver_signal(struct fdr_frame *f)
{
        const char *type = fdr_string(f, "type"), *sender = fdr_string(f, "sender");

        return type && strcmp(type, "signal") == 0 && sender && strcmp(sender, IPCBUS_DRIVER_NAME) == 0;
}

static const char *const hello_header = "{\"type\":\"call\",\"serial\":1,\"destination\":\"org.ipcbus.Bus\","
                                        "\"path\":\"/org/ipcbus/Bus\",\"interface\":\"org.ipcbus.Bus\","
                                        "\"member\":\"Hello\"}";

/* Say Hello and read the unique name (malloc'd) from its return; NULL on failure. */
static char *fdr_hello(struct fdr *r)
{
        struct fdr_frame f;
        char *name = NULL;

        if (testbus_raw_send_frame_announcing(r->sock, hello_header, NULL, 0, NULL, 0) < 0)
                return NULL;
        while (fdr_next(r, TESTBUS_WAIT_MS, &f) == 1) {
                if (fdr_int(&f, "reply_serial") == 1) {
                        json_object *b = f.body ? json_tokener_parse(f.body) : NULL, *v;

                        if (b && json_object_object_get_ex(b, "name", &v) && json_object_is_type(v, json_type_string))
                                name = strdup(json_object_get_string(v));
                        json_object_put(b);
                        fdr_frame_deinit(&f);
                        break;
                }
                fdr_frame_deinit(&f);
        }
        return name;
}

/* ---- the test process's side ------------------------------------------------------ */

/* A raw connection that has said Hello. */
struct rawpeer {
        struct fdr r;
        char *name;
};

static void rawpeer_open(struct rawpeer *p)
{
        int sock = sock_connect(testbus_current()->socket_path);

        ck_assert_msg(sock >= 0, "connect: %s", strerror(-sock));
        fdr_init(&p->r, sock);
        p->name = fdr_hello(&p->r);
        ck_assert_msg(p->name, "no answer to Hello");
}

static void rawpeer_close(struct rawpeer *p)
{
        unsigned stray = fdr_deinit(&p->r);

        free(p->name);
        ck_assert_msg(stray == 0, "%u descriptors came with no frame announcing them", stray);
}

static void rawpeer_send(struct rawpeer *p, const char *header, const char *body, uint16_t announce, const int *fds,
                         unsigned n)
{
        int r = testbus_raw_send_frame_announcing(p->r.sock, header, body, announce, fds, n);

        ck_assert_msg(r == 0, "sendmsg: %s", strerror(-r));
}

/* The next frame that is not a driver signal; those must not carry descriptors. */
static void rawpeer_expect(struct rawpeer *p, struct fdr_frame *ret)
{
        for (;;) {
                int r = fdr_next(&p->r, TESTBUS_WAIT_MS, ret);

                ck_assert_msg(r == 1, "expected a frame, got %s",
                              r == 0         ? "EOF"
                              : r == -EPROTO ? "a bad frame or descriptors not matching its prefix"
                                             : strerror(-r));
                ck_assert(!p->r.truncated);
                if (!fdr_is_driver_signal(ret))
                        return;
                ck_assert_uint_eq(ret->n_fds, 0);
                fdr_frame_deinit(ret);
        }
}

/* A unicast signal header. */
static char *signal_header(uint32_t serial, const char *destination, const char *member)
{
        char *h;

        ck_assert_int_gt(asprintf(&h,
                                  "{\"type\":\"signal\",\"serial\":%u,\"destination\":\"%s\",\"path\":\"" FDS_PATH
                                  "\",\"interface\":\"" FDS_INTERFACE "\",\"member\":\"%s\"}",
                                  serial, destination, member),
                         0);
        return h;
}

static void make_pipe(int p[2])
{
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
}

/* Write text through fd and read it back from the pipe's read end. */
static void expect_through(int fd, int read_end, const char *text)
{
        struct pollfd pfd = {.fd = read_end, .events = POLLIN};
        size_t len = strlen(text);
        char buf[128];

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, text, len), (ssize_t) len);
        ck_assert_int_eq(poll(&pfd, 1, TESTBUS_WAIT_MS), 1);
        ck_assert_int_eq(read(read_end, buf, sizeof(buf)), (ssize_t) len);
        ck_assert(memcmp(buf, text, len) == 0);
}

/* Every write end is closed: the read end reports EOF (soon: the broker closes its copy after writing). */
static void expect_pipe_eof(int read_end)
{
        struct pollfd pfd = {.fd = read_end, .events = POLLIN};
        char c;

        ck_assert_msg(poll(&pfd, 1, TESTBUS_WAIT_MS) == 1, "a copy of the pipe's write end is still open somewhere");
        ck_assert_int_eq(read(read_end, &c, 1), 0);
}

/* Some write end is still open: no EOF yet. */
static void expect_pipe_open(int read_end)
{
        struct pollfd pfd = {.fd = read_end, .events = POLLIN};

        ck_assert_int_eq(poll(&pfd, 1, 0), 0);
}

/* ---- a sender in another process ---------------------------------------------------- */

/*
 * The child makes a pipe (a child keeps no descriptor of the test process),
 * sends its write end in a signal to `destination` and closes its own copy,
 * reporting "ready <name>" and "sent". Then, per command: "read" reports
 * "got <text>" with what came out of the pipe; "eof" reports "eof" once the
 * pipe is at its end (every write end closed: nobody kept a copy).
 */
static int sender_main(struct testbus_peer *p, void *userdata)
{
        const char *destination = userdata;
        struct fdr r;
        char header[512];
        char *name, *line;
        int sock = sock_connect(p->tb->socket_path);
        int pipefd[2];

        testbus_peer_check(p, sock >= 0);
        testbus_peer_check(p, pipe2(pipefd, O_CLOEXEC) == 0);
        fdr_init(&r, sock);
        name = fdr_hello(&r);
        testbus_peer_check(p, name != NULL);
        testbus_peer_report(p, "ready %s", name);
        free(name);

        snprintf(header, sizeof(header),
                 "{\"type\":\"signal\",\"serial\":2,\"destination\":\"%s\",\"path\":\"" FDS_PATH
                 "\",\"interface\":\"" FDS_INTERFACE "\",\"member\":\"TakeFd\"}",
                 destination);
        testbus_peer_check(
                p, testbus_raw_send_frame_announcing(sock, header, "{\"what\":\"a pipe\"}", 1, &pipefd[1], 1) == 0);
        close(pipefd[1]);
        testbus_peer_report(p, "sent");

        while ((line = testbus_lines_read(&p->cmd, 60000))) {
                struct pollfd pfd = {.fd = pipefd[0], .events = POLLIN};
                char buf[128];
                ssize_t n;

                testbus_peer_check(p, poll(&pfd, 1, TESTBUS_WAIT_MS) == 1);
                n = read(pipefd[0], buf, sizeof(buf) - 1);
                if (strcmp(line, "read") == 0) {
                        testbus_peer_check(p, n > 0);
                        buf[n] = '\0';
                        testbus_peer_report(p, "got %s", buf);
                } else {
                        testbus_peer_check(p, strcmp(line, "eof") == 0);
                        testbus_peer_check(p, n == 0);
                        testbus_peer_report(p, "eof");
                }
                free(line);
        }
        close(pipefd[0]);
        fdr_deinit(&r);
        return 0;
}

/* ---- tests ------------------------------------------------------------------------ */

/* From one client process to another: the descriptor arrives with its frame and works. */
START_TEST(test_fd_between_processes)
{
        struct testbus *tb = testbus_current();
        static const char text[] = "written by the receiver";
        struct testbus_child sender;
        struct rawpeer recv;
        struct fdr_frame f;
        char *line;

        rawpeer_open(&recv);
        testbus_child_start(tb, &sender, sender_main, recv.name);
        line = testbus_child_read(&sender, TESTBUS_WAIT_MS);
        ck_assert_msg(strncmp(line, "ready :", 7) == 0, "sender reported '%s'", line);
        snprintf(sender.unique, sizeof(sender.unique), "%s", line + 6);
        free(line);
        testbus_child_expect(&sender, "sent");

        rawpeer_expect(&recv, &f);
        ck_assert_str_eq(fdr_string(&f, "member"), "TakeFd");
        ck_assert_str_eq(fdr_string(&f, "sender"), sender.unique);
        ck_assert_str_eq(f.body, "{\"what\":\"a pipe\"}");
        ck_assert_uint_eq(f.n_fds, 1);
        ck_assert_int_ge(f.fds[0], 0);
        ck_assert_int_eq(write(f.fds[0], text, strlen(text)), (ssize_t) strlen(text));
        testbus_child_send(&sender, "read");
        testbus_child_expect(&sender, "got written by the receiver");

        /* the sender closed its copy and the broker its own: once the
         * receiver closes the one it got, the pipe is at its end */
        fdr_frame_deinit(&f);
        testbus_child_send(&sender, "eof");
        testbus_child_expect(&sender, "eof");
        testbus_child_finish(&sender);
        rawpeer_close(&recv);
}
END_TEST

/* The maximum, 16, arrive in the order they were sent. */
START_TEST(test_max_fds)
{
        struct rawpeer snd, recv;
        struct fdr_frame f;
        int pipes[IPCBUS_FDS_MAX][2], ends[IPCBUS_FDS_MAX];
        char *h;

        rawpeer_open(&recv);
        rawpeer_open(&snd);
        for (unsigned i = 0; i < IPCBUS_FDS_MAX; i++) {
                make_pipe(pipes[i]);
                ends[i] = pipes[i][1];
        }
        h = signal_header(2, recv.name, "Many");
        rawpeer_send(&snd, h, NULL, IPCBUS_FDS_MAX, ends, IPCBUS_FDS_MAX);
        free(h);
        for (unsigned i = 0; i < IPCBUS_FDS_MAX; i++)
                close(pipes[i][1]);

        rawpeer_expect(&recv, &f);
        ck_assert_str_eq(fdr_string(&f, "member"), "Many");
        ck_assert_uint_eq(f.n_fds, IPCBUS_FDS_MAX);
        for (unsigned i = 0; i < IPCBUS_FDS_MAX; i++) {
                char text[32];

                snprintf(text, sizeof(text), "pipe %u", i);
                expect_through(f.fds[i], pipes[i][0], text);
        }
        fdr_frame_deinit(&f);
        for (unsigned i = 0; i < IPCBUS_FDS_MAX; i++) {
                expect_pipe_eof(pipes[i][0]);
                close(pipes[i][0]);
        }
        rawpeer_close(&snd);
        rawpeer_close(&recv);
}
END_TEST

/* Descriptors go with a call, and back with its return. */
START_TEST(test_fds_in_call_and_return)
{
        struct rawpeer caller, callee;
        struct fdr_frame f;
        int to_callee[2], to_caller[2];
        char *h;

        rawpeer_open(&caller);
        rawpeer_open(&callee);
        make_pipe(to_callee);
        make_pipe(to_caller);

        ck_assert_int_gt(asprintf(&h,
                                  "{\"type\":\"call\",\"serial\":7,\"destination\":\"%s\",\"path\":\"" FDS_PATH
                                  "\",\"interface\":\"" FDS_INTERFACE "\",\"member\":\"Exchange\"}",
                                  callee.name),
                         0);
        rawpeer_send(&caller, h, "{}", 1, &to_callee[1], 1);
        free(h);
        close(to_callee[1]);

        rawpeer_expect(&callee, &f);
        ck_assert_str_eq(fdr_string(&f, "type"), "call");
        ck_assert_int_eq(fdr_int(&f, "serial"), 7);
        ck_assert_uint_eq(f.n_fds, 1);
        expect_through(f.fds[0], to_callee[0], "call");
        fdr_frame_deinit(&f);

        ck_assert_int_gt(asprintf(&h, "{\"type\":\"return\",\"serial\":3,\"reply_serial\":7,\"destination\":\"%s\"}",
                                  caller.name),
                         0);
        rawpeer_send(&callee, h, "{\"ok\":true}", 1, &to_caller[1], 1);
        free(h);
        close(to_caller[1]);

        rawpeer_expect(&caller, &f);
        ck_assert_str_eq(fdr_string(&f, "type"), "return");
        ck_assert_int_eq(fdr_int(&f, "reply_serial"), 7);
        ck_assert_str_eq(fdr_string(&f, "sender"), callee.name);
        ck_assert_uint_eq(f.n_fds, 1);
        expect_through(f.fds[0], to_caller[0], "return");
        fdr_frame_deinit(&f);

        expect_pipe_eof(to_callee[0]);
        expect_pipe_eof(to_caller[0]);
        close(to_callee[0]);
        close(to_caller[0]);
        rawpeer_close(&caller);
        rawpeer_close(&callee);
}
END_TEST

/* A message with a descriptor, then one without, then one with: each gets its own. */
START_TEST(test_fds_stay_with_their_frames)
{
        struct rawpeer snd, recv;
        struct fdr_frame f;
        int a[2], b[2];
        char *h;

        rawpeer_open(&recv);
        rawpeer_open(&snd);
        make_pipe(a);
        make_pipe(b);
        h = signal_header(2, recv.name, "First");
        rawpeer_send(&snd, h, NULL, 1, &a[1], 1);
        free(h);
        h = signal_header(3, recv.name, "Plain");
        rawpeer_send(&snd, h, NULL, 0, NULL, 0);
        free(h);
        h = signal_header(4, recv.name, "Third");
        rawpeer_send(&snd, h, NULL, 1, &b[1], 1);
        free(h);
        close(a[1]);
        close(b[1]);

        rawpeer_expect(&recv, &f);
        ck_assert_str_eq(fdr_string(&f, "member"), "First");
        ck_assert_uint_eq(f.n_fds, 1);
        expect_through(f.fds[0], a[0], "first");
        fdr_frame_deinit(&f);
        rawpeer_expect(&recv, &f);
        ck_assert_str_eq(fdr_string(&f, "member"), "Plain");
        ck_assert_uint_eq(f.n_fds, 0);
        fdr_frame_deinit(&f);
        rawpeer_expect(&recv, &f);
        ck_assert_str_eq(fdr_string(&f, "member"), "Third");
        ck_assert_uint_eq(f.n_fds, 1);
        expect_through(f.fds[0], b[0], "third");
        fdr_frame_deinit(&f);

        close(a[0]);
        close(b[0]);
        rawpeer_close(&snd);
        rawpeer_close(&recv);
}
END_TEST

/* A libipcbus receiver gets the message; its descriptors live as long as the message. */
START_TEST(test_fd_to_libipcbus_client)
{
        struct testbus *tb = testbus_current();
        struct testbus_rec rec;
        struct rawpeer snd;
        ipcbus_bus *bus;
        ipcbus_message *m;
        const char *body;
        size_t len = 0;
        int p[2];
        char *h;

        bus = testbus_connect(tb);
        testbus_rec_init(&rec, bus, TESTBUS_REC_SIGNALS);
        rawpeer_open(&snd);
        make_pipe(p);
        h = signal_header(2, ipcbus_get_unique_name(bus), "TakeFd");
        rawpeer_send(&snd, h, "{\"n\":1}", 1, &p[1], 1);
        free(h);
        close(p[1]);

        m = testbus_rec_wait_member(&rec, "TakeFd", TESTBUS_WAIT_MS);
        ck_assert_msg(m, "the libipcbus client did not get the signal");
        ck_assert_str_eq(ipcbus_message_get_sender(m), snd.name);
        body = ipcbus_message_get_body(m, &len);
        ck_assert_uint_eq(len, 7);
        ck_assert(memcmp(body, "{\"n\":1}", 7) == 0);

        /* the recorded message holds the descriptor; dropping it closes it */
        expect_pipe_open(p[0]);
        testbus_rec_deinit(&rec);
        expect_pipe_eof(p[0]);
        close(p[0]);
        testbus_sync(bus);
        ipcbus_unref(bus);
        rawpeer_close(&snd);
}
END_TEST

/* Descriptors sent to the driver, or to nobody, are closed by the broker. */
START_TEST(test_consumed_fds_closed)
{
        struct rawpeer snd;
        struct fdr_frame f;
        int p[2], q[2];
        char *h;

        rawpeer_open(&snd);
        make_pipe(p);
        rawpeer_send(&snd,
                     "{\"type\":\"call\",\"serial\":5,\"destination\":\"org.ipcbus.Bus\",\"path\":\"/org/ipcbus/Bus\","
                     "\"member\":\"Ping\"}",
                     NULL, 1, &p[1], 1);
        close(p[1]);
        rawpeer_expect(&snd, &f);
        ck_assert_str_eq(fdr_string(&f, "type"), "return");
        ck_assert_int_eq(fdr_int(&f, "reply_serial"), 5);
        ck_assert_uint_eq(f.n_fds, 0);
        fdr_frame_deinit(&f);
        expect_pipe_eof(p[0]);
        close(p[0]);

        /* a signal to a name without owner is dropped, descriptors and all */
        make_pipe(q);
        h = signal_header(6, "org.example.Nobody", "Lost");
        rawpeer_send(&snd, h, NULL, 1, &q[1], 1);
        free(h);
        close(q[1]);
        expect_pipe_eof(q[0]);
        close(q[0]);

        /* and the connection is fine */
        rawpeer_send(&snd,
                     "{\"type\":\"call\",\"serial\":7,\"destination\":\"org.ipcbus.Bus\",\"path\":\"/org/ipcbus/Bus\","
                     "\"member\":\"Ping\"}",
                     NULL, 0, NULL, 0);
        rawpeer_expect(&snd, &f);
        ck_assert_int_eq(fdr_int(&f, "reply_serial"), 7);
        fdr_frame_deinit(&f);
        rawpeer_close(&snd);
}
END_TEST

/*
 * Counts that disagree with the descriptors that arrived are framing errors:
 * ProtocolError, then the broker closes. The frame is a unicast signal to a
 * name without owner, which would get no answer if it were accepted.
 */
static void expect_fd_count_error(uint16_t announce, unsigned n_send)
{
        struct testbus *tb = testbus_current();
        struct rawpeer snd;
        struct fdr_frame f;
        int p[2], ends[IPCBUS_FDS_MAX + 1];
        ipcbus_bus *good;
        char *h;
        int r;

        good = testbus_connect(tb);
        rawpeer_open(&snd);
        make_pipe(p);
        for (unsigned i = 0; i < n_send; i++)
                ends[i] = p[1];
        h = signal_header(2, "org.example.Nobody", "Counted");
        rawpeer_send(&snd, h, NULL, announce, ends, n_send);
        free(h);
        close(p[1]);

        rawpeer_expect(&snd, &f);
        ck_assert_str_eq(fdr_string(&f, "type"), "error");
        ck_assert_str_eq(fdr_string(&f, "error"), IPCBUS_ERROR_PROTOCOL);
        ck_assert_int_eq(fdr_int(&f, "reply_serial"), -1);
        fdr_frame_deinit(&f);
        while ((r = fdr_next(&snd.r, TESTBUS_WAIT_MS, &f)) == 1) {
                ck_assert_msg(fdr_is_driver_signal(&f), "expected the connection to close, got %s", f.header);
                fdr_frame_deinit(&f);
        }
        ck_assert_msg(r == 0 || r == -ECONNRESET, "expected the connection to close (%d)", r);

        /* none of the descriptors stayed with the broker */
        expect_pipe_eof(p[0]);
        close(p[0]);
        rawpeer_close(&snd);
        /* and the bus still works for others */
        testbus_sync(good);
        ipcbus_unref(good);
}

START_TEST(test_fds_sent_not_announced)
{
        expect_fd_count_error(0, 1);
}
END_TEST

START_TEST(test_fds_fewer_announced)
{
        expect_fd_count_error(1, 2);
}
END_TEST

START_TEST(test_fds_more_announced)
{
        expect_fd_count_error(3, 2);
}
END_TEST

START_TEST(test_fds_17_sent)
{
        expect_fd_count_error(IPCBUS_FDS_MAX, IPCBUS_FDS_MAX + 1);
}
END_TEST

static Suite *fds_suite(void)
{
        Suite *s = suite_create("bus_fds");
        TCase *tc;

        tc = testbus_tcase("passing");
        tcase_add_test(tc, test_fd_between_processes);
        tcase_add_test(tc, test_max_fds);
        tcase_add_test(tc, test_fds_in_call_and_return);
        tcase_add_test(tc, test_fds_stay_with_their_frames);
        tcase_add_test(tc, test_fd_to_libipcbus_client);
        tcase_add_test(tc, test_consumed_fds_closed);
        suite_add_tcase(s, tc);

        tc = testbus_tcase("mismatch");
        tcase_add_test(tc, test_fds_sent_not_announced);
        tcase_add_test(tc, test_fds_fewer_announced);
        tcase_add_test(tc, test_fds_more_announced);
        tcase_add_test(tc, test_fds_17_sent);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return testbus_run_suite(fds_suite());
}
