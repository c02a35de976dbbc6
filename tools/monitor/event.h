/* SPDX-License-Identifier: MIT */
/*
 * One message as ipc-monitor saw it, live from the bus or read back from a
 * capture: what every output mode, the pairing of calls with their answers,
 * the capture file and the top view work on.
 */
#pragma once

#include <stdint.h>
#include <time.h>

#include <ipcbus/ipcbus.h>

#include "protocol/message.h"

struct mon_call;

struct mon_event {
        struct timespec ts; /* CLOCK_REALTIME when the monitor received it */
        /* The message as one frame with its body inline (a memfd body read
         * in, body_fd/body_size dropped from the header) and no descriptors:
         * msg->h has the header fields, msg->data/msg->size the frame bytes
         * a capture stores. Owned. */
        struct msg *msg;
        unsigned n_fds;      /* descriptors it carried (counted, not kept) */
        uint32_t memfd_size; /* its body came in a sealed memfd of this many bytes; 0: in the frame */
        char comm[16];       /* the sender's command name, "" when unknown */
        /* Set by pairing_feed for a return or error answering a call the
         * monitor saw (valid until the next pairing_feed or pairing_expire);
         * NULL and 0 otherwise. */
        const struct mon_call *call;
        uint64_t latency_usec;
};

/*
 * Cache of senders' command names by unique name (read once from
 * /proc/PID/comm, the pid from the sender_pid the broker stamps), so that a
 * pid reused later does not rename a connection. Bounded.
 */
struct mon_comms;
int mon_comms_new(struct mon_comms **ret);
struct mon_comms *mon_comms_free(struct mon_comms *c);

/*
 * Make *ret of a message received live at ts. comms may be NULL (no command
 * names). Returns 0, -ENOMEM, or -EINVAL for a message the codec refuses.
 */
int mon_event_from_message(ipcbus_message *m, const struct timespec *ts, struct mon_comms *comms,
                           struct mon_event *ret);

/*
 * Make *ret of a frame read back from a capture (PROTOCOL.md 2, n_fds 0 in
 * its prefix, broker-only fields allowed), with the metadata the capture
 * kept. Returns 0, -ENOMEM, or a PROTO_E_* code for a frame the codec refuses.
 */
int mon_event_from_frame(const uint8_t *frame, size_t size, const struct timespec *ts, unsigned n_fds,
                         uint32_t memfd_size, const char *comm, struct mon_event *ret);

/*
 * The count of copies the bus dropped before they reached this monitor when
 * ev is the driver's MessagesLost notice (PROTOCOL.md 11); 0 for any other
 * message.
 */
uint64_t mon_event_lost(const struct mon_event *ev);

/* Free what ev owns and zero it. */
void mon_event_clear(struct mon_event *ev);
