/* SPDX-License-Identifier: MIT */
/*
 * Monitors: peers that receive a copy of every message their rules match,
 * never hold the bus back, and are told how many copies they lost.
 */
#include <inttypes.h>

#include <event2/event.h>

#include "daemon/bus/internal.h"
#include "daemon/bus/voice.h"
#include "daemon/log.h"
#include "util/util.h"

/* Room a MessagesLost notice needs at most (prefix, header with the sender fields, body). */
#define BUS_NOTICE_BYTES 512

/*
 * Tell a monitor how many copies it lost (MessagesLost), if it lost any and
 * has room for the notice. Its uid's other monitors may fill their shared
 * account: then the notice waits for the next chance (a drain, or a copy
 * that fits), and the monitor is not closed for it.
 */
void bus_tell_lost(struct bus *bus, struct peer *peer)
{
        if (peer->n_lost == 0 || connection_check_room(&peer->conn, BUS_NOTICE_BYTES) != 0)
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
        if (peer_check_room(peer, route->m) != 0) {
                route->bus->stats.monitor_copies_lost++;
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

/* Monitors get a copy of m (the same shared message) when one of their rules matches. */
void bus_monitor(struct bus *bus, struct msg *m)
{
        struct bus_route route = {bus, NULL, m};

        if (bus->n_monitors > 0)
                match_index_route(&bus->monitors, m, bus_route_owns, bus_route_names, bus_deliver_monitor, &route);
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
                        peer->stats.end = BUS_DISCONNECT_NO_MEMORY;
                        bus_disconnect(bus, peer, "out of memory storing monitor rules");
                        return;
                }
        }
}
