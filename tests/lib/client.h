/* SPDX-License-Identifier: MIT */
/* testbus: clients through libipcbus, and calls that must succeed or fail. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

#include <ipcbus/ipcbus.h>

#include "tests/lib/broker.h"

/* Open a connection (asserting success) and dispatch what came with Hello. */
ipcbus_bus *testbus_connect(struct testbus *tb);
/*
 * The same as another user: the socket is connected under cred's effective
 * uid, gid and groups, which is what the broker learns (SO_PEERCRED,
 * SO_PEERGROUPS); the test process is root again afterwards.
 */
ipcbus_bus *testbus_connect_as(struct testbus *tb, const struct testbus_cred *cred);
/* ipcbus_open_address as another user: its result (for connections the broker refuses). */
int testbus_open_as(struct testbus *tb, const struct testbus_cred *cred, ipcbus_bus **ret);
/* Dispatch everything already received, without blocking. */
void testbus_pump(ipcbus_bus *bus);
/*
 * Round trip to the broker (Ping), then dispatch everything received: every
 * message the broker queued for this connection before it answered is
 * dispatched when this returns.
 */
void testbus_sync(ipcbus_bus *bus);
/*
 * Dispatch until done(userdata) is true or timeout_ms passed; returns done().
 * Several connections can be driven together (NULL-terminated array).
 */
bool testbus_pump_until(ipcbus_bus *const *buses, bool (*done)(void *userdata), void *userdata, int timeout_ms);

/*
 * Send a built call from `caller` and drive the connections (NULL-terminated,
 * the callee among them) until its answer comes; returns the answer (return
 * or error message), a reference the test drops. Fails the test if none came.
 */
ipcbus_message *testbus_call_pumped(ipcbus_bus *const *buses, ipcbus_bus *caller, ipcbus_message *call);

/*
 * A call that must succeed: returns the reply body parsed (NULL when the
 * reply had no body). Fails the test on an error reply, naming it.
 */
json_object *testbus_call(ipcbus_bus *bus, const char *destination, const char *path, const char *interface,
                          const char *member, const char *body);
/* A call that must fail with error_name; returns the error's message (malloc'd, may be NULL). */
char *testbus_call_error(ipcbus_bus *bus, const char *destination, const char *path, const char *interface,
                         const char *member, const char *body, const char *error_name);
/* The same, on the driver. */
json_object *testbus_driver(ipcbus_bus *bus, const char *member, const char *body);
void testbus_driver_error(ipcbus_bus *bus, const char *member, const char *body, const char *error_name);
/* RequestName through the driver; returns the result code. */
int testbus_request_name(ipcbus_bus *bus, const char *name, unsigned flags);
int testbus_release_name(ipcbus_bus *bus, const char *name);
/* GetNameOwner: the owner, malloc'd, or NULL when the name has no owner. */
char *testbus_name_owner(ipcbus_bus *bus, const char *name);
/* AddMatch / RemoveMatch with a rule in JSON object form, through the driver. */
void testbus_add_match(ipcbus_bus *bus, const char *rule_json);
void testbus_remove_match(ipcbus_bus *bus, const char *rule_json);
