/* SPDX-License-Identifier: MIT */
/*
 * ipc-soak's client processes: a few hundred connections each, on one
 * libevent loop, speaking the wire protocol directly with the shared codec
 * (protocol/frame.h to cut frames, protocol/message.h to build and check
 * messages) instead of going through libipcbus. The ledger has to measure
 * the broker alone: libipcbus ends a call itself when its local deadline
 * passes or the connection drops (a synthesised Timeout or Disconnected),
 * and blocks for Hello and AddMatch. Here nothing but the broker answers a
 * call, so a call left without an answer is the broker's doing; and a client
 * can close its socket in the middle of a frame.
 *
 * Each client connects, sends Hello and one AddMatch per service whose Tick
 * it follows (none, one or two), then keeps 1-3 calls in flight to random
 * services (Echo, Slow, and Slow with a 100 ms deadline so that the broker's
 * Timeout comes too), thinking 0-2 s between them. Now and then it closes
 * its socket right after sending a call, a quarter of the time after half of
 * a further frame, and reconnects. End of file on SOAK_CTL_FD stops new
 * calls; once every pending call is answered (or SETTLE_MS passed) the
 * process writes its ledger to SOAK_REPORT_FD and exits.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <ipcbus/ipcbus.h>

#include "protocol/address.h"
#include "protocol/frame.h"
#include "protocol/jbuf.h"
#include "protocol/message.h"
#include "tests/soak/soak.h"
#include "util/util.h"

#define CALL_TIMEOUT_MS 10000 /* Echo and Slow: well above any answer time */
#define SHORT_TIMEOUT_MS 100  /* a tenth of the Slow calls: half of them time out */
#define INFLIGHT_MAX 3
#define THINK_MAX_MS 2000
#define DROP_MEAN_MS 60000 /* a client closes on purpose about once a minute */
#define RECONNECT_MAX_MS 500
#define RAMP_MS 2000 /* the first connections are spread over this */
#define RETRY_MAX_MS 100
#define CONNECT_GIVEUP_MS 10000
#define SETTLE_MS 30000                    /* CALL_TIMEOUT_MS plus a margin for a loaded machine */
#define PENDING_MAX (INFLIGHT_MAX + 1 + 2) /* calls, Hello, AddMatch for two services */
#define READ_BUDGET (64 * 1024)            /* bytes read per wake-up, so one client cannot starve the rest */
#define UNANSWERED_SHOWN 10

static_assert(sizeof(struct soak_ledger) <= PIPE_BUF, "a ledger is written in one atomic write");

enum call_kind {
        CALL_HELLO,
        CALL_ADD_MATCH,
        CALL_ECHO,
        CALL_SLOW,
};

struct pending {
        uint32_t serial;
        enum call_kind kind;
        unsigned service;
        uint64_t sent_ns;
};

enum client_state {
        CLIENT_DOWN,  /* no socket; the timer connects */
        CLIENT_HELLO, /* Hello sent */
        CLIENT_READY, /* the timer sends calls */
};

struct proc;

struct client {
        struct proc *proc;
        unsigned id;
        enum client_state state;
        int fd;
        struct event *ev_read; /* these two live with the socket */
        struct event *ev_write;
        struct event *ev_timer;
        struct frame_reader reader;
        struct evbuffer *out;
        uint32_t next_serial;
        unsigned target;   /* calls to keep in flight */
        uint32_t services; /* bit k: follows Tick of service k */
        struct pending pending[PENDING_MAX];
        unsigned n_pending;
        unsigned n_calls; /* Echo and Slow among the pending */
        uint64_t drop_at_ns;
        uint64_t down_since_ns;
};

struct proc {
        const struct soak_client_config *cfg;
        struct sockaddr_un sa; /* the bus */
        struct event_base *base;
        struct event *ev_ctl;
        struct event *ev_settle;
        struct client *clients;
        struct rng rng;
        struct soak_ledger ledger;
        struct jbuf body; /* scratch for call bodies */
        uint64_t n_pending;
        bool stopping;
        int error;
};

static void client_on_read(evutil_socket_t fd, short what, void *userdata);
static void client_on_write(evutil_socket_t fd, short what, void *userdata);

static void proc_fail(struct proc *p, const char *what, int r)
{
        fprintf(stderr, "ipc-soak: client process %u: %s: %s\n", p->cfg->first_id, what, strerror(-r));
        if (p->error == 0)
                p->error = r;
        if (p->base)
                event_base_loopbreak(p->base);
}

/* The process is done once it is stopping and nothing is pending. */
static void proc_check_done(struct proc *p)
{
        if (p->stopping && p->n_pending == 0)
                event_base_loopbreak(p->base);
}

static void client_arm(struct client *c, uint64_t ms)
{
        struct timeval tv = {.tv_sec = (time_t) (ms / 1000), .tv_usec = (suseconds_t) (ms % 1000) * 1000};

        evtimer_add(c->ev_timer, &tv);
}

/* The body of a call: {"client":ID,"serial":N,"data":"..."}, its length varying with both. */
static const char *call_body(struct proc *p, unsigned id, uint32_t serial)
{
        size_t n = ((size_t) id * 131u + serial * 7u) % 200u;

        jbuf_reset(&p->body);
        jbuf_printf(&p->body, "{\"client\":%u,\"serial\":%" PRIu32 ",\"data\":\"", id, serial);
        for (size_t i = 0; i < n; i++)
                jbuf_putc(&p->body, (char) ('a' + (id + i) % 26));
        jbuf_puts(&p->body, "\"}");
        return p->body.failed ? NULL : p->body.data;
}

static void client_forget_pending(struct client *c, uint64_t *counter)
{
        *counter += c->n_pending;
        c->proc->n_pending -= c->n_pending;
        c->n_pending = 0;
        c->n_calls = 0;
}

enum close_reason {
        CLOSE_DROP,   /* on purpose: what is pending is abandoned */
        CLOSE_HANGUP, /* the broker closed it: what is pending is unanswered */
        CLOSE_END,    /* the process ends: what is pending was already counted */
};

/* Close the socket; reconnect later unless the process is stopping. */
static void client_close(struct client *c, enum close_reason why)
{
        struct proc *p = c->proc;

        if (c->state == CLIENT_DOWN)
                return;
        if (why == CLOSE_DROP)
                client_forget_pending(c, &p->ledger.abandoned);
        else
                client_forget_pending(c, &p->ledger.unanswered);
        if (why == CLOSE_HANGUP)
                p->ledger.hangups++;
        event_free(c->ev_read);
        event_free(c->ev_write);
        c->ev_read = c->ev_write = NULL;
        close(c->fd);
        c->fd = -1;
        frame_reader_deinit(&c->reader);
        evbuffer_drain(c->out, evbuffer_get_length(c->out));
        c->state = CLIENT_DOWN;
        c->down_since_ns = soak_now_ns();
        evtimer_del(c->ev_timer);
        if (!p->stopping && why != CLOSE_END)
                client_arm(c, rng_below(&p->rng, RECONNECT_MAX_MS + 1));
        proc_check_done(p);
}

/*
 * Write out what is queued. On a write error the broker is gone for this
 * client: it is closed as a hang-up and -EPIPE returned (c is DOWN then).
 */
static int client_flush(struct client *c)
{
        while (evbuffer_get_length(c->out) > 0) {
                int n = evbuffer_write(c->out, c->fd);

                if (n >= 0 || errno == EINTR)
                        continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                        event_add(c->ev_write, NULL);
                        return 0;
                }
                client_close(c, CLOSE_HANGUP);
                return -EPIPE;
        }
        event_del(c->ev_write);
        return 0;
}

/* Build a call and queue it (not yet written). Returns its serial, or 0 when it could not be built. */
static uint32_t client_queue_call(struct client *c, const char *destination, const char *path, const char *interface,
                                  const char *member, const char *body, uint32_t timeout_ms)
{
        _cleanup_(msg_unrefp) struct msg *m = NULL;
        struct msg_header h;
        int r;

        msg_header_init(&h);
        h.type = MSG_CALL;
        h.serial = c->next_serial++;
        h.destination = destination;
        h.path = path;
        h.interface = interface;
        h.member = member;
        h.timeout_ms = timeout_ms;
        r = msg_build(&h, body, body ? strlen(body) : 0, &m);
        if (r != 0 || evbuffer_add(c->out, m->data, m->size) < 0) {
                proc_fail(c->proc, "build a call", r < 0 ? r : -EINVAL);
                return 0;
        }
        return h.serial;
}

/* Queue a call and remember it as pending. Returns 0 or -ENOMEM. */
static int client_call(struct client *c, enum call_kind kind, unsigned service, const char *destination,
                       const char *path, const char *interface, const char *member, const char *body,
                       uint32_t timeout_ms)
{
        struct proc *p = c->proc;
        uint32_t serial;

        if (c->n_pending >= PENDING_MAX)
                return -ENOBUFS;
        serial = client_queue_call(c, destination, path, interface, member, body, timeout_ms);
        if (serial == 0)
                return -ENOMEM;
        c->pending[c->n_pending++] =
                (struct pending){.serial = serial, .kind = kind, .service = service, .sent_ns = soak_now_ns()};
        p->n_pending++;
        if (kind == CALL_ECHO || kind == CALL_SLOW) {
                c->n_calls++;
                p->ledger.calls++;
        } else {
                p->ledger.driver_calls++;
        }
        return 0;
}

/* A new socket: Hello and the AddMatch calls go out at once, pipelined. */
static void client_connect(struct client *c)
{
        struct proc *p = c->proc;
        uint64_t now = soak_now_ns();
        int fd, r;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                proc_fail(p, "socket", -errno);
                return;
        }
        if (connect(fd, (struct sockaddr *) &p->sa, sizeof(p->sa)) < 0) {
                /* a full backlog (EAGAIN) or no broker: try again soon, give up after a while */
                r = -errno;
                close(fd);
                if (now - c->down_since_ns > CONNECT_GIVEUP_MS * UINT64_C(1000000)) {
                        fprintf(stderr, "ipc-soak: client %u: cannot connect for %d s: %s\n", c->id,
                                CONNECT_GIVEUP_MS / 1000, strerror(-r));
                        p->ledger.connect_failures++;
                        c->down_since_ns = now;
                }
                client_arm(c, 1 + rng_below(&p->rng, RETRY_MAX_MS));
                return;
        }
        c->fd = fd;
        c->ev_read = event_new(p->base, fd, EV_READ | EV_PERSIST, client_on_read, c);
        c->ev_write = event_new(p->base, fd, EV_WRITE | EV_PERSIST, client_on_write, c);
        if (!c->ev_read || !c->ev_write) {
                proc_fail(p, "event_new", -ENOMEM);
                if (c->ev_read)
                        event_free(c->ev_read);
                if (c->ev_write)
                        event_free(c->ev_write);
                c->ev_read = c->ev_write = NULL;
                close(fd);
                c->fd = -1;
                return;
        }
        frame_reader_init(&c->reader, 0, 0);
        c->state = CLIENT_HELLO;
        c->next_serial = 1;
        event_add(c->ev_read, NULL);

        r = client_call(c, CALL_HELLO, 0, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE, "Hello",
                        NULL, 0);
        for (unsigned k = 0; r >= 0 && k < p->cfg->n_services; k++) {
                char body[256];

                if (!(c->services & (UINT32_C(1) << k)))
                        continue;
                snprintf(body, sizeof(body),
                         "{\"rule\":{\"type\":\"signal\",\"sender\":\"" SOAK_NAME_PREFIX
                         "%u\",\"interface\":\"" SOAK_INTERFACE "\",\"member\":\"Tick\"}}",
                         k);
                r = client_call(c, CALL_ADD_MATCH, k, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE,
                                "AddMatch", body, 0);
        }
        if (r < 0) {
                proc_fail(p, "queue Hello", r);
                return;
        }
        client_flush(c);
}

/*
 * Close the socket with a call in flight: the call just queued is written,
 * then a quarter of the time half of one more frame, then close().
 */
static void client_drop(struct client *c)
{
        struct proc *p = c->proc;

        p->ledger.drops++;
        c->drop_at_ns = soak_now_ns() + rng_below(&p->rng, 2 * DROP_MEAN_MS) * UINT64_C(1000000);
        if (rng_chance(&p->rng, 25)) {
                static const char body[] = "{\"cut\":\"short\"}";
                _cleanup_(msg_unrefp) struct msg *m = NULL;
                struct msg_header h;

                msg_header_init(&h);
                h.type = MSG_CALL;
                h.serial = c->next_serial++;
                h.destination = SOAK_NAME_PREFIX "0";
                h.path = SOAK_PATH;
                h.interface = SOAK_INTERFACE;
                h.member = "Echo";
                if (msg_build(&h, body, strlen(body), &m) == 0) {
                        evbuffer_add(c->out, m->data, m->size / 2);
                        p->ledger.partial_frames++;
                }
        }
        if (client_flush(c) < 0)
                return; /* it hung up meanwhile: already closed */
        client_close(c, CLOSE_DROP);
}

/* Send calls until `target` are in flight (one Echo or Slow each to a random service). */
static void client_send_calls(struct client *c)
{
        struct proc *p = c->proc;

        while (c->state == CLIENT_READY && c->n_calls < c->target && !p->stopping) {
                unsigned k = (unsigned) rng_below(&p->rng, p->cfg->n_services);
                unsigned roll = (unsigned) rng_below(&p->rng, 100);
                enum call_kind kind = roll < 60 ? CALL_ECHO : CALL_SLOW;
                uint32_t timeout = roll >= 90 ? SHORT_TIMEOUT_MS : CALL_TIMEOUT_MS;
                const char *body = call_body(p, c->id, c->next_serial);
                char name[64];

                snprintf(name, sizeof(name), SOAK_NAME_PREFIX "%u", k);
                if (!body || client_call(c, kind, k, name, SOAK_PATH, SOAK_INTERFACE,
                                         kind == CALL_ECHO ? "Echo" : "Slow", body, timeout) < 0) {
                        proc_fail(p, "queue a call", -ENOMEM);
                        return;
                }
                if (soak_now_ns() >= c->drop_at_ns) {
                        client_drop(c);
                        return;
                }
        }
        client_flush(c);
}

static void client_on_timer(evutil_socket_t fd, short what, void *userdata)
{
        struct client *c = userdata;

        if (c->proc->stopping)
                return;
        if (c->state == CLIENT_DOWN)
                client_connect(c);
        else if (c->state == CLIENT_READY)
                client_send_calls(c);
}

static void client_on_write(evutil_socket_t fd, short what, void *userdata)
{
        client_flush(userdata);
}

/* Map an error name to the ledger's counters. */
static enum soak_error error_kind(const char *name)
{
        if (strcmp(name, IPCBUS_ERROR_NO_REPLY) == 0)
                return SOAK_ERR_NO_REPLY;
        if (strcmp(name, IPCBUS_ERROR_TIMEOUT) == 0)
                return SOAK_ERR_TIMEOUT;
        if (strcmp(name, IPCBUS_ERROR_SERVICE_UNKNOWN) == 0)
                return SOAK_ERR_SERVICE_UNKNOWN;
        return SOAK_ERR_OTHER;
}

/* Book the answer m to the pending call at index i and forget the call. */
static void client_answer(struct client *c, unsigned i, struct msg *m)
{
        struct proc *p = c->proc;
        struct soak_ledger *l = &p->ledger;
        struct pending call = c->pending[i];
        uint64_t ms = (soak_now_ns() - call.sent_ns) / 1000000u;

        c->pending[i] = c->pending[--c->n_pending];
        p->n_pending--;
        if (ms > l->max_answer_ms)
                l->max_answer_ms = ms;

        if (call.kind == CALL_HELLO || call.kind == CALL_ADD_MATCH) {
                if (m->h.type == MSG_RETURN) {
                        l->driver_returns++;
                } else {
                        l->driver_errors++;
                        fprintf(stderr, "ipc-soak: client %u: %s: %s\n", c->id,
                                call.kind == CALL_HELLO ? "Hello" : "AddMatch", m->h.error_name);
                }
                if (call.kind == CALL_HELLO && m->h.type == MSG_RETURN) {
                        l->connects++;
                        c->state = CLIENT_READY;
                        client_arm(c, 0);
                }
                return;
        }

        c->n_calls--;
        if (m->h.type == MSG_ERROR) {
                enum soak_error e = error_kind(m->h.error_name);

                if (e == SOAK_ERR_OTHER) {
                        if (l->errors[e] < 10)
                                fprintf(stderr, "ipc-soak: client %u: unexpected error %s: %.*s\n", c->id,
                                        m->h.error_name, (int) m->body_len, m->body ? m->body : "");
                        soak_named_add(l->other, m->h.error_name, 1);
                }
                l->errors[e]++;
        } else {
                const char *body = call_body(p, c->id, call.serial);

                if (body && m->body_len == strlen(body) && memcmp(m->body, body, m->body_len) == 0) {
                        l->returns++;
                } else {
                        if (l->bad_returns++ < 10)
                                fprintf(stderr, "ipc-soak: client %u: serial %" PRIu32 " answered with %.*s\n", c->id,
                                        call.serial, (int) m->body_len, m->body ? m->body : "");
                }
        }
        /* think a while before the next call */
        if (!p->stopping && !evtimer_pending(c->ev_timer, NULL))
                client_arm(c, rng_below(&p->rng, THINK_MAX_MS + 1));
}

static void client_unexpected(struct client *c, const char *what, struct msg *m)
{
        struct soak_ledger *l = &c->proc->ledger;

        if (l->unexpected_messages++ < 10)
                fprintf(stderr, "ipc-soak: client %u: unexpected %s: %.*s\n", c->id, what, (int) m->header_len,
                        m->header);
}

/* Tick of a followed service counts; driver signals (NameAcquired) pass; anything else is unexpected. */
static void client_signal(struct client *c, struct msg *m)
{
        struct soak_ledger *l = &c->proc->ledger;
        const char *service;
        unsigned k;

        if (m->h.sender && strcmp(m->h.sender, IPCBUS_DRIVER_NAME) == 0)
                return;
        service = msg_get_arg(m, "service");
        if (!m->h.interface || strcmp(m->h.interface, SOAK_INTERFACE) != 0 || strcmp(m->h.member, "Tick") != 0 ||
            !service || sscanf(service, "S%u", &k) != 1) {
                client_unexpected(c, "signal", m);
                return;
        }
        if (k < SOAK_SERVICES_MAX && (c->services & (UINT32_C(1) << k))) {
                l->signals++;
        } else if (l->bad_signals++ < 10) {
                fprintf(stderr, "ipc-soak: client %u: Tick of %s, which it does not follow\n", c->id, service);
        }
}

static void client_handle(struct client *c, struct msg *m)
{
        switch (m->h.type) {
        case MSG_RETURN:
        case MSG_ERROR:
                for (unsigned i = 0; i < c->n_pending; i++)
                        if (c->pending[i].serial == m->h.reply_serial) {
                                client_answer(c, i, m);
                                proc_check_done(c->proc);
                                return;
                        }
                if (m->h.reply_serial == 0)
                        client_unexpected(c, "error", m); /* the broker's notice before it hangs up */
                else if (c->proc->ledger.unexpected_replies++ < 10)
                        fprintf(stderr, "ipc-soak: client %u: an answer to no pending call: %.*s\n", c->id,
                                (int) m->header_len, m->header);
                return;
        case MSG_SIGNAL:
                client_signal(c, m);
                return;
        default:
                client_unexpected(c, "message", m);
                return;
        }
}

/* Read what is there (up to READ_BUDGET) and handle every whole frame. */
static void client_on_read(evutil_socket_t fd, short what, void *userdata)
{
        struct client *c = userdata;
        struct proc *p = c->proc;
        size_t budget = READ_BUDGET;

        while (budget > 0 && c->state != CLIENT_DOWN) {
                struct frame_view f;
                uint8_t *space;
                size_t size;
                ssize_t n;
                int r;

                r = frame_reader_space(&c->reader, 4096, &space, &size);
                if (r < 0) {
                        proc_fail(p, "read buffer", r);
                        return;
                }
                n = read(c->fd, space, size);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        return;
                if (n <= 0) {
                        client_close(c, CLOSE_HANGUP);
                        return;
                }
                frame_reader_commit(&c->reader, (size_t) n);
                budget = (size_t) n < budget ? budget - (size_t) n : 0;

                while ((r = frame_reader_next(&c->reader, &f)) == 0 && f.data) {
                        _cleanup_(msg_unrefp) struct msg *m = NULL;
                        uint32_t serial;
                        bool no_reply;

                        r = f.prefix.n_fds == 0
                                    ? msg_parse(&f, NULL, MSG_PARSE_FROM_BROKER, NULL, &m, &serial, &no_reply)
                                    : -EBADMSG;
                        if (r != 0) {
                                fprintf(stderr, "ipc-soak: client %u: a frame from the broker is invalid (%d)\n", c->id,
                                        r);
                                p->ledger.unexpected_messages++;
                                client_close(c, CLOSE_HANGUP);
                                return;
                        }
                        client_handle(c, m);
                }
                if (r != 0) {
                        fprintf(stderr, "ipc-soak: client %u: broken framing from the broker (%d)\n", c->id, r);
                        p->ledger.unexpected_messages++;
                        client_close(c, CLOSE_HANGUP);
                        return;
                }
        }
}

/* The parent closed the control pipe: no new calls; wait for what is pending. */
static void proc_on_ctl(evutil_socket_t fd, short what, void *userdata)
{
        struct proc *p = userdata;
        struct timeval tv = {.tv_sec = SETTLE_MS / 1000};

        p->stopping = true;
        for (unsigned i = 0; i < p->cfg->n_clients; i++)
                evtimer_del(p->clients[i].ev_timer);
        evtimer_add(p->ev_settle, &tv);
        proc_check_done(p);
}

static void proc_on_settle(evutil_socket_t fd, short what, void *userdata)
{
        struct proc *p = userdata;

        event_base_loopbreak(p->base);
}

/* Count what is still pending as unanswered, naming the first few. */
static void proc_count_unanswered(struct proc *p)
{
        uint64_t now = soak_now_ns();
        unsigned shown = 0;

        for (unsigned i = 0; p->clients && i < p->cfg->n_clients; i++) {
                struct client *c = &p->clients[i];

                for (unsigned j = 0; j < c->n_pending && shown < UNANSWERED_SHOWN; j++, shown++) {
                        static const char *const kinds[] = {"Hello", "AddMatch", "Echo", "Slow"};
                        const struct pending *call = &c->pending[j];

                        fprintf(stderr,
                                "ipc-soak: client %u: %s (serial %" PRIu32 ", service S%u) unanswered after %" PRIu64
                                " ms\n",
                                c->id, kinds[call->kind], call->serial, call->service,
                                (now - call->sent_ns) / 1000000u);
                }
                client_forget_pending(c, &p->ledger.unanswered);
        }
}

static int proc_init(struct proc *p, const struct soak_client_config *cfg)
{
        _cleanup_(freep) char *path = NULL;
        uint64_t now = soak_now_ns();
        int r;

        *p = (struct proc){.cfg = cfg, .sa.sun_family = AF_UNIX};
        rng_init(&p->rng, cfg->seed, cfg->victim ? 3 : 2, cfg->first_id);
        jbuf_init(&p->body);
        p->ledger.n_clients = cfg->n_clients;
        r = address_parse(cfg->address, &path);
        if (r < 0)
                return r;
        strncpy(p->sa.sun_path, path, sizeof(p->sa.sun_path) - 1);
        p->base = event_base_new();
        p->clients = calloc(cfg->n_clients, sizeof(*p->clients));
        if (!p->base || !p->clients)
                return -ENOMEM;
        p->ev_ctl = event_new(p->base, SOAK_CTL_FD, EV_READ, proc_on_ctl, p);
        p->ev_settle = evtimer_new(p->base, proc_on_settle, p);
        if (!p->ev_ctl || !p->ev_settle || event_add(p->ev_ctl, NULL) < 0)
                return -ENOMEM;
        for (unsigned i = 0; i < cfg->n_clients; i++) {
                struct client *c = &p->clients[i];
                unsigned follow = (unsigned) rng_below(&p->rng, 5); /* none, one or two services */

                *c = (struct client){.proc = p, .id = cfg->first_id + i, .fd = -1, .down_since_ns = now};
                c->target = 1 + (unsigned) rng_below(&p->rng, INFLIGHT_MAX);
                for (unsigned f = 0; f < (follow == 0 ? 0 : follow < 3 ? 1 : 2); f++)
                        c->services |= UINT32_C(1) << rng_below(&p->rng, cfg->n_services);
                c->drop_at_ns = now + rng_below(&p->rng, 2 * DROP_MEAN_MS) * UINT64_C(1000000);
                c->ev_timer = evtimer_new(p->base, client_on_timer, c);
                c->out = evbuffer_new();
                if (!c->ev_timer || !c->out)
                        return -ENOMEM;
                client_arm(c, rng_below(&p->rng, RAMP_MS));
        }
        return 0;
}

static void proc_deinit(struct proc *p)
{
        for (unsigned i = 0; p->clients && i < p->cfg->n_clients; i++) {
                struct client *c = &p->clients[i];

                client_close(c, CLOSE_END);
                if (c->ev_timer)
                        event_free(c->ev_timer);
                if (c->out)
                        evbuffer_free(c->out);
        }
        free(p->clients);
        if (p->ev_ctl)
                event_free(p->ev_ctl);
        if (p->ev_settle)
                event_free(p->ev_settle);
        if (p->base)
                event_base_free(p->base);
        jbuf_deinit(&p->body);
}

int soak_client_main(const struct soak_client_config *cfg)
{
        struct proc p;
        int r;

        signal(SIGPIPE, SIG_IGN);
        r = proc_init(&p, cfg);
        if (r < 0)
                proc_fail(&p, "setup", r);
        else
                event_base_dispatch(p.base);
        proc_count_unanswered(&p);
        p.ledger.error = p.error;
        if (!cfg->victim) {
                ssize_t n;

                do
                        n = write(SOAK_REPORT_FD, &p.ledger, sizeof(p.ledger));
                while (n < 0 && errno == EINTR);
        }
        proc_deinit(&p);
        return p.error < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
