/* SPDX-License-Identifier: MIT */
/* testbus: the test service and the subscriber, two forked helpers with a role. */
#pragma once

#include "tests/lib/broker.h"
#include "tests/lib/child.h"

/*
 * A child process serving TESTBUS_SERVICE_INTERFACE at TESTBUS_SERVICE_PATH,
 * owning `name` when not NULL. Methods:
 *   Echo           replies with the call's body bytes unchanged
 *   Fixed          replies with TESTBUS_FIXED_BODY
 *   Fail           replies with error TESTBUS_SERVICE_ERROR "failed on purpose"
 *   FailErrno      the handler returns -ENOENT without setting an error
 *   FailCustom     the handler sets TESTBUS_SERVICE_CUSTOM_ERROR "custom failure", returns -EIO
 *   Hold           keeps the call unanswered and reports "held <serial>"
 *   WhoAmI         replies {"sender":…,"uid":…,"pid":…} as the call's header carried them
 *   Record         reports "record <no_reply 0|1> <body>" and replies {}
 *   EmitThenReply  emits {"n":N} broadcast signals Tick {"i":0..N-1}, then replies {}
 * Commands: "release" answers every held call with {"released":true} and
 * reports "released <count>"; "emit MEMBER BODY" emits a broadcast signal
 * and reports "emitted". Every error message the service receives is
 * reported as "error <name>".
 * Reads the "ready <unique name>" line into c->unique.
 */
#define TESTBUS_SERVICE_PATH "/org/example/Test"
#define TESTBUS_SERVICE_INTERFACE "org.example.Test"
#define TESTBUS_SERVICE_ERROR "org.example.Test.Error.Failed"
#define TESTBUS_SERVICE_CUSTOM_ERROR "org.example.Test.Error.Custom"
#define TESTBUS_FIXED_BODY "{ \"text\" : \"h\\u00e9llo\" ,\n\t\"list\":[ 1, 2.50e3 , true ],  \"nested\":{ } }"
void testbus_service_start(struct testbus *tb, struct testbus_child *c, const char *name);
/* The same, the service running as another user. */
void testbus_service_start_as(struct testbus *tb, struct testbus_child *c, const struct testbus_cred *cred,
                              const char *name);

/*
 * A child process subscribed with each rule of `rules` (string form, NULL
 * terminated) through ipcbus_add_match; reports "ready <unique>", then one
 * line per signal the broker delivers to it (seen by a filter, so a signal
 * matching several rules shows how often the broker sent it):
 * "signal <member> <sender> <body>".
 */
void testbus_subscriber_start(struct testbus *tb, struct testbus_child *c, const char *const *rules);
