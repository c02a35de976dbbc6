/* SPDX-License-Identifier: MIT */
/*
 * The broker's statistics (PROTOCOL.md 7.6) against a real ipcbusd: after
 * known traffic GetStats counts exactly that traffic by type (deltas from a
 * first GetStats, since the fixture itself talks to the driver), per
 * connection for the caller and the service; GetConnectionStats by
 * well-known name; who sees which connections; backpressure, disconnect
 * reasons and refusals counted; GetMetrics accepted by prometheus_client's
 * strict OpenMetrics parser and by promtool (both required: a missing tool
 * fails the test, it is not skipped).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/testbus.h"

static const struct testbus_cred alice = {.uid = 4242, .gid = 4242};
static const struct testbus_cred bob = {.uid = 4243, .gid = 4243};

#define SERVICE_NAME "org.example.Stats"
#define PYTHON "/usr/bin/python3"
#define PROMTOOL "/usr/bin/promtool"

/* GetStats, parsed (the caller puts it). */
static json_object *get_stats(ipcbus_bus *bus)
{
        json_object *o = testbus_driver(bus, "GetStats", "{}");

        ck_assert_ptr_nonnull(o);
        return o;
}

/* An integer at a path of keys (NULL-terminated) under o, asserting each is there. */
static int64_t stat_at(json_object *o, ...) __attribute__((sentinel));

static int64_t stat_at(json_object *o, ...)
{
        const char *key, *next;
        va_list ap;

        va_start(ap, o);
        key = va_arg(ap, const char *);
        while ((next = va_arg(ap, const char *))) {
                json_object *inner;

                ck_assert_msg(json_object_object_get_ex(o, key, &inner), "no \"%s\" in %s", key,
                              json_object_to_json_string(o));
                o = inner;
                key = next;
        }
        va_end(ap);
        return testbus_json_int(o, key);
}

/* A counter of a map that lists only its non-zero entries ("refusals", "disconnects"): 0 when absent. */
static int64_t map_count(json_object *stats, const char *map, const char *key)
{
        json_object *bus = NULL, *m = NULL, *v = NULL;

        ck_assert(json_object_object_get_ex(stats, "bus", &bus));
        ck_assert_msg(json_object_object_get_ex(bus, map, &m), "no \"%s\" in the bus totals", map);
        if (!json_object_object_get_ex(m, key, &v))
                return 0;
        ck_assert_int_gt(json_object_get_int64(v), 0); /* a listed entry is never 0 */
        return json_object_get_int64(v);
}

/* The CONN of `unique` in GetStats's connections, or NULL (borrowed from stats). */
static json_object *find_conn(json_object *stats, const char *unique)
{
        json_object *a = testbus_json_array(stats, "connections");

        for (size_t i = 0; i < json_object_array_length(a); i++) {
                json_object *c = json_object_array_get_idx(a, i);

                if (strcmp(testbus_json_string(c, "unique_name"), unique) == 0)
                        return c;
        }
        return NULL;
}

static json_object *conn_of(json_object *stats, const char *unique)
{
        json_object *c = find_conn(stats, unique);

        ck_assert_msg(c, "%s is not among the connections of %s", unique, json_object_to_json_string(stats));
        return c;
}

/* GetConnectionStats {"name": name} from bus. */
static json_object *connection_stats(ipcbus_bus *bus, const char *name)
{
        char body[512];

        snprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
        return testbus_driver(bus, "GetConnectionStats", body);
}

#define DELTA(after, before, ...)                                                                                      \
        (stat_at((after), __VA_ARGS__, (const char *) NULL) - stat_at((before), __VA_ARGS__, (const char *) NULL))

/* ---- traffic counted by type, per connection ------------------------------------------------------- */

#define N_CALLS 5
#define N_SIGNALS 3

START_TEST(test_traffic_counted)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        ipcbus_bus *c;
        json_object *s0, *s1, *c0, *c1, *v0, *v1, *names;

        testbus_service_start(tb, &svc, SERVICE_NAME);
        c = testbus_connect(tb);
        s0 = get_stats(c);
        c0 = conn_of(s0, ipcbus_get_unique_name(c));
        v0 = conn_of(s0, svc.unique);

        for (int i = 0; i < N_CALLS; i++)
                json_object_put(
                        testbus_call(c, SERVICE_NAME, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Fixed", "{}"));
        free(testbus_call_error(c, SERVICE_NAME, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Fail", "{}",
                                TESTBUS_SERVICE_ERROR));
        for (int i = 0; i < N_SIGNALS; i++)
                ck_assert_int_eq(ipcbus_emit_signal(c, NULL, "/org/example/Stats", "org.example.Stats", "Tick", "{}"),
                                 0);
        s1 = get_stats(c);

        /* the calls, the failing one and the second GetStats itself; the service's answers; the signals */
        ck_assert_int_eq(DELTA(s1, s0, "bus", "messages", "call"), N_CALLS + 2);
        ck_assert_int_eq(DELTA(s1, s0, "bus", "messages", "return"), N_CALLS);
        ck_assert_int_eq(DELTA(s1, s0, "bus", "messages", "error"), 1);
        ck_assert_int_eq(DELTA(s1, s0, "bus", "messages", "signal"), N_SIGNALS);
        /* the first GetStats's reply: the broker's own */
        ck_assert_int_ge(DELTA(s1, s0, "bus", "driver_messages"), 1);
        ck_assert_int_gt(DELTA(s1, s0, "bus", "bytes_in"), 0);
        ck_assert_int_gt(DELTA(s1, s0, "bus", "bytes_out"), 0);
        ck_assert_int_eq(stat_at(s1, "bus", "names", NULL), 1);
        ck_assert_int_eq(stat_at(s1, "bus", "connections", NULL), 2);
        ck_assert_int_eq(stat_at(s1, "bus", "pending_calls", NULL), 0); /* a driver call awaits no reply slot */

        /* the caller: every frame it sent, and what was queued to it */
        c1 = conn_of(s1, ipcbus_get_unique_name(c));
        ck_assert_int_eq(DELTA(c1, c0, "messages_in"), N_CALLS + 1 + N_SIGNALS + 1);
        /* the answers to its calls and the reply to the first GetStats */
        ck_assert_int_eq(DELTA(c1, c0, "messages_out"), N_CALLS + 1 + 1);
        ck_assert_int_gt(DELTA(c1, c0, "bytes_in"), 0);
        ck_assert_int_eq(DELTA(c1, c0, "errors_sent"), 0);
        ck_assert_int_eq(testbus_json_int(c1, "uid"), (int64_t) getuid());
        ck_assert_int_eq(testbus_json_int(c1, "pending_calls"), 0);
        ck_assert(!testbus_json_bool(c1, "monitor"));

        /* the service, by its well-known name: the calls in, its answers out, one of them an error */
        v1 = connection_stats(c, SERVICE_NAME);
        ck_assert_str_eq(testbus_json_string(v1, "unique_name"), svc.unique);
        ck_assert_int_eq(DELTA(v1, v0, "messages_in"), N_CALLS + 1);
        ck_assert_int_eq(DELTA(v1, v0, "messages_out"), N_CALLS + 1);
        ck_assert_int_eq(DELTA(v1, v0, "errors_sent"), 1);
        ck_assert_int_gt(DELTA(v1, v0, "bytes_out"), 0);
        names = testbus_json_array(v1, "names");
        ck_assert_uint_eq(json_object_array_length(names), 1);
        ck_assert(testbus_json_array_has(names, SERVICE_NAME));
        ck_assert_int_eq(testbus_json_int(v1, "queued_messages"), 0);
        ck_assert_int_eq(testbus_json_int(v1, "queued_fds"), 0);

        json_object_put(v1);
        json_object_put(s1);
        json_object_put(s0);
        ipcbus_unref(c);
        testbus_child_finish(&svc);
}
END_TEST

/* Every key of the contract is there (others may be added). */
START_TEST(test_keys)
{
        static const char *const bus_keys[] = {
                "id",
                "uptime_ms",
                "connections",
                "connections_peak",
                "connections_accepted",
                "monitors",
                "names",
                "matches",
                "pending_calls",
                "queued_bytes",
                "driver_messages",
                "bytes_in",
                "bytes_out",
                "memfd_bodies",
                "deliveries",
                "monitor_copies_lost",
                "held_back",
                "timeouts",
                "no_reply",
                NULL,
        };
        static const char *const conn_keys[] = {
                "unique_name",   "uid",
                "gid",           "pid",
                "connected_ms",  "monitor",
                "names",         "matches",
                "pending_calls", "messages_in",
                "messages_out",  "bytes_in",
                "bytes_out",     "queued_messages",
                "queued_bytes",  "queued_fds",
                "fds_in_flight", "held_back",
                "errors_sent",   NULL,
        };
        struct testbus *tb = testbus_current();
        ipcbus_bus *c = testbus_connect(tb);
        json_object *s = get_stats(c), *bus, *conn, *v;

        ck_assert(json_object_object_get_ex(s, "bus", &bus));
        for (size_t i = 0; bus_keys[i]; i++)
                ck_assert_msg(json_object_object_get_ex(bus, bus_keys[i], NULL), "no \"%s\" in BUS", bus_keys[i]);
        ck_assert_str_eq(testbus_json_string(bus, "id"),
                         testbus_json_string(v = testbus_driver(c, "GetId", "{}"), "id"));
        json_object_put(v);
        for (size_t i = 0; i < 4; i++) {
                static const char *const maps[] = {"messages", "activations", "refusals", "disconnects"};

                ck_assert(json_object_object_get_ex(bus, maps[i], &v));
                ck_assert(json_object_is_type(v, json_type_object));
        }
        ck_assert_int_eq(stat_at(s, "bus", "activations", "started", NULL), 0);
        ck_assert_int_eq(stat_at(s, "bus", "activations", "failed", NULL), 0);
        conn = conn_of(s, ipcbus_get_unique_name(c));
        for (size_t i = 0; conn_keys[i]; i++)
                ck_assert_msg(json_object_object_get_ex(conn, conn_keys[i], NULL), "no \"%s\" in CONN", conn_keys[i]);

        testbus_driver_error(c, "GetConnectionStats", "{\"name\":\":1.999\"}", IPCBUS_ERROR_NAME_HAS_NO_OWNER);
        testbus_driver_error(c, "GetConnectionStats", "{\"name\":\"org.example.Nobody\"}",
                             IPCBUS_ERROR_NAME_HAS_NO_OWNER);
        testbus_driver_error(c, "GetConnectionStats", "{\"name\":\"not a name\"}", IPCBUS_ERROR_INVALID_ARGS);
        testbus_driver_error(c, "GetConnectionStats", "{}", IPCBUS_ERROR_INVALID_ARGS);
        json_object_put(s);
        ipcbus_unref(c);
}
END_TEST

/* ---- who sees what ----------------------------------------------------------------------------------- */

/* Whether every connection GetStats lists is of uid. */
static bool all_of_uid(json_object *stats, uid_t uid)
{
        json_object *a = testbus_json_array(stats, "connections");

        for (size_t i = 0; i < json_object_array_length(a); i++)
                if (testbus_json_int(json_object_array_get_idx(a, i), "uid") != (int64_t) uid)
                        return false;
        return true;
}

START_TEST(test_visibility)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *a = testbus_connect_as(tb, &alice), *a2 = testbus_connect_as(tb, &alice);
        ipcbus_bus *b = testbus_connect_as(tb, &bob), *root = testbus_connect(tb);
        const char *ua = ipcbus_get_unique_name(a), *ua2 = ipcbus_get_unique_name(a2);
        const char *ub = ipcbus_get_unique_name(b), *ur = ipcbus_get_unique_name(root);
        json_object *s, *v;

        /* alice sees her two connections, no one else's; the totals count everyone */
        s = get_stats(a);
        ck_assert(all_of_uid(s, alice.uid));
        ck_assert_ptr_nonnull(find_conn(s, ua));
        ck_assert_ptr_nonnull(find_conn(s, ua2));
        ck_assert_ptr_null(find_conn(s, ub));
        ck_assert_ptr_null(find_conn(s, ur));
        ck_assert_int_eq(stat_at(s, "bus", "connections", NULL), 4);
        json_object_put(s);

        /* bob may not look at alice's connection, nor alice at root's; each at their own */
        {
                char body[128];

                snprintf(body, sizeof(body), "{\"name\":\"%s\"}", ua);
                testbus_driver_error(b, "GetConnectionStats", body, IPCBUS_ERROR_ACCESS_DENIED);
                snprintf(body, sizeof(body), "{\"name\":\"%s\"}", ur);
                testbus_driver_error(a, "GetConnectionStats", body, IPCBUS_ERROR_ACCESS_DENIED);
        }
        v = connection_stats(a, ua2);
        ck_assert_int_eq(testbus_json_int(v, "uid"), alice.uid);
        json_object_put(v);

        /* root (the broker's uid here) sees every connection, and anyone's figures */
        s = get_stats(root);
        ck_assert_ptr_nonnull(find_conn(s, ua));
        ck_assert_ptr_nonnull(find_conn(s, ua2));
        ck_assert_ptr_nonnull(find_conn(s, ub));
        ck_assert_ptr_nonnull(find_conn(s, ur));
        json_object_put(s);
        v = connection_stats(root, ub);
        ck_assert_int_eq(testbus_json_int(v, "uid"), bob.uid);
        json_object_put(v);

        ipcbus_unref(a);
        ipcbus_unref(a2);
        ipcbus_unref(b);
        ipcbus_unref(root);
}
END_TEST

/* ---- backpressure ------------------------------------------------------------------------------------- */

#define HOLD_CONFIG "{\"limits\":{\"backpressure_bytes\":65536,\"stall_timeout_ms\":600000}}"
#define HOLD_BODY_BYTES (32 * 1024)
#define HOLD_FRAMES 256

/* Unicast signals of HOLD_BODY_BYTES to `to` on the nonblocking fd, until the socket takes no more. */
static void flood(int fd, const char *to)
{
        static char body[HOLD_BODY_BYTES + 16];
        char header[256];
        uint8_t prefix[16];

        memset(body, 'x', sizeof(body));
        memcpy(body, "{\"x\":\"", 6);
        memcpy(body + HOLD_BODY_BYTES - 2, "\"}", 3);
        for (unsigned i = 0; i < HOLD_FRAMES; i++) {
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                size_t hl, bl = strlen(body);
                char frame[sizeof(prefix) + sizeof(header) + sizeof(body)];
                size_t off = 0;

                hl = (size_t) snprintf(header, sizeof(header),
                                       "{\"type\":\"signal\",\"serial\":%u,\"destination\":\"%s\",\"path\":\"/o\","
                                       "\"interface\":\"org.example.Flood\",\"member\":\"Chunk\"}",
                                       i + 10, to);
                testbus_raw_prefix(prefix, (uint32_t) hl, (uint32_t) bl, 0);
                memcpy(frame, prefix, sizeof(prefix));
                memcpy(frame + sizeof(prefix), header, hl);
                memcpy(frame + sizeof(prefix) + hl, body, bl);
                /* A whole frame or nothing more: wait a little for room, then stop. */
                while (off < sizeof(prefix) + hl + bl) {
                        ssize_t w;

                        if (poll(&p, 1, 200) <= 0)
                                return;
                        w = write(fd, frame + off, sizeof(prefix) + hl + bl - off);
                        if (w < 0 && errno != EAGAIN && errno != EINTR)
                                return;
                        if (w > 0)
                                off += (size_t) w;
                }
        }
}

START_TEST(test_held_back)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *obs;
        json_object *s0, *s = NULL, *v;
        char *staller_name, *sender_name;
        int staller, sender;
        bool held = false;

        testbus_start_config(tb, HOLD_CONFIG);
        obs = testbus_connect(tb);
        staller = testbus_raw_connect(tb);
        staller_name = testbus_raw_hello(staller); /* and never reads again */
        sender = testbus_raw_connect(tb);
        sender_name = testbus_raw_hello(sender);
        s0 = get_stats(obs);
        ck_assert_int_ne(fcntl(sender, F_SETFL, fcntl(sender, F_GETFL) | O_NONBLOCK), -1);
        flood(sender, staller_name);

        for (int64_t end = testbus_now_ms() + TESTBUS_WAIT_MS * testbus_slow_factor();
             !held && testbus_now_ms() < end;) {
                json_object_put(s);
                s = get_stats(obs);
                held = DELTA(s, s0, "bus", "held_back") >= 1;
                if (!held)
                        usleep(20000);
        }
        ck_assert_msg(held, "no sender held back: %s", json_object_to_json_string(s));
        v = connection_stats(obs, sender_name);
        ck_assert_int_ge(testbus_json_int(v, "held_back"), 1);
        json_object_put(v);
        /* what waits for the staller, and whom the sender waits for */
        v = connection_stats(obs, staller_name);
        ck_assert_int_ge(testbus_json_int(v, "queued_bytes"), 65536);
        ck_assert_int_ge(testbus_json_int(v, "queued_messages"), 1);
        ck_assert_int_ge(stat_at(s, "bus", "queued_bytes", NULL), testbus_json_int(v, "queued_bytes"));
        json_object_put(v);
        ck_assert_str_eq(testbus_json_string(conn_of(s, sender_name), "waiting_on"), staller_name);

        json_object_put(s);
        json_object_put(s0);
        free(staller_name);
        free(sender_name);
        close(staller);
        close(sender);
        ipcbus_unref(obs);
}
END_TEST

/* ---- disconnects and refusals -------------------------------------------------------------------------- */

START_TEST(test_disconnect_reasons)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *obs = testbus_connect(tb), *gone;
        json_object *s0 = get_stats(obs), *s = NULL;
        int fd = testbus_raw_connect(tb);
        bool counted = false;

        /* garbage after Hello: a protocol error, counted by the time the socket ends */
        free(testbus_raw_hello(fd));
        testbus_raw_send(fd, "this is no frame at all, not even a prefix", 42);
        free(testbus_raw_expect_refused(fd, IPCBUS_ERROR_PROTOCOL));
        close(fd);
        s = get_stats(obs);
        ck_assert_int_eq(map_count(s, "disconnects", "protocol_error") - map_count(s0, "disconnects", "protocol_error"),
                         1);
        ck_assert_int_eq(map_count(s, "disconnects", "hangup"), map_count(s0, "disconnects", "hangup"));

        /* a client that leaves: a hangup, once the broker has read its end */
        gone = testbus_connect(tb);
        ipcbus_unref(gone);
        for (int64_t end = testbus_now_ms() + TESTBUS_WAIT_MS * testbus_slow_factor();
             !counted && testbus_now_ms() < end;) {
                json_object_put(s);
                s = get_stats(obs);
                counted = map_count(s, "disconnects", "hangup") - map_count(s0, "disconnects", "hangup") == 1;
                if (!counted)
                        usleep(20000);
        }
        ck_assert_msg(counted, "the hangup was not counted: %s", json_object_to_json_string(s));
        ck_assert_int_eq(DELTA(s, s0, "bus", "connections_accepted"), 2);
        ck_assert_int_eq(stat_at(s, "bus", "connections", NULL), 1);
        ck_assert_int_ge(stat_at(s, "bus", "connections_peak", NULL), 2);
        json_object_put(s);
        json_object_put(s0);
        ipcbus_unref(obs);
}
END_TEST

#define REFUSAL_CONFIG "{\"limits\":{\"max_names_per_connection\":2}}"

START_TEST(test_refusals)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *c;
        json_object *s0, *s;

        testbus_start_config(tb, REFUSAL_CONFIG);
        c = testbus_connect(tb);
        s0 = get_stats(c);
        ck_assert_int_eq(map_count(s0, "refusals", "max_names_per_connection"), 0);
        ck_assert_int_eq(testbus_request_name(c, "org.example.A", 0), 1);
        ck_assert_int_eq(testbus_request_name(c, "org.example.B", 0), 1);
        testbus_driver_error(c, "RequestName", "{\"name\":\"org.example.C\"}", IPCBUS_ERROR_LIMITS_EXCEEDED);
        testbus_driver_error(c, "RequestName", "{\"name\":\"org.example.D\"}", IPCBUS_ERROR_LIMITS_EXCEEDED);
        s = get_stats(c);
        ck_assert_int_eq(map_count(s, "refusals", "max_names_per_connection"), 2);
        ck_assert_int_eq(map_count(s, "refusals", "max_names_per_uid"), 0);
        {
                json_object *names = testbus_json_array(conn_of(s, ipcbus_get_unique_name(c)), "names");

                /* sorted */
                ck_assert_uint_eq(json_object_array_length(names), 2);
                ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(names, 0)), "org.example.A");
                ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(names, 1)), "org.example.B");
        }
        ck_assert_int_eq(stat_at(s, "bus", "names", NULL), 2);
        json_object_put(s);
        json_object_put(s0);
        ipcbus_unref(c);
}
END_TEST

/* ---- timeouts, NoReply, activations ---------------------------------------------------------------------- */

#define TIMEOUT_CONFIG "{\"limits\":{\"reply_timeout_ms\":300}}"

START_TEST(test_timeouts_and_no_reply)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        ipcbus_bus *c;
        json_object *s0, *s;
        char *line;
        int fd;

        testbus_start_config(tb, TIMEOUT_CONFIG);
        testbus_service_start(tb, &svc, SERVICE_NAME);
        c = testbus_connect(tb);
        s0 = get_stats(c);

        /* held past reply_timeout_ms: the broker answers Timeout */
        free(testbus_call_error(c, SERVICE_NAME, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Hold", "{}",
                                IPCBUS_ERROR_TIMEOUT));
        free(testbus_child_read(&svc, TESTBUS_WAIT_MS));
        /* held while the service dies: NoReply */
        fd = testbus_raw_connect(tb);
        free(testbus_raw_hello(fd));
        testbus_raw_send_frame(fd,
                               "{\"type\":\"call\",\"serial\":5,\"destination\":\"" SERVICE_NAME
                               "\",\"path\":\"" TESTBUS_SERVICE_PATH "\",\"interface\":\"" TESTBUS_SERVICE_INTERFACE
                               "\","
                               "\"member\":\"Hold\",\"timeout_ms\":60000}",
                               "{}");
        line = testbus_child_read(&svc, TESTBUS_WAIT_MS);
        ck_assert_msg(strncmp(line, "held ", 5) == 0, "the service said %s", line);
        free(line);
        s = get_stats(c);
        ck_assert_int_eq(stat_at(s, "bus", "pending_calls", NULL), 1);
        json_object_put(s);
        testbus_child_kill(&svc);
        testbus_raw_expect_reply(fd, 5, IPCBUS_ERROR_NO_REPLY, NULL);

        s = get_stats(c);
        ck_assert_int_eq(DELTA(s, s0, "bus", "timeouts"), 1);
        ck_assert_int_eq(DELTA(s, s0, "bus", "no_reply"), 1);
        ck_assert_int_eq(stat_at(s, "bus", "pending_calls", NULL), 0);
        json_object_put(s);
        json_object_put(s0);
        close(fd);
        ipcbus_unref(c);
}
END_TEST

START_TEST(test_activations)
{
        struct testbus *tb = testbus_current();
        char dir[256], path[512], text[2048], config[1024];
        ipcbus_bus *c;
        json_object *s, *o;

        testbus_mkdtemp(dir, sizeof(dir), "services");
        snprintf(path, sizeof(path), "%s/org.example.Started.service", dir);
        snprintf(text, sizeof(text),
                 "{\"name\":\"org.example.Started\",\"exec\":[\"%s\",\"--name\",\"org.example.Started\"]}",
                 testbus_test_service());
        testbus_write_text(path, text);
        snprintf(path, sizeof(path), "%s/org.example.Missing.service", dir);
        snprintf(text, sizeof(text), "{\"name\":\"org.example.Missing\",\"exec\":[\"%s/no-such-program\"]}", dir);
        testbus_write_text(path, text);
        snprintf(config, sizeof(config), "{\"standard_service_dirs\":false,\"service_dirs\":[\"%s\"]}", dir);
        testbus_start_config(tb, config);
        c = testbus_connect(tb);

        o = testbus_driver(c, "StartServiceByName", "{\"name\":\"org.example.Started\"}");
        ck_assert_int_eq(testbus_json_int(o, "result"), 1);
        json_object_put(o);
        testbus_driver_error(c, "StartServiceByName", "{\"name\":\"org.example.Missing\"}",
                             "org.ipcbus.Error.Spawn.ExecFailed");
        s = get_stats(c);
        ck_assert_int_eq(stat_at(s, "bus", "activations", "started", NULL), 1);
        ck_assert_int_eq(stat_at(s, "bus", "activations", "failed", NULL), 1);
        ck_assert_int_eq(stat_at(s, "bus", "activations", "timed_out", NULL), 0);
        json_object_put(s);
        ipcbus_unref(c);
}
END_TEST

/* ---- metrics ---------------------------------------------------------------------------------------------- */

/* GetMetrics's text in `format` (NULL: the default), written to a file of the test's directory. */
static char *metrics_file(struct testbus *tb, ipcbus_bus *c, const char *format, char **ret_text)
{
        char body[64], *path;
        json_object *o;

        if (format)
                snprintf(body, sizeof(body), "{\"format\":\"%s\"}", format);
        o = testbus_driver(c, "GetMetrics", format ? body : "{}");
        ck_assert_int_ge(asprintf(&path, "%s/metrics-%s.txt", tb->dir, format ? format : "default"), 0);
        testbus_write_text(path, testbus_json_string(o, "text"));
        *ret_text = strdup(testbus_json_string(o, "text"));
        json_object_put(o);
        return path;
}

/* Run a shell command; its exit status (the output shows in the failure message). */
static int run_shell(const char *command, struct testbus_proc *p)
{
        const char *const argv[] = {"/bin/sh", "-c", command, NULL};

        return testbus_run(p, argv, 30000 * testbus_slow_factor());
}

static void require_tool(const char *path, const char *package)
{
        ck_assert_msg(access(path, X_OK) == 0, "%s is missing: install the %s package (scripts/deps.sh)", path,
                      package);
}

/* The strict OpenMetrics parser of prometheus_client: every family, its type and samples. */
static const char python_check[] =
        "import sys\n"
        "from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse\n"
        "fams = {f.name: f for f in parse(open(sys.argv[1]).read())}\n"
        "m = fams['ipcbus_messages']\n"
        "assert m.type == 'counter', m.type\n"
        "calls = [s for s in m.samples if s.name == 'ipcbus_messages_total' and s.labels == {'type': 'call'}]\n"
        "assert len(calls) == 1 and calls[0].value >= 1, calls\n"
        "assert fams['ipcbus_received_bytes'].unit == 'bytes'\n"
        "assert fams['ipcbus_uptime_seconds'].unit == 'seconds'\n"
        "assert fams['ipcbus_connections'].type == 'gauge'\n"
        "assert any(s.labels == {'limit': 'max_connections'} for s in fams['ipcbus_refusals'].samples)\n"
        "assert any(s.labels == {'reason': 'hangup'} for s in fams['ipcbus_disconnects'].samples)\n"
        "assert any(s.labels == {'outcome': 'started'} for s in fams['ipcbus_activations'].samples)\n"
        "print('ok', len(fams))\n";

START_TEST(test_metrics_openmetrics)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *c = testbus_connect(tb);
        struct testbus_proc p;
        char *text, *path, *script, *cmd;
        size_t len;
        int r;

        require_tool(PYTHON, "python3");
        require_tool(PROMTOOL, "prometheus");
        path = metrics_file(tb, c, NULL, &text);
        len = strlen(text);
        ck_assert_msg(len > 6 && strcmp(text + len - 6, "# EOF\n") == 0, "no # EOF at the end:\n%s", text);
        ck_assert_ptr_nonnull(strstr(text, "# TYPE ipcbus_messages counter\n"));
        ck_assert_ptr_nonnull(strstr(text, "ipcbus_messages_total{type=\"call\"} "));
        ck_assert_ptr_nonnull(strstr(text, "# UNIT ipcbus_received_bytes bytes\n"));
        free(text);
        /* the default is OpenMetrics */
        free(metrics_file(tb, c, "openmetrics", &text));
        ck_assert_ptr_nonnull(strstr(text, "# EOF\n"));
        free(text);

        ck_assert_int_ge(asprintf(&script, "%s/check.py", tb->dir), 0);
        testbus_write_text(script, python_check);
        ck_assert_int_ge(asprintf(&cmd, PYTHON " %s %s 2>&1", script, path), 0);
        r = run_shell(cmd, &p);
        ck_assert_msg(r == 0, "the OpenMetrics parser refused the text (exit %d):\n%s", r, p.out.buf);
        testbus_proc_deinit(&p);
        free(cmd);

        /* 3 is promtool's lint of OpenMetrics counters ("no help text" for X_total); 1 a parse error */
        ck_assert_int_ge(asprintf(&cmd, PROMTOOL " check metrics < %s 2>&1", path), 0);
        r = run_shell(cmd, &p);
        ck_assert_msg(r == 0 || r == 3, "promtool check metrics failed (exit %d):\n%s", r, p.out.buf);
        testbus_proc_deinit(&p);
        free(cmd);

        testbus_driver_error(c, "GetMetrics", "{\"format\":\"xml\"}", IPCBUS_ERROR_INVALID_ARGS);
        testbus_driver_error(c, "GetMetrics", "{\"format\":7}", IPCBUS_ERROR_INVALID_ARGS);
        free(script);
        free(path);
        ipcbus_unref(c);
}
END_TEST

START_TEST(test_metrics_prometheus)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *c = testbus_connect(tb);
        struct testbus_proc p;
        char *text, *path, *cmd;
        int r;

        require_tool(PROMTOOL, "prometheus");
        path = metrics_file(tb, c, "prometheus", &text);
        ck_assert_ptr_null(strstr(text, "# EOF"));
        ck_assert_ptr_null(strstr(text, "# UNIT"));
        ck_assert_ptr_nonnull(strstr(text, "# TYPE ipcbus_messages_total counter\n"));
        ck_assert_ptr_nonnull(strstr(text, "# TYPE ipcbus_connections gauge\n"));
        free(text);

        ck_assert_int_ge(asprintf(&cmd, PROMTOOL " check metrics < %s 2>&1", path), 0);
        r = run_shell(cmd, &p);
        ck_assert_msg(r == 0, "promtool check metrics failed (exit %d):\n%s", r, p.out.buf);
        testbus_proc_deinit(&p);
        free(cmd);
        free(path);
        ipcbus_unref(c);
}
END_TEST

static Suite *stats_suite(void)
{
        Suite *s = suite_create("bus_stats");
        TCase *tc;

        tc = testbus_tcase("stats");
        tcase_add_test(tc, test_traffic_counted);
        tcase_add_test(tc, test_keys);
        tcase_add_test(tc, test_disconnect_reasons);
        suite_add_tcase(s, tc);

        /* Connections as other users need root (the suite runs as root in CI). */
        if (geteuid() == 0) {
                /* a configuration file of its own: the built-in session bus lets only its own user in */
                tc = testbus_tcase_config("visibility", "{}");
                tcase_add_test(tc, test_visibility);
                suite_add_tcase(s, tc);
        } else {
                fprintf(stderr, "check_bus_stats: not root: the visibility tests are left out\n");
        }

        tc = testbus_tcase_bare("limits");
        tcase_add_test(tc, test_held_back);
        tcase_add_test(tc, test_refusals);
        tcase_add_test(tc, test_timeouts_and_no_reply);
        tcase_add_test(tc, test_activations);
        suite_add_tcase(s, tc);

        tc = testbus_tcase("metrics");
        tcase_add_test(tc, test_metrics_openmetrics);
        tcase_add_test(tc, test_metrics_prometheus);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return testbus_run_suite(stats_suite());
}
