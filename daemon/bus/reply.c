/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "daemon/bus/reply.h"

struct reply_key {
        const struct reply_owner *caller;
        uint32_t serial;
};

void reply_owner_init(struct reply_owner *owner)
{
        list_init(&owner->as_caller);
        list_init(&owner->as_callee);
        owner->n_calls = 0;
        owner->total = NULL;
}

void reply_owner_deinit(struct reply_owner *owner)
{
        assert(list_is_empty(&owner->as_caller));
        assert(list_is_empty(&owner->as_callee));
}

void reply_registry_init(struct reply_registry *reg, struct event_base *base, uint32_t default_timeout_ms,
                         reply_timeout_fn timeout, void *userdata)
{
        struct timeval tv = {
                .tv_sec = default_timeout_ms / 1000,
                .tv_usec = (default_timeout_ms % 1000) * 1000,
        };

        reg->base = base;
        map_init(&reg->slots);
        reg->default_timeout_ms = default_timeout_ms;
        /* Most calls use the default: a common timeout keeps adding them O(1).
         * NULL (no common queue) just means plain timers. */
        reg->common_timeout = event_base_init_common_timeout(base, &tv);
        reg->timeout = timeout;
        reg->userdata = userdata;
}

void reply_registry_set_default_timeout(struct reply_registry *reg, uint32_t default_timeout_ms)
{
        const struct timeval tv = {
                .tv_sec = default_timeout_ms / 1000,
                .tv_usec = (default_timeout_ms % 1000) * 1000,
        };

        if (default_timeout_ms == reg->default_timeout_ms)
                return;
        /* Slots already waiting keep their timers; new ones use the new queue. */
        reg->default_timeout_ms = default_timeout_ms;
        reg->common_timeout = event_base_init_common_timeout(reg->base, &tv);
}

void reply_registry_deinit(struct reply_registry *reg)
{
        struct map_node *node;

        while ((node = map_first(&reg->slots)))
                reply_slot_free(container_of(node, struct reply_slot, node));
        map_deinit(&reg->slots);
}

static uint64_t reply_key_hash(const struct reply_owner *caller, uint32_t serial)
{
        /* Hash the two fields, not struct reply_key with its padding. */
        uint8_t bytes[sizeof(caller) + sizeof(serial)];

        memcpy(bytes, &caller, sizeof(caller));
        memcpy(bytes + sizeof(caller), &serial, sizeof(serial));
        return map_hash(bytes, sizeof(bytes));
}

static bool reply_slot_eq(const struct map_node *node, const void *key)
{
        const struct reply_slot *slot = container_of(node, struct reply_slot, node);
        const struct reply_key *k = key;

        return slot->caller == k->caller && slot->serial == k->serial;
}

struct reply_slot *reply_slot_find(struct reply_registry *reg, struct reply_owner *caller, uint32_t serial)
{
        struct reply_key key = {caller, serial};
        struct map_node *node = map_find(&reg->slots, reply_key_hash(caller, serial), reply_slot_eq, &key);

        return node ? container_of(node, struct reply_slot, node) : NULL;
}

static void reply_slot_on_timeout(evutil_socket_t fd, short what, void *userdata)
{
        struct reply_slot *slot = userdata;
        struct reply_registry *reg = slot->reg;

        if (reg->timeout)
                reg->timeout(slot, reg->userdata);
        reply_slot_free(slot);
}

int reply_slot_new(struct reply_registry *reg, struct reply_owner *caller, struct reply_owner *callee, uint32_t serial,
                   const char *destination, uint32_t timeout_ms, struct reply_slot **ret_slot)
{
        /* A unique name (already checked: its ':' tells it) is the callee's own: the caller is told it anyway. */
        size_t len = destination && destination[0] != ':' ? strlen(destination) : 0;
        struct reply_slot *slot;
        const struct timeval *tv;
        struct timeval tv_own;

        if (reply_slot_find(reg, caller, serial))
                return REPLY_E_SERIAL_IN_USE;

        slot = calloc(1, sizeof(*slot) + len + 1);
        if (!slot)
                return -ENOMEM;
        memcpy(slot->destination, destination ? destination : "", len);
        slot->reg = reg;
        slot->caller = caller;
        slot->callee = callee;
        slot->serial = serial;
        slot->timeout_ms = timeout_ms ? timeout_ms : reg->default_timeout_ms;
        slot->timer = evtimer_new(reg->base, reply_slot_on_timeout, slot);
        if (!slot->timer)
                goto fail;

        if (slot->timeout_ms == reg->default_timeout_ms && reg->common_timeout) {
                tv = reg->common_timeout;
        } else {
                tv_own.tv_sec = slot->timeout_ms / 1000;
                tv_own.tv_usec = (slot->timeout_ms % 1000) * 1000;
                tv = &tv_own;
        }
        if (evtimer_add(slot->timer, tv) < 0)
                goto fail;

        if (map_add(&reg->slots, &slot->node, reply_key_hash(caller, serial)) < 0)
                goto fail;

        list_link_tail(&caller->as_caller, &slot->caller_link);
        list_link_tail(&callee->as_callee, &slot->callee_link);
        caller->n_calls++;
        if (caller->total)
                (*caller->total)++;
        if (ret_slot)
                *ret_slot = slot;
        return 0;

fail:
        if (slot->timer)
                event_free(slot->timer);
        free(slot);
        return -ENOMEM;
}

void reply_slot_free(struct reply_slot *slot)
{
        if (!slot)
                return;
        map_remove(&slot->reg->slots, &slot->node);
        list_unlink(&slot->caller_link);
        list_unlink(&slot->callee_link);
        slot->caller->n_calls--;
        if (slot->caller->total)
                (*slot->caller->total)--;
        event_free(slot->timer);
        free(slot);
}
