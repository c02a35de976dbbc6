/* SPDX-License-Identifier: MIT */
/*
 * The listening Unix socket: created for a path (refusing to start when
 * another bus answers there, replacing a stale socket file), accepting in an
 * event callback and handing each new nonblocking, close-on-exec fd on.
 */
#pragma once

#include <stdbool.h>

struct event;
struct event_base;

/* A new connection; the callee owns fd. */
typedef void (*listener_accept_fn)(int fd, void *userdata);

struct listener {
        struct event_base *base;
        int fd;
        char *path; /* the socket file we created; unlinked by listener_deinit */
        struct event *ev_accept;
        struct event *ev_retry; /* resumes accepting after running out of descriptors */
        listener_accept_fn accept;
        void *userdata;
};

/*
 * Bind and listen on path (mode 0666, so access is governed by the
 * directory). With make_parent, missing parent directories are created with
 * mode 0700. Returns 0, -EADDRINUSE when a bus already answers on path,
 * -EEXIST when path exists and is not a socket, or another negative errno.
 */
int listener_init(struct listener *l, struct event_base *base, const char *path, bool make_parent,
                  listener_accept_fn accept, void *userdata);
/* Start accepting. Returns 0 or a negative errno. */
int listener_start(struct listener *l);
/* Stop accepting, close the socket and remove its file. Idempotent. */
void listener_deinit(struct listener *l);
