/* SPDX-License-Identifier: MIT */
/* testbus: the broker's /proc readings and the attack tests' bystander. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lib/attack.h"
#include "tests/lib/fixture.h"
#include "tests/lib/service.h"

long testbus_status_kb(struct testbus *tb, const char *field)
{
        char path[64], line[256];
        size_t n = strlen(field);
        long kb = -1;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int) tb->pid);
        f = fopen(path, "re");
        ck_assert_msg(f, "%s: %s", path, strerror(errno));
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, field, n) == 0 && line[n] == ':' && sscanf(line + n + 1, "%ld kB", &kb) == 1)
                        break;
        fclose(f);
        ck_assert_msg(kb > 0, "no %s in %s", field, path);
        return kb;
}

unsigned testbus_fd_count(struct testbus *tb)
{
        char path[64];
        unsigned n = 0;
        struct dirent *e;
        DIR *d;

        snprintf(path, sizeof(path), "/proc/%d/fd", (int) tb->pid);
        d = opendir(path);
        ck_assert_msg(d, "%s: %s", path, strerror(errno));
        while ((e = readdir(d)))
                n += e->d_name[0] != '.';
        closedir(d);
        return n;
}

long testbus_rss_kb(struct testbus *tb)
{
        return testbus_status_kb(tb, "VmRSS");
}

#if defined(__SANITIZE_ADDRESS__)
#define TESTBUS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TESTBUS_ASAN 1
#endif
#endif

bool testbus_memory_bounds_apply(const char *test)
{
#ifdef TESTBUS_ASAN
        fprintf(stderr,
                "%s: memory bounds not checked under AddressSanitizer (its allocator quarantines freed blocks)\n",
                test);
        return false;
#else
        (void) test;
        return true;
#endif
}

long testbus_peak_rss_kb(struct testbus *tb)
{
        return testbus_status_kb(tb, "VmHWM");
}

/*
 * Child: ping the driver (and Echo arg, a service's name, when not NULL)
 * every 10 ms until told "stop", then report "worst MS pings N". A call
 * that fails fails the child.
 */
static int testbus_bystander_run(struct testbus_peer *p, void *arg)
{
        const char *service = arg;
        ipcbus_bus *bus = testbus_peer_connect(p);
        int64_t worst = 0;
        long n = 0;

        testbus_peer_report(p, "ready %s", ipcbus_get_unique_name(bus));
        for (;;) {
                ipcbus_error e = IPCBUS_ERROR_NULL;
                int64_t t0 = testbus_now_ms();
                char *line;
                int r;

                /* Call first: however soon "stop" comes, the report counts one answer at least. */
                r = ipcbus_call(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE, "Ping", NULL,
                                60 * 1000000ull, NULL, &e);
                if (r >= 0 && service)
                        r = ipcbus_call(bus, service, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Echo",
                                        "{\"k\":\"v\"}", 60 * 1000000ull, NULL, &e);
                if (r < 0)
                        testbus_peer_fail(p, "call: %s", r == -EREMOTEIO ? e.name : ipcbus_strerror(r));
                if (testbus_now_ms() - t0 > worst)
                        worst = testbus_now_ms() - t0;
                n++;

                line = testbus_lines_read(&p->cmd, 10);
                free(line);
                if (line || p->cmd.eof)
                        break;
        }
        testbus_peer_report(p, "worst %lld pings %ld", (long long) worst, n);
        ipcbus_unref(bus);
        return 0;
}

void testbus_bystander_start(struct testbus_child *c, const struct testbus_cred *cred, const char *service)
{
        testbus_child_start_cred(testbus_current(), c, cred, testbus_bystander_run, (void *) service);
        testbus_child_ready(c);
}

long testbus_bystander_finish(struct testbus_child *c)
{
        long worst = -1, pings = 0;
        char *line;

        testbus_child_send(c, "stop");
        line = testbus_child_read(c, 120 * 1000);
        ck_assert_msg(sscanf(line, "worst %ld pings %ld", &worst, &pings) == 2, "bystander said: %s", line);
        free(line);
        testbus_child_finish(c);
        ck_assert_msg(pings > 0, "the bystander never got an answer");
        return worst;
}
