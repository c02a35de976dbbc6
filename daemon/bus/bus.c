/* SPDX-License-Identifier: MIT */
/*
 * The bus: set-up, teardown and reconfiguration, the name registry's
 * announcements, and the peer as the policy and the logs see it. What the
 * bus does with messages and peers lives beside it (daemon/bus/internal.h
 * says which file holds which behaviour).
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon/bus/internal.h"
#include "daemon/bus/voice.h"
#include "daemon/log.h"
#include "protocol/interfaces.h"
#include "util/random.h"
#include "util/util.h"

/*
 * A second after peers left (however many), hand the memory they used back
 * to the system: the allocator keeps freed holes in the heap otherwise, and
 * a broker that served a thousand clients would stay that large.
 */
static void bus_on_trim(evutil_socket_t fd, short what, void *userdata)
{
        malloc_trim(0);
}

/* 32 lowercase hex digits, random, without ever blocking (the system bus
 * may start before the entropy pool is ready). */
static void bus_make_id(char id[33])
{
        uint8_t bytes[16];

        random_bytes(bytes, sizeof(bytes));
        for (size_t i = 0; i < sizeof(bytes); i++)
                snprintf(id + 2 * i, 3, "%02x", bytes[i]);
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
        bus_stats_init(&bus->stats);
        service_registry_init(&bus->services);
        if (activation_registry_init(&bus->activations, base, bus->config->type, bus->limits.activation_timeout_ms,
                                     bus_on_activation_done, bus) < 0 ||
            bus_load_services(bus, bus->config, &bus->services, NULL) < 0) {
                bus_deinit(bus);
                return -ENOMEM;
        }
        return 0;
}

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
        if (bus->descriptions)
                for (size_t i = 0; i < n_builtin_interfaces; i++)
                        free(bus->descriptions[i]);
        free(bus->descriptions);
        bus->descriptions = NULL;
        bus_config_deinit(&bus->default_config);
}

bool bus_may_administer(const struct bus *bus, const struct peer *peer)
{
        return peer_uid(peer) == 0 || peer_uid(peer) == bus->uid;
}

const char *bus_describe(const struct peer *peer, char *buf, size_t size)
{
        snprintf(buf, size, "%s (pid %d, uid %u)", peer->unique_name, (int) peer_pid(peer), (unsigned) peer_uid(peer));
        return buf;
}

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
const char *bus_describe_message(const struct msg *m, char *buf, size_t size)
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

/* policy_peer.owns: does the peer (userdata) own the well-known name? */
static bool bus_peer_owns(const char *name, void *userdata)
{
        struct peer *peer = userdata;

        return name_registry_lookup(&peer->bus->names, name) == &peer->names;
}

bool bus_name_has_prefix(const char *name, const void *prefix)
{
        return policy_name_has_prefix(name, prefix);
}

/* policy_peer.owns_prefix: does the peer own the name `prefix` or one below it? */
static bool bus_peer_owns_prefix(const char *prefix, void *userdata)
{
        struct peer *peer = userdata;

        return name_owner_owns_any(&peer->names, bus_name_has_prefix, prefix);
}

struct policy_peer bus_policy_peer(struct peer *peer)
{
        return (struct policy_peer){peer->unique_name, bus_peer_owns, peer, bus_peer_owns_prefix};
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
