/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <json.h>

#include "bus.h"
#include "driver.h"
#include "ipcbus/wire.h"
#include "log.h"
#include "peer.h"
#include "protocol/jscan.h"
#include "protocol/message.h"
#include "protocol/proto-error.h"
#include "util.h"

static void bus_on_name_change(struct name_registry *reg, const char *name, struct name_owner *old_owner,
                               struct name_owner *new_owner, void *userdata);
static void bus_on_reply_timeout(struct reply_slot *slot, void *userdata);

/* 32 lowercase hex digits, random, without ever blocking (the system bus
 * may start before the entropy pool is ready). */
static void bus_make_id(char id[33])
{
        uint8_t bytes[16];
        ssize_t n = getrandom(bytes, sizeof(bytes), GRND_NONBLOCK);

        if (n != (ssize_t) sizeof(bytes)) {
                int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

                n = fd >= 0 ? read(fd, bytes, sizeof(bytes)) : -1;
                if (fd >= 0)
                        close(fd);
        }
        if (n != (ssize_t) sizeof(bytes)) {
                struct timespec ts;
                uint64_t a, b;

                clock_gettime(CLOCK_REALTIME, &ts);
                a = (uint64_t) ts.tv_sec * 1000000007u ^ (uint64_t) ts.tv_nsec;
                b = ((uint64_t) getpid() << 32) ^ (uint64_t) (uintptr_t) bytes ^ a * 0x9e3779b97f4a7c15ULL;
                memcpy(bytes, &a, 8);
                memcpy(bytes + 8, &b, 8);
        }
        for (size_t i = 0; i < sizeof(bytes); i++)
                snprintf(id + 2 * i, 3, "%02x", bytes[i]);
}

int bus_init(struct bus *bus, struct event_base *base, const struct bus_config *config)
{
        *bus = (struct bus){
                .base = base,
                .next_id = 1,
                .uid = getuid(),
                .gid = getgid(),
                .pid = getpid(),
        };
        bus_config_init(&bus->default_config);
        bus->config = config ? config : &bus->default_config;
        bus->limits = bus->config->limits;

        bus->tok = json_tokener_new_ex(IPCBUS_DEPTH_MAX + 1);
        if (!bus->tok)
                return -ENOMEM;

        name_registry_init(&bus->names, bus->limits.max_names, bus_on_name_change, bus);
        match_index_init(&bus->matches);
        match_index_init(&bus->monitors);
        reply_registry_init(&bus->replies, base, bus->limits.reply_timeout_ms, bus_on_reply_timeout, bus);
        map_init(&bus->peers_by_name);
        list_init(&bus->peers);
        bus_make_id(bus->id);
        return 0;
}

static void bus_remove_peer(struct bus *bus, struct peer *peer, const char *reason);

void bus_deinit(struct bus *bus)
{
        struct peer *p;

        while ((p = list_first_entry(&bus->peers, struct peer, link))) {
                bus_remove_peer(bus, p, "the bus is shutting down");
                bus->n_peers--;
                peer_free(p);
        }
        reply_registry_deinit(&bus->replies);
        match_index_deinit(&bus->monitors);
        match_index_deinit(&bus->matches);
        name_registry_deinit(&bus->names);
        map_deinit(&bus->peers_by_name);
        if (bus->tok)
                json_tokener_free(bus->tok);
        bus->tok = NULL;
        bus_config_deinit(&bus->default_config);
}

const char *bus_describe(const struct peer *peer, char *buf, size_t size)
{
        snprintf(buf, size, "%s (pid %d, uid %u)", peer->unique_name, (int) peer_pid(peer), (unsigned) peer_uid(peer));
        return buf;
}

#define PEER_DESC(p) bus_describe((p), (char[96]){0}, 96)

uint32_t bus_next_serial(struct bus *bus)
{
        if (++bus->serial == 0)
                bus->serial = 1;
        return bus->serial;
}

/* ---- finding peers ----------------------------------------------------- */

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
static bool bus_owns(const char *well_known, const char *unique, void *userdata)
{
        struct bus *bus = userdata;
        struct name_owner *owner;

        if (strcmp(well_known, unique) == 0)
                return true;
        owner = name_registry_lookup(&bus->names, well_known);
        return owner && strcmp(container_of(owner, struct peer, names)->unique_name, unique) == 0;
}

/* ---- delivering -------------------------------------------------------- */

/* Give m to peer, if it takes messages at all. Monitors take only copies
 * (bus_monitor); a peer on its way out takes nothing. */
static void bus_deliver(struct bus *bus, struct peer *peer, struct msg *m)
{
        if (peer->state == PEER_REGISTERED || peer->state == PEER_NEW)
                peer_send(peer, m);
}

struct bus_route {
        struct bus *bus;
        struct msg *m;
};

static bool bus_route_owns(const char *well_known, const char *unique, void *userdata)
{
        return bus_owns(well_known, unique, ((struct bus_route *) userdata)->bus);
}

static void bus_deliver_subscriber(struct match_owner *owner, void *userdata)
{
        struct bus_route *route = userdata;

        bus_deliver(route->bus, container_of(owner, struct peer, matches), route->m);
}

static void bus_deliver_monitor(struct match_owner *owner, void *userdata)
{
        struct bus_route *route = userdata;
        struct peer *peer = container_of(owner, struct peer, monitor);

        if (peer->state == PEER_MONITOR)
                peer_send(peer, route->m);
}

/* Every peer with a matching rule gets m, once; they all share this one message. */
static void bus_broadcast(struct bus *bus, struct msg *m)
{
        struct bus_route route = {bus, m};

        match_index_route(&bus->matches, m, bus_route_owns, bus_deliver_subscriber, &route);
}

/* Monitors get a copy of m (the same shared message) when one of their rules matches. */
static void bus_monitor(struct bus *bus, struct msg *m)
{
        struct bus_route route = {bus, m};

        if (bus->n_monitors > 0)
                match_index_route(&bus->monitors, m, bus_route_owns, bus_deliver_monitor, &route);
}

void bus_send(struct bus *bus, struct peer *to, struct msg *m)
{
        bus_monitor(bus, m);
        if (to)
                bus_deliver(bus, to, m);
        else
                bus_broadcast(bus, m);
}

/* ---- peers coming and going -------------------------------------------- */

int bus_register(struct bus *bus, struct peer *peer)
{
        int r = map_add(&bus->peers_by_name, &peer->name_node, map_hash_string(peer->unique_name));

        if (r < 0)
                return r;
        peer->state = PEER_REGISTERED;
        log_info("%s said Hello", PEER_DESC(peer));
        return 0;
}

/* End the calls the peer was to answer (each caller gets NoReply at once)
 * and forget those it was waiting for. */
static void bus_drop_replies(struct bus *bus, struct peer *peer, const char *why)
{
        struct reply_slot *slot;

        while ((slot = list_first_entry(&peer->replies.as_callee, struct reply_slot, callee_link))) {
                struct peer *caller = container_of(slot->caller, struct peer, replies);
                uint32_t serial = slot->serial;

                reply_slot_free(slot);
                driver_send_error(bus, caller, serial, IPCBUS_ERROR_NO_REPLY, "%s %s without answering the call",
                                  peer->unique_name, why);
        }
        while ((slot = list_first_entry(&peer->replies.as_caller, struct reply_slot, caller_link)))
                reply_slot_free(slot);
}

/*
 * Take the peer off the bus: its rules, pending calls and names go, and the
 * others are told. The peer struct lives on until its connection is closed.
 */
static void bus_remove_peer(struct bus *bus, struct peer *peer, const char *reason)
{
        enum peer_state was = peer->state;

        if (was == PEER_GONE)
                return;
        peer->state = PEER_GONE;
        log_info("%s disconnected: %s", PEER_DESC(peer), reason);

        if (was == PEER_REGISTERED)
                map_remove(&bus->peers_by_name, &peer->name_node);
        if (was == PEER_MONITOR) {
                match_index_remove_owner(&bus->monitors, &peer->monitor);
                bus->n_monitors--;
        }
        match_index_remove_owner(&bus->matches, &peer->matches);
        bus_drop_replies(bus, peer, "disconnected");
        name_registry_remove_owner(&bus->names, &peer->names);
        if (was == PEER_REGISTERED)
                driver_emit_name_owner_changed(bus, peer->unique_name, peer->unique_name, "");
}

/* Take the peer off the bus now, and close its connection once what is
 * queued for it (typically an error saying why) is written. */
static void bus_disconnect(struct bus *bus, struct peer *peer, const char *reason)
{
        bus_remove_peer(bus, peer, reason);
        connection_close_after_flush(&peer->conn, "%s", reason);
}

void bus_become_monitor(struct bus *bus, struct peer *peer, struct match_rule *rules, size_t n_rules)
{
        peer->state = PEER_MONITOR;
        bus->n_monitors++;
        log_info("%s became a monitor", PEER_DESC(peer));

        map_remove(&bus->peers_by_name, &peer->name_node);
        match_index_remove_owner(&bus->matches, &peer->matches);
        bus_drop_replies(bus, peer, "became a monitor");
        name_registry_remove_owner(&bus->names, &peer->names);
        driver_emit_name_owner_changed(bus, peer->unique_name, peer->unique_name, "");

        /* Only now: what it sees starts after it stopped being a member. */
        for (size_t i = 0; i < n_rules; i++) {
                if (match_index_add(&bus->monitors, &peer->monitor, &rules[i]) < 0) {
                        log_error("%s: out of memory storing monitor rules; disconnecting", PEER_DESC(peer));
                        bus_disconnect(bus, peer, "out of memory storing monitor rules");
                        return;
                }
        }
}

static void bus_on_name_change(struct name_registry *reg, const char *name, struct name_owner *old_owner,
                               struct name_owner *new_owner, void *userdata)
{
        struct bus *bus = userdata;
        struct peer *old_peer = old_owner ? container_of(old_owner, struct peer, names) : NULL;
        struct peer *new_peer = new_owner ? container_of(new_owner, struct peer, names) : NULL;

        log_debug("name %s: owner %s -> %s", name, old_peer ? old_peer->unique_name : "(none)",
                  new_peer ? new_peer->unique_name : "(none)");

        /* Nobody is told about a loss that happens because it left. */
        if (old_peer && old_peer->state == PEER_REGISTERED)
                driver_emit_name_lost(bus, old_peer, name);
        if (new_peer)
                driver_emit_name_acquired(bus, new_peer, name);
        driver_emit_name_owner_changed(bus, name, old_peer ? old_peer->unique_name : "",
                                       new_peer ? new_peer->unique_name : "");
}

static void bus_on_reply_timeout(struct reply_slot *slot, void *userdata)
{
        struct bus *bus = userdata;
        struct peer *caller = container_of(slot->caller, struct peer, replies);
        struct peer *callee = container_of(slot->callee, struct peer, replies);

        driver_send_error(bus, caller, slot->serial, IPCBUS_ERROR_TIMEOUT, "%s did not answer within %" PRIu32 " ms",
                          callee->unique_name, slot->timeout_ms);
}

/* ---- routing ----------------------------------------------------------- */

/*
 * The receiver of a message it did not ask for has no room for it: the
 * sender learns so (even for a signal, which otherwise gets no answer) and
 * the receiver, merely slow, stays connected.
 */
static void bus_refuse_full(struct bus *bus, struct peer *sender, struct peer *to, struct msg *m)
{
        log_info("%s: %s to %s refused: its outgoing queue is full", sender->unique_name, msg_type_to_string(m->h.type),
                 to->unique_name);
        driver_reply_error(bus, sender, m, IPCBUS_ERROR_LIMITS_EXCEEDED,
                           "The outgoing queue of %s is full (limit %zu bytes); try again later", to->unique_name,
                           bus->limits.max_queue);
}

static void bus_route_call(struct bus *bus, struct peer *sender, struct msg *m)
{
        const char *dest = m->h.destination;
        struct peer *callee;
        int r;

        if (!dest) {
                driver_reply_error(bus, sender, m, IPCBUS_ERROR_SERVICE_UNKNOWN, "The call has no destination");
                return;
        }
        if (strcmp(dest, IPCBUS_DRIVER_NAME) == 0) {
                driver_dispatch(bus, sender, m);
                return;
        }

        callee = bus_find_peer(bus, dest);
        if (!callee) {
                driver_reply_error(bus, sender, m, IPCBUS_ERROR_SERVICE_UNKNOWN, "The name %s has no owner", dest);
                return;
        }

        if (!peer_has_room(callee, m)) {
                bus_refuse_full(bus, sender, callee, m);
                return;
        }
        if (!m->h.no_reply) {
                if (bus->limits.max_pending && sender->replies.n_calls >= bus->limits.max_pending) {
                        driver_reply_error(bus, sender, m, IPCBUS_ERROR_LIMITS_EXCEEDED,
                                           "%s already awaits answers to %u calls, its limit", sender->unique_name,
                                           bus->limits.max_pending);
                        return;
                }
                r = reply_slot_new(&bus->replies, &sender->replies, &callee->replies, m->h.serial, m->h.timeout_ms,
                                   NULL);
                if (r == -EEXIST) {
                        driver_reply_error(bus, sender, m, IPCBUS_ERROR_INVALID_MESSAGE,
                                           "Serial %" PRIu32 " is already used by a call still awaiting an answer",
                                           m->h.serial);
                        return;
                }
                if (r < 0) {
                        driver_reply_error(bus, sender, m, IPCBUS_ERROR_NO_MEMORY, "Out of memory");
                        return;
                }
        }

        bus_deliver(bus, callee, m);
}

/* A return or error passes only when it answers a pending call whose callee sent it. */
static void bus_route_reply(struct bus *bus, struct peer *sender, struct msg *m)
{
        const char *dest = m->h.destination;
        struct peer *caller = dest ? bus_find_peer(bus, dest) : NULL;
        struct reply_slot *slot = NULL;

        if (caller && m->h.reply_serial)
                slot = reply_slot_find(&bus->replies, &caller->replies, m->h.reply_serial);

        if (!slot || slot->callee != &sender->replies) {
                driver_send_error(bus, sender, m->h.serial, IPCBUS_ERROR_UNEXPECTED_REPLY,
                                  "No call of %s with serial %" PRIu32 " awaits an answer from %s",
                                  dest ? dest : "(no destination)", m->h.reply_serial, sender->unique_name);
                return;
        }

        reply_slot_free(slot);
        bus_deliver(bus, caller, m);
}

static void bus_route_signal(struct bus *bus, struct peer *sender, struct msg *m)
{
        struct peer *to;

        if (!m->h.destination) {
                bus_broadcast(bus, m);
                return;
        }
        to = bus_find_peer(bus, m->h.destination);
        if (to && !peer_has_room(to, m))
                bus_refuse_full(bus, sender, to, m);
        else if (to)
                bus_deliver(bus, to, m);
        else
                log_debug("%s: dropping signal %s to %s: no such name", sender->unique_name, m->h.member,
                          m->h.destination);
}

static bool bus_is_hello(const struct msg *m)
{
        return m->h.type == MSG_CALL && m->h.destination && strcmp(m->h.destination, IPCBUS_DRIVER_NAME) == 0 &&
               strcmp(m->h.path, IPCBUS_DRIVER_PATH) == 0 &&
               (!m->h.interface || strcmp(m->h.interface, IPCBUS_DRIVER_INTERFACE) == 0) &&
               strcmp(m->h.member, "Hello") == 0;
}

/* Framing error, malformed JSON, or no readable serial: say what was wrong, then close. */
static void bus_protocol_error(struct bus *bus, struct peer *peer, int code)
{
        char reason[160];

        snprintf(reason, sizeof(reason), "protocol error: %s", proto_strerror(code));
        log_warning("%s: %s; disconnecting", PEER_DESC(peer), reason);
        driver_send_error(bus, peer, 0, IPCBUS_ERROR_PROTOCOL, "%s", proto_strerror(code));
        bus_disconnect(bus, peer, reason);
}

/*
 * One frame from a peer. `invalid` handling follows PROTOCOL.md 9: fatal
 * codes close the connection, others get InvalidMessage when the serial was
 * readable. Before Hello only Hello is accepted.
 */
static void bus_on_frame(struct connection *c, const struct frame_view *f, int *fds, void *userdata)
{
        struct peer *peer = userdata;
        struct bus *bus = peer->bus;
        const struct msg_stamp stamp = {
                .sender = peer->unique_name,
                .uid = (uint32_t) peer_uid(peer),
                .pid = (uint32_t) peer_pid(peer),
        };
        _cleanup_(msg_unrefp) struct msg *m = NULL;
        uint32_t serial = 0;
        bool no_reply = false;
        int r;

        if (peer->state != PEER_NEW && peer->state != PEER_REGISTERED) {
                close_fds(fds, f->prefix.n_fds);
                if (peer->state == PEER_MONITOR) {
                        log_info("%s: a monitor sent a message; disconnecting", PEER_DESC(peer));
                        bus_disconnect(bus, peer, "a monitor sent a message");
                }
                return;
        }

        r = msg_parse(f, &stamp, 0, fds, &m, &serial, &no_reply);
        if (r != 0)
                close_fds(fds, f->prefix.n_fds);
        if (r < 0) {
                log_error("%s: cannot take a message: %s", PEER_DESC(peer), strerror(-r));
                if (serial && !no_reply)
                        driver_send_error(bus, peer, serial, IPCBUS_ERROR_NO_MEMORY, "Out of memory");
                return;
        }
        if (r > 0 && (proto_error_is_fatal(r) || serial == 0)) {
                bus_protocol_error(bus, peer, r);
                return;
        }

        if (peer->state == PEER_NEW) {
                if (r == 0 && bus_is_hello(m)) {
                        bus_monitor(bus, m);
                        driver_dispatch(bus, peer, m);
                        return;
                }
                log_info("%s: message before Hello; disconnecting", PEER_DESC(peer));
                if (r > 0)
                        driver_send_error(bus, peer, serial, IPCBUS_ERROR_ACCESS_DENIED,
                                          "Hello must be the first message (and this one is invalid: %s)",
                                          proto_strerror(r));
                else
                        driver_send_error(bus, peer, serial, IPCBUS_ERROR_ACCESS_DENIED,
                                          "Hello must be the first message");
                bus_disconnect(bus, peer, "a message before Hello");
                return;
        }

        if (r > 0) {
                log_debug("%s: invalid message (serial %" PRIu32 "): %s", PEER_DESC(peer), serial, proto_strerror(r));
                if (!no_reply) /* PROTOCOL.md 9: only a call with no_reply goes unanswered */
                        driver_send_error(bus, peer, serial, IPCBUS_ERROR_INVALID_MESSAGE, "Invalid message: %s",
                                          proto_strerror(r));
                return;
        }

        /* Monitors see what was sent, whether or not it can be delivered. */
        bus_monitor(bus, m);

        switch (m->h.type) {
        case MSG_CALL:
                bus_route_call(bus, peer, m);
                break;
        case MSG_RETURN:
        case MSG_ERROR:
                bus_route_reply(bus, peer, m);
                break;
        case MSG_SIGNAL:
                bus_route_signal(bus, peer, m);
                break;
        default:
                break;
        }
}

static void bus_on_broken(struct connection *c, int code, void *userdata)
{
        struct peer *peer = userdata;

        bus_protocol_error(peer->bus, peer, code);
}

static void bus_on_closed(struct connection *c, const char *reason, void *userdata)
{
        struct peer *peer = userdata;
        struct bus *bus = peer->bus;

        bus_remove_peer(bus, peer, reason);
        log_debug("%s: connection closed: %s", PEER_DESC(peer), reason);
        bus->n_peers--;
        peer_free(peer);

        if (bus->shutting_down && bus->n_peers == 0)
                event_base_loopexit(bus->base, NULL);
}

static const struct connection_ops bus_peer_ops = {
        .frame = bus_on_frame,
        .broken = bus_on_broken,
        .closed = bus_on_closed,
};

void bus_accept(int fd, void *userdata)
{
        struct bus *bus = userdata;
        struct peer *peer;
        int r;

        if (bus->shutting_down) {
                close(fd);
                return;
        }
        if (bus->limits.max_connections && bus->n_peers >= bus->limits.max_connections) {
                log_warning("refusing a connection: %u connections is the limit", bus->limits.max_connections);
                close(fd);
                return;
        }

        r = peer_new(bus, bus->base, fd, bus->next_id, bus->limits.max_body, bus->limits.max_queue, &bus_peer_ops,
                     &peer);
        if (r < 0) {
                log_warning("cannot set up a new connection: %s", strerror(-r));
                close(fd);
                return;
        }
        bus->next_id++;
        list_link_tail(&bus->peers, &peer->link);
        bus->n_peers++;
        log_debug("%s connected", PEER_DESC(peer));
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
