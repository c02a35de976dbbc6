/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/jbuf.h"

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

void jbuf_put_string(struct jbuf *b, const char *s)
{
        static const char hex[] = "0123456789abcdef";
        const char *run = s;

        jbuf_putc(b, '"');
        for (const char *p = s; *p; p++) {
                unsigned char c = (unsigned char) *p;
                char esc[6];
                size_t n = 0;

                if (c == '"' || c == '\\') {
                        esc[0] = '\\';
                        esc[1] = (char) c;
                        n = 2;
                } else if (c < 0x20) {
                        esc[0] = '\\';
                        switch (c) {
                        case '\n':
                                esc[1] = 'n';
                                n = 2;
                                break;
                        case '\t':
                                esc[1] = 't';
                                n = 2;
                                break;
                        case '\r':
                                esc[1] = 'r';
                                n = 2;
                                break;
                        case '\b':
                                esc[1] = 'b';
                                n = 2;
                                break;
                        case '\f':
                                esc[1] = 'f';
                                n = 2;
                                break;
                        default:
                                memcpy(esc + 1, "u00", 3);
                                esc[4] = hex[c >> 4];
                                esc[5] = hex[c & 0xf];
                                n = 6;
                        }
                }
                if (n) {
                        jbuf_put(b, run, (size_t) (p - run));
                        jbuf_put(b, esc, n);
                        run = p + 1;
                }
        }
        jbuf_puts(b, run);
        jbuf_putc(b, '"');
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
