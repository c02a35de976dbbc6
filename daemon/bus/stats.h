/* SPDX-License-Identifier: MIT */
/*
 * The broker's statistics (PROTOCOL.md 7.6): counters kept on the hot path
 * as plain increments into fixed fields and arrays (no allocation, no
 * lookup per message), and the JSON of GetStats and GetConnectionStats
 * built from them when asked. Per-connection byte and frame counts live in
 * the connection (daemon/transport/connection.h); those of connections that
 * left are folded into the bus totals when they are freed.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct bus;
struct jbuf;
struct msg;
struct peer;

/* Why a connection was closed: "disconnects" in GetStats, by name (bus_disconnect_names). */
enum bus_disconnect {
        BUS_DISCONNECT_NONE,           /* not decided yet: the transport's cause is taken */
        BUS_DISCONNECT_HANGUP,         /* the client closed its end */
        BUS_DISCONNECT_PROTOCOL_ERROR, /* a broken frame or message, or a message before Hello */
        BUS_DISCONNECT_STALLED,        /* read nothing, or sent half a frame, for stall_timeout_ms */
        BUS_DISCONNECT_HELLO_TIMEOUT,  /* no Hello within hello_timeout_ms */
        BUS_DISCONNECT_IDLE,           /* silent and holding nothing for idle_timeout_ms */
        BUS_DISCONNECT_MONITOR_SENT,   /* a monitor sent a message */
        BUS_DISCONNECT_LIMITS,         /* over a queue or incoming-bytes limit */
        BUS_DISCONNECT_REFUSED,        /* turned away at connect (policy or a limit) */
        BUS_DISCONNECT_IO_ERROR,       /* a read or write error */
        BUS_DISCONNECT_NO_MEMORY,      /* the broker ran out of memory for it */
        BUS_DISCONNECT_SHUTDOWN,       /* the broker shut down */
        _BUS_DISCONNECT_N,
};

/*
 * The limit that refused something (LimitsExceeded, or a refused
 * connection): "refusals" in GetStats, named by its configuration key
 * (daemon/CONFIG.md) except the two that have none.
 */
enum bus_refusal {
        BUS_REFUSAL_MAX_CONNECTIONS,
        BUS_REFUSAL_RESERVED_CONNECTIONS,
        BUS_REFUSAL_MAX_CONNECTIONS_PER_UID,
        BUS_REFUSAL_MAX_NAMES_PER_CONNECTION,
        BUS_REFUSAL_MAX_NAMES_PER_UID,
        BUS_REFUSAL_MAX_MATCHES_PER_CONNECTION,
        BUS_REFUSAL_MAX_MATCHES_PER_UID,
        BUS_REFUSAL_MAX_PENDING_CALLS_PER_CONNECTION,
        BUS_REFUSAL_MAX_PENDING_CALLS_PER_UID,
        BUS_REFUSAL_MAX_QUEUED_BYTES_PER_CONNECTION,
        BUS_REFUSAL_MAX_QUEUED_BYTES_PER_UID,
        BUS_REFUSAL_MAX_FDS_IN_FLIGHT_PER_CONNECTION,
        BUS_REFUSAL_MAX_FDS_IN_FLIGHT_PER_UID,
        BUS_REFUSAL_MAX_BODY_BYTES,
        BUS_REFUSAL_MAX_MEMFD_BYTES_PER_UID,
        BUS_REFUSAL_MAX_ACTIVATIONS_PER_UID,
        BUS_REFUSAL_HELLO_TIMEOUT_MS,
        BUS_REFUSAL_IDLE_TIMEOUT_MS,
        BUS_REFUSAL_DESCRIPTORS,            /* "descriptors": the broker's own RLIMIT_NOFILE reserve */
        BUS_REFUSAL_DRIVER_BODY,            /* "driver_body": a driver call's body over its method's bound */
        BUS_REFUSAL_ACTIVATION_ENVIRONMENT, /* "activation_environment": over ACTIVATION_ENV_MAX variables */
        _BUS_REFUSAL_N,
};

/* How an activation ended: "activations" in GetStats. */
enum bus_activation_outcome {
        BUS_ACTIVATION_STARTED,
        BUS_ACTIVATION_FAILED,
        BUS_ACTIVATION_TIMED_OUT,
        _BUS_ACTIVATION_N,
};

/* Message types as counted ("messages"): MSG_CALL .. MSG_SIGNAL, in that order. */
#define BUS_STATS_MSG_TYPES 4

/* The bus's counters since it started. Gauges are read from the registries when asked. */
struct bus_stats {
        int64_t started_ms; /* CLOCK_MONOTONIC */
        uint64_t connections_accepted;
        unsigned connections_peak;
        uint64_t messages[BUS_STATS_MSG_TYPES]; /* valid messages from clients, by type */
        uint64_t driver_messages;
        uint64_t memfd_bodies;
        uint64_t deliveries;
        uint64_t monitor_copies_lost;
        uint64_t held_back;
        uint64_t timeouts;
        uint64_t no_reply;
        uint64_t activations[_BUS_ACTIVATION_N];
        uint64_t refusals[_BUS_REFUSAL_N];
        uint64_t disconnects[_BUS_DISCONNECT_N];
        /* What connections that were freed had read and written (the live ones' are added when asked). */
        uint64_t gone_bytes_in;
        uint64_t gone_bytes_out;
};

/* A peer's own counters (the connection counts its bytes and frames). */
struct peer_stats {
        int64_t connected_ms; /* CLOCK_MONOTONIC */
        uint64_t held_back;
        uint64_t errors_sent;
        enum bus_disconnect end; /* why it is being closed, once known */
};

/* The name of a reason, a refusal, an outcome ("hangup", "max_connections", "started"). */
const char *bus_disconnect_name(enum bus_disconnect d);
const char *bus_refusal_name(enum bus_refusal r);
const char *bus_activation_outcome_name(enum bus_activation_outcome o);

/* Start counting (bus_init). */
void bus_stats_init(struct bus_stats *s);

/* Count a valid message from a client by its type. */
void bus_stats_count_message(struct bus_stats *s, const struct msg *m);

/* Count a refusal by the limit that made it (a LimitsExceeded answer, a refused connection). */
static inline void bus_stats_refused(struct bus_stats *s, enum bus_refusal r)
{
        s->refusals[r]++;
}

/* Count the peer's disconnect, once, by peer->stats.end or else what its connection says. */
void bus_stats_count_disconnect(struct bus *bus, struct peer *peer);
/* Fold a peer's byte counts into the totals before it is freed. */
void bus_stats_forget_peer(struct bus *bus, struct peer *peer);

/* Whether `viewer` may see the per-connection figures of `peer`: root, the broker's uid, or its own uid. */
bool bus_stats_may_see(const struct bus *bus, const struct peer *viewer, const struct peer *peer);

/* One scalar of BUS: its JSON key, its metric (without "ipcbus_" and "_total"), and how to read it. */
struct bus_stats_scalar {
        const char *key;
        const char *metric;
        const char *help;
        const char *unit; /* "bytes", "seconds" (value in ms then, the metric in seconds) or NULL */
        bool counter;     /* else a gauge */
        uint64_t value;
};

/* One labelled map of BUS ("messages", "refusals", ...): names and counts, n entries. */
struct bus_stats_map {
        const char *key;
        const char *metric;
        const char *help;
        const char *label;
        const char *(*name)(unsigned i);
        const uint64_t *counts;
        unsigned n;
        bool nonzero_only; /* JSON lists only the entries above 0 */
};

#define BUS_STATS_SCALARS 20
#define BUS_STATS_MAPS 4

/*
 * The bus totals now, in the order of PROTOCOL.md 7.6 ("id" apart): sums
 * over the live peers are made here, one pass. scalars has
 * BUS_STATS_SCALARS entries, maps BUS_STATS_MAPS (pointing into bus).
 */
void bus_stats_collect(struct bus *bus, struct bus_stats_scalar *scalars, struct bus_stats_map *maps);

/*
 * GetStats's reply stops listing connections once its body is this large
 * (and says how many it left out, "connections_omitted"): a reply stays far
 * below the frame limit whatever the number of connections and their names.
 */
#define BUS_STATS_REPLY_MAX (8u * 1024u * 1024u)

/*
 * GetStats's body: {"bus": BUS, "connections": [CONN, ...],
 * "connections_omitted": N}, the connections bus_stats_may_see lets
 * `viewer` see, in connection order, up to BUS_STATS_REPLY_MAX.
 * Appends to b (b->failed on ENOMEM).
 */
void bus_stats_write(struct bus *bus, const struct peer *viewer, struct jbuf *b);
/* GetConnectionStats's body: CONN of peer. */
void bus_stats_write_connection(struct bus *bus, struct peer *peer, struct jbuf *b);
