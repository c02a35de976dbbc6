/* SPDX-License-Identifier: MIT */
/*
 * Sealed memory files (PROTOCOL.md 14): making one, and the one judgement of
 * whether a descriptor holds bytes nobody can change any more, shared by the
 * broker that forwards a body in a memfd and the library that maps it.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* What memfd_sealed_size finds wrong with a descriptor. */
enum {
        MEMFD_E_NOT_SEALED = 1, /* a seal is missing, or the file cannot carry seals (not a memfd) */
};

/*
 * Whether fd is a file whose bytes and size are sealed (F_SEAL_WRITE,
 * F_SEAL_SHRINK and F_SEAL_GROW, as F_GET_SEALS reports them): 0 with its
 * size in *ret_size, MEMFD_E_NOT_SEALED, or a negative errno when the kernel
 * cannot say (fstat failed).
 */
int memfd_sealed_size(int fd, uint64_t *ret_size);

/*
 * A new memfd (close-on-exec) holding the n buffers one after the other,
 * sealed against writing, shrinking, growing and further seals. Returns 0
 * with *ret_fd, the caller's, or a negative errno (nothing left open).
 */
int memfd_new_sealed(const char *name, const struct iovec *iov, size_t n, int *ret_fd);
