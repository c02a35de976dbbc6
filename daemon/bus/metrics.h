/* SPDX-License-Identifier: MIT */
/*
 * The bus totals of GetStats as metrics text (PROTOCOL.md 7.6): OpenMetrics
 * 1.0 or the Prometheus text format 0.0.4. Bus totals only, never a series
 * per connection: anyone may read them, and their number is fixed.
 */
#pragma once

#include <stddef.h>

struct bus;

enum bus_metrics_format {
        BUS_METRICS_OPENMETRICS, /* families with HELP, TYPE and UNIT, counters' samples X_total, "# EOF" */
        BUS_METRICS_PROMETHEUS,  /* text format 0.0.4: HELP and TYPE of X_total, no UNIT, no EOF */
};

/*
 * Render the bus's metrics now. Returns 0 with *ret a malloc'd
 * NUL-terminated text of *ret_len bytes, or -ENOMEM.
 */
int bus_metrics_render(struct bus *bus, enum bus_metrics_format format, char **ret, size_t *ret_len);
