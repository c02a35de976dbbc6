/* SPDX-License-Identifier: MIT */
/* testbus: clocks, the programs under test and files. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/util.h"
#include "tests/lib/internal.h"
#include "util/clock.h"

int64_t testbus_now_ms(void)
{
        return (int64_t) clock_now_msec(CLOCK_MONOTONIC);
}

int testbus_slow_factor(void)
{
        const char *v = getenv("CK_TIMEOUT_MULTIPLIER");
        int f = v ? atoi(v) : 1;

        return f > 1 ? f : 1;
}

uint64_t now_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

int ms_left(int64_t deadline)
{
        int64_t left = deadline - testbus_now_ms();

        return left < 0 ? 0 : left > INT_MAX ? INT_MAX : (int) left;
}

const char *status_text(int status)
{
        static char buf[64];

        if (WIFEXITED(status))
                snprintf(buf, sizeof(buf), "exit status %d", WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
                snprintf(buf, sizeof(buf), "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
        else
                snprintf(buf, sizeof(buf), "wait status 0x%x", status);
        return buf;
}

pid_t wait_deadline(pid_t pid, int *ret_status, int timeout_ms)
{
        int64_t deadline = testbus_now_ms() + timeout_ms;
        long nap_us = 200;

        for (;;) {
                pid_t r = waitpid(pid, ret_status, WNOHANG);

                if (r == pid)
                        return pid;
                if (r < 0 && errno != EINTR) {
                        *ret_status = 0;
                        return pid; /* not our child (any more): nothing to wait for */
                }
                if (testbus_now_ms() >= deadline)
                        return 0;
                usleep((useconds_t) nap_us);
                if (nap_us < 10000)
                        nap_us *= 2;
        }
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        remove(path);
        return 0;
}

void remove_tree(const char *dir)
{
        if (dir[0])
                nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *tmp_dir(void)
{
        const char *t = getenv("TMPDIR");

        /* a socket path must fit sun_path */
        return t && t[0] == '/' && strlen(t) < 40 ? t : "/tmp";
}

const char *testbus_program(const char *env, const char *rel)
{
        static struct {
                const char *rel;
                char path[PATH_MAX];
        } cache[8];
        const char *v = getenv(env);
        char exe[PATH_MAX], *slash;
        ssize_t n;
        size_t i;

        if (v && v[0])
                return v;
        for (i = 0; i < 8 && cache[i].rel; i++)
                if (strcmp(cache[i].rel, rel) == 0)
                        return cache[i].path;
        ck_assert_msg(i < 8, "too many programs");
        /* the build tree: <builddir>/tests/[.libs/]check_x -> <builddir>/<rel> */
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        ck_assert_msg(n > 0, "$%s is not set and /proc/self/exe is unreadable", env);
        exe[n] = '\0';
        for (int up = 0; up < 2 && (slash = strrchr(exe, '/')); up++) {
                *slash = '\0';
                if (up == 0 && strlen(exe) >= 6 && strcmp(exe + strlen(exe) - 6, "/.libs") == 0)
                        exe[strlen(exe) - 6] = '\0';
        }
        snprintf(cache[i].path, sizeof(cache[i].path), "%s/%s", exe, rel);
        cache[i].rel = rel;
        ck_assert_msg(access(cache[i].path, X_OK) == 0, "$%s is not set and %s is not there", env, cache[i].path);
        return cache[i].path;
}

char *testbus_data_file(const char *name, size_t *ret_len)
{
        const char *dir = getenv("IPCBUS_TEST_DATA");
        char path[PATH_MAX], *data;
        struct stat st;
        int fd;

        ck_assert_msg(dir && dir[0], "$IPCBUS_TEST_DATA is not set (make check sets it to tests/data)");
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_msg(fd >= 0 && fstat(fd, &st) == 0, "%s: %s", path, strerror(errno));
        data = malloc((size_t) st.st_size + 1);
        ck_assert_ptr_nonnull(data);
        ck_assert_msg(read(fd, data, (size_t) st.st_size) == st.st_size, "reading %s", path);
        data[st.st_size] = '\0';
        close(fd);
        *ret_len = (size_t) st.st_size;
        return data;
}

const char *file_tail(const char *path, char *buf, size_t size)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        off_t end, start;
        ssize_t n;
        char *nl;

        buf[0] = '\0';
        if (fd < 0)
                return buf;
        end = lseek(fd, 0, SEEK_END);
        start = end > (off_t) size - 1 ? end - (off_t) size + 1 : 0;
        n = pread(fd, buf, size - 1, start);
        close(fd);
        buf[n > 0 ? n : 0] = '\0';
        if (start > 0 && (nl = strchr(buf, '\n')))
                memmove(buf, nl + 1, strlen(nl + 1) + 1);
        return buf;
}

char *file_read(const char *path)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        char *text;
        ssize_t n = 0;

        if (fd >= 0 && fstat(fd, &st) == 0) {
                text = malloc((size_t) st.st_size + 1);
                ck_assert_ptr_nonnull(text);
                n = read(fd, text, (size_t) st.st_size);
        } else {
                text = malloc(1);
                ck_assert_ptr_nonnull(text);
        }
        if (fd >= 0)
                close(fd);
        text[n > 0 ? n : 0] = '\0';
        return text;
}

void testbus_write_text(const char *path, const char *text)
{
        size_t len = strlen(text);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
        ck_assert_msg(write(fd, text, len) == (ssize_t) len, "writing %s: %s", path, strerror(errno));
        close(fd);
}

const char *testbus_test_service(void)
{
        return testbus_program("IPCBUS_TEST_SERVICE", "tests/test-service");
}
