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
/* Append s (NUL-terminated, UTF-8) as a quoted, escaped JSON string. */
void jbuf_put_string(struct jbuf *b, const char *s);
/* Take the text (caller frees); NULL after a failed allocation. */
char *jbuf_steal(struct jbuf *b, size_t *ret_len);
