/* SPDX-License-Identifier: MIT */
/*
 * Event-loop integration: fd / events / timeout / process for any loop,
 * blocking wait and flush, and a ready attachment to a libevent event_base.
 */
#include <limits.h>
#include <poll.h>

#include <event2/event.h>

#include "libclient/bus-internal.h"
#include "util/clock.h"

/* ipcbus_process() calls per libevent wake-up, so one busy bus cannot starve the loop. */
#define EVENT_BATCH_MAX 64u

_public_ int ipcbus_get_fd(ipcbus_bus *bus)
{
        int r = client_enter(bus, false);

        return r < 0 ? r : bus->fd;
}

static int client_events(ipcbus_bus *bus)
{
        if (!bus->open)
                return 0;
        return POLLIN | (bus->wqueue.len > 0 ? POLLOUT : 0);
}

_public_ int ipcbus_get_events(ipcbus_bus *bus)
{
        int r = client_enter(bus, false);

        return r < 0 ? r : client_events(bus);
}

/* Work that ipcbus_process can do without waiting for the socket. */
static bool client_has_work(ipcbus_bus *bus)
{
        if (bus->closed)
                return false;
        if (bus->rqueue.len > 0)
                return true;
        /* after a hang-up: pending calls to fail, then the hang-up to report */
        return !bus->open && (bus->slots[SLOT_CALL].first || !bus->hangup_reported);
}

/* The next deadline (ipcbus_get_timeout). */
static uint64_t client_timeout(ipcbus_bus *bus)
{
        if (client_has_work(bus))
                return 0;
        if (bus->open && bus->slots[SLOT_CALL].first)
                return bus->slots[SLOT_CALL].first->call.deadline;
        return UINT64_MAX;
}

_public_ int ipcbus_get_timeout(ipcbus_bus *bus, uint64_t *ret_usec)
{
        int r;

        if (!ret_usec)
                return client_fail_null("ret_usec");
        r = client_enter(bus, false);
        if (r < 0)
                return r;
        *ret_usec = client_timeout(bus);
        return 0;
}

/* Dispatch the oldest queued message. Returns 1, or -ENOMEM (it stays queued). */
static int process_dispatch(ipcbus_bus *bus)
{
        _cleanup_(ipcbus_message_unrefp) ipcbus_message *m = NULL;

        m = message_new(bus, msg_queue_at(&bus->rqueue, 0));
        if (!m)
                return -ENOMEM;
        msg_unref(msg_queue_pop(&bus->rqueue));
        slot_dispatch(bus, m);
        return 1;
}

/* After a hang-up: fail one pending call with Disconnected, else report the hang-up once. */
static int process_hangup(ipcbus_bus *bus)
{
        ipcbus_slot *s = bus->slots[SLOT_CALL].first;
        int r;

        if (s) {
                r = slot_fail_call(s, IPCBUS_ERROR_DISCONNECTED, "The connection to the bus was lost");
                return r < 0 ? r : 1;
        }
        if (!bus->hangup_reported) {
                bus->hangup_reported = true;
                return bus->hangup_error;
        }
        return -ENOTCONN;
}

/* Expire the earliest pending call if its deadline passed: 1 if one did, 0 if none, -ENOMEM. */
static int process_timeout(ipcbus_bus *bus)
{
        ipcbus_slot *s = bus->slots[SLOT_CALL].first;
        int r;

        if (!s || s->call.deadline > clock_now_usec(CLOCK_MONOTONIC))
                return 0;
        r = slot_fail_call(s, IPCBUS_ERROR_TIMEOUT, "The method call timed out");
        return r < 0 ? r : 1;
}

/*
 * Write what can be written, read if nothing is queued, then do one unit of
 * work. Right after a read that found the socket empty, the next call does
 * not read (it would only say EAGAIN): it returns 0 and the caller waits,
 * and the call after that reads again.
 */
static int process_one(ipcbus_bus *bus)
{
        bool did_io = false;
        int r;

        if (bus->open)
                did_io = client_write(bus) > 0;
        if (bus->rqueue.len == 0 && bus->drained)
                bus->drained = false;
        else if (bus->rqueue.len == 0 && bus->open) {
                r = client_read(bus, 0, NULL);
                if (r < 0)
                        return r;
                did_io = did_io || r > 0;
        }
        if (bus->rqueue.len > 0)
                return process_dispatch(bus);
        if (!bus->open)
                return process_hangup(bus);
        r = process_timeout(bus);
        if (r != 0)
                return r;
        return did_io;
}

_public_ int ipcbus_process(ipcbus_bus *bus)
{
        int r;

        r = client_enter(bus, false);
        if (r < 0)
                return r;
        if (bus->processing)
                return -EBUSY;

        /* callbacks may close the bus: keep the struct until we are done with it */
        client_ref(bus);
        bus->processing = true;
        r = process_one(bus);
        bus->processing = false;
        client_unref(bus);
        return r;
}

_public_ int ipcbus_wait(ipcbus_bus *bus, uint64_t timeout_usec)
{
        uint64_t deadline, now;
        int r;

        r = client_enter(bus, false);
        if (r < 0)
                return r;

        deadline = client_timeout(bus);
        if (deadline == 0)
                return 1;
        if (!bus->open)
                return -ENOTCONN;

        now = clock_now_usec(CLOCK_MONOTONIC);
        if (deadline != UINT64_MAX) {
                if (deadline <= now)
                        return 1;
                if (deadline - now < timeout_usec)
                        timeout_usec = deadline - now;
        }

        r = client_poll(bus, (short) client_events(bus), timeout_usec);
        if (r != 0)
                return r;
        /* an async call's deadline passing is something to process too */
        return deadline != UINT64_MAX && clock_now_usec(CLOCK_MONOTONIC) >= deadline;
}

_public_ int ipcbus_run(ipcbus_bus *bus)
{
        int r;

        do {
                r = ipcbus_process(bus);
                if (r == 0)
                        r = ipcbus_wait(bus, UINT64_MAX);
        } while (r >= 0);
        /* the broker hung up (reported once, then -ENOTCONN), or a callback closed it */
        if (r == -ECONNRESET || (r == -ENOTCONN && (bus->closed || bus->hangup_reported)))
                return 0;
        return r;
}

_public_ int ipcbus_flush(ipcbus_bus *bus)
{
        int r;

        r = client_enter(bus, false);
        if (r < 0)
                return r;

        for (;;) {
                if (!bus->open)
                        return bus->hangup_error;
                client_write(bus);
                if (!bus->open)
                        continue;
                if (bus->wqueue.len == 0)
                        return 0;
                r = client_poll(bus, POLLOUT, UINT64_MAX);
                if (r < 0)
                        return r;
        }
}

/* ---- libevent ---- */

/* Arm EV_WRITE exactly while output is queued. */
void client_event_update_write(ipcbus_bus *bus)
{
        bool want;

        if (!bus->event_base)
                return;
        want = bus->open && bus->wqueue.len > 0;
        if (want == bus->ev_write_armed)
                return;
        if (want)
                event_add(bus->ev_write, NULL);
        else
                event_del(bus->ev_write);
        bus->ev_write_armed = want;
}

/*
 * Re-arm the events after the bus changed: read while open, write while
 * output is queued, the timer for the next deadline (now, if work is queued).
 */
void client_event_update(ipcbus_bus *bus)
{
        uint64_t when, now;

        if (!bus->event_base)
                return;
        if (!bus->open)
                event_del(bus->ev_read);
        client_event_update_write(bus);

        when = client_timeout(bus);
        if (when == UINT64_MAX) {
                event_del(bus->ev_timer);
        } else {
                struct timeval tv = {0, 0};

                now = clock_now_usec(CLOCK_MONOTONIC);
                if (when > now) {
                        uint64_t d = when - now;

                        tv.tv_sec = (time_t) (d / 1000000u);
                        tv.tv_usec = (suseconds_t) (d % 1000000u);
                }
                event_add(bus->ev_timer, &tv);
        }
}

/* Read, write or timer readiness: process a bounded batch, then re-arm. */
static void client_event_cb(evutil_socket_t fd, short what, void *userdata)
{
        ipcbus_bus *bus = userdata;

        client_ref(bus);
        for (unsigned i = 0; i < EVENT_BATCH_MAX; i++)
                if (ipcbus_process(bus) <= 0)
                        break;
        client_event_update(bus);
        client_unref(bus);
}

_public_ int ipcbus_attach_event(ipcbus_bus *bus, struct event_base *base)
{
        int r;

        if (!base)
                return client_fail_null("base");
        r = client_enter(bus, true);
        if (r < 0)
                return r;
        if (bus->event_base)
                return -EBUSY;

        bus->ev_read = event_new(base, bus->fd, EV_READ | EV_PERSIST, client_event_cb, bus);
        bus->ev_write = event_new(base, bus->fd, EV_WRITE | EV_PERSIST, client_event_cb, bus);
        bus->ev_timer = evtimer_new(base, client_event_cb, bus);
        if (!bus->ev_read || !bus->ev_write || !bus->ev_timer || event_add(bus->ev_read, NULL) < 0) {
                bus->event_base = base;
                ipcbus_detach_event(bus);
                return -ENOMEM;
        }
        bus->event_base = base;
        bus->ev_write_armed = false;
        client_event_update(bus);
        return 0;
}

/* Also the first step of closing (client_close). */
_public_ int ipcbus_detach_event(ipcbus_bus *bus)
{
        int r = client_enter(bus, false);

        if (r < 0)
                return r;
        if (bus->ev_read)
                event_free(bus->ev_read);
        if (bus->ev_write)
                event_free(bus->ev_write);
        if (bus->ev_timer)
                event_free(bus->ev_timer);
        bus->ev_read = bus->ev_write = bus->ev_timer = NULL;
        bus->event_base = NULL;
        bus->ev_write_armed = false;
        return 0;
}
