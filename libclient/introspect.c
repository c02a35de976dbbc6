/* SPDX-License-Identifier: MIT */
/*
 * org.ipcbus.Introspectable for exported objects: Introspect lists the
 * interfaces at a path (the application's, then the standard ones) and the
 * children below it.
 */
#include <stdlib.h>
#include <string.h>

#include "libclient/bus-internal.h"
#include "libclient/iface.h"
#include "libclient/object.h"
#include "protocol/jbuf.h"

/* ---- org.ipcbus.Introspectable ---- */

/* A path component: a slice of an exported path. */
struct object_child {
        const char *name;
        size_t len;
};

static int object_child_compare(const void *a, const void *b)
{
        const struct object_child *x = a, *y = b;
        int c = strncmp(x->name, y->name, x->len < y->len ? x->len : y->len);

        return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Add the component of `exported` that follows `path`, if it is below. Returns 0 or -ENOMEM. */
static int object_children_add(const char *path, const char *exported, struct object_child **children, size_t *n,
                               size_t *cap)
{
        const char *name;

        if (!object_path_is_below(exported, path))
                return 0;
        name = exported + (streq(path, "/") ? 1 : strlen(path) + 1);
        if (*n == *cap) {
                size_t c = *cap ? *cap * 2 : 8;
                struct object_child *a = reallocarray(*children, c, sizeof(**children));

                if (!a)
                        return -ENOMEM;
                *children = a;
                *cap = c;
        }
        (*children)[*n].name = name;
        (*children)[(*n)++].len = strcspn(name, "/");
        return 0;
}

/*
 * The children of path: the next component of every exported path (objects
 * and managers) below it, sorted, each once. Returns 0 and a malloc'd array
 * (slices of the bus's paths, valid until objects change), or -ENOMEM.
 */
static int object_children(ipcbus_bus *bus, const char *path, struct object_child **ret, size_t *ret_n)
{
        _cleanup_(freep) struct object_child *children = NULL;
        size_t n = 0, cap = 0, k = 0;
        int r = 0;

        for (struct map_node *node = map_first(&bus->object_paths); node && r == 0;
             node = map_next(&bus->object_paths, node))
                r = object_children_add(path, container_of(node, struct client_object_path, node)->path, &children, &n,
                                        &cap);
        for (ipcbus_slot *s = bus->slots[SLOT_MANAGER].first; s && r == 0; s = s->next)
                r = object_children_add(path, s->manager.path, &children, &n, &cap);
        if (r < 0)
                return r;

        if (n > 0)
                qsort(children, n, sizeof(*children), object_child_compare);
        for (size_t i = 0; i < n; i++)
                if (k == 0 || object_child_compare(&children[k - 1], &children[i]) != 0)
                        children[k++] = children[i];
        *ret = steal_pointer(&children);
        *ret_n = k;
        return 0;
}

/* An untyped object's entry: its methods, marked unchecked. */
static void introspect_untyped(struct jbuf *b, const ipcbus_slot *s)
{
        jbuf_puts(b, "{\"interface\":");
        jbuf_put_string(b, s->object.interface);
        jbuf_puts(b, ",\"methods\":{");
        for (const ipcbus_method *m = s->object.methods; m->member; m++) {
                if (m != s->object.methods)
                        jbuf_putc(b, ',');
                jbuf_put_string(b, m->member);
                jbuf_puts(b, ":{\"unchecked\":true}");
        }
        jbuf_puts(b, "}}");
}

/* Append one element of a JSON array (text), with a comma unless it is the first. */
static void jbuf_put_element(struct jbuf *b, bool *first, const char *text)
{
        if (!*first)
                jbuf_putc(b, ',');
        *first = false;
        jbuf_puts(b, text);
}

static void introspect_std(struct jbuf *b, bool *first, enum object_std which)
{
        const ipcbus_interface *iface = object_std(which);

        if (iface)
                jbuf_put_element(b, first, ipcbus_interface_get_json(iface));
}

/* The interfaces at path: the application's (exported), then the standard ones. */
static void introspect_interfaces(ipcbus_bus *bus, struct jbuf *b, const char *path, bool exported)
{
        struct client_object_path *at = object_path_find(bus, path);
        bool first = true;
        ipcbus_slot *s;

        jbuf_puts(b, "\"interfaces\":[");
        if (at)
                list_for_each_entry(s, &at->objects, object.link) {
                        if (s->object.iface) {
                                jbuf_put_element(b, &first, ipcbus_interface_get_json(s->object.iface));
                                continue;
                        }
                        jbuf_put_element(b, &first, "");
                        introspect_untyped(b, s);
                }
        introspect_std(b, &first, OBJECT_STD_INTROSPECTABLE);
        if (exported)
                introspect_std(b, &first, OBJECT_STD_PROPERTIES);
        introspect_std(b, &first, OBJECT_STD_PEER);
        if (manager_find(bus, path))
                introspect_std(b, &first, OBJECT_STD_OBJECT_MANAGER);
        jbuf_putc(b, ']');
}

/*
 * Introspect: at an exported path its interfaces and children; at a path
 * above exported ones Introspectable and Peer and the children; elsewhere
 * UnknownObject.
 */
void object_introspect(ipcbus_bus *bus, ipcbus_message *m)
{
        const char *path = m->msg->h.path;
        _cleanup_(freep) struct object_child *children = NULL;
        _cleanup_(freep) char *body = NULL;
        bool exported = object_path_find(bus, path) || manager_find(bus, path);
        struct jbuf b;
        size_t n, len;
        int r;

        r = object_children(bus, path, &children, &n);
        if (r < 0) {
                object_reply_failure(m, r, NULL);
                return;
        }
        if (!exported && n == 0) {
                (void) ipcbus_reply_errorf(m, IPCBUS_ERROR_UNKNOWN_OBJECT, "No object at path %s", path);
                return;
        }

        jbuf_init(&b);
        jbuf_puts(&b, "{\"path\":");
        jbuf_put_string(&b, path);
        jbuf_putc(&b, ',');
        introspect_interfaces(bus, &b, path, exported);
        jbuf_puts(&b, ",\"children\":[");
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        jbuf_putc(&b, ',');
                jbuf_putc(&b, '"');
                jbuf_put(&b, children[i].name, children[i].len); /* path components need no escaping */
                jbuf_putc(&b, '"');
        }
        jbuf_puts(&b, "]}");
        body = jbuf_steal(&b, &len);
        jbuf_deinit(&b);
        if (!body)
                object_reply_failure(m, -ENOMEM, NULL);
        else
                (void) ipcbus_reply(m, body);
}
