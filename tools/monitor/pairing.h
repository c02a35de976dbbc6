/* SPDX-License-Identifier: MIT */
/*
 * Calls paired with their answers: ipc-monitor remembers each call it sees
 * that expects an answer, and tells a return or error which call it answers
 * and after how long. Bounded: the oldest calls are forgotten first.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "tools/monitor/event.h"

/* A call seen and not yet answered. Strings owned by the pairing. */
struct mon_call {
        char *sender; /* the caller's unique name */
        uint32_t serial;
        char *destination; /* as the caller addressed it (a well-known name or a unique one) */
        char *path;
        char *interface; /* NULL when the call named none */
        char *member;
        struct timespec ts;   /* when the call was seen */
        uint64_t deadline_ms; /* the call's timeout_ms, or the broker's default when it gave none */
};

struct pairing;

int pairing_new(struct pairing **ret);
struct pairing *pairing_free(struct pairing *p);

/*
 * Feed every event, in order. A call that expects an answer is remembered; a
 * return or error addressed to a caller with the reply_serial of one of its
 * remembered calls gets ev->call and ev->latency_usec, and the call is
 * forgotten at the next feed. Returns 0 or -ENOMEM.
 */
int pairing_feed(struct pairing *p, struct mon_event *ev);

/*
 * Forget the calls unanswered for longer than their deadline (plus a grace
 * of a second: the broker's Timeout error comes at the deadline) at now
 * (CLOCK_REALTIME, as event times), calling expired for each first.
 */
void pairing_expire(struct pairing *p, const struct timespec *now,
                    void (*expired)(const struct mon_call *call, void *userdata), void *userdata);

/* Calls remembered and not yet answered. */
size_t pairing_in_flight(const struct pairing *p);
