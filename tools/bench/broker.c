/* SPDX-License-Identifier: MIT */
/* ipc-bench's own broker: ipcbusd on a socket in a temporary directory; the broker's pid. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/bench/bench.h"
#include "tools/format.h"

/* Where ipcbusd is: $IPCBUSD, beside this binary, ../daemon/ from it (build tree), else PATH. */
static char *broker_find(void)
{
        const char *env = getenv("IPCBUSD");
        char self[PATH_MAX], *dir, *path;
        ssize_t n;

        if (env && *env)
                return strdup(env);
        n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n > 0) {
                self[n] = '\0';
                dir = dirname(self);
                /* a libtool build runs the binary from .libs/ */
                n = (ssize_t) strlen(dir);
                if (n >= 6 && strcmp(dir + n - 6, "/.libs") == 0)
                        dir[n - 6] = '\0';
                for (int i = 0; i < 2; i++) {
                        if (asprintf(&path, i == 0 ? "%s/ipcbusd" : "%s/../daemon/ipcbusd", dir) < 0)
                                return NULL;
                        if (access(path, X_OK) == 0)
                                return path;
                        free(path);
                }
        }
        return strdup("ipcbusd");
}

/*
 * Read the first line the broker prints on fd (its address, once it listens)
 * into line, without the newline. Returns 0, -ETIMEDOUT, or -EPIPE when it
 * closed its output first; line is a string in every case.
 */
static int broker_read_address(int fd, char *line, size_t size)
{
        size_t len = 0;
        int r = 0;

        while (len < size - 1 && (len == 0 || line[len - 1] != '\n')) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                ssize_t n;

                if (poll(&p, 1, READY_TIMEOUT_MS) <= 0) {
                        r = -ETIMEDOUT;
                        break;
                }
                n = read(fd, line + len, size - 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        r = -EPIPE;
                        break;
                }
                len += (size_t) n;
        }
        line[len] = '\0';
        line[strcspn(line, "\n")] = '\0';
        return r;
}

/*
 * Start ipcbusd on a socket in a new temporary directory, with
 * --print-address, and read the address it prints. Returns 0 or negative errno.
 */
int broker_start(struct bench *b)
{
        _cleanup_(freep) char *exe = broker_find();
        char template[] = "/tmp/ipc-bench.XXXXXX", line[PATH_MAX + 64];
        int out[2], r;

        if (!exe || !mkdtemp(template))
                return -errno;
        b->tmpdir = strdup(template);
        if (!b->tmpdir || asprintf(&b->socket_path, "%s/bus", template) < 0 ||
            asprintf(&b->owned_address, "unix:path=%s", b->socket_path) < 0)
                return -ENOMEM;
        if (pipe2(out, O_CLOEXEC) < 0)
                return -errno;
        fflush(stdout);
        fflush(stderr);
        b->broker_pid = fork();
        if (b->broker_pid < 0) {
                r = -errno;
                b->broker_pid = 0;
                close(out[0]);
                close(out[1]);
                return r;
        }
        if (b->broker_pid == 0) {
                signal(SIGPIPE, SIG_DFL);
                if (dup2(out[1], STDOUT_FILENO) < 0)
                        _exit(127);
                execlp(exe, exe, "--address", b->owned_address, "--print-address", (char *) NULL);
                fprintf(stderr, "ipc-bench: cannot run %s: %s (set $IPCBUSD)\n", exe, strerror(errno));
                _exit(127);
        }
        close(out[1]);
        r = broker_read_address(out[0], line, sizeof(line));
        close(out[0]);
        if (r < 0 || line[0] == '\0') {
                fprintf(stderr, "ipc-bench: %s did not print its address\n", exe);
                return r < 0 ? r : -EPIPE;
        }
        if (strcmp(line, b->owned_address) != 0) {
                free(b->owned_address);
                b->owned_address = strdup(line);
                if (!b->owned_address)
                        return -ENOMEM;
        }
        b->address = b->owned_address;
        return 0;
}

/* Stop our broker (SIGTERM, then SIGKILL after a while) and remove its directory. */
void broker_stop(struct bench *b)
{
        if (b->broker_pid > 0) {
                struct child c = {.pid = b->broker_pid, .report_fd = -1, .ctl_fd = -1};

                kill(b->broker_pid, SIGTERM);
                child_reap(&c);
        }
        if (b->socket_path)
                unlink(b->socket_path);
        if (b->tmpdir)
                rmdir(b->tmpdir);
        free(b->socket_path);
        free(b->tmpdir);
        free(b->owned_address);
}

/*
 * The broker's pid as the bus itself tells it (GetConnectionCredentials on
 * the driver). Returns 0 or negative errno; says why on failure.
 */
int broker_query_pid(const struct bench *b, pid_t *ret)
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
            !json_object_is_type(pid, json_type_int) || json_object_get_int64(pid) <= 0 ||
            json_object_get_int64(pid) > INT32_MAX) {
                fprintf(stderr, "ipc-bench: GetConnectionCredentials: no pid in the reply\n");
                return -EBADMSG;
        }
        *ret = (pid_t) json_object_get_int64(pid);
        return 0;
}

/*
 * The pid of the broker under test: ours, else the one the bus tells
 * (--address); 0 when it cannot be known.
 */
pid_t broker_pid_for_usage(const struct bench *b)
{
        pid_t pid = 0;

        if (b->broker_pid > 0)
                return b->broker_pid;
        return broker_query_pid(b, &pid) < 0 ? 0 : pid;
}
