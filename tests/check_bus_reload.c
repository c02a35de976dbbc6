/* SPDX-License-Identifier: MIT */
/*
 * Reloading a running ipcbusd (SIGHUP and the driver's ReloadConfig): the
 * --config file (<dir>/config.json, rewritten in place), its policy and the
 * service files are read again and take effect, while every connection
 * stays: a client owning a name, a subscriber with a match rule and a plain
 * client keep working across it. A broken file keeps the previous
 * configuration, is logged with the reason, and ReloadConfig answers
 * org.ipcbus.Error.ConfigInvalid. Only root and the broker's user may ask.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/testbus.h"

#define TPATH TESTBUS_SERVICE_PATH
#define TIFACE TESTBUS_SERVICE_INTERFACE
#define CONFIG_INVALID "org.ipcbus.Error.ConfigInvalid"
#define OWNER "org.example.Owner"
#define OLD "org.example.Old"
#define NEW "org.example.New"
#define CHANGED "org.example.Changed"
#define DENY_FIXED "[{\"deny\":\"send\",\"name\":\"" OWNER "\",\"member\":\"Fixed\"}]"
#define TICK_RULE "type=signal,interface=" TIFACE ",member=Tick"

static const struct testbus_cred alice = {.uid = 4242, .gid = 4242};

enum { BY_SIGHUP, BY_CALL };

/* This test's directory and its service directory. */
static char work[256];
static char services[300];

static void work_setup(void)
{
        testbus_mkdtemp(work, sizeof(work), "reload");
        snprintf(services, sizeof(services), "%s/services", work);
        ck_assert_msg(mkdir(services, 0755) == 0, "mkdir(%s): %s", services, strerror(errno));
}

/* services/NAME.service running test-service for NAME, with one more argument pair (NULL: none). */
static void add_service(const char *name, const char *arg, const char *value)
{
        json_object *o = json_object_new_object(), *exec = json_object_new_array();
        char path[PATH_MAX];

        json_object_array_add(exec, json_object_new_string(testbus_test_service()));
        if (arg) {
                json_object_array_add(exec, json_object_new_string(arg));
                json_object_array_add(exec, json_object_new_string(value));
        }
        json_object_array_add(exec, json_object_new_string("--name"));
        json_object_array_add(exec, json_object_new_string(name));
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "exec", exec);
        snprintf(path, sizeof(path), "%s/%s.service", services, name);
        testbus_write_text(path, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
}

static void remove_service(const char *name)
{
        char path[PATH_MAX];

        snprintf(path, sizeof(path), "%s/%s.service", services, name);
        ck_assert_msg(unlink(path) == 0, "unlink(%s): %s", path, strerror(errno));
}

/* The configuration text: services/ only, this policy, more top-level members (",..." or ""). */
static void config_text(char *buf, size_t size, const char *type, const char *policy, const char *more)
{
        int n = snprintf(buf, size,
                         "{\"type\":\"%s\",\"standard_service_dirs\":false,\"service_dirs\":[\"%s\"],\"policy\":%s%s}",
                         type, services, policy, more);

        ck_assert_int_lt(n, (int) size);
}

static struct testbus *start_bus(const char *policy)
{
        struct testbus *tb = testbus_current();
        char config[1024];

        config_text(config, sizeof(config), "session", policy, "");
        testbus_start_config(tb, config);
        return tb;
}

/* Rewrite the broker's --config file in place. */
static void rewrite_config(struct testbus *tb, const char *text)
{
        char path[PATH_MAX];

        snprintf(path, sizeof(path), "%s/config.json", tb->dir);
        testbus_write_text(path, text);
}

static bool activatable(ipcbus_bus *bus, const char *name)
{
        json_object *o = testbus_driver(bus, "ListActivatableNames", NULL);
        bool has = testbus_json_array_has(testbus_json_array(o, "names"), name);

        json_object_put(o);
        return has;
}

/*
 * Reload (SIGHUP or ReloadConfig) a configuration that is valid, and wait
 * until it took effect: a reload by signal is done once `sentinel`, a
 * service file new in this reload, is listed.
 */
static void reload(struct testbus *tb, ipcbus_bus *bus, int way, const char *sentinel)
{
        int64_t deadline = testbus_now_ms() + (int64_t) TESTBUS_WAIT_MS * testbus_slow_factor();
        json_object *o;

        ck_assert(!activatable(bus, sentinel));
        if (way == BY_CALL) {
                o = testbus_driver(bus, "ReloadConfig", NULL);
                testbus_json_keys(o, NULL);
                json_object_put(o);
                ck_assert_msg(activatable(bus, sentinel), "ReloadConfig answered before %s was read", sentinel);
                return;
        }
        ck_assert_int_eq(kill(tb->pid, SIGHUP), 0);
        while (!activatable(bus, sentinel)) {
                ck_assert_msg(testbus_now_ms() < deadline, "no reload within %d ms of SIGHUP; the log:\n%s",
                              TESTBUS_WAIT_MS * testbus_slow_factor(), testbus_log_tail(tb));
                usleep(20000);
        }
}

/* The three connections that must live through reloads. */
struct clients {
        struct testbus_child owner; /* testbus's service owning OWNER */
        struct testbus_child sub;   /* subscribed to Tick */
        ipcbus_bus *bus;            /* a plain client */
};

static void clients_start(struct testbus *tb, struct clients *c)
{
        testbus_service_start(tb, &c->owner, OWNER);
        testbus_subscriber_start(tb, &c->sub, (const char *const[]){TICK_RULE, NULL});
        c->bus = testbus_connect(tb);
}

/* Each still works: a call across, a signal through the subscriber's rule, the owner still the owner. */
static void clients_check(struct clients *c, int n)
{
        char body[64], *line, *owner;
        json_object *o;

        snprintf(body, sizeof(body), "{\"n\":%d}", n);
        o = testbus_call(c->bus, OWNER, TPATH, TIFACE, "Echo", body);
        ck_assert_int_eq(testbus_json_int(o, "n"), n);
        json_object_put(o);
        owner = testbus_name_owner(c->bus, OWNER);
        ck_assert_msg(owner && strcmp(owner, c->owner.unique) == 0, "%s is owned by %s, not %s", OWNER,
                      owner ? owner : "nobody", c->owner.unique);
        free(owner);
        testbus_child_send(&c->owner, "emit Tick %s", body);
        testbus_child_expect(&c->owner, "emitted");
        line = testbus_child_read(&c->sub, TESTBUS_WAIT_MS);
        ck_assert_msg(strncmp(line, "signal Tick ", 12) == 0 && strstr(line, body),
                      "the subscriber got '%s', expected Tick %s", line, body);
        free(line);
}

static void clients_finish(struct clients *c)
{
        ipcbus_unref(c->bus);
        /* they exit 0 only if their connections lasted */
        testbus_child_finish(&c->sub);
        testbus_child_finish(&c->owner);
}

static void expect_fixed_allowed(ipcbus_bus *bus)
{
        json_object_put(testbus_call(bus, OWNER, TPATH, TIFACE, "Fixed", NULL));
}

static void expect_fixed_denied(ipcbus_bus *bus)
{
        free(testbus_call_error(bus, OWNER, TPATH, TIFACE, "Fixed", NULL, IPCBUS_ERROR_ACCESS_DENIED));
}

static void expect_echo(ipcbus_bus *bus, const char *name)
{
        json_object *o = testbus_call(bus, name, TPATH, TIFACE, "Echo", "{\"x\":1}");

        ck_assert_int_eq(testbus_json_int(o, "x"), 1);
        json_object_put(o);
}

/* ---- reloads that apply ----------------------------------------------------------------------- */

/*
 * A new service file appears, a removed one goes, a changed one is read
 * anew, a policy change takes effect; every connection lives on. By SIGHUP
 * (_i 0) and by ReloadConfig (_i 1).
 */
START_TEST(test_reload_applies)
{
        int way = _i;
        struct testbus *tb;
        struct clients c;
        char config[1024];

        add_service(OLD, NULL, NULL);
        add_service(CHANGED, "--exit", "4");
        tb = start_bus("[]");
        clients_start(tb, &c);
        ck_assert(activatable(c.bus, OLD));
        ck_assert(activatable(c.bus, CHANGED));
        expect_fixed_allowed(c.bus);
        free(testbus_call_error(c.bus, CHANGED, TPATH, TIFACE, "Echo", NULL, "org.ipcbus.Error.Spawn.ChildExited"));
        clients_check(&c, 1);

        remove_service(OLD);
        add_service(NEW, NULL, NULL);
        add_service(CHANGED, NULL, NULL);
        config_text(config, sizeof(config), "session", DENY_FIXED, "");
        rewrite_config(tb, config);
        reload(tb, c.bus, way, NEW);

        ck_assert_msg(!activatable(c.bus, OLD), "%s is still activatable after its file went", OLD);
        free(testbus_call_error(c.bus, OLD, TPATH, TIFACE, "Echo", NULL, IPCBUS_ERROR_SERVICE_UNKNOWN));
        expect_echo(c.bus, NEW);
        expect_echo(c.bus, CHANGED);
        expect_fixed_denied(c.bus);
        testbus_log_expect(tb, "access denied", "rule=policy[0]");
        clients_check(&c, 2);

        /* and back */
        config_text(config, sizeof(config), "session", "[]", "");
        rewrite_config(tb, config);
        add_service("org.example.Newer", NULL, NULL);
        reload(tb, c.bus, way, "org.example.Newer");
        expect_fixed_allowed(c.bus);
        clients_check(&c, 3);
        clients_finish(&c);
}
END_TEST

/* ---- broken files ----------------------------------------------------------------------------- */

/*
 * A configuration that does not load: invalid JSON (_i / 2 == 0) or an
 * unknown key (_i / 2 == 1), by SIGHUP (_i % 2 == 0) or ReloadConfig. The
 * previous configuration stays whole (policy and service files), the log
 * says why, ReloadConfig gets ConfigInvalid with the reason; the
 * connections do not notice. A good file afterwards reloads.
 */
START_TEST(test_reload_broken)
{
        int way = _i % 2 == 0 ? BY_SIGHUP : BY_CALL;
        bool bad_json = _i / 2 == 0;
        const char *why = bad_json ? "syntax error" : "colour";
        struct testbus *tb;
        struct clients c;
        char config[1024];

        add_service(OLD, NULL, NULL);
        tb = start_bus(DENY_FIXED);
        clients_start(tb, &c);
        expect_fixed_denied(c.bus);
        clients_check(&c, 1);

        add_service(NEW, NULL, NULL);
        if (bad_json)
                snprintf(config, sizeof(config), "{\"policy\":[]");
        else
                config_text(config, sizeof(config), "session", "[]", ",\"colour\":\"red\"");
        rewrite_config(tb, config);
        if (way == BY_CALL) {
                char *m = testbus_call_error(c.bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE,
                                             "ReloadConfig", NULL, CONFIG_INVALID);

                ck_assert_msg(m && strstr(m, why), "ConfigInvalid does not say '%s': %s", why, m ? m : "(none)");
                free(m);
        } else
                ck_assert_int_eq(kill(tb->pid, SIGHUP), 0);
        testbus_log_expect(tb, "config.json", why);

        /* the previous configuration, all of it */
        expect_fixed_denied(c.bus);
        ck_assert(activatable(c.bus, OLD));
        ck_assert_msg(!activatable(c.bus, NEW), "a reload that failed read the service files anyway");
        clients_check(&c, 2);
        ck_assert(testbus_alive(tb));

        config_text(config, sizeof(config), "session", "[]", "");
        rewrite_config(tb, config);
        reload(tb, c.bus, way, NEW);
        expect_fixed_allowed(c.bus);
        clients_check(&c, 3);
        clients_finish(&c);
}
END_TEST

/* A broken service file on reload is skipped with a warning; the rest of the reload applies. */
START_TEST(test_reload_broken_service_file)
{
        struct testbus *tb;
        ipcbus_bus *bus;
        char path[PATH_MAX];

        add_service(OLD, NULL, NULL);
        tb = start_bus("[]");
        bus = testbus_connect(tb);
        snprintf(path, sizeof(path), "%s/org.example.Broken.service", services);
        testbus_write_text(path, "{\"name\":\"org.example.Broken\",\"exec\":[\"/bin/true\"],\"colour\":1}");
        add_service(NEW, NULL, NULL);
        reload(tb, bus, BY_CALL, NEW);
        testbus_log_expect(tb, "org.example.Broken.service", "colour");
        ck_assert(!activatable(bus, "org.example.Broken"));
        ck_assert(activatable(bus, OLD));
        expect_echo(bus, NEW);
        ipcbus_unref(bus);
}
END_TEST

/* ---- who may reload, what needs a restart -------------------------------------------------------- */

START_TEST(test_reload_access_denied)
{
        struct testbus *tb;
        ipcbus_bus *bus, *other;

        tb = start_bus("[]");
        bus = testbus_connect(tb);
        other = testbus_connect_as(tb, &alice);
        add_service(NEW, NULL, NULL);
        testbus_driver_error(other, "ReloadConfig", NULL, IPCBUS_ERROR_ACCESS_DENIED);
        ck_assert_msg(!activatable(bus, NEW), "a denied ReloadConfig reloaded");
        /* root may */
        reload(tb, bus, BY_CALL, NEW);
        ipcbus_unref(other);
        ipcbus_unref(bus);
}
END_TEST

/* The broker's own user may, when it is not root. */
START_TEST(test_reload_by_broker_user)
{
        struct testbus *tb = testbus_current();
        struct testbus_options o = {.cred = &alice};
        ipcbus_bus *bus;
        char config[1024];
        json_object *r;

        ck_assert_int_eq(chmod(work, 0755), 0); /* the broker reads services/ as alice */
        config_text(config, sizeof(config), "session", "[]", "");
        o.config = config;
        testbus_start_with(tb, &o);
        bus = testbus_connect_as(tb, &alice);
        add_service(NEW, NULL, NULL);
        r = testbus_driver(bus, "ReloadConfig", NULL);
        testbus_json_keys(r, NULL);
        json_object_put(r);
        ck_assert(activatable(bus, NEW));
        ipcbus_unref(bus);
}
END_TEST

/* New limits apply to what comes next; what was granted stays. */
START_TEST(test_reload_limits)
{
        struct testbus *tb;
        ipcbus_bus *bus;
        char config[1024];

        tb = start_bus("[]");
        bus = testbus_connect(tb);
        ck_assert_int_eq(testbus_request_name(bus, "org.example.A", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        ck_assert_int_eq(testbus_request_name(bus, "org.example.B", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        add_service(NEW, NULL, NULL);
        config_text(config, sizeof(config), "session", "[]", ",\"limits\":{\"max_names_per_connection\":2}");
        rewrite_config(tb, config);
        reload(tb, bus, BY_CALL, NEW);
        /* both names stay owned; a third is over the new limit, and says which */
        for (const char *const *n = (const char *const[]){"org.example.A", "org.example.B", NULL}; *n; n++) {
                char *owner = testbus_name_owner(bus, *n);

                ck_assert_msg(owner && strcmp(owner, ipcbus_get_unique_name(bus)) == 0, "%s lost its owner", *n);
                free(owner);
        }
        {
                char *e =
                        testbus_call_error(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE,
                                           "RequestName", "{\"name\":\"org.example.C\"}", IPCBUS_ERROR_LIMITS_EXCEEDED);

                ck_assert_msg(e && strstr(e, "max_names_per_connection"), "LimitsExceeded does not name the limit: %s",
                              e ? e : "(none)");
                free(e);
        }
        ipcbus_unref(bus);
}
END_TEST

/* A change of "type" needs a restart: logged and ignored, the rest applies. */
START_TEST(test_reload_type_needs_restart)
{
        struct testbus *tb;
        ipcbus_bus *bus;
        char config[1024];
        json_object *o;

        tb = start_bus("[]");
        bus = testbus_connect(tb);
        add_service(NEW, NULL, NULL);
        config_text(config, sizeof(config), "system", "[]", "");
        rewrite_config(tb, config);
        reload(tb, bus, BY_CALL, NEW);
        testbus_log_expect(tb, "type", "restart");
        /* still a session bus: its services are told so, and the activation environment may change */
        o = testbus_call(bus, NEW, TPATH, TIFACE, "Env", NULL);
        ck_assert_str_eq(testbus_json_string(json_object_object_get(o, "env"), "IPCBUS_STARTER_BUS_TYPE"), "session");
        json_object_put(o);
        json_object_put(testbus_driver(bus, "UpdateActivationEnvironment", "{\"environment\":{\"A\":\"b\"}}"));
        ipcbus_unref(bus);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("bus_reload");
        TCase *tc;

        tc = testbus_tcase_bare("reload");
        tcase_add_checked_fixture(tc, work_setup, NULL);
        tcase_add_loop_test(tc, test_reload_applies, 0, 2);
        tcase_add_loop_test(tc, test_reload_broken, 0, 4);
        tcase_add_test(tc, test_reload_broken_service_file);
        tcase_add_test(tc, test_reload_access_denied);
        tcase_add_test(tc, test_reload_by_broker_user);
        tcase_add_test(tc, test_reload_type_needs_restart);
        tcase_add_test(tc, test_reload_limits);
        suite_add_tcase(s, tc);

        return testbus_run_suite(s);
}
