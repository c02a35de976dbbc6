/* SPDX-License-Identifier: MIT */
/*
 * One client socket, knowing nothing of bus semantics: it reads frames
 * (with the file descriptors that came with them) and hands each whole frame
 * to its owner, and it writes a queue of refcounted messages, gathering many
 * per system call. Work per read event is bounded so one busy peer cannot
 * starve the others.
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

#include "ipcbus/wire.h"
#include "protocol/frame.h"

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
};

/* Descriptors received by one recvmsg, and the stream bytes that read covered:
 * they belong to the frame that starts inside [start, end). */
struct connection_fd_batch {
        uint64_t start;
        uint64_t end;
        int fds[IPCBUS_FDS_MAX];
        unsigned n;
};

#define CONNECTION_FD_BATCHES 4

struct connection {
        struct event_base *base;
        int fd;
        struct ucred cred; /* SO_PEERCRED at accept */
        const struct connection_ops *ops;
        void *userdata;
        struct event *ev_read;
        struct event *ev_write;
        struct event *ev_close; /* deferred close, and the drain deadline */

        struct frame_reader reader;
        uint64_t rx_pos; /* stream bytes received so far */
        struct connection_fd_batch rx_fds[CONNECTION_FD_BATCHES];
        unsigned n_rx_fds;
        int rx_error; /* sticky PROTO_E_* found while receiving descriptors */

        struct msg **tx; /* ring of queued messages */
        size_t tx_cap;
        size_t tx_head;
        size_t tx_len;
        size_t tx_off;   /* bytes of the head message already written */
        size_t tx_bytes; /* bytes queued and not yet written */
        size_t tx_max;   /* 0 = unlimited */

        bool reading;     /* read events are wanted */
        bool eof;         /* the peer hung up; frames before that still count */
        bool write_armed; /* waiting for EV_WRITE because the socket was full */
        bool draining;    /* close after flush */
        bool closing;     /* close requested; `closed` comes from the loop */
        char reason[192];
};

/*
 * Set up c for the connected, nonblocking socket fd and read its peer's
 * credentials. max_body bounds incoming bodies (0: the protocol's maximum);
 * max_queue bounds queued outgoing bytes (0: none). Does not start reading.
 * Returns 0 (c then owns fd) or a negative errno (fd untouched).
 */
int connection_init(struct connection *c, struct event_base *base, int fd, uint32_t max_body, size_t max_queue,
                    const struct connection_ops *ops, void *userdata);
/* Close the socket, drop the queue and any received descriptors. */
void connection_deinit(struct connection *c);

/* Start reading. Returns 0 or a negative errno. */
int connection_start(struct connection *c);

/*
 * Queue m (a reference is taken) to be written. Returns 0; -ENOTCONN when the
 * connection is closing (m is not sent); -ENOBUFS when the queue would exceed
 * max_queue (a message always fits into an empty queue); -ENOMEM.
 */
int connection_queue(struct connection *c, struct msg *m);

/* Whether a message of `size` bytes fits into the queue now (as connection_queue judges). */
bool connection_has_room(const struct connection *c, size_t size);

/* Stop reading, write what is queued (within a deadline), then close. */
void connection_close_after_flush(struct connection *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Stop everything now; `closed` follows from the event loop. */
void connection_close(struct connection *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline bool connection_is_open(const struct connection *c)
{
        return !c->draining && !c->closing;
}
