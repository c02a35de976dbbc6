/* SPDX-License-Identifier: MIT */
/*
 * The driver's voice: every message the broker itself sends (errors,
 * replies, signals), from the driver's name, and how it reaches its
 * receivers (bus_send). Below both routing and the driver's methods.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/bus/internal.h"
#include "daemon/bus/voice.h"
#include "daemon/log.h"
#include "protocol/ipcbus/wire.h"
#include "protocol/jbuf.h"
#include "protocol/message.h"
#include "protocol/proto-error.h"
#include "util/util.h"

/*
 * The text of an error message is cut at this many bytes, at a character
 * boundary, and marked (DRIVER_TRUNCATED): an error reply stays small
 * whatever it quotes.
 */
#define DRIVER_ERROR_TEXT_MAX 1024

/*
 * Send a message the broker made: to `to` (unicast), or when `to` is NULL
 * to every peer whose rules match it. Monitors get their copy either way.
 */
void bus_send(struct bus *bus, struct peer *to, struct msg *m)
{
        /* The driver's notices to a monitor itself (MessagesLost) are no one else's business. */
        if (to && to->state == PEER_MONITOR) {
                peer_send(to, m);
                return;
        }
        bus_monitor(bus, m);
        if (to)
                bus_deliver(bus, NULL, to, m);
        else
                bus_broadcast(bus, NULL, m);
}

/* Fill in the driver's sender fields and a serial, and build the message.
 * A message we cannot build is our bug: it is logged, never sent half-made. */
static int driver_build(struct bus *bus, struct msg_header *h, const struct jbuf *body, struct msg **ret)
{
        int r;

        if (body && body->failed)
                return -ENOMEM;

        h->serial = bus_next_serial(bus);
        h->sender = IPCBUS_DRIVER_NAME;
        h->sender_uid = bus->uid;
        h->sender_pid = bus->pid;
        r = msg_build(h, body ? body->data : NULL, body ? body->len : 0, ret);
        if (r == 0)
                bus->stats.driver_messages++;
        if (r > 0) {
                log_error("driver: cannot build a %s message: %s", msg_type_to_string(h->type), proto_strerror(r));
                return -EINVAL;
        }
        return r;
}

static char *driver_format_bounded(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/*
 * The text of an error message, at most DRIVER_ERROR_TEXT_MAX bytes: longer
 * text is cut at a character boundary and marked (malloc'd; NULL on ENOMEM).
 */
static char *driver_format_bounded(const char *fmt, va_list ap)
{
        const size_t keep = DRIVER_ERROR_TEXT_MAX - sizeof(DRIVER_TRUNCATED);
        char *text = malloc(DRIVER_ERROR_TEXT_MAX + 1);
        int n;

        if (!text)
                return NULL;
        n = vsnprintf(text, DRIVER_ERROR_TEXT_MAX + 1, fmt, ap);
        if (n < 0) {
                free(text);
                return NULL;
        }
        if ((size_t) n > DRIVER_ERROR_TEXT_MAX) {
                size_t cut = keep;

                while (cut > 0 && ((unsigned char) text[cut] & 0xc0) == 0x80)
                        cut--;
                memcpy(text + cut, DRIVER_TRUNCATED, sizeof(DRIVER_TRUNCATED));
        }
        return text;
}

const char *driver_callee_name(const struct reply_slot *slot, const char *unique_name, char *buf, size_t size)
{
        if (slot->destination[0])
                snprintf(buf, size, "%s (%s)", slot->destination, unique_name);
        else
                snprintf(buf, size, "%s", unique_name);
        return buf;
}

int driver_send_errorv(struct bus *bus, struct peer *peer, uint32_t reply_serial, const char *name, const char *fmt,
                       va_list ap)
{
        _cleanup_(msg_unrefp) struct msg *m = NULL;
        _cleanup_(freep) char *text = NULL;
        struct msg_header h;
        struct jbuf b;
        int r;

        text = driver_format_bounded(fmt, ap);
        if (!text)
                return -ENOMEM;

        jbuf_init(&b);
        jbuf_puts(&b, "{\"message\":");
        jbuf_put_string(&b, text);
        jbuf_putc(&b, '}');

        msg_header_init(&h);
        h.type = MSG_ERROR;
        h.reply_serial = reply_serial;
        /* A connection that has not said Hello has no name to address yet. */
        h.destination = peer->state == PEER_NEW ? NULL : peer->unique_name;
        h.error_name = name;
        r = driver_build(bus, &h, &b, &m);
        jbuf_deinit(&b);
        if (r < 0)
                return r;

        bus_send(bus, peer, m);
        return 0;
}

int driver_send_error(struct bus *bus, struct peer *peer, uint32_t reply_serial, const char *name, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = driver_send_errorv(bus, peer, reply_serial, name, fmt, ap);
        va_end(ap);
        return r;
}

int driver_reply_error(struct bus *bus, struct peer *peer, struct msg *call, const char *name, const char *fmt, ...)
{
        va_list ap;
        int r;

        if (call->h.no_reply)
                return 0;
        va_start(ap, fmt);
        r = driver_send_errorv(bus, peer, call->h.serial, name, fmt, ap);
        va_end(ap);
        return r;
}

/* Emit a driver signal, unicast to `to` or broadcast when it is NULL. */
static void driver_emit(struct bus *bus, struct peer *to, const char *member, const struct jbuf *body)
{
        _cleanup_(msg_unrefp) struct msg *m = NULL;
        struct msg_header h;
        int r;

        msg_header_init(&h);
        h.type = MSG_SIGNAL;
        h.destination = to ? to->unique_name : NULL;
        h.path = IPCBUS_DRIVER_PATH;
        h.interface = IPCBUS_DRIVER_INTERFACE;
        h.member = member;
        r = driver_build(bus, &h, body, &m);
        if (r < 0) {
                log_error("driver: cannot emit %s: %s", member, strerror(-r));
                return;
        }
        bus_send(bus, to, m);
}

void driver_emit_name_owner_changed(struct bus *bus, const char *name, const char *old_owner, const char *new_owner)
{
        struct jbuf b;

        jbuf_init(&b);
        jbuf_puts(&b, "{\"name\":");
        jbuf_put_string(&b, name);
        jbuf_puts(&b, ",\"old_owner\":");
        jbuf_put_string(&b, old_owner);
        jbuf_puts(&b, ",\"new_owner\":");
        jbuf_put_string(&b, new_owner);
        jbuf_putc(&b, '}');
        driver_emit(bus, NULL, "NameOwnerChanged", &b);
        jbuf_deinit(&b);
}

static void driver_emit_name(struct bus *bus, struct peer *peer, const char *member, const char *name)
{
        struct jbuf b;

        jbuf_init(&b);
        jbuf_puts(&b, "{\"name\":");
        jbuf_put_string(&b, name);
        jbuf_putc(&b, '}');
        driver_emit(bus, peer, member, &b);
        jbuf_deinit(&b);
}

void driver_emit_name_acquired(struct bus *bus, struct peer *peer, const char *name)
{
        driver_emit_name(bus, peer, "NameAcquired", name);
}

void driver_emit_name_lost(struct bus *bus, struct peer *peer, const char *name)
{
        driver_emit_name(bus, peer, "NameLost", name);
}

void driver_emit_messages_lost(struct bus *bus, struct peer *monitor, uint64_t count)
{
        struct jbuf b;

        jbuf_init(&b);
        jbuf_printf(&b, "{\"count\":%" PRIu64 "}", count);
        driver_emit(bus, monitor, "MessagesLost", &b);
        jbuf_deinit(&b);
}

int driver_reply(struct bus *bus, struct peer *peer, struct msg *call, const struct jbuf *b)
{
        _cleanup_(msg_unrefp) struct msg *m = NULL;
        struct msg_header h;
        int r;

        if (call->h.no_reply)
                return 0;

        msg_header_init(&h);
        h.type = MSG_RETURN;
        h.reply_serial = call->h.serial;
        h.destination = peer->unique_name;
        r = driver_build(bus, &h, b, &m);
        if (r < 0)
                return r;
        bus_send(bus, peer, m);
        return 0;
}

void driver_reply_start_result(struct bus *bus, struct peer *peer, struct msg *call, int result)
{
        struct jbuf b;

        jbuf_init(&b);
        jbuf_printf(&b, "{\"result\":%d}", result);
        if (driver_reply(bus, peer, call, &b) < 0)
                log_error("driver: StartServiceByName from %s: out of memory", peer->unique_name);
        jbuf_deinit(&b);
}
