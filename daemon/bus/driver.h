/* SPDX-License-Identifier: MIT */
/*
 * The bus driver, org.ipcbus.Bus (PROTOCOL.md 7): its methods, its signals,
 * and every message the broker itself writes (replies, errors, signals), all
 * sent from the driver's name.
 */
#pragma once

#include <stdint.h>

struct bus;
struct jbuf;
struct msg;
struct peer;

/* Answer a call addressed to the driver (its destination is the driver's name). */
void driver_dispatch(struct bus *bus, struct peer *peer, struct msg *call);

/*
 * Send the error `name` with body {"message": <formatted text>} to peer,
 * answering its message `reply_serial` (0: none, for the last words before a
 * connection closes). Returns 0 or a negative errno.
 */
int driver_send_error(struct bus *bus, struct peer *peer, uint32_t reply_serial, const char *name, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

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
