/* SPDX-License-Identifier: MIT */
/* Unit tests for protocol/jscan: one-pass validation and member iteration. */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/jscan.h"
#include "protocol/proto-error.h"
#include "tests/check-run.h"

static int validate(const char *s, enum jscan_kind *kind)
{
        return jscan_validate(s, strlen(s), 64, kind);
}

START_TEST(test_valid)
{
        static const char *const good[] = {
                "{}",
                " { } ",
                "[]",
                "0",
                "-0",
                "1.5e-3",
                "-12E+4",
                "\"x\"",
                "true",
                "false",
                "null",
                "{\"a\":[1,{\"b\":null}],\"c\":\"\\u00e9\\ud83d\\ude00\\n\\/\"}",
                "{\"k\":\"gr\xc3\xbc\xc3\x9f\xe2\x82\xac\xf0\x9f\x98\x80\"}",
        };
        for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
                ck_assert_msg(validate(good[i], NULL) == 0, "rejected %s", good[i]);
}
END_TEST

START_TEST(test_kind)
{
        enum jscan_kind k;
        ck_assert_int_eq(validate("{}", &k), 0);
        ck_assert_int_eq(k, JSCAN_OBJECT);
        ck_assert_int_eq(validate(" [1] ", &k), 0);
        ck_assert_int_eq(k, JSCAN_ARRAY);
        ck_assert_int_eq(validate("\"s\"", &k), 0);
        ck_assert_int_eq(k, JSCAN_STRING);
        ck_assert_int_eq(validate("3", &k), 0);
        ck_assert_int_eq(k, JSCAN_NUMBER);
}
END_TEST

START_TEST(test_bad_json)
{
        static const char *const bad[] = {
                "",
                " ",
                "{",
                "}",
                "{\"a\"}",
                "{\"a\":}",
                "{\"a\":1,}",
                "[1,]",
                "[1 2]",
                "01",
                "1.",
                ".5",
                "1e",
                "-",
                "+1",
                "tru",
                "nul",
                "{a:1}",
                "{\"a\":1}x",
                "{} {}",
                "'x'",
                "\"\\x\"",
                "\"\\u12\"",
                "\"abc",
                "{\"a\":\"\t\"}",
                "[\"\\uZZZZ\"]",
                "NaN",
                "Infinity",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
                ck_assert_msg(validate(bad[i], NULL) == PROTO_E_BAD_JSON, "accepted or misjudged '%s': %d", bad[i],
                              validate(bad[i], NULL));
}
END_TEST

/* A NUL in a string (escaped or a zero byte) is told apart, with where the first one is (PROTOCOL.md 2). */
START_TEST(test_nul)
{
        enum jscan_kind kind = JSCAN_NONE;
        size_t at = 99;

        ck_assert_int_eq(jscan_validate_at("\"\\u0000\"", 8, 64, &kind, &at), PROTO_E_NUL);
        ck_assert_int_eq(kind, JSCAN_STRING);
        ck_assert_uint_eq(at, 1);
        ck_assert_int_eq(jscan_validate_at("{\"a\":1,\"b\0\":[\"\\u0000\"]}", 23, 64, &kind, &at), PROTO_E_NUL);
        ck_assert_int_eq(kind, JSCAN_OBJECT);
        ck_assert_uint_eq(at, 9);
        /* a NUL where JSON is broken as well: the break is what counts */
        ck_assert_int_eq(jscan_validate_at("{\"a\\u0000\":}", 12, 64, NULL, &at), PROTO_E_BAD_JSON);
        ck_assert_uint_eq(at, 11);
        ck_assert_int_eq(jscan_validate_at("{\"a\":1,\0}", 9, 64, NULL, &at), PROTO_E_BAD_JSON);
        ck_assert_uint_eq(at, 7);
        /* where other faults are */
        ck_assert_int_eq(jscan_validate_at("{\"a\":\"\xff\"}", 9, 64, NULL, &at), PROTO_E_BAD_UTF8);
        ck_assert_uint_eq(at, 6);
        ck_assert_int_eq(jscan_validate_at("[[[1]]]", 7, 2, NULL, &at), PROTO_E_TOO_DEEP);
        ck_assert_uint_eq(at, 2);
        /* a valid text leaves the offset alone */
        at = 99;
        ck_assert_int_eq(jscan_validate_at("{\"a\":\"\\u0001\"}", 14, 64, NULL, &at), 0);
        ck_assert_uint_eq(at, 99);
}
END_TEST

START_TEST(test_bad_utf8)
{
        static const char *const bad[] = {
                "\"\xff\"",             /* invalid byte */
                "\"\xc0\xaf\"",         /* overlong */
                "\"\xe0\x80\xaf\"",     /* overlong */
                "\"\xed\xa0\x80\"",     /* raw surrogate */
                "\"\xf4\x90\x80\x80\"", /* above U+10FFFF */
                "\"\xc3\"",             /* truncated */
                "\"\\ud800\"",          /* lone high surrogate escape */
                "\"\\udc00\"",          /* lone low surrogate escape */
                "\"\\ud800\\u0041\"",   /* high surrogate then non-low */
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
                ck_assert_msg(validate(bad[i], NULL) == PROTO_E_BAD_UTF8, "case %zu: %d", i, validate(bad[i], NULL));
        /* a raw control character inside a string is not JSON */
        ck_assert_int_eq(jscan_validate("\"a\x01z\"", 5, 64, NULL), PROTO_E_BAD_JSON);
        /* bytes above 0x7f outside strings are not JSON */
        ck_assert_int_eq(validate("{\"a\":1\xc3\xa9}", NULL), PROTO_E_BAD_JSON);
        /* the same judgement on bare text */
        ck_assert(jscan_utf8_valid("h\xc3\xa9llo \xf0\x9f\x98\x80", 11));
        ck_assert(jscan_utf8_valid("", 0));
        ck_assert(!jscan_utf8_valid("\xff", 1));
        ck_assert(!jscan_utf8_valid("\xc0\xaf", 2));
        ck_assert(!jscan_utf8_valid("\xed\xa0\x80", 3));
        ck_assert(!jscan_utf8_valid("a\xc3", 2));
}
END_TEST

START_TEST(test_depth)
{
        char buf[300];
        size_t n = 0;

        for (int i = 0; i < 64; i++)
                buf[n++] = '[';
        for (int i = 0; i < 64; i++)
                buf[n++] = ']';
        ck_assert_int_eq(jscan_validate(buf, n, 64, NULL), 0);
        n = 0;
        for (int i = 0; i < 65; i++)
                buf[n++] = '[';
        for (int i = 0; i < 65; i++)
                buf[n++] = ']';
        ck_assert_int_eq(jscan_validate(buf, n, 64, NULL), PROTO_E_TOO_DEEP);
        ck_assert_int_eq(validate("{\"a\":{\"b\":{}}}", NULL), 0);
        ck_assert_int_eq(jscan_validate("{\"a\":{\"b\":{}}}", 14, 2, NULL), PROTO_E_TOO_DEEP);
}
END_TEST

START_TEST(test_iterate)
{
        const char *s = " { \"a\" : \"x\\\"y\" , \"b\":[1,{\"c\":\"}\"}], \"k\\u0065y\":true,\"n\":-5 ,\"o\":{}} ";
        struct jscan_iter it;
        struct jscan_member m;
        char buf[64];
        int64_t v;

        ck_assert_int_eq(validate(s, NULL), 0);
        ck_assert_int_eq(jscan_object_begin(&it, s, strlen(s)), 0);

        ck_assert_int_eq(jscan_object_next(&it, &m), 1);
        ck_assert(jscan_key_equal(&m, "a"));
        ck_assert_int_eq(m.kind, JSCAN_STRING);
        ck_assert(m.escaped);
        jscan_string_decode(m.value, m.value_len, buf);
        ck_assert_str_eq(buf, "x\"y");

        ck_assert_int_eq(jscan_object_next(&it, &m), 1);
        ck_assert(jscan_key_equal(&m, "b"));
        ck_assert_int_eq(m.kind, JSCAN_ARRAY);
        ck_assert_int_eq(m.value_len, strlen("[1,{\"c\":\"}\"}]"));

        ck_assert_int_eq(jscan_object_next(&it, &m), 1);
        ck_assert(jscan_key_equal(&m, "key"));
        ck_assert(!jscan_key_equal(&m, "k"));
        ck_assert_int_eq(m.kind, JSCAN_TRUE);

        ck_assert_int_eq(jscan_object_next(&it, &m), 1);
        ck_assert(jscan_key_equal(&m, "n"));
        ck_assert_int_eq(m.kind, JSCAN_NUMBER);
        ck_assert_int_eq(jscan_number_to_int64(m.value, m.value_len, -10, 10, &v), 0);
        ck_assert_int_eq(v, -5);
        ck_assert_int_eq(jscan_number_to_int64(m.value, m.value_len, 0, 10, &v), -ERANGE);

        ck_assert_int_eq(jscan_object_next(&it, &m), 1);
        ck_assert(jscan_key_equal(&m, "o"));
        ck_assert_int_eq(m.kind, JSCAN_OBJECT);
        ck_assert_int_eq(m.value_len, 2);

        ck_assert_int_eq(jscan_object_next(&it, &m), 0);
        ck_assert_int_eq(jscan_object_begin(&it, "[1]", 3), PROTO_E_HEADER_NOT_OBJECT);
}
END_TEST

START_TEST(test_iterate_array)
{
        const char *s = " [ {\"a\":[1,\"]\"]} , \"s\\n\",-2,[] ,null ] ";
        struct jscan_iter it;
        struct jscan_member m;

        ck_assert_int_eq(validate(s, NULL), 0);
        ck_assert_int_eq(jscan_array_begin(&it, s, strlen(s)), 0);
        ck_assert_int_eq(jscan_array_next(&it, &m), 1);
        ck_assert_ptr_null(m.key);
        ck_assert_int_eq(m.kind, JSCAN_OBJECT);
        ck_assert_int_eq(m.value_len, strlen("{\"a\":[1,\"]\"]}"));
        ck_assert_int_eq(jscan_array_next(&it, &m), 1);
        ck_assert_int_eq(m.kind, JSCAN_STRING);
        ck_assert(m.escaped);
        ck_assert_int_eq(m.value_len, 3);
        ck_assert_int_eq(jscan_array_next(&it, &m), 1);
        ck_assert_int_eq(m.kind, JSCAN_NUMBER);
        ck_assert_int_eq(m.value_len, 2);
        ck_assert_int_eq(jscan_array_next(&it, &m), 1);
        ck_assert_int_eq(m.kind, JSCAN_ARRAY);
        ck_assert_int_eq(m.value_len, 2);
        ck_assert_int_eq(jscan_array_next(&it, &m), 1);
        ck_assert_int_eq(m.kind, JSCAN_NULL);
        ck_assert_int_eq(jscan_array_next(&it, &m), 0);

        ck_assert_int_eq(jscan_array_begin(&it, " [ ] ", 5), 0);
        ck_assert_int_eq(jscan_array_next(&it, &m), 0);
        ck_assert_int_eq(jscan_array_begin(&it, "{}", 2), PROTO_E_BAD_JSON);
}
END_TEST

START_TEST(test_decode)
{
        const char *raw = "a\\u00e9\\ud83d\\ude00\\n\\t\\\\\\/b";
        char buf[64];
        size_t n = jscan_string_decode(raw, strlen(raw), buf);

        ck_assert_str_eq(buf, "a\xc3\xa9\xf0\x9f\x98\x80\n\t\\/b");
        ck_assert_uint_eq(n, strlen(buf));
}
END_TEST

START_TEST(test_numbers)
{
        int64_t v;
        ck_assert_int_eq(jscan_number_to_int64("4294967295", 10, 1, 4294967295LL, &v), 0);
        ck_assert_int_eq(v, 4294967295LL);
        ck_assert_int_eq(jscan_number_to_int64("4294967296", 10, 1, 4294967295LL, &v), -ERANGE);
        ck_assert_int_eq(jscan_number_to_int64("1.5", 3, 0, 10, &v), -EINVAL);
        ck_assert_int_eq(jscan_number_to_int64("1e3", 3, 0, 10000, &v), -EINVAL);
        ck_assert_int_eq(jscan_number_to_int64("99999999999999999999999", 23, 0, 10, &v), -ERANGE);
        /* the int64 edges, "-0", a lone '-' */
        ck_assert_int_eq(jscan_number_to_int64("-9223372036854775808", 20, INT64_MIN, INT64_MAX, &v), 0);
        ck_assert(v == INT64_MIN);
        ck_assert_int_eq(jscan_number_to_int64("-9223372036854775809", 20, INT64_MIN, INT64_MAX, &v), -ERANGE);
        ck_assert_int_eq(jscan_number_to_int64("9223372036854775807", 19, INT64_MIN, INT64_MAX, &v), 0);
        ck_assert(v == INT64_MAX);
        ck_assert_int_eq(jscan_number_to_int64("9223372036854775808", 19, INT64_MIN, INT64_MAX, &v), -ERANGE);
        ck_assert_int_eq(jscan_number_to_int64("-0", 2, 0, 10, &v), 0);
        ck_assert_int_eq(v, 0);
        ck_assert_int_eq(jscan_number_to_int64("-", 1, -10, 10, &v), -ERANGE);
        ck_assert_int_eq(jscan_number_to_int64("", 0, -10, 10, &v), -ERANGE);
        ck_assert_int_eq(jscan_number_to_int64("1-", 2, -10, 10, &v), -EINVAL);
        ck_assert_int_eq(jscan_number_to_int64("-5", 2, -10, 10, &v), 0);
        ck_assert_int_eq(v, -5);
}
END_TEST

/* Whether byte c ends a plain run (jscan_plain_run), or with escape_only an escape-free one. */
static bool stops(unsigned char c, bool escape_only)
{
        return c == '"' || c == '\\' || c < 0x20 || (!escape_only && c >= 0x80);
}

/*
 * Every byte value at every position of runs of 48, 100 and 300 bytes (the
 * block loops of each width and their tails), at every alignment, with stop
 * bytes just outside the run: the run ends exactly at the first byte that
 * stops it, or at its end, never reading past it.
 */
START_TEST(test_plain_run_every_byte)
{
        static const size_t lengths[] = {48, 100, 300};
        static _Alignas(64) char buf[384];

        for (size_t l = 0; l < sizeof(lengths) / sizeof(*lengths); l++) {
                size_t len = lengths[l];

                for (int escape_only = 0; escape_only <= 1; escape_only++) {
                        for (size_t align = 0; align < 16; align++) {
                                char *p = buf + align;

                                memset(buf, '"', sizeof(buf));
                                memset(p, 'a', len);
                                for (size_t pos = 0; pos <= len; pos++) {
                                        for (unsigned c = 0; c < 256; c++) {
                                                size_t n, want;

                                                if (pos < len)
                                                        p[pos] = (char) c;
                                                want = pos < len && stops((unsigned char) c, escape_only) ? pos : len;
                                                n = escape_only ? jscan_escape_free_run(p, len)
                                                                : jscan_plain_run(p, len);
                                                /* (no ck_assert per case: Check marks each one, millions are slow) */
                                                if (n != want)
                                                        ck_abort_msg("byte 0x%02x at %zu of %zu, alignment %zu%s: "
                                                                     "%zu, not %zu",
                                                                     c, pos, len, align,
                                                                     escape_only ? " (escape-free)" : "", n, want);
                                                /* a shorter length bounds the run */
                                                n = escape_only ? jscan_escape_free_run(p, pos)
                                                                : jscan_plain_run(p, pos);
                                                if (n != pos)
                                                        ck_abort_msg("byte 0x%02x, length %zu, alignment %zu: %zu", c,
                                                                     pos, align, n);
                                        }
                                        if (pos < len)
                                                p[pos] = 'a';
                                }
                        }
                }
        }
}
END_TEST

/* One piece of string content and what the scanner makes of a string holding it. */
struct piece {
        const char *raw;     /* as it stands between the quotes */
        int verdict;         /* jscan_validate of a string holding it */
        const char *decoded; /* its decoding when valid */
        bool utf8;           /* raw bytes valid UTF-8 (jscan_utf8_valid) */
};

static const struct piece pieces[] = {
        {"\\n", 0, "\n", true},
        {"\\\"", 0, "\"", true},
        {"\\\\", 0, "\\", true},
        {"\\/", 0, "/", true},
        {"\\u00e9", 0, "\xc3\xa9", true},
        {"\\ud83d\\ude00", 0, "\xf0\x9f\x98\x80", true},
        {"\xc3\xa9", 0, "\xc3\xa9", true},
        {"\xe2\x82\xac", 0, "\xe2\x82\xac", true},
        {"\xf0\x9f\x98\x80", 0, "\xf0\x9f\x98\x80", true},
        {"\x7f", 0, "\x7f", true},
        {"\x01", PROTO_E_BAD_JSON, NULL, true},
        {"\x1f", PROTO_E_BAD_JSON, NULL, true},
        {"\t", PROTO_E_BAD_JSON, NULL, true},
        {"\"", PROTO_E_BAD_JSON, NULL, true},
        {"\\x", PROTO_E_BAD_JSON, NULL, true},
        {"\\u12G4", PROTO_E_BAD_JSON, NULL, true},
        {"\\u0000", PROTO_E_NUL, NULL, true},
        {"\\ud800a", PROTO_E_BAD_UTF8, NULL, true},
        {"\xff", PROTO_E_BAD_UTF8, NULL, false},
        {"\x80", PROTO_E_BAD_UTF8, NULL, false},
        {"\xc3", PROTO_E_BAD_UTF8, NULL, false},
        {"\xc0\xaf", PROTO_E_BAD_UTF8, NULL, false},
        {"\xed\xa0\x80", PROTO_E_BAD_UTF8, NULL, false},
        {"\xf4\x90\x80\x80", PROTO_E_BAD_UTF8, NULL, false},
};

/*
 * Each piece at every position of a 40-byte string, the text at every
 * alignment: the same verdict as the piece alone gives, and for a valid one
 * the member's raw value, escape flag and decoding.
 */
START_TEST(test_string_every_alignment)
{
        static _Alignas(64) char buf[160];
        char expect[128], decoded[128];

        for (size_t i = 0; i < sizeof(pieces) / sizeof(*pieces); i++) {
                const struct piece *pc = &pieces[i];
                size_t piece_len = strlen(pc->raw);

                for (size_t align = 0; align < 16; align++) {
                        for (size_t pos = 0; pos <= 40; pos++) {
                                char *text = buf + align, *o = text;
                                struct jscan_iter it;
                                struct jscan_member m;
                                size_t len, raw_len = 40 + piece_len;
                                int r;

                                o += sprintf(o, "{\"k\":\"");
                                memset(o, 'a', pos);
                                memcpy(o + pos, pc->raw, piece_len);
                                memset(o + pos + piece_len, 'b', 40 - pos);
                                o += raw_len;
                                o += sprintf(o, "\"}");
                                len = (size_t) (o - text);
                                r = jscan_validate(text, len, 64, NULL);
                                ck_assert_msg(r == pc->verdict, "piece %zu at %zu, alignment %zu: %d, not %d", i, pos,
                                              align, r, pc->verdict);
                                if (pc->raw[0] != '\\')
                                        ck_assert_int_eq(jscan_utf8_valid(text + 6, raw_len), pc->utf8);
                                if (r != 0)
                                        continue;
                                ck_assert_int_eq(jscan_object_begin(&it, text, len), 0);
                                ck_assert_int_eq(jscan_object_next(&it, &m), 1);
                                ck_assert_int_eq(m.kind, JSCAN_STRING);
                                ck_assert_ptr_eq(m.value, text + 6);
                                ck_assert_uint_eq(m.value_len, raw_len);
                                ck_assert_int_eq(m.escaped, pc->raw[0] == '\\');
                                memset(expect, 'a', pos);
                                strcpy(expect + pos, pc->decoded);
                                memset(expect + pos + strlen(pc->decoded), 'b', 40 - pos);
                                expect[40 + strlen(pc->decoded)] = '\0';
                                ck_assert_uint_eq(jscan_string_decode(m.value, m.value_len, decoded), strlen(expect));
                                ck_assert_str_eq(decoded, expect);
                                ck_assert_int_eq(jscan_object_next(&it, &m), 0);
                        }
                }
        }
}
END_TEST

/* A string that stops at every length, at every alignment, is unterminated. */
START_TEST(test_string_cut_everywhere)
{
        static _Alignas(64) char buf[96];

        for (size_t align = 0; align < 16; align++) {
                char *text = buf + align;

                text[0] = '"';
                memset(text + 1, 'x', 60);
                for (size_t len = 1; len <= 61; len++)
                        ck_assert_int_eq(jscan_validate(text, len, 64, NULL), PROTO_E_BAD_JSON);
                text[61] = '"';
                ck_assert_int_eq(jscan_validate(text, 62, 64, NULL), 0);
        }
}
END_TEST

/* The index: every value a node in document order, each container followed by what it holds. */
START_TEST(test_index)
{
        const char *s = " {\"a\" : [1, {\"b\":\"x\\\"y\"}, []] ,\"k\\u0065y\":\"v\", \"n\":null,\"o\":{}} ";
        struct jscan_node *nodes = NULL;
        size_t n = 0;
        static const struct {
                enum jscan_kind kind;
                const char *text; /* the node's raw text */
                unsigned end;
                bool escaped;
        } want[] = {
                {JSCAN_OBJECT, "{\"a\" : [1, {\"b\":\"x\\\"y\"}, []] ,\"k\\u0065y\":\"v\", \"n\":null,\"o\":{}}", 14,
                 false},
                {JSCAN_STRING, "a", 2, false},
                {JSCAN_ARRAY, "[1, {\"b\":\"x\\\"y\"}, []]", 8, false},
                {JSCAN_NUMBER, "1", 4, false},
                {JSCAN_OBJECT, "{\"b\":\"x\\\"y\"}", 7, false},
                {JSCAN_STRING, "b", 6, false},
                {JSCAN_STRING, "x\\\"y", 7, true},
                {JSCAN_ARRAY, "[]", 8, false},
                {JSCAN_STRING, "k\\u0065y", 9, true},
                {JSCAN_STRING, "v", 10, false},
                {JSCAN_STRING, "n", 11, false},
                {JSCAN_NULL, "null", 12, false},
                {JSCAN_STRING, "o", 13, false},
                {JSCAN_OBJECT, "{}", 14, false},
        };

        ck_assert_int_eq(validate(s, NULL), 0);
        ck_assert_int_eq(jscan_index(s, strlen(s), UINT_MAX, &nodes, &n), 0);
        ck_assert_uint_eq(n, sizeof(want) / sizeof(*want));
        for (size_t i = 0; i < n; i++) {
                ck_assert_msg(nodes[i].kind == want[i].kind, "node %zu: kind %d", i, nodes[i].kind);
                ck_assert_msg(nodes[i].len == strlen(want[i].text) &&
                                      memcmp(s + nodes[i].start, want[i].text, nodes[i].len) == 0,
                              "node %zu: %.*s", i, (int) nodes[i].len, s + nodes[i].start);
                ck_assert_msg(nodes[i].end == want[i].end, "node %zu: end %u", i, nodes[i].end);
                ck_assert_int_eq(!!(nodes[i].flags & JSCAN_NODE_ESCAPED), want[i].escaped);
        }
        free(nodes);

        /* one level: the member "a" is one node, all it holds skipped */
        ck_assert_int_eq(jscan_index(s, strlen(s), 1, &nodes, &n), 0);
        ck_assert_uint_eq(n, 9);
        ck_assert_int_eq(nodes[2].kind, JSCAN_ARRAY);
        ck_assert_uint_eq(nodes[2].len, strlen(want[2].text));
        ck_assert_uint_eq(nodes[2].end, 3);
        ck_assert_int_eq(memcmp(s + nodes[3].start, "k\\u0065y", nodes[3].len), 0);
        ck_assert_uint_eq(nodes[0].end, 9);
        free(nodes);

        /* a scalar alone, and nothing */
        ck_assert_int_eq(jscan_index(" \"s\" ", 5, UINT_MAX, &nodes, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_uint_eq(nodes[0].start, 2);
        ck_assert_uint_eq(nodes[0].len, 1);
        free(nodes);
        nodes = NULL;
        ck_assert_int_eq(jscan_index("", 0, UINT_MAX, &nodes, &n), 0);
        ck_assert_uint_eq(n, 0);
        ck_assert_ptr_null(nodes);
}
END_TEST

/* Text that was not validated is a caller's bug, but the index stays within it and ends. */
START_TEST(test_index_unvalidated)
{
        static const char *const bad[] = {"[}]", "{\"a\"", "{\"a\":", "[1,", "\"abc", "{\"a\" 1}", "[\"\\",
                                          "{:}", "{\"a\":1,,}", "[[[", "{\"a\":[}", "x"};

        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
                struct jscan_node *nodes = NULL;
                size_t n = 0, len = strlen(bad[i]);

                ck_assert_int_eq(jscan_index(bad[i], len, UINT_MAX, &nodes, &n), 0);
                for (size_t k = 0; k < n; k++)
                        ck_assert_msg(nodes[k].start + nodes[k].len <= len && nodes[k].end <= n,
                                      "'%s': node %zu beyond the text", bad[i], k);
                free(nodes);
        }
}
END_TEST

static Suite *jscan_suite(void)
{
        Suite *s = suite_create("protocol_jscan");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_valid);
        tcase_add_test(tc, test_kind);
        tcase_add_test(tc, test_bad_json);
        tcase_add_test(tc, test_bad_utf8);
        tcase_add_test(tc, test_nul);
        tcase_add_test(tc, test_depth);
        tcase_add_test(tc, test_iterate);
        tcase_add_test(tc, test_iterate_array);
        tcase_add_test(tc, test_decode);
        tcase_add_test(tc, test_numbers);
        tcase_add_test(tc, test_plain_run_every_byte);
        tcase_add_test(tc, test_string_every_alignment);
        tcase_add_test(tc, test_string_cut_everywhere);
        tcase_add_test(tc, test_index);
        tcase_add_test(tc, test_index_unvalidated);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return check_run(jscan_suite());
}
