/* SPDX-License-Identifier: MIT */
/*
 * ipcctl at busctl's level, the real binary against a real ipcbusd:
 * introspect and tree of the driver, get-property and set-property of a
 * described object, wait, call --no-reply and --no-auto-start, arguments
 * checked against an installed description, emit to a name without owner,
 * and the bash completion (shell-completion/bash/ipcctl) run in bash.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/testbus.h"

#define SERVICE "org.example.Tools"
#define PROPS_SERVICE "org.example.Props"
#define PROPS_PATH "/org/example/Props"
#define PROPS_INTERFACE "org.example.Props"
#define PROPS_DESCRIPTION                                                                                              \
        "{\"interface\": \"" PROPS_INTERFACE "\", \"properties\": {"                                                   \
        "\"Count\": {\"type\": \"uint\", \"access\": \"readwrite\"},"                                                  \
        "\"Name\": {\"type\": \"string\", \"access\": \"read\", \"changes\": \"const\"}}}"

static const char *ipcctl(void)
{
        return testbus_program("IPCCTL", "tools/ipcctl");
}

/* The line of the table for `name` must have `type` as its second column. */
static void assert_row(const char *table, const char *name, const char *type)
{
        char *line = testbus_line_starting(table, name), *save = NULL;

        ck_assert_msg(line, "no row %s in:\n%s", name, table);
        strtok_r(line, " ", &save);
        ck_assert_str_eq(strtok_r(NULL, " ", &save), type);
        free(line);
}

/* ---- introspect, tree ---------------------------------------------------------- */

START_TEST(test_introspect_driver)
{
        struct testbus *tb = testbus_current();
        struct testbus_proc p;
        json_object *o, *interfaces;
        bool bus = false, introspectable = false, peer = false;
        char *line;

        ck_assert_int_eq(testbus_ipcctl(&p, tb, "introspect", IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, NULL), 0);
        ck_assert_msg(strncmp(p.out.buf, "NAME ", 5) == 0, "no header:\n%s", p.out.buf);
        ck_assert_msg(strstr(p.out.buf, "RESULT/VALUE") && strstr(p.out.buf, "FLAGS"), "header: %s", p.out.buf);
        assert_row(p.out.buf, IPCBUS_DRIVER_INTERFACE, "interface");
        assert_row(p.out.buf, "org.ipcbus.Introspectable", "interface");
        assert_row(p.out.buf, ".GetNameOwner", "method");
        assert_row(p.out.buf, ".RequestName", "method");
        assert_row(p.out.buf, ".Introspect", "method");
        assert_row(p.out.buf, ".NameOwnerChanged", "signal");
        /* the signature: the in-arguments in short form, the result the out-arguments */
        line = testbus_line_starting(p.out.buf, ".GetNameOwner");
        ck_assert_msg(strstr(line, "name: string") && strstr(line, "owner: string"), "row: %s", line);
        free(line);
        testbus_proc_deinit(&p);

        /* one interface only */
        ck_assert_int_eq(
                testbus_ipcctl(&p, tb, "introspect", IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, "org.ipcbus.Peer", NULL),
                0);
        assert_row(p.out.buf, ".Ping", "method");
        ck_assert_ptr_null(testbus_line_starting(p.out.buf, ".GetNameOwner"));
        testbus_proc_deinit(&p);

        /* --json: the Introspect reply, one object */
        ck_assert_int_eq(testbus_ipcctl(&p, tb, "--json", "introspect", IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, NULL),
                         0);
        o = testbus_json(p.out.buf, p.out.len);
        ck_assert_str_eq(testbus_json_string(o, "path"), IPCBUS_DRIVER_PATH);
        ck_assert(json_object_object_get_ex(o, "interfaces", &interfaces));
        for (size_t i = 0; i < json_object_array_length(interfaces); i++) {
                const char *name = testbus_json_string(json_object_array_get_idx(interfaces, i), "interface");

                bus |= strcmp(name, IPCBUS_DRIVER_INTERFACE) == 0;
                introspectable |= strcmp(name, "org.ipcbus.Introspectable") == 0;
                peer |= strcmp(name, "org.ipcbus.Peer") == 0;
        }
        ck_assert_msg(bus && introspectable && peer, "interfaces: %s", p.out.buf);
        json_object_put(o);
        testbus_proc_deinit(&p);

        /* an unknown interface is an error */
        ck_assert_int_eq(
                testbus_ipcctl(&p, tb, "introspect", IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, "org.example.No", NULL),
                1);
        ck_assert_msg(strstr(p.err.buf, "org.example.No"), "stderr: %s", p.err.buf);
        testbus_proc_deinit(&p);
}
END_TEST

START_TEST(test_tree_driver)
{
        struct testbus *tb = testbus_current();
        struct testbus_proc p;

        ck_assert_int_eq(testbus_ipcctl(&p, tb, "tree", IPCBUS_DRIVER_NAME, NULL), 0);
        ck_assert_str_eq(p.out.buf, "└─/org\n  └─/org/ipcbus\n    └─/org/ipcbus/Bus\n");
        testbus_proc_deinit(&p);
        ck_assert_int_eq(testbus_ipcctl(&p, tb, "--json", "tree", IPCBUS_DRIVER_NAME, NULL), 0);
        testbus_assert_json_equal(p.out.buf, "[\"/\", \"/org\", \"/org/ipcbus\", \"/org/ipcbus/Bus\"]");
        testbus_proc_deinit(&p);
        /* a name nobody owns */
        ck_assert_int_eq(testbus_ipcctl(&p, tb, "tree", "org.example.Nobody", NULL), 1);
        ck_assert_msg(strstr(p.err.buf, IPCBUS_ERROR_SERVICE_UNKNOWN), "stderr: %s", p.err.buf);
        testbus_proc_deinit(&p);
}
END_TEST

/* ---- properties of a described object ------------------------------------------- */

static uint64_t props_count = 7;

static int props_get(ipcbus_message *reply, const char *property, void *userdata, ipcbus_error *ret_error)
{
        if (strcmp(property, "Count") == 0)
                return ipcbus_message_append(reply, "t", props_count);
        return ipcbus_message_append(reply, "s", "props");
}

static int props_set(ipcbus_message *value, const char *property, void *userdata, ipcbus_error *ret_error)
{
        struct testbus_peer *p = userdata;
        int r = ipcbus_message_read(value, "t", &props_count);

        if (r >= 0)
                testbus_peer_report(p, "set %llu", (unsigned long long) props_count);
        return r;
}

/* A child serving PROPS_INTERFACE at PROPS_PATH as PROPS_SERVICE. */
static int props_main(struct testbus_peer *p, void *arg)
{
        static const ipcbus_vtable vtable[] = {
                IPCBUS_PROPERTY("Count", props_get, props_set),
                IPCBUS_PROPERTY("Name", props_get, NULL),
                IPCBUS_VTABLE_END,
        };
        ipcbus_bus *bus = testbus_peer_connect(p);
        ipcbus_interface *iface = NULL;
        ipcbus_slot *slot = NULL;

        testbus_peer_check(p, ipcbus_interface_parse(PROPS_DESCRIPTION, &iface) == 0);
        testbus_peer_check(p, ipcbus_add_object_vtable(bus, &slot, PROPS_PATH, iface, vtable, p) == 0);
        testbus_peer_check(p, ipcbus_request_name(bus, PROPS_SERVICE, 0, NULL) == IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        testbus_peer_report(p, "ready %s", ipcbus_get_unique_name(bus));
        testbus_peer_run(p, bus, NULL, NULL);
        ipcbus_slot_unref(slot);
        ipcbus_interface_unref(iface);
        ipcbus_unref(bus);
        return 0;
}

/* Install PROPS_DESCRIPTION where ipcbus_interface_load looks ($IPCBUS_INTERFACE_PATH, inherited by ipcctl). */
static void install_description(const char *name, const char *text)
{
        char dir[256], path[512];

        testbus_mkdtemp(dir, sizeof(dir), "interfaces");
        snprintf(path, sizeof(path), "%s/%s.json", dir, name);
        testbus_write_text(path, text);
        ck_assert_int_eq(setenv("IPCBUS_INTERFACE_PATH", dir, 1), 0);
}

START_TEST(test_properties)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct testbus_proc p;

        testbus_child_start(tb, &svc, props_main, NULL);
        testbus_child_ready(&svc);
        /* introspect shows the properties with their values and flags */
        ck_assert_int_eq(testbus_ipcctl(&p, tb, "introspect", PROPS_SERVICE, PROPS_PATH, NULL), 0);
        assert_row(p.out.buf, ".Count", "property");
        ck_assert_msg(strstr(p.out.buf, "readwrite emits-change"), "flags:\n%s", p.out.buf);
        ck_assert_msg(strstr(p.out.buf, "read const"), "flags:\n%s", p.out.buf);
        ck_assert_msg(strstr(p.out.buf, " 7 "), "no value 7:\n%s", p.out.buf);
        testbus_proc_deinit(&p);

        ck_assert_int_eq(testbus_ipcctl(&p, tb, "get-property", PROPS_SERVICE, PROPS_PATH, PROPS_INTERFACE, "Count",
                                        "Name", NULL),
                         0);
        ck_assert_str_eq(p.out.buf, "7\n\"props\"\n");
        testbus_proc_deinit(&p);
        ck_assert_int_eq(
                testbus_ipcctl(&p, tb, "set-property", PROPS_SERVICE, PROPS_PATH, PROPS_INTERFACE, "Count", "42", NULL),
                0);
        testbus_child_expect(&svc, "set 42");
        testbus_proc_deinit(&p);
        ck_assert_int_eq(testbus_ipcctl(&p, tb, "--json", "get-property", PROPS_SERVICE, PROPS_PATH, PROPS_INTERFACE,
                                        "Count", NULL),
                         0);
        testbus_assert_json_equal(p.out.buf, "{\"Count\": 42}");
        testbus_proc_deinit(&p);

        /* a wrong type: the service says so, and with a description installed ipcctl says so first */
        ck_assert_int_eq(testbus_ipcctl(&p, tb, "set-property", PROPS_SERVICE, PROPS_PATH, PROPS_INTERFACE, "Count",
                                        "\"x\"", NULL),
                         1);
        ck_assert_msg(strstr(p.err.buf, IPCBUS_ERROR_INVALID_ARGS), "stderr: %s", p.err.buf);
        testbus_proc_deinit(&p);
        install_description(PROPS_INTERFACE, PROPS_DESCRIPTION);
        ck_assert_int_eq(testbus_ipcctl(&p, tb, "set-property", PROPS_SERVICE, PROPS_PATH, PROPS_INTERFACE, "Count",
                                        "\"x\"", NULL),
                         1);
        ck_assert_msg(strstr(p.err.buf, "expected uint") && !strstr(p.err.buf, IPCBUS_ERROR_INVALID_ARGS), "stderr: %s",
                      p.err.buf);
        testbus_proc_deinit(&p);
        ck_assert_int_eq(testbus_ipcctl(&p, tb, "set-property", PROPS_SERVICE, PROPS_PATH, PROPS_INTERFACE, "Name",
                                        "\"y\"", NULL),
                         1);
        ck_assert_msg(strstr(p.err.buf, "read-only"), "stderr: %s", p.err.buf);
        testbus_proc_deinit(&p);
        unsetenv("IPCBUS_INTERFACE_PATH");
        testbus_child_finish(&svc);
}
END_TEST

/* ---- wait ------------------------------------------------------------------------ */

START_TEST(test_wait)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct testbus_proc p;
        const char *argv[] = {ipcctl(), "--address", tb->address, "wait", SERVICE, "--timeout", "30", NULL};

        /* a name that has an owner already */
        ck_assert_int_eq(testbus_ipcctl(&p, tb, "wait", IPCBUS_DRIVER_NAME, NULL), 0);
        testbus_proc_deinit(&p);

        /* a name that appears later: ipcctl is waiting when the service comes */
        testbus_proc_spawn(&p, argv);
        usleep(300000 * testbus_slow_factor());
        testbus_service_start(tb, &svc, SERVICE);
        ck_assert_int_eq(testbus_proc_finish(&p, TESTBUS_WAIT_MS), 0);
        testbus_proc_deinit(&p);
        testbus_child_finish(&svc);

        /* nobody comes: exit 1 with a message */
        ck_assert_int_eq(testbus_ipcctl(&p, tb, "--timeout", "0.3", "wait", "org.example.Nobody", NULL), 1);
        ck_assert_msg(strstr(p.err.buf, "org.example.Nobody"), "stderr: %s", p.err.buf);
        testbus_proc_deinit(&p);
}
END_TEST

/* ---- call --no-reply, --no-auto-start, checked arguments ------------------------- */

START_TEST(test_call_no_reply)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct testbus_proc p;
        char *line;

        testbus_service_start(tb, &svc, SERVICE);
        ck_assert_int_eq(testbus_ipcctl(&p, tb, "call", "--no-reply", SERVICE, TESTBUS_SERVICE_PATH,
                                        TESTBUS_SERVICE_INTERFACE, "Record", "{\"k\": \"v\"}", NULL),
                         0);
        ck_assert_str_eq(p.out.buf, "");
        ck_assert_str_eq(p.err.buf, "");
        testbus_proc_deinit(&p);
        line = testbus_child_read(&svc, TESTBUS_WAIT_MS);
        ck_assert_msg(strncmp(line, "record 1 ", 9) == 0 && strstr(line, "\"k\""), "the service saw: %s", line);
        free(line);
        testbus_child_finish(&svc);
}
END_TEST

START_TEST(test_call_no_auto_start)
{
        struct testbus tb;
        struct testbus_proc p;
        char dir[256], path[512], config[512];

        testbus_mkdtemp(dir, sizeof(dir), "services");
        snprintf(path, sizeof(path), "%s/org.example.Sleeper.service", dir);
        testbus_write_text(path, "{\"name\": \"org.example.Sleeper\", \"exec\": [\"/nonexistent/sleeper\"]}");
        snprintf(config, sizeof(config), "{\"service_dirs\": [\"%s\"], \"standard_service_dirs\": false}", dir);
        testbus_start_config(&tb, config);

        /* with the flag the broker does not start it: ServiceUnknown */
        ck_assert_int_eq(
                testbus_ipcctl(&p, &tb, "call", "--no-auto-start", "org.example.Sleeper", "/x", "-", "M", NULL), 1);
        ck_assert_msg(strstr(p.err.buf, IPCBUS_ERROR_SERVICE_UNKNOWN ": "), "stderr: %s", p.err.buf);
        testbus_proc_deinit(&p);
        /* without, it tries (and the program is not there) */
        ck_assert_int_eq(testbus_ipcctl(&p, &tb, "call", "org.example.Sleeper", "/x", "-", "M", NULL), 1);
        ck_assert_msg(!strstr(p.err.buf, IPCBUS_ERROR_SERVICE_UNKNOWN), "stderr: %s", p.err.buf);
        testbus_proc_deinit(&p);
        testbus_stop(&tb);
}
END_TEST

START_TEST(test_call_checked)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct testbus_proc p;

        testbus_service_start(tb, &svc, SERVICE);
        install_description(TESTBUS_SERVICE_INTERFACE, "{\"interface\": \"" TESTBUS_SERVICE_INTERFACE
                                                       "\", \"methods\": {\"Echo\": {\"in\": {\"id\": \"uint\"}}}}");
        /* checked before sending: the error names the argument */
        ck_assert_int_eq(testbus_ipcctl(&p, tb, "call", SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE,
                                        "Echo", "{\"id\": \"three\"}", NULL),
                         1);
        ck_assert_msg(strstr(p.err.buf, "'id'") && strstr(p.err.buf, "uint"), "stderr: %s", p.err.buf);
        ck_assert_str_eq(p.out.buf, "");
        testbus_proc_deinit(&p);
        /* a member the description does not have */
        ck_assert_int_eq(
                testbus_ipcctl(&p, tb, "call", SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Fixed", NULL),
                1);
        ck_assert_msg(strstr(p.err.buf, "Fixed"), "stderr: %s", p.err.buf);
        testbus_proc_deinit(&p);
        /* fitting arguments go through; --no-check sends anyway */
        ck_assert_int_eq(testbus_ipcctl(&p, tb, "call", SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE,
                                        "Echo", "{\"id\": 3}", NULL),
                         0);
        testbus_assert_json_equal(p.out.buf, "{\"id\": 3}");
        testbus_proc_deinit(&p);
        ck_assert_int_eq(testbus_ipcctl(&p, tb, "call", "--no-check", SERVICE, TESTBUS_SERVICE_PATH,
                                        TESTBUS_SERVICE_INTERFACE, "Echo", "{\"id\": \"three\"}", NULL),
                         0);
        testbus_assert_json_equal(p.out.buf, "{\"id\": \"three\"}");
        testbus_proc_deinit(&p);
        unsetenv("IPCBUS_INTERFACE_PATH");
        testbus_child_finish(&svc);
}
END_TEST

/* ---- emit ---------------------------------------------------------------------------- */

START_TEST(test_emit_unowned)
{
        struct testbus *tb = testbus_current();
        struct testbus_proc p;

        ck_assert_int_eq(testbus_ipcctl(&p, tb, "emit", "--destination", "org.example.Nobody", "/x",
                                        "org.example.Tools", "Changed", "{}", NULL),
                         1);
        ck_assert_msg(strstr(p.err.buf, "org.example.Nobody") && strstr(p.err.buf, "no owner"), "stderr: %s",
                      p.err.buf);
        testbus_proc_deinit(&p);
        /* a unique name that is gone */
        ck_assert_int_eq(
                testbus_ipcctl(&p, tb, "emit", "--destination", ":1.9999", "/x", "org.example.Tools", "Changed", NULL),
                1);
        testbus_proc_deinit(&p);
}
END_TEST

/* ---- bash completion ----------------------------------------------------------------- */

/*
 * Complete `line` (words separated by spaces; a trailing space starts an
 * empty word) with the completion script in bash, ipcctl on its PATH.
 * Returns COMPREPLY, one word a line (malloc'd).
 */
static char *complete(const char *line)
{
        static const char script[] = ". \"$IPCCTL_COMPLETION\" || exit 1\n"
                                     "read -ra COMP_WORDS <<<\"$COMP_LINE\"\n"
                                     "[[ $COMP_LINE == *' ' ]] && COMP_WORDS+=('')\n"
                                     "COMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n"
                                     "_ipcctl\n"
                                     "printf '%s\\n' \"${COMPREPLY[@]}\"\n";
        const char *argv[] = {"/bin/bash", "-c", script, NULL};
        char completion[1024], dir[1024], *path, *saved = strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
        struct testbus_proc p;
        char *out;

        snprintf(completion, sizeof(completion), "%s/shell-completion/bash/ipcctl",
                 getenv("IPCBUS_TEST_SRCDIR") ? getenv("IPCBUS_TEST_SRCDIR") : ".");
        snprintf(dir, sizeof(dir), "%s", ipcctl());
        *strrchr(dir, '/') = '\0';
        ck_assert_int_ge(asprintf(&path, "%s:%s", dir, saved), 0);
        ck_assert_int_eq(setenv("IPCCTL_COMPLETION", completion, 1), 0);
        ck_assert_int_eq(setenv("COMP_LINE", line, 1), 0);
        ck_assert_int_eq(setenv("PATH", path, 1), 0);
        ck_assert_int_eq(testbus_run(&p, argv, TESTBUS_WAIT_MS), 0);
        ck_assert_int_eq(setenv("PATH", saved, 1), 0);
        out = strdup(p.out.buf);
        testbus_proc_deinit(&p);
        free(path);
        free(saved);
        return out;
}

static void assert_completes(const char *line, const char *word)
{
        char *out = complete(line), want[256];

        snprintf(want, sizeof(want), "\n%s\n", word);
        ck_assert_msg(strncmp(out, want + 1, strlen(want + 1)) == 0 || strstr(out, want), "'%s' gives:\n%s", line, out);
        free(out);
}

START_TEST(test_completion)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        char line[1024];

        assert_completes("ipcctl ", "introspect");
        assert_completes("ipcctl ", "wait");
        assert_completes("ipcctl get", "get-property");
        assert_completes("ipcctl --no", "--no-auto-start");

        testbus_service_start(tb, &svc, SERVICE);
        snprintf(line, sizeof(line), "ipcctl --address %s status ", tb->address);
        assert_completes(line, SERVICE);
        snprintf(line, sizeof(line), "ipcctl --address %s call %s ", tb->address, IPCBUS_DRIVER_NAME);
        assert_completes(line, IPCBUS_DRIVER_PATH);
        snprintf(line, sizeof(line), "ipcctl --address %s call %s %s ", tb->address, IPCBUS_DRIVER_NAME,
                 IPCBUS_DRIVER_PATH);
        assert_completes(line, IPCBUS_DRIVER_INTERFACE);
        snprintf(line, sizeof(line), "ipcctl --address %s call %s %s %s GetName", tb->address, IPCBUS_DRIVER_NAME,
                 IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE);
        assert_completes(line, "GetNameOwner");
        testbus_child_finish(&svc);
}
END_TEST

static Suite *ipcctl_suite(void)
{
        Suite *s = suite_create("ipcctl");
        TCase *tc = testbus_tcase("ipcctl");

        tcase_add_test(tc, test_introspect_driver);
        tcase_add_test(tc, test_tree_driver);
        tcase_add_test(tc, test_properties);
        tcase_add_test(tc, test_wait);
        tcase_add_test(tc, test_call_no_reply);
        tcase_add_test(tc, test_call_no_auto_start);
        tcase_add_test(tc, test_call_checked);
        tcase_add_test(tc, test_emit_unowned);
        tcase_add_test(tc, test_completion);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return testbus_run_suite(ipcctl_suite());
}
