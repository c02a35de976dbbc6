/* SPDX-License-Identifier: MIT */
/*
 * The utility layer's small helpers, shared by protocol/, daemon/, libclient/,
 * tools/ and tests/: cleanup attributes for locals, taking ownership out of a
 * cleanup-managed local, container_of, streq. Like the rest of util/ it does no I/O
 * of its own and knows nothing of the protocol.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

#define container_of(ptr, type, member) ((type *) (void *) ((char *) (ptr) -offsetof(type, member)))

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* Take the value out of a cleanup-managed pointer so the cleanup does nothing. */
#define steal_pointer(pp)                                                                                              \
        ({                                                                                                             \
                __typeof__(*(pp)) _steal_tmp = *(pp);                                                                  \
                *(pp) = NULL;                                                                                          \
                _steal_tmp;                                                                                            \
        })

/* Equal strings; false when either is NULL. */
static inline bool streq(const char *a, const char *b)
{
        return a && b && strcmp(a, b) == 0;
}

static inline void freep(void *p)
{
        free(*(void **) p);
}

static inline void closep(int *fd)
{
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}

/* Close n descriptors (received, never handed on). */
static inline void close_fds(const int *fds, unsigned n)
{
        for (unsigned i = 0; i < n; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
}
