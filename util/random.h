/* SPDX-License-Identifier: MIT */
/* Random bytes for identifiers and hash keys. */
#pragma once

#include <stddef.h>

/*
 * Fill buf with n random bytes without ever blocking (the system bus may
 * start before the entropy pool is ready): getrandom(), else /dev/urandom,
 * else a mix of the clock, the pid and addresses. The last is unpredictable
 * enough for a bus id or a hash key, never for a secret. Cannot fail.
 */
void random_bytes(void *buf, size_t n);
