/* SPDX-License-Identifier: MIT */
/*
 * TEMPORARY (h-ipcctl): stand-ins for the public functions that h-values and
 * h-iface write, so that ipcctl builds and its tests run before those
 * branches are merged. Deleted by the merge. Nothing else may use this file.
 *
 * A message built here is not a libipcbus message: its first member plays
 * the library's reference count and never reaches 0, so ipcbus_message_unref
 * leaves it alone (it leaks, which a command-line tool can afford for now).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <ipcbus/ipcbus.h>

#include "protocol/names.h"

bool ipcbus_is_bus_name(const char *s)
{
        return s && names_is_bus_name(s);
}

bool ipcbus_is_unique_name(const char *s)
{
        return s && names_is_unique(s);
}

bool ipcbus_is_well_known_name(const char *s)
{
        return s && names_is_well_known(s);
}

bool ipcbus_is_object_path(const char *s)
{
        return s && names_is_path(s);
}

bool ipcbus_is_interface_name(const char *s)
{
        return s && names_is_interface(s);
}

bool ipcbus_is_member_name(const char *s)
{
        return s && names_is_member(s);
}

const char *ipcbus_last_error(void)
{
        return "";
}

int ipcbus_interface_load(const char *name, ipcbus_interface **ret)
{
        return -ENOENT;
}

int ipcbus_interface_parse(const char *json, ipcbus_interface **ret)
{
        return -EOPNOTSUPP;
}

ipcbus_interface *ipcbus_interface_unref(ipcbus_interface *iface)
{
        return NULL;
}

const char *ipcbus_interface_get_json(const ipcbus_interface *iface)
{
        return "{}";
}

int ipcbus_interface_check(const ipcbus_interface *iface, ipcbus_message_type type, const char *member,
                           const char *body, ipcbus_error *ret_error)
{
        return 0;
}

struct stub_call {
        unsigned n_ref_never_zero;
        const char *destination, *path, *interface, *member;
        char *body;
        bool no_reply;
};

int ipcbus_message_new_call(ipcbus_bus *bus, ipcbus_message **ret, const char *destination, const char *path,
                            const char *interface, const char *member)
{
        struct stub_call *m = calloc(1, sizeof(*m));

        if (!m)
                return -ENOMEM;
        *m = (struct stub_call){2, destination, path, interface, member, NULL, false};
        *ret = (ipcbus_message *) m;
        return 0;
}

int ipcbus_message_set_body(ipcbus_message *m, const char *json)
{
        ((struct stub_call *) m)->body = strdup(json);
        return 0;
}

int ipcbus_message_set_no_auto_start(ipcbus_message *m, bool no_auto_start)
{
        return 0;
}

int ipcbus_message_set_no_reply(ipcbus_message *m, bool no_reply)
{
        ((struct stub_call *) m)->no_reply = no_reply;
        return 0;
}

int ipcbus_call_message(ipcbus_bus *bus, ipcbus_message *call, uint64_t timeout_usec, ipcbus_message **ret_reply,
                        ipcbus_error *ret_error)
{
        struct stub_call *m = (struct stub_call *) call;

        return ipcbus_call(bus, m->destination, m->path, m->interface, m->member, m->body, timeout_usec, ret_reply,
                           ret_error);
}

int ipcbus_send(ipcbus_bus *bus, ipcbus_message *call)
{
        struct stub_call *m = (struct stub_call *) call;

        return ipcbus_send_oneway(bus, m->destination, m->path, m->interface, m->member, m->body);
}
