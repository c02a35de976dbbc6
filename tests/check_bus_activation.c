/* SPDX-License-Identifier: MIT */
/*
 * Service activation against a real ipcbusd (daemon/CONFIG.md, PROTOCOL.md
 * 7.2): the broker reads service files from a directory of the test's and
 * starts tests/test-service, a real program using libipcbus, when a call
 * reaches an unowned activatable name, or systemctl (a script of the test's,
 * through $IPCBUSD_SYSTEMCTL) when the file names a unit.
 *
 * Asserted: queued calls delivered in order once the name is owned, one
 * start for many callers; the started program's environment, descriptors,
 * signals and session; UpdateActivationEnvironment; no_auto_start;
 * StartServiceByName; ListActivatableNames; each Spawn.* failure, given to
 * every queued caller with a message naming the service and the cause;
 * "user"; a caller that leaves while queued; the activation queue against
 * max_pending_calls_per_connection; invalid service files skipped with a
 * log line; the first directory winning.
 *
 * Every service started here runs test-service with --touch WORK/NAME.starts
 * (one line per start) and, to hold it before it takes its name,
 * --wait-file WORK/NAME.gate (the test's gate).
 */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/testbus.h"

#define TPATH TESTBUS_SERVICE_PATH
#define TIFACE TESTBUS_SERVICE_INTERFACE
#define SPAWN_ERROR(x) "org.ipcbus.Error.Spawn." x
#define CLEAN_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static const struct testbus_cred alice = {.uid = 4242, .gid = 4242};

/* This test's directory (services/, the services' files, scripts) and its service directory. */
static char work[256];
static char services[300];

static void work_setup(void)
{
        testbus_mkdtemp(work, sizeof(work), "act");
        snprintf(services, sizeof(services), "%s/services", work);
        ck_assert_msg(mkdir(services, 0755) == 0, "mkdir(%s): %s", services, strerror(errno));
}

static TCase *act_tcase(const char *name)
{
        TCase *tc = testbus_tcase_bare(name);

        tcase_add_checked_fixture(tc, work_setup, NULL);
        return tc;
}

/* ---- service files, the broker -------------------------------------------------------------- */

static void work_path(char *buf, size_t size, const char *name, const char *suffix)
{
        ck_assert_int_lt(snprintf(buf, size, "%s/%s%s", work, name, suffix), (int) size);
}

/* Write services/FILE holding text. */
static void service_file(const char *file, const char *text)
{
        char path[PATH_MAX + 256];

        snprintf(path, sizeof(path), "%s/%s", services, file);
        testbus_write_text(path, text);
}

/* The exec array of test-service for NAME: --touch WORK/NAME.starts, the args (NULL-terminated), --name NAME. */
static json_object *service_exec(const char *name, va_list ap)
{
        json_object *exec = json_object_new_array();
        char starts[PATH_MAX];

        work_path(starts, sizeof(starts), name, ".starts");
        json_object_array_add(exec, json_object_new_string(testbus_test_service()));
        json_object_array_add(exec, json_object_new_string("--touch"));
        json_object_array_add(exec, json_object_new_string(starts));
        for (const char *a; (a = va_arg(ap, const char *));)
                json_object_array_add(exec, json_object_new_string(a));
        json_object_array_add(exec, json_object_new_string("--name"));
        json_object_array_add(exec, json_object_new_string(name));
        return exec;
}

/*
 * Write services/NAME.service starting test-service for NAME with these
 * arguments (NULL-terminated), as `user` (NULL: none) in dir (NULL: services).
 */
static void add_service_in(const char *dir, const char *name, const char *user, ...)
{
        json_object *o = json_object_new_object();
        char path[PATH_MAX + 256];
        va_list ap;

        json_object_object_add(o, "name", json_object_new_string(name));
        va_start(ap, user);
        json_object_object_add(o, "exec", service_exec(name, ap));
        va_end(ap);
        if (user)
                json_object_object_add(o, "user", json_object_new_string(user));
        snprintf(path, sizeof(path), "%s/%s.service", dir ? dir : services, name);
        testbus_write_text(path, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
}

#define add_service(name, ...) add_service_in(NULL, (name), NULL, ##__VA_ARGS__, (const char *) NULL)
#define add_service_as(name, user, ...) add_service_in(NULL, (name), (user), ##__VA_ARGS__, (const char *) NULL)

/* The gate argument of a service: it waits for WORK/NAME.gate before it takes its name. */
static const char *gate_arg(const char *name)
{
        static char path[PATH_MAX];

        work_path(path, sizeof(path), name, ".gate");
        return path;
}

static void open_gate(const char *name)
{
        char path[PATH_MAX];

        work_path(path, sizeof(path), name, ".gate");
        testbus_write_text(path, "");
}

/* How many times NAME's program started (lines "start PID" of its --touch file). */
static int starts(const char *name)
{
        char path[PATH_MAX], line[128];
        FILE *f;
        int n = 0;

        work_path(path, sizeof(path), name, ".starts");
        f = fopen(path, "re");
        if (!f)
                return 0;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, "start ", 6) == 0)
                        n++;
        fclose(f);
        return n;
}

/* Wait until NAME's --touch file has a line starting with `what`. */
static bool touch_wait(const char *name, const char *what)
{
        int64_t deadline = testbus_now_ms() + (int64_t) TESTBUS_WAIT_MS * testbus_slow_factor();
        char path[PATH_MAX], line[128];

        work_path(path, sizeof(path), name, ".starts");
        do {
                FILE *f = fopen(path, "re");

                while (f && fgets(line, sizeof(line), f))
                        if (strncmp(line, what, strlen(what)) == 0) {
                                fclose(f);
                                return true;
                        }
                if (f)
                        fclose(f);
                usleep(20000);
        } while (testbus_now_ms() < deadline);
        return false;
}

/*
 * Start the test's broker: a bus of `type` whose only service directory is
 * services/, with more top-level members (JSON text after a comma, or NULL).
 */
static struct testbus *start_bus_as(const char *type, const char *more, const struct testbus_cred *cred)
{
        struct testbus *tb = testbus_current();
        struct testbus_options o = {.cred = cred};
        char config[4096];

        snprintf(config, sizeof(config),
                 "{\"type\":\"%s\",\"standard_service_dirs\":false,\"service_dirs\":[\"%s\"]%s%s}", type, services,
                 more ? "," : "", more ? more : "");
        o.config = config;
        testbus_start_with(tb, &o);
        return tb;
}

/*
 * The same with more variables (NULL-terminated KEY, VALUE pairs) in the
 * broker's environment; the test's own environment stays as it was.
 */
static struct testbus *start_bus_env(const char *type, const char *more, const char *const *vars)
{
        char *saved[16];
        struct testbus *tb;
        size_t n = 0;

        for (; vars[2 * n]; n++) {
                const char *old = getenv(vars[2 * n]);

                ck_assert_uint_lt(n, 16);
                saved[n] = old ? strdup(old) : NULL;
                ck_assert_int_eq(setenv(vars[2 * n], vars[2 * n + 1], 1), 0);
        }
        tb = start_bus_as(type, more, NULL);
        for (size_t i = 0; i < n; i++) {
                if (saved[i])
                        setenv(vars[2 * i], saved[i], 1);
                else
                        unsetenv(vars[2 * i]);
                free(saved[i]);
        }
        return tb;
}

static struct testbus *start_bus(const char *more)
{
        return start_bus_as("session", more, NULL);
}

/* A call to test-service (or another TESTBUS service) that must succeed. */
static json_object *svc_call(ipcbus_bus *bus, const char *name, const char *member, const char *body)
{
        return testbus_call(bus, name, TPATH, TIFACE, member, body);
}

/* A call that must fail with error; its message must name the service. Returns the message. */
static char *svc_call_error(ipcbus_bus *bus, const char *name, const char *member, const char *error)
{
        char *message = testbus_call_error(bus, name, TPATH, TIFACE, member, NULL, error);

        ck_assert_msg(message && strstr(message, name), "%s: the message does not name %s: %s", error, name,
                      message ? message : "(none)");
        return message;
}

static void expect_echo(ipcbus_bus *bus, const char *name)
{
        json_object *o = svc_call(bus, name, "Echo", "{\"x\":\"echo\"}");

        testbus_json_keys(o, "x", NULL);
        ck_assert_str_eq(testbus_json_string(o, "x"), "echo");
        json_object_put(o);
}

/* ListActivatableNames must be exactly `names` (NULL-terminated, in this order). */
static void expect_activatable(ipcbus_bus *bus, const char *const *names)
{
        json_object *o = testbus_driver(bus, "ListActivatableNames", NULL), *a;
        size_t n = 0;

        testbus_json_keys(o, "names", NULL);
        a = testbus_json_array(o, "names");
        for (; names[n]; n++) {
                json_object *v = json_object_array_get_idx(a, n);

                ck_assert_msg(v && json_object_is_type(v, json_type_string) &&
                                      strcmp(json_object_get_string(v), names[n]) == 0,
                              "ListActivatableNames: expected %s at %zu: %s", names[n], n,
                              json_object_to_json_string(o));
        }
        ck_assert_msg(json_object_array_length(a) == n, "ListActivatableNames: expected %zu names: %s", n,
                      json_object_to_json_string(o));
        json_object_put(o);
}

/* The broker's child processes now (from /proc; -1 when the kernel does not tell). */
static int broker_children(struct testbus *tb)
{
        char path[64], buf[4096];
        FILE *f;
        size_t n;
        int count = 0;

        snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int) tb->pid, (int) tb->pid);
        f = fopen(path, "re");
        if (!f)
                return -1;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        for (char *p = strtok(buf, " \n"); p; p = strtok(NULL, " \n"))
                count++;
        return count;
}

/* ---- asynchronous calls ------------------------------------------------------------------------- */

/* One asynchronous call and its answer. */
struct answer {
        int *counter; /* answers so far on its connection: gives the order */
        int order;    /* -1 until answered */
        char *error;  /* the error's name, NULL for a return */
        char *message;
        char *body;
};

static int on_answer(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct answer *a = userdata;

        a->order = (*a->counter)++;
        if (ipcbus_message_get_type(m) == IPCBUS_MESSAGE_ERROR) {
                ipcbus_error e = IPCBUS_ERROR_NULL;

                ipcbus_message_get_error(m, &e);
                a->error = strdup(e.name ? e.name : "(no name)");
                a->message = e.message ? strdup(e.message) : NULL;
                ipcbus_error_free(&e);
        } else
                a->body = strdup(ipcbus_message_get_body(m, NULL));
        return 0;
}

static void call_async(ipcbus_bus *bus, int *counter, struct answer *a, const char *name, const char *member,
                       const char *body)
{
        int r;

        *a = (struct answer){.counter = counter, .order = -1};
        r = ipcbus_call_async(bus, NULL, name, TPATH, TIFACE, member, body,
                              30 * 1000000ull * (uint64_t) testbus_slow_factor(), on_answer, a);
        ck_assert_msg(r >= 0, "ipcbus_call_async: %s", ipcbus_strerror(r));
}

static void answer_deinit(struct answer *a)
{
        free(a->error);
        free(a->message);
        free(a->body);
}

struct answers {
        struct answer **a;
        size_t n;
};

static bool all_answered(void *userdata)
{
        struct answers *s = userdata;

        for (size_t i = 0; i < s->n; i++)
                if (s->a[i]->order < 0)
                        return false;
        return true;
}

static void wait_answers(ipcbus_bus *const *buses, struct answer **a, size_t n)
{
        struct answers s = {a, n};

        ck_assert_msg(testbus_pump_until(buses, all_answered, &s, TESTBUS_WAIT_MS * 4 * testbus_slow_factor()),
                      "not every queued call was answered");
}

static void expect_answer_body(struct answer *a, const char *body)
{
        ck_assert_msg(!a->error, "expected %s, got %s: %s", body, a->error, a->message ? a->message : "");
        ck_assert_str_eq(a->body, body);
}

static void expect_answer_error(struct answer *a, const char *error, const char *name)
{
        ck_assert_msg(a->error && strcmp(a->error, error) == 0, "expected %s, got %s", error,
                      a->error ? a->error : a->body);
        ck_assert_msg(a->message && strstr(a->message, name), "%s: the message does not name %s: %s", error, name,
                      a->message ? a->message : "(none)");
}

/* ---- activation --------------------------------------------------------------------------------- */

#define SVC "org.example.Activated"

/*
 * Three calls from two clients, queued while the service starts (it waits at
 * its gate): one start, every call answered, in the order each client sent.
 */
START_TEST(test_queued_calls_in_order)
{
        struct testbus *tb;
        ipcbus_bus *a, *b;
        int na = 0, nb = 0;
        struct answer a1, a2, b1;
        char *owner;

        add_service(SVC, "--wait-file", gate_arg(SVC));
        tb = start_bus(NULL);
        a = testbus_connect(tb);
        b = testbus_connect(tb);

        call_async(a, &na, &a1, SVC, "Echo", "{\"from\":\"a\",\"i\":1}");
        call_async(b, &nb, &b1, SVC, "Echo", "{\"from\":\"b\",\"i\":1}");
        call_async(a, &na, &a2, SVC, "Echo", "{\"from\":\"a\",\"i\":2}");
        /* the broker has them all (each client's calls are handled in order) */
        testbus_sync(a);
        testbus_sync(b);
        ck_assert_int_eq(na + nb, 0);
        owner = testbus_name_owner(a, SVC);
        ck_assert_msg(!owner, "%s is owned by %s before its program could take it", SVC, owner);

        open_gate(SVC);
        wait_answers((ipcbus_bus *[]){a, b, NULL}, (struct answer *[]){&a1, &a2, &b1}, 3);
        expect_answer_body(&a1, "{\"from\":\"a\",\"i\":1}");
        expect_answer_body(&a2, "{\"from\":\"a\",\"i\":2}");
        expect_answer_body(&b1, "{\"from\":\"b\",\"i\":1}");
        ck_assert_msg(a1.order < a2.order, "client a's calls were answered out of order");
        ck_assert_int_eq(starts(SVC), 1);

        /* owned now: calls go straight to it, nothing more is started */
        owner = testbus_name_owner(a, SVC);
        ck_assert_ptr_nonnull(owner);
        free(owner);
        expect_echo(b, SVC);
        ck_assert_int_eq(starts(SVC), 1);

        answer_deinit(&a1);
        answer_deinit(&a2);
        answer_deinit(&b1);
        ipcbus_unref(b);
        ipcbus_unref(a);
}
END_TEST

/* A synchronous call to an activatable name: started, answered; the started program owns the name. */
START_TEST(test_call_starts_service)
{
        struct testbus *tb;
        ipcbus_bus *bus;
        json_object *env, *cred;
        char body[128];

        add_service(SVC);
        tb = start_bus(NULL);
        bus = testbus_connect(tb);
        ck_assert_int_eq(starts(SVC), 0);
        expect_echo(bus, SVC);
        ck_assert_int_eq(starts(SVC), 1);

        /* the owner is the program the broker started */
        env = svc_call(bus, SVC, "Env", NULL);
        snprintf(body, sizeof(body), "{\"name\":\"%s\"}", SVC);
        cred = testbus_driver(bus, "GetConnectionCredentials", body);
        ck_assert_int_eq(testbus_json_int(cred, "pid"), testbus_json_int(env, "pid"));
        json_object_put(cred);
        json_object_put(env);
        ipcbus_unref(bus);
}
END_TEST

/* ---- the started program's environment ---------------------------------------------------------- */

/* Are we under valgrind? It adds variables of its own to the programs it follows. */
static bool under_valgrind(void)
{
        const char *p = getenv("LD_PRELOAD");

        return p && strstr(p, "vgpreload");
}

static bool env_allowed(const char *key, const char *const *allowed)
{
        static const char *const valgrind_vars[] = {"LD_PRELOAD", "VALGRIND_LIB", "VALGRIND_LAUNCHER", NULL};

        for (size_t i = 0; allowed[i]; i++)
                if (strcmp(key, allowed[i]) == 0)
                        return true;
        if (under_valgrind())
                for (size_t i = 0; valgrind_vars[i]; i++)
                        if (strcmp(key, valgrind_vars[i]) == 0)
                                return true;
        return false;
}

static void expect_env(json_object *env, const char *key, const char *value)
{
        json_object *v = NULL;

        ck_assert_msg(json_object_object_get_ex(env, key, &v), "the service's environment lacks %s: %s", key,
                      json_object_to_json_string(env));
        ck_assert_msg(strcmp(json_object_get_string(v), value) == 0, "the service's %s is '%s', expected '%s'", key,
                      json_object_get_string(v), value);
}

/* Only these variables (NULL-terminated), and nothing else. */
static void expect_env_only(json_object *env, const char *const *allowed)
{
        json_object_object_foreach(env, key, val)
        {
                (void) val;
                ck_assert_msg(env_allowed(key, allowed), "the service's environment has %s=%s", key,
                              json_object_get_string(val));
        }
}

static void expect_empty_array(json_object *o, const char *key, const char *what)
{
        json_object *a = testbus_json_array(o, key);

        ck_assert_msg(json_object_array_length(a) == 0, "the service has %s: %s", what, json_object_to_json_string(a));
}

/*
 * No descriptor besides 0-2 was open when the service started. (Under
 * valgrind, its log file is open in every process it follows.)
 */
static void expect_no_fds(json_object *o)
{
        const char *logs = getenv("VALGRIND_LOG_DIR");
        json_object *fds = json_object_object_get(o, "fds");

        ck_assert_msg(fds && json_object_is_type(fds, json_type_object), "no fds: %s", json_object_to_json_string(o));
        json_object_object_foreach(fds, fd, target)
        {
                const char *t = json_object_get_string(target);

                if (under_valgrind() && logs && strncmp(t, logs, strlen(logs)) == 0)
                        continue;
                ck_assert_msg(false, "the service started with descriptor %s open (%s)", fd, t);
        }
}

/* Where the broker's descriptor fd points (readlink of /proc/PID/fd/FD), into buf. */
static const char *broker_fd(struct testbus *tb, int fd, char *buf, size_t size)
{
        char link[64];
        ssize_t n;

        snprintf(link, sizeof(link), "/proc/%d/fd/%d", (int) tb->pid, fd);
        n = readlink(link, buf, size - 1);
        ck_assert_msg(n > 0, "readlink(%s): %s", link, strerror(errno));
        buf[n] = '\0';
        return buf;
}

/*
 * The clean environment of the spec, on a session bus (_i 0) and a system bus
 * (_i 1): the documented variables, nothing of the broker's own environment,
 * stdin /dev/null, stdout and stderr the broker's, no other descriptor, a new
 * session, no ignored or blocked signal.
 */
START_TEST(test_environment)
{
        static const char *const session_vars[] = {
                "PATH",
                "HOME",
                "USER",
                "LOGNAME",
                "IPCBUS_STARTER_ADDRESS",
                "IPCBUS_STARTER_BUS_TYPE",
                "IPCBUS_ADDRESS",
                "XDG_RUNTIME_DIR",
                NULL,
        };
        static const char *const system_vars[] = {
                "PATH",
                "HOME",
                "USER",
                "LOGNAME",
                "IPCBUS_STARTER_ADDRESS",
                "IPCBUS_STARTER_BUS_TYPE",
                "IPCBUS_SYSTEM_ADDRESS",
                NULL,
        };
        bool session = _i == 0;
        struct passwd *pw = getpwuid(getuid());
        struct testbus *tb;
        ipcbus_bus *bus;
        json_object *o, *env;
        char link[PATH_MAX];

        ck_assert_ptr_nonnull(pw);
        add_service(SVC);
        /* the broker's own environment, none of which the service may see but XDG_RUNTIME_DIR */
        tb = start_bus_env(session ? "session" : "system", NULL,
                           (const char *const[]){"IPCBUS_TEST_BROKER_ONLY", "must-not-leak", "XDG_RUNTIME_DIR",
                                                 "/run/ipcbus-test-runtime", "HOME", "/ipcbus-test-home", "PATH",
                                                 "/ipcbus-test-path:/usr/bin:/bin", NULL});
        bus = testbus_connect(tb);
        o = svc_call(bus, SVC, "Env", NULL);
        env = json_object_object_get(o, "env");
        ck_assert_msg(env && json_object_is_type(env, json_type_object), "no env: %s", json_object_to_json_string(o));

        expect_env(env, "PATH", CLEAN_PATH);
        expect_env(env, "HOME", pw->pw_dir);
        expect_env(env, "USER", pw->pw_name);
        expect_env(env, "LOGNAME", pw->pw_name);
        expect_env(env, "IPCBUS_STARTER_ADDRESS", tb->address);
        expect_env(env, "IPCBUS_STARTER_BUS_TYPE", session ? "session" : "system");
        if (session) {
                expect_env(env, "IPCBUS_ADDRESS", tb->address);
                expect_env(env, "XDG_RUNTIME_DIR", "/run/ipcbus-test-runtime");
        } else
                expect_env(env, "IPCBUS_SYSTEM_ADDRESS", tb->address);
        expect_env_only(env, session ? session_vars : system_vars);

        ck_assert_int_eq(testbus_json_int(o, "uid"), (int64_t) getuid());
        expect_no_fds(o);
        ck_assert_str_eq(testbus_json_string(o, "stdin"), "/dev/null");
        ck_assert_str_eq(testbus_json_string(o, "stdout"), broker_fd(tb, 1, link, sizeof(link)));
        ck_assert_str_eq(testbus_json_string(o, "stderr"), broker_fd(tb, 2, link, sizeof(link)));
        ck_assert_str_eq(testbus_json_string(o, "stderr"), tb->log_path);
        ck_assert_msg(testbus_json_bool(o, "session_leader"), "the service is not in a session of its own");
        expect_empty_array(o, "ignored", "signals ignored");
        expect_empty_array(o, "blocked", "signals blocked");
        json_object_put(o);
        ipcbus_unref(bus);
}
END_TEST

/* ---- UpdateActivationEnvironment ----------------------------------------------------------------- */

START_TEST(test_activation_environment)
{
        static const char *const bad[] = {
                "{\"environment\":{\"\":\"x\"}}",
                "{\"environment\":{\"A=B\":\"x\"}}",
                "{\"environment\":{\"NUMBER\":1}}",
                "{\"environment\":{\"NULL\":null}}",
                "{\"environment\":[\"A=B\"]}",
                "{\"environment\":\"A=B\"}",
                "{}",
        };
        struct testbus *tb;
        ipcbus_bus *bus, *other;
        json_object *o, *env;

        add_service("org.example.First");
        add_service("org.example.Second");
        add_service("org.example.Third");
        tb = start_bus(NULL);
        bus = testbus_connect(tb);

        o = testbus_driver(bus, "UpdateActivationEnvironment",
                           "{\"environment\":{\"IPCBUS_TEST_A\":\"one\",\"HOME\":\"/custom-home\"}}");
        testbus_json_keys(o, NULL);
        json_object_put(o);
        o = svc_call(bus, "org.example.First", "Env", NULL);
        env = json_object_object_get(o, "env");
        expect_env(env, "IPCBUS_TEST_A", "one");
        expect_env(env, "HOME", "/custom-home"); /* on top of the clean environment */
        expect_env(env, "PATH", CLEAN_PATH);
        json_object_put(o);

        /* updates add up; the next started service has both */
        json_object_put(testbus_driver(bus, "UpdateActivationEnvironment",
                                       "{\"environment\":{\"IPCBUS_TEST_B\":\"two\",\"IPCBUS_TEST_A\":\"uno\"}}"));
        o = svc_call(bus, "org.example.Second", "Env", NULL);
        env = json_object_object_get(o, "env");
        expect_env(env, "IPCBUS_TEST_A", "uno");
        expect_env(env, "IPCBUS_TEST_B", "two");
        expect_env(env, "HOME", "/custom-home");
        json_object_put(o);

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                testbus_driver_error(bus, "UpdateActivationEnvironment", bad[i], IPCBUS_ERROR_INVALID_ARGS);

        /* another user may not */
        other = testbus_connect_as(tb, &alice);
        testbus_driver_error(other, "UpdateActivationEnvironment", "{\"environment\":{\"IPCBUS_TEST_C\":\"x\"}}",
                             IPCBUS_ERROR_ACCESS_DENIED);
        o = svc_call(bus, "org.example.Third", "Env", NULL);
        env = json_object_object_get(o, "env");
        ck_assert_msg(!json_object_object_get_ex(env, "IPCBUS_TEST_C", NULL), "a denied update reached a service");
        expect_env(env, "IPCBUS_TEST_B", "two");
        json_object_put(o);
        ipcbus_unref(other);
        ipcbus_unref(bus);
}
END_TEST

/* Never on the system bus, not even for root. */
START_TEST(test_activation_environment_system_bus)
{
        struct testbus *tb;
        ipcbus_bus *bus;

        tb = start_bus_as("system", NULL, NULL);
        bus = testbus_connect(tb);
        testbus_driver_error(bus, "UpdateActivationEnvironment", "{\"environment\":{\"IPCBUS_TEST_A\":\"x\"}}",
                             IPCBUS_ERROR_ACCESS_DENIED);
        ipcbus_unref(bus);
}
END_TEST

/* ---- no_auto_start, StartServiceByName, ListActivatableNames ---------------------------------------- */

START_TEST(test_no_auto_start)
{
        struct testbus *tb;
        struct testbus_frame f;
        ipcbus_bus *bus;
        char *unique, *owner;
        const char *message;
        int fd;

        add_service(SVC);
        tb = start_bus(NULL);
        fd = testbus_raw_connect(tb);
        unique = testbus_raw_hello(fd);
        testbus_raw_send_frame(fd,
                               "{\"type\":\"call\",\"serial\":2,\"destination\":\"" SVC "\",\"path\":\"" TPATH
                               "\",\"interface\":\"" TIFACE "\",\"member\":\"Echo\",\"no_auto_start\":true}",
                               "{}");
        testbus_raw_expect_reply(fd, 2, IPCBUS_ERROR_SERVICE_UNKNOWN, &f);
        message = f.b ? json_object_get_string(json_object_object_get(f.b, "message")) : NULL;
        ck_assert_msg(message && strstr(message, SVC), "ServiceUnknown does not name %s: %s", SVC,
                      f.body ? f.body : "(no body)");
        testbus_frame_deinit(&f);

        /* nothing was started: once the broker answered, it has no child and the program never ran */
        testbus_raw_ping(fd, 3);
        ck_assert_int_le(broker_children(tb), 0);
        ck_assert_int_eq(starts(SVC), 0);
        bus = testbus_connect(tb);
        owner = testbus_name_owner(bus, SVC);
        ck_assert_ptr_null(owner);

        /* the same call without the flag starts it */
        testbus_raw_send_frame(fd,
                               "{\"type\":\"call\",\"serial\":4,\"destination\":\"" SVC "\",\"path\":\"" TPATH
                               "\",\"interface\":\"" TIFACE "\",\"member\":\"Echo\"}",
                               "{\"n\":4}");
        testbus_raw_expect_reply(fd, 4, NULL, &f);
        ck_assert_str_eq(f.body, "{\"n\":4}");
        testbus_frame_deinit(&f);
        ck_assert_int_eq(starts(SVC), 1);
        ipcbus_unref(bus);
        free(unique);
        close(fd);
}
END_TEST

START_TEST(test_start_service_by_name)
{
        struct testbus *tb;
        ipcbus_bus *bus;
        char *owner;
        json_object *o;

        add_service(SVC);
        tb = start_bus(NULL);
        bus = testbus_connect(tb);

        o = testbus_driver(bus, "StartServiceByName", "{\"name\":\"" SVC "\",\"flags\":0}");
        testbus_json_keys(o, "result", NULL);
        ck_assert_int_eq(testbus_json_int(o, "result"), 1);
        json_object_put(o);
        /* started and owned by the time of the answer */
        owner = testbus_name_owner(bus, SVC);
        ck_assert_msg(owner, "StartServiceByName answered 1 but %s has no owner", SVC);
        free(owner);
        ck_assert_int_eq(starts(SVC), 1);

        o = testbus_driver(bus, "StartServiceByName", "{\"name\":\"" SVC "\",\"flags\":0}");
        testbus_json_keys(o, "result", NULL);
        ck_assert_int_eq(testbus_json_int(o, "result"), 2);
        json_object_put(o);
        ck_assert_int_eq(starts(SVC), 1);
        expect_echo(bus, SVC);

        free(testbus_call_error(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE,
                                "StartServiceByName", "{\"name\":\"org.example.Nobody\",\"flags\":0}",
                                IPCBUS_ERROR_SERVICE_UNKNOWN));
        {
                char *m = testbus_call_error(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE,
                                             "StartServiceByName", "{\"name\":\"org.example.Nobody\"}",
                                             IPCBUS_ERROR_SERVICE_UNKNOWN);

                ck_assert_msg(m && strstr(m, "org.example.Nobody"), "ServiceUnknown does not name the name: %s",
                              m ? m : "(none)");
                free(m);
        }
        testbus_driver_error(bus, "StartServiceByName", "{}", IPCBUS_ERROR_INVALID_ARGS);
        testbus_driver_error(bus, "StartServiceByName", "{\"name\":42}", IPCBUS_ERROR_INVALID_ARGS);
        testbus_driver_error(bus, "StartServiceByName", "{\"name\":\"" SVC "\",\"flags\":\"0\"}",
                             IPCBUS_ERROR_INVALID_ARGS);
        ipcbus_unref(bus);
}
END_TEST

START_TEST(test_list_activatable_names)
{
        struct testbus *tb;
        ipcbus_bus *bus;

        add_service("org.example.B");
        add_service("org.example.A");
        add_service("com.example.Z");
        add_service("org.example.A.Sub");
        /* not a service file: ignored */
        service_file("org.example.Notes.txt", "{\"name\":\"org.example.Notes\",\"exec\":[\"/bin/true\"]}");
        tb = start_bus(NULL);
        bus = testbus_connect(tb);
        expect_activatable(bus, (const char *[]){"com.example.Z", "org.example.A", "org.example.A.Sub", "org.example.B",
                                                 IPCBUS_DRIVER_NAME, NULL});
        ipcbus_unref(bus);
}
END_TEST

/* ---- failures ------------------------------------------------------------------------------------ */

START_TEST(test_exec_failed)
{
        struct testbus *tb;
        ipcbus_bus *bus;
        char path[PATH_MAX], text[PATH_MAX * 2], *m;

        work_path(path, sizeof(path), "missing", "/program");
        snprintf(text, sizeof(text), "{\"name\":\"org.example.Missing\",\"exec\":[\"%s\",\"--flag\"]}", path);
        service_file("org.example.Missing.service", text);
        /* there, but not executable */
        work_path(path, sizeof(path), "not-executable", "");
        testbus_write_text(path, "#!/bin/sh\nexit 0\n");
        snprintf(text, sizeof(text), "{\"name\":\"org.example.NoExec\",\"exec\":[\"%s\"]}", path);
        service_file("org.example.NoExec.service", text);
        tb = start_bus(NULL);
        bus = testbus_connect(tb);

        m = svc_call_error(bus, "org.example.Missing", "Echo", SPAWN_ERROR("ExecFailed"));
        ck_assert_msg(strstr(m, strerror(ENOENT)), "ExecFailed does not say why: %s", m);
        free(m);
        m = svc_call_error(bus, "org.example.NoExec", "Echo", SPAWN_ERROR("ExecFailed"));
        ck_assert_msg(strstr(m, strerror(EACCES)), "ExecFailed does not say why: %s", m);
        free(m);
        /* the same through StartServiceByName */
        testbus_driver_error(bus, "StartServiceByName", "{\"name\":\"org.example.Missing\",\"flags\":0}",
                             SPAWN_ERROR("ExecFailed"));
        ipcbus_unref(bus);
}
END_TEST

/* Exit status 3 before owning the name: every queued caller gets ChildExited naming the status. */
START_TEST(test_child_exited)
{
        struct testbus *tb;
        ipcbus_bus *a, *b;
        int na = 0, nb = 0;
        struct answer a1, b1;
        char *m;

        add_service(SVC, "--wait-file", gate_arg(SVC), "--exit", "3");
        add_service("org.example.Zero", "--exit", "0");
        tb = start_bus(NULL);
        a = testbus_connect(tb);
        b = testbus_connect(tb);

        call_async(a, &na, &a1, SVC, "Echo", "{}");
        call_async(b, &nb, &b1, SVC, "Echo", "{}");
        testbus_sync(a);
        testbus_sync(b);
        open_gate(SVC);
        wait_answers((ipcbus_bus *[]){a, b, NULL}, (struct answer *[]){&a1, &b1}, 2);
        expect_answer_error(&a1, SPAWN_ERROR("ChildExited"), SVC);
        expect_answer_error(&b1, SPAWN_ERROR("ChildExited"), SVC);
        ck_assert_msg(testbus_text_names(a1.message, "3"), "ChildExited does not give the status 3: %s", a1.message);
        ck_assert_int_eq(starts(SVC), 1);

        /* exit status 0 is a failure too */
        m = testbus_call_error(a, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE, "StartServiceByName",
                               "{\"name\":\"org.example.Zero\",\"flags\":0}", SPAWN_ERROR("ChildExited"));
        ck_assert_msg(m && strstr(m, "org.example.Zero") && testbus_text_names(m, "0"),
                      "ChildExited does not name the service and the status 0: %s", m ? m : "(none)");
        free(m);

        answer_deinit(&a1);
        answer_deinit(&b1);
        ipcbus_unref(b);
        ipcbus_unref(a);
}
END_TEST

START_TEST(test_child_signaled)
{
        struct testbus *tb;
        ipcbus_bus *bus;
        char *m;

        add_service(SVC, "--signal", "9");
        tb = start_bus(NULL);
        bus = testbus_connect(tb);
        m = svc_call_error(bus, SVC, "Echo", SPAWN_ERROR("ChildSignaled"));
        ck_assert_msg(testbus_text_names(m, "9") || strstr(m, "KILL") || strstr(m, "Killed"),
                      "ChildSignaled does not name the signal: %s", m);
        free(m);
        ck_assert_int_eq(starts(SVC), 1);
        ipcbus_unref(bus);
}
END_TEST

/* A program that never takes its name: Timeout after activation_timeout_ms, and the broker SIGTERMs it. */
START_TEST(test_timeout)
{
        int timeout_ms = 500 * testbus_slow_factor();
        struct testbus *tb;
        ipcbus_bus *bus;
        char more[128], *m;
        int64_t t0;

        add_service(SVC, "--never-own");
        snprintf(more, sizeof(more), "\"limits\":{\"activation_timeout_ms\":%d}", timeout_ms);
        tb = start_bus(more);
        bus = testbus_connect(tb);
        t0 = testbus_now_ms();
        m = svc_call_error(bus, SVC, "Echo", SPAWN_ERROR("Timeout"));
        ck_assert_msg(testbus_now_ms() - t0 >= timeout_ms - 20, "Timeout after %lld ms, the limit is %d ms",
                      (long long) (testbus_now_ms() - t0), timeout_ms);
        free(m);
        ck_assert_int_eq(starts(SVC), 1);
        ck_assert_msg(touch_wait(SVC, "sigterm"), "the broker did not SIGTERM the program that timed out");
        ipcbus_unref(bus);
}
END_TEST

/* ---- units through systemctl ($IPCBUSD_SYSTEMCTL) ----------------------------------------------------- */

#define UNIT "ipcbus-test-unit.service"

/*
 * A systemctl of the test's: it appends its arguments to WORK/systemctl.args,
 * then runs `body` (shell text) for `start`. For `show` (the broker watching
 * the unit) it prints the unit's state: WORK/unit.state when that file
 * exists (the test's), else ActiveState=active and Result=success.
 */
static void write_systemctl(const char *body)
{
        char path[PATH_MAX], args[PATH_MAX], state[PATH_MAX], text[PATH_MAX * 6];

        work_path(path, sizeof(path), "systemctl", "");
        work_path(args, sizeof(args), "systemctl", ".args");
        work_path(state, sizeof(state), "unit", ".state");
        snprintf(text, sizeof(text),
                 "#!/bin/sh\nprintf '%%s\\n' \"$*\" >>'%s'\n"
                 "case \" $* \" in *' show '*)\n"
                 "  if [ -e '%s' ]; then cat '%s'; else printf 'ActiveState=active\\nResult=success\\n'; fi\n"
                 "  exit 0;;\nesac\n%s\n",
                 args, state, state, body);
        testbus_write_text(path, text);
        ck_assert_int_eq(chmod(path, 0755), 0);
}

/* Start the broker with $IPCBUSD_SYSTEMCTL naming WORK/systemctl. */
static struct testbus *start_bus_systemctl(const char *type)
{
        char path[PATH_MAX];

        work_path(path, sizeof(path), "systemctl", "");
        return start_bus_env(type, NULL, (const char *const[]){"IPCBUSD_SYSTEMCTL", path, NULL});
}

/* What the script was run with (its first line), into buf; "" when it did not run. */
static const char *systemctl_args(char *buf, size_t size)
{
        char path[PATH_MAX];
        FILE *f;

        work_path(path, sizeof(path), "systemctl", ".args");
        buf[0] = '\0';
        f = fopen(path, "re");
        if (f) {
                if (!fgets(buf, (int) size, f))
                        buf[0] = '\0';
                fclose(f);
        }
        buf[strcspn(buf, "\n")] = '\0';
        return buf;
}

START_TEST(test_unit_failed)
{
        struct testbus *tb;
        ipcbus_bus *bus;
        char args[256], *m;

        service_file(SVC ".service", "{\"name\":\"" SVC "\",\"unit\":\"" UNIT "\"}");
        write_systemctl("echo 'Job for " UNIT " failed.' >&2\nexit 1");
        tb = start_bus_systemctl("session");
        bus = testbus_connect(tb);
        m = svc_call_error(bus, SVC, "Echo", SPAWN_ERROR("UnitFailed"));
        free(m);
        ck_assert_str_eq(systemctl_args(args, sizeof(args)), "--user start " UNIT);
        testbus_driver_error(bus, "StartServiceByName", "{\"name\":\"" SVC "\",\"flags\":0}",
                             SPAWN_ERROR("UnitFailed"));
        ipcbus_unref(bus);
}
END_TEST

/*
 * systemctl starts the service (here: the script, in the background) and
 * exits 0: the queued call is answered. `exec` is only informational when
 * `unit` is given. A session bus (_i 0) says --user, a system bus (_i 1) not.
 */
START_TEST(test_unit_started)
{
        bool session = _i == 0;
        struct testbus *tb;
        ipcbus_bus *bus;
        char args[256], starts_path[PATH_MAX], log[PATH_MAX], body[PATH_MAX * 4];

        service_file(SVC ".service",
                     "{\"name\":\"" SVC "\",\"unit\":\"" UNIT "\",\"exec\":[\"/nonexistent/ipcbus-test\"]}");
        tb = start_bus_systemctl(session ? "session" : "system");
        work_path(starts_path, sizeof(starts_path), SVC, ".starts");
        work_path(log, sizeof(log), "unit-service", ".log");
        snprintf(body, sizeof(body),
                 "IPCBUS_ADDRESS='%s' '%s' --touch '%s' --name '%s' </dev/null >>'%s' 2>&1 &\nexit 0", tb->address,
                 testbus_test_service(), starts_path, SVC, log);
        write_systemctl(body);
        bus = testbus_connect(tb);
        expect_echo(bus, SVC);
        ck_assert_str_eq(systemctl_args(args, sizeof(args)), session ? "--user start " UNIT : "start " UNIT);
        ck_assert_int_eq(starts(SVC), 1);
        ipcbus_unref(bus);
}
END_TEST

/*
 * systemctl start succeeds but the unit fails right after (its program
 * exits): the broker, watching the unit, fails the activation with
 * Spawn.UnitFailed within about a second, not after activation_timeout_ms.
 */
START_TEST(test_unit_fails_after_start)
{
        struct testbus *tb;
        ipcbus_bus *bus, *other;
        char state[PATH_MAX], *m;
        int64_t t0, took;

        service_file(SVC ".service", "{\"name\":\"" SVC "\",\"unit\":\"" UNIT "\"}");
        work_path(state, sizeof(state), "unit", ".state");
        testbus_write_text(state, "Id=" UNIT "\nActiveState=failed\nResult=exit-code\n");
        write_systemctl("exit 0");
        tb = start_bus_systemctl("session");
        bus = testbus_connect(tb);
        other = testbus_connect(tb);
        t0 = testbus_now_ms();
        m = svc_call_error(bus, SVC, "Echo", SPAWN_ERROR("UnitFailed"));
        took = testbus_now_ms() - t0;
        fprintf(stderr, "FIGURE item=14 unit_failed_answered_ms=%lld activation_timeout_ms=25000\n", (long long) took);
        ck_assert_msg(strstr(m, UNIT) && strstr(m, "exit-code"), "the message does not say the unit failed: %s", m);
        free(m);
        ck_assert_msg(took < 1500 * testbus_slow_factor(), "UnitFailed came after %lld ms", (long long) took);
        /* the bus carries on */
        json_object_put(testbus_driver(other, "Ping", NULL));
        ipcbus_unref(other);
        ipcbus_unref(bus);
}
END_TEST

/* ---- user ----------------------------------------------------------------------------------------- */

START_TEST(test_user)
{
        struct passwd *pw = getpwnam("nobody");
        uid_t uid;
        gid_t gid;
        char home[PATH_MAX], body[128];
        struct testbus *tb;
        ipcbus_bus *bus;
        json_object *o, *env, *groups, *cred;

        ck_assert_msg(pw, "no user nobody");
        uid = pw->pw_uid;
        gid = pw->pw_gid;
        snprintf(home, sizeof(home), "%s", pw->pw_dir);
        add_service_as(SVC, "nobody");
        ck_assert_int_eq(chmod(work, 0777), 0); /* for its --touch file */
        tb = start_bus(NULL);
        testbus_share_dirs(tb); /* nobody reaches the socket */
        bus = testbus_connect(tb);

        o = svc_call(bus, SVC, "Env", NULL);
        ck_assert_int_eq(testbus_json_int(o, "uid"), uid);
        ck_assert_int_eq(testbus_json_int(o, "gid"), gid);
        groups = testbus_json_array(o, "groups");
        for (size_t i = 0; i < json_object_array_length(groups); i++)
                ck_assert_msg(json_object_get_int64(json_object_array_get_idx(groups, i)) != 0,
                              "the service kept root's group: %s", json_object_to_json_string(o));
        env = json_object_object_get(o, "env");
        expect_env(env, "USER", "nobody");
        expect_env(env, "LOGNAME", "nobody");
        expect_env(env, "HOME", home);
        json_object_put(o);
        snprintf(body, sizeof(body), "{\"name\":\"%s\"}", SVC);
        cred = testbus_driver(bus, "GetConnectionCredentials", body);
        ck_assert_int_eq(testbus_json_int(cred, "uid"), uid);
        json_object_put(cred);
        ipcbus_unref(bus);
}
END_TEST

START_TEST(test_unknown_user)
{
        struct testbus *tb;
        ipcbus_bus *bus;
        char *m;

        add_service_as(SVC, "ipcbus-no-such-user");
        tb = start_bus(NULL);
        bus = testbus_connect(tb);
        m = svc_call_error(bus, SVC, "Echo", SPAWN_ERROR("FailedToSetup"));
        ck_assert_msg(strstr(m, "ipcbus-no-such-user"), "FailedToSetup does not name the user: %s", m);
        free(m);
        ck_assert_int_eq(starts(SVC), 0);
        ipcbus_unref(bus);
}
END_TEST

/* A broker that is not root cannot switch users; without "user" its services run as it. */
START_TEST(test_user_needs_root)
{
        struct testbus *tb;
        ipcbus_bus *bus;
        json_object *o;
        char *m;

        add_service_as(SVC, "nobody");
        add_service("org.example.Mine");
        ck_assert_int_eq(chmod(work, 0777), 0);
        tb = start_bus_as("session", NULL, &alice);
        bus = testbus_connect(tb);
        m = svc_call_error(bus, SVC, "Echo", SPAWN_ERROR("FailedToSetup"));
        free(m);
        o = svc_call(bus, "org.example.Mine", "Env", NULL);
        ck_assert_int_eq(testbus_json_int(o, "uid"), alice.uid);
        json_object_put(o);
        ipcbus_unref(bus);
}
END_TEST

/* ---- callers, limits, owners ------------------------------------------------------------------------ */

/* A caller leaves while its calls are queued: the others get their answers, nothing breaks. */
START_TEST(test_caller_leaves_while_queued)
{
        struct testbus *tb;
        ipcbus_bus *a, *b, *c;
        int na = 0, nb = 0, nc = 0;
        struct answer a1, a2, b1, c1;

        add_service(SVC, "--wait-file", gate_arg(SVC));
        tb = start_bus(NULL);
        a = testbus_connect(tb);
        b = testbus_connect(tb);
        c = testbus_connect(tb);
        call_async(a, &na, &a1, SVC, "Echo", "{\"from\":\"a\"}");
        call_async(b, &nb, &b1, SVC, "Echo", "{\"from\":\"b\"}");
        call_async(a, &na, &a2, SVC, "Echo", "{\"from\":\"a\",\"i\":2}");
        call_async(c, &nc, &c1, SVC, "Echo", "{\"from\":\"c\"}");
        testbus_sync(a);
        testbus_sync(b);
        testbus_sync(c);
        ipcbus_unref(a);
        testbus_sync(b);

        open_gate(SVC);
        wait_answers((ipcbus_bus *[]){b, c, NULL}, (struct answer *[]){&b1, &c1}, 2);
        expect_answer_body(&b1, "{\"from\":\"b\"}");
        expect_answer_body(&c1, "{\"from\":\"c\"}");
        expect_echo(b, SVC);
        ck_assert_int_eq(starts(SVC), 1);
        ck_assert(testbus_alive(tb));

        answer_deinit(&b1);
        answer_deinit(&c1);
        ipcbus_unref(c);
        ipcbus_unref(b);
}
END_TEST

/* Queued activation requests count against max_pending_calls_per_connection. */
START_TEST(test_queued_calls_are_pending_calls)
{
        struct testbus *tb;
        ipcbus_bus *a;
        int na = 0;
        struct answer a1, a2, a3;

        add_service(SVC, "--wait-file", gate_arg(SVC));
        tb = start_bus("\"limits\":{\"max_pending_calls_per_connection\":2}");
        a = testbus_connect(tb);
        call_async(a, &na, &a1, SVC, "Echo", "{\"i\":1}");
        call_async(a, &na, &a2, SVC, "Echo", "{\"i\":2}");
        call_async(a, &na, &a3, SVC, "Echo", "{\"i\":3}");
        wait_answers((ipcbus_bus *[]){a, NULL}, (struct answer *[]){&a3}, 1);
        ck_assert_msg(a3.error && strcmp(a3.error, IPCBUS_ERROR_LIMITS_EXCEEDED) == 0, "expected %s, got %s",
                      IPCBUS_ERROR_LIMITS_EXCEEDED, a3.error ? a3.error : a3.body);
        ck_assert_msg(testbus_text_names(a3.message, "max_pending_calls_per_connection"),
                      "LimitsExceeded does not name the limit: %s", a3.message);
        ck_assert_msg(a1.order < 0 && a2.order < 0, "a queued call was answered before the service started: %s %s",
                      a1.order < 0 ? "-"
                      : a1.error   ? a1.error
                                   : a1.body,
                      a2.order < 0 ? "-"
                      : a2.error   ? a2.error
                                   : a2.body);

        open_gate(SVC);
        wait_answers((ipcbus_bus *[]){a, NULL}, (struct answer *[]){&a1, &a2}, 2);
        expect_answer_body(&a1, "{\"i\":1}");
        expect_answer_body(&a2, "{\"i\":2}");
        answer_deinit(&a1);
        answer_deinit(&a2);
        answer_deinit(&a3);
        ipcbus_unref(a);
}
END_TEST

/* Wait until `name` has n connections in its queue (owner included). */
static bool wait_queued_owners(ipcbus_bus *bus, const char *name, size_t n)
{
        int64_t deadline = testbus_now_ms() + (int64_t) TESTBUS_WAIT_MS * testbus_slow_factor();
        char body[300];

        snprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
        do {
                json_object *o = testbus_driver(bus, "ListQueuedOwners", body);
                size_t got = json_object_array_length(testbus_json_array(o, "owners"));

                json_object_put(o);
                if (got == n)
                        return true;
                usleep(20000);
        } while (testbus_now_ms() < deadline);
        return false;
}

/* Any connection that takes the name gets the queued calls, not only the program started. */
START_TEST(test_other_owner_gets_queued_calls)
{
        struct testbus *tb;
        struct testbus_child owner;
        ipcbus_bus *a;
        int na = 0;
        struct answer a1;

        add_service(SVC, "--wait-file", gate_arg(SVC));
        tb = start_bus(NULL);
        a = testbus_connect(tb);
        /* Fixed: only testbus's service answers it */
        call_async(a, &na, &a1, SVC, "Fixed", NULL);
        testbus_sync(a);
        testbus_service_start(tb, &owner, SVC);
        wait_answers((ipcbus_bus *[]){a, NULL}, (struct answer *[]){&a1}, 1);
        expect_answer_body(&a1, TESTBUS_FIXED_BODY);

        /* the started program queues for the name behind it and serves once it goes */
        open_gate(SVC);
        ck_assert_msg(wait_queued_owners(a, SVC, 2), "the started program did not queue for %s", SVC);
        testbus_child_finish(&owner);
        /* The first owner's exit reaches the broker on its own time: call once the name moved on. */
        ck_assert_msg(wait_queued_owners(a, SVC, 1), "%s did not pass to the started program", SVC);
        expect_echo(a, SVC);
        ck_assert_int_eq(starts(SVC), 1);
        answer_deinit(&a1);
        ipcbus_unref(a);
}
END_TEST

/* ---- service files ----------------------------------------------------------------------------------- */

/* Invalid files are skipped with one warning naming the file and the key; the valid ones work. */
START_TEST(test_invalid_service_files)
{
        static const struct {
                const char *file;
                const char *text; /* "@" stands for test-service */
                const char *key;  /* the log line names it (NULL: only the file) */
        } bad[] = {
                {"org.example.BadKey.service", "{\"name\":\"org.example.BadKey\",\"exec\":[\"@\"],\"colour\":\"red\"}",
                 "colour"},
                {"org..Bad.service", "{\"name\":\"org..Bad\",\"exec\":[\"@\"]}", "name"},
                {"org.example.Mismatch.service", "{\"name\":\"org.example.Other\",\"exec\":[\"@\"]}", "name"},
                {"org.example.NoName.service", "{\"exec\":[\"@\"]}", "name"},
                {"org.example.ExecType.service", "{\"name\":\"org.example.ExecType\",\"exec\":\"@\"}", "exec"},
                {"org.example.ExecEmpty.service", "{\"name\":\"org.example.ExecEmpty\",\"exec\":[]}", "exec"},
                {"org.example.Relative.service", "{\"name\":\"org.example.Relative\",\"exec\":[\"test-service\"]}",
                 "exec"},
                {"org.example.UserType.service", "{\"name\":\"org.example.UserType\",\"exec\":[\"@\"],\"user\":[]}",
                 "user"},
                {"org.example.Nothing.service", "{\"name\":\"org.example.Nothing\"}", NULL},
                {"org.example.NotJson.service", "{\"name\":", NULL},
        };
        static const char *const names[] = {
                "org.example.BadKey",   "org..Bad",
                "org.example.Mismatch", "org.example.Other",
                "org.example.NoName",   "org.example.ExecType",
                "org.example.Relative", "org.example.Nothing",
        };
        struct testbus *tb;
        ipcbus_bus *bus;

        add_service("org.example.Good");
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char text[PATH_MAX * 2], *at = strchr(bad[i].text, '@');

                if (at)
                        snprintf(text, sizeof(text), "%.*s%s%s", (int) (at - bad[i].text), bad[i].text,
                                 testbus_test_service(), at + 1);
                else
                        snprintf(text, sizeof(text), "%s", bad[i].text);
                service_file(bad[i].file, text);
        }
        tb = start_bus(NULL);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                if (bad[i].key)
                        testbus_log_expect(tb, "ipcbusd: warning: ", bad[i].file, bad[i].key);
                else
                        testbus_log_expect(tb, "ipcbusd: warning: ", bad[i].file);
        }
        bus = testbus_connect(tb);
        expect_activatable(bus, (const char *[]){"org.example.Good", IPCBUS_DRIVER_NAME, NULL});
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                if (strstr(names[i], ".."))
                        continue; /* not a name a call can carry */
                free(testbus_call_error(bus, names[i], TPATH, TIFACE, "Echo", NULL, IPCBUS_ERROR_SERVICE_UNKNOWN));
        }
        expect_echo(bus, "org.example.Good");
        ipcbus_unref(bus);
}
END_TEST

/* The same name in two directories: the first directory's file is the one. */
START_TEST(test_first_directory_wins)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *bus;
        char second[PATH_MAX], config[PATH_MAX * 3];

        snprintf(second, sizeof(second), "%s/second", work);
        ck_assert_int_eq(mkdir(second, 0755), 0);
        add_service_in(NULL, "org.example.One", NULL, (const char *) NULL);
        add_service_in(second, "org.example.One", NULL, "--exit", "7", (const char *) NULL);
        add_service_in(NULL, "org.example.Two", NULL, "--exit", "7", (const char *) NULL);
        add_service_in(second, "org.example.Two", NULL, (const char *) NULL);
        add_service_in(second, "org.example.Three", NULL, (const char *) NULL);
        snprintf(config, sizeof(config), "{\"standard_service_dirs\":false,\"service_dirs\":[\"%s\",\"%s\"]}", services,
                 second);
        testbus_start_config(tb, config);
        bus = testbus_connect(tb);
        expect_activatable(bus, (const char *[]){"org.example.One", "org.example.Three", "org.example.Two",
                                                 IPCBUS_DRIVER_NAME, NULL});
        expect_echo(bus, "org.example.One");
        free(svc_call_error(bus, "org.example.Two", "Echo", SPAWN_ERROR("ChildExited")));
        expect_echo(bus, "org.example.Three");
        ipcbus_unref(bus);
}
END_TEST

/*
 * StartServiceByName obeys the send policy as a call to the name would: on a
 * system bus whose policy denies alice sending to SVC, she gets AccessDenied
 * and nothing is started; root, allowed, starts it.
 */
START_TEST(test_start_service_policy)
{
        struct testbus *tb;
        ipcbus_bus *a, *root;
        json_object *o;

        add_service(SVC);
        tb = start_bus_as("system", "\"policy\":[{\"deny\":\"send\",\"name\":\"" SVC "\",\"user\":4242}]", NULL);
        a = testbus_connect_as(tb, &alice);
        testbus_driver_error(a, "StartServiceByName", "{\"name\":\"" SVC "\"}", IPCBUS_ERROR_ACCESS_DENIED);
        testbus_log_expect(tb, "access denied", "4242");
        free(svc_call_error(a, SVC, "Echo", IPCBUS_ERROR_ACCESS_DENIED));
        usleep(200000);
        ck_assert_int_eq(starts(SVC), 0);
        /* the bystander, root, may */
        root = testbus_connect(tb);
        o = testbus_driver(root, "StartServiceByName", "{\"name\":\"" SVC "\"}");
        ck_assert_int_eq(testbus_json_int(o, "result"), 1);
        json_object_put(o);
        ck_assert_int_eq(starts(SVC), 1);
        ipcbus_unref(root);
        ipcbus_unref(a);
}
END_TEST

/* ---- the activation budget of a uid (max_activations_per_uid) ---------------------------------------- */

static void driver_async(ipcbus_bus *bus, int *counter, struct answer *a, const char *member, const char *body)
{
        int r;

        *a = (struct answer){.counter = counter, .order = -1};
        r = ipcbus_call_async(bus, NULL, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE, member, body,
                              30 * 1000000ull * (uint64_t) testbus_slow_factor(), on_answer, a);
        ck_assert_msg(r >= 0, "ipcbus_call_async: %s", ipcbus_strerror(r));
}

/*
 * An unprivileged uid with a budget of 3 starts: four calls to one name
 * while it starts cost one start (they are coalesced); then a burst of
 * StartServiceByName for 10 distinct names starts 2 more and gets
 * LimitsExceeded naming the key for the other 8, with no fork for them.
 * Root, exempt, still starts a service at once.
 */
START_TEST(test_activation_rate_limit)
{
        enum { N = 10 };
        struct answer echo[4], start[N];
        struct testbus *tb;
        ipcbus_bus *a, *root;
        char names[N][64], body[1024];
        int ne = 0, ns = 0, started = 0, refused = 0, forks = 0;
        json_object *o;
        int64_t t0;

        add_service(SVC, "--wait-file", gate_arg(SVC));
        for (int i = 0; i < N; i++) {
                snprintf(names[i], sizeof(names[i]), "org.example.S%d", i);
                add_service_in(NULL, names[i], NULL, (const char *) NULL);
        }
        tb = start_bus_as("system",
                          "\"limits\":{\"max_activations_per_uid\":3,\"activation_interval_ms\":3600000},\"policy\":[]",
                          NULL);
        a = testbus_connect_as(tb, &alice);

        for (int i = 0; i < 4; i++)
                call_async(a, &ne, &echo[i], SVC, "Echo", "{\"x\":\"echo\"}");
        testbus_sync(a);
        open_gate(SVC);
        wait_answers((ipcbus_bus *[]){a, NULL}, (struct answer *[]){&echo[0], &echo[1], &echo[2], &echo[3]}, 4);
        for (int i = 0; i < 4; i++) {
                expect_answer_body(&echo[i], "{\"x\":\"echo\"}");
                answer_deinit(&echo[i]);
        }
        ck_assert_int_eq(starts(SVC), 1);

        for (int i = 0; i < N; i++) {
                snprintf(body, sizeof(body), "{\"name\":\"%s\"}", names[i]);
                driver_async(a, &ns, &start[i], "StartServiceByName", body);
        }
        wait_answers((ipcbus_bus *[]){a, NULL},
                     (struct answer *[]){&start[0], &start[1], &start[2], &start[3], &start[4], &start[5], &start[6],
                                         &start[7], &start[8], &start[9]},
                     N);
        for (int i = 0; i < N; i++) {
                if (!start[i].error) {
                        started++;
                } else {
                        ck_assert_str_eq(start[i].error, IPCBUS_ERROR_LIMITS_EXCEEDED);
                        ck_assert_msg(testbus_text_names(start[i].message, "max_activations_per_uid"),
                                      "the error does not name max_activations_per_uid: %s", start[i].message);
                        refused++;
                }
                forks += starts(names[i]);
                answer_deinit(&start[i]);
        }
        fprintf(stderr, "FIGURE item=10 requests=%d budget=3 forks=%d refused=%d\n", N + 4, forks + starts(SVC),
                refused);
        ck_assert_int_eq(started, 2);
        ck_assert_int_eq(refused, N - 2);
        ck_assert_int_eq(forks, 2);

        /* root is not limited, and is answered at once */
        root = testbus_connect(tb);
        t0 = testbus_now_ms();
        o = testbus_driver(root, "StartServiceByName", "{\"name\":\"org.example.S9\"}");
        ck_assert_int_eq(testbus_json_int(o, "result"), 1);
        json_object_put(o);
        ck_assert_msg(testbus_now_ms() - t0 < 1000 * testbus_slow_factor(), "root waited %lld ms",
                      (long long) (testbus_now_ms() - t0));
        ipcbus_unref(root);
        ipcbus_unref(a);
}
END_TEST

/* ---- a held call's own deadline (PROTOCOL.md 7.5) ------------------------------------------------- */

/* Send a call of Quit with timeout_ms to SVC on the raw connection fd, as serial. */
static void raw_call_quit(int fd, uint32_t serial, int timeout_ms)
{
        char header[512];

        snprintf(header, sizeof(header),
                 "{\"type\":\"call\",\"serial\":%u,\"destination\":\"" SVC "\",\"path\":\"" TPATH
                 "\",\"interface\":\"" TIFACE "\",\"member\":\"Quit\",\"timeout_ms\":%d}",
                 serial, timeout_ms);
        testbus_raw_send_frame(fd, header, NULL);
}

/*
 * A raw connection's Quit call with timeout_ms, to a name being started, gets
 * Timeout at its own deadline (give or take the loop's pace). Returns the
 * connection.
 */
static int held_call_times_out(struct testbus *tb, int timeout_ms)
{
        int fd = testbus_raw_connect(tb);
        int64_t t0, took;

        free(testbus_raw_hello(fd));
        t0 = testbus_now_ms();
        raw_call_quit(fd, 2, timeout_ms);
        testbus_raw_expect_reply(fd, 2, "org.ipcbus.Error.Timeout", NULL);
        took = testbus_now_ms() - t0;
        ck_assert_msg(took >= timeout_ms - 20 && took < timeout_ms + 700 * testbus_slow_factor(),
                      "Timeout after %lld ms, the call's timeout_ms is %d", (long long) took, timeout_ms);
        return fd;
}

/*
 * A call held for a service that needs longer than the call's timeout_ms
 * gets Timeout at its deadline, and is not delivered once the service is up:
 * the call is Quit, so a late delivery would end the service.
 */
START_TEST(test_held_call_deadline)
{
        int timeout_ms = 300 * testbus_slow_factor();
        struct testbus *tb;
        ipcbus_bus *bus;
        int fd;
        char *owner;

        add_service(SVC, "--wait-file", gate_arg(SVC));
        tb = start_bus(NULL);
        fd = held_call_times_out(tb, timeout_ms);

        /* The service comes up after the deadline and must not see the call. */
        usleep(700000u * (unsigned) testbus_slow_factor());
        open_gate(SVC);
        bus = testbus_connect(tb);
        for (int64_t end = testbus_now_ms() + TESTBUS_WAIT_MS * testbus_slow_factor();
             !(owner = testbus_name_owner(bus, SVC)) && testbus_now_ms() < end;)
                usleep(20000);
        ck_assert_msg(owner, "the service never took its name");
        free(owner);
        usleep(500000u * (unsigned) testbus_slow_factor());
        owner = testbus_name_owner(bus, SVC);
        ck_assert_msg(owner, "the held call was delivered after its deadline: the service quit");
        free(owner);
        testbus_raw_ping(fd, 3);
        close(fd);
        ipcbus_unref(bus);
}
END_TEST

/* A service that never comes up: the held call gets Timeout at its own deadline, not Spawn.Timeout later. */
START_TEST(test_held_call_deadline_never_up)
{
        int timeout_ms = 300 * testbus_slow_factor();
        struct testbus *tb;
        char more[128];
        int fd;

        add_service(SVC, "--never-own");
        snprintf(more, sizeof(more), "\"limits\":{\"activation_timeout_ms\":%d}", 5000 * testbus_slow_factor());
        tb = start_bus(more);
        fd = held_call_times_out(tb, timeout_ms);
        testbus_raw_ping(fd, 3);
        close(fd);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("bus_activation");
        TCase *tc;

        tc = act_tcase("activation");
        tcase_add_test(tc, test_queued_calls_in_order);
        tcase_add_test(tc, test_call_starts_service);
        tcase_add_loop_test(tc, test_environment, 0, 2);
        tcase_add_test(tc, test_activation_environment);
        tcase_add_test(tc, test_activation_environment_system_bus);
        tcase_add_test(tc, test_no_auto_start);
        tcase_add_test(tc, test_start_service_by_name);
        tcase_add_test(tc, test_list_activatable_names);
        suite_add_tcase(s, tc);

        tc = act_tcase("failures");
        tcase_add_test(tc, test_exec_failed);
        tcase_add_test(tc, test_child_exited);
        tcase_add_test(tc, test_child_signaled);
        tcase_add_test(tc, test_timeout);
        tcase_add_test(tc, test_unit_failed);
        tcase_add_test(tc, test_unit_fails_after_start);
        tcase_add_loop_test(tc, test_unit_started, 0, 2);
        suite_add_tcase(s, tc);

        tc = act_tcase("users");
        tcase_add_test(tc, test_user);
        tcase_add_test(tc, test_unknown_user);
        tcase_add_test(tc, test_user_needs_root);
        suite_add_tcase(s, tc);

        tc = act_tcase("queue");
        tcase_add_test(tc, test_caller_leaves_while_queued);
        tcase_add_test(tc, test_queued_calls_are_pending_calls);
        tcase_add_test(tc, test_other_owner_gets_queued_calls);
        tcase_add_test(tc, test_held_call_deadline);
        tcase_add_test(tc, test_start_service_policy);
        tcase_add_test(tc, test_activation_rate_limit);
        tcase_add_test(tc, test_held_call_deadline_never_up);
        suite_add_tcase(s, tc);

        tc = act_tcase("service_files");
        tcase_add_test(tc, test_invalid_service_files);
        tcase_add_test(tc, test_first_directory_wins);
        suite_add_tcase(s, tc);

        return testbus_run_suite(s);
}
