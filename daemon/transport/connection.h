/* SPDX-License-Identifier: MIT */
/*
 * One client socket, knowing nothing of bus semantics: it reads frames
 * (with the file descriptors that came with them) and hands each whole frame
 * to its owner, and it writes a queue of refcounted messages, gathering many
 * per system call.
 *
 * Scheduling rule (HACKING.md, "Bounded work"): a read event hands on at
 * most 64 frames or 256 KiB, a write event writes at most 4 MiB. A
 * connection that spent its read budget stops being polled and takes its
 * next turn after the loop has polled again (so does one resumed after
 * connection_pause): every connection with something to read gets one turn
 * per pass of the loop, and a peer's flood delays another's call by one turn
 * of the flooder, never by the flood. Writes come first (on a loop set up
 * with connection_loop_init): a message queued from a callback is written
 * as soon as that callback returns, ahead of the pass's other reads and
 * turns.
 *
 * Reentrancy rule: no function here calls back into the owner
 * synchronously. connection_queue() only queues; connection_close() and the
 * end of connection_close_after_flush() report `closed` from the event loop.
 * So the owner may queue to, or close, any connection from inside any
 * callback, and a connection is only ever freed from its own `closed`.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "protocol/frame.h"
#include "protocol/msg-queue.h"
#include "protocol/ipcbus/wire.h"

struct connection;
struct event;
struct event_base;
struct msg;

struct connection_ops {
        /* A whole frame. Its descriptors (f->prefix.n_fds of them, in fds) pass to
         * the callee, which closes them or hands them on. f is valid during the call. */
        void (*frame)(struct connection *c, const struct frame_view *f, int *fds, void *userdata);
        /* The byte stream broke (a positive PROTO_E_* framing code); reading has
         * stopped. The owner queues its last words and closes. */
        void (*broken)(struct connection *c, int code, void *userdata);
        /* The connection is over. Called once, from the event loop; the owner
         * must connection_deinit() it, and may do so inside the callback.
         * reason is valid until then. */
        void (*closed)(struct connection *c, const char *reason, void *userdata);
        /* The queue went down to half the backpressure level after
         * connection_watch_drain() asked to be told. Called from the event loop. */
        void (*drained)(struct connection *c, void *userdata);
        /* n descriptors arrived: count them as the sender's and return 0, or
         * refuse them with a CONNECTION_FDS_* code. Refused ones are closed at
         * once and their frame comes to `frame` with fds NULL and the code in
         * c->rx_fds_refused. Accepted ones stay counted while the connection
         * holds them (connection_held_fds) and pass, counted, to `frame`.
         * NULL: descriptors are taken uncounted. */
        int (*charge_fds)(struct connection *c, unsigned n, void *userdata);
};

/* Why the descriptors of a frame were refused (c->rx_fds_refused). */
enum {
        CONNECTION_FDS_OVER_CONNECTION = 1, /* the connection's own limit */
        CONNECTION_FDS_OVER_TOTAL,          /* the limit shared with others (its uid's) */
        CONNECTION_FDS_SHORT,               /* the broker is short of descriptors itself (EMFILE, or its reserve) */
};

/* What a connection enforces; the owner's, shared by its connections. 0 in a max_* means no limit. */
struct connection_limits {
        uint32_t max_header;
        uint32_t max_body;
        uint32_t max_frame;
        unsigned max_fds;            /* IPCBUS_FDS_MAX or less; 0 means none may come */
        uint64_t max_queue;          /* outgoing bytes queued to this connection */
        uint64_t max_queue_total;    /* outgoing bytes counted in the shared total (e.g. per uid) */
        uint64_t backpressure;       /* queued bytes from which the connection counts as congested */
        uint32_t stall_ms;           /* a full socket that takes nothing this long, or an incoming frame
                                      * not complete this long after its first byte, closes; 0: never */
        uint64_t max_incoming_total; /* bytes read and not yet handed on, counted in the shared total */
};

/* Descriptors received by one recvmsg, and the stream bytes that read covered:
 * they belong to the frame that starts inside [start, end). */
struct connection_fd_batch {
        uint64_t start;
        uint64_t end;
        int fds[IPCBUS_FDS_MAX];
        unsigned n;
        int refused; /* CONNECTION_FDS_*: closed on arrival, n is what came */
};

#define CONNECTION_FD_BATCHES 4

/* Why a connection ended on its own (c->end), for the owner's statistics. */
enum connection_end {
        CONNECTION_END_NONE,           /* still open, or closed by its owner */
        CONNECTION_END_HANGUP,         /* the peer closed its end */
        CONNECTION_END_STALLED,        /* nothing taken or an incomplete frame for stall_ms, or the drain deadline */
        CONNECTION_END_IO_ERROR,       /* a read or write error, or an event that could not be set */
        CONNECTION_END_INCOMING_LIMIT, /* over max_incoming_total */
};

struct connection {
        struct event_base *base;
        int fd;
        struct ucred cred; /* SO_PEERCRED at accept */
        gid_t *groups;     /* SO_PEERGROUPS at accept: supplementary groups */
        unsigned n_groups;
        const struct connection_limits *limits;
        const struct connection_ops *ops;
        void *userdata;
        struct event *ev_read;
        struct event *ev_write;
        struct event *ev_close; /* deferred close, and the drain deadline */
        struct event *ev_stall; /* the socket has been full and taken nothing for limits->stall_ms */

        struct frame_reader reader;
        uint64_t rx_pos;         /* stream bytes received so far */
        uint64_t rx_frames;      /* frames handed to the owner so far */
        uint64_t tx_pos;         /* stream bytes written so far */
        uint64_t tx_messages;    /* messages queued so far */
        enum connection_end end; /* set when it ends on its own */
        struct connection_fd_batch rx_fds[CONNECTION_FD_BATCHES];
        unsigned n_rx_fds;
        int rx_error;              /* sticky PROTO_E_* found while receiving descriptors */
        int rx_fds_refused;        /* for `frame`: why its fds are NULL (CONNECTION_FDS_*), else 0 */
        unsigned n_held_fds;       /* descriptors in rx_fds, as charged */
        uint64_t *rx_total;        /* a shared count of bytes read and not yet handed on (NULL: none) */
        uint64_t rx_counted;       /* what this connection counts in *rx_total */
        uint64_t rx_timed;         /* stream offset of the incoming frame ev_rx_stall times */
        bool rx_timing;            /* ev_rx_stall runs for the frame at rx_timed */
        struct event *ev_rx_stall; /* an incoming frame incomplete for limits->stall_ms while being read */
        struct event *ev_turn;     /* a read that spent its budget (or was resumed) waits for its next turn */

        struct msg_queue tx; /* queued messages */
        size_t tx_off;       /* bytes of the head message already written */
        size_t tx_bytes;     /* bytes queued and not yet written, a memfd body's included (msg_weight) */
        size_t tx_fds;       /* descriptors of the queued messages (statistics: counted, not walked) */
        uint64_t *tx_total;  /* a shared count these bytes are part of (NULL: none) */

        bool reading;     /* read events are wanted */
        bool paused;      /* reading held back by connection_pause() */
        bool watch_drain; /* `drained` is wanted */
        bool failed;      /* closed for a fault of the peer's (stall, drain deadline, I/O error) */
        bool eof;         /* the peer hung up; frames before that still count */
        bool write_armed; /* waiting for EV_WRITE because the socket was full */
        bool draining;    /* close after flush */
        bool closing;     /* close requested; `closed` comes from the loop */
        char reason[192];
};

/*
 * The loop's priorities: connections' writes first (a reply or a forwarded
 * call goes out as soon as the callback that queued it returns, ahead of
 * other reads and of busy connections' next turns), everything else at
 * libevent's default.
 */
enum {
        CONNECTION_PRIORITY_WRITE = 0,
        CONNECTION_PRIORITY_DEFAULT = 1,
        CONNECTION_N_PRIORITIES = 2,
};

/*
 * Give base the priorities above. Call it once, right after creating the
 * base and before any event is added (libevent gives an event the default
 * priority when it is made). Returns 0 or -EINVAL. Connections work on a
 * base without it too, only without writes first.
 */
int connection_loop_init(struct event_base *base);

/*
 * Set up c for the connected, nonblocking socket fd and read its peer's
 * credentials. limits (which must outlive c) bound what comes in and what
 * may be queued. Does not start reading. Returns 0 (c then owns fd) or a
 * negative errno (fd untouched).
 */
int connection_init(struct connection *c, struct event_base *base, int fd, const struct connection_limits *limits,
                    const struct connection_ops *ops, void *userdata);
/* Count queued bytes into *total too (checked against limits->max_queue_total). Before any queueing. */
void connection_set_total(struct connection *c, uint64_t *total);
/*
 * Put c under other limits (which must outlive c) and another shared total
 * (NULL: none), at any time: the bytes already queued move from the old
 * total to the new one. For a connection that changes its role (a monitor).
 */
void connection_move_account(struct connection *c, const struct connection_limits *limits, uint64_t *total);
/* Count bytes read and not yet handed on into *total too (checked against
 * limits->max_incoming_total: the connection that goes over is closed). Before reading. */
void connection_set_incoming_total(struct connection *c, uint64_t *total);
/* Bound the frames read from now on (prefix + header + body; 0: the limits' max_frame). */
void connection_set_max_frame(struct connection *c, uint32_t max_frame);
/* Descriptors received and not yet handed on, as charged with ops->charge_fds. */
static inline unsigned connection_held_fds(const struct connection *c)
{
        return c->n_held_fds;
}
/* Close the socket, drop the queue and any received descriptors (uncharged:
 * the owner takes connection_held_fds() off its count first). */
void connection_deinit(struct connection *c);

/* Start reading. Returns 0 or a negative errno. */
int connection_start(struct connection *c);

/*
 * The expected outcomes of queueing (util/error.h): positive codes that the
 * caller must handle, never a fault. (The CONNECTION_FDS_* codes above
 * concern descriptors that arrive, and travel in fields.)
 */
enum {
        CONNECTION_E_QUEUE_FULL = 1, /* this connection's queue would exceed max_queue */
        CONNECTION_E_QUEUE_FULL_UID, /* the total shared with others (its uid's) would exceed max_queue_total */
        CONNECTION_E_CLOSING,        /* the connection is closing or draining: nothing more is sent */
};

/*
 * Queue m (a reference is taken) to be written. Returns 0;
 * CONNECTION_E_CLOSING when the connection is closing (m is not sent);
 * CONNECTION_E_QUEUE_FULL or CONNECTION_E_QUEUE_FULL_UID as
 * connection_check_room says; -ENOMEM.
 */
int connection_queue(struct connection *c, struct msg *m);

/*
 * Whether a message of `size` bytes fits into the queue now: 0,
 * CONNECTION_E_QUEUE_FULL when this connection's queue would exceed max_queue
 * (a message always fits into an empty queue), CONNECTION_E_QUEUE_FULL_UID
 * when the shared total would exceed max_queue_total.
 */
int connection_check_room(const struct connection *c, size_t size);

/* Whether the queue holds at least limits->backpressure bytes. */
static inline bool connection_congested(const struct connection *c)
{
        return c->limits->backpressure && c->tx_bytes >= c->limits->backpressure;
}

/* Ask for one `drained` callback once the queue is down to half the backpressure level. */
void connection_watch_drain(struct connection *c);

/* Hold back reading (frames already read wait too) until connection_resume(). */
void connection_pause(struct connection *c);
void connection_resume(struct connection *c);

/* Stop reading, write what is queued (within a deadline), then close. */
void connection_close_after_flush(struct connection *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Stop everything now; `closed` follows from the event loop. */
void connection_close(struct connection *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline bool connection_is_open(const struct connection *c)
{
        return !c->draining && !c->closing;
}
