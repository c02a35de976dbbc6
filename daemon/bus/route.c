/* SPDX-License-Identifier: MIT */
/*
 * Routing (PROTOCOL.md 9 to 11): a frame from a peer becomes a message, and
 * a call, reply or signal goes to its receiver, with the policy and the
 * limits checked on the way. Calls to the driver go to its methods, calls to
 * a name being started to the activation queue (held.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "daemon/bus/driver.h"
#include "daemon/bus/internal.h"
#include "daemon/bus/voice.h"
#include "daemon/log.h"
#include "protocol/ipcbus/wire.h"
#include "protocol/message.h"
#include "protocol/proto-error.h"
#include "util/clock.h"
#include "util/util.h"

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

/*
 * The receiver of a message it did not ask for has no room for it: the
 * sender learns so (even for a signal, which otherwise gets no answer) and
 * the receiver, merely slow, stays connected.
 */
static void bus_refuse_full(struct bus *bus, struct peer *sender, struct peer *to, struct msg *m, int error)
{
        uint64_t limit = error == CONNECTION_E_QUEUE_FULL_UID ? bus->limits.max_queue_per_uid : bus->limits.max_queue;

        bus_stats_refused(&bus->stats, error == CONNECTION_E_QUEUE_FULL_UID
                                               ? BUS_REFUSAL_MAX_QUEUED_BYTES_PER_UID
                                               : BUS_REFUSAL_MAX_QUEUED_BYTES_PER_CONNECTION);
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
bool bus_may_await(struct bus *bus, struct peer *sender, struct msg *m)
{
        if (sender->replies.n_calls + sender->n_activation_requests >= bus->limits.max_pending) {
                bus_stats_refused(&bus->stats, BUS_REFUSAL_MAX_PENDING_CALLS_PER_CONNECTION);
                driver_reply_error(bus, sender, m, IPCBUS_ERROR_LIMITS_EXCEEDED,
                                   "%s already awaits answers to %u calls, the "
                                   "max_pending_calls_per_connection limit",
                                   sender->unique_name, bus->limits.max_pending);
                return false;
        }
        if (sender->user && sender->user->n_pending >= bus->limits.max_pending_per_uid) {
                bus_stats_refused(&bus->stats, BUS_REFUSAL_MAX_PENDING_CALLS_PER_UID);
                driver_reply_error(bus, sender, m, IPCBUS_ERROR_LIMITS_EXCEEDED,
                                   "uid %u already awaits answers to %u calls, the "
                                   "max_pending_calls_per_uid limit",
                                   (unsigned) peer_uid(sender), bus->limits.max_pending_per_uid);
                return false;
        }
        return true;
}

/* Record that sender awaits an answer to m from callee. False: it was told why not. */
bool bus_await_reply(struct bus *bus, struct peer *sender, struct reply_owner *callee, struct msg *m,
                     uint32_t timeout_ms)
{
        int r = reply_slot_new(&bus->replies, &sender->replies, callee, m->h.serial, m->h.destination, timeout_ms,
                               NULL);

        if (r == REPLY_E_SERIAL_IN_USE) {
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
void bus_forward_call(struct bus *bus, struct peer *sender, struct peer *callee, struct msg *m, uint32_t timeout_ms)
{
        int r;

        if (!bus_may_transfer(bus, sender, callee, m))
                return;
        r = peer_check_room(callee, m);
        if (r) {
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

void bus_on_reply_timeout(struct reply_slot *slot, void *userdata)
{
        struct bus *bus = userdata;
        struct peer *caller = container_of(slot->caller, struct peer, replies);
        struct activation *a = bus_activation_of(bus, slot->callee);
        char callee[DRIVER_CALLEE_NAME_MAX];

        bus->stats.timeouts++;
        if (a) {
                /* Still held: it is answered now and never delivered (PROTOCOL.md 7.5). */
                bus_drop_activation_request(a, caller, slot->serial);
                driver_send_error(bus, caller, slot->serial, IPCBUS_ERROR_TIMEOUT,
                                  "%s was still being started after %" PRIu32 " ms", a->name, slot->timeout_ms);
                return;
        }
        driver_send_error(bus, caller, slot->serial, IPCBUS_ERROR_TIMEOUT, "%s did not answer within %" PRIu32 " ms",
                          driver_callee_name(slot, container_of(slot->callee, struct peer, replies)->unique_name,
                                             callee, sizeof(callee)),
                          slot->timeout_ms);
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
        if (r)
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
        char text[256], why[MSG_WHY_MAX];
        int r;

        for (unsigned i = 0; i < IPCBUS_FDS_MAX; i++)
                none[i] = -1;
        r = msg_parse_why(f, stamp, 0, none, &m, &serial, &no_reply, why);
        if (r > 0 && (proto_error_is_fatal(r) || serial == 0)) {
                bus_protocol_error(bus, peer, r, why);
                return;
        }
        bus_stats_refused(&bus->stats, peer->conn.rx_fds_refused == CONNECTION_FDS_OVER_CONNECTION
                                               ? BUS_REFUSAL_MAX_FDS_IN_FLIGHT_PER_CONNECTION
                                       : peer->conn.rx_fds_refused == CONNECTION_FDS_OVER_TOTAL
                                               ? BUS_REFUSAL_MAX_FDS_IN_FLIGHT_PER_UID
                                               : BUS_REFUSAL_DESCRIPTORS);
        peer_describe_fds_refusal(peer, peer->conn.rx_fds_refused, f->prefix.n_fds, &bus->limits, text, sizeof(text));
        log_info("%s: message refused: %s", PEER_DESC(peer), text);
        if (serial && !no_reply)
                driver_send_error(bus, peer, serial, IPCBUS_ERROR_LIMITS_EXCEEDED, "%s", text);
}

/*
 * A frame from a peer that may not send any (a monitor, which is closed for
 * it, or one on its way out): its descriptors are closed. Whether it was.
 */
static bool bus_drop_unwanted(struct bus *bus, struct peer *peer, const struct frame_view *f, int *fds)
{
        if (peer->state != PEER_NEW && peer->state != PEER_REGISTERED) {
                peer_drop_fds(peer, fds, f->prefix.n_fds);
                if (peer->state == PEER_MONITOR) {
                        log_info("%s: a monitor sent a message; disconnecting", PEER_DESC(peer));
                        peer->stats.end = BUS_DISCONNECT_MONITOR_SENT;
                        bus_disconnect(bus, peer, "a monitor sent a message");
                }
                return true;
        }
        return false;
}

/*
 * The first message of a peer without Hello yet (r and why as msg_parse_why
 * left them, m set when 0): Hello goes to the driver, anything else closes
 * the peer.
 */
static void bus_handle_before_hello(struct bus *bus, struct peer *peer, struct msg *m, int r, uint32_t serial,
                                    const char *why)
{
        if (r == 0 && bus_is_hello(m)) {
                bus_stats_count_message(&bus->stats, m);
                bus_monitor(bus, m);
                driver_dispatch(bus, peer, m);
                return;
        }
        log_info("%s: message before Hello; disconnecting", PEER_DESC(peer));
        peer->stats.end = BUS_DISCONNECT_PROTOCOL_ERROR;
        if (r > 0)
                driver_send_error(bus, peer, serial, IPCBUS_ERROR_ACCESS_DENIED,
                                  "Hello must be the first message (and this one is invalid: %s)", why);
        else
                driver_send_error(bus, peer, serial, IPCBUS_ERROR_ACCESS_DENIED, "Hello must be the first message");
        bus_disconnect(bus, peer, "a message before Hello");
}

/*
 * A message whose body is in a memfd (PROTOCOL.md 14): its seals and size
 * are checked, without reading it, and the file's size is charged to the
 * sender's uid until the message is freed. Whether it may go on; when not,
 * the sender was told why (InvalidMessage or LimitsExceeded, as section 9
 * says, so not for a call with no_reply) and the refusal logged. Its
 * descriptors are closed with it.
 */
static bool bus_take_memfd(struct bus *bus, struct peer *peer, struct msg *m)
{
        const struct bus_limits *l = &bus->limits;
        uint64_t size = 0;
        int r = peer_charge_memfd(peer, m, l, &size);

        switch (r) {
        case 0:
                bus->stats.memfd_bodies++;
                return true;
        case PEER_MEMFD_E_NOT_SEALED:
                log_info("%s: message refused: its body's descriptor is not a sealed memfd", PEER_DESC(peer));
                driver_reply_error(bus, peer, m, IPCBUS_ERROR_INVALID_MESSAGE,
                                   "Invalid message: the body's descriptor (body_fd %u) is not a memfd sealed "
                                   "against writing, shrinking and growing (F_SEAL_WRITE, F_SEAL_SHRINK, "
                                   "F_SEAL_GROW)",
                                   (unsigned) m->h.body_fd);
                return false;
        case PEER_MEMFD_E_SHORT:
                log_info("%s: message refused: its body's memfd holds %" PRIu64 " bytes, body_size %" PRIu32,
                         PEER_DESC(peer), size, m->h.body_size);
                driver_reply_error(bus, peer, m, IPCBUS_ERROR_INVALID_MESSAGE,
                                   "Invalid message: the body's memfd holds %" PRIu64 " bytes, fewer than body_size "
                                   "(%" PRIu32 ") and the NUL after the text",
                                   size, m->h.body_size);
                return false;
        case PEER_MEMFD_E_TOO_LARGE:
                bus_stats_refused(&bus->stats, BUS_REFUSAL_MAX_BODY_BYTES);
                log_info("%s: message refused: a body's memfd of %" PRIu64 " bytes, over max_body_bytes",
                         PEER_DESC(peer), size);
                driver_reply_error(bus, peer, m, IPCBUS_ERROR_LIMITS_EXCEEDED,
                                   "The body's memfd of %" PRIu64 " bytes is over the max_body_bytes limit (%" PRIu32
                                   " bytes)",
                                   size, l->max_body);
                return false;
        case PEER_MEMFD_E_OVER_UID:
                bus_stats_refused(&bus->stats, BUS_REFUSAL_MAX_MEMFD_BYTES_PER_UID);
                log_info("%s: message refused: a body's memfd of %" PRIu64
                         " bytes would put its uid over max_memfd_bytes_per_uid",
                         PEER_DESC(peer), size);
                driver_reply_error(bus, peer, m, IPCBUS_ERROR_LIMITS_EXCEEDED,
                                   "The body's memfd of %" PRIu64 " bytes would put uid %u over the "
                                   "max_memfd_bytes_per_uid limit (%" PRIu64 " bytes, %" PRIu64 " in flight)",
                                   size, (unsigned) peer_uid(peer), l->max_memfd_uid,
                                   peer->fds->user->n_memfd_bytes);
                return false;
        default:
                log_error("%s: cannot judge a body's memfd: %s", PEER_DESC(peer), strerror(-r));
                driver_reply_error(bus, peer, m, IPCBUS_ERROR_FAILED, "The body's memfd could not be examined: %s",
                                   strerror(-r));
                return false;
        }
}

/* A valid message from a registered peer: monitors see it, then it goes where its type says. */
static void bus_route_message(struct bus *bus, struct peer *peer, struct msg *m)
{
        bus_stats_count_message(&bus->stats, m);
        if (m->h.type == MSG_ERROR)
                peer->stats.errors_sent++;
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
        char why[MSG_WHY_MAX]; /* written only when the frame is refused */
        int r;

        if (bus_drop_unwanted(bus, peer, f, fds))
                return;
        if (f->prefix.n_fds && !fds) {
                bus_refuse_fds(bus, peer, f, &stamp);
                return;
        }

        r = msg_parse_why(f, &stamp, 0, fds, &m, &serial, &no_reply, why);
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
                bus_protocol_error(bus, peer, r, why);
                return;
        }

        if (peer->state == PEER_NEW) {
                bus_handle_before_hello(bus, peer, m, r, serial, why);
                return;
        }

        if (r > 0) {
                log_debug("%s: invalid message (serial %" PRIu32 "): %s", PEER_DESC(peer), serial, why);
                if (!no_reply) /* PROTOCOL.md 9: only a call with no_reply goes unanswered */
                        driver_send_error(bus, peer, serial, IPCBUS_ERROR_INVALID_MESSAGE, "Invalid message: %s", why);
                return;
        }
        if (m->h.body_size && !bus_take_memfd(bus, peer, m))
                return;
        bus_route_message(bus, peer, m);
}

void bus_on_frame(struct connection *c, const struct frame_view *f, int *fds, void *userdata)
{
        struct peer *peer = userdata;
        struct bus *bus = peer->bus;

        bus->sender = peer;
        bus->congested = NULL;
        bus->n_frames++;
        peer->last_heard_ms = (int64_t) clock_now_msec(CLOCK_MONOTONIC);
        bus_handle_frame(bus, peer, f, fds);
        bus->sender = NULL;
        bus_hold_back(bus, peer);
}
