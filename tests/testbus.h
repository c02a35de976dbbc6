/* SPDX-License-Identifier: MIT */
/*
 * testbus: what the integration suites share. Every suite runs a real
 * ipcbusd on a socket in a fresh temporary directory (one broker per test),
 * talks to it through the real libipcbus, through raw sockets for bad input,
 * through forked client processes, and through the real tools.
 *
 * Functions without "peer" in their name run in the test process and report
 * problems with Check assertions. Functions named testbus_peer_* run in a
 * forked child, where Check must not be used: a child reports a failure to
 * its parent as a "FAIL: ..." line and exits non-zero.
 *
 * This is the one header the suites include. The helpers live in tests/lib,
 * one file per concern, linked into tests/libtestbus.la:
 *   fixture   test cases whose tests each get a broker, the suite runner
 *   broker    starting and stopping ipcbusd, waiting for lines of its log
 *   client    connections through libipcbus, calls that must succeed or fail
 *   recorder  recording what a connection receives
 *   json      JSON assertions
 *   raw       raw sockets and frames, for what libipcbus would never send
 *   child     forked helper processes (the parent's and the child's side)
 *   service   the test service and the subscriber, children with a role
 *   tools     running ipcctl, ipc-monitor and other programs
 *   attack    the broker's /proc readings and the attack tests' bystander
 *   lines     line readers over pipes; util: clocks, program paths, files
 * tests/lib/internal.h is what those files share and suites do not see.
 */
#pragma once

#include <check.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <ipcbus/ipcbus.h>

#include "tests/lib/attack.h"
#include "tests/lib/broker.h"
#include "tests/lib/child.h"
#include "tests/lib/client.h"
#include "tests/lib/fixture.h"
#include "tests/lib/json.h"
#include "tests/lib/lines.h"
#include "tests/lib/raw.h"
#include "tests/lib/recorder.h"
#include "tests/lib/service.h"
#include "tests/lib/tools.h"
#include "tests/lib/util.h"
