/* SPDX-License-Identifier: MIT */
/*
 * The real ipc-monitor against a real ipcbusd: its lines (human and JSON),
 * MATCH filters and exit codes; colour on a terminal (a pty) and its
 * switches, columns, timestamps, bodies cut or whole, memfd bodies, the
 * sender's credentials; calls paired with their answers (return, error, the
 * broker's Timeout), --slow, --summary after SIGINT, and the fields of
 * --json. And the pairing itself, fed events made of frames as a capture
 * holds them: answers, calls never answered, its bound.
 */
#include <errno.h>
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
/* How an answer of the test service shows the call it answers: "← org.example.Watched org.example.Test.M ". */
#define PAIRED(member) "← " SERVICE " " TESTBUS_SERVICE_INTERFACE "." member " "

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
static char *line_with(struct testbus_lines *l, ...)
{
        int64_t deadline = testbus_now_ms() + TESTBUS_WAIT_MS;

        for (;;) {
                char *line = testbus_lines_read(l, (int) (deadline - testbus_now_ms()));
                bool all = true;
                va_list ap;

                ck_assert_msg(line, "ipc-monitor did not print the expected line");
                va_start(ap, l);
                for (const char *needle; all && (needle = va_arg(ap, const char *));)
                        all = strstr(line, needle) != NULL;
                va_end(ap);
                if (all)
                        return line;
                free(line);
        }
}

/* Start ipc-monitor on a pipe and wait for its first line (on stderr): it is a monitor then. */
static void monitor_spawn(struct testbus *tb, struct testbus_proc *p, const char *const *args)
{
        const char *argv[16];

        monitor_argv(tb, args, argv);
        testbus_proc_spawn(p, argv);
        free(line_with(&p->err, "ipc-monitor: watching ", tb->address, NULL));
}

/* What most tests watch: the test service, monitors on pipes, a client. */
struct watch {
        struct testbus *tb;
        struct testbus_child svc;
        struct testbus_proc mons[3];
        size_t n_mons;
        ipcbus_bus *c;
};

/* Start the test service as SERVICE and connect the client. */
static void watch_begin(struct watch *w)
{
        *w = (struct watch){.tb = testbus_current()};
        testbus_service_start(w->tb, &w->svc, SERVICE);
        w->c = testbus_connect(w->tb);
}

/* One more monitor with these arguments (NULL-terminated), ready. */
static struct testbus_proc *watch_monitor(struct watch *w, const char *const *args)
{
        ck_assert_uint_lt(w->n_mons, ELEMENTSOF(w->mons));
        monitor_spawn(w->tb, &w->mons[w->n_mons], args);
        return &w->mons[w->n_mons++];
}

/* Call member of the test service from the client, which must succeed. */
static void watch_call(struct watch *w, const char *member, const char *body)
{
        json_object_put(testbus_call(w->c, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, member, body));
}

/* Call Fail: the service's error. */
static void watch_fail(struct watch *w)
{
        free(testbus_call_error(w->c, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Fail", "{}",
                                TESTBUS_SERVICE_ERROR));
}

/* SIGTERM the monitors still running (each ends with 0), stop the service. */
static void watch_end(struct watch *w)
{
        for (size_t i = 0; i < w->n_mons; i++) {
                if (!w->mons[i].done)
                        ck_assert_int_eq(testbus_proc_terminate(&w->mons[i]), 0);
                testbus_proc_deinit(&w->mons[i]);
        }
        ipcbus_unref(w->c);
        testbus_child_finish(&w->svc);
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

/* A latency as format_duration writes it follows `paired` in line: "123 µs", "1.23 ms", "1.20 s". */
static bool has_latency(const char *line, const char *paired)
{
        const char *p = strstr(line, paired);
        double v;
        char unit[8];

        return p && sscanf(p + strlen(paired), "%lf %7s", &v, unit) == 2 &&
               (strcmp(unit, "µs") == 0 || strcmp(unit, "ms") == 0 || strcmp(unit, "s") == 0);
}

/* ---- the line, filters, exit codes ---- */

START_TEST(test_line)
{
        static const char *const none[] = {NULL};
        struct watch w;
        struct testbus_proc *p;
        char *line, from[320], to[320];

        watch_begin(&w);
        p = watch_monitor(&w, none);
        watch_call(&w, "Echo", "{\"k\":\"v\"}");
        /* "call :1.5 -> org.example.Watched serial=N path=... member=Echo uid=U pid=P comm=C {"k":"v"}" */
        snprintf(from, sizeof(from), " %s -> ", ipcbus_get_unique_name(w.c));
        line = line_with(&p->out, "member=Echo", from, NULL);
        ck_assert_msg(strncmp(line, "call ", 5) == 0, "line: %s", line);
        ck_assert_msg(strstr(line, "-> " SERVICE " "), "line: %s", line);
        ck_assert_msg(strstr(line, " path=" TESTBUS_SERVICE_PATH " "), "line: %s", line);
        ck_assert_msg(strstr(line, " {\"k\":\"v\"}"), "line: %s", line);
        free(line);
        /* its return, from the service's unique name to the caller, names the call and its latency */
        snprintf(from, sizeof(from), " %s -> ", w.svc.unique);
        snprintf(to, sizeof(to), "-> %s ", ipcbus_get_unique_name(w.c));
        line = line_with(&p->out, "return ", from, to, NULL);
        ck_assert_msg(strstr(line, " reply_serial="), "line: %s", line);
        ck_assert_msg(has_latency(line, PAIRED("Echo")), "line: %s", line);
        free(line);
        watch_end(&w);
}
END_TEST

static void assert_monitor_shows_signal(struct testbus_proc *p, const char *member, const char *n)
{
        char *line = testbus_proc_read_line(p, TESTBUS_WAIT_MS);
        json_object *o, *h, *body;

        ck_assert_msg(line, "ipc-monitor printed nothing for %s", member);
        o = testbus_json(line, strlen(line));
        ck_assert(json_object_object_get_ex(o, "header", &h));
        ck_assert(json_object_object_get_ex(o, "body", &body));
        ck_assert_msg(strcmp(testbus_json_string(h, "member"), member) == 0 &&
                              strcmp(testbus_json_string(body, "n"), n) == 0,
                      "expected %s %s, ipc-monitor printed %s", member, n, line);
        json_object_put(o);
        free(line);
}

START_TEST(test_match)
{
        static const char *const args[] = {"--json", "type=signal,member=Wanted", NULL};
        struct watch w;
        struct testbus_proc *p;

        watch_begin(&w);
        p = watch_monitor(&w, args);
        ck_assert_int_ge(ipcbus_emit_signal(w.c, NULL, "/x", "org.example.Tools", "Unwanted", "{\"n\":\"0\"}"), 0);
        ck_assert_int_ge(ipcbus_emit_signal(w.c, NULL, "/x", "org.example.Tools", "Wanted", "{\"n\":\"1\"}"), 0);
        ck_assert_int_ge(ipcbus_flush(w.c), 0);
        /* the first line it prints is the wanted signal, */
        assert_monitor_shows_signal(p, "Wanted", "1");
        /* and a call between two wanted signals does not show either */
        watch_call(&w, "Echo", "{}");
        ck_assert_int_ge(ipcbus_emit_signal(w.c, NULL, "/x", "org.example.Tools", "Wanted", "{\"n\":\"2\"}"), 0);
        ck_assert_int_ge(ipcbus_flush(w.c), 0);
        assert_monitor_shows_signal(p, "Wanted", "2");
        watch_end(&w);
}
END_TEST

START_TEST(test_exit_codes)
{
        static const char *const none[] = {NULL};
        struct testbus *tb = testbus_current();
        struct testbus other;
        struct testbus_proc p;
        const char *bad_rule[] = {ipc_monitor(), "--address", tb->address, "bogus=1", NULL};
        const char *bad_time[] = {ipc_monitor(), "--address", tb->address, "--timestamp=yesterday", NULL};
        const char *bad_slow[] = {ipc_monitor(), "--address", tb->address, "--slow", "soon", NULL};
        /* other's address is filled in when it starts */
        const char *refused[] = {ipc_monitor(), "--address", other.address, "member=A", "member=B", NULL};

        /* an invalid MATCH or option value is a usage error */
        ck_assert_int_eq(testbus_run(&p, bad_rule, TESTBUS_WAIT_MS), 2);
        ck_assert_msg(strstr(p.err.buf, "invalid match rule 'bogus=1': unknown key 'bogus' (keys: type, sender,") &&
                              strstr(p.err.buf, "arg.NAME)"),
                      "stderr: %s", p.err.buf);
        testbus_proc_deinit(&p);
        ck_assert_int_eq(testbus_run(&p, bad_time, TESTBUS_WAIT_MS), 2);
        ck_assert_msg(strstr(p.err.buf, "yesterday"), "stderr: %s", p.err.buf);
        testbus_proc_deinit(&p);
        ck_assert_int_eq(testbus_run(&p, bad_slow, TESTBUS_WAIT_MS), 2);
        ck_assert_msg(strstr(p.err.buf, "soon"), "stderr: %s", p.err.buf);
        testbus_proc_deinit(&p);

        /* the bus going away ends it with 1 and a note */
        testbus_start(&other);
        monitor_spawn(&other, &p, none);
        testbus_stop(&other);
        ck_assert_int_eq(testbus_proc_finish(&p, TESTBUS_WAIT_MS), 1);
        ck_assert_msg(strstr(p.err.buf, "the bus went away"), "stderr: %s", p.err.buf);
        testbus_proc_deinit(&p);

        /* the broker refusing BecomeMonitor: 1, and its error's name and message */
        testbus_start_config(&other, "{\"limits\":{\"max_matches_per_connection\":1}}");
        ck_assert_int_eq(testbus_run(&p, refused, TESTBUS_WAIT_MS), 1);
        ck_assert_msg(strstr(p.err.buf, "org.ipcbus.Error.LimitsExceeded") &&
                              strstr(p.err.buf, "max_matches_per_connection"),
                      "stderr: %s", p.err.buf);
        testbus_proc_deinit(&p);
        testbus_stop(&other);
}
END_TEST

/* ---- colour, columns, timestamps ---- */

/* The Echo call's line on a pty, with $NO_COLOR (NULL: unset) and args. */
static char *pty_echo_line(const char *no_color, const char *const *args)
{
        struct pty_monitor m;
        struct watch w;
        char *line;

        watch_begin(&w);
        pty_spawn(w.tb, &m, no_color, args);
        watch_call(&w, "Echo", "{\"k\":\"v\"}");
        line = line_with(&m.lines, "member=Echo", "{\"k\":\"v\"}", NULL);
        pty_finish(&m);
        watch_end(&w);
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
        struct testbus_proc *p, *plain;
        struct watch w;
        char *line;

        watch_begin(&w);
        p = watch_monitor(&w, always);
        plain = watch_monitor(&w, none);
        watch_call(&w, "Echo", "{}");
        line = line_with(&p->out, "member=Echo", NULL);
        ck_assert_msg(strncmp(line, "\033[1;34mcall", 11) == 0, "line: %s", line);
        free(line);
        /* on a pipe by default: no escape, no time, one space between the names */
        line = line_with(&plain->out, "member=Echo", NULL);
        ck_assert_msg(!strchr(line, '\033') && strncmp(line, "call ", 5) == 0, "line: %s", line);
        ck_assert_msg(strstr(line, " -> " SERVICE " serial="), "line: %s", line);
        free(line);
        watch_end(&w);
}
END_TEST

START_TEST(test_columns_on_a_terminal)
{
        static const char *const none[] = {NULL};
        struct pty_monitor m;
        struct watch w;
        char *call, *ret;

        watch_begin(&w);
        pty_spawn(w.tb, &m, "1", none);
        watch_call(&w, "Echo", "{}");
        /* the return's "->" lines up under the call's: the names are padded to the widest seen */
        call = line_with(&m.lines, "call ", "member=Echo", NULL);
        ret = line_with(&m.lines, "return ", PAIRED("Echo"), NULL);
        ck_assert_msg(strstr(call, " -> ") - call == strstr(ret, " -> ") - ret, "\n%s\n%s", call, ret);
        free(call);
        free(ret);
        pty_finish(&m);
        watch_end(&w);
}
END_TEST

/* line starts with a time in seconds ("+S.UUUUUU", relative or delta), then "call". */
static void assert_seconds_then_call(const char *line)
{
        unsigned sec, usec;
        char type[16];

        ck_assert_msg(sscanf(line, "+%u.%6u %15s", &sec, &usec, type) == 3 && strcmp(type, "call") == 0, "line: %s",
                      line);
}

START_TEST(test_timestamps)
{
        static const char *const bare[] = {"--timestamp", "type=call", NULL};
        static const char *const relative[] = {"--timestamp=relative", "type=call", NULL};
        static const char *const delta[] = {"--timestamp=delta", "type=call", NULL};
        struct testbus_proc *pb, *pr, *pd;
        unsigned h, m, s, us;
        struct watch w;
        ipcbus_bus *c;
        char *line, type[16];

        watch_begin(&w);
        pb = watch_monitor(&w, bare);
        pr = watch_monitor(&w, relative);
        pd = watch_monitor(&w, delta);
        c = testbus_connect(w.tb); /* its Hello is the first call the monitors see */
        watch_call(&w, "Echo", "{}");
        /* bare --timestamp: the local time, HH:MM:SS.uuuuuu */
        line = line_with(&pb->out, "member=Echo", NULL);
        ck_assert_msg(sscanf(line, "%2u:%2u:%2u.%6u %15s", &h, &m, &s, &us, type) == 5 && strcmp(type, "call") == 0,
                      "line: %s", line);
        free(line);
        /* relative: the first message is at +0.000000, the others seconds after */
        line = testbus_proc_read_line(pr, TESTBUS_WAIT_MS);
        ck_assert_msg(line && strncmp(line, "+0.000000 call ", 15) == 0, "line: %s", line);
        free(line);
        line = line_with(&pr->out, "member=Echo", NULL);
        assert_seconds_then_call(line);
        free(line);
        /* delta: seconds since the previous message */
        line = line_with(&pd->out, "member=Echo", NULL);
        assert_seconds_then_call(line);
        free(line);
        ipcbus_unref(c);
        watch_end(&w);
}
END_TEST

/* ---- bodies, credentials ---- */

START_TEST(test_body_short_and_full)
{
        static const char *const shortened[] = {"type=call", NULL};
        static const char *const full[] = {"--full", "type=call", NULL};
        struct testbus_proc *ps, *pf;
        char body[1024], longs[301], *line;
        struct watch w;
        bool whole = false;

        memset(longs, 'x', 300);
        longs[300] = '\0';
        snprintf(body, sizeof(body), "{\"long\":\"%s\",\"list\":[1,2,3,4,5,6,7,8,9,10,11,12],\"tail\":\"end\"}", longs);
        watch_begin(&w);
        ps = watch_monitor(&w, shortened);
        pf = watch_monitor(&w, full);
        watch_call(&w, "Echo", body);
        /* one line: the string and the array cut with a mark, the body's size said, the rest kept */
        line = line_with(&ps->out, "member=Echo", NULL);
        ck_assert_msg(!strstr(line, longs) && strstr(line, "xxxxxxxx…\""), "line: %s", line);
        ck_assert_msg(strstr(line, "[1,2,3,4,5,6,7,8,…+4]") && strstr(line, "\"tail\":\"end\""), "line: %s", line);
        snprintf(body, sizeof(body), "(%zu bytes)", strlen(body));
        ck_assert_msg(strstr(line, body), "no %s in: %s", body, line);
        free(line);
        /* --full: the whole body, pretty, on the lines after */
        free(line_with(&pf->out, "member=Echo", NULL));
        for (int i = 0; i < 40 && !whole; i++) {
                line = testbus_proc_read_line(pf, TESTBUS_WAIT_MS);
                ck_assert_msg(line, "--full printed no whole body");
                whole = strstr(line, longs) && strncmp(line, "  \"long\": ", 10) == 0;
                free(line);
        }
        ck_assert(whole);
        watch_end(&w);
}
END_TEST

START_TEST(test_body_as_sent)
{
        static const char *const human[] = {"type=call", NULL};
        static const char *const json[] = {"--json", "type=call", NULL};
        /* json-c would make the integer 18446744073709551615; the escape and the spacing are the sender's */
        static const char body[] =
                "{ \"big\": 123456789012345678901234,\n \"s\": \"h\\u00e9\", \"deep\": [[[[[1]]]]] }";
        struct testbus_proc *ph, *pj;
        struct watch w;
        char *line;

        watch_begin(&w);
        ph = watch_monitor(&w, human);
        pj = watch_monitor(&w, json);
        watch_call(&w, "Echo", body);
        line = line_with(&ph->out, "member=Echo", NULL);
        ck_assert_msg(strstr(line, " {\"big\":123456789012345678901234,\"s\":\"h\\u00e9\",\"deep\":[[[[…]]]]} ("),
                      "line: %s", line);
        free(line);
        line = line_with(&pj->out, "\"Echo\"", NULL);
        ck_assert_msg(strstr(line, "\"body\":{ \"big\": 123456789012345678901234,  \"s\": \"h\\u00e9\""), "line: %s",
                      line);
        json_object_put(testbus_json(line, strlen(line)));
        free(line);
        watch_end(&w);
}
END_TEST

START_TEST(test_memfd_body)
{
        static const char *const calls[] = {"type=call", NULL};
        size_t n = 1200 * 1024;
        char *body = malloc(n + 32), *line, size[64];
        struct testbus_proc *p;
        struct watch w;

        /* a body this large goes in a sealed memfd (the library's threshold is 1 MiB) */
        ck_assert_ptr_nonnull(body);
        memcpy(body, "{\"big\":\"", 8);
        memset(body + 8, 'y', n);
        strcpy(body + 8 + n, "\"}");
        watch_begin(&w);
        p = watch_monitor(&w, calls);
        watch_call(&w, "Echo", body);
        /* shown as any body, cut to a line, with the memfd's size */
        line = line_with(&p->out, "member=Echo", NULL);
        snprintf(size, sizeof(size), "(%zu bytes)", strlen(body));
        ck_assert_msg(strstr(line, " memfd=") && strstr(line, "{\"big\":\"yyyyyyyy") && strstr(line, size),
                      "line: %.600s", line);
        ck_assert_uint_lt(strlen(line), 1000);
        free(line);
        watch_end(&w);
        free(body);
}
END_TEST

START_TEST(test_credentials)
{
        static const char *const none[] = {NULL};
        char comm[32] = "", creds[96], *line;
        struct testbus_proc *p;
        struct watch w;
        FILE *f;

        f = fopen("/proc/self/comm", "r");
        ck_assert_ptr_nonnull(f);
        ck_assert_ptr_nonnull(fgets(comm, sizeof(comm), f));
        fclose(f);
        comm[strcspn(comm, "\n")] = '\0';
        watch_begin(&w);
        p = watch_monitor(&w, none);
        watch_call(&w, "Echo", "{}");
        snprintf(creds, sizeof(creds), " uid=%u pid=%d comm=%s ", (unsigned) getuid(), (int) getpid(), comm);
        line = line_with(&p->out, "member=Echo", NULL);
        ck_assert_msg(strstr(line, creds), "no '%s' in: %s", creds, line);
        free(line);
        watch_end(&w);
}
END_TEST

/* ---- pairing ---- */

START_TEST(test_pairing_error)
{
        static const char *const none[] = {NULL};
        struct testbus_proc *p;
        struct watch w;
        char *line, to[320];

        watch_begin(&w);
        p = watch_monitor(&w, none);
        watch_fail(&w);
        /* the error: its name, and the call it answers */
        snprintf(to, sizeof(to), "-> %s ", ipcbus_get_unique_name(w.c));
        line = line_with(&p->out, "error ", to, NULL);
        ck_assert_msg(strstr(line, " error=" TESTBUS_SERVICE_ERROR " "), "line: %s", line);
        ck_assert_msg(has_latency(line, PAIRED("Fail")), "line: %s", line);
        free(line);
        watch_end(&w);
}
END_TEST

START_TEST(test_pairing_timeout)
{
        static const char *const none[] = {NULL};
        _cleanup_(ipcbus_error_freep) ipcbus_error error = IPCBUS_ERROR_NULL;
        struct testbus_proc *p;
        struct watch w;
        char *line;

        watch_begin(&w);
        p = watch_monitor(&w, none);
        /* the service holds the call: the broker answers Timeout after 300 ms */
        ck_assert_int_eq(ipcbus_call(w.c, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Hold", "{}",
                                     300 * 1000, NULL, &error),
                         -EREMOTEIO);
        ck_assert_str_eq(error.name, "org.ipcbus.Error.Timeout");
        line = line_with(&p->out, "error ", " error=org.ipcbus.Error.Timeout ", NULL);
        ck_assert_msg(has_latency(line, PAIRED("Hold")), "line: %s", line);
        free(line);
        free(testbus_child_read(&w.svc, TESTBUS_WAIT_MS)); /* "held N" */
        watch_end(&w);
}
END_TEST

/* Call Hold without waiting, and have the service answer it after ms milliseconds. */
static void watch_held_call(struct watch *w, unsigned ms)
{
        char *line;

        ck_assert_int_ge(ipcbus_call_async(w->c, NULL, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Hold",
                                           "{}", IPCBUS_TIMEOUT_DEFAULT, NULL, NULL),
                         0);
        ck_assert_int_ge(ipcbus_flush(w->c), 0);
        line = testbus_child_read(&w->svc, TESTBUS_WAIT_MS);
        ck_assert_msg(strncmp(line, "held ", 5) == 0, "service: %s", line);
        free(line);
        usleep(ms * 1000);
        testbus_child_send(&w->svc, "release");
        testbus_child_expect(&w->svc, "released 1");
}

START_TEST(test_slow)
{
        static const char *const slow[] = {"--slow", "150", NULL};
        struct testbus_proc *p;
        struct watch w;
        char *line;

        watch_begin(&w);
        p = watch_monitor(&w, slow);
        /* a fast call (answered at once), then one answered after 400 ms */
        watch_call(&w, "Echo", "{}");
        watch_held_call(&w, 400);
        /* the first line is the slow call, printed when its answer came, then that answer: nothing of Echo */
        line = testbus_proc_read_line(p, TESTBUS_WAIT_MS);
        ck_assert_msg(line && strncmp(line, "call ", 5) == 0 && strstr(line, " member=Hold"), "line: %s", line);
        free(line);
        line = testbus_proc_read_line(p, TESTBUS_WAIT_MS);
        ck_assert_msg(line && strncmp(line, "return ", 7) == 0, "line: %s", line);
        ck_assert_msg(has_latency(line, PAIRED("Hold")), "line: %s", line);
        free(line);
        ck_assert_int_eq(testbus_proc_terminate(p), 0);
        ck_assert_msg(!strstr(p->out.buf ? p->out.buf : "", "Echo"), "shown: %s", p->out.buf);
        watch_end(&w);
}
END_TEST

/* The row of member in a --summary table, split at spaces into tokens (10); returns the count. */
static size_t summary_row(const char *table, const char *member, char *row, size_t row_size, char **tokens)
{
        char start[128], *save = NULL;
        const char *p;
        size_t n = 0;

        snprintf(start, sizeof(start), "\n%s ", member);
        p = strstr(table, start);
        ck_assert_msg(p, "no %s in: %s", member, table);
        snprintf(row, row_size, "%.*s", (int) strcspn(p + 1, "\n"), p + 1);
        for (char *t = strtok_r(row, " ", &save); t && n < 10; t = strtok_r(NULL, " ", &save))
                tokens[n++] = t;
        return n;
}

START_TEST(test_summary)
{
        static const char *const summary[] = {"--summary", NULL};
        char row[512], *tokens[10];
        struct testbus_proc *p;
        struct watch w;

        watch_begin(&w);
        p = watch_monitor(&w, summary);
        for (int i = 0; i < 3; i++)
                watch_call(&w, "Echo", "{}");
        watch_fail(&w);
        /* everything seen before the signal */
        free(line_with(&p->out, "error ", TESTBUS_SERVICE_ERROR, NULL));
        kill(p->pid, SIGINT);
        ck_assert_int_eq(testbus_proc_finish(p, TESTBUS_WAIT_MS), 0);
        ck_assert_msg(strstr(p->out.buf, "MEMBER ") && strstr(p->out.buf, " P99 "), "stdout: %s", p->out.buf);
        /* "org.example.Test.Echo  org.example.Watched  3  0  0  P50 P99 MAX": calls, errors, timeouts */
        ck_assert_uint_ge(summary_row(p->out.buf, TESTBUS_SERVICE_INTERFACE ".Echo", row, sizeof(row), tokens), 5);
        ck_assert_msg(strcmp(tokens[1], SERVICE) == 0 && strcmp(tokens[2], "3") == 0 && strcmp(tokens[3], "0") == 0 &&
                              strcmp(tokens[4], "0") == 0,
                      "stdout: %s", p->out.buf);
        ck_assert_uint_ge(summary_row(p->out.buf, TESTBUS_SERVICE_INTERFACE ".Fail", row, sizeof(row), tokens), 5);
        ck_assert_msg(strcmp(tokens[2], "1") == 0 && strcmp(tokens[3], "1") == 0, "stdout: %s", p->out.buf);
        ck_assert_msg(strstr(p->out.buf, TESTBUS_SERVICE_ERROR "×1"), "stdout: %s", p->out.buf);
        watch_end(&w);
}
END_TEST

START_TEST(test_unanswered)
{
        /* the monitor sees the call and not its answer (outside its rules) */
        static const char *const calls[] = {"--summary", "type=call,member=Hold", NULL};
        _cleanup_(ipcbus_error_freep) ipcbus_error error = IPCBUS_ERROR_NULL;
        char row[512], *tokens[10];
        struct testbus_proc *p;
        struct watch w;
        char *line;

        watch_begin(&w);
        p = watch_monitor(&w, calls);
        ck_assert_int_eq(ipcbus_call(w.c, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Hold", "{}",
                                     300 * 1000, NULL, &error),
                         -EREMOTEIO);
        free(testbus_child_read(&w.svc, TESTBUS_WAIT_MS)); /* "held N" */
        /* its deadline and a second later: reported, and counted as a timeout */
        line = line_with(&p->out, "unanswered ", " member=Hold", NULL);
        ck_assert_msg(strstr(line, " -> " SERVICE " ") && strstr(line, " no answer after "), "line: %s", line);
        free(line);
        kill(p->pid, SIGINT);
        ck_assert_int_eq(testbus_proc_finish(p, TESTBUS_WAIT_MS), 0);
        ck_assert_uint_ge(summary_row(p->out.buf, TESTBUS_SERVICE_INTERFACE ".Hold", row, sizeof(row), tokens), 5);
        ck_assert_msg(strcmp(tokens[2], "1") == 0 && strcmp(tokens[3], "0") == 0 && strcmp(tokens[4], "1") == 0,
                      "stdout: %s", p->out.buf);
        watch_end(&w);
}
END_TEST

/* ---- --top ---- */

/* The line of the table titled `title` (up to its blank line) that starts with `start`, split into tokens. */
static size_t top_row(const char *out, const char *title, const char *start, char *row, size_t row_size, char **tokens,
                      size_t max)
{
        char key[128], *save = NULL;
        const char *table, *end, *p;
        size_t n = 0;

        snprintf(key, sizeof(key), "\n%s ", title);
        table = strstr(out, key);
        ck_assert_msg(table, "no table %s in: %s", title, out);
        end = strstr(table + 1, "\n\n");
        snprintf(key, sizeof(key), "\n%s", start);
        p = strstr(table + 1, key);
        ck_assert_msg(p && (!end || p < end), "no row %s in table %s: %s", start, title, out);
        snprintf(row, row_size, "%.*s", (int) strcspn(p + 1, "\n"), p + 1);
        for (char *t = strtok_r(row, " ", &save); t && n < max; t = strtok_r(NULL, " ", &save))
                tokens[n++] = t;
        return n;
}

/*
 * --top --once: one plain report of an interval in which the service answered
 * 5 Echo calls and one Fail: the service among the senders with its name and
 * command, the members with their answers, the slowest, the queues from
 * GetStats; no screen control on a pipe.
 */
START_TEST(test_top_once)
{
        static const char *const args[] = {"--top", "--once", "--interval", "3", NULL};
        char row[512], *tokens[12], start[384];
        struct testbus_proc *p;
        struct watch w;
        size_t n;

        watch_begin(&w);
        p = watch_monitor(&w, args);
        for (int i = 0; i < 5; i++)
                watch_call(&w, "Echo", "{}");
        watch_fail(&w);
        ck_assert_int_eq(testbus_proc_finish(p, 4 * TESTBUS_WAIT_MS), 0);
        ck_assert_msg(!strchr(p->out.buf, '\033'), "escape codes on a pipe: %s", p->out.buf);
        ck_assert_msg(strstr(p->out.buf, "ipc-monitor --top  ") && strstr(p->out.buf, " calls in flight") &&
                              strstr(p->out.buf, " connections "),
                      "%s", p->out.buf);
        /* "SENDER ... :1.N org.example.Watched (test-service)  MSG/S BYTES/S ERR/S" */
        ck_assert_int_lt(snprintf(start, sizeof(start), "%s %s", w.svc.unique, SERVICE), (int) sizeof(start));
        n = top_row(p->out.buf, "SENDER", start, row, sizeof(row), tokens, ELEMENTSOF(tokens));
        ck_assert_uint_ge(n, 5);
        ck_assert_msg(strtod(tokens[n - 1], NULL) > 0, "the service's errors/s: %s", p->out.buf);
        /* "MEMBER ... org.example.Test.Echo  MSG/S ERR/S ANSWERS AVG MAX": 5 answered */
        n = top_row(p->out.buf, "MEMBER", TESTBUS_SERVICE_INTERFACE ".Echo ", row, sizeof(row), tokens,
                    ELEMENTSOF(tokens));
        ck_assert_uint_ge(n, 6);
        ck_assert_str_eq(tokens[3], "5");
        n = top_row(p->out.buf, "MEMBER", TESTBUS_SERVICE_INTERFACE ".Fail ", row, sizeof(row), tokens,
                    ELEMENTSOF(tokens));
        ck_assert_msg(strtod(tokens[2], NULL) > 0 && strcmp(tokens[3], "1") == 0, "Fail: %s", p->out.buf);
        top_row(p->out.buf, "SLOWEST", TESTBUS_SERVICE_INTERFACE ".Echo ", row, sizeof(row), tokens,
                ELEMENTSOF(tokens));
        /* the service's queue, from GetStats, labelled with its name */
        top_row(p->out.buf, "QUEUES", start, row, sizeof(row), tokens, ELEMENTSOF(tokens));
        watch_end(&w);
}
END_TEST

/* Options that do not go together, or need another, are usage errors; a capture that cannot be read says why. */
START_TEST(test_modes_usage)
{
        static const char *const clashes[][5] = {
                {"--top", "--json", NULL}, {"--top", "--summary", NULL},       {"--once", NULL},
                {"--interval", "2", NULL}, {"--top", "--interval", "0", NULL}, {"--capture", "-", "--json", NULL},
        };
        struct testbus *tb = testbus_current();
        struct testbus_proc p;

        for (size_t i = 0; i < ELEMENTSOF(clashes); i++) {
                const char *argv[16];

                monitor_argv(tb, clashes[i], argv);
                ck_assert_int_eq(testbus_run(&p, argv, TESTBUS_WAIT_MS), 2);
                ck_assert_msg(strstr(p.err.buf, "ipc-monitor: "), "stderr: %s", p.err.buf);
                testbus_proc_deinit(&p);
        }
        {
                static const char *const missing[] = {"--read", "/nonexistent/x.pcapng", NULL};
                const char *argv[16];

                monitor_argv(tb, missing, argv);
                ck_assert_int_eq(testbus_run(&p, argv, TESTBUS_WAIT_MS), 1);
                ck_assert_msg(strstr(p.err.buf, "/nonexistent/x.pcapng"), "stderr: %s", p.err.buf);
                testbus_proc_deinit(&p);
        }
}
END_TEST

/* ---- --json ---- */

/* A JSON line's members that every message has: header, body, timestamp, fds 0 and memfd_size 0. Returns header. */
static json_object *assert_json_common(json_object *o)
{
        json_object *h, *v;

        ck_assert(json_object_object_get_ex(o, "header", &h) && json_object_is_type(h, json_type_object));
        ck_assert(json_object_object_get_ex(o, "body", NULL));
        ck_assert(json_object_object_get_ex(o, "timestamp", &v) && json_object_is_type(v, json_type_double));
        ck_assert(json_object_object_get_ex(o, "fds", &v) && json_object_get_int(v) == 0);
        ck_assert(json_object_object_get_ex(o, "memfd_size", &v) && json_object_get_int(v) == 0);
        return h;
}

/* The answer's "call" and "latency_us" for a call of Echo with serial. */
static void assert_json_paired(json_object *o, int64_t serial)
{
        json_object *call, *v;

        ck_assert(json_object_object_get_ex(o, "call", &call));
        ck_assert_str_eq(testbus_json_string(call, "destination"), SERVICE);
        ck_assert_str_eq(testbus_json_string(call, "interface"), TESTBUS_SERVICE_INTERFACE);
        ck_assert_str_eq(testbus_json_string(call, "member"), "Echo");
        ck_assert_int_eq(testbus_json_int(call, "serial"), serial);
        ck_assert(json_object_object_get_ex(o, "latency_us", &v) && json_object_is_type(v, json_type_int) &&
                  json_object_get_int64(v) >= 0);
}

START_TEST(test_json)
{
        static const char *const json[] = {"--json", NULL};
        int64_t serial = -1, deadline = testbus_now_ms() + TESTBUS_WAIT_MS;
        struct testbus_proc *p;
        struct watch w;
        bool paired = false;

        watch_begin(&w);
        p = watch_monitor(&w, json);
        watch_call(&w, "Echo", "{\"k\": \"v\"}");
        while (!paired) {
                char *line = testbus_proc_read_line(p, (int) (deadline - testbus_now_ms()));
                json_object *o, *h, *body, *v;
                const char *type, *sender;

                ck_assert_msg(line, "ipc-monitor --json did not show the call and its answer");
                /* every line is one JSON object */
                o = testbus_json(line, strlen(line));
                h = assert_json_common(o);
                body = json_object_object_get(o, "body");
                type = testbus_json_string(h, "type");
                sender = json_object_get_string(json_object_object_get(h, "sender"));
                if (strcmp(type, "call") == 0 && sender && strcmp(sender, ipcbus_get_unique_name(w.c)) == 0 &&
                    strcmp(testbus_json_string(h, "member"), "Echo") == 0) {
                        ck_assert_str_eq(testbus_json_string(h, "destination"), SERVICE);
                        ck_assert_str_eq(testbus_json_string(body, "k"), "v");
                        ck_assert_int_eq(testbus_json_int(h, "sender_pid"), getpid());
                        ck_assert(json_object_object_get_ex(o, "comm", &v) && json_object_get_string_len(v) > 0);
                        ck_assert(!json_object_object_get_ex(o, "call", NULL));
                        serial = testbus_json_int(h, "serial");
                } else if (strcmp(type, "return") == 0 && serial > 0 && testbus_json_int(h, "reply_serial") == serial) {
                        ck_assert_str_eq(sender, w.svc.unique);
                        ck_assert_str_eq(testbus_json_string(body, "k"), "v");
                        assert_json_paired(o, serial);
                        paired = true;
                }
                json_object_put(o);
                free(line);
        }
        watch_end(&w);
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

        tc = testbus_tcase("lines");
        tcase_add_test(tc, test_line);
        tcase_add_test(tc, test_match);
        tcase_add_test(tc, test_exit_codes);
        tcase_add_test(tc, test_json);
        suite_add_tcase(s, tc);

        tc = testbus_tcase("terminal");
        tcase_add_test(tc, test_color_on_a_terminal);
        tcase_add_test(tc, test_color_no_color);
        tcase_add_test(tc, test_color_always_on_a_pipe);
        tcase_add_test(tc, test_columns_on_a_terminal);
        tcase_add_test(tc, test_timestamps);
        tcase_add_test(tc, test_body_short_and_full);
        tcase_add_test(tc, test_body_as_sent);
        tcase_add_test(tc, test_memfd_body);
        tcase_add_test(tc, test_credentials);
        suite_add_tcase(s, tc);

        tc = testbus_tcase("pairing");
        tcase_add_test(tc, test_pairing_error);
        tcase_add_test(tc, test_pairing_timeout);
        tcase_add_test(tc, test_slow);
        tcase_add_test(tc, test_summary);
        tcase_add_test(tc, test_unanswered);
        suite_add_tcase(s, tc);

        tc = testbus_tcase("top");
        tcase_add_test(tc, test_top_once);
        tcase_add_test(tc, test_modes_usage);
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
