/* SPDX-License-Identifier: MIT */
/*
 * Starting services on demand (CONFIG.md "Service activation"): for a
 * well-known name a service file declares, run its program (fork/exec in a
 * clean environment, optionally as another user) or `systemctl start` its
 * unit, then wait until someone owns the name. One activation per name at a
 * time; what waits for it (the bus's queued requests) hangs off it. This
 * module runs processes and keeps time; the bus decides what success or
 * failure means for the requests.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/bus/reply.h"
#include "daemon/launch/config.h"
#include "util/list.h"
#include "util/map.h"

struct event;
struct event_base;
struct service;

struct activation_registry;

struct activation {
        struct activation_registry *reg;
        struct map_node node; /* in the registry, by name */
        char *name;
        struct service *service; /* a copy of the declaration it was started from */
        pid_t pid;               /* the program, or systemctl; 0 once it exited */
        int status_fd;           /* read end of the child's setup/exec error pipe; -1 once read */
        struct event *timer;     /* activation_timeout_ms; then fired at once when the name is owned */
        bool owned;              /* someone owns the name: success is being reported */
        /* A unit started by systemctl is watched until the name is owned:
         * `systemctl show` now and then, with back-off (activation_watch_*). */
        struct event *watch_timer; /* the next look */
        struct event *watch_read;  /* the output of the look under way */
        int watch_fd;              /* its read end; -1 when none */
        uint32_t watch_delay_ms;   /* until the next look */
        char watch_out[512];
        size_t watch_len;
        /* The bus's: requests waiting for an owner (in arrival order), and
         * the anchor of their calls' pending replies meanwhile. */
        struct list requests;
        struct reply_owner replies;
};

/*
 * The activation is over: its name is owned (error NULL), or it failed, and
 * then `error` is an org.ipcbus.Error.Spawn.* name and `message` says what
 * happened. The callee answers and drops every request; the registry frees
 * the activation after this returns (the program it started runs on).
 */
typedef void (*activation_done_fn)(struct activation *a, const char *error, const char *message, void *userdata);

/* A uid's activation budget (a token bucket; see activation_charge). */
struct activation_bucket {
        uid_t uid;
        uint64_t credit; /* in starts x interval_ms: a start costs interval_ms */
        int64_t at_ms;   /* when credit was computed */
};

struct activation_registry {
        struct event_base *base;
        struct map by_name;
        struct list children; /* struct activation_child: started programs, until reaped */
        struct event *sigchld;
        char **env; /* the activation environment: "KEY=VALUE", NULL-terminated */
        size_t n_env;
        uint32_t timeout_ms; /* limits.activation_timeout_ms */
        enum bus_type type;
        char address[256]; /* the bus's address, for IPCBUS_STARTER_ADDRESS; may be empty */
        activation_done_fn done;
        void *userdata;
        struct activation_bucket *buckets; /* uids that started something recently, unordered */
        size_t n_buckets;
};

/* Returns 0 or a negative errno (the SIGCHLD watch could not be set up). */
int activation_registry_init(struct activation_registry *reg, struct event_base *base, enum bus_type type,
                             uint32_t timeout_ms, activation_done_fn done, void *userdata);
/* Free every activation (their requests must be gone) and forget the children (not killed). */
void activation_registry_deinit(struct activation_registry *reg);

/* The activation in progress for name, or NULL. */
struct activation *activation_find(struct activation_registry *reg, const char *name);

/*
 * Start the service `s` declares. Returns 0 with the new activation, or -1
 * when it cannot even be started: then *ret_error and ret_message (an
 * org.ipcbus.Error.Spawn.* name and an explanation) say why, and there is
 * no activation. The outcome comes through `done`.
 */
int activation_start(struct activation_registry *reg, const struct service *s, struct activation **ret,
                     const char **ret_error, char *ret_message, size_t message_size);

/*
 * Its name has an owner: `done` reports success from the event loop, after
 * what is being handled now (so a RequestName's reply precedes the queued
 * calls). Idempotent.
 */
void activation_owned(struct activation *a);

/* The expected outcomes of this module (util/error.h), never a fault. */
enum {
        ACTIVATION_E_RATE_LIMITED = 1, /* the uid's budget of starts is spent for now */
        ACTIVATION_E_ENV_FULL,         /* the environment would hold more than ACTIVATION_ENV_MAX variables */
};

/*
 * Charge one start to uid, whose budget is a token bucket of per_interval
 * starts refilled at per_interval per interval_ms (limits
 * max_activations_per_uid and activation_interval_ms), at time now_ms
 * (monotonic). Returns 0, ACTIVATION_E_RATE_LIMITED when the bucket is empty
 * (nothing is charged), or -ENOMEM. Buckets that have filled up again are
 * forgotten.
 */
int activation_charge(struct activation_registry *reg, uid_t uid, uint32_t per_interval, uint32_t interval_ms,
                      int64_t now_ms);

/* Variables the activation environment may hold. */
#define ACTIVATION_ENV_MAX 256u

/*
 * Merge KEY=VALUE pairs into the activation environment (a later value for
 * the same key replaces the earlier). Returns 0, ACTIVATION_E_ENV_FULL (more
 * than ACTIVATION_ENV_MAX variables) or -ENOMEM; unchanged on failure.
 */
int activation_update_environment(struct activation_registry *reg, const char *const *keys, const char *const *values,
                                  size_t n);
