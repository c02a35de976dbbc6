/* SPDX-License-Identifier: MIT */
/*
 * Per-member statistics of ipc-monitor --summary. Latencies go into a
 * histogram of log-spaced buckets (four per doubling of microseconds), so a
 * member costs the same however many calls it has; percentiles are read
 * from it as the upper bound of the bucket they fall in (within 19%).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tools/format.h"
#include "tools/monitor/summary.h"
#include "util/map.h"
#include "util/util.h"

#define SUMMARY_BUCKETS 128u   /* 2^(128/4) us: past an hour */
#define SUMMARY_ERROR_NAMES 4u /* error names kept by name per member; the rest are "other" */
#define SUMMARY_TIMEOUT_ERROR "org.ipcbus.Error.Timeout"

struct summary_error {
        char *name; /* NULL: the slot is free */
        uint64_t count;
};

struct summary_member {
        struct map_node node;
        char *destination;
        char *member;      /* interface.member, or the member alone */
        uint64_t calls;    /* calls seen */
        uint64_t answered; /* answers seen (returns and errors, timeouts included) */
        uint64_t errors;   /* errors, timeouts not included */
        uint64_t timeouts; /* the broker's Timeout errors, and calls never answered */
        uint64_t max_usec;
        struct summary_error error_names[SUMMARY_ERROR_NAMES];
        uint64_t other_errors;
        uint32_t hist[SUMMARY_BUCKETS];
};

struct summary {
        struct map by_key;
        struct summary_member *members[SUMMARY_MEMBERS_MAX];
        size_t n_members;
        struct summary_member other; /* members past the cap */
};

int summary_new(struct summary **ret)
{
        struct summary *s = calloc(1, sizeof(*s));

        if (!s)
                return -ENOMEM;
        map_init(&s->by_key);
        s->other.destination = (char *) "";
        s->other.member = (char *) "(other)";
        *ret = s;
        return 0;
}

static void summary_member_free(struct summary_member *m)
{
        if (!m)
                return;
        for (size_t i = 0; i < SUMMARY_ERROR_NAMES; i++)
                free(m->error_names[i].name);
        free(m->destination);
        free(m->member);
        free(m);
}

struct summary *summary_free(struct summary *s)
{
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_members; i++)
                summary_member_free(s->members[i]);
        for (size_t i = 0; i < SUMMARY_ERROR_NAMES; i++)
                free(s->other.error_names[i].name);
        map_deinit(&s->by_key);
        free(s);
        return NULL;
}

struct summary_key {
        const char *destination;
        const char *member;
};

static bool summary_eq(const struct map_node *node, const void *key)
{
        const struct summary_member *m = container_of(node, struct summary_member, node);
        const struct summary_key *k = key;

        return strcmp(m->destination, k->destination) == 0 && strcmp(m->member, k->member) == 0;
}

/*
 * The member of (destination, interface, member): found, made, or "(other)"
 * past the cap. NULL when out of memory.
 */
static struct summary_member *summary_get(struct summary *s, const char *destination, const char *interface,
                                          const char *member)
{
        _cleanup_(freep) char *name = NULL;
        struct summary_key key;
        struct summary_member *m;
        struct map_node *node;
        uint64_t hash;

        if (asprintf(&name, "%s%s%s", interface ? interface : "", interface ? "." : "", member ? member : "?") < 0)
                return NULL;
        key = (struct summary_key){destination ? destination : "-", name};
        hash = map_hash_string(key.destination) ^ map_hash_string(name);
        node = map_find(&s->by_key, hash, summary_eq, &key);
        if (node)
                return container_of(node, struct summary_member, node);
        if (s->n_members >= SUMMARY_MEMBERS_MAX)
                return &s->other;
        m = calloc(1, sizeof(*m));
        if (!m)
                return NULL;
        m->destination = strdup(key.destination);
        m->member = steal_pointer(&name);
        if (!m->destination || map_add(&s->by_key, &m->node, hash) < 0) {
                summary_member_free(m);
                return NULL;
        }
        s->members[s->n_members++] = m;
        return m;
}

int summary_call(struct summary *s, const struct msg_header *h)
{
        struct summary_member *m = summary_get(s, h->destination, h->interface, h->member);

        if (!m)
                return -ENOMEM;
        m->calls++;
        return 0;
}

/* The bucket of a latency: four per doubling. */
static unsigned summary_bucket(uint64_t usec)
{
        double b = usec <= 1 ? 0 : floor(log2((double) usec) * 4);

        return b >= SUMMARY_BUCKETS - 1 ? SUMMARY_BUCKETS - 1 : (unsigned) b;
}

/* The largest latency a bucket holds. */
static uint64_t summary_bucket_top(unsigned b)
{
        return (uint64_t) ceil(exp2((b + 1) / 4.0));
}

static void summary_count_error(struct summary_member *m, const char *name)
{
        for (size_t i = 0; i < SUMMARY_ERROR_NAMES; i++) {
                struct summary_error *e = &m->error_names[i];

                if (!e->name) {
                        e->name = strdup(name);
                        if (!e->name)
                                break;
                }
                if (strcmp(e->name, name) == 0) {
                        e->count++;
                        return;
                }
        }
        m->other_errors++;
}

int summary_answer(struct summary *s, const struct mon_call *call, const char *error_name, uint64_t latency_usec)
{
        struct summary_member *m = summary_get(s, call->destination, call->interface, call->member);

        if (!m)
                return -ENOMEM;
        m->answered++;
        if (error_name && strcmp(error_name, SUMMARY_TIMEOUT_ERROR) == 0) {
                /* its latency is the timeout's, not the service's */
                m->timeouts++;
                return 0;
        }
        if (error_name) {
                m->errors++;
                summary_count_error(m, error_name);
        }
        m->hist[summary_bucket(latency_usec)]++;
        if (latency_usec > m->max_usec)
                m->max_usec = latency_usec;
        return 0;
}

int summary_unanswered(struct summary *s, const struct mon_call *call)
{
        struct summary_member *m = summary_get(s, call->destination, call->interface, call->member);

        if (!m)
                return -ENOMEM;
        m->timeouts++;
        return 0;
}

/* The latency under which a fraction q of m's timed answers came (bucket bound, at most the maximum). */
static uint64_t summary_percentile(const struct summary_member *m, double q)
{
        uint64_t n = 0, seen = 0, want;

        for (unsigned b = 0; b < SUMMARY_BUCKETS; b++)
                n += m->hist[b];
        if (n == 0)
                return 0;
        want = (uint64_t) ceil(q * (double) n);
        for (unsigned b = 0; b < SUMMARY_BUCKETS; b++) {
                seen += m->hist[b];
                if (seen >= want && seen > 0) {
                        uint64_t top = summary_bucket_top(b);
                        return top < m->max_usec ? top : m->max_usec;
                }
        }
        return m->max_usec;
}

static int summary_by_calls(const void *a, const void *b)
{
        const struct summary_member *x = *(const struct summary_member *const *) a;
        const struct summary_member *y = *(const struct summary_member *const *) b;

        return x->calls < y->calls ? 1 : x->calls > y->calls ? -1 : strcmp(x->member, y->member);
}

/* "Name×N, ..." of m's errors into f. */
static void summary_print_errors(const struct summary_member *m, FILE *f)
{
        const char *sep = "";

        for (size_t i = 0; i < SUMMARY_ERROR_NAMES && m->error_names[i].name; i++) {
                fprintf(f, "%s%s×%" PRIu64, sep, m->error_names[i].name, m->error_names[i].count);
                sep = ", ";
        }
        if (m->other_errors)
                fprintf(f, "%sother×%" PRIu64, sep, m->other_errors);
}

/* A latency right-aligned in 11 columns ("µ" is two bytes and one column). */
static void summary_put_cell(FILE *f, const char *text)
{
        fprintf(f, "%*s", strstr(text, "µ") ? 12 : 11, text);
}

static void summary_print_member(const struct summary_member *m, int member_w, int dest_w, FILE *f)
{
        char p50[32], p99[32], max[32];
        bool timed = m->answered > m->timeouts;

        format_duration(p50, sizeof(p50), summary_percentile(m, 0.50));
        format_duration(p99, sizeof(p99), summary_percentile(m, 0.99));
        format_duration(max, sizeof(max), m->max_usec);
        fprintf(f, "%-*s  %-*s %7" PRIu64 " %7" PRIu64 " %8" PRIu64, member_w, m->member, dest_w, m->destination,
                m->calls, m->errors, m->timeouts);
        summary_put_cell(f, timed ? p50 : "-");
        summary_put_cell(f, timed ? p99 : "-");
        summary_put_cell(f, timed ? max : "-");
        if (m->error_names[0].name || m->other_errors) {
                fputs("  ", f);
                summary_print_errors(m, f);
        }
        fputc('\n', f);
}

void summary_print(struct summary *s, FILE *f)
{
        _cleanup_(freep) struct summary_member **sorted = NULL;
        int member_w = (int) strlen("MEMBER"), dest_w = (int) strlen("DESTINATION");
        size_t n = 0;

        sorted = calloc(s->n_members + 1, sizeof(*sorted));
        if (!sorted)
                return;
        for (size_t i = 0; i < s->n_members; i++)
                sorted[n++] = s->members[i];
        qsort(sorted, n, sizeof(*sorted), summary_by_calls);
        if (s->other.calls || s->other.answered || s->other.timeouts)
                sorted[n++] = &s->other;
        if (n == 0) {
                fputs("ipc-monitor: no calls seen\n", f);
                fflush(f);
                return;
        }
        for (size_t i = 0; i < n; i++) {
                int mw = (int) strlen(sorted[i]->member), dw = (int) strlen(sorted[i]->destination);

                member_w = mw > member_w ? (mw > 48 ? 48 : mw) : member_w;
                dest_w = dw > dest_w ? (dw > 32 ? 32 : dw) : dest_w;
        }
        fprintf(f, "%-*s  %-*s %7s %7s %8s %11s %11s %11s  %s\n", member_w, "MEMBER", dest_w, "DESTINATION", "CALLS",
                "ERRORS", "TIMEOUTS", "P50", "P99", "MAX", "ERROR NAMES");
        for (size_t i = 0; i < n; i++)
                summary_print_member(sorted[i], member_w, dest_w, f);
        fflush(f);
}
