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

#include "map.h"

struct user {
        struct map_node node;
        uid_t uid;
        unsigned n_connections;
        unsigned n_names;          /* name requests, owned or queued */
        unsigned n_matches;        /* match rule instances */
        unsigned n_pending;        /* calls awaiting an answer */
        uint64_t n_queued;         /* outgoing bytes queued towards its connections */
        uint64_t n_monitor_queued; /* the same towards its monitors: an account apart */
};

struct user_registry {
        struct map users;
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
