/* SPDX-License-Identifier: MIT */
/* Unit tests for protocol/jscan: one-pass validation and member iteration. */
#include <check.h>
#include <errno.h>
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
                "\"\\u0000\"",          /* NUL */
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
                ck_assert_msg(validate(bad[i], NULL) == PROTO_E_BAD_UTF8, "case %zu: %d", i, validate(bad[i], NULL));
        /* a raw NUL inside a string is a control character */
        ck_assert_int_eq(jscan_validate("\"a\0b\"", 5, 64, NULL), PROTO_E_BAD_JSON);
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
        tcase_add_test(tc, test_depth);
        tcase_add_test(tc, test_iterate);
        tcase_add_test(tc, test_iterate_array);
        tcase_add_test(tc, test_decode);
        tcase_add_test(tc, test_numbers);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return check_run(jscan_suite());
}
