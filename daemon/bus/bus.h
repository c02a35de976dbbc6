/* SPDX-License-Identifier: MIT */
/*
 * The bus: its peers, names, match rules, pending replies and monitors, and
 * the routing of every message (PROTOCOL.md 9 to 11). It knows nothing of
 * sockets beyond handing accepted fds to peers. daemon/bus/internal.h says
 * which file of daemon/bus/ holds which behaviour.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/bus/match.h"
#include "daemon/bus/name.h"
#include "daemon/bus/reply.h"
#include "daemon/bus/stats.h"
#include "daemon/bus/user.h"
#include "daemon/launch/activation.h"
#include "daemon/launch/config.h"
#include "daemon/launch/service.h"
#include "daemon/transport/connection.h"
#include "util/list.h"
#include "util/map.h"

struct event_base;
struct msg;
struct peer;

/* The expected outcome of bus->reload (util/error.h), never a fault. */
enum {
        BUS_E_RELOAD_REFUSED = 1, /* the configuration could not be read or is invalid: err says why */
};

struct bus {
        struct event_base *base;
        const struct bus_config *config;  /* limits, policy: the caller's, outliving the bus */
        struct bus_config default_config; /* when the caller gives none */
        struct bus_limits limits;         /* config->limits */
        struct connection_limits conn_limits;
        /* A monitor's: its own queue bound, and its uid's monitor account as the shared total. */
        struct connection_limits monitor_limits;
        struct user_registry users;
        struct name_registry names;
        struct match_index matches;  /* subscribers' rules: broadcast signals */
        struct match_index monitors; /* monitors' rules: every message */
        struct reply_registry replies;
        struct service_registry services;       /* activatable names, from the service files */
        struct activation_registry activations; /* services being started */
        struct map peers_by_name;               /* registered peers by unique name */
        struct list peers;                      /* every peer, until freed */
        unsigned n_peers;
        unsigned n_admitted; /* peers counted against max_connections, until freed */
        unsigned n_monitors;
        struct peer *sender;    /* the peer whose message is being routed */
        struct peer *congested; /* the first congested receiver of what it sent */
        uint64_t n_frames;      /* frames taken from peers so far: whether the bus is busy */
        struct bus_stats stats; /* GetStats's counters (stats.h) */
        uint64_t next_id;       /* N of the next ":1.N" */
        uint32_t serial;        /* the driver's last serial */
        char id[33];            /* GetId: 32 hex digits */
        uid_t uid;
        gid_t gid;
        pid_t pid;
        struct event *trim; /* gives freed memory back to the system after peers left */
        /* Introspect: the canonical text of each built-in description
         * (protocol/interfaces.c, in its order), made once on first use. */
        char **descriptions;
        bool shutting_down;
        /* Told after a peer came or went (n_peers changed), e.g. for a status line; may be NULL. */
        void (*peers_changed)(struct bus *bus, void *userdata);
        void *peers_changed_userdata;
        /* ReloadConfig: re-read the configuration and apply it (bus_reconfigure). Returns 0,
         * BUS_E_RELOAD_REFUSED or -ENOMEM, with the reason in err (the previous configuration
         * stays). NULL: not offered. */
        int (*reload)(struct bus *bus, void *userdata, char *err, size_t err_size);
        void *reload_userdata;
};

/* config (NULL: bus_config_init's defaults) must outlive the bus. Returns 0 or a negative errno. */
int bus_init(struct bus *bus, struct event_base *base, const struct bus_config *config);
/* Drop every peer and all state. */
void bus_deinit(struct bus *bus);

/*
 * The bus's own address (the first it listens on), handed to the services
 * it starts as IPCBUS_STARTER_ADDRESS.
 */
void bus_set_address(struct bus *bus, const char *address);

/*
 * Apply a new configuration: limits and policy at once (for what comes
 * next; nothing already admitted is undone), and the service files read
 * again from its service directories (a broken file keeps its previous
 * declaration). The type and the listen addresses are not changed here.
 * config must outlive the bus (or the next call). Returns 0 or -ENOMEM
 * (then nothing changed).
 */
int bus_reconfigure(struct bus *bus, const struct bus_config *config);

/* A new connection (listener callback; userdata is the bus). Owns fd. */
void bus_accept(int fd, void *userdata);
/* A connection taken while the broker is out of descriptors (listener
 * callback): it is told so (LimitsExceeded) and closed at once. */
void bus_refuse_fd(int fd, void *userdata);

/* Stop taking connections, flush and close every peer, then leave the event
 * loop once the last one is gone. */
void bus_shutdown(struct bus *bus);

/* ---- for the driver ---------------------------------------------------- */

/* The registered peer that is or owns `name`, or NULL. */
struct peer *bus_find_peer(struct bus *bus, const char *name);

/* The driver's next serial. */
uint32_t bus_next_serial(struct bus *bus);

/* Hello: the peer owns its unique name from now on. Returns 0 or -ENOMEM. */
int bus_register(struct bus *bus, struct peer *peer);

/*
 * BecomeMonitor, once its reply is queued: the peer loses its names, rules
 * and pending calls (the others are told), then receives copies of what its
 * rules match. Takes the rules' contents (n_rules >= 1; an empty rule
 * matches everything). A monitor whose rules cannot be stored is closed.
 */
void bus_become_monitor(struct bus *bus, struct peer *peer, struct match_rule *rules, size_t n_rules);

/*
 * StartServiceByName: start the service that declares `name`, answering
 * `call` with {"result": 1} once the name is owned (or a Spawn error), or at
 * once with 2 when it already is, or ServiceUnknown.
 */
void bus_start_service(struct bus *bus, struct peer *sender, struct msg *call, const char *name);

/* Whether the peer may administer the bus (ReloadConfig, UpdateActivationEnvironment, every
 * connection's statistics): root and the broker's own uid. */
bool bus_may_administer(const struct bus *bus, const struct peer *peer);

/* The peer's credentials as the policy sees them. */
struct policy_subject bus_subject(const struct peer *peer);

/* Log a policy denial as one line: who, what (`what` is "key=value ..."), which rule. */
void bus_log_denied(struct bus *bus, const struct peer *peer, enum policy_action action, const struct policy_verdict *v,
                    const char *what);

/* A one-line description of the peer for logs: ":1.4 (pid 42, uid 1000)". */
const char *bus_describe(const struct peer *peer, char *buf, size_t size);
