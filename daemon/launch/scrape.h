/* SPDX-License-Identifier: MIT */
/*
 * The metrics socket (daemon/CONFIG.md, "metrics_socket"): a Unix socket on
 * which ipcbusd answers scrapers in HTTP/1.0, one request a connection:
 * GET /metrics (or /) gets bus_metrics_render's text, OpenMetrics when the
 * Accept header asks for application/openmetrics-text, else the Prometheus
 * text format. Every scrape is bounded: at most SCRAPE_MAX at once (further
 * ones are accepted and closed at once), a request head of at most
 * SCRAPE_HEAD_MAX bytes, and SCRAPE_DEADLINE_MS for the whole exchange.
 * Nothing blocks: reads and writes run on the bus's event loop.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "daemon/transport/listener.h"

struct bus;
struct event_base;
struct scrape;

#define SCRAPE_MAX 8
#define SCRAPE_HEAD_MAX 8192
#define SCRAPE_DEADLINE_MS 3000

struct scrape_server {
        struct bus *bus;
        struct event_base *base;
        struct listener listener;
        bool listening;                     /* listener is set up */
        struct scrape *scrapes[SCRAPE_MAX]; /* the connections being answered; NULL: a free slot */
        size_t n_scrapes;
};

/*
 * Listen on path (mode 0600, a stale socket file replaced) and answer
 * scrapes of bus from then on. s is initialized either way; on failure
 * nothing listens. Returns 0, LISTENER_E_IN_USE when something answers on
 * path, LISTENER_E_NOT_SOCKET when path is another kind of file, or a
 * negative errno.
 */
int scrape_server_init(struct scrape_server *s, struct event_base *base, struct bus *bus, const char *path);
/* Stop listening (removing the socket file) and close every scrape. Idempotent. */
void scrape_server_deinit(struct scrape_server *s);
