/* SPDX-License-Identifier: MIT */
/*
 * A growable byte buffer for writing JSON text. Allocation failure is sticky:
 * writes after it are ignored and jbuf_steal() returns NULL, so callers check
 * once at the end.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct jbuf {
        char *data; /* NUL-terminated while not failed */
        size_t len;
        size_t cap;
        bool failed;
};

void jbuf_init(struct jbuf *b);
void jbuf_deinit(struct jbuf *b);
void jbuf_reset(struct jbuf *b); /* len = 0, keeps the allocation */
/* Cut the text back to len bytes (no-op when it is shorter, or after a failed allocation). */
void jbuf_truncate(struct jbuf *b, size_t len);
void jbuf_put(struct jbuf *b, const void *p, size_t n);
void jbuf_puts(struct jbuf *b, const char *s);
void jbuf_putc(struct jbuf *b, char c);
void jbuf_printf(struct jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * Append n bytes for the caller to fill in (the text stays NUL-terminated
 * after them): their place, or NULL after a failed allocation.
 */
char *jbuf_extend(struct jbuf *b, size_t n);
/*
 * Append s (NUL-terminated, UTF-8) as a quoted, escaped JSON string: runs
 * that need no escape are copied whole. Bytes >= 0x80 are copied unchecked.
 */
void jbuf_put_string(struct jbuf *b, const char *s);
/* The same for s[0..len) (a NUL byte in it is written \u0000). */
void jbuf_put_string_len(struct jbuf *b, const char *s, size_t len);
/*
 * The same, checking that s[0..len) is UTF-8 as the protocol's validator
 * judges it. Returns 0, or -EILSEQ with nothing appended. (An allocation
 * failure is the buffer's sticky failure, as for every write.)
 */
int jbuf_put_string_utf8(struct jbuf *b, const char *s, size_t len);
/* Take the text (caller frees); NULL after a failed allocation. */
char *jbuf_steal(struct jbuf *b, size_t *ret_len);
