/* SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <stdlib.h>

#include "util/bufcache.h"

static struct {
        void *p;
        size_t cap;
} slots[BUFCACHE_SLOTS];
static size_t kept; /* the caps of the buffers in slots[], summed */
static size_t max_size = BUFCACHE_MAX, keep_max = BUFCACHE_KEEP_MAX;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void *bufcache_alloc(size_t size, size_t *ret_cap)
{
        void *p = NULL;

        if (size >= BUFCACHE_MIN && size <= max_size) {
                size_t best = BUFCACHE_SLOTS;

                pthread_mutex_lock(&lock);
                for (size_t i = 0; i < BUFCACHE_SLOTS; i++)
                        if (slots[i].p && slots[i].cap >= size && slots[i].cap / 2 <= size &&
                            (best == BUFCACHE_SLOTS || slots[i].cap < slots[best].cap))
                                best = i;
                if (best < BUFCACHE_SLOTS) {
                        p = slots[best].p;
                        size = slots[best].cap;
                        slots[best].p = NULL;
                        kept -= size;
                }
                pthread_mutex_unlock(&lock);
        }
        if (!p)
                p = malloc(size);
        if (p)
                *ret_cap = size;
        return p;
}

void bufcache_free(void *p, size_t cap)
{
        if (!p)
                return;
        if (cap >= BUFCACHE_MIN && cap <= max_size) {
                size_t smallest = 0;

                pthread_mutex_lock(&lock);
                /* An empty slot, else the smallest kept buffer makes way for a bigger one. */
                for (size_t i = 0; i < BUFCACHE_SLOTS; i++) {
                        if (!slots[i].p) {
                                smallest = i;
                                break;
                        }
                        if (slots[i].cap < slots[smallest].cap)
                                smallest = i;
                }
                /* ... as long as what is kept stays within its bound */
                if ((!slots[smallest].p || slots[smallest].cap < cap) &&
                    kept - (slots[smallest].p ? slots[smallest].cap : 0) + cap <= keep_max) {
                        void *old = slots[smallest].p;

                        kept -= old ? slots[smallest].cap : 0;
                        kept += cap;
                        slots[smallest].p = p;
                        slots[smallest].cap = cap;
                        p = old;
                }
                pthread_mutex_unlock(&lock);
        }
        free(p);
}

void bufcache_trim(void)
{
        pthread_mutex_lock(&lock);
        for (size_t i = 0; i < BUFCACHE_SLOTS; i++) {
                free(slots[i].p);
                slots[i].p = NULL;
        }
        kept = 0;
        pthread_mutex_unlock(&lock);
}

size_t bufcache_kept(void)
{
        size_t n;

        pthread_mutex_lock(&lock);
        n = kept;
        pthread_mutex_unlock(&lock);
        return n;
}

void bufcache_set_limits(size_t max, size_t keep)
{
        pthread_mutex_lock(&lock);
        max_size = max;
        keep_max = keep;
        pthread_mutex_unlock(&lock);
}
