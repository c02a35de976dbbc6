/* SPDX-License-Identifier: MIT */
/*
 * The real ipcctl and ipc-bench binaries against a real ipcbusd: list,
 * call (output, error output, exit codes), emit, status; the benchmark's
 * scenarios and their list. What the three tools share: their usage errors
 * (their own name, the address's form) and the connect error naming the
 * address. ipc-monitor has its own suite, check_tools_monitor.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/testbus.h"

#define SERVICE "org.example.Tools"

static const char *ipcctl(void)
{
        return testbus_program("IPCCTL", "tools/ipcctl");
}

static const char *ipc_bench(void)
{
        return testbus_program("IPC_BENCH", "tools/ipc-bench");
}

static const char *ipc_monitor(void)
{
        return testbus_program("IPC_MONITOR", "tools/ipc-monitor");
}

/* ---- what the three tools share ------------------------------------------------------ */

/* A tool's name, and what it needs after its options to get as far as connecting. */
struct tool {
        const char *name;
        const char *(*program)(void);
        const char *rest[4];
};

static const struct tool tools[] = {
        {"ipcctl", ipcctl, {"list"}},
        {"ipc-monitor", ipc_monitor, {}},
        {"ipc-bench", ipc_bench, {"--scale", "0.01", "--scenario", "connect_hello"}},
};

/* Run tool with the options given (at most 4) and what it needs after them. Returns the exit code. */
static int tool_run(struct testbus_proc *p, const struct tool *t, const char *const *options, size_t n_options)
{
        const char *argv[16] = {t->program()};
        size_t n = 1;

        for (size_t i = 0; i < n_options; i++)
                argv[n++] = options[i];
        for (size_t i = 0; i < 4 && t->rest[i]; i++)
                argv[n++] = t->rest[i];
        return testbus_run(p, argv, TESTBUS_WAIT_MS);
}

/* stderr starts with "<tool>: <text>". */
static void assert_err_starts(const struct testbus_proc *p, const struct tool *t, const char *text)
{
        size_t len = strlen(t->name);

        ck_assert_msg(strncmp(p->err.buf, t->name, len) == 0 && strncmp(p->err.buf + len, ": ", 2) == 0 &&
                              strncmp(p->err.buf + len + 2, text, strlen(text)) == 0,
                      "expected \"%s: %s...\", got: %s", t->name, text, p->err.buf);
}

/*
 * An address not of the form unix:path=/absolute/path is a usage error
 * (exit 2) naming it and saying what is wrong and what is expected; an
 * unknown option is named after the tool itself, not after the libtool path
 * the build tree runs it from.
 */
START_TEST(test_tools_usage_errors)
{
        char long_address[256];
        const char *no_prefix[] = {"--address", "/nope"};
        const char *relative[] = {"--address", "unix:path=run/bus"};
        const char *too_long[] = {"--address", long_address};
        const char *unknown[] = {"--no-such-option"};
        const char *no_value[] = {NULL, "--address", NULL};
        struct testbus_proc p;

        snprintf(long_address, sizeof(long_address), "unix:path=/%0200d", 0);
        for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
                const struct tool *t = &tools[i];

                no_value[0] = t->program();
                ck_assert_int_eq(tool_run(&p, t, no_prefix, 2), 2);
                assert_err_starts(&p, t, "invalid address '/nope': expected unix:path=/absolute/path\n");
                ck_assert_str_eq(p.out.buf, "");
                testbus_proc_deinit(&p);
                ck_assert_int_eq(tool_run(&p, t, relative, 2), 2);
                assert_err_starts(&p, t, "invalid address 'unix:path=run/bus': the path must be absolute");
                testbus_proc_deinit(&p);
                ck_assert_int_eq(tool_run(&p, t, too_long, 2), 2);
                assert_err_starts(&p, t, "invalid address 'unix:path=/000");
                ck_assert_msg(strstr(p.err.buf, "': the path is longer than"), "stderr: %s", p.err.buf);
                testbus_proc_deinit(&p);

                ck_assert_int_eq(tool_run(&p, t, unknown, 1), 2);
                assert_err_starts(&p, t, "");
                ck_assert_msg(strstr(p.err.buf, "'--no-such-option'"), "stderr: %s", p.err.buf);
                testbus_proc_deinit(&p);
                /* last, so that nothing after it is taken for its value */
                ck_assert_int_eq(testbus_run(&p, no_value, TESTBUS_WAIT_MS), 2);
                assert_err_starts(&p, t, "");
                ck_assert_msg(strstr(p.err.buf, "'--address'"), "stderr: %s", p.err.buf);
                testbus_proc_deinit(&p);
        }
}
END_TEST

/*
 * A bus that cannot be reached is named by its address: the one given, or
 * the system or session bus's as the environment sets it (exit 1); an
 * address from the environment not of the form says what was expected.
 */
START_TEST(test_tools_connect_errors)
{
        char dir[256], missing[512], want[640];
        const char *given[] = {"--address", missing};
        const char *system[] = {"--system"};
        const char *session[] = {"--session"};
        struct testbus_proc p;

        testbus_mkdtemp(dir, sizeof(dir), "noconnect");
        snprintf(missing, sizeof(missing), "unix:path=%s/none", dir);
        setenv("IPCBUS_SYSTEM_ADDRESS", missing, 1);
        for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
                const struct tool *t = &tools[i];

                /* ipc-bench says it among the lines of the scenario that could not run */
                ck_assert_int_eq(tool_run(&p, t, given, 2), 1);
                snprintf(want, sizeof(want), "%s: cannot connect to %s: No such file or directory\n", t->name, missing);
                ck_assert_msg(strstr(p.err.buf, want), "expected %s in: %s", want, p.err.buf);
                testbus_proc_deinit(&p);
                if (strcmp(t->name, "ipc-bench") == 0)
                        continue; /* it connects to the bus it is given or starts its own, nothing else */

                ck_assert_int_eq(tool_run(&p, t, system, 1), 1);
                snprintf(want, sizeof(want), "cannot connect to the system bus at %s: No such file or directory\n",
                         missing);
                assert_err_starts(&p, t, want);
                testbus_proc_deinit(&p);

                setenv("IPCBUS_ADDRESS", missing, 1);
                ck_assert_int_eq(tool_run(&p, t, session, 1), 1);
                snprintf(want, sizeof(want), "cannot connect to the session bus at %s: No such file or directory\n",
                         missing);
                assert_err_starts(&p, t, want);
                testbus_proc_deinit(&p);

                setenv("IPCBUS_ADDRESS", "/nope", 1);
                ck_assert_int_eq(tool_run(&p, t, session, 1), 1);
                assert_err_starts(&p, t,
                                  "cannot connect to the session bus at /nope: expected unix:path=/absolute/path\n");
                testbus_proc_deinit(&p);
                unsetenv("IPCBUS_ADDRESS");
        }
        unsetenv("IPCBUS_SYSTEM_ADDRESS");
        rmdir(dir);
}
END_TEST

/* ---- ipcctl ------------------------------------------------------------------------- */

START_TEST(test_ipcctl_list)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct testbus_proc p;
        char *line, *tokens[8], want[32];
        const char *argv[] = {ipcctl(), "--address", tb->address, "list", NULL};
        const char *rest;

        testbus_service_start(tb, &svc, SERVICE);
        ck_assert_int_eq(testbus_run(&p, argv, TESTBUS_WAIT_MS), 0);

        /* the header */
        line = strndup(p.out.buf, strcspn(p.out.buf, "\n"));
        ck_assert_uint_eq(testbus_split_words(line, tokens, 8), 4);
        ck_assert_str_eq(tokens[0], "NAME");
        ck_assert_str_eq(tokens[1], "OWNER");
        ck_assert_str_eq(tokens[2], "PID");
        ck_assert_str_eq(tokens[3], "UID");
        free(line);

        /* the service's well-known name: owner, pid, uid */
        line = testbus_line_starting(p.out.buf, SERVICE);
        ck_assert_msg(line, "%s not listed:\n%s", SERVICE, p.out.buf);
        ck_assert_uint_eq(testbus_split_words(line, tokens, 8), 4);
        ck_assert_str_eq(tokens[1], svc.unique);
        snprintf(want, sizeof(want), "%d", (int) svc.pid);
        ck_assert_str_eq(tokens[2], want);
        snprintf(want, sizeof(want), "%d", (int) getuid());
        ck_assert_str_eq(tokens[3], want);
        free(line);

        /* its unique name, owned by itself; the driver, with the broker's pid */
        line = testbus_line_starting(p.out.buf, svc.unique);
        ck_assert_msg(line, "%s not listed:\n%s", svc.unique, p.out.buf);
        ck_assert_uint_eq(testbus_split_words(line, tokens, 8), 4);
        ck_assert_str_eq(tokens[1], svc.unique);
        free(line);
        line = testbus_line_starting(p.out.buf, IPCBUS_DRIVER_NAME);
        ck_assert_msg(line, "the driver is not listed:\n%s", p.out.buf);
        ck_assert_uint_eq(testbus_split_words(line, tokens, 8), 4);
        snprintf(want, sizeof(want), "%d", (int) tb->pid);
        ck_assert_str_eq(tokens[2], want);
        free(line);

        /* well-known names come before unique names */
        rest = strstr(p.out.buf, "\n:");
        ck_assert_ptr_nonnull(rest);
        ck_assert_ptr_null(strstr(rest, "\norg."));
        testbus_proc_deinit(&p);
        testbus_child_finish(&svc);
}
END_TEST

START_TEST(test_ipcctl_list_json)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct testbus_proc p;
        const char *argv[] = {ipcctl(), "--address", tb->address, "--json", "list", NULL};
        json_object *arr;
        bool found = false;

        testbus_service_start(tb, &svc, SERVICE);
        ck_assert_int_eq(testbus_run(&p, argv, TESTBUS_WAIT_MS), 0);
        arr = testbus_json(p.out.buf, p.out.len);
        ck_assert(json_object_is_type(arr, json_type_array));
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                json_object *row = json_object_array_get_idx(arr, i);

                if (strcmp(testbus_json_string(row, "name"), SERVICE) != 0)
                        continue;
                found = true;
                ck_assert_str_eq(testbus_json_string(row, "owner"), svc.unique);
                ck_assert_int_eq(testbus_json_int(row, "pid"), svc.pid);
                ck_assert_int_eq(testbus_json_int(row, "uid"), getuid());
        }
        ck_assert_msg(found, "%s not in %s", SERVICE, p.out.buf);
        json_object_put(arr);
        testbus_proc_deinit(&p);
        testbus_child_finish(&svc);
}
END_TEST

/* A name a service file declares and nobody owns is listed as busctl does: "(activatable)", no process. */
START_TEST(test_ipcctl_list_activatable)
{
        struct testbus tb;
        struct testbus_proc p;
        char dir[256], path[512], config[512], *line, *tokens[8];
        const char *argv[] = {ipcctl(), "--address", NULL, "list", NULL};
        const char *argv_json[] = {ipcctl(), "--address", NULL, "--json", "list", NULL};
        json_object *arr;
        bool found = false;

        testbus_mkdtemp(dir, sizeof(dir), "services");
        snprintf(path, sizeof(path), "%s/org.example.Sleeper.service", dir);
        testbus_write_text(path, "{\"name\": \"org.example.Sleeper\", \"exec\": [\"/nonexistent/sleeper\"]}");
        snprintf(config, sizeof(config), "{\"service_dirs\": [\"%s\"], \"standard_service_dirs\": false}", dir);
        testbus_start_config(&tb, config);
        argv[2] = argv_json[2] = tb.address;

        ck_assert_int_eq(testbus_run(&p, argv, TESTBUS_WAIT_MS), 0);
        line = testbus_line_starting(p.out.buf, "org.example.Sleeper");
        ck_assert_msg(line, "the activatable name is not listed:\n%s", p.out.buf);
        ck_assert_uint_eq(testbus_split_words(line, tokens, 8), 4);
        ck_assert_str_eq(tokens[1], "(activatable)");
        ck_assert_str_eq(tokens[2], "-");
        ck_assert_str_eq(tokens[3], "-");
        free(line);
        testbus_proc_deinit(&p);

        ck_assert_int_eq(testbus_run(&p, argv_json, TESTBUS_WAIT_MS), 0);
        arr = testbus_json(p.out.buf, p.out.len);
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                json_object *row = json_object_array_get_idx(arr, i);
                bool activatable = testbus_json_bool(row, "activatable");

                if (strcmp(testbus_json_string(row, "name"), "org.example.Sleeper") == 0) {
                        found = true;
                        ck_assert(activatable);
                        ck_assert(json_object_is_type(json_object_object_get(row, "owner"), json_type_null));
                } else {
                        ck_assert(!activatable);
                }
        }
        ck_assert_msg(found, "the activatable name is not in %s", p.out.buf);
        json_object_put(arr);
        testbus_proc_deinit(&p);
        testbus_stop(&tb);
}
END_TEST

START_TEST(test_ipcctl_call)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct testbus_proc p;
        const char *argv[] = {ipcctl(),
                              "--address",
                              tb->address,
                              "call",
                              SERVICE,
                              TESTBUS_SERVICE_PATH,
                              TESTBUS_SERVICE_INTERFACE,
                              "Echo",
                              "{\"x\": 1, \"s\": \"hi\", \"l\": [1, 2]}",
                              NULL};
        const char *compact[] = {ipcctl(), "--address", tb->address,  "--json", "call", SERVICE, TESTBUS_SERVICE_PATH,
                                 "-",      "Echo",      "{\"x\": 1}", NULL};
        const char *driver[] = {ipcctl(),
                                "--address",
                                tb->address,
                                "call",
                                IPCBUS_DRIVER_NAME,
                                IPCBUS_DRIVER_PATH,
                                IPCBUS_DRIVER_INTERFACE,
                                "GetNameOwner",
                                "{\"name\":\"" SERVICE "\"}",
                                NULL};
        char want[300];

        testbus_service_start(tb, &svc, SERVICE);
        ck_assert_int_eq(testbus_run(&p, argv, TESTBUS_WAIT_MS), 0);
        testbus_assert_json_equal(p.out.buf, "{\"x\": 1, \"s\": \"hi\", \"l\": [1, 2]}");
        ck_assert_str_eq(p.err.buf, "");
        testbus_proc_deinit(&p);

        /* --json: one line; "-": no interface */
        ck_assert_int_eq(testbus_run(&p, compact, TESTBUS_WAIT_MS), 0);
        testbus_assert_json_equal(p.out.buf, "{\"x\": 1}");
        ck_assert_ptr_eq(strchr(p.out.buf, '\n'), p.out.buf + p.out.len - 1);
        testbus_proc_deinit(&p);

        /* the driver */
        ck_assert_int_eq(testbus_run(&p, driver, TESTBUS_WAIT_MS), 0);
        snprintf(want, sizeof(want), "{\"owner\":\"%s\"}", svc.unique);
        testbus_assert_json_equal(p.out.buf, want);
        testbus_proc_deinit(&p);
        testbus_child_finish(&svc);
}
END_TEST

START_TEST(test_ipcctl_call_errors)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct testbus_proc p;
        const char *fail[] = {
                ipcctl(), "--address", tb->address, "call", SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE,
                "Fail",   NULL};
        const char *nobody[] = {ipcctl(), "--address", tb->address, "call", "org.example.Nobody", "/x", "-", "M", NULL};
        const char *bad_json[] = {
                ipcctl(), "--address", tb->address, "call", SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE,
                "Echo",   "{not json", NULL};
        const char *bad_name[] = {ipcctl(), "--address", tb->address, "call", "not a name", "/x", "-", "M", NULL};
        const char *bad_command[] = {ipcctl(), "--address", tb->address, "frobnicate", NULL};

        testbus_service_start(tb, &svc, SERVICE);
        /* an error reply: "NAME: message" on stderr, exit 1 */
        ck_assert_int_eq(testbus_run(&p, fail, TESTBUS_WAIT_MS), 1);
        ck_assert_msg(strstr(p.err.buf, TESTBUS_SERVICE_ERROR ": failed on purpose"), "stderr: %s", p.err.buf);
        ck_assert_str_eq(p.out.buf, "");
        testbus_proc_deinit(&p);
        ck_assert_int_eq(testbus_run(&p, nobody, TESTBUS_WAIT_MS), 1);
        ck_assert_msg(strstr(p.err.buf, IPCBUS_ERROR_SERVICE_UNKNOWN ": "), "stderr: %s", p.err.buf);
        testbus_proc_deinit(&p);
        /* usage errors: exit 2 with a message */
        ck_assert_int_eq(testbus_run(&p, bad_json, TESTBUS_WAIT_MS), 2);
        ck_assert_uint_gt(p.err.len, 0);
        testbus_proc_deinit(&p);
        ck_assert_int_eq(testbus_run(&p, bad_name, TESTBUS_WAIT_MS), 2);
        ck_assert_uint_gt(p.err.len, 0);
        testbus_proc_deinit(&p);
        ck_assert_int_eq(testbus_run(&p, bad_command, TESTBUS_WAIT_MS), 2);
        ck_assert_uint_gt(p.err.len, 0);
        testbus_proc_deinit(&p);
        testbus_child_finish(&svc);
}
END_TEST

START_TEST(test_ipcctl_emit)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *sub = testbus_connect(tb);
        struct testbus_rec rec;
        struct testbus_proc p;
        ipcbus_message *m;
        json_object *o;
        const char *argv[] = {ipcctl(),  "--address",          tb->address,
                              "emit",    "/org/example/Tools", "org.example.Tools",
                              "Changed", "{\"v\": \"hi\"}",    NULL};
        const char *direct[] = {ipcctl(),
                                "--address",
                                tb->address,
                                "emit",
                                "/org/example/Tools",
                                "org.example.Tools",
                                "Direct",
                                "{}",
                                "--destination",
                                ipcbus_get_unique_name(sub),
                                NULL};

        testbus_add_match(sub, "{\"type\":\"signal\",\"interface\":\"org.example.Tools\",\"member\":\"Changed\"}");
        testbus_rec_init(&rec, sub, TESTBUS_REC_SIGNALS);
        ck_assert_int_eq(testbus_run(&p, argv, TESTBUS_WAIT_MS), 0);
        testbus_proc_deinit(&p);
        m = testbus_rec_wait_member(&rec, "Changed", TESTBUS_WAIT_MS);
        ck_assert_msg(m, "the emitted signal did not arrive");
        ck_assert_str_eq(ipcbus_message_get_path(m), "/org/example/Tools");
        ck_assert_str_eq(ipcbus_message_get_interface(m), "org.example.Tools");
        ck_assert_ptr_null(ipcbus_message_get_destination(m));
        o = testbus_message_json(m);
        ck_assert_str_eq(testbus_json_string(o, "v"), "hi");
        json_object_put(o);

        /* --destination: a unicast signal, delivered without a rule */
        ck_assert_int_eq(testbus_run(&p, direct, TESTBUS_WAIT_MS), 0);
        testbus_proc_deinit(&p);
        m = testbus_rec_wait_member(&rec, "Direct", TESTBUS_WAIT_MS);
        ck_assert_msg(m, "the unicast signal did not arrive");
        ck_assert_str_eq(ipcbus_message_get_destination(m), ipcbus_get_unique_name(sub));
        testbus_rec_deinit(&rec);
        ipcbus_unref(sub);
}
END_TEST

START_TEST(test_ipcctl_status)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct testbus_proc p;
        ipcbus_bus *queued;
        const char *argv[] = {ipcctl(), "--address", tb->address, "status", SERVICE, NULL};
        const char *nobody[] = {ipcctl(), "--address", tb->address, "status", "org.example.Nobody", NULL};
        char want[600];

        testbus_service_start(tb, &svc, SERVICE);
        queued = testbus_connect(tb);
        ck_assert_int_eq(testbus_request_name(queued, SERVICE, 0), IPCBUS_REQUEST_NAME_IN_QUEUE);
        ck_assert_int_eq(testbus_run(&p, argv, TESTBUS_WAIT_MS), 0);
        ck_assert_msg(strstr(p.out.buf, SERVICE), "no name in:\n%s", p.out.buf);
        ck_assert_msg(strstr(p.out.buf, svc.unique), "no owner in:\n%s", p.out.buf);
        snprintf(want, sizeof(want), "%d", (int) svc.pid);
        ck_assert_msg(strstr(p.out.buf, want), "no pid in:\n%s", p.out.buf);
        /* the owner's command line: the forked test program */
        ck_assert_msg(strstr(p.out.buf, "check_tools"), "no command line in:\n%s", p.out.buf);
        /* the queue, owner first */
        snprintf(want, sizeof(want), "%s %s", svc.unique, ipcbus_get_unique_name(queued));
        ck_assert_msg(strstr(p.out.buf, want), "no queue '%s' in:\n%s", want, p.out.buf);
        testbus_proc_deinit(&p);

        ck_assert_int_eq(testbus_run(&p, nobody, TESTBUS_WAIT_MS), 1);
        ck_assert_msg(strstr(p.err.buf, IPCBUS_ERROR_NAME_HAS_NO_OWNER), "stderr: %s", p.err.buf);
        testbus_proc_deinit(&p);
        ipcbus_unref(queued);
        testbus_child_finish(&svc);
}
END_TEST

/* ---- ipc-bench ---------------------------------------------------------------------------------- */

static const char *const bench_scenarios[] = {
        "raw_pingpong",     "raw_relay_pingpong", "raw_relay_64k",     "call_rtt_small",   "call_pipelined",
        "signal_fanout_10", "call_rtt_64k",       "connect_hello",     "broker_rss_kb",    "signal_fanout_rules",
        "call_rtt_1m",      "call_rtt_64k_bytes", "call_rtt_1m_bytes", "call_under_flood",
};

/*
 * The call scenarios add page faults and CPU time per call, the broker's too
 * (its pid is asked of the bus); under a flood the broker's are per message
 * it carried, and the line has the flooded and quiet percentiles, their
 * ratio, and every signal delivered to each subscriber.
 */
static void assert_usage_keys(const char *line)
{
        static const char *const keys[] = {" broker_minflt_per_call=", " broker_cpu_us_per_call=",
                                           " client_minflt_per_call=", " client_cpu_us_per_call="};
        static const char *const flood_keys[] = {" p50_us=",
                                                 " p99_us=",
                                                 " p99_ratio=",
                                                 " unloaded_p99_us=",
                                                 " delivered=",
                                                 " client_cpu_us_per_call=",
                                                 " broker_cpu_us_per_msg=",
                                                 " broker_minflt_per_msg="};

        if (strstr(line, " scenario=call_under_flood ")) {
                const char *signals = strstr(line, " signals="), *delivered = strstr(line, " delivered=");

                for (size_t i = 0; i < sizeof(flood_keys) / sizeof(flood_keys[0]); i++)
                        ck_assert_msg(strstr(line, flood_keys[i]), "no%s in: %s", flood_keys[i], line);
                ck_assert_msg(signals && strtoull(signals + 9, NULL, 10) > 0, "no signals sent: %s", line);
                ck_assert_msg(strtoull(delivered + 11, NULL, 10) == 10 * strtoull(signals + 9, NULL, 10),
                              "not every signal delivered to each of 10 subscribers: %s", line);
                ck_assert_msg(strtod(strstr(line, " p99_ratio=") + 11, NULL) > 0, "no ratio: %s", line);
                return;
        }
        if (!strstr(line, " scenario=call_"))
                return;
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
                ck_assert_msg(strstr(line, keys[i]), "no%s in: %s", keys[i], line);
        ck_assert_msg(strtod(strstr(line, " client_cpu_us_per_call=") + 24, NULL) > 0, "no client CPU time: %s", line);
}

/* What ipc-bench --list prints (malloc'd). */
static char *bench_list(void)
{
        const char *argv[] = {ipc_bench(), "--list", NULL};
        struct testbus_proc p;
        char *text;

        ck_assert_int_eq(testbus_run(&p, argv, TESTBUS_WAIT_MS), 0);
        ck_assert_str_eq(p.err.buf, "");
        text = strdup(p.out.buf);
        testbus_proc_deinit(&p);
        return text;
}

/*
 * --list names every scenario the harness runs, in the order they run, each
 * as "NAME (UNIT, higher|lower is better)", and explains it on the lines
 * after, indented.
 */
START_TEST(test_ipc_bench_list)
{
        const size_t n_scenarios = sizeof(bench_scenarios) / sizeof(bench_scenarios[0]);
        char *list = bench_list(), *next;
        size_t n = 0;

        for (char *line = list; *line; line = next) {
                const char *rest;

                next = strchr(line, '\n');
                ck_assert_msg(next, "no newline after: %s", line);
                *next++ = '\0';
                if (line[0] == ' ') {
                        ck_assert_msg(n > 0 && strncmp(line, "  ", 2) == 0 && strlen(line) > 2,
                                      "not an explanation: '%s'", line);
                        continue;
                }
                ck_assert_msg(n < n_scenarios, "more scenarios listed than run: %s", line);
                rest = line + strlen(bench_scenarios[n]);
                ck_assert_msg(strncmp(line, bench_scenarios[n], strlen(bench_scenarios[n])) == 0 &&
                                      strncmp(rest, " (", 2) == 0 && strchr(rest + 2, ',') &&
                                      (strcmp(strchr(rest, ','), ", higher is better)") == 0 ||
                                       strcmp(strchr(rest, ','), ", lower is better)") == 0),
                              "expected \"%s (UNIT, higher|lower is better)\", got: %s", bench_scenarios[n], line);
                ck_assert_msg(*next == ' ', "%s is not explained", bench_scenarios[n]);
                n++;
        }
        ck_assert_uint_eq(n, n_scenarios);
        free(list);
}
END_TEST

/*
 * Every scenario runs (at 1% of its counts, against the test's broker) and
 * prints exactly one RESULT line, in the documented order, with a positive
 * figure and nothing lost or failed, in the unit --list gives. Speed itself
 * is never asserted here.
 */
START_TEST(test_ipc_bench_scenarios)
{
        const size_t n_scenarios = sizeof(bench_scenarios) / sizeof(bench_scenarios[0]);
        struct testbus *tb = testbus_current();
        struct testbus_proc p;
        const char *argv[] = {ipc_bench(), "--address", tb->address, "--scale", "0.01", NULL};
        char *list = bench_list();
        size_t n_results = 0;

        ck_assert_int_eq(testbus_run(&p, argv, 60000), 0);
        for (char *line = p.out.buf, *next; line && *line; line = next) {
                char key[64], *listed;
                const char *unit;

                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                if (strncmp(line, "RESULT ", 7) != 0)
                        continue;
                ck_assert_msg(n_results < n_scenarios, "more RESULT lines than scenarios: %s", line);
                snprintf(key, sizeof(key), " scenario=%s ", bench_scenarios[n_results]);
                ck_assert_msg(strstr(line, key), "expected %s, got: %s", bench_scenarios[n_results], line);
                ck_assert_msg(strstr(line, " broker=ipcbus "), "no broker key: %s", line);
                ck_assert_msg(!strstr(line, " lost=") && !strstr(line, " failed="), "loss reported: %s", line);
                ck_assert_msg(strstr(line, " value=") && strtod(strstr(line, " value=") + 7, NULL) > 0,
                              "no positive value: %s", line);
                assert_usage_keys(line);
                /* the unit --list gives */
                unit = strstr(line, " unit=");
                ck_assert_msg(unit, "no unit: %s", line);
                listed = testbus_line_starting(list, bench_scenarios[n_results]);
                ck_assert_msg(listed, "%s not listed", bench_scenarios[n_results]);
                snprintf(key, sizeof(key), "%s (%.*s, ", bench_scenarios[n_results], (int) strcspn(unit + 6, " "),
                         unit + 6);
                ck_assert_msg(strncmp(listed, key, strlen(key)) == 0, "--list says '%s', the RESULT line: %s", listed,
                              line);
                free(listed);
                n_results++;
        }
        ck_assert_uint_eq(n_results, n_scenarios);
        testbus_proc_deinit(&p);
        free(list);
}
END_TEST

static Suite *tools_suite(void)
{
        Suite *s = suite_create("tools");
        TCase *tc;

        tc = testbus_tcase("ipcctl");
        tcase_add_test(tc, test_ipcctl_list);
        tcase_add_test(tc, test_ipcctl_list_json);
        tcase_add_test(tc, test_ipcctl_list_activatable);
        tcase_add_test(tc, test_ipcctl_call);
        tcase_add_test(tc, test_ipcctl_call_errors);
        tcase_add_test(tc, test_ipcctl_emit);
        tcase_add_test(tc, test_ipcctl_status);
        suite_add_tcase(s, tc);

        tc = testbus_tcase("usage");
        tcase_add_test(tc, test_tools_usage_errors);
        tcase_add_test(tc, test_tools_connect_errors);
        suite_add_tcase(s, tc);

        tc = testbus_tcase("ipc-bench");
        tcase_set_timeout(tc, 150);
        tcase_add_test(tc, test_ipc_bench_list);
        tcase_add_test(tc, test_ipc_bench_scenarios);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return testbus_run_suite(tools_suite());
}
