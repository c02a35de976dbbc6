/* SPDX-License-Identifier: MIT */
/* The broker's peak resident memory, VmHWM from /proc (broker_rss_kb). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "tools/bench/bench.h"
#include "tools/format.h"

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

/* The broker's pid, from GetConnectionCredentials on the driver itself. */
static int broker_pid(const struct bench *b, int64_t *ret)
{
        _cleanup_(ipcbus_unrefp) ipcbus_bus *bus = NULL;
        _cleanup_(ipcbus_message_unrefp) ipcbus_message *reply = NULL;
        _cleanup_(ipcbus_error_freep) ipcbus_error e = IPCBUS_ERROR_NULL;
        _cleanup_(json_object_putp) struct json_object *obj = NULL;
        struct json_object *pid;
        const char *text;
        size_t len = 0;
        int r;

        r = bench_connect(b, &bus);
        if (r < 0)
                return r;
        r = ipcbus_call(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE,
                        "GetConnectionCredentials", "{\"name\":\"" IPCBUS_DRIVER_NAME "\"}", IPCBUS_TIMEOUT_DEFAULT,
                        &reply, &e);
        if (r < 0) {
                fprintf(stderr, "ipc-bench: GetConnectionCredentials: %s\n", e.name ? e.name : ipcbus_strerror(r));
                return r;
        }
        text = ipcbus_message_get_body(reply, &len);
        if (format_json_parse(text, len, &obj) < 0 || !json_object_object_get_ex(obj, "pid", &pid) ||
            !json_object_is_type(pid, json_type_int) || json_object_get_int64(pid) <= 0) {
                fprintf(stderr, "ipc-bench: GetConnectionCredentials: no pid in the reply\n");
                return -EBADMSG;
        }
        *ret = json_object_get_int64(pid);
        return 0;
}

int scenario_broker_rss(const struct bench *b, const char *name)
{
        int64_t pid = 0, kb;
        int r;

        r = broker_pid(b, &pid);
        kb = r < 0 ? r : proc_vmhwm_kb(pid);
        if (kb < 0) {
                if (r >= 0)
                        fprintf(stderr, "ipc-bench: %s: cannot read VmHWM of pid %" PRId64 ": %s\n", name, pid,
                                strerror((int) -kb));
                return result_print(name, 0, "kB", 0, 1, " pid=%" PRId64, pid) | 1;
        }
        return result_print(name, (double) kb, "kB", 0, 0, " pid=%" PRId64, pid);
}
