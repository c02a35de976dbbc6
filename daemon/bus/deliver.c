/* SPDX-License-Identifier: MIT */
/*
 * Delivery: a message given to one receiver or to every subscriber whose
 * rule matches, all sharing the one message, and backpressure: a sender
 * that congested a receiver's queue waits until it drains to half.
 */
#include "daemon/bus/internal.h"
#include "daemon/log.h"
#include "util/util.h"

/*
 * Give m, sent by `sender` (NULL: the driver), to peer, if it takes
 * messages at all. Monitors take only copies (bus_monitor); a peer on its
 * way out takes nothing. A receiver that a client's own message leaves
 * congested is noted: that client will wait for it (bus_hold_back). What
 * the driver sends, even on a client's behalf (NameOwnerChanged after its
 * Hello or RequestName), holds back no one: a receiver that cannot take it
 * answers for that with its own queue limit (peer_send).
 */
void bus_deliver(struct bus *bus, struct peer *sender, struct peer *peer, struct msg *m)
{
        if (peer->state != PEER_REGISTERED && peer->state != PEER_NEW)
                return;
        if (peer_send(peer, m) == 0 && sender && sender == bus->sender && !bus->congested &&
            connection_congested(&peer->conn))
                bus->congested = peer;
}

bool bus_route_owns(const char *well_known, const char *unique, void *userdata)
{
        return bus_owns(well_known, unique, ((struct bus_route *) userdata)->bus);
}

/* match_names_fn: the well-known names the connection `unique` owns. */
void bus_route_names(const char *unique, bool (*visit)(const char *name, const void *arg), const void *arg,
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

/* Every peer with a matching rule gets m, once; they all share this one message. */
void bus_broadcast(struct bus *bus, struct peer *sender, struct msg *m)
{
        struct bus_route route = {bus, sender, m};

        match_index_route(&bus->matches, m, bus_route_owns, bus_route_names, bus_deliver_subscriber, &route);
}

/* Stop waiting; `resume` reading unless the peer is on its way out anyway. */
void bus_unwait(struct peer *peer, bool resume)
{
        if (!peer->waiting_on)
                return;
        list_unlink(&peer->wait_link);
        peer->waiting_on = NULL;
        if (resume)
                connection_resume(&peer->conn);
}

void bus_wake_waiters(struct peer *peer)
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
void bus_hold_back(struct bus *bus, struct peer *peer)
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
        peer->stats.held_back++;
        bus->stats.held_back++;
        list_link_tail(&on->waiters, &peer->wait_link);
        connection_pause(&peer->conn);
        connection_watch_drain(&on->conn);
}

void bus_on_drained(struct connection *c, void *userdata)
{
        struct peer *peer = userdata;

        bus_wake_waiters(peer);
        if (peer->state == PEER_MONITOR)
                bus_tell_lost(peer->bus, peer);
}
