/* SPDX-License-Identifier: MIT */
/*
 * testbus: what the attack suites share: the broker's resources as
 * /proc shows them, and a bystander whose calls must keep being answered.
 */
#pragma once

#include <stdbool.h>

#include "tests/lib/broker.h"
#include "tests/lib/child.h"

/* A "Field: N kB" line of the broker's /proc/PID/status (VmSize, VmRSS, ...). */
long testbus_status_kb(struct testbus *tb, const char *field);
/* The broker's open descriptors (/proc/PID/fd). */
unsigned testbus_fd_count(struct testbus *tb);
/* The broker's resident memory (VmRSS) in KiB. */
long testbus_rss_kb(struct testbus *tb);
/* Its peak resident memory so far (VmHWM) in KiB. */
long testbus_peak_rss_kb(struct testbus *tb);
/*
 * Whether the broker's memory figures mean what the config implies: not
 * under AddressSanitizer (the tests are built as the broker is), whose
 * allocator keeps freed blocks in quarantine and pads every block. Says so
 * on stderr when not, naming the test. The plain and valgrind runs check
 * the bounds.
 */
bool testbus_memory_bounds_apply(const char *test);

/*
 * The bystander of the attack tests: a child with cred's uid and gid that
 * calls the driver's Ping (and then `service`'s Echo, when not NULL) every
 * 10 ms, each failure failing it, until testbus_bystander_finish(), which
 * returns its worst latency in ms and asserts it got answers.
 */
void testbus_bystander_start(struct testbus_child *c, const struct testbus_cred *cred, const char *service);
long testbus_bystander_finish(struct testbus_child *c);
