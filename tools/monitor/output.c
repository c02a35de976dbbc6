/* SPDX-License-Identifier: MIT */
/*
 * ipc-monitor's human and JSON output; the formats are described in output.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "protocol/jscan.h"
#include "tools/format.h"
#include "tools/monitor/output.h"

/* How much of a body the one-line form shows. */
#define OUTPUT_STRING_MAX 64u /* bytes of a string */
#define OUTPUT_ARRAY_MAX 8u   /* elements of an array */
#define OUTPUT_OBJECT_MAX 16u /* members of an object */
#define OUTPUT_DEPTH_MAX 4    /* nesting; deeper containers become {…} and […] */
#define OUTPUT_LINE_MAX 400u  /* bytes of the whole body */
#define OUTPUT_NAME_W_MAX 24  /* the widest a sender or destination column grows */

/* ANSI SGR sequences by role. */
#define SGR_RESET "\033[0m"
#define SGR_DIM "\033[2m"
#define SGR_CALL "\033[1;34m"
#define SGR_RETURN "\033[1;32m"
#define SGR_ERROR "\033[1;31m"
#define SGR_SIGNAL "\033[1;35m"
#define SGR_PAIR "\033[36m"
#define SGR_WARN "\033[1;33m"

bool output_want_color(enum output_color c, int fd)
{
        const char *no_color;

        if (c != OUTPUT_COLOR_AUTO)
                return c == OUTPUT_COLOR_ALWAYS;
        no_color = getenv("NO_COLOR");
        return (!no_color || !no_color[0]) && isatty(fd) == 1;
}

void output_init(struct output *o, FILE *f, bool json, bool color, bool align, bool full, enum output_timestamp time)
{
        /* the driver's name comes in most columns soon: start that wide, so the first lines line up too */
        int w = (int) strlen(IPCBUS_DRIVER_NAME);

        *o = (struct output){.f = f,
                             .json = json,
                             .color = color && !json,
                             .align = align,
                             .full = full,
                             .time = time,
                             .sender_w = w,
                             .dest_w = w};
}

/* The SGR sequence sgr when colouring, else "". */
static const char *sgr(const struct output *o, const char *sgr)
{
        return o->color ? sgr : "";
}

static const char *output_type_sgr(enum msg_type t)
{
        switch (t) {
        case MSG_CALL:
                return SGR_CALL;
        case MSG_RETURN:
                return SGR_RETURN;
        case MSG_ERROR:
                return SGR_ERROR;
        default:
                return SGR_SIGNAL;
        }
}

static int64_t output_usec_between(const struct timespec *a, const struct timespec *b)
{
        return ((int64_t) b->tv_sec - a->tv_sec) * 1000000 + (b->tv_nsec - a->tv_nsec) / 1000;
}

/* "[TIME ]" of a message at ts, as o->time asks; the first message starts the relative clock. */
static void output_put_time(struct output *o, const struct timespec *ts)
{
        int64_t usec;

        if (!o->started) {
                o->first = o->prev = *ts;
                o->started = true;
        }
        switch (o->time) {
        case OUTPUT_TIME_NONE:
                break;
        case OUTPUT_TIME_ABSOLUTE: {
                struct tm tm;
                char hms[16] = "??:??:??";

                if (localtime_r(&ts->tv_sec, &tm))
                        strftime(hms, sizeof(hms), "%H:%M:%S", &tm);
                fprintf(o->f, "%s%s.%06ld%s ", sgr(o, SGR_DIM), hms, ts->tv_nsec / 1000, sgr(o, SGR_RESET));
                break;
        }
        case OUTPUT_TIME_RELATIVE:
        case OUTPUT_TIME_DELTA:
                usec = output_usec_between(o->time == OUTPUT_TIME_RELATIVE ? &o->first : &o->prev, ts);
                fprintf(o->f, "%s%+" PRId64 ".%06" PRId64 "%s ", sgr(o, SGR_DIM), usec / 1000000,
                        (usec < 0 ? -usec : usec) % 1000000, sgr(o, SGR_RESET));
                break;
        }
        o->prev = *ts;
}

/* "TYPE SENDER -> DESTINATION " with the name columns grown to the widest seen. */
static void output_put_route(struct output *o, const char *type, const char *type_sgr, const char *sender,
                             const char *destination)
{
        int sw = (int) strlen(sender), dw = (int) strlen(destination);

        if (!o->align) {
                fprintf(o->f, "%s%-6s%s %s -> %s", sgr(o, type_sgr), type, sgr(o, SGR_RESET), sender, destination);
                return;
        }
        if (sw > o->sender_w)
                o->sender_w = sw > OUTPUT_NAME_W_MAX ? OUTPUT_NAME_W_MAX : sw;
        if (dw > o->dest_w)
                o->dest_w = dw > OUTPUT_NAME_W_MAX ? OUTPUT_NAME_W_MAX : dw;
        fprintf(o->f, "%s%-6s%s %-*s -> %-*s", sgr(o, type_sgr), type, sgr(o, SGR_RESET), o->sender_w, sender,
                o->dest_w, destination);
}

/* Write " key=value" when value is set. Names and paths are validated by the codec. */
static void output_put_field(struct output *o, const char *key, const char *value)
{
        if (value)
                fprintf(o->f, " %s=%s", key, value);
}

/* " serial=N path=P interface=I member=M" of a call the pairing kept. */
static void output_put_call_fields(struct output *o, const struct mon_call *call)
{
        fprintf(o->f, " serial=%" PRIu32, call->serial);
        output_put_field(o, "path", call->path);
        output_put_field(o, "interface", call->interface);
        output_put_field(o, "member", call->member);
}

/* ---- bodies on one line ---- */

/*
 * A body written from its index (msg_body_index) rather than re-parsed: every
 * scalar is the sender's own text, so an integer past 64 bits or an escape
 * shows as it was sent. On one line with the cuts above, or whole and
 * indented (pretty).
 */
struct body_writer {
        FILE *f;
        const char *text;
        const struct jscan_node *nodes;
        bool pretty;
        bool cut; /* something was left out */
};

static size_t body_write_value(struct body_writer *w, size_t i, unsigned depth);

/*
 * How many bytes of the raw string s[0..len) to keep for at most max: whole
 * escapes (a surrogate pair's two) and whole UTF-8 characters.
 */
static size_t body_string_keep(const char *s, size_t len, size_t max)
{
        size_t i = 0;

        while (i < len) {
                size_t n;

                if (s[i] == '\\' && s[i + 1] != 'u')
                        n = 2;
                else if (s[i] == '\\')
                        /* a high surrogate's escape comes with its low one (the validator pairs them) */
                        n = (s[i + 2] == 'd' || s[i + 2] == 'D') && strchr("89abAB", s[i + 3]) ? 12 : 6;
                else
                        n = jscan_utf8_sequence(s + i, len - i);
                if (n == 0)
                        n = 1;
                if (i + n > max)
                        break;
                i += n;
        }
        return i;
}

static void body_write_string(struct body_writer *w, const struct jscan_node *n, bool cut_long)
{
        const char *s = w->text + n->start;
        size_t keep = n->len;

        if (cut_long && n->len > OUTPUT_STRING_MAX) {
                keep = body_string_keep(s, n->len, OUTPUT_STRING_MAX);
                w->cut = true;
        }
        fprintf(w->f, "\"%.*s%s\"", (int) keep, s, keep < n->len ? "…" : "");
}

/* A line break and the indentation of depth, when pretty. */
static void body_write_break(struct body_writer *w, unsigned depth)
{
        if (w->pretty)
                fprintf(w->f, "\n%*s", (int) depth * 2, "");
}

/* The object or array at node i: its members or elements, at most max of them unless pretty. */
static void body_write_container(struct body_writer *w, size_t i, unsigned depth)
{
        const struct jscan_node *n = &w->nodes[i];
        bool object = n->kind == JSCAN_OBJECT;
        size_t max = object ? OUTPUT_OBJECT_MAX : OUTPUT_ARRAY_MAX, count = 0, j = i + 1;

        fputc(object ? '{' : '[', w->f);
        if (j < n->end && !w->pretty && depth >= OUTPUT_DEPTH_MAX) {
                fputs("…", w->f);
                w->cut = true;
                j = n->end;
        }
        for (; j < n->end; count++) {
                if (!w->pretty && count == max) {
                        size_t rest = 0;

                        for (; j < n->end; j = w->nodes[j + object].end)
                                rest++;
                        fprintf(w->f, ",…+%zu", rest);
                        w->cut = true;
                        break;
                }
                if (count)
                        fputc(',', w->f);
                body_write_break(w, depth + 1);
                if (object) {
                        body_write_string(w, &w->nodes[j], false);
                        fputs(w->pretty ? ": " : ":", w->f);
                        j++;
                }
                j = body_write_value(w, j, depth + 1);
        }
        if (count)
                body_write_break(w, depth);
        fputc(object ? '}' : ']', w->f);
}

/* Write the value at node i; returns the index of the node after it. */
static size_t body_write_value(struct body_writer *w, size_t i, unsigned depth)
{
        const struct jscan_node *n = &w->nodes[i];

        switch (n->kind) {
        case JSCAN_STRING:
                body_write_string(w, n, !w->pretty);
                break;
        case JSCAN_OBJECT:
        case JSCAN_ARRAY:
                body_write_container(w, i, depth);
                break;
        default:
                fwrite(w->text + n->start, 1, n->len, w->f);
                break;
        }
        return n->end;
}

/* format_sanitize of each line of text, the line breaks kept (a pretty body). NULL when out of memory. */
static char *output_sanitize_lines(const char *text)
{
        _cleanup_(freep) char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);

        if (!f)
                return NULL;
        for (const char *p = text;;) {
                size_t n = strcspn(p, "\n");
                _cleanup_(freep) char *line = format_sanitize(p, n);

                if (!line) {
                        fclose(f);
                        return NULL;
                }
                fputs(line, f);
                if (!p[n])
                        break;
                fputc('\n', f);
                p += n + 1;
        }
        if (fclose(f) != 0)
                return NULL;
        return steal_pointer(&out);
}

/*
 * The body's text for a person, NUL-terminated and safe on a terminal
 * (malloc'd; NULL when out of memory): pretty and whole, or on one line cut
 * where long, with the body's size when anything was cut.
 */
static char *output_body_text(const struct output *o, struct msg *m)
{
        _cleanup_(freep) char *text = NULL;
        struct body_writer w = {.text = m->body, .pretty = o->full};
        size_t len = 0;
        bool line_cut = false;

        if (msg_body_index(m) < 0 || m->n_nodes == 0)
                return NULL;
        w.nodes = m->nodes;
        w.f = open_memstream(&text, &len);
        if (!w.f)
                return NULL;
        body_write_value(&w, 0, 0);
        if (fclose(w.f) != 0)
                return NULL;
        if (!o->full && len > OUTPUT_LINE_MAX) {
                len = OUTPUT_LINE_MAX;
                while (len > 0 && ((unsigned char) text[len] & 0xc0) == 0x80)
                        len--;
                text[len] = '\0';
                line_cut = w.cut = true;
        }
        if (w.cut) {
                char *with_size = NULL;

                if (asprintf(&with_size, "%s%s (%zu bytes)", text, line_cut ? "…" : "", m->body_len) < 0)
                        return NULL;
                free(text);
                text = with_size;
                len = strlen(text);
        }
        return o->full ? output_sanitize_lines(text) : format_sanitize(text, len);
}

/* ---- the human line ---- */

/* " ← [DEST ]IFACE.MEMBER LATENCY" for an answer to a call seen (DEST when it is not the interface's name). */
static void output_put_pairing(struct output *o, const struct mon_event *ev)
{
        const struct mon_call *c = ev->call;
        char latency[32];

        if (!c)
                return;
        fprintf(o->f, " %s←", sgr(o, SGR_PAIR));
        /* a service named as its interface is said once */
        if (!c->destination || !c->interface || strcmp(c->destination, c->interface) != 0)
                fprintf(o->f, " %s", c->destination ? c->destination : "-");
        fprintf(o->f, " %s%s%s %s%s", c->interface ? c->interface : "", c->interface ? "." : "",
                c->member ? c->member : "?", format_duration(latency, sizeof(latency), ev->latency_usec),
                sgr(o, SGR_RESET));
}

/* " uid=U pid=P comm=C" of the sender, as far as known. Returns 0 or -ENOMEM. */
static int output_put_credentials(struct output *o, const struct mon_event *ev)
{
        const struct msg_header *h = &ev->msg->h;
        _cleanup_(freep) char *comm = NULL;

        if (h->sender_uid < 0 && h->sender_pid < 0)
                return 0;
        fputs(sgr(o, SGR_DIM), o->f);
        if (h->sender_uid >= 0)
                fprintf(o->f, " uid=%" PRId64, h->sender_uid);
        if (h->sender_pid >= 0)
                fprintf(o->f, " pid=%" PRId64, h->sender_pid);
        if (ev->comm[0]) {
                comm = format_sanitize(ev->comm, strnlen(ev->comm, sizeof(ev->comm)));
                if (!comm)
                        return -ENOMEM;
                fprintf(o->f, " comm=%s", comm);
        }
        fputs(sgr(o, SGR_RESET), o->f);
        return 0;
}

static int output_line(struct output *o, const struct mon_event *ev)
{
        const struct msg_header *h = &ev->msg->h;
        _cleanup_(freep) char *body = NULL;

        if (ev->msg->body_len > 0) {
                body = output_body_text(o, ev->msg);
                if (!body)
                        return -ENOMEM;
        }
        output_put_time(o, &ev->ts);
        output_put_route(o, msg_type_to_string(h->type), output_type_sgr(h->type), h->sender ? h->sender : "-",
                         h->destination ? h->destination : "*");
        fprintf(o->f, " serial=%" PRIu32, h->serial);
        if (h->reply_serial != 0)
                fprintf(o->f, " reply_serial=%" PRIu32, h->reply_serial);
        output_put_field(o, "path", h->path);
        output_put_field(o, "interface", h->interface);
        output_put_field(o, "member", h->member);
        if (h->type == MSG_ERROR && h->error_name)
                fprintf(o->f, " error=%s%s%s", sgr(o, SGR_ERROR), h->error_name, sgr(o, SGR_RESET));
        if (h->no_reply)
                fputs(" no_reply", o->f);
        if (ev->n_fds)
                fprintf(o->f, " fds=%u", ev->n_fds);
        if (ev->memfd_size)
                fprintf(o->f, " memfd=%" PRIu32, ev->memfd_size);
        output_put_pairing(o, ev);
        if (output_put_credentials(o, ev) < 0)
                return -ENOMEM;
        if (body)
                fprintf(o->f, "%s%s", o->full ? "\n" : " ", body);
        fputc('\n', o->f);
        fflush(o->f);
        return 0;
}

/* ---- JSON ---- */

/* Add key: a string, or nothing when s is NULL. */
static void output_json_add_string(struct json_object *obj, const char *key, const char *s)
{
        if (s)
                json_object_object_add(obj, key, json_object_new_string(s));
}

static struct json_object *output_json_time(const struct timespec *ts)
{
        char stamp[64];

        snprintf(stamp, sizeof(stamp), "%lld.%06ld", (long long) ts->tv_sec, ts->tv_nsec / 1000);
        return json_object_new_double_s((double) ts->tv_sec + (double) ts->tv_nsec / 1e9, stamp);
}

/* {"destination":..,"path":..,"interface":..,"member":..,"serial":N} of a call; NULL when out of memory. */
static struct json_object *output_json_call(const struct mon_call *c)
{
        struct json_object *obj = json_object_new_object();

        if (!obj)
                return NULL;
        output_json_add_string(obj, "destination", c->destination);
        output_json_add_string(obj, "path", c->path);
        output_json_add_string(obj, "interface", c->interface);
        output_json_add_string(obj, "member", c->member);
        json_object_object_add(obj, "serial", json_object_new_int64(c->serial));
        return obj;
}

/* Write one JSON object as a line and flush. */
static void output_json_line(struct output *o, struct json_object *line)
{
        fputs(format_json_string(line, false), o->f);
        fputc('\n', o->f);
        fflush(o->f);
}

/*
 * {"header":...,"body":...,...}: the header and the body are the message's
 * own text (whitespace flattened), so numbers past 64 bits stay as sent;
 * the rest is json-c's.
 */
static int output_json(struct output *o, const struct mon_event *ev)
{
        _cleanup_(json_object_putp) struct json_object *rest = json_object_new_object();
        const struct msg *m = ev->msg;
        const char *text;

        if (!rest)
                return -ENOMEM;
        json_object_object_add(rest, "timestamp", output_json_time(&ev->ts));
        json_object_object_add(rest, "fds", json_object_new_int64(ev->n_fds));
        json_object_object_add(rest, "memfd_size", json_object_new_int64(ev->memfd_size));
        if (ev->comm[0])
                json_object_object_add(rest, "comm",
                                       json_object_new_string_len(ev->comm, (int) strnlen(ev->comm, sizeof(ev->comm))));
        if (ev->call) {
                json_object_object_add(rest, "call", output_json_call(ev->call));
                json_object_object_add(rest, "latency_us", json_object_new_int64((int64_t) ev->latency_usec));
        }
        text = format_json_string(rest, false);
        fputs("{\"header\":", o->f);
        format_put_flat(o->f, m->header, m->header_len);
        fputs(",\"body\":", o->f);
        if (m->body_len > 0)
                format_put_flat(o->f, m->body, m->body_len);
        else
                fputs("null", o->f);
        /* the rest's members after ours: its text without the opening brace */
        fprintf(o->f, ",%s\n", text + 1);
        fflush(o->f);
        return 0;
}

int output_event(struct output *o, const struct mon_event *ev)
{
        return o->json ? output_json(o, ev) : output_line(o, ev);
}

int output_call(struct output *o, const struct mon_call *call)
{
        if (o->json) {
                /* a JSON reader pairs by serial itself: the answer's "call" says all the call line would */
                return 0;
        }
        output_put_time(o, &call->ts);
        output_put_route(o, "call", SGR_CALL, call->sender, call->destination ? call->destination : "*");
        output_put_call_fields(o, call);
        fputc('\n', o->f);
        fflush(o->f);
        return 0;
}

int output_unanswered(struct output *o, const struct mon_call *call, const struct timespec *now)
{
        char waited[32];

        format_duration(waited, sizeof(waited), (uint64_t) output_usec_between(&call->ts, now));
        if (o->json) {
                _cleanup_(json_object_putp) struct json_object *line = json_object_new_object();
                struct json_object *c = output_json_call(call);

                if (!line || !c) {
                        json_object_put(c);
                        return -ENOMEM;
                }
                output_json_add_string(c, "sender", call->sender);
                json_object_object_add(c, "timestamp", output_json_time(&call->ts));
                json_object_object_add(line, "unanswered", c);
                json_object_object_add(line, "timestamp", output_json_time(now));
                output_json_line(o, line);
                return 0;
        }
        output_put_time(o, now);
        output_put_route(o, "unanswered", SGR_WARN, call->sender, call->destination ? call->destination : "*");
        output_put_call_fields(o, call);
        fprintf(o->f, " %sno answer after %s%s\n", sgr(o, SGR_WARN), waited, sgr(o, SGR_RESET));
        fflush(o->f);
        return 0;
}
