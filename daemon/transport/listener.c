/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon/transport/listener.h"
#include "daemon/log.h"
#include "util/util.h"

/* Connections taken per accept event, for fairness towards established peers. */
#define LISTENER_ACCEPTS_PER_EVENT 64
#define LISTENER_RETRY_MSEC 250

static void listener_on_accept(evutil_socket_t fd, short what, void *userdata);
static void listener_on_retry(evutil_socket_t fd, short what, void *userdata);

/* mkdir -p of path's parent directory, new components with mode. */
static int mkdir_parents(const char *path, mode_t mode)
{
        _cleanup_(freep) char *copy = strdup(path);
        char *slash;

        if (!copy)
                return -ENOMEM;
        slash = strrchr(copy, '/');
        if (!slash || slash == copy)
                return 0;
        *slash = '\0';

        for (char *p = copy + 1;; p++) {
                bool last = *p == '\0';

                if (*p != '/' && !last)
                        continue;
                *p = '\0';
                if (mkdir(copy, mode) < 0 && errno != EEXIST)
                        return -errno;
                if (last)
                        break;
                *p = '/';
        }
        return 0;
}

static int sockaddr_for(const char *path, struct sockaddr_un *sa, socklen_t *ret_len)
{
        size_t len = strlen(path);

        if (len == 0 || len >= sizeof(sa->sun_path))
                return -ENAMETOOLONG;
        memset(sa, 0, sizeof(*sa));
        sa->sun_family = AF_UNIX;
        memcpy(sa->sun_path, path, len + 1);
        *ret_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len + 1);
        return 0;
}

/*
 * Make room for our socket at path: nothing there is fine; a socket nobody
 * answers on is stale and removed; a live socket or anything else is refused.
 */
static int listener_claim_path(const char *path, const struct sockaddr_un *sa, socklen_t sa_len)
{
        _cleanup_(closep) int fd = -1;
        struct stat st;

        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISSOCK(st.st_mode))
                return LISTENER_E_NOT_SOCKET;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (const struct sockaddr *) sa, sa_len) == 0)
                return LISTENER_E_IN_USE;
        if (errno != ECONNREFUSED)
                return -errno;

        log_info("removing stale socket %s", path);
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

/*
 * Bind fd to sa, the socket coming out with mode (0666 for a bus: who may
 * connect is decided by the directory, 0700 for a session bus). The mode is
 * set by the umask around bind(), never by a chmod of the path afterwards,
 * which would follow a symlink swapped in meanwhile by whoever can write to
 * the directory. (The broker is single-threaded, so the umask is ours alone
 * for the call.) Returns 0 or a negative errno.
 */
static int listener_bind(int fd, const struct sockaddr_un *sa, socklen_t sa_len, mode_t mode)
{
        mode_t old = umask(~mode & 0777);
        int r = bind(fd, (const struct sockaddr *) sa, sa_len) < 0 ? -errno : 0;

        umask(old);
        return r;
}

int listener_init(struct listener *l, struct event_base *base, const char *path, bool make_parent,
                  listener_accept_fn accept, void *userdata)
{
        return listener_init_mode(l, base, path, make_parent, 0666, accept, userdata);
}

int listener_init_mode(struct listener *l, struct event_base *base, const char *path, bool make_parent, mode_t mode,
                       listener_accept_fn accept, void *userdata)
{
        struct sockaddr_un sa;
        socklen_t sa_len;
        int r;

        *l = (struct listener){
                .base = base,
                .fd = -1,
                .accept = accept,
                .userdata = userdata,
        };

        r = sockaddr_for(path, &sa, &sa_len);
        if (r < 0)
                return r;

        if (make_parent) {
                r = mkdir_parents(path, 0700);
                if (r < 0)
                        return r;
        }

        r = listener_claim_path(path, &sa, sa_len);
        if (r)
                return r;

        l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (l->fd < 0)
                return -errno;
        r = listener_bind(l->fd, &sa, sa_len, mode);
        if (r < 0)
                goto fail;
        l->path = strdup(path);
        if (!l->path) {
                unlink(path);
                r = -ENOMEM;
                goto fail;
        }
        if (listen(l->fd, SOMAXCONN) < 0) {
                r = -errno;
                goto fail;
        }

        l->ev_accept = event_new(base, l->fd, EV_READ | EV_PERSIST, listener_on_accept, l);
        l->ev_retry = evtimer_new(base, listener_on_retry, l);
        if (!l->ev_accept || !l->ev_retry) {
                r = -ENOMEM;
                goto fail;
        }
        return 0;

fail:
        listener_deinit(l);
        return r;
}

int listener_init_fd(struct listener *l, struct event_base *base, int fd, listener_accept_fn accept, void *userdata)
{
        int domain, type, listening, flags;
        socklen_t len;

        *l = (struct listener){
                .base = base,
                .fd = -1,
                .accept = accept,
                .userdata = userdata,
        };

        len = sizeof(domain);
        if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
                return -errno;
        if (domain != AF_UNIX)
                return LISTENER_E_NOT_UNIX;
        len = sizeof(type);
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
                return -errno;
        if (type != SOCK_STREAM)
                return LISTENER_E_NOT_STREAM;
        len = sizeof(listening);
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0)
                return -errno;
        if (!listening)
                return LISTENER_E_NOT_LISTENING;

        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0))
                return -errno;

        l->ev_accept = event_new(base, fd, EV_READ | EV_PERSIST, listener_on_accept, l);
        l->ev_retry = evtimer_new(base, listener_on_retry, l);
        if (!l->ev_accept || !l->ev_retry) {
                listener_deinit(l); /* l->fd is still -1: fd stays the caller's */
                return -ENOMEM;
        }
        l->fd = fd;
        return 0;
}

int listener_get_address(const struct listener *l, char **ret_address)
{
        struct sockaddr_un sa = {0};
        socklen_t len = sizeof(sa);
        size_t path_len;
        char *address;

        if (getsockname(l->fd, (struct sockaddr *) &sa, &len) < 0)
                return -errno;
        if (sa.sun_family != AF_UNIX)
                return LISTENER_E_NOT_UNIX;
        if (len <= offsetof(struct sockaddr_un, sun_path) || sa.sun_path[0] == '\0')
                return LISTENER_E_NO_PATH;
        /* the kernel may leave out the terminator of a path that fills sun_path */
        path_len = strnlen(sa.sun_path, len - offsetof(struct sockaddr_un, sun_path));
        if (asprintf(&address, "unix:path=%.*s", (int) path_len, sa.sun_path) < 0)
                return -ENOMEM;
        *ret_address = address;
        return 0;
}

void listener_set_refuse(struct listener *l, listener_accept_fn refuse)
{
        l->refuse = refuse;
}

/* Open the spare descriptor again; without it, EMFILE pauses accepting instead. */
static void listener_keep_spare(struct listener *l)
{
        if (l->has_spare || !l->refuse)
                return;
        l->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        l->has_spare = l->spare_fd >= 0;
}

int listener_start(struct listener *l)
{
        listener_keep_spare(l);
        return event_add(l->ev_accept, NULL) < 0 ? -ENOMEM : 0;
}

void listener_deinit(struct listener *l)
{
        if (l->ev_accept)
                event_free(l->ev_accept);
        if (l->ev_retry)
                event_free(l->ev_retry);
        l->ev_accept = l->ev_retry = NULL;
        if (l->fd >= 0)
                close(l->fd);
        l->fd = -1;
        if (l->has_spare)
                close(l->spare_fd);
        l->has_spare = false;
        if (l->path)
                unlink(l->path);
        free(l->path);
        l->path = NULL;
}

/* Out of descriptors or memory: the socket stays readable, so stop polling it
 * for a moment rather than spin. */
static void listener_pause(struct listener *l, int err)
{
        const struct timeval tv = {0, LISTENER_RETRY_MSEC * 1000};

        log_warning("cannot accept connections: %s; pausing for %d ms", strerror(err), LISTENER_RETRY_MSEC);
        event_del(l->ev_accept);
        evtimer_add(l->ev_retry, &tv);
}

static void listener_on_retry(evutil_socket_t fd, short what, void *userdata)
{
        struct listener *l = userdata;

        listener_keep_spare(l);
        event_add(l->ev_accept, NULL);
}

/*
 * Out of descriptors: give up the spare one to take the next waiting
 * connection and refuse it. Returns 1 when one was refused (try the next),
 * 0 when none was waiting, -1 when there is no spare (or it did not help).
 */
static int listener_refuse_one(struct listener *l)
{
        int cfd, err;

        if (!l->has_spare)
                return -1;
        close(l->spare_fd);
        l->has_spare = false;
        cfd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        err = errno;
        if (cfd >= 0)
                l->refuse(cfd, l->userdata);
        listener_keep_spare(l);
        if (cfd >= 0)
                return 1;
        return err == EAGAIN || err == EWOULDBLOCK ? 0 : -1;
}

static void listener_on_accept(evutil_socket_t fd, short what, void *userdata)
{
        struct listener *l = userdata;
        int r;

        for (int i = 0; i < LISTENER_ACCEPTS_PER_EVENT; i++) {
                int cfd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

                if (cfd < 0) {
                        switch (errno) {
                        case EAGAIN:
#if EAGAIN != EWOULDBLOCK
                        case EWOULDBLOCK:
#endif
                                return;
                        case EINTR:
                        case ECONNABORTED:
                        case EPROTO:
                                continue;
                        case EMFILE:
                                r = listener_refuse_one(l);
                                if (r > 0)
                                        continue;
                                if (r < 0)
                                        listener_pause(l, EMFILE);
                                return;
                        case ENFILE:
                        case ENOBUFS:
                        case ENOMEM:
                                listener_pause(l, errno);
                                return;
                        default:
                                log_warning("accept failed: %s", strerror(errno));
                                return;
                        }
                }
                l->accept(cfd, l->userdata);
        }
}
