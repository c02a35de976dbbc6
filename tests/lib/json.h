/* SPDX-License-Identifier: MIT */
/* testbus: JSON assertions. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ipcbus/ipcbus.h>

/* Parse JSON text (asserting it is valid). Caller puts it. */
json_object *testbus_json(const char *text, size_t len);
/* Members of a JSON object, asserting presence and type. */
const char *testbus_json_string(json_object *o, const char *key);
int64_t testbus_json_int(json_object *o, const char *key);
bool testbus_json_bool(json_object *o, const char *key);
json_object *testbus_json_array(json_object *o, const char *key);
/* Assert o is an object with exactly these keys (NULL-terminated list). */
void testbus_json_keys(json_object *o, ...) __attribute__((sentinel));
/* True if the JSON array holds the string s. */
bool testbus_json_array_has(json_object *array, const char *s);

/* Assert that JSON text equals the JSON text expected (as values: spacing and member order aside). */
void testbus_assert_json_equal(const char *text, const char *expected);

/* Body of a message parsed (NULL when it has none). */
json_object *testbus_message_json(ipcbus_message *m);
