/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the libFuzzer targets: an assertion that aborts (so the
 * fuzzer keeps the input as a crash), and comparison of decoded headers.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* An invariant the code under test must keep; a violation is a finding. */
#define fuzz_assert(cond, ...)                                                                                         \
        do {                                                                                                           \
                if (!(cond)) {                                                                                         \
                        fprintf(stderr, "%s:%d: invariant broken: %s: ", __FILE__, __LINE__, #cond);                   \
                        fprintf(stderr, __VA_ARGS__);                                                                  \
                        fputc('\n', stderr);                                                                           \
                        abort();                                                                                       \
                }                                                                                                      \
        } while (0)

static inline bool fuzz_streq(const char *a, const char *b)
{
        return a == b || (a && b && strcmp(a, b) == 0);
}

/* Whether two decoded headers say the same thing, field by field. */
static inline bool fuzz_header_equal(const struct msg_header *a, const struct msg_header *b)
{
        return a->type == b->type && a->serial == b->serial && a->reply_serial == b->reply_serial &&
               fuzz_streq(a->sender, b->sender) && a->sender_uid == b->sender_uid && a->sender_pid == b->sender_pid &&
               fuzz_streq(a->destination, b->destination) && fuzz_streq(a->path, b->path) &&
               fuzz_streq(a->interface, b->interface) && fuzz_streq(a->member, b->member) &&
               fuzz_streq(a->error_name, b->error_name) && a->no_reply == b->no_reply &&
               a->no_auto_start == b->no_auto_start && a->timeout_ms == b->timeout_ms;
}
