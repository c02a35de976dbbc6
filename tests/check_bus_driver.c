/* SPDX-License-Identifier: MIT */
/*
 * The bus driver org.ipcbus.Bus against a real ipcbusd: Hello and unique
 * names, every method of PROTOCOL.md 7.2 with its exact result shape, the
 * driver's errors, NameOwnerChanged for connections coming and going, and
 * Introspect at the driver's path and above it (PROTOCOL.md 13.4).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/testbus.h"

#define NOC_RULE "{\"type\":\"signal\",\"sender\":\"org.ipcbus.Bus\",\"member\":\"NameOwnerChanged\"}"

/* ":1.N" with N a decimal number. */
static bool is_unique_1n(const char *s)
{
        if (!s || strncmp(s, ":1.", 3) != 0 || !s[3])
                return false;
        for (s += 3; *s; s++)
                if (!isdigit((unsigned char) *s))
                        return false;
        return true;
}

/* Assert m is the driver's NameOwnerChanged {name, old_owner, new_owner}. */
static void assert_noc(ipcbus_message *m, const char *name, const char *old_owner, const char *new_owner)
{
        json_object *o = testbus_message_json(m);

        ck_assert_str_eq(ipcbus_message_get_sender(m), IPCBUS_DRIVER_NAME);
        ck_assert_str_eq(ipcbus_message_get_path(m), IPCBUS_DRIVER_PATH);
        ck_assert_str_eq(ipcbus_message_get_interface(m), IPCBUS_DRIVER_INTERFACE);
        testbus_json_keys(o, "name", "old_owner", "new_owner", NULL);
        ck_assert_str_eq(testbus_json_string(o, "name"), name);
        ck_assert_str_eq(testbus_json_string(o, "old_owner"), old_owner);
        ck_assert_str_eq(testbus_json_string(o, "new_owner"), new_owner);
        json_object_put(o);
}

/* ---- Hello ----------------------------------------------------------------- */

START_TEST(test_hello_unique_names)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *bus[3];

        for (int i = 0; i < 3; i++) {
                bus[i] = testbus_connect(tb);
                ck_assert_msg(is_unique_1n(ipcbus_get_unique_name(bus[i])), "bad unique name '%s'",
                              ipcbus_get_unique_name(bus[i]));
                for (int j = 0; j < i; j++)
                        ck_assert_str_ne(ipcbus_get_unique_name(bus[i]), ipcbus_get_unique_name(bus[j]));
        }
        for (int i = 0; i < 3; i++)
                ipcbus_unref(bus[i]);
}
END_TEST

START_TEST(test_hello_reply_shape)
{
        struct testbus *tb = testbus_current();
        struct testbus_frame f;
        int fd = testbus_raw_connect(tb);

        testbus_raw_send_frame(fd,
                               "{\"type\":\"call\",\"serial\":1,\"destination\":\"org.ipcbus.Bus\","
                               "\"path\":\"/org/ipcbus/Bus\",\"member\":\"Hello\"}",
                               NULL);
        testbus_raw_expect_reply(fd, 1, NULL, &f);
        testbus_json_keys(f.b, "name", NULL);
        ck_assert(is_unique_1n(testbus_json_string(f.b, "name")));
        ck_assert_str_eq(testbus_frame_string(&f, "sender"), IPCBUS_DRIVER_NAME);
        ck_assert_str_eq(testbus_frame_string(&f, "destination"), testbus_json_string(f.b, "name"));
        testbus_frame_deinit(&f);
        close(fd);
}
END_TEST

/* As in D-Bus, the connection is told it acquired its unique name, after the Hello reply. */
START_TEST(test_hello_name_acquired)
{
        struct testbus *tb = testbus_current();
        struct testbus_frame f;
        int fd = testbus_raw_connect(tb);
        char *name = testbus_raw_hello(fd);

        ck_assert_int_eq(testbus_raw_recv(fd, TESTBUS_WAIT_MS, &f), 1);
        ck_assert_str_eq(testbus_frame_string(&f, "type"), "signal");
        ck_assert_str_eq(testbus_frame_string(&f, "member"), "NameAcquired");
        ck_assert_str_eq(testbus_frame_string(&f, "sender"), IPCBUS_DRIVER_NAME);
        ck_assert_str_eq(testbus_frame_string(&f, "destination"), name);
        testbus_json_keys(f.b, "name", NULL);
        ck_assert_str_eq(testbus_json_string(f.b, "name"), name);
        testbus_frame_deinit(&f);
        free(name);
        close(fd);
}
END_TEST

START_TEST(test_hello_twice)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *bus = testbus_connect(tb);
        char *owner;
        int fd;

        testbus_driver_error(bus, "Hello", NULL, IPCBUS_ERROR_FAILED);
        /* the connection carries on with the name it had */
        owner = testbus_name_owner(bus, ipcbus_get_unique_name(bus));
        ck_assert_str_eq(owner, ipcbus_get_unique_name(bus));
        free(owner);
        testbus_sync(bus);
        ipcbus_unref(bus);

        /* the same on a raw socket: the answer is addressed to the second Hello's serial */
        fd = testbus_raw_connect(tb);
        free(testbus_raw_hello(fd));
        testbus_raw_send_frame(fd,
                               "{\"type\":\"call\",\"serial\":2,\"destination\":\"org.ipcbus.Bus\","
                               "\"path\":\"/org/ipcbus/Bus\",\"member\":\"Hello\"}",
                               NULL);
        testbus_raw_expect_reply(fd, 2, IPCBUS_ERROR_FAILED, NULL);
        testbus_raw_ping(fd, 3);
        close(fd);
}
END_TEST

START_TEST(test_name_owner_changed_connect_disconnect)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *a = testbus_connect(tb), *b;
        struct testbus_rec rec;
        char *b_name;

        testbus_add_match(a, NOC_RULE);
        testbus_rec_init(&rec, a, TESTBUS_REC_SIGNALS);

        b = testbus_connect(tb);
        b_name = strdup(ipcbus_get_unique_name(b));
        assert_noc(testbus_rec_expect(&rec, "NameOwnerChanged", b_name), b_name, "", b_name);
        testbus_rec_expect_quiet(&rec);

        ipcbus_unref(b);
        assert_noc(testbus_rec_expect(&rec, "NameOwnerChanged", b_name), b_name, b_name, "");
        testbus_rec_expect_quiet(&rec);

        free(b_name);
        testbus_rec_deinit(&rec);
        ipcbus_unref(a);
}
END_TEST

/* ---- methods ----------------------------------------------------------------- */

START_TEST(test_list_names)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *a = testbus_connect(tb), *b = testbus_connect(tb);
        struct testbus_rec rec;
        json_object *o, *names;
        char *b_name = strdup(ipcbus_get_unique_name(b));

        ck_assert_int_eq(testbus_request_name(b, "org.example.Listed", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        o = testbus_driver(a, "ListNames", NULL);
        testbus_json_keys(o, "names", NULL);
        names = testbus_json_array(o, "names");
        ck_assert(testbus_json_array_has(names, IPCBUS_DRIVER_NAME));
        ck_assert(testbus_json_array_has(names, ipcbus_get_unique_name(a)));
        ck_assert(testbus_json_array_has(names, b_name));
        ck_assert(testbus_json_array_has(names, "org.example.Listed"));
        for (size_t i = 0; i < json_object_array_length(names); i++) {
                json_object *v = json_object_array_get_idx(names, i);

                ck_assert(json_object_is_type(v, json_type_string));
                for (size_t j = 0; j < i; j++)
                        ck_assert_str_ne(json_object_get_string(v),
                                         json_object_get_string(json_object_array_get_idx(names, j)));
        }
        json_object_put(o);

        /* once b has gone, neither of its names is listed */
        testbus_add_match(a, NOC_RULE);
        testbus_rec_init(&rec, a, TESTBUS_REC_SIGNALS);
        ipcbus_unref(b);
        ck_assert_ptr_nonnull(testbus_rec_wait_member(&rec, "NameOwnerChanged", TESTBUS_WAIT_MS));
        testbus_sync(a);
        o = testbus_driver(a, "ListNames", NULL);
        names = testbus_json_array(o, "names");
        ck_assert(!testbus_json_array_has(names, b_name));
        ck_assert(!testbus_json_array_has(names, "org.example.Listed"));
        ck_assert(testbus_json_array_has(names, ipcbus_get_unique_name(a)));
        json_object_put(o);

        free(b_name);
        testbus_rec_deinit(&rec);
        ipcbus_unref(a);
}
END_TEST

START_TEST(test_list_activatable_names)
{
        ipcbus_bus *bus = testbus_connect(testbus_current());
        json_object *o = testbus_driver(bus, "ListActivatableNames", NULL), *names;

        testbus_json_keys(o, "names", NULL);
        names = testbus_json_array(o, "names");
        ck_assert_uint_eq(json_object_array_length(names), 1);
        ck_assert(testbus_json_array_has(names, IPCBUS_DRIVER_NAME));
        json_object_put(o);
        ipcbus_unref(bus);
}
END_TEST

static bool has_owner(ipcbus_bus *bus, const char *name)
{
        json_object *o;
        char body[512];
        bool r;

        snprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
        o = testbus_driver(bus, "NameHasOwner", body);
        testbus_json_keys(o, "has_owner", NULL);
        r = testbus_json_bool(o, "has_owner");
        json_object_put(o);
        return r;
}

START_TEST(test_name_has_owner)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *a = testbus_connect(tb), *b = testbus_connect(tb);

        ck_assert_int_eq(testbus_request_name(b, "org.example.Owned", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        ck_assert(has_owner(a, IPCBUS_DRIVER_NAME));
        ck_assert(has_owner(a, ipcbus_get_unique_name(a)));
        ck_assert(has_owner(a, ipcbus_get_unique_name(b)));
        ck_assert(has_owner(a, "org.example.Owned"));
        ck_assert(!has_owner(a, "org.example.Nobody"));
        ck_assert(!has_owner(a, ":1.999999"));
        ck_assert_int_eq(testbus_release_name(b, "org.example.Owned"), IPCBUS_RELEASE_NAME_RELEASED);
        ck_assert(!has_owner(a, "org.example.Owned"));

        testbus_driver_error(a, "NameHasOwner", NULL, IPCBUS_ERROR_INVALID_ARGS);
        testbus_driver_error(a, "NameHasOwner", "{}", IPCBUS_ERROR_INVALID_ARGS);
        testbus_driver_error(a, "NameHasOwner", "{\"name\":42}", IPCBUS_ERROR_INVALID_ARGS);
        testbus_driver_error(a, "NameHasOwner", "{\"name\":\"not a name\"}", IPCBUS_ERROR_INVALID_ARGS);
        ipcbus_unref(a);
        ipcbus_unref(b);
}
END_TEST

START_TEST(test_get_name_owner)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *a = testbus_connect(tb), *b = testbus_connect(tb);
        char *owner;

        ck_assert_int_eq(testbus_request_name(b, "org.example.Owned", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        owner = testbus_name_owner(a, "org.example.Owned");
        ck_assert_str_eq(owner, ipcbus_get_unique_name(b));
        free(owner);
        owner = testbus_name_owner(a, ipcbus_get_unique_name(b));
        ck_assert_str_eq(owner, ipcbus_get_unique_name(b));
        free(owner);
        owner = testbus_name_owner(a, IPCBUS_DRIVER_NAME);
        ck_assert_str_eq(owner, IPCBUS_DRIVER_NAME);
        free(owner);

        testbus_driver_error(a, "GetNameOwner", "{\"name\":\"org.example.Nobody\"}", IPCBUS_ERROR_NAME_HAS_NO_OWNER);
        testbus_driver_error(a, "GetNameOwner", "{\"name\":\":1.999999\"}", IPCBUS_ERROR_NAME_HAS_NO_OWNER);
        testbus_driver_error(a, "GetNameOwner", "{}", IPCBUS_ERROR_INVALID_ARGS);
        testbus_driver_error(a, "GetNameOwner", "{\"name\":[]}", IPCBUS_ERROR_INVALID_ARGS);
        ipcbus_unref(a);
        ipcbus_unref(b);
}
END_TEST

static json_object *credentials(ipcbus_bus *bus, const char *name)
{
        char body[512];

        snprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
        return testbus_driver(bus, "GetConnectionCredentials", body);
}

START_TEST(test_get_connection_credentials)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        ipcbus_bus *bus;
        json_object *o;

        testbus_service_start(tb, &svc, "org.example.Creds");
        bus = testbus_connect(tb);

        /* our own connection */
        o = credentials(bus, ipcbus_get_unique_name(bus));
        testbus_json_keys(o, "unique_name", "uid", "gid", "pid", NULL);
        ck_assert_str_eq(testbus_json_string(o, "unique_name"), ipcbus_get_unique_name(bus));
        ck_assert_int_eq(testbus_json_int(o, "uid"), getuid());
        ck_assert_int_eq(testbus_json_int(o, "gid"), getgid());
        ck_assert_int_eq(testbus_json_int(o, "pid"), getpid());
        json_object_put(o);

        /* another process, by its well-known name */
        o = credentials(bus, "org.example.Creds");
        testbus_json_keys(o, "unique_name", "uid", "gid", "pid", NULL);
        ck_assert_str_eq(testbus_json_string(o, "unique_name"), svc.unique);
        ck_assert_int_eq(testbus_json_int(o, "pid"), svc.pid);
        ck_assert_int_eq(testbus_json_int(o, "uid"), getuid());
        json_object_put(o);

        /* the driver answers for the broker itself */
        o = credentials(bus, IPCBUS_DRIVER_NAME);
        ck_assert_int_eq(testbus_json_int(o, "pid"), tb->pid);
        ck_assert_int_eq(testbus_json_int(o, "uid"), getuid());
        ck_assert_int_eq(testbus_json_int(o, "gid"), getgid());
        json_object_put(o);

        testbus_driver_error(bus, "GetConnectionCredentials", "{\"name\":\"org.example.Nobody\"}",
                             IPCBUS_ERROR_NAME_HAS_NO_OWNER);
        testbus_driver_error(bus, "GetConnectionCredentials", "{}", IPCBUS_ERROR_INVALID_ARGS);
        testbus_child_finish(&svc);
        ipcbus_unref(bus);
}
END_TEST

static char *get_id(ipcbus_bus *bus)
{
        json_object *o = testbus_driver(bus, "GetId", NULL);
        const char *id;
        char *r;

        testbus_json_keys(o, "id", NULL);
        id = testbus_json_string(o, "id");
        ck_assert_uint_eq(strlen(id), 32);
        for (const char *c = id; *c; c++)
                ck_assert_msg(isdigit((unsigned char) *c) || (*c >= 'a' && *c <= 'f'), "id '%s' is not lowercase hex",
                              id);
        r = strdup(id);
        json_object_put(o);
        return r;
}

START_TEST(test_get_id)
{
        struct testbus *tb = testbus_current();
        struct testbus other;
        ipcbus_bus *a = testbus_connect(tb), *b = testbus_connect(tb), *c;
        char *id = get_id(a), *again = get_id(a), *from_b = get_id(b), *other_id;

        ck_assert_str_eq(id, again);
        ck_assert_str_eq(id, from_b);

        /* another broker instance has another id */
        testbus_start(&other);
        c = testbus_connect(&other);
        other_id = get_id(c);
        ck_assert_str_ne(id, other_id);
        ipcbus_unref(c);
        testbus_stop(&other);

        free(id);
        free(again);
        free(from_b);
        free(other_id);
        ipcbus_unref(a);
        ipcbus_unref(b);
}
END_TEST

START_TEST(test_ping)
{
        ipcbus_bus *bus = testbus_connect(testbus_current());
        json_object *o = testbus_driver(bus, "Ping", NULL);

        testbus_json_keys(o, NULL);
        json_object_put(o);
        o = testbus_driver(bus, "Ping", "{}");
        testbus_json_keys(o, NULL);
        json_object_put(o);
        /* without interface: taken as the driver's */
        o = testbus_call(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, NULL, "Ping", NULL);
        testbus_json_keys(o, NULL);
        json_object_put(o);
        /* the Peer interface, on any path (PROTOCOL.md 10.1) */
        o = testbus_call(bus, IPCBUS_DRIVER_NAME, "/any/where", IPCBUS_PEER_INTERFACE, "Ping", NULL);
        testbus_json_keys(o, NULL);
        json_object_put(o);
        free(testbus_call_error(bus, IPCBUS_DRIVER_NAME, "/any/where", IPCBUS_PEER_INTERFACE, "Pong", NULL,
                                IPCBUS_ERROR_UNKNOWN_OBJECT));
        ipcbus_unref(bus);
}
END_TEST

START_TEST(test_add_remove_match_results)
{
        static const struct {
                const char *member, *body, *why;
        } bad[] = {
                {"AddMatch", "{\"rule\":{\"bogus\":\"x\"}}",
                 ": unknown key 'bogus' (keys: type, sender, interface, member, path, path_namespace, destination, "
                 "args)"},
                {"RemoveMatch", "{\"rule\":{\"bogus\":\"x\"}}", ": unknown key 'bogus'"},
                {"AddMatch", "{\"rule\":{\"type\":\"sgnal\"}}",
                 ": type: 'sgnal' is not a message type (call, return, error, signal)"},
                {"BecomeMonitor", "{\"rules\":[{},{\"member\":\"a.b\"}]}",
                 ": member: 'a.b' is not a valid member name"},
        };
        ipcbus_bus *bus = testbus_connect(testbus_current());
        const char *rule = "{\"rule\":{\"type\":\"signal\",\"interface\":\"org.example.I\"}}";
        json_object *o;

        o = testbus_driver(bus, "AddMatch", rule);
        testbus_json_keys(o, NULL);
        json_object_put(o);
        o = testbus_driver(bus, "RemoveMatch", rule);
        testbus_json_keys(o, NULL);
        json_object_put(o);
        testbus_driver_error(bus, "RemoveMatch", rule, IPCBUS_ERROR_MATCH_RULE_NOT_FOUND);
        /* the refusal names the key or value at fault and what is allowed */
        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
                char *why = testbus_call_error(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE,
                                               bad[i].member, bad[i].body, IPCBUS_ERROR_MATCH_RULE_INVALID);

                ck_assert_msg(why && strstr(why, bad[i].why), "%s: %s", bad[i].member, why ? why : "(no message)");
                free(why);
        }
        testbus_driver_error(bus, "AddMatch", "{}", IPCBUS_ERROR_INVALID_ARGS);
        testbus_driver_error(bus, "RemoveMatch", NULL, IPCBUS_ERROR_INVALID_ARGS);
        ipcbus_unref(bus);
}
END_TEST

START_TEST(test_unknown_method_object_interface)
{
        ipcbus_bus *bus = testbus_connect(testbus_current());

        testbus_driver_error(bus, "NoSuchMethod", NULL, IPCBUS_ERROR_UNKNOWN_METHOD);
        free(testbus_call_error(bus, IPCBUS_DRIVER_NAME, "/org/ipcbus/Other", IPCBUS_DRIVER_INTERFACE, "Ping", NULL,
                                IPCBUS_ERROR_UNKNOWN_OBJECT));
        free(testbus_call_error(bus, IPCBUS_DRIVER_NAME, "/", NULL, "Ping", NULL, IPCBUS_ERROR_UNKNOWN_OBJECT));
        free(testbus_call_error(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, "org.example.Nope", "Ping", NULL,
                                IPCBUS_ERROR_UNKNOWN_INTERFACE));
        /* the connection is fine afterwards */
        testbus_sync(bus);
        ipcbus_unref(bus);
}
END_TEST

START_TEST(test_invalid_args)
{
        ipcbus_bus *bus = testbus_connect(testbus_current());

        testbus_driver_error(bus, "RequestName", NULL, IPCBUS_ERROR_INVALID_ARGS);
        testbus_driver_error(bus, "RequestName", "{\"name\":5}", IPCBUS_ERROR_INVALID_ARGS);
        testbus_driver_error(bus, "RequestName", "{\"name\":\"org.example.X\",\"flags\":\"1\"}",
                             IPCBUS_ERROR_INVALID_ARGS);
        testbus_driver_error(bus, "ReleaseName", "{}", IPCBUS_ERROR_INVALID_ARGS);
        testbus_driver_error(bus, "ReleaseName", "{\"name\":true}", IPCBUS_ERROR_INVALID_ARGS);
        testbus_driver_error(bus, "ListQueuedOwners", "{}", IPCBUS_ERROR_INVALID_ARGS);
        testbus_driver_error(bus, "GetConnectionCredentials", "{\"name\":null}", IPCBUS_ERROR_INVALID_ARGS);
        testbus_sync(bus);
        ipcbus_unref(bus);
}
END_TEST

/* A broker-made error is addressed to the caller's serial, from the driver, with a message. */
START_TEST(test_driver_error_header)
{
        struct testbus *tb = testbus_current();
        struct testbus_frame f;
        int fd = testbus_raw_connect(tb);
        char *name = testbus_raw_hello(fd);
        json_object *message;

        testbus_raw_send_frame(fd,
                               "{\"type\":\"call\",\"serial\":7,\"destination\":\"org.ipcbus.Bus\","
                               "\"path\":\"/org/ipcbus/Bus\",\"member\":\"NoSuchMethod\"}",
                               NULL);
        testbus_raw_expect_reply(fd, 7, IPCBUS_ERROR_UNKNOWN_METHOD, &f);
        ck_assert_str_eq(testbus_frame_string(&f, "sender"), IPCBUS_DRIVER_NAME);
        ck_assert_str_eq(testbus_frame_string(&f, "destination"), name);
        /* the body is optional, but when present it is {"message": "<text>"} */
        if (f.b) {
                ck_assert(json_object_object_get_ex(f.b, "message", &message));
                ck_assert(json_object_is_type(message, json_type_string));
        }
        testbus_frame_deinit(&f);
        free(name);
        close(fd);
}
END_TEST

/* ---- Introspect (PROTOCOL.md 13.4) -------------------------------------------------------- */

/* The canonical text of interfaces/NAME.json, as ipcbus_interface_parse gives it (malloc'd). */
static char *shipped_description(const char *name)
{
        const char *top = getenv("IPCBUS_TEST_SRCDIR");
        ipcbus_interface *i = NULL;
        char path[4096], *text = NULL, *json;
        size_t size = 0;
        FILE *f;

        snprintf(path, sizeof(path), "%s/interfaces/%s.json", top ? top : ".", name);
        f = fopen(path, "re");
        ck_assert_msg(f, "%s: %m", path);
        ck_assert_int_ne(getdelim(&text, &size, '\0', f), -1);
        fclose(f);
        ck_assert_msg(ipcbus_interface_parse(text, &i) == 0, "%s: %s", path, ipcbus_last_error());
        json = strdup(ipcbus_interface_get_json(i));
        ipcbus_interface_unref(i);
        free(text);
        return json;
}

/*
 * Introspect at path: {"path", "interfaces", "children"}, the interfaces
 * named (NULL-terminated) each exactly as its file's canonical text, and the
 * one child (or none).
 */
static void assert_introspect(ipcbus_bus *bus, const char *path, const char *const *names, const char *child)
{
        json_object *o =
                testbus_call(bus, IPCBUS_DRIVER_NAME, path, IPCBUS_INTROSPECTABLE_INTERFACE, "Introspect", NULL);
        json_object *interfaces = testbus_json_array(o, "interfaces");
        json_object *children = testbus_json_array(o, "children");
        size_t n = 0;

        testbus_json_keys(o, "path", "interfaces", "children", NULL);
        ck_assert_str_eq(testbus_json_string(o, "path"), path);
        for (; names[n]; n++) {
                json_object *desc = json_object_array_get_idx(interfaces, n);
                char *expected = shipped_description(names[n]);
                ipcbus_interface *i = NULL;

                ck_assert_msg(desc, "%s: no description of %s", path, names[n]);
                ck_assert_str_eq(
                        json_object_to_json_string_ext(desc, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                        expected);
                /* what came parses as a description */
                ck_assert_int_eq(ipcbus_interface_parse(json_object_to_json_string(desc), &i), 0);
                ck_assert_str_eq(ipcbus_interface_get_name(i), names[n]);
                ipcbus_interface_unref(i);
                free(expected);
        }
        ck_assert_uint_eq(json_object_array_length(interfaces), n);
        ck_assert_uint_eq(json_object_array_length(children), child ? 1 : 0);
        if (child)
                ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(children, 0)), child);
        json_object_put(o);
}

START_TEST(test_introspect)
{
        static const char *const at_bus[] = {IPCBUS_DRIVER_INTERFACE, IPCBUS_INTROSPECTABLE_INTERFACE,
                                             IPCBUS_PEER_INTERFACE, NULL};
        static const char *const above[] = {IPCBUS_INTROSPECTABLE_INTERFACE, IPCBUS_PEER_INTERFACE, NULL};
        ipcbus_bus *bus = testbus_connect(testbus_current());

        assert_introspect(bus, IPCBUS_DRIVER_PATH, at_bus, NULL);
        assert_introspect(bus, "/", above, "org");
        assert_introspect(bus, "/org", above, "ipcbus");
        assert_introspect(bus, "/org/ipcbus", above, "Bus");

        /* no object elsewhere; the driver's interface only at its path */
        free(testbus_call_error(bus, IPCBUS_DRIVER_NAME, "/org/ipcbus/Bus/Sub", IPCBUS_INTROSPECTABLE_INTERFACE,
                                "Introspect", NULL, IPCBUS_ERROR_UNKNOWN_OBJECT));
        free(testbus_call_error(bus, IPCBUS_DRIVER_NAME, "/org/example", IPCBUS_INTROSPECTABLE_INTERFACE, "Introspect",
                                NULL, IPCBUS_ERROR_UNKNOWN_OBJECT));
        free(testbus_call_error(bus, IPCBUS_DRIVER_NAME, "/org", IPCBUS_DRIVER_INTERFACE, "GetId", NULL,
                                IPCBUS_ERROR_UNKNOWN_OBJECT));
        free(testbus_call_error(bus, IPCBUS_DRIVER_NAME, "/org", IPCBUS_INTROSPECTABLE_INTERFACE, "Inspect", NULL,
                                IPCBUS_ERROR_UNKNOWN_METHOD));
        free(testbus_call_error(bus, IPCBUS_DRIVER_NAME, "/", IPCBUS_PROPERTIES_INTERFACE, "GetAll", NULL,
                                IPCBUS_ERROR_UNKNOWN_INTERFACE));
        /* without interface, a call is the driver's own: Introspect is not one of its methods */
        testbus_driver_error(bus, "Introspect", NULL, IPCBUS_ERROR_UNKNOWN_METHOD);
        ipcbus_unref(bus);
}
END_TEST

/* Every method the driver's descriptions list is answered (called with {}, nothing says UnknownMethod). */
START_TEST(test_introspect_methods_answered)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *bus = testbus_connect(tb);
        json_object *o = testbus_call(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_INTROSPECTABLE_INTERFACE,
                                      "Introspect", NULL);
        json_object *interfaces = testbus_json_array(o, "interfaces");
        unsigned n = 0;

        for (size_t k = 0; k < json_object_array_length(interfaces); k++) {
                json_object *desc = json_object_array_get_idx(interfaces, k), *name, *methods;

                ck_assert(json_object_object_get_ex(desc, "interface", &name));
                ck_assert(json_object_object_get_ex(desc, "methods", &methods));
                json_object_object_foreach(methods, member, unused)
                {
                        /* a fresh connection each: BecomeMonitor makes one a monitor */
                        ipcbus_bus *caller = testbus_connect(tb);
                        ipcbus_message *reply = NULL;
                        ipcbus_error e = IPCBUS_ERROR_NULL;
                        int r;

                        (void) unused;
                        r = ipcbus_call(caller, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, json_object_get_string(name),
                                        member, "{}", 10 * 1000000ull, &reply, &e);
                        ck_assert_msg(r == 0 || r == -EREMOTEIO, "%s: %s", member, ipcbus_strerror(r));
                        ck_assert_msg(!ipcbus_error_has_name(&e, IPCBUS_ERROR_UNKNOWN_METHOD) &&
                                              !ipcbus_error_has_name(&e, IPCBUS_ERROR_UNKNOWN_INTERFACE),
                                      "%s.%s: %s", json_object_get_string(name), member, e.message);
                        ipcbus_error_free(&e);
                        ipcbus_message_unref(reply);
                        ipcbus_unref(caller);
                        n++;
                }
        }
        ck_assert_uint_eq(n, 22); /* 20 of org.ipcbus.Bus, Introspect, Peer.Ping */
        json_object_put(o);
        ipcbus_unref(bus);
}
END_TEST

static Suite *driver_suite(void)
{
        Suite *s = suite_create("bus_driver");
        TCase *tc;

        tc = testbus_tcase("hello");
        tcase_add_test(tc, test_hello_unique_names);
        tcase_add_test(tc, test_hello_reply_shape);
        tcase_add_test(tc, test_hello_name_acquired);
        tcase_add_test(tc, test_hello_twice);
        tcase_add_test(tc, test_name_owner_changed_connect_disconnect);
        suite_add_tcase(s, tc);

        tc = testbus_tcase("methods");
        tcase_add_test(tc, test_list_names);
        tcase_add_test(tc, test_list_activatable_names);
        tcase_add_test(tc, test_name_has_owner);
        tcase_add_test(tc, test_get_name_owner);
        tcase_add_test(tc, test_get_connection_credentials);
        tcase_add_test(tc, test_get_id);
        tcase_add_test(tc, test_ping);
        tcase_add_test(tc, test_add_remove_match_results);
        tcase_add_test(tc, test_unknown_method_object_interface);
        tcase_add_test(tc, test_invalid_args);
        tcase_add_test(tc, test_driver_error_header);
        suite_add_tcase(s, tc);

        tc = testbus_tcase("introspect");
        tcase_add_test(tc, test_introspect);
        tcase_add_test(tc, test_introspect_methods_answered);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return testbus_run_suite(driver_suite());
}
