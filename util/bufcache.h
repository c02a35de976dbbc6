/* SPDX-License-Identifier: MIT */
/*
 * A few large buffers kept for reuse, process-wide and thread-safe. Large
 * messages come and go in the same sizes; handing each one's memory back to
 * malloc makes glibc return it to the kernel and fault it in again for the
 * next (a library cannot tune the application's malloc: above its mmap
 * threshold every such buffer is new memory, 256 page faults per MiB, which
 * made 2 MiB bodies of bytes 10 times slower than 1 MiB ones). Buffers of
 * BUFCACHE_MIN to BUFCACHE_MAX bytes are kept, at most BUFCACHE_SLOTS of
 * them and BUFCACHE_KEEP_MAX bytes in all; anything else is plain malloc and
 * free.
 */
#pragma once

#include <stddef.h>

#define BUFCACHE_MIN (64u * 1024u)
/* a 4 MiB body with room around it (a frame's headroom, a memfd's text and NUL) */
#define BUFCACHE_MAX (4u * 1024u * 1024u + 64u * 1024u)
#define BUFCACHE_SLOTS 4u
/* what a call of that size keeps on either side: its argument's and its result's buffers */
#define BUFCACHE_KEEP_MAX (2u * BUFCACHE_MAX)

/* A buffer of at least `size` bytes: a kept one of at most twice that, or a
 * new one. *ret_cap is its real size, for bufcache_free(). NULL when out of memory. */
void *bufcache_alloc(size_t size, size_t *ret_cap);

/* Give back p (cap bytes, as bufcache_alloc() said, or as malloc'd): kept or freed. Takes NULL. */
void bufcache_free(void *p, size_t cap);

/* Free every kept buffer (an idle process). */
void bufcache_trim(void);

/* The bytes kept now (at most the bound in force: BUFCACHE_KEEP_MAX unless set). */
size_t bufcache_kept(void);

/*
 * Keep only buffers of at most max bytes, keep_max in all, from now on (a
 * process whose large buffers have another home: ipcbusd, whose heap keeps
 * freed memory until it is idle, so that a bigger cache would only add to
 * what it holds). Buffers kept already stay until taken or trimmed.
 */
void bufcache_set_limits(size_t max, size_t keep_max);
