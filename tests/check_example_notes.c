/* SPDX-License-Identifier: MIT */
/*
 * The example application (examples/notes) against a real ipcbusd: the real
 * notes-service and notes-client programs, as a user runs them. The client's
 * commands and their output; the Count property before and after Add and
 * the PropertiesChanged a subscriber sees; the Changed signal; what
 * Introspect and the object manager say of the service; the InvalidArgs
 * answer to calls that break the description, which the service's code
 * never sees; the service started by the broker on the first call.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/testbus.h"

#define NOTES_NAME "org.example.Notes"
#define NOTES_PATH "/org/example/Notes"

static const char *notes_service(void)
{
        return testbus_program("NOTES_SERVICE", "examples/notes/notes-service");
}

static const char *notes_client(void)
{
        return testbus_program("NOTES_CLIENT", "examples/notes/notes-client");
}

static int wait_ms(void)
{
        return TESTBUS_WAIT_MS * testbus_slow_factor();
}

/* The example's directory in the source tree: where its org.example.Notes.json is. */
static const char *notes_srcdir(void)
{
        static char dir[PATH_MAX];
        const char *top = getenv("IPCBUS_TEST_SRCDIR");

        snprintf(dir, sizeof(dir), "%s/examples/notes", top ? top : ".");
        return dir;
}

/* The environment the programs find the test's bus and the description in. */
static void notes_environment(struct testbus *tb)
{
        ck_assert_int_eq(setenv("IPCBUS_ADDRESS", tb->address, 1), 0);
        ck_assert_int_eq(setenv("IPCBUS_INTERFACE_PATH", notes_srcdir(), 1), 0);
        ck_assert_int_eq(unsetenv("IPCBUS_STARTER_ADDRESS"), 0);
}

/* Wait until NOTES_NAME has an owner; false after wait_ms(). */
static bool notes_owned(ipcbus_bus *bus)
{
        int64_t deadline = testbus_now_ms() + wait_ms();
        char *owner;

        while (!(owner = testbus_name_owner(bus, NOTES_NAME))) {
                if (testbus_now_ms() > deadline)
                        return false;
                usleep(10 * 1000);
        }
        free(owner);
        return true;
}

/* Start notes-service on the test's bus and wait until it owns its name. */
static void service_start(struct testbus *tb, struct testbus_proc *svc)
{
        const char *argv[] = {notes_service(), NULL};
        ipcbus_bus *bus = testbus_connect(tb);

        notes_environment(tb);
        testbus_proc_spawn(svc, argv);
        if (!notes_owned(bus)) {
                int status = testbus_proc_terminate(svc);

                ck_abort_msg("notes-service did not take its name (exit %d): %s", status, svc->err.buf);
        }
        ipcbus_unref(bus);
}

/* Stop the broker: the service (and a watching client) must then exit 0. */
static void stop_bus_expect_exit(struct testbus *tb, struct testbus_proc *p)
{
        testbus_stop(tb);
        ck_assert_msg(testbus_proc_finish(p, wait_ms()) == 0, "%s", p->err.buf);
        testbus_proc_deinit(p);
}

/* Run notes-client COMMAND [ARG]; its exit code (output in p). */
static int client_run(struct testbus_proc *p, const char *command, const char *arg)
{
        const char *argv[] = {notes_client(), command, arg, NULL};

        return testbus_run(p, argv, wait_ms());
}

/* notes-client COMMAND [ARG] must exit `status` and print `out` and `err`. */
static void client_expect(const char *command, const char *arg, int status, const char *out, const char *err)
{
        struct testbus_proc p;
        int got = client_run(&p, command, arg);

        ck_assert_msg(got == status, "notes-client %s: exit %d, expected %d; stderr: %s", command, got, status,
                      p.err.buf);
        ck_assert_str_eq(p.out.buf, out);
        ck_assert_str_eq(p.err.buf, err);
        testbus_proc_deinit(&p);
}

static void assert_json_text(const char *text, const char *expected)
{
        json_object *a = testbus_json(text, strlen(text)), *b = testbus_json(expected, strlen(expected));

        ck_assert_msg(json_object_equal(a, b), "got %s, expected %s", text, expected);
        json_object_put(a);
        json_object_put(b);
}

static void assert_body(ipcbus_message *m, const char *expected)
{
        ck_assert_ptr_nonnull(m);
        assert_json_text(ipcbus_message_get_body(m, NULL), expected);
}

/* Count through org.ipcbus.Properties.Get, read with the typed API. */
static uint64_t get_count(ipcbus_bus *bus)
{
        ipcbus_message *reply = NULL;
        ipcbus_error e = IPCBUS_ERROR_NULL;
        uint64_t count = UINT64_MAX;
        int r;

        r = ipcbus_call_method(bus, NOTES_NAME, NOTES_PATH, IPCBUS_PROPERTIES_INTERFACE, "Get", 0, &reply, &e,
                               "interface:s name:s", NOTES_NAME, "Count");
        ck_assert_msg(r >= 0, "Get Count: %s %s", ipcbus_strerror(r), e.message ? e.message : "");
        ck_assert_int_eq(ipcbus_message_read(reply, "value:t", &count), 1);
        ipcbus_message_unref(reply);
        return count;
}

START_TEST(test_client_commands)
{
        static const char ERROR_PREFIX[] = "notes-client: " IPCBUS_ERROR_SERVICE_UNKNOWN ": ";
        struct testbus *tb = testbus_current();
        struct testbus_proc svc, p;

        /* no service yet */
        notes_environment(tb);
        ck_assert_int_eq(client_run(&p, "count", NULL), 1);
        ck_assert_str_eq(p.out.buf, "");
        ck_assert_msg(strncmp(p.err.buf, ERROR_PREFIX, strlen(ERROR_PREFIX)) == 0, "stderr: %s", p.err.buf);
        testbus_proc_deinit(&p);

        service_start(tb, &svc);

        client_expect("count", NULL, 0, "0\n", "");
        client_expect("list", NULL, 0, "", "");
        client_expect("add", "first note", 0, "1\n", "");
        client_expect("add", "a \"quoted\" \\ line, été\tand a tab", 0, "2\n", "");
        client_expect("list", NULL, 0, "1\tfirst note\n2\ta \"quoted\" \\ line, été\tand a tab\n", "");
        client_expect("get", "1", 0, "first note\n", "");
        client_expect("count", NULL, 0, "2\n", "");

        client_expect("get", "3", 1, "", "notes-client: org.example.Notes.Error.NotFound: no note with id 3\n");
        client_expect("get", "x", 1, "", "notes-client: " IPCBUS_ERROR_INVALID_ARGS ": 'x' is not an id\n");
        client_expect("frobnicate", NULL, 2, "",
                      "usage: notes-client add TEXT | list | get ID | count | clear | watch\n");
        client_expect("add", NULL, 2, "", "usage: notes-client add TEXT | list | get ID | count | clear | watch\n");

        /* Clear is sent without waiting; the next call comes after it */
        client_expect("clear", NULL, 0, "", "");
        client_expect("count", NULL, 0, "0\n", "");
        client_expect("add", "again", 0, "1\n", "");
        stop_bus_expect_exit(tb, &svc);
}
END_TEST

START_TEST(test_count_and_signals)
{
        struct testbus *tb = testbus_current();
        struct testbus_proc svc;
        struct testbus_rec rec;
        ipcbus_bus *bus;
        ipcbus_message *m;
        json_object *all;
        char *owner;

        service_start(tb, &svc);
        bus = testbus_connect(tb);
        owner = testbus_name_owner(bus, NOTES_NAME);
        testbus_rec_init(&rec, bus, TESTBUS_REC_SIGNALS);
        testbus_add_match(bus, "{\"path\":\"" NOTES_PATH "\"}");

        ck_assert_uint_eq(get_count(bus), 0);
        all = testbus_call(bus, NOTES_NAME, NOTES_PATH, IPCBUS_PROPERTIES_INTERFACE, "GetAll",
                           "{\"interface\":\"" NOTES_NAME "\"}");
        assert_json_text(json_object_to_json_string(all), "{\"properties\":{\"Count\":0}}");
        json_object_put(all);

        client_expect("add", "hello", 0, "1\n", "");
        m = testbus_rec_expect(&rec, "Changed", NULL);
        ck_assert_str_eq(ipcbus_message_get_interface(m), NOTES_NAME);
        ck_assert_str_eq(ipcbus_message_get_sender(m), owner);
        assert_body(m, "{\"id\":1}");
        m = testbus_rec_expect(&rec, "PropertiesChanged", NULL);
        ck_assert_str_eq(ipcbus_message_get_interface(m), IPCBUS_PROPERTIES_INTERFACE);
        ck_assert_str_eq(ipcbus_message_get_path(m), NOTES_PATH);
        assert_body(m, "{\"interface\":\"" NOTES_NAME "\",\"changed\":{\"Count\":1},\"invalidated\":[]}");
        ck_assert_uint_eq(get_count(bus), 1);

        /* a read-only property */
        free(testbus_call_error(bus, NOTES_NAME, NOTES_PATH, IPCBUS_PROPERTIES_INTERFACE, "Set",
                                "{\"interface\":\"" NOTES_NAME "\",\"name\":\"Count\",\"value\":5}",
                                IPCBUS_ERROR_PROPERTY_READ_ONLY));
        testbus_rec_expect_quiet(&rec);
        ck_assert_uint_eq(get_count(bus), 1);

        testbus_rec_deinit(&rec);
        free(owner);
        ipcbus_unref(bus);
        stop_bus_expect_exit(tb, &svc);
}
END_TEST

/* The next line of a watching client must be `expected`. */
static void watch_expect(struct testbus_proc *watch, const char *expected)
{
        char *line = testbus_proc_read_line(watch, wait_ms());

        ck_assert_msg(line, "notes-client watch printed nothing, expected '%s'", expected);
        ck_assert_str_eq(line, expected);
        free(line);
}

START_TEST(test_client_watch)
{
        struct testbus *tb = testbus_current();
        struct testbus_proc svc, watch;
        const char *argv[] = {notes_client(), "watch", NULL};

        service_start(tb, &svc);
        testbus_proc_spawn(&watch, argv);
        watch_expect(&watch, "watching " NOTES_NAME);

        client_expect("add", "one", 0, "1\n", "");
        watch_expect(&watch, "changed 1");
        watch_expect(&watch, "count 1");
        client_expect("add", "two", 0, "2\n", "");
        watch_expect(&watch, "changed 2");
        watch_expect(&watch, "count 2");
        client_expect("clear", NULL, 0, "", "");
        watch_expect(&watch, "changed 0");
        watch_expect(&watch, "count 0");

        /* the client ends when the bus does; it printed nothing else */
        stop_bus_expect_exit(tb, &svc);
        ck_assert_int_eq(testbus_proc_finish(&watch, wait_ms()), 0);
        ck_assert_str_eq(watch.out.buf, "");
        ck_assert_str_eq(watch.err.buf, "");
        testbus_proc_deinit(&watch);
}
END_TEST

/* The description file as the service loads it, parsed. */
static json_object *description(void)
{
        char *path;
        json_object *o;

        ck_assert_int_ge(asprintf(&path, "%s/%s.json", notes_srcdir(), NOTES_NAME), 0);
        o = json_object_from_file(path);
        ck_assert_msg(o, "cannot read %s", path);
        free(path);
        return o;
}

/* The names of the interfaces of an Introspect reply, in order, space-separated. */
static char *interface_names(json_object *reply)
{
        json_object *ifaces = testbus_json_array(reply, "interfaces");
        char *names = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&names, &size);

        for (size_t i = 0; i < json_object_array_length(ifaces); i++)
                fprintf(f, "%s%s", i ? " " : "",
                        testbus_json_string(json_object_array_get_idx(ifaces, i), "interface"));
        fclose(f);
        return names;
}

static json_object *introspect(ipcbus_bus *bus, const char *path)
{
        return testbus_call(bus, NOTES_NAME, path, IPCBUS_INTROSPECTABLE_INTERFACE, "Introspect", NULL);
}

START_TEST(test_introspect)
{
        struct testbus *tb = testbus_current();
        struct testbus_proc svc;
        json_object *reply, *desc = description();
        ipcbus_bus *bus;
        char *names;

        service_start(tb, &svc);
        bus = testbus_connect(tb);

        /* the object: its description as written in the file, then the standard interfaces */
        reply = introspect(bus, NOTES_PATH);
        ck_assert_str_eq(testbus_json_string(reply, "path"), NOTES_PATH);
        names = interface_names(reply);
        ck_assert_str_eq(names, NOTES_NAME " " IPCBUS_INTROSPECTABLE_INTERFACE " " IPCBUS_PROPERTIES_INTERFACE
                                           " " IPCBUS_PEER_INTERFACE);
        free(names);
        ck_assert_msg(json_object_equal(json_object_array_get_idx(testbus_json_array(reply, "interfaces"), 0), desc),
                      "Introspect gave %s", json_object_to_json_string(reply));
        ck_assert_uint_eq(json_object_array_length(testbus_json_array(reply, "children")), 0);
        json_object_put(reply);

        /* the paths above it lead to it; the object manager is at the root */
        reply = introspect(bus, "/");
        ck_assert(testbus_json_array_has(testbus_json_array(reply, "children"), "org"));
        names = interface_names(reply);
        ck_assert_ptr_nonnull(strstr(names, IPCBUS_OBJECT_MANAGER_INTERFACE));
        free(names);
        json_object_put(reply);
        reply = introspect(bus, "/org/example");
        ck_assert(testbus_json_array_has(testbus_json_array(reply, "children"), "Notes"));
        json_object_put(reply);

        /* the object manager lists the object with its property */
        client_expect("add", "managed", 0, "1\n", "");
        reply = testbus_call(bus, NOTES_NAME, "/", IPCBUS_OBJECT_MANAGER_INTERFACE, "GetManagedObjects", NULL);
        assert_json_text(
                json_object_to_json_string(json_object_object_get(
                        json_object_object_get(json_object_object_get(reply, "objects"), NOTES_PATH), NOTES_NAME)),
                "{\"Count\":1}");
        json_object_put(reply);

        json_object_put(desc);
        ipcbus_unref(bus);
        stop_bus_expect_exit(tb, &svc);
}
END_TEST

/* A call to the service that must fail with InvalidArgs, its message starting with `message`. */
static void expect_invalid_args(ipcbus_bus *bus, const char *member, const char *body, const char *message)
{
        char *got =
                testbus_call_error(bus, NOTES_NAME, NOTES_PATH, NOTES_NAME, member, body, IPCBUS_ERROR_INVALID_ARGS);

        ck_assert_ptr_nonnull(got);
        ck_assert_msg(strncmp(got, message, strlen(message)) == 0, "%s(%s): got '%s', expected '%s...'", member, body,
                      got, message);
        free(got);
}

START_TEST(test_invalid_args)
{
        struct testbus *tb = testbus_current();
        struct testbus_proc svc;
        ipcbus_bus *bus;
        json_object *reply;

        service_start(tb, &svc);
        bus = testbus_connect(tb);

        expect_invalid_args(bus, "Get", "{\"id\":\"x\"}", "argument 'id': expected uint, got string");
        expect_invalid_args(bus, "Get", "{\"id\":-1}", "argument 'id': ");
        expect_invalid_args(bus, "Get", "{}", "argument 'id': missing (expected uint)");
        expect_invalid_args(bus, "Add", "{\"text\":7}", "argument 'text': expected string, got int");
        /* none of them reached the service's code */
        client_expect("count", NULL, 0, "0\n", "");

        /* what a newer caller may add is ignored; a uint may come as a decimal string */
        reply = testbus_call(bus, NOTES_NAME, NOTES_PATH, NOTES_NAME, "Add", "{\"text\":\"t\",\"tag\":\"new\"}");
        assert_json_text(json_object_to_json_string(reply), "{\"id\":1}");
        json_object_put(reply);
        reply = testbus_call(bus, NOTES_NAME, NOTES_PATH, NOTES_NAME, "Get", "{\"id\":\"1\"}");
        assert_json_text(json_object_to_json_string(reply), "{\"text\":\"t\"}");
        json_object_put(reply);

        ipcbus_unref(bus);
        stop_bus_expect_exit(tb, &svc);
}
END_TEST

/* The service is started by the broker on the first call (as a service file says), on the bus that started it. */
START_TEST(test_activated)
{
        struct testbus *tb = testbus_current();
        char dir[PATH_MAX], path[PATH_MAX + 32], text[PATH_MAX + 128], config[PATH_MAX + 128], env[PATH_MAX + 64];
        ipcbus_bus *bus;

        testbus_mkdtemp(dir, sizeof(dir), "services");
        snprintf(path, sizeof(path), "%s/%s.service", dir, NOTES_NAME);
        snprintf(text, sizeof(text), "{\"name\":\"%s\",\"exec\":[\"%s\"]}", NOTES_NAME, notes_service());
        testbus_write_text(path, text);
        snprintf(config, sizeof(config), "{\"standard_service_dirs\":false,\"service_dirs\":[\"%s\"]}", dir);
        testbus_start_config(tb, config);
        notes_environment(tb);
        bus = testbus_connect(tb);
        snprintf(env, sizeof(env), "{\"environment\":{\"IPCBUS_INTERFACE_PATH\":\"%s\"}}", notes_srcdir());
        json_object_put(testbus_driver(bus, "UpdateActivationEnvironment", env));

        client_expect("add", "started for me", 0, "1\n", "");
        client_expect("get", "1", 0, "started for me\n", "");
        ck_assert(notes_owned(bus));
        ipcbus_unref(bus);
}
END_TEST

static Suite *notes_suite(void)
{
        Suite *s = suite_create("example_notes");
        TCase *tc;

        tc = testbus_tcase("notes");
        tcase_add_test(tc, test_client_commands);
        tcase_add_test(tc, test_count_and_signals);
        tcase_add_test(tc, test_client_watch);
        tcase_add_test(tc, test_introspect);
        tcase_add_test(tc, test_invalid_args);
        suite_add_tcase(s, tc);

        tc = testbus_tcase_bare("activation");
        tcase_add_test(tc, test_activated);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return testbus_run_suite(notes_suite());
}
