/* SPDX-License-Identifier: MIT */
/*
 * Per-uid accounting: what all the connections of one uid hold together, so
 * that opening more connections buys no more quota. A user exists while it
 * has connections; the owners in the name registry, the match index, the
 * reply registry and the connections' queues count into its totals.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/map.h"

struct user {
        struct map_node node;
        uid_t uid;
        unsigned n_connections;
        unsigned n_names;          /* name requests, owned or queued */
        unsigned n_matches;        /* match rule instances */
        unsigned n_pending;        /* calls awaiting an answer */
        uint64_t n_queued;         /* outgoing bytes queued towards its connections */
        uint64_t n_monitor_queued; /* the same towards its monitors: an account apart */
        uint64_t n_incoming;       /* bytes read from its connections and not yet handled */
        unsigned n_fds;            /* descriptors in flight its connections sent */
        uint64_t n_memfd_bytes;    /* bytes of the memfd bodies among them (PROTOCOL.md 14) */
        unsigned n_accounts;       /* user_fds accounts alive: they keep the user */
};

struct user_registry {
        struct map users;
        unsigned n_fds; /* descriptors in flight, all users */
};

/*
 * The descriptors in flight of one connection: received and not yet
 * handled, or in messages not yet written to (and dropped by) every
 * receiver. Counted into its user and the registry too. Refcounted: the
 * connection and each message holding its descriptors keep a reference, so
 * the count, and the user it belongs to, outlive the connection until its
 * last descriptor is closed; reconnecting buys no new room.
 */
struct user_fds {
        unsigned n_ref;
        unsigned n_fds;
        uint64_t n_memfd_bytes; /* of memfd bodies held in its messages, counted into its user too */
        struct user *user;
        struct user_registry *reg;
};

void user_registry_init(struct user_registry *reg);
/* Every user must be gone (each connection released its reference). */
void user_registry_deinit(struct user_registry *reg);

/* The user of uid, created on first use; counts one more connection. Returns 0 or -ENOMEM. */
int user_registry_acquire(struct user_registry *reg, uid_t uid, struct user **ret);
/* A connection of the user is gone; the user goes with its last one. */
void user_registry_release(struct user_registry *reg, struct user *user);
/* The user of uid, or NULL when it has no connection. */
struct user *user_registry_find(struct user_registry *reg, uid_t uid);

/* A new account of user's (n_ref 1). Returns 0 or -ENOMEM. */
int user_fds_new(struct user_registry *reg, struct user *user, struct user_fds **ret);
struct user_fds *user_fds_ref(struct user_fds *a);
/* Drop a reference; the last one lets go of the user (freed when it has no connection either). Accepts NULL. */
struct user_fds *user_fds_unref(struct user_fds *a);
/* Count n more (or fewer) descriptors in the account, its user and the registry. */
void user_fds_charge(struct user_fds *a, unsigned n);
void user_fds_uncharge(struct user_fds *a, unsigned n);
/* Count the bytes of a memfd body (PROTOCOL.md 14) in the account and its user, or release them. */
void user_memfd_charge(struct user_fds *a, uint64_t bytes);
void user_memfd_uncharge(struct user_fds *a, uint64_t bytes);
