/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>

#include "protocol/message.h"
#include "protocol/msg-queue.h"

int msg_queue_push(struct msg_queue *q, struct msg *m)
{
        if (q->len == q->cap) {
                size_t cap = q->cap ? q->cap * 2 : 16;
                struct msg **items = calloc(cap, sizeof(*items));

                if (!items)
                        return -ENOMEM;
                for (size_t i = 0; i < q->len; i++)
                        items[i] = q->items[(q->head + i) % q->cap];
                free(q->items);
                q->items = items;
                q->cap = cap;
                q->head = 0;
        }
        q->items[(q->head + q->len) % q->cap] = msg_ref(m);
        q->len++;
        return 0;
}

struct msg *msg_queue_at(const struct msg_queue *q, size_t i)
{
        return i < q->len ? q->items[(q->head + i) % q->cap] : NULL;
}

struct msg *msg_queue_pop(struct msg_queue *q)
{
        struct msg *m;

        if (q->len == 0)
                return NULL;
        m = q->items[q->head];
        q->head = (q->head + 1) % q->cap;
        q->len--;
        return m;
}

void msg_queue_clear(struct msg_queue *q)
{
        while (q->len > 0)
                msg_unref(msg_queue_pop(q));
        free(q->items);
        *q = (struct msg_queue){0};
}
