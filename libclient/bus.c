/* SPDX-License-Identifier: MIT */
/*
 * The connection: socket and Hello, the output queue (gathered, partial
 * writes), the input side (incremental frames, received fds), synchronous
 * calls, and the public calls that send something.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>

#include "libclient/bus-internal.h"
#include "libclient/memfd.h"
#include "protocol/address.h"
#include "protocol/jbuf.h"
#include "protocol/names.h"
#include "protocol/proto-error.h"
#include "util/clock.h"
#include "util/fdpass.h"

#define BUS_READ_SIZE (64u * 1024u) /* free space asked of the frame reader per read */
#define BUS_IOV_MAX 64u             /* messages gathered into one sendmsg */

/* ---- lifetime ---- */

/*
 * getpid() without a system call on every entry point (glibc stopped caching
 * it): the value is kept until a fork() made through libc, whose child
 * handler forgets it, as systemd's getpid_cached() does.
 */
static pid_t cached_pid;
static pthread_once_t cached_pid_once = PTHREAD_ONCE_INIT;

static void cached_pid_forget(void)
{
        __atomic_store_n(&cached_pid, 0, __ATOMIC_RELAXED);
}

static void cached_pid_install(void)
{
        (void) pthread_atfork(NULL, NULL, cached_pid_forget);
}

static pid_t client_getpid(void)
{
        pid_t pid;

        (void) pthread_once(&cached_pid_once, cached_pid_install);
        pid = __atomic_load_n(&cached_pid, __ATOMIC_RELAXED);
        if (pid == 0) {
                pid = getpid();
                __atomic_store_n(&cached_pid, pid, __ATOMIC_RELAXED);
        }
        return pid;
}

static int client_new(ipcbus_bus **ret)
{
        ipcbus_bus *bus;

        bus = calloc(1, sizeof(*bus));
        if (!bus)
                return -ENOMEM;
        bus->n_ref = 1;
        bus->n_user_ref = 1;
        bus->pid = client_getpid();
        bus->fd = -1;
        bus->next_serial = 1;
        bus->memfd_threshold = memfd_body_threshold();
        frame_reader_init(&bus->reader, 0, 0);
        /* A frame that takes more than one read is read into a buffer of its
         * own, which its message then keeps: no copy. */
        bus->reader.own_min = BUS_READ_SIZE;
        map_init(&bus->calls);
        map_init(&bus->object_paths);
        map_init(&bus->name_owners);
        *ret = bus;
        return 0;
}

/*
 * Returns 0 in the process that opened bus. In a process forked from it,
 * returns -ECHILD and makes this process's copy of the connection fall
 * silent for good: the socket is shared with the parent, so a word written
 * or read here would corrupt the parent's stream. The libevent attachment
 * is forgotten, not freed: deleting its events would remove the parent's
 * registrations from an epoll set the processes share too.
 */
int client_check_pid(ipcbus_bus *bus)
{
        if (bus->pid == client_getpid())
                return 0;
        bus->open = false;
        bus->hangup_error = -ECHILD;
        bus->hangup_reported = true;
        bus->event_base = NULL;
        bus->ev_read = bus->ev_write = bus->ev_timer = NULL;
        bus->ev_write_armed = false;
        return -ECHILD;
}

/*
 * What every public function on a connection checks first: -EINVAL for
 * NULL, -ECHILD in a forked child (client_check_pid), -ENOTCONN once closed
 * (ipcbus_close) or, with need_open, once the connection was lost.
 */
int client_enter(ipcbus_bus *bus, bool need_open)
{
        int r;

        if (!bus)
                return client_fail(-EINVAL, "bus: NULL");
        r = client_check_pid(bus);
        if (r < 0)
                return r;
        if (bus->closed || (need_open && !bus->open))
                return -ENOTCONN;
        return 0;
}

ipcbus_bus *client_ref(ipcbus_bus *bus)
{
        if (bus)
                bus->n_ref++;
        return bus;
}

static void client_close_fds(ipcbus_bus *bus)
{
        for (size_t i = 0; i < bus->n_fds; i++)
                close(bus->fds[i]);
        free(bus->fds);
        bus->fds = NULL;
        bus->n_fds = 0;
}

/*
 * End the connection for good: detach from the event loop, drop every slot
 * (floating ones are freed, the user's are left unregistered), drop the
 * queues and close the socket. The struct stays while messages refer to it.
 * In a forked child, only this process's copies go (client_check_pid).
 */
static void client_close(ipcbus_bus *bus)
{
        if (bus->closed)
                return;
        (void) client_check_pid(bus);
        ipcbus_detach_event(bus);
        bus->closed = true;
        bus->open = false;
        if (bus->hangup_error == 0)
                bus->hangup_error = -ENOTCONN;
        slot_disconnect_all(bus);
        msg_queue_clear(&bus->rqueue);
        msg_queue_clear(&bus->wqueue);
        bus->wqueue_bytes = 0;
        bus->wqueue_offset = 0;
        client_close_fds(bus);
        if (bus->fd >= 0)
                close(bus->fd);
        bus->fd = -1;
}

void client_unref(ipcbus_bus *bus)
{
        if (!bus || --bus->n_ref > 0)
                return;
        client_close(bus);
        frame_reader_deinit(&bus->reader);
        map_deinit(&bus->calls); /* empty: client_close unregistered every slot */
        map_deinit(&bus->object_paths);
        map_deinit(&bus->name_owners);
        free(bus->unique_name);
        free(bus);
}

/* Memory only, so a forked child may take references too (and drop them). */
_public_ ipcbus_bus *ipcbus_ref(ipcbus_bus *bus)
{
        if (bus) {
                bus->n_user_ref++;
                client_ref(bus);
        }
        return bus;
}

_public_ ipcbus_bus *ipcbus_unref(ipcbus_bus *bus)
{
        if (!bus)
                return NULL;
        if (--bus->n_user_ref == 0)
                client_close(bus);
        client_unref(bus);
        return NULL;
}

/* In a forked child it does nothing: ipcbus_unref closes this process's copy. */
_public_ void ipcbus_close(ipcbus_bus *bus)
{
        if (bus && client_check_pid(bus) == 0)
                client_close(bus);
}

/*
 * The connection is lost (or broken by bad input): stop sending and reading.
 * Pending async calls are failed, and the error reported, by ipcbus_process.
 */
void client_hangup(ipcbus_bus *bus, int error)
{
        if (!bus->open)
                return;
        bus->open = false;
        bus->hangup_error = error;
        msg_queue_clear(&bus->wqueue);
        bus->wqueue_bytes = 0;
        bus->wqueue_offset = 0;
        client_close_fds(bus);
        client_event_update(bus);
}

/* Serials run from 1 up, skipping 0 when they wrap. */
uint32_t client_next_serial(ipcbus_bus *bus)
{
        uint32_t serial = bus->next_serial++;

        if (bus->next_serial == 0)
                bus->next_serial = 1;
        return serial;
}

/* Still known after ipcbus_close or a hang-up (for logs); NULL in a forked child. */
_public_ const char *ipcbus_get_unique_name(ipcbus_bus *bus)
{
        if (!bus || client_check_pid(bus) < 0)
                return NULL;
        return bus->unique_name;
}

_public_ bool ipcbus_is_open(ipcbus_bus *bus)
{
        return client_enter(bus, true) == 0;
}

/* ---- output ---- */

static void client_consume_output(ipcbus_bus *bus, size_t n)
{
        while (n > 0) {
                struct msg *m = msg_queue_at(&bus->wqueue, 0);
                size_t left = m->size - bus->wqueue_offset;

                if (n < left) {
                        bus->wqueue_offset += n;
                        return;
                }
                n -= left;
                bus->wqueue_offset = 0;
                bus->wqueue_bytes -= m->size;
                msg_unref(msg_queue_pop(&bus->wqueue));
        }
}

/*
 * Write as much of the output queue as the socket takes without blocking,
 * up to BUS_IOV_MAX messages per sendmsg. Returns 1 if anything was written,
 * 0 if not. A failing socket hangs the connection up (see bus->open).
 * A message with descriptors starts its own sendmsg, which carries them with
 * its first byte (as the broker's connection_flush does).
 */
int client_write(ipcbus_bus *bus)
{
        bool wrote = false;

        while (bus->open && bus->wqueue.len > 0) {
                union {
                        struct cmsghdr align;
                        char buf[CMSG_SPACE(sizeof(int) * IPCBUS_FDS_MAX)];
                } control;
                struct iovec iov[BUS_IOV_MAX];
                struct msghdr mh = {.msg_iov = iov};
                struct msg *head = msg_queue_at(&bus->wqueue, 0);
                ssize_t n;

                for (size_t i = 0; i < bus->wqueue.len && i < BUS_IOV_MAX; i++) {
                        struct msg *m = msg_queue_at(&bus->wqueue, i);
                        size_t off = i == 0 ? bus->wqueue_offset : 0;

                        if (i > 0 && m->n_fds > 0)
                                break;
                        iov[i].iov_base = (void *) (m->data + off);
                        iov[i].iov_len = m->size - off;
                        mh.msg_iovlen++;
                }
                if (head->n_fds > 0 && bus->wqueue_offset == 0)
                        fdpass_attach(&mh, control.buf, head->fds, head->n_fds);

                n = sendmsg(bus->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                break;
                        client_hangup(bus, errno == EPIPE ? -ECONNRESET : -errno);
                        break;
                }
                wrote = true;
                client_consume_output(bus, (size_t) n);
        }
        return wrote;
}

/*
 * Queue m for sending (a new reference is taken) and write what the socket
 * takes now. Returns 0, -ENOTCONN, -ENOBUFS past the output limit, -ENOMEM,
 * or the hang-up error if the connection broke while writing. As in sd-bus,
 * a monitor is not stopped from sending: the broker closes it if it does.
 * Every path to the socket's output passes here, so the fork check is
 * repeated (-ECHILD): a forked child never writes on the parent's stream.
 */
int client_send(ipcbus_bus *bus, struct msg *m)
{
        _cleanup_(msg_unrefp) struct msg *by_memfd = NULL;
        int r;

        r = client_check_pid(bus);
        if (r < 0)
                return r;
        if (!bus->open)
                return -ENOTCONN;
        /* a large body leaves in a sealed memfd (PROTOCOL.md 14), unseen by the caller */
        r = memfd_body_outgoing(m, bus->memfd_threshold, &by_memfd);
        if (r < 0)
                return r;
        if (r > 0)
                m = by_memfd;
        if (bus->wqueue_bytes > 0 && bus->wqueue_bytes + m->size > BUS_WQUEUE_MAX_BYTES)
                return -ENOBUFS;

        r = msg_queue_push(&bus->wqueue, m);
        if (r < 0)
                return r;
        bus->wqueue_bytes += m->size;

        client_write(bus);
        if (!bus->open)
                return bus->hangup_error;
        client_event_update_write(bus);
        return 0;
}

/* ---- input ---- */

/* Collect SCM_RIGHTS descriptors of one recvmsg. Returns 0 or -EBADMSG (too many, truncated). */
static int client_take_fds(ipcbus_bus *bus, struct msghdr *mh)
{
        int got[IPCBUS_FDS_MAX]; /* client_read's control buffer holds no more */
        unsigned n = fdpass_collect(mh, got, IPCBUS_FDS_MAX);
        int r = 0;

        if (n > 0) {
                int *fds = realloc(bus->fds, (bus->n_fds + n) * sizeof(int));

                if (!fds) {
                        /* nowhere to keep them: close them, the stream is lost anyway */
                        close_fds(got, n);
                        r = -ENOMEM;
                } else {
                        bus->fds = fds;
                        memcpy(bus->fds + bus->n_fds, got, n * sizeof(int));
                        bus->n_fds += n;
                }
        }
        if (r == 0 && ((mh->msg_flags & MSG_CTRUNC) || bus->n_fds > BUS_FDS_PENDING_MAX))
                r = -EBADMSG;
        return r;
}

/*
 * Move the n descriptors a frame announced (n <= IPCBUS_FDS_MAX, checked by
 * the frame reader) from the received ones to fds. Returns 0, or
 * PROTO_E_FDS_MISMATCH when fewer arrived than announced.
 */
static int client_claim_fds(ipcbus_bus *bus, unsigned n, int fds[static IPCBUS_FDS_MAX])
{
        if (n > bus->n_fds || n > IPCBUS_FDS_MAX)
                return PROTO_E_FDS_MISMATCH;
        if (n == 0)
                return 0;
        memcpy(fds, bus->fds, n * sizeof(int));
        memmove(bus->fds, bus->fds + n, (bus->n_fds - n) * sizeof(int));
        bus->n_fds -= n;
        return 0;
}

/*
 * Parse every whole frame in the reader. The answer to want_serial (if not
 * 0) goes to *ret_reply, the rest to the input queue. A message that breaks
 * the header rules is dropped; a broken stream hangs the connection up.
 */
static void client_parse_frames(ipcbus_bus *bus, uint32_t want_serial, struct msg **ret_reply)
{
        struct frame_view f;
        int r;

        while (bus->open) {
                int fds[IPCBUS_FDS_MAX];
                struct msg *m = NULL;

                r = frame_reader_next(&bus->reader, &f);
                if (r != 0) {
                        /* a framing error: the stream cannot be resynchronised */
                        client_hangup(bus, r < 0 ? r : -EBADMSG);
                        return;
                }
                if (!f.data)
                        return;

                r = client_claim_fds(bus, f.prefix.n_fds, fds);
                if (r == 0) {
                        /* on success the message owns the descriptors */
                        r = msg_parse(&f, NULL, MSG_PARSE_FROM_BROKER, f.prefix.n_fds ? fds : NULL, &m, NULL, NULL);
                        if (r != 0)
                                for (unsigned i = 0; i < f.prefix.n_fds; i++)
                                        close(fds[i]);
                }
                if (r > 0 && !proto_error_is_fatal(r))
                        continue;
                if (r != 0) {
                        client_hangup(bus, r < 0 ? r : -EBADMSG);
                        return;
                }
                /* a body in a memfd is mapped now (PROTOCOL.md 14); a bad one drops its message */
                r = memfd_body_incoming(m, MEMFD_READ_AUTO);
                if (r != 0) {
                        msg_unref(m);
                        if (r > 0)
                                continue;
                        client_hangup(bus, r);
                        return;
                }

                if (want_serial != 0 && ret_reply && !*ret_reply &&
                    (m->h.type == MSG_RETURN || m->h.type == MSG_ERROR) && m->h.reply_serial == want_serial) {
                        *ret_reply = m;
                        continue;
                }
                r = msg_queue_push(&bus->rqueue, m);
                msg_unref(m);
                if (r < 0) {
                        client_hangup(bus, r);
                        return;
                }
        }
}

/*
 * Read once from the socket without blocking and parse what came (see
 * client_parse_frames). Returns 1 if bytes were read, 0 if none were there or
 * the connection ended (bus->open tells), -ENOBUFS when the input queue is
 * full (nothing is read then), -ENOMEM.
 */
int client_read(ipcbus_bus *bus, uint32_t want_serial, struct msg **ret_reply)
{
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(sizeof(int) * IPCBUS_FDS_MAX)];
        } control;
        struct iovec iov;
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = &control,
                .msg_controllen = sizeof(control),
        };
        uint8_t *p;
        size_t size;
        ssize_t n;
        int r;

        if (!bus->open)
                return 0;
        if (bus->rqueue.len >= BUS_RQUEUE_MAX)
                return -ENOBUFS;

        r = frame_reader_space(&bus->reader, BUS_READ_SIZE, &p, &size);
        if (r < 0)
                return r;
        iov = (struct iovec){p, size};

        n = recvmsg(bus->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                        return 0;
                client_hangup(bus, -errno);
                return 0;
        }
        r = client_take_fds(bus, &mh);
        if (r < 0) {
                client_hangup(bus, r);
                return 0;
        }
        if (n == 0) {
                client_hangup(bus, -ECONNRESET);
                return 0;
        }

        bus->drained = (size_t) n < size;
        frame_reader_commit(&bus->reader, (size_t) n);
        client_parse_frames(bus, want_serial, ret_reply);
        return 1;
}

/* Wait for events on the socket, at most timeout_usec (UINT64_MAX: no limit).
 * Returns 1 when ready, 0 on timeout or signal, negative errno. */
int client_poll(ipcbus_bus *bus, short events, uint64_t timeout_usec)
{
        struct pollfd p = {.fd = bus->fd, .events = events};
        int ms = -1, r;

        if (timeout_usec != UINT64_MAX)
                ms = timeout_usec / 1000 >= INT_MAX ? INT_MAX : (int) ((timeout_usec + 999) / 1000);

        r = poll(&p, 1, ms);
        if (r < 0)
                return errno == EINTR ? 0 : -errno;
        return r > 0;
}

/* ---- calls ---- */

/* The broker's timeout_ms for a call's timeout_usec (0: default; infinite: the largest allowed). */
uint32_t client_timeout_ms(uint64_t timeout_usec)
{
        uint64_t ms;

        if (timeout_usec == IPCBUS_TIMEOUT_DEFAULT)
                timeout_usec = BUS_TIMEOUT_DEFAULT_USEC;
        if (timeout_usec == IPCBUS_TIMEOUT_INFINITE)
                return INT32_MAX;
        ms = (timeout_usec + 999) / 1000;
        return ms > INT32_MAX ? INT32_MAX : (uint32_t) ms;
}

/* The local deadline (CLOCK_MONOTONIC µs) of a call, a little after the broker's. */
uint64_t client_call_deadline(uint64_t timeout_usec)
{
        uint64_t now = clock_now_usec(CLOCK_MONOTONIC);

        if (timeout_usec == IPCBUS_TIMEOUT_DEFAULT)
                timeout_usec = BUS_TIMEOUT_DEFAULT_USEC;
        if (timeout_usec >= UINT64_MAX - now - BUS_TIMEOUT_GRACE_USEC)
                return UINT64_MAX;
        return now + timeout_usec + BUS_TIMEOUT_GRACE_USEC;
}

/*
 * Build a call with the next serial. With no_reply the timeout is not sent.
 * Returns 0, -ENOMEM or -EINVAL (bad names, path, or body).
 */
int client_build_call(ipcbus_bus *bus, const char *destination, const char *path, const char *interface,
                      const char *member, const char *body, uint64_t timeout_usec, bool no_reply, struct msg **ret)
{
        struct msg_header h;

        msg_header_init(&h);
        h.type = MSG_CALL;
        h.destination = destination;
        h.path = path;
        h.interface = interface;
        h.member = member;
        h.no_reply = no_reply;
        if (!no_reply)
                h.timeout_ms = client_timeout_ms(timeout_usec);
        h.serial = client_next_serial(bus);
        return client_build_text(&h, body, ret);
}

/*
 * msg_build for a header and a body given as text: the codec's pass over
 * them is the only one, and only when it refuses the message do
 * client_check_header and client_check_body look again to say what is wrong.
 */
int client_build_text(const struct msg_header *h, const char *body, struct msg **ret)
{
        int r = msg_build(h, body, body ? strlen(body) : 0, ret);

        if (r > 0 && (client_check_header(h) < 0 || client_check_body(body) < 0))
                return -EINVAL;
        return client_fail_proto(r);
}

/*
 * Send `call` and wait for its answer, dispatching nothing: every other
 * message that arrives meanwhile is queued for ipcbus_process. Returns 0 with
 * the return or error message in *ret_reply, -ETIMEDOUT at the local
 * deadline, the hang-up error if the connection ends, other negative errno.
 */
static int client_call_msg(ipcbus_bus *bus, struct msg *call, uint64_t timeout_usec, struct msg **ret_reply)
{
        uint64_t deadline = client_call_deadline(timeout_usec);
        struct msg *reply = NULL;
        bool readable = false; /* the answer cannot be there before the first wait */
        int r;

        r = client_send(bus, call);
        if (r < 0)
                return r;

        for (;;) {
                uint64_t now;

                if (readable) {
                        r = client_read(bus, call->h.serial, &reply);
                        if (reply)
                                break;
                        if (r < 0)
                                goto finish;
                        if (!bus->open) {
                                r = bus->hangup_error;
                                goto finish;
                        }
                        readable = r > 0; /* more may be there already */
                }
                now = clock_now_usec(CLOCK_MONOTONIC);
                if (now >= deadline) {
                        r = -ETIMEDOUT;
                        goto finish;
                }
                if (readable)
                        continue;

                client_write(bus);
                r = client_poll(bus, POLLIN | (bus->wqueue.len > 0 ? POLLOUT : 0),
                                deadline == UINT64_MAX ? UINT64_MAX : deadline - now);
                if (r < 0)
                        goto finish;
                readable = r > 0;
        }

        *ret_reply = reply;
        r = 0;
finish:
        /* messages may have been queued while nobody watched: let the event loop see them */
        client_event_update(bus);
        return r;
}

/*
 * Call a driver method synchronously (default timeout). An error answer
 * gives -EREMOTEIO and fills ret_error (if not NULL); a return is stored in
 * *ret_reply (if not NULL).
 */
int client_call_driver(ipcbus_bus *bus, const char *member, const char *body, struct msg **ret_reply,
                       ipcbus_error *ret_error)
{
        _cleanup_(msg_unrefp) struct msg *call = NULL, *reply = NULL;
        int r;

        r = client_enter(bus, true);
        if (r < 0)
                return r;
        r = client_build_call(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE, member, body,
                              IPCBUS_TIMEOUT_DEFAULT, false, &call);
        if (r < 0)
                return r;
        r = client_call_msg(bus, call, IPCBUS_TIMEOUT_DEFAULT, &reply);
        if (r < 0)
                return r;
        if (reply->h.type == MSG_ERROR) {
                if (ret_error)
                        error_from_msg(reply, ret_error);
                return -EREMOTEIO;
        }
        if (ret_reply)
                *ret_reply = steal_pointer(&reply);
        return 0;
}

/* Send the encoded call and wait for its answer, as ipcbus_call does from there. */
static int client_call_wait(ipcbus_bus *bus, struct msg *call, uint64_t timeout_usec, ipcbus_message **ret_reply,
                            ipcbus_error *ret_error)
{
        _cleanup_(msg_unrefp) struct msg *reply = NULL;
        int r;

        r = client_call_msg(bus, call, timeout_usec, &reply);
        if (r < 0)
                return r;

        if (reply->h.type == MSG_ERROR) {
                if (ret_error)
                        error_from_msg(reply, ret_error);
                return -EREMOTEIO;
        }
        if (ret_reply) {
                ipcbus_message *m = message_new(bus, reply);

                if (!m)
                        return -ENOMEM;
                *ret_reply = m;
        }
        return 0;
}

/* Register a pending-call slot for the encoded call and send it, as ipcbus_call_async does from there. */
static int client_call_start(ipcbus_bus *bus, ipcbus_slot **ret_slot, struct msg *call, uint64_t timeout_usec,
                             ipcbus_message_handler callback, void *userdata)
{
        ipcbus_slot *s;
        int r;

        r = slot_new(SLOT_CALL, !ret_slot, callback, userdata, &s);
        if (r < 0)
                return r;
        s->call.serial = call->h.serial;
        s->call.deadline = client_call_deadline(timeout_usec);

        /* Registered before sending, so that a call that cannot be
         * registered is never sent; unregistered again if sending fails. */
        r = slot_link(s, bus);
        if (r >= 0)
                r = client_send(bus, call);
        if (r < 0) {
                slot_unref(s);
                return r;
        }
        client_event_update(bus);

        if (ret_slot)
                *ret_slot = s;
        return 0;
}

_public_ int ipcbus_call(ipcbus_bus *bus, const char *destination, const char *path, const char *interface,
                         const char *member, const char *body, uint64_t timeout_usec, ipcbus_message **ret_reply,
                         ipcbus_error *ret_error)
{
        _cleanup_(msg_unrefp) struct msg *call = NULL;
        int r;

        r = client_enter(bus, true);
        if (r == 0)
                r = client_build_call(bus, destination, path, interface, member, body, timeout_usec, false, &call);
        if (r < 0)
                return r;
        return client_call_wait(bus, call, timeout_usec, ret_reply, ret_error);
}

_public_ int ipcbus_call_async(ipcbus_bus *bus, ipcbus_slot **ret_slot, const char *destination, const char *path,
                               const char *interface, const char *member, const char *body, uint64_t timeout_usec,
                               ipcbus_message_handler callback, void *userdata)
{
        _cleanup_(msg_unrefp) struct msg *call = NULL;
        int r;

        r = client_enter(bus, true);
        if (r == 0)
                r = client_build_call(bus, destination, path, interface, member, body, timeout_usec, false, &call);
        if (r < 0)
                return r;
        return client_call_start(bus, ret_slot, call, timeout_usec, callback, userdata);
}

/* Seal a built call for ipcbus_call_message(_async): it is sent now, whatever comes of it. */
static int client_seal_call(ipcbus_bus *bus, ipcbus_message *call, uint64_t timeout_usec)
{
        int r;

        r = client_enter(bus, true);
        if (r < 0)
                return r;
        if (!call || !call->built || ipcbus_message_get_type(call) != IPCBUS_MESSAGE_CALL)
                return client_fail(-EINVAL, "call: not a method call made with ipcbus_message_new_call");
        if (call->bus != bus)
                return client_fail(-EINVAL, "call: made for another connection");
        if (call->sent)
                return client_fail(-EALREADY, "call: already sent");
        if (ipcbus_message_get_no_reply(call))
                return client_fail(-EINVAL, "call: no_reply is set; send it with ipcbus_send");
        r = message_seal(call, timeout_usec);
        if (r < 0)
                return r;
        call->sent = true;
        return 0;
}

_public_ int ipcbus_call_message(ipcbus_bus *bus, ipcbus_message *call, uint64_t timeout_usec,
                                 ipcbus_message **ret_reply, ipcbus_error *ret_error)
{
        int r;

        r = client_seal_call(bus, call, timeout_usec);
        if (r < 0)
                return r;
        return client_call_wait(bus, call->msg, timeout_usec, ret_reply, ret_error);
}

_public_ int ipcbus_call_message_async(ipcbus_bus *bus, ipcbus_slot **ret_slot, ipcbus_message *call,
                                       uint64_t timeout_usec, ipcbus_message_handler callback, void *userdata)
{
        int r;

        r = client_seal_call(bus, call, timeout_usec);
        if (r < 0)
                return r;
        return client_call_start(bus, ret_slot, call->msg, timeout_usec, callback, userdata);
}

_public_ int ipcbus_call_method(ipcbus_bus *bus, const char *destination, const char *path, const char *interface,
                                const char *member, uint64_t timeout_usec, ipcbus_message **ret_reply,
                                ipcbus_error *ret_error, const char *format, ...)
{
        _cleanup_(ipcbus_message_unrefp) ipcbus_message *call = NULL;
        int r;

        r = client_enter(bus, true);
        if (r == 0)
                r = ipcbus_message_new_call(bus, &call, destination, path, interface, member);
        if (r == 0 && format) {
                va_list ap;

                va_start(ap, format);
                r = ipcbus_message_appendv(call, format, ap);
                va_end(ap);
        }
        if (r < 0)
                return r;
        return ipcbus_call_message(bus, call, timeout_usec, ret_reply, ret_error);
}

_public_ int ipcbus_send_oneway(ipcbus_bus *bus, const char *destination, const char *path, const char *interface,
                                const char *member, const char *body)
{
        _cleanup_(msg_unrefp) struct msg *call = NULL;
        int r;

        r = client_enter(bus, true);
        if (r < 0)
                return r;

        r = client_build_call(bus, destination, path, interface, member, body, 0, true, &call);
        if (r < 0)
                return r;
        return client_send(bus, call);
}

_public_ int ipcbus_emit_signal(ipcbus_bus *bus, const char *destination, const char *path, const char *interface,
                                const char *member, const char *body)
{
        _cleanup_(msg_unrefp) struct msg *m = NULL;
        struct msg_header h;
        int r;

        r = client_enter(bus, true);
        if (r < 0)
                return r;

        msg_header_init(&h);
        h.type = MSG_SIGNAL;
        h.destination = destination;
        h.path = path;
        h.interface = interface;
        h.member = member;
        h.serial = client_next_serial(bus);
        r = client_build_text(&h, body, &m);
        if (r < 0)
                return r;
        return client_send(bus, m);
}

_public_ int ipcbus_emit(ipcbus_bus *bus, const char *path, const char *interface, const char *member,
                         const char *format, ...)
{
        _cleanup_(ipcbus_message_unrefp) ipcbus_message *m = NULL;
        int r;

        r = client_enter(bus, true);
        if (r == 0)
                r = ipcbus_message_new_signal(bus, &m, path, interface, member);
        if (r == 0 && format) {
                va_list ap;

                va_start(ap, format);
                r = ipcbus_message_appendv(m, format, ap);
                va_end(ap);
        }
        if (r < 0)
                return r;
        return ipcbus_send(bus, m);
}

/* ---- driver methods ---- */

/* The body {"name": name[, "flags": flags]} of a name method (flags < 0: none); NULL on allocation failure. */
char *client_name_body(const char *name, int flags)
{
        struct jbuf b;
        char *body;
        size_t len;

        jbuf_init(&b);
        jbuf_puts(&b, "{\"name\":");
        jbuf_put_string(&b, name);
        if (flags >= 0)
                jbuf_printf(&b, ",\"flags\":%d", flags);
        jbuf_putc(&b, '}');
        body = jbuf_steal(&b, &len);
        jbuf_deinit(&b);
        return body;
}

/* Call a name method (see client_name_body) and return its "result" in [1, max_result]. */
static int client_name_call(ipcbus_bus *bus, const char *member, const char *name, int flags, int64_t max_result,
                            ipcbus_error *ret_error)
{
        _cleanup_(msg_unrefp) struct msg *reply = NULL;
        _cleanup_(freep) char *body = NULL;
        int64_t result;
        int r;

        r = client_check_name("name", name, CLIENT_NAME_WELL_KNOWN);
        if (r < 0)
                return r;
        r = client_enter(bus, true);
        if (r < 0)
                return r;

        body = client_name_body(name, flags);
        if (!body)
                return -ENOMEM;

        r = client_call_driver(bus, member, body, &reply, ret_error);
        if (r < 0)
                return r;
        r = message_get_int(reply, "result", 1, max_result, &result);
        if (r < 0)
                return -EBADMSG;
        return (int) result;
}

_public_ int ipcbus_request_name(ipcbus_bus *bus, const char *name, unsigned flags, ipcbus_error *ret_error)
{
        const unsigned known = IPCBUS_NAME_ALLOW_REPLACEMENT | IPCBUS_NAME_REPLACE_EXISTING | IPCBUS_NAME_DO_NOT_QUEUE;

        if (flags & ~known)
                return client_fail(-EINVAL, "flags 0x%x: unknown flags 0x%x", flags, flags & ~known);
        return client_name_call(bus, "RequestName", name, (int) flags, IPCBUS_REQUEST_NAME_ALREADY_OWNER, ret_error);
}

_public_ int ipcbus_release_name(ipcbus_bus *bus, const char *name, ipcbus_error *ret_error)
{
        return client_name_call(bus, "ReleaseName", name, -1, IPCBUS_RELEASE_NAME_NOT_OWNER, ret_error);
}

_public_ int ipcbus_become_monitor(ipcbus_bus *bus, const char *const *rules, size_t n_rules, ipcbus_error *ret_error)
{
        _cleanup_(freep) char *body = NULL;
        struct jbuf b;
        size_t len;
        int r = 0;

        if (n_rules > 0 && !rules)
                return client_fail_null("rules");
        r = client_enter(bus, true);
        if (r < 0)
                return r;

        jbuf_init(&b);
        jbuf_puts(&b, "{\"rules\":[");
        for (size_t i = 0; i < n_rules && r == 0; i++) {
                _cleanup_(freep) char *json = NULL;
                struct match_error why;
                struct match_rule rule;

                match_rule_init(&rule);
                r = rules[i] ? match_rule_parse_string_err(&rule, rules[i], &why)
                             : client_fail(-EINVAL, "rules[%zu]: NULL (a rule is a string)", i);
                if (r == PROTO_E_BAD_MATCH)
                        r = client_fail(-EINVAL, "rules[%zu]: %s", i, why.text);
                if (r == 0)
                        r = match_rule_to_json(&rule, &json);
                match_rule_deinit(&rule);
                if (r == 0) {
                        if (i > 0)
                                jbuf_putc(&b, ',');
                        jbuf_puts(&b, json);
                }
        }
        jbuf_puts(&b, "]}");
        body = jbuf_steal(&b, &len);
        jbuf_deinit(&b);
        if (r != 0)
                return error_from_proto(r);
        if (!body)
                return -ENOMEM;

        r = client_call_driver(bus, "BecomeMonitor", body, NULL, ret_error);
        if (r < 0)
                return r;
        bus->monitor = true;
        return 0;
}

/* ---- opening ---- */

/* Connect to the Unix socket at path (blocking), then make the socket nonblocking. */
static int client_connect(ipcbus_bus *bus, const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int r;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -EINVAL;
        memcpy(sa.sun_path, path, strlen(path) + 1);

        bus->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (bus->fd < 0)
                return -errno;
        do
                r = connect(bus->fd, (struct sockaddr *) &sa, sizeof(sa));
        while (r < 0 && errno == EINTR);
        if (r < 0 && errno != EISCONN)
                return -errno;

        r = fcntl(bus->fd, F_GETFL);
        if (r < 0 || fcntl(bus->fd, F_SETFL, r | O_NONBLOCK) < 0)
                return -errno;
        bus->open = true;
        return 0;
}

/* Say Hello and keep the unique name the broker gives. */
static int client_hello(ipcbus_bus *bus)
{
        _cleanup_(msg_unrefp) struct msg *reply = NULL;
        const char *name;
        int r;

        r = client_call_driver(bus, "Hello", NULL, &reply, NULL);
        if (r < 0)
                return r;
        name = msg_get_arg(reply, "name");
        if (!name || !names_is_unique(name))
                return -EBADMSG;
        bus->unique_name = strdup(name);
        return bus->unique_name ? 0 : -ENOMEM;
}

_public_ int ipcbus_open_address(const char *address, ipcbus_bus **ret)
{
        _cleanup_(ipcbus_unrefp) ipcbus_bus *bus = NULL;
        _cleanup_(freep) char *path = NULL;
        int r;

        if (!address || !ret)
                return client_fail_null(!address ? "address" : "ret");

        r = address_parse(address, &path);
        if (r == -EINVAL)
                return client_fail(
                        r, "address '%s': not a bus address (expected unix:path=/absolute/path, under %zu bytes)",
                        address, sizeof(((struct sockaddr_un *) 0)->sun_path));
        if (r < 0)
                return r;
        r = client_new(&bus);
        if (r < 0)
                return r;
        r = client_connect(bus, path);
        if (r < 0)
                return client_fail(r, "address '%s': cannot connect: %s", address, strerror(-r));
        r = client_hello(bus);
        if (r < 0)
                return r;

        *ret = steal_pointer(&bus);
        return 0;
}

_public_ int ipcbus_open_session(ipcbus_bus **ret)
{
        _cleanup_(freep) char *address = NULL;
        int r;

        if (!ret)
                return client_fail_null("ret");
        r = address_session(&address);
        if (r < 0)
                return r;
        return ipcbus_open_address(address, ret);
}

_public_ int ipcbus_open_starter(ipcbus_bus **ret)
{
        const char *address = getenv("IPCBUS_STARTER_ADDRESS");

        if (!ret)
                return client_fail_null("ret");
        if (address && address[0])
                return ipcbus_open_address(address, ret);
        return ipcbus_open_session(ret);
}

_public_ int ipcbus_open_system(ipcbus_bus **ret)
{
        _cleanup_(freep) char *address = NULL;
        int r;

        if (!ret)
                return client_fail_null("ret");
        r = address_system(&address);
        if (r < 0)
                return r;
        return ipcbus_open_address(address, ret);
}
