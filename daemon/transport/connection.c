/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon/transport/connection.h"
#include "protocol/message.h"
#include "protocol/proto-error.h"
#include "util/fdpass.h"
#include "util/util.h"

/* Fairness: what one read event may do before the loop serves others. */
#define CONNECTION_FRAMES_PER_EVENT 64u
#define CONNECTION_BYTES_PER_EVENT (256u * 1024u)
/* How much a read asks the frame reader for at least. */
#define CONNECTION_READ_SIZE (64u * 1024u)
/* Room before a large frame for the stamp the broker stitches in: the prefix,
 * and the sender's name (at most 255 bytes) with its uid and pid as JSON. */
#define CONNECTION_HEADROOM (IPCBUS_FRAME_PREFIX_SIZE + IPCBUS_NAME_MAX + 96u)
/* A large frame gets its whole buffer on its prefix's word up to this size
 * (charged to its sender as read); a bigger one grows with what arrives. */
#define CONNECTION_RESERVE_MAX (1024u * 1024u + CONNECTION_READ_SIZE)
/* Messages gathered into one sendmsg, and bytes written per write event. */
#define CONNECTION_IOV_MAX 64u
#define CONNECTION_WRITE_BYTES_PER_EVENT (4u * 1024u * 1024u)
/* How long "close after flush" waits for a peer that does not read. */
#define CONNECTION_DRAIN_TIMEOUT_SEC 5
/* The kernel's SCM_MAX_FD: room for every descriptor a sender can attach, so
 * MSG_CTRUNC only ever means the broker could not take them (EMFILE). */
#define CONNECTION_SCM_MAX_FD 253u

static void connection_on_read(evutil_socket_t fd, short what, void *userdata);
static void connection_on_turn(evutil_socket_t fd, short what, void *userdata);
static void connection_on_write(evutil_socket_t fd, short what, void *userdata);
static void connection_on_close(evutil_socket_t fd, short what, void *userdata);
static void connection_on_stall(evutil_socket_t fd, short what, void *userdata);
static void connection_on_rx_stall(evutil_socket_t fd, short what, void *userdata);

/* The peer's supplementary groups (SO_PEERGROUPS); none when the kernel cannot tell. */
static int connection_read_groups(struct connection *c, int fd)
{
        socklen_t len = 32 * sizeof(gid_t);

        for (;;) {
                gid_t *groups = malloc(len ? len : 1);
                socklen_t got = len;

                if (!groups)
                        return -ENOMEM;
                if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &got) == 0) {
                        c->groups = groups;
                        c->n_groups = (unsigned) (got / sizeof(gid_t));
                        return 0;
                }
                free(groups);
                if (errno != ERANGE || got <= len)
                        return 0; /* ENOPROTOOPT on old kernels: primary group only */
                len = got;
        }
}

int connection_loop_init(struct event_base *base)
{
        return event_base_priority_init(base, CONNECTION_N_PRIORITIES) < 0 ? -EINVAL : 0;
}

int connection_init(struct connection *c, struct event_base *base, int fd, const struct connection_limits *limits,
                    const struct connection_ops *ops, void *userdata)
{
        socklen_t len = sizeof(c->cred);
        int flags;

        *c = (struct connection){
                .base = base,
                .fd = -1,
                .limits = limits,
                .ops = ops,
                .userdata = userdata,
        };
        frame_reader_init(&c->reader,
                          limits->max_header && limits->max_header < IPCBUS_CLIENT_HEADER_MAX
                                  ? limits->max_header
                                  : IPCBUS_CLIENT_HEADER_MAX,
                          limits->max_body);
        c->reader.max_frame = limits->max_frame;
        /* A frame that takes more than one read comes in a buffer of its own,
         * which its message keeps (the sender stamped in front): no copy. */
        c->reader.own_min = CONNECTION_READ_SIZE;
        c->reader.own_reserve_max = CONNECTION_RESERVE_MAX;
        c->reader.headroom = CONNECTION_HEADROOM;

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) < 0)
                goto fail_errno;
        if (connection_read_groups(c, fd) < 0) {
                errno = ENOMEM;
                goto fail_errno;
        }
        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0))
                goto fail_errno;

        c->ev_read = event_new(base, fd, EV_READ | EV_PERSIST, connection_on_read, c);
        c->ev_write = event_new(base, fd, EV_WRITE | EV_PERSIST, connection_on_write, c);
        c->ev_close = evtimer_new(base, connection_on_close, c);
        c->ev_stall = evtimer_new(base, connection_on_stall, c);
        c->ev_rx_stall = evtimer_new(base, connection_on_rx_stall, c);
        c->ev_turn = evtimer_new(base, connection_on_turn, c);
        if (!c->ev_read || !c->ev_write || !c->ev_close || !c->ev_stall || !c->ev_rx_stall || !c->ev_turn) {
                errno = ENOMEM;
                goto fail_errno;
        }
        /* Writes first; on a base without connection_loop_init's priorities, all are one. */
        (void) event_priority_set(c->ev_write, CONNECTION_PRIORITY_WRITE);

        c->fd = fd;
        return 0;

fail_errno : {
        int r = -errno;

        connection_deinit(c);
        return r;
}
}

void connection_deinit(struct connection *c)
{
        if (c->ev_read)
                event_free(c->ev_read);
        if (c->ev_write)
                event_free(c->ev_write);
        if (c->ev_close)
                event_free(c->ev_close);
        if (c->ev_stall)
                event_free(c->ev_stall);
        if (c->ev_rx_stall)
                event_free(c->ev_rx_stall);
        if (c->ev_turn)
                event_free(c->ev_turn);
        c->ev_read = c->ev_write = c->ev_close = c->ev_stall = c->ev_rx_stall = c->ev_turn = NULL;

        if (c->tx_total)
                *c->tx_total -= c->tx_bytes;
        msg_queue_clear(&c->tx);
        free(c->groups);
        c->groups = NULL;
        c->n_groups = 0;
        c->tx_off = c->tx_bytes = c->tx_fds = 0;

        for (unsigned i = 0; i < c->n_rx_fds; i++)
                if (!c->rx_fds[i].refused)
                        close_fds(c->rx_fds[i].fds, c->rx_fds[i].n);
        c->n_rx_fds = 0;
        c->n_held_fds = 0;
        if (c->rx_total)
                *c->rx_total -= c->rx_counted;
        c->rx_counted = 0;
        frame_reader_deinit(&c->reader);

        if (c->fd >= 0)
                close(c->fd);
        c->fd = -1;
}

void connection_set_total(struct connection *c, uint64_t *total)
{
        c->tx_total = total;
}

void connection_move_account(struct connection *c, const struct connection_limits *limits, uint64_t *total)
{
        if (c->tx_total)
                *c->tx_total -= c->tx_bytes;
        c->tx_total = total;
        if (c->tx_total)
                *c->tx_total += c->tx_bytes;
        c->limits = limits;
}

void connection_set_incoming_total(struct connection *c, uint64_t *total)
{
        c->rx_total = total;
}

void connection_set_max_frame(struct connection *c, uint32_t max_frame)
{
        c->reader.max_frame = max_frame ? max_frame : c->limits->max_frame;
}

int connection_start(struct connection *c)
{
        if (event_add(c->ev_read, NULL) < 0)
                return -ENOMEM;
        c->reading = true;
        return 0;
}

/*
 * Give up the rest of this pass: stop polling c's socket and take the next
 * turn after the loop has polled again, behind every connection that became
 * ready meanwhile. (libevent runs an event activated from a callback in the
 * same pass, before it polls: a connection that activated its own read
 * again would keep the loop from ever seeing the other sockets.)
 */
static void connection_yield(struct connection *c)
{
        static const struct timeval next_pass = {0, 0};

        event_del(c->ev_read);
        if (evtimer_add(c->ev_turn, &next_pass) < 0) {
                c->end = CONNECTION_END_IO_ERROR;
                connection_close(c, "cannot schedule reading");
        }
}

/* The next turn: poll the socket again, and read what waits (frames already read first). */
static void connection_on_turn(evutil_socket_t fd, short what, void *userdata)
{
        struct connection *c = userdata;

        if (c->closing || !c->reading || c->paused)
                return;
        if (event_add(c->ev_read, NULL) < 0) {
                c->end = CONNECTION_END_IO_ERROR;
                connection_close(c, "cannot poll for reading");
                return;
        }
        connection_on_read(c->fd, EV_READ, c);
}

void connection_pause(struct connection *c)
{
        if (c->paused)
                return;
        c->paused = true;
        if (c->reading) {
                event_del(c->ev_read);
                event_del(c->ev_turn);
        }
        /* A frame the broker does not read is not the sender's delay. */
        event_del(c->ev_rx_stall);
        c->rx_timing = false;
}

void connection_resume(struct connection *c)
{
        if (!c->paused)
                return;
        c->paused = false;
        if (!c->reading)
                return;
        /* Frames read before the pause wait in the reader: they come first in
         * its next turn, after the others had theirs (it was held back for
         * sending too much). */
        connection_yield(c);
}

/* ---- closing ----------------------------------------------------------- */

static void connection_stop_reading(struct connection *c)
{
        c->reading = false;
        event_del(c->ev_read);
        event_del(c->ev_turn);
        event_del(c->ev_rx_stall);
        c->rx_timing = false;
}

/* Whether frames may be handed to the owner now. */
static bool connection_wants_frames(const struct connection *c)
{
        return c->reading && !c->paused;
}

/* The end: stop all events and tell the owner, which may free c. Only ever
 * called at the end of one of c's own event callbacks. */
static void connection_finish(struct connection *c, const char *reason)
{
        connection_stop_reading(c);
        event_del(c->ev_write);
        event_del(c->ev_close);
        event_del(c->ev_stall);
        event_del(c->ev_rx_stall);
        c->write_armed = false;
        c->closing = true;
        c->ops->closed(c, reason, c->userdata);
}

static void connection_set_reason(struct connection *c, const char *fmt, va_list ap)
        __attribute__((format(printf, 2, 0)));

static void connection_set_reason(struct connection *c, const char *fmt, va_list ap)
{
        vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
}

void connection_close(struct connection *c, const char *fmt, ...)
{
        va_list ap;

        if (c->closing)
                return;
        c->closing = true;
        c->draining = false;
        connection_stop_reading(c);
        event_del(c->ev_write);
        event_del(c->ev_stall);
        c->write_armed = false;

        va_start(ap, fmt);
        connection_set_reason(c, fmt, ap);
        va_end(ap);

        event_del(c->ev_close);
        event_active(c->ev_close, EV_TIMEOUT, 0);
}

void connection_close_after_flush(struct connection *c, const char *fmt, ...)
{
        const struct timeval deadline = {.tv_sec = CONNECTION_DRAIN_TIMEOUT_SEC};
        va_list ap;

        if (c->closing || c->draining)
                return;
        c->draining = true;
        connection_stop_reading(c);

        va_start(ap, fmt);
        connection_set_reason(c, fmt, ap);
        va_end(ap);

        if (c->tx.len == 0)
                event_active(c->ev_close, EV_TIMEOUT, 0);
        else if (evtimer_add(c->ev_close, &deadline) < 0)
                connection_close(c, "%s", c->reason);
}

static void connection_on_close(evutil_socket_t fd, short what, void *userdata)
{
        struct connection *c = userdata;

        if (c->draining && c->tx.len > 0) {
                size_t n = strlen(c->reason);

                snprintf(c->reason + n, sizeof(c->reason) - n, " (peer did not read %zu queued bytes in time)",
                         c->tx_bytes);
                c->failed = true;
                c->end = CONNECTION_END_STALLED;
        }
        connection_finish(c, c->reason);
}

static void connection_on_rx_stall(evutil_socket_t fd, short what, void *userdata)
{
        struct connection *c = userdata;

        if (c->closing || !connection_wants_frames(c))
                return;
        snprintf(c->reason, sizeof(c->reason),
                 "stalled: an incoming frame was not complete %" PRIu32 " ms after its first byte (%zu bytes in)",
                 c->limits->stall_ms, frame_reader_pending(&c->reader));
        c->failed = true;
        c->end = CONNECTION_END_STALLED;
        connection_finish(c, c->reason);
}

static void connection_on_stall(evutil_socket_t fd, short what, void *userdata)
{
        struct connection *c = userdata;

        if (c->closing)
                return;
        snprintf(c->reason, sizeof(c->reason), "stalled: read nothing for %" PRIu32 " ms with %zu bytes queued",
                 c->limits->stall_ms, c->tx_bytes);
        c->failed = true;
        c->end = CONNECTION_END_STALLED;
        connection_finish(c, c->reason);
}

/* ---- reading ----------------------------------------------------------- */

/*
 * Keep the descriptors of one recvmsg that read the stream bytes [start,
 * end). `truncated`: the kernel could not pass them all, which (the control
 * buffer having room for as many as a sender can attach) means the broker is
 * out of descriptors: the frame is refused, not its sender blamed.
 */
static void connection_keep_fds(struct connection *c, uint64_t start, uint64_t end, const int *fds, unsigned n,
                                bool truncated)
{
        struct connection_fd_batch *b;
        int refused = 0;

        if (n > IPCBUS_FDS_MAX) {
                close_fds(fds, n);
                if (!c->rx_error)
                        c->rx_error = PROTO_E_TOO_MANY_FDS;
                return;
        }
        if (n == 0 && !truncated)
                return;
        if (c->n_rx_fds == CONNECTION_FD_BATCHES || start == end) {
                /* More batches pending than frames could claim them: counts disagree. */
                close_fds(fds, n);
                if (!c->rx_error)
                        c->rx_error = PROTO_E_FDS_MISMATCH;
                return;
        }
        if (truncated)
                refused = CONNECTION_FDS_SHORT;
        else if (c->ops->charge_fds)
                refused = c->ops->charge_fds(c, n, c->userdata);
        if (refused)
                close_fds(fds, n);
        else
                c->n_held_fds += n;

        b = &c->rx_fds[c->n_rx_fds++];
        b->start = start;
        b->end = end;
        b->n = n;
        b->refused = refused;
        if (!refused)
                memcpy(b->fds, fds, n * sizeof(int));
}

/* Keep *rx_total in step with the bytes this connection holds unhandled
 * (a large frame's whole buffer from its prefix on). */
static void connection_count_incoming(struct connection *c)
{
        uint64_t now = frame_reader_held(&c->reader);

        if (c->rx_total)
                *c->rx_total = *c->rx_total - c->rx_counted + now;
        c->rx_counted = now;
}

/*
 * Time the incoming frame at the head of the reader while it is incomplete
 * and the connection is being read: from when its first byte was seen (a
 * pause for backpressure starts the count again).
 */
static void connection_time_incoming(struct connection *c)
{
        uint64_t head = c->rx_pos - frame_reader_pending(&c->reader);
        const struct timeval tv = {
                .tv_sec = c->limits->stall_ms / 1000,
                .tv_usec = (c->limits->stall_ms % 1000) * 1000,
        };

        if (!c->limits->stall_ms || frame_reader_pending(&c->reader) == 0 || !connection_wants_frames(c)) {
                if (c->rx_timing)
                        event_del(c->ev_rx_stall);
                c->rx_timing = false;
                return;
        }
        if (c->rx_timing && c->rx_timed == head)
                return;
        c->rx_timed = head;
        c->rx_timing = evtimer_add(c->ev_rx_stall, &tv) == 0;
}

/*
 * One recvmsg into the frame reader. Returns the byte count (0 at EOF) or a
 * negative errno (-EAGAIN when there is nothing to read). *ret_short is set
 * when the read did not fill the space offered: the socket is most likely
 * empty, and level-triggered polling reports it again if not.
 */
static ssize_t connection_recv(struct connection *c, bool *ret_short)
{
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * CONNECTION_SCM_MAX_FD)];
        } control;
        int fds[CONNECTION_SCM_MAX_FD];
        unsigned n_fds = 0;
        bool truncated;
        struct iovec iov;
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = control.buf,
                .msg_controllen = sizeof(control.buf),
        };
        uint8_t *p;
        size_t size;
        ssize_t n;
        int r;

        r = frame_reader_space(&c->reader, CONNECTION_READ_SIZE, &p, &size);
        if (r < 0)
                return r;
        iov.iov_base = p;
        iov.iov_len = size;

        n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0)
                return -errno;

        truncated = mh.msg_flags & MSG_CTRUNC;
        n_fds = fdpass_collect(&mh, fds, CONNECTION_SCM_MAX_FD);

        *ret_short = (size_t) n < size;
        frame_reader_commit(&c->reader, (size_t) n);
        connection_keep_fds(c, c->rx_pos, c->rx_pos + (uint64_t) n, fds, n_fds, truncated);
        c->rx_pos += (uint64_t) n;
        connection_count_incoming(c);
        return n;
}

/*
 * The descriptors for a frame that starts at stream offset `start` and
 * announces n of them: they must be the oldest pending batch, received by the
 * read that brought the frame's first byte. Returns 0 (*ret_refused says
 * whether they were refused on arrival) or PROTO_E_FDS_MISMATCH.
 */
static int connection_take_fds(struct connection *c, uint64_t start, uint64_t size, unsigned n, int *fds,
                               int *ret_refused)
{
        struct connection_fd_batch *b = c->n_rx_fds > 0 ? &c->rx_fds[0] : NULL;

        if (b && b->end <= start)
                return PROTO_E_FDS_MISMATCH; /* a batch no frame claimed */
        if (n == 0) {
                /* A batch that ends inside this frame can be claimed by no
                 * later frame. (One that merely starts before this frame's
                 * first byte may carry the next frame's fds: a read can join
                 * plain bytes with the chunk that brought descriptors.) */
                if (b && b->end <= start + size)
                        return PROTO_E_FDS_MISMATCH;
                return 0;
        }
        /* A batch cut short by the broker's own shortage has an unknown size. */
        if (!b || start < b->start || (b->n != n && b->refused != CONNECTION_FDS_SHORT))
                return PROTO_E_FDS_MISMATCH;
        if (n > c->limits->max_fds)
                return PROTO_E_TOO_MANY_FDS;

        *ret_refused = b->refused;
        if (!b->refused) {
                memcpy(fds, b->fds, n * sizeof(int));
                c->n_held_fds -= n; /* the charge passes on with them */
        }
        c->n_rx_fds--;
        memmove(&c->rx_fds[0], &c->rx_fds[1], c->n_rx_fds * sizeof(c->rx_fds[0]));
        return 0;
}

/*
 * Hand whole frames to the owner while *budget lasts and the owner still
 * wants them. Returns 0, or a positive PROTO_E_* code when the stream broke.
 */
static int connection_dispatch(struct connection *c, unsigned *budget)
{
        while (*budget > 0 && connection_wants_frames(c)) {
                int fds[IPCBUS_FDS_MAX];
                struct frame_view f;
                uint64_t start = c->rx_pos - frame_reader_pending(&c->reader);
                int refused;
                int r;

                if (c->rx_error)
                        return c->rx_error;
                if (frame_reader_pending(&c->reader) == 0)
                        break;

                r = frame_reader_next(&c->reader, &f);
                if (r != 0)
                        return r;
                if (!f.data)
                        break;

                refused = 0;
                r = connection_take_fds(c, start, f.size, f.prefix.n_fds, fds, &refused);
                if (r)
                        return r;

                (*budget)--;
                c->rx_frames++;
                connection_count_incoming(c);
                c->rx_fds_refused = refused;
                c->ops->frame(c, &f, refused ? NULL : fds, c->userdata);
                c->rx_fds_refused = 0;
        }

        /* Every byte is consumed, yet descriptors wait: no frame announced them. */
        if (connection_wants_frames(c) && c->n_rx_fds > 0 && frame_reader_pending(&c->reader) == 0)
                return PROTO_E_FDS_MISMATCH;
        return 0;
}

static void connection_on_read(evutil_socket_t fd, short what, void *userdata)
{
        struct connection *c = userdata;
        unsigned budget = CONNECTION_FRAMES_PER_EVENT;
        size_t bytes = 0;
        bool drained = false;

        while (connection_wants_frames(c)) {
                ssize_t n;
                int r;

                r = connection_dispatch(c, &budget);
                if (r > 0) {
                        connection_stop_reading(c);
                        c->ops->broken(c, r, c->userdata);
                        return;
                }
                if (!connection_wants_frames(c))
                        return;

                if (budget == 0 || bytes >= CONNECTION_BYTES_PER_EVENT) {
                        /* Enough for this pass; carry on after the others had their turn. */
                        connection_time_incoming(c);
                        connection_yield(c);
                        return;
                }

                if (c->eof) {
                        c->end = CONNECTION_END_HANGUP;
                        connection_finish(c, frame_reader_pending(&c->reader) > 0 ? "hung up in the middle of a frame"
                                                                                  : "hung up");
                        return;
                }
                /* Saves the read that would only say EAGAIN. An idle
                 * connection keeps no read buffer: thousands of them would
                 * otherwise hold 64 KiB each. */
                if (drained) {
                        frame_reader_release(&c->reader);
                        connection_time_incoming(c);
                        return;
                }

                n = connection_recv(c, &drained);
                if (n == -EAGAIN || n == -EWOULDBLOCK) {
                        frame_reader_release(&c->reader);
                        connection_time_incoming(c);
                        return;
                }
                if (n == -EINTR)
                        continue;
                if (n < 0) {
                        snprintf(c->reason, sizeof(c->reason), "read error: %s", strerror((int) -n));
                        c->failed = n != -ECONNRESET; /* a peer that vanished is no fault of ours */
                        c->end = c->failed ? CONNECTION_END_IO_ERROR : CONNECTION_END_HANGUP;
                        connection_finish(c, c->reason);
                        return;
                }
                if (n == 0)
                        c->eof = true;
                bytes += (size_t) n;
                if (c->rx_total && c->limits->max_incoming_total && *c->rx_total > c->limits->max_incoming_total) {
                        snprintf(c->reason, sizeof(c->reason),
                                 "incoming data over the max_incoming_bytes_per_uid limit (%" PRIu64
                                 " bytes unhandled, %" PRIu64 " of them on this connection)",
                                 *c->rx_total, c->rx_counted);
                        c->failed = true;
                        c->end = CONNECTION_END_INCOMING_LIMIT;
                        connection_finish(c, c->reason);
                        return;
                }
        }
}

/* ---- writing ----------------------------------------------------------- */

int connection_check_room(const struct connection *c, size_t size)
{
        const struct connection_limits *l = c->limits;

        if (l->max_queue && c->tx.len > 0 && c->tx_bytes + size > l->max_queue)
                return CONNECTION_E_QUEUE_FULL;
        if (l->max_queue_total && c->tx_total && *c->tx_total + size > l->max_queue_total)
                return CONNECTION_E_QUEUE_FULL_UID;
        return 0;
}

void connection_watch_drain(struct connection *c)
{
        if (c->watch_drain || c->closing)
                return;
        c->watch_drain = true;
        /* Already down there: the write callback tells at once. */
        if (c->tx_bytes <= c->limits->backpressure / 2 && !c->write_armed)
                event_active(c->ev_write, EV_WRITE, 0);
}

int connection_queue(struct connection *c, struct msg *m)
{
        int r;

        if (c->closing || c->draining)
                return CONNECTION_E_CLOSING;
        r = connection_check_room(c, msg_weight(m));
        if (r)
                return r;

        r = msg_queue_push(&c->tx, m);
        if (r < 0)
                return r;
        c->tx_bytes += msg_weight(m);
        c->tx_fds += m->n_fds;
        c->tx_messages++;
        if (c->tx_total)
                *c->tx_total += msg_weight(m);

        /* Write once the current callback is done, gathering whatever else gets
         * queued meanwhile; EV_WRITE is only polled for when the socket is full. */
        if (c->tx.len == 1 && !c->write_armed)
                event_active(c->ev_write, EV_WRITE, 0);
        return 0;
}

/* Drop the first w written bytes from the queue. */
static void connection_advance(struct connection *c, size_t w)
{
        c->tx_bytes -= w;
        if (c->tx_total)
                *c->tx_total -= w;
        while (w > 0) {
                struct msg *m = msg_queue_at(&c->tx, 0);
                size_t left = m->size - c->tx_off;

                if (w < left) {
                        c->tx_off += w;
                        return;
                }
                w -= left;
                c->tx_off = 0;
                /* written out: its memfd body weighs no more either */
                c->tx_bytes -= m->charged_bytes;
                if (c->tx_total)
                        *c->tx_total -= m->charged_bytes;
                c->tx_fds -= m->n_fds;
                msg_unref(msg_queue_pop(&c->tx));
        }
}

/*
 * Write queued messages, up to CONNECTION_IOV_MAX per sendmsg. A message with
 * descriptors starts its own sendmsg, which carries them as SCM_RIGHTS with
 * its first byte. Returns the bytes written (the queue is empty, the socket
 * full, or the budget spent) or a negative errno.
 */
static ssize_t connection_flush(struct connection *c)
{
        size_t written = 0;
        size_t budget = CONNECTION_WRITE_BYTES_PER_EVENT;

        while (c->tx.len > 0 && budget > 0) {
                union {
                        struct cmsghdr align;
                        char buf[CMSG_SPACE(sizeof(int) * IPCBUS_FDS_MAX)];
                } control;
                struct iovec iov[CONNECTION_IOV_MAX];
                struct msghdr mh = {.msg_iov = iov};
                struct msg *head = msg_queue_at(&c->tx, 0);
                size_t n = 0;
                ssize_t w;

                for (size_t i = 0; i < c->tx.len && n < CONNECTION_IOV_MAX; i++) {
                        struct msg *m = msg_queue_at(&c->tx, i);
                        size_t off = i == 0 ? c->tx_off : 0;

                        if (i > 0 && m->n_fds > 0)
                                break;
                        iov[n].iov_base = (void *) (m->data + off);
                        iov[n].iov_len = m->size - off;
                        n++;
                }
                mh.msg_iovlen = n;

                if (head->n_fds > 0 && c->tx_off == 0)
                        fdpass_attach(&mh, control.buf, head->fds, head->n_fds);

                w = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                break;
                        return -errno;
                }
                written += (size_t) w;
                c->tx_pos += (uint64_t) w;
                connection_advance(c, (size_t) w);
                budget = (size_t) w >= budget ? 0 : budget - (size_t) w;
        }
        return (ssize_t) written;
}

static void connection_on_write(evutil_socket_t fd, short what, void *userdata)
{
        struct connection *c = userdata;
        ssize_t w;

        if (c->closing)
                return;

        w = connection_flush(c);
        if (w < 0) {
                snprintf(c->reason, sizeof(c->reason), "write error: %s", strerror((int) -w));
                c->failed = w != -EPIPE && w != -ECONNRESET;
                c->end = c->failed ? CONNECTION_END_IO_ERROR : CONNECTION_END_HANGUP;
                connection_finish(c, c->reason);
                return;
        }

        if (c->watch_drain && c->tx_bytes <= c->limits->backpressure / 2) {
                c->watch_drain = false;
                c->ops->drained(c, c->userdata);
                if (c->closing)
                        return;
        }

        if (c->tx.len > 0) {
                /* A socket that takes nothing for stall_ms: each write that gets
                 * somewhere starts the count again. */
                if (c->limits->stall_ms && (w > 0 || !evtimer_pending(c->ev_stall, NULL))) {
                        const struct timeval tv = {
                                .tv_sec = c->limits->stall_ms / 1000,
                                .tv_usec = (c->limits->stall_ms % 1000) * 1000,
                        };

                        evtimer_add(c->ev_stall, &tv);
                }
                /* Full socket (or budget spent): wait until it can take more.
                 * What `drained` queued made ev_write active, and libevent does
                 * not poll for an active event that is added: drop that first. */
                if (!c->write_armed) {
                        event_del(c->ev_write);
                        if (event_add(c->ev_write, NULL) < 0) {
                                c->failed = true;
                                c->end = CONNECTION_END_IO_ERROR;
                                connection_finish(c, "cannot poll for writing");
                                return;
                        }
                        c->write_armed = true;
                }
                return;
        }

        event_del(c->ev_stall);
        if (c->write_armed) {
                event_del(c->ev_write);
                c->write_armed = false;
        }
        if (c->draining)
                connection_finish(c, c->reason);
}
