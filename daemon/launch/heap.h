/* SPDX-License-Identifier: MIT */
/*
 * The broker's heap. Messages come and go in the same sizes all the time, so
 * memory freed by one is kept for the next instead of going back to the
 * kernel (which would cost page faults on every large message); what is
 * left free goes back once the bus has been idle for a second.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct event;
struct event_base;

struct heap_trimmer {
        struct event *timer;
        const uint64_t *activity; /* a count that moves while the bus works */
        uint64_t seen;            /* its value at the last tick */
        bool trimmed;             /* nothing happened since the last trim */
};

/* Tell malloc to keep freed memory (no trimming, no mmap per large buffer). Call first. */
void heap_tune(void);

/*
 * Check once a second whether *activity moved; after a second without, give
 * the free heap back to the kernel. Returns 0 or -ENOMEM.
 */
int heap_trimmer_start(struct heap_trimmer *t, struct event_base *base, const uint64_t *activity);
void heap_trimmer_stop(struct heap_trimmer *t);
