/* SPDX-License-Identifier: MIT */
/*
 * TEMPORARY (h-ipcctl): what h-iface adds to <ipcbus/wire.h>, until that
 * branch is merged. Delete with tools/stub-ipcctl.c.
 */
#pragma once

#ifndef IPCBUS_INTROSPECTABLE_INTERFACE
#define IPCBUS_INTROSPECTABLE_INTERFACE "org.ipcbus.Introspectable"
#endif
#ifndef IPCBUS_PROPERTIES_INTERFACE
#define IPCBUS_PROPERTIES_INTERFACE "org.ipcbus.Properties"
#endif
