/* SPDX-License-Identifier: MIT */
/*
 * Calls paired with their answers: a hash of the calls awaiting an answer by
 * (caller, serial), and a list of them in the order they came, so that the
 * oldest are forgotten first when too many wait and expiry looks at each
 * once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tools/monitor/pairing.h"
#include "util/list.h"
#include "util/map.h"
#include "util/util.h"

/* Calls remembered at most: a monitor that sees more unanswered calls forgets the oldest. */
#define PAIRING_CALLS_MAX 8192u
/* The broker's reply_timeout_ms (daemon/launch/config.c), for a call that names none. */
#define PAIRING_DEFAULT_TIMEOUT_MS 25000u
/* The broker's Timeout error comes at the deadline; an answer lost on the way is called unanswered this much later. */
#define PAIRING_GRACE_MS 1000u

struct pairing_entry {
        struct mon_call call;
        struct map_node node;
        struct list link; /* in pairing.calls, oldest first */
};

struct pairing {
        struct map by_key;
        struct list calls;
        struct pairing_entry *answered; /* the call the last event answered, freed at the next feed */
};

struct pairing_key {
        const char *sender;
        uint32_t serial;
};

int pairing_new(struct pairing **ret)
{
        struct pairing *p = calloc(1, sizeof(*p));

        if (!p)
                return -ENOMEM;
        map_init(&p->by_key);
        list_init(&p->calls);
        *ret = p;
        return 0;
}

static void pairing_entry_free(struct pairing_entry *e)
{
        if (!e)
                return;
        free(e->call.sender);
        free(e->call.destination);
        free(e->call.path);
        free(e->call.interface);
        free(e->call.member);
        free(e);
}

/* Unlink e from the pairing (it stays allocated). */
static void pairing_unlink(struct pairing *p, struct pairing_entry *e)
{
        map_remove(&p->by_key, &e->node);
        list_unlink(&e->link);
}

struct pairing *pairing_free(struct pairing *p)
{
        struct pairing_entry *e, *tmp;

        if (!p)
                return NULL;
        list_for_each_entry_safe(e, tmp, &p->calls, link) {
                pairing_unlink(p, e);
                pairing_entry_free(e);
        }
        pairing_entry_free(p->answered);
        map_deinit(&p->by_key);
        free(p);
        return NULL;
}

static uint64_t pairing_hash(const char *sender, uint32_t serial)
{
        return map_hash_string(sender) ^ (serial * UINT64_C(0x9e3779b97f4a7c15));
}

static bool pairing_eq(const struct map_node *node, const void *key)
{
        const struct mon_call *c = &container_of(node, struct pairing_entry, node)->call;
        const struct pairing_key *k = key;

        return c->serial == k->serial && strcmp(c->sender, k->sender) == 0;
}

/* strdup that keeps NULL; *failed set when it runs out of memory. */
static char *pairing_strdup(const char *s, bool *failed)
{
        char *d;

        if (!s)
                return NULL;
        d = strdup(s);
        if (!d)
                *failed = true;
        return d;
}

/* Remember the call ev is. Returns 0 or -ENOMEM. */
static int pairing_remember(struct pairing *p, const struct mon_event *ev)
{
        const struct msg_header *h = &ev->msg->h;
        struct pairing_key key = {h->sender, h->serial};
        uint64_t hash = pairing_hash(h->sender, h->serial);
        struct pairing_entry *e;
        bool failed = false;

        /* a serial used again (a broken client, or one that wrapped) replaces the old call */
        struct map_node *old = map_find(&p->by_key, hash, pairing_eq, &key);
        if (old) {
                e = container_of(old, struct pairing_entry, node);
                pairing_unlink(p, e);
                pairing_entry_free(e);
        }
        if (map_size(&p->by_key) >= PAIRING_CALLS_MAX) {
                e = list_first_entry(&p->calls, struct pairing_entry, link);
                pairing_unlink(p, e);
                pairing_entry_free(e);
        }
        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->call.serial = h->serial;
        e->call.ts = ev->ts;
        e->call.deadline_ms = h->timeout_ms ? h->timeout_ms : PAIRING_DEFAULT_TIMEOUT_MS;
        e->call.sender = pairing_strdup(h->sender, &failed);
        e->call.destination = pairing_strdup(h->destination, &failed);
        e->call.path = pairing_strdup(h->path, &failed);
        e->call.interface = pairing_strdup(h->interface, &failed);
        e->call.member = pairing_strdup(h->member, &failed);
        list_init(&e->link);
        if (failed || map_add(&p->by_key, &e->node, hash) < 0) {
                pairing_entry_free(e);
                return -ENOMEM;
        }
        list_link_tail(&p->calls, &e->link);
        return 0;
}

/* Microseconds from a to b, 0 when b is not after a. */
static uint64_t pairing_usec_between(const struct timespec *a, const struct timespec *b)
{
        int64_t usec = ((int64_t) b->tv_sec - a->tv_sec) * 1000000 + (b->tv_nsec - a->tv_nsec) / 1000;

        return usec > 0 ? (uint64_t) usec : 0;
}

int pairing_feed(struct pairing *p, struct mon_event *ev)
{
        const struct msg_header *h = &ev->msg->h;
        struct pairing_key key;
        struct map_node *node;

        pairing_entry_free(p->answered);
        p->answered = NULL;
        ev->call = NULL;
        ev->latency_usec = 0;
        switch (h->type) {
        case MSG_CALL:
                if (h->no_reply || !h->sender)
                        return 0;
                return pairing_remember(p, ev);
        case MSG_RETURN:
        case MSG_ERROR:
                if (!h->destination || !h->reply_serial)
                        return 0;
                key = (struct pairing_key){h->destination, h->reply_serial};
                node = map_find(&p->by_key, pairing_hash(key.sender, key.serial), pairing_eq, &key);
                if (!node)
                        return 0;
                p->answered = container_of(node, struct pairing_entry, node);
                pairing_unlink(p, p->answered);
                ev->call = &p->answered->call;
                ev->latency_usec = pairing_usec_between(&p->answered->call.ts, &ev->ts);
                return 0;
        default:
                return 0;
        }
}

void pairing_expire(struct pairing *p, const struct timespec *now,
                    void (*expired)(const struct mon_call *call, void *userdata), void *userdata)
{
        struct pairing_entry *e, *tmp;

        list_for_each_entry_safe(e, tmp, &p->calls, link) {
                if (pairing_usec_between(&e->call.ts, now) <= (e->call.deadline_ms + PAIRING_GRACE_MS) * 1000)
                        continue;
                if (expired)
                        expired(&e->call, userdata);
                pairing_unlink(p, e);
                pairing_entry_free(e);
        }
}

size_t pairing_in_flight(const struct pairing *p)
{
        return map_size(&p->by_key);
}
