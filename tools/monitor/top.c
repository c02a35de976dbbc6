/* SPDX-License-Identifier: MIT */
/*
 * ipc-monitor --top (see top.h): per-interval tables of senders,
 * destinations and members counted from the monitor's events, the slowest
 * members by the latency pairing measured, and the connections with the
 * deepest queues from GetStats.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "tools/format.h"
#include "tools/monitor/pairing.h"
#include "tools/monitor/top.h"
#include "util/clock.h"
#include "util/map.h"

/* Distinct keys one table counts per interval; the rest are counted under "(other)". */
#define TOP_ROWS_MAX 4096
/* Rows of each table in --once (a terminal shows what fits). */
#define TOP_ONCE_ROWS 20
#define TOP_STATS_TIMEOUT_USEC (2 * 1000000u)

/* What one key (a sender, a destination, a member) did in the current interval. */
struct top_row {
        struct map_node node;
        char *key;
        char comm[16]; /* senders: the command name */
        uint64_t msgs, bytes, errors;
        uint64_t answered, latency_sum_usec, latency_max_usec; /* members: their calls' answers */
};

struct top_table {
        struct map rows;
        struct top_row other; /* beyond TOP_ROWS_MAX */
};

enum top_sort { TOP_SORT_MSGS, TOP_SORT_BYTES, TOP_SORT_ERRORS, TOP_SORT_LATENCY };

static const char *const sort_names[] = {"messages", "bytes", "errors", "latency"};

struct top {
        struct top_options o;
        struct top_table senders, destinations, members;
        uint64_t msgs, bytes, errors, lost; /* this interval (lost: copies the bus dropped) */
        uint64_t window_usec;               /* CLOCK_MONOTONIC when the interval began */
        struct json_object *stats;          /* the last GetStats result, or NULL */
        char stats_error[128];              /* why there is none */
        ipcbus_slot *stats_call;            /* a GetStats under way */
        enum top_sort sort;
        bool tty;
        bool raw; /* stdin put in raw mode (keys), saved_termios to restore */
        struct termios saved_termios;
};

static bool row_eq(const struct map_node *node, const void *key)
{
        return strcmp(container_of(node, struct top_row, node)->key, key) == 0;
}

static void table_init(struct top_table *tab)
{
        map_init(&tab->rows);
        tab->other = (struct top_row){.key = (char *) "(other)"};
}

static void row_free(struct top_row *row)
{
        free(row->key);
        free(row);
}

/* Forget every row (the interval is over) and its counts. */
static void table_reset(struct top_table *tab)
{
        for (struct map_node *n = map_first(&tab->rows), *next; n; n = next) {
                next = map_next(&tab->rows, n);
                map_remove(&tab->rows, n);
                row_free(container_of(n, struct top_row, node));
        }
        tab->other = (struct top_row){.key = tab->other.key};
}

static void table_deinit(struct top_table *tab)
{
        table_reset(tab);
        map_deinit(&tab->rows);
}

/* The row of key, made when new; "(other)" when the table is full or memory is short. */
static struct top_row *table_row(struct top_table *tab, const char *key)
{
        uint64_t hash = map_hash_string(key);
        struct map_node *n = map_find(&tab->rows, hash, row_eq, key);
        struct top_row *row;

        if (n)
                return container_of(n, struct top_row, node);
        if (map_size(&tab->rows) >= TOP_ROWS_MAX)
                return &tab->other;
        row = calloc(1, sizeof(*row));
        if (!row || !(row->key = strdup(key)) || map_add(&tab->rows, &row->node, hash) < 0) {
                if (row)
                        free(row->key);
                free(row);
                return &tab->other;
        }
        return row;
}

int top_new(const struct top_options *o, struct top **ret)
{
        struct top *t = calloc(1, sizeof(*t));

        if (!t)
                return -ENOMEM;
        t->o = *o;
        table_init(&t->senders);
        table_init(&t->destinations);
        table_init(&t->members);
        t->tty = !o->once && isatty(STDOUT_FILENO);
        t->window_usec = clock_now_usec(CLOCK_MONOTONIC);
        snprintf(t->stats_error, sizeof(t->stats_error), "waiting for the broker's statistics");
        *ret = t;
        return 0;
}

struct top *top_free(struct top *t)
{
        if (!t)
                return NULL;
        table_deinit(&t->senders);
        table_deinit(&t->destinations);
        table_deinit(&t->members);
        if (t->stats)
                json_object_put(t->stats);
        ipcbus_slot_unref(t->stats_call);
        free(t);
        return NULL;
}

/* "interface.member" (or just the member) into buf. */
static const char *member_key(char *buf, size_t size, const char *interface, const char *member)
{
        snprintf(buf, size, "%s%s%s", interface ? interface : "", interface ? "." : "", member ? member : "-");
        return buf;
}

void top_feed(struct top *t, const struct mon_event *ev)
{
        const struct msg_header *h = &ev->msg->h;
        uint64_t bytes = ev->msg->size;
        bool error = h->type == MSG_ERROR;
        struct top_row *row;
        char key[512];

        t->msgs++;
        t->bytes += bytes;
        t->errors += error;
        t->lost += mon_event_lost(ev);

        row = table_row(&t->senders, h->sender ? h->sender : "-");
        row->msgs++;
        row->bytes += bytes;
        row->errors += error;
        if (!row->comm[0])
                memcpy(row->comm, ev->comm, sizeof(row->comm));

        row = table_row(&t->destinations, h->destination ? h->destination : "*");
        row->msgs++;
        row->bytes += bytes;
        row->errors += error;

        if (h->type == MSG_CALL || h->type == MSG_SIGNAL) {
                row = table_row(&t->members, member_key(key, sizeof(key), h->interface, h->member));
                row->msgs++;
                row->bytes += bytes;
        } else if (ev->call) {
                /* an answer: its call's member waited latency_usec for it */
                row = table_row(&t->members, member_key(key, sizeof(key), ev->call->interface, ev->call->member));
                row->errors += error;
                row->answered++;
                row->latency_sum_usec += ev->latency_usec;
                if (ev->latency_usec > row->latency_max_usec)
                        row->latency_max_usec = ev->latency_usec;
        }
}

/* ---- the broker's statistics ----------------------------------------------------------- */

static int64_t json_int(struct json_object *obj, const char *key)
{
        struct json_object *v;

        if (!obj || !json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_int))
                return 0;
        return json_object_get_int64(v);
}

static struct json_object *json_member(struct json_object *obj, const char *key, enum json_type type)
{
        struct json_object *v;

        if (!obj || !json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, type))
                return NULL;
        return v;
}

/* Keep a GetStats answer (or say why there is none). */
static void top_take_stats(struct top *t, ipcbus_message *reply, const ipcbus_error *error)
{
        struct json_object *obj = NULL;

        if (error && ipcbus_error_is_set(error)) {
                snprintf(t->stats_error, sizeof(t->stats_error), "no statistics: %s", error->name);
                return;
        }
        if (ipcbus_message_get_json(reply, &obj) < 0 || !json_object_is_type(obj, json_type_object)) {
                if (obj)
                        json_object_put(obj);
                snprintf(t->stats_error, sizeof(t->stats_error), "no statistics: the answer is not an object");
                return;
        }
        if (t->stats)
                json_object_put(t->stats);
        t->stats = obj;
}

static int top_on_stats(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct top *t = userdata;
        _cleanup_(ipcbus_error_freep) ipcbus_error error = IPCBUS_ERROR_NULL;

        t->stats_call = ipcbus_slot_unref(t->stats_call);
        if (ipcbus_message_get_type(m) == IPCBUS_MESSAGE_ERROR)
                ipcbus_message_get_error(m, &error);
        top_take_stats(t, m, &error);
        return 1;
}

/* Ask for GetStats without waiting, unless an answer is still due. */
static void top_ask_stats(struct top *t, ipcbus_bus *stats)
{
        int r;

        if (t->stats_call)
                return;
        r = ipcbus_call_async(stats, &t->stats_call, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE,
                              "GetStats", "{}", TOP_STATS_TIMEOUT_USEC, top_on_stats, t);
        if (r < 0)
                snprintf(t->stats_error, sizeof(t->stats_error), "no statistics: %s", ipcbus_strerror(r));
}

/* Ask for GetStats and wait (--once). */
static void top_wait_stats(struct top *t, ipcbus_bus *stats)
{
        _cleanup_(ipcbus_message_unrefp) ipcbus_message *reply = NULL;
        _cleanup_(ipcbus_error_freep) ipcbus_error error = IPCBUS_ERROR_NULL;
        int r;

        r = ipcbus_call(stats, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE, "GetStats", "{}",
                        TOP_STATS_TIMEOUT_USEC, &reply, &error);
        if (r < 0 && !ipcbus_error_is_set(&error))
                snprintf(t->stats_error, sizeof(t->stats_error), "no statistics: %s", ipcbus_strerror(r));
        else
                top_take_stats(t, reply, &error);
}

/* The GetStats entry of a unique name, or NULL. */
static struct json_object *stats_connection(struct top *t, const char *unique_name)
{
        struct json_object *conns = json_member(t->stats, "connections", json_type_array);

        for (size_t i = 0, n = conns ? json_object_array_length(conns) : 0; i < n; i++) {
                struct json_object *c = json_object_array_get_idx(conns, i);
                struct json_object *name = json_member(c, "unique_name", json_type_string);

                if (name && strcmp(json_object_get_string(name), unique_name) == 0)
                        return c;
        }
        return NULL;
}

/* ---- drawing ------------------------------------------------------------------------ */

/* A rate as a short human figure: 0.5, 999.0, 12.3K, 4.5M, 6.7G. */
static const char *top_rate(char *buf, size_t size, double v)
{
        static const char units[] = " KMGT";
        size_t u = 0;

        while (v >= 999.95 && u + 1 < sizeof(units) - 1) {
                v /= 1000.0;
                u++;
        }
        if (u == 0)
                snprintf(buf, size, "%.1f", v);
        else
                snprintf(buf, size, "%.1f%c", v, units[u]);
        return buf;
}

static uint64_t row_latency_avg(const struct top_row *r)
{
        return r->answered ? r->latency_sum_usec / r->answered : 0;
}

static enum top_sort qsort_key;

static int row_cmp(const void *a, const void *b)
{
        const struct top_row *x = *(const struct top_row *const *) a, *y = *(const struct top_row *const *) b;
        uint64_t vx, vy;

        switch (qsort_key) {
        case TOP_SORT_BYTES:
                vx = x->bytes, vy = y->bytes;
                break;
        case TOP_SORT_ERRORS:
                vx = x->errors, vy = y->errors;
                break;
        case TOP_SORT_LATENCY:
                vx = x->latency_max_usec, vy = y->latency_max_usec;
                break;
        default:
                vx = x->msgs, vy = y->msgs;
        }
        if (vx != vy)
                return vx < vy ? 1 : -1;
        return strcmp(x->key, y->key);
}

/* The table's rows (and "(other)" when it counted anything) sorted by key; *ret_n of them. Caller frees. */
static struct top_row **table_sorted(struct top_table *tab, enum top_sort sort, size_t *ret_n)
{
        size_t n = 0, cap = map_size(&tab->rows) + 1;
        struct top_row **rows = calloc(cap, sizeof(*rows));

        if (!rows) {
                *ret_n = 0;
                return NULL;
        }
        for (struct map_node *node = map_first(&tab->rows); node; node = map_next(&tab->rows, node))
                rows[n++] = container_of(node, struct top_row, node);
        if (tab->other.msgs || tab->other.answered)
                rows[n++] = &tab->other;
        qsort_key = sort;
        qsort(rows, n, sizeof(*rows), row_cmp);
        *ret_n = n;
        return rows;
}

/*
 * A connection's label: its unique name, well-known names (from GetStats) or
 * "monitor", and command (comm: "" unknown).
 */
static const char *connection_label(struct top *t, const char *unique_name, const char *comm, char *buf, size_t size)
{
        struct json_object *conn = stats_connection(t, unique_name);
        struct json_object *names = json_member(conn, "names", json_type_array);
        struct json_object *monitor = json_member(conn, "monitor", json_type_boolean);
        size_t len = (size_t) snprintf(buf, size, "%s%s", unique_name,
                                       monitor && json_object_get_boolean(monitor) ? " monitor" : "");

        for (size_t i = 0, n = names ? json_object_array_length(names) : 0; i < n && len < size; i++)
                len += (size_t) snprintf(buf + len, size - len, " %s",
                                         json_object_get_string(json_object_array_get_idx(names, i)));
        if (comm[0] && len < size)
                snprintf(buf + len, size - len, " (%s)", comm);
        return buf;
}

struct top_screen {
        FILE *f;
        double secs;     /* the interval's length */
        size_t max_rows; /* rows per table */
        int width;       /* of the name column */
};

static void draw_traffic(struct top *t, struct top_screen *s, struct top_table *tab, const char *title, bool senders)
{
        size_t n;
        _cleanup_(freep) struct top_row **rows =
                table_sorted(tab, t->sort == TOP_SORT_LATENCY ? TOP_SORT_MSGS : t->sort, &n);
        char name[256], a[16], b[16], c[16];

        fprintf(s->f, "\n%-*s %9s %9s %7s\n", s->width, title, "MSG/S", "BYTES/S", "ERR/S");
        for (size_t i = 0; i < n && i < s->max_rows; i++) {
                const char *label =
                        senders ? connection_label(t, rows[i]->key, rows[i]->comm, name, sizeof(name)) : rows[i]->key;
                _cleanup_(freep) char *safe = format_sanitize(label, strlen(label));

                fprintf(s->f, "%-*.*s %9s %9s %7s\n", s->width, s->width, safe ? safe : "?",
                        top_rate(a, sizeof(a), (double) rows[i]->msgs / s->secs),
                        format_bytes(b, sizeof(b), (double) rows[i]->bytes / s->secs),
                        top_rate(c, sizeof(c), (double) rows[i]->errors / s->secs));
        }
        if (n == 0)
                fprintf(s->f, "(nothing)\n");
}

/* Write text right-aligned in width columns (text is UTF-8: "µs" is two bytes, one column). */
static void put_right(FILE *f, const char *text, int width)
{
        int cols = 0;

        for (const char *p = text; *p; p++)
                cols += ((unsigned char) *p & 0xC0) != 0x80;
        fprintf(f, " %*s%s", width > cols ? width - cols : 0, "", text);
}

static void draw_members(struct top *t, struct top_screen *s, const char *title, enum top_sort sort)
{
        size_t n, shown = 0;
        _cleanup_(freep) struct top_row **rows = table_sorted(&t->members, sort, &n);
        char a[16], b[16], avg[32], max[32];

        fprintf(s->f, "\n%-*s %9s %7s %7s %10s %10s\n", s->width, title, "MSG/S", "ERR/S", "ANSWERS", "AVG", "MAX");
        for (size_t i = 0; i < n && shown < s->max_rows; i++) {
                _cleanup_(freep) char *safe = NULL;

                if (sort == TOP_SORT_LATENCY && rows[i]->answered == 0)
                        break;
                safe = format_sanitize(rows[i]->key, strlen(rows[i]->key));
                if (rows[i]->answered) {
                        format_duration(avg, sizeof(avg), row_latency_avg(rows[i]));
                        format_duration(max, sizeof(max), rows[i]->latency_max_usec);
                } else {
                        snprintf(avg, sizeof(avg), "-");
                        snprintf(max, sizeof(max), "-");
                }
                fprintf(s->f, "%-*.*s %9s %7s %7" PRIu64, s->width, s->width, safe ? safe : "?",
                        top_rate(a, sizeof(a), (double) rows[i]->msgs / s->secs),
                        top_rate(b, sizeof(b), (double) rows[i]->errors / s->secs), rows[i]->answered);
                put_right(s->f, avg, 10);
                put_right(s->f, max, 10);
                fputc('\n', s->f);
                shown++;
        }
        if (shown == 0)
                fprintf(s->f, "(nothing)\n");
}

static int queue_cmp(const void *a, const void *b)
{
        int64_t x = json_int(*(struct json_object *const *) a, "queued_bytes");
        int64_t y = json_int(*(struct json_object *const *) b, "queued_bytes");

        if (x != y)
                return x < y ? 1 : -1;
        return 0;
}

/* The connections GetStats showed, deepest queue first. */
static void draw_queues(struct top *t, struct top_screen *s)
{
        struct json_object *conns = json_member(t->stats, "connections", json_type_array);
        size_t n = conns ? json_object_array_length(conns) : 0;
        _cleanup_(freep) struct json_object **sorted = n ? calloc(n, sizeof(*sorted)) : NULL;
        char a[16], label[256];

        fprintf(s->f, "\n%-*s %9s %9s %5s %7s %6s\n", s->width, "QUEUES", "MSGS", "BYTES", "FDS", "PENDING", "HELD");
        if (!conns) {
                fprintf(s->f, "(%s)\n", t->stats_error);
                return;
        }
        if (n && !sorted)
                return;
        for (size_t i = 0; i < n; i++)
                sorted[i] = json_object_array_get_idx(conns, i);
        qsort(sorted, n, sizeof(*sorted), queue_cmp);
        for (size_t i = 0; i < n && i < s->max_rows; i++) {
                struct json_object *name = json_member(sorted[i], "unique_name", json_type_string);
                _cleanup_(freep) char *safe = NULL;

                const char *unique = name ? json_object_get_string(name) : "?";
                struct map_node *sent = map_find(&t->senders.rows, map_hash_string(unique), row_eq, unique);

                connection_label(t, unique, sent ? container_of(sent, struct top_row, node)->comm : "", label,
                                 sizeof(label));
                safe = format_sanitize(label, strlen(label));
                fprintf(s->f, "%-*.*s %9" PRId64 " %9s %5" PRId64 " %7" PRId64 " %6" PRId64 "\n", s->width, s->width,
                        safe ? safe : "?", json_int(sorted[i], "queued_messages"),
                        format_bytes(a, sizeof(a), (double) json_int(sorted[i], "queued_bytes")),
                        json_int(sorted[i], "queued_fds"), json_int(sorted[i], "pending_calls"),
                        json_int(sorted[i], "held_back"));
        }
}

/* Rows per table that fit the terminal: the title lines, then five tables with a title and a blank line each. */
static size_t top_rows_fitting(void)
{
        struct winsize ws;
        size_t height = 24;

        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0)
                height = ws.ws_row;
        return height > 3 + 5 * 3 ? (height - 3 - 5 * 3) / 5 : 1;
}

static void top_draw(struct top *t, size_t in_flight)
{
        struct top_screen s = {.f = stdout, .width = 40};
        struct json_object *bus = json_member(t->stats, "bus", json_type_object);
        uint64_t now = clock_now_usec(CLOCK_MONOTONIC);
        char a[16], b[16], c[16], queued[16];
        time_t wall = time(NULL);
        struct tm tm;

        s.secs = now > t->window_usec ? (double) (now - t->window_usec) / 1e6 : 1e-6;
        s.max_rows = t->tty ? top_rows_fitting() : TOP_ONCE_ROWS;
        localtime_r(&wall, &tm);
        if (t->tty)
                fputs("\033[H\033[2J", s.f);
        fprintf(s.f, "ipc-monitor --top  %s  %02d:%02d:%02d  sort: %s%s\n", t->o.what, tm.tm_hour, tm.tm_min, tm.tm_sec,
                sort_names[t->sort], t->tty ? "  (keys: m b e l to sort, q to quit)" : "");
        fprintf(s.f, "%s msg/s  %s/s  %s err/s  %zu calls in flight  %" PRIu64 " copies lost",
                top_rate(a, sizeof(a), (double) t->msgs / s.secs),
                format_bytes(b, sizeof(b), (double) t->bytes / s.secs),
                top_rate(c, sizeof(c), (double) t->errors / s.secs), in_flight, t->lost);
        if (bus)
                fprintf(s.f, "  %" PRId64 " connections  %" PRId64 " pending  %s queued", json_int(bus, "connections"),
                        json_int(bus, "pending_calls"),
                        format_bytes(queued, sizeof(queued), (double) json_int(bus, "queued_bytes")));
        fputc('\n', s.f);
        draw_traffic(t, &s, &t->senders, "SENDER", true);
        draw_traffic(t, &s, &t->destinations, "DESTINATION", false);
        draw_members(t, &s, "MEMBER", t->sort);
        draw_members(t, &s, "SLOWEST", TOP_SORT_LATENCY);
        draw_queues(t, &s);
        fflush(s.f);
}

/* Start a new interval. */
static void top_reset(struct top *t)
{
        table_reset(&t->senders);
        table_reset(&t->destinations);
        table_reset(&t->members);
        t->msgs = t->bytes = t->errors = t->lost = 0;
        t->window_usec = clock_now_usec(CLOCK_MONOTONIC);
}

/* ---- the loop ------------------------------------------------------------------------ */

static void top_keys_begin(struct top *t)
{
        struct termios raw;

        if (!t->tty || !isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &t->saved_termios) < 0)
                return;
        raw = t->saved_termios;
        raw.c_lflag &= (tcflag_t) ~(ICANON | ECHO); /* ISIG stays: Ctrl-C still quits */
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
                t->raw = true;
        fputs("\033[?1049h\033[?25l", stdout); /* the alternate screen, no cursor */
}

static void top_keys_end(struct top *t)
{
        if (t->tty)
                fputs("\033[?25h\033[?1049l", stdout);
        fflush(stdout);
        if (t->raw)
                tcsetattr(STDIN_FILENO, TCSANOW, &t->saved_termios);
        t->raw = false;
}

/* Act on the keys typed. Returns true for q. */
static bool top_read_keys(struct top *t)
{
        char keys[32];
        ssize_t n = read(STDIN_FILENO, keys, sizeof(keys));

        for (ssize_t i = 0; i < n; i++) {
                switch (keys[i]) {
                case 'q':
                        return true;
                case 'm':
                        t->sort = TOP_SORT_MSGS;
                        break;
                case 'b':
                        t->sort = TOP_SORT_BYTES;
                        break;
                case 'e':
                        t->sort = TOP_SORT_ERRORS;
                        break;
                case 'l':
                        t->sort = TOP_SORT_LATENCY;
                        break;
                }
        }
        return false;
}

/* Run both connections' work; a negative errno when one went away. */
static int top_process(ipcbus_bus *bus)
{
        for (unsigned n = 0; n < 256; n++) {
                int r = ipcbus_process(bus);

                if (r <= 0)
                        return r;
        }
        return 0;
}

/* The earlier of deadline and a bus's own timeout. */
static uint64_t earliest(uint64_t deadline, ipcbus_bus *bus)
{
        uint64_t t = UINT64_MAX;

        ipcbus_get_timeout(bus, &t);
        return t < deadline ? t : deadline;
}

int top_run(struct top *t, ipcbus_bus *mon, ipcbus_bus *stats, const struct top_hooks *hooks, const sigset_t *waitmask,
            volatile sig_atomic_t *quit)
{
        uint64_t next_draw = clock_now_usec(CLOCK_MONOTONIC) + t->o.interval_usec;
        int r = 0;

        top_keys_begin(t);
        if (!t->o.once)
                top_ask_stats(t, stats);
        while (!*quit) {
                struct pollfd p[3] = {
                        {.fd = ipcbus_get_fd(mon), .events = (short) ipcbus_get_events(mon)},
                        {.fd = ipcbus_get_fd(stats), .events = (short) ipcbus_get_events(stats)},
                        {.fd = t->raw ? STDIN_FILENO : -1, .events = POLLIN},
                };
                uint64_t now, wake;
                struct timespec ts;

                r = top_process(mon);
                if (r >= 0)
                        r = top_process(stats);
                if (r < 0)
                        break;
                hooks->tick(hooks->userdata);
                now = clock_now_usec(CLOCK_MONOTONIC);
                if (now >= next_draw) {
                        if (t->o.once) {
                                top_wait_stats(t, stats);
                                top_draw(t, hooks->in_flight(hooks->userdata));
                                break;
                        }
                        top_draw(t, hooks->in_flight(hooks->userdata));
                        top_reset(t);
                        top_ask_stats(t, stats);
                        next_draw = now + t->o.interval_usec;
                        continue;
                }
                wake = earliest(earliest(next_draw, mon), stats);
                wake = wake > now ? wake - now : 0;
                ts = (struct timespec){.tv_sec = (time_t) (wake / 1000000u),
                                       .tv_nsec = (long) (wake % 1000000u) * 1000};
                if (ppoll(p, 3, &ts, waitmask) < 0 && errno != EINTR) {
                        r = -errno;
                        break;
                }
                if ((p[2].revents & POLLIN) && top_read_keys(t))
                        break;
        }
        top_keys_end(t);
        if (r < 0) {
                fprintf(stderr, "ipc-monitor: the bus went away: %s\n", ipcbus_strerror(r));
                return EXIT_FAILURE;
        }
        return 0;
}
