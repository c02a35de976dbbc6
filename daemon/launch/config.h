/* SPDX-License-Identifier: MIT */
/*
 * The broker's configuration (daemon/CONFIG.md): a JSON file read once at
 * start and checked whole. An unknown key, a wrong type or an impossible
 * value is refused, naming the file, the key and the reason. The defaults
 * of --session and --system are the shipped daemon/session.json and
 * daemon/system.json, built into ipcbusd.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/bus/policy.h"

/*
 * What clients may make the broker hold. Every member has a documented
 * default (bus_limits_init; the shipped files spell the same numbers, but
 * for the system bus's connection shares). No member is 0 after a
 * successful load, "unlimited" is not offered, except max_fds (no fds),
 * reserved_connections (no reserve) and idle_timeout_ms (off).
 */
struct bus_limits {
        uint32_t max_frame;               /* "max_frame_bytes": prefix + header + body */
        uint32_t max_header;              /* "max_header_bytes", at most IPCBUS_CLIENT_HEADER_MAX */
        uint32_t max_body;                /* "max_body_bytes", at most IPCBUS_BODY_MAX */
        unsigned max_fds;                 /* "max_fds_per_message", at most IPCBUS_FDS_MAX (0 allowed: no fds) */
        unsigned max_connections;         /* "max_connections" */
        unsigned max_connections_per_uid; /* "max_connections_per_uid" */
        unsigned max_names;               /* "max_names_per_connection": owned or queued */
        unsigned max_names_per_uid;       /* "max_names_per_uid" */
        unsigned max_matches;             /* "max_matches_per_connection" */
        unsigned max_matches_per_uid;     /* "max_matches_per_uid" */
        unsigned max_pending;             /* "max_pending_calls_per_connection" */
        unsigned max_pending_per_uid;     /* "max_pending_calls_per_uid" */
        uint64_t max_queue;               /* "max_queued_bytes_per_connection": outgoing, hard */
        uint64_t max_queue_per_uid;       /* "max_queued_bytes_per_uid": outgoing, hard */
        uint64_t backpressure;            /* "backpressure_bytes": a queue this full makes its senders wait */
        uint32_t hello_timeout_ms;        /* "hello_timeout_ms": silence allowed before Hello */
        uint32_t stall_timeout_ms;        /* "stall_timeout_ms": a full socket that drains nothing this long */
        uint32_t reply_timeout_ms;        /* "reply_timeout_ms": a call's deadline when it sets none */
        uint32_t activation_timeout_ms;   /* "activation_timeout_ms": a started service must own its name by then */
        uint32_t max_activations_per_uid; /* "max_activations_per_uid": services one uid may have started ... */
        uint32_t activation_interval_ms;  /* "activation_interval_ms": ... per this interval (a token bucket) */
        uint64_t max_monitor_queue;       /* "max_monitor_queued_bytes": a monitor's queue, apart from its uid's */
        unsigned reserved_connections;    /* "reserved_connections": the last slots, for root and the broker's uid */
        uint32_t idle_timeout_ms;         /* "idle_timeout_ms": a registered peer holding nothing and silent; 0: off */
        unsigned max_inflight_fds;        /* "max_fds_in_flight_per_connection": received, not yet written out */
        unsigned max_inflight_fds_uid;    /* "max_fds_in_flight_per_uid" */
        uint64_t max_incoming_uid;        /* "max_incoming_bytes_per_uid": read, not yet handled */
        uint64_t max_memfd_uid;           /* "max_memfd_bytes_per_uid": memfd bodies in flight (PROTOCOL.md 14) */
};

/* The compiled-in defaults. */
void bus_limits_init(struct bus_limits *limits);

enum bus_type {
        BUS_TYPE_SESSION,
        BUS_TYPE_SYSTEM,
};

struct bus_config {
        enum bus_type type; /* "type": "session" (default) or "system" */
        char **listen;      /* "listen": addresses (unix:path=/...), may be none */
        size_t n_listen;
        struct bus_limits limits; /* "limits" */
        struct policy policy;     /* "policy" */
        char **service_dirs;      /* "service_dirs": absolute paths, searched first */
        size_t n_service_dirs;
        bool standard_service_dirs; /* "standard_service_dirs" (default true): then the bus type's standard ones */
        char *metrics_socket;       /* "metrics_socket": where to serve metrics (daemon/launch/scrape.h); NULL: off */
        char origin[256];           /* the file (or "built-in session.json") it came from */
};

/* A session bus with default limits, no listen address and no policy rules. Never fails. */
void bus_config_init(struct bus_config *config);
void bus_config_deinit(struct bus_config *config);

/* The expected outcome of reading a configuration (util/error.h), never a fault. */
enum {
        CONFIG_E_INVALID = 1, /* the text breaks CONFIG.md: err says where and why */
};

/*
 * Parse JSON text into config (which is initialized here; on failure it is
 * left deinitialized). `origin` names the text in errors and logs. Returns 0,
 * CONFIG_E_INVALID with a one-line "ORIGIN: KEY: REASON" in err (KEY a path
 * such as "limits.max_body_bytes" or "policy[2].user"), or -ENOMEM.
 */
int bus_config_parse(struct bus_config *config, const char *text, size_t len, const char *origin, char *err,
                     size_t err_size);
/* Read and parse a file: as bus_config_parse, and a negative errno with "FILE: reason" when it cannot be read. */
int bus_config_load_file(struct bus_config *config, const char *path, char *err, size_t err_size);
/* The shipped default of a bus type (its built-in copy), as bus_config_parse. */
int bus_config_load_default(struct bus_config *config, enum bus_type type, char *err, size_t err_size);
