/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "daemon/launch/systemd.h"
#include "util/clock.h"
#include "util/util.h"

/* A decimal number in [0, max] into *ret; false when it is not one (empty, signs, trailing junk, too large). */
static bool parse_uint(const char *s, long max, long *ret)
{
        char *end;
        long v;

        if (!s || *s < '0' || *s > '9')
                return false;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || *end || v > max)
                return false;
        *ret = v;
        return true;
}

int systemd_listen_fds(int *ret_n)
{
        const char *e;
        long pid, n = 0;
        int r;

        e = getenv("LISTEN_PID");
        if (!e) {
                r = 0;
                goto out;
        }
        if (!parse_uint(e, INT_MAX, &pid)) {
                r = SYSTEMD_E_BAD_LISTEN_VARS;
                goto out;
        }
        if ((pid_t) pid != getpid()) {
                /* meant for a process that exec'd us, or forked: not ours */
                r = 0;
                goto out;
        }
        e = getenv("LISTEN_FDS");
        if (!e) {
                r = 0;
                goto out;
        }
        if (!parse_uint(e, INT_MAX - SYSTEMD_LISTEN_FDS_START, &n)) {
                r = SYSTEMD_E_BAD_LISTEN_VARS;
                goto out;
        }
        for (int fd = SYSTEMD_LISTEN_FDS_START; fd < SYSTEMD_LISTEN_FDS_START + (int) n; fd++) {
                int flags = fcntl(fd, F_GETFD);

                if (flags < 0 || (!(flags & FD_CLOEXEC) && fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)) {
                        r = -errno;
                        goto out;
                }
        }
        r = 0;
out:
        if (r == 0)
                *ret_n = (int) n;
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_FDNAMES");
        return r;
}

int systemd_notifier_init(struct systemd_notifier *n)
{
        _cleanup_(freep) char *e = NULL;
        const char *v = getenv("NOTIFY_SOCKET");
        size_t len;

        *n = (struct systemd_notifier){.fd = -1};
        if (!v)
                return 0;
        e = strdup(v);
        unsetenv("NOTIFY_SOCKET");
        if (!e)
                return -ENOMEM;

        len = strlen(e);
        if (e[0] != '/' && e[0] != '@')
                return strchr(e, ':') ? -EAFNOSUPPORT : -EINVAL;
        if (len < 2 || len > sizeof(n->address.sun_path) - (e[0] == '/'))
                return -EINVAL;

        n->address.sun_family = AF_UNIX;
        memcpy(n->address.sun_path, e, len);
        if (e[0] == '@')
                n->address.sun_path[0] = '\0'; /* abstract: the name is all len bytes, no terminator */
        n->address_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len);

        n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (n->fd < 0)
                return -errno;
        return 0;
}

void systemd_notifier_deinit(struct systemd_notifier *n)
{
        if (n->fd >= 0)
                close(n->fd);
        n->fd = -1;
}

const char *systemd_notifier_describe(const struct systemd_notifier *n)
{
        static char buf[sizeof(n->address.sun_path) + 1];
        size_t len;

        if (n->fd < 0)
                return "(none)";
        len = n->address_len - offsetof(struct sockaddr_un, sun_path);
        memcpy(buf, n->address.sun_path, len);
        buf[len] = '\0';
        if (buf[0] == '\0')
                buf[0] = '@';
        return buf;
}

int systemd_notify(struct systemd_notifier *n, const char *state)
{
        struct iovec iov = {.iov_base = (void *) state, .iov_len = strlen(state)};
        struct msghdr mh = {
                .msg_name = &n->address,
                .msg_namelen = n->address_len,
                .msg_iov = &iov,
                .msg_iovlen = 1,
        };

        if (n->fd < 0)
                return 0;
        if (sendmsg(n->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
                return -errno;
        return 0;
}

/* Send `head` (assignments, newline-terminated) plus STATUS=status when status is not NULL. */
static int notify_with_status(struct systemd_notifier *n, const char *head, const char *status)
{
        _cleanup_(freep) char *text = NULL;
        size_t head_len = strlen(head);

        if (n->fd < 0)
                return 0;
        if (!status)
                return systemd_notify(n, head);
        if (asprintf(&text, "%sSTATUS=%s", head, status) < 0) {
                text = NULL;
                return -ENOMEM;
        }
        /* STATUS is one line: a path in it could hold a line break */
        for (char *p = text + head_len + strlen("STATUS="); *p; p++)
                if (*p == '\n' || *p == '\r')
                        *p = ' ';
        return systemd_notify(n, text);
}

int systemd_notify_ready(struct systemd_notifier *n, const char *status)
{
        return notify_with_status(n, "READY=1\n", status);
}

int systemd_notify_reloading(struct systemd_notifier *n, const char *status)
{
        char head[64];

        snprintf(head, sizeof(head), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64 "\n", clock_now_usec(CLOCK_MONOTONIC));
        return notify_with_status(n, head, status);
}

int systemd_notify_stopping(struct systemd_notifier *n, const char *status)
{
        return notify_with_status(n, "STOPPING=1\n", status);
}

int systemd_notify_status(struct systemd_notifier *n, const char *status)
{
        return notify_with_status(n, "", status ? status : "");
}
