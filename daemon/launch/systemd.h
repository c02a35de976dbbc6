/* SPDX-License-Identifier: MIT */
/*
 * The two protocols a service speaks with systemd, implemented here without
 * libsystemd: socket activation (the sockets systemd hands over in
 * LISTEN_FDS, sd_listen_fds(3)) and state notification (datagrams of
 * "KEY=VALUE" lines to $NOTIFY_SOCKET, sd_notify(3)). Both read their
 * variables once and remove them from the environment, so no program the
 * daemon starts mistakes them for its own.
 */
#pragma once

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>

/* The first descriptor systemd hands over; the others follow it. */
#define SYSTEMD_LISTEN_FDS_START 3

/* The expected outcome of systemd_listen_fds (util/error.h), never a fault. */
enum {
        SYSTEMD_E_BAD_LISTEN_VARS = 1, /* LISTEN_PID or LISTEN_FDS is not a number in range */
};

/*
 * The sockets systemd handed to this process: LISTEN_PID must be our pid and
 * LISTEN_FDS says how many, from SYSTEMD_LISTEN_FDS_START on. Unsets
 * LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES in every case and marks the
 * descriptors close-on-exec. Returns 0 with their number in *ret_n (0: none,
 * or they are meant for another process), SYSTEMD_E_BAD_LISTEN_VARS when the
 * variables are malformed, or a negative errno (-EBADF when a descriptor is
 * not open).
 */
int systemd_listen_fds(int *ret_n);

/* Where state notifications go: nowhere (fd -1) when $NOTIFY_SOCKET was not set. */
struct systemd_notifier {
        int fd; /* an unbound AF_UNIX SOCK_DGRAM socket, or -1 */
        struct sockaddr_un address;
        socklen_t address_len;
};

/*
 * Take $NOTIFY_SOCKET (an absolute path, or "@name" for an abstract socket)
 * and unset it. Returns 0, whether or not the variable was set
 * (systemd_notifier_enabled() tells whether notifications will be sent), or
 * a negative errno (-EINVAL: not a path or @name,
 * -EAFNOSUPPORT: another address family, e.g. vsock:); the notifier then
 * sends nothing. systemd_notifier_deinit() is due in every case.
 */
int systemd_notifier_init(struct systemd_notifier *n);
void systemd_notifier_deinit(struct systemd_notifier *n);

static inline bool systemd_notifier_enabled(const struct systemd_notifier *n)
{
        return n->fd >= 0;
}

/* Where the notifications go, for logs: the path or "@name" (static buffer). */
const char *systemd_notifier_describe(const struct systemd_notifier *n);

/*
 * Send one datagram of newline-separated state assignments ("READY=1\n
 * STATUS=..."). Never blocks: a service manager that does not keep up loses
 * the message (-EAGAIN). Returns 0 (also when the notifier is disabled) or a
 * negative errno.
 */
int systemd_notify(struct systemd_notifier *n, const char *state);

/*
 * The state changes ipcbusd announces; each also sets the one-line STATUS
 * text when status is not NULL (line breaks in it become spaces). Return as
 * systemd_notify().
 *   ready:     READY=1; it serves (at start, and again after a reload)
 *   reloading: RELOADING=1 with MONOTONIC_USEC (as Type=notify-reload
 *              requires); systemd_notify_ready() follows once reloaded
 *   stopping:  STOPPING=1; it is shutting down
 *   status:    STATUS= alone
 */
int systemd_notify_ready(struct systemd_notifier *n, const char *status);
int systemd_notify_reloading(struct systemd_notifier *n, const char *status);
int systemd_notify_stopping(struct systemd_notifier *n, const char *status);
int systemd_notify_status(struct systemd_notifier *n, const char *status);
