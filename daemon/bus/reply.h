/* SPDX-License-Identifier: MIT */
/*
 * Pending replies (PROTOCOL.md 10): one slot per call that awaits an answer,
 * keyed by (caller, serial), linked into the caller's and the callee's lists
 * and armed with a deadline timer on the event loop. Callers and callees are
 * `struct reply_owner` anchors embedded in the caller's connection object.
 */
#pragma once

#include <stdint.h>

#include "util/list.h"
#include "util/map.h"

struct event;
struct event_base;
struct timeval;

struct reply_owner {
        struct list as_caller; /* struct reply_slot.caller_link */
        struct list as_callee; /* struct reply_slot.callee_link */
        unsigned n_calls;      /* slots as caller */
        unsigned *total;       /* a shared count n_calls is part of (e.g. per uid); NULL: none */
};

struct reply_registry;

struct reply_slot {
        struct reply_registry *reg;
        struct map_node node;
        struct reply_owner *caller;
        struct reply_owner *callee;
        uint32_t serial;     /* the call's serial, chosen by the caller */
        uint32_t timeout_ms; /* the deadline it was given */
        struct event *timer;
        struct list caller_link;
        struct list callee_link;
        /* The name the caller sent the call to, when not the callee's unique
         * name ("" otherwise): what the caller is told on Timeout or NoReply. */
        char destination[];
};

/* The deadline passed. The registry frees the slot after this returns. */
typedef void (*reply_timeout_fn)(struct reply_slot *slot, void *userdata);

struct reply_registry {
        struct event_base *base;
        struct map slots;
        uint32_t default_timeout_ms;
        const struct timeval *common_timeout; /* libevent's O(1) queue for the default */
        reply_timeout_fn timeout;
        void *userdata;
};

void reply_owner_init(struct reply_owner *owner);
/* The owner must be in no slot any more. */
void reply_owner_deinit(struct reply_owner *owner);

void reply_registry_init(struct reply_registry *reg, struct event_base *base, uint32_t default_timeout_ms,
                         reply_timeout_fn timeout, void *userdata);
/* A new default deadline, for slots made from now on. */
void reply_registry_set_default_timeout(struct reply_registry *reg, uint32_t default_timeout_ms);
/* Free every slot still pending, without calling the timeout callback. */
void reply_registry_deinit(struct reply_registry *reg);

/* The expected outcomes of this module (util/error.h), never a fault. */
enum {
        REPLY_E_SERIAL_IN_USE = 1, /* the caller already awaits an answer to this serial */
};

/*
 * Record that caller awaits callee's answer to the call `serial`, sent to
 * `destination` (NULL or a unique name: none kept; the slot grows by a
 * well-known name's length, at most IPCBUS_NAME_MAX); the timer runs
 * timeout_ms (0: the registry's default). Returns 0 with *ret_slot (may be
 * NULL), REPLY_E_SERIAL_IN_USE when caller already awaits an answer to this
 * serial (nothing recorded), or -ENOMEM.
 */
int reply_slot_new(struct reply_registry *reg, struct reply_owner *caller, struct reply_owner *callee, uint32_t serial,
                   const char *destination, uint32_t timeout_ms, struct reply_slot **ret_slot);
void reply_slot_free(struct reply_slot *slot);

/* The slot of caller's call `serial`, or NULL. */
struct reply_slot *reply_slot_find(struct reply_registry *reg, struct reply_owner *caller, uint32_t serial);
