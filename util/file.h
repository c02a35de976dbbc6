/* SPDX-License-Identifier: MIT */
/* Bounded file reading. */
#pragma once

#include <stddef.h>

/*
 * Read a whole file of at most `max` bytes into a NUL-terminated buffer
 * (for configuration and service files). Returns 0, -EFBIG, or -errno.
 */
int file_read_text(const char *path, size_t max, char **ret, size_t *ret_len);
