/* SPDX-License-Identifier: MIT */
/* testbus: JSON assertions. */
#include <check.h>
#include <stdarg.h>
#include <string.h>

#include "tests/lib/json.h"

json_object *testbus_json(const char *text, size_t len)
{
        json_tokener *tok = json_tokener_new_ex(200);
        json_object *o;
        size_t end;

        ck_assert_ptr_nonnull(tok);
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        o = json_tokener_parse_ex(tok, text, (int) len);
        ck_assert_msg(json_tokener_get_error(tok) == json_tokener_success, "not JSON (%s): %.*s",
                      json_tokener_error_desc(json_tokener_get_error(tok)), (int) (len > 200 ? 200 : len), text);
        end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        for (; end < len; end++)
                ck_assert_msg(strchr(" \t\r\n", text[end]), "trailing bytes after JSON: %.*s", (int) len, text);
        return o;
}

static json_object *json_member(json_object *o, const char *key, json_type type)
{
        json_object *v = NULL;

        ck_assert_msg(o && json_object_is_type(o, json_type_object), "not a JSON object: %s",
                      o ? json_object_to_json_string(o) : "(none)");
        ck_assert_msg(json_object_object_get_ex(o, key, &v), "no member \"%s\" in %s", key,
                      json_object_to_json_string(o));
        ck_assert_msg(json_object_is_type(v, type), "member \"%s\" has the wrong type in %s", key,
                      json_object_to_json_string(o));
        return v;
}

const char *testbus_json_string(json_object *o, const char *key)
{
        return json_object_get_string(json_member(o, key, json_type_string));
}

int64_t testbus_json_int(json_object *o, const char *key)
{
        return json_object_get_int64(json_member(o, key, json_type_int));
}

bool testbus_json_bool(json_object *o, const char *key)
{
        return json_object_get_boolean(json_member(o, key, json_type_boolean));
}

json_object *testbus_json_array(json_object *o, const char *key)
{
        return json_member(o, key, json_type_array);
}

void testbus_json_keys(json_object *o, ...)
{
        va_list ap;
        int n = 0;

        ck_assert_msg(o && json_object_is_type(o, json_type_object), "not a JSON object: %s",
                      o ? json_object_to_json_string(o) : "(none)");
        va_start(ap, o);
        for (const char *k; (k = va_arg(ap, const char *)); n++)
                ck_assert_msg(json_object_object_get_ex(o, k, NULL), "no member \"%s\" in %s", k,
                              json_object_to_json_string(o));
        va_end(ap);
        ck_assert_msg(json_object_object_length(o) == n, "expected exactly %d members: %s", n,
                      json_object_to_json_string(o));
}

bool testbus_json_array_has(json_object *array, const char *s)
{
        for (size_t i = 0; i < json_object_array_length(array); i++) {
                json_object *v = json_object_array_get_idx(array, i);

                if (json_object_is_type(v, json_type_string) && strcmp(json_object_get_string(v), s) == 0)
                        return true;
        }
        return false;
}

void testbus_assert_json_equal(const char *text, const char *expected)
{
        json_object *a = testbus_json(text, strlen(text)), *b = testbus_json(expected, strlen(expected));

        ck_assert_msg(json_object_equal(a, b), "got %s, expected %s", text, expected);
        json_object_put(a);
        json_object_put(b);
}

json_object *testbus_message_json(ipcbus_message *m)
{
        size_t len = 0;
        const char *body = ipcbus_message_get_body(m, &len);

        return len ? testbus_json(body, len) : NULL;
}
