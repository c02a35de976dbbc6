/* SPDX-License-Identifier: MIT */
/*
 * What building and reading typed bodies share: the format scanner, the
 * names of the types, base64, and the member path that errors name.
 */
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "libclient/bus-internal.h"
#include "protocol/jscan.h"

static const char format_letters[] = "bixutdsyhvn";

static bool is_separator(char c)
{
        return c == ' ' || c == ',' || c == '\t' || c == '\n';
}

static bool is_name_start(char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool is_name_char(char c)
{
        return is_name_start(c) || (c >= '0' && c <= '9');
}

/* Scan "name:" (or "%:") at f->p into ret. Returns 0 or -EINVAL. */
static int fmt_name(struct fmt *f, struct fmt_item *ret)
{
        const char *start = f->p;
        size_t n;

        if (*f->p == '%') {
                ret->percent = true;
                f->p++;
        } else {
                if (!is_name_start(*f->p))
                        return client_fail(-EINVAL, "format '%s': a name (name:T) expected at offset %zu", f->format,
                                           (size_t) (f->p - f->format));
                while (is_name_char(*f->p))
                        f->p++;
                n = (size_t) (f->p - start);
                if (n >= sizeof(ret->name_buf))
                        return client_fail(-EINVAL, "format '%s': a name longer than 255 bytes", f->format);
                memcpy(ret->name_buf, start, n);
                ret->name_buf[n] = '\0';
                ret->name = ret->name_buf;
        }
        if (*f->p != ':')
                return client_fail(-EINVAL, "format '%s': ':' expected after the name at offset %zu", f->format,
                                   (size_t) (f->p - f->format));
        f->p++;
        return 0;
}

int fmt_next(struct fmt *f, bool named, char end, struct fmt_item *ret)
{
        int r;

        while (is_separator(*f->p))
                f->p++;
        if (*f->p == end)
                return 0;
        if (*f->p == '\0' || *f->p == '}')
                return client_fail(-EINVAL, "format '%s': unbalanced '{' '}'", f->format);

        ret->type = 0;
        ret->optional = false;
        ret->percent = false;
        ret->name = NULL;
        if (named) {
                r = fmt_name(f, ret);
                if (r < 0)
                        return r;
        }
        if (*f->p == '?') {
                ret->optional = true;
                f->p++;
        }
        if (*f->p == '{' || (*f->p != '\0' && strchr(format_letters, *f->p))) {
                ret->type = *f->p++;
                return 1;
        }
        if (*f->p == '\0')
                return client_fail(-EINVAL, "format '%s': a type expected at its end", f->format);
        return client_fail(-EINVAL, "format '%s': unknown type '%c' at offset %zu (types: b i x u t d s y h v n {...})",
                           f->format, *f->p, (size_t) (f->p - f->format));
}

const char *value_type_name(char type)
{
        switch (type) {
        case 'b':
                return "bool";
        case 'i':
        case 'x':
                return "int";
        case 'u':
        case 't':
                return "uint";
        case 'd':
                return "double";
        case 's':
                return "string";
        case 'y':
                return "bytes";
        case 'h':
                return "fd";
        case 'v':
                return "any";
        case 'n':
                return "null";
        case '{':
                return "struct";
        default:
                return "?";
        }
}

/* ---- base64 (RFC 4648, standard alphabet, padded) ---- */

static const char base64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Written straight into the buffer, 4 characters for each 3 bytes. */
void value_base64_put(struct jbuf *b, const uint8_t *p, size_t n)
{
        char *out = jbuf_extend(b, (n + 2) / 3 * 4 + 2);
        size_t i = 0;

        if (!out)
                return;
        *out++ = '"';
        for (; i + 3 <= n; i += 3) {
                uint32_t v = (uint32_t) p[i] << 16 | (uint32_t) p[i + 1] << 8 | p[i + 2];

                out[0] = base64_alphabet[v >> 18];
                out[1] = base64_alphabet[(v >> 12) & 63];
                out[2] = base64_alphabet[(v >> 6) & 63];
                out[3] = base64_alphabet[v & 63];
                out += 4;
        }
        if (i < n) {
                uint32_t v = (uint32_t) p[i] << 16 | (i + 1 < n ? (uint32_t) p[i + 1] << 8 : 0);

                out[0] = base64_alphabet[v >> 18];
                out[1] = base64_alphabet[(v >> 12) & 63];
                out[2] = i + 1 < n ? base64_alphabet[(v >> 6) & 63] : '=';
                out[3] = '=';
                out += 4;
        }
        *out = '"';
}

static int base64_value(char c)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        return c == '+' ? 62 : c == '/' ? 63 : -1;
}

int value_base64_decode(const char *s, size_t len, uint8_t *out, size_t *ret_len)
{
        size_t n = 0;

        if (len % 4 != 0)
                return -EBADMSG;
        for (size_t i = 0; i < len; i += 4) {
                bool last = i + 4 == len;
                int pad = last ? (s[i + 3] == '=') + (s[i + 2] == '=' && s[i + 3] == '=') : 0;
                uint32_t v = 0;

                for (int k = 0; k < 4 - pad; k++) {
                        int d = base64_value(s[i + k]);

                        if (d < 0)
                                return -EBADMSG;
                        v |= (uint32_t) d << (18 - 6 * k);
                }
                out[n++] = (uint8_t) (v >> 16);
                if (pad < 2)
                        out[n++] = (uint8_t) (v >> 8);
                if (pad < 1)
                        out[n++] = (uint8_t) v;
        }
        *ret_len = n;
        return 0;
}

/* ---- integer literals beyond 64 bits ---- */

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

/* Is the integer literal s[0..n) ('-'? digits) outside -2^63 .. 2^64-1? */
static bool literal_overflows(const char *s, size_t n)
{
        bool negative = *s == '-';
        uint64_t v = 0;

        for (size_t i = negative; i < n; i++) {
                uint64_t d = (uint64_t) (s[i] - '0');

                if (v > (UINT64_MAX - d) / 10)
                        return true;
                v = v * 10 + d;
        }
        return negative && v > (uint64_t) INT64_MAX + 1;
}

/* The end of the number token starting at text[i]. *ret_int_end: where its integer part ends. */
static size_t number_end(const char *text, size_t len, size_t i, size_t *ret_int_end)
{
        i += text[i] == '-';
        while (i < len && is_digit(text[i]))
                i++;
        *ret_int_end = i;
        while (i < len && (is_digit(text[i]) || text[i] == '.' || text[i] == 'e' || text[i] == 'E' || text[i] == '+' ||
                           text[i] == '-'))
                i++;
        return i;
}

int value_json_widen(const char *text, size_t len, char **ret, size_t *ret_len)
{
        struct jbuf b;
        size_t done = 0; /* text[0..done) is in b */
        bool in_string = false;

        jbuf_init(&b);
        for (size_t i = 0; i < len; i++) {
                size_t int_end, end;

                if (in_string) {
                        /* strings hold no number: skip their plain runs a block at a time */
                        i += jscan_escape_free_run(text + i, len - i);
                        if (i >= len)
                                break;
                        if (text[i] == '\\')
                                i++;
                        else if (text[i] == '"')
                                in_string = false;
                        continue;
                }
                if (text[i] == '"')
                        in_string = true;
                if (text[i] != '-' && !is_digit(text[i]))
                        continue;
                end = number_end(text, len, i, &int_end);
                if (end == int_end && literal_overflows(text + i, end - i)) {
                        jbuf_put(&b, text + done, end - done);
                        jbuf_puts(&b, ".0");
                        done = end;
                }
                i = end - 1;
        }
        if (done == 0) {
                jbuf_deinit(&b);
                return 0;
        }
        jbuf_put(&b, text + done, len - done);
        *ret = jbuf_steal(&b, ret_len);
        jbuf_deinit(&b);
        return *ret ? 1 : -ENOMEM;
}

/* ---- the member path ---- */

size_t value_path_push(struct jbuf *path, const char *name, size_t index)
{
        size_t len = path->len;

        if (!name)
                jbuf_printf(path, "[%zu]", index);
        else {
                if (path->len > 0)
                        jbuf_putc(path, '.');
                jbuf_puts(path, name);
        }
        return len;
}

void value_path_pop(struct jbuf *path, size_t len)
{
        jbuf_truncate(path, len);
}

const char *value_path(const struct jbuf *path)
{
        return path->data && !path->failed ? path->data : "";
}

/*
 * Parse JSON text (exactly one value, nothing after it) with json-c, an
 * integer beyond 64 bits read as the double it is (value_json_widen). Text
 * the codec has already checked (a received or sealed body) skips json-c's
 * strict and UTF-8 checks. -EINVAL with the last error set, -ENOMEM.
 */
int value_json_parse(const char *text, size_t len, bool checked, struct json_object **ret)
{
        _cleanup_(freep) char *widened = NULL;
        struct json_tokener *tok;
        struct json_object *root;
        int r;

        r = value_json_widen(text, len, &widened, &len);
        if (r < 0)
                return r;
        if (r > 0)
                text = widened;
        if (len > INT32_MAX)
                return client_fail(-EINVAL, "not a JSON text: longer than json-c reads");
        tok = json_tokener_new_ex(IPCBUS_DEPTH_MAX + 1);
        if (!tok)
                return -ENOMEM;
        if (!checked)
                json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        root = json_tokener_parse_ex(tok, text, (int) len);
        if (!root || json_tokener_get_parse_end(tok) != len) {
                enum json_tokener_error jerr = json_tokener_get_error(tok);

                json_object_put(root);
                json_tokener_free(tok);
                return client_fail(-EINVAL, "not a JSON text: %s",
                                   root                            ? "text after the JSON value"
                                   : jerr == json_tokener_continue ? "unexpected end of text"
                                                                   : json_tokener_error_desc(jerr));
        }
        json_tokener_free(tok);
        *ret = root;
        return 0;
}
