/* SPDX-License-Identifier: MIT */
/*
 * Interface descriptions in libipcbus (PROTOCOL.md section 13): the shipped
 * files parse, every rule of the file format refuses with a sentence naming
 * the JSON path, values of every type are checked (big integers as strings,
 * base64, descriptor indexes, nested paths, strict and lenient), types are
 * written in their short form, and descriptions load from the directories.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libclient/bus-internal.h"
#include "libclient/iface.h"
#include "protocol/jbuf.h"
#include "tests/check-run.h"

#define NOTES                                                                                                          \
        "{\n"                                                                                                          \
        "  \"interface\": \"org.example.Notes\",\n"                                                                    \
        "  \"doc\": \"Short notes kept in memory, see https://example.org/notes.\",\n"                                 \
        "  \"x-vendor\": {\"anything\": [1, 2]},\n"                                                                    \
        "  \"methods\": {\n"                                                                                           \
        "    \"Add\":  {\"in\": {\"text\": \"string\"}, \"out\": {\"id\": \"uint\"}},\n"                               \
        "    \"List\": {\"out\": {\"notes\": {\"array\": {\"struct\": {\"id\": \"uint\", \"text\": \"string\"}}}}},\n" \
        "    \"Get\":  {\"in\": {\"id\": \"uint\"}, \"out\": {\"text\": \"string\"}, \"deprecated\": true},\n"         \
        "    \"Clear\": {\"no_reply\": true, \"x-since\": 2},\n"                                                       \
        "    \"Old\": {\"unchecked\": true}\n"                                                                         \
        "  },\n"                                                                                                       \
        "  \"signals\": {\"Changed\": {\"args\": {\"id\": \"uint\"}}},\n"                                              \
        "  \"properties\": {\"Count\": {\"type\": \"uint\", \"access\": \"read\"},\n"                                  \
        "                 \"Theme\": {\"type\": {\"optional\": \"string\"}, \"access\": \"readwrite\", "               \
        "\"changes\": \"invalidate\"}}\n"                                                                              \
        "}\n"

static ipcbus_interface *parse_ok(const char *json)
{
        ipcbus_interface *i = NULL;
        int r = ipcbus_interface_parse(json, &i);

        ck_assert_msg(r == 0, "%s: %s", json, ipcbus_last_error());
        return i;
}

/* Parse must fail with exactly this sentence. */
static void parse_fails(const char *json, const char *error)
{
        ipcbus_interface *i = NULL;

        ck_assert_int_eq(ipcbus_interface_parse(json, &i), -EINVAL);
        ck_assert_ptr_null(i);
        ck_assert_str_eq(ipcbus_last_error(), error);
}

static char *format_type(const struct iface_type *t)
{
        struct jbuf b;
        char *s;

        jbuf_init(&b);
        iface_type_format(t, &b);
        s = jbuf_steal(&b, NULL);
        ck_assert_ptr_nonnull(s);
        return s;
}

static void assert_format(const struct iface_type *t, const char *expected)
{
        char *s = format_type(t);

        ck_assert_str_eq(s, expected);
        free(s);
}

START_TEST(test_parse_notes)
{
        ipcbus_interface *i = parse_ok(NOTES);
        const struct iface_method *m;
        const struct iface_property *p;

        ck_assert_str_eq(ipcbus_interface_get_name(i), "org.example.Notes");
        ck_assert_uint_eq(i->n_methods, 5);
        m = iface_find_method(i, "Add");
        ck_assert_ptr_nonnull(m);
        ck_assert_uint_eq(m->in.n, 1);
        ck_assert_str_eq(m->in.fields[0].name, "text");
        ck_assert_int_eq(m->in.fields[0].type->kind, IFACE_STRING);
        assert_format(m->out.fields[0].type, "uint");
        m = iface_find_method(i, "List");
        ck_assert_uint_eq(m->in.n, 0);
        assert_format(m->out.fields[0].type, "array<struct{id: uint, text: string}>");
        ck_assert(iface_find_method(i, "Get")->deprecated);
        ck_assert(iface_find_method(i, "Clear")->no_reply);
        ck_assert(iface_find_method(i, "Old")->unchecked);
        ck_assert_ptr_null(iface_find_method(i, "Nope"));
        ck_assert_uint_eq(iface_find_signal(i, "Changed")->args.n, 1);
        ck_assert_ptr_null(iface_find_signal(i, "Add"));
        p = iface_find_property(i, "Count");
        ck_assert_int_eq(p->access, IFACE_ACCESS_READ);
        ck_assert_int_eq(p->changes, IFACE_CHANGES_EMIT);
        p = iface_find_property(i, "Theme");
        ck_assert_int_eq(p->access, IFACE_ACCESS_READWRITE);
        ck_assert_int_eq(p->changes, IFACE_CHANGES_INVALIDATE);
        assert_format(p->type, "optional<string>");
        /* canonical text: plain, "/" not escaped, everything kept (x- keys and doc too) */
        ck_assert_ptr_nonnull(strstr(ipcbus_interface_get_json(i), "\"doc\":\"Short notes kept in memory, see "
                                                                   "https://example.org/notes.\""));
        ck_assert_ptr_nonnull(strstr(ipcbus_interface_get_json(i), "\"x-vendor\":{\"anything\":[1,2]}"));
        ck_assert_ptr_null(strchr(ipcbus_interface_get_json(i), '\n'));
        ck_assert_ptr_eq(ipcbus_interface_ref(i), i);
        ck_assert_ptr_null(ipcbus_interface_unref(i));
        /* the canonical text parses to the same canonical text */
        {
                ipcbus_interface *again = parse_ok(ipcbus_interface_get_json(i));

                ck_assert_str_eq(ipcbus_interface_get_json(again), ipcbus_interface_get_json(i));
                ipcbus_interface_unref(again);
        }
        ipcbus_interface_unref(i);
}
END_TEST

static char *read_text(const char *path)
{
        FILE *f = fopen(path, "re");
        char *text = NULL;
        size_t size = 0;

        ck_assert_msg(f, "%s: %m", path);
        ck_assert_int_ne(getdelim(&text, &size, '\0', f), -1);
        fclose(f);
        return text;
}

static const char *srcdir(void)
{
        const char *s = getenv("IPCBUS_TEST_SRCDIR");

        return s ? s : ".";
}

/* Every file of interfaces/ parses, is named for its interface, and loads by name. */
START_TEST(test_shipped_files_parse)
{
        char dir[4096], path[4200];
        struct dirent *e;
        unsigned n = 0;
        DIR *d;

        snprintf(dir, sizeof(dir), "%s/interfaces", srcdir());
        d = opendir(dir);
        ck_assert_msg(d, "%s: %m", dir);
        ck_assert_int_eq(setenv("IPCBUS_INTERFACE_PATH", dir, 1), 0);
        while ((e = readdir(d))) {
                size_t len = strlen(e->d_name);
                ipcbus_interface *i, *loaded = NULL;
                char *text;

                if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
                        continue;
                snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
                text = read_text(path);
                i = parse_ok(text);
                ck_assert_int_eq(strncmp(e->d_name, ipcbus_interface_get_name(i), len - 5), 0);
                ck_assert_int_eq(ipcbus_interface_load(ipcbus_interface_get_name(i), &loaded), 0);
                ck_assert_str_eq(ipcbus_interface_get_json(loaded), ipcbus_interface_get_json(i));
                ipcbus_interface_unref(loaded);
                ipcbus_interface_unref(i);
                free(text);
                n++;
        }
        closedir(d);
        ck_assert_uint_eq(n, 5);
}
END_TEST

/* One method "M" whose argument "x" has the type TYPE (JSON text). */
#define ONE_ARG(type) "{\"interface\":\"t.T\",\"methods\":{\"M\":{\"in\":{\"x\":" type "}}}}"

/* Descriptions and the sentence each is refused with (NULL: it parses). */
static const struct {
        const char *json;
        const char *error;
} parse_cases[] = {
        {"", "not a JSON text: unexpected end of text"},
        {"[]", "a description is a JSON object"},
        {"{}", "missing key \"interface\""},
        {"{\"interface\":\"nodots\"}", "interface: expected an interface name (section 5 of PROTOCOL.md)"},
        {"{\"interface\":5}", "interface: expected an interface name (section 5 of PROTOCOL.md)"},
        {"{\"interface\":\"t.T\",\"colour\":1}", "colour: unknown key"},
        {"{\"interface\":\"t.T\",\"deprecated\":\"yes\"}", "deprecated: expected true or false"},
        {"{\"interface\":\"t.T\",\"doc\":5}", "doc: expected a string"},
        {"{\"interface\":\"t.T\",\"methods\":[]}", "methods: expected an object of named members"},
        {"{\"interface\":\"t.T\",\"methods\":{\"1Add\":{}}}",
         "methods.1Add: not a valid member name (section 5 of PROTOCOL.md)"},
        {"{\"interface\":\"t.T\",\"methods\":{\"Add\":5}}", "methods.Add: expected an object"},
        {"{\"interface\":\"t.T\",\"methods\":{\"Add\":{\"inn\":{}}}}", "methods.Add.inn: unknown key"},
        {"{\"interface\":\"t.T\",\"methods\":{\"Add\":{\"in\":{\"text\":\"strin\"}}}}",
         "methods.Add.in.text: unknown type 'strin'"},
        {"{\"interface\":\"t.T\",\"methods\":{\"Add\":{\"in\":[\"string\"]}}}",
         "methods.Add.in: expected an object of named types"},
        {"{\"interface\":\"t.T\",\"methods\":{\"Add\":{\"no_reply\":1}}}",
         "methods.Add.no_reply: expected true or false"},
        {"{\"interface\":\"t.T\",\"methods\":{\"Add\":{\"unchecked\":true,\"in\":{}}}}",
         "methods.Add: an unchecked method describes no \"in\" or \"out\""},
        {ONE_ARG("\"uint\"") "", NULL},
        {"{\"interface\":\"t.T\",\"methods\":{\"M\":{\"in\":{\"1x\":\"uint\"}}}}",
         "methods.M.in.1x: not a valid name ([A-Za-z_][A-Za-z0-9_]*, at most 255 bytes)"},
        {ONE_ARG("5"), "methods.M.in.x: a type is a name (\"uint\") or an object ({\"array\": \"uint\"})"},
        {ONE_ARG("{}"), "methods.M.in.x: a type object has one key of array, map, optional, struct"},
        {ONE_ARG("{\"array\":\"uint\",\"map\":\"uint\"}"),
         "methods.M.in.x: a type object has one key of array, map, optional, struct, not two"},
        {ONE_ARG("{\"arrray\":\"uint\"}"), "methods.M.in.x: unknown type 'arrray'"},
        {ONE_ARG("{\"array\":{\"struct\":{\"id\":\"uitn\"}}}"), "methods.M.in.x.array.struct.id: unknown type 'uitn'"},
        {ONE_ARG("{\"struct\":[\"uint\"]}"), "methods.M.in.x.struct: expected an object of named types"},
        {ONE_ARG("{\"map\":\"int\",\"doc\":3}"), "methods.M.in.x.doc: expected a string"},
        {"{\"interface\":\"t.T\",\"signals\":{\"Changed\":{\"arg\":{}}}}", "signals.Changed.arg: unknown key"},
        {"{\"interface\":\"t.T\",\"signals\":{\"Changed\":{\"args\":{\"id\":\"unit\"}}}}",
         "signals.Changed.args.id: unknown type 'unit'"},
        {"{\"interface\":\"t.T\",\"properties\":{\"P\":{\"access\":\"read\"}}}", "properties.P: missing key \"type\""},
        {"{\"interface\":\"t.T\",\"properties\":{\"P\":{\"type\":\"uint\"}}}", "properties.P: missing key \"access\""},
        {"{\"interface\":\"t.T\",\"properties\":{\"P\":{\"type\":\"uint\",\"access\":\"rw\"}}}",
         "properties.P.access: expected \"read\", \"write\" or \"readwrite\""},
        {"{\"interface\":\"t.T\",\"properties\":{\"P\":{\"type\":\"uint\",\"access\":\"read\","
         "\"changes\":\"never\"}}}",
         "properties.P.changes: expected \"emit\", \"invalidate\", \"const\" or \"none\""},
        {"{\"interface\":\"t.T\",\"properties\":{\"P\":{\"type\":\"uint\",\"access\":\"read\",\"kind\":1}}}",
         "properties.P.kind: unknown key"},
        /* extensions are ignored everywhere */
        {"{\"interface\":\"t.T\",\"x-a\":1,\"methods\":{\"x-b\":1,\"M\":{\"x-c\":1,\"in\":{\"x-d\":1,"
         "\"v\":{\"array\":\"uint\",\"x-e\":1,\"doc\":\"d\"}}}},"
         "\"properties\":{\"P\":{\"type\":\"uint\",\"access\":\"write\",\"x-f\":[]}}}",
         NULL},
};

START_TEST(test_parse_errors)
{
        for (size_t k = 0; k < sizeof(parse_cases) / sizeof(parse_cases[0]); k++) {
                if (parse_cases[k].error)
                        parse_fails(parse_cases[k].json, parse_cases[k].error);
                else
                        ipcbus_interface_unref(parse_ok(parse_cases[k].json));
        }
        ck_assert_int_eq(ipcbus_interface_parse(NULL, &(ipcbus_interface *){NULL}), -EINVAL);
        /* json-c's words for what follows the value */
        ck_assert_int_eq(ipcbus_interface_parse("{} x", &(ipcbus_interface *){NULL}), -EINVAL);
        ck_assert_int_eq(strncmp(ipcbus_last_error(), "not a JSON text: ", 17), 0);
}
END_TEST

/* The type of argument x of a one-argument description. */
static ipcbus_interface *type_of(const char *type_json, const struct iface_type **ret)
{
        char *text;
        ipcbus_interface *i;

        ck_assert_int_ge(asprintf(&text, ONE_ARG("%s"), type_json), 0);
        i = parse_ok(text);
        free(text);
        *ret = iface_find_method(i, "M")->in.fields[0].type;
        return i;
}

/*
 * Check the JSON text value against type_json (named `where`); NULL error:
 * it must pass; else it must fail with that sentence.
 */
static void check(const char *type_json, const char *value, const char *where, bool strict, unsigned n_fds,
                  const char *error)
{
        const struct iface_type *t;
        ipcbus_interface *i = type_of(type_json, &t);
        json_object *v = json_tokener_parse(value);
        char err[512] = "";
        int r;

        ck_assert_msg(v || strcmp(value, "null") == 0, "bad test value %s", value);
        r = iface_check_value(t, v, where, strict, n_fds, err, sizeof(err));
        if (error) {
                ck_assert_msg(r == -EBADMSG, "%s as %s: passed", value, type_json);
                ck_assert_str_eq(err, error);
        } else {
                ck_assert_msg(r == 0, "%s as %s: %s", value, type_json, err);
        }
        json_object_put(v);
        ipcbus_interface_unref(i);
}

#define PASS(type, value) check(type, value, "x", false, 0, NULL)
#define FAIL(type, value, error) check(type, value, "x", false, 0, error)

START_TEST(test_check_scalars)
{
        static const struct {
                const char *type, *value;
                unsigned n_fds;
                const char *error; /* NULL: it passes */
        } cases[] = {
                {"\"bool\"", "true", 0, NULL},
                {"\"bool\"", "1", 0, "argument 'x': expected bool, got integer"},
                {"\"bool\"", "null", 0, "argument 'x': expected bool, got null"},

                {"\"int\"", "-5", 0, NULL},
                {"\"int\"", "9007199254740993", 0, NULL},
                {"\"int\"", "\"9223372036854775807\"", 0, NULL},
                {"\"int\"", "\"-9223372036854775808\"", 0, NULL},
                {"\"int\"", "\"9223372036854775808\"", 0, "argument 'x': out of range for int"},
                {"\"int\"", "\"-9223372036854775809\"", 0, "argument 'x': out of range for int"},
                {"\"int\"", "9223372036854775808", 0, "argument 'x': out of range for int"},
                {"\"int\"", "3.0", 0, "argument 'x': expected int, got number"},
                {"\"int\"", "\"12a\"", 0, "argument 'x': expected int, got string (not a decimal integer)"},
                {"\"int\"", "\"\"", 0, "argument 'x': expected int, got string (not a decimal integer)"},
                {"\"int\"", "\"+1\"", 0, "argument 'x': expected int, got string (not a decimal integer)"},
                {"\"int\"", "true", 0, "argument 'x': expected int, got boolean"},

                {"\"uint\"", "0", 0, NULL},
                {"\"uint\"", "18446744073709551615", 0, NULL},
                {"\"uint\"", "\"18446744073709551615\"", 0, NULL},
                {"\"uint\"", "\"18446744073709551616\"", 0, "argument 'x': out of range for uint"},
                {"\"uint\"", "-1", 0, "argument 'x': out of range for uint"},
                {"\"uint\"", "\"-1\"", 0, "argument 'x': out of range for uint"},
                {"\"uint\"", "1.5", 0, "argument 'x': expected uint, got number"},

                {"\"double\"", "1.5", 0, NULL},
                {"\"double\"", "2", 0, NULL},
                {"\"double\"", "\"1.5\"", 0, "argument 'x': expected double, got string"},

                {"\"string\"", "\"a\"", 0, NULL},
                {"\"string\"", "null", 0, "argument 'x': expected string, got null"},
                {"\"string\"", "[]", 0, "argument 'x': expected string, got array"},

                {"\"bytes\"", "\"aGVsbG8=\"", 0, NULL},
                {"\"bytes\"", "\"aGk=\"", 0, NULL},
                {"\"bytes\"", "\"\"", 0, NULL},
                {"\"bytes\"", "\"+/+/\"", 0, NULL},
                {"\"bytes\"", "\"aGVsbG8\"", 0, "argument 'x': expected bytes, got string (not base64)"},
                {"\"bytes\"", "\"aGV*bG8=\"", 0, "argument 'x': expected bytes, got string (not base64)"},
                {"\"bytes\"", "\"a===\"", 0, "argument 'x': expected bytes, got string (not base64)"},
                {"\"bytes\"", "\"aG-_\"", 0, "argument 'x': expected bytes, got string (not base64)"},
                {"\"bytes\"", "5", 0, "argument 'x': expected bytes, got integer"},

                {"\"fd\"", "0", 1, NULL},
                {"\"fd\"", "2", 3, NULL},
                {"\"fd\"", "1", 1, "argument 'x': descriptor index 1 is out of range (the message carries 1)"},
                {"\"fd\"", "-1", 1, "argument 'x': descriptor index -1 is out of range (the message carries 1)"},
                {"\"fd\"", "0", 0, "argument 'x': descriptor index 0 is out of range (the message carries 0)"},
                {"\"fd\"", "\"0\"", 1, "argument 'x': expected fd, got string"},

                {"\"any\"", "null", 0, NULL},
                {"\"any\"", "{\"a\":[1,\"b\"]}", 0, NULL},
        };

        for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
                check(cases[k].type, cases[k].value, "x", false, cases[k].n_fds, cases[k].error);
}
END_TEST

/* bytes written as {"$bytes":[OFFSET,LENGTH]} (PROTOCOL.md 14.5): only in a body with a binary area, within it. */
START_TEST(test_check_bytes_refs)
{
        static const struct {
                const char *value;
                int64_t binary_len;
                const char *error; /* NULL: it passes */
        } cases[] = {
                {"{\"$bytes\":[2,8]}", 10, NULL},
                {"{\"$bytes\":[10,0]}", 10, NULL},
                {"{\"$bytes\":[0,0]}", 0, NULL},
                {"{\"$bytes\":[4,8]}", 10, "argument 'x': bytes 4+8 beyond the binary area (10 bytes)"},
                {"{\"$bytes\":[11,0]}", 10, "argument 'x': bytes 11+0 beyond the binary area (10 bytes)"},
                {"{\"$bytes\":[0,0]}", IFACE_NO_BINARY,
                 "argument 'x': expected bytes, got a $bytes reference in a body that came in its frame"},
                {"{\"$bytes\":[0]}", 10, "argument 'x': expected bytes, got object (not {\"$bytes\":[offset,length]})"},
                {"{\"$bytes\":[0,1],\"more\":1}", 10,
                 "argument 'x': expected bytes, got object (not {\"$bytes\":[offset,length]})"},
                {"{}", 10, "argument 'x': expected bytes, got object (not {\"$bytes\":[offset,length]})"},
                {"\"aGk=\"", 10, NULL},
        };
        const struct iface_type *t;
        ipcbus_interface *i = type_of("\"bytes\"", &t);

        for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
                const struct iface_refs refs = {.n_fds = 0, .binary_len = cases[k].binary_len};
                json_object *v = json_tokener_parse(cases[k].value);
                char err[512] = "";
                int r = iface_check_value_refs(t, v, "x", false, &refs, err, sizeof(err));

                if (cases[k].error) {
                        ck_assert_msg(r == -EBADMSG, "%s: passed", cases[k].value);
                        ck_assert_str_eq(err, cases[k].error);
                } else {
                        ck_assert_msg(r == 0, "%s: %s", cases[k].value, err);
                }
                json_object_put(v);
        }
        /* the checks that know of no binary area refuse the form */
        FAIL("\"bytes\"", "{\"$bytes\":[0,0]}",
             "argument 'x': expected bytes, got a $bytes reference in a body that came in its frame");
        ipcbus_interface_unref(i);
}
END_TEST

START_TEST(test_check_composites)
{
        const char *notes = "{\"array\":{\"struct\":{\"id\":\"uint\",\"text\":\"string\"}}}";

        PASS("{\"optional\":\"uint\"}", "null");
        PASS("{\"optional\":\"uint\"}", "5");
        FAIL("{\"optional\":\"uint\"}", "true", "argument 'x': expected uint, got boolean");

        check(notes, "[{\"id\":1,\"text\":\"a\"},{\"id\":\"2\",\"text\":\"b\"}]", "notes", false, 0, NULL);
        check(notes, "[]", "notes", false, 0, NULL);
        check(notes, "[{\"id\":1,\"text\":\"a\"},{\"id\":2,\"text\":\"b\"},{\"id\":\"z\",\"text\":\"c\"}]", "notes",
              false, 0, "argument 'notes[2].id': expected uint, got string (not a decimal integer)");
        check(notes, "[{\"id\":1}]", "notes", false, 0, "argument 'notes[0].text': missing (expected string)");
        check(notes, "{}", "notes", false, 0,
              "argument 'notes': expected array<struct{id: uint, text: string}>, got object");
        check(notes, "[5]", "notes", false, 0,
              "argument 'notes[0]': expected struct{id: uint, text: string}, got integer");

        check("{\"map\":\"string\"}", "{\"theme\":\"dark\",\"font\":\"mono\"}", "settings", false, 0, NULL);
        check("{\"map\":\"string\"}", "{\"theme\":5}", "settings", false, 0,
              "argument 'settings.theme': expected string, got integer");
        check("{\"map\":\"string\"}", "[]", "settings", false, 0,
              "argument 'settings': expected map<string>, got array");
        check("{\"map\":{\"array\":\"fd\"}}", "{\"a\":[0,1]}", "fds", false, 2, NULL);
        check("{\"map\":{\"array\":\"fd\"}}", "{\"a\":[0,2]}", "fds", false, 2,
              "argument 'fds.a[1]': descriptor index 2 is out of range (the message carries 2)");

        /* struct fields: optional ones may be absent or null; unknown ones ignored unless strict */
        check("{\"struct\":{\"id\":\"uint\",\"note\":{\"optional\":\"string\"}}}", "{\"id\":1}", "p", false, 0, NULL);
        check("{\"struct\":{\"id\":\"uint\",\"note\":{\"optional\":\"string\"}}}", "{\"id\":1,\"note\":null}", "p",
              true, 0, NULL);
        check("{\"struct\":{\"id\":\"uint\"}}", "{\"id\":1,\"extra\":2}", "p", false, 0, NULL);
        check("{\"struct\":{\"id\":\"uint\"}}", "{\"id\":1,\"extra\":2}", "p", true, 0,
              "argument 'p.extra': not in the description");
        check("{\"array\":{\"struct\":{\"id\":\"uint\"}}}", "[{\"id\":1},{\"id\":2,\"x\":0}]", "l", true, 0,
              "argument 'l[1].x': not in the description");
        /* a map's keys are its own, strict or not */
        check("{\"map\":\"uint\"}", "{\"any\":1,\"key\":2}", "m", true, 0, NULL);
}
END_TEST

static const struct iface_args *notes_args(ipcbus_interface *i, const char *method, bool out)
{
        const struct iface_method *m = iface_find_method(i, method);

        ck_assert_ptr_nonnull(m);
        return out ? &m->out : &m->in;
}

static int check_body(const struct iface_args *a, const char *body, bool strict, char *err, size_t size)
{
        json_object *o = body ? json_tokener_parse(body) : NULL;
        int r;

        err[0] = '\0';
        r = iface_check_args(a, o, strict, 0, err, size);
        json_object_put(o);
        return r;
}

START_TEST(test_check_args)
{
        ipcbus_interface *i = parse_ok(NOTES);
        char err[256];

        ck_assert_int_eq(check_body(notes_args(i, "Add", false), "{\"text\":\"hi\"}", true, err, sizeof(err)), 0);
        /* a newer caller's extra argument: ignored on receipt, refused when sending */
        ck_assert_int_eq(
                check_body(notes_args(i, "Add", false), "{\"text\":\"hi\",\"tags\":[]}", false, err, sizeof(err)), 0);
        ck_assert_int_eq(
                check_body(notes_args(i, "Add", false), "{\"text\":\"hi\",\"tags\":[]}", true, err, sizeof(err)),
                -EBADMSG);
        ck_assert_str_eq(err, "argument 'tags': not in the description");
        ck_assert_int_eq(check_body(notes_args(i, "Add", false), NULL, false, err, sizeof(err)), -EBADMSG);
        ck_assert_str_eq(err, "argument 'text': missing (expected string)");
        ck_assert_int_eq(check_body(notes_args(i, "Add", false), "[]", false, err, sizeof(err)), -EBADMSG);
        ck_assert_str_eq(err, "the body is not a JSON object but array");
        ck_assert_int_eq(check_body(notes_args(i, "List", false), NULL, true, err, sizeof(err)), 0);
        ck_assert_int_eq(check_body(notes_args(i, "List", true), "{\"notes\":[{\"id\":1,\"text\":\"a\"}]}", true, err,
                                    sizeof(err)),
                         0);
        /* a sentence cut to the buffer stays a string */
        ck_assert_int_eq(check_body(notes_args(i, "Add", false), "{}", false, err, 12), -EBADMSG);
        ck_assert_str_eq(err, "argument 't");
        ipcbus_interface_unref(i);
}
END_TEST

START_TEST(test_type_format)
{
        static const char *const cases[][2] = {
                {"\"uint\"", "uint"},
                {"\"any\"", "any"},
                {"{\"map\":\"string\"}", "map<string>"},
                {"{\"optional\":\"bytes\"}", "optional<bytes>"},
                {"{\"map\":{\"array\":\"fd\"}}", "map<array<fd>>"},
                {"{\"struct\":{}}", "struct{}"},
                {"{\"array\":{\"struct\":{\"id\":\"uint\",\"text\":\"string\"}}}",
                 "array<struct{id: uint, text: string}>"},
                {"{\"struct\":{\"p\":{\"struct\":{\"x\":\"double\",\"y\":\"double\"}},\"ok\":\"bool\",\"n\":\"int\"}}",
                 "struct{p: struct{x: double, y: double}, ok: bool, n: int}"},
        };

        for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
                const struct iface_type *t;
                ipcbus_interface *i = type_of(cases[k][0], &t);

                assert_format(t, cases[k][1]);
                ipcbus_interface_unref(i);
        }
}
END_TEST

START_TEST(test_interface_check)
{
        ipcbus_interface *i = parse_ok(NOTES);
        ipcbus_error e = IPCBUS_ERROR_NULL;

        ck_assert_int_eq(ipcbus_interface_check(i, IPCBUS_MESSAGE_CALL, "Add", "{\"text\":\"hi\"}", &e), 0);
        ck_assert(!ipcbus_error_is_set(&e));
        ck_assert_int_eq(ipcbus_interface_check(i, IPCBUS_MESSAGE_CALL, "Add", "{\"text\":\"hi\",\"new\":1}", NULL), 0);
        ck_assert_int_eq(ipcbus_interface_check(i, IPCBUS_MESSAGE_CALL, "Add", "{\"text\":5}", &e), -EBADMSG);
        ck_assert_str_eq(e.name, IPCBUS_ERROR_INVALID_ARGS);
        ck_assert_str_eq(e.message, "argument 'text': expected string, got integer");
        ck_assert_str_eq(ipcbus_last_error(), "argument 'text': expected string, got integer");
        ipcbus_error_free(&e);
        ck_assert_int_eq(
                ipcbus_interface_check(i, IPCBUS_MESSAGE_RETURN, "Add", "{\"id\":\"18446744073709551615\"}", NULL), 0);
        /* beyond 64 bits is out of range, not the nearest bound */
        ck_assert_int_eq(ipcbus_interface_check(i, IPCBUS_MESSAGE_RETURN, "Add", "{\"id\":18446744073709551616}", &e),
                         -EBADMSG);
        ck_assert_str_eq(e.message, "argument 'id': expected uint, got number");
        ipcbus_error_free(&e);
        ck_assert_int_eq(ipcbus_interface_check(i, IPCBUS_MESSAGE_RETURN, "Add", "{\"id\":18446744073709551615}", NULL),
                         0);
        ck_assert_int_eq(ipcbus_interface_check(i, IPCBUS_MESSAGE_RETURN, "Add", "{}", &e), -EBADMSG);
        ck_assert_str_eq(e.message, "argument 'id': missing (expected uint)");
        ipcbus_error_free(&e);
        ck_assert_int_eq(ipcbus_interface_check(i, IPCBUS_MESSAGE_SIGNAL, "Changed", NULL, &e), -EBADMSG);
        ck_assert_str_eq(e.message, "argument 'id': missing (expected uint)");
        ipcbus_error_free(&e);
        ck_assert_int_eq(ipcbus_interface_check(i, IPCBUS_MESSAGE_CALL, "List", NULL, NULL), 0);
        ck_assert_int_eq(ipcbus_interface_check(i, IPCBUS_MESSAGE_CALL, "List", "", NULL), 0);
        /* an unchecked method takes anything */
        ck_assert_int_eq(ipcbus_interface_check(i, IPCBUS_MESSAGE_CALL, "Old", "{\"a\":1}", NULL), 0);
        ck_assert_int_eq(ipcbus_interface_check(i, IPCBUS_MESSAGE_CALL, "Nope", NULL, &e), -ENOENT);
        ck_assert(!ipcbus_error_is_set(&e));
        ck_assert_str_eq(ipcbus_last_error(), "interface org.example.Notes has no method 'Nope'");
        ck_assert_int_eq(ipcbus_interface_check(i, IPCBUS_MESSAGE_SIGNAL, "Add", NULL, NULL), -ENOENT);
        ck_assert_int_eq(ipcbus_interface_check(i, IPCBUS_MESSAGE_ERROR, "Add", NULL, NULL), -EINVAL);
        ck_assert_int_eq(ipcbus_interface_check(i, IPCBUS_MESSAGE_CALL, "Add", "{\"text\":", NULL), -EINVAL);
        ipcbus_interface_unref(i);
}
END_TEST

static void write_file(const char *dir, const char *name, const char *text)
{
        char path[4200];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        fputs(text, f);
        fclose(f);
}

/* Integer literals beyond 64 bits get ".0" before json-c sees them; nothing else changes. */
START_TEST(test_json_widen)
{
        static const char in[] = "{\"a\":18446744073709551616,\"s\":\"99999999999999999999\\\"1\",\"b\":[-9223372036854775809,"
                                 "1e30,-9223372036854775808,18446744073709551615,123456789012345678901234567890.5]}";
        static const char out[] = "{\"a\":18446744073709551616.0,\"s\":\"99999999999999999999\\\"1\",\"b\":["
                                  "-9223372036854775809.0,1e30,-9223372036854775808,18446744073709551615,"
                                  "123456789012345678901234567890.5]}";
        static const char edges[] = "{\"a\":[1,-0,18446744073709551615,-9223372036854775808,1.5e300,\"1e99999\"]}";
        char *w = NULL;
        size_t len = 0;

        ck_assert_int_eq(value_json_widen(in, strlen(in), &w, &len), 1);
        ck_assert_str_eq(w, out);
        ck_assert_uint_eq(len, strlen(out));
        free(w);
        w = (char *) "unchanged";
        ck_assert_int_eq(value_json_widen(edges, strlen(edges), &w, &len), 0);
        ck_assert_str_eq(w, "unchanged"); /* nothing allocated, nothing written */
        /* digits inside long strings (skipped a block at a time) are not numbers */
        w = (char *) "unchanged";
        ck_assert_int_eq(value_json_widen("{\"s\":\"........................99999999999999999999999\\\"x\"}", 58, &w,
                                          &len),
                         0);
        ck_assert_str_eq(w, "unchanged");
}
END_TEST

/* base64 of every length round-trips and reads the text as written; a bad character anywhere is refused. */
START_TEST(test_base64)
{
        uint8_t in[64], out[64];
        struct jbuf b;
        size_t n;

        for (size_t i = 0; i < sizeof(in); i++)
                in[i] = (uint8_t) (i * 37 + 11);
        jbuf_init(&b);
        for (size_t len = 0; len <= sizeof(in); len++) {
                jbuf_reset(&b);
                value_base64_put(&b, in, len);
                ck_assert(!b.failed);
                ck_assert_uint_eq(b.len, (len + 2) / 3 * 4 + 2);
                ck_assert(b.data[0] == '"' && b.data[b.len - 1] == '"');
                ck_assert_int_eq(value_base64_decode(b.data + 1, b.len - 2, out, &n), 0);
                ck_assert_uint_eq(n, len);
                ck_assert_mem_eq(out, in, len);
                for (size_t k = 1; k + 1 < b.len && len > 0; k++) {
                        char saved = b.data[k];

                        if (saved == '=')
                                continue;
                        b.data[k] = '*';
                        ck_assert_int_eq(value_base64_decode(b.data + 1, b.len - 2, out, &n), -EBADMSG);
                        b.data[k] = saved;
                }
        }
        jbuf_reset(&b);
        value_base64_put(&b, (const uint8_t *) "\xfb\xff\xbf", 3);
        ck_assert_str_eq(b.data, "\"+/+/\"");
        ck_assert_int_eq(value_base64_decode("YQ==", 4, out, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(value_base64_decode("Y===", 4, out, &n), -EBADMSG);
        ck_assert_int_eq(value_base64_decode("YQ=", 3, out, &n), -EBADMSG);
        ck_assert_int_eq(value_base64_decode("YQ==YQ==", 8, out, &n), -EBADMSG);
        jbuf_deinit(&b);
}
END_TEST

START_TEST(test_load)
{
        char a[] = "/tmp/check-iface-a-XXXXXX", b[] = "/tmp/check-iface-b-XXXXXX", path[256];
        ipcbus_interface *i = NULL;

        ck_assert_ptr_nonnull(mkdtemp(a));
        ck_assert_ptr_nonnull(mkdtemp(b));
        write_file(a, "org.example.Notes.json", NOTES);
        write_file(b, "org.example.Notes.json", "{\"interface\":\"org.example.Notes\",\"doc\":\"second\"}");
        write_file(b, "org.example.Other.json", "{\"interface\":\"org.example.Else\"}");
        write_file(b, "org.example.Broken.json",
                   "{\"interface\":\"org.example.Broken\",\"methods\":{\"M\":{\"in\":5}}}");

        /* the first directory that has it wins; empty elements and missing directories are skipped */
        snprintf(path, sizeof(path), "::/nonexistent:%s:%s", a, b);
        ck_assert_int_eq(setenv("IPCBUS_INTERFACE_PATH", path, 1), 0);
        ck_assert_int_eq(ipcbus_interface_load("org.example.Notes", &i), 0);
        ck_assert_ptr_nonnull(iface_find_method(i, "Add"));
        i = ipcbus_interface_unref(i);
        snprintf(path, sizeof(path), "%s:%s", b, a);
        ck_assert_int_eq(setenv("IPCBUS_INTERFACE_PATH", path, 1), 0);
        ck_assert_int_eq(ipcbus_interface_load("org.example.Notes", &i), 0);
        ck_assert_ptr_null(iface_find_method(i, "Add"));
        i = ipcbus_interface_unref(i);

        ck_assert_int_eq(ipcbus_interface_load("org.example.Other", &i), -EINVAL);
        ck_assert_ptr_null(i);
        ck_assert_ptr_nonnull(strstr(ipcbus_last_error(), "org.example.Other.json: describes org.example.Else, not "
                                                          "org.example.Other"));
        ck_assert_int_eq(ipcbus_interface_load("org.example.Broken", &i), -EINVAL);
        ck_assert_ptr_nonnull(strstr(ipcbus_last_error(),
                                     "org.example.Broken.json: methods.M.in: expected an object of named types"));
        ck_assert_int_eq(ipcbus_interface_load("org.example.Missing", &i), -ENOENT);
        ck_assert_ptr_nonnull(
                strstr(ipcbus_last_error(), "interface org.example.Missing: no org.example.Missing.json"));
        ck_assert_int_eq(ipcbus_interface_load("../etc/passwd", &i), -EINVAL);
        ck_assert_int_eq(ipcbus_interface_load("nodots", &i), -EINVAL);
        ck_assert_ptr_null(i);

        unsetenv("IPCBUS_INTERFACE_PATH");
        snprintf(path, sizeof(path), "%s/org.example.Notes.json", a);
        unlink(path);
        snprintf(path, sizeof(path), "%s/org.example.Notes.json", b);
        unlink(path);
        snprintf(path, sizeof(path), "%s/org.example.Other.json", b);
        unlink(path);
        snprintf(path, sizeof(path), "%s/org.example.Broken.json", b);
        unlink(path);
        rmdir(a);
        rmdir(b);
}
END_TEST

static Suite *iface_suite(void)
{
        Suite *s = suite_create("client_iface");
        TCase *tc = tcase_create("parse");

        tcase_add_test(tc, test_parse_notes);
        tcase_add_test(tc, test_shipped_files_parse);
        tcase_add_test(tc, test_parse_errors);
        tcase_add_test(tc, test_load);
        suite_add_tcase(s, tc);
        tc = tcase_create("check");
        tcase_add_test(tc, test_check_scalars);
        tcase_add_test(tc, test_check_bytes_refs);
        tcase_add_test(tc, test_check_composites);
        tcase_add_test(tc, test_check_args);
        tcase_add_test(tc, test_type_format);
        tcase_add_test(tc, test_interface_check);
        tcase_add_test(tc, test_json_widen);
        tcase_add_test(tc, test_base64);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return check_run(iface_suite());
}
