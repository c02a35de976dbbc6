/* SPDX-License-Identifier: MIT */
/*
 * The broker's statistics through the real tools and the metrics socket:
 * ipcctl stats (the bus's totals, the connections' table, one connection,
 * --json) after known traffic, ipcctl metrics validated by the strict
 * OpenMetrics parser of python3-prometheus-client and by promtool, and
 * ipcbusd's metrics socket answering raw HTTP requests, bounded in time and
 * in connections while the bus goes on answering its clients.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "tests/testbus.h"

#define SERVICE "org.example.Stats"
/* The body of each Echo call of the known traffic: {"text": "xxx..."} of about 2 KiB. */
#define ECHO_TEXT_LEN 2000
#define ECHO_CALLS 3

#define PYTHON "/usr/bin/python3"
#define PROMTOOL "/usr/bin/promtool"
/* The strict OpenMetrics parser of python3-prometheus-client: prints the family names, one a line. */
#define OPENMETRICS_CHECK                                                                                              \
        "import sys\n"                                                                                                 \
        "from prometheus_client.openmetrics.parser import text_string_to_metric_families\n"                            \
        "for f in text_string_to_metric_families(open(sys.argv[1]).read()):\n"                                         \
        "    print(f.name, f.type)\n"

/* What the metrics socket answers with (daemon/launch/scrape.h). */
#define SCRAPE_DEADLINE_MS 3000
#define SCRAPE_MAX 8

/* The value of the "key  value" line of an ipcctl stats block (malloc'd), asserting it is there. */
static char *block_value(const char *text, const char *key)
{
        char *line = testbus_line_starting(text, key), *value;

        ck_assert_msg(line, "no %s line in:\n%s", key, text);
        value = strdup(line + strlen(key) + strspn(line + strlen(key), " "));
        free(line);
        return value;
}

/* /proc/PID/comm without its newline (static buffer). */
static const char *comm_of(pid_t pid)
{
        static char comm[64];
        char path[64];
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/comm", (int) pid);
        f = fopen(path, "r");
        ck_assert_ptr_nonnull(f);
        ck_assert_ptr_nonnull(fgets(comm, sizeof(comm), f));
        fclose(f);
        comm[strcspn(comm, "\n")] = '\0';
        return comm;
}

/* Known traffic: ECHO_CALLS Echo calls from a client to the service, each with ECHO_TEXT_LEN bytes of text. */
static void echo_traffic(struct testbus *tb)
{
        ipcbus_bus *client = testbus_connect(tb);
        char *body = malloc(ECHO_TEXT_LEN + 32);

        ck_assert_ptr_nonnull(body);
        snprintf(body, ECHO_TEXT_LEN + 32, "{\"text\": \"%0*d\"}", ECHO_TEXT_LEN, 0);
        for (int i = 0; i < ECHO_CALLS; i++)
                json_object_put(
                        testbus_call(client, SERVICE, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Echo", body));
        free(body);
        ipcbus_unref(client);
}

/* GetConnectionStats of SERVICE through ipcctl --json (the caller puts it). */
static json_object *service_stats(struct testbus *tb)
{
        struct testbus_proc p;
        json_object *o;

        ck_assert_int_eq(testbus_ipcctl(&p, tb, "--json", "stats", SERVICE, NULL), 0);
        o = testbus_json(p.out.buf, p.out.len);
        testbus_proc_deinit(&p);
        return o;
}

/* ---- ipcctl stats ------------------------------------------------------------------ */

/* The service's figures move by exactly the known traffic: its calls in, its replies out, their bytes. */
START_TEST(test_stats_after_traffic)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        json_object *before, *after;

        testbus_service_start(tb, &svc, SERVICE);
        before = service_stats(tb);
        echo_traffic(tb);
        after = service_stats(tb);

        ck_assert_str_eq(testbus_json_string(after, "unique_name"), svc.unique);
        ck_assert_int_eq(testbus_json_int(after, "pid"), svc.pid);
        ck_assert_int_eq(testbus_json_int(after, "uid"), getuid());
        ck_assert(testbus_json_array_has(testbus_json_array(after, "names"), SERVICE));
        ck_assert_int_eq(testbus_json_int(after, "messages_out") - testbus_json_int(before, "messages_out"),
                         ECHO_CALLS);
        ck_assert_int_eq(testbus_json_int(after, "messages_in") - testbus_json_int(before, "messages_in"), ECHO_CALLS);
        ck_assert_int_ge(testbus_json_int(after, "bytes_out") - testbus_json_int(before, "bytes_out"),
                         ECHO_CALLS * ECHO_TEXT_LEN);
        ck_assert_int_ge(testbus_json_int(after, "bytes_in") - testbus_json_int(before, "bytes_in"),
                         ECHO_CALLS * ECHO_TEXT_LEN);
        ck_assert_int_eq(testbus_json_int(after, "pending_calls"), 0);
        ck_assert_int_eq(testbus_json_int(after, "queued_bytes"), 0);
        json_object_put(before);
        json_object_put(after);
        testbus_child_finish(&svc);
}
END_TEST

/* ipcctl stats: the totals block, then the table row of the service with what GetConnectionStats says. */
START_TEST(test_stats_table)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct testbus_proc p;
        json_object *conn;
        char *line, *tokens[16], *value, want[64];
        long long calls = -1;

        testbus_service_start(tb, &svc, SERVICE);
        echo_traffic(tb);
        conn = service_stats(tb);
        ck_assert_int_eq(testbus_ipcctl(&p, tb, "stats", NULL), 0);

        /* the bus's totals: every Echo call routed, the service's connection counted */
        value = block_value(p.out.buf, "messages");
        ck_assert_msg(sscanf(strstr(value, "call=") ? strstr(value, "call=") : "", "call=%lld", &calls) == 1,
                      "messages: %s", value);
        ck_assert_int_ge(calls, ECHO_CALLS);
        free(value);
        value = block_value(p.out.buf, "connections");
        ck_assert_int_ge(atoi(value), 2); /* the service and ipcctl */
        free(value);

        /* the header, then the service's row: NAME (names) UID PID COMM MSGS BYTES QUEUED PENDING HELD */
        ck_assert_msg(strstr(p.out.buf, "\nNAME "), "no table header in:\n%s", p.out.buf);
        line = testbus_line_starting(p.out.buf, svc.unique);
        ck_assert_msg(line, "%s not in the table:\n%s", svc.unique, p.out.buf);
        ck_assert_uint_eq(testbus_split_words(line, tokens, 16), 10);
        ck_assert_str_eq(tokens[1], "(" SERVICE ")");
        snprintf(want, sizeof(want), "%d", (int) getuid());
        ck_assert_str_eq(tokens[2], want);
        snprintf(want, sizeof(want), "%d", (int) svc.pid);
        ck_assert_str_eq(tokens[3], want);
        ck_assert_str_eq(tokens[4], comm_of(svc.pid));
        snprintf(want, sizeof(want), "%lld/%lld", (long long) testbus_json_int(conn, "messages_in"),
                 (long long) testbus_json_int(conn, "messages_out"));
        ck_assert_str_eq(tokens[5], want);
        /* bytes in human form: more than ECHO_CALLS * 2000 each way, so kilobytes */
        ck_assert_msg(strchr(tokens[6], 'K') && strchr(tokens[6], '/') &&
                              strchr(tokens[6], 'K') < strchr(tokens[6], '/'),
                      "BYTES IN/OUT %s", tokens[6]);
        ck_assert_str_eq(tokens[7], "0");
        ck_assert_str_eq(tokens[8], "0");
        ck_assert_str_eq(tokens[9], "0");
        free(line);
        json_object_put(conn);
        testbus_proc_deinit(&p);
        testbus_child_finish(&svc);
}
END_TEST

/* ipcctl stats NAME: one figure a line; --json of GetStats; a name without owner is an error. */
START_TEST(test_stats_name_and_json)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct testbus_proc p;
        json_object *o, *bus, *conns;
        char *value;
        bool listed = false;

        testbus_service_start(tb, &svc, SERVICE);

        ck_assert_int_eq(testbus_ipcctl(&p, tb, "stats", SERVICE, NULL), 0);
        value = block_value(p.out.buf, "unique_name");
        ck_assert_str_eq(value, svc.unique);
        free(value);
        value = block_value(p.out.buf, "names");
        ck_assert_str_eq(value, SERVICE);
        free(value);
        value = block_value(p.out.buf, "comm");
        ck_assert_str_eq(value, comm_of(svc.pid));
        free(value);
        value = block_value(p.out.buf, "monitor");
        ck_assert_str_eq(value, "false");
        free(value);
        testbus_proc_deinit(&p);

        ck_assert_int_eq(testbus_ipcctl(&p, tb, "--json", "stats", NULL), 0);
        o = testbus_json(p.out.buf, p.out.len);
        bus = json_object_object_get(o, "bus");
        ck_assert_ptr_nonnull(bus);
        ck_assert_int_ge(testbus_json_int(bus, "connections"), 2);
        ck_assert_int_ge(testbus_json_int(bus, "names"), 1);
        ck_assert(json_object_is_type(json_object_object_get(bus, "messages"), json_type_object));
        conns = testbus_json_array(o, "connections");
        for (size_t i = 0; i < json_object_array_length(conns); i++)
                listed |= strcmp(testbus_json_string(json_object_array_get_idx(conns, i), "unique_name"), svc.unique) ==
                          0;
        ck_assert_msg(listed, "%s not among the connections:\n%s", svc.unique, p.out.buf);
        json_object_put(o);
        testbus_proc_deinit(&p);

        ck_assert_int_eq(testbus_ipcctl(&p, tb, "stats", "org.example.Nobody", NULL), 1);
        ck_assert_msg(strstr(p.err.buf, IPCBUS_ERROR_NAME_HAS_NO_OWNER ": "), "stderr: %s", p.err.buf);
        testbus_proc_deinit(&p);
        ck_assert_int_eq(testbus_ipcctl(&p, tb, "stats", "not a name", NULL), 2);
        testbus_proc_deinit(&p);
        testbus_child_finish(&svc);
}
END_TEST

/* ---- ipcctl metrics ---------------------------------------------------------------- */

/* Run argv (NULL-terminated); returns its exit code, output in p. */
static int run_program(struct testbus_proc *p, const char *const *argv)
{
        return testbus_run(p, argv, TESTBUS_WAIT_MS * testbus_slow_factor());
}

/* `promtool check metrics < path`: its exit code (its verdict in p). */
static int promtool_check(struct testbus_proc *p, const char *path)
{
        char script[512];
        const char *argv[] = {"/bin/sh", "-c", script, NULL};

        ck_assert_int_lt(snprintf(script, sizeof(script), "exec " PROMTOOL " check metrics < '%s'", path), (int) sizeof(script));
        return run_program(p, argv);
}

/* ipcctl metrics [--format=F] into DIR/name; returns the text (malloc'd). */
static char *metrics_to_file(struct testbus *tb, const char *format, char *path, size_t size)
{
        struct testbus_proc p;
        char *text;

        snprintf(path, size, "%s/metrics-%s.txt", tb->dir, format ? format : "default");
        if (format) {
                char option[64];

                snprintf(option, sizeof(option), "--format=%s", format);
                ck_assert_int_eq(testbus_ipcctl(&p, tb, option, "metrics", NULL), 0);
        } else {
                ck_assert_int_eq(testbus_ipcctl(&p, tb, "metrics", NULL), 0);
        }
        ck_assert_str_eq(p.err.buf, "");
        testbus_write_text(path, p.out.buf);
        text = strdup(p.out.buf);
        testbus_proc_deinit(&p);
        return text;
}

/* ipcctl metrics: OpenMetrics that the strict parser takes and promtool finds no parse error in. */
START_TEST(test_metrics_openmetrics)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct testbus_proc p;
        char path[512], *text;
        const char *argv[] = {PYTHON, "-c", OPENMETRICS_CHECK, path, NULL};
        int r;

        testbus_service_start(tb, &svc, SERVICE);
        echo_traffic(tb);
        text = metrics_to_file(tb, NULL, path, sizeof(path));
        ck_assert_msg(strlen(text) > 6 && strcmp(text + strlen(text) - 6, "# EOF\n") == 0, "no # EOF at the end:\n%s",
                      text);
        ck_assert_msg(strstr(text, "\nipcbus_messages_total{type=\"call\"} "), "no call counter:\n%s", text);
        ck_assert_msg(strstr(text, "# TYPE ipcbus_messages counter\n"), "no counter family:\n%s", text);

        r = run_program(&p, argv);
        ck_assert_msg(r == 0, "the OpenMetrics parser refused it (exit %d):\n%s\n%s", r, p.err.buf, text);
        ck_assert_msg(strstr(p.out.buf, "ipcbus_messages counter\n"), "families:\n%s", p.out.buf);
        ck_assert_msg(strstr(p.out.buf, "ipcbus_connections gauge\n"), "families:\n%s", p.out.buf);
        testbus_proc_deinit(&p);

        /* 0, or 3 for the lint warnings promtool 2.42 gives OpenMetrics counters; 1 is a parse error */
        r = promtool_check(&p, path);
        ck_assert_msg(r == 0 || r == 3, "promtool check metrics: exit %d:\n%s%s", r, p.out.buf, p.err.buf);
        testbus_proc_deinit(&p);

        /* --format=openmetrics is the default */
        free(text);
        text = metrics_to_file(tb, "openmetrics", path, sizeof(path));
        ck_assert_msg(strstr(text, "# EOF\n"), "%s", text);
        free(text);
        testbus_child_finish(&svc);
}
END_TEST

/* ipcctl metrics --format=prometheus: the text format 0.0.4, clean for promtool. */
START_TEST(test_metrics_prometheus)
{
        struct testbus *tb = testbus_current();
        struct testbus_proc p;
        char path[512], *text;
        int r;

        text = metrics_to_file(tb, "prometheus", path, sizeof(path));
        ck_assert_ptr_null(strstr(text, "# EOF"));
        ck_assert_ptr_null(strstr(text, "# UNIT"));
        ck_assert_msg(strstr(text, "# TYPE ipcbus_messages_total counter\n"), "%s", text);
        r = promtool_check(&p, path);
        ck_assert_msg(r == 0, "promtool check metrics: exit %d:\n%s%s", r, p.out.buf, p.err.buf);
        testbus_proc_deinit(&p);
        free(text);

        ck_assert_int_eq(testbus_ipcctl(&p, tb, "--format=json", "metrics", NULL), 2);
        testbus_proc_deinit(&p);
        ck_assert_int_eq(testbus_ipcctl(&p, tb, "--format=prometheus", "list", NULL), 2);
        testbus_proc_deinit(&p);
}
END_TEST

/* ---- the metrics socket ------------------------------------------------------------- */

/* A connection to the Unix socket at path (asserting success). */
static int socket_connect(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        ck_assert_int_ge(fd, 0);
        ck_assert_uint_lt(strlen(path), sizeof(sa.sun_path));
        strcpy(sa.sun_path, path);
        ck_assert_msg(connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0, "connect %s: %s", path, strerror(errno));
        return fd;
}

/*
 * Read until the peer closes, at most timeout_ms. Returns what came
 * (malloc'd, NUL-terminated); *ret_closed tells whether the peer closed.
 */
static char *read_until_closed(int fd, int timeout_ms, bool *ret_closed)
{
        int64_t deadline = testbus_now_ms() + timeout_ms;
        size_t len = 0, cap = 4096;
        char *buf = malloc(cap + 1);

        ck_assert_ptr_nonnull(buf);
        *ret_closed = false;
        for (;;) {
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                int64_t left = deadline - testbus_now_ms();
                ssize_t n;

                if (left <= 0 || poll(&pfd, 1, (int) left) <= 0)
                        break;
                if (len == cap) {
                        cap *= 2;
                        buf = realloc(buf, cap + 1);
                        ck_assert_ptr_nonnull(buf);
                }
                n = read(fd, buf + len, cap - len);
                if (n < 0 && errno == ECONNRESET)
                        n = 0;
                ck_assert_int_ge(n, 0);
                if (n == 0) {
                        *ret_closed = true;
                        break;
                }
                len += (size_t) n;
        }
        buf[len] = '\0';
        return buf;
}

/* Send request on a new connection to path and return the whole answer (malloc'd), asserting the socket closes. */
static char *http_exchange(const char *path, const char *request)
{
        int fd = socket_connect(path);
        bool closed;
        char *answer;

        ck_assert_int_eq(write(fd, request, strlen(request)), (ssize_t) strlen(request));
        answer = read_until_closed(fd, TESTBUS_WAIT_MS * testbus_slow_factor(), &closed);
        ck_assert_msg(closed, "the metrics socket did not close after answering:\n%s", answer);
        close(fd);
        return answer;
}

/* The value of header `name` in an HTTP answer (static buffer), or NULL. */
static const char *http_header(const char *answer, const char *name)
{
        static char value[256];
        size_t n = strlen(name);

        for (const char *p = strstr(answer, "\r\n"); p && strncmp(p, "\r\n\r\n", 4) != 0; p = strstr(p + 2, "\r\n"))
                if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
                        const char *v = p + 2 + n + 1 + strspn(p + 2 + n + 1, " ");

                        snprintf(value, sizeof(value), "%.*s", (int) strcspn(v, "\r"), v);
                        return value;
                }
        return NULL;
}

/* The body of an HTTP answer. */
static const char *http_body(const char *answer)
{
        const char *p = strstr(answer, "\r\n\r\n");

        ck_assert_msg(p, "no end of the head in:\n%s", answer);
        return p + 4;
}

/* Start the broker with its metrics socket configured in DIR/metrics.sock; the path into path. */
static void start_with_metrics_socket(struct testbus *tb, char *path, size_t size)
{
        char dir[256], config[512];

        testbus_mkdtemp(dir, sizeof(dir), "metrics");
        ck_assert_int_lt(snprintf(path, size, "%s/metrics.sock", dir), (int) size);
        snprintf(config, sizeof(config), "{\"metrics_socket\": \"%s\"}", path);
        testbus_start_config(tb, config);
}

/* GET /metrics: the format the Accept header asks for, with its content type; other paths and methods refused. */
START_TEST(test_metrics_socket_http)
{
        struct testbus *tb = testbus_current();
        char path[256], *answer;
        const char *body, *length;
        struct stat st;

        start_with_metrics_socket(tb, path, sizeof(path));
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_msg(S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600, "mode %o", (unsigned) st.st_mode);

        /* what Prometheus sends: OpenMetrics first */
        answer = http_exchange(path,
                               "GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: "
                               "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n\r\n");
        ck_assert_msg(strncmp(answer, "HTTP/1.0 200 OK\r\n", 17) == 0, "%s", answer);
        ck_assert_str_eq(http_header(answer, "Content-Type"),
                         "application/openmetrics-text; version=1.0.0; charset=utf-8");
        body = http_body(answer);
        length = http_header(answer, "Content-Length");
        ck_assert_ptr_nonnull(length);
        ck_assert_uint_eq(strtoul(length, NULL, 10), strlen(body));
        ck_assert_msg(strstr(body, "ipcbus_messages_total{type=\"call\"}"), "%s", body);
        ck_assert_str_eq(body + strlen(body) - 6, "# EOF\n");
        free(answer);

        /* no Accept header naming OpenMetrics (curl asks for any type): the Prometheus text format, at / too */
        answer = http_exchange(path, "GET / HTTP/1.0\r\n\r\n");
        ck_assert_msg(strncmp(answer, "HTTP/1.0 200 OK\r\n", 17) == 0, "%s", answer);
        ck_assert_str_eq(http_header(answer, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
        body = http_body(answer);
        ck_assert_msg(strstr(body, "# TYPE ipcbus_messages_total counter\n"), "%s", body);
        ck_assert_ptr_null(strstr(body, "# EOF"));
        free(answer);

        answer = http_exchange(path, "GET /other HTTP/1.0\r\n\r\n");
        ck_assert_msg(strncmp(answer, "HTTP/1.0 404 ", 13) == 0, "%s", answer);
        free(answer);
        answer = http_exchange(path, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n");
        ck_assert_msg(strncmp(answer, "HTTP/1.0 405 ", 13) == 0, "%s", answer);
        free(answer);
        answer = http_exchange(path, "nonsense\r\n\r\n");
        ck_assert_msg(strncmp(answer, "HTTP/1.0 400 ", 13) == 0, "%s", answer);
        free(answer);
        testbus_log_expect(tb, "serving metrics on", path);
}
END_TEST

/*
 * A client that connects and says nothing is closed after the deadline;
 * meanwhile the bus answers its clients, and the scrapes past SCRAPE_MAX
 * are closed at once without an answer.
 */
START_TEST(test_metrics_socket_bounds)
{
        struct testbus *tb = testbus_current();
        char dir[256], path[256], option[300];
        const char *args[] = {option, NULL};
        const struct testbus_options o = {.args = args};
        int idle[SCRAPE_MAX], extra;
        ipcbus_bus *client;
        bool closed;
        char *got;

        testbus_mkdtemp(dir, sizeof(dir), "metrics");
        ck_assert_int_lt(snprintf(path, sizeof(path), "%s/metrics.sock", dir), (int) sizeof(path));
        snprintf(option, sizeof(option), "--metrics-socket=%s", path);
        testbus_start_with(tb, &o);

        for (int i = 0; i < SCRAPE_MAX; i++)
                idle[i] = socket_connect(path);
        /* every slot taken: a further scrape is closed unanswered */
        extra = socket_connect(path);
        /* (it may be closed before the request is even sent: EPIPE then) */
        (void) !send(extra, "GET /metrics HTTP/1.0\r\n\r\n", 25, MSG_NOSIGNAL);
        got = read_until_closed(extra, TESTBUS_WAIT_MS * testbus_slow_factor(), &closed);
        ck_assert_msg(closed && got[0] == '\0', "a scrape past %d was answered: %s", SCRAPE_MAX, got);
        free(got);
        close(extra);

        /* the bus goes on while the silent ones wait */
        client = testbus_connect(tb);
        for (int i = 0; i < 10; i++)
                json_object_put(testbus_driver(client, "GetId", NULL));

        /* then they are closed without an answer */
        for (int i = 0; i < SCRAPE_MAX; i++) {
                got = read_until_closed(idle[i], (SCRAPE_DEADLINE_MS + TESTBUS_WAIT_MS) * testbus_slow_factor(),
                                        &closed);
                ck_assert_msg(closed, "a silent client was not closed after the deadline");
                ck_assert_str_eq(got, "");
                free(got);
                close(idle[i]);
        }
        json_object_put(testbus_driver(client, "GetId", NULL));
        ipcbus_unref(client);

        /* and the slots are free again */
        got = http_exchange(path, "GET /metrics HTTP/1.0\r\n\r\n");
        ck_assert_msg(strncmp(got, "HTTP/1.0 200 OK\r\n", 17) == 0, "%s", got);
        free(got);
}
END_TEST

/* An invalid metrics_socket is refused when the configuration is read. */
START_TEST(test_metrics_socket_config)
{
        struct testbus_proc p;
        char dir[256], config[300];
        const char *argv[] = {testbus_program("IPCBUSD", "daemon/ipcbusd"), "--config", config, NULL};

        testbus_mkdtemp(dir, sizeof(dir), "config");
        snprintf(config, sizeof(config), "%s/config.json", dir);
        testbus_write_text(config, "{\"metrics_socket\": \"relative/metrics.sock\"}");
        ck_assert_int_eq(run_program(&p, argv), 1);
        ck_assert_msg(strstr(p.err.buf, "metrics_socket: expected an absolute path"), "%s", p.err.buf);
        testbus_proc_deinit(&p);
}
END_TEST

static Suite *tools_stats_suite(void)
{
        Suite *s = suite_create("tools_stats");
        TCase *tc;

        tc = testbus_tcase("ipcctl stats");
        tcase_add_test(tc, test_stats_after_traffic);
        tcase_add_test(tc, test_stats_table);
        tcase_add_test(tc, test_stats_name_and_json);
        suite_add_tcase(s, tc);

        tc = testbus_tcase("ipcctl metrics");
        tcase_add_test(tc, test_metrics_openmetrics);
        tcase_add_test(tc, test_metrics_prometheus);
        suite_add_tcase(s, tc);

        tc = testbus_tcase_bare("metrics socket");
        tcase_add_test(tc, test_metrics_socket_http);
        tcase_add_test(tc, test_metrics_socket_bounds);
        tcase_add_test(tc, test_metrics_socket_config);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return testbus_run_suite(tools_stats_suite());
}
