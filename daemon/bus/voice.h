/* SPDX-License-Identifier: MIT */
/*
 * The driver's voice: every message the broker itself writes (replies,
 * errors, signals), all sent from the driver's name. Routing, the driver's
 * methods and the activation queue speak through it; it calls none of them.
 */
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/ipcbus/wire.h"

struct bus;
struct jbuf;
struct msg;
struct peer;
struct reply_slot;

/* The mark of text cut short in an error message. */
#define DRIVER_TRUNCATED "\u2026(truncated)"

/* Room for driver_callee_name's text: two names, a space and parentheses. */
#define DRIVER_CALLEE_NAME_MAX (2 * IPCBUS_NAME_MAX + 4)

/*
 * The callee of a pending call as its caller named it, for the texts of
 * Timeout and NoReply: "org.example.Notes (:1.64)", or just the callee's
 * unique name when the call was sent to it. Returns buf.
 */
const char *driver_callee_name(const struct reply_slot *slot, const char *unique_name, char *buf, size_t size);

/*
 * Send the error `name` with body {"message": <formatted text>} to peer,
 * answering its message `reply_serial` (0: none, for the last words before a
 * connection closes). Returns 0 or a negative errno.
 */
int driver_send_error(struct bus *bus, struct peer *peer, uint32_t reply_serial, const char *name, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

/* driver_send_error with a va_list. */
int driver_send_errorv(struct bus *bus, struct peer *peer, uint32_t reply_serial, const char *name, const char *fmt,
                       va_list ap) __attribute__((format(printf, 5, 0)));

/* As driver_send_error, answering `call`, unless the call asked for no reply. */
int driver_reply_error(struct bus *bus, struct peer *peer, struct msg *call, const char *name, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

/* Answer `call` with a return whose body is b (unless the call asked for no reply). Returns 0 or a negative errno. */
int driver_reply(struct bus *bus, struct peer *peer, struct msg *call, const struct jbuf *b);
/* The driver's signals. old_owner / new_owner are "" for none. */
void driver_emit_name_owner_changed(struct bus *bus, const char *name, const char *old_owner, const char *new_owner);
void driver_emit_name_acquired(struct bus *bus, struct peer *peer, const char *name);
void driver_emit_name_lost(struct bus *bus, struct peer *peer, const char *name);
/* To a monitor that caught up: it lost `count` copies while it was behind. */
void driver_emit_messages_lost(struct bus *bus, struct peer *monitor, uint64_t count);
/* StartServiceByName's answer {"result": result} to `call` (an allocation failure is logged). */
void driver_reply_start_result(struct bus *bus, struct peer *peer, struct msg *call, int result);
