/* SPDX-License-Identifier: MIT */
/*
 * The listening Unix socket: created for a path (refusing to start when
 * another bus answers there, replacing a stale socket file) or handed over
 * already listening (socket activation), accepting in an event callback and
 * handing each new nonblocking, close-on-exec fd on.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

struct event;
struct event_base;

/* A new connection; the callee owns fd. */
typedef void (*listener_accept_fn)(int fd, void *userdata);

struct listener {
        struct event_base *base;
        int fd;
        char *path; /* the socket file we created; unlinked by listener_deinit (NULL: a handed socket) */
        struct event *ev_accept;
        struct event *ev_retry; /* resumes accepting after running out of descriptors */
        listener_accept_fn accept;
        listener_accept_fn refuse; /* a connection taken with the spare descriptor; NULL: none kept */
        void *userdata;
        int spare_fd;   /* kept open to give up for accept() when out of descriptors */
        bool has_spare; /* spare_fd is open */
};

/*
 * The expected outcomes of this module (util/error.h): positive codes that
 * the caller must handle, never a fault. A socket that cannot serve is one.
 */
enum {
        LISTENER_E_IN_USE = 1,    /* a bus already answers on the path */
        LISTENER_E_NOT_SOCKET,    /* the path exists and is not a socket (nothing removed) */
        LISTENER_E_NOT_UNIX,      /* the socket is not AF_UNIX */
        LISTENER_E_NOT_STREAM,    /* the socket is not SOCK_STREAM */
        LISTENER_E_NOT_LISTENING, /* the socket is not listening */
        LISTENER_E_NO_PATH,       /* the socket has no file system path (abstract or unnamed) */
};

/*
 * Bind and listen on path (mode 0666, so access is governed by the
 * directory). With make_parent, missing parent directories are created with
 * mode 0700. Returns 0, LISTENER_E_IN_USE when a bus already answers on
 * path, LISTENER_E_NOT_SOCKET when path exists and is not a socket, or a
 * negative errno.
 */
int listener_init(struct listener *l, struct event_base *base, const char *path, bool make_parent,
                  listener_accept_fn accept, void *userdata);
/* The same with the socket's mode (0600: only the broker's user, and root, may connect). */
int listener_init_mode(struct listener *l, struct event_base *base, const char *path, bool make_parent, mode_t mode,
                       listener_accept_fn accept, void *userdata);
/*
 * Serve a socket that is already listening, such as one systemd handed over
 * (LISTEN_FDS): it must be an AF_UNIX SOCK_STREAM socket in the listening
 * state; it is made nonblocking. Its file is never removed: the socket
 * belongs to whoever bound it, and listener_deinit only closes our
 * descriptor. Takes fd on success; on failure the caller still owns it.
 * Returns 0, LISTENER_E_NOT_UNIX, LISTENER_E_NOT_STREAM,
 * LISTENER_E_NOT_LISTENING, or a negative errno (-ENOTSOCK or -EBADF: not a
 * socket at all).
 */
int listener_init_fd(struct listener *l, struct event_base *base, int fd, listener_accept_fn accept, void *userdata);
/*
 * The address clients reach the socket at, from getsockname():
 * "unix:path=/..." (caller frees). Returns 0, LISTENER_E_NO_PATH when the
 * socket has no file system path (abstract or unnamed), LISTENER_E_NOT_UNIX,
 * or a negative errno.
 */
int listener_get_address(const struct listener *l, char **ret_address);
/*
 * When the process is out of descriptors (EMFILE), still take waiting
 * connections, one at a time with a descriptor kept spare for this, and hand
 * each to refuse, which tells it why and closes it: a client never waits in
 * the backlog for nothing. Before listener_start.
 */
void listener_set_refuse(struct listener *l, listener_accept_fn refuse);
/* Start accepting. Returns 0 or a negative errno. */
int listener_start(struct listener *l);
/* Stop accepting, close the socket and remove its file. Idempotent. */
void listener_deinit(struct listener *l);
