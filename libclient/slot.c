/* SPDX-License-Identifier: MIT */
/*
 * Slots: the registrations of a connection (pending async calls, signal
 * matches, filters, exported objects and object managers), and the
 * dispatch of one incoming message to them (calls go to object.c).
 *
 * Ownership: a slot returned to the user holds one reference, the user's;
 * the bus only links it, and dropping that reference unregisters it. A
 * floating slot (the user asked for no handle) is owned by the bus: it is
 * freed after its answer (calls) or when the connection is closed. While a
 * callback runs, the dispatcher holds a reference of its own, so user code
 * may drop any slot, or close the bus, from inside any callback.
 */
#include <string.h>

#include "libclient/bus-internal.h"
#include "protocol/jbuf.h"
#include "protocol/names.h"
#include "protocol/proto-error.h"

/* A new, unlinked slot with one reference. Returns 0 or -ENOMEM. */
int slot_new(enum slot_type type, bool floating, ipcbus_message_handler callback, void *userdata, ipcbus_slot **ret)
{
        ipcbus_slot *s;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->n_ref = 1;
        s->type = type;
        s->floating = floating;
        s->callback = callback;
        s->userdata = userdata;
        if (type == SLOT_MATCH)
                match_rule_init(&s->match.rule);
        *ret = s;
        return 0;
}

ipcbus_slot *slot_ref(ipcbus_slot *s)
{
        s->n_ref++;
        return s;
}

void slot_unref(ipcbus_slot *s)
{
        if (!s || --s->n_ref > 0)
                return;

        slot_unlink(s);
        switch (s->type) {
        case SLOT_MATCH:
                match_rule_deinit(&s->match.rule);
                free(s->match.rule_json);
                break;
        case SLOT_OBJECT:
        case SLOT_MANAGER:
                object_slot_free(s);
                break;
        default:
                break;
        }
        free(s);
}

_public_ ipcbus_slot *ipcbus_slot_unref(ipcbus_slot *slot)
{
        /* in a forked child, unregistering must not tell the broker (RemoveMatch) */
        if (slot && slot->bus)
                (void) client_check_pid(slot->bus);
        slot_unref(slot);
        return NULL;
}

_public_ void *ipcbus_slot_get_userdata(ipcbus_slot *slot)
{
        return slot ? slot->userdata : NULL;
}

/* ---- the index of pending calls by serial (objects are indexed by object.c) ---- */

/* Serials are handed out in sequence by this library, so they spread over
 * the buckets as they are, and nobody else chooses the keys. */
static uint64_t call_hash(uint32_t serial)
{
        return serial;
}

static bool call_has_serial(const struct map_node *node, const void *key)
{
        return container_of(node, ipcbus_slot, call.node)->call.serial == *(const uint32_t *) key;
}

static ipcbus_slot *call_find(ipcbus_bus *bus, uint32_t serial)
{
        struct map_node *node = map_find(&bus->calls, call_hash(serial), call_has_serial, &serial);

        return node ? container_of(node, ipcbus_slot, call.node) : NULL;
}

/* Enter s in the index of its type, if it has one. Returns 0 or -ENOMEM (nothing changed then). */
static int slot_index(ipcbus_slot *s, ipcbus_bus *bus)
{
        switch (s->type) {
        case SLOT_CALL:
                return map_add(&bus->calls, &s->call.node, call_hash(s->call.serial));
        case SLOT_OBJECT:
                return object_path_link(bus, s);
        default:
                return 0;
        }
}

static void slot_unindex(ipcbus_slot *s, ipcbus_bus *bus)
{
        switch (s->type) {
        case SLOT_CALL:
                map_remove(&bus->calls, &s->call.node);
                break;
        case SLOT_OBJECT:
                object_path_unlink(bus, s);
                break;
        default:
                break;
        }
}

/*
 * Register s with bus: at the end of its type's list and in its index.
 * Pending calls are kept ordered by deadline; as most calls share one
 * timeout, the place is searched from the tail. Returns 0, or -ENOMEM
 * when the index cannot take it (s stays unregistered then).
 */
int slot_link(ipcbus_slot *s, ipcbus_bus *bus)
{
        struct slot_list *l = &bus->slots[s->type];
        ipcbus_slot *after = l->last;
        int r;

        r = slot_index(s, bus);
        if (r < 0)
                return r;

        if (s->type == SLOT_CALL)
                while (after && after->call.deadline > s->call.deadline)
                        after = after->prev;

        s->prev = after;
        s->next = after ? after->next : l->first;
        if (s->next)
                s->next->prev = s;
        else
                l->last = s;
        if (after)
                after->next = s;
        else
                l->first = s;

        s->bus = bus;
        bus->generation++;
        return 0;
}

/* {"rule": <rule_json>} for AddMatch and RemoveMatch; NULL on allocation failure. */
static char *match_body(const char *rule_json)
{
        struct jbuf b;
        char *body;
        size_t len;

        jbuf_init(&b);
        jbuf_puts(&b, "{\"rule\":");
        jbuf_puts(&b, rule_json);
        jbuf_putc(&b, '}');
        body = jbuf_steal(&b, &len);
        jbuf_deinit(&b);
        return body;
}

/* Tell the broker a match is gone, without waiting (no_reply). Best effort. */
static void match_remove(ipcbus_bus *bus, const char *rule_json)
{
        _cleanup_(msg_unrefp) struct msg *m = NULL;
        _cleanup_(freep) char *body = NULL;

        body = match_body(rule_json);
        if (!body)
                return;
        if (client_build_call(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE, "RemoveMatch", body,
                              0, true, &m) < 0)
                return;
        (void) client_send(bus, m);
}

/* ---- owners of the well-known names that rules use as sender ---- */

/*
 * Whether a rule's sender needs the owner cache: a well-known name, except
 * the driver's, whose signals carry that very name as their sender.
 */
static bool rule_sender_tracked(const struct match_rule *r)
{
        return r->sender && r->sender[0] != ':' && !streq(r->sender, IPCBUS_DRIVER_NAME);
}

static bool client_name_owner_is(const struct map_node *node, const void *key)
{
        return streq(container_of(node, struct client_name_owner, node)->name, key);
}

static struct client_name_owner *client_name_owner_find(ipcbus_bus *bus, const char *name)
{
        struct map_node *node = map_find(&bus->name_owners, map_hash_string(name), client_name_owner_is, name);

        return node ? container_of(node, struct client_name_owner, node) : NULL;
}

static void client_name_owner_free(struct client_name_owner *n)
{
        if (!n)
                return;
        free(n->rule_json);
        free(n);
}

static void client_name_owner_freep(struct client_name_owner **n)
{
        client_name_owner_free(*n);
}

/* Set the cached owner; anything but a unique name means none. */
static void client_name_owner_set(struct client_name_owner *n, const char *owner)
{
        if (owner && names_is_unique(owner))
                memcpy(n->owner, owner, strlen(owner) + 1); /* names_is_unique bounds the length */
        else
                n->owner[0] = '\0';
}

/* The JSON rule selecting the driver's NameOwnerChanged for name; caller frees. */
static int client_name_owner_rule(const char *name, char **ret)
{
        _cleanup_(freep) char *text = NULL;
        struct match_rule rule;
        struct jbuf b;
        size_t len;
        int r;

        jbuf_init(&b);
        jbuf_printf(&b, "type=signal,sender=%s,interface=%s,member=NameOwnerChanged,arg.name=%s", IPCBUS_DRIVER_NAME,
                    IPCBUS_DRIVER_INTERFACE, name);
        text = jbuf_steal(&b, &len);
        jbuf_deinit(&b);
        if (!text)
                return -ENOMEM;

        match_rule_init(&rule);
        r = match_rule_parse_string(&rule, text);
        if (r == 0)
                r = match_rule_to_json(&rule, ret);
        match_rule_deinit(&rule);
        return error_from_proto(r);
}

/* Ask the driver for the current owner of name (GetNameOwner, NameHasNoOwner: none). Returns 0 or negative errno. */
static int client_name_owner_query(ipcbus_bus *bus, struct client_name_owner *n)
{
        _cleanup_(msg_unrefp) struct msg *reply = NULL;
        _cleanup_(freep) char *body = NULL;
        ipcbus_error e = IPCBUS_ERROR_NULL;
        int r;

        body = client_name_body(n->name, -1);
        if (!body)
                return -ENOMEM;
        r = client_call_driver(bus, "GetNameOwner", body, &reply, &e);
        if (r == -EREMOTEIO && ipcbus_error_has_name(&e, IPCBUS_ERROR_NAME_HAS_NO_OWNER))
                r = 0;
        ipcbus_error_free(&e);
        if (r < 0)
                return r;
        client_name_owner_set(n, reply ? msg_get_arg(reply, "owner") : NULL);
        return 0;
}

/*
 * Take a reference on the cached owner of the well-known name. The first
 * one subscribes to the name's NameOwnerChanged, then asks for the current
 * owner: in this order no change can be missed, and every later change
 * arrives before any message its new owner sends. Returns 0 or negative
 * errno (nothing is kept then).
 */
static int client_name_owner_track(ipcbus_bus *bus, const char *name)
{
        _cleanup_(client_name_owner_freep) struct client_name_owner *n = NULL;
        _cleanup_(freep) char *body = NULL;
        struct client_name_owner *known;
        int r;

        known = client_name_owner_find(bus, name);
        if (known) {
                known->n_ref++;
                return 0;
        }

        n = calloc(1, sizeof(*n) + strlen(name) + 1);
        if (!n)
                return -ENOMEM;
        n->n_ref = 1;
        strcpy(n->name, name);
        r = client_name_owner_rule(name, &n->rule_json);
        if (r < 0)
                return r;
        body = match_body(n->rule_json);
        if (!body)
                return -ENOMEM;
        /* Into the map first, so that nothing is asked of the broker for an
         * entry that could not be kept. */
        r = map_add(&bus->name_owners, &n->node, map_hash_string(n->name));
        if (r < 0)
                return r;
        r = client_call_driver(bus, "AddMatch", body, NULL, NULL);
        if (r >= 0) {
                r = client_name_owner_query(bus, n);
                if (r < 0)
                        match_remove(bus, n->rule_json);
        }
        if (r < 0) {
                map_remove(&bus->name_owners, &n->node);
                return r;
        }

        n = NULL; /* the map holds it now */
        return 0;
}

/* Drop a reference taken by client_name_owner_track; the last one unsubscribes (if the broker still listens). */
static void client_name_owner_untrack(ipcbus_bus *bus, const char *name)
{
        struct client_name_owner *n = client_name_owner_find(bus, name);

        if (!n || --n->n_ref > 0)
                return;
        map_remove(&bus->name_owners, &n->node);
        if (bus->open && !bus->monitor)
                match_remove(bus, n->rule_json);
        client_name_owner_free(n);
}

/*
 * Follow m if it is the driver's NameOwnerChanged for a tracked name. Done
 * as m is dispatched, so that the cache is what it was for the sender of
 * each message when it was sent.
 */
static void client_name_owner_update(ipcbus_bus *bus, struct msg *m)
{
        const struct msg_header *h = &m->h;
        const char *name;
        struct client_name_owner *n;

        if (map_size(&bus->name_owners) == 0 || h->type != MSG_SIGNAL || !streq(h->sender, IPCBUS_DRIVER_NAME) ||
            !streq(h->interface, IPCBUS_DRIVER_INTERFACE) || !streq(h->member, "NameOwnerChanged"))
                return;
        name = msg_get_arg(m, "name");
        n = name ? client_name_owner_find(bus, name) : NULL;
        if (n)
                client_name_owner_set(n, msg_get_arg(m, "new_owner"));
}

/* match_owner_fn over the cache: does unique own well_known now? */
static bool client_name_owner_owns(const char *well_known, const char *unique, void *userdata)
{
        struct client_name_owner *n = client_name_owner_find(userdata, well_known);

        return n && streq(n->owner, unique);
}

/* Unregister s (no-op when it is not registered). The reference count is untouched. */
void slot_unlink(ipcbus_slot *s)
{
        ipcbus_bus *bus = s->bus;
        struct slot_list *l;

        if (!bus)
                return;
        l = &bus->slots[s->type];
        if (s->prev)
                s->prev->next = s->next;
        else
                l->first = s->next;
        if (s->next)
                s->next->prev = s->prev;
        else
                l->last = s->prev;
        s->prev = s->next = NULL;
        s->bus = NULL;
        bus->generation++;
        slot_unindex(s, bus);

        if (s->type == SLOT_MATCH) {
                if (bus->open && !bus->monitor)
                        match_remove(bus, s->match.rule_json);
                if (rule_sender_tracked(&s->match.rule))
                        client_name_owner_untrack(bus, s->match.rule.sender);
        }
}

/* The bus is closing: unregister every slot, freeing the floating ones. */
void slot_disconnect_all(ipcbus_bus *bus)
{
        for (unsigned t = 0; t < _SLOT_TYPE_MAX; t++) {
                ipcbus_slot *s;

                while ((s = bus->slots[t].first)) {
                        bool floating = s->floating;

                        slot_unlink(s);
                        if (floating)
                                slot_unref(s);
                }
        }
}

/* ---- pending calls ---- */

/* Unregister a pending call and run its callback with the answer m. */
static void call_complete(ipcbus_slot *s, ipcbus_message *m)
{
        ipcbus_error e = IPCBUS_ERROR_NULL;
        bool floating = s->floating;

        slot_ref(s);
        slot_unlink(s);
        if (s->callback)
                (void) s->callback(m, s->userdata, &e);
        ipcbus_error_free(&e);
        if (floating)
                slot_unref(s); /* the bus's reference */
        slot_unref(s);
}

/*
 * End a pending call locally with a synthesised error (Timeout,
 * Disconnected) that looks as if the driver had sent it. Returns 0 or
 * -ENOMEM (the call stays pending then).
 */
int slot_fail_call(ipcbus_slot *s, const char *error_name, const char *text)
{
        _cleanup_(msg_unrefp) struct msg *m = NULL;
        _cleanup_(ipcbus_message_unrefp) ipcbus_message *msg = NULL;
        ipcbus_bus *bus = s->bus;
        int r;

        r = message_build_error(s->call.serial, UINT32_MAX, IPCBUS_DRIVER_NAME, bus->unique_name, error_name, text, &m);
        if (r < 0)
                return r;
        msg = message_new(bus, m);
        if (!msg)
                return -ENOMEM;
        call_complete(s, msg);
        return 0;
}

static void dispatch_reply(ipcbus_bus *bus, ipcbus_message *m)
{
        uint32_t serial = m->msg->h.reply_serial;

        ipcbus_slot *s;

        if (serial == 0)
                return;
        s = call_find(bus, serial);
        if (s)
                call_complete(s, m);
}

/* ---- filters and matches ---- */

/*
 * Run the callbacks of one list (filters, or the matches whose rule selects
 * m) once each. If callbacks change the registrations, the walk starts over,
 * skipping slots that already ran in this round. Returns true when a filter
 * consumed the message.
 */
static bool dispatch_list(ipcbus_bus *bus, enum slot_type type, ipcbus_message *m)
{
        unsigned iteration = ++bus->iteration;
        unsigned generation;

restart:
        generation = bus->generation;
        for (ipcbus_slot *s = bus->slots[type].first; s; s = s->next) {
                ipcbus_error e = IPCBUS_ERROR_NULL;
                int r;

                if (s->iteration == iteration)
                        continue;
                s->iteration = iteration;
                if (type == SLOT_MATCH && !match_rule_matches(&s->match.rule, m->msg, client_name_owner_owns, bus))
                        continue;

                slot_ref(s);
                r = s->callback(m, s->userdata, &e);
                ipcbus_error_free(&e);
                slot_unref(s);

                if (type == SLOT_FILTER && r > 0)
                        return true;
                if (bus->generation != generation)
                        goto restart;
        }
        return false;
}

_public_ int ipcbus_add_filter(ipcbus_bus *bus, ipcbus_slot **ret_slot, ipcbus_message_handler callback, void *userdata)
{
        ipcbus_slot *s;
        int r;

        if (!callback)
                return client_fail_null("callback");
        r = client_enter(bus, false);
        if (r < 0)
                return r;

        r = slot_new(SLOT_FILTER, !ret_slot, callback, userdata, &s);
        if (r < 0)
                return r;
        r = slot_link(s, bus); /* filters have no index: does not fail */
        if (r < 0) {
                slot_unref(s);
                return r;
        }
        if (ret_slot)
                *ret_slot = s;
        return 0;
}

_public_ int ipcbus_add_match(ipcbus_bus *bus, ipcbus_slot **ret_slot, const char *rule,
                              ipcbus_message_handler callback, void *userdata, ipcbus_error *ret_error)
{
        _cleanup_(freep) char *body = NULL;
        struct match_error why;
        ipcbus_slot *s;
        int r;

        if (!rule || !callback)
                return client_fail_null(!rule ? "rule" : "callback");
        r = client_enter(bus, true);
        if (r < 0)
                return r;

        r = slot_new(SLOT_MATCH, !ret_slot, callback, userdata, &s);
        if (r < 0)
                return r;

        r = match_rule_parse_string_err(&s->match.rule, rule, &why);
        if (r == PROTO_E_BAD_MATCH) {
                slot_unref(s);
                return client_fail(-EINVAL, "rule: %s", why.text);
        }
        if (r == 0) {
                if (s->match.rule.type == MSG_TYPE_INVALID)
                        s->match.rule.type = MSG_SIGNAL;
                r = match_rule_to_json(&s->match.rule, &s->match.rule_json);
        }
        if (r == 0 && rule_sender_tracked(&s->match.rule))
                r = client_name_owner_track(bus, s->match.rule.sender);
        if (r != 0) {
                slot_unref(s);
                return error_from_proto(r);
        }
        body = match_body(s->match.rule_json);
        r = body ? client_call_driver(bus, "AddMatch", body, NULL, ret_error) : -ENOMEM;
        if (r >= 0) {
                r = slot_link(s, bus); /* matches have no index: does not fail */
                if (r < 0)
                        match_remove(bus, s->match.rule_json);
        }
        if (r < 0) {
                if (rule_sender_tracked(&s->match.rule))
                        client_name_owner_untrack(bus, s->match.rule.sender);
                slot_unref(s);
                return r;
        }

        if (ret_slot)
                *ret_slot = s;
        return 0;
}

/*
 * Dispatch one incoming message: filters first (one may consume it), then by
 * type to the pending call it answers, the matching signal subscriptions, or
 * the exported object. A monitor only runs filters: what it receives is
 * other connections' traffic.
 */
void slot_dispatch(ipcbus_bus *bus, ipcbus_message *m)
{
        client_name_owner_update(bus, m->msg);
        if (dispatch_list(bus, SLOT_FILTER, m))
                return;
        if (bus->monitor || bus->closed)
                return;

        switch (m->msg->h.type) {
        case MSG_RETURN:
        case MSG_ERROR:
                dispatch_reply(bus, m);
                break;
        case MSG_SIGNAL:
                dispatch_list(bus, SLOT_MATCH, m);
                break;
        case MSG_CALL:
                object_dispatch_call(bus, m);
                break;
        default:
                break;
        }
}
