/* SPDX-License-Identifier: MIT */
#include "protocol/proto-error.h"

static const char *const proto_messages[_PROTO_E_MAX] = {
        [PROTO_OK] = "no error",
        [PROTO_E_BAD_MAGIC] = "frame does not start with the magic \"IPCB\"",
        [PROTO_E_BAD_VERSION] = "unsupported protocol version",
        [PROTO_E_BAD_RESERVED] = "reserved prefix byte is not zero",
        [PROTO_E_HEADER_EMPTY] = "header length is too small for a JSON object",
        [PROTO_E_HEADER_TOO_LARGE] = "header length exceeds the limit",
        [PROTO_E_BODY_TOO_LARGE] = "body length exceeds the limit",
        [PROTO_E_FRAME_TOO_LARGE] = "frame length exceeds the limit",
        [PROTO_E_TOO_MANY_FDS] = "too many file descriptors attached",
        [PROTO_E_FDS_MISMATCH] = "attached file descriptors do not match the frame's count",
        [PROTO_E_BAD_UTF8] = "text is not valid UTF-8",
        [PROTO_E_BAD_JSON] = "text is not well-formed JSON",
        [PROTO_E_TOO_DEEP] = "JSON nests deeper than the limit",
        [PROTO_E_HEADER_NOT_OBJECT] = "header is not a JSON object",
        [PROTO_E_BODY_NOT_OBJECT] = "body is not a JSON object",
        [PROTO_E_NUL] = "text holds a NUL character (\\u0000 or a zero byte), which PROTOCOL.md 2 forbids",
        [PROTO_E_UNKNOWN_FIELD] = "unknown header field",
        [PROTO_E_DUPLICATE_FIELD] = "header field appears twice",
        [PROTO_E_FIELD_TYPE] = "header field has the wrong JSON type",
        [PROTO_E_MISSING_FIELD] = "a required header field is missing",
        [PROTO_E_FIELD_NOT_ALLOWED] = "header field not allowed for this message type",
        [PROTO_E_UNKNOWN_TYPE] = "unknown message type",
        [PROTO_E_BAD_SERIAL] = "serial or reply_serial out of range",
        [PROTO_E_BAD_TIMEOUT] = "timeout_ms out of range",
        [PROTO_E_BROKER_FIELD] = "broker-only header field set by a client",
        [PROTO_E_BAD_BUS_NAME] = "invalid bus name",
        [PROTO_E_BAD_PATH] = "invalid object path",
        [PROTO_E_BAD_INTERFACE] = "invalid interface name",
        [PROTO_E_BAD_MEMBER] = "invalid member name",
        [PROTO_E_BAD_ERROR_NAME] = "invalid error name",
        [PROTO_E_BAD_MATCH] = "invalid match rule",
        [PROTO_E_BAD_ERROR_BODY] = "the body of an error is not an object whose member \"message\" is a string",
        [PROTO_E_BAD_BODY_FD] = "body_fd and body_size must come together, body_fd naming the frame's last "
                                "descriptor, and the frame must then carry no body of its own",
};

const char *proto_strerror(int code)
{
        if (code < 0 || code >= _PROTO_E_MAX || !proto_messages[code])
                return "unknown protocol error";
        return proto_messages[code];
}

bool proto_error_is_fatal(int code)
{
        return code >= PROTO_E_BAD_MAGIC && code <= PROTO_E_HEADER_NOT_OBJECT;
}
