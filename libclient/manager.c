/* SPDX-License-Identifier: MIT */
/*
 * org.ipcbus.ObjectManager: managers added at a path
 * (ipcbus_add_object_manager), GetManagedObjects over the described objects
 * at or below it, and InterfacesAdded / InterfacesRemoved when one is
 * exported or dropped.
 */
#include <string.h>

#include "libclient/bus-internal.h"
#include "libclient/iface.h"
#include "libclient/object.h"
#include "protocol/names.h"

/* ---- org.ipcbus.ObjectManager ---- */

_public_ int ipcbus_add_object_manager(ipcbus_bus *bus, ipcbus_slot **ret_slot, const char *path)
{
        ipcbus_slot *s;
        int r;

        if (!bus)
                return client_fail(-EINVAL, "bus: NULL");
        r = client_check_name("path", path, CLIENT_NAME_PATH);
        if (r < 0)
                return r;
        r = client_enter(bus, false);
        if (r < 0)
                return r;
        if (manager_find(bus, path))
                return client_fail(-EEXIST, "path '%s': already has an object manager", path);

        r = slot_new(SLOT_MANAGER, !ret_slot, NULL, NULL, &s);
        if (r < 0)
                return r;
        s->manager.path = strdup(path);
        r = s->manager.path ? slot_link(s, bus) : -ENOMEM;
        if (r < 0) {
                slot_unref(s);
                return r;
        }
        if (ret_slot)
                *ret_slot = s;
        return 0;
}

/* Is path managed by the manager at `manager` (at it or below)? */
static bool manager_covers(const char *manager, const char *path)
{
        return streq(manager, path) || object_path_is_below(path, manager);
}

/*
 * {IFACE: {props}, ...} of the described objects at `at`, as members of an
 * open object. A getter may drop or export objects: then `at` and the walk
 * over the objects are no longer valid, and the listing fails (-ECANCELED).
 */
static int managed_interfaces(ipcbus_bus *bus, struct client_object_path *at, ipcbus_message *m, ipcbus_error *e)
{
        unsigned generation = bus->generation;
        ipcbus_slot *s;
        int r = 0;

        list_for_each_entry(s, &at->objects, object.link) {
                if (!s->object.iface)
                        continue;
                slot_ref(s);
                r = ipcbus_message_open(m, '{', s->object.interface);
                if (r >= 0)
                        r = properties_append(s, m, e);
                if (r >= 0)
                        r = ipcbus_message_close(m);
                slot_unref(s);
                if (r >= 0 && bus->generation != generation)
                        r = client_fail(-ECANCELED, "objects were exported or dropped while they were listed");
                if (r < 0)
                        break;
        }
        return r;
}

static bool path_has_described(struct client_object_path *at)
{
        ipcbus_slot *s;

        list_for_each_entry(s, &at->objects, object.link) {
                if (s->object.iface)
                        return true;
        }
        return false;
}

/* GetManagedObjects {} -> {"objects": {PATH: {IFACE: {PROP: V}}}} for the described objects at or below. */
static int managed_objects(ipcbus_message *m, ipcbus_slot *unused, const void *userdata, ipcbus_error *e)
{
        ipcbus_bus *bus = ipcbus_message_get_bus(m);
        const char *manager = userdata;
        int r;

        r = ipcbus_message_open(m, '{', "objects");
        for (struct map_node *node = map_first(&bus->object_paths); node && r >= 0;
             node = map_next(&bus->object_paths, node)) {
                struct client_object_path *at = container_of(node, struct client_object_path, node);

                if (!manager_covers(manager, at->path) || !path_has_described(at))
                        continue;
                r = ipcbus_message_open(m, '{', at->path);
                if (r >= 0)
                        r = managed_interfaces(bus, at, m, e);
                if (r < 0)
                        break; /* node may be gone */
                r = ipcbus_message_close(m);
        }
        if (r >= 0)
                r = ipcbus_message_close(m);
        return r;
}

void object_manager_call(ipcbus_bus *bus, ipcbus_message *m)
{
        object_reply_built(bus, m, NULL, managed_objects, m->msg->h.path);
}

struct announce {
        ipcbus_slot *slot;
        bool added;
};

static int announce_fill(ipcbus_message *m, void *userdata)
{
        struct announce *a = userdata;
        ipcbus_error e = IPCBUS_ERROR_NULL;
        int r;

        r = ipcbus_message_append(m, "path:s", a->slot->object.path);
        if (r >= 0 && !a->added) {
                r = ipcbus_message_open(m, '[', "interfaces");
                if (r >= 0)
                        r = ipcbus_message_append(m, "s", a->slot->object.interface);
        } else if (r >= 0) {
                r = ipcbus_message_open(m, '{', "interfaces");
                if (r >= 0)
                        r = ipcbus_message_open(m, '{', a->slot->object.interface);
                if (r >= 0)
                        r = properties_append(a->slot, m, &e);
                if (r >= 0)
                        r = ipcbus_message_close(m);
        }
        if (r >= 0)
                r = ipcbus_message_close(m);
        ipcbus_error_free(&e);
        return r;
}

/*
 * A described object was exported (added) or its slot dropped: every object
 * manager at or above its path says so (InterfacesAdded / InterfacesRemoved),
 * best effort, while the connection is open.
 */
void object_announce(ipcbus_bus *bus, ipcbus_slot *s, bool added)
{
        struct announce a = {s, added};
        unsigned generation = bus->generation;

        if (!s->object.iface || !bus->open)
                return;
        /* An addition runs the object's getters, which may drop it, drop a
         * manager or close the bus: the object is held, and the walk over the
         * managers ends as soon as any registration changed. A removal runs
         * no callback (and its slot may be on its way out: not held). */
        if (added)
                slot_ref(s);
        for (ipcbus_slot *mgr = bus->slots[SLOT_MANAGER].first; mgr; mgr = mgr->next) {
                if (!manager_covers(mgr->manager.path, s->object.path))
                        continue;
                (void) object_emit(bus, mgr->manager.path, IPCBUS_OBJECT_MANAGER_INTERFACE,
                                   added ? "InterfacesAdded" : "InterfacesRemoved", announce_fill, &a);
                if (bus->generation != generation)
                        break;
        }
        if (added)
                slot_unref(s);
}
