/* SPDX-License-Identifier: MIT */
/* Connections: connect, Hello, disconnect, as fast as one client can (connect_hello). */
#include <inttypes.h>
#include <stdio.h>

#include "tools/bench/bench.h"

/* connect_hello's client: connect (Hello included), disconnect, count times. */
static int connect_client_main(const struct bench *b, void *arg)
{
        const struct count_arg *a = arg;
        struct report rep = {};
        struct samples s;
        int r;

        r = samples_init(&s, a->count);
        rep.t_start = clock_now_nsec(CLOCK_MONOTONIC);
        for (uint64_t i = 0; r >= 0 && i < a->count; i++) {
                ipcbus_bus *bus = NULL;
                uint64_t t0 = clock_now_nsec(CLOCK_MONOTONIC);

                /* says why the first time only */
                r = rep.failed ? ipcbus_open_address(b->address, &bus) : bench_connect(b, &bus);
                if (r < 0) {
                        rep.failed++;
                        r = 0;
                        continue;
                }
                ipcbus_unref(bus);
                s.v[s.n++] = clock_now_nsec(CLOCK_MONOTONIC) - t0;
                rep.count++;
        }
        rep.t_end = clock_now_nsec(CLOCK_MONOTONIC);
        rep.error = r < 0 ? r : 0;
        if (s.v)
                samples_finish(&s, &rep);
        report_send(&rep, REPORT_DONE);
        return r < 0 ? r : 0;
}

int scenario_connect_hello(const struct bench *b, const char *name)
{
        struct count_arg a = {.count = bench_scaled(b, 2000)};
        struct report rep;
        int bad = client_run(b, name, connect_client_main, &a, a.count, &rep);

        return result_print(name, bench_rate(rep.count, rep.t_start, rep.t_end), "conn/s", 0, rep.failed,
                            " p50_us=%.2f p99_us=%.2f count=%" PRIu64, bench_us(rep.p50_ns), bench_us(rep.p99_ns),
                            rep.count) |
               bad;
}
