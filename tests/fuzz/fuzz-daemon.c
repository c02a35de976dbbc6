/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the broker fed bytes as one connection's input.
 *
 * Each run builds a whole bus (an event_base, a struct bus with the default
 * configuration), connects a socketpair to it with bus_accept(), writes the
 * input into the other end in chunks, turning the event loop between
 * writes and reading away whatever the broker answers, then hangs up and
 * tears everything down. Besides the sanitizers' checks: everything the
 * broker writes to either client must be whole frames a client can parse,
 * and a run must leave no descriptor open.
 *
 * Input layout:
 *   byte 0   bit 0:    send a valid Hello first, so the input reaches routing after Hello
 *            bit 1:    connect a receiver first (":1.1"): it says Hello, subscribes to
 *                      everything (AddMatch {}) and owns org.fuzz.Target, so routed
 *                      calls and signals have somewhere to go
 *            bits 2-4: size of the writes (chunk_sizes[]; 0 means as much as fits)
 *            bits 5-6: descriptors (of /dev/null) sent with the input: 0, 1, 2 or 17
 *            bit 7:    send those descriptors with every write, not only the first
 *   the rest the connection's input
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon/bus/bus.h"
#include "daemon/log.h"
#include "protocol/frame.h"
#include "protocol/ipcbus/wire.h"
#include "protocol/message.h"
#include "protocol/proto-error.h"
#include "tests/fuzz/fuzz-util.h"
#include "util/fdpass.h"

/* Loop turns allowed without progress before a phase gives up (the broker may
 * legitimately stop reading, e.g. under backpressure). */
#define IDLE_PASSES_MAX 64

static const size_t chunk_sizes[8] = {0, 1, 3, 16, 64, 256, 1024, 4096};
static const unsigned fd_counts[4] = {0, 1, 2, IPCBUS_FDS_MAX + 1};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        const char *level = getenv("FUZZ_LOG_LEVEL");

        /* The broker logs every disconnect; quiet unless asked (FUZZ_LOG_LEVEL=7 for debug). */
        log_set_max_level(level ? atoi(level) : LOG_CRIT);
        signal(SIGPIPE, SIG_IGN);
        return 0;
}

/* The number of open descriptors of this process. */
static int count_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        struct dirent *e;
        int n = 0;

        fuzz_assert(d, "cannot open /proc/self/fd");
        while ((e = readdir(d)))
                if (e->d_name[0] != '.')
                        n++;
        closedir(d);
        return n - 1; /* the directory's own descriptor */
}

/* One end of a socketpair the broker serves, and a reader for what the broker writes to it. */
struct client {
        int fd;
        bool open; /* the broker has not closed its end */
        struct frame_reader reader;
};

static int no_fds[IPCBUS_FDS_MAX] = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1};

/*
 * Read what the broker sent to c (closing any descriptors that came with
 * it) and check it: the broker must only ever write whole, valid frames
 * that a client can parse. c->open turns false once the broker has closed.
 */
static void client_drain(struct client *c)
{
        while (c->open) {
                union {
                        struct cmsghdr align;
                        char buf[CMSG_SPACE(sizeof(int) * IPCBUS_FDS_MAX)];
                } control;
                struct iovec iov;
                struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
                struct frame_view f;
                uint8_t *space;
                size_t size;
                ssize_t n;
                int r;

                fuzz_assert(frame_reader_space(&c->reader, 65536, &space, &size) == 0, "out of memory");
                iov = (struct iovec){space, size};
                mh.msg_control = control.buf;
                mh.msg_controllen = sizeof(control.buf);
                n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
                if (n < 0) {
                        fuzz_assert(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNRESET,
                                    "recvmsg: %s", strerror(errno));
                        c->open = errno != ECONNRESET;
                        return;
                }
                if (n == 0) {
                        c->open = false;
                        return;
                }
                fdpass_collect(&mh, NULL, 0); /* closes them */
                frame_reader_commit(&c->reader, (size_t) n);
                while ((r = frame_reader_next(&c->reader, &f)) == 0 && f.data) {
                        struct msg *m = NULL;

                        r = msg_parse(&f, NULL, MSG_PARSE_FROM_BROKER, no_fds, &m, NULL, NULL);
                        fuzz_assert(r == 0, "the broker sent a message a client cannot parse: %d (%s): %.*s", r,
                                    r > 0 ? proto_strerror(r) : "errno", (int) f.prefix.header_len, f.header);
                        msg_unref(m);
                }
                fuzz_assert(r == 0, "the broker broke the stream: %d (%s)", r, proto_strerror(r));
        }
}

/* Send up to len bytes on fd, with n_fds descriptors of /dev/null. Returns the count or -errno. */
static ssize_t send_with_fds(int fd, const uint8_t *data, size_t len, unsigned n_fds)
{
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * (IPCBUS_FDS_MAX + 1))];
        } control;
        int fds[IPCBUS_FDS_MAX + 1];
        struct iovec iov = {(void *) data, len};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        ssize_t n;

        for (unsigned i = 0; i < n_fds; i++) {
                fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
                fuzz_assert(fds[i] >= 0, "cannot open /dev/null");
        }
        if (n_fds > 0)
                fdpass_attach(&mh, control.buf, fds, n_fds);
        n = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0)
                n = -errno;
        for (unsigned i = 0; i < n_fds; i++)
                close(fds[i]);
        return n;
}

/* One turn of the broker's loop, then read what it wrote to the clients. */
static void turn(struct event_base *base, struct client *clients, size_t n)
{
        event_base_loop(base, EVLOOP_NONBLOCK);
        for (size_t i = 0; i < n; i++)
                client_drain(&clients[i]);
}

/* Write one whole frame (a small one the socket surely takes) to fd. */
static void send_frame(int fd, const char *header, const char *body)
{
        uint8_t buf[512];
        size_t hl = strlen(header), bl = strlen(body);

        fuzz_assert(IPCBUS_FRAME_PREFIX_SIZE + hl + bl <= sizeof(buf), "frame too large");
        frame_prefix_encode(buf, (uint32_t) hl, (uint32_t) bl, 0);
        memcpy(buf + IPCBUS_FRAME_PREFIX_SIZE, header, hl);
        memcpy(buf + IPCBUS_FRAME_PREFIX_SIZE + hl, body, bl);
        fuzz_assert(send_with_fds(fd, buf, IPCBUS_FRAME_PREFIX_SIZE + hl + bl, 0) ==
                            (ssize_t) (IPCBUS_FRAME_PREFIX_SIZE + hl + bl),
                    "cannot send a setup frame");
}

#define DRIVER_CALL(serial, member)                                                                                    \
        "{\"type\":\"call\",\"serial\":" #serial ",\"destination\":\"org.ipcbus.Bus\",\"path\":\"/org/ipcbus/Bus\","   \
        "\"member\":\"" member "\"}"

static void send_hello(int fd)
{
        send_frame(fd, DRIVER_CALL(1, "Hello"), "");
}

/* Connect a client: a socketpair whose first end the bus takes. */
static void client_connect(struct client *c, struct bus *bus)
{
        int sp[2];

        fuzz_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0, "socketpair: %s", strerror(errno));
        c->fd = sp[1];
        c->open = true;
        frame_reader_init(&c->reader, IPCBUS_HEADER_MAX, 0);
        bus_accept(sp[0], bus);
}

static void client_close(struct client *c)
{
        close(c->fd);
        frame_reader_deinit(&c->reader);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const int fds_before = count_fds();
        struct client clients[2]; /* the fuzzed connection, then the receiver if any */
        struct client *fuzzed = &clients[0];
        struct event_base *base;
        struct bus bus;
        uint8_t mode;
        size_t chunk, off = 0, n_clients = 1;
        unsigned n_fds, idle = 0;

        if (size < 1)
                return 0;
        mode = data[0];
        data++;
        size--;
        chunk = chunk_sizes[(mode >> 2) & 7u];
        n_fds = fd_counts[(mode >> 5) & 3u];

        base = event_base_new();
        fuzz_assert(base, "event_base_new failed");
        fuzz_assert(bus_init(&bus, base, NULL) == 0, "bus_init failed");

        if (mode & 2u) {
                struct client *receiver = &clients[1];

                client_connect(receiver, &bus);
                n_clients = 2;
                send_hello(receiver->fd);
                send_frame(receiver->fd, DRIVER_CALL(2, "AddMatch"), "{\"rule\":{}}");
                send_frame(receiver->fd, DRIVER_CALL(3, "RequestName"), "{\"name\":\"org.fuzz.Target\"}");
                for (int i = 0; i < 4; i++)
                        turn(base, receiver, 1);
        }

        client_connect(fuzzed, &bus);
        if (mode & 1u)
                send_hello(fuzzed->fd);

        /* Write the input, letting the broker read (and answer) between writes. */
        while (off < size && fuzzed->open && idle < IDLE_PASSES_MAX) {
                size_t want = chunk && chunk < size - off ? chunk : size - off;
                unsigned with_fds = (off == 0 || (mode & 0x80u)) ? n_fds : 0;
                ssize_t n = send_with_fds(fuzzed->fd, data + off, want, with_fds);

                if (n > 0) {
                        off += (size_t) n;
                        idle = 0;
                } else if (n == -EAGAIN || n == -EWOULDBLOCK) {
                        idle++;
                } else {
                        break; /* the broker hung up */
                }
                turn(base, clients, n_clients);
        }

        /* Hang up, and let the broker see it and close its end. */
        shutdown(fuzzed->fd, SHUT_WR);
        for (idle = 0; fuzzed->open && idle < IDLE_PASSES_MAX; idle++)
                turn(base, clients, n_clients);

        for (size_t i = 0; i < n_clients; i++)
                client_close(&clients[i]);
        bus_deinit(&bus);
        event_base_free(base);

        fuzz_assert(count_fds() == fds_before, "%d descriptors before the run, %d after", fds_before, count_fds());
        return 0;
}
