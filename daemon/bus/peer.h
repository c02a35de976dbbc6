/* SPDX-License-Identifier: MIT */
/*
 * A connected client as the bus sees it: its connection, its id and unique
 * name ":1.N", its state, its credentials, and its anchors in the name
 * registry, the match index and the reply registry.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "daemon/bus/match.h"
#include "daemon/bus/name.h"
#include "daemon/bus/reply.h"
#include "daemon/bus/stats.h"
#include "daemon/transport/connection.h"
#include "util/list.h"
#include "util/map.h"

struct bus;
struct event;
struct event_base;
struct msg;
struct user;
struct user_fds;
struct bus_limits;

/* Before Hello a connection may send frames of this size at most (PROTOCOL.md
 * "Connecting"): Hello is tiny, and a stranger should not make the broker
 * buffer megabytes on its behalf. */
#define PEER_PRE_HELLO_FRAME_MAX (64u * 1024u)

enum peer_state {
        PEER_NEW,        /* connected, no Hello yet: talks to the driver only */
        PEER_REGISTERED, /* said Hello: owns its unique name */
        PEER_MONITOR,    /* became a monitor: receives copies, sends nothing */
        PEER_GONE,       /* removed from the bus, its connection winding down */
};

struct peer {
        struct bus *bus;
        struct connection conn;
        uint64_t id;
        char unique_name[32];
        enum peer_state state;
        struct name_owner names;
        struct match_owner matches; /* its rules in the bus's match index */
        struct match_owner monitor; /* its rules in the bus's monitor index */
        struct reply_owner replies;
        struct map_node name_node; /* in the bus's peers by unique name, while registered */
        struct list link;          /* in the bus's list of all peers, until freed */
        struct user *user;         /* its uid's account, once admitted; NULL before and after */
        struct user_fds *fds;      /* its descriptors in flight, once admitted */
        struct event *timer;       /* before Hello, its deadline; after, the idle check (admit.c) */
        int64_t last_heard_ms;     /* CLOCK_MONOTONIC of its last frame */

        /* Backpressure: a peer whose message went to a congested receiver stops
         * being read until that receiver's queue drains (deliver.c). */
        struct list waiters;     /* peers waiting for this one's queue to drain */
        struct list wait_link;   /* in waiting_on->waiters */
        struct peer *waiting_on; /* NULL when not waiting */
        uint64_t n_lost;         /* a monitor's copies dropped since it was last told */
        /* Its calls (and StartServiceByName) waiting for services being started (held.c), and how
         * many of them hold no pending reply (those count against max_pending apart). */
        struct list activation_requests;
        unsigned n_activation_requests;
        struct peer_stats stats; /* its counters (stats.h); its bytes and frames are its connection's */
};

/*
 * A peer for the accepted socket fd, named ":1.<id>". On success it owns fd
 * and its connection is reading; on failure (negative errno) fd is untouched.
 */
int peer_new(struct bus *bus, struct event_base *base, int fd, uint64_t id, const struct connection_limits *limits,
             const struct connection_ops *ops, struct peer **ret);
/* Free a peer that is in no registry any more. Accepts NULL. */
void peer_free(struct peer *p);

static inline uid_t peer_uid(const struct peer *p)
{
        return p->conn.cred.uid;
}

static inline gid_t peer_gid(const struct peer *p)
{
        return p->conn.cred.gid;
}

static inline pid_t peer_pid(const struct peer *p)
{
        return p->conn.cred.pid;
}

/*
 * Queue m to p. A peer that cannot take it (its queue or its uid's queues
 * are over the limit, or memory ran out) is closed, the cause logged:
 * nothing is dropped silently. Returns 0, or what connection_queue returned
 * (CONNECTION_E_* or -ENOMEM: p is closed then, except when it was closing
 * already).
 */
int peer_send(struct peer *p, struct msg *m);

/*
 * Whether p can take m now: 0, or CONNECTION_E_QUEUE_FULL / _UID (connection_check_room).
 * Checked before offering p a message it did not ask for (a call, a unicast
 * signal): when it cannot, the sender gets LimitsExceeded and p stays
 * connected. Only what p asked for (replies to its calls, signals it
 * subscribed to) makes peer_send close a full peer.
 */
int peer_check_room(struct peer *p, struct msg *m);

/*
 * Charge n descriptors that arrived from p to its account, within the
 * limits and leaving the broker `fds_free` descriptors short of its
 * RLIMIT_NOFILE less a reserve: 0, or the CONNECTION_FDS_* code that
 * refuses them. A peer not (yet) admitted has no account and takes none.
 */
int peer_charge_fds(struct peer *p, unsigned n, const struct bus_limits *l, unsigned fds_free);
/* The descriptors of a message from p: m keeps them charged to p's account until it is freed. */
void peer_hold_fds(struct peer *p, struct msg *m);
/* Close charged descriptors that will not make a message. */
void peer_drop_fds(struct peer *p, int *fds, unsigned n);
/* The text of a refusal (CONNECTION_FDS_*) of n descriptors, naming the limit. */
void peer_describe_fds_refusal(struct peer *p, int code, unsigned n, const struct bus_limits *l, char *buf,
                               size_t size);

/* Why peer_charge_memfd refuses a message's memfd body. */
enum {
        PEER_MEMFD_E_NOT_SEALED = 1, /* not a memfd sealed against writing, shrinking and growing */
        PEER_MEMFD_E_SHORT,          /* smaller than its body_size and the NUL after the text */
        PEER_MEMFD_E_TOO_LARGE,      /* over max_body_bytes */
        PEER_MEMFD_E_OVER_UID,       /* would put p's uid over max_memfd_bytes_per_uid */
};

/*
 * A message m from p whose body is in a memfd (PROTOCOL.md 14, m->h.body_size
 * set; its descriptors held with peer_hold_fds): check the seals and the size
 * of the file, without reading it, and charge its size to p's uid until m is
 * freed (m->charged_bytes). Returns 0, a PEER_MEMFD_E_* code, or a negative
 * errno (the kernel could not say); *reterr_size is the file's size once
 * known, 0 before.
 */
int peer_charge_memfd(struct peer *p, struct msg *m, const struct bus_limits *l, uint64_t *reterr_size);

/* The configuration key of the queue limit a CONNECTION_E_QUEUE_FULL / _UID is about. */
const char *peer_queue_limit_name(int error);
