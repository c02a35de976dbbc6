/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <malloc.h>
#include <stdbool.h>

#include <event2/event.h>

#include "daemon/launch/heap.h"
#include "util/bufcache.h"

/* Large buffers up to this size come from the heap and stay there when freed
 * (glibc's ceiling for this setting; larger ones are mapped each time). */
#define HEAP_MMAP_THRESHOLD (32u * 1024u * 1024u)
/* Free memory at the top of the heap that free() does not return by itself:
 * the idle trim does. */
#define HEAP_TRIM_THRESHOLD (256u * 1024u * 1024u)
/* The frames the broker reads into buffers of their own are at most a little
 * over 1 MiB (CONNECTION_RESERVE_MAX): the cache keeps those, and bigger ones
 * go back to the heap, which keeps them anyway until the bus is idle. */
#define HEAP_BUFCACHE_MAX (1280u * 1024u)
void heap_tune(void)
{
        /* Setting them also stops glibc from moving them with each large free. */
        mallopt(M_MMAP_THRESHOLD, (int) HEAP_MMAP_THRESHOLD);
        mallopt(M_TRIM_THRESHOLD, (int) HEAP_TRIM_THRESHOLD);
        bufcache_set_limits(HEAP_BUFCACHE_MAX, BUFCACHE_SLOTS * HEAP_BUFCACHE_MAX);
}

static void heap_on_tick(evutil_socket_t fd, short what, void *userdata)
{
        struct heap_trimmer *t = userdata;

        if (*t->activity != t->seen) {
                t->seen = *t->activity;
                t->trimmed = false;
                return;
        }
        if (!t->trimmed) {
                bufcache_trim();
                malloc_trim(0);
        }
        t->trimmed = true;
}

int heap_trimmer_start(struct heap_trimmer *t, struct event_base *base, const uint64_t *activity)
{
        const struct timeval second = {.tv_sec = 1};

        *t = (struct heap_trimmer){.activity = activity, .seen = *activity};
        t->timer = event_new(base, -1, EV_PERSIST, heap_on_tick, t);
        if (!t->timer || event_add(t->timer, &second) < 0) {
                heap_trimmer_stop(t);
                return -ENOMEM;
        }
        return 0;
}

void heap_trimmer_stop(struct heap_trimmer *t)
{
        if (t->timer)
                event_free(t->timer);
        t->timer = NULL;
}
