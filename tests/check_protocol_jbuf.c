/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for protocol/jbuf: the growable text buffer the codec writes
 * JSON with. Appending of every kind, growth, reset and steal, the sticky
 * failure, and jbuf_put_string's escaping, each output checked to be the
 * JSON string jscan_validate accepts and decoding back to the input.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/jbuf.h"
#include "protocol/jscan.h"
#include "tests/check-run.h"

static struct jbuf b;

static void setup(void)
{
        jbuf_init(&b);
}

static void teardown(void)
{
        jbuf_deinit(&b);
}

/* The buffer holds exactly `text` (NUL-terminated, len right). */
static void expect_text(const char *text)
{
        ck_assert(!b.failed);
        ck_assert_uint_eq(b.len, strlen(text));
        ck_assert_ptr_nonnull(b.data);
        ck_assert_str_eq(b.data, text);
}

/* put_string(s) must give exactly `expected`, a valid JSON string that decodes back to s. */
static void expect_string(const char *s, const char *expected)
{
        enum jscan_kind kind = JSCAN_NONE;
        char *decoded;
        size_t n;
        int r;

        jbuf_reset(&b);
        jbuf_put_string(&b, s);
        expect_text(expected);

        r = jscan_validate(b.data, b.len, 64, &kind);
        ck_assert_msg(r == 0, "jscan_validate rejected %s (%d)", b.data, r);
        ck_assert_int_eq(kind, JSCAN_STRING);

        decoded = malloc(b.len);
        ck_assert_ptr_nonnull(decoded);
        n = jscan_string_decode(b.data + 1, b.len - 2, decoded);
        ck_assert_uint_eq(n, strlen(s));
        ck_assert_str_eq(decoded, s);
        free(decoded);
}

START_TEST(test_empty)
{
        char *s;
        size_t len = 99;

        ck_assert_uint_eq(b.len, 0);
        ck_assert(!b.failed);
        /* stealing a buffer nothing was written to gives an empty text (not
         * NULL, which means failure) */
        s = jbuf_steal(&b, &len);
        ck_assert_ptr_nonnull(s);
        ck_assert_uint_eq(len, 0);
        ck_assert_str_eq(s, "");
        free(s);

        /* after a write and a reset, it is "" */
        jbuf_puts(&b, "x");
        jbuf_reset(&b);
        s = jbuf_steal(&b, &len);
        ck_assert_ptr_nonnull(s);
        ck_assert_str_eq(s, "");
        ck_assert_uint_eq(len, 0);
        free(s);
}
END_TEST

START_TEST(test_append)
{
        jbuf_puts(&b, "{\"a\":");
        jbuf_putc(&b, '1');
        jbuf_put(&b, ",\"b\":2xyz", 6);
        jbuf_printf(&b, ",\"%s\":%d%c", "c", -3, '}');
        expect_text("{\"a\":1,\"b\":2,\"c\":-3}");
        jbuf_puts(&b, "");
        jbuf_put(&b, "ignored", 0);
        jbuf_printf(&b, "%s", "");
        expect_text("{\"a\":1,\"b\":2,\"c\":-3}");
}
END_TEST

/* Bytes are bytes: a NUL inside counts toward len, and the text stays terminated after it. */
START_TEST(test_put_binary)
{
        jbuf_put(&b, "a\0b", 3);
        ck_assert_uint_eq(b.len, 3);
        ck_assert(memcmp(b.data, "a\0b", 4) == 0);
}
END_TEST

/* Growth far past the first allocation keeps every byte, in order. */
START_TEST(test_growth)
{
        char *big = malloc(100001);

        ck_assert_ptr_nonnull(big);
        for (int i = 0; i < 100000; i++) {
                char c = (char) ('a' + i % 26);

                big[i] = c;
                jbuf_putc(&b, c);
        }
        big[100000] = '\0';
        expect_text(big);
        ck_assert_uint_ge(b.cap, b.len + 1);

        /* a printf longer than the space left */
        jbuf_reset(&b);
        jbuf_puts(&b, "x");
        jbuf_printf(&b, "%s|%s", big, big);
        ck_assert_uint_eq(b.len, 1 + 100000 + 1 + 100000);
        ck_assert(b.data[0] == 'x' && b.data[100001] == '|');
        ck_assert(memcmp(b.data + 1, big, 100000) == 0);
        ck_assert(memcmp(b.data + 100002, big, 100000) == 0);
        ck_assert(b.data[b.len] == '\0');
        free(big);
}
END_TEST

START_TEST(test_reset)
{
        char *data;

        jbuf_puts(&b, "some text that is long enough to allocate");
        data = b.data;
        jbuf_reset(&b);
        expect_text("");
        /* the allocation is kept */
        ck_assert_ptr_eq(b.data, data);
        jbuf_puts(&b, "again");
        expect_text("again");
}
END_TEST

START_TEST(test_steal)
{
        size_t len = 0;
        char *s;

        jbuf_printf(&b, "{\"n\":%u}", 42u);
        s = jbuf_steal(&b, &len);
        ck_assert_ptr_nonnull(s);
        ck_assert_str_eq(s, "{\"n\":42}");
        ck_assert_uint_eq(len, 8);
        /* the buffer gave it away: it is empty and can be used again */
        ck_assert_ptr_null(b.data);
        ck_assert_uint_eq(b.len, 0);
        jbuf_puts(&b, "next");
        expect_text("next");
        ck_assert_ptr_ne(b.data, s);
        ck_assert_str_eq(s, "{\"n\":42}");
        free(s);

        /* ret_len may be NULL */
        s = jbuf_steal(&b, NULL);
        ck_assert_str_eq(s, "next");
        free(s);
}
END_TEST

/* After a failed allocation nothing more is written and steal returns NULL. */
START_TEST(test_failure_sticky)
{
        size_t len = 77;

        jbuf_puts(&b, "before");
        b.failed = true;
        jbuf_puts(&b, "after");
        jbuf_putc(&b, 'x');
        jbuf_printf(&b, "%d", 1);
        jbuf_put_string(&b, "s");
        ck_assert_uint_eq(b.len, strlen("before"));
        ck_assert_ptr_null(jbuf_steal(&b, &len));
        ck_assert_uint_eq(len, 77);
        /* steal released the buffer: deinit after it is harmless */
        ck_assert_ptr_null(b.data);
}
END_TEST

/* jbuf_extend hands out room at the end, the text staying NUL-terminated after it. */
START_TEST(test_extend)
{
        char *p;

        jbuf_puts(&b, "ab");
        p = jbuf_extend(&b, 3);
        ck_assert_ptr_eq(p, b.data + 2);
        memcpy(p, "cde", 3);
        expect_text("abcde");
        p = jbuf_extend(&b, 1000);
        ck_assert_ptr_nonnull(p);
        memset(p, 'x', 1000);
        ck_assert_uint_eq(b.len, 1005);
        ck_assert_int_eq(b.data[1005], '\0');
        b.failed = true;
        ck_assert_ptr_null(jbuf_extend(&b, 1));
}
END_TEST

/* ---- put_string ------------------------------------------------------------ */

START_TEST(test_string_plain)
{
        expect_string("", "\"\"");
        expect_string("hello", "\"hello\"");
        expect_string("org.example.Name", "\"org.example.Name\"");
        expect_string("/a/b", "\"/a/b\""); /* '/' needs no escape */
}
END_TEST

START_TEST(test_string_quote_backslash)
{
        expect_string("\"", "\"\\\"\"");
        expect_string("\\", "\"\\\\\"");
        expect_string("a\"b\\c", "\"a\\\"b\\\\c\"");
        expect_string("\\\"\\\"", "\"\\\\\\\"\\\\\\\"\"");
        expect_string("C:\\path\\", "\"C:\\\\path\\\\\"");
}
END_TEST

START_TEST(test_string_control)
{
        expect_string("\n\t\r\b\f", "\"\\n\\t\\r\\b\\f\"");
        expect_string("\x01", "\"\\u0001\"");
        expect_string("a\037b", "\"a\\u001fb\"");
        expect_string("\x0b\x0e\x10\x1b", "\"\\u000b\\u000e\\u0010\\u001b\"");
        /* DEL is not a control character for JSON */
        expect_string("\x7f", "\"\x7f\"");
}
END_TEST

/* Every control character, each in its escaped form, and the whole run valid. */
START_TEST(test_string_all_controls)
{
        char in[32];

        for (int c = 1; c < 32; c++) {
                char s[2] = {(char) c, '\0'};

                jbuf_reset(&b);
                jbuf_put_string(&b, s);
                ck_assert_msg(b.len == 4 || b.len == 8, "char %d gave %s", c, b.data);
                ck_assert_msg(b.data[1] == '\\', "char %d not escaped: %s", c, b.data);
                for (size_t i = 0; i < b.len; i++)
                        ck_assert_msg((unsigned char) b.data[i] >= 0x20, "raw control byte in output for char %d", c);
                in[c - 1] = (char) c;
        }
        in[31] = '\0';
        expect_string(in, "\"\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r"
                          "\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017"
                          "\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\"");
}
END_TEST

START_TEST(test_string_utf8)
{
        /* é, €, U+1D11E (4 bytes): passed through byte for byte */
        expect_string("h\xc3\xa9llo \xe2\x82\xac \xf0\x9d\x84\x9e", "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9d\x84\x9e\"");
        expect_string("\xe6\x97\xa5\xe6\x9c\xac\"\n", "\"\xe6\x97\xa5\xe6\x9c\xac\\\"\\n\"");
}
END_TEST

/* A string appended after other text, then the whole as one JSON object. */
START_TEST(test_string_in_object)
{
        enum jscan_kind kind;

        jbuf_putc(&b, '{');
        jbuf_put_string(&b, "key \"1\"");
        jbuf_putc(&b, ':');
        jbuf_put_string(&b, "line\nbreak\\ and \x02");
        jbuf_putc(&b, '}');
        expect_text("{\"key \\\"1\\\"\":\"line\\nbreak\\\\ and \\u0002\"}");
        ck_assert_int_eq(jscan_validate(b.data, b.len, 64, &kind), 0);
        ck_assert_int_eq(kind, JSCAN_OBJECT);
}
END_TEST

/* The escaped form of byte c, as JSON wants it written (the test's own reference). */
static void reference_escape(unsigned char c, char *out)
{
        static const char hex[] = "0123456789abcdef";

        switch (c) {
        case '"':
                strcpy(out, "\\\"");
                break;
        case '\\':
                strcpy(out, "\\\\");
                break;
        case '\n':
                strcpy(out, "\\n");
                break;
        case '\t':
                strcpy(out, "\\t");
                break;
        case '\r':
                strcpy(out, "\\r");
                break;
        case '\b':
                strcpy(out, "\\b");
                break;
        case '\f':
                strcpy(out, "\\f");
                break;
        default:
                if (c < 0x20)
                        sprintf(out, "\\u00%c%c", hex[c >> 4], hex[c & 0xf]);
                else
                        sprintf(out, "%c", c);
        }
}

/*
 * Every byte value at every position of a 40-byte string, the string at
 * every alignment, after text of every length mod 16: the writer's copy of
 * the plain runs around it and its escape are exactly the reference's.
 */
START_TEST(test_string_every_byte_every_alignment)
{
        static _Alignas(64) char src[80];
        char want[128], esc[8];

        for (unsigned c = 1; c < 256; c++) {
                reference_escape((unsigned char) c, esc);
                for (size_t align = 0; align < 16; align++) {
                        char *s = src + align;

                        for (size_t pos = 0; pos < 40; pos++) {
                                memset(s, 'x', 40);
                                s[pos] = (char) c;
                                s[40] = '\0';
                                snprintf(want, sizeof(want), "%.*s\"%.*s%s%.*s\"", (int) align, "0123456789abcdef",
                                         (int) pos, s, esc, (int) (39 - pos), s + pos + 1);
                                jbuf_reset(&b);
                                jbuf_put(&b, "0123456789abcdef", align);
                                jbuf_put_string(&b, s);
                                /* (no ck_assert per case: Check marks each one) */
                                if (b.failed || strcmp(b.data, want) != 0)
                                        ck_abort_msg("byte 0x%02x at %zu, alignment %zu: %s, not %s", c, pos, align,
                                                     b.data, want);
                                jbuf_reset(&b);
                                jbuf_put_string_len(&b, s, 40);
                                if (b.failed || strcmp(b.data, want + align) != 0)
                                        ck_abort_msg("(len) byte 0x%02x at %zu: %s", c, pos, b.data);
                        }
                }
        }
}
END_TEST

/* With a length, a NUL is one more control byte to escape. */
START_TEST(test_string_len)
{
        jbuf_put_string_len(&b, "a\0b\"c", 5);
        expect_text("\"a\\u0000b\\\"c\"");
        jbuf_reset(&b);
        jbuf_put_string_len(&b, "abc", 0);
        expect_text("\"\"");
}
END_TEST

/*
 * The checked writer: UTF-8 passes (at every position and alignment), a bad
 * sequence anywhere is refused with the text before it untouched.
 */
START_TEST(test_string_utf8_checked)
{
        static const char *const good[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\x7f"};
        static const char *const bad[] = {"\xff", "\x80", "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80"};
        static _Alignas(64) char src[96];
        char want[128];

        for (size_t align = 0; align < 16; align++) {
                char *s = src + align;

                for (size_t pos = 0; pos <= 40; pos++) {
                        for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
                                size_t n = strlen(good[i]);

                                memset(s, 'x', 40);
                                memmove(s + pos + n, s + pos, 40 - pos);
                                memcpy(s + pos, good[i], n);
                                snprintf(want, sizeof(want), "{\"%.*s\"", (int) (40 + n), s);
                                jbuf_reset(&b);
                                jbuf_putc(&b, '{');
                                if (jbuf_put_string_utf8(&b, s, 40 + n) != 0 || strcmp(b.data, want) != 0)
                                        ck_abort_msg("good %zu at %zu, alignment %zu: %s", i, pos, align, b.data);
                        }
                        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
                                size_t n = strlen(bad[i]);

                                memset(s, 'x', 40);
                                memmove(s + pos + n, s + pos, 40 - pos);
                                memcpy(s + pos, bad[i], n);
                                jbuf_reset(&b);
                                jbuf_putc(&b, '{');
                                if (jbuf_put_string_utf8(&b, s, 40 + n) != -EILSEQ || b.len != 1 ||
                                    strcmp(b.data, "{") != 0)
                                        ck_abort_msg("bad %zu at %zu, alignment %zu: accepted or left %s", i, pos,
                                                     align, b.data);
                        }
                }
        }
        /* escapes still written around valid UTF-8 */
        jbuf_reset(&b);
        ck_assert_int_eq(jbuf_put_string_utf8(&b, "\xc3\xa9\"\n", 4), 0);
        expect_text("\"\xc3\xa9\\\"\\n\"");
}
END_TEST

static Suite *jbuf_suite(void)
{
        Suite *s = suite_create("protocol_jbuf");
        TCase *tc;

        tc = tcase_create("buffer");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_empty);
        tcase_add_test(tc, test_append);
        tcase_add_test(tc, test_put_binary);
        tcase_add_test(tc, test_growth);
        tcase_add_test(tc, test_reset);
        tcase_add_test(tc, test_steal);
        tcase_add_test(tc, test_failure_sticky);
        tcase_add_test(tc, test_extend);
        suite_add_tcase(s, tc);

        tc = tcase_create("put_string");
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_string_plain);
        tcase_add_test(tc, test_string_quote_backslash);
        tcase_add_test(tc, test_string_control);
        tcase_add_test(tc, test_string_all_controls);
        tcase_add_test(tc, test_string_utf8);
        tcase_add_test(tc, test_string_in_object);
        tcase_add_test(tc, test_string_every_byte_every_alignment);
        tcase_add_test(tc, test_string_len);
        tcase_add_test(tc, test_string_utf8_checked);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return check_run(jbuf_suite());
}
