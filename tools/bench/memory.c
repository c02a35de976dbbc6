/* SPDX-License-Identifier: MIT */
/* The broker's peak resident memory, VmHWM from /proc (broker_rss_kb). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "tools/bench/bench.h"

/* VmHWM of process pid in kB, or negative errno. */
static int64_t proc_vmhwm_kb(int64_t pid)
{
        char path[64], line[256];
        int64_t kb = -ENOENT;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%" PRId64 "/status", pid);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmHWM: %" SCNd64 " kB", &kb) == 1)
                        break;
        fclose(f);
        return kb;
}

int scenario_broker_rss(const struct bench *b, const char *name)
{
        pid_t query = 0;
        int64_t pid, kb;
        int r;

        r = broker_query_pid(b, &query);
        pid = query;
        kb = r < 0 ? r : proc_vmhwm_kb(pid);
        if (kb < 0) {
                if (r >= 0)
                        fprintf(stderr, "ipc-bench: %s: cannot read VmHWM of pid %" PRId64 ": %s\n", name, pid,
                                strerror((int) -kb));
                return result_print(name, 0, "kB", 0, 1, " pid=%" PRId64, pid) | 1;
        }
        return result_print(name, (double) kb, "kB", 0, 0, " pid=%" PRId64, pid);
}
