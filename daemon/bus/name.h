/* SPDX-License-Identifier: MIT */
/*
 * The name registry (PROTOCOL.md 7.3): each well-known name has a FIFO queue
 * of (owner, flags) requests whose head is the primary owner. A pure data
 * structure: owners are `struct name_owner` anchors that the caller embeds in
 * whatever represents a connection; the registry never looks further.
 *
 * Every change of primary owner is reported through the registry's change
 * callback, once the registry is consistent again, so the caller can emit
 * NameLost / NameAcquired / NameOwnerChanged. The callback may look names up
 * but must not modify the registry.
 */
#pragma once

#include <stdbool.h>

#include "util/list.h"
#include "util/map.h"

/* One connection's requests, in the order it made them. */
struct name_owner {
        struct list requests; /* struct name_request.owner_link */
        unsigned n_requests;
        unsigned *total; /* a shared count the requests are part of (e.g. per uid); NULL: none */
};

struct name_registry;

/* old_owner / new_owner are NULL for "none". */
typedef void (*name_change_fn)(struct name_registry *reg, const char *name, struct name_owner *old_owner,
                               struct name_owner *new_owner, void *userdata);

struct name_registry {
        struct map names;       /* struct name_entry by name */
        unsigned max_per_owner; /* queue entries one owner may hold; 0 = unlimited */
        unsigned max_per_total; /* queue entries counted in one owner's *total; 0 = unlimited */
        name_change_fn change;
        void *userdata;
};

void name_owner_init(struct name_owner *owner);
/* The owner must hold no request any more (name_registry_remove_owner). */
void name_owner_deinit(struct name_owner *owner);

void name_registry_init(struct name_registry *reg, unsigned max_per_owner, unsigned max_per_total,
                        name_change_fn change, void *userdata);
/* Drop every entry without reporting changes. */
void name_registry_deinit(struct name_registry *reg);

/*
 * The expected outcomes of this module (util/error.h): positive codes that
 * the caller must handle, never a fault.
 */
enum {
        NAME_E_QUOTA = 1, /* the owner would hold more than max_per_owner requests */
        NAME_E_QUOTA_UID, /* the owner's *total would exceed max_per_total requests */
        NAME_E_NOT_FOUND, /* the name has no owner */
};

/*
 * RequestName: the caller must have checked `name` is a valid well-known name.
 * Sets *ret_result to an IPCBUS_REQUEST_NAME_* code and returns 0, or returns
 * -ENOMEM, NAME_E_QUOTA when the owner would hold more than max_per_owner
 * requests, or NAME_E_QUOTA_UID when its *total would exceed max_per_total
 * requests (nothing changed on failure).
 */
int name_registry_request(struct name_registry *reg, struct name_owner *owner, const char *name, unsigned flags,
                          unsigned *ret_result);

/* ReleaseName: returns an IPCBUS_RELEASE_NAME_* code. */
unsigned name_registry_release(struct name_registry *reg, struct name_owner *owner, const char *name);

/* Remove the owner from every queue (disconnect), reporting each lost name. */
void name_registry_remove_owner(struct name_registry *reg, struct name_owner *owner);

/* The primary owner of name, or NULL. */
struct name_owner *name_registry_lookup(const struct name_registry *reg, const char *name);

/* Whether the owner is the primary owner of a name for which pred(name, arg) holds. */
bool name_owner_owns_any(const struct name_owner *owner, bool (*pred)(const char *name, const void *arg),
                         const void *arg);

/* Number of names that have an owner. */
size_t name_registry_size(const struct name_registry *reg);

typedef void (*name_foreach_fn)(const char *name, struct name_owner *primary, void *userdata);
/* Call fn for every owned name. fn must not modify the registry. */
void name_registry_foreach(const struct name_registry *reg, name_foreach_fn fn, void *userdata);

typedef void (*name_queue_fn)(struct name_owner *owner, unsigned flags, void *userdata);
/* Call fn for each request in name's queue, primary owner first. Returns 0,
 * or NAME_E_NOT_FOUND when the name has no owner. */
int name_registry_foreach_queued(const struct name_registry *reg, const char *name, name_queue_fn fn, void *userdata);
