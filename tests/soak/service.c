/* SPDX-License-Identifier: MIT */
/*
 * ipc-soak's services: one process each, through libipcbus on a libevent
 * loop (ipcbus_attach_event), the way a real service is written. It owns
 * SOAK_NAME_PREFIX<index> and serves, at SOAK_PATH, interface SOAK_INTERFACE:
 *   Echo  answers at once with the call's body, byte for byte;
 *   Slow  answers the same after a random 0..SOAK_SLOW_MAX_MS ms;
 * and broadcasts the signal Tick {"service":"S<index>","n":N} every 0.2-1.8 s.
 * The parent SIGKILLs it now and then, in the middle of Slow calls, and
 * starts a new one; end of file on SOAK_CTL_FD stops it cleanly.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <ipcbus/ipcbus.h>

#include "protocol/jbuf.h"
#include "tests/soak/soak.h"
#include "util/list.h"

#define TICK_MIN_MS 200
#define TICK_SPREAD_MS 1600

struct service {
        unsigned index;
        struct event_base *base;
        ipcbus_bus *bus;
        struct rng rng;
        struct event *ev_tick;
        struct event *ev_ctl;
        struct list slow; /* struct slow_call: Slow calls not answered yet */
        uint64_t ticks;
        int error; /* what stopped the loop, if not the parent */
};

/* A Slow call waiting for its timer. */
struct slow_call {
        struct list link;
        struct service *svc;
        ipcbus_message *call;
        struct event *timer;
};

static void ms_to_timeval(uint64_t ms, struct timeval *tv)
{
        tv->tv_sec = (time_t) (ms / 1000);
        tv->tv_usec = (suseconds_t) (ms % 1000) * 1000;
}

static void service_fail(struct service *svc, const char *what, int r)
{
        fprintf(stderr, "ipc-soak: service S%u: %s: %s\n", svc->index, what, ipcbus_strerror(r));
        if (svc->error == 0)
                svc->error = r;
        event_base_loopbreak(svc->base);
}

/* Answer a call with its own body (an empty body stays empty). */
static int service_answer(struct service *svc, ipcbus_message *call)
{
        const char *body = ipcbus_message_get_body(call, NULL);
        int r = ipcbus_reply(call, body[0] ? body : NULL);

        if (r < 0)
                service_fail(svc, "reply", r);
        return r;
}

static int service_echo(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        service_answer(userdata, m);
        return 0;
}

static void slow_call_free(struct slow_call *sc)
{
        list_unlink(&sc->link);
        event_free(sc->timer);
        ipcbus_message_unref(sc->call);
        free(sc);
}

static void slow_call_on_timer(evutil_socket_t fd, short what, void *userdata)
{
        struct slow_call *sc = userdata;

        service_answer(sc->svc, sc->call);
        slow_call_free(sc);
}

/* Slow: keep the call and answer it from a timer. */
static int service_slow(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct service *svc = userdata;
        struct slow_call *sc = calloc(1, sizeof(*sc));
        struct timeval tv;

        if (!sc)
                return -ENOMEM;
        sc->timer = evtimer_new(svc->base, slow_call_on_timer, sc);
        if (!sc->timer) {
                free(sc);
                return -ENOMEM;
        }
        sc->svc = svc;
        sc->call = ipcbus_message_ref(m);
        list_link_tail(&svc->slow, &sc->link);
        ms_to_timeval(rng_below(&svc->rng, SOAK_SLOW_MAX_MS + 1), &tv);
        evtimer_add(sc->timer, &tv);
        return 0;
}

static void service_tick_arm(struct service *svc)
{
        struct timeval tv;

        ms_to_timeval(TICK_MIN_MS + rng_below(&svc->rng, TICK_SPREAD_MS), &tv);
        evtimer_add(svc->ev_tick, &tv);
}

/* Broadcast Tick; this is also where a lost connection is noticed. */
static void service_on_tick(evutil_socket_t fd, short what, void *userdata)
{
        struct service *svc = userdata;
        char body[96];
        int r;

        if (!ipcbus_is_open(svc->bus)) {
                service_fail(svc, "connection", -ECONNRESET);
                return;
        }
        snprintf(body, sizeof(body), "{\"service\":\"S%u\",\"n\":%llu}", svc->index, (unsigned long long) ++svc->ticks);
        r = ipcbus_emit_signal(svc->bus, NULL, SOAK_PATH, SOAK_INTERFACE, "Tick", body);
        if (r < 0) {
                service_fail(svc, "emit Tick", r);
                return;
        }
        service_tick_arm(svc);
}

static void service_on_ctl(evutil_socket_t fd, short what, void *userdata)
{
        struct service *svc = userdata;

        event_base_loopbreak(svc->base);
}

/*
 * Connect, export the methods, take the name (queueing behind a killed
 * predecessor the broker has not seen go yet) and serve until told to stop.
 */
int soak_service_main(const char *address, unsigned index, uint64_t seed)
{
        static const ipcbus_method methods[] = {
                {"Echo", service_echo},
                {"Slow", service_slow},
                {},
        };
        struct service svc = {.index = index};
        ipcbus_slot *object = NULL;
        char name[64];
        int r;

        rng_init(&svc.rng, seed, 1, index);
        list_init(&svc.slow);
        snprintf(name, sizeof(name), SOAK_NAME_PREFIX "%u", index);
        svc.base = event_base_new();
        if (!svc.base)
                return EXIT_FAILURE;
        svc.ev_tick = evtimer_new(svc.base, service_on_tick, &svc);
        svc.ev_ctl = event_new(svc.base, SOAK_CTL_FD, EV_READ, service_on_ctl, &svc);
        r = svc.ev_tick && svc.ev_ctl ? 0 : -ENOMEM;
        if (r >= 0)
                r = ipcbus_open_address(address, &svc.bus);
        if (r >= 0)
                r = ipcbus_add_object(svc.bus, &object, SOAK_PATH, SOAK_INTERFACE, methods, &svc);
        if (r >= 0) {
                ipcbus_error e = IPCBUS_ERROR_NULL;

                r = ipcbus_request_name(svc.bus, name, 0, &e);
                if (r != IPCBUS_REQUEST_NAME_PRIMARY_OWNER && r != IPCBUS_REQUEST_NAME_IN_QUEUE && r >= 0)
                        r = -EBUSY;
                if (e.name)
                        fprintf(stderr, "ipc-soak: service S%u: RequestName: %s\n", index, e.name);
                ipcbus_error_free(&e);
        }
        if (r >= 0)
                r = ipcbus_attach_event(svc.bus, svc.base);
        if (r < 0) {
                fprintf(stderr, "ipc-soak: service S%u: cannot start: %s\n", index, ipcbus_strerror(r));
                svc.error = r;
        } else {
                event_add(svc.ev_ctl, NULL);
                service_tick_arm(&svc);
                event_base_dispatch(svc.base);
        }

        for (struct slow_call *sc; (sc = list_first_entry(&svc.slow, struct slow_call, link));)
                slow_call_free(sc);
        ipcbus_slot_unref(object);
        ipcbus_unref(svc.bus);
        if (svc.ev_tick)
                event_free(svc.ev_tick);
        if (svc.ev_ctl)
                event_free(svc.ev_ctl);
        event_base_free(svc.base);
        return svc.error < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
