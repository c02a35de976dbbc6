/* SPDX-License-Identifier: MIT */
/*
 * ipc-soak: what its processes share. The parent (soak.c) runs the broker,
 * forks the services (service.c) and the client processes (client.c), kills
 * some of them now and then, and at the end checks the ledgers the client
 * processes send back and the broker's memory and descriptors.
 *
 * A child process finds its control pipe at SOAK_CTL_FD (end of file there
 * means "stop") and, for a client process that keeps a ledger, the write end
 * of its report pipe at SOAK_REPORT_FD.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define SOAK_PATH "/org/ipcbus/Soak"
#define SOAK_INTERFACE "org.ipcbus.Soak"
#define SOAK_NAME_PREFIX "org.ipcbus.Soak.S" /* + the service's index */
#define SOAK_SERVICES_MAX 32                 /* a client's subscriptions are a 32-bit mask */

#define SOAK_CTL_FD 3
#define SOAK_REPORT_FD 4

/* Slow answers after a random delay up to this. */
#define SOAK_SLOW_MAX_MS 200

static inline uint64_t soak_now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* A small deterministic generator (splitmix64): every process gets its own stream of --seed. */
struct rng {
        uint64_t state;
};

static inline uint64_t rng_next(struct rng *r)
{
        uint64_t z = (r->state += UINT64_C(0x9e3779b97f4a7c15));

        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

/* Seed a stream: the same (seed, role, index) gives the same numbers. */
static inline void rng_init(struct rng *r, uint64_t seed, uint64_t role, uint64_t index)
{
        r->state = seed;
        r->state = rng_next(r) ^ (role << 48) ^ index;
        (void) rng_next(r);
}

/* Uniform in [0, n); 0 when n is 0. */
static inline uint64_t rng_below(struct rng *r, uint64_t n)
{
        return n ? rng_next(r) % n : 0;
}

/* True with probability percent/100. */
static inline bool rng_chance(struct rng *r, unsigned percent)
{
        return rng_below(r, 100) < percent;
}

/* The errors a ledger counts by name; anything else is SOAK_ERR_OTHER. */
enum soak_error {
        SOAK_ERR_NO_REPLY,        /* the service died with the call */
        SOAK_ERR_TIMEOUT,         /* the broker's deadline passed */
        SOAK_ERR_SERVICE_UNKNOWN, /* the service was down */
        SOAK_ERR_OTHER,
        SOAK_ERR_MAX,
};

/* How often an error name came, for the names outside enum soak_error. */
#define SOAK_OTHER_NAMES 8
struct soak_named_count {
        char name[64];
        uint64_t count;
};

/* Add n to name's entry in a table of SOAK_OTHER_NAMES (names beyond that are not itemised). */
static inline void soak_named_add(struct soak_named_count *table, const char *name, uint64_t n)
{
        for (unsigned i = 0; i < SOAK_OTHER_NAMES; i++) {
                if (table[i].name[0] == '\0')
                        snprintf(table[i].name, sizeof(table[i].name), "%s", name);
                if (strcmp(table[i].name, name) == 0) {
                        table[i].count += n;
                        return;
                }
        }
}

/*
 * What one client process saw (written once, in one write: it is below
 * PIPE_BUF, which the static assertion in client.c checks). Every call sent ends in exactly one of: a return, an error,
 * abandoned (its client closed on purpose), unanswered (the settle time ran
 * out, or the broker hung up on its client).
 */
struct soak_ledger {
        int32_t error;                                   /* 0, or the negative errno that stopped the process */
        uint32_t n_clients;                              /* connections the process ran */
        uint64_t calls;                                  /* Echo and Slow calls sent */
        uint64_t returns;                                /* answered with the call's own body, as Echo and Slow do */
        uint64_t bad_returns;                            /* a return with another body */
        uint64_t errors[SOAK_ERR_MAX];                   /* answered with an error */
        struct soak_named_count other[SOAK_OTHER_NAMES]; /* the names behind errors[SOAK_ERR_OTHER] */
        uint64_t driver_calls;                           /* Hello and AddMatch sent */
        uint64_t driver_returns;
        uint64_t driver_errors;
        uint64_t abandoned;           /* pending when their client closed its socket on purpose */
        uint64_t unanswered;          /* pending at the end of the settle time, or when the broker hung up */
        uint64_t unexpected_replies;  /* answers to no pending call */
        uint64_t unexpected_messages; /* anything else a client should never get */
        uint64_t signals;             /* Tick from a subscribed service */
        uint64_t bad_signals;         /* Tick from a service the client did not subscribe to */
        uint64_t connects;            /* Hello answered */
        uint64_t connect_failures;    /* a client that could not get connected for a long while */
        uint64_t hangups;             /* the broker closed a connection */
        uint64_t drops;               /* sockets closed on purpose with calls in flight */
        uint64_t partial_frames;      /* ... of them in the middle of a frame */
        uint64_t max_answer_ms;       /* the slowest answer */
};

/* Key names of enum soak_error for the RESULT lines. */
static inline const char *soak_error_key(enum soak_error e)
{
        static const char *const keys[SOAK_ERR_MAX] = {"NoReply", "Timeout", "ServiceUnknown", "other_errors"};

        return keys[e];
}

/* What a client process runs: n_clients connections with ids first_id... */
struct soak_client_config {
        const char *address;
        unsigned first_id;
        unsigned n_clients;
        unsigned n_services;
        uint64_t seed;
        bool victim; /* the parent SIGKILLs it now and then; it keeps no ledger */
};

/* A client process's main (client.c): returns the exit status. */
int soak_client_main(const struct soak_client_config *cfg);

/* A service process's main (service.c): owns SOAK_NAME_PREFIX<index>; returns the exit status. */
int soak_service_main(const char *address, unsigned index, uint64_t seed);
