/* SPDX-License-Identifier: MIT */
/* Unit tests for daemon/launch/config: the JSON configuration, its defaults and its errors (daemon/CONFIG.md). */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/launch/config-defaults.h"
#include "daemon/launch/config.h"
#include "protocol/ipcbus/wire.h"
#include "tests/check-run.h"

/* A file of the source tree: make check sets $IPCBUS_TEST_SRCDIR to it. */
static void srcdir_path(char *buf, size_t size, const char *name)
{
        const char *dir = getenv("IPCBUS_TEST_SRCDIR");

        ck_assert_msg(dir && dir[0], "$IPCBUS_TEST_SRCDIR is not set (make check sets it to the source tree)");
        snprintf(buf, size, "%s/%s", dir, name);
}

static char *read_whole(const char *path)
{
        FILE *f = fopen(path, "re");
        char *text;
        long n;

        ck_assert_msg(f, "%s: %s", path, strerror(errno));
        ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
        n = ftell(f);
        rewind(f);
        text = malloc((size_t) n + 1);
        ck_assert_ptr_nonnull(text);
        ck_assert_uint_eq(fread(text, 1, (size_t) n, f), (size_t) n);
        text[n] = '\0';
        fclose(f);
        return text;
}

/* Parse `json` as "x.json" and expect success. */
static void parse_ok(struct bus_config *c, const char *json)
{
        char err[512] = "";
        int r = bus_config_parse(c, json, strlen(json), "x.json", err, sizeof(err));

        ck_assert_msg(r == 0, "%s: %d %s", json, r, err);
}

static bool limits_equal(const struct bus_limits *a, const struct bus_limits *b);

START_TEST(test_defaults)
{
        struct bus_limits l;
        struct bus_config c;

        bus_limits_init(&l);
        ck_assert_uint_eq(l.max_frame, 16 + 64512 + 67108864);
        ck_assert_uint_eq(l.max_header, 64512);
        ck_assert_uint_eq(l.max_body, 67108864);
        ck_assert_uint_eq(l.max_fds, 16);
        ck_assert_uint_eq(l.max_connections, 4096);
        ck_assert_uint_eq(l.max_connections_per_uid, 2048);
        ck_assert_uint_eq(l.max_names, 1024);
        ck_assert_uint_eq(l.max_names_per_uid, 8192);
        ck_assert_uint_eq(l.max_matches, 4096);
        ck_assert_uint_eq(l.max_matches_per_uid, 65536);
        ck_assert_uint_eq(l.max_pending, 16384);
        ck_assert_uint_eq(l.max_pending_per_uid, 65536);
        ck_assert_uint_eq(l.max_queue, 134217728);
        ck_assert_uint_eq(l.max_queue_per_uid, 536870912);
        ck_assert_uint_eq(l.backpressure, 1048576);
        ck_assert_uint_eq(l.hello_timeout_ms, 10000);
        ck_assert_uint_eq(l.stall_timeout_ms, 30000);
        ck_assert_uint_eq(l.reply_timeout_ms, 25000);
        ck_assert_uint_eq(l.activation_timeout_ms, 25000);
        ck_assert_uint_eq(l.max_activations_per_uid, 32);
        ck_assert_uint_eq(l.activation_interval_ms, 10000);
        ck_assert_uint_eq(l.max_monitor_queue, 16777216);
        ck_assert_uint_eq(l.reserved_connections, 0);
        ck_assert_uint_eq(l.idle_timeout_ms, 0);
        ck_assert_uint_eq(l.max_inflight_fds, 256);
        ck_assert_uint_eq(l.max_inflight_fds_uid, 1024);
        ck_assert_uint_eq(l.max_incoming_uid, 134217728);
        ck_assert_uint_eq(l.max_memfd_uid, 536870912);

        /* An empty file is a session bus with the defaults. */
        parse_ok(&c, "{}");
        ck_assert_int_eq(c.type, BUS_TYPE_SESSION);
        ck_assert_uint_eq(c.n_listen, 0);
        ck_assert_uint_eq(c.policy.n_rules, 0);
        ck_assert(limits_equal(&c.limits, &l));
        ck_assert_str_eq(c.origin, "x.json");
        bus_config_deinit(&c);
}
END_TEST

/*
 * The shipped file of `type`: it parses, its limits are the defaults but for
 * the system bus's connection shares (CONFIG.md says why), and the built-in
 * copy is the same text.
 */
static void check_shipped(enum bus_type type, const char *file, const char *builtin, size_t n_listen, size_t n_rules)
{
        struct bus_config c, d;
        struct bus_limits l;
        char path[PATH_MAX], err[512] = "";
        char *text;

        srcdir_path(path, sizeof(path), file);
        bus_limits_init(&l);
        if (type == BUS_TYPE_SYSTEM) {
                l.max_connections_per_uid = 256;
                l.reserved_connections = 64;
                l.idle_timeout_ms = 600000;
        }
        ck_assert_msg(bus_config_load_file(&c, path, err, sizeof(err)) == 0, "%s", err);
        ck_assert_int_eq(c.type, type);
        ck_assert(limits_equal(&c.limits, &l));
        ck_assert_uint_eq(c.n_listen, n_listen);
        ck_assert_uint_eq(c.policy.n_rules, n_rules);
        ck_assert_str_eq(c.origin, path);

        text = read_whole(path);
        ck_assert_str_eq(builtin, text);
        free(text);

        ck_assert_msg(bus_config_load_default(&d, type, err, sizeof(err)) == 0, "%s", err);
        ck_assert_int_eq(d.type, type);
        ck_assert(limits_equal(&d.limits, &l));
        ck_assert_uint_eq(d.n_listen, n_listen);
        ck_assert_uint_eq(d.policy.n_rules, n_rules);
        ck_assert_ptr_nonnull(strstr(d.origin, "built-in"));
        bus_config_deinit(&c);
        bus_config_deinit(&d);
}

START_TEST(test_shipped_session)
{
        struct bus_config c;

        check_shipped(BUS_TYPE_SESSION, "daemon/session.json", config_default_session, 0, 3);
        ck_assert_int_eq(bus_config_load_default(&c, BUS_TYPE_SESSION, NULL, 0), 0);
        ck_assert_int_eq(c.policy.rules[1].who, POLICY_WHO_USER);
        ck_assert_uint_eq(c.policy.rules[1].id, getuid());
        bus_config_deinit(&c);
}
END_TEST

START_TEST(test_shipped_system)
{
        struct bus_config c;

        check_shipped(BUS_TYPE_SYSTEM, "daemon/system.json", config_default_system, 1, 2);
        ck_assert_int_eq(bus_config_load_default(&c, BUS_TYPE_SYSTEM, NULL, 0), 0);
        ck_assert_str_eq(c.listen[0], "unix:path=/run/ipcbus/system_bus_socket");
        ck_assert_int_eq(c.policy.rules[1].who, POLICY_WHO_USER);
        ck_assert_uint_eq(c.policy.rules[1].id, 0);
        bus_config_deinit(&c);
}
END_TEST

/* Every key of "limits", a valid value other than its default, and where it lands. */
static const struct {
        const char *key;
        uint64_t value;
        size_t offset, size;
} settable[] = {
#define SET(k, field, v)                                                                                               \
        {                                                                                                              \
                k, v, offsetof(struct bus_limits, field), sizeof(((struct bus_limits *) 0)->field)                     \
        }
        SET("max_frame_bytes", max_frame, 16 + 1024),
        SET("max_header_bytes", max_header, 1024),
        SET("max_body_bytes", max_body, 1),
        SET("max_fds_per_message", max_fds, 0),
        SET("max_connections", max_connections, 100000),
        SET("max_connections_per_uid", max_connections_per_uid, 1),
        SET("max_names_per_connection", max_names, 8192),
        SET("max_names_per_uid", max_names_per_uid, 1024),
        SET("max_matches_per_connection", max_matches, 1),
        SET("max_matches_per_uid", max_matches_per_uid, 4096),
        SET("max_pending_calls_per_connection", max_pending, 65536),
        SET("max_pending_calls_per_uid", max_pending_per_uid, 4000000000),
        SET("max_queued_bytes_per_connection", max_queue, 67173392),
        SET("max_queued_bytes_per_uid", max_queue_per_uid, 1099511627776),
        SET("backpressure_bytes", backpressure, 1),
        SET("hello_timeout_ms", hello_timeout_ms, 86400000),
        SET("stall_timeout_ms", stall_timeout_ms, 1),
        SET("reply_timeout_ms", reply_timeout_ms, 120000),
        SET("activation_timeout_ms", activation_timeout_ms, 500),
        SET("max_activations_per_uid", max_activations_per_uid, 1),
        SET("activation_interval_ms", activation_interval_ms, 86400000),
        SET("max_monitor_queued_bytes", max_monitor_queue, 1),
        SET("reserved_connections", reserved_connections, 4096),
        SET("idle_timeout_ms", idle_timeout_ms, 86400000),
        SET("max_fds_in_flight_per_connection", max_inflight_fds, 16),
        SET("max_fds_in_flight_per_uid", max_inflight_fds_uid, 100000),
        SET("max_incoming_bytes_per_uid", max_incoming_uid, 67173392),
        SET("max_memfd_bytes_per_uid", max_memfd_uid, 67108864),
#undef SET
};

static uint64_t field_get(const struct bus_limits *l, size_t offset, size_t size)
{
        uint64_t v64;
        uint32_t v32;

        if (size == 8) {
                memcpy(&v64, (const char *) l + offset, 8);
                return v64;
        }
        memcpy(&v32, (const char *) l + offset, 4);
        return v32;
}

/* Field by field: the struct has padding that memcmp would compare. */
static bool limits_equal(const struct bus_limits *a, const struct bus_limits *b)
{
        for (size_t i = 0; i < sizeof(settable) / sizeof(settable[0]); i++)
                if (field_get(a, settable[i].offset, settable[i].size) !=
                    field_get(b, settable[i].offset, settable[i].size))
                        return false;
        return true;
}

START_TEST(test_limits_settable)
{
        struct bus_limits defaults;
        struct bus_config c;
        char json[256];

        bus_limits_init(&defaults);
        snprintf(json, sizeof(json), "{\"limits\": {\"%s\": %" PRIu64 "}}", settable[_i].key, settable[_i].value);
        parse_ok(&c, json);
        ck_assert_uint_ne(field_get(&defaults, settable[_i].offset, settable[_i].size), settable[_i].value);
        ck_assert_uint_eq(field_get(&c.limits, settable[_i].offset, settable[_i].size), settable[_i].value);
        /* Everything else keeps its default. */
        memcpy((char *) &c.limits + settable[_i].offset, (const char *) &defaults + settable[_i].offset,
               settable[_i].size);
        ck_assert(limits_equal(&c.limits, &defaults));
        bus_config_deinit(&c);
}
END_TEST

START_TEST(test_limits_all_keys_covered)
{
        /* The shipped file spells every key; each must be in the table above. */
        struct bus_config c;
        char path[PATH_MAX], *text;
        size_t found = 0;

        srcdir_path(path, sizeof(path), "daemon/session.json");
        text = read_whole(path);
        for (size_t i = 0; i < sizeof(settable) / sizeof(settable[0]); i++) {
                char quoted[64];

                snprintf(quoted, sizeof(quoted), "\"%s\":", settable[i].key);
                found += strstr(text, quoted) != NULL;
        }
        ck_assert_uint_eq(found, sizeof(settable) / sizeof(settable[0]));
        ck_assert_uint_eq(sizeof(settable) / sizeof(settable[0]), 28);
        free(text);
        parse_ok(&c, "{\"limits\": {\"max_fds_per_message\": 16, \"max_connections\": 1, "
                     "\"max_connections_per_uid\": 1}}");
        ck_assert_uint_eq(c.limits.max_connections, 1);
        bus_config_deinit(&c);
}
END_TEST

/* Bad configurations: the error names the key (after "x.json: ") and says why. */
static const struct {
        const char *json;
        const char *key; /* the error starts "x.json: KEY: " */
        const char *reason;
} bad[] = {
        /* limits: values */
        {"{\"limits\": {\"max_body_bytes\": 99999999999}}", "limits.max_body_bytes",
         "must be at most 67108864, got 99999999999"},
        {"{\"limits\": {\"max_nmaes\": 1}}", "limits.max_nmaes", "unknown key"},
        {"{\"limits\": {\"max_connections\": 0}}", "limits.max_connections", "must be at least 1, got 0"},
        {"{\"limits\": {\"max_connections\": -5}}", "limits.max_connections", "must be at least 1, got -5"},
        {"{\"limits\": {\"max_connections\": 1.5}}", "limits.max_connections", "expected an integer, got 1.5"},
        {"{\"limits\": {\"max_connections\": \"10\"}}", "limits.max_connections", "expected an integer, got \"10\""},
        {"{\"limits\": {\"max_connections\": true}}", "limits.max_connections", "expected an integer, got true"},
        {"{\"limits\": {\"max_connections\": null}}", "limits.max_connections", "expected an integer, got null"},
        {"{\"limits\": {\"max_connections\": 4294967296}}", "limits.max_connections", "must be at most 4294967295"},
        {"{\"limits\": {\"max_queued_bytes_per_uid\": 18446744073709551615}}", "limits.max_queued_bytes_per_uid",
         "must be at most 9223372036854775807, got 18446744073709551615"},
        {"{\"limits\": {\"max_fds_per_message\": 17}}", "limits.max_fds_per_message", "must be at most 16, got 17"},
        {"{\"limits\": {\"max_fds_per_message\": -1}}", "limits.max_fds_per_message", "must be at least 0, got -1"},
        {"{\"limits\": {\"max_header_bytes\": 1023}}", "limits.max_header_bytes", "must be at least 1024, got 1023"},
        {"{\"limits\": {\"max_header_bytes\": 64513}}", "limits.max_header_bytes", "must be at most 64512"},
        {"{\"limits\": {\"max_body_bytes\": 0}}", "limits.max_body_bytes", "must be at least 1"},
        {"{\"limits\": {\"max_frame_bytes\": 1039}}", "limits.max_frame_bytes", "must be at least 1040"},
        {"{\"limits\": {\"max_frame_bytes\": 67173393}}", "limits.max_frame_bytes", "must be at most 67173392"},
        {"{\"limits\": {\"hello_timeout_ms\": 86400001}}", "limits.hello_timeout_ms", "must be at most 86400000"},
        {"{\"limits\": {\"stall_timeout_ms\": 0}}", "limits.stall_timeout_ms", "must be at least 1"},
        {"{\"limits\": {\"reply_timeout_ms\": 100000000}}", "limits.reply_timeout_ms", "must be at most 86400000"},
        /* limits: one against another; the key the file gave is blamed */
        {"{\"limits\": {\"max_names_per_uid\": 10}}", "limits.max_names_per_uid",
         "must be at least limits.max_names_per_connection (1024), got 10"},
        {"{\"limits\": {\"max_names_per_connection\": 9000}}", "limits.max_names_per_connection",
         "must be at most limits.max_names_per_uid (8192), got 9000"},
        {"{\"limits\": {\"max_matches_per_uid\": 4095}}", "limits.max_matches_per_uid",
         "at least limits.max_matches_per_connection"},
        {"{\"limits\": {\"max_pending_calls_per_connection\": 65537}}", "limits.max_pending_calls_per_connection",
         "at most limits.max_pending_calls_per_uid"},
        {"{\"limits\": {\"max_queued_bytes_per_uid\": 134217727}}", "limits.max_queued_bytes_per_uid",
         "at least limits.max_queued_bytes_per_connection"},
        {"{\"limits\": {\"max_connections_per_uid\": 4097}}", "limits.max_connections_per_uid",
         "must be at most limits.max_connections (4096), got 4097"},
        {"{\"limits\": {\"max_connections\": 100}}", "limits.max_connections",
         "must be at least limits.max_connections_per_uid (2048), got 100"},
        {"{\"limits\": {\"backpressure_bytes\": 134217729}}", "limits.backpressure_bytes",
         "at most limits.max_queued_bytes_per_connection"},
        {"{\"limits\": {\"max_queued_bytes_per_connection\": 2000000}}", "limits.max_queued_bytes_per_connection",
         "must be at least limits.max_frame_bytes (67173392), got 2000000"},
        {"{\"limits\": {\"max_frame_bytes\": 2000, \"max_queued_bytes_per_connection\": 1999}}",
         "limits.max_queued_bytes_per_connection", "at least limits.max_frame_bytes (2000), got 1999"},
        {"{\"limits\": {\"max_frame_bytes\": 1040, \"max_queued_bytes_per_connection\": 1040}}",
         "limits.max_queued_bytes_per_connection", "at least limits.backpressure_bytes (1048576), got 1040"},
        {"{\"limits\": []}", "limits", "expected an object, got []"},
        {"{\"limits\": {\"activation_timeout_ms\": 0}}", "limits.activation_timeout_ms", "must be at least 1, got 0"},
        {"{\"limits\": {\"max_monitor_queued_bytes\": 0}}", "limits.max_monitor_queued_bytes",
         "must be at least 1, got 0"},
        {"{\"limits\": {\"reserved_connections\": 4097}}", "limits.reserved_connections",
         "must be at most limits.max_connections (4096), got 4097"},
        {"{\"limits\": {\"idle_timeout_ms\": 86400001}}", "limits.idle_timeout_ms", "must be at most 86400000"},
        {"{\"limits\": {\"max_memfd_bytes_per_uid\": 1000}}", "limits.max_memfd_bytes_per_uid",
         "must be at least limits.max_body_bytes (67108864), got 1000"},
        {"{\"limits\": {\"max_body_bytes\": 1000, \"max_memfd_bytes_per_uid\": 999}}", "limits.max_memfd_bytes_per_uid",
         "must be at least limits.max_body_bytes (1000), got 999"},
        /* service directories */
        {"{\"service_dirs\": \"/x\"}", "service_dirs", "expected an array, got \"/x\""},
        {"{\"service_dirs\": [\"/a\", 7]}", "service_dirs[1]", "expected a string, got 7"},
        {"{\"service_dirs\": [\"relative/dir\"]}", "service_dirs[0]",
         "expected an absolute directory path, got \"relative/dir\""},
        {"{\"standard_service_dirs\": 1}", "standard_service_dirs", "expected true or false, got 1"},
        /* top level */
        {"{\"type\": \"foo\"}", "type", "expected \"session\" or \"system\", got \"foo\""},
        {"{\"type\": 1}", "type", "expected \"session\" or \"system\", got 1"},
        {"{\"lisen\": []}", "lisen", "unknown key"},
        {"{\"listen\": \"unix:path=/x\"}", "listen", "expected an array"},
        {"{\"listen\": [\"tcp:host=localhost\"]}", "listen[0]", "expected an address unix:path=/ABSOLUTE/PATH"},
        {"{\"listen\": [\"unix:path=/a\", \"unix:path=rel\"]}", "listen[1]", "got \"unix:path=rel\""},
        {"{\"listen\": [7]}", "listen[0]", "expected a string, got 7"},
        {"{\"listen\": [\"unix:path=/a\", \"unix:path=/a\"]}", "listen[1]", "listed twice"},
        /* policy: shape */
        {"{\"policy\": {}}", "policy", "expected an array"},
        {"{\"policy\": [1]}", "policy[0]", "expected an object, got 1"},
        {"{\"policy\": [{}]}", "policy[0]", "expected \"allow\" or \"deny\""},
        {"{\"policy\": [{\"allow\": \"own\"}, {\"user\": 0}]}", "policy[1]", "expected \"allow\" or \"deny\""},
        {"{\"policy\": [{\"allow\": \"own\", \"deny\": \"own\"}]}", "policy[0]", "\"allow\" and \"deny\" both given"},
        {"{\"policy\": [{\"allow\": \"fly\"}]}", "policy[0].allow", "expected \"connect\", \"own\", \"send\""},
        {"{\"policy\": [{\"deny\": 3}]}", "policy[0].deny", "got 3"},
        {"{\"policy\": [{\"deny\": \"send\", \"usr\": 0}]}", "policy[0].usr", "unknown key"},
        /* policy: who */
        {"{\"policy\": [{\"deny\": \"own\"}, {\"deny\": \"own\"}, {\"allow\": \"own\", \"user\": \"no-such-user-x\"}]}",
         "policy[2].user", "no such user \"no-such-user-x\""},
        {"{\"policy\": [{\"deny\": \"own\", \"group\": \"no-such-group-x\"}]}", "policy[0].group",
         "no such group \"no-such-group-x\""},
        {"{\"policy\": [{\"deny\": \"own\", \"user\": 0, \"group\": 0}]}", "policy[0]",
         "\"user\" and \"group\" both given"},
        {"{\"policy\": [{\"deny\": \"own\", \"user\": -1}]}", "policy[0].user", "expected a uid"},
        {"{\"policy\": [{\"deny\": \"own\", \"user\": 4294967295}]}", "policy[0].user", "expected a uid"},
        {"{\"policy\": [{\"deny\": \"own\", \"user\": 1.0}]}", "policy[0].user", "expected a uid"},
        {"{\"policy\": [{\"deny\": \"own\", \"user\": \"\"}]}", "policy[0].user", "expected a uid"},
        {"{\"policy\": [{\"deny\": \"own\", \"group\": \"*\"}]}", "policy[0].group", "no such group \"*\""},
        {"{\"policy\": [{\"deny\": \"own\", \"group\": []}]}", "policy[0].group", "expected a gid or a group name"},
        /* policy: criteria an action does not take */
        {"{\"policy\": [{\"deny\": \"own\", \"interface\": \"a.b\"}]}", "policy[0].interface",
         "not a criterion of \"own\" rules"},
        {"{\"policy\": [{\"deny\": \"connect\", \"name\": \"a.b\"}]}", "policy[0].name",
         "not a criterion of \"connect\" rules"},
        {"{\"policy\": [{\"allow\": \"monitor\", \"type\": \"signal\"}]}", "policy[0].type",
         "not a criterion of \"monitor\" rules"},
        {"{\"policy\": [{\"deny\": \"own\", \"path\": \"/a\"}]}", "policy[0].path", "not a criterion"},
        /* policy: criteria values */
        {"{\"policy\": [{\"deny\": \"send\", \"name\": \"a.b\", \"name_prefix\": \"a.b\"}]}", "policy[0]",
         "\"name\" and \"name_prefix\" both given"},
        {"{\"policy\": [{\"deny\": \"send\", \"path\": \"/a\", \"path_prefix\": \"/a\"}]}", "policy[0]",
         "\"path\" and \"path_prefix\" both given"},
        {"{\"policy\": [{\"deny\": \"own\", \"name\": \":1.5\"}]}", "policy[0].name",
         "expected a well-known name, got \":1.5\""},
        {"{\"policy\": [{\"deny\": \"send\", \"name\": \"a..b\"}]}", "policy[0].name", "expected a bus name"},
        {"{\"policy\": [{\"deny\": \"send\", \"name_prefix\": \":1\"}]}", "policy[0].name_prefix",
         "expected a well-known name"},
        {"{\"policy\": [{\"deny\": \"send\", \"interface\": \"nodots\"}]}", "policy[0].interface",
         "expected an interface name, got \"nodots\""},
        {"{\"policy\": [{\"deny\": \"send\", \"member\": \"a.b\"}]}", "policy[0].member", "expected a member name"},
        {"{\"policy\": [{\"deny\": \"receive\", \"path\": \"rel\"}]}", "policy[0].path", "expected an object path"},
        {"{\"policy\": [{\"deny\": \"receive\", \"path_prefix\": \"/a/\"}]}", "policy[0].path_prefix",
         "expected an object path"},
        {"{\"policy\": [{\"deny\": \"receive\", \"member\": 5}]}", "policy[0].member", "expected a string, got 5"},
        {"{\"policy\": [{\"deny\": \"send\", \"type\": \"method\"}]}", "policy[0].type",
         "expected \"call\", \"return\", \"error\" or \"signal\", got \"method\""},
};

START_TEST(test_bad)
{
        struct bus_config c;
        char err[512] = "", prefix[128];
        int r;

        r = bus_config_parse(&c, bad[_i].json, strlen(bad[_i].json), "x.json", err, sizeof(err));
        ck_assert_msg(r == CONFIG_E_INVALID, "%s: accepted (%d)", bad[_i].json, r);
        snprintf(prefix, sizeof(prefix), "x.json: %s: ", bad[_i].key);
        ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0, "%s: error \"%s\" does not start \"%s\"", bad[_i].json,
                      err, prefix);
        ck_assert_msg(strstr(err + strlen(prefix), bad[_i].reason), "%s: error \"%s\" does not say \"%s\"",
                      bad[_i].json, err, bad[_i].reason);
        ck_assert_ptr_null(strchr(err, '\n'));
        /* A failed load leaves nothing behind. */
        ck_assert_uint_eq(c.n_listen, 0);
        ck_assert_ptr_null(c.listen);
        ck_assert_uint_eq(c.policy.n_rules, 0);
        ck_assert_ptr_null(c.policy.rules);
}
END_TEST

/* Text that is not JSON, or not an object: the error gives the position. */
static const struct {
        const char *text;
        const char *error; /* the whole error, or its start */
} syntax[] = {
        {"{\"type\": \"session\",\n  \"limits\": {,}}", "x.json: line 2, column 14: syntax error: "},
        {"{\"type\": ", "x.json: line 1, column 10: syntax error: unexpected end of text"},
        {"", "x.json: line 1, column 1: syntax error: unexpected end of text"},
        {"{}\n x", "x.json: line 2, column 2: syntax error: "},
        {"{} {}", "x.json: line 1, column 4: syntax error: "},
        {"{\"policy\": [],}", "x.json: line 1, column 15: syntax error: "},
        {"{'type': 'system'}", "x.json: line 1, column 10: syntax error: "},
        {"{\"type\": \"s\xff\"}", "x.json: line 1, column 12: syntax error: "},
        {"[]", "x.json: expected a JSON object at the top level, got []"},
        {"\"session\"", "x.json: expected a JSON object at the top level, got \"session\""},
};

START_TEST(test_syntax)
{
        struct bus_config c;
        char err[512] = "";
        int r;

        r = bus_config_parse(&c, syntax[_i].text, strlen(syntax[_i].text), "x.json", err, sizeof(err));
        ck_assert_int_eq(r, CONFIG_E_INVALID);
        ck_assert_msg(strncmp(err, syntax[_i].error, strlen(syntax[_i].error)) == 0, "got \"%s\", want \"%s\"", err,
                      syntax[_i].error);
        ck_assert_ptr_null(strchr(err, '\n'));
}
END_TEST

START_TEST(test_whitespace_and_nesting)
{
        struct bus_config c;
        char err[512] = "";
        const char deep[] =
                "{\"limits\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]"
                "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}";

        parse_ok(&c, " \n{ \"type\" : \"system\" }\n\n\t ");
        ck_assert_int_eq(c.type, BUS_TYPE_SYSTEM);
        bus_config_deinit(&c);
        /* Nesting past the tokener's depth is a syntax error, not a crash. */
        ck_assert_int_eq(bus_config_parse(&c, deep, strlen(deep), "x.json", err, sizeof(err)), CONFIG_E_INVALID);
        ck_assert_ptr_nonnull(strstr(err, "syntax error"));
        /* A NUL inside the text is not white space. */
        ck_assert_int_eq(bus_config_parse(&c, "{}\0{}", 5, "x.json", err, sizeof(err)), CONFIG_E_INVALID);
}
END_TEST

START_TEST(test_listen)
{
        struct bus_config c;

        parse_ok(&c, "{\"type\": \"system\", \"listen\": [\"unix:path=/run/a\", \"unix:path=/run/b\"]}");
        ck_assert_int_eq(c.type, BUS_TYPE_SYSTEM);
        ck_assert_uint_eq(c.n_listen, 2);
        ck_assert_str_eq(c.listen[0], "unix:path=/run/a");
        ck_assert_str_eq(c.listen[1], "unix:path=/run/b");
        bus_config_deinit(&c);
        parse_ok(&c, "{\"listen\": []}");
        ck_assert_uint_eq(c.n_listen, 0);
        bus_config_deinit(&c);
}
END_TEST

START_TEST(test_policy_rules)
{
        struct bus_config c;
        const struct policy_rule *r;

        parse_ok(&c, "{\"policy\": ["
                     "{\"deny\": \"connect\", \"user\": \"*\"},"
                     "{\"allow\": \"connect\", \"user\": \"@self\"},"
                     "{\"allow\": \"own\", \"user\": \"root\", \"name_prefix\": \"org.a\"},"
                     "{\"deny\": \"send\", \"group\": 7, \"name\": \":1.4\", \"interface\": \"org.a.I\","
                     " \"member\": \"M\", \"path_prefix\": \"/org/a\", \"type\": \"signal\"},"
                     "{\"allow\": \"receive\", \"group\": \"root\", \"path\": \"/\", \"type\": \"call\"},"
                     "{\"allow\": \"monitor\", \"user\": 1000}"
                     "]}");
        ck_assert_uint_eq(c.policy.n_rules, 6);
        ck_assert_uint_eq(c.policy.n_by_action[POLICY_CONNECT], 2);
        ck_assert_uint_eq(c.policy.n_by_action[POLICY_OWN], 1);
        ck_assert_uint_eq(c.policy.n_by_action[POLICY_SEND], 1);
        ck_assert_uint_eq(c.policy.n_by_action[POLICY_RECEIVE], 1);
        ck_assert_uint_eq(c.policy.n_by_action[POLICY_MONITOR], 1);

        r = &c.policy.rules[0];
        ck_assert(!r->allow && r->action == POLICY_CONNECT && r->who == POLICY_WHO_ANYONE && r->index == 0);
        r = &c.policy.rules[1];
        ck_assert(r->allow && r->who == POLICY_WHO_USER && r->id == getuid());
        r = &c.policy.rules[2];
        ck_assert(r->action == POLICY_OWN && r->who == POLICY_WHO_USER && r->id == 0);
        ck_assert(r->name_prefix && strcmp(r->name, "org.a") == 0);
        r = &c.policy.rules[3];
        ck_assert(!r->allow && r->action == POLICY_SEND && r->who == POLICY_WHO_GROUP && r->id == 7);
        ck_assert(!r->name_prefix && strcmp(r->name, ":1.4") == 0);
        ck_assert_str_eq(r->interface, "org.a.I");
        ck_assert_str_eq(r->member, "M");
        ck_assert(r->path_prefix && strcmp(r->path, "/org/a") == 0);
        ck_assert_int_eq(r->type, 4 /* MSG_SIGNAL */);
        r = &c.policy.rules[4];
        ck_assert(r->action == POLICY_RECEIVE && r->who == POLICY_WHO_GROUP && r->id == 0);
        ck_assert(!r->path_prefix && strcmp(r->path, "/") == 0);
        ck_assert_int_eq(r->type, 1 /* MSG_CALL */);
        ck_assert_ptr_null(r->name);
        ck_assert_ptr_null(r->interface);
        ck_assert_ptr_null(r->member);
        r = &c.policy.rules[5];
        ck_assert(r->action == POLICY_MONITOR && r->who == POLICY_WHO_USER && r->id == 1000 && r->index == 5);
        bus_config_deinit(&c);
}
END_TEST

/* "@self" is the uid of the process loading the file, looked up at load. */
START_TEST(test_self)
{
        pid_t pid = fork();
        int status;

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                const char *json = "{\"policy\": [{\"allow\": \"monitor\", \"user\": \"@self\"}]}";
                struct bus_config c;

                /* As root, become someone else first, so that "@self" cannot pass for root. */
                if (getuid() == 0 && setresuid(4321, 4321, 4321) < 0)
                        _exit(2);
                if (bus_config_parse(&c, json, strlen(json), "x.json", NULL, 0) != 0)
                        _exit(3);
                _exit(c.policy.rules[0].who == POLICY_WHO_USER && c.policy.rules[0].id == getuid() ? 0 : 4);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
}
END_TEST

START_TEST(test_files)
{
        struct bus_config c;
        char err[512] = "", path[PATH_MAX];
        int r;

        r = bus_config_load_file(&c, "/nonexistent/ipcbus.json", err, sizeof(err));
        ck_assert_int_eq(r, -ENOENT);
        ck_assert_str_eq(err, "/nonexistent/ipcbus.json: No such file or directory");

        srcdir_path(path, sizeof(path), "daemon");
        r = bus_config_load_file(&c, path, err, sizeof(err));
        ck_assert_int_eq(r, -EISDIR);

        /* The file's name is the origin of its errors. */
        snprintf(path, sizeof(path), "/tmp/ipcbus-check-config-%d.json", (int) getpid());
        {
                FILE *f = fopen(path, "we");

                ck_assert_ptr_nonnull(f);
                fputs("{\n  \"limits\": {\"max_body_bytes\": 99999999999}\n}\n", f);
                fclose(f);
        }
        r = bus_config_load_file(&c, path, err, sizeof(err));
        unlink(path);
        ck_assert_int_eq(r, CONFIG_E_INVALID);
        ck_assert_ptr_nonnull(strstr(err, ": limits.max_body_bytes: must be at most 67108864, got 99999999999"));
        ck_assert_int_eq(strncmp(err, path, strlen(path)), 0);
}
END_TEST

START_TEST(test_error_buffer)
{
        struct bus_config c;
        char small[12];
        const char *json = "{\"limits\": {\"max_nmaes\": 1}}";

        /* No buffer, or a small one: still refused, nothing overrun. */
        ck_assert_int_eq(bus_config_parse(&c, json, strlen(json), "x.json", NULL, 0), CONFIG_E_INVALID);
        memset(small, 'z', sizeof(small));
        ck_assert_int_eq(bus_config_parse(&c, json, strlen(json), "x.json", small, 8), CONFIG_E_INVALID);
        ck_assert_str_eq(small, "x.json:");
        ck_assert_int_eq(small[8], 'z');
}
END_TEST

static Suite *config_suite(void)
{
        Suite *s = suite_create("daemon_config");
        TCase *tc = tcase_create("config");

        tcase_add_test(tc, test_defaults);
        tcase_add_test(tc, test_shipped_session);
        tcase_add_test(tc, test_shipped_system);
        tcase_add_loop_test(tc, test_limits_settable, 0, sizeof(settable) / sizeof(settable[0]));
        tcase_add_test(tc, test_limits_all_keys_covered);
        tcase_add_loop_test(tc, test_bad, 0, sizeof(bad) / sizeof(bad[0]));
        tcase_add_loop_test(tc, test_syntax, 0, sizeof(syntax) / sizeof(syntax[0]));
        tcase_add_test(tc, test_whitespace_and_nesting);
        tcase_add_test(tc, test_listen);
        tcase_add_test(tc, test_policy_rules);
        tcase_add_test(tc, test_self);
        tcase_add_test(tc, test_files);
        tcase_add_test(tc, test_error_buffer);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return check_run(config_suite());
}
