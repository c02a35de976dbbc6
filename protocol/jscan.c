/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/jscan.h"
#include "protocol/proto-error.h"

struct scanner {
        const unsigned char *p;
        const unsigned char *end;
        unsigned depth;
        unsigned max_depth;
};

static void skip_ws(struct scanner *s)
{
        while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
                s->p++;
}

static int hex_value(unsigned char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Read 4 hex digits at p (bounds checked by the caller); -1 if not hex. */
static long hex4(const unsigned char *p)
{
        long v = 0;

        for (int i = 0; i < 4; i++) {
                int h = hex_value(p[i]);
                if (h < 0)
                        return -1;
                v = v * 16 + h;
        }
        return v;
}

/*
 * Length of the UTF-8 sequence at p (lead byte >= 0x80), or 0 when it is not
 * a valid, shortest-form, non-surrogate scalar value (RFC 3629).
 */
static size_t utf8_sequence(const unsigned char *p, const unsigned char *end)
{
        unsigned char c = p[0];
        unsigned char lo = 0x80, hi = 0xbf;
        size_t n;

        if (c >= 0xc2 && c <= 0xdf)
                n = 2;
        else if (c >= 0xe0 && c <= 0xef) {
                n = 3;
                if (c == 0xe0)
                        lo = 0xa0;
                else if (c == 0xed)
                        hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
                n = 4;
                if (c == 0xf0)
                        lo = 0x90;
                else if (c == 0xf4)
                        hi = 0x8f;
        } else
                return 0;
        if ((size_t) (end - p) < n)
                return 0;
        if (p[1] < lo || p[1] > hi)
                return 0;
        for (size_t i = 2; i < n; i++)
                if (p[i] < 0x80 || p[i] > 0xbf)
                        return 0;
        return n;
}

bool jscan_utf8_valid(const char *s, size_t len)
{
        const unsigned char *p = (const unsigned char *) s, *end = p + len;

        while (p < end) {
                size_t n = *p < 0x80 ? 1 : utf8_sequence(p, end);

                if (n == 0)
                        return false;
                p += n;
        }
        return true;
}

/* s->p is just past the opening quote. */
static int scan_string(struct scanner *s)
{
        while (s->p < s->end) {
                unsigned char c = *s->p;

                if (c == '"') {
                        s->p++;
                        return 0;
                }
                if (c < 0x20)
                        return PROTO_E_BAD_JSON;
                if (c < 0x80 && c != '\\') {
                        s->p++;
                        continue;
                }
                if (c >= 0x80) {
                        size_t n = utf8_sequence(s->p, s->end);
                        if (!n)
                                return PROTO_E_BAD_UTF8;
                        s->p += n;
                        continue;
                }
                /* escape */
                if (s->end - s->p < 2)
                        return PROTO_E_BAD_JSON;
                c = s->p[1];
                if (strchr("\"\\/bfnrt", c) && c) {
                        s->p += 2;
                        continue;
                }
                if (c != 'u')
                        return PROTO_E_BAD_JSON;
                if (s->end - s->p < 6)
                        return PROTO_E_BAD_JSON;
                long cp = hex4(s->p + 2);
                if (cp < 0)
                        return PROTO_E_BAD_JSON;
                s->p += 6;
                if (cp == 0)
                        return PROTO_E_BAD_UTF8;
                if (cp >= 0xdc00 && cp <= 0xdfff)
                        return PROTO_E_BAD_UTF8;
                if (cp >= 0xd800 && cp <= 0xdbff) {
                        long lo;
                        if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u')
                                return PROTO_E_BAD_UTF8;
                        lo = hex4(s->p + 2);
                        if (lo < 0)
                                return PROTO_E_BAD_JSON;
                        if (lo < 0xdc00 || lo > 0xdfff)
                                return PROTO_E_BAD_UTF8;
                        s->p += 6;
                }
        }
        return PROTO_E_BAD_JSON;
}

static bool is_digit(unsigned char c)
{
        return c >= '0' && c <= '9';
}

static int scan_number(struct scanner *s)
{
        if (s->p < s->end && *s->p == '-')
                s->p++;
        if (s->p >= s->end)
                return PROTO_E_BAD_JSON;
        if (*s->p == '0')
                s->p++;
        else if (is_digit(*s->p))
                while (s->p < s->end && is_digit(*s->p))
                        s->p++;
        else
                return PROTO_E_BAD_JSON;
        if (s->p < s->end && *s->p == '.') {
                s->p++;
                if (s->p >= s->end || !is_digit(*s->p))
                        return PROTO_E_BAD_JSON;
                while (s->p < s->end && is_digit(*s->p))
                        s->p++;
        }
        if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
                s->p++;
                if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
                        s->p++;
                if (s->p >= s->end || !is_digit(*s->p))
                        return PROTO_E_BAD_JSON;
                while (s->p < s->end && is_digit(*s->p))
                        s->p++;
        }
        return 0;
}

static int scan_literal(struct scanner *s, const char *word)
{
        size_t n = strlen(word);

        if ((size_t) (s->end - s->p) < n || memcmp(s->p, word, n) != 0)
                return PROTO_E_BAD_JSON;
        s->p += n;
        return 0;
}

static int scan_value(struct scanner *s, enum jscan_kind *ret_kind);

/* s->p is at '{' or '['. */
static int scan_container(struct scanner *s, bool object)
{
        unsigned char close = object ? '}' : ']';
        int r;

        if (++s->depth > s->max_depth)
                return PROTO_E_TOO_DEEP;
        s->p++;
        skip_ws(s);
        if (s->p < s->end && *s->p == close) {
                s->p++;
                s->depth--;
                return 0;
        }
        for (;;) {
                if (object) {
                        if (s->p >= s->end || *s->p != '"')
                                return PROTO_E_BAD_JSON;
                        s->p++;
                        r = scan_string(s);
                        if (r)
                                return r;
                        skip_ws(s);
                        if (s->p >= s->end || *s->p != ':')
                                return PROTO_E_BAD_JSON;
                        s->p++;
                        skip_ws(s);
                }
                r = scan_value(s, NULL);
                if (r)
                        return r;
                skip_ws(s);
                if (s->p >= s->end)
                        return PROTO_E_BAD_JSON;
                if (*s->p == close) {
                        s->p++;
                        s->depth--;
                        return 0;
                }
                if (*s->p != ',')
                        return PROTO_E_BAD_JSON;
                s->p++;
                skip_ws(s);
        }
}

static int scan_value(struct scanner *s, enum jscan_kind *ret_kind)
{
        enum jscan_kind kind;
        int r;

        if (s->p >= s->end)
                return PROTO_E_BAD_JSON;
        switch (*s->p) {
        case '{':
                kind = JSCAN_OBJECT;
                r = scan_container(s, true);
                break;
        case '[':
                kind = JSCAN_ARRAY;
                r = scan_container(s, false);
                break;
        case '"':
                kind = JSCAN_STRING;
                s->p++;
                r = scan_string(s);
                break;
        case 't':
                kind = JSCAN_TRUE;
                r = scan_literal(s, "true");
                break;
        case 'f':
                kind = JSCAN_FALSE;
                r = scan_literal(s, "false");
                break;
        case 'n':
                kind = JSCAN_NULL;
                r = scan_literal(s, "null");
                break;
        default:
                kind = JSCAN_NUMBER;
                r = scan_number(s);
                break;
        }
        if (r == 0 && ret_kind)
                *ret_kind = kind;
        return r;
}

int jscan_validate(const char *data, size_t len, unsigned max_depth, enum jscan_kind *ret_kind)
{
        struct scanner s = {
                .p = (const unsigned char *) data,
                .end = (const unsigned char *) data + len,
                .max_depth = max_depth,
        };
        enum jscan_kind kind;
        int r;

        skip_ws(&s);
        r = scan_value(&s, &kind);
        if (r)
                return r;
        skip_ws(&s);
        if (s.p != s.end)
                return PROTO_E_BAD_JSON;
        if (ret_kind)
                *ret_kind = kind;
        return 0;
}

/* --- iteration over validated input: no checks needed, only bounds ------- */

static const char *it_skip_ws(const char *p, const char *end)
{
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
                p++;
        return p;
}

/* p just past an opening quote; returns the closing quote; sets *escaped if a backslash was seen. */
static const char *it_string_end(const char *p, const char *end, bool *escaped)
{
        while (p < end && *p != '"') {
                if (*p == '\\') {
                        *escaped = true;
                        p++;
                }
                p++;
        }
        return p;
}

/* p at the start of a value; returns one past its end. */
static const char *it_value_end(const char *p, const char *end, bool *escaped)
{
        unsigned depth = 0;

        if (*p == '"')
                return it_string_end(p + 1, end, escaped) + 1;
        if (*p != '{' && *p != '[') {
                while (p < end && !strchr(",}] \t\r\n", *p))
                        p++;
                return p;
        }
        for (; p < end; p++) {
                if (*p == '"') {
                        bool dummy = false;
                        p = it_string_end(p + 1, end, &dummy);
                } else if (*p == '{' || *p == '[') {
                        depth++;
                } else if (*p == '}' || *p == ']') {
                        if (--depth == 0)
                                return p + 1;
                }
        }
        return p;
}

int jscan_object_begin(struct jscan_iter *it, const char *data, size_t len)
{
        const char *end = data + len;
        const char *p = it_skip_ws(data, end);

        if (p >= end || *p != '{')
                return PROTO_E_HEADER_NOT_OBJECT;
        it->p = p + 1;
        it->end = end;
        return 0;
}

/* p at a value: fill ret's kind, value and escaped (adding to *escaped); returns one past the value. */
static const char *it_value(const char *p, const char *end, bool escaped, struct jscan_member *ret)
{
        const char *q;

        switch (*p) {
        case '{':
                ret->kind = JSCAN_OBJECT;
                break;
        case '[':
                ret->kind = JSCAN_ARRAY;
                break;
        case '"':
                ret->kind = JSCAN_STRING;
                break;
        case 't':
                ret->kind = JSCAN_TRUE;
                break;
        case 'f':
                ret->kind = JSCAN_FALSE;
                break;
        case 'n':
                ret->kind = JSCAN_NULL;
                break;
        default:
                ret->kind = JSCAN_NUMBER;
                break;
        }
        q = it_value_end(p, end, &escaped);
        if (ret->kind == JSCAN_STRING) {
                ret->value = p + 1;
                ret->value_len = (size_t) (q - p - 2);
        } else {
                ret->value = p;
                ret->value_len = (size_t) (q - p);
        }
        ret->escaped = escaped;
        return q;
}

int jscan_object_next(struct jscan_iter *it, struct jscan_member *ret)
{
        const char *p = it_skip_ws(it->p, it->end);
        const char *q;
        bool escaped = false;

        if (p < it->end && *p == ',')
                p = it_skip_ws(p + 1, it->end);
        if (p >= it->end || *p != '"') {
                it->p = it->end;
                return 0;
        }
        q = it_string_end(p + 1, it->end, &escaped);
        ret->key = p + 1;
        ret->key_len = (size_t) (q - p - 1);
        p = it_skip_ws(q + 1, it->end);
        p = it_skip_ws(p + 1, it->end); /* ':' */
        it->p = it_value(p, it->end, escaped, ret);
        return 1;
}

int jscan_array_begin(struct jscan_iter *it, const char *data, size_t len)
{
        const char *end = data + len;
        const char *p = it_skip_ws(data, end);

        if (p >= end || *p != '[')
                return PROTO_E_BAD_JSON;
        it->p = p + 1;
        it->end = end;
        return 0;
}

int jscan_array_next(struct jscan_iter *it, struct jscan_member *ret)
{
        const char *p = it_skip_ws(it->p, it->end);

        if (p < it->end && *p == ',')
                p = it_skip_ws(p + 1, it->end);
        if (p >= it->end || *p == ']') {
                it->p = it->end;
                return 0;
        }
        ret->key = NULL;
        ret->key_len = 0;
        it->p = it_value(p, it->end, false, ret);
        return 1;
}

static size_t utf8_encode(unsigned long cp, char *dst)
{
        if (cp < 0x80) {
                dst[0] = (char) cp;
                return 1;
        }
        if (cp < 0x800) {
                dst[0] = (char) (0xc0 | (cp >> 6));
                dst[1] = (char) (0x80 | (cp & 0x3f));
                return 2;
        }
        if (cp < 0x10000) {
                dst[0] = (char) (0xe0 | (cp >> 12));
                dst[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
                dst[2] = (char) (0x80 | (cp & 0x3f));
                return 3;
        }
        dst[0] = (char) (0xf0 | (cp >> 18));
        dst[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
        dst[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
        dst[3] = (char) (0x80 | (cp & 0x3f));
        return 4;
}

size_t jscan_string_decode(const char *raw, size_t raw_len, char *dst)
{
        const char *p = raw, *end = raw + raw_len;
        char *o = dst;

        while (p < end) {
                const char *bs = memchr(p, '\\', (size_t) (end - p));
                size_t n = bs ? (size_t) (bs - p) : (size_t) (end - p);

                memcpy(o, p, n);
                o += n;
                p += n;
                if (!bs)
                        break;
                switch (p[1]) {
                case 'b':
                        *o++ = '\b';
                        break;
                case 'f':
                        *o++ = '\f';
                        break;
                case 'n':
                        *o++ = '\n';
                        break;
                case 'r':
                        *o++ = '\r';
                        break;
                case 't':
                        *o++ = '\t';
                        break;
                case 'u': {
                        unsigned long cp = (unsigned long) hex4((const unsigned char *) p + 2);
                        if (cp >= 0xd800 && cp <= 0xdbff) {
                                unsigned long lo = (unsigned long) hex4((const unsigned char *) p + 8);
                                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                                p += 6;
                        }
                        o += utf8_encode(cp, o);
                        p += 6;
                        continue;
                }
                default:
                        *o++ = p[1];
                        break; /* " \ / */
                }
                p += 2;
        }
        *o = '\0';
        return (size_t) (o - dst);
}

bool jscan_key_equal(const struct jscan_member *m, const char *s)
{
        size_t n = strlen(s);
        char buf[512];

        if (!m->escaped)
                return m->key_len == n && memcmp(m->key, s, n) == 0;
        /* each decoded byte takes at most 6 raw bytes */
        if (m->key_len < n || m->key_len > 6 * n || m->key_len >= sizeof(buf))
                return false;
        return jscan_string_decode(m->key, m->key_len, buf) == n && memcmp(buf, s, n) == 0;
}

int jscan_number_to_int64(const char *raw, size_t raw_len, int64_t min, int64_t max, int64_t *ret)
{
        char buf[32];
        char *e;
        long long v;

        if (raw_len == 0 || raw_len >= sizeof(buf))
                return -ERANGE;
        for (size_t i = 0; i < raw_len; i++)
                if (!(is_digit((unsigned char) raw[i]) || (i == 0 && raw[i] == '-')))
                        return -EINVAL;
        memcpy(buf, raw, raw_len);
        buf[raw_len] = '\0';
        errno = 0;
        v = strtoll(buf, &e, 10);
        if (errno || *e)
                return -ERANGE;
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}
