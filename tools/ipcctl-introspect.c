/* SPDX-License-Identifier: MIT */
/*
 * ipcctl's commands over the standard interfaces (PROTOCOL.md section 13.4):
 * introspect and tree (org.ipcbus.Introspectable), get-property and
 * set-property (org.ipcbus.Properties).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/ipcctl.h"

/* A walk of tree stops after this many objects (a service could make up paths forever). */
#define TREE_NODES_MAX 65536

/* Introspect path at name. Returns as ctl_call_json. */
static int introspect_call(struct ctl *c, const char *name, const char *path, struct json_object **ret,
                           ipcbus_error *e)
{
        return ctl_call_json(c, name, path, IPCBUS_INTROSPECTABLE_INTERFACE, "Introspect", NULL, ret, e);
}

/* ---- short forms of types (the brief's "array<T>", "struct{id: uint}") ---------- */

static void put_args(FILE *f, struct json_object *args);

static void put_type(FILE *f, struct json_object *type)
{
        if (json_object_is_type(type, json_type_string)) {
                fputs(json_object_get_string(type), f);
                return;
        }
        if (!json_object_is_type(type, json_type_object) || json_object_object_length(type) != 1) {
                fputc('?', f);
                return;
        }
        json_object_object_foreach(type, kind, inner)
        {
                if (strcmp(kind, "struct") == 0) {
                        fputs("struct{", f);
                        put_args(f, inner);
                        fputc('}', f);
                } else {
                        fprintf(f, "%s<", kind);
                        put_type(f, inner);
                        fputc('>', f);
                }
        }
}

/* "text: string, id: uint" for an object of named types. */
static void put_args(FILE *f, struct json_object *args)
{
        bool first = true;

        if (!json_object_is_type(args, json_type_object))
                return;
        json_object_object_foreach(args, name, type)
        {
                fprintf(f, "%s%s: ", first ? "" : ", ", name);
                put_type(f, type);
                first = false;
        }
}

/* The short form of a type (args: an object of named arguments), or "-" for none; caller frees. */
static char *short_form(struct json_object *v, bool args)
{
        char *text = NULL;
        size_t len = 0;
        FILE *f;

        if (!v || (args && json_object_object_length(v) == 0))
                return strdup("-");
        f = open_memstream(&text, &len);
        if (!f)
                return NULL;
        if (args)
                put_args(f, v);
        else
                put_type(f, v);
        if (fclose(f) != 0) {
                free(text);
                return NULL;
        }
        return text;
}

/* ---- introspect ---------------------------------------------------------- */

struct row {
        char *col[5]; /* NAME TYPE SIGNATURE RESULT/VALUE FLAGS */
};

struct table {
        struct row *rows;
        size_t n;
        bool oom;
};

static void table_free(struct table *t)
{
        for (size_t i = 0; i < t->n; i++)
                for (size_t j = 0; j < 5; j++)
                        free(t->rows[i].col[j]);
        free(t->rows);
}

/* Add a row; takes the (malloc'd) texts; NULL or "" stands for "-". */
static void table_add(struct table *t, char *name, const char *type, char *sig, char *value, char *flags)
{
        char *col[5] = {name, strdup(type), sig, value, flags};
        struct row *grown = realloc(t->rows, (t->n + 1) * sizeof(*t->rows));

        for (size_t j = 0; j < 5; j++)
                if (!col[j] || col[j][0] == '\0') {
                        free(col[j]);
                        col[j] = strdup("-");
                }
        if (!grown) {
                for (size_t j = 0; j < 5; j++)
                        free(col[j]);
                t->oom = true;
                return;
        }
        t->rows = grown;
        memcpy(t->rows[t->n++].col, col, sizeof(col));
        for (size_t j = 0; j < 5; j++)
                t->oom |= !col[j];
}

/* Print s in a column of `width`, cut to max columns with "…" when longer (max 0: never). */
static void put_cell(const char *s, int width, int max)
{
        int len = (int) strlen(s);

        if (max > 0 && len > max) {
                printf("%.*s… ", max - 1, s);
                len = max;
        } else
                printf("%s ", s);
        printf("%*s", width > len ? width - len : 0, "");
}

/* The table, as busctl prints it: on a terminal, without --full, long
 * signatures and values are shortened to CELL_MAX columns. */
#define CELL_MAX 60

static void table_print(const struct table *t, bool full)
{
        static const char *const header[5] = {"NAME", "TYPE", "SIGNATURE", "RESULT/VALUE", "FLAGS"};
        int max = full || !isatty(STDOUT_FILENO) ? 0 : CELL_MAX;
        int width[5];

        for (size_t j = 0; j < 5; j++) {
                width[j] = (int) strlen(header[j]);
                for (size_t i = 0; i < t->n; i++)
                        if ((int) strlen(t->rows[i].col[j]) > width[j])
                                width[j] = (int) strlen(t->rows[i].col[j]);
                if (max > 0 && width[j] > max)
                        width[j] = max;
        }
        for (size_t i = 0; i <= t->n; i++) {
                const char *const *col = i == 0 ? header : (const char *const *) t->rows[i - 1].col;

                for (size_t j = 0; j < 4; j++)
                        put_cell(col[j], width[j], j >= 2 ? max : 0);
                printf("%s\n", col[4]);
        }
}

static char *member_name(const char *member)
{
        char *s = malloc(strlen(member) + 2);

        if (s) {
                s[0] = '.';
                strcpy(s + 1, member);
        }
        return s;
}

static bool json_true(struct json_object *obj, const char *key)
{
        struct json_object *v = ctl_json_get(obj, key, json_type_boolean);

        return v && json_object_get_boolean(v);
}

/* Space-separated flags: each word whose condition holds; caller frees. */
static char *flags_join(const char *const *words, const bool *on, size_t n)
{
        char buf[256] = "";

        for (size_t i = 0; i < n; i++)
                if (on[i] && words[i]) {
                        if (buf[0])
                                strcat(buf, " ");
                        strncat(buf, words[i], sizeof(buf) - strlen(buf) - 1);
                }
        return strdup(buf);
}

static void rows_methods(struct table *t, struct json_object *methods)
{
        static const char *const words[] = {"unchecked", "no-reply", "deprecated"};

        json_object_object_foreach(methods, member, m)
        {
                bool on[] = {json_true(m, "unchecked"), json_true(m, "no_reply"), json_true(m, "deprecated")};

                table_add(t, member_name(member), "method", short_form(ctl_json_get(m, "in", json_type_object), true),
                          short_form(ctl_json_get(m, "out", json_type_object), true), flags_join(words, on, 3));
        }
}

static void rows_properties(struct table *t, struct json_object *properties, struct json_object *values)
{
        json_object_object_foreach(properties, member, p)
        {
                struct json_object *access = ctl_json_get(p, "access", json_type_string);
                struct json_object *changes = ctl_json_get(p, "changes", json_type_string), *v;
                const char *ch = changes ? json_object_get_string(changes) : "emit";
                const char *const words[] = {
                        access ? json_object_get_string(access) : NULL,
                        strcmp(ch, "emit") == 0         ? "emits-change"
                        : strcmp(ch, "invalidate") == 0 ? "invalidates"
                        : strcmp(ch, "const") == 0      ? "const"
                                                        : NULL,
                        "deprecated",
                };
                bool on[] = {true, true, json_true(p, "deprecated")};
                bool has_value = values && json_object_object_get_ex(values, member, &v);

                table_add(t, member_name(member), "property", short_form(json_object_object_get(p, "type"), false),
                          has_value ? strdup(format_json_string(v, false)) : NULL, flags_join(words, on, 3));
        }
}

static void rows_signals(struct table *t, struct json_object *signals)
{
        static const char *const words[] = {"deprecated"};

        json_object_object_foreach(signals, member, s)
        {
                bool on[] = {json_true(s, "deprecated")};

                table_add(t, member_name(member), "signal", short_form(ctl_json_get(s, "args", json_type_object), true),
                          NULL, flags_join(words, on, 1));
        }
}

static void rows_interface(struct table *t, struct json_object *desc, struct json_object *values)
{
        static const char *const words[] = {"deprecated"};
        struct json_object *v;
        bool on[] = {json_true(desc, "deprecated")};

        table_add(t, strdup(json_object_get_string(json_object_object_get(desc, "interface"))), "interface", NULL, NULL,
                  flags_join(words, on, 1));
        if ((v = ctl_json_get(desc, "methods", json_type_object)))
                rows_methods(t, v);
        if ((v = ctl_json_get(desc, "properties", json_type_object)))
                rows_properties(t, v, values);
        if ((v = ctl_json_get(desc, "signals", json_type_object)))
                rows_signals(t, v);
}

/* Whether the description has a property one may read. */
static bool has_readable_property(struct json_object *desc)
{
        struct json_object *properties = ctl_json_get(desc, "properties", json_type_object);

        if (!properties)
                return false;
        json_object_object_foreach(properties, member, p)
        {
                struct json_object *access = ctl_json_get(p, "access", json_type_string);

                (void) member;
                if (access && strcmp(json_object_get_string(access), "write") != 0)
                        return true;
        }
        return false;
}

/*
 * The current values of the readable properties of `interface` (GetAll), or
 * NULL when they cannot be read (the error is not ipcctl's to report: the
 * table shows "-").
 */
static struct json_object *properties_get_all(struct ctl *c, const char *name, const char *path,
                                              const char *interface)
{
        _cleanup_(ipcbus_error_freep) ipcbus_error e = IPCBUS_ERROR_NULL;
        _cleanup_(json_object_putp) struct json_object *body = json_object_new_object(), *reply = NULL;
        struct json_object *props;

        if (!body)
                return NULL;
        json_object_object_add(body, "interface", json_object_new_string(interface));
        if (ctl_call_json(c, name, path, IPCBUS_PROPERTIES_INTERFACE, "GetAll", body, &reply, &e) < 0)
                return NULL;
        props = ctl_json_get(reply, "properties", json_type_object);
        return props ? json_object_get(props) : NULL;
}

/*
 * The interfaces of the Introspect reply to show (all, or the one named
 * `only`) into *ret_shown, with the values of their properties into
 * *ret_values ({IFACE: {PROP: V}}). Returns 0 or -ENOMEM.
 */
static int introspect_collect(struct ctl *c, char **argv, struct json_object *reply, const char *only,
                              struct json_object **ret_shown, struct json_object **ret_values)
{
        struct json_object *interfaces = ctl_json_get(reply, "interfaces", json_type_array);
        struct json_object *shown = json_object_new_array(), *values = json_object_new_object();
        size_t n = interfaces ? json_object_array_length(interfaces) : 0;

        if (!shown || !values) {
                json_object_put(shown);
                json_object_put(values);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                struct json_object *desc = json_object_array_get_idx(interfaces, i);
                struct json_object *iname = ctl_json_get(desc, "interface", json_type_string), *v;

                if (!iname || (only && strcmp(only, json_object_get_string(iname)) != 0))
                        continue;
                json_object_array_add(shown, json_object_get(desc));
                if (has_readable_property(desc) &&
                    (v = properties_get_all(c, argv[1], argv[2], json_object_get_string(iname))))
                        json_object_object_add(values, json_object_get_string(iname), v);
        }
        *ret_shown = shown;
        *ret_values = values;
        return 0;
}

static int introspect_print(struct ctl *c, struct json_object *reply, struct json_object *shown,
                            struct json_object *values)
{
        struct table t = {};

        if (c->json) {
                _cleanup_(json_object_putp) struct json_object *out = json_object_new_object();
                struct json_object *children = ctl_json_get(reply, "children", json_type_array);

                if (!out)
                        return -ENOMEM;
                json_object_object_add(out, "path", json_object_get(json_object_object_get(reply, "path")));
                json_object_object_add(out, "interfaces", json_object_get(shown));
                json_object_object_add(out, "children", children ? json_object_get(children) : json_object_new_array());
                json_object_object_add(out, "values", json_object_get(values));
                puts(format_json_string(out, false));
                return 0;
        }
        for (size_t i = 0; i < json_object_array_length(shown); i++) {
                struct json_object *desc = json_object_array_get_idx(shown, i);

                rows_interface(&t, desc, json_object_object_get(values, json_object_get_string(
                                                                                json_object_object_get(desc, "interface"))));
        }
        if (!t.oom)
                table_print(&t, c->full);
        table_free(&t);
        return t.oom ? -ENOMEM : 0;
}

int cmd_introspect(struct ctl *c, int argc, char **argv)
{
        _cleanup_(ipcbus_error_freep) ipcbus_error e = IPCBUS_ERROR_NULL;
        _cleanup_(json_object_putp) struct json_object *reply = NULL, *shown = NULL, *values = NULL;
        const char *only = argc == 4 ? argv[3] : NULL;
        int r;

        if (argc < 3 || argc > 4)
                return ctl_usage_error("introspect takes NAME PATH [IFACE]");
        r = ctl_check_bus_name(argv[1]);
        if (r == 0)
                r = ctl_check_path(argv[2]);
        if (r == 0 && only)
                r = ctl_check_interface(only);
        if (r == 0)
                r = ctl_connect(c);
        if (r != 0)
                return r;
        r = introspect_call(c, argv[1], argv[2], &reply, &e);
        if (r < 0)
                return ctl_call_failed("Introspect", r, &e);
        r = introspect_collect(c, argv, reply, only, &shown, &values);
        if (r == 0 && only && json_object_array_length(shown) == 0)
                return ctl_fail("%s has no interface %s at %s", argv[1], only, argv[2]);
        if (r == 0)
                r = introspect_print(c, reply, shown, values);
        if (r < 0)
                return ctl_fail("%s", ipcbus_strerror(r));
        return 0;
}

/* ---- tree ------------------------------------------------------------------ */

struct tree_walk {
        struct ctl *c;
        const char *name;
        struct json_object *paths; /* every path visited, in order */
        size_t n_nodes;
};

/*
 * Visit path: record it, then each child, drawn below it with prefix (busctl's
 * "├─", "└─"). A path whose Introspect fails is shown without children.
 */
static void tree_visit(struct tree_walk *w, const char *path, const char *prefix)
{
        _cleanup_(ipcbus_error_freep) ipcbus_error e = IPCBUS_ERROR_NULL;
        _cleanup_(json_object_putp) struct json_object *reply = NULL;
        struct json_object *children;
        size_t n;

        json_object_array_add(w->paths, json_object_new_string(path));
        if (++w->n_nodes > TREE_NODES_MAX || introspect_call(w->c, w->name, path, &reply, &e) < 0)
                return;
        children = ctl_json_get(reply, "children", json_type_array);
        n = children ? json_object_array_length(children) : 0;
        for (size_t i = 0; i < n; i++) {
                const char *child = json_object_get_string(json_object_array_get_idx(children, i));
                _cleanup_(freep) char *sub = NULL, *deeper = NULL;
                bool last = i + 1 == n;

                if (!child || asprintf(&sub, "%s/%s", strcmp(path, "/") == 0 ? "" : path, child) < 0)
                        continue;
                if (!ipcbus_is_object_path(sub))
                        continue;
                if (!w->c->json)
                        printf("%s%s%s\n", prefix, last ? "└─" : "├─", sub);
                if (asprintf(&deeper, "%s%s", prefix, last ? "  " : "│ ") < 0)
                        continue;
                tree_visit(w, sub, deeper);
        }
}

int cmd_tree(struct ctl *c, int argc, char **argv)
{
        _cleanup_(ipcbus_error_freep) ipcbus_error e = IPCBUS_ERROR_NULL;
        _cleanup_(json_object_putp) struct json_object *root = NULL, *paths = NULL;
        struct tree_walk w = {.c = c, .name = argc == 2 ? argv[1] : NULL};
        int r;

        if (argc != 2)
                return ctl_usage_error("tree takes NAME");
        r = ctl_check_bus_name(w.name);
        if (r == 0)
                r = ctl_connect(c);
        if (r != 0)
                return r;
        /* "/" must answer: else the name has no objects (or no owner) and that is an error */
        r = introspect_call(c, w.name, "/", &root, &e);
        if (r < 0)
                return ctl_call_failed("Introspect", r, &e);
        paths = w.paths = json_object_new_array();
        if (!paths)
                return ctl_fail("%s", strerror(ENOMEM));
        tree_visit(&w, "/", "");
        if (w.n_nodes > TREE_NODES_MAX)
                fprintf(stderr, "ipcctl: %s has more than %d objects; the tree stops there\n", w.name,
                        TREE_NODES_MAX);
        if (c->json)
                puts(format_json_string(paths, false));
        return 0;
}

/* ---- get-property, set-property -------------------------------------------- */

/* A body {"interface": interface, "name": property}, or NULL on ENOMEM. */
static struct json_object *property_body(const char *interface, const char *property)
{
        struct json_object *body = json_object_new_object();

        if (body) {
                json_object_object_add(body, "interface", json_object_new_string(interface));
                json_object_object_add(body, "name", json_object_new_string(property));
        }
        return body;
}

/* Check NAME PATH IFACE PROPERTY... (argv[1..]). Returns 0 or the usage exit status. */
static int property_args(char **argv, int n_properties)
{
        int r = ctl_check_bus_name(argv[1]);

        if (r == 0)
                r = ctl_check_path(argv[2]);
        if (r == 0)
                r = ctl_check_interface(argv[3]);
        for (int i = 0; r == 0 && i < n_properties; i++)
                if (!ipcbus_is_member_name(argv[4 + i]))
                        r = ctl_usage_error("invalid property name '%s'", argv[4 + i]);
        return r;
}

int cmd_get_property(struct ctl *c, int argc, char **argv)
{
        _cleanup_(json_object_putp) struct json_object *all = json_object_new_object();
        int r;

        if (argc < 5)
                return ctl_usage_error("get-property takes NAME PATH IFACE PROPERTY...");
        r = property_args(argv, argc - 4);
        if (r == 0)
                r = ctl_connect(c);
        if (r != 0)
                return r;
        for (int i = 4; i < argc; i++) {
                _cleanup_(ipcbus_error_freep) ipcbus_error e = IPCBUS_ERROR_NULL;
                _cleanup_(json_object_putp) struct json_object *body = property_body(argv[3], argv[i]), *reply = NULL;
                struct json_object *value;

                if (!body || !all)
                        return ctl_fail("%s", strerror(ENOMEM));
                r = ctl_call_json(c, argv[1], argv[2], IPCBUS_PROPERTIES_INTERFACE, "Get", body, &reply, &e);
                if (r < 0)
                        return ctl_call_failed(argv[i], r, &e);
                if (!json_object_object_get_ex(reply, "value", &value))
                        return ctl_fail("%s: the reply has no value", argv[i]);
                if (c->json)
                        json_object_object_add(all, argv[i], json_object_get(value));
                else
                        puts(format_json_string(value, false));
        }
        if (c->json)
                puts(format_json_string(all, false));
        return 0;
}

/*
 * Check value against the type of property in the description of interface
 * (when one is installed and --no-check was not given): the property must
 * exist, be writable, and the value fit its type. Returns 0 or the exit
 * status after saying what is wrong.
 */
static int property_check(struct ctl *c, const char *interface, const char *property, struct json_object *value)
{
        _cleanup_(ipcbus_interface_unrefp) ipcbus_interface *desc = NULL, *setter = NULL;
        _cleanup_(ipcbus_error_freep) ipcbus_error e = IPCBUS_ERROR_NULL;
        _cleanup_(json_object_putp) struct json_object *parsed = NULL, *body = NULL;
        _cleanup_(freep) char *fake = NULL;
        struct json_object *props, *p, *access;
        const char *text;
        int r;

        if (c->no_check || ipcbus_interface_load(interface, &desc) < 0)
                return 0;
        text = ipcbus_interface_get_json(desc);
        if (format_json_parse(text, strlen(text), &parsed) < 0)
                return 0;
        props = ctl_json_get(parsed, "properties", json_type_object);
        p = props ? ctl_json_get(props, property, json_type_object) : NULL;
        if (!p)
                return ctl_fail("%s has no property %s (--no-check sends anyway)", interface, property);
        access = ctl_json_get(p, "access", json_type_string);
        if (access && strcmp(json_object_get_string(access), "read") == 0)
                return ctl_fail("property %s is read-only (--no-check sends anyway)", property);
        /* The type is checked as the one argument of a method, by the library's checker (public API). */
        body = json_object_new_object();
        if (!body || asprintf(&fake, "{\"interface\":\"%s\",\"methods\":{\"Set\":{\"in\":{\"%s\":%s}}}}", interface,
                              property, format_json_string(json_object_object_get(p, "type"), false)) < 0)
                return ctl_fail("%s", strerror(ENOMEM));
        json_object_object_add(body, property, json_object_get(value));
        if (ipcbus_interface_parse(fake, &setter) < 0)
                return 0; /* a type this ipcctl does not know: the service checks */
        r = ipcbus_interface_check(setter, IPCBUS_MESSAGE_CALL, "Set", format_json_string(body, false), &e);
        if (r < 0)
                return ctl_fail("cannot set %s: %s (--no-check sends anyway)", property,
                                e.message ? e.message : ipcbus_last_error());
        return 0;
}

int cmd_set_property(struct ctl *c, int argc, char **argv)
{
        _cleanup_(ipcbus_error_freep) ipcbus_error e = IPCBUS_ERROR_NULL;
        _cleanup_(json_object_putp) struct json_object *value = NULL, *body = NULL, *reply = NULL;
        const char *reason = NULL;
        int r;

        if (argc != 6)
                return ctl_usage_error("set-property takes NAME PATH IFACE PROPERTY JSON");
        r = property_args(argv, 1);
        if (r != 0)
                return r;
        if (format_json_parse_value(argv[5], &value, &reason) < 0)
                return ctl_usage_error("invalid JSON value: %s", reason);
        r = property_check(c, argv[3], argv[4], value);
        if (r == 0)
                r = ctl_connect(c);
        if (r != 0)
                return r;
        body = property_body(argv[3], argv[4]);
        if (!body)
                return ctl_fail("%s", strerror(ENOMEM));
        json_object_object_add(body, "value", json_object_get(value));
        r = ctl_call_json(c, argv[1], argv[2], IPCBUS_PROPERTIES_INTERFACE, "Set", body, &reply, &e);
        if (r < 0)
                return ctl_call_failed(argv[4], r, &e);
        return 0;
}
