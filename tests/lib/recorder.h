/* SPDX-License-Identifier: MIT */
/* testbus: recording what a connection receives. */
#pragma once

#include <stddef.h>

#include <ipcbus/ipcbus.h>

/* A filter on a connection that keeps a reference to each incoming message of the chosen types. */
struct testbus_rec {
        ipcbus_bus *bus;
        ipcbus_slot *slot;
        unsigned types; /* bit (1 << ipcbus_message_type); 0: every type */
        ipcbus_message **msgs;
        size_t n;
        size_t cap;
        size_t next; /* first message not yet taken */
};

#define TESTBUS_REC_SIGNALS (1u << IPCBUS_MESSAGE_SIGNAL)

void testbus_rec_init(struct testbus_rec *r, ipcbus_bus *bus, unsigned types);
void testbus_rec_deinit(struct testbus_rec *r);
/* The next recorded message (a borrowed reference), dispatching up to timeout_ms; NULL if none came. */
ipcbus_message *testbus_rec_next(struct testbus_rec *r, int timeout_ms);
/*
 * The next recorded message must be a signal `member` whose body member
 * "name" is `name` (unless NULL); returns it. Fails otherwise or if nothing came.
 */
ipcbus_message *testbus_rec_expect(struct testbus_rec *r, const char *member, const char *name);
/* Skip messages until a signal `member` comes; returns it, NULL on timeout. */
ipcbus_message *testbus_rec_wait_member(struct testbus_rec *r, const char *member, int timeout_ms);
/* Sync with the broker, then assert nothing more was recorded. */
void testbus_rec_expect_quiet(struct testbus_rec *r);
/* Forget everything recorded so far. */
void testbus_rec_skip(struct testbus_rec *r);
/* Number of untaken recorded signals named member. */
size_t testbus_rec_count(struct testbus_rec *r, const char *member);
