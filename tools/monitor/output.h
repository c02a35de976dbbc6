/* SPDX-License-Identifier: MIT */
/*
 * What ipc-monitor prints of an event: a human line or a JSON object.
 *
 * Human line, one per message (the integration tests rely on it):
 *   [TIME ]TYPE SENDER -> DESTINATION serial=N[ reply_serial=N][ path=P]
 *       [ interface=I][ member=M][ error=E][ no_reply][ fds=N][ memfd=BYTES]
 *       [ ← [CALLDEST ]IFACE.MEMBER LATENCY][ uid=U pid=P[ comm=C]][ BODY]
 *   TYPE is "call", "return", "error" or "signal", padded to 6 columns.
 *   SENDER ("-" when absent) and DESTINATION ("*" for a broadcast) are
 *   padded on a terminal to the widest seen so far (at least the driver's
 *   name, up to 24 columns), so columns line up; elsewhere one space
 *   separates them, so that "SENDER -> DESTINATION" can be searched for.
 *   "←" follows an answer to a call the monitor saw: the call's destination
 *   (left out when it is the interface's name), member and the time
 *   between the two. BODY is compact (every scalar as the sender wrote
 *   it), its long strings, arrays and objects cut with "…" and the body's
 *   size in bytes added ("(1234 bytes)"), and "…" at the end when the line
 *   itself was cut; with full, the whole body follows, pretty, on the next
 *   lines. TIME (timestamps) is the local time with microseconds
 *   ("14:03:07.123456"), or seconds since the first message ("+1.234567"),
 *   or since the previous one. Everything that does not come from the
 *   codec's checked names is passed through format_sanitize. With colour,
 *   the type, the error name, the pairing and the credentials are coloured
 *   (ANSI SGR); without it the line has no escape at all.
 *
 * A call never answered (its deadline and a second passed):
 *   [TIME ]unanswered SENDER -> DESTINATION serial=N[ path=P][ interface=I]
 *       [ member=M] no answer after LATENCY
 *
 * JSON line, one per message:
 *   {"header":{...},"body":<body or null>,"timestamp":<seconds.micro>,
 *    "fds":N,"memfd_size":N[,"comm":C][,"call":{"destination":..,
 *    "path":..,"interface":..,"member":..,"serial":N},"latency_us":N]}
 *   and for a call never answered:
 *   {"unanswered":{"sender":..,"serial":N,"destination":..,"path":..,
 *    "interface":..,"member":..,"timestamp":<seconds.micro>},"timestamp":..}
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "tools/monitor/event.h"
#include "tools/monitor/pairing.h"

enum output_color {
        OUTPUT_COLOR_AUTO,
        OUTPUT_COLOR_ALWAYS,
        OUTPUT_COLOR_NEVER,
};

enum output_timestamp {
        OUTPUT_TIME_NONE,
        OUTPUT_TIME_ABSOLUTE,
        OUTPUT_TIME_RELATIVE,
        OUTPUT_TIME_DELTA,
};

struct output {
        FILE *f;
        bool json;
        bool color; /* decided: output_want_color */
        bool full;
        bool align; /* pad the name columns (a terminal); else one space, so "A -> B" greps */
        enum output_timestamp time;
        struct timespec first, prev; /* of the first and the previous message printed */
        bool started;
        int sender_w, dest_w; /* the widest names seen so far */
};

/* Whether to colour what goes to fd: always, never, or auto (a terminal, and $NO_COLOR unset or empty). */
bool output_want_color(enum output_color c, int fd);

/* Print to f as the flags say (see struct output); f stays the caller's. */
void output_init(struct output *o, FILE *f, bool json, bool color, bool align, bool full, enum output_timestamp time);

/* Print ev (see above) and flush. Returns 0 or -ENOMEM. */
int output_event(struct output *o, const struct mon_event *ev);
/* Print the call that pairing kept, as a call line without its body (for --slow, before its late answer). */
int output_call(struct output *o, const struct mon_call *call);
/* Print that call was never answered, noticed at now. */
int output_unanswered(struct output *o, const struct mon_call *call, const struct timespec *now);
