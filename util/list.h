/* SPDX-License-Identifier: MIT */
/*
 * An intrusive, circular, doubly-linked list. A `struct list` is either a
 * head or a node embedded in an element; an unlinked node points to itself,
 * so list_unlink() is idempotent and list_is_linked() is exact.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util/util.h"

struct list {
        struct list *prev;
        struct list *next;
};

static inline void list_init(struct list *l)
{
        l->prev = l;
        l->next = l;
}

static inline bool list_is_empty(const struct list *head)
{
        return head->next == head;
}

static inline bool list_is_linked(const struct list *node)
{
        return node->next != node;
}

/* Insert n right after pos. */
static inline void list_link_after(struct list *pos, struct list *n)
{
        n->prev = pos;
        n->next = pos->next;
        pos->next->prev = n;
        pos->next = n;
}

static inline void list_link_head(struct list *head, struct list *n)
{
        list_link_after(head, n);
}

static inline void list_link_tail(struct list *head, struct list *n)
{
        list_link_after(head->prev, n);
}

static inline void list_unlink(struct list *n)
{
        n->prev->next = n->next;
        n->next->prev = n->prev;
        list_init(n);
}

#define list_entry(ptr, type, member) container_of(ptr, type, member)

/* The first element, or NULL when the list is empty. */
#define list_first_entry(head, type, member) (list_is_empty(head) ? NULL : list_entry((head)->next, type, member))

#define list_for_each_entry(pos, head, member)                                                                         \
        for (pos = list_entry((head)->next, __typeof__(*pos), member); &pos->member != (head);                         \
             pos = list_entry(pos->member.next, __typeof__(*pos), member))

/* As list_for_each_entry, but pos may be unlinked (and freed) in the body. */
#define list_for_each_entry_safe(pos, tmp, head, member)                                                               \
        for (pos = list_entry((head)->next, __typeof__(*pos), member),                                                 \
            tmp = list_entry(pos->member.next, __typeof__(*pos), member);                                              \
             &pos->member != (head); pos = tmp, tmp = list_entry(pos->member.next, __typeof__(*pos), member))
