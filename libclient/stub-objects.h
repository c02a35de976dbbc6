/* SPDX-License-Identifier: MIT */
/*
 * TEMPORARY (objects helper): declarations that the values and iface
 * helpers provide on their branches. Deleted when h-values and h-iface are
 * merged into h-objects.
 */
#pragma once

#include <ipcbus/ipcbus.h>

#ifndef IPCBUS_INTROSPECTABLE_INTERFACE
#define IPCBUS_INTROSPECTABLE_INTERFACE "org.ipcbus.Introspectable"
#define IPCBUS_PROPERTIES_INTERFACE "org.ipcbus.Properties"
#define IPCBUS_OBJECT_MANAGER_INTERFACE "org.ipcbus.ObjectManager"
#define IPCBUS_ERROR_UNKNOWN_PROPERTY "org.ipcbus.Error.UnknownProperty"
#define IPCBUS_ERROR_PROPERTY_READ_ONLY "org.ipcbus.Error.PropertyReadOnly"
#endif

int client_fail(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int message_begin_value(ipcbus_message *m, const char *name);
int message_enter_value(ipcbus_message *m, const char *name);
