/* SPDX-License-Identifier: MIT */
/*
 * testbus: line readers over pipes, with timeouts. They also run in forked
 * children, so they use no Check assertion.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Line reader over a pipe, with timeouts. */
struct testbus_lines {
        int fd;
        char *buf;
        size_t len;
        size_t cap;
        bool eof;
};

void testbus_lines_init(struct testbus_lines *l, int fd);
void testbus_lines_deinit(struct testbus_lines *l);
/* The next line without '\n' (malloc'd); NULL on timeout or at EOF (l->eof tells). */
char *testbus_lines_read(struct testbus_lines *l, int timeout_ms);
/* Read everything until EOF or the deadline; returns true at EOF. */
bool testbus_lines_drain(struct testbus_lines *l, int64_t deadline_ms);
