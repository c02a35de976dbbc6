/* SPDX-License-Identifier: MIT */
/*
 * The codes of protocol/, under the error convention stated in util/error.h
 * (0 success, negative errno a fault, positive codes expected outcomes).
 *
 * Protocol violations. Every function of protocol/ that judges input returns 0
 * when it is good, a negative errno for a system failure (-ENOMEM), or one of
 * these positive codes for input that breaks PROTOCOL.md. Each code has a
 * fixed one-line explanation (proto_strerror) that the daemon puts in the
 * error it sends back and in its log.
 */
#pragma once

#include "util/error.h"

#include <stdbool.h>

enum {
        PROTO_OK = 0,
        /* framing: the stream cannot be resynchronised after these. Codes start
         * at 2, as they always have (1 once meant "frame ready"); no function
         * returns them beside a 1 now (jscan's iterators return 1 or 0 only). */
        PROTO_E_BAD_MAGIC = 2,
        PROTO_E_BAD_VERSION,
        PROTO_E_BAD_RESERVED,
        PROTO_E_HEADER_EMPTY,
        PROTO_E_HEADER_TOO_LARGE,
        PROTO_E_BODY_TOO_LARGE,
        PROTO_E_FRAME_TOO_LARGE,
        PROTO_E_TOO_MANY_FDS,
        PROTO_E_FDS_MISMATCH,
        /* encoding: the frame is whole but its JSON is not acceptable */
        PROTO_E_BAD_UTF8,
        PROTO_E_BAD_JSON,
        PROTO_E_TOO_DEEP,
        PROTO_E_HEADER_NOT_OBJECT, /* fatal: there is no serial to answer */
        PROTO_E_BODY_NOT_OBJECT,   /* not fatal: the header is readable */
        PROTO_E_NUL,               /* not fatal: JSON otherwise, but a string holds a NUL (PROTOCOL.md 2) */
        /* header fields */
        PROTO_E_UNKNOWN_FIELD,
        PROTO_E_DUPLICATE_FIELD,
        PROTO_E_FIELD_TYPE,
        PROTO_E_MISSING_FIELD,
        PROTO_E_FIELD_NOT_ALLOWED,
        PROTO_E_UNKNOWN_TYPE,
        PROTO_E_BAD_SERIAL,
        PROTO_E_BAD_TIMEOUT,
        PROTO_E_BROKER_FIELD,
        PROTO_E_BAD_BUS_NAME,
        PROTO_E_BAD_PATH,
        PROTO_E_BAD_INTERFACE,
        PROTO_E_BAD_MEMBER,
        PROTO_E_BAD_ERROR_NAME,
        /* match rules */
        PROTO_E_BAD_MATCH,
        /* bodies */
        PROTO_E_BAD_ERROR_BODY, /* not fatal: an error body without a string `message` */
        /* bodies in memfds (PROTOCOL.md 14) */
        PROTO_E_BAD_BODY_FD, /* body_fd and body_size do not describe the frame */
        _PROTO_E_MAX,
};

/* One-line English explanation of a PROTO_E_* code; never NULL. */
const char *proto_strerror(int code);

/*
 * True for the codes after which the byte stream cannot be trusted any more
 * (framing errors, malformed JSON, a header that is not an object): the
 * daemon closes such connections. The others concern one message only and
 * get an error reply when its serial could be read.
 */
bool proto_error_is_fatal(int code);
