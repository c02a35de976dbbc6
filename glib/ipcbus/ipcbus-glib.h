/* SPDX-License-Identifier: MIT */
/*
 * libipcbus-glib: drive a libipcbus connection from a GLib main context.
 *
 * One call makes the connection a source of a GMainContext, beside the
 * application's own (a GTK main loop, timers, other sockets): the source
 * polls the socket for what ipcbus_get_events asks, wakes at
 * ipcbus_get_timeout's deadline, and dispatches with ipcbus_process, a
 * bounded batch at a time. Pending calls' callbacks, subscriptions and
 * exported objects then run from the main loop. Separate from libipcbus,
 * which does not link GLib: pkg-config --cflags --libs ipcbus-glib.
 * ipcbus_attach_glib(3) says more.
 */
#pragma once

#include <glib.h>

#include <ipcbus/ipcbus.h>

G_BEGIN_DECLS

/*
 * Attach bus to context (NULL: the default main context). The source holds
 * a reference on bus until it ends: when the broker hangs up (after pending
 * calls failed with Disconnected), when the connection is closed
 * (ipcbus_close), or with ipcbus_detach_glib. A callback set on the source
 * (g_source_set_callback, on g_main_context_find_source_by_id(context, id))
 * runs once when the connection ends.
 * Returns the source id (g_source_get_id); 0 on failure with errno set:
 * EINVAL (bus NULL), ENOTCONN (closed or lost), ECHILD (a connection
 * inherited across fork), EBUSY (already attached to a GLib context).
 * Not together with ipcbus_attach_event on the same connection.
 */
guint ipcbus_attach_glib(ipcbus_bus *bus, GMainContext *context);

/*
 * Remove bus's source from its context and drop its reference on bus,
 * leaving the connection open. Returns 0, -EINVAL (bus NULL) or -ENOENT
 * (not attached, or its source ended already).
 */
int ipcbus_detach_glib(ipcbus_bus *bus);

G_END_DECLS
