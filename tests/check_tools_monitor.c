/* SPDX-License-Identifier: MIT */
/*
 * The real ipc-monitor against a real ipcbusd: colour on a terminal (a pty)
 * and its switches, timestamps, bodies cut or whole, the sender's command
 * name, calls paired with their answers (return, error, the broker's
 * Timeout), --slow, --summary after SIGINT, and the fields of --json.
 * And the pairing itself, fed events made of frames as a capture holds
 * them: answers, calls never answered, its bound.
 */
#include <errno.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "protocol/message.h"
#include "tests/testbus.h"
#include "tools/monitor/event.h"
#include "tools/monitor/pairing.h"
#include "util/util.h"

#define SERVICE "org.example.Watched"
/* How the return of the test service's Echo shows the call it answers. */
#define ECHO_PAIRED "← " SERVICE " " TESTBUS_SERVICE_INTERFACE ".Echo "

static const char *ipc_monitor(void)
{
        return testbus_program("IPC_MONITOR", "tools/ipc-monitor");
}

/* argv for ipc-monitor --address ADDR ARGS... (args NULL-terminated) into argv (16). */
static void monitor_argv(struct testbus *tb, const char *const *args, const char **argv)
{
        size_t n = 0;

        argv[n++] = ipc_monitor();
        argv[n++] = "--address";
        argv[n++] = tb->address;
        for (; *args; args++) {
                ck_assert_uint_lt(n, 15);
                argv[n++] = *args;
        }
        argv[n] = NULL;
}

/* Read lines of l until one contains every needle (NULL-terminated list); returns it, or fails. */
static char *line_with_v(struct testbus_lines *l, va_list ap)
{
        int64_t deadline = testbus_now_ms() + TESTBUS_WAIT_MS;

        for (;;) {
                char *line = testbus_lines_read(l, (int) (deadline - testbus_now_ms()));
                bool all = true;
                va_list aq;

                ck_assert_msg(line, "ipc-monitor did not print the expected line");
                va_copy(aq, ap);
                for (const char *needle; all && (needle = va_arg(aq, const char *));)
                        all = strstr(line, needle) != NULL;
                va_end(aq);
                if (all)
                        return line;
                free(line);
        }
}

static char *line_with(struct testbus_lines *l, ...)
{
        va_list ap;
        char *line;

        va_start(ap, l);
        line = line_with_v(l, ap);
        va_end(ap);
        return line;
}

/* Start ipc-monitor on a pipe and wait for its first line (on stderr): it is a monitor then. */
static void monitor_spawn(struct testbus *tb, struct testbus_proc *p, const char *const *args)
{
        const char *argv[16];

        monitor_argv(tb, args, argv);
        testbus_proc_spawn(p, argv);
        free(line_with(&p->err, "ipc-monitor: watching ", tb->address, NULL));
}

/* ipc-monitor on a terminal: stdout and stderr on a pty, read through lines. */
struct pty_monitor {
        pid_t pid;
        int master;
        struct testbus_lines lines;
};

/* Start ipc-monitor on a pty, with $NO_COLOR set to no_color (NULL: unset), and wait until it is a monitor. */
static void pty_spawn(struct testbus *tb, struct pty_monitor *m, const char *no_color, const char *const *args)
{
        const char *argv[16];

        monitor_argv(tb, args, argv);
        m->pid = forkpty(&m->master, NULL, NULL, NULL);
        ck_assert_int_ge(m->pid, 0);
        if (m->pid == 0) {
                if (no_color)
                        setenv("NO_COLOR", no_color, 1);
                else
                        unsetenv("NO_COLOR");
                execv(argv[0], (char *const *) argv);
                _exit(127);
        }
        testbus_lines_init(&m->lines, m->master);
        free(line_with(&m->lines, "ipc-monitor: watching ", NULL));
}

/* SIGTERM it: it ends with 0. */
static void pty_finish(struct pty_monitor *m)
{
        int status;

        kill(m->pid, SIGTERM);
        ck_assert_int_eq(waitpid(m->pid, &status, 0), m->pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
        testbus_lines_deinit(&m->lines);
        close(m->master);
}

/* Echo body through the test service from a new connection, which is returned. */
static ipcbus_bus *echo(struct testbus *tb, const char *body)
{
        ipcbus_bus *c = testbus_connect(tb);

        json_object_put(testbus_call(c, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Echo", body));
        return c;
}

/* ---- colour ---- */

/* The Echo call's line on a pty, with or without NO_COLOR and args. */
static char *pty_echo_line(const char *no_color, const char *const *args)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct pty_monitor m;
        ipcbus_bus *c;
        char *line;

        testbus_service_start(tb, &svc, SERVICE);
        pty_spawn(tb, &m, no_color, args);
        c = echo(tb, "{\"k\":\"v\"}");
        line = line_with(&m.lines, "member=Echo", "{\"k\":\"v\"}", NULL);
        pty_finish(&m);
        ipcbus_unref(c);
        testbus_child_finish(&svc);
        return line;
}

START_TEST(test_color_on_a_terminal)
{
        static const char *const none[] = {NULL};
        char *line = pty_echo_line(NULL, none);
        unsigned h, m, s, us;

        /* the type in colour, and the local time with microseconds first, dimmed */
        ck_assert_msg(strstr(line, "\033[1;34mcall"), "line: %s", line);
        ck_assert_msg(sscanf(line, "\033[2m%2u:%2u:%2u.%6u", &h, &m, &s, &us) == 4, "line: %s", line);
        free(line);
}
END_TEST

START_TEST(test_color_no_color)
{
        static const char *const none[] = {NULL};
        static const char *const never[] = {"--color=never", NULL};
        char *line;

        line = pty_echo_line("1", none);
        ck_assert_msg(!strchr(line, '\033'), "NO_COLOR: %s", line);
        free(line);
        line = pty_echo_line(NULL, never);
        ck_assert_msg(!strchr(line, '\033'), "--color=never: %s", line);
        free(line);
}
END_TEST

START_TEST(test_color_always_on_a_pipe)
{
        static const char *const always[] = {"--color=always", NULL};
        static const char *const none[] = {NULL};
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct testbus_proc p, plain;
        ipcbus_bus *c;
        char *line;

        testbus_service_start(tb, &svc, SERVICE);
        monitor_spawn(tb, &p, always);
        monitor_spawn(tb, &plain, none);
        c = echo(tb, "{}");
        line = line_with(&p.out, "member=Echo", NULL);
        ck_assert_msg(strncmp(line, "\033[1;34mcall", 11) == 0, "line: %s", line);
        free(line);
        /* on a pipe by default: no escape, no time, one space between the names */
        line = line_with(&plain.out, "member=Echo", NULL);
        ck_assert_msg(!strchr(line, '\033') && strncmp(line, "call ", 5) == 0, "line: %s", line);
        ck_assert_msg(strstr(line, " -> " SERVICE " serial="), "line: %s", line);
        free(line);
        ck_assert_int_eq(testbus_proc_terminate(&p), 0);
        ck_assert_int_eq(testbus_proc_terminate(&plain), 0);
        testbus_proc_deinit(&p);
        testbus_proc_deinit(&plain);
        ipcbus_unref(c);
        testbus_child_finish(&svc);
}
END_TEST

/* ---- columns and timestamps ---- */

START_TEST(test_columns_on_a_terminal)
{
        static const char *const none[] = {NULL};
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct pty_monitor m;
        ipcbus_bus *c;
        char *call, *ret;

        testbus_service_start(tb, &svc, SERVICE);
        pty_spawn(tb, &m, "1", none);
        c = echo(tb, "{}");
        /* the return's "->" lines up under the call's: the names are padded to the widest seen */
        call = line_with(&m.lines, "call ", "member=Echo", NULL);
        ret = line_with(&m.lines, "return ", ECHO_PAIRED, NULL);
        ck_assert_msg(strstr(call, " -> ") - call == strstr(ret, " -> ") - ret, "\n%s\n%s", call, ret);
        free(call);
        free(ret);
        pty_finish(&m);
        ipcbus_unref(c);
        testbus_child_finish(&svc);
}
END_TEST

START_TEST(test_timestamps)
{
        static const char *const bare[] = {"--timestamp", "type=call", NULL};
        static const char *const relative[] = {"--timestamp=relative", "type=call", NULL};
        static const char *const delta[] = {"--timestamp=delta", "type=call", NULL};
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct testbus_proc pb, pr, pd;
        unsigned h, m, s, us, sec, usec;
        ipcbus_bus *c1, *c2;
        char *line, type[16];

        testbus_service_start(tb, &svc, SERVICE);
        monitor_spawn(tb, &pb, bare);
        monitor_spawn(tb, &pr, relative);
        monitor_spawn(tb, &pd, delta);
        c1 = echo(tb, "{}");
        c2 = echo(tb, "{}");
        /* bare --timestamp: the local time, HH:MM:SS.uuuuuu */
        line = line_with(&pb.out, "member=Echo", NULL);
        ck_assert_msg(sscanf(line, "%2u:%2u:%2u.%6u %15s", &h, &m, &s, &us, type) == 5 && strcmp(type, "call") == 0,
                      "line: %s", line);
        free(line);
        /* relative: the first message is at +0.000000 */
        line = testbus_proc_read_line(&pr, TESTBUS_WAIT_MS);
        ck_assert_msg(line && strncmp(line, "+0.000000 call ", 15) == 0, "line: %s", line);
        free(line);
        line = line_with(&pr.out, "member=Echo", NULL);
        ck_assert_msg(sscanf(line, "+%u.%6u %15s", &sec, &usec, type) == 3 && strcmp(type, "call") == 0, "line: %s",
                      line);
        free(line);
        /* delta: seconds since the previous message */
        line = line_with(&pd.out, "member=Echo", NULL);
        ck_assert_msg(sscanf(line, "+%u.%6u %15s", &sec, &usec, type) == 3 && strcmp(type, "call") == 0, "line: %s",
                      line);
        free(line);
        ck_assert_int_eq(testbus_proc_terminate(&pb), 0);
        ck_assert_int_eq(testbus_proc_terminate(&pr), 0);
        ck_assert_int_eq(testbus_proc_terminate(&pd), 0);
        testbus_proc_deinit(&pb);
        testbus_proc_deinit(&pr);
        testbus_proc_deinit(&pd);
        ipcbus_unref(c1);
        ipcbus_unref(c2);
        testbus_child_finish(&svc);
}
END_TEST

/* ---- bodies, credentials ---- */

START_TEST(test_body_short_and_full)
{
        static const char *const shortened[] = {"type=call", NULL};
        static const char *const full[] = {"--full", "type=call", NULL};
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct testbus_proc ps, pf;
        char body[1024], longs[301], *line;
        ipcbus_bus *c;
        bool whole = false;

        memset(longs, 'x', 300);
        longs[300] = '\0';
        snprintf(body, sizeof(body), "{\"long\":\"%s\",\"list\":[1,2,3,4,5,6,7,8,9,10,11,12],\"tail\":\"end\"}", longs);
        testbus_service_start(tb, &svc, SERVICE);
        monitor_spawn(tb, &ps, shortened);
        monitor_spawn(tb, &pf, full);
        c = echo(tb, body);
        /* one line: the string and the array cut with a mark, the body's size said, the rest kept */
        line = line_with(&ps.out, "member=Echo", NULL);
        ck_assert_msg(!strstr(line, longs) && strstr(line, "xxxxxxxx…\""), "line: %s", line);
        ck_assert_msg(strstr(line, "[1,2,3,4,5,6,7,8,…+4]") && strstr(line, "\"tail\":\"end\""), "line: %s", line);
        snprintf(body, sizeof(body), "(%zu bytes)", strlen(body));
        ck_assert_msg(strstr(line, body), "no %s in: %s", body, line);
        free(line);
        /* --full: the whole body, pretty, on the lines after */
        free(line_with(&pf.out, "member=Echo", NULL));
        for (int i = 0; i < 40 && !whole; i++) {
                line = testbus_proc_read_line(&pf, TESTBUS_WAIT_MS);
                ck_assert_msg(line, "--full printed no whole body");
                whole = strstr(line, longs) && strncmp(line, "  \"long\": ", 10) == 0;
                free(line);
        }
        ck_assert(whole);
        ck_assert_int_eq(testbus_proc_terminate(&ps), 0);
        ck_assert_int_eq(testbus_proc_terminate(&pf), 0);
        testbus_proc_deinit(&ps);
        testbus_proc_deinit(&pf);
        ipcbus_unref(c);
        testbus_child_finish(&svc);
}
END_TEST

START_TEST(test_credentials)
{
        static const char *const none[] = {NULL};
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct testbus_proc p;
        char comm[32] = "", creds[96], *line;
        ipcbus_bus *c;
        FILE *f;

        f = fopen("/proc/self/comm", "r");
        ck_assert_ptr_nonnull(f);
        ck_assert_ptr_nonnull(fgets(comm, sizeof(comm), f));
        fclose(f);
        comm[strcspn(comm, "\n")] = '\0';
        testbus_service_start(tb, &svc, SERVICE);
        monitor_spawn(tb, &p, none);
        c = echo(tb, "{}");
        snprintf(creds, sizeof(creds), " uid=%u pid=%d comm=%s ", (unsigned) getuid(), (int) getpid(), comm);
        line = line_with(&p.out, "member=Echo", NULL);
        ck_assert_msg(strstr(line, creds), "no '%s' in: %s", creds, line);
        free(line);
        ck_assert_int_eq(testbus_proc_terminate(&p), 0);
        testbus_proc_deinit(&p);
        ipcbus_unref(c);
        testbus_child_finish(&svc);
}
END_TEST

START_TEST(test_memfd_body)
{
        static const char *const none[] = {"type=call", NULL};
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct testbus_proc p;
        size_t n = 1200 * 1024;
        char *body = malloc(n + 32), *line, size[64];
        ipcbus_bus *c;

        /* a body this large goes in a sealed memfd (the library's threshold is 1 MiB) */
        ck_assert_ptr_nonnull(body);
        memcpy(body, "{\"big\":\"", 8);
        memset(body + 8, 'y', n);
        strcpy(body + 8 + n, "\"}");
        testbus_service_start(tb, &svc, SERVICE);
        monitor_spawn(tb, &p, none);
        c = echo(tb, body);
        /* shown as any body, cut to a line, with the memfd's size */
        line = line_with(&p.out, "member=Echo", NULL);
        snprintf(size, sizeof(size), "(%zu bytes)", strlen(body));
        ck_assert_msg(strstr(line, " memfd=") && strstr(line, "{\"big\":\"yyyyyyyy") && strstr(line, size),
                      "line: %.600s", line);
        ck_assert_uint_lt(strlen(line), 1000);
        free(line);
        ck_assert_int_eq(testbus_proc_terminate(&p), 0);
        testbus_proc_deinit(&p);
        ipcbus_unref(c);
        testbus_child_finish(&svc);
        free(body);
}
END_TEST

/* ---- pairing ---- */

/* A latency as format_duration writes it ends the pairing: "123 µs", "1.23 ms", "1.20 s". */
static bool has_latency(const char *line, const char *paired)
{
        const char *p = strstr(line, paired);
        double v;
        char unit[8];

        return p && sscanf(p + strlen(paired), "%lf %7s", &v, unit) == 2 &&
               (strcmp(unit, "µs") == 0 || strcmp(unit, "ms") == 0 || strcmp(unit, "s") == 0);
}

START_TEST(test_pairing_return_and_error)
{
        static const char *const none[] = {NULL};
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct testbus_proc p;
        ipcbus_bus *c;
        char *line, reply_to[128];

        testbus_service_start(tb, &svc, SERVICE);
        monitor_spawn(tb, &p, none);
        c = echo(tb, "{}");
        free(testbus_call_error(c, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Fail", "{}",
                                TESTBUS_SERVICE_ERROR));
        snprintf(reply_to, sizeof(reply_to), "-> %s ", ipcbus_get_unique_name(c));
        /* the return names the call's destination and member, and how long it took */
        line = line_with(&p.out, "return ", reply_to, TESTBUS_SERVICE_INTERFACE, NULL);
        ck_assert_msg(has_latency(line, ECHO_PAIRED), "line: %s", line);
        free(line);
        /* the error: its name, and the call it answers */
        line = line_with(&p.out, "error ", reply_to, TESTBUS_SERVICE_INTERFACE, NULL);
        ck_assert_msg(strstr(line, "error=" TESTBUS_SERVICE_ERROR), "line: %s", line);
        ck_assert_msg(has_latency(line, "← " SERVICE " " TESTBUS_SERVICE_INTERFACE ".Fail "), "line: %s", line);
        free(line);
        ck_assert_int_eq(testbus_proc_terminate(&p), 0);
        testbus_proc_deinit(&p);
        ipcbus_unref(c);
        testbus_child_finish(&svc);
}
END_TEST

START_TEST(test_pairing_timeout)
{
        static const char *const none[] = {NULL};
        struct testbus *tb = testbus_current();
        _cleanup_(ipcbus_error_freep) ipcbus_error error = IPCBUS_ERROR_NULL;
        struct testbus_child svc;
        struct testbus_proc p;
        ipcbus_bus *c;
        char *line;

        testbus_service_start(tb, &svc, SERVICE);
        monitor_spawn(tb, &p, none);
        c = testbus_connect(tb);
        /* the service holds the call: the broker answers Timeout after 300 ms */
        ck_assert_int_eq(ipcbus_call(c, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Hold", "{}",
                                     300 * 1000, NULL, &error),
                         -EREMOTEIO);
        ck_assert_str_eq(error.name, "org.ipcbus.Error.Timeout");
        line = line_with(&p.out, "error ", "error=org.ipcbus.Error.Timeout", NULL);
        ck_assert_msg(has_latency(line, "← " SERVICE " " TESTBUS_SERVICE_INTERFACE ".Hold "), "line: %s", line);
        free(line);
        free(testbus_child_read(&svc, TESTBUS_WAIT_MS)); /* "held N" */
        ck_assert_int_eq(testbus_proc_terminate(&p), 0);
        testbus_proc_deinit(&p);
        ipcbus_unref(c);
        testbus_child_finish(&svc);
}
END_TEST

/* Call Hold from c without waiting, and answer it after ms milliseconds. */
static void held_call(ipcbus_bus *c, struct testbus_child *svc, unsigned ms)
{
        char *line;

        ck_assert_int_ge(ipcbus_call_async(c, NULL, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Hold",
                                           "{}", IPCBUS_TIMEOUT_DEFAULT, NULL, NULL),
                         0);
        ck_assert_int_ge(ipcbus_flush(c), 0);
        line = testbus_child_read(svc, TESTBUS_WAIT_MS);
        ck_assert_msg(strncmp(line, "held ", 5) == 0, "service: %s", line);
        free(line);
        usleep(ms * 1000);
        testbus_child_send(svc, "release");
        testbus_child_expect(svc, "released 1");
}

START_TEST(test_slow)
{
        static const char *const slow[] = {"--slow", "150", NULL};
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct testbus_proc p;
        ipcbus_bus *c;
        char *line;

        testbus_service_start(tb, &svc, SERVICE);
        monitor_spawn(tb, &p, slow);
        /* a fast call (answered at once), then one answered after 400 ms */
        c = echo(tb, "{}");
        held_call(c, &svc, 400);
        /* the first line is the slow call, printed when its answer came, then that answer: nothing of Echo */
        line = testbus_proc_read_line(&p, TESTBUS_WAIT_MS);
        ck_assert_msg(line && strncmp(line, "call ", 5) == 0 && strstr(line, "member=Hold"), "line: %s", line);
        free(line);
        line = testbus_proc_read_line(&p, TESTBUS_WAIT_MS);
        ck_assert_msg(line && strncmp(line, "return ", 7) == 0, "line: %s", line);
        ck_assert_msg(has_latency(line, "← " SERVICE " " TESTBUS_SERVICE_INTERFACE ".Hold "), "line: %s", line);
        free(line);
        ck_assert_int_eq(testbus_proc_terminate(&p), 0);
        ck_assert_msg(!strstr(p.out.buf ? p.out.buf : "", "Echo"), "shown: %s", p.out.buf);
        testbus_proc_deinit(&p);
        ipcbus_unref(c);
        testbus_child_finish(&svc);
}
END_TEST

/* ---- --summary ---- */

START_TEST(test_summary)
{
        static const char *const summary[] = {"--summary", NULL};
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct testbus_proc p;
        char *line, *tokens[10] = {}, *save = NULL;
        ipcbus_bus *c;
        size_t n = 0;

        testbus_service_start(tb, &svc, SERVICE);
        monitor_spawn(tb, &p, summary);
        c = echo(tb, "{}");
        for (int i = 0; i < 2; i++)
                json_object_put(
                        testbus_call(c, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Echo", "{}"));
        free(testbus_call_error(c, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Fail", "{}",
                                TESTBUS_SERVICE_ERROR));
        /* everything seen before the signal */
        free(line_with(&p.out, "error ", TESTBUS_SERVICE_ERROR, NULL));
        kill(p.pid, SIGINT);
        ck_assert_int_eq(testbus_proc_finish(&p, TESTBUS_WAIT_MS), 0);
        ck_assert_msg(strstr(p.out.buf, "MEMBER ") && strstr(p.out.buf, " P99 "), "stdout: %s", p.out.buf);
        /* "org.example.Test.Echo  org.example.Watched  3  0  0  P50 P99 MAX" */
        line = strstr(p.out.buf, "\n" TESTBUS_SERVICE_INTERFACE ".Echo ");
        ck_assert_msg(line, "no Echo in: %s", p.out.buf);
        line = strndup(line + 1, strcspn(line + 1, "\n"));
        for (char *t = strtok_r(line, " ", &save); t && n < 10; t = strtok_r(NULL, " ", &save))
                tokens[n++] = t;
        ck_assert_msg(n >= 5 && strcmp(tokens[1], SERVICE) == 0 && strcmp(tokens[2], "3") == 0 &&
                              strcmp(tokens[3], "0") == 0 && strcmp(tokens[4], "0") == 0,
                      "Echo: %s", p.out.buf);
        free(line);
        line = strstr(p.out.buf, "\n" TESTBUS_SERVICE_INTERFACE ".Fail ");
        ck_assert_msg(line && strstr(line, TESTBUS_SERVICE_ERROR "×1"), "stdout: %s", p.out.buf);
        testbus_proc_deinit(&p);
        ipcbus_unref(c);
        testbus_child_finish(&svc);
}
END_TEST

/* ---- --json ---- */

START_TEST(test_json_fields)
{
        static const char *const json[] = {"--json", NULL};
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct testbus_proc p;
        int64_t serial = -1, deadline = testbus_now_ms() + TESTBUS_WAIT_MS;
        bool paired = false;
        ipcbus_bus *c;

        testbus_service_start(tb, &svc, SERVICE);
        monitor_spawn(tb, &p, json);
        c = echo(tb, "{\"k\":\"v\"}");
        while (!paired) {
                char *line = testbus_proc_read_line(&p, (int) (deadline - testbus_now_ms()));
                json_object *o, *h, *call, *v;
                const char *type;

                ck_assert_msg(line, "ipc-monitor --json did not show the call and its answer");
                o = testbus_json(line, strlen(line));
                ck_assert(json_object_object_get_ex(o, "header", &h));
                ck_assert(json_object_object_get_ex(o, "timestamp", &v) && json_object_is_type(v, json_type_double));
                ck_assert(json_object_object_get_ex(o, "fds", &v) && json_object_get_int(v) == 0);
                ck_assert(json_object_object_get_ex(o, "memfd_size", &v) && json_object_get_int(v) == 0);
                type = testbus_json_string(h, "type");
                if (strcmp(type, "call") == 0 && json_object_object_get_ex(h, "member", &v) &&
                    strcmp(json_object_get_string(v), "Echo") == 0) {
                        serial = testbus_json_int(h, "serial");
                        ck_assert(json_object_object_get_ex(o, "comm", &v) && json_object_get_string_len(v) > 0);
                        ck_assert(!json_object_object_get_ex(o, "call", NULL));
                } else if (strcmp(type, "return") == 0 && serial > 0 &&
                           testbus_json_int(h, "reply_serial") == serial) {
                        ck_assert(json_object_object_get_ex(o, "call", &call));
                        ck_assert_str_eq(testbus_json_string(call, "destination"), SERVICE);
                        ck_assert_str_eq(testbus_json_string(call, "interface"), TESTBUS_SERVICE_INTERFACE);
                        ck_assert_str_eq(testbus_json_string(call, "member"), "Echo");
                        ck_assert_int_eq(testbus_json_int(call, "serial"), serial);
                        ck_assert(json_object_object_get_ex(o, "latency_us", &v) &&
                                  json_object_is_type(v, json_type_int) && json_object_get_int64(v) >= 0);
                        paired = true;
                }
                json_object_put(o);
                free(line);
        }
        ck_assert_int_eq(testbus_proc_terminate(&p), 0);
        testbus_proc_deinit(&p);
        ipcbus_unref(c);
        testbus_child_finish(&svc);
}
END_TEST

/* ---- the pairing alone ---- */

/* *ev: a message of type from sender to destination at seconds (since the epoch), through a frame. */
static void make_event(struct mon_event *ev, enum msg_type type, const char *sender, const char *destination,
                       uint32_t serial, uint32_t reply_serial, uint32_t timeout_ms, double seconds)
{
        struct timespec ts = {(time_t) seconds, (long) ((seconds - (double) (time_t) seconds) * 1e9)};
        struct msg_header h;
        struct msg *m = NULL;

        msg_header_init(&h);
        h.type = type;
        h.sender = sender;
        h.destination = destination;
        h.serial = serial;
        h.reply_serial = reply_serial;
        h.timeout_ms = timeout_ms;
        if (type == MSG_CALL) {
                h.path = "/org/example/Test";
                h.interface = "org.example.Test";
                h.member = "Work";
        }
        if (type == MSG_ERROR)
                h.error_name = "org.example.Test.Error.Failed";
        ck_assert_int_eq(msg_build(&h, NULL, 0, &m), 0);
        ck_assert_int_eq(mon_event_from_frame(m->data, m->size, &ts, 0, 0, "", ev), 0);
        msg_unref(m);
}

static void count_expired(const struct mon_call *call, void *userdata)
{
        uint32_t *serial = userdata;

        ck_assert_str_eq(call->member, "Work");
        *serial = call->serial;
}

START_TEST(test_pairing_answers_and_expiry)
{
        struct pairing *p = NULL;
        struct mon_event ev;
        struct timespec at;
        uint32_t expired = 0;

        ck_assert_int_eq(pairing_new(&p), 0);
        make_event(&ev, MSG_CALL, ":1.5", "org.example.Test", 5, 0, 100, 10.0);
        ck_assert_int_eq(pairing_feed(p, &ev), 0);
        mon_event_clear(&ev);
        make_event(&ev, MSG_CALL, ":1.5", "org.example.Test", 6, 0, 100, 10.0);
        ck_assert_int_eq(pairing_feed(p, &ev), 0);
        mon_event_clear(&ev);
        ck_assert_uint_eq(pairing_in_flight(p), 2);
        /* an answer to another caller with the same serial is not this call's */
        make_event(&ev, MSG_RETURN, ":1.7", ":1.6", 1, 5, 0, 10.1);
        ck_assert_int_eq(pairing_feed(p, &ev), 0);
        ck_assert_ptr_null(ev.call);
        mon_event_clear(&ev);
        /* the caller's answer: the call, and the time between */
        make_event(&ev, MSG_ERROR, ":1.7", ":1.5", 2, 5, 0, 10.25);
        ck_assert_int_eq(pairing_feed(p, &ev), 0);
        ck_assert_ptr_nonnull(ev.call);
        ck_assert_str_eq(ev.call->destination, "org.example.Test");
        ck_assert_str_eq(ev.call->member, "Work");
        ck_assert_uint_eq(ev.call->serial, 5);
        ck_assert_uint_ge(ev.latency_usec, 249000);
        ck_assert_uint_le(ev.latency_usec, 251000);
        mon_event_clear(&ev);
        ck_assert_uint_eq(pairing_in_flight(p), 1);
        /* within its deadline and the grace second, the other call is not given up */
        at = (struct timespec){10, 900 * 1000 * 1000};
        pairing_expire(p, &at, count_expired, &expired);
        ck_assert_uint_eq(expired, 0);
        at = (struct timespec){11, 200 * 1000 * 1000};
        pairing_expire(p, &at, count_expired, &expired);
        ck_assert_uint_eq(expired, 6);
        ck_assert_uint_eq(pairing_in_flight(p), 0);
        pairing_free(p);
}
END_TEST

START_TEST(test_pairing_bound)
{
        struct pairing *p = NULL;
        struct mon_event ev;
        uint32_t n = 20000;

        ck_assert_int_eq(pairing_new(&p), 0);
        for (uint32_t serial = 1; serial <= n; serial++) {
                make_event(&ev, MSG_CALL, ":1.5", "org.example.Test", serial, 0, 0, 10.0);
                ck_assert_int_eq(pairing_feed(p, &ev), 0);
                mon_event_clear(&ev);
        }
        /* the oldest calls are forgotten, the newest kept */
        ck_assert_uint_lt(pairing_in_flight(p), n);
        ck_assert_uint_gt(pairing_in_flight(p), 1000);
        make_event(&ev, MSG_RETURN, ":1.7", ":1.5", 1, 1, 0, 10.5);
        ck_assert_int_eq(pairing_feed(p, &ev), 0);
        ck_assert_ptr_null(ev.call);
        mon_event_clear(&ev);
        make_event(&ev, MSG_RETURN, ":1.7", ":1.5", 2, n, 0, 10.5);
        ck_assert_int_eq(pairing_feed(p, &ev), 0);
        ck_assert_ptr_nonnull(ev.call);
        mon_event_clear(&ev);
        pairing_free(p);
}
END_TEST

static Suite *monitor_suite(void)
{
        Suite *s = suite_create("tools-monitor");
        TCase *tc;

        tc = testbus_tcase("output");
        tcase_add_test(tc, test_color_on_a_terminal);
        tcase_add_test(tc, test_color_no_color);
        tcase_add_test(tc, test_color_always_on_a_pipe);
        tcase_add_test(tc, test_columns_on_a_terminal);
        tcase_add_test(tc, test_timestamps);
        tcase_add_test(tc, test_body_short_and_full);
        tcase_add_test(tc, test_credentials);
        tcase_add_test(tc, test_memfd_body);
        tcase_add_test(tc, test_json_fields);
        suite_add_tcase(s, tc);

        tc = testbus_tcase("pairing");
        tcase_add_test(tc, test_pairing_return_and_error);
        tcase_add_test(tc, test_pairing_timeout);
        tcase_add_test(tc, test_slow);
        tcase_add_test(tc, test_summary);
        suite_add_tcase(s, tc);

        tc = tcase_create("pairing-alone");
        tcase_add_test(tc, test_pairing_answers_and_expiry);
        tcase_add_test(tc, test_pairing_bound);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return testbus_run_suite(monitor_suite());
}
