/* SPDX-License-Identifier: MIT */
/*
 * The broker's statistics (PROTOCOL.md 7.6): the names of the counted
 * reasons, the sums made when asked, and the JSON of GetStats and
 * GetConnectionStats. The counting itself is done where each event
 * happens, by a plain increment (daemon/bus/stats.h).
 */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/bus/internal.h"
#include "daemon/bus/stats.h"
#include "protocol/jbuf.h"
#include "protocol/message.h"
#include "util/clock.h"
#include "util/util.h"

static const char *const disconnect_names[_BUS_DISCONNECT_N] = {
        [BUS_DISCONNECT_NONE] = "unknown",
        [BUS_DISCONNECT_HANGUP] = "hangup",
        [BUS_DISCONNECT_PROTOCOL_ERROR] = "protocol_error",
        [BUS_DISCONNECT_STALLED] = "stalled",
        [BUS_DISCONNECT_HELLO_TIMEOUT] = "hello_timeout",
        [BUS_DISCONNECT_IDLE] = "idle",
        [BUS_DISCONNECT_MONITOR_SENT] = "monitor_sent",
        [BUS_DISCONNECT_LIMITS] = "limits",
        [BUS_DISCONNECT_REFUSED] = "refused",
        [BUS_DISCONNECT_IO_ERROR] = "io_error",
        [BUS_DISCONNECT_NO_MEMORY] = "no_memory",
        [BUS_DISCONNECT_SHUTDOWN] = "shutdown",
};

static const char *const refusal_names[_BUS_REFUSAL_N] = {
        [BUS_REFUSAL_MAX_CONNECTIONS] = "max_connections",
        [BUS_REFUSAL_RESERVED_CONNECTIONS] = "reserved_connections",
        [BUS_REFUSAL_MAX_CONNECTIONS_PER_UID] = "max_connections_per_uid",
        [BUS_REFUSAL_MAX_NAMES_PER_CONNECTION] = "max_names_per_connection",
        [BUS_REFUSAL_MAX_NAMES_PER_UID] = "max_names_per_uid",
        [BUS_REFUSAL_MAX_MATCHES_PER_CONNECTION] = "max_matches_per_connection",
        [BUS_REFUSAL_MAX_MATCHES_PER_UID] = "max_matches_per_uid",
        [BUS_REFUSAL_MAX_PENDING_CALLS_PER_CONNECTION] = "max_pending_calls_per_connection",
        [BUS_REFUSAL_MAX_PENDING_CALLS_PER_UID] = "max_pending_calls_per_uid",
        [BUS_REFUSAL_MAX_QUEUED_BYTES_PER_CONNECTION] = "max_queued_bytes_per_connection",
        [BUS_REFUSAL_MAX_QUEUED_BYTES_PER_UID] = "max_queued_bytes_per_uid",
        [BUS_REFUSAL_MAX_FDS_IN_FLIGHT_PER_CONNECTION] = "max_fds_in_flight_per_connection",
        [BUS_REFUSAL_MAX_FDS_IN_FLIGHT_PER_UID] = "max_fds_in_flight_per_uid",
        [BUS_REFUSAL_MAX_BODY_BYTES] = "max_body_bytes",
        [BUS_REFUSAL_MAX_MEMFD_BYTES_PER_UID] = "max_memfd_bytes_per_uid",
        [BUS_REFUSAL_MAX_ACTIVATIONS_PER_UID] = "max_activations_per_uid",
        [BUS_REFUSAL_HELLO_TIMEOUT_MS] = "hello_timeout_ms",
        [BUS_REFUSAL_IDLE_TIMEOUT_MS] = "idle_timeout_ms",
        [BUS_REFUSAL_DESCRIPTORS] = "descriptors",
        [BUS_REFUSAL_DRIVER_BODY] = "driver_body",
        [BUS_REFUSAL_ACTIVATION_ENVIRONMENT] = "activation_environment",
};

static const char *const activation_names[_BUS_ACTIVATION_N] = {
        [BUS_ACTIVATION_STARTED] = "started",
        [BUS_ACTIVATION_FAILED] = "failed",
        [BUS_ACTIVATION_TIMED_OUT] = "timed_out",
};

/* By message type: the order of BUS_STATS_MSG_TYPES, MSG_CALL first. */
static const char *const type_names[BUS_STATS_MSG_TYPES] = {"call", "return", "error", "signal"};

const char *bus_disconnect_name(enum bus_disconnect d)
{
        return d < _BUS_DISCONNECT_N ? disconnect_names[d] : "unknown";
}

const char *bus_refusal_name(enum bus_refusal r)
{
        return r < _BUS_REFUSAL_N ? refusal_names[r] : "unknown";
}

const char *bus_activation_outcome_name(enum bus_activation_outcome o)
{
        return o < _BUS_ACTIVATION_N ? activation_names[o] : "unknown";
}

/* The four maps' name functions (struct bus_stats_map.name). */
static const char *map_type_name(unsigned i)
{
        return i < BUS_STATS_MSG_TYPES ? type_names[i] : "unknown";
}

static const char *map_refusal_name(unsigned i)
{
        return bus_refusal_name((enum bus_refusal) i);
}

static const char *map_disconnect_name(unsigned i)
{
        return bus_disconnect_name((enum bus_disconnect) i);
}

static const char *map_activation_name(unsigned i)
{
        return bus_activation_outcome_name((enum bus_activation_outcome) i);
}

void bus_stats_init(struct bus_stats *s)
{
        *s = (struct bus_stats){.started_ms = (int64_t) clock_now_msec(CLOCK_MONOTONIC)};
}

void bus_stats_count_message(struct bus_stats *s, const struct msg *m)
{
        if (m->h.type >= MSG_CALL && m->h.type < MSG_CALL + BUS_STATS_MSG_TYPES)
                s->messages[m->h.type - MSG_CALL]++;
}

void bus_stats_count_disconnect(struct bus *bus, struct peer *peer)
{
        enum bus_disconnect d = peer->stats.end;

        if (d == BUS_DISCONNECT_NONE) {
                switch (peer->conn.end) {
                case CONNECTION_END_HANGUP:
                        d = BUS_DISCONNECT_HANGUP;
                        break;
                case CONNECTION_END_STALLED:
                        d = BUS_DISCONNECT_STALLED;
                        break;
                case CONNECTION_END_IO_ERROR:
                        d = BUS_DISCONNECT_IO_ERROR;
                        break;
                case CONNECTION_END_INCOMING_LIMIT:
                        d = BUS_DISCONNECT_LIMITS;
                        break;
                case CONNECTION_END_NONE:
                        d = bus->shutting_down ? BUS_DISCONNECT_SHUTDOWN : BUS_DISCONNECT_NONE;
                        break;
                }
                peer->stats.end = d;
        }
        bus->stats.disconnects[d]++;
}

void bus_stats_forget_peer(struct bus *bus, struct peer *peer)
{
        bus->stats.gone_bytes_in += peer->conn.rx_pos;
        bus->stats.gone_bytes_out += peer->conn.tx_pos;
}

bool bus_stats_may_see(const struct bus *bus, const struct peer *viewer, const struct peer *peer)
{
        return bus_may_administer(bus, viewer) || peer_uid(viewer) == peer_uid(peer);
}

void bus_stats_collect(struct bus *bus, struct bus_stats_scalar *sc, struct bus_stats_map *maps)
{
        const struct bus_stats *s = &bus->stats;
        uint64_t bytes_in = s->gone_bytes_in, bytes_out = s->gone_bytes_out, queued = 0, matches = 0, pending = 0;
        int64_t now = (int64_t) clock_now_msec(CLOCK_MONOTONIC);
        struct peer *p;
        size_t i = 0;

        list_for_each_entry(p, &bus->peers, link) {
                bytes_in += p->conn.rx_pos;
                bytes_out += p->conn.tx_pos;
                queued += p->conn.tx_bytes;
                matches += p->matches.n_rules;
                pending += p->replies.n_calls;
        }

#define SCALAR(k, m, h, u, c, v) sc[i++] = (struct bus_stats_scalar){k, m, h, u, c, (uint64_t) (v)}
        SCALAR("uptime_ms", "uptime_seconds", "Time since the broker started.", "seconds", false, now - s->started_ms);
        SCALAR("connections", "connections", "Connections now, monitors included.", NULL, false, bus->n_peers);
        SCALAR("connections_peak", "connections_peak", "The most connections at once since the broker started.", NULL,
               false, s->connections_peak);
        SCALAR("connections_accepted", "connections_accepted", "Connections accepted (admitted or refused).", NULL,
               true, s->connections_accepted);
        SCALAR("monitors", "monitors", "Monitors now.", NULL, false, bus->n_monitors);
        SCALAR("names", "names", "Well-known names owned now.", NULL, false, name_registry_size(&bus->names));
        SCALAR("matches", "matches", "Match rules of subscribers now (monitors' not included).", NULL, false, matches);
        SCALAR("pending_calls", "pending_calls", "Calls awaiting an answer now.", NULL, false, pending);
        SCALAR("queued_bytes", "queued_bytes", "Bytes queued to all connections now.", "bytes", false, queued);
        SCALAR("driver_messages", "driver_messages", "Messages the broker itself sent (replies, errors, signals).",
               NULL, true, s->driver_messages);
        SCALAR("bytes_in", "received_bytes", "Frame bytes read from clients (memfd bodies not included).", "bytes",
               true, bytes_in);
        SCALAR("bytes_out", "sent_bytes", "Frame bytes written to clients (memfd bodies not included).", "bytes", true,
               bytes_out);
        SCALAR("memfd_bodies", "memfd_bodies", "Messages whose body came in a sealed memfd.", NULL, true,
               s->memfd_bodies);
        SCALAR("deliveries", "deliveries", "Copies queued to receivers (a broadcast counts each receiver).", NULL, true,
               s->deliveries);
        SCALAR("monitor_copies_lost", "monitor_copies_lost", "Copies monitors lost for want of room.", NULL, true,
               s->monitor_copies_lost);
        SCALAR("held_back", "held_back", "Times a sender was paused for a congested receiver (backpressure).", NULL,
               true, s->held_back);
        SCALAR("timeouts", "timeouts", "Calls answered Timeout by the broker.", NULL, true, s->timeouts);
        SCALAR("no_reply", "no_reply", "Calls answered NoReply because the callee went away.", NULL, true, s->no_reply);
        SCALAR("frames_in", "frames", "Frames read from clients, valid or not.", NULL, true, bus->n_frames);
        SCALAR("max_connections", "max_connections", "The max_connections limit.", NULL, false,
               bus->limits.max_connections);
#undef SCALAR
        assert(i == BUS_STATS_SCALARS);
        maps[0] = (struct bus_stats_map){"messages",
                                         "messages",
                                         "Messages received from clients and routed, by type.",
                                         "type",
                                         map_type_name,
                                         s->messages,
                                         BUS_STATS_MSG_TYPES,
                                         false};
        maps[1] = (struct bus_stats_map){"activations",
                                         "activations",
                                         "Service activations, by outcome.",
                                         "outcome",
                                         map_activation_name,
                                         s->activations,
                                         _BUS_ACTIVATION_N,
                                         false};
        maps[2] =
                (struct bus_stats_map){"refusals",
                                       "refusals",
                                       "Requests and connections refused (LimitsExceeded), by the limit that refused.",
                                       "limit",
                                       map_refusal_name,
                                       s->refusals,
                                       _BUS_REFUSAL_N,
                                       true};
        maps[3] = (struct bus_stats_map){"disconnects",
                                         "disconnects",
                                         "Connections closed, by reason.",
                                         "reason",
                                         map_disconnect_name,
                                         s->disconnects,
                                         _BUS_DISCONNECT_N,
                                         true};
}

/* Collects the names a peer owns (a name_owner_owns_any visitor that never stops it). */
struct owned_names {
        const char **names;
        size_t n, cap;
};

static bool owned_names_add(const char *name, const void *arg)
{
        struct owned_names *o = (struct owned_names *) arg;

        if (o->n < o->cap)
                o->names[o->n++] = name;
        return false;
}

static int compare_strings(const void *a, const void *b)
{
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* "names": the well-known names the peer is primary owner of, sorted. */
static void write_names(struct peer *peer, struct jbuf *b)
{
        _cleanup_(freep) const char **names = NULL;
        struct owned_names o = {0};

        jbuf_puts(b, "\"names\":[");
        if (peer->names.n_requests > 0) {
                names = calloc(peer->names.n_requests, sizeof(*names));
                if (!names) {
                        b->failed = true;
                        return;
                }
                o = (struct owned_names){names, 0, peer->names.n_requests};
                name_owner_owns_any(&peer->names, owned_names_add, &o);
                qsort(names, o.n, sizeof(*names), compare_strings);
        }
        for (size_t i = 0; i < o.n; i++) {
                if (i)
                        jbuf_putc(b, ',');
                jbuf_put_string(b, names[i]);
        }
        jbuf_putc(b, ']');
}

void bus_stats_write_connection(struct bus *bus, struct peer *peer, struct jbuf *b)
{
        const struct connection *c = &peer->conn;
        int64_t now = (int64_t) clock_now_msec(CLOCK_MONOTONIC);
        unsigned matches = peer->state == PEER_MONITOR ? peer->monitor.n_rules : peer->matches.n_rules;

        jbuf_puts(b, "{\"unique_name\":");
        jbuf_put_string(b, peer->unique_name);
        jbuf_printf(b, ",\"uid\":%u,\"gid\":%u,\"pid\":%d,\"connected_ms\":%" PRId64 ",\"monitor\":%s,",
                    (unsigned) peer_uid(peer), (unsigned) peer_gid(peer), (int) peer_pid(peer),
                    now - peer->stats.connected_ms, peer->state == PEER_MONITOR ? "true" : "false");
        write_names(peer, b);
        jbuf_printf(b,
                    ",\"matches\":%u,\"pending_calls\":%u,\"messages_in\":%" PRIu64 ",\"messages_out\":%" PRIu64
                    ",\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64 ",\"queued_messages\":%zu"
                    ",\"queued_bytes\":%zu,\"queued_fds\":%" PRIu64 ",\"fds_in_flight\":%u,\"held_back\":%" PRIu64
                    ",\"errors_sent\":%" PRIu64 ",\"waiting_on\":",
                    matches, peer->replies.n_calls, c->rx_frames, c->tx_messages, c->rx_pos, c->tx_pos, c->tx.len,
                    c->tx_bytes, (uint64_t) c->tx_fds, peer->fds ? peer->fds->n_fds : 0, peer->stats.held_back,
                    peer->stats.errors_sent);
        /* whom it waits for now (backpressure), or null */
        if (peer->waiting_on)
                jbuf_put_string(b, peer->waiting_on->unique_name);
        else
                jbuf_puts(b, "null");
        jbuf_putc(b, '}');
}

/* BUS: the scalars, then the maps as objects. */
static void write_bus(struct bus *bus, struct jbuf *b)
{
        struct bus_stats_scalar sc[BUS_STATS_SCALARS];
        struct bus_stats_map maps[BUS_STATS_MAPS];

        bus_stats_collect(bus, sc, maps);
        jbuf_puts(b, "{\"id\":");
        jbuf_put_string(b, bus->id);
        for (size_t i = 0; i < BUS_STATS_SCALARS; i++)
                jbuf_printf(b, ",\"%s\":%" PRIu64, sc[i].key, sc[i].value);
        for (size_t i = 0; i < BUS_STATS_MAPS; i++) {
                bool first = true;

                jbuf_printf(b, ",\"%s\":{", maps[i].key);
                for (unsigned j = 0; j < maps[i].n; j++) {
                        if (maps[i].nonzero_only && maps[i].counts[j] == 0)
                                continue;
                        jbuf_printf(b, "%s\"%s\":%" PRIu64, first ? "" : ",", maps[i].name(j), maps[i].counts[j]);
                        first = false;
                }
                jbuf_putc(b, '}');
        }
        jbuf_putc(b, '}');
}

void bus_stats_write(struct bus *bus, const struct peer *viewer, struct jbuf *b)
{
        struct peer *p;
        size_t start = b->len;
        unsigned omitted = 0;
        bool first = true;

        jbuf_puts(b, "{\"bus\":");
        write_bus(bus, b);
        jbuf_puts(b, ",\"connections\":[");
        list_for_each_entry(p, &bus->peers, link) {
                if (p->state == PEER_GONE || !bus_stats_may_see(bus, viewer, p))
                        continue;
                if (b->len - start >= BUS_STATS_REPLY_MAX) {
                        omitted++;
                        continue;
                }
                if (!first)
                        jbuf_putc(b, ',');
                bus_stats_write_connection(bus, p, b);
                first = false;
        }
        jbuf_printf(b, "],\"connections_omitted\":%u}", omitted);
}
