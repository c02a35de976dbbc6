/* SPDX-License-Identifier: MIT */
/*
 * What the files of exported objects share: object.c (the index, the
 * registrations, the dispatch of calls, what this side sends) and the
 * standard interfaces it answers with, introspect.c
 * (org.ipcbus.Introspectable), properties.c (org.ipcbus.Properties) and
 * manager.c (org.ipcbus.ObjectManager). Nothing outside them uses it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "libclient/bus-internal.h"

struct iface_refs;

struct json_object;

/* The sentences of a failed check (err buffers) are cut at this length. */
#define OBJECT_ERR_MAX 512

/* The standard interfaces the library answers, in the order Introspect lists them. */
enum object_std {
        OBJECT_STD_INTROSPECTABLE,
        OBJECT_STD_PROPERTIES,
        OBJECT_STD_PEER,
        OBJECT_STD_OBJECT_MANAGER,
        _OBJECT_STD_MAX,
};

/* Builds the body of a return to m (reply) from the object s (may be NULL); 0 or a negative errno, e set by a handler.
 */
typedef int (*object_reply_fill_fn)(ipcbus_message *reply, ipcbus_slot *s, const void *userdata, ipcbus_error *e);

/* ---- object.c ---- */

/* json_object_put for _cleanup_. */
void object_json_putp(struct json_object **j);
/* A standard interface's description, parsed once per process; NULL only if the built-in text could not be parsed. */
const ipcbus_interface *object_std(enum object_std which);
/* The standard interface named `name`, or _OBJECT_STD_MAX. */
enum object_std object_std_find(const char *name);
/* The objects exported at path, or NULL when there are none. */
struct client_object_path *object_path_find(ipcbus_bus *bus, const char *path);
/* The object exported at path (may be NULL) with interface, or NULL. */
ipcbus_slot *object_find(ipcbus_bus *bus, const char *path, const char *interface);
/* The object manager at path, or NULL. */
ipcbus_slot *manager_find(ipcbus_bus *bus, const char *path);
/* Is path strictly below `above` ("/a/b" below "/a" and "/")? */
bool object_path_is_below(const char *path, const char *above);
/* The vtable's entry of that kind for member, or NULL. */
const ipcbus_vtable *object_vtable_find(const ipcbus_vtable *vtable, ipcbus_vtable_kind kind, const char *member);
/* Answer m, unless it was answered, with the failure r: e when set, else Failed with the reason. */
void object_reply_failure(ipcbus_message *m, int r, const ipcbus_error *e);
/* The descriptors m carries, which its fd values index. */
unsigned object_message_n_fds(ipcbus_message *m);
/* What m's body may refer to: its descriptors, and its binary area when it travels in a memfd (iface_check_*_refs). */
struct iface_refs object_message_refs(ipcbus_message *m);
/* Answer m with a return that fill builds (holding s, if any, while it runs), or with the error it failed with. */
void object_reply_built(ipcbus_bus *bus, ipcbus_message *m, ipcbus_slot *s, object_reply_fill_fn fill,
                        const void *userdata);
/* Build a signal from path, fill it (fill may be NULL), send it: 0 or a negative errno. */
int object_emit(ipcbus_bus *bus, const char *path, const char *interface, const char *member,
                int (*fill)(ipcbus_message *m, void *userdata), void *userdata);

/* ---- introspect.c ---- */

/* Answer Introspect at m's path: its interfaces and children, or UnknownObject. */
void object_introspect(ipcbus_bus *bus, ipcbus_message *m);

/* ---- properties.c ---- */

/* Append every readable property of the described object s to m (in an open object); a getter's failure in e. */
int properties_append(ipcbus_slot *s, ipcbus_message *m, ipcbus_error *e);
/* Answer Properties.Get, GetAll and Set (the call already checked against the description). */
void properties_get(ipcbus_bus *bus, ipcbus_message *m);
void properties_get_all(ipcbus_bus *bus, ipcbus_message *m);
void properties_set(ipcbus_bus *bus, ipcbus_message *m);

/* ---- manager.c ---- */

/* Say that the described object s was exported (added) or dropped, from every manager at or above its path. */
void object_announce(ipcbus_bus *bus, ipcbus_slot *s, bool added);
/* Answer GetManagedObjects at m's path, where a manager is. */
void object_manager_call(ipcbus_bus *bus, ipcbus_message *m);
