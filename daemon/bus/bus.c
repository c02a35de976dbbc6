/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <malloc.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon/bus/bus.h"
#include "daemon/bus/driver.h"
#include "ipcbus/wire.h"
#include "daemon/log.h"
#include "daemon/bus/peer.h"
#include "protocol/jbuf.h"
#include "protocol/jscan.h"
#include "protocol/message.h"
#include "protocol/proto-error.h"
#include "util/clock.h"
#include "util/random.h"
#include "util/util.h"

static void bus_on_name_change(struct name_registry *reg, const char *name, struct name_owner *old_owner,
                               struct name_owner *new_owner, void *userdata);

/*
 * A second after peers left (however many), hand the memory they used back
 * to the system: the allocator keeps freed holes in the heap otherwise, and
 * a broker that served a thousand clients would stay that large.
 */
static void bus_on_trim(evutil_socket_t fd, short what, void *userdata)
{
        malloc_trim(0);
}
static void bus_on_reply_timeout(struct reply_slot *slot, void *userdata);
static void bus_on_activation_done(struct activation *a, const char *error, const char *message, void *userdata);
static int bus_load_services(struct bus *bus, const struct bus_config *config, struct service_registry *reg,
                             const struct service_registry *previous);
static void bus_activate(struct bus *bus, struct peer *sender, struct msg *m, const char *name, bool start_service);
static void bus_drop_activation_requests(struct peer *peer);
static struct activation *bus_activation_of(struct bus *bus, const struct reply_owner *callee);
static void bus_drop_activation_request(struct activation *a, struct peer *sender, uint32_t serial);

/* 32 lowercase hex digits, random, without ever blocking (the system bus
 * may start before the entropy pool is ready). */
static void bus_make_id(char id[33])
{
        uint8_t bytes[16];

        random_bytes(bytes, sizeof(bytes));
        for (size_t i = 0; i < sizeof(bytes); i++)
                snprintf(id + 2 * i, 3, "%02x", bytes[i]);
}

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

/* What every connection reads its limits from (shared, so a reload reaches them all). */
static void bus_set_connection_limits(struct bus *bus)
{
        bus->conn_limits = (struct connection_limits){
                .max_header = bus->limits.max_header,
                .max_body = bus->limits.max_body,
                .max_frame = bus->limits.max_frame,
                .max_fds = bus->limits.max_fds,
                .max_queue = bus->limits.max_queue,
                .max_queue_total = bus->limits.max_queue_per_uid,
                .backpressure = bus->limits.backpressure,
                .stall_ms = bus->limits.stall_timeout_ms,
                .max_incoming_total = bus->limits.max_incoming_uid,
        };
        /* Monitor copies have a budget of their own: a per-monitor bound, and
         * a uid's monitors share an account apart from its services' queues. */
        bus->monitor_limits = bus->conn_limits;
        bus->monitor_limits.max_queue = bus->limits.max_monitor_queue;
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
        bus_set_connection_limits(bus);

        bus->trim = evtimer_new(base, bus_on_trim, bus);
        if (!bus->trim) {
                bus_config_deinit(&bus->default_config);
                return -ENOMEM;
        }

        user_registry_init(&bus->users);
        name_registry_init(&bus->names, bus->limits.max_names, bus->limits.max_names_per_uid, bus_on_name_change, bus);
        match_index_init(&bus->matches);
        match_index_init(&bus->monitors);
        reply_registry_init(&bus->replies, base, bus->limits.reply_timeout_ms, bus_on_reply_timeout, bus);
        map_init(&bus->peers_by_name);
        list_init(&bus->peers);
        bus_make_id(bus->id);
        service_registry_init(&bus->services);
        if (activation_registry_init(&bus->activations, base, bus->config->type, bus->limits.activation_timeout_ms,
                                     bus_on_activation_done, bus) < 0 ||
            bus_load_services(bus, bus->config, &bus->services, NULL) < 0) {
                bus_deinit(bus);
                return -ENOMEM;
        }
        return 0;
}

static void bus_remove_peer(struct bus *bus, struct peer *peer, const char *reason);
static void bus_free_peer(struct bus *bus, struct peer *peer);

void bus_deinit(struct bus *bus)
{
        struct peer *p;

        bus->peers_changed = NULL;
        while ((p = list_first_entry(&bus->peers, struct peer, link))) {
                bus_remove_peer(bus, p, "the bus is shutting down");
                bus_free_peer(bus, p);
        }
        activation_registry_deinit(&bus->activations);
        service_registry_deinit(&bus->services);
        reply_registry_deinit(&bus->replies);
        match_index_deinit(&bus->monitors);
        match_index_deinit(&bus->matches);
        name_registry_deinit(&bus->names);
        map_deinit(&bus->peers_by_name);
        user_registry_deinit(&bus->users);
        if (bus->trim)
                event_free(bus->trim);
        bus->trim = NULL;
        bus_config_deinit(&bus->default_config);
}

const char *bus_describe(const struct peer *peer, char *buf, size_t size)
{
        snprintf(buf, size, "%s (pid %d, uid %u)", peer->unique_name, (int) peer_pid(peer), (unsigned) peer_uid(peer));
        return buf;
}

#define PEER_DESC(p) bus_describe((p), (char[96]){0}, 96)

struct policy_subject bus_subject(const struct peer *peer)
{
        return (struct policy_subject){
                .uid = peer_uid(peer),
                .gid = peer_gid(peer),
                .groups = peer->conn.groups,
                .n_groups = peer->conn.n_groups,
        };
}

void bus_log_denied(struct bus *bus, const struct peer *peer, enum policy_action action, const struct policy_verdict *v,
                    const char *what)
{
        char rule[32];

        log_warning("access denied: action=%s peer=%s uid=%u gid=%u pid=%d%s%s rule=%s",
                    policy_action_to_string(action), peer->unique_name, (unsigned) peer_uid(peer),
                    (unsigned) peer_gid(peer), (int) peer_pid(peer), what ? " " : "", what ? what : "",
                    policy_rule_describe(v->rule, rule, sizeof(rule)));
}

/* "destination=... path=... interface=... member=... type=..." of a message, for denial logs. */
static const char *bus_describe_message(const struct msg *m, char *buf, size_t size)
{
        snprintf(buf, size, "destination=%s path=%s interface=%s member=%s type=%s",
                 m->h.destination ? m->h.destination : "(broadcast)", m->h.path ? m->h.path : "-",
                 m->h.interface ? m->h.interface : "-", m->h.member ? m->h.member : "-", msg_type_to_string(m->h.type));
        return buf;
}

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

/* ---- policy ------------------------------------------------------------ */

/* policy_peer.owns: does the peer (userdata) own the well-known name? */
static bool bus_peer_owns(const char *name, void *userdata)
{
        struct peer *peer = userdata;

        return name_registry_lookup(&peer->bus->names, name) == &peer->names;
}

static bool bus_name_has_prefix(const char *name, const void *prefix)
{
        return policy_name_has_prefix(name, prefix);
}

/* policy_peer.owns_prefix: does the peer own the name `prefix` or one below it? */
static bool bus_peer_owns_prefix(const char *prefix, void *userdata)
{
        struct peer *peer = userdata;

        return name_owner_owns_any(&peer->names, bus_name_has_prefix, prefix);
}

static struct policy_peer bus_policy_peer(struct peer *peer)
{
        return (struct policy_peer){peer->unique_name, bus_peer_owns, peer, bus_peer_owns_prefix};
}

/*
 * May `sender` send m to `to` (NULL: a broadcast), and may `to` receive it?
 * Calls to the driver, and the driver's own messages, are not subject to
 * policy (the caller does not ask then). A denial of a unicast message is
 * logged; a broadcast a subscriber may not receive just passes it by.
 */
static struct policy_verdict bus_check_transfer(struct bus *bus, struct peer *sender, struct peer *to,
                                                const struct msg *m, enum policy_action *ret_action)
{
        const struct policy *policy = &bus->config->policy;
        struct policy_subject who = bus_subject(sender);
        struct policy_peer peer = to ? bus_policy_peer(to) : (struct policy_peer){0};
        struct policy_verdict v;

        *ret_action = POLICY_SEND;
        v = policy_check_send(policy, &who, &m->h, to ? &peer : NULL);
        if (!v.allowed || !to)
                return v;

        who = bus_subject(to);
        peer = bus_policy_peer(sender);
        *ret_action = POLICY_RECEIVE;
        return policy_check_receive(policy, &who, &m->h, &peer);
}

/* ---- delivering -------------------------------------------------------- */

/*
 * Give m, sent by `sender` (NULL: the driver), to peer, if it takes
 * messages at all. Monitors take only copies (bus_monitor); a peer on its
 * way out takes nothing. A receiver that a client's own message leaves
 * congested is noted: that client will wait for it (bus_hold_back). What
 * the driver sends, even on a client's behalf (NameOwnerChanged after its
 * Hello or RequestName), holds back no one: a receiver that cannot take it
 * answers for that with its own queue limit (peer_send).
 */
static void bus_deliver(struct bus *bus, struct peer *sender, struct peer *peer, struct msg *m)
{
        if (peer->state != PEER_REGISTERED && peer->state != PEER_NEW)
                return;
        if (peer_send(peer, m) == 0 && sender && sender == bus->sender && !bus->congested &&
            connection_congested(&peer->conn))
                bus->congested = peer;
}

struct bus_route {
        struct bus *bus;
        struct peer *sender; /* NULL: the driver */
        struct msg *m;
};

static bool bus_route_owns(const char *well_known, const char *unique, void *userdata)
{
        return bus_owns(well_known, unique, ((struct bus_route *) userdata)->bus);
}

/* match_names_fn: the well-known names the connection `unique` owns. */
static void bus_route_names(const char *unique, bool (*visit)(const char *name, const void *arg), const void *arg,
                            void *userdata)
{
        struct peer *peer = unique[0] == ':' ? bus_find_peer(((struct bus_route *) userdata)->bus, unique) : NULL;

        if (peer)
                name_owner_owns_any(&peer->names, visit, arg);
}

static void bus_deliver_subscriber(struct match_owner *owner, void *userdata)
{
        struct bus_route *route = userdata;
        struct peer *peer = container_of(owner, struct peer, matches);

        if (route->sender && route->bus->config->policy.n_by_action[POLICY_RECEIVE] > 0) {
                struct policy_subject who = bus_subject(peer);
                struct policy_peer from = bus_policy_peer(route->sender);

                if (!policy_check_receive(&route->bus->config->policy, &who, &route->m->h, &from).allowed)
                        return;
        }
        bus_deliver(route->bus, route->sender, peer, route->m);
}

/* Room a MessagesLost notice needs at most (prefix, header with the sender fields, body). */
#define BUS_NOTICE_BYTES 512

/*
 * Tell a monitor how many copies it lost (MessagesLost), if it lost any and
 * has room for the notice. Its uid's other monitors may fill their shared
 * account: then the notice waits for the next chance (a drain, or a copy
 * that fits), and the monitor is not closed for it.
 */
static void bus_tell_lost(struct bus *bus, struct peer *peer)
{
        if (peer->n_lost == 0 || connection_check_room(&peer->conn, BUS_NOTICE_BYTES) < 0)
                return;
        log_info("%s: monitor caught up after losing %" PRIu64 " messages", PEER_DESC(peer), peer->n_lost);
        driver_emit_messages_lost(bus, peer, peer->n_lost);
        peer->n_lost = 0;
}

/*
 * A monitor that has no room for a copy loses it, and is told how many it
 * lost once its queue has drained (bus_on_drained), or before its next copy
 * when the notice did not fit then: monitors never hold the bus back, and a
 * loss never goes unannounced.
 */
static void bus_deliver_monitor(struct match_owner *owner, void *userdata)
{
        struct bus_route *route = userdata;
        struct peer *peer = container_of(owner, struct peer, monitor);

        if (peer->state != PEER_MONITOR)
                return;
        if (peer_check_room(peer, route->m) < 0) {
                if (peer->n_lost++ == 0)
                        log_warning("%s: monitor fell behind; dropping its copies until it catches up",
                                    PEER_DESC(peer));
                connection_watch_drain(&peer->conn);
                return;
        }
        if (!peer->conn.watch_drain)
                bus_tell_lost(route->bus, peer);
        peer_send(peer, route->m);
}

/* Every peer with a matching rule gets m, once; they all share this one message. */
static void bus_broadcast(struct bus *bus, struct peer *sender, struct msg *m)
{
        struct bus_route route = {bus, sender, m};

        match_index_route(&bus->matches, m, bus_route_owns, bus_route_names, bus_deliver_subscriber, &route);
}

/* Monitors get a copy of m (the same shared message) when one of their rules matches. */
static void bus_monitor(struct bus *bus, struct msg *m)
{
        struct bus_route route = {bus, NULL, m};

        if (bus->n_monitors > 0)
                match_index_route(&bus->monitors, m, bus_route_owns, bus_route_names, bus_deliver_monitor, &route);
}

void bus_send(struct bus *bus, struct peer *to, struct msg *m)
{
        /* The driver's notices to a monitor itself (MessagesLost) are no one else's business. */
        if (to && to->state == PEER_MONITOR) {
                peer_send(to, m);
                return;
        }
        bus_monitor(bus, m);
        if (to)
                bus_deliver(bus, NULL, to, m);
        else
                bus_broadcast(bus, NULL, m);
}

/* ---- backpressure ------------------------------------------------------ */

/* Stop waiting; `resume` reading unless the peer is on its way out anyway. */
static void bus_unwait(struct peer *peer, bool resume)
{
        if (!peer->waiting_on)
                return;
        list_unlink(&peer->wait_link);
        peer->waiting_on = NULL;
        if (resume)
                connection_resume(&peer->conn);
}

static void bus_wake_waiters(struct peer *peer)
{
        struct peer *w;

        while ((w = list_first_entry(&peer->waiters, struct peer, wait_link)))
                bus_unwait(w, true);
}

/*
 * After a peer's message was routed: if it left a receiver's queue (or the
 * peer's own, with the driver's answers) congested, stop reading from the
 * peer until that queue drains to half. Nothing is dropped and nothing
 * grows without bound; a receiver that stops reading altogether is closed
 * after stall_timeout_ms, which wakes its waiters too.
 */
static void bus_hold_back(struct bus *bus, struct peer *peer)
{
        struct peer *on = bus->congested;

        bus->congested = NULL;
        if (!on && connection_congested(&peer->conn))
                on = peer;
        if (!on || peer->state == PEER_GONE || on->state == PEER_GONE || !connection_is_open(&peer->conn))
                return;

        log_debug("%s waits for %s to read its queue of %zu bytes", peer->unique_name, on->unique_name,
                  on->conn.tx_bytes);
        peer->waiting_on = on;
        list_link_tail(&on->waiters, &peer->wait_link);
        connection_pause(&peer->conn);
        connection_watch_drain(&on->conn);
}

static void bus_on_drained(struct connection *c, void *userdata)
{
        struct peer *peer = userdata;

        bus_wake_waiters(peer);
        if (peer->state == PEER_MONITOR)
                bus_tell_lost(peer->bus, peer);
}

/* ---- peers coming and going -------------------------------------------- */

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
static void bus_disconnect(struct bus *bus, struct peer *peer, const char *reason)
{
        bus_remove_peer(bus, peer, reason);
        connection_close_after_flush(&peer->conn, "%s", reason);
}

void bus_become_monitor(struct bus *bus, struct peer *peer, struct match_rule *rules, size_t n_rules)
{
        peer->state = PEER_MONITOR;
        bus->n_monitors++;
        event_del(peer->timer); /* a monitor says nothing by design: it is never idle */
        /* Its copies count against its own bound and its uid's monitor account, never the
         * queues its uid's services need; what is queued to it already moves along. */
        connection_move_account(&peer->conn, &bus->monitor_limits, &peer->user->n_monitor_queued);
        log_info("%s became a monitor", PEER_DESC(peer));

        map_remove(&bus->peers_by_name, &peer->name_node);
        match_index_remove_owner(&bus->matches, &peer->matches);
        bus_drop_activation_requests(peer);
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
        if (new_peer) {
                struct activation *a = activation_find(&bus->activations, name);

                if (a)
                        activation_owned(a);
        }
}

/* Free a peer that is off the bus, and give back what its uid held for it. */
static void bus_free_peer(struct bus *bus, struct peer *peer)
{
        struct user *user = peer->user;

        bus->n_peers--;
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

static void bus_on_reply_timeout(struct reply_slot *slot, void *userdata)
{
        struct bus *bus = userdata;
        struct peer *caller = container_of(slot->caller, struct peer, replies);
        struct activation *a = bus_activation_of(bus, slot->callee);

        if (a) {
                /* Still held: it is answered now and never delivered (PROTOCOL.md 7.5). */
                bus_drop_activation_request(a, caller, slot->serial);
                driver_send_error(bus, caller, slot->serial, IPCBUS_ERROR_TIMEOUT,
                                  "%s was still being started after %" PRIu32 " ms", a->name, slot->timeout_ms);
                return;
        }
        driver_send_error(bus, caller, slot->serial, IPCBUS_ERROR_TIMEOUT, "%s did not answer within %" PRIu32 " ms",
                          container_of(slot->callee, struct peer, replies)->unique_name, slot->timeout_ms);
}

/* ---- routing ----------------------------------------------------------- */

/*
 * The receiver of a message it did not ask for has no room for it: the
 * sender learns so (even for a signal, which otherwise gets no answer) and
 * the receiver, merely slow, stays connected.
 */
static void bus_refuse_full(struct bus *bus, struct peer *sender, struct peer *to, struct msg *m, int error)
{
        uint64_t limit = error == -EDQUOT ? bus->limits.max_queue_per_uid : bus->limits.max_queue;

        log_info("%s: %s to %s refused: over the %s limit", sender->unique_name, msg_type_to_string(m->h.type),
                 to->unique_name, peer_queue_limit_name(error));
        driver_reply_error(bus, sender, m, IPCBUS_ERROR_LIMITS_EXCEEDED,
                           "The outgoing queue of %s is full (the %s limit of %" PRIu64 " bytes); try again later",
                           to->unique_name, peer_queue_limit_name(error), limit);
}

/* Policy for a unicast message: denied, the sender hears so (unless it wants no reply). */
static bool bus_may_transfer(struct bus *bus, struct peer *sender, struct peer *to, struct msg *m)
{
        enum policy_action action;
        struct policy_verdict v = bus_check_transfer(bus, sender, to, m, &action);
        char what[512];

        if (v.allowed)
                return true;
        bus_log_denied(bus, action == POLICY_SEND ? sender : to, action, &v,
                       bus_describe_message(m, what, sizeof(what)));
        driver_reply_error(bus, sender, m, IPCBUS_ERROR_ACCESS_DENIED, "%s %s %s %s.%s to %s is denied by policy",
                           action == POLICY_SEND ? "Sending" : "Receiving", msg_type_to_string(m->h.type),
                           m->h.interface ? m->h.interface : "", m->h.member ? m->h.member : "",
                           action == POLICY_SEND ? "sent" : "received", to->unique_name);
        return false;
}

/*
 * Whether sender may await one more answer: else it is told so
 * (LimitsExceeded). Its pending calls count, and what it has waiting for
 * activations without a pending reply (StartServiceByName, no_reply calls).
 */
static bool bus_may_await(struct bus *bus, struct peer *sender, struct msg *m)
{
        if (sender->replies.n_calls + sender->n_activation_requests >= bus->limits.max_pending) {
                driver_reply_error(bus, sender, m, IPCBUS_ERROR_LIMITS_EXCEEDED,
                                   "%s already awaits answers to %u calls, the "
                                   "max_pending_calls_per_connection limit",
                                   sender->unique_name, bus->limits.max_pending);
                return false;
        }
        if (sender->user && sender->user->n_pending >= bus->limits.max_pending_per_uid) {
                driver_reply_error(bus, sender, m, IPCBUS_ERROR_LIMITS_EXCEEDED,
                                   "uid %u already awaits answers to %u calls, the "
                                   "max_pending_calls_per_uid limit",
                                   (unsigned) peer_uid(sender), bus->limits.max_pending_per_uid);
                return false;
        }
        return true;
}

/* Record that sender awaits an answer to m from callee. False: it was told why not. */
static bool bus_await_reply(struct bus *bus, struct peer *sender, struct reply_owner *callee, struct msg *m,
                            uint32_t timeout_ms)
{
        int r = reply_slot_new(&bus->replies, &sender->replies, callee, m->h.serial, timeout_ms, NULL);

        if (r == -EEXIST) {
                driver_reply_error(bus, sender, m, IPCBUS_ERROR_INVALID_MESSAGE,
                                   "Serial %" PRIu32 " is already used by a call still awaiting an answer",
                                   m->h.serial);
                return false;
        }
        if (r < 0) {
                driver_reply_error(bus, sender, m, IPCBUS_ERROR_NO_MEMORY, "Out of memory");
                return false;
        }
        return true;
}

/* Hand a call to its callee: policy, room, the pending reply (timeout_ms: 0 for the call's own). */
static void bus_forward_call(struct bus *bus, struct peer *sender, struct peer *callee, struct msg *m,
                             uint32_t timeout_ms)
{
        int r;

        if (!bus_may_transfer(bus, sender, callee, m))
                return;
        r = peer_check_room(callee, m);
        if (r < 0) {
                bus_refuse_full(bus, sender, callee, m, r);
                return;
        }
        if (!m->h.no_reply) {
                if (!bus_may_await(bus, sender, m) ||
                    !bus_await_reply(bus, sender, &callee->replies, m, timeout_ms ? timeout_ms : m->h.timeout_ms))
                        return;
        }
        bus_deliver(bus, sender, callee, m);
}

static void bus_route_call(struct bus *bus, struct peer *sender, struct msg *m)
{
        const char *dest = m->h.destination;
        struct peer *callee;

        if (!dest) {
                driver_reply_error(bus, sender, m, IPCBUS_ERROR_SERVICE_UNKNOWN, "The call has no destination");
                return;
        }
        if (strcmp(dest, IPCBUS_DRIVER_NAME) == 0) {
                driver_dispatch(bus, sender, m);
                return;
        }

        callee = bus_find_peer(bus, dest);
        if (callee) {
                bus_forward_call(bus, sender, callee, m, 0);
                return;
        }
        if (!m->h.no_auto_start &&
            (activation_find(&bus->activations, dest) || service_registry_find(&bus->services, dest))) {
                bus_activate(bus, sender, m, dest, false);
                return;
        }
        driver_reply_error(bus, sender, m, IPCBUS_ERROR_SERVICE_UNKNOWN, "The name %s has no owner%s", dest,
                           m->h.no_auto_start && service_registry_find(&bus->services, dest)
                                   ? " (and the call asked not to start its service)"
                                   : "");
}

/* ---- activation ------------------------------------------------------- */

/* A call (or StartServiceByName) waiting for the owner of a name being activated. */
struct activation_request {
        struct list link;      /* in activation.requests, in arrival order */
        struct list peer_link; /* in the sender's activation_requests */
        struct peer *sender;
        struct msg *m;
        int64_t queued_ms;  /* CLOCK_MONOTONIC, for what is left of the call's deadline */
        bool start_service; /* StartServiceByName: answered {"result": 1} */
        bool awaited;       /* a call awaiting a reply: its pending reply is counted already */
};

static void activation_request_free(struct activation_request *req)
{
        list_unlink(&req->link);
        list_unlink(&req->peer_link);
        if (!req->awaited)
                req->sender->n_activation_requests--;
        msg_unref(req->m);
        free(req);
}

/* The peer leaves (or becomes a monitor): its queued requests go; their pending replies go with its others. */
static void bus_drop_activation_requests(struct peer *peer)
{
        struct activation_request *req;

        while ((req = list_first_entry(&peer->activation_requests, struct activation_request, peer_link)))
                activation_request_free(req);
}

/* Forget the call `serial` of `sender` held for activation a (its deadline passed). */
static void bus_drop_activation_request(struct activation *a, struct peer *sender, uint32_t serial)
{
        struct activation_request *req;

        list_for_each_entry(req, &a->requests, link) {
                if (req->sender == sender && req->awaited && req->m->h.serial == serial) {
                        activation_request_free(req);
                        return;
                }
        }
}

/* The activation whose queued calls `callee` anchors, or NULL for a peer. */
static struct activation *bus_activation_of(struct bus *bus, const struct reply_owner *callee)
{
        for (struct map_node *n = map_first(&bus->activations.by_name); n; n = map_next(&bus->activations.by_name, n)) {
                struct activation *a = container_of(n, struct activation, node);

                if (&a->replies == callee)
                        return a;
        }
        return NULL;
}

static bool bus_is_name(const char *name, void *userdata)
{
        return strcmp(name, userdata) == 0;
}

static bool bus_name_below(const char *prefix, void *userdata)
{
        return bus_name_has_prefix(userdata, prefix);
}

/*
 * May sender send m to whoever will own `name`? The send rules decide, with
 * the name as the receiver's only name; receive rules wait for the owner.
 * StartServiceByName (start_service) is judged as a call to the name without
 * interface, member or path would be, so a user may not start what it may
 * not call.
 */
static bool bus_may_activate(struct bus *bus, struct peer *sender, struct msg *m, const char *name, bool start_service)
{
        struct policy_subject who = bus_subject(sender);
        struct policy_peer to = {NULL, bus_is_name, (void *) name, bus_name_below};
        struct msg_header h = m->h;
        struct policy_verdict v;
        char what[512];

        if (start_service) {
                msg_header_init(&h);
                h.type = MSG_CALL;
                h.destination = name;
        }
        v = policy_check_send(&bus->config->policy, &who, &h, &to);
        if (v.allowed)
                return true;
        bus_log_denied(bus, sender, POLICY_SEND, &v, bus_describe_message(m, what, sizeof(what)));
        if (start_service)
                driver_reply_error(bus, sender, m, IPCBUS_ERROR_ACCESS_DENIED,
                                   "Starting %s is denied by policy: uid %u may not call it", name,
                                   (unsigned) peer_uid(sender));
        else
                driver_reply_error(bus, sender, m, IPCBUS_ERROR_ACCESS_DENIED,
                                   "Sending %s %s.%s to %s is denied by policy", msg_type_to_string(m->h.type),
                                   m->h.interface ? m->h.interface : "", m->h.member ? m->h.member : "", name);
        return false;
}

/*
 * May sender's request make the broker start a service now? Root and the
 * broker's own user always may; others within max_activations_per_uid per
 * activation_interval_ms, else they are told so (LimitsExceeded).
 */
static bool bus_may_start(struct bus *bus, struct peer *sender, struct msg *m)
{
        uid_t uid = peer_uid(sender);
        int r;

        if (uid == 0 || uid == bus->uid)
                return true;
        r = activation_charge(&bus->activations, uid, bus->limits.max_activations_per_uid,
                              bus->limits.activation_interval_ms, (int64_t) clock_now_msec(CLOCK_MONOTONIC));
        if (r == 0)
                return true;
        if (r == -EDQUOT) {
                log_info("%s: uid %u asked for more than %u service starts in %u ms, the "
                         "max_activations_per_uid limit",
                         sender->unique_name, (unsigned) uid, bus->limits.max_activations_per_uid,
                         bus->limits.activation_interval_ms);
                driver_reply_error(bus, sender, m, IPCBUS_ERROR_LIMITS_EXCEEDED,
                                   "uid %u has had %u services started within %u ms, the max_activations_per_uid "
                                   "limit (activation_interval_ms); try again later",
                                   (unsigned) uid, bus->limits.max_activations_per_uid,
                                   bus->limits.activation_interval_ms);
        } else {
                driver_reply_error(bus, sender, m, IPCBUS_ERROR_NO_MEMORY, "Out of memory");
        }
        return false;
}

/*
 * Queue m (a call to `name`, or StartServiceByName) until name is owned,
 * starting its service unless that is under way. Every way out answers m.
 */
static void bus_activate(struct bus *bus, struct peer *sender, struct msg *m, const char *name, bool start_service)
{
        struct activation *a = activation_find(&bus->activations, name);
        struct activation_request *req;
        bool await = !start_service && !m->h.no_reply;
        char message[512];
        const char *error;

        if (!bus_may_activate(bus, sender, m, name, start_service))
                return;
        if (!bus_may_await(bus, sender, m))
                return;
        if (await && reply_slot_find(&bus->replies, &sender->replies, m->h.serial)) {
                driver_reply_error(bus, sender, m, IPCBUS_ERROR_INVALID_MESSAGE,
                                   "Serial %" PRIu32 " is already used by a call still awaiting an answer",
                                   m->h.serial);
                return;
        }
        req = calloc(1, sizeof(*req));
        if (!req) {
                driver_reply_error(bus, sender, m, IPCBUS_ERROR_NO_MEMORY, "Out of memory");
                return;
        }
        if (!a && !bus_may_start(bus, sender, m)) {
                free(req);
                return;
        }
        if (!a && activation_start(&bus->activations, service_registry_find(&bus->services, name), &a, &error, message,
                                   sizeof(message)) < 0) {
                free(req);
                log_warning("%s: cannot activate %s: %s", sender->unique_name, name, message);
                driver_reply_error(bus, sender, m, error, "%s", message);
                return;
        }
        /* The call's own deadline runs while it is held (PROTOCOL.md 7.5). */
        if (await && !bus_await_reply(bus, sender, &a->replies, m, m->h.timeout_ms)) {
                free(req);
                return;
        }
        req->sender = sender;
        req->m = msg_ref(m);
        req->queued_ms = (int64_t) clock_now_msec(CLOCK_MONOTONIC);
        req->start_service = start_service;
        req->awaited = await;
        list_link_tail(&a->requests, &req->link);
        list_link_tail(&sender->activation_requests, &req->peer_link);
        if (!await)
                sender->n_activation_requests++;
        log_debug("%s: %s to %s waits for its activation", sender->unique_name,
                  start_service ? "StartServiceByName" : "a call", name);
}

/* What is left of a queued call's deadline (at least 1 ms: an expired one was answered already). */
static uint32_t bus_remaining_ms(struct bus *bus, const struct activation_request *req)
{
        int64_t timeout = req->m->h.timeout_ms ? req->m->h.timeout_ms : bus->limits.reply_timeout_ms;
        int64_t left = timeout - ((int64_t) clock_now_msec(CLOCK_MONOTONIC) - req->queued_ms);

        return left > 0 ? (uint32_t) left : 1;
}

/* An activation ended: deliver its requests in order to the name's owner, or answer each with the error. */
static void bus_on_activation_done(struct activation *a, const char *error, const char *message, void *userdata)
{
        struct bus *bus = userdata;
        struct peer *callee = error ? NULL : bus_find_peer(bus, a->name);
        struct activation_request *req;

        if (!error && !callee) {
                error = IPCBUS_ERROR_SERVICE_UNKNOWN;
                message = "The name was owned and released again before its queued calls could be delivered";
        }
        while ((req = list_first_entry(&a->requests, struct activation_request, link))) {
                struct peer *sender = req->sender;
                struct msg *m = msg_ref(req->m);
                bool start_service = req->start_service;
                uint32_t timeout_ms = bus_remaining_ms(bus, req);
                struct reply_slot *slot = NULL;

                activation_request_free(req);
                if (!start_service && !m->h.no_reply) {
                        slot = reply_slot_find(&bus->replies, &sender->replies, m->h.serial);
                        if (!slot || slot->callee != &a->replies) {
                                msg_unref(m); /* its deadline passed while it was queued: answered then */
                                continue;
                        }
                        reply_slot_free(slot);
                }
                if (error) {
                        driver_reply_error(bus, sender, m, error, "%s", message);
                } else if (start_service) {
                        struct jbuf b;

                        jbuf_init(&b);
                        jbuf_printf(&b, "{\"result\":%d}", IPCBUS_START_REPLY_SUCCESS);
                        if (driver_reply(bus, sender, m, &b) < 0)
                                log_error("driver: StartServiceByName from %s: out of memory", sender->unique_name);
                        jbuf_deinit(&b);
                } else {
                        bus_forward_call(bus, sender, callee, m, timeout_ms);
                }
                msg_unref(m);
        }
}

void bus_start_service(struct bus *bus, struct peer *sender, struct msg *call, const char *name)
{
        struct jbuf b;

        if (bus_find_peer(bus, name)) {
                jbuf_init(&b);
                jbuf_printf(&b, "{\"result\":%d}", IPCBUS_START_REPLY_ALREADY_RUNNING);
                if (driver_reply(bus, sender, call, &b) < 0)
                        log_error("driver: StartServiceByName from %s: out of memory", sender->unique_name);
                jbuf_deinit(&b);
                return;
        }
        if (!activation_find(&bus->activations, name) && !service_registry_find(&bus->services, name)) {
                driver_reply_error(bus, sender, call, IPCBUS_ERROR_SERVICE_UNKNOWN,
                                   "No service file declares the name %s", name);
                return;
        }
        bus_activate(bus, sender, call, name, true);
}

/* Read the service files of config's directories into reg. */
static int bus_load_services(struct bus *bus, const struct bus_config *config, struct service_registry *reg,
                             const struct service_registry *previous)
{
        char **dirs = NULL;
        size_t n = 0;
        int r;

        r = service_dirs_resolve(config, IPCBUS_DATADIR, &dirs, &n);
        if (r < 0)
                return r;
        r = service_registry_load(reg, dirs, n, previous);
        if (r >= 0) {
                for (size_t i = 0; i < n; i++)
                        log_debug("service directory %s", dirs[i]);
                log_info("%zu activatable services", service_registry_size(reg));
        }
        service_dirs_free(dirs);
        return r;
}

void bus_set_address(struct bus *bus, const char *address)
{
        snprintf(bus->activations.address, sizeof(bus->activations.address), "%s", address ? address : "");
}

int bus_reconfigure(struct bus *bus, const struct bus_config *config)
{
        struct service_registry services;
        int r;

        service_registry_init(&services);
        r = bus_load_services(bus, config, &services, &bus->services);
        if (r < 0) {
                service_registry_deinit(&services);
                return r;
        }
        service_registry_deinit(&bus->services);
        bus->services = services;
        /* The map's nodes point at nothing outside it: moving the struct is fine. */

        bus->config = config;
        bus->limits = config->limits;
        bus_set_connection_limits(bus);
        bus->names.max_per_owner = bus->limits.max_names;
        bus->names.max_per_total = bus->limits.max_names_per_uid;
        reply_registry_set_default_timeout(&bus->replies, bus->limits.reply_timeout_ms);
        bus->activations.timeout_ms = bus->limits.activation_timeout_ms;
        return 0;
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
        /* The caller asked for it: its queue holds back no callee. What one
         * caller can be owed is bounded by max_pending_calls_per_connection,
         * and a caller over its queue limit is closed (peer_send). */
        if (caller->state == PEER_REGISTERED)
                peer_send(caller, m);
}

static void bus_route_signal(struct bus *bus, struct peer *sender, struct msg *m)
{
        struct peer *to;
        int r;

        if (!m->h.destination) {
                struct policy_subject who = bus_subject(sender);
                struct policy_verdict v = policy_check_send(&bus->config->policy, &who, &m->h, NULL);
                char what[512];

                if (!v.allowed) {
                        bus_log_denied(bus, sender, POLICY_SEND, &v, bus_describe_message(m, what, sizeof(what)));
                        driver_reply_error(bus, sender, m, IPCBUS_ERROR_ACCESS_DENIED,
                                           "Sending signal %s.%s is denied by policy", m->h.interface, m->h.member);
                        return;
                }
                bus_broadcast(bus, sender, m);
                return;
        }
        to = bus_find_peer(bus, m->h.destination);
        if (to && !bus_may_transfer(bus, sender, to, m))
                return;
        r = to ? peer_check_room(to, m) : 0;
        if (r < 0)
                bus_refuse_full(bus, sender, to, m, r);
        else if (to)
                bus_deliver(bus, sender, to, m);
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
        const struct bus_limits *l = &bus->limits;
        char reason[160];

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
        else
                snprintf(reason, sizeof(reason), "protocol error: %s", proto_strerror(code));
        log_warning("%s: %s; disconnecting", PEER_DESC(peer), reason);
        driver_send_error(bus, peer, 0, IPCBUS_ERROR_PROTOCOL, "%s", reason + strlen("protocol error: "));
        bus_disconnect(bus, peer, reason);
}

/*
 * A frame whose descriptors were refused on arrival (closed already): its
 * sender hears which limit, and stays connected. A frame too broken to
 * answer is handled as any other.
 */
static void bus_refuse_fds(struct bus *bus, struct peer *peer, const struct frame_view *f,
                           const struct msg_stamp *stamp)
{
        _cleanup_(msg_unrefp) struct msg *m = NULL;
        int none[IPCBUS_FDS_MAX];
        uint32_t serial = 0;
        bool no_reply = false;
        char text[256];
        int r;

        for (unsigned i = 0; i < IPCBUS_FDS_MAX; i++)
                none[i] = -1;
        r = msg_parse(f, stamp, 0, none, &m, &serial, &no_reply);
        if (r > 0 && (proto_error_is_fatal(r) || serial == 0)) {
                bus_protocol_error(bus, peer, r);
                return;
        }
        peer_describe_fds_refusal(peer, peer->conn.rx_fds_refused, f->prefix.n_fds, &bus->limits, text, sizeof(text));
        log_info("%s: message refused: %s", PEER_DESC(peer), text);
        if (serial && !no_reply)
                driver_send_error(bus, peer, serial, IPCBUS_ERROR_LIMITS_EXCEEDED, "%s", text);
}

/*
 * One frame from a peer. `invalid` handling follows PROTOCOL.md 9: fatal
 * codes close the connection, others get InvalidMessage when the serial was
 * readable. Before Hello only Hello is accepted.
 */
static void bus_handle_frame(struct bus *bus, struct peer *peer, const struct frame_view *f, int *fds)
{
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
                peer_drop_fds(peer, fds, f->prefix.n_fds);
                if (peer->state == PEER_MONITOR) {
                        log_info("%s: a monitor sent a message; disconnecting", PEER_DESC(peer));
                        bus_disconnect(bus, peer, "a monitor sent a message");
                }
                return;
        }
        if (f->prefix.n_fds && !fds) {
                bus_refuse_fds(bus, peer, f, &stamp);
                return;
        }

        r = msg_parse(f, &stamp, 0, fds, &m, &serial, &no_reply);
        if (r != 0)
                peer_drop_fds(peer, fds, f->prefix.n_fds);
        else
                peer_hold_fds(peer, m);
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

static void bus_on_frame(struct connection *c, const struct frame_view *f, int *fds, void *userdata)
{
        struct peer *peer = userdata;
        struct bus *bus = peer->bus;

        bus->sender = peer;
        bus->congested = NULL;
        peer->last_heard_ms = (int64_t) clock_now_msec(CLOCK_MONOTONIC);
        bus_handle_frame(bus, peer, f, fds);
        bus->sender = NULL;
        bus_hold_back(bus, peer);
}

static int bus_on_charge_fds(struct connection *c, unsigned n, void *userdata)
{
        struct peer *peer = userdata;

        return peer_charge_fds(peer, n, &peer->bus->limits, bus_fds_free(peer->bus));
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
                bus_refuse(bus, peer, IPCBUS_ERROR_LIMITS_EXCEEDED,
                           "The bus has %u connections, the max_connections limit", l->max_connections);
                return;
        }
        if (uid != 0 && uid != bus->uid && (uint64_t) bus->n_admitted + l->reserved_connections >= l->max_connections) {
                bus_refuse(bus, peer, IPCBUS_ERROR_LIMITS_EXCEEDED,
                           "The bus has %u connections; its last %u are kept for root (the reserved_connections "
                           "limit, of max_connections %u)",
                           bus->n_admitted, l->reserved_connections, l->max_connections);
                return;
        }
        user = user_registry_find(&bus->users, uid);
        if (user && user->n_connections >= l->max_connections_per_uid) {
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
