/* SPDX-License-Identifier: MIT */
/*
 * libipcbus-glib: a GSource driving a libipcbus connection, as
 * ipcbus_attach_event does for libevent, on libipcbus's public API alone:
 * the socket (g_source_add_unix_fd) polled for ipcbus_get_events, the
 * deadline of ipcbus_get_timeout as the poll timeout, and ipcbus_process
 * called a bounded batch at a time.
 *
 * Everything is asked again in prepare, before each poll: output queued or
 * messages read by code running outside the source (a reply sent from
 * another source's callback, an ipcbus_call that queued what came
 * meanwhile) is seen without libipcbus telling us.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>

#include <glib.h>

#include <ipcbus/ipcbus-glib.h>

#define _public_ __attribute__((visibility("default")))

/* ipcbus_process() calls per dispatch, so one busy bus cannot starve the other sources. */
#define GLIB_BATCH_MAX 64u

struct bus_source {
        GSource source;
        ipcbus_bus *bus;         /* a reference, dropped at finalize */
        gpointer fd_tag;         /* the socket's poll record; NULL once dropped */
        GIOCondition events;     /* what fd_tag polls for */
        struct bus_source *next; /* in attached_sources */
};

/*
 * Every source not yet finalized, so that ipcbus_detach_glib finds a bus's
 * and ipcbus_attach_glib refuses a second one: libipcbus has no room for
 * it. Connections may live in different threads, hence the lock.
 */
G_LOCK_DEFINE_STATIC(attached);
static struct bus_source *attached_sources;

/* The live (not destroyed) source of bus; called with the lock held. */
static struct bus_source *bus_source_find(ipcbus_bus *bus)
{
        for (struct bus_source *s = attached_sources; s; s = s->next)
                if (s->bus == bus && !g_source_is_destroyed(&s->source))
                        return s;
        return NULL;
}

static GIOCondition glib_events(int events)
{
        return (events & POLLIN ? G_IO_IN : 0) | (events & POLLOUT ? G_IO_OUT : 0);
}

/*
 * Whether the source is due now; else *timeout is the poll timeout (ms,
 * rounded up: rounded down, the loop would wake before the deadline and
 * spin). Due too when the bus refuses (closed, or in a forked child):
 * dispatch ends the source then.
 */
static gboolean bus_source_due(struct bus_source *s, gint *timeout)
{
        uint64_t deadline;
        gint64 now;

        *timeout = -1;
        if (ipcbus_get_timeout(s->bus, &deadline) < 0)
                return TRUE;
        if (deadline == UINT64_MAX)
                return FALSE;
        /* g_get_monotonic_time is CLOCK_MONOTONIC in µs, libipcbus's deadlines' clock */
        now = g_get_monotonic_time();
        if (deadline <= (uint64_t) now)
                return TRUE;
        *timeout = (gint) MIN((deadline - (uint64_t) now + 999) / 1000, (uint64_t) G_MAXINT);
        return FALSE;
}

static gboolean bus_source_prepare(GSource *source, gint *timeout)
{
        struct bus_source *s = (struct bus_source *) source;
        int events = ipcbus_get_events(s->bus);

        if (events < 0) {
                /* closed: its descriptor is closed, maybe a new file's already; poll it no more */
                if (s->fd_tag)
                        g_source_remove_unix_fd(source, s->fd_tag);
                s->fd_tag = NULL;
                *timeout = 0;
                return TRUE;
        }
        if (s->fd_tag && glib_events(events) != s->events) {
                s->events = glib_events(events);
                g_source_modify_unix_fd(source, s->fd_tag, s->events);
        }
        return bus_source_due(s, timeout);
}

/* The socket's readiness makes the source due without this (GLib looks at its revents). */
static gboolean bus_source_check(GSource *source)
{
        gint timeout;

        return bus_source_due((struct bus_source *) source, &timeout);
}

/*
 * Process a batch. A negative return on a connection that is no longer open
 * is its end (the hang-up reported after the pending calls failed, or
 * ipcbus_close): run the source's callback, if any, and end the source.
 */
static gboolean bus_source_dispatch(GSource *source, GSourceFunc callback, gpointer userdata)
{
        struct bus_source *s = (struct bus_source *) source;
        int r = 0;

        for (unsigned i = 0; i < GLIB_BATCH_MAX && !g_source_is_destroyed(source); i++) {
                r = ipcbus_process(s->bus);
                if (r <= 0)
                        break;
        }
        if (r >= 0 || ipcbus_is_open(s->bus))
                return G_SOURCE_CONTINUE;
        if (callback && !g_source_is_destroyed(source))
                (void) callback(userdata);
        return G_SOURCE_REMOVE;
}

static void bus_source_finalize(GSource *source)
{
        struct bus_source *s = (struct bus_source *) source;

        G_LOCK(attached);
        for (struct bus_source **p = &attached_sources; *p; p = &(*p)->next)
                if (*p == s) {
                        *p = s->next;
                        break;
                }
        G_UNLOCK(attached);
        ipcbus_unref(s->bus);
}

static GSourceFuncs bus_source_funcs = {
        .prepare = bus_source_prepare,
        .check = bus_source_check,
        .dispatch = bus_source_dispatch,
        .finalize = bus_source_finalize,
};

_public_ guint ipcbus_attach_glib(ipcbus_bus *bus, GMainContext *context)
{
        struct bus_source *s;
        GSource *source;
        guint id;
        int fd, events;

        fd = ipcbus_get_fd(bus);
        if (fd >= 0 && !ipcbus_is_open(bus))
                fd = -ENOTCONN;
        if (fd < 0) {
                errno = -fd;
                return 0;
        }
        events = ipcbus_get_events(bus);

        G_LOCK(attached);
        if (bus_source_find(bus)) {
                G_UNLOCK(attached);
                errno = EBUSY;
                return 0;
        }
        source = g_source_new(&bus_source_funcs, sizeof(struct bus_source));
        g_source_set_name(source, "ipcbus");
        s = (struct bus_source *) source;
        s->bus = ipcbus_ref(bus);
        s->events = glib_events(events);
        s->fd_tag = g_source_add_unix_fd(source, fd, s->events);
        s->next = attached_sources;
        attached_sources = s;
        /* attached before the lock goes, so ipcbus_detach_glib never sees an unattached source */
        id = g_source_attach(source, context);
        G_UNLOCK(attached);
        g_source_unref(source);
        return id;
}

_public_ int ipcbus_detach_glib(ipcbus_bus *bus)
{
        GSource *source = NULL;
        struct bus_source *s;

        if (!bus)
                return -EINVAL;
        G_LOCK(attached);
        s = bus_source_find(bus);
        if (s)
                source = g_source_ref(&s->source);
        G_UNLOCK(attached);
        if (!source)
                return -ENOENT;
        /* outside the lock: the last reference may go here, and finalize takes it */
        g_source_destroy(source);
        g_source_unref(source);
        return 0;
}
