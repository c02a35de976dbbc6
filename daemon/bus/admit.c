/* SPDX-License-Identifier: MIT */
/*
 * Peers coming and going: a new connection admitted or refused, Hello, the
 * Hello and idle timers, the descriptors a peer may have in flight, and a
 * peer's removal (for a protocol error, a disconnect, or the bus shutting
 * down).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon/bus/internal.h"
#include "daemon/bus/voice.h"
#include "daemon/log.h"
#include "protocol/ipcbus/wire.h"
#include "protocol/message.h"
#include "protocol/proto-error.h"
#include "util/clock.h"
#include "util/util.h"

/* The broker's own descriptor limit (main raised the soft one to the hard one),
 * read when it matters: an operator may change it (prlimit) at any time. */
static unsigned bus_fd_limit(void)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > UINT32_MAX)
                return UINT32_MAX;
        return (unsigned) rl.rlim_cur;
}

/*
 * Descriptors that may still come in flight: what RLIMIT_NOFILE leaves after
 * the connections' sockets, those in flight, and a reserve for accept() and
 * the broker's own files (an eighth of the limit, 16 to 1024).
 */
static unsigned bus_fds_free(const struct bus *bus)
{
        unsigned limit = bus_fd_limit();
        unsigned reserve = limit / 8 < 16 ? 16 : limit / 8 > 1024 ? 1024 : limit / 8;
        uint64_t used = (uint64_t) reserve + bus->n_peers + bus->users.n_fds;

        return used >= limit ? 0 : (unsigned) (limit - used);
}

static bool peer_name_eq(const struct map_node *node, const void *key)
{
        return strcmp(container_of(node, struct peer, name_node)->unique_name, key) == 0;
}

struct peer *bus_find_peer(struct bus *bus, const char *name)
{
        if (name[0] == ':') {
                struct map_node *n = map_find(&bus->peers_by_name, map_hash_string(name), peer_name_eq, name);

                return n ? container_of(n, struct peer, name_node) : NULL;
        } else {
                struct name_owner *owner = name_registry_lookup(&bus->names, name);

                return owner ? container_of(owner, struct peer, names) : NULL;
        }
}

/* match_owner_fn: does `unique` own `well_known` (or is it that name)? */
bool bus_owns(const char *well_known, const char *unique, void *userdata)
{
        struct bus *bus = userdata;
        struct name_owner *owner;

        if (strcmp(well_known, unique) == 0)
                return true;
        owner = name_registry_lookup(&bus->names, well_known);
        return owner && strcmp(container_of(owner, struct peer, names)->unique_name, unique) == 0;
}

static void bus_arm_timer(struct peer *peer, uint32_t ms)
{
        const struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

        /* Fails only for a bad timeval; then the peer is simply never found idle. */
        (void) evtimer_add(peer->timer, &tv);
}

int bus_register(struct bus *bus, struct peer *peer)
{
        int r = map_add(&bus->peers_by_name, &peer->name_node, map_hash_string(peer->unique_name));

        if (r < 0)
                return r;
        peer->state = PEER_REGISTERED;
        event_del(peer->timer);
        if (bus->limits.idle_timeout_ms)
                bus_arm_timer(peer, bus->limits.idle_timeout_ms);
        connection_set_max_frame(&peer->conn, 0);
        log_info("%s said Hello", PEER_DESC(peer));
        return 0;
}

/* End the calls the peer was to answer (each caller gets NoReply at once)
 * and forget those it was waiting for. */
void bus_drop_replies(struct bus *bus, struct peer *peer, const char *why)
{
        struct reply_slot *slot;

        while ((slot = list_first_entry(&peer->replies.as_callee, struct reply_slot, callee_link))) {
                struct peer *caller = container_of(slot->caller, struct peer, replies);
                uint32_t serial = slot->serial;
                char callee[DRIVER_CALLEE_NAME_MAX];

                driver_callee_name(slot, peer->unique_name, callee, sizeof(callee));
                reply_slot_free(slot);
                bus->stats.no_reply++;
                driver_send_error(bus, caller, serial, IPCBUS_ERROR_NO_REPLY, "%s %s without answering the call",
                                  callee, why);
        }
        while ((slot = list_first_entry(&peer->replies.as_caller, struct reply_slot, caller_link)))
                reply_slot_free(slot);
}

/*
 * Take the peer off the bus: its rules, pending calls and names go, and the
 * others are told. The peer struct lives on until its connection is closed.
 */
void bus_remove_peer(struct bus *bus, struct peer *peer, const char *reason)
{
        enum peer_state was = peer->state;

        if (was == PEER_GONE)
                return;
        peer->state = PEER_GONE;
        bus_stats_count_disconnect(bus, peer);
        log_printf(peer->conn.failed ? LOG_WARNING : LOG_INFO, "%s disconnected: %s", PEER_DESC(peer), reason);
        if (peer->timer)
                event_del(peer->timer);
        bus_unwait(peer, false);
        bus_wake_waiters(peer);

        if (was == PEER_REGISTERED)
                map_remove(&bus->peers_by_name, &peer->name_node);
        if (was == PEER_MONITOR) {
                match_index_remove_owner(&bus->monitors, &peer->monitor);
                bus->n_monitors--;
        }
        match_index_remove_owner(&bus->matches, &peer->matches);
        bus_drop_activation_requests(peer);
        bus_drop_replies(bus, peer, "disconnected");
        name_registry_remove_owner(&bus->names, &peer->names);
        if (was == PEER_REGISTERED)
                driver_emit_name_owner_changed(bus, peer->unique_name, peer->unique_name, "");
}

/* Take the peer off the bus now, and close its connection once what is
 * queued for it (typically an error saying why) is written. */
void bus_disconnect(struct bus *bus, struct peer *peer, const char *reason)
{
        bus_remove_peer(bus, peer, reason);
        connection_close_after_flush(&peer->conn, "%s", reason);
}

/* Free a peer that is off the bus, and give back what its uid held for it. */
void bus_free_peer(struct bus *bus, struct peer *peer)
{
        struct user *user = peer->user;

        bus->n_peers--;
        bus_stats_forget_peer(bus, peer);
        if (user)
                bus->n_admitted--;
        peer_free(peer); /* its queue's bytes leave the user's total here */
        if (user)
                user_registry_release(&bus->users, user);
        if (bus->peers_changed)
                bus->peers_changed(bus, bus->peers_changed_userdata);
        if (bus->trim && !evtimer_pending(bus->trim, NULL)) {
                const struct timeval tv = {.tv_sec = 1};

                evtimer_add(bus->trim, &tv);
        }
}

/* Framing error, malformed JSON, or no readable serial: say what was wrong, then close. */
void bus_protocol_error(struct bus *bus, struct peer *peer, int code, const char *why)
{
        const struct bus_limits *l = &bus->limits;
        char reason[MSG_WHY_MAX + 96];

        /* A frame over a configured bound says which, as every limit error does. */
        if (code == PROTO_E_HEADER_TOO_LARGE)
                snprintf(reason, sizeof(reason), "protocol error: %s (max_header_bytes, %" PRIu32 ")",
                         proto_strerror(code), l->max_header);
        else if (code == PROTO_E_BODY_TOO_LARGE)
                snprintf(reason, sizeof(reason), "protocol error: %s (max_body_bytes, %" PRIu32 ")",
                         proto_strerror(code), l->max_body);
        else if (code == PROTO_E_FRAME_TOO_LARGE && peer->state == PEER_NEW)
                snprintf(reason, sizeof(reason), "protocol error: %s (before Hello, %u)", proto_strerror(code),
                         PEER_PRE_HELLO_FRAME_MAX);
        else if (code == PROTO_E_FRAME_TOO_LARGE)
                snprintf(reason, sizeof(reason), "protocol error: %s (max_frame_bytes, %" PRIu32 ")",
                         proto_strerror(code), l->max_frame);
        else if (code == PROTO_E_TOO_MANY_FDS)
                snprintf(reason, sizeof(reason), "protocol error: %s (max_fds_per_message, %u)", proto_strerror(code),
                         l->max_fds);
        else if (!proto_error_is_fatal(code))
                /* an invalid message the connection would survive, but with no serial to address the answer to */
                snprintf(reason, sizeof(reason), "protocol error: the serial is missing or unreadable, and %s",
                         why ? why : proto_strerror(code));
        else
                snprintf(reason, sizeof(reason), "protocol error: %s", why ? why : proto_strerror(code));
        log_warning("%s: %s; disconnecting", PEER_DESC(peer), reason);
        peer->stats.end = BUS_DISCONNECT_PROTOCOL_ERROR;
        driver_send_error(bus, peer, 0, IPCBUS_ERROR_PROTOCOL, "%s", reason + strlen("protocol error: "));
        bus_disconnect(bus, peer, reason);
}

static int bus_on_charge_fds(struct connection *c, unsigned n, void *userdata)
{
        struct peer *peer = userdata;

        return peer_charge_fds(peer, n, &peer->bus->limits, bus_fds_free(peer->bus));
}

static void bus_on_broken(struct connection *c, int code, void *userdata)
{
        struct peer *peer = userdata;

        bus_protocol_error(peer->bus, peer, code, NULL);
}

static void bus_on_closed(struct connection *c, const char *reason, void *userdata)
{
        struct peer *peer = userdata;
        struct bus *bus = peer->bus;

        bus_remove_peer(bus, peer, reason);
        log_debug("%s: connection closed: %s", PEER_DESC(peer), reason);
        bus_free_peer(bus, peer);

        if (bus->shutting_down && bus->n_peers == 0)
                event_base_loopexit(bus->base, NULL);
}

static const struct connection_ops bus_peer_ops = {
        .frame = bus_on_frame,
        .broken = bus_on_broken,
        .closed = bus_on_closed,
        .drained = bus_on_drained,
        .charge_fds = bus_on_charge_fds,
};

/* Turn a new connection away: it gets one error saying why, then the door. */
static void bus_refuse(struct bus *bus, struct peer *peer, const char *error_name, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void bus_refuse(struct bus *bus, struct peer *peer, const char *error_name, const char *fmt, ...)
{
        char text[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
        log_warning("refusing a connection of %s: %s", PEER_DESC(peer), text);
        peer->stats.end = BUS_DISCONNECT_REFUSED;
        driver_send_error(bus, peer, 0, error_name, "%s", text);
        bus_disconnect(bus, peer, text);
}

/*
 * Whether the peer holds something on the bus or awaits something from
 * it: a name (owned or queued for), a match rule, a call it made or must
 * answer, a call waiting for an activation, bytes still to be written to
 * it, or a receiver it waits for. Such a peer is never idle.
 */
static bool bus_peer_holds_anything(const struct peer *peer)
{
        return peer->names.n_requests > 0 || peer->matches.n_rules > 0 || peer->replies.n_calls > 0 ||
               !list_is_empty(&peer->replies.as_callee) || !list_is_empty(&peer->activation_requests) ||
               peer->conn.tx_bytes > 0 || peer->waiting_on;
}

/*
 * The peer's timer: before Hello, the hello_timeout_ms deadline. After it,
 * the idle check: a registered peer that has said nothing for
 * idle_timeout_ms and holds nothing (bus_peer_holds_anything) costs a
 * connection slot for nothing, and is closed with a logged reason. Holding
 * something counts as activity, so a caller whose answer just came is not
 * closed at once.
 */
static void bus_on_peer_timer(evutil_socket_t fd, short what, void *userdata)
{
        struct peer *peer = userdata;
        struct bus *bus = peer->bus;
        uint32_t idle_ms = bus->limits.idle_timeout_ms;
        int64_t quiet_ms;

        if (peer->state == PEER_NEW) {
                log_warning("%s: no Hello within %" PRIu32 " ms (hello_timeout_ms); disconnecting", PEER_DESC(peer),
                            bus->limits.hello_timeout_ms);
                driver_send_error(bus, peer, 0, IPCBUS_ERROR_LIMITS_EXCEEDED,
                                  "No Hello within %" PRIu32 " ms, the hello_timeout_ms limit",
                                  bus->limits.hello_timeout_ms);
                peer->stats.end = BUS_DISCONNECT_HELLO_TIMEOUT;
                bus_stats_refused(&bus->stats, BUS_REFUSAL_HELLO_TIMEOUT_MS);
                bus_disconnect(bus, peer, "no Hello in time");
                return;
        }
        if (peer->state != PEER_REGISTERED || idle_ms == 0) /* turned off by a reload */
                return;
        if (bus_peer_holds_anything(peer))
                peer->last_heard_ms = (int64_t) clock_now_msec(CLOCK_MONOTONIC);
        quiet_ms = (int64_t) clock_now_msec(CLOCK_MONOTONIC) - peer->last_heard_ms;
        if (quiet_ms < idle_ms) {
                bus_arm_timer(peer, (uint32_t) (idle_ms - quiet_ms));
                return;
        }
        log_warning("%s: silent for %" PRId64 " ms holding no name, rule or call (idle_timeout_ms %" PRIu32
                    "); disconnecting",
                    PEER_DESC(peer), quiet_ms, idle_ms);
        driver_send_error(bus, peer, 0, IPCBUS_ERROR_LIMITS_EXCEEDED,
                          "Silent for %" PRIu32 " ms holding no name, match rule or call, the idle_timeout_ms limit",
                          idle_ms);
        peer->stats.end = BUS_DISCONNECT_IDLE;
        bus_stats_refused(&bus->stats, BUS_REFUSAL_IDLE_TIMEOUT_MS);
        bus_disconnect(bus, peer, "idle: silent and holding nothing");
}

/*
 * Let a new connection in, or refuse it: the connect policy, then the
 * connection limits, total and per uid. The last reserved_connections slots
 * of max_connections are kept for root and the broker's own uid, so that
 * other users together cannot lock them out. An admitted peer's names,
 * rules, pending calls and queued bytes count into its uid's account from
 * now on, and it has hello_timeout_ms to say Hello.
 */
static void bus_admit(struct bus *bus, struct peer *peer)
{
        const struct bus_limits *l = &bus->limits;
        struct policy_subject who = bus_subject(peer);
        struct policy_verdict v = policy_check_connect(&bus->config->policy, &who);
        uid_t uid = peer_uid(peer);
        struct user *user;
        const struct timeval tv = {
                .tv_sec = l->hello_timeout_ms / 1000,
                .tv_usec = (l->hello_timeout_ms % 1000) * 1000,
        };

        if (!v.allowed) {
                bus_log_denied(bus, peer, POLICY_CONNECT, &v, NULL);
                bus_refuse(bus, peer, IPCBUS_ERROR_ACCESS_DENIED, "uid %u may not connect to this bus", (unsigned) uid);
                return;
        }
        if (bus->n_admitted >= l->max_connections) {
                bus_stats_refused(&bus->stats, BUS_REFUSAL_MAX_CONNECTIONS);
                bus_refuse(bus, peer, IPCBUS_ERROR_LIMITS_EXCEEDED,
                           "The bus has %u connections, the max_connections limit", l->max_connections);
                return;
        }
        if (uid != 0 && uid != bus->uid && (uint64_t) bus->n_admitted + l->reserved_connections >= l->max_connections) {
                bus_stats_refused(&bus->stats, BUS_REFUSAL_RESERVED_CONNECTIONS);
                bus_refuse(bus, peer, IPCBUS_ERROR_LIMITS_EXCEEDED,
                           "The bus has %u connections; its last %u are kept for root (the reserved_connections "
                           "limit, of max_connections %u)",
                           bus->n_admitted, l->reserved_connections, l->max_connections);
                return;
        }
        user = user_registry_find(&bus->users, uid);
        if (user && user->n_connections >= l->max_connections_per_uid) {
                bus_stats_refused(&bus->stats, BUS_REFUSAL_MAX_CONNECTIONS_PER_UID);
                bus_refuse(bus, peer, IPCBUS_ERROR_LIMITS_EXCEEDED,
                           "uid %u has %u connections, the max_connections_per_uid limit", (unsigned) uid,
                           l->max_connections_per_uid);
                return;
        }
        peer->timer = evtimer_new(bus->base, bus_on_peer_timer, peer);
        if (!peer->timer || evtimer_add(peer->timer, &tv) < 0 || user_registry_acquire(&bus->users, uid, &user) < 0) {
                bus_refuse(bus, peer, IPCBUS_ERROR_NO_MEMORY, "Out of memory");
                return;
        }
        if (user_fds_new(&bus->users, user, &peer->fds) < 0) {
                user_registry_release(&bus->users, user);
                bus_refuse(bus, peer, IPCBUS_ERROR_NO_MEMORY, "Out of memory");
                return;
        }
        peer->user = user;
        connection_set_incoming_total(&peer->conn, &user->n_incoming);
        connection_set_max_frame(&peer->conn,
                                 l->max_frame < PEER_PRE_HELLO_FRAME_MAX ? l->max_frame : PEER_PRE_HELLO_FRAME_MAX);
        bus->n_admitted++;
        peer->names.total = &user->n_names;
        peer->matches.total = &user->n_matches;
        peer->replies.total = &user->n_pending;
        connection_set_total(&peer->conn, &user->n_queued);
}

void bus_accept(int fd, void *userdata)
{
        struct bus *bus = userdata;
        struct peer *peer;
        int r;

        if (bus->shutting_down) {
                close(fd);
                return;
        }

        r = peer_new(bus, bus->base, fd, bus->next_id, &bus->conn_limits, &bus_peer_ops, &peer);
        if (r < 0) {
                log_warning("cannot set up a new connection: %s", strerror(-r));
                close(fd);
                return;
        }
        bus->next_id++;
        list_link_tail(&bus->peers, &peer->link);
        bus->n_peers++;
        bus->stats.connections_accepted++;
        if (bus->n_peers > bus->stats.connections_peak)
                bus->stats.connections_peak = bus->n_peers;
        log_debug("%s connected", PEER_DESC(peer));
        bus_admit(bus, peer);
        if (bus->peers_changed)
                bus->peers_changed(bus, bus->peers_changed_userdata);
}

void bus_refuse_fd(int fd, void *userdata)
{
        static const char body[] = "{\"message\":\"The bus is out of file descriptors; try again later\"}";
        struct bus *bus = userdata;
        _cleanup_(msg_unrefp) struct msg *m = NULL;
        struct msg_header h;

        log_warning("out of file descriptors: refusing a new connection");
        bus_stats_refused(&bus->stats, BUS_REFUSAL_DESCRIPTORS);
        msg_header_init(&h);
        h.type = MSG_ERROR;
        h.serial = bus_next_serial(bus);
        h.sender = IPCBUS_DRIVER_NAME;
        h.sender_uid = bus->uid;
        h.sender_pid = bus->pid;
        h.error_name = IPCBUS_ERROR_LIMITS_EXCEEDED;
        /* One best-effort write into a fresh socket's empty buffer. */
        if (msg_build(&h, body, sizeof(body) - 1, &m) == 0)
                (void) !send(fd, m->data, m->size, MSG_DONTWAIT | MSG_NOSIGNAL);
        close(fd);
}

void bus_shutdown(struct bus *bus)
{
        struct peer *p;

        bus->shutting_down = true;
        /* Closing only: each peer leaves the bus from its `closed` callback,
         * and draining connections take no new messages meanwhile. */
        list_for_each_entry(p, &bus->peers, link)
                connection_close_after_flush(&p->conn, "the bus is shutting down");
        if (bus->n_peers == 0)
                event_base_loopexit(bus->base, NULL);
}
