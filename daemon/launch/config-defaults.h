/* SPDX-License-Identifier: MIT */
/*
 * The shipped daemon/session.json and daemon/system.json, built into the
 * broker: make generates daemon/launch/config-defaults.c from the two files.
 */
#pragma once

extern const char config_default_session[];
extern const char config_default_system[];
