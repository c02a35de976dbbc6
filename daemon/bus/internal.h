/* SPDX-License-Identifier: MIT */
/*
 * What the files of the bus share among themselves, and nothing outside
 * daemon/bus/ may use. One file per behaviour:
 *   bus.c      the bus's set-up, teardown and reconfiguration, and the peer
 *              as the policy sees it
 *   admit.c    peers coming and going: admission, Hello, the idle and Hello
 *              timers, removal, protocol errors
 *   route.c    routing: a frame in, a call, reply or signal to its receiver
 *   deliver.c  delivery to a receiver, broadcasts, and backpressure
 *   monitor.c  monitors: their copies and what they lost
 *   held.c     calls held while their service is started (the activation queue)
 *   voice.c    the driver's voice: every message the broker itself sends
 *   driver.c   the driver's methods
 *   stats.c    the statistics: the counted reasons' names, the sums and JSON of GetStats
 *   metrics.c  the statistics as OpenMetrics or Prometheus text (GetMetrics)
 * Calls go one way: route.c calls the driver's methods (driver.c); both
 * speak through voice.c, which calls neither and only hands the broker's
 * messages to deliver.c and monitor.c.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "daemon/bus/bus.h"
#include "daemon/bus/peer.h"
#include "daemon/bus/policy.h"

struct activation;
struct connection;
struct frame_view;
struct match_owner;
struct msg;
struct reply_owner;
struct reply_slot;

/* A one-line description of a peer for logs, in a temporary buffer. */
#define PEER_DESC(p) bus_describe((p), (char[96]){0}, 96)

/* ---- bus.c ---- */

/* "destination=... path=... interface=... member=... type=..." of a message, for denial logs. */
const char *bus_describe_message(const struct msg *m, char *buf, size_t size);
/* policy_name_has_prefix, as a name_owner_owns_any visitor. */
bool bus_name_has_prefix(const char *name, const void *prefix);
/* The peer as the policy sees a sender or receiver: its unique name and the names it owns. */
struct policy_peer bus_policy_peer(struct peer *peer);

/* ---- admit.c ---- */

/* match_owner_fn: does `unique` own `well_known` (or is it that name)? */
bool bus_owns(const char *well_known, const char *unique, void *userdata);
/* End the calls the peer was to answer (NoReply to their callers), forget those it awaits. */
void bus_drop_replies(struct bus *bus, struct peer *peer, const char *why);
/* Take the peer off the bus (its rules, calls and names go; the others are told). */
void bus_remove_peer(struct bus *bus, struct peer *peer, const char *reason);
/* bus_remove_peer, then close the connection once what is queued for it is written. */
void bus_disconnect(struct bus *bus, struct peer *peer, const char *reason);
/* Free a peer that is off the bus. */
void bus_free_peer(struct bus *bus, struct peer *peer);
/* Tell the peer what was wrong with its stream (the PROTO_E_ code, said by why when not NULL), then disconnect it. */
void bus_protocol_error(struct bus *bus, struct peer *peer, int code, const char *why);

/* ---- route.c ---- */

/* connection_ops.frame: route one frame from a peer, then hold the peer back if it congested a queue. */
void bus_on_frame(struct connection *c, const struct frame_view *f, int *fds, void *userdata);
/* reply_registry timeout: the caller hears Timeout (a held call's is dropped from its queue). */
void bus_on_reply_timeout(struct reply_slot *slot, void *userdata);
/* Whether sender may await one more answer; else it was told so. */
bool bus_may_await(struct bus *bus, struct peer *sender, struct msg *m);
/* Record that sender awaits an answer to m from callee; false: it was told why not. */
bool bus_await_reply(struct bus *bus, struct peer *sender, struct reply_owner *callee, struct msg *m,
                     uint32_t timeout_ms);
/* Hand a call to its callee: policy, room, the pending reply (timeout_ms: 0 for the call's own). */
void bus_forward_call(struct bus *bus, struct peer *sender, struct peer *callee, struct msg *m, uint32_t timeout_ms);

/* ---- deliver.c ---- */

/* A message on its way to subscribers or monitors (match_index_route's userdata). */
struct bus_route {
        struct bus *bus;
        struct peer *sender; /* NULL: the driver */
        struct msg *m;
};

/* Give m, sent by `sender` (NULL: the driver), to peer, noting a congested receiver. */
void bus_deliver(struct bus *bus, struct peer *sender, struct peer *peer, struct msg *m);
/* match_owner_fn and match_names_fn over a struct bus_route. */
bool bus_route_owns(const char *well_known, const char *unique, void *userdata);
void bus_route_names(const char *unique, bool (*visit)(const char *name, const void *arg), const void *arg,
                     void *userdata);
/* Every peer with a matching rule gets m, once. */
void bus_broadcast(struct bus *bus, struct peer *sender, struct msg *m);
/* Stop waiting; `resume` reading unless the peer is on its way out anyway. */
void bus_unwait(struct peer *peer, bool resume);
/* Every peer waiting for this one to drain reads again. */
void bus_wake_waiters(struct peer *peer);
/* After a peer's message was routed: pause it while a queue it filled drains. */
void bus_hold_back(struct bus *bus, struct peer *peer);
/* connection_ops.drained: the waiters read again, a monitor hears what it lost. */
void bus_on_drained(struct connection *c, void *userdata);

/* ---- monitor.c ---- */

/* Tell a monitor how many copies it lost, if it lost any and has room for the notice. */
void bus_tell_lost(struct bus *bus, struct peer *peer);
/* Monitors get a copy of m when one of their rules matches. */
void bus_monitor(struct bus *bus, struct msg *m);

/* ---- held.c ---- */

/* Hold m (a call to `name`, or StartServiceByName) until name is owned; every way out answers m. */
void bus_activate(struct bus *bus, struct peer *sender, struct msg *m, const char *name, bool start_service);
/* The peer leaves (or becomes a monitor): its held requests go. */
void bus_drop_activation_requests(struct peer *peer);
/* Forget the call `serial` of `sender` held for activation a (its deadline passed). */
void bus_drop_activation_request(struct activation *a, struct peer *sender, uint32_t serial);
/* The activation whose held calls `callee` anchors, or NULL for a peer. */
struct activation *bus_activation_of(struct bus *bus, const struct reply_owner *callee);
/* activation_registry: an activation ended; its held requests are delivered or answered. */
void bus_on_activation_done(struct activation *a, const char *error, const char *message, void *userdata);

/* ---- voice.c ---- */

/* Send a message the broker made: to `to`, or to every matching subscriber when NULL; monitors get a copy. */
void bus_send(struct bus *bus, struct peer *to, struct msg *m);
