/* SPDX-License-Identifier: MIT */
/*
 * org.ipcbus.Properties for described objects: Get, GetAll and Set through
 * the vtable's getters and setters (a value set is checked against its type
 * first), and ipcbus_emit_properties_changed.
 */
#include <json-c/json.h>
#include <stdarg.h>
#include <string.h>

#include "libclient/bus-internal.h"
#include "libclient/iface.h"
#include "libclient/object.h"

/* ---- org.ipcbus.Properties ---- */

/* Run a property's getter: it appends the value, named `as`, to m (in an open object). */
static int property_get(ipcbus_slot *s, const struct iface_property *p, const char *as, ipcbus_message *m,
                        ipcbus_error *e)
{
        const ipcbus_vtable *v = object_vtable_find(s->object.vtable, IPCBUS_VTABLE_PROPERTY_KIND, p->name);
        int r;

        r = message_begin_value(m, as);
        if (r < 0)
                return r;
        return v->get(m, p->name, s->userdata, e);
}

/* Append every readable property of the described object s to m (in an open object). */
int properties_append(ipcbus_slot *s, ipcbus_message *m, ipcbus_error *e)
{
        const ipcbus_interface *iface = s->object.iface;

        for (size_t i = 0; iface && i < iface->n_properties; i++) {
                int r;

                if (!(iface->properties[i].access & IFACE_ACCESS_READ))
                        continue;
                r = property_get(s, &iface->properties[i], iface->properties[i].name, m, e);
                if (r < 0)
                        return r;
        }
        return 0;
}

/*
 * The object and property a Properties call names, or an error reply sent
 * (UnknownInterface, UnknownProperty). With want_name false only the object.
 */
static int properties_lookup(ipcbus_bus *bus, ipcbus_message *m, bool want_name, ipcbus_slot **ret_slot,
                             const struct iface_property **ret_property)
{
        const char *interface = NULL, *name = NULL;
        const struct iface_property *p = NULL;
        ipcbus_slot *s;
        int r;

        r = ipcbus_message_read(m, want_name ? "interface:s name:s" : "interface:s", &interface, &name);
        if (r < 0)
                return ipcbus_reply_error(m, IPCBUS_ERROR_INVALID_ARGS, ipcbus_last_error());
        s = object_find(bus, m->msg->h.path, interface);
        if (!s)
                return ipcbus_reply_errorf(m, IPCBUS_ERROR_UNKNOWN_INTERFACE, "No interface %s at path %s", interface,
                                           m->msg->h.path);
        if (want_name) {
                p = s->object.iface ? iface_find_property(s->object.iface, name) : NULL;
                if (!p)
                        return ipcbus_reply_errorf(m, IPCBUS_ERROR_UNKNOWN_PROPERTY, "No property %s in interface %s",
                                                   name, interface);
        }
        *ret_slot = s;
        *ret_property = p;
        return 1;
}

static int get_fill(ipcbus_message *reply, ipcbus_slot *s, const void *userdata, ipcbus_error *e)
{
        return property_get(s, userdata, "value", reply, e);
}

/* Get {"interface": I, "name": N} -> {"value": V}; a write-only property is AccessDenied. */
void properties_get(ipcbus_bus *bus, ipcbus_message *m)
{
        const struct iface_property *p;
        ipcbus_slot *s;

        if (properties_lookup(bus, m, true, &s, &p) <= 0)
                return;
        if (!(p->access & IFACE_ACCESS_READ))
                (void) ipcbus_reply_errorf(m, IPCBUS_ERROR_ACCESS_DENIED, "Property %s of %s is write-only", p->name,
                                           s->object.interface);
        else
                object_reply_built(bus, m, s, get_fill, p);
}

static int get_all_fill(ipcbus_message *reply, ipcbus_slot *s, const void *userdata, ipcbus_error *e)
{
        int r;

        r = ipcbus_message_open(reply, '{', "properties");
        if (r >= 0)
                r = properties_append(s, reply, e);
        if (r >= 0)
                r = ipcbus_message_close(reply);
        return r;
}

/* GetAll {"interface": I} -> {"properties": {N: V, ...}}, the readable ones. */
void properties_get_all(ipcbus_bus *bus, ipcbus_message *m)
{
        const struct iface_property *p;
        ipcbus_slot *s;

        if (properties_lookup(bus, m, false, &s, &p) > 0)
                object_reply_built(bus, m, s, get_all_fill, NULL);
}

/* Set {"interface": I, "name": N, "value": V} -> {}: the value is checked against the type first. */
void properties_set(ipcbus_bus *bus, ipcbus_message *m)
{
        _cleanup_(object_json_putp) struct json_object *body = NULL;
        const ipcbus_vtable *v;
        ipcbus_error e = IPCBUS_ERROR_NULL;
        const struct iface_property *p;
        char err[OBJECT_ERR_MAX];
        ipcbus_slot *s;
        int r;

        if (properties_lookup(bus, m, true, &s, &p) <= 0)
                return;
        if (!(p->access & IFACE_ACCESS_WRITE)) {
                (void) ipcbus_reply_errorf(m, IPCBUS_ERROR_PROPERTY_READ_ONLY, "Property %s of %s is read-only",
                                           p->name, s->object.interface);
                return;
        }
        r = ipcbus_message_get_json(m, &body);
        if (r >= 0) {
                const struct iface_refs refs = object_message_refs(m);

                r = iface_check_value_refs(p->type, json_object_object_get(body, "value"), "value", false, &refs, err,
                                           sizeof(err));
                if (r == -EBADMSG) {
                        (void) ipcbus_reply_error(m, IPCBUS_ERROR_INVALID_ARGS, err);
                        return;
                }
        }
        if (r >= 0)
                r = message_enter_value(m, "value");
        if (r >= 0) {
                v = object_vtable_find(s->object.vtable, IPCBUS_VTABLE_PROPERTY_KIND, p->name);
                slot_ref(s);
                r = v->set(m, p->name, s->userdata, &e);
                slot_unref(s);
        }
        if (r >= 0)
                (void) ipcbus_reply(m, "{}");
        else
                object_reply_failure(m, r, &e);
        ipcbus_error_free(&e);
}

struct changed {
        ipcbus_slot *slot;
        const char *first;
        va_list ap;
};

/* The properties named after c->first that are announced by value (emit) or by name (else). */
static int changed_fill_list(ipcbus_message *m, struct changed *c, bool values)
{
        va_list ap;
        int r = 0;

        va_copy(ap, c->ap);
        for (const char *name = c->first; name && r >= 0; name = va_arg(ap, const char *)) {
                const struct iface_property *p = iface_find_property(c->slot->object.iface, name);
                ipcbus_error e = IPCBUS_ERROR_NULL;

                if ((p->changes == IFACE_CHANGES_EMIT) != values)
                        continue;
                if (values)
                        r = property_get(c->slot, p, name, m, &e);
                else
                        r = ipcbus_message_append(m, "s", name);
                if (r < 0 && ipcbus_error_is_set(&e))
                        r = client_fail(r, "property '%s': the getter failed: %s", name,
                                        e.message ? e.message : e.name);
                ipcbus_error_free(&e);
        }
        va_end(ap);
        return r;
}

static int changed_fill(ipcbus_message *m, void *userdata)
{
        struct changed *c = userdata;
        int r;

        r = ipcbus_message_append(m, "interface:s", c->slot->object.interface);
        if (r >= 0)
                r = ipcbus_message_open(m, '{', "changed");
        if (r >= 0)
                r = changed_fill_list(m, c, true);
        if (r >= 0)
                r = ipcbus_message_close(m);
        if (r >= 0)
                r = ipcbus_message_open(m, '[', "invalidated");
        if (r >= 0)
                r = changed_fill_list(m, c, false);
        if (r >= 0)
                r = ipcbus_message_close(m);
        return r;
}

/* Every name in the list is a property that announces its changes. */
static int changed_check(ipcbus_slot *s, const char *first, va_list ap)
{
        for (const char *name = first; name; name = va_arg(ap, const char *)) {
                const struct iface_property *p = iface_find_property(s->object.iface, name);

                if (!p)
                        return client_fail(-EINVAL, "property '%s': not in interface %s", name, s->object.interface);
                if (p->changes == IFACE_CHANGES_CONST)
                        return client_fail(-EINVAL, "property '%s': constant, it does not change", name);
        }
        return 0;
}

_public_ int ipcbus_emit_properties_changed(ipcbus_bus *bus, const char *path, const char *interface,
                                            const char *property, ...)
{
        struct changed c = {.first = property};
        va_list ap;
        int r;

        if (!bus || !path || !interface)
                return client_fail(-EINVAL, "%s: NULL", !bus ? "bus" : !path ? "path" : "interface");
        r = client_enter(bus, true);
        if (r < 0)
                return r;
        c.slot = object_find(bus, path, interface);
        if (!c.slot || !c.slot->object.iface)
                return client_fail(-EINVAL, "interface %s: no described object at %s", interface, path);

        va_start(ap, property);
        r = changed_check(c.slot, property, ap);
        va_end(ap);
        if (r < 0)
                return r;
        /* held while its getters run: one may drop it */
        slot_ref(c.slot);
        va_start(c.ap, property);
        r = object_emit(bus, path, IPCBUS_PROPERTIES_INTERFACE, "PropertiesChanged", changed_fill, &c);
        va_end(c.ap);
        slot_unref(c.slot);
        return r;
}
