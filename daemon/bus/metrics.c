/* SPDX-License-Identifier: MIT */
/*
 * The bus totals as metrics text, from the same figures as GetStats's
 * "bus" (bus_stats_collect): OpenMetrics 1.0 (what `ipcctl metrics` and the
 * metrics socket serve by default) or the Prometheus text format 0.0.4 (for
 * node_exporter's textfile collector and older scrapers).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>

#include "daemon/bus/bus.h"
#include "daemon/bus/metrics.h"
#include "daemon/bus/stats.h"
#include "protocol/jbuf.h"

#define METRICS_PREFIX "ipcbus_"

/*
 * A family's comment lines. OpenMetrics names the family (a counter's
 * samples add "_total") and gives its unit; the Prometheus format names the
 * sample itself and has no unit line.
 */
static void write_family(struct jbuf *b, enum bus_metrics_format format, const char *metric, const char *help,
                         const char *unit, bool counter)
{
        const char *suffix = counter && format == BUS_METRICS_PROMETHEUS ? "_total" : "";

        jbuf_printf(b, "# HELP " METRICS_PREFIX "%s%s %s\n", metric, suffix, help);
        jbuf_printf(b, "# TYPE " METRICS_PREFIX "%s%s %s\n", metric, suffix, counter ? "counter" : "gauge");
        if (unit && format == BUS_METRICS_OPENMETRICS)
                jbuf_printf(b, "# UNIT " METRICS_PREFIX "%s %s\n", metric, unit);
}

static void write_scalar(struct jbuf *b, enum bus_metrics_format format, const struct bus_stats_scalar *s)
{
        write_family(b, format, s->metric, s->help, s->unit, s->counter);
        jbuf_printf(b, METRICS_PREFIX "%s%s ", s->metric, s->counter ? "_total" : "");
        /* a value in seconds is kept in milliseconds */
        if (s->unit && s->unit[0] == 's')
                jbuf_printf(b, "%" PRIu64 ".%03u\n", s->value / 1000, (unsigned) (s->value % 1000));
        else
                jbuf_printf(b, "%" PRIu64 "\n", s->value);
}

/* Every entry of the map, zeros included: a series that appears later breaks a rate(). */
static void write_map(struct jbuf *b, enum bus_metrics_format format, const struct bus_stats_map *m)
{
        write_family(b, format, m->metric, m->help, NULL, true);
        for (unsigned i = 0; i < m->n; i++)
                jbuf_printf(b, METRICS_PREFIX "%s_total{%s=\"%s\"} %" PRIu64 "\n", m->metric, m->label, m->name(i),
                            m->counts[i]);
}

int bus_metrics_render(struct bus *bus, enum bus_metrics_format format, char **ret, size_t *ret_len)
{
        struct bus_stats_scalar sc[BUS_STATS_SCALARS];
        struct bus_stats_map maps[BUS_STATS_MAPS];
        struct jbuf b;
        char *text;

        bus_stats_collect(bus, sc, maps);
        jbuf_init(&b);
        for (size_t i = 0; i < BUS_STATS_SCALARS; i++)
                write_scalar(&b, format, &sc[i]);
        for (size_t i = 0; i < BUS_STATS_MAPS; i++)
                write_map(&b, format, &maps[i]);
        if (format == BUS_METRICS_OPENMETRICS)
                jbuf_puts(&b, "# EOF\n");
        if (b.failed) {
                jbuf_deinit(&b);
                return -ENOMEM;
        }
        text = jbuf_steal(&b, ret_len);
        jbuf_deinit(&b);
        if (!text)
                return -ENOMEM;
        *ret = text;
        return 0;
}
