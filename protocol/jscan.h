/* SPDX-License-Identifier: MIT */
/*
 * A one-pass JSON scanner that builds no tree.
 *
 * The broker uses it to check a body is well-formed UTF-8 JSON without
 * parsing it into objects, to read the flat header object, and, only when a
 * match rule asks, to pull the top-level string members out of a body.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum jscan_kind {
        JSCAN_NONE = 0,
        JSCAN_OBJECT,
        JSCAN_ARRAY,
        JSCAN_STRING,
        JSCAN_NUMBER,
        JSCAN_TRUE,
        JSCAN_FALSE,
        JSCAN_NULL,
};

/*
 * Check that data[0..len) holds exactly one JSON value (RFC 8259, optional
 * whitespace around it), that all of it is valid UTF-8 (no overlongs, no
 * surrogates, \u escapes paired correctly), that no string holds a NUL (a
 * zero byte or \u0000) and that arrays and objects nest at most max_depth
 * deep. Returns 0 and sets *ret_kind (if not NULL) to the kind of the
 * top-level value, or PROTO_E_BAD_UTF8, PROTO_E_BAD_JSON or PROTO_E_TOO_DEEP;
 * or PROTO_E_NUL when a NUL is all that is wrong, *ret_kind then set too (the
 * text can be iterated as valid JSON, its NULs decoding as zero bytes).
 */
int jscan_validate(const char *data, size_t len, unsigned max_depth, enum jscan_kind *ret_kind);

/*
 * The same, and on failure *reterr_offset (if not NULL) is the byte offset
 * in data where it was found: the first NUL for PROTO_E_NUL, else where the
 * scan stopped.
 */
int jscan_validate_at(const char *data, size_t len, unsigned max_depth, enum jscan_kind *ret_kind,
                      size_t *reterr_offset);

/* One member of an object, as jscan_object_next yields it. */
struct jscan_member {
        const char *key; /* raw key bytes, between the quotes, escapes not decoded */
        size_t key_len;
        enum jscan_kind kind;
        const char *value; /* raw value bytes; for strings, between the quotes */
        size_t value_len;
        bool escaped; /* key or string value contains backslash escapes */
};

/* Iterator over the members of a top-level object that jscan_validate accepted. */
struct jscan_iter {
        const char *p;
        const char *end;
};

/* Start iterating the object in data[0..len). Returns 0, or PROTO_E_HEADER_NOT_OBJECT
 * if the value is not an object. */
int jscan_object_begin(struct jscan_iter *it, const char *data, size_t len);

/* Yield the next member. Returns 1 with *ret filled, 0 at the end of the object.
 * The input must have passed jscan_validate. */
int jscan_object_next(struct jscan_iter *it, struct jscan_member *ret);

/* Start iterating the array in data[0..len) (a value jscan_validate accepted, such as
 * a member's raw value). Returns 0, or PROTO_E_BAD_JSON if the value is not an array. */
int jscan_array_begin(struct jscan_iter *it, const char *data, size_t len);

/* Yield the next element as a member without key (key NULL). Returns 1 with *ret
 * filled, 0 at the end of the array. */
int jscan_array_next(struct jscan_iter *it, struct jscan_member *ret);

/*
 * One value of a text indexed by jscan_index. The nodes are in document
 * order: a container is followed by what it holds (an object's members as
 * their key, a string node, then their value), and `end` says where that
 * stops, so the next sibling of node i is node nodes[i].end.
 */
struct jscan_node {
        uint32_t start; /* offset of the value in the text; for a string, just past its opening quote */
        uint32_t len;   /* its length in the text; for a string, between the quotes */
        uint32_t end;   /* the index of the first node after this value and all it holds */
        uint8_t kind;   /* enum jscan_kind */
        uint8_t flags;  /* JSCAN_NODE_*, and the user's */
};

#define JSCAN_NODE_ESCAPED 0x1u /* a string holding backslash escapes */
#define JSCAN_NODE_USER 0x10u   /* the first flag bit left to the index's user */

/*
 * Index text[0..len), which jscan_validate accepted, in one pass: every value
 * in a node, containers nested deeper than max_depth (the top value is at
 * depth 0) as one node without their contents. Returns 0 with the malloc'd
 * nodes in *ret (NULL when the text is empty) and their count in *ret_n,
 * -ENOMEM, or -E2BIG when len does not fit 32 bits. Recurses as deep as the
 * text nests, up to max_depth.
 */
int jscan_index(const char *text, size_t len, unsigned max_depth, struct jscan_node **ret, size_t *ret_n);

/*
 * Decode a raw JSON string (the bytes between the quotes, as a jscan_member
 * gives them) into dst, which must hold at least raw_len + 1 bytes (decoding
 * never grows a string). Returns the decoded length; dst is NUL-terminated.
 * Input must have passed jscan_validate.
 */
size_t jscan_string_decode(const char *raw, size_t raw_len, char *dst);

/* True when the raw key (escapes allowed) equals the NUL-terminated `s`. */
bool jscan_key_equal(const struct jscan_member *m, const char *s);

/* Parse a raw JSON number as an integer in [min, max]; returns 0 or -ERANGE/-EINVAL. */
int jscan_number_to_int64(const char *raw, size_t raw_len, int64_t min, int64_t max, int64_t *ret);

/* Whether s[0..len) is valid UTF-8 (shortest form, no surrogates), as the validator judges it. */
bool jscan_utf8_valid(const char *s, size_t len);

/*
 * The length of the UTF-8 sequence starting p[0..n) (1 for ASCII), or 0 when
 * it is not valid there (as jscan_utf8_valid judges it) or n is 0.
 */
size_t jscan_utf8_sequence(const char *p, size_t n);

/*
 * The length of the longest prefix of p[0..n) that a JSON string holds as it
 * is and the validator passes without a look: printable ASCII other than
 * '"' and '\\'. Scanned a block at a time.
 */
size_t jscan_plain_run(const char *p, size_t n);

/*
 * The same, where bytes >= 0x80 do not end the run: the prefix that a
 * string writer copies without escaping ('"', '\\' and control bytes end it).
 */
size_t jscan_escape_free_run(const char *p, size_t n);
