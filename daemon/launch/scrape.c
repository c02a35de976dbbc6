/* SPDX-License-Identifier: MIT */
/*
 * The metrics socket: a minimal HTTP/1.0 server for scrapers (scrape.h).
 * Each connection is a bufferevent with a deadline; its request head is read
 * up to its blank line, answered once, and the connection is closed when
 * the answer is written (or at the deadline, whichever comes first).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "daemon/bus/metrics.h"
#include "daemon/launch/scrape.h"
#include "daemon/log.h"
#include "util/util.h"

#define CONTENT_TYPE_OPENMETRICS "application/openmetrics-text; version=1.0.0; charset=utf-8"
#define CONTENT_TYPE_PROMETHEUS "text/plain; version=0.0.4; charset=utf-8"
#define CONTENT_TYPE_TEXT "text/plain; charset=utf-8"

struct scrape {
        struct scrape_server *server;
        size_t slot; /* index in server->scrapes */
        struct bufferevent *bev;
        struct event *deadline;
        bool answered; /* the answer is queued: what remains is writing it out */
};

static void scrape_free(struct scrape *sc)
{
        if (!sc)
                return;
        sc->server->scrapes[sc->slot] = NULL;
        sc->server->n_scrapes--;
        if (sc->bev)
                bufferevent_free(sc->bev); /* closes the socket */
        if (sc->deadline)
                event_free(sc->deadline);
        free(sc);
}

/* ---- the answer ------------------------------------------------------------------- */

/* Queue the status line, the headers and body (NULL: none, as for HEAD) and close once written. */
static void scrape_answer(struct scrape *sc, const char *status, const char *content_type, const char *extra_header,
                          const char *body, size_t len, bool head_only)
{
        struct evbuffer *out = bufferevent_get_output(sc->bev);

        sc->answered = true;
        bufferevent_disable(sc->bev, EV_READ);
        if (evbuffer_add_printf(out,
                                "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: "
                                "close\r\n\r\n",
                                status, content_type, len, extra_header ? extra_header : "") < 0 ||
            (!head_only && evbuffer_add(out, body, len) < 0)) {
                scrape_free(sc);
                return;
        }
        bufferevent_enable(sc->bev, EV_WRITE);
}

/* A short plain-text answer for a request that gets no metrics. */
static void scrape_refuse(struct scrape *sc, const char *status, const char *extra_header, bool head_only)
{
        char body[64];
        int n = snprintf(body, sizeof(body), "%s\n", status);

        log_debug("metrics socket: answering %s", status);
        scrape_answer(sc, status, CONTENT_TYPE_TEXT, extra_header, body, (size_t) n, head_only);
}

/* Does the request head ask for OpenMetrics (an Accept header naming application/openmetrics-text)? */
static bool head_wants_openmetrics(const char *head)
{
        for (const char *line = strchr(head, '\n'); line; line = strchr(line, '\n')) {
                line++;
                if (strncasecmp(line, "accept:", 7) != 0)
                        continue;
                /* the header's value, up to its line's end */
                for (const char *p = line + 7; *p && *p != '\n'; p++)
                        if (strncasecmp(p, "application/openmetrics-text", 28) == 0)
                                return true;
        }
        return false;
}

/* Answer a whole request head (NUL-terminated, its line ends "\r\n" or "\n"). */
static void scrape_handle(struct scrape *sc, const char *head)
{
        _cleanup_(freep) char *text = NULL;
        char method[16], target[256], version[16];
        bool openmetrics, head_only;
        size_t len = 0, path_len;
        int r;

        if (sscanf(head, "%15s %255s %15s", method, target, version) != 3 || strncmp(version, "HTTP/", 5) != 0)
                return scrape_refuse(sc, "400 Bad Request", NULL, false);
        head_only = strcmp(method, "HEAD") == 0;
        if (strcmp(method, "GET") != 0 && !head_only)
                return scrape_refuse(sc, "405 Method Not Allowed", "Allow: GET, HEAD\r\n", false);
        path_len = strcspn(target, "?");
        if (!(path_len == 1 && target[0] == '/') && !(path_len == 8 && strncmp(target, "/metrics", 8) == 0))
                return scrape_refuse(sc, "404 Not Found", NULL, head_only);

        openmetrics = head_wants_openmetrics(head);
        r = bus_metrics_render(sc->server->bus, openmetrics ? BUS_METRICS_OPENMETRICS : BUS_METRICS_PROMETHEUS, &text,
                               &len);
        if (r < 0) {
                log_debug("metrics socket: cannot render the metrics: %s", strerror(-r));
                return scrape_refuse(sc, "500 Internal Server Error", NULL, head_only);
        }
        log_debug("metrics socket: answering %s %.*s with %zu bytes of %s", method, (int) path_len, target, len,
                  openmetrics ? "OpenMetrics" : "Prometheus text");
        scrape_answer(sc, "200 OK", openmetrics ? CONTENT_TYPE_OPENMETRICS : CONTENT_TYPE_PROMETHEUS, NULL, text, len,
                      head_only);
}

/* ---- the connection ----------------------------------------------------------------- */

/* Where the head ends (just past its blank line) in in, or 0 while it has not ended. */
static size_t head_end(struct evbuffer *in)
{
        struct evbuffer_ptr p = evbuffer_search(in, "\r\n\r\n", 4, NULL);

        if (p.pos >= 0)
                return (size_t) p.pos + 4;
        p = evbuffer_search(in, "\n\n", 2, NULL);
        return p.pos >= 0 ? (size_t) p.pos + 2 : 0;
}

static void scrape_on_read(struct bufferevent *bev, void *userdata)
{
        struct scrape *sc = userdata;
        struct evbuffer *in = bufferevent_get_input(bev);
        size_t end = head_end(in);
        char head[SCRAPE_HEAD_MAX + 1];

        if (sc->answered)
                return;
        if (end == 0 || end > SCRAPE_HEAD_MAX) {
                /* the read watermark stops reading at SCRAPE_HEAD_MAX bytes */
                if (evbuffer_get_length(in) >= SCRAPE_HEAD_MAX)
                        scrape_refuse(sc, "400 Bad Request", NULL, false);
                return;
        }
        evbuffer_remove(in, head, end);
        head[end] = '\0';
        if (strlen(head) != end) /* a NUL byte in the head */
                return scrape_refuse(sc, "400 Bad Request", NULL, false);
        scrape_handle(sc, head);
}

/* The answer is written out: done. */
static void scrape_on_write(struct bufferevent *bev, void *userdata)
{
        struct scrape *sc = userdata;

        if (sc->answered && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
                scrape_free(sc);
}

/* The client closed or the socket failed. */
static void scrape_on_event(struct bufferevent *bev, short what, void *userdata)
{
        if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
                scrape_free(userdata);
}

static void scrape_on_deadline(evutil_socket_t fd, short what, void *userdata)
{
        struct scrape *sc = userdata;

        log_debug("metrics socket: closing a connection after %d ms", SCRAPE_DEADLINE_MS);
        scrape_free(sc);
}

/* Start answering the connection fd in a free slot. Returns 0 or -ENOMEM (fd is closed either way). */
static int scrape_start(struct scrape_server *s, int fd, size_t slot)
{
        const struct timeval deadline = {SCRAPE_DEADLINE_MS / 1000, (SCRAPE_DEADLINE_MS % 1000) * 1000};
        struct scrape *sc = calloc(1, sizeof(*sc));

        if (!sc) {
                close(fd);
                return -ENOMEM;
        }
        *sc = (struct scrape){.server = s, .slot = slot};
        s->scrapes[slot] = sc;
        s->n_scrapes++;
        sc->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
        if (!sc->bev)
                close(fd);
        sc->deadline = evtimer_new(s->base, scrape_on_deadline, sc);
        if (!sc->bev || !sc->deadline || evtimer_add(sc->deadline, &deadline) < 0) {
                scrape_free(sc);
                return -ENOMEM;
        }
        bufferevent_setwatermark(sc->bev, EV_READ, 0, SCRAPE_HEAD_MAX);
        bufferevent_setcb(sc->bev, scrape_on_read, scrape_on_write, scrape_on_event, sc);
        if (bufferevent_enable(sc->bev, EV_READ) < 0) {
                scrape_free(sc);
                return -ENOMEM;
        }
        return 0;
}

/* The listener's accept callback: a slot for the connection, or it is closed at once. */
static void scrape_on_accept(int fd, void *userdata)
{
        struct scrape_server *s = userdata;
        size_t slot = 0;

        if (s->n_scrapes >= SCRAPE_MAX) {
                log_debug("metrics socket: %d connections being answered already; closing a new one", SCRAPE_MAX);
                close(fd);
                return;
        }
        while (s->scrapes[slot])
                slot++;
        log_debug("metrics socket: new connection");
        if (scrape_start(s, fd, slot) < 0)
                log_debug("metrics socket: out of memory for a new connection; closed");
}

int scrape_server_init(struct scrape_server *s, struct event_base *base, struct bus *bus, const char *path)
{
        int r;

        *s = (struct scrape_server){.bus = bus, .base = base};
        r = listener_init_mode(&s->listener, base, path, false, 0600, scrape_on_accept, s);
        if (r)
                return r;
        s->listening = true;
        r = listener_start(&s->listener);
        if (r < 0)
                scrape_server_deinit(s);
        return r;
}

void scrape_server_deinit(struct scrape_server *s)
{
        if (s->listening)
                listener_deinit(&s->listener);
        s->listening = false;
        for (size_t i = 0; i < SCRAPE_MAX; i++)
                scrape_free(s->scrapes[i]);
}
