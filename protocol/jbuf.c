/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/jbuf.h"
#include "protocol/jscan.h"

void jbuf_init(struct jbuf *b)
{
        *b = (struct jbuf){0};
}

void jbuf_deinit(struct jbuf *b)
{
        free(b->data);
        *b = (struct jbuf){0};
}

void jbuf_reset(struct jbuf *b)
{
        b->len = 0;
        b->failed = false;
        if (b->data)
                b->data[0] = '\0';
}

void jbuf_truncate(struct jbuf *b, size_t len)
{
        if (b->failed || len > b->len)
                return;
        b->len = len;
        if (b->data)
                b->data[len] = '\0';
}

/* Make room for n more bytes plus the NUL; false (and sticky failure) when out of memory. */
static bool jbuf_reserve(struct jbuf *b, size_t n)
{
        size_t need, cap;
        char *p;

        if (b->failed)
                return false;
        need = b->len + n + 1;
        if (need <= b->cap)
                return true;
        cap = b->cap ? b->cap : 64;
        while (cap < need)
                cap *= 2;
        p = realloc(b->data, cap);
        if (!p) {
                b->failed = true;
                return false;
        }
        p[b->len] = '\0';
        b->data = p;
        b->cap = cap;
        return true;
}

void jbuf_put(struct jbuf *b, const void *p, size_t n)
{
        if (!jbuf_reserve(b, n))
                return;
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
}

char *jbuf_extend(struct jbuf *b, size_t n)
{
        char *p;

        if (!jbuf_reserve(b, n))
                return NULL;
        p = b->data + b->len;
        b->len += n;
        b->data[b->len] = '\0';
        return p;
}

void jbuf_puts(struct jbuf *b, const char *s)
{
        jbuf_put(b, s, strlen(s));
}

void jbuf_putc(struct jbuf *b, char c)
{
        jbuf_put(b, &c, 1);
}

void jbuf_printf(struct jbuf *b, const char *fmt, ...)
{
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
                b->failed = true;
                return;
        }
        if (!jbuf_reserve(b, (size_t) n))
                return;
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t) n;
}

/*
 * Append s[0..len) quoted, escaping what JSON requires. Plain runs are found
 * a block at a time and copied whole. With check_utf8, a byte sequence that
 * is not UTF-8 stops it: the text is cut back to what it was and false
 * returned.
 */
static bool put_escaped(struct jbuf *b, const char *s, size_t len, bool check_utf8)
{
        static const char hex[] = "0123456789abcdef";
        const char *p = s, *end = s + len, *run = s;
        size_t start = b->len;

        if (!jbuf_reserve(b, len + 2)) /* most strings need no escapes: one growth */
                return true;
        b->data[b->len++] = '"';
        while (p < end) {
                unsigned char c;
                char esc[6] = {'\\'};
                size_t n = 2;

                p += check_utf8 ? jscan_plain_run(p, (size_t) (end - p)) : jscan_escape_free_run(p, (size_t) (end - p));
                if (p == end)
                        break;
                c = (unsigned char) *p;
                if (c >= 0x80) { /* only with check_utf8 */
                        size_t k = jscan_utf8_sequence(p, (size_t) (end - p));

                        if (k == 0) {
                                jbuf_truncate(b, start);
                                return false;
                        }
                        p += k;
                        continue;
                }
                switch (c) {
                case '"':
                case '\\':
                        esc[1] = (char) c;
                        break;
                case '\n':
                        esc[1] = 'n';
                        break;
                case '\t':
                        esc[1] = 't';
                        break;
                case '\r':
                        esc[1] = 'r';
                        break;
                case '\b':
                        esc[1] = 'b';
                        break;
                case '\f':
                        esc[1] = 'f';
                        break;
                default:
                        memcpy(esc + 1, "u00", 3);
                        esc[4] = hex[c >> 4];
                        esc[5] = hex[c & 0xf];
                        n = 6;
                }
                jbuf_put(b, run, (size_t) (p - run));
                jbuf_put(b, esc, n);
                run = ++p;
        }
        jbuf_put(b, run, (size_t) (end - run));
        jbuf_putc(b, '"');
        return true;
}

void jbuf_put_string(struct jbuf *b, const char *s)
{
        put_escaped(b, s, strlen(s), false);
}

void jbuf_put_string_len(struct jbuf *b, const char *s, size_t len)
{
        put_escaped(b, s, len, false);
}

int jbuf_put_string_utf8(struct jbuf *b, const char *s, size_t len)
{
        return put_escaped(b, s, len, true) ? 0 : -EILSEQ;
}

char *jbuf_steal(struct jbuf *b, size_t *ret_len)
{
        char *p;

        if (b->failed || !jbuf_reserve(b, 0)) {
                jbuf_deinit(b);
                return NULL;
        }
        p = b->data;
        if (ret_len)
                *ret_len = b->len;
        *b = (struct jbuf){0};
        return p;
}
