/* SPDX-License-Identifier: MIT */
/*
 * testbus: suites and their fixtures. Every test of a testbus test case
 * gets its own broker in a fresh directory under the test case's directory,
 * which goes at the end of the test case (showing the log of a failed
 * test's broker first).
 */
#pragma once

#include <check.h>
#include <stddef.h>

#include "tests/lib/broker.h"

/* The default per-test timeout (seconds) of testbus_tcase(). */
#define TESTBUS_TIMEOUT_S 20

/*
 * A test case whose every test gets its own broker (testbus_current()),
 * started before and stopped after the test, with a TESTBUS_TIMEOUT_S timeout.
 */
TCase *testbus_tcase(const char *name);
/*
 * The same, with the broker started with --config and this configuration
 * (testbus_start_config). At most 8 such test cases per process.
 */
TCase *testbus_tcase_config(const char *name, const char *config_json);
/*
 * A test case whose tests start their broker themselves (testbus_start*(
 * testbus_current())); it is stopped after the test like the others.
 */
TCase *testbus_tcase_bare(const char *name);
/* The broker of the running test. */
struct testbus *testbus_current(void);
/* Run a suite with CK_NORMAL output; EXIT_SUCCESS or EXIT_FAILURE. */
int testbus_run_suite(Suite *s);

/*
 * A fresh directory "<the test case's directory>/<prefix>-XXXXXX" (0700) into
 * buf; it goes when the test case's directory does, also after a failure.
 */
void testbus_mkdtemp(char *buf, size_t size, const char *prefix);
