/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/jscan.h"
#include "protocol/proto-error.h"

/*
 * Plain runs: most of a body is string bytes that need no attention, so the
 * scanner and the string writer skip them a block at a time, 16 bytes with
 * SSE2 (part of every x86-64, no flags needed), else 8 with word arithmetic.
 * Long runs go 32 bytes at a time where the processor has AVX2, checked at
 * run time (the function alone is compiled for it). JSCAN_NO_SIMD forces
 * the word version (its unit tests build it so).
 */
#if defined(__SSE2__) && !defined(JSCAN_NO_SIMD)
#include <emmintrin.h>
#define JSCAN_SSE2 1
#else
#define JSCAN_SSE2 0
#endif
#if JSCAN_SSE2 && defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#define JSCAN_AVX2 1
#else
#define JSCAN_AVX2 0
#endif

/* Which bytes end a plain run. */
enum plain_set {
        PLAIN_STRING, /* '"', '\\', a control byte < 0x20, a byte >= 0x80 (to check its UTF-8) */
        PLAIN_ESCAPE, /* '"', '\\', a control byte: what a writer escapes, or an iterator stops at */
        PLAIN_ASCII,  /* a byte >= 0x80 */
};

static inline bool byte_stops(unsigned char c, enum plain_set set)
{
        switch (set) {
        case PLAIN_STRING:
                return c == '"' || c == '\\' || c < 0x20 || c >= 0x80;
        case PLAIN_ESCAPE:
                return c == '"' || c == '\\' || c < 0x20;
        default:
                return c >= 0x80;
        }
}

#if !JSCAN_SSE2
#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
#define LOW7 0x7f7f7f7f7f7f7f7full

/* The high bit of each byte of x that is zero, exactly (no borrow between bytes). */
static inline uint64_t word_zero_bytes(uint64_t x)
{
        return ~(((x & LOW7) + LOW7) | x) & HIGHS;
}

/* The high bit of each byte of x (8 bytes as loaded) that stops a run of set. */
static inline uint64_t word_stops(uint64_t x, enum plain_set set)
{
        uint64_t non_ascii = x & HIGHS;
        uint64_t control = ~(((x & LOW7) + ONES * (0x80 - 0x20)) | x) & HIGHS;
        uint64_t special = word_zero_bytes(x ^ (ONES * '"')) | word_zero_bytes(x ^ (ONES * '\\')) | control;

        return set == PLAIN_STRING ? special | non_ascii : set == PLAIN_ESCAPE ? special : non_ascii;
}

/* The index in memory order of the first byte flagged in a non-zero word_stops result. */
static inline size_t word_first(uint64_t stops)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        return (size_t) __builtin_clzll(stops) / 8;
#else
        return (size_t) __builtin_ctzll(stops) / 8;
#endif
}
#endif

#if JSCAN_SSE2
/* The bytes of the 16 at p that stop a run of set, as the high bit of each. */
static inline __m128i block_stops(const unsigned char *p, enum plain_set set)
{
        __m128i v = _mm_loadu_si128((const __m128i *) (const void *) p);
        __m128i control;

        if (set == PLAIN_ASCII)
                return v; /* the high bits themselves */
        /* signed, so also true for bytes >= 0x80; or unsigned */
        control = set == PLAIN_STRING ? _mm_cmplt_epi8(v, _mm_set1_epi8(0x20))
                                      : _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
        return _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                         _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                            control);
}
#endif

#if JSCAN_AVX2
/* The bytes of the 32 at p that stop a run of set, as the high bit of each. */
__attribute__((target("avx2"))) static inline __m256i block32_stops(const unsigned char *p, enum plain_set set)
{
        __m256i v = _mm256_loadu_si256((const __m256i *) (const void *) p);
        __m256i control;

        if (set == PLAIN_ASCII)
                return v;
        control = set == PLAIN_STRING ? _mm256_cmpgt_epi8(_mm256_set1_epi8(0x20), v)
                                      : _mm256_cmpeq_epi8(_mm256_min_epu8(v, _mm256_set1_epi8(0x1f)), v);
        return _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(v, _mm256_set1_epi8('"')),
                                               _mm256_cmpeq_epi8(v, _mm256_set1_epi8('\\'))),
                               control);
}

/* How far p[0..n) goes in 64-byte blocks in which nothing stops a run of set (a multiple of 64). */
__attribute__((target("avx2"))) static size_t plain_blocks_avx2(const unsigned char *p, size_t n, enum plain_set set)
{
        size_t i = 0;

        for (; i + 64 <= n; i += 64)
                if (_mm256_movemask_epi8(_mm256_or_si256(block32_stops(p + i, set), block32_stops(p + i + 32, set))))
                        break;
        return i;
}
#endif

/* The length of the prefix of p[0..n) in which no byte stops a run of set. */
static inline size_t plain_run(const unsigned char *p, size_t n, enum plain_set set)
{
        size_t i = 0;

#if JSCAN_SSE2
        /* most strings are short: their end is in the first block */
        if (n >= 16) {
                unsigned mask = (unsigned) _mm_movemask_epi8(block_stops(p, set));

                if (mask)
                        return (size_t) __builtin_ctz(mask);
                i = 16;
        }
#endif
#if JSCAN_AVX2
        if (n - i >= 256 && __builtin_cpu_supports("avx2"))
                i += plain_blocks_avx2(p + i, n - i, set);
#endif
#if JSCAN_SSE2
        /* 64 bytes a turn while nothing stops (one test for four blocks), then 16 */
        for (; i + 64 <= n; i += 64) {
                __m128i any = _mm_or_si128(_mm_or_si128(block_stops(p + i, set), block_stops(p + i + 16, set)),
                                           _mm_or_si128(block_stops(p + i + 32, set), block_stops(p + i + 48, set)));

                if (_mm_movemask_epi8(any))
                        break;
        }
        for (; i + 16 <= n; i += 16) {
                unsigned mask = (unsigned) _mm_movemask_epi8(block_stops(p + i, set));

                if (mask)
                        return i + (size_t) __builtin_ctz(mask);
        }
#else
        for (; i + 8 <= n; i += 8) {
                uint64_t x, stops;

                memcpy(&x, p + i, sizeof(x));
                stops = word_stops(x, set);
                if (stops)
                        return i + word_first(stops);
        }
#endif
        while (i < n && !byte_stops(p[i], set))
                i++;
        return i;
}

size_t jscan_plain_run(const char *p, size_t n)
{
        return plain_run((const unsigned char *) p, n, PLAIN_STRING);
}

size_t jscan_escape_free_run(const char *p, size_t n)
{
        return plain_run((const unsigned char *) p, n, PLAIN_ESCAPE);
}

struct scanner {
        const unsigned char *p;
        const unsigned char *end;
        unsigned depth;
        unsigned max_depth;
        const unsigned char *nul; /* the first NUL in a string (a zero byte or \u0000), else NULL */
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

size_t jscan_utf8_sequence(const char *p, size_t n)
{
        const unsigned char *u = (const unsigned char *) p;

        if (n == 0)
                return 0;
        return *u < 0x80 ? 1 : utf8_sequence(u, u + n);
}

bool jscan_utf8_valid(const char *s, size_t len)
{
        const unsigned char *p = (const unsigned char *) s, *end = p + len;

        for (;;) {
                size_t n;

                p += plain_run(p, (size_t) (end - p), PLAIN_ASCII);
                if (p == end)
                        return true;
                n = utf8_sequence(p, end);
                if (n == 0)
                        return false;
                p += n;
        }
}

/* s->p is just past the opening quote. */
static int scan_string(struct scanner *s)
{
        for (;;) {
                unsigned char c;

                s->p += plain_run(s->p, (size_t) (s->end - s->p), PLAIN_STRING);
                if (s->p >= s->end)
                        break;
                c = *s->p;
                if (c == '"') {
                        s->p++;
                        return 0;
                }
                if (c == 0) {
                        /* noted, and the scan goes on: the text may be JSON otherwise */
                        s->nul = s->nul ?: s->p;
                        s->p++;
                        continue;
                }
                if (c < 0x20)
                        return PROTO_E_BAD_JSON;
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
                if (cp == 0)
                        s->nul = s->nul ?: s->p;
                s->p += 6;
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

int jscan_validate_at(const char *data, size_t len, unsigned max_depth, enum jscan_kind *ret_kind,
                      size_t *reterr_offset)
{
        struct scanner s = {
                .p = (const unsigned char *) data,
                .end = (const unsigned char *) data + len,
                .max_depth = max_depth,
        };
        enum jscan_kind kind = JSCAN_NONE;
        int r;

        skip_ws(&s);
        r = scan_value(&s, &kind);
        if (r == 0) {
                skip_ws(&s);
                if (s.p != s.end)
                        r = PROTO_E_BAD_JSON;
        }
        if (r == 0 && s.nul)
                r = PROTO_E_NUL;
        if (r == 0 || r == PROTO_E_NUL) {
                if (ret_kind)
                        *ret_kind = kind;
        }
        if (r && reterr_offset)
                *reterr_offset = (size_t) ((r == PROTO_E_NUL ? s.nul : s.p) - (const unsigned char *) data);
        return r;
}

int jscan_validate(const char *data, size_t len, unsigned max_depth, enum jscan_kind *ret_kind)
{
        return jscan_validate_at(data, len, max_depth, ret_kind, NULL);
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
        for (;;) {
                p += plain_run((const unsigned char *) p, (size_t) (end - p), PLAIN_ESCAPE);
                if (p >= end || *p == '"')
                        return p;
                if (*p == '\\') {
                        *escaped = true;
                        if (++p == end)
                                return p;
                }
                p++;
        }
}

/* p at the start of a value; returns one past its end. */
static const char *it_value_end(const char *p, const char *end, bool *escaped)
{
        unsigned depth = 0;

        if (*p == '"')
                return it_string_end(p + 1, end, escaped) + 1;
        if (*p != '{' && *p != '[') {
                while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' && *p != '\r' &&
                       *p != '\n')
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

/* The kind of the value starting with c (in validated text). */
static enum jscan_kind it_kind(char c)
{
        switch (c) {
        case '{':
                return JSCAN_OBJECT;
        case '[':
                return JSCAN_ARRAY;
        case '"':
                return JSCAN_STRING;
        case 't':
                return JSCAN_TRUE;
        case 'f':
                return JSCAN_FALSE;
        case 'n':
                return JSCAN_NULL;
        default:
                return JSCAN_NUMBER;
        }
}

/* p at a value: fill ret's kind, value and escaped (adding to *escaped); returns one past the value. */
static const char *it_value(const char *p, const char *end, bool escaped, struct jscan_member *ret)
{
        const char *q;

        ret->kind = it_kind(*p);
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

/* --- the index of a validated text ------------------------------------------ */

struct indexer {
        const char *text;
        const char *p;
        const char *end;
        struct jscan_node *nodes;
        size_t n;
        size_t cap;
        unsigned max_depth;
        bool failed;
};

/* Append a node of kind for the value at p; its index, or SIZE_MAX out of memory. */
static size_t index_add(struct indexer *x, enum jscan_kind kind, const char *p)
{
        if (x->n == x->cap) {
                size_t cap = x->cap ? 2 * x->cap : 16;
                struct jscan_node *nodes = realloc(x->nodes, cap * sizeof(*nodes));

                if (!nodes) {
                        x->failed = true;
                        return SIZE_MAX;
                }
                x->nodes = nodes;
                x->cap = cap;
        }
        x->nodes[x->n] = (struct jscan_node){.start = (uint32_t) (p - x->text), .kind = (uint8_t) kind};
        return x->n++;
}

/* The string at x->p (its opening quote) as a node; x->p goes past it. */
static void index_string(struct indexer *x)
{
        bool escaped = false;
        const char *q = it_string_end(x->p + 1, x->end, &escaped);
        size_t i = index_add(x, JSCAN_STRING, x->p + 1);

        if (i != SIZE_MAX) {
                x->nodes[i].len = (uint32_t) (q - x->p - 1);
                x->nodes[i].flags = escaped ? JSCAN_NODE_ESCAPED : 0;
                x->nodes[i].end = (uint32_t) x->n;
        }
        x->p = q < x->end ? q + 1 : q; /* (bounded even on text that was not validated) */
}

/* The value at x->p, `depth` containers deep, and all it holds; x->p goes past it. */
static void index_value(struct indexer *x, unsigned depth)
{
        const char *p = x->p;
        bool object = *p == '{', dummy = false;
        size_t i;

        if (*p == '"') {
                index_string(x);
                return;
        }
        i = index_add(x, it_kind(*p), p);
        if (i == SIZE_MAX)
                return;
        if ((object || *p == '[') && depth < x->max_depth) {
                /* opened: its end is found by indexing what it holds, in the same pass */
                x->p = it_skip_ws(p + 1, x->end);
                while (!x->failed && x->p < x->end && *x->p != (object ? '}' : ']')) {
                        const char *before = x->p;

                        if (object) {
                                index_string(x);
                                x->p = it_skip_ws(x->p, x->end);
                                if (x->p < x->end) /* ':' */
                                        x->p = it_skip_ws(x->p + 1, x->end);
                                if (x->p >= x->end)
                                        break;
                        }
                        index_value(x, depth + 1);
                        x->p = it_skip_ws(x->p, x->end);
                        if (x->p < x->end && *x->p == ',')
                                x->p = it_skip_ws(x->p + 1, x->end);
                        if (x->p == before) /* text that was not validated: stop, never loop */
                                break;
                }
                if (x->p < x->end)
                        x->p++;
        } else {
                x->p = it_value_end(p, x->end, &dummy);
        }
        x->nodes[i].len = (uint32_t) (x->p - p);
        x->nodes[i].end = (uint32_t) x->n;
}

int jscan_index(const char *text, size_t len, unsigned max_depth, struct jscan_node **ret, size_t *ret_n)
{
        struct indexer x = {.text = text, .end = text + len, .max_depth = max_depth};

        if (len > UINT32_MAX)
                return -E2BIG;
        x.p = it_skip_ws(text, x.end);
        if (x.p < x.end)
                index_value(&x, 0);
        if (x.failed) {
                free(x.nodes);
                return -ENOMEM;
        }
        *ret = x.nodes;
        *ret_n = x.n;
        return 0;
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
        char buf[512];
        size_t n;

        /* most keys differ from the first byte (the header's field lookup tries each name) */
        if (!m->escaped && (m->key_len == 0 ? *s != '\0' : *m->key != *s))
                return false;
        n = strlen(s);
        if (!m->escaped)
                return m->key_len == n && memcmp(m->key, s, n) == 0;
        /* each decoded byte takes at most 6 raw bytes */
        if (m->key_len < n || m->key_len > 6 * n || m->key_len >= sizeof(buf))
                return false;
        return jscan_string_decode(m->key, m->key_len, buf) == n && memcmp(buf, s, n) == 0;
}

int jscan_number_to_int64(const char *raw, size_t raw_len, int64_t min, int64_t max, int64_t *ret)
{
        bool negative = raw_len > 0 && raw[0] == '-';
        uint64_t magnitude = 0, limit;
        int64_t v;

        if (raw_len == 0 || raw_len >= 32)
                return -ERANGE;
        for (size_t i = 0; i < raw_len; i++)
                if (!(is_digit((unsigned char) raw[i]) || (i == 0 && raw[i] == '-')))
                        return -EINVAL;
        if (raw_len == (size_t) negative)
                return -ERANGE; /* "-" */
        limit = negative ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX;
        for (size_t i = negative; i < raw_len; i++) {
                uint64_t d = (uint64_t) (raw[i] - '0');

                if (magnitude > (limit - d) / 10)
                        return -ERANGE;
                magnitude = magnitude * 10 + d;
        }
        v = negative ? (int64_t) (0 - magnitude) : (int64_t) magnitude;
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}
