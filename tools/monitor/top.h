/* SPDX-License-Identifier: MIT */
/*
 * ipc-monitor --top: a view of who is busy on the bus, redrawn every
 * interval. Traffic comes from the monitor's own events (after pairing, so
 * answers carry their latency); queue depths, names and totals from the
 * broker's GetStats, asked over a second, ordinary connection.
 */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <ipcbus/ipcbus.h>

#include "tools/monitor/event.h"

struct top_options {
        const char *what;       /* the bus watched, for the title line */
        uint64_t interval_usec; /* between redraws (and the window of --once) */
        bool once;              /* one plain report after one interval, then exit */
};

struct top;

int top_new(const struct top_options *o, struct top **ret);
struct top *top_free(struct top *t);

/* Count one event (fed in order, after pairing_feed). */
void top_feed(struct top *t, const struct mon_event *ev);

/* What the view asks of the monitor around it. */
struct top_hooks {
        size_t (*in_flight)(void *userdata); /* calls awaiting an answer now */
        void (*tick)(void *userdata);        /* called on every turn of the loop (deadlines) */
        void *userdata;
};

/*
 * Run the view until q, SIGINT/SIGTERM/SIGHUP (*quit set) or, with once, the end of
 * the first interval. mon is the monitor connection whose events reach
 * top_feed (through the caller's filter); stats an ordinary connection to
 * the same bus for GetStats; waitmask is the signal mask for ppoll (see
 * ipc-monitor.c). Returns 0, or EXIT_FAILURE after saying why (the bus went
 * away).
 */
int top_run(struct top *t, ipcbus_bus *mon, ipcbus_bus *stats, const struct top_hooks *hooks, const sigset_t *waitmask,
            volatile sig_atomic_t *quit);
