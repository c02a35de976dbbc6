/* SPDX-License-Identifier: MIT */
/*
 * ipcctl's commands over the broker's statistics (PROTOCOL.md 7.6): stats
 * (GetStats, GetConnectionStats) and metrics (GetMetrics, whose text the
 * broker renders: it is written out as it came).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/ipcctl.h"
#include "util/file.h"

/* /proc/PID/comm is at most 16 bytes; anything longer is not a command name. */
#define COMM_MAX 64

/*
 * Connect and call the driver's member with the body {key: value} (none when
 * value is NULL). Returns 0 with *ret the reply's body (the caller puts it),
 * or the exit status after saying why.
 */
static int stats_call(struct ctl *c, const char *member, const char *key, const char *value, struct json_object **ret)
{
        _cleanup_(ipcbus_error_freep) ipcbus_error e = IPCBUS_ERROR_NULL;
        _cleanup_(json_object_putp) struct json_object *body = NULL;
        int r;

        if (value) {
                body = json_object_new_object();
                if (!body || json_object_object_add(body, key, json_object_new_string(value)) < 0)
                        return ctl_fail("%s", strerror(ENOMEM));
        }
        r = ctl_connect(c);
        if (r != 0)
                return r;
        r = ctl_call_json(c, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE, member, body, ret, &e);
        return r < 0 ? ctl_call_failed(member, r, &e) : 0;
}

/* ---- human forms of numbers ------------------------------------------------ */

/* A duration in milliseconds as "850ms", "42s", "3m 05s", "2h 07m", "4d 03h". */
static void human_duration(uint64_t ms, char *buf, size_t size)
{
        uint64_t s = ms / 1000;

        if (ms < 1000)
                snprintf(buf, size, "%" PRIu64 "ms", ms);
        else if (s < 60)
                snprintf(buf, size, "%" PRIu64 "s", s);
        else if (s < 3600)
                snprintf(buf, size, "%" PRIu64 "m %02" PRIu64 "s", s / 60, s % 60);
        else if (s < 86400)
                snprintf(buf, size, "%" PRIu64 "h %02" PRIu64 "m", s / 3600, s / 60 % 60);
        else
                snprintf(buf, size, "%" PRIu64 "d %02" PRIu64 "h", s / 86400, s / 3600 % 24);
}

/* The integer member `key` of obj, or 0 when absent or not a non-negative integer. */
static uint64_t json_uint(struct json_object *obj, const char *key)
{
        struct json_object *v = ctl_json_get(obj, key, json_type_int);
        int64_t n = v ? json_object_get_int64(v) : 0;

        return n > 0 ? (uint64_t) n : 0;
}

/*
 * The command name of process pid from /proc/PID/comm, made printable
 * (caller frees), or NULL when it cannot be read (gone, another user's under
 * hidepid, pid unknown).
 */
static char *comm_read(int64_t pid)
{
        _cleanup_(freep) char *text = NULL;
        char path[64];
        size_t len = 0;

        if (pid <= 0)
                return NULL;
        snprintf(path, sizeof(path), "/proc/%" PRId64 "/comm", pid);
        if (file_read_text(path, COMM_MAX, &text, &len) < 0)
                return NULL;
        while (len > 0 && text[len - 1] == '\n')
                len--;
        return len > 0 ? format_sanitize(text, len) : NULL;
}

/* ---- key value blocks ---------------------------------------------------------- */

/*
 * Write a value on one line: integers as they are (with a human form after
 * byte counts and durations), maps as "k=v k=v", arrays joined by spaces,
 * null and empty maps or arrays as "-".
 */
static void put_value(FILE *f, const char *key, struct json_object *v)
{
        char human[32];
        size_t klen = strlen(key);
        bool first = true;

        switch (v ? json_object_get_type(v) : json_type_null) {
        case json_type_int:
                fputs(json_object_get_string(v), f);
                if (strstr(key, "bytes") && json_object_get_int64(v) >= 1024) {
                        format_bytes(human, sizeof(human), (double) json_object_get_int64(v));
                        fprintf(f, " (%s)", human);
                } else if (klen > 3 && strcmp(key + klen - 3, "_ms") == 0 && json_object_get_int64(v) >= 1000) {
                        human_duration((uint64_t) json_object_get_int64(v), human, sizeof(human));
                        fprintf(f, " (%s)", human);
                }
                break;
        case json_type_object: {
                json_object_object_foreach(v, k, item)
                {
                        fprintf(f, "%s%s=%s", first ? "" : " ", k, item ? json_object_get_string(item) : "-");
                        first = false;
                }
                if (first)
                        fputc('-', f);
                break;
        }
        case json_type_array:
                for (size_t i = 0; i < json_object_array_length(v); i++)
                        fprintf(f, "%s%s", i ? " " : "", json_object_get_string(json_object_array_get_idx(v, i)));
                if (json_object_array_length(v) == 0)
                        fputc('-', f);
                break;
        case json_type_null:
                fputc('-', f);
                break;
        case json_type_string: {
                _cleanup_(freep) char *s = format_sanitize(json_object_get_string(v), json_object_get_string_len(v));

                fputs(s ? s : "?", f);
                break;
        }
        default:
                fputs(json_object_get_string(v), f);
                break;
        }
        fputc('\n', f);
}

/*
 * Every member of obj as an aligned "key  value" line. comm, when not NULL,
 * is shown as a "comm" line after "pid" (it is the tool's, not the broker's).
 */
static void print_block(struct json_object *obj, const char *comm)
{
        int width = comm ? (int) strlen("comm") : 0;

        json_object_object_foreach(obj, key, val)
        {
                (void) val;
                if ((int) strlen(key) > width)
                        width = (int) strlen(key);
        }
        json_object_object_foreach(obj, k, v)
        {
                printf("%-*s  ", width, k);
                put_value(stdout, k, v);
                if (comm && strcmp(k, "pid") == 0)
                        printf("%-*s  %s\n", width, "comm", comm);
        }
}

/* ---- the connections table ---------------------------------------------------- */

enum { COL_NAME, COL_UID, COL_PID, COL_COMM, COL_MSGS, COL_BYTES, COL_QUEUED, COL_PENDING, COL_HELD, _COL_MAX };

struct conn_row {
        const char *unique; /* for sorting; belongs to the reply */
        char *col[_COL_MAX];
};

static void conn_rows_free(struct conn_row *rows, size_t n)
{
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < _COL_MAX; j++)
                        free(rows[i].col[j]);
        free(rows);
}

static int conn_row_compare(const void *x, const void *y)
{
        const struct conn_row *a = x, *b = y;

        return ctl_unique_name_compare(a->unique, b->unique);
}

/* ":1.4 (org.example.Notes,org.example.Other)", ":1.7 (monitor)" or ":1.9"; caller frees. */
static char *conn_name_cell(struct json_object *conn, const char *unique)
{
        struct json_object *names = ctl_json_get(conn, "names", json_type_array);
        struct json_object *monitor = ctl_json_get(conn, "monitor", json_type_boolean);
        size_t n = names ? json_object_array_length(names) : 0;
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);

        if (!f)
                return NULL;
        fputs(unique, f);
        if (monitor && json_object_get_boolean(monitor))
                fputs(" (monitor)", f);
        for (size_t i = 0; i < n; i++)
                fprintf(f, "%s%s", i ? "," : " (", json_object_get_string(json_object_array_get_idx(names, i)));
        if (n > 0)
                fputc(')', f);
        if (fclose(f) != 0) {
                free(text);
                return NULL;
        }
        return text;
}

/* "A/B" of two counts, as bytes in human form when bytes. */
static char *pair_cell(struct json_object *conn, const char *in, const char *out, bool bytes)
{
        char a[32], b[32], *s;

        if (bytes) {
                format_bytes(a, sizeof(a), (double) json_uint(conn, in));
                format_bytes(b, sizeof(b), (double) json_uint(conn, out));
        } else {
                snprintf(a, sizeof(a), "%" PRIu64, json_uint(conn, in));
                snprintf(b, sizeof(b), "%" PRIu64, json_uint(conn, out));
        }
        return asprintf(&s, "%s/%s", a, b) < 0 ? NULL : s;
}

static char *int_cell(struct json_object *conn, const char *key)
{
        struct json_object *v = ctl_json_get(conn, key, json_type_int);

        return strdup(v ? json_object_get_string(v) : "-");
}

/* Fill row from one CONN object. Returns 0 or -ENOMEM. */
static int conn_row_fill(struct conn_row *row, struct json_object *conn)
{
        struct json_object *unique = ctl_json_get(conn, "unique_name", json_type_string);
        struct json_object *pid = ctl_json_get(conn, "pid", json_type_int);
        char queued[32];

        row->unique = unique ? json_object_get_string(unique) : ":?";
        format_bytes(queued, sizeof(queued), (double) json_uint(conn, "queued_bytes"));
        row->col[COL_NAME] = conn_name_cell(conn, row->unique);
        row->col[COL_UID] = int_cell(conn, "uid");
        row->col[COL_PID] = int_cell(conn, "pid");
        row->col[COL_COMM] = comm_read(pid ? json_object_get_int64(pid) : 0);
        if (!row->col[COL_COMM])
                row->col[COL_COMM] = strdup("-");
        row->col[COL_MSGS] = pair_cell(conn, "messages_in", "messages_out", false);
        row->col[COL_BYTES] = pair_cell(conn, "bytes_in", "bytes_out", true);
        row->col[COL_QUEUED] = strdup(queued);
        row->col[COL_PENDING] = int_cell(conn, "pending_calls");
        row->col[COL_HELD] = int_cell(conn, "held_back");
        for (size_t j = 0; j < _COL_MAX; j++)
                if (!row->col[j])
                        return -ENOMEM;
        return 0;
}

/* The table of the connections, sorted by unique name; NAME and COMM left-aligned, numbers right-aligned. */
static void conn_table_print(const struct conn_row *rows, size_t n)
{
        static const char *const header[_COL_MAX] = {"NAME",         "UID",    "PID",     "COMM", "MSGS IN/OUT",
                                                     "BYTES IN/OUT", "QUEUED", "PENDING", "HELD"};
        int width[_COL_MAX];

        for (size_t j = 0; j < _COL_MAX; j++) {
                width[j] = (int) strlen(header[j]);
                for (size_t i = 0; i < n; i++)
                        if ((int) strlen(rows[i].col[j]) > width[j])
                                width[j] = (int) strlen(rows[i].col[j]);
        }
        for (size_t i = 0; i <= n; i++) {
                const char *const *col = i == 0 ? header : (const char *const *) rows[i - 1].col;

                for (size_t j = 0; j < _COL_MAX; j++) {
                        bool left = j == COL_NAME || j == COL_COMM;

                        printf(left ? "%-*s" : "%*s", width[j], col[j]);
                        fputs(j + 1 < _COL_MAX ? "  " : "\n", stdout);
                }
        }
}

/* Print the connections of a GetStats reply. Returns 0 or -ENOMEM. */
static int conn_table(struct json_object *conns)
{
        size_t n = conns ? json_object_array_length(conns) : 0, k = 0;
        struct conn_row *rows = calloc(n ? n : 1, sizeof(*rows));
        int r = 0;

        if (!rows)
                return -ENOMEM;
        for (size_t i = 0; r == 0 && i < n; i++) {
                struct json_object *conn = json_object_array_get_idx(conns, i);

                if (!json_object_is_type(conn, json_type_object))
                        continue;
                r = conn_row_fill(&rows[k++], conn);
        }
        if (r == 0) {
                qsort(rows, k, sizeof(*rows), conn_row_compare);
                conn_table_print(rows, k);
        }
        conn_rows_free(rows, k);
        return r;
}

/* ---- stats, metrics ------------------------------------------------------------- */

/* ipcctl stats NAME: GetConnectionStats, one figure a line. */
static int stats_connection(struct ctl *c, const char *name)
{
        _cleanup_(json_object_putp) struct json_object *reply = NULL;
        _cleanup_(freep) char *comm = NULL;
        int r;

        r = stats_call(c, "GetConnectionStats", "name", name, &reply);
        if (r != 0)
                return r;
        if (c->json) {
                puts(format_json_string(reply, true));
                return 0;
        }
        comm = comm_read((int64_t) json_uint(reply, "pid"));
        print_block(reply, comm ? comm : "-");
        return 0;
}

/* ipcctl stats: GetStats, the bus's totals and then the connections the caller may see. */
static int stats_bus(struct ctl *c)
{
        _cleanup_(json_object_putp) struct json_object *reply = NULL;
        struct json_object *bus;
        int r;

        r = stats_call(c, "GetStats", NULL, NULL, &reply);
        if (r != 0)
                return r;
        if (c->json) {
                puts(format_json_string(reply, true));
                return 0;
        }
        bus = ctl_json_get(reply, "bus", json_type_object);
        if (!bus)
                return ctl_fail("GetStats: the reply has no bus object");
        print_block(bus, NULL);
        putchar('\n');
        if (conn_table(ctl_json_get(reply, "connections", json_type_array)) < 0)
                return ctl_fail("%s", strerror(ENOMEM));
        return 0;
}

int cmd_stats(struct ctl *c, int argc, char **argv)
{
        int r;

        if (argc > 2)
                return ctl_usage_error("stats takes at most a NAME");
        r = argc == 2 ? ctl_check_bus_name(argv[1]) : 0;
        if (r != 0)
                return r;
        return argc == 2 ? stats_connection(c, argv[1]) : stats_bus(c);
}

int cmd_metrics(struct ctl *c, int argc, char **argv)
{
        _cleanup_(json_object_putp) struct json_object *reply = NULL;
        struct json_object *text;
        int r;

        (void) argv;
        if (argc != 1)
                return ctl_usage_error("metrics takes no arguments");
        if (c->format && strcmp(c->format, "openmetrics") != 0 && strcmp(c->format, "prometheus") != 0)
                return ctl_usage_error("invalid format '%s' (openmetrics or prometheus expected)", c->format);
        r = stats_call(c, "GetMetrics", "format", c->format, &reply);
        if (r != 0)
                return r;
        text = ctl_json_get(reply, "text", json_type_string);
        if (!text)
                return ctl_fail("GetMetrics: the reply has no text");
        /* exactly as the broker rendered it: scrapers parse it strictly */
        fwrite(json_object_get_string(text), 1, (size_t) json_object_get_string_len(text), stdout);
        return 0;
}
