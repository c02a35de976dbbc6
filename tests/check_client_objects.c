/* SPDX-License-Identifier: MIT */
/*
 * Described objects against a real ipcbusd: the vtable checked against the
 * description, calls checked before their handler (InvalidArgs naming the
 * argument; unknown extra members ignored), replies and signals that break
 * the description refused locally, and the standard interfaces the library
 * answers: Introspect (at a path, above it, children), Properties (Get,
 * GetAll, Set, PropertiesChanged) and the object manager
 * (GetManagedObjects, InterfacesAdded, InterfacesRemoved).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testbus.h"
#include "util/util.h"

#define NOTES_PATH "/org/example/Notes/main"
#define NOTES "org.example.Notes"

static const char notes_json[] =
        "{\"interface\": \"org.example.Notes\","
        " \"methods\": {"
        "  \"Add\": {\"in\": {\"text\": \"string\"}, \"out\": {\"id\": \"uint\"}},"
        "  \"Put\": {\"in\": {\"notes\": {\"array\": {\"struct\": {\"id\": \"uint\", \"text\": \"string\"}}}}},"
        "  \"Broken\": {\"out\": {\"id\": \"uint\"}}"
        " },"
        " \"signals\": {\"Changed\": {\"args\": {\"id\": \"uint\"}}},"
        " \"properties\": {"
        "  \"Count\": {\"type\": \"uint\", \"access\": \"read\"},"
        "  \"Title\": {\"type\": \"string\", \"access\": \"readwrite\", \"changes\": \"invalidate\"},"
        "  \"Secret\": {\"type\": \"string\", \"access\": \"write\"},"
        "  \"Version\": {\"type\": \"uint\", \"access\": \"read\", \"changes\": \"const\"}"
        " }}";

struct notes {
        uint64_t count;
        char title[64];
        char secret[64];
        int broken_result; /* what Broken's ipcbus_reply_method returned */
        int calls;
};

static int notes_add(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct notes *n = userdata;
        const char *text;
        int r;

        n->calls++;
        r = ipcbus_message_read(m, "text:s", &text);
        ck_assert_int_ge(r, 0);
        return ipcbus_reply_method(m, "id:t", ++n->count);
}

static int notes_put(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct notes *n = userdata;

        n->calls++;
        return ipcbus_reply_method(m, NULL);
}

/* Answers with a string where the description says uint: the library refuses it. */
static int notes_broken(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct notes *n = userdata;

        n->calls++;
        n->broken_result = ipcbus_reply_method(m, "id:s", "seven");
        ck_assert_str_eq(ipcbus_last_error(), ipcbus_last_error()); /* still readable */
        ck_assert_ptr_nonnull(strstr(ipcbus_last_error(), "'id'"));
        return n->broken_result;
}

static int get_count(ipcbus_message *reply, const char *property, void *userdata, ipcbus_error *ret_error)
{
        return ipcbus_message_append(reply, "t", ((struct notes *) userdata)->count);
}

static int get_version(ipcbus_message *reply, const char *property, void *userdata, ipcbus_error *ret_error)
{
        return ipcbus_message_append(reply, "t", (uint64_t) 3);
}

static int get_title(ipcbus_message *reply, const char *property, void *userdata, ipcbus_error *ret_error)
{
        return ipcbus_message_append(reply, "s", ((struct notes *) userdata)->title);
}

static int set_text(ipcbus_message *value, char *to, size_t size)
{
        const char *text;
        int r;

        r = ipcbus_message_read(value, "s", &text);
        if (r < 0)
                return r;
        snprintf(to, size, "%s", text);
        return 0;
}

static int set_title(ipcbus_message *value, const char *property, void *userdata, ipcbus_error *ret_error)
{
        struct notes *n = userdata;

        return set_text(value, n->title, sizeof(n->title));
}

static int set_secret(ipcbus_message *value, const char *property, void *userdata, ipcbus_error *ret_error)
{
        struct notes *n = userdata;

        return set_text(value, n->secret, sizeof(n->secret));
}

static const ipcbus_vtable notes_vtable[] = {
        IPCBUS_METHOD("Add", notes_add),
        IPCBUS_METHOD("Put", notes_put),
        IPCBUS_METHOD("Broken", notes_broken),
        IPCBUS_PROPERTY("Count", get_count, NULL),
        IPCBUS_PROPERTY("Title", get_title, set_title),
        IPCBUS_PROPERTY("Secret", NULL, set_secret),
        IPCBUS_PROPERTY("Version", get_version, NULL),
        IPCBUS_VTABLE_END,
};

/* A server exporting objects and a client calling them, in this process. */
struct pair {
        ipcbus_bus *server;
        ipcbus_bus *client;
        ipcbus_bus *both[3];
        ipcbus_interface *notes_iface;
        struct notes notes;
};

static void pair_init(struct pair *p)
{
        struct testbus *tb = testbus_current();

        memset(p, 0, sizeof(*p));
        p->server = testbus_connect(tb);
        p->client = testbus_connect(tb);
        p->both[0] = p->server;
        p->both[1] = p->client;
        ck_assert_int_eq(ipcbus_interface_parse(notes_json, &p->notes_iface), 0);
        snprintf(p->notes.title, sizeof(p->notes.title), "%s", "shopping");
}

static void pair_deinit(struct pair *p)
{
        ipcbus_interface_unref(p->notes_iface);
        ipcbus_unref(p->client);
        ipcbus_unref(p->server);
}

static ipcbus_slot *pair_export(struct pair *p, const char *path)
{
        ipcbus_slot *slot = NULL;

        ck_assert_msg(ipcbus_add_object_vtable(p->server, &slot, path, p->notes_iface, notes_vtable, &p->notes) == 0,
                      "%s", ipcbus_last_error());
        return slot;
}

static int on_answer(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        *(ipcbus_message **) userdata = ipcbus_message_ref(m);
        return 0;
}

static bool answered(void *userdata)
{
        return *(ipcbus_message **) userdata != NULL;
}

/* Call the server from the client, serving meanwhile; the answer (return or error), a reference. */
static ipcbus_message *pair_call(struct pair *p, const char *path, const char *interface, const char *member,
                                 const char *body)
{
        ipcbus_message *answer = NULL;

        ck_assert_int_ge(ipcbus_call_async(p->client, NULL, ipcbus_get_unique_name(p->server), path, interface, member,
                                           body, 0, on_answer, &answer),
                         0);
        ck_assert(testbus_pump_until(p->both, answered, &answer, TESTBUS_WAIT_MS));
        return answer;
}

/* A call that must succeed: its body parsed. */
static json_object *pair_ok(struct pair *p, const char *path, const char *interface, const char *member,
                            const char *body)
{
        _cleanup_(ipcbus_message_unrefp) ipcbus_message *m = pair_call(p, path, interface, member, body);
        json_object *j;

        ck_assert_msg(ipcbus_message_get_type(m) == IPCBUS_MESSAGE_RETURN, "%s.%s: %s %s", interface, member,
                      ipcbus_message_get_error_name(m), ipcbus_message_get_body(m, NULL));
        j = testbus_message_json(m);
        return j ? j : json_object_new_object();
}

/* A call that must fail with error_name, its message containing each of the NULL-terminated words. */
static void pair_fails(struct pair *p, const char *path, const char *interface, const char *member, const char *body,
                       const char *error_name, ...)
{
        _cleanup_(ipcbus_message_unrefp) ipcbus_message *m = pair_call(p, path, interface, member, body);
        ipcbus_error e = IPCBUS_ERROR_NULL;
        const char *word;
        va_list ap;

        ck_assert_int_eq(ipcbus_message_get_type(m), IPCBUS_MESSAGE_ERROR);
        ck_assert_int_eq(ipcbus_message_get_error(m, &e), 0);
        ck_assert_msg(ipcbus_error_has_name(&e, error_name), "%s.%s: %s (%s), wanted %s", interface, member, e.name,
                      e.message, error_name);
        va_start(ap, error_name);
        while ((word = va_arg(ap, const char *)))
                ck_assert_msg(e.message && strstr(e.message, word), "'%s' not in \"%s\"", word, e.message);
        va_end(ap);
        ipcbus_error_free(&e);
}

static json_object *member(json_object *o, const char *key)
{
        json_object *v = NULL;

        ck_assert_msg(json_object_object_get_ex(o, key, &v), "no member '%s' in %s", key,
                      json_object_to_json_string(o));
        return v;
}

/* The names of an Introspect answer's interfaces, in order, joined by spaces. */
static void interface_names(json_object *introspection, char *buf, size_t size)
{
        json_object *list = member(introspection, "interfaces");

        buf[0] = '\0';
        for (size_t i = 0; i < json_object_array_length(list); i++) {
                const char *name = json_object_get_string(member(json_object_array_get_idx(list, i), "interface"));

                snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", i ? " " : "", name);
        }
}

static void assert_children(json_object *introspection, const char *want)
{
        json_object *list = member(introspection, "children");
        char buf[256] = "";

        for (size_t i = 0; i < json_object_array_length(list); i++)
                snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", i ? " " : "",
                         json_object_get_string(json_object_array_get_idx(list, i)));
        ck_assert_str_eq(buf, want);
}

/* ---- registration ------------------------------------------------------------------------ */

START_TEST(test_vtable_checked)
{
        static const ipcbus_vtable no_add[] = {
                IPCBUS_METHOD("Put", notes_put),
                IPCBUS_METHOD("Broken", notes_broken),
                IPCBUS_PROPERTY("Count", get_count, NULL),
                IPCBUS_PROPERTY("Title", get_title, set_title),
                IPCBUS_PROPERTY("Secret", NULL, set_secret),
                IPCBUS_PROPERTY("Version", get_version, NULL),
                IPCBUS_VTABLE_END,
        };
        static const ipcbus_vtable extra[] = {
                IPCBUS_METHOD("Add", notes_add),
                IPCBUS_METHOD("Remove", notes_add),
                IPCBUS_VTABLE_END,
        };
        static const ipcbus_vtable no_setter[] = {
                IPCBUS_METHOD("Add", notes_add),
                IPCBUS_METHOD("Put", notes_put),
                IPCBUS_METHOD("Broken", notes_broken),
                IPCBUS_PROPERTY("Count", get_count, NULL),
                IPCBUS_PROPERTY("Title", get_title, NULL),
                IPCBUS_PROPERTY("Secret", NULL, set_secret),
                IPCBUS_PROPERTY("Version", get_version, NULL),
                IPCBUS_VTABLE_END,
        };
        static const ipcbus_vtable setter_read_only[] = {
                IPCBUS_PROPERTY("Count", get_count, set_title),
                IPCBUS_VTABLE_END,
        };
        struct pair p;
        ipcbus_slot *slot = NULL, *dup = NULL;

        pair_init(&p);
        ck_assert_int_eq(ipcbus_add_object_vtable(p.server, &slot, NOTES_PATH, p.notes_iface, no_add, NULL), -EINVAL);
        ck_assert_ptr_nonnull(strstr(ipcbus_last_error(), "'Add'"));
        ck_assert_int_eq(ipcbus_add_object_vtable(p.server, &slot, NOTES_PATH, p.notes_iface, extra, NULL), -EINVAL);
        ck_assert_ptr_nonnull(strstr(ipcbus_last_error(), "'Remove'"));
        ck_assert_int_eq(ipcbus_add_object_vtable(p.server, &slot, NOTES_PATH, p.notes_iface, no_setter, NULL),
                         -EINVAL);
        ck_assert_ptr_nonnull(strstr(ipcbus_last_error(), "setter for property 'Title'"));
        ck_assert_int_eq(ipcbus_add_object_vtable(p.server, &slot, NOTES_PATH, p.notes_iface, setter_read_only, NULL),
                         -EINVAL);
        ck_assert_ptr_nonnull(strstr(ipcbus_last_error(), "'Count'"));
        ck_assert_int_eq(ipcbus_add_object_vtable(p.server, &slot, "no/path", p.notes_iface, notes_vtable, NULL),
                         -EINVAL);
        ck_assert_ptr_null(slot);

        slot = pair_export(&p, NOTES_PATH);
        ck_assert_int_eq(ipcbus_add_object_vtable(p.server, &dup, NOTES_PATH, p.notes_iface, notes_vtable, NULL),
                         -EEXIST);
        ck_assert_ptr_null(dup);
        /* the slot holds its own reference on the description */
        ipcbus_interface_unref(p.notes_iface);
        p.notes_iface = NULL;
        json_object_put(pair_ok(&p, NOTES_PATH, NOTES, "Add", "{\"text\":\"milk\"}"));
        ipcbus_slot_unref(slot);
        pair_fails(&p, NOTES_PATH, NOTES, "Add", "{\"text\":\"milk\"}", IPCBUS_ERROR_UNKNOWN_OBJECT, NULL);
        pair_deinit(&p);
}
END_TEST

/* ---- Introspect -------------------------------------------------------------------------- */

static int untyped_ping(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        return ipcbus_reply(m, "{}");
}

static const ipcbus_method untyped_methods[] = {{"Poke", untyped_ping}, {NULL, NULL}};

START_TEST(test_introspect)
{
        _cleanup_(ipcbus_slot_unrefp) ipcbus_slot *notes = NULL, *other = NULL, *deep = NULL;
        json_object *j, *desc, *want;
        struct pair p;
        char names[512];

        pair_init(&p);
        notes = pair_export(&p, NOTES_PATH);
        deep = pair_export(&p, NOTES_PATH "/archive/2024");
        ck_assert_int_eq(
                ipcbus_add_object(p.server, &other, "/org/example/Other", "org.example.Other", untyped_methods, NULL),
                0);

        /* at an exported path: the application's interface (as its description), the standard ones, children */
        j = pair_ok(&p, NOTES_PATH, IPCBUS_INTROSPECTABLE_INTERFACE, "Introspect", "{}");
        ck_assert_str_eq(testbus_json_string(j, "path"), NOTES_PATH);
        interface_names(j, names, sizeof(names));
        ck_assert_str_eq(names, "org.example.Notes org.ipcbus.Introspectable org.ipcbus.Properties org.ipcbus.Peer");
        desc = json_object_array_get_idx(member(j, "interfaces"), 0);
        want = json_tokener_parse(ipcbus_interface_get_json(p.notes_iface));
        ck_assert(json_object_equal(desc, want));
        json_object_put(want);
        ck_assert_ptr_nonnull(json_object_object_get(
                json_object_object_get(json_object_array_get_idx(member(j, "interfaces"), 2), "methods"), "GetAll"));
        assert_children(j, "archive");
        json_object_put(j);

        /* an ancestor: Introspectable and Peer, and the children below it, sorted and once each */
        j = pair_ok(&p, "/org/example", IPCBUS_INTROSPECTABLE_INTERFACE, "Introspect", NULL);
        interface_names(j, names, sizeof(names));
        ck_assert_str_eq(names, "org.ipcbus.Introspectable org.ipcbus.Peer");
        assert_children(j, "Notes Other");
        json_object_put(j);
        j = pair_ok(&p, "/", IPCBUS_INTROSPECTABLE_INTERFACE, "Introspect", "{}");
        assert_children(j, "org");
        json_object_put(j);
        j = pair_ok(&p, NOTES_PATH "/archive", IPCBUS_INTROSPECTABLE_INTERFACE, "Introspect", "{}");
        assert_children(j, "2024");
        json_object_put(j);

        /* an untyped object: its methods, unchecked */
        j = pair_ok(&p, "/org/example/Other", IPCBUS_INTROSPECTABLE_INTERFACE, "Introspect", "{}");
        desc = json_object_array_get_idx(member(j, "interfaces"), 0);
        ck_assert_str_eq(testbus_json_string(desc, "interface"), "org.example.Other");
        ck_assert(testbus_json_bool(member(member(desc, "methods"), "Poke"), "unchecked"));
        assert_children(j, "");
        json_object_put(j);

        /* elsewhere nothing; and the Peer interface is answered at an exported path */
        pair_fails(&p, "/org/nothing", IPCBUS_INTROSPECTABLE_INTERFACE, "Introspect", "{}", IPCBUS_ERROR_UNKNOWN_OBJECT,
                   NULL);
        pair_fails(&p, "/org/example/Notes/mainly", IPCBUS_INTROSPECTABLE_INTERFACE, "Introspect", "{}",
                   IPCBUS_ERROR_UNKNOWN_OBJECT, NULL);
        json_object_put(pair_ok(&p, NOTES_PATH, IPCBUS_PEER_INTERFACE, "Ping", "{}"));

        /* dropping the deep object removes the child */
        deep = ipcbus_slot_unref(deep);
        j = pair_ok(&p, NOTES_PATH, IPCBUS_INTROSPECTABLE_INTERFACE, "Introspect", "{}");
        assert_children(j, "");
        json_object_put(j);
        pair_deinit(&p);
}
END_TEST

/* ---- calls checked against the description ----------------------------------------------- */

START_TEST(test_calls_checked)
{
        _cleanup_(ipcbus_slot_unrefp) ipcbus_slot *slot = NULL;
        struct pair p;
        json_object *j;

        pair_init(&p);
        slot = pair_export(&p, NOTES_PATH);

        pair_fails(&p, NOTES_PATH, NOTES, "Add", "{\"text\":3}", IPCBUS_ERROR_INVALID_ARGS, "'text'", "string", "int",
                   NULL);
        pair_fails(&p, NOTES_PATH, NOTES, "Add", "{}", IPCBUS_ERROR_INVALID_ARGS, "'text'", "missing", "string", NULL);
        pair_fails(&p, NOTES_PATH, NOTES, "Add", NULL, IPCBUS_ERROR_INVALID_ARGS, "'text'", "missing", NULL);
        pair_fails(&p, NOTES_PATH, NOTES, "Put",
                   "{\"notes\":[{\"id\":1,\"text\":\"a\"},{\"id\":\"x\",\"text\":\"b\"}]}", IPCBUS_ERROR_INVALID_ARGS,
                   "'notes[1].id'", "uint", "string", NULL);
        pair_fails(&p, NOTES_PATH, NOTES, "Put", "{\"notes\":[{\"id\":1}]}", IPCBUS_ERROR_INVALID_ARGS,
                   "'notes[0].text'", "missing", NULL);
        ck_assert_int_eq(p.notes.calls, 0); /* no handler ran */

        /* unknown extra members are ignored, also inside structs (a newer peer may send them) */
        j = pair_ok(&p, NOTES_PATH, NOTES, "Add", "{\"text\":\"milk\",\"colour\":\"red\"}");
        ck_assert_int_eq(testbus_json_int(j, "id"), 1);
        json_object_put(j);
        json_object_put(pair_ok(&p, NOTES_PATH, NOTES, "Put", "{\"notes\":[{\"id\":1,\"text\":\"a\",\"x\":[]}]}"));
        /* without an interface the member is found too, and checked */
        pair_fails(&p, NOTES_PATH, NULL, "Add", "{\"text\":false}", IPCBUS_ERROR_INVALID_ARGS, "'text'", NULL);
        ck_assert_int_eq(p.notes.calls, 2);

        /* an unknown method of a described interface */
        pair_fails(&p, NOTES_PATH, NOTES, "Remove", "{}", IPCBUS_ERROR_UNKNOWN_METHOD, NULL);
        pair_deinit(&p);
}
END_TEST

START_TEST(test_reply_checked)
{
        _cleanup_(ipcbus_slot_unrefp) ipcbus_slot *slot = NULL;
        struct pair p;

        pair_init(&p);
        slot = pair_export(&p, NOTES_PATH);
        /* the handler's reply breaks the results: refused locally; the caller gets Failed naming the field */
        pair_fails(&p, NOTES_PATH, NOTES, "Broken", "{}", IPCBUS_ERROR_FAILED, "'id'", NULL);
        ck_assert_int_eq(p.notes.broken_result, -EBADMSG);
        pair_deinit(&p);
}
END_TEST

/* What a handler that unexports its own object keeps: its slot, and the call it answers later. */
struct self_drop {
        ipcbus_slot *slot;
        ipcbus_message *call;
};

/* "Add" that drops the only reference to its slot (and so to the description) and answers later. */
static int add_and_unexport(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct self_drop *d = userdata;

        d->slot = ipcbus_slot_unref(d->slot);
        d->call = ipcbus_message_ref(m);
        return 0;
}

static bool call_came(void *userdata)
{
        return ((struct self_drop *) userdata)->call != NULL;
}

START_TEST(test_reply_after_unexport)
{
        static const ipcbus_vtable vtable[] = {
                IPCBUS_METHOD("Add", add_and_unexport),         IPCBUS_METHOD("Put", notes_put),
                IPCBUS_METHOD("Broken", notes_broken),          IPCBUS_PROPERTY("Count", get_count, NULL),
                IPCBUS_PROPERTY("Title", get_title, set_title), IPCBUS_PROPERTY("Secret", NULL, set_secret),
                IPCBUS_PROPERTY("Version", get_version, NULL),  IPCBUS_VTABLE_END,
        };
        ipcbus_message *answer = NULL;
        struct self_drop d = {0};
        uint64_t id = 0;
        struct pair p;

        pair_init(&p);
        ck_assert_int_eq(ipcbus_add_object_vtable(p.server, &d.slot, NOTES_PATH, p.notes_iface, vtable, &d), 0);
        p.notes_iface = ipcbus_interface_unref(p.notes_iface); /* the slot holds the description alone */
        ck_assert_int_ge(ipcbus_call_async(p.client, NULL, ipcbus_get_unique_name(p.server), NOTES_PATH, NOTES, "Add",
                                           "{\"text\":\"a\"}", 0, on_answer, &answer),
                         0);
        ck_assert(testbus_pump_until(p.both, call_came, &d, TESTBUS_WAIT_MS));
        ck_assert_ptr_null(d.slot);

        /* the object and its description are gone: the late answer is still checked against the results */
        ck_assert_int_eq(ipcbus_reply_method(d.call, "id:s", "seven"), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(ipcbus_last_error(), "'id'"));
        ck_assert_int_eq(ipcbus_reply_method(d.call, "id:t", (uint64_t) 9), 0);
        ck_assert(testbus_pump_until(p.both, answered, &answer, TESTBUS_WAIT_MS));
        ck_assert_int_eq(ipcbus_message_get_type(answer), IPCBUS_MESSAGE_RETURN);
        ck_assert_int_eq(ipcbus_message_read(answer, "id:t", &id), 1);
        ck_assert_uint_eq(id, 9);
        ipcbus_message_unref(answer);
        ipcbus_message_unref(d.call);
        pair_deinit(&p);
}
END_TEST

/* ---- properties -------------------------------------------------------------------------- */

START_TEST(test_properties)
{
        _cleanup_(ipcbus_slot_unrefp) ipcbus_slot *slot = NULL;
        struct pair p;
        json_object *j, *all;

        pair_init(&p);
        slot = pair_export(&p, NOTES_PATH);
        p.notes.count = 7;

        j = pair_ok(&p, NOTES_PATH, IPCBUS_PROPERTIES_INTERFACE, "Get",
                    "{\"interface\":\"" NOTES "\",\"name\":\"Count\"}");
        testbus_json_keys(j, "value", NULL);
        ck_assert_int_eq(testbus_json_int(j, "value"), 7);
        json_object_put(j);

        j = pair_ok(&p, NOTES_PATH, IPCBUS_PROPERTIES_INTERFACE, "GetAll", "{\"interface\":\"" NOTES "\"}");
        all = member(j, "properties");
        testbus_json_keys(all, "Count", "Title", "Version", NULL); /* not the write-only Secret */
        ck_assert_str_eq(testbus_json_string(all, "Title"), "shopping");
        json_object_put(j);

        json_object_put(pair_ok(&p, NOTES_PATH, IPCBUS_PROPERTIES_INTERFACE, "Set",
                                "{\"interface\":\"" NOTES "\",\"name\":\"Title\",\"value\":\"work\"}"));
        ck_assert_str_eq(p.notes.title, "work");
        j = pair_ok(&p, NOTES_PATH, IPCBUS_PROPERTIES_INTERFACE, "Get",
                    "{\"interface\":\"" NOTES "\",\"name\":\"Title\"}");
        ck_assert_str_eq(testbus_json_string(j, "value"), "work");
        json_object_put(j);
        json_object_put(pair_ok(&p, NOTES_PATH, IPCBUS_PROPERTIES_INTERFACE, "Set",
                                "{\"interface\":\"" NOTES "\",\"name\":\"Secret\",\"value\":\"s3\"}"));
        ck_assert_str_eq(p.notes.secret, "s3");

        /* refusals: read-only, write-only, unknown property and interface, a wrong-typed or missing value */
        pair_fails(&p, NOTES_PATH, IPCBUS_PROPERTIES_INTERFACE, "Set",
                   "{\"interface\":\"" NOTES "\",\"name\":\"Count\",\"value\":1}", IPCBUS_ERROR_PROPERTY_READ_ONLY,
                   "Count", NULL);
        pair_fails(&p, NOTES_PATH, IPCBUS_PROPERTIES_INTERFACE, "Get",
                   "{\"interface\":\"" NOTES "\",\"name\":\"Secret\"}", IPCBUS_ERROR_ACCESS_DENIED, "write-only", NULL);
        pair_fails(&p, NOTES_PATH, IPCBUS_PROPERTIES_INTERFACE, "Get",
                   "{\"interface\":\"" NOTES "\",\"name\":\"Colour\"}", IPCBUS_ERROR_UNKNOWN_PROPERTY, "Colour", NULL);
        pair_fails(&p, NOTES_PATH, IPCBUS_PROPERTIES_INTERFACE, "GetAll", "{\"interface\":\"org.example.Nope\"}",
                   IPCBUS_ERROR_UNKNOWN_INTERFACE, "org.example.Nope", NULL);
        pair_fails(&p, NOTES_PATH, IPCBUS_PROPERTIES_INTERFACE, "Set",
                   "{\"interface\":\"" NOTES "\",\"name\":\"Title\",\"value\":42}", IPCBUS_ERROR_INVALID_ARGS,
                   "'value'", "string", "int", NULL);
        pair_fails(&p, NOTES_PATH, IPCBUS_PROPERTIES_INTERFACE, "Set",
                   "{\"interface\":\"" NOTES "\",\"name\":\"Title\"}", IPCBUS_ERROR_INVALID_ARGS, "'value'", NULL);
        pair_fails(&p, NOTES_PATH, IPCBUS_PROPERTIES_INTERFACE, "Get", "{\"interface\":\"" NOTES "\"}",
                   IPCBUS_ERROR_INVALID_ARGS, "'name'", NULL);
        ck_assert_str_eq(p.notes.title, "work");
        pair_fails(&p, "/org/example", IPCBUS_PROPERTIES_INTERFACE, "GetAll", "{\"interface\":\"" NOTES "\"}",
                   IPCBUS_ERROR_UNKNOWN_OBJECT, NULL);
        pair_deinit(&p);
}
END_TEST

/* Signals seen by a third connection. */
struct seen {
        size_t n;
        ipcbus_message *msgs[8];
};

static int on_signal(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct seen *s = userdata;

        ck_assert_uint_lt(s->n, 8);
        s->msgs[s->n++] = ipcbus_message_ref(m);
        return 0;
}

static bool seen_one(void *userdata)
{
        return ((struct seen *) userdata)->n > 0;
}

/* The next signal the subscriber sees (driving the server too), from want_path: its body parsed. */
static json_object *seen_next(ipcbus_bus *server, ipcbus_bus *sub, struct seen *s, const char *want_member,
                              const char *want_path)
{
        ipcbus_bus *buses[] = {server, sub, NULL};
        json_object *j;

        testbus_sync(server);
        ck_assert(testbus_pump_until(buses, seen_one, s, TESTBUS_WAIT_MS));
        ck_assert_str_eq(ipcbus_message_get_member(s->msgs[0]), want_member);
        ck_assert_str_eq(ipcbus_message_get_path(s->msgs[0]), want_path);
        j = testbus_message_json(s->msgs[0]);
        ipcbus_message_unref(s->msgs[0]);
        memmove(s->msgs, s->msgs + 1, --s->n * sizeof(s->msgs[0]));
        return j;
}

static void seen_deinit(struct seen *s)
{
        for (size_t i = 0; i < s->n; i++)
                ipcbus_message_unref(s->msgs[i]);
}

START_TEST(test_properties_changed)
{
        _cleanup_(ipcbus_slot_unrefp) ipcbus_slot *slot = NULL, *match = NULL;
        _cleanup_(ipcbus_unrefp) ipcbus_bus *sub = testbus_connect(testbus_current());
        struct seen seen = {0};
        struct pair p;
        json_object *j;

        pair_init(&p);
        slot = pair_export(&p, NOTES_PATH);
        ck_assert_int_eq(ipcbus_add_match(sub, &match,
                                          "interface=" IPCBUS_PROPERTIES_INTERFACE
                                          ",member=PropertiesChanged,path=" NOTES_PATH,
                                          on_signal, &seen, NULL),
                         0);
        p.notes.count = 2;
        ck_assert_int_eq(ipcbus_emit_properties_changed(p.server, NOTES_PATH, NOTES, "Count", "Title", NULL), 0);
        j = seen_next(p.server, sub, &seen, "PropertiesChanged", NOTES_PATH);
        testbus_json_keys(j, "interface", "changed", "invalidated", NULL);
        ck_assert_str_eq(testbus_json_string(j, "interface"), NOTES);
        testbus_json_keys(member(j, "changed"), "Count", NULL);
        ck_assert_int_eq(testbus_json_int(member(j, "changed"), "Count"), 2);
        ck_assert_int_eq(json_object_array_length(member(j, "invalidated")), 1);
        ck_assert(testbus_json_array_has(member(j, "invalidated"), "Title"));
        json_object_put(j);

        /* const and unknown properties are refused, and nothing is sent */
        ck_assert_int_eq(ipcbus_emit_properties_changed(p.server, NOTES_PATH, NOTES, "Version", NULL), -EINVAL);
        ck_assert_ptr_nonnull(strstr(ipcbus_last_error(), "'Version'"));
        ck_assert_int_eq(ipcbus_emit_properties_changed(p.server, NOTES_PATH, NOTES, "Count", "Colour", NULL), -EINVAL);
        ck_assert_ptr_nonnull(strstr(ipcbus_last_error(), "'Colour'"));
        ck_assert_int_eq(ipcbus_emit_properties_changed(p.server, "/org/none", NOTES, "Count", NULL), -EINVAL);
        testbus_sync(p.server);
        testbus_sync(sub);
        ck_assert_uint_eq(seen.n, 0);
        seen_deinit(&seen);
        pair_deinit(&p);
}
END_TEST

/* ---- signals checked against the description --------------------------------------------- */

START_TEST(test_emit_checked)
{
        _cleanup_(ipcbus_slot_unrefp) ipcbus_slot *slot = NULL, *match = NULL;
        _cleanup_(ipcbus_unrefp) ipcbus_bus *sub = testbus_connect(testbus_current());
        struct seen seen = {0};
        struct pair p;
        json_object *j;

        pair_init(&p);
        slot = pair_export(&p, NOTES_PATH);
        ck_assert_int_eq(ipcbus_add_match(sub, &match, "interface=" NOTES, on_signal, &seen, NULL), 0);

        ck_assert_int_eq(ipcbus_emit(p.server, NOTES_PATH, NOTES, "Changed", "id:s", "three"), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(ipcbus_last_error(), "'id'"));
        ck_assert_int_eq(ipcbus_emit(p.server, NOTES_PATH, NOTES, "Changed", NULL), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(ipcbus_last_error(), "'id'"));
        /* what this side sends is checked strictly: an unknown member is refused too */
        ck_assert_int_eq(ipcbus_emit(p.server, NOTES_PATH, NOTES, "Changed", "id:t extra:b", (uint64_t) 3, 1),
                         -EBADMSG);
        ck_assert_ptr_nonnull(strstr(ipcbus_last_error(), "'extra'"));

        ck_assert_int_eq(ipcbus_emit(p.server, NOTES_PATH, NOTES, "Changed", "id:t", (uint64_t) 3), 0);
        j = seen_next(p.server, sub, &seen, "Changed", NOTES_PATH);
        ck_assert_int_eq(testbus_json_int(j, "id"), 3);
        json_object_put(j);
        /* at a path where the interface is not described, nothing is checked */
        ck_assert_int_eq(ipcbus_emit(p.server, "/org/example/Elsewhere", NOTES, "Changed", "id:s", "x"), 0);
        json_object_put(seen_next(p.server, sub, &seen, "Changed", "/org/example/Elsewhere"));
        seen_deinit(&seen);
        pair_deinit(&p);
}
END_TEST

/* ---- the object manager ------------------------------------------------------------------ */

static ipcbus_slot *dropped_by_getter;

/* A Count getter that unexports its object (the only reference to its slot) while it is listed. */
static int get_count_and_unexport(ipcbus_message *reply, const char *property, void *userdata, ipcbus_error *ret_error)
{
        dropped_by_getter = ipcbus_slot_unref(dropped_by_getter);
        return ipcbus_message_append(reply, "t", (uint64_t) 1);
}

START_TEST(test_managed_objects_change)
{
        static const ipcbus_vtable vtable[] = {
                IPCBUS_METHOD("Add", notes_add),
                IPCBUS_METHOD("Put", notes_put),
                IPCBUS_METHOD("Broken", notes_broken),
                IPCBUS_PROPERTY("Count", get_count_and_unexport, NULL),
                IPCBUS_PROPERTY("Title", get_title, set_title),
                IPCBUS_PROPERTY("Secret", NULL, set_secret),
                IPCBUS_PROPERTY("Version", get_version, NULL),
                IPCBUS_VTABLE_END,
        };
        _cleanup_(ipcbus_slot_unrefp) ipcbus_slot *manager = NULL, *other = NULL;
        ipcbus_message *answer;
        struct pair p;
        json_object *j;

        pair_init(&p);
        ck_assert_int_eq(ipcbus_add_object_manager(p.server, &manager, "/org/example"), 0);
        other = pair_export(&p, "/org/example/Notes/b");
        ck_assert_int_eq(ipcbus_add_object_vtable(p.server, &dropped_by_getter, "/org/example/Notes/a", p.notes_iface,
                                                  vtable, &p.notes),
                         0);
        /* the getter drops its object while the objects are listed: the call fails, nothing breaks */
        answer = pair_call(&p, "/org/example", IPCBUS_OBJECT_MANAGER_INTERFACE, "GetManagedObjects", "{}");
        ck_assert_ptr_null(dropped_by_getter);
        ck_assert_int_eq(ipcbus_message_get_type(answer), IPCBUS_MESSAGE_ERROR);
        ck_assert_str_eq(ipcbus_message_get_error_name(answer), IPCBUS_ERROR_FAILED);
        ipcbus_message_unref(answer);
        j = pair_ok(&p, "/org/example", IPCBUS_OBJECT_MANAGER_INTERFACE, "GetManagedObjects", "{}");
        testbus_json_keys(member(j, "objects"), "/org/example/Notes/b", NULL);
        json_object_put(j);
        pair_deinit(&p);
}
END_TEST

/* A Count getter that drops the slot dropped_by_getter holds (an object manager, or its own object). */
static int get_count_and_drop(ipcbus_message *reply, const char *property, void *userdata, ipcbus_error *ret_error)
{
        dropped_by_getter = ipcbus_slot_unref(dropped_by_getter);
        return ipcbus_message_append(reply, "t", (uint64_t) 7);
}

static const ipcbus_vtable dropping_vtable[] = {
        IPCBUS_METHOD("Add", notes_add),
        IPCBUS_METHOD("Put", notes_put),
        IPCBUS_METHOD("Broken", notes_broken),
        IPCBUS_PROPERTY("Count", get_count_and_drop, NULL),
        IPCBUS_PROPERTY("Title", get_title, set_title),
        IPCBUS_PROPERTY("Secret", NULL, set_secret),
        IPCBUS_PROPERTY("Version", get_version, NULL),
        IPCBUS_VTABLE_END,
};

/*
 * Getters run while InterfacesAdded is built, for each manager above the
 * object: one that drops the manager being announced to ends the
 * announcements there, and nothing is touched after it is gone.
 */
START_TEST(test_announce_getter_drops_manager)
{
        _cleanup_(ipcbus_slot_unrefp) ipcbus_slot *outer = NULL;
        struct pair p;
        json_object *j;

        pair_init(&p);
        ck_assert_int_eq(ipcbus_add_object_manager(p.server, &dropped_by_getter, "/org/example"), 0);
        ck_assert_int_eq(ipcbus_add_object_manager(p.server, &outer, "/"), 0);
        ck_assert_int_eq(ipcbus_add_object_vtable(p.server, NULL, "/org/example/Notes/a", p.notes_iface,
                                                  dropping_vtable, &p.notes),
                         0);
        ck_assert_ptr_null(dropped_by_getter);
        j = pair_ok(&p, "/", IPCBUS_OBJECT_MANAGER_INTERFACE, "GetManagedObjects", "{}");
        testbus_json_keys(member(j, "objects"), "/org/example/Notes/a", NULL);
        json_object_put(j);
        pair_deinit(&p);
}
END_TEST

/* A getter that drops its own object while PropertiesChanged is built: the emission finishes on what it holds. */
START_TEST(test_changed_getter_drops_object)
{
        struct pair p;

        pair_init(&p);
        ck_assert_int_eq(ipcbus_add_object_vtable(p.server, &dropped_by_getter, "/org/example/Notes/a", p.notes_iface,
                                                  dropping_vtable, &p.notes),
                         0);
        ck_assert_int_eq(
                ipcbus_emit_properties_changed(p.server, "/org/example/Notes/a", NOTES, "Count", "Title", NULL), 0);
        ck_assert_ptr_null(dropped_by_getter);
        pair_deinit(&p);
}
END_TEST

START_TEST(test_object_manager)
{
        _cleanup_(ipcbus_slot_unrefp) ipcbus_slot *manager = NULL, *match = NULL, *untyped = NULL;
        _cleanup_(ipcbus_unrefp) ipcbus_bus *sub = testbus_connect(testbus_current());
        ipcbus_slot *a, *b, *dup = NULL;
        struct seen seen = {0};
        struct pair p;
        json_object *j, *objects;
        char names[512];

        pair_init(&p);
        ck_assert_int_eq(ipcbus_add_object_manager(p.server, &manager, "/org/example"), 0);
        ck_assert_int_eq(ipcbus_add_object_manager(p.server, &dup, "/org/example"), -EEXIST);
        ck_assert_int_eq(
                ipcbus_add_match(sub, &match, "interface=" IPCBUS_OBJECT_MANAGER_INTERFACE, on_signal, &seen, NULL), 0);
        p.notes.count = 4;

        a = pair_export(&p, "/org/example/Notes/a");
        j = seen_next(p.server, sub, &seen, "InterfacesAdded", "/org/example");
        ck_assert_str_eq(testbus_json_string(j, "path"), "/org/example/Notes/a");
        testbus_json_keys(member(j, "interfaces"), NOTES, NULL);
        ck_assert_int_eq(testbus_json_int(member(member(j, "interfaces"), NOTES), "Count"), 4);
        json_object_put(j);
        b = pair_export(&p, "/org/example/Notes/b");
        json_object_put(seen_next(p.server, sub, &seen, "InterfacesAdded", "/org/example"));
        /* untyped objects and objects elsewhere are not managed */
        ck_assert_int_eq(
                ipcbus_add_object(p.server, &untyped, "/org/example/Other", "org.example.Other", untyped_methods, NULL),
                0);
        ipcbus_slot_unref(pair_export(&p, "/org/else"));

        j = pair_ok(&p, "/org/example", IPCBUS_OBJECT_MANAGER_INTERFACE, "GetManagedObjects", "{}");
        objects = member(j, "objects");
        testbus_json_keys(objects, "/org/example/Notes/a", "/org/example/Notes/b", NULL);
        ck_assert_str_eq(testbus_json_string(member(member(objects, "/org/example/Notes/b"), NOTES), "Title"),
                         "shopping");
        json_object_put(j);

        /* the manager's path introspects with ObjectManager */
        j = pair_ok(&p, "/org/example", IPCBUS_INTROSPECTABLE_INTERFACE, "Introspect", "{}");
        interface_names(j, names, sizeof(names));
        ck_assert_str_eq(names, "org.ipcbus.Introspectable org.ipcbus.Properties org.ipcbus.Peer "
                                "org.ipcbus.ObjectManager");
        json_object_put(j);
        pair_fails(&p, "/org/example/Notes/a", IPCBUS_OBJECT_MANAGER_INTERFACE, "GetManagedObjects", "{}",
                   IPCBUS_ERROR_UNKNOWN_INTERFACE, NULL);

        /* dropping an object's slot announces its removal */
        ipcbus_slot_unref(a);
        j = seen_next(p.server, sub, &seen, "InterfacesRemoved", "/org/example");
        ck_assert_str_eq(testbus_json_string(j, "path"), "/org/example/Notes/a");
        ck_assert_int_eq(json_object_array_length(member(j, "interfaces")), 1);
        ck_assert(testbus_json_array_has(member(j, "interfaces"), NOTES));
        json_object_put(j);
        j = pair_ok(&p, "/org/example", IPCBUS_OBJECT_MANAGER_INTERFACE, "GetManagedObjects", "{}");
        testbus_json_keys(member(j, "objects"), "/org/example/Notes/b", NULL);
        json_object_put(j);

        /* without the manager, nothing more is announced */
        manager = ipcbus_slot_unref(manager);
        ipcbus_slot_unref(b);
        testbus_sync(p.server);
        testbus_sync(sub);
        ck_assert_uint_eq(seen.n, 0);
        seen_deinit(&seen);
        pair_deinit(&p);
}
END_TEST

/* Refused with -EINVAL and a sentence starting with `sentence`. */
static void assert_refused(int r, const char *sentence)
{
        ck_assert_int_eq(r, -EINVAL);
        ck_assert_msg(strncmp(ipcbus_last_error(), sentence, strlen(sentence)) == 0, "'%s' is not '%s'",
                      ipcbus_last_error(), sentence);
}

/* An exported object's arguments are named when refused: the path, the table's entry (issue 15, point 4). */
START_TEST(test_export_arguments_named)
{
        static const ipcbus_method bad_member[] = {{"Add", notes_add}, {"No-dash", notes_add}, {NULL, NULL}};
        static const ipcbus_method no_handler[] = {{"Add", NULL}, {NULL, NULL}};
        struct pair p;

        pair_init(&p);
        assert_refused(ipcbus_add_object_vtable(p.server, NULL, "/a/", p.notes_iface, notes_vtable, NULL),
                       "path '/a/': not a valid object path (PROTOCOL.md section 5: '/' or '/'-separated elements of "
                       "[A-Za-z0-9_], no trailing '/', at most 1024 bytes)");
        assert_refused(ipcbus_add_object_vtable(p.server, NULL, NOTES_PATH, NULL, notes_vtable, NULL), "iface: NULL");
        assert_refused(ipcbus_add_object(p.server, NULL, NOTES_PATH, NOTES, bad_member, NULL),
                       "methods[1].member 'No-dash': not a valid member name (PROTOCOL.md section 5: one element of "
                       "[A-Za-z0-9_], not starting with a digit, at most 255 bytes)");
        assert_refused(ipcbus_add_object(p.server, NULL, NOTES_PATH, NOTES, no_handler, NULL),
                       "methods[0].handler: NULL (method 'Add')");
        assert_refused(ipcbus_add_object(p.server, NULL, NOTES_PATH, NOTES, NULL, NULL), "methods: NULL");
        assert_refused(ipcbus_add_object_manager(p.server, NULL, "relative"),
                       "path 'relative': not a valid object path");
        pair_deinit(&p);
}
END_TEST

static Suite *objects_suite(void)
{
        Suite *s = suite_create("client_objects");
        TCase *tc;

        tc = testbus_tcase("objects");
        tcase_add_test(tc, test_vtable_checked);
        tcase_add_test(tc, test_introspect);
        tcase_add_test(tc, test_calls_checked);
        tcase_add_test(tc, test_reply_checked);
        tcase_add_test(tc, test_reply_after_unexport);
        tcase_add_test(tc, test_emit_checked);
        tcase_add_test(tc, test_export_arguments_named);
        suite_add_tcase(s, tc);

        tc = testbus_tcase("standard");
        tcase_add_test(tc, test_properties);
        tcase_add_test(tc, test_properties_changed);
        tcase_add_test(tc, test_object_manager);
        tcase_add_test(tc, test_managed_objects_change);
        tcase_add_test(tc, test_announce_getter_drops_manager);
        tcase_add_test(tc, test_changed_getter_drops_object);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return testbus_run_suite(objects_suite());
}
