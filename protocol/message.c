/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "protocol/ipcbus/wire.h"
#include "protocol/jbuf.h"
#include "protocol/jscan.h"
#include "protocol/message.h"
#include "protocol/names.h"
#include "protocol/proto-error.h"
#include "util/bufcache.h"

static const char *const msg_type_names[] = {
        [MSG_CALL] = "call",
        [MSG_RETURN] = "return",
        [MSG_ERROR] = "error",
        [MSG_SIGNAL] = "signal",
};

const char *msg_type_to_string(enum msg_type t)
{
        if (t < MSG_CALL || t > MSG_SIGNAL)
                return NULL;
        return msg_type_names[t];
}

enum msg_type msg_type_from_string(const char *s)
{
        for (int t = MSG_CALL; t <= MSG_SIGNAL; t++)
                if (s && strcmp(s, msg_type_names[t]) == 0)
                        return (enum msg_type) t;
        return MSG_TYPE_INVALID;
}

void msg_header_init(struct msg_header *h)
{
        *h = (struct msg_header){.sender_uid = -1, .sender_pid = -1};
}

/* Header fields, in canonical order; the bit of each in a "seen" mask. */
enum field {
        F_SENDER,
        F_SENDER_UID,
        F_SENDER_PID,
        F_TYPE,
        F_SERIAL,
        F_REPLY_SERIAL,
        F_DESTINATION,
        F_PATH,
        F_INTERFACE,
        F_MEMBER,
        F_ERROR,
        F_NO_REPLY,
        F_NO_AUTO_START,
        F_TIMEOUT_MS,
        F_BODY_FD,
        F_BODY_SIZE,
        _F_MAX,
};

static const char *const field_names[_F_MAX] = {
        "sender",        "sender_uid", "sender_pid", "type",      "serial", "reply_serial",
        "destination",   "path",       "interface",  "member",    "error",  "no_reply",
        "no_auto_start", "timeout_ms", "body_fd",    "body_size",
};

#define BIT(f) (1u << (f))
#define BROKER_FIELDS (BIT(F_SENDER) | BIT(F_SENDER_UID) | BIT(F_SENDER_PID))
#define CALL_ONLY (BIT(F_NO_REPLY) | BIT(F_NO_AUTO_START) | BIT(F_TIMEOUT_MS))
/* A body in a memfd: calls, returns and signals (an error's body is checked by the broker, PROTOCOL.md 14). */
#define BODY_FD_FIELDS (BIT(F_BODY_FD) | BIT(F_BODY_SIZE))

/* Per type: fields required, fields allowed (beyond broker fields, type and serial). */
static const struct {
        unsigned required;
        unsigned allowed;
} type_rules[] = {
        [MSG_CALL] = {BIT(F_PATH) | BIT(F_MEMBER),
                      BIT(F_PATH) | BIT(F_MEMBER) | BIT(F_DESTINATION) | BIT(F_INTERFACE) | CALL_ONLY | BODY_FD_FIELDS},
        [MSG_RETURN] = {BIT(F_REPLY_SERIAL) | BIT(F_DESTINATION),
                        BIT(F_REPLY_SERIAL) | BIT(F_DESTINATION) | BODY_FD_FIELDS},
        [MSG_ERROR] = {BIT(F_REPLY_SERIAL) | BIT(F_ERROR), BIT(F_REPLY_SERIAL) | BIT(F_ERROR) | BIT(F_DESTINATION)},
        [MSG_SIGNAL] = {BIT(F_PATH) | BIT(F_INTERFACE) | BIT(F_MEMBER),
                        BIT(F_PATH) | BIT(F_INTERFACE) | BIT(F_MEMBER) | BIT(F_DESTINATION) | BODY_FD_FIELDS},
};

/*
 * Leave the sentence saying why in `why` (MSG_WHY_MAX bytes; NULL: none
 * wanted) unless one is there already: the first fault found is the one
 * told. Returns code. Called only on failure.
 */
__attribute__((format(printf, 3, 4))) static int why_set(char *why, int code, const char *fmt, ...)
{
        va_list ap;

        if (!why || why[0])
                return code;
        va_start(ap, fmt);
        vsnprintf(why, MSG_WHY_MAX, fmt, ap);
        va_end(ap);
        return code;
}

/* The most bytes of a value a sentence quotes. */
#define WHY_QUOTE_MAX 64

/*
 * s[0..n) to quote in a sentence, into buf (WHY_QUOTE_MAX + 4 bytes): cut at
 * a character's boundary, "..." marking a cut, so the sentence stays UTF-8;
 * control characters escaped (\xNN, \u00NN), so a client cannot write lines
 * or terminal codes into the broker's log.
 */
static const char *why_quote(char *buf, const char *s, size_t n)
{
        size_t k = 0, out = 0, c;

        while (k < n && (c = jscan_utf8_sequence(s + k, n - k)) > 0) {
                const unsigned char *u = (const unsigned char *) s + k;
                /* control characters (C0, DEL, C1) are shown escaped: the sentence goes to logs and terminals */
                bool c0 = c == 1 && (u[0] < 0x20 || u[0] == 0x7f), c1 = c == 2 && u[0] == 0xc2 && u[1] < 0xa0;
                size_t w = c0 ? 4 : c1 ? 6 : c;

                if (out + w > WHY_QUOTE_MAX)
                        break;
                if (c0)
                        snprintf(buf + out, 5, "\\x%02x", u[0]);
                else if (c1)
                        snprintf(buf + out, 7, "\\u%04x", u[1]);
                else
                        memcpy(buf + out, s + k, c);
                out += w;
                k += c;
        }
        strcpy(buf + out, k < n ? "..." : "");
        return buf;
}

/* The JSON type of a value, as a sentence names it. */
static const char *kind_name(enum jscan_kind kind)
{
        switch (kind) {
        case JSCAN_OBJECT:
                return "object";
        case JSCAN_ARRAY:
                return "array";
        case JSCAN_STRING:
                return "string";
        case JSCAN_NUMBER:
                return "number";
        case JSCAN_TRUE:
        case JSCAN_FALSE:
                return "boolean";
        case JSCAN_NULL:
                return "null";
        default:
                return "nothing";
        }
}

/* The first field of mask, by canonical order (mask not 0). */
static const char *first_field(unsigned mask)
{
        return field_names[__builtin_ctz(mask)];
}

/* What each kind of name must be (PROTOCOL.md 5), for the sentence refusing one. */
static const struct {
        const char *kind;
        const char *rule;
} name_rules[] = {
        [PROTO_E_BAD_BUS_NAME] = {"bus name", "a unique name such as ':1.42', or two or more elements of "
                                              "[A-Za-z0-9_-] joined by '.', none empty or starting with a digit"},
        [PROTO_E_BAD_PATH] = {"object path", "'/', or elements of [A-Za-z0-9_] each after a '/', none empty, no "
                                             "trailing '/', at most 1024 bytes"},
        [PROTO_E_BAD_INTERFACE] = {"interface name", "two or more elements of [A-Za-z0-9_] joined by '.', none "
                                                     "empty or starting with a digit"},
        [PROTO_E_BAD_MEMBER] = {"member name", "one element of [A-Za-z0-9_], not empty, not starting with a digit"},
        [PROTO_E_BAD_ERROR_NAME] = {"error name", "two or more elements of [A-Za-z0-9_] joined by '.', none empty "
                                                  "or starting with a digit"},
};

/* Refuse the name `value` of field f with code: which field, what it got, the rule. Returns code. */
static int name_refuse(char *why, int code, int f, const char *value)
{
        char q[WHY_QUOTE_MAX + 4];

        return why_set(why, code, "header field '%s' is not a valid %s: got '%s', expected %s%s (PROTOCOL.md 5)",
                       field_names[f], name_rules[code].kind, why_quote(q, value, strlen(value)), name_rules[code].rule,
                       code == PROTO_E_BAD_PATH ? "" : ", at most 255 bytes");
}

/* Whether a decoded header's names follow PROTOCOL.md 5. Returns 0 or the code of the first that does not. */
static int header_check_names(const struct msg_header *h, char *why)
{
        if (h->sender && !names_is_bus_name(h->sender) && strcmp(h->sender, IPCBUS_DRIVER_NAME) != 0)
                return name_refuse(why, PROTO_E_BAD_BUS_NAME, F_SENDER, h->sender);
        if (h->destination && !names_is_bus_name(h->destination))
                return name_refuse(why, PROTO_E_BAD_BUS_NAME, F_DESTINATION, h->destination);
        if (h->path && !names_is_path(h->path))
                return name_refuse(why, PROTO_E_BAD_PATH, F_PATH, h->path);
        if (h->interface && !names_is_interface(h->interface))
                return name_refuse(why, PROTO_E_BAD_INTERFACE, F_INTERFACE, h->interface);
        if (h->member && !names_is_member(h->member))
                return name_refuse(why, PROTO_E_BAD_MEMBER, F_MEMBER, h->member);
        if (h->error_name && !names_is_error_name(h->error_name))
                return name_refuse(why, PROTO_E_BAD_ERROR_NAME, F_ERROR, h->error_name);
        return 0;
}

/*
 * Check a decoded header against PROTOCOL.md sections 3-5. `present` is the
 * mask of fields present (booleans count only when true). On a fault, why
 * (when not NULL) says which field.
 */
static int header_check(const struct msg_header *h, unsigned present, unsigned flags, char *why)
{
        unsigned required, allowed;

        if ((present & BROKER_FIELDS) && !(flags & MSG_PARSE_FROM_BROKER))
                return why_set(why, PROTO_E_BROKER_FIELD, "header field '%s' is set by the broker only",
                               first_field(present & BROKER_FIELDS));
        if (!(present & BIT(F_TYPE)) || !(present & BIT(F_SERIAL)))
                return why_set(why, PROTO_E_MISSING_FIELD, "header field '%s' is missing: every message has one",
                               first_field(~present & (BIT(F_TYPE) | BIT(F_SERIAL))));
        if (h->type < MSG_CALL || h->type > MSG_SIGNAL)
                return PROTO_E_UNKNOWN_TYPE;
        required = type_rules[h->type].required;
        allowed = type_rules[h->type].allowed | BROKER_FIELDS | BIT(F_TYPE) | BIT(F_SERIAL);
        /* The broker's last word before closing a connection answers no call. */
        if (h->type == MSG_ERROR && (flags & MSG_PARSE_FROM_BROKER))
                required &= ~BIT(F_REPLY_SERIAL);
        if ((present & required) != required)
                return why_set(why, PROTO_E_MISSING_FIELD, "header field '%s' is missing: a %s needs it",
                               first_field(required & ~present), msg_type_to_string(h->type));
        if (present & ~allowed)
                return why_set(why, PROTO_E_FIELD_NOT_ALLOWED, "header field '%s' is not allowed in a %s",
                               first_field(present & ~allowed), msg_type_to_string(h->type));
        if ((present & BODY_FD_FIELDS) && (present & BODY_FD_FIELDS) != BODY_FD_FIELDS)
                return why_set(why, PROTO_E_BAD_BODY_FD,
                               "header field '%s' is missing: 'body_fd' and 'body_size' come together",
                               first_field(BODY_FD_FIELDS & ~present));
        return header_check_names(h, why);
}

/*
 * A body in a memfd (PROTOCOL.md 14): the descriptor is the frame's last and
 * the frame carries no body of its own. Returns 0 or PROTO_E_BAD_BODY_FD.
 */
static int body_fd_check(const struct msg_header *h, const struct frame_prefix *p, char *why)
{
        if (h->body_size == 0)
                return 0;
        if (p->body_len != 0)
                return why_set(why, PROTO_E_BAD_BODY_FD,
                               "header field 'body_fd' is set, so the frame carries no body of its own; it has %" PRIu32
                               " bytes of body",
                               p->body_len);
        if (p->n_fds == 0 || h->body_fd != p->n_fds - 1)
                return why_set(why, PROTO_E_BAD_BODY_FD,
                               "header field 'body_fd' must name the frame's last descriptor: got %u, the frame "
                               "has %u",
                               (unsigned) h->body_fd, (unsigned) p->n_fds);
        return 0;
}

static int field_lookup(const struct jscan_member *m)
{
        for (int f = 0; f < _F_MAX; f++)
                if (jscan_key_equal(m, field_names[f]))
                        return f;
        return -1;
}

/* Decode one string field into the arena; returns the string. */
static const char *arena_string(char **arena, const struct jscan_member *m)
{
        char *s = *arena;
        size_t n = m->escaped ? jscan_string_decode(m->value, m->value_len, s) : m->value_len;

        if (!m->escaped) {
                memcpy(s, m->value, n);
                s[n] = '\0';
        }
        *arena += n + 1;
        return s;
}

/*
 * Decode the numeric field f of member m into h (its range by field).
 * Returns 0 or a PROTO_E_* code; *present gains f's bit on 0.
 */
/* Refuse member m of field f for its JSON type: what came and what was expected. Returns PROTO_E_FIELD_TYPE. */
static int type_refuse(char *why, int f, const struct jscan_member *m, const char *expected)
{
        return why_set(why, PROTO_E_FIELD_TYPE, "header field '%s' has the wrong JSON type: got %s, expected %s",
                       field_names[f], kind_name(m->kind), expected);
}

static int field_decode_number(struct msg_header *h, int f, const struct jscan_member *m, unsigned *present, char *why)
{
        int64_t min = 1, max = UINT32_MAX, v;

        if (m->kind != JSCAN_NUMBER)
                return type_refuse(why, f, m, "integer");
        if (f == F_SENDER_UID || f == F_SENDER_PID || f == F_BODY_FD)
                min = 0;
        if (f == F_TIMEOUT_MS || f == F_SENDER_PID)
                max = INT32_MAX;
        if (f == F_BODY_FD)
                max = IPCBUS_FDS_MAX - 1;
        if (f == F_BODY_SIZE)
                max = IPCBUS_BODY_MAX;
        if (jscan_number_to_int64(m->value, m->value_len, min, max, &v) < 0) {
                char q[WHY_QUOTE_MAX + 4];

                return why_set(why,
                               (f == F_TIMEOUT_MS)                      ? PROTO_E_BAD_TIMEOUT
                               : (f == F_SERIAL || f == F_REPLY_SERIAL) ? PROTO_E_BAD_SERIAL
                               : (f == F_BODY_FD || f == F_BODY_SIZE)   ? PROTO_E_BAD_BODY_FD
                                                                        : PROTO_E_FIELD_TYPE,
                               "header field '%s' must be an integer from %" PRId64 " to %" PRId64 ", got %s",
                               field_names[f], min, max, why_quote(q, m->value, m->value_len));
        }
        if (f == F_SERIAL)
                h->serial = (uint32_t) v;
        else if (f == F_REPLY_SERIAL)
                h->reply_serial = (uint32_t) v;
        else if (f == F_SENDER_UID)
                h->sender_uid = v;
        else if (f == F_SENDER_PID)
                h->sender_pid = v;
        else if (f == F_BODY_FD)
                h->body_fd = (uint16_t) v;
        else if (f == F_BODY_SIZE)
                h->body_size = (uint32_t) v;
        else
                h->timeout_ms = (uint32_t) v;
        *present |= BIT(f);
        return 0;
}

/* Decode the boolean field f; only true counts as present. Returns 0 or PROTO_E_FIELD_TYPE. */
static int field_decode_bool(struct msg_header *h, int f, const struct jscan_member *m, unsigned *present, char *why)
{
        if (m->kind != JSCAN_TRUE && m->kind != JSCAN_FALSE)
                return type_refuse(why, f, m, "boolean");
        if (m->kind == JSCAN_TRUE) {
                *present |= BIT(f);
                if (f == F_NO_REPLY)
                        h->no_reply = true;
                else
                        h->no_auto_start = true;
        }
        return 0;
}

/*
 * Decode the string field f into the arena and point h at it. Returns 0 or a
 * PROTO_E_* code; *present gains f's bit once the value is a string (a type
 * of an unknown name included).
 */
static int field_decode_string(struct msg_header *h, int f, const struct jscan_member *m, char **arena,
                               unsigned *present, char *why)
{
        char q[WHY_QUOTE_MAX + 4];
        const char *s;

        if (m->kind != JSCAN_STRING)
                return type_refuse(why, f, m, "string");
        s = arena_string(arena, m);
        *present |= BIT(f);
        switch (f) {
        case F_TYPE:
                h->type = msg_type_from_string(s);
                if (h->type == MSG_TYPE_INVALID)
                        return why_set(why, PROTO_E_UNKNOWN_TYPE,
                                       "header field 'type' must be call, return, error or signal, got '%s'",
                                       why_quote(q, s, strlen(s)));
                return 0;
        case F_SENDER:
                h->sender = s;
                break;
        case F_DESTINATION:
                h->destination = s;
                break;
        case F_PATH:
                h->path = s;
                break;
        case F_INTERFACE:
                h->interface = s;
                break;
        case F_MEMBER:
                h->member = s;
                break;
        case F_ERROR:
                h->error_name = s;
                break;
        }
        return 0;
}

/*
 * Decode one member of the header object into h. *seen and *present are the
 * masks of fields met so far and of fields present. Returns 0 or a PROTO_E_*
 * code.
 */
static int header_decode_member(struct msg_header *h, const struct jscan_member *m, char **arena, unsigned *seen,
                                unsigned *present, char *why)
{
        int f = field_lookup(m);
        char q[WHY_QUOTE_MAX + 4];

        if (f < 0)
                return why_set(why, PROTO_E_UNKNOWN_FIELD, "unknown header field '%s'",
                               why_quote(q, m->key, m->key_len));
        if (*seen & BIT(f))
                return why_set(why, PROTO_E_DUPLICATE_FIELD, "header field '%s' appears twice", field_names[f]);
        *seen |= BIT(f);
        switch (f) {
        case F_SERIAL:
        case F_REPLY_SERIAL:
        case F_SENDER_UID:
        case F_SENDER_PID:
        case F_TIMEOUT_MS:
        case F_BODY_FD:
        case F_BODY_SIZE:
                return field_decode_number(h, f, m, present, why);
        case F_NO_REPLY:
        case F_NO_AUTO_START:
                return field_decode_bool(h, f, m, present, why);
        default:
                return field_decode_string(h, f, m, arena, present, why);
        }
}

/*
 * Decode the header object into h, strings into the arena (which must hold
 * header_len + _F_MAX bytes), and check it. Reads every member even after an
 * error, so h holds the serial for the error reply whatever the result.
 * Returns 0 or the first PROTO_E_* code met, said in why when not NULL.
 */
static int header_decode(const char *text, size_t len, char *arena, unsigned flags, struct msg_header *h, char *why)
{
        struct jscan_iter it;
        struct jscan_member m;
        unsigned present = 0, seen = 0;
        int err = 0, r;

        msg_header_init(h);
        r = jscan_object_begin(&it, text, len);
        if (r)
                return r;
        while (jscan_object_next(&it, &m) > 0) {
                int e = header_decode_member(h, &m, &arena, &seen, &present, why);

                if (e && !err)
                        err = e;
        }
        if (err)
                return err;
        return header_check(h, present, flags, why);
}

/* The longest stamp text: the sender (a bus name, which needs no escaping) and two 32-bit numbers. */
#define STAMP_TEXT_MAX (IPCBUS_NAME_MAX + 64u)

/* Append the decimal digits of v at p; returns the end. */
static char *put_u32(char *p, uint32_t v)
{
        char digits[10];
        size_t n = 0;

        do
                digits[n++] = (char) ('0' + v % 10);
        while ((v /= 10) > 0);
        while (n > 0)
                *p++ = digits[--n];
        return p;
}

/*
 * The stitched sender prefix into buf (STAMP_TEXT_MAX bytes):
 * {"sender":"…","sender_uid":N,"sender_pid":N, and its length; 0 when the
 * sender is no bus name (too long, or it would need escaping).
 */
static size_t stamp_text(const struct msg_stamp *stamp, char *buf)
{
        size_t n = strlen(stamp->sender);
        char *p = buf;

        if (n > IPCBUS_NAME_MAX || strpbrk(stamp->sender, "\"\\"))
                return 0;
        p = mempcpy(p, "{\"sender\":\"", 11);
        p = mempcpy(p, stamp->sender, n);
        p = mempcpy(p, "\",\"sender_uid\":", 15);
        p = put_u32(p, stamp->uid);
        p = mempcpy(p, ",\"sender_pid\":", 14);
        p = put_u32(p, stamp->pid);
        *p++ = ',';
        return (size_t) (p - buf);
}

/* PROTOCOL.md 4: an error's body, when present, is an object whose `message` is a string. */
static int error_body_check(const char *body, size_t len)
{
        struct jscan_iter it;
        struct jscan_member m;
        bool found = false;

        if (jscan_object_begin(&it, body, len) != 0)
                return PROTO_E_BAD_ERROR_BODY;
        while (jscan_object_next(&it, &m) > 0) {
                if (!jscan_key_equal(&m, "message"))
                        continue;
                if (m.kind != JSCAN_STRING)
                        return PROTO_E_BAD_ERROR_BODY;
                found = true;
        }
        return found ? 0 : PROTO_E_BAD_ERROR_BODY;
}

/*
 * What msg_validate found wrong that concerns this message alone, to be
 * reported once its header was read for the serial: a NUL in the header
 * before anything else, a body's fault after the header's own.
 */
struct msg_faults {
        int header;                  /* PROTO_E_NUL or 0 */
        int body;                    /* PROTO_E_NUL, PROTO_E_BODY_NOT_OBJECT or 0 */
        size_t header_nul, body_nul; /* the offsets of the first NUL */
        enum jscan_kind body_kind;
};

/* The JSON text of `part` of a frame (header or body) at data[0..len): jscan_validate_at, a fault said in why. */
static int part_validate(const char *part, const char *data, size_t len, enum jscan_kind *ret_kind, size_t *ret_nul,
                         char *why)
{
        size_t at = 0;
        int r = jscan_validate_at(data, len, IPCBUS_DEPTH_MAX, ret_kind, &at);

        if (r == PROTO_E_NUL)
                *ret_nul = at;
        else if (r == PROTO_E_TOO_DEEP)
                why_set(why, r, "the %s nests deeper than %u at byte %zu", part, IPCBUS_DEPTH_MAX, at);
        else if (r)
                why_set(why, r, "the %s %s at byte %zu", part,
                        r == PROTO_E_BAD_UTF8 ? "is not valid UTF-8" : "is not well-formed JSON", at);
        return r;
}

/* Say the NUL at data[at] of `part`. Returns PROTO_E_NUL. */
static int nul_refuse(char *why, const char *part, const char *data, size_t at)
{
        return why_set(why, PROTO_E_NUL, "the %s holds a NUL character (%s) at byte %zu: PROTOCOL.md 2 forbids it",
                       part, data[at] == '\\' ? "a \\u0000 escape" : "a zero byte", at);
}

/*
 * Check the JSON of frame f: both parts well-formed within the depth limit
 * (the body only when flags lack MSG_BUILD_BODY_CHECKED), the header an
 * object. Returns 0 or a PROTO_E_* code after which the frame cannot be read
 * (why says which part and where). A NUL in a string, or a body that is JSON
 * but not an object, is only noted in *ret: that concerns this message
 * alone.
 */
static int msg_validate(const struct frame_view *f, unsigned flags, struct msg_faults *ret, char *why)
{
        enum jscan_kind kind;
        int r;

        *ret = (struct msg_faults){.body_kind = JSCAN_OBJECT};
        r = part_validate("header", f->header, f->prefix.header_len, &kind, &ret->header_nul, why);
        if (r == PROTO_E_NUL)
                ret->header = r;
        else if (r)
                return r;
        if (f->prefix.body_len && !(flags & MSG_BUILD_BODY_CHECKED)) {
                r = part_validate("body", f->body, f->prefix.body_len, &ret->body_kind, &ret->body_nul, why);
                if (r == PROTO_E_NUL)
                        ret->body = r;
                else if (r)
                        return r;
        }
        if (kind != JSCAN_OBJECT)
                return why_set(why, PROTO_E_HEADER_NOT_OBJECT, "the header is not a JSON object: got %s",
                               kind_name(kind));
        if (!ret->body && ret->body_kind != JSCAN_OBJECT)
                ret->body = PROTO_E_BODY_NOT_OBJECT;
        return 0;
}

/*
 * A message being made from a frame. Its one allocation holds the struct, the
 * n_fds descriptors, the arena (decoded header strings, then the stamped
 * sender) and, unless the frame buffer is taken over, the frame as the
 * message holds it followed by a NUL.
 */
struct msg_draft {
        const struct frame_view *f;
        const struct msg_stamp *stamp; /* NULL: the frame is kept as it is */
        uint8_t *owned;                /* the buffer the frame lies in, to take over; NULL: copy */
        bool in_place;                 /* the stamp is stitched into owned's headroom */
        char stitch[STAMP_TEXT_MAX];   /* the stamp's text ("{" and the sender fields) */
        size_t stitch_len;             /* its length; 0 without a stamp */
        size_t lead;                   /* white space before the header's '{', dropped when stitching */
        size_t arena_size;
        size_t out_size; /* the frame as the message holds it */
};

/*
 * Size the message for d: the stamp's text and where the header starts.
 * Returns 0, -EINVAL for a stamp whose sender is no bus name, or
 * PROTO_E_HEADER_TOO_LARGE when stitching would take the header past the
 * protocol's limit.
 */
static int msg_draft_size(struct msg_draft *d)
{
        const struct frame_view *f = d->f;

        /* JSON may start with white space: the stitched header starts at the '{'. */
        while (f->header[d->lead] != '{')
                d->lead++;
        d->arena_size = f->prefix.header_len + _F_MAX;
        d->out_size = f->size;
        if (!d->stamp)
                return 0;
        d->stitch_len = stamp_text(d->stamp, d->stitch);
        if (!d->stitch_len)
                return -EINVAL;
        if (f->prefix.header_len + d->stitch_len - 1 > IPCBUS_HEADER_MAX)
                return PROTO_E_HEADER_TOO_LARGE;
        d->arena_size += d->stitch_len;
        d->out_size = f->size - d->lead - 1 + d->stitch_len;
        /* Room before the header's first member for the prefix and the stamp? Else a copy. */
        if (d->owned)
                d->in_place = (size_t) (f->header + d->lead + 1 - (const char *) d->owned) >=
                              IPCBUS_FRAME_PREFIX_SIZE + d->stitch_len;
        return 0;
}

/* The arena of a message allocated for d: just past its descriptors. */
static char *msg_arena(struct msg *m, const struct msg_draft *d)
{
        return (char *) (m->fds + d->f->prefix.n_fds);
}

/* Allocate the zeroed message d describes, its fds pointing at their place. NULL when out of memory. */
static struct msg *msg_alloc(const struct msg_draft *d)
{
        size_t size = sizeof(struct msg) + d->f->prefix.n_fds * sizeof(int) + d->arena_size;
        struct msg *m;

        if (!d->owned || (d->stamp && !d->in_place))
                size += d->out_size + 1;
        m = calloc(1, size);
        if (m)
                m->fds = (int *) (m + 1);
        return m;
}

/*
 * Decode and check the header of d's frame into m->h, then the body (the
 * faults msg_validate noted, an error's body). Returns 0 or the first
 * PROTO_E_* code, a NUL in the header first, then the header's fields
 * (said in why); *reterr_serial and *reterr_no_reply (when not NULL) are set
 * in either case from what the header gave.
 */
static int msg_decode(struct msg *m, const struct msg_draft *d, unsigned flags, const struct msg_faults *faults,
                      uint32_t *reterr_serial, bool *reterr_no_reply, char *why)
{
        const struct frame_view *f = d->f;
        int r;

        if (faults->header)
                nul_refuse(why, "header", f->header, faults->header_nul);
        r = header_decode(f->header, f->prefix.header_len, msg_arena(m, d), flags, &m->h, why);
        if (reterr_serial)
                *reterr_serial = m->h.serial;
        if (reterr_no_reply)
                *reterr_no_reply = m->h.no_reply && m->h.type == MSG_CALL;
        if (faults->header)
                return faults->header;
        if (!r)
                r = body_fd_check(&m->h, &f->prefix, why);
        if (!r && faults->body == PROTO_E_NUL)
                r = nul_refuse(why, "body", f->body, faults->body_nul);
        else if (!r && faults->body)
                r = why_set(why, faults->body, "the body is not a JSON object: got %s", kind_name(faults->body_kind));
        if (!r && m->h.type == MSG_ERROR && f->prefix.body_len)
                r = error_body_check(f->body, f->prefix.body_len);
        return r;
}

/*
 * Put the frame's bytes into the decoded message m: take over d->owned, or
 * copy the frame, with the stamp's text stitched in front of the header's
 * members and the sender fields set when there is a stamp (the body bytes
 * unchanged). Then point header and body into them and take the descriptors.
 */
static void msg_stitch(struct msg *m, const struct msg_draft *d, const int *fds)
{
        const struct frame_view *f = d->f;
        const size_t header_len = f->prefix.header_len, body_len = f->prefix.body_len;
        char *arena = msg_arena(m, d);

        m->n_ref = 1;
        m->header_len = header_len;
        m->body_len = body_len;
        m->size = d->out_size;
        if (d->owned && !d->stamp) {
                m->data = f->data;
        } else if (d->owned && d->in_place) {
                /* The new prefix and the stamp go just before the header's first
                 * member, over the old prefix and into the headroom; the rest of
                 * the frame stays where it was read. */
                char *rest = (char *) f->header + d->lead + 1;
                uint8_t *out = (uint8_t *) rest - d->stitch_len - IPCBUS_FRAME_PREFIX_SIZE;
                char *sender = arena + header_len + _F_MAX;

                m->header_len = d->stitch_len + (size_t) (f->header + header_len - rest);
                frame_prefix_encode(out, (uint32_t) m->header_len, (uint32_t) body_len, f->prefix.n_fds);
                memcpy(out + IPCBUS_FRAME_PREFIX_SIZE, d->stitch, d->stitch_len);
                memcpy(sender, d->stamp->sender, strlen(d->stamp->sender) + 1);
                m->h.sender = sender;
                m->h.sender_uid = d->stamp->uid;
                m->h.sender_pid = d->stamp->pid;
                m->data = out;
        } else {
                uint8_t *out = (uint8_t *) arena + d->arena_size;
                const char *rest = f->header + d->lead + 1; /* just past the header's '{' */

                if (d->stamp) {
                        char *sender = arena + header_len + _F_MAX;
                        size_t rest_len = (size_t) (f->header + header_len - rest);

                        m->header_len = d->stitch_len + rest_len;
                        frame_prefix_encode(out, (uint32_t) m->header_len, (uint32_t) body_len, f->prefix.n_fds);
                        memcpy(out + IPCBUS_FRAME_PREFIX_SIZE, d->stitch, d->stitch_len);
                        memcpy(out + IPCBUS_FRAME_PREFIX_SIZE + d->stitch_len, rest, rest_len);
                        memcpy(sender, d->stamp->sender, strlen(d->stamp->sender) + 1);
                        m->h.sender = sender;
                        m->h.sender_uid = d->stamp->uid;
                        m->h.sender_pid = d->stamp->pid;
                } else {
                        memcpy(out, f->data, IPCBUS_FRAME_PREFIX_SIZE + header_len);
                }
                if (body_len)
                        memcpy(out + IPCBUS_FRAME_PREFIX_SIZE + m->header_len, f->body, body_len);
                out[m->size] = '\0';
                m->data = out;
        }
        m->header = (const char *) m->data + IPCBUS_FRAME_PREFIX_SIZE;
        m->body = body_len ? m->header + m->header_len : NULL;
        m->n_fds = f->prefix.n_fds;
        if (m->n_fds)
                memcpy(m->fds, fds, m->n_fds * sizeof(int));
}

/*
 * The common constructor: validate frame f, allocate, decode, stitch. The
 * result holds a copy of the frame (stitched when stamp is set) or, with
 * `owned` (the malloc'd buffer f lies in, with a NUL after the frame), takes
 * that buffer instead of copying, unless a stamp does not fit before the
 * header. Returns as msg_parse; *ret is written only on 0 (and owned is
 * then taken when (*ret)->data_alloc is it), the reterr_ outputs once the
 * header was decoded (msg_parse zeroes them before), and why (when not NULL)
 * on a PROTO_E_* code that has a sentence of its own.
 */
static int msg_new(const struct frame_view *f, const struct msg_stamp *stamp, unsigned flags, const int *fds,
                   uint8_t *owned, size_t owned_cap, struct msg **ret, uint32_t *reterr_serial, bool *reterr_no_reply,
                   char *why)
{
        struct msg_draft d = {.f = f, .stamp = stamp, .owned = owned};
        struct msg_faults faults;
        struct msg *m = NULL;
        int r;

        r = msg_validate(f, flags, &faults, why);
        if (r)
                return r;
        r = msg_draft_size(&d);
        if (r == 0 && !(m = msg_alloc(&d)))
                r = -ENOMEM;
        if (r == 0)
                r = msg_decode(m, &d, flags, &faults, reterr_serial, reterr_no_reply, why);
        if (r == 0) {
                msg_stitch(m, &d, fds);
                if (d.owned && (!d.stamp || d.in_place)) {
                        m->data_alloc = d.owned;
                        m->data_cap = owned_cap;
                }
        }
        if (r) {
                free(m);
                return r;
        }
        *ret = m;
        return 0;
}

int msg_parse_why(const struct frame_view *f, const struct msg_stamp *stamp, unsigned flags, int *fds, struct msg **ret,
                  uint32_t *reterr_serial, bool *reterr_no_reply, char *reterr_why)
{
        uint8_t *owned = f->owned ? *f->owned : NULL;
        int r;

        if (reterr_serial)
                *reterr_serial = 0;
        if (reterr_no_reply)
                *reterr_no_reply = false;
        if (reterr_why)
                reterr_why[0] = '\0';
        flags &= ~MSG_BUILD_BODY_CHECKED; /* what comes in is always checked */
        if (f->prefix.n_fds && !fds)
                r = PROTO_E_FDS_MISMATCH;
        else
                r = msg_new(f, stamp, flags, fds, owned, f->owned_cap, ret, reterr_serial, reterr_no_reply, reterr_why);
        if (r == 0 && owned && (*ret)->data_alloc == owned)
                *f->owned = NULL;
        if (r > 0)
                why_set(reterr_why, r, "%s", proto_strerror(r));
        return r;
}

int msg_parse(const struct frame_view *f, const struct msg_stamp *stamp, unsigned flags, int *fds, struct msg **ret,
              uint32_t *reterr_serial, bool *reterr_no_reply)
{
        return msg_parse_why(f, stamp, flags, fds, ret, reterr_serial, reterr_no_reply, NULL);
}

static void encode_string_field(struct jbuf *b, bool *first, const char *name, const char *value)
{
        if (!value)
                return;
        jbuf_puts(b, *first ? "\"" : ",\"");
        jbuf_puts(b, name);
        jbuf_puts(b, "\":");
        jbuf_put_string(b, value);
        *first = false;
}

/* Written by hand: printf was a tenth of a small call's encoding. */
static void encode_int_field(struct jbuf *b, bool *first, const char *name, int64_t value, bool present)
{
        char text[24], *p = text + sizeof(text);
        uint64_t v = value < 0 ? -(uint64_t) value : (uint64_t) value;

        if (!present)
                return;
        do
                *--p = (char) ('0' + v % 10);
        while ((v /= 10) > 0);
        if (value < 0)
                *--p = '-';
        jbuf_puts(b, *first ? "\"" : ",\"");
        jbuf_puts(b, name);
        jbuf_put(b, "\":", 2);
        jbuf_put(b, p, (size_t) (text + sizeof(text) - p));
        *first = false;
}

static void encode_header(const struct msg_header *h, struct jbuf *b)
{
        bool first = true;

        jbuf_putc(b, '{');
        encode_string_field(b, &first, "sender", h->sender);
        encode_int_field(b, &first, "sender_uid", h->sender_uid, h->sender_uid >= 0);
        encode_int_field(b, &first, "sender_pid", h->sender_pid, h->sender_pid >= 0);
        encode_string_field(b, &first, "type", msg_type_to_string(h->type) ?: "invalid");
        encode_int_field(b, &first, "serial", h->serial, true);
        encode_int_field(b, &first, "reply_serial", h->reply_serial, h->reply_serial != 0);
        encode_string_field(b, &first, "destination", h->destination);
        encode_string_field(b, &first, "path", h->path);
        encode_string_field(b, &first, "interface", h->interface);
        encode_string_field(b, &first, "member", h->member);
        encode_string_field(b, &first, "error", h->error_name);
        if (h->no_reply)
                jbuf_puts(b, ",\"no_reply\":true");
        if (h->no_auto_start)
                jbuf_puts(b, ",\"no_auto_start\":true");
        encode_int_field(b, &first, "timeout_ms", h->timeout_ms, h->timeout_ms != 0);
        encode_int_field(b, &first, "body_fd", h->body_fd, h->body_size != 0);
        encode_int_field(b, &first, "body_size", h->body_size, h->body_size != 0);
        jbuf_putc(b, '}');
}

int msg_header_encode(const struct msg_header *h, char **ret, size_t *ret_len)
{
        struct jbuf b;
        char *s;

        jbuf_init(&b);
        encode_header(h, &b);
        s = jbuf_steal(&b, ret_len);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int msg_build(const struct msg_header *h, const char *body, size_t body_len, struct msg **ret)
{
        return msg_build_fds(h, body, body_len, NULL, 0, 0, ret);
}

int msg_build_fds(const struct msg_header *h, const char *body, size_t body_len, const int *fds, unsigned n_fds,
                  unsigned flags, struct msg **ret)
{
        struct frame_view f = {0};
        struct jbuf b;
        size_t header_len, size, cap;
        uint8_t *data;
        int r;

        if (!body)
                body_len = 0;
        jbuf_init(&b);
        encode_header(h, &b);
        if (b.failed)
                return -ENOMEM;
        header_len = b.len;
        if (header_len > IPCBUS_HEADER_MAX || body_len > IPCBUS_BODY_MAX || n_fds > IPCBUS_FDS_MAX) {
                jbuf_deinit(&b);
                return header_len > IPCBUS_HEADER_MAX ? PROTO_E_HEADER_TOO_LARGE
                       : body_len > IPCBUS_BODY_MAX   ? PROTO_E_BODY_TOO_LARGE
                                                      : PROTO_E_TOO_MANY_FDS;
        }
        /* One allocation of the frame's exact size, and the body copied once. */
        size = IPCBUS_FRAME_PREFIX_SIZE + header_len + body_len;
        data = bufcache_alloc(size + 1, &cap);
        if (!data) {
                jbuf_deinit(&b);
                return -ENOMEM;
        }
        frame_prefix_encode(data, (uint32_t) header_len, (uint32_t) body_len, (uint16_t) n_fds);
        memcpy(data + IPCBUS_FRAME_PREFIX_SIZE, b.data, header_len);
        if (body_len)
                memcpy(data + IPCBUS_FRAME_PREFIX_SIZE + header_len, body, body_len);
        data[size] = '\0';
        jbuf_deinit(&b);
        f.data = data;
        f.size = size;
        f.prefix.version = IPCBUS_PROTOCOL_VERSION;
        f.prefix.header_len = (uint32_t) header_len;
        f.prefix.body_len = (uint32_t) body_len;
        f.prefix.n_fds = (uint16_t) n_fds;
        f.header = (const char *) data + IPCBUS_FRAME_PREFIX_SIZE;
        f.body = body_len ? f.header + header_len : NULL;
        r = msg_new(&f, NULL, MSG_PARSE_FROM_BROKER | (flags & MSG_BUILD_BODY_CHECKED), fds, data, cap, ret, NULL, NULL,
                    NULL);
        if (r)
                bufcache_free(data, cap);
        return r;
}

struct msg *msg_ref(struct msg *m)
{
        if (m)
                m->n_ref++;
        return m;
}

struct msg *msg_unref(struct msg *m)
{
        if (!m || --m->n_ref > 0)
                return NULL;
        if (m->on_free)
                m->on_free(m, m->on_free_userdata);
        for (unsigned i = 0; i < m->n_fds; i++)
                if (m->fds[i] >= 0)
                        close(m->fds[i]);
        free(m->args);
        free(m->nodes);
        free(m->decoded);
        bufcache_free(m->data_alloc, m->data_cap);
        free(m);
        return NULL;
}

/* JSCAN_NODE_USER: the string's decoding is in m->decoded. */
#define NODE_DECODED JSCAN_NODE_USER

/*
 * Decode the raw string raw[0..raw_len) of m's body into m->decoded at the
 * same offset (decoding never grows a string, and its closing quote's place
 * takes the NUL). Returns the decoded text, NULL when out of memory.
 */
static const char *body_decode(struct msg *m, const char *raw, size_t raw_len)
{
        char *dst;

        if (!m->decoded && !(m->decoded = malloc(m->body_len + 1)))
                return NULL;
        dst = m->decoded + (raw - m->body);
        jscan_string_decode(raw, raw_len, dst);
        return dst;
}

int msg_body_index(struct msg *m)
{
        if (m->nodes || !m->body)
                return 0;
        return jscan_index(m->body, m->body_len, UINT_MAX, &m->nodes, &m->n_nodes) == -ENOMEM ? -ENOMEM : 0;
}

const char *msg_body_string(struct msg *m, size_t i)
{
        struct jscan_node *node = &m->nodes[i];
        const char *s;

        if (node->flags & NODE_DECODED)
                return m->decoded + node->start;
        s = body_decode(m, m->body + node->start, node->len);
        if (s)
                node->flags |= NODE_DECODED;
        return s;
}

/* Add the member (key, value: decoded strings, value NULL when not one) to m->args, growing it. 0 or -ENOMEM. */
static int args_add(struct msg *m, size_t *cap, const char *key, const char *value)
{
        if (!key)
                return -ENOMEM;
        if (m->n_args == *cap) {
                size_t n = *cap ? 2 * *cap : 8;
                struct msg_arg *args = realloc(m->args, n * sizeof(*args));

                if (!args)
                        return -ENOMEM;
                m->args = args;
                *cap = n;
        }
        m->args[m->n_args++] = (struct msg_arg){key, value};
        return 0;
}

/* The top-level members into m->args, through the index. 0 or -ENOMEM. */
static int args_from_index(struct msg *m, size_t *cap)
{
        if (m->n_nodes == 0 || m->nodes[0].kind != JSCAN_OBJECT)
                return 0;
        for (size_t k = 1; k < m->nodes[0].end; k = m->nodes[k + 1].end) {
                const char *value = NULL;

                if (m->nodes[k + 1].kind == JSCAN_STRING && !(value = msg_body_string(m, k + 1)))
                        return -ENOMEM;
                if (args_add(m, cap, msg_body_string(m, k), value) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* The top-level members into m->args, in one walk of the text. 0 or -ENOMEM. */
static int args_from_text(struct msg *m, size_t *cap)
{
        struct jscan_iter it;
        struct jscan_member mem;

        if (!m->body || jscan_object_begin(&it, m->body, m->body_len) != 0)
                return 0;
        while (jscan_object_next(&it, &mem) > 0) {
                const char *value = NULL;

                if (mem.kind == JSCAN_STRING && !(value = body_decode(m, mem.value, mem.value_len)))
                        return -ENOMEM;
                if (args_add(m, cap, body_decode(m, mem.key, mem.key_len), value) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int msg_get_args(struct msg *m, const struct msg_arg **ret, size_t *ret_n)
{
        size_t cap = 0;
        int r;

        if (!m->args_done) {
                r = m->nodes ? args_from_index(m, &cap) : args_from_text(m, &cap);
                if (r < 0) {
                        free(m->args);
                        m->args = NULL;
                        m->n_args = 0;
                        return r;
                }
                m->args_done = true;
        }
        *ret = m->args;
        *ret_n = m->n_args;
        return 0;
}

/* Whether the key node k of m's index is `key`. */
static bool index_key_equal(struct msg *m, size_t k, const char *key, size_t key_len)
{
        const struct jscan_node *node = &m->nodes[k];
        const char *decoded;

        if (!(node->flags & JSCAN_NODE_ESCAPED))
                return node->len == key_len && memcmp(m->body + node->start, key, key_len) == 0;
        if (node->len < key_len)
                return false;
        decoded = msg_body_string(m, k);
        return decoded && strcmp(decoded, key) == 0;
}

const char *msg_get_arg(struct msg *m, const char *key)
{
        const struct msg_arg *args;
        size_t n, key_len, found = 0;

        if (m->nodes && !m->args_done) {
                /* one value decoded, not all of them */
                if (m->nodes[0].kind != JSCAN_OBJECT)
                        return NULL;
                key_len = strlen(key);
                for (size_t k = 1; k < m->nodes[0].end; k = m->nodes[k + 1].end)
                        if (index_key_equal(m, k, key, key_len))
                                found = k + 1;
                return found && m->nodes[found].kind == JSCAN_STRING ? msg_body_string(m, found) : NULL;
        }
        if (msg_get_args(m, &args, &n) < 0)
                return NULL;
        /* the last of duplicate keys counts, whatever its type (PROTOCOL.md 4) */
        for (size_t i = n; i-- > 0;)
                if (strcmp(args[i].key, key) == 0)
                        return args[i].value;
        return NULL;
}
