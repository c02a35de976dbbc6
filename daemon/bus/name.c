/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/bus/name.h"
#include "protocol/ipcbus/wire.h"

struct name_entry {
        struct map_node node;
        struct list queue; /* struct name_request.entry_link, primary owner first */
        char name[];
};

struct name_request {
        struct name_entry *entry;
        struct name_owner *owner;
        unsigned flags;
        struct list entry_link;
        struct list owner_link;
};

void name_owner_init(struct name_owner *owner)
{
        list_init(&owner->requests);
        owner->n_requests = 0;
        owner->total = NULL;
}

void name_owner_deinit(struct name_owner *owner)
{
        assert(list_is_empty(&owner->requests));
        assert(owner->n_requests == 0);
}

void name_registry_init(struct name_registry *reg, unsigned max_per_owner, unsigned max_per_total,
                        name_change_fn change, void *userdata)
{
        map_init(&reg->names);
        reg->max_per_owner = max_per_owner;
        reg->max_per_total = max_per_total;
        reg->change = change;
        reg->userdata = userdata;
}

static void name_request_free(struct name_request *req)
{
        list_unlink(&req->entry_link);
        list_unlink(&req->owner_link);
        req->owner->n_requests--;
        if (req->owner->total)
                (*req->owner->total)--;
        free(req);
}

void name_registry_deinit(struct name_registry *reg)
{
        struct map_node *node, *next;

        for (node = map_first(&reg->names); node; node = next) {
                struct name_entry *e = container_of(node, struct name_entry, node);
                struct name_request *req, *tmp;

                next = map_next(&reg->names, node);
                list_for_each_entry_safe(req, tmp, &e->queue, entry_link)
                        name_request_free(req);
                map_remove(&reg->names, node);
                free(e);
        }
        map_deinit(&reg->names);
}

static bool name_entry_eq(const struct map_node *node, const void *key)
{
        return strcmp(container_of(node, struct name_entry, node)->name, key) == 0;
}

static struct name_entry *name_registry_find(const struct name_registry *reg, const char *name)
{
        struct map_node *node = map_find(&reg->names, map_hash_string(name), name_entry_eq, name);

        return node ? container_of(node, struct name_entry, node) : NULL;
}

static struct name_request *name_entry_primary(struct name_entry *e)
{
        return list_first_entry(&e->queue, struct name_request, entry_link);
}

static struct name_request *name_entry_find_request(struct name_entry *e, struct name_owner *owner)
{
        struct name_request *req;

        list_for_each_entry(req, &e->queue, entry_link)
                if (req->owner == owner)
                        return req;
        return NULL;
}

/* A new request of owner for e, linked into the owner's list but not yet into the queue. */
static struct name_request *name_request_new(struct name_entry *e, struct name_owner *owner, unsigned flags)
{
        struct name_request *req = calloc(1, sizeof(*req));

        if (!req)
                return NULL;
        req->entry = e;
        req->owner = owner;
        req->flags = flags;
        list_init(&req->entry_link);
        list_link_tail(&owner->requests, &req->owner_link);
        owner->n_requests++;
        if (owner->total)
                (*owner->total)++;
        return req;
}

static void name_registry_notify(struct name_registry *reg, const char *name, struct name_owner *old_owner,
                                 struct name_owner *new_owner)
{
        if (reg->change)
                reg->change(reg, name, old_owner, new_owner, reg->userdata);
}

/*
 * After a request left e's queue: report the change of primary owner if the
 * one that left (old_primary, NULL if it was only queued) was the owner, and
 * free the entry once its queue is empty. The entry is out of the map before
 * the callback runs, so lookups from it see the new state.
 */
static void name_entry_settle(struct name_registry *reg, struct name_entry *e, struct name_owner *old_primary)
{
        struct name_request *primary = name_entry_primary(e);

        if (!primary)
                map_remove(&reg->names, &e->node);
        if (old_primary)
                name_registry_notify(reg, e->name, old_primary, primary ? primary->owner : NULL);
        if (!primary)
                free(e);
}

/* 0 when the owner may make one more request; else NAME_E_QUOTA or NAME_E_QUOTA_UID (see name_registry_request). */
static int name_owner_quota(const struct name_registry *reg, const struct name_owner *owner)
{
        if (reg->max_per_owner && owner->n_requests >= reg->max_per_owner)
                return NAME_E_QUOTA;
        if (reg->max_per_total && owner->total && *owner->total >= reg->max_per_total)
                return NAME_E_QUOTA_UID;
        return 0;
}

/* A name nobody holds: the caller becomes its primary owner. */
static int name_registry_create(struct name_registry *reg, struct name_owner *owner, const char *name, unsigned flags)
{
        size_t len = strlen(name);
        struct name_entry *e;
        struct name_request *req;
        int r = name_owner_quota(reg, owner);

        if (r)
                return r;

        e = malloc(sizeof(*e) + len + 1);
        if (!e)
                return -ENOMEM;
        memcpy(e->name, name, len + 1);
        list_init(&e->queue);

        if (map_add(&reg->names, &e->node, map_hash_string(name)) < 0) {
                free(e);
                return -ENOMEM;
        }

        req = name_request_new(e, owner, flags);
        if (!req) {
                map_remove(&reg->names, &e->node);
                free(e);
                return -ENOMEM;
        }
        list_link_head(&e->queue, &req->entry_link);
        name_registry_notify(reg, e->name, NULL, owner);
        return 0;
}

int name_registry_request(struct name_registry *reg, struct name_owner *owner, const char *name, unsigned flags,
                          unsigned *ret_result)
{
        struct name_entry *e = name_registry_find(reg, name);
        struct name_request *primary, *mine;
        int r;

        if (!e) {
                r = name_registry_create(reg, owner, name, flags);
                if (r)
                        return r;
                *ret_result = IPCBUS_REQUEST_NAME_PRIMARY_OWNER;
                return 0;
        }

        primary = name_entry_primary(e);
        if (primary->owner == owner) {
                primary->flags = flags;
                *ret_result = IPCBUS_REQUEST_NAME_ALREADY_OWNER;
                return 0;
        }

        mine = name_entry_find_request(e, owner);

        if ((primary->flags & IPCBUS_NAME_ALLOW_REPLACEMENT) && (flags & IPCBUS_NAME_REPLACE_EXISTING)) {
                struct name_owner *old_owner = primary->owner;

                if (mine) {
                        list_unlink(&mine->entry_link);
                } else {
                        r = name_owner_quota(reg, owner);
                        if (r)
                                return r;
                        mine = name_request_new(e, owner, flags);
                        if (!mine)
                                return -ENOMEM;
                }
                mine->flags = flags;
                /* The new owner goes to the head; the old one is now second, at the
                 * head of the waiting part, unless it did not want to wait. */
                list_link_head(&e->queue, &mine->entry_link);
                if (primary->flags & IPCBUS_NAME_DO_NOT_QUEUE)
                        name_request_free(primary);
                name_registry_notify(reg, e->name, old_owner, owner);
                *ret_result = IPCBUS_REQUEST_NAME_PRIMARY_OWNER;
                return 0;
        }

        if (flags & IPCBUS_NAME_DO_NOT_QUEUE) {
                /* As in D-Bus: one that will not wait cannot stay in the queue either. */
                if (mine)
                        name_request_free(mine);
                *ret_result = IPCBUS_REQUEST_NAME_EXISTS;
                return 0;
        }

        if (mine) {
                mine->flags = flags;
        } else {
                r = name_owner_quota(reg, owner);
                if (r)
                        return r;
                mine = name_request_new(e, owner, flags);
                if (!mine)
                        return -ENOMEM;
                list_link_tail(&e->queue, &mine->entry_link);
        }
        *ret_result = IPCBUS_REQUEST_NAME_IN_QUEUE;
        return 0;
}

unsigned name_registry_release(struct name_registry *reg, struct name_owner *owner, const char *name)
{
        struct name_entry *e = name_registry_find(reg, name);
        struct name_request *req;
        bool was_primary;

        if (!e)
                return IPCBUS_RELEASE_NAME_NON_EXISTENT;

        req = name_entry_find_request(e, owner);
        if (!req)
                return IPCBUS_RELEASE_NAME_NOT_OWNER;

        was_primary = name_entry_primary(e) == req;
        name_request_free(req);
        name_entry_settle(reg, e, was_primary ? owner : NULL);
        return IPCBUS_RELEASE_NAME_RELEASED;
}

void name_registry_remove_owner(struct name_registry *reg, struct name_owner *owner)
{
        struct name_request *req;

        /* One request at a time, each fully settled before the callback runs,
         * so the callback always sees a consistent registry. */
        while ((req = list_first_entry(&owner->requests, struct name_request, owner_link))) {
                struct name_entry *e = req->entry;
                bool was_primary = name_entry_primary(e) == req;

                name_request_free(req);
                name_entry_settle(reg, e, was_primary ? owner : NULL);
        }
}

struct name_owner *name_registry_lookup(const struct name_registry *reg, const char *name)
{
        struct name_entry *e = name_registry_find(reg, name);

        return e ? name_entry_primary(e)->owner : NULL;
}

size_t name_registry_size(const struct name_registry *reg)
{
        return map_size(&reg->names);
}

void name_registry_foreach(const struct name_registry *reg, name_foreach_fn fn, void *userdata)
{
        for (struct map_node *node = map_first(&reg->names); node; node = map_next(&reg->names, node)) {
                struct name_entry *e = container_of(node, struct name_entry, node);

                fn(e->name, name_entry_primary(e)->owner, userdata);
        }
}

int name_registry_foreach_queued(const struct name_registry *reg, const char *name, name_queue_fn fn, void *userdata)
{
        struct name_entry *e = name_registry_find(reg, name);
        struct name_request *req;

        if (!e)
                return NAME_E_NOT_FOUND;
        list_for_each_entry(req, &e->queue, entry_link)
                fn(req->owner, req->flags, userdata);
        return 0;
}

bool name_owner_owns_any(const struct name_owner *owner, bool (*pred)(const char *name, const void *arg),
                         const void *arg)
{
        struct name_request *req;

        list_for_each_entry(req, &owner->requests, owner_link)
                if (name_entry_primary(req->entry) == req && pred(req->entry->name, arg))
                        return true;
        return false;
}
