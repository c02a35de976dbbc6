/* SPDX-License-Identifier: MIT */
/*
 * libipcbus-glib against a real ipcbusd: connections driven by GLib main
 * loops and nothing else.
 *
 * In one process, a service and a client attached to one GMainContext: an
 * asynchronous call answered at once and later (from another source of the
 * loop), a signal and a flood of signals received, a call's local timeout
 * firing (with the broker stopped, only the source's deadline can end it)
 * without the loop spinning, the source ending when the broker hangs up
 * (after the pending call failed) or when the connection is closed, from a
 * callback or from outside; attaching twice, detaching, and the reference
 * the source holds. Across two processes: a child serving on its own
 * GMainLoop, calls and signals both ways. The example
 * (examples/glib/glib-echo), as a user runs it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib-unix.h>
#include <glib.h>

#include <ipcbus/ipcbus-glib.h>

#include "tests/testbus.h"

#define PATH "/org/example/Glib"
#define IFACE "org.example.Glib"
#define CHILD_NAME "org.example.GlibChild"
#define FLOOD 300 /* signals: several of the source's batches of 64 */

static int wait_ms(void)
{
        return TESTBUS_WAIT_MS * testbus_slow_factor();
}

/* ---- the loop, the service and the client of one process ---- */

struct env {
        GMainContext *context;
        GMainLoop *loop;
        ipcbus_bus *service, *client;
        guint service_id, client_id; /* their sources */
        ipcbus_slot *object, *match;
        ipcbus_message *held;   /* a call the service answers later, or never */
        ipcbus_message *answer; /* the last answer the client got */
        ipcbus_message *signal; /* the last signal the client got */
        unsigned seen, want;    /* callbacks run; the loop quits when seen reaches want */
        char order[8];          /* what came, in order (env_seen) */
        bool expired;
};

/*
 * A callback ran: `what` is 'a' (an answer to the client), 's' (a signal
 * to it), 'n' (a call to Never), 'e' or 'E' (the client's or the service's
 * source ended), 'r' (a child's report).
 */
static void env_seen(struct env *e, char what)
{
        size_t n = strlen(e->order);

        if (n + 1 < sizeof(e->order))
                e->order[n] = what;
        if (++e->seen >= e->want)
                g_main_loop_quit(e->loop);
}

static gboolean on_guard(gpointer userdata)
{
        struct env *e = userdata;

        e->expired = true;
        g_main_loop_quit(e->loop);
        return G_SOURCE_REMOVE;
}

/* A timer on the loop that sets e->expired (and quits) after wait_ms(); destroy it after. */
static GSource *env_guard(struct env *e)
{
        GSource *guard = g_timeout_source_new((guint) wait_ms());

        g_source_set_callback(guard, on_guard, e, NULL);
        g_source_attach(guard, e->context);
        e->expired = false;
        return guard;
}

static void env_unguard(GSource *guard)
{
        g_source_destroy(guard);
        g_source_unref(guard);
}

/* Run the loop until `want` more callbacks ran; fail after wait_ms(). */
static void env_run(struct env *e, unsigned want, const char *what)
{
        GSource *guard = env_guard(e);

        e->want = e->seen + want;
        g_main_loop_run(e->loop);
        env_unguard(guard);
        ck_assert_msg(!e->expired, "%s: %u of %u callbacks ran through the GLib loop in %d ms", what,
                      want - (e->want - e->seen), want, wait_ms());
}

static int on_echo(ipcbus_message *call, void *userdata, ipcbus_error *error)
{
        const char *text;
        int r = ipcbus_message_read(call, "text:s", &text);

        return r < 0 ? r : ipcbus_reply_method(call, "text:s", text);
}

static gboolean answer_later(gpointer userdata)
{
        struct env *e = userdata;

        ck_assert_int_eq(ipcbus_reply_method(e->held, "text:s", "later"), 0);
        e->held = ipcbus_message_unref(e->held);
        return G_SOURCE_REMOVE;
}

/* Keep the call; a timer of the same loop answers it, outside the source's dispatch. */
static int on_later(ipcbus_message *call, void *userdata, ipcbus_error *error)
{
        struct env *e = userdata;
        GSource *timer = g_timeout_source_new(20);

        e->held = ipcbus_message_ref(call);
        g_source_set_callback(timer, answer_later, e, NULL);
        g_source_attach(timer, e->context);
        g_source_unref(timer);
        return 0;
}

static int on_never(ipcbus_message *call, void *userdata, ipcbus_error *error)
{
        struct env *e = userdata;

        ipcbus_message_unref(e->held);
        e->held = ipcbus_message_ref(call);
        env_seen(e, 'n');
        return 0;
}

static const ipcbus_method methods[] = {
        {"Echo", on_echo},
        {"Later", on_later},
        {"Never", on_never},
        {NULL, NULL},
};

static guint attach(ipcbus_bus *bus, GMainContext *context)
{
        guint id;

        errno = 0;
        id = ipcbus_attach_glib(bus, context);
        ck_assert_msg(id > 0, "ipcbus_attach_glib: %s", strerror(errno));
        return id;
}

/* A new context and loop; the service exporting PATH and the client, both attached. */
static void env_init(struct env *e, struct testbus *tb)
{
        *e = (struct env){.context = g_main_context_new()};
        e->loop = g_main_loop_new(e->context, FALSE);
        e->service = testbus_connect(tb);
        ck_assert_int_eq(ipcbus_add_object(e->service, &e->object, PATH, IFACE, methods, e), 0);
        e->client = testbus_connect(tb);
        e->service_id = attach(e->service, e->context);
        e->client_id = attach(e->client, e->context);
}

static void env_deinit(struct env *e)
{
        if (e->client)
                ipcbus_detach_glib(e->client);
        if (e->service)
                ipcbus_detach_glib(e->service);
        ipcbus_message_unref(e->held);
        ipcbus_message_unref(e->answer);
        ipcbus_message_unref(e->signal);
        ipcbus_slot_unref(e->match);
        ipcbus_slot_unref(e->object);
        ipcbus_unref(e->client);
        ipcbus_unref(e->service);
        g_main_loop_unref(e->loop);
        g_main_context_unref(e->context);
}

static int on_answer(ipcbus_message *m, void *userdata, ipcbus_error *error)
{
        struct env *e = userdata;

        ipcbus_message_unref(e->answer);
        e->answer = ipcbus_message_ref(m);
        env_seen(e, 'a');
        return 0;
}

/* An asynchronous call from the client to the service's METHOD; on_answer gets the answer. */
static void call_async(struct env *e, const char *method, const char *text, uint64_t timeout_usec)
{
        char body[128];

        snprintf(body, sizeof(body), "{\"text\":\"%s\"}", text);
        ck_assert_int_eq(ipcbus_call_async(e->client, NULL, ipcbus_get_unique_name(e->service), PATH, IFACE, method,
                                           body, timeout_usec, on_answer, e),
                         0);
}

static void assert_answer_text(struct env *e, const char *expected)
{
        const char *text = NULL;

        ck_assert_ptr_nonnull(e->answer);
        ck_assert_msg(ipcbus_message_get_type(e->answer) == IPCBUS_MESSAGE_RETURN, "an error answered: %s",
                      ipcbus_message_get_error_name(e->answer));
        ck_assert_int_eq(ipcbus_message_read(e->answer, "text:s", &text), 1);
        ck_assert_str_eq(text, expected);
}

static void assert_answer_error(struct env *e, const char *name)
{
        ck_assert_ptr_nonnull(e->answer);
        ck_assert_int_eq(ipcbus_message_get_type(e->answer), IPCBUS_MESSAGE_ERROR);
        ck_assert_str_eq(ipcbus_message_get_error_name(e->answer), name);
}

/* The sources' callbacks: they run when the connection ends. */
static gboolean on_client_end(gpointer userdata)
{
        env_seen(userdata, 'e');
        return G_SOURCE_REMOVE;
}

static gboolean on_service_end(gpointer userdata)
{
        env_seen(userdata, 'E');
        return G_SOURCE_REMOVE;
}

static void watch_ends(struct env *e)
{
        GSource *client = g_main_context_find_source_by_id(e->context, e->client_id);
        GSource *service = g_main_context_find_source_by_id(e->context, e->service_id);

        ck_assert_ptr_nonnull(client);
        ck_assert_ptr_nonnull(service);
        g_source_set_callback(client, on_client_end, e, NULL);
        g_source_set_callback(service, on_service_end, e, NULL);
}

/* ipcbus_attach_glib must fail with errno `error` (saved at once: Check's assertions may change errno). */
static void attach_fails(ipcbus_bus *bus, GMainContext *context, int error)
{
        guint id;
        int saved;

        errno = 0;
        id = ipcbus_attach_glib(bus, context);
        saved = errno;
        ck_assert_uint_eq(id, 0);
        ck_assert_msg(saved == error, "errno %s, expected %s", strerror(saved), strerror(error));
}

START_TEST(test_call_answered)
{
        struct env e;

        env_init(&e, testbus_current());
        call_async(&e, "Echo", "hello", IPCBUS_TIMEOUT_DEFAULT);
        env_run(&e, 1, "the answer to Echo");
        assert_answer_text(&e, "hello");

        /* answered from a timer of the loop: the reply queued outside the source goes out */
        call_async(&e, "Later", "", IPCBUS_TIMEOUT_DEFAULT);
        env_run(&e, 1, "the answer to Later");
        assert_answer_text(&e, "later");
        ck_assert_str_eq(e.order, "aa");
        env_deinit(&e);
}
END_TEST

static int on_signal(ipcbus_message *m, void *userdata, ipcbus_error *error)
{
        struct env *e = userdata;

        ipcbus_message_unref(e->signal);
        e->signal = ipcbus_message_ref(m);
        env_seen(e, 's');
        return 0;
}

static gboolean emit_one(gpointer userdata)
{
        struct env *e = userdata;

        ck_assert_int_eq(ipcbus_emit(e->service, PATH, IFACE, "Ping", "n:u", 7u), 0);
        return G_SOURCE_REMOVE;
}

static gboolean emit_flood(gpointer userdata)
{
        struct env *e = userdata;

        for (unsigned i = 1; i <= FLOOD; i++)
                ck_assert_int_eq(ipcbus_emit(e->service, PATH, IFACE, "Ping", "n:u", i), 0);
        return G_SOURCE_REMOVE;
}

static void idle_on(struct env *e, GSourceFunc fn)
{
        GSource *idle = g_idle_source_new();

        g_source_set_callback(idle, fn, e, NULL);
        g_source_attach(idle, e->context);
        g_source_unref(idle);
}

START_TEST(test_signals)
{
        struct env e;
        unsigned n = 0;

        env_init(&e, testbus_current());
        ck_assert_int_eq(ipcbus_add_match(e.client, &e.match, "interface=" IFACE ",member=Ping", on_signal, &e, NULL),
                         0);
        idle_on(&e, emit_one);
        env_run(&e, 1, "the signal");
        ck_assert_str_eq(ipcbus_message_get_sender(e.signal), ipcbus_get_unique_name(e.service));
        ck_assert_int_eq(ipcbus_message_read(e.signal, "n:u", &n), 1);
        ck_assert_uint_eq(n, 7);

        /* more than one dispatch's batch: the source comes back for the rest, in order */
        idle_on(&e, emit_flood);
        env_run(&e, FLOOD, "the flood of signals");
        ck_assert_int_eq(ipcbus_message_read(e.signal, "n:u", &n), 1);
        ck_assert_uint_eq(n, FLOOD);
        env_deinit(&e);
}
END_TEST

START_TEST(test_timeout)
{
        struct testbus *tb = testbus_current();
        const int64_t timeout_ms = 300;
        struct env e;
        int64_t start, took;
        unsigned iterations = 0;
        GSource *guard;

        env_init(&e, tb);
        /* a stopped broker answers nothing: only the client's own deadline can end the call */
        ck_assert_int_eq(kill(tb->pid, SIGSTOP), 0);
        start = testbus_now_ms();
        call_async(&e, "Never", "", (uint64_t) timeout_ms * 1000);
        e.want = 1;
        guard = env_guard(&e);
        while (e.seen < e.want && !e.expired) {
                g_main_context_iteration(e.context, TRUE);
                iterations++;
        }
        took = testbus_now_ms() - start;
        env_unguard(guard);
        ck_assert_int_eq(kill(tb->pid, SIGCONT), 0);
        assert_answer_error(&e, IPCBUS_ERROR_TIMEOUT);
        ck_assert_msg(took >= timeout_ms, "the call timed out after %lld ms, before its %lld ms", (long long) took,
                      (long long) timeout_ms);
        ck_assert_msg(took < timeout_ms + wait_ms(), "the call timed out after %lld ms", (long long) took);
        /* the loop slept until the deadline: it did not spin */
        ck_assert_msg(iterations <= 5, "%u loop iterations waiting %lld ms", iterations, (long long) took);
        env_deinit(&e);
}
END_TEST

START_TEST(test_hangup_ends_source)
{
        struct testbus *tb = testbus_current();
        const char *answer, *end;
        struct env e;

        env_init(&e, tb);
        watch_ends(&e);
        call_async(&e, "Never", "", IPCBUS_TIMEOUT_INFINITE);
        env_run(&e, 1, "the call reaching the service");
        testbus_stop(tb);
        env_run(&e, 3, "the pending call's failure and both sources' ends");
        /* the client's pending call failed before its source ended */
        answer = strchr(e.order, 'a');
        end = strchr(e.order, 'e');
        ck_assert_msg(answer && end && answer < end && strchr(e.order, 'E'), "in order: %s", e.order);
        assert_answer_error(&e, IPCBUS_ERROR_DISCONNECTED);
        ck_assert_ptr_null(g_main_context_find_source_by_id(e.context, e.client_id));
        ck_assert_ptr_null(g_main_context_find_source_by_id(e.context, e.service_id));
        ck_assert_int_eq(ipcbus_detach_glib(e.client), -ENOENT);
        attach_fails(e.client, e.context, ENOTCONN);
        env_deinit(&e);
}
END_TEST

static int on_answer_close(ipcbus_message *m, void *userdata, ipcbus_error *error)
{
        struct env *e = userdata;

        ipcbus_close(e->client);
        return on_answer(m, userdata, error);
}

static gboolean close_service(gpointer userdata)
{
        struct env *e = userdata;

        ipcbus_close(e->service);
        return G_SOURCE_REMOVE;
}

START_TEST(test_close_ends_source)
{
        struct env e;

        env_init(&e, testbus_current());
        watch_ends(&e);
        /* closed by a callback the source dispatches */
        ck_assert_int_eq(ipcbus_call_async(e.client, NULL, ipcbus_get_unique_name(e.service), PATH, IFACE, "Echo",
                                           "{\"text\":\"bye\"}", IPCBUS_TIMEOUT_DEFAULT, on_answer_close, &e),
                         0);
        env_run(&e, 2, "the answer and the client's source ending");
        ck_assert_str_eq(e.order, "ae");
        assert_answer_text(&e, "bye");
        ck_assert_ptr_null(g_main_context_find_source_by_id(e.context, e.client_id));

        /* closed from another source of the loop: its descriptor is polled no more */
        idle_on(&e, close_service);
        env_run(&e, 1, "the service's source ending");
        ck_assert_str_eq(e.order, "aeE");
        ck_assert_ptr_null(g_main_context_find_source_by_id(e.context, e.service_id));
        ck_assert_int_eq(ipcbus_detach_glib(e.service), -ENOENT);
        env_deinit(&e);
}
END_TEST

START_TEST(test_attach_detach)
{
        struct testbus *tb = testbus_current();
        GMainContext *other = g_main_context_new();
        ipcbus_bus *borrowed;
        struct env e;
        guint id;

        env_init(&e, tb);
        attach_fails(NULL, e.context, EINVAL);
        ck_assert_int_eq(ipcbus_detach_glib(NULL), -EINVAL);
        /* one context at a time */
        attach_fails(e.client, e.context, EBUSY);
        attach_fails(e.client, other, EBUSY);

        /* detached: the source is gone, the connection open and usable */
        ck_assert_int_eq(ipcbus_detach_glib(e.client), 0);
        ck_assert_ptr_null(g_main_context_find_source_by_id(e.context, e.client_id));
        ck_assert_int_eq(ipcbus_detach_glib(e.client), -ENOENT);
        ck_assert(ipcbus_is_open(e.client));
        json_object_put(testbus_driver(e.client, "GetId", NULL));

        /* attached again, to another context: that context's loop drives it */
        id = attach(e.client, other);
        ck_assert_ptr_nonnull(g_main_context_find_source_by_id(other, id));
        ck_assert_int_eq(ipcbus_detach_glib(e.client), 0);

        /* the source holds a reference: the connection lives on without ours, served by the loop */
        e.client_id = attach(e.client, e.context);
        borrowed = e.client;
        e.client = NULL;
        ipcbus_unref(borrowed);
        ck_assert(ipcbus_is_open(borrowed));
        ck_assert_int_eq(ipcbus_call_async(borrowed, NULL, ipcbus_get_unique_name(e.service), PATH, IFACE, "Echo",
                                           "{\"text\":\"kept\"}", IPCBUS_TIMEOUT_DEFAULT, on_answer, &e),
                         0);
        env_run(&e, 1, "the answer on a connection only the source holds");
        assert_answer_text(&e, "kept");
        /* detaching drops the last reference: the connection closes (valgrind sees it freed with the answer) */
        ck_assert_int_eq(ipcbus_detach_glib(borrowed), 0);
        g_main_context_unref(other);
        env_deinit(&e);
}
END_TEST

/* ---- two processes ---- */

struct child {
        struct testbus_peer *p;
        GMainLoop *loop;
        ipcbus_bus *bus;
};

/* Emit Pinged(text), then answer. */
static int child_on_emit(ipcbus_message *call, void *userdata, ipcbus_error *error)
{
        struct child *c = userdata;
        const char *text;
        int r = ipcbus_message_read(call, "text:s", &text);

        if (r >= 0)
                r = ipcbus_emit(c->bus, PATH, IFACE, "Pinged", "text:s", text);
        return r < 0 ? r : ipcbus_reply_method(call, NULL);
}

static const ipcbus_method child_methods[] = {
        {"Echo", on_echo},
        {"Emit", child_on_emit},
        {NULL, NULL},
};

static int child_on_answer(ipcbus_message *m, void *userdata, ipcbus_error *error)
{
        struct child *c = userdata;
        const char *text = "(none)";

        if (ipcbus_message_get_type(m) == IPCBUS_MESSAGE_ERROR)
                testbus_peer_fail(c->p, "the parent answered %s", ipcbus_message_get_error_name(m));
        if (ipcbus_message_read(m, "text:s", &text) < 0)
                testbus_peer_fail(c->p, "the parent's answer: %s", ipcbus_last_error());
        testbus_peer_report(c->p, "answer %s", text);
        return 0;
}

/* "call NAME": call NAME's Echo through the loop; the answer is reported. */
static void child_command(struct child *c, const char *line)
{
        if (strncmp(line, "call ", 5) == 0) {
                int r = ipcbus_call_async(c->bus, NULL, line + 5, PATH, IFACE, "Echo", "{\"text\":\"from the child\"}",
                                          IPCBUS_TIMEOUT_DEFAULT, child_on_answer, c);

                if (r < 0)
                        testbus_peer_fail(c->p, "call: %s", ipcbus_strerror(r));
                return;
        }
        testbus_peer_fail(c->p, "unknown command '%s'", line);
}

/* The command pipe is readable: run its commands; at its end (the parent's cue), quit. */
static gboolean child_on_command_fd(gint fd, GIOCondition condition, gpointer userdata)
{
        struct child *c = userdata;
        char *line = testbus_lines_read(&c->p->cmd, TESTBUS_WAIT_MS);

        while (line) {
                child_command(c, line);
                free(line);
                line = memchr(c->p->cmd.buf, '\n', c->p->cmd.len) ? testbus_lines_read(&c->p->cmd, 0) : NULL;
        }
        if (c->p->cmd.eof) {
                g_main_loop_quit(c->loop);
                return G_SOURCE_REMOVE;
        }
        return G_SOURCE_CONTINUE;
}

/* The child: owns CHILD_NAME, exports PATH, and is served by its own GMainLoop only. */
static int child_serve(struct testbus_peer *p, void *arg)
{
        GMainContext *context = g_main_context_new();
        struct child c = {.p = p, .loop = g_main_loop_new(context, FALSE), .bus = testbus_peer_connect(p)};
        ipcbus_slot *object = NULL;
        GSource *commands;

        testbus_peer_check(p, ipcbus_add_object(c.bus, &object, PATH, IFACE, child_methods, &c) == 0);
        testbus_peer_check(p, ipcbus_request_name(c.bus, CHILD_NAME, 0, NULL) == IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        testbus_peer_check(p, ipcbus_attach_glib(c.bus, context) > 0);
        commands = g_unix_fd_source_new(p->cmd.fd, G_IO_IN | G_IO_HUP);
        g_source_set_callback(commands, (GSourceFunc) (void (*)(void)) child_on_command_fd, &c, NULL);
        g_source_attach(commands, context);
        g_source_unref(commands);
        testbus_peer_report(p, "ready %s", ipcbus_get_unique_name(c.bus));
        g_main_loop_run(c.loop);

        testbus_peer_check(p, ipcbus_detach_glib(c.bus) == 0);
        ipcbus_slot_unref(object);
        ipcbus_unref(c.bus);
        g_main_loop_unref(c.loop);
        g_main_context_unref(context);
        return 0;
}

static gboolean on_child_report(gint fd, GIOCondition condition, gpointer userdata)
{
        env_seen(userdata, 'r');
        return G_SOURCE_REMOVE;
}

START_TEST(test_two_processes)
{
        struct testbus *tb = testbus_current();
        struct testbus_child child;
        const char *text = NULL;
        GSource *report;
        struct env e;
        char *line;

        testbus_child_start(tb, &child, child_serve, NULL);
        testbus_child_ready(&child);
        env_init(&e, tb);

        /* the parent calls the child, and gets the signal the child emits first */
        ck_assert_int_eq(ipcbus_add_match(e.client, &e.match, "sender=" CHILD_NAME ",interface=" IFACE ",member=Pinged",
                                          on_signal, &e, NULL),
                         0);
        ck_assert_int_eq(ipcbus_call_async(e.client, NULL, CHILD_NAME, PATH, IFACE, "Emit", "{\"text\":\"across\"}",
                                           IPCBUS_TIMEOUT_DEFAULT, on_answer, &e),
                         0);
        env_run(&e, 2, "the child's signal and answer");
        ck_assert_str_eq(e.order, "sa");
        ck_assert_ptr_nonnull(e.signal);
        ck_assert_str_eq(ipcbus_message_get_sender(e.signal), child.unique);
        ck_assert_int_eq(ipcbus_message_read(e.signal, "text:s", &text), 1);
        ck_assert_str_eq(text, "across");
        ck_assert_int_eq(ipcbus_message_get_type(e.answer), IPCBUS_MESSAGE_RETURN);
        ck_assert_int_eq(ipcbus_call_async(e.client, NULL, CHILD_NAME, PATH, IFACE, "Echo", "{\"text\":\"echo\"}",
                                           IPCBUS_TIMEOUT_DEFAULT, on_answer, &e),
                         0);
        env_run(&e, 1, "the child's echo");
        assert_answer_text(&e, "echo");

        /* the child calls the parent's service, which only the parent's loop serves */
        testbus_child_send(&child, "call %s", ipcbus_get_unique_name(e.service));
        report = g_unix_fd_source_new(child.out.fd, G_IO_IN | G_IO_HUP);
        g_source_set_callback(report, (GSourceFunc) (void (*)(void)) on_child_report, &e, NULL);
        g_source_attach(report, e.context);
        env_run(&e, 1, "the child's report");
        g_source_destroy(report);
        g_source_unref(report);
        line = testbus_child_read(&child, wait_ms());
        ck_assert_str_eq(line, "answer from the child");
        free(line);

        /* the end of the command pipe ends the child's loop; it exits 0 */
        testbus_child_finish(&child);
        env_deinit(&e);
}
END_TEST

/* ---- the example ---- */

static const char *glib_echo(void)
{
        return testbus_program("GLIB_ECHO", "examples/glib/glib-echo");
}

/* Start glib-echo serve and wait until it owns its name. */
static void echo_serve(struct testbus *tb, struct testbus_proc *svc)
{
        const char *argv[] = {glib_echo(), "serve", NULL};
        ipcbus_bus *bus = testbus_connect(tb);
        int64_t deadline = testbus_now_ms() + wait_ms();
        char *owner;

        testbus_proc_spawn(svc, argv);
        while (!(owner = testbus_name_owner(bus, "org.example.GlibEcho"))) {
                if (testbus_now_ms() > deadline) {
                        int status = testbus_proc_terminate(svc);

                        ck_abort_msg("glib-echo serve did not take its name (exit %d): %s", status, svc->err.buf);
                }
                usleep(10 * 1000);
        }
        free(owner);
        ipcbus_unref(bus);
}

/* glib-echo ARGS... must exit `status` and print `out` and `err`. */
static void echo_expect(const char *const *argv, int status, const char *out, const char *err)
{
        struct testbus_proc p;
        int got = testbus_run(&p, argv, wait_ms());

        ck_assert_msg(got == status, "glib-echo %s: exit %d, expected %d; stderr: %s", argv[1], got, status, p.err.buf);
        ck_assert_str_eq(p.out.buf, out);
        if (err)
                ck_assert_str_eq(p.err.buf, err);
        testbus_proc_deinit(&p);
}

START_TEST(test_example)
{
        struct testbus *tb = testbus_current();
        const char *call_hello[] = {glib_echo(), "call", "hello", NULL};
        const char *usage[] = {glib_echo(), "call", NULL};
        static const char unknown[] = "glib-echo: " IPCBUS_ERROR_SERVICE_UNKNOWN ": ";
        struct testbus_proc svc;
        struct testbus_proc p;

        ck_assert_int_eq(setenv("IPCBUS_ADDRESS", tb->address, 1), 0);
        echo_expect(usage, 2, "", "Usage: glib-echo serve | glib-echo call TEXT\n");
        /* nobody serves it yet: the broker's error, named */
        ck_assert_int_eq(testbus_run(&p, call_hello, wait_ms()), 1);
        ck_assert_str_eq(p.out.buf, "");
        ck_assert_msg(strncmp(p.err.buf, unknown, sizeof(unknown) - 1) == 0, "stderr: %s", p.err.buf);
        testbus_proc_deinit(&p);

        echo_serve(tb, &svc);
        echo_expect(call_hello, 0, "reply: hello\nsignal: hello\n", "");
        echo_expect(call_hello, 0, "reply: hello\nsignal: hello\n", "");
        /* SIGTERM, through the loop's Unix signal source: a clean exit */
        ck_assert_int_eq(testbus_proc_terminate(&svc), 0);
        testbus_proc_deinit(&svc);

        /* the bus going away ends the service's source, and the service with it */
        echo_serve(tb, &svc);
        testbus_stop(tb);
        ck_assert_msg(testbus_proc_finish(&svc, wait_ms()) == 0, "%s", svc.err.buf);
        ck_assert_str_eq(svc.err.buf, "");
        testbus_proc_deinit(&svc);
}
END_TEST

static Suite *glib_suite(void)
{
        Suite *s = suite_create("glib");
        TCase *tc;

        tc = testbus_tcase("one process");
        tcase_add_test(tc, test_call_answered);
        tcase_add_test(tc, test_signals);
        tcase_add_test(tc, test_timeout);
        tcase_add_test(tc, test_hangup_ends_source);
        tcase_add_test(tc, test_close_ends_source);
        tcase_add_test(tc, test_attach_detach);
        suite_add_tcase(s, tc);

        tc = testbus_tcase("two processes");
        tcase_add_test(tc, test_two_processes);
        suite_add_tcase(s, tc);

        tc = testbus_tcase("example");
        tcase_add_test(tc, test_example);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return testbus_run_suite(glib_suite());
}
