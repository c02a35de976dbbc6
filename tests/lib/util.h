/* SPDX-License-Identifier: MIT */
/* testbus: clocks, the programs under test and files. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* How long helpers wait for something that should happen at once (ms). */
#define TESTBUS_WAIT_MS 5000

/* Monotonic clock in milliseconds. */
int64_t testbus_now_ms(void);
/*
 * How many times slower than usual the tests run: $CK_TIMEOUT_MULTIPLIER
 * (10 under make check-valgrind), else 1. Time bounds and timeouts that
 * tests set scale with it.
 */
int testbus_slow_factor(void);

/* Path of a program under test: $env, else rel (e.g. "daemon/ipcbusd") in the build tree. */
const char *testbus_program(const char *env, const char *rel);
/* tests/test-service: $IPCBUS_TEST_SERVICE, else the build tree's. */
const char *testbus_test_service(void);

/* The bytes of a file of tests/data ($IPCBUS_TEST_DATA); caller frees. */
char *testbus_data_file(const char *name, size_t *ret_len);
/* Write text to path (created 0644, or truncated), asserting success. */
void testbus_write_text(const char *path, const char *text);
