/* SPDX-License-Identifier: MIT */
/*
 * A FIFO of message references (a growing ring): what a connection has
 * queued to write, on either side, or parsed and not yet dispatched.
 */
#pragma once

#include <stddef.h>

struct msg;

struct msg_queue {
        struct msg **items;
        size_t head;
        size_t len;
        size_t cap;
};

/* Append m to q, taking a new reference. Returns 0 or -ENOMEM (q unchanged). */
int msg_queue_push(struct msg_queue *q, struct msg *m);
/* The i-th queued message (0 is the oldest), borrowed; NULL past the end. */
struct msg *msg_queue_at(const struct msg_queue *q, size_t i);
/* Remove the oldest message; the caller gets the queue's reference (NULL when empty). */
struct msg *msg_queue_pop(struct msg_queue *q);
/* Drop every reference and the ring itself; q is empty and reusable after. */
void msg_queue_clear(struct msg_queue *q);
