/* SPDX-License-Identifier: MIT */
/*
 * Exported objects: the untyped ones (ipcbus_add_object: a table of
 * handlers) and the described ones (ipcbus_add_object_vtable: an interface
 * description and a vtable), the index of exported paths, the dispatch of
 * incoming calls to them (org.ipcbus.Peer answered here, the other standard
 * interfaces in introspect.c, properties.c and manager.c), and the check of
 * what this side sends against the descriptions (PROTOCOL.md 13.3).
 */
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "libclient/bus-internal.h"
#include "libclient/iface.h"
#include "libclient/memfd.h"
#include "libclient/object.h"
#include "protocol/interfaces.h"
#include "protocol/names.h"

void object_json_putp(struct json_object **j)
{
        json_object_put(*j);
}

/* ---- the standard interfaces' descriptions ---- */

static const char *const object_std_names[_OBJECT_STD_MAX] = {
        [OBJECT_STD_INTROSPECTABLE] = IPCBUS_INTROSPECTABLE_INTERFACE,
        [OBJECT_STD_PROPERTIES] = IPCBUS_PROPERTIES_INTERFACE,
        [OBJECT_STD_PEER] = IPCBUS_PEER_INTERFACE,
        [OBJECT_STD_OBJECT_MANAGER] = IPCBUS_OBJECT_MANAGER_INTERFACE,
};

static ipcbus_interface *object_std_ifaces[_OBJECT_STD_MAX];
static pthread_once_t object_std_once = PTHREAD_ONCE_INIT;

/* Parse the built-in descriptions (protocol/interfaces.c, made from interfaces/) once per process; kept until exit. */
static void object_std_parse(void)
{
        for (size_t i = 0; i < n_builtin_interfaces; i++)
                for (unsigned k = 0; k < _OBJECT_STD_MAX; k++)
                        if (streq(builtin_interfaces[i].name, object_std_names[k]))
                                (void) ipcbus_interface_parse(builtin_interfaces[i].json, &object_std_ifaces[k]);
}

/* A standard interface's description; NULL only if the built-in text could not be parsed. */
const ipcbus_interface *object_std(enum object_std which)
{
        (void) pthread_once(&object_std_once, object_std_parse);
        return object_std_ifaces[which];
}

/* The standard interface named `name`, or _OBJECT_STD_MAX. */
enum object_std object_std_find(const char *name)
{
        unsigned k;

        for (k = 0; k < _OBJECT_STD_MAX; k++)
                if (streq(name, object_std_names[k]))
                        break;
        return k;
}

/* ---- the index: objects by path, managers ---- */

static bool object_path_is(const struct map_node *node, const void *key)
{
        return streq(container_of(node, struct client_object_path, node)->path, key);
}

/* The objects exported at path, or NULL when there are none. */
struct client_object_path *object_path_find(ipcbus_bus *bus, const char *path)
{
        struct map_node *node = map_find(&bus->object_paths, map_hash_string(path), object_path_is, path);

        return node ? container_of(node, struct client_object_path, node) : NULL;
}

/* The object exported at path with interface, or NULL. */
ipcbus_slot *object_find(ipcbus_bus *bus, const char *path, const char *interface)
{
        struct client_object_path *at = path ? object_path_find(bus, path) : NULL;
        ipcbus_slot *s;

        if (!at)
                return NULL;
        list_for_each_entry(s, &at->objects, object.link) {
                if (streq(s->object.interface, interface))
                        return s;
        }
        return NULL;
}

ipcbus_slot *manager_find(ipcbus_bus *bus, const char *path)
{
        for (ipcbus_slot *s = bus->slots[SLOT_MANAGER].first; s; s = s->next)
                if (streq(s->manager.path, path))
                        return s;
        return NULL;
}

/* Is path strictly below `above` ("/a/b" below "/a" and "/")? */
bool object_path_is_below(const char *path, const char *above)
{
        size_t n = strlen(above);

        if (streq(above, "/"))
                return path[0] == '/' && path[1] != '\0';
        return strncmp(path, above, n) == 0 && path[n] == '/';
}

int object_path_link(ipcbus_bus *bus, ipcbus_slot *s)
{
        struct client_object_path *p = object_path_find(bus, s->object.path);

        if (!p) {
                size_t len = strlen(s->object.path);
                int r;

                p = malloc(sizeof(*p) + len + 1);
                if (!p)
                        return -ENOMEM;
                memcpy(p->path, s->object.path, len + 1);
                list_init(&p->objects);
                r = map_add(&bus->object_paths, &p->node, map_hash_string(p->path));
                if (r < 0) {
                        free(p);
                        return r;
                }
        }
        list_link_tail(&p->objects, &s->object.link);
        s->object.at = p;
        return 0;
}

void object_path_unlink(ipcbus_bus *bus, ipcbus_slot *s)
{
        struct client_object_path *p = s->object.at;

        list_unlink(&s->object.link);
        s->object.at = NULL;
        if (list_is_empty(&p->objects)) {
                map_remove(&bus->object_paths, &p->node);
                free(p);
        }
        object_announce(bus, s, false);
}

void object_slot_free(ipcbus_slot *s)
{
        if (s->type == SLOT_MANAGER) {
                free(s->manager.path);
                return;
        }
        free(s->object.path);
        free(s->object.interface);
        ipcbus_interface_unref(s->object.iface);
}

/* Register an object slot made by the caller; on failure it is dropped. */
static int object_register(ipcbus_bus *bus, ipcbus_slot *s, ipcbus_slot **ret_slot)
{
        int r;

        r = s->object.path && s->object.interface ? slot_link(s, bus) : -ENOMEM;
        if (r < 0) {
                slot_unref(s);
                return r;
        }
        object_announce(bus, s, true);
        if (ret_slot)
                *ret_slot = s;
        return 0;
}

/* ---- untyped objects ---- */

/* Each entry a member name and a handler: 0, or -EINVAL naming the entry. */
static int methods_check(const ipcbus_method *methods)
{
        char arg[48];
        int r;

        if (!methods)
                return client_fail_null("methods");
        for (size_t i = 0; methods[i].member; i++) {
                (void) snprintf(arg, sizeof(arg), "methods[%zu].member", i);
                r = client_check_name(arg, methods[i].member, CLIENT_NAME_MEMBER);
                if (r < 0)
                        return r;
                if (!methods[i].handler)
                        return client_fail(-EINVAL, "methods[%zu].handler: NULL (method '%s')", i, methods[i].member);
        }
        return 0;
}

static const ipcbus_method *object_find_method(const ipcbus_slot *s, const char *member)
{
        for (const ipcbus_method *m = s->object.methods; m->member; m++)
                if (streq(m->member, member))
                        return m;
        return NULL;
}

_public_ int ipcbus_add_object(ipcbus_bus *bus, ipcbus_slot **ret_slot, const char *path, const char *interface,
                               const ipcbus_method *methods, void *userdata)
{
        ipcbus_slot *s;
        int r;

        if (!bus)
                return client_fail(-EINVAL, "bus: NULL");
        r = client_check_name("path", path, CLIENT_NAME_PATH);
        if (r == 0)
                r = client_check_name("interface", interface, CLIENT_NAME_INTERFACE);
        if (r == 0)
                r = methods_check(methods);
        if (r < 0)
                return r;
        r = client_enter(bus, false);
        if (r < 0)
                return r;
        if (object_find(bus, path, interface))
                return -EEXIST;

        r = slot_new(SLOT_OBJECT, !ret_slot, NULL, userdata, &s);
        if (r < 0)
                return r;
        s->object.path = strdup(path);
        s->object.interface = strdup(interface);
        s->object.methods = methods;
        return object_register(bus, s, ret_slot);
}

/* ---- described objects ---- */

const ipcbus_vtable *object_vtable_find(const ipcbus_vtable *vtable, ipcbus_vtable_kind kind, const char *member)
{
        for (const ipcbus_vtable *v = vtable; v->kind != IPCBUS_VTABLE_END_KIND; v++)
                if (v->kind == kind && streq(v->member, member))
                        return v;
        return NULL;
}

/* Every vtable entry names a member of the description, with the handlers its kind and access allow. */
static int vtable_check_entries(const ipcbus_interface *iface, const ipcbus_vtable *vtable)
{
        for (const ipcbus_vtable *v = vtable; v->kind != IPCBUS_VTABLE_END_KIND; v++) {
                const struct iface_property *p;

                if (!v->member)
                        return client_fail(-EINVAL, "vtable: an entry without a member name");
                if (v->kind == IPCBUS_VTABLE_METHOD_KIND) {
                        if (!iface_find_method(iface, v->member))
                                return client_fail(-EINVAL, "vtable method '%s': interface %s has no such method",
                                                   v->member, iface->name);
                        continue;
                }
                if (v->kind != IPCBUS_VTABLE_PROPERTY_KIND)
                        return client_fail(-EINVAL, "vtable entry '%s': unknown kind %d", v->member, (int) v->kind);
                p = iface_find_property(iface, v->member);
                if (!p)
                        return client_fail(-EINVAL, "vtable property '%s': interface %s has no such property",
                                           v->member, iface->name);
                if (v->get && !(p->access & IFACE_ACCESS_READ))
                        return client_fail(-EINVAL, "vtable property '%s': a getter for a write-only property",
                                           v->member);
                if (v->set && !(p->access & IFACE_ACCESS_WRITE))
                        return client_fail(-EINVAL, "vtable property '%s': a setter for a read-only property",
                                           v->member);
        }
        return 0;
}

/* Every method of the description has a handler, every readable property a getter, every writable one a setter. */
static int vtable_check_complete(const ipcbus_interface *iface, const ipcbus_vtable *vtable)
{
        for (size_t i = 0; i < iface->n_methods; i++) {
                const ipcbus_vtable *v = object_vtable_find(vtable, IPCBUS_VTABLE_METHOD_KIND, iface->methods[i].name);

                if (!v || !v->method)
                        return client_fail(-EINVAL, "vtable: no handler for method '%s' of %s", iface->methods[i].name,
                                           iface->name);
        }
        for (size_t i = 0; i < iface->n_properties; i++) {
                const struct iface_property *p = &iface->properties[i];
                const ipcbus_vtable *v = object_vtable_find(vtable, IPCBUS_VTABLE_PROPERTY_KIND, p->name);

                if ((p->access & IFACE_ACCESS_READ) && (!v || !v->get))
                        return client_fail(-EINVAL, "vtable: no getter for property '%s' of %s", p->name, iface->name);
                if ((p->access & IFACE_ACCESS_WRITE) && (!v || !v->set))
                        return client_fail(-EINVAL, "vtable: no setter for property '%s' of %s", p->name, iface->name);
        }
        return 0;
}

_public_ int ipcbus_add_object_vtable(ipcbus_bus *bus, ipcbus_slot **ret_slot, const char *path,
                                      ipcbus_interface *iface, const ipcbus_vtable *vtable, void *userdata)
{
        ipcbus_slot *s;
        int r;

        if (!bus)
                return client_fail(-EINVAL, "bus: NULL");
        r = client_check_name("path", path, CLIENT_NAME_PATH);
        if (r < 0)
                return r;
        if (!iface || !vtable)
                return client_fail_null(iface ? "vtable" : "iface");
        r = client_enter(bus, false);
        if (r < 0)
                return r;
        r = vtable_check_entries(iface, vtable);
        if (r < 0)
                return r;
        r = vtable_check_complete(iface, vtable);
        if (r < 0)
                return r;
        if (object_find(bus, path, iface->name) || object_std_find(iface->name) != _OBJECT_STD_MAX)
                return client_fail(-EEXIST, "interface %s: already exported at %s", iface->name, path);

        r = slot_new(SLOT_OBJECT, !ret_slot, NULL, userdata, &s);
        if (r < 0)
                return r;
        s->object.path = strdup(path);
        s->object.interface = strdup(iface->name);
        s->object.iface = ipcbus_interface_ref(iface);
        s->object.vtable = vtable;
        return object_register(bus, s, ret_slot);
}

/* ---- answering calls ---- */

/* The answer to a handler's failure r: its ret_error, else Failed with the reason. */
void object_reply_failure(ipcbus_message *m, int r, const ipcbus_error *e)
{
        if (m->replied)
                return;
        if (ipcbus_error_is_set(e))
                (void) ipcbus_reply_error(m, e->name, e->message);
        else if (r == -EBADMSG && ipcbus_last_error()[0])
                /* its answer broke the description, refused locally: say which field */
                (void) ipcbus_reply_errorf(m, IPCBUS_ERROR_FAILED, "the reply was refused: %s", ipcbus_last_error());
        else
                (void) ipcbus_reply_errorf(m, IPCBUS_ERROR_FAILED, "%s", ipcbus_strerror(r));
}

/* Run a method handler; a negative return becomes an error reply unless it already answered. */
static void object_run_method(ipcbus_slot *s, ipcbus_message_handler handler, ipcbus_message *m)
{
        ipcbus_error e = IPCBUS_ERROR_NULL;
        int r;

        slot_ref(s);
        r = handler(m, s->userdata, &e);
        slot_unref(s);
        if (r < 0)
                object_reply_failure(m, r, &e);
        ipcbus_error_free(&e);
}

unsigned object_message_n_fds(ipcbus_message *m)
{
        return m->msg ? m->msg->n_fds : 0;
}

struct iface_refs object_message_refs(ipcbus_message *m)
{
        struct iface_refs refs = {.n_fds = object_message_n_fds(m), .binary_len = IFACE_NO_BINARY};
        size_t len;

        if (m->msg && memfd_body_binary(m->msg, NULL, &len))
                refs.binary_len = (int64_t) len;
        return refs;
}

/*
 * Check m's body against args (strict: unknown members too). Returns 0, or
 * -EBADMSG with the sentence in err, or -ENOMEM.
 */
static int object_check_body(ipcbus_message *m, const struct iface_args *args, bool strict, char *err, size_t size)
{
        _cleanup_(object_json_putp) struct json_object *body = NULL;
        int r;

        r = ipcbus_message_get_json(m, &body);
        if (r < 0)
                return r;
        const struct iface_refs refs = object_message_refs(m);

        return iface_check_args_refs(args, body, strict, &refs, err, size);
}

/*
 * A call to a method with a description: checked against its arguments
 * (members it does not name are ignored), answered InvalidArgs if it breaks
 * them; otherwise its handler runs, and what it returns is checked against
 * the results when it is sent.
 */
static void object_call_method(ipcbus_slot *s, const struct iface_method *method, ipcbus_message_handler handler,
                               ipcbus_message *m)
{
        char err[OBJECT_ERR_MAX];
        int r;

        r = object_check_body(m, &method->in, false, err, sizeof(err));
        if (r == -EBADMSG) {
                (void) ipcbus_reply_error(m, IPCBUS_ERROR_INVALID_ARGS, err);
                return;
        }
        if (r < 0) {
                object_reply_failure(m, r, NULL);
                return;
        }
        message_set_method(m, s->object.iface, method);
        object_run_method(s, handler, m);
}

/* Run member of the object s, if it has it. Returns true when it did. */
static bool object_try_member(ipcbus_slot *s, const char *member, ipcbus_message *m)
{
        const struct iface_method *method;
        const ipcbus_vtable *v;
        const ipcbus_method *um;

        if (!s->object.iface) {
                um = object_find_method(s, member);
                if (um)
                        object_run_method(s, um->handler, m);
                return um;
        }
        method = iface_find_method(s->object.iface, member);
        v = method ? object_vtable_find(s->object.vtable, IPCBUS_VTABLE_METHOD_KIND, member) : NULL;
        if (v)
                object_call_method(s, method, v->method, m);
        return v;
}

/* The error for a call nothing at its path answered. */
static void reply_not_found(ipcbus_message *m, bool path_known, bool interface_known)
{
        const struct msg_header *h = &m->msg->h;

        if (!path_known)
                (void) ipcbus_reply_errorf(m, IPCBUS_ERROR_UNKNOWN_OBJECT, "No object at path %s", h->path);
        else if (!interface_known)
                (void) ipcbus_reply_errorf(m, IPCBUS_ERROR_UNKNOWN_INTERFACE, "No interface %s at path %s",
                                           h->interface, h->path);
        else if (h->interface)
                (void) ipcbus_reply_errorf(m, IPCBUS_ERROR_UNKNOWN_METHOD, "No method %s in interface %s at path %s",
                                           h->member, h->interface, h->path);
        else
                (void) ipcbus_reply_errorf(m, IPCBUS_ERROR_UNKNOWN_METHOD, "No method %s at path %s", h->member,
                                           h->path);
}

static void object_dispatch_std(ipcbus_bus *bus, enum object_std which, ipcbus_message *m);

/*
 * An incoming call: the standard interfaces are answered by the library
 * (org.ipcbus.Peer on every path); else the object exported at the path
 * with the call's interface (or, without one, the first interface there
 * having the member) runs it.
 */
void object_dispatch_call(ipcbus_bus *bus, ipcbus_message *m)
{
        const struct msg_header *h = &m->msg->h;
        enum object_std which = object_std_find(h->interface);
        struct client_object_path *at;
        bool interface_known = false;
        ipcbus_slot *s;

        if (which != _OBJECT_STD_MAX) {
                object_dispatch_std(bus, which, m);
                return;
        }

        /* The objects at the path in the order they were exported; the first
         * with the member runs it, and the walk ends there. */
        at = h->path ? object_path_find(bus, h->path) : NULL;
        if (at) {
                list_for_each_entry(s, &at->objects, object.link) {
                        if (h->interface && !streq(s->object.interface, h->interface))
                                continue;
                        interface_known = true;
                        if (object_try_member(s, h->member, m))
                                return;
                }
        }

        if (!h->interface && streq(h->member, "Ping"))
                (void) ipcbus_reply(m, "{}");
        else
                reply_not_found(m, at || (h->path && manager_find(bus, h->path)), interface_known);
}

/* ---- the standard interfaces' calls ---- */

/*
 * Answer m with a return that fill builds (from the object s, which it may
 * use while handlers run), or with the error it failed with.
 */
void object_reply_built(ipcbus_bus *bus, ipcbus_message *m, ipcbus_slot *s, object_reply_fill_fn fill,
                        const void *userdata)
{
        _cleanup_(ipcbus_message_unrefp) ipcbus_message *reply = NULL;
        ipcbus_error e = IPCBUS_ERROR_NULL;
        int r;

        r = ipcbus_message_new_return(m, &reply);
        if (r >= 0) {
                if (s)
                        slot_ref(s);
                r = fill(reply, s, userdata, &e);
                if (s)
                        slot_unref(s);
        }
        if (r >= 0)
                r = ipcbus_send(bus, reply);
        if (r < 0)
                object_reply_failure(m, r, &e);
        ipcbus_error_free(&e);
}

/* Build a signal from path, fill it (fill may be NULL), send it. */
int object_emit(ipcbus_bus *bus, const char *path, const char *interface, const char *member,
                int (*fill)(ipcbus_message *m, void *userdata), void *userdata)
{
        _cleanup_(ipcbus_message_unrefp) ipcbus_message *m = NULL;
        int r;

        r = ipcbus_message_new_signal(bus, &m, path, interface, member);
        if (r >= 0 && fill)
                r = fill(m, userdata);
        if (r >= 0)
                r = ipcbus_send(bus, m);
        return r;
}

/*
 * A call to a standard interface: checked against its description as any
 * described call, then answered by the library. Peer on every path,
 * Introspectable wherever something is exported at or below, Properties at
 * exported paths, ObjectManager where a manager is.
 */
static void object_dispatch_std(ipcbus_bus *bus, enum object_std which, ipcbus_message *m)
{
        const struct msg_header *h = &m->msg->h;
        const ipcbus_interface *iface = object_std(which);
        const struct iface_method *method = iface ? iface_find_method(iface, h->member) : NULL;
        bool exported = object_path_find(bus, h->path) || manager_find(bus, h->path);
        char err[OBJECT_ERR_MAX];
        int r;

        if (!method) {
                (void) ipcbus_reply_errorf(m, IPCBUS_ERROR_UNKNOWN_METHOD, "No method %s in interface %s", h->member,
                                           h->interface);
                return;
        }
        if ((which == OBJECT_STD_PROPERTIES && !exported) ||
            (which == OBJECT_STD_OBJECT_MANAGER && !manager_find(bus, h->path))) {
                reply_not_found(m, exported, false);
                return;
        }
        r = object_check_body(m, &method->in, false, err, sizeof(err));
        if (r < 0) {
                if (r == -EBADMSG)
                        (void) ipcbus_reply_error(m, IPCBUS_ERROR_INVALID_ARGS, err);
                else
                        object_reply_failure(m, r, NULL);
                return;
        }
        message_set_method(m, iface, method);

        if (which == OBJECT_STD_PEER)
                (void) ipcbus_reply(m, "{}"); /* Ping, its only method */
        else if (which == OBJECT_STD_INTROSPECTABLE)
                object_introspect(bus, m);
        else if (which == OBJECT_STD_OBJECT_MANAGER)
                object_manager_call(bus, m);
        else if (streq(h->member, "Get"))
                properties_get(bus, m);
        else if (streq(h->member, "GetAll"))
                properties_get_all(bus, m);
        else
                properties_set(bus, m);
}

/* ---- what this side sends ---- */

/* The description of interface at path, if described there (an application's or a standard one). */
static const ipcbus_interface *object_described(ipcbus_bus *bus, const char *path, const char *interface)
{
        enum object_std which = object_std_find(interface);
        ipcbus_slot *s;

        if (which != _OBJECT_STD_MAX)
                return object_std(which);
        s = object_find(bus, path, interface);
        return s ? s->object.iface : NULL;
}

int object_check_outgoing(ipcbus_bus *bus, ipcbus_message *m)
{
        const struct msg_header *h = &m->msg->h;
        const struct iface_args *args = NULL;
        const ipcbus_interface *iface;
        const struct iface_signal *sig;
        char err[OBJECT_ERR_MAX];
        const char *what = NULL;
        int r;

        if (h->type == MSG_RETURN && m->method) {
                args = &m->method->out;
                what = m->method->name;
        } else if (h->type == MSG_SIGNAL) {
                iface = object_described(bus, h->path, h->interface);
                sig = iface ? iface_find_signal(iface, h->member) : NULL;
                args = sig ? &sig->args : NULL;
                what = h->member;
        }
        if (!args)
                return 0;

        r = object_check_body(m, args, true, err, sizeof(err));
        if (r == -EBADMSG)
                return client_fail(r, "%s %s: %s", h->type == MSG_RETURN ? "the reply to" : "signal", what, err);
        return r;
}
