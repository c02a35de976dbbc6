/* SPDX-License-Identifier: MIT */
/*
 * glib-echo: a service and its client on GLib's main loop, on the session
 * bus ($IPCBUS_ADDRESS). The connection is one source of the main context
 * (ipcbus_attach_glib), beside the program's own: a Unix signal, a timer.
 *
 *   glib-echo serve       own org.example.GlibEcho; answer Echo(text) with
 *                         the text and emit Echoed(text) after; run until
 *                         SIGTERM or SIGINT, or until the bus goes away
 *   glib-echo call TEXT   call Echo(TEXT) without blocking and wait for its
 *                         answer and the Echoed signal; prints
 *                         "reply: TEXT" and "signal: TEXT" as they come
 *
 * Exit status: 0; 1 on a failure (an error answered is printed with its
 * name; no answer within 5 s); 2 for a usage error.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <glib-unix.h>
#include <glib.h>

#include <ipcbus/ipcbus-glib.h>
#include <ipcbus/ipcbus.h>

#define ECHO_NAME "org.example.GlibEcho"
#define ECHO_PATH "/org/example/GlibEcho"
#define ECHOED_RULE "sender=" ECHO_NAME ",path=" ECHO_PATH ",interface=" ECHO_NAME ",member=Echoed"
#define CALL_TIMEOUT_S 5

struct app {
        GMainLoop *loop;
        bool serving;
        int status;
        unsigned answers; /* the client's: the reply and the signal */
        guint timer;      /* the client's limit on waiting */
};

/* The connection ended (the source's callback): a service's cue to exit, a client's failure. */
static gboolean on_bus_end(gpointer userdata)
{
        struct app *app = userdata;

        if (!app->serving) {
                fprintf(stderr, "glib-echo: the connection to the bus ended\n");
                app->status = 1;
        }
        g_main_loop_quit(app->loop);
        return G_SOURCE_REMOVE;
}

static gboolean on_quit_signal(gpointer userdata)
{
        struct app *app = userdata;

        g_main_loop_quit(app->loop);
        return G_SOURCE_CONTINUE;
}

/* ---- serve ---- */

static int on_echo(ipcbus_message *call, void *userdata, ipcbus_error *error)
{
        const char *text;
        int r;

        r = ipcbus_message_read(call, "text:s", &text);
        if (r < 0) {
                ipcbus_error_set(error, IPCBUS_ERROR_INVALID_ARGS, "Echo takes a string, text");
                return r;
        }
        r = ipcbus_reply_method(call, "text:s", text);
        if (r < 0)
                return r;
        return ipcbus_emit(ipcbus_message_get_bus(call), ECHO_PATH, ECHO_NAME, "Echoed", "text:s", text);
}

static const ipcbus_method echo_methods[] = {
        {"Echo", on_echo},
        {NULL, NULL},
};

static int serve(ipcbus_bus *bus, struct app *app)
{
        ipcbus_slot *object = NULL;
        ipcbus_error error = IPCBUS_ERROR_NULL;
        int r;

        r = ipcbus_add_object(bus, &object, ECHO_PATH, ECHO_NAME, echo_methods, app);
        if (r < 0) {
                fprintf(stderr, "glib-echo: cannot export %s: %s\n", ECHO_PATH, ipcbus_strerror(r));
                return 1;
        }
        r = ipcbus_request_name(bus, ECHO_NAME, IPCBUS_NAME_DO_NOT_QUEUE, &error);
        if (r != IPCBUS_REQUEST_NAME_PRIMARY_OWNER) {
                fprintf(stderr, "glib-echo: cannot own %s: %s\n", ECHO_NAME,
                        r < 0 ? (error.message ? error.message : ipcbus_strerror(r)) : "owned by another");
                ipcbus_error_free(&error);
                ipcbus_slot_unref(object);
                return 1;
        }
        app->serving = true;
        g_main_loop_run(app->loop);
        ipcbus_slot_unref(object);
        return app->status;
}

/* ---- call ---- */

static int on_echoed(ipcbus_message *m, void *userdata, ipcbus_error *error)
{
        struct app *app = userdata;
        const char *text;

        if (ipcbus_message_read(m, "text:s", &text) < 0)
                return 0;
        printf("signal: %s\n", text);
        if (++app->answers == 2)
                g_main_loop_quit(app->loop);
        return 0;
}

static int on_reply(ipcbus_message *m, void *userdata, ipcbus_error *unused)
{
        struct app *app = userdata;
        ipcbus_error error = IPCBUS_ERROR_NULL;
        const char *text;

        if (ipcbus_message_get_type(m) == IPCBUS_MESSAGE_ERROR) {
                ipcbus_message_get_error(m, &error);
                fprintf(stderr, "glib-echo: %s: %s\n", error.name, error.message ? error.message : "");
                ipcbus_error_free(&error);
                app->status = 1;
                g_main_loop_quit(app->loop);
                return 0;
        }
        if (ipcbus_message_read(m, "text:s", &text) < 0) {
                fprintf(stderr, "glib-echo: the reply has no text: %s\n", ipcbus_last_error());
                app->status = 1;
                g_main_loop_quit(app->loop);
                return 0;
        }
        printf("reply: %s\n", text);
        if (++app->answers == 2)
                g_main_loop_quit(app->loop);
        return 0;
}

static gboolean on_call_timeout(gpointer userdata)
{
        struct app *app = userdata;

        fprintf(stderr, "glib-echo: no answer within %d s\n", CALL_TIMEOUT_S);
        app->timer = 0;
        app->status = 1;
        g_main_loop_quit(app->loop);
        return G_SOURCE_REMOVE;
}

static int call(ipcbus_bus *bus, struct app *app, const char *text)
{
        ipcbus_slot *match = NULL, *pending = NULL;
        ipcbus_message *m = NULL;
        ipcbus_error error = IPCBUS_ERROR_NULL;
        int r;

        /* subscribed before the call, so the signal that follows its answer cannot be missed */
        r = ipcbus_add_match(bus, &match, ECHOED_RULE, on_echoed, app, &error);
        if (r < 0) {
                fprintf(stderr, "glib-echo: cannot subscribe: %s\n",
                        error.message ? error.message : ipcbus_strerror(r));
                ipcbus_error_free(&error);
                return 1;
        }
        r = ipcbus_message_new_call(bus, &m, ECHO_NAME, ECHO_PATH, ECHO_NAME, "Echo");
        if (r >= 0)
                r = ipcbus_message_append(m, "text:s", text);
        if (r >= 0)
                r = ipcbus_call_message_async(bus, &pending, m, IPCBUS_TIMEOUT_DEFAULT, on_reply, app);
        ipcbus_message_unref(m);
        if (r < 0) {
                fprintf(stderr, "glib-echo: cannot call Echo: %s\n", ipcbus_last_error());
                ipcbus_slot_unref(match);
                return 1;
        }
        app->timer = g_timeout_add_seconds(CALL_TIMEOUT_S, on_call_timeout, app);
        g_main_loop_run(app->loop);
        if (app->timer)
                g_source_remove(app->timer);
        ipcbus_slot_unref(pending);
        ipcbus_slot_unref(match);
        return app->status;
}

int main(int argc, char **argv)
{
        struct app app = {.status = 0};
        ipcbus_bus *bus = NULL;
        guint sigterm, sigint, id;
        int r, status;

        if (!(argc == 2 && strcmp(argv[1], "serve") == 0) && !(argc == 3 && strcmp(argv[1], "call") == 0)) {
                fprintf(stderr, "Usage: glib-echo serve | glib-echo call TEXT\n");
                return 2;
        }
        r = ipcbus_open_session(&bus);
        if (r < 0) {
                fprintf(stderr, "glib-echo: cannot connect to the session bus: %s\n", ipcbus_strerror(r));
                return 1;
        }
        app.loop = g_main_loop_new(NULL, FALSE);
        /* The one call: the connection is now served by the default main context. */
        id = ipcbus_attach_glib(bus, NULL);
        if (id == 0) {
                fprintf(stderr, "glib-echo: ipcbus_attach_glib: %s\n", strerror(errno));
                g_main_loop_unref(app.loop);
                ipcbus_unref(bus);
                return 1;
        }
        g_source_set_callback(g_main_context_find_source_by_id(NULL, id), on_bus_end, &app, NULL);
        sigterm = g_unix_signal_add(SIGTERM, on_quit_signal, &app);
        sigint = g_unix_signal_add(SIGINT, on_quit_signal, &app);

        status = strcmp(argv[1], "serve") == 0 ? serve(bus, &app) : call(bus, &app, argv[2]);

        g_source_remove(sigterm);
        g_source_remove(sigint);
        ipcbus_detach_glib(bus); /* -ENOENT if the bus went away: its source ended then */
        ipcbus_unref(bus);
        g_main_loop_unref(app.loop);
        return status;
}
