/* SPDX-License-Identifier: MIT */
/* testbus: suites, fixtures and the helper processes a test leaves behind. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/lib/fixture.h"
#include "tests/check-run.h"
#include "tests/lib/internal.h"

#define HELPERS_MAX 64

char base_dir[128]; /* per test case, holds one directory per test */
static struct testbus current_bus;
static pid_t helpers[HELPERS_MAX]; /* forked helpers of this test not yet reaped */

void helpers_add(pid_t pid)
{
        for (size_t i = 0; i < HELPERS_MAX; i++)
                if (helpers[i] <= 0) {
                        helpers[i] = pid;
                        return;
                }
        kill(pid, SIGKILL);
        ck_abort_msg("more than %d helper processes in one test", HELPERS_MAX);
}

void helpers_remove(pid_t pid)
{
        for (size_t i = 0; i < HELPERS_MAX; i++)
                if (helpers[i] == pid)
                        helpers[i] = 0;
}

void helpers_kill_all(void)
{
        for (size_t i = 0; i < HELPERS_MAX; i++)
                if (helpers[i] > 0) {
                        kill(helpers[i], SIGKILL);
                        waitpid(helpers[i], NULL, 0);
                        helpers[i] = 0;
                }
}

static void base_setup(void)
{
        snprintf(base_dir, sizeof(base_dir), "%s/ipcbus-test-XXXXXX", tmp_dir());
        ck_assert_msg(mkdtemp(base_dir), "mkdtemp(%s): %s", base_dir, strerror(errno));
}

/*
 * A broker directory still there at the end of a test case belongs to a test
 * that failed (testbus_stop removes the others): show its broker's log.
 */
static void base_dump_logs(void)
{
        static char tail[8192];
        DIR *d = opendir(base_dir);
        struct dirent *e;

        if (!d)
                return;
        while ((e = readdir(d))) {
                char path[PATH_MAX];

                if (strncmp(e->d_name, "bus-", 4) != 0)
                        continue;
                snprintf(path, sizeof(path), "%s/%s/log", base_dir, e->d_name);
                if (access(path, R_OK) == 0)
                        fprintf(stderr, "---- %s (a failed test's broker), last lines:\n%s----\n", path,
                                file_tail(path, tail, sizeof(tail)));
        }
        closedir(d);
}

static void base_teardown(void)
{
        base_dump_logs();
        remove_tree(base_dir);
        base_dir[0] = '\0';
}

static void current_setup(void)
{
        testbus_start(&current_bus);
}

static void current_teardown(void)
{
        helpers_kill_all();
        testbus_stop(&current_bus);
}

TCase *testbus_tcase(const char *name)
{
        TCase *tc = tcase_create(name);

        tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
        tcase_add_checked_fixture(tc, current_setup, current_teardown);
        tcase_set_timeout(tc, TESTBUS_TIMEOUT_S);
        return tc;
}

/*
 * Test cases with a configuration. A fixture takes no argument, so each such
 * test case gets its own unchecked setup from a small pool; it runs in the
 * runner before the test case's tests (which are forked from it) and says
 * which configuration they use.
 */
#define CONFIG_TCASES_MAX 8
static const char *config_tcases[CONFIG_TCASES_MAX];
static size_t n_config_tcases;
static const char *current_config;

#define CONFIG_TCASE_SETUP(i)                                                                                          \
        static void config_tcase_setup_##i(void)                                                                       \
        {                                                                                                              \
                current_config = config_tcases[i];                                                                     \
                base_setup();                                                                                          \
        }
CONFIG_TCASE_SETUP(0)
CONFIG_TCASE_SETUP(1)
CONFIG_TCASE_SETUP(2)
CONFIG_TCASE_SETUP(3)
CONFIG_TCASE_SETUP(4)
CONFIG_TCASE_SETUP(5)
CONFIG_TCASE_SETUP(6)
CONFIG_TCASE_SETUP(7)

static void (*const config_tcase_setups[CONFIG_TCASES_MAX])(void) = {
        config_tcase_setup_0, config_tcase_setup_1, config_tcase_setup_2, config_tcase_setup_3,
        config_tcase_setup_4, config_tcase_setup_5, config_tcase_setup_6, config_tcase_setup_7,
};

static void config_setup(void)
{
        testbus_start_config(&current_bus, current_config);
}

TCase *testbus_tcase_config(const char *name, const char *config_json)
{
        TCase *tc = tcase_create(name);

        if (n_config_tcases == CONFIG_TCASES_MAX) {
                fprintf(stderr, "testbus: more than %d test cases with a configuration\n", CONFIG_TCASES_MAX);
                abort();
        }
        config_tcases[n_config_tcases] = config_json;
        tcase_add_unchecked_fixture(tc, config_tcase_setups[n_config_tcases++], base_teardown);
        tcase_add_checked_fixture(tc, config_setup, current_teardown);
        tcase_set_timeout(tc, TESTBUS_TIMEOUT_S);
        return tc;
}

static void bare_setup(void)
{
        memset(&current_bus, 0, sizeof(current_bus));
        current_bus.stdout_fd = -1;
}

TCase *testbus_tcase_bare(const char *name)
{
        TCase *tc = tcase_create(name);

        tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
        tcase_add_checked_fixture(tc, bare_setup, current_teardown);
        tcase_set_timeout(tc, TESTBUS_TIMEOUT_S);
        return tc;
}

struct testbus *testbus_current(void)
{
        return &current_bus;
}

int testbus_run_suite(Suite *s)
{
        return check_run(s);
}

void testbus_mkdtemp(char *buf, size_t size, const char *prefix)
{
        ck_assert_msg(base_dir[0], "testbus_mkdtemp needs a testbus test case");
        ck_assert_int_lt(snprintf(buf, size, "%s/%s-XXXXXX", base_dir, prefix), (int) size);
        ck_assert_msg(mkdtemp(buf), "mkdtemp(%s): %s", buf, strerror(errno));
}
