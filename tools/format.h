/* SPDX-License-Identifier: MIT */
/*
 * Printing for the command-line tools (ipcctl, ipc-monitor, ipc-bench): JSON
 * values re-serialised by json-c, text made safe for a terminal, durations,
 * the checks applied to JSON, names and addresses typed on a command line,
 * and connecting to the bus a tool was pointed at with the error naming it.
 * What ipc-monitor prints of a message is in tools/monitor/output.h.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <ipcbus/ipcbus.h>

#include <json-c/json.h>

#include "util/util.h"

/* json-c's cleanup helper (util/util.h has the generic ones, ipcbus.h the library's). */
static inline void json_object_putp(struct json_object **p)
{
        if (*p)
                json_object_put(*p);
}

/*
 * Parse JSON text with json-c, allowing the protocol's nesting depth.
 * Returns 0 with *ret (owned by the caller), -EINVAL for text json-c does not
 * accept, or -ENOMEM.
 */
int format_json_parse(const char *text, size_t len, struct json_object **ret);

/*
 * Serialise a json-c value: pretty (indented, spaced, several lines) or
 * compact (one line). Slashes are not escaped. The text belongs to obj.
 */
const char *format_json_string(struct json_object *obj, bool pretty);

/*
 * Write m's body to f re-serialised (pretty or compact, see above) and a
 * newline, as the library reads it (ipcbus_message_get_json: an integer
 * beyond 64 bits is not clamped). A body it cannot parse is written as it
 * came with its whitespace flattened to spaces, so compact output stays one
 * line.
 */
void format_print_body(FILE *f, ipcbus_message *m, bool pretty);

/*
 * Write JSON text to f with its whitespace (the only control bytes valid
 * JSON has raw) as spaces, so it stays on one line.
 */
void format_put_flat(FILE *f, const char *text, size_t len);

/*
 * Parse one JSON value typed by the user (strict JSON, any value, null
 * included: then *ret is NULL), at most a body's size and nesting. Returns
 * 0 with *ret (owned by the caller), -EINVAL with *ret_reason (static text)
 * saying what is wrong, or -ENOMEM.
 */
int format_json_parse_value(const char *text, struct json_object **ret, const char **ret_reason);

/*
 * Check a JSON argument typed by the user: exactly one JSON object as
 * PROTOCOL.md section 2 requires of a body. Returns 0, or -EINVAL with
 * *ret_reason (static text) saying what is wrong.
 */
int format_check_body(const char *text, const char **ret_reason);

/*
 * Return a copy of s[0..len) that is safe to print on a terminal: valid UTF-8
 * sequences of printable characters are kept, control characters and bytes
 * that are not valid UTF-8 become "\xNN". Caller frees; NULL on ENOMEM.
 */
char *format_sanitize(const char *s, size_t len);

/* A byte count (or rate) as "512", "1.2K", "34M", "1.5G" (powers of 1024) into buf; returns buf. */
char *format_bytes(char *buf, size_t size, double v);

/*
 * Write a duration of usec microseconds for a person into buf (size bytes):
 * "850 µs", "1.23 ms", "45.6 ms", "2.50 s". Returns buf.
 */
char *format_duration(char *buf, size_t size, uint64_t usec);

/*
 * Check an address typed by the user (--address ADDR): the form
 * unix:path=/absolute/path. On failure write "PROG: invalid address 'ADDR':
 * REASON" and "(see PROG --help)" on stderr (prog: the tool's name) and
 * return -EINVAL: a usage error. Returns 0 when it is valid.
 */
int format_check_address(const char *prog, const char *address);

/*
 * Connect a tool to its bus: address when not NULL (--address, checked with
 * format_check_address), else the system bus (system) or the session bus at
 * the address the library finds for it (PROTOCOL.md, "Addresses": the
 * environment, else the standard path). On failure write "PROG: cannot
 * connect to the system bus at ADDR: REASON" (or "to ADDR") on stderr and
 * return negative errno. Returns 0 with *ret (the caller's).
 */
int format_open_bus(const char *prog, const char *address, bool system, ipcbus_bus **ret);
