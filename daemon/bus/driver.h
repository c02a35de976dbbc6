/* SPDX-License-Identifier: MIT */
/*
 * The bus driver, org.ipcbus.Bus (PROTOCOL.md 7): its methods. What it says
 * (replies, errors, signals) goes through its voice, daemon/bus/voice.h.
 */
#pragma once

struct bus;
struct msg;
struct peer;

/* Answer a call addressed to the driver (its destination is the driver's name). */
void driver_dispatch(struct bus *bus, struct peer *peer, struct msg *call);
