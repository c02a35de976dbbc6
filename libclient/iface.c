/* SPDX-License-Identifier: MIT */
/*
 * Interface descriptions (PROTOCOL.md section 13): parsing a description
 * file into struct ipcbus_interface, loading NAME.json from the interface
 * directories, finding members, and the short form of a type for people.
 * Checking JSON values against the described types is iface-check.c's.
 */
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libclient/bus-internal.h"
#include "libclient/iface.h"
#include "protocol/jbuf.h"
#include "protocol/names.h"
#include "util/file.h"

/* The installed descriptions: $(datadir)/ipcbus/interfaces. */
#define IFACE_INSTALL_DIR IPCBUS_DATADIR "/ipcbus/interfaces"

/* A description file is read whole, up to this size. */
#define IFACE_FILE_MAX (1024u * 1024u)

/* Argument and field names: [A-Za-z_][A-Za-z0-9_]*, at most 255 bytes (PROTOCOL.md 13.1). */
static bool is_field_name(const char *s)
{
        size_t n = 0;

        if (!s || !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
                return false;
        for (; s[n]; n++)
                if (!((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') ||
                      s[n] == '_'))
                        return false;
        return n <= IPCBUS_NAME_MAX;
}

/* Keys starting "x-" are extensions: ignored wherever they appear. */
static bool is_extension_key(const char *key)
{
        return strncmp(key, "x-", 2) == 0;
}

/* ---- JSON paths, for sentences ---------------------------------------------- */

/* Append to the path (cut at its size); returns the length to restore with iface_path_pop. */
size_t iface_path_pushf(struct json_path *p, const char *fmt, ...)
{
        size_t old = p->len;
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(p->s + p->len, sizeof(p->s) - p->len, fmt, ap);
        va_end(ap);
        if (n > 0)
                p->len = p->len + (size_t) n < sizeof(p->s) ? p->len + (size_t) n : sizeof(p->s) - 1;
        return old;
}

/* A member: "key" at the top, ".key" below. */
size_t iface_path_push(struct json_path *p, const char *key)
{
        return iface_path_pushf(p, "%s%s", p->len ? "." : "", key);
}

void iface_path_pop(struct json_path *p, size_t old)
{
        p->len = old;
        p->s[old] = '\0';
}

/* ---- types -------------------------------------------------------------------- */

const char *const iface_scalar_names[] = {
        [IFACE_BOOL] = "bool",     [IFACE_INT] = "int",     [IFACE_UINT] = "uint", [IFACE_DOUBLE] = "double",
        [IFACE_STRING] = "string", [IFACE_BYTES] = "bytes", [IFACE_FD] = "fd",     [IFACE_ANY] = "any",
};

/* The composite kinds, as their one key in a type object. */
static const char *const composite_names[] = {
        [IFACE_ARRAY] = "array",
        [IFACE_MAP] = "map",
        [IFACE_STRUCT] = "struct",
        [IFACE_OPTIONAL] = "optional",
};

static void fields_free(struct iface_field *fields, size_t n);

static void type_free(struct iface_type *t)
{
        if (!t)
                return;
        type_free(t->elem);
        fields_free(t->fields, t->n_fields);
        free(t);
}

static void fields_free(struct iface_field *fields, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(fields[i].name);
                type_free(fields[i].type);
        }
        free(fields);
}

static void type_format_fields(const struct iface_field *fields, size_t n, struct jbuf *b)
{
        for (size_t i = 0; i < n; i++) {
                jbuf_printf(b, "%s%s: ", i ? ", " : "", fields[i].name);
                iface_type_format(fields[i].type, b);
        }
}

void iface_type_format(const struct iface_type *t, struct jbuf *b)
{
        switch (t->kind) {
        case IFACE_ARRAY:
        case IFACE_MAP:
        case IFACE_OPTIONAL:
                jbuf_printf(b, "%s<", composite_names[t->kind]);
                iface_type_format(t->elem, b);
                jbuf_putc(b, '>');
                break;
        case IFACE_STRUCT:
                jbuf_puts(b, "struct{");
                type_format_fields(t->fields, t->n_fields, b);
                jbuf_putc(b, '}');
                break;
        default:
                jbuf_puts(b, iface_scalar_names[t->kind]);
        }
}

/* ---- parsing a description ----------------------------------------------------- */

/* Refuse what is at p's path: "methods.Add.in.text: unknown type 'strin'". Returns -EINVAL. */
static int parse_fail(const struct json_path *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int parse_fail(const struct json_path *p, const char *fmt, ...)
{
        char what[IFACE_PATH_MAX];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        if (p->len == 0)
                return client_fail(-EINVAL, "%s", what);
        return client_fail(-EINVAL, "%s: %s", p->s, what);
}

/* The member `key` of an object being parsed, when it is not one of the object's keys. */
static int parse_unknown_key(struct json_path *p, const char *key)
{
        size_t old;
        int r;

        if (is_extension_key(key))
                return 0;
        old = iface_path_push(p, key);
        r = parse_fail(p, "unknown key");
        iface_path_pop(p, old);
        return r;
}

/* A member that must be a boolean ("deprecated", "no_reply", "unchecked"). */
static int parse_bool(struct json_path *p, const char *key, struct json_object *v, bool *ret)
{
        size_t old;
        int r;

        if (json_object_is_type(v, json_type_boolean)) {
                *ret = json_object_get_boolean(v);
                return 0;
        }
        old = iface_path_push(p, key);
        r = parse_fail(p, "expected true or false");
        iface_path_pop(p, old);
        return r;
}

/* "doc": a string, anywhere a description has keys. */
static int parse_doc(struct json_path *p, const char *key, struct json_object *v)
{
        size_t old;
        int r;

        if (json_object_is_type(v, json_type_string))
                return 0;
        old = iface_path_push(p, key);
        r = parse_fail(p, "expected a string");
        iface_path_pop(p, old);
        return r;
}

static int parse_type(struct json_path *p, struct json_object *v, struct iface_type **ret);

/*
 * The keys every part of a description may have: "deprecated" (where
 * `deprecated` is not NULL), "doc", "x-" extensions; any other is unknown.
 */
static int parse_common_key(struct json_path *p, const char *key, struct json_object *v, bool *deprecated)
{
        if (deprecated && strcmp(key, "deprecated") == 0)
                return parse_bool(p, key, v, deprecated);
        if (strcmp(key, "doc") == 0)
                return parse_doc(p, key, v);
        return parse_unknown_key(p, key);
}

/* What parse_named reads: the elements, their names, and how each is parsed. */
struct named_kind {
        size_t size; /* of an element, whose first member is its name (char *) */
        bool (*valid_name)(const char *name);
        const char *invalid_name; /* the sentence for a name valid_name refuses */
        const char *not_object;   /* the sentence for a value that is not an object */
        int (*parse)(struct json_path *p, struct json_object *v, void *elem);
};

/*
 * An object of named members (methods, signals, properties; arguments and
 * struct fields), in the order written, into an array of elements. *ret and
 * *ret_n are set as elements are added, so that on failure the caller frees
 * what was parsed with its elements' free function.
 */
static int parse_named(struct json_path *p, struct json_object *v, const struct named_kind *kind, void **ret,
                       size_t *ret_n)
{
        size_t n = 0;
        char *elems;
        int r = 0;

        if (!json_object_is_type(v, json_type_object))
                return parse_fail(p, "%s", kind->not_object);
        elems = calloc((size_t) json_object_object_length(v) + 1, kind->size);
        if (!elems)
                return -ENOMEM;
        *ret = elems;
        *ret_n = 0;
        json_object_object_foreach(v, name, member)
        {
                size_t old;

                if (is_extension_key(name))
                        continue;
                old = iface_path_push(p, name);
                if (!kind->valid_name(name))
                        r = parse_fail(p, "%s", kind->invalid_name);
                else if (!(*(char **) (elems + n * kind->size) = strdup(name)))
                        r = -ENOMEM;
                else
                        r = kind->parse(p, member, elems + n++ * kind->size);
                iface_path_pop(p, old);
                *ret_n = n;
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_field_elem(struct json_path *p, struct json_object *v, void *elem)
{
        return parse_type(p, v, &((struct iface_field *) elem)->type);
}

/* An object of named types: arguments, results, a struct's fields. On failure the caller frees *ret. */
static int parse_fields(struct json_path *p, struct json_object *v, struct iface_field **ret, size_t *ret_n)
{
        static const struct named_kind fields = {
                .size = sizeof(struct iface_field),
                .valid_name = is_field_name,
                .invalid_name = "not a valid name ([A-Za-z_][A-Za-z0-9_]*, at most 255 bytes)",
                .not_object = "expected an object of named types",
                .parse = parse_field_elem,
        };

        return parse_named(p, v, &fields, (void **) ret, ret_n);
}

/* The one kind key of a type object ({"array": T}, ...); -1 when key is none. */
static int composite_kind(const char *key)
{
        for (size_t k = 0; k < ELEMENTSOF(composite_names); k++)
                if (composite_names[k] && strcmp(key, composite_names[k]) == 0)
                        return (int) k;
        return -1;
}

/* A type object: exactly one of array, map, optional, struct (plus "doc" and "x-" keys). */
static int parse_composite(struct json_path *p, struct json_object *v, struct iface_type *t)
{
        struct json_object *inner = NULL;
        int found = -1;
        size_t old;
        int r;

        json_object_object_foreach(v, key, member)
        {
                int kind = composite_kind(key);

                if (kind >= 0 && found >= 0)
                        return parse_fail(p, "a type object has one key of array, map, optional, struct, not two");
                if (kind >= 0) {
                        found = kind;
                        inner = member;
                } else if (strcmp(key, "doc") == 0) {
                        r = parse_doc(p, key, member);
                        if (r < 0)
                                return r;
                } else if (!is_extension_key(key))
                        return parse_fail(p, "unknown type '%s'", key);
        }
        if (found < 0)
                return parse_fail(p, "a type object has one key of array, map, optional, struct");
        t->kind = (enum iface_kind) found;
        old = iface_path_push(p, composite_names[found]);
        if (t->kind == IFACE_STRUCT)
                r = parse_fields(p, inner, &t->fields, &t->n_fields);
        else
                r = parse_type(p, inner, &t->elem);
        iface_path_pop(p, old);
        return r;
}

/* A type: a scalar's name, or a type object. */
static int parse_type(struct json_path *p, struct json_object *v, struct iface_type **ret)
{
        struct iface_type *t = calloc(1, sizeof(*t));
        int r = 0;

        if (!t)
                return -ENOMEM;
        if (json_object_is_type(v, json_type_string)) {
                const char *name = json_object_get_string(v);
                size_t k;

                for (k = 0; k < ELEMENTSOF(iface_scalar_names); k++)
                        if (iface_scalar_names[k] && strcmp(name, iface_scalar_names[k]) == 0)
                                break;
                if (k < ELEMENTSOF(iface_scalar_names))
                        t->kind = (enum iface_kind) k;
                else
                        r = parse_fail(p, "unknown type '%.64s'", name);
        } else if (json_object_is_type(v, json_type_object)) {
                r = parse_composite(p, v, t);
        } else {
                r = parse_fail(p, "a type is a name (\"uint\") or an object ({\"array\": \"uint\"})");
        }
        if (r < 0) {
                type_free(t);
                return r;
        }
        *ret = t;
        return 0;
}

/* "in", "out", "args": an object of named types (absent: none). */
static int parse_args(struct json_path *p, const char *key, struct json_object *v, struct iface_args *args)
{
        size_t old = iface_path_push(p, key);
        int r = parse_fields(p, v, &args->fields, &args->n);

        iface_path_pop(p, old);
        return r;
}

static void args_free(struct iface_args *a)
{
        fields_free(a->fields, a->n);
}

static int parse_method(struct json_path *p, struct json_object *v, struct iface_method *m)
{
        bool has_args = false;
        int r = 0;

        if (!json_object_is_type(v, json_type_object))
                return parse_fail(p, "expected an object");
        json_object_object_foreach(v, key, member)
        {
                if (strcmp(key, "in") == 0 || strcmp(key, "out") == 0) {
                        r = parse_args(p, key, member, key[0] == 'i' ? &m->in : &m->out);
                        has_args = true;
                } else if (strcmp(key, "no_reply") == 0)
                        r = parse_bool(p, key, member, &m->no_reply);
                else if (strcmp(key, "unchecked") == 0)
                        r = parse_bool(p, key, member, &m->unchecked);
                else
                        r = parse_common_key(p, key, member, &m->deprecated);
                if (r < 0)
                        return r;
        }
        if (m->unchecked && has_args)
                return parse_fail(p, "an unchecked method describes no \"in\" or \"out\"");
        return 0;
}

static void method_free(struct iface_method *m)
{
        free(m->name);
        args_free(&m->in);
        args_free(&m->out);
}

static int parse_signal(struct json_path *p, struct json_object *v, struct iface_signal *s)
{
        int r = 0;

        if (!json_object_is_type(v, json_type_object))
                return parse_fail(p, "expected an object");
        json_object_object_foreach(v, key, member)
        {
                if (strcmp(key, "args") == 0)
                        r = parse_args(p, key, member, &s->args);
                else
                        r = parse_common_key(p, key, member, &s->deprecated);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void signal_free(struct iface_signal *s)
{
        free(s->name);
        args_free(&s->args);
}

/* A string member that must be one of `words` (NULL-terminated); *ret is its index. */
static int parse_word(struct json_path *p, const char *key, struct json_object *v, const char *const *words,
                      const char *expected, int *ret)
{
        size_t old;
        int r;

        if (json_object_is_type(v, json_type_string))
                for (int i = 0; words[i]; i++)
                        if (strcmp(json_object_get_string(v), words[i]) == 0) {
                                *ret = i;
                                return 0;
                        }
        old = iface_path_push(p, key);
        r = parse_fail(p, "expected %s", expected);
        iface_path_pop(p, old);
        return r;
}

static int parse_property(struct json_path *p, struct json_object *v, struct iface_property *prop)
{
        static const char *const access[] = {"", "read", "write", "readwrite", NULL};
        static const char *const changes[] = {"emit", "invalidate", "const", "none", NULL};
        int r = 0, i = 0;

        if (!json_object_is_type(v, json_type_object))
                return parse_fail(p, "expected an object");
        prop->changes = IFACE_CHANGES_EMIT;
        json_object_object_foreach(v, key, member)
        {
                if (strcmp(key, "type") == 0) {
                        size_t old = iface_path_push(p, key);

                        r = parse_type(p, member, &prop->type);
                        iface_path_pop(p, old);
                } else if (strcmp(key, "access") == 0) {
                        r = parse_word(p, key, member, access, "\"read\", \"write\" or \"readwrite\"", &i);
                        prop->access = (enum iface_access) i;
                } else if (strcmp(key, "changes") == 0) {
                        r = parse_word(p, key, member, changes, "\"emit\", \"invalidate\", \"const\" or \"none\"", &i);
                        prop->changes = (enum iface_changes) i;
                } else
                        r = parse_common_key(p, key, member, &prop->deprecated);
                if (r < 0)
                        return r;
        }
        if (!prop->type)
                return parse_fail(p, "missing key \"type\"");
        if (prop->access == 0)
                return parse_fail(p, "missing key \"access\"");
        return 0;
}

static void property_free(struct iface_property *prop)
{
        free(prop->name);
        type_free(prop->type);
}

static int parse_method_elem(struct json_path *p, struct json_object *v, void *elem)
{
        return parse_method(p, v, elem);
}

static int parse_signal_elem(struct json_path *p, struct json_object *v, void *elem)
{
        return parse_signal(p, v, elem);
}

static int parse_property_elem(struct json_path *p, struct json_object *v, void *elem)
{
        return parse_property(p, v, elem);
}

#define MEMBER_KIND(type, parse_elem)                                                                                  \
        {                                                                                                              \
                .size = sizeof(type), .valid_name = names_is_member,                                                   \
                .invalid_name = "not a valid member name (section 5 of PROTOCOL.md)",                                  \
                .not_object = "expected an object of named members", .parse = parse_elem,                              \
        }

static const struct named_kind method_kind = MEMBER_KIND(struct iface_method, parse_method_elem);
static const struct named_kind signal_kind = MEMBER_KIND(struct iface_signal, parse_signal_elem);
static const struct named_kind property_kind = MEMBER_KIND(struct iface_property, parse_property_elem);

/* "methods", "signals", "properties": the member `key` of the description. */
static int parse_members(struct json_path *p, const char *key, struct json_object *v, const struct named_kind *kind,
                         void **ret, size_t *ret_n)
{
        size_t old = iface_path_push(p, key);
        int r = parse_named(p, v, kind, ret, ret_n);

        iface_path_pop(p, old);
        return r;
}

static void interface_free(ipcbus_interface *i)
{
        if (!i)
                return;
        free(i->name);
        free(i->json);
        for (size_t k = 0; k < i->n_methods; k++)
                method_free(&i->methods[k]);
        free(i->methods);
        for (size_t k = 0; k < i->n_signals; k++)
                signal_free(&i->signals[k]);
        free(i->signals);
        for (size_t k = 0; k < i->n_properties; k++)
                property_free(&i->properties[k]);
        free(i->properties);
        free(i);
}

static void interface_freep(ipcbus_interface **i)
{
        interface_free(*i);
}

/* The top-level "interface" member. */
static int parse_name(struct json_path *p, struct json_object *v, ipcbus_interface *i)
{
        size_t old = iface_path_push(p, "interface");
        int r = 0;

        if (!json_object_is_type(v, json_type_string) || !names_is_interface(json_object_get_string(v)))
                r = parse_fail(p, "expected an interface name (section 5 of PROTOCOL.md)");
        else if (!(i->name = strdup(json_object_get_string(v))))
                r = -ENOMEM;
        iface_path_pop(p, old);
        return r;
}

/* The members of the description object root into i. */
static int parse_description(struct json_object *root, ipcbus_interface *i)
{
        struct json_path p = {.len = 0};
        int r = 0;

        if (!json_object_is_type(root, json_type_object))
                return parse_fail(&p, "a description is a JSON object");
        json_object_object_foreach(root, key, v)
        {
                if (strcmp(key, "interface") == 0)
                        r = parse_name(&p, v, i);
                else if (strcmp(key, "methods") == 0)
                        r = parse_members(&p, key, v, &method_kind, (void **) &i->methods, &i->n_methods);
                else if (strcmp(key, "signals") == 0)
                        r = parse_members(&p, key, v, &signal_kind, (void **) &i->signals, &i->n_signals);
                else if (strcmp(key, "properties") == 0)
                        r = parse_members(&p, key, v, &property_kind, (void **) &i->properties, &i->n_properties);
                else
                        r = parse_common_key(&p, key, v, &i->deprecated);
                if (r < 0)
                        return r;
        }
        if (!i->name)
                return parse_fail(&p, "missing key \"interface\"");
        return 0;
}

_public_ int ipcbus_interface_parse(const char *json, ipcbus_interface **ret)
{
        _cleanup_(interface_freep) ipcbus_interface *i = NULL;
        struct json_object *root = NULL;
        const char *canonical;
        int r;

        if (!json || !ret)
                return client_fail(-EINVAL, "ipcbus_interface_parse: %s is NULL", json ? "ret" : "json");
        if (strlen(json) > IPCBUS_BODY_MAX)
                return client_fail(-EINVAL, "a description is at most %u bytes", IPCBUS_BODY_MAX);
        r = value_json_parse(json, strlen(json), false, &root);
        if (r < 0)
                return r;
        i = calloc(1, sizeof(*i));
        if (!i) {
                json_object_put(root);
                return -ENOMEM;
        }
        i->n_ref = 1;
        r = parse_description(root, i);
        if (r >= 0) {
                canonical =
                        json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
                if (!canonical || !(i->json = strdup(canonical)))
                        r = -ENOMEM;
        }
        json_object_put(root);
        if (r < 0)
                return r == -ENOMEM ? client_fail(r, "out of memory") : r;
        *ret = steal_pointer(&i);
        return 0;
}

/* ---- loading ------------------------------------------------------------------- */

/* Load dir/NAME.json: 0, -ENOENT when there is none, or the fault (last error set). */
static int interface_load_from(const char *dir, const char *name, ipcbus_interface **ret)
{
        _cleanup_(freep) char *path = NULL, *text = NULL;
        _cleanup_(interface_freep) ipcbus_interface *i = NULL;
        size_t len;
        int r;

        if (asprintf(&path, "%s/%s.json", dir, name) < 0) {
                path = NULL;
                return -ENOMEM;
        }
        r = file_read_text(path, IFACE_FILE_MAX, &text, &len);
        if (r == -ENOENT || r == -ENOTDIR)
                return -ENOENT;
        if (r == -EFBIG)
                return client_fail(-EINVAL, "%s: larger than %u bytes", path, IFACE_FILE_MAX);
        if (r < 0)
                return client_fail(r, "%s: %s", path, strerror(-r));
        if (strlen(text) != len)
                return client_fail(-EINVAL, "%s: not a JSON text: a NUL byte", path);
        r = ipcbus_interface_parse(text, &i);
        if (r < 0) {
                char why[IFACE_PATH_MAX * 2];

                snprintf(why, sizeof(why), "%s", ipcbus_last_error());
                return client_fail(r, "%s: %s", path, why);
        }
        if (strcmp(i->name, name) != 0)
                return client_fail(-EINVAL, "%s: describes %s, not %s", path, i->name, name);
        *ret = steal_pointer(&i);
        return 0;
}

_public_ int ipcbus_interface_load(const char *name, ipcbus_interface **ret)
{
        const char *env = getenv("IPCBUS_INTERFACE_PATH");
        int r;

        if (!ret)
                return client_fail_null("ret");
        r = client_check_name("name", name, CLIENT_NAME_INTERFACE);
        if (r < 0)
                return r;
        for (const char *d = env; d && *d;) {
                size_t n = strcspn(d, ":");

                if (n > 0) {
                        _cleanup_(freep) char *dir = strndup(d, n);

                        if (!dir)
                                return -ENOMEM;
                        r = interface_load_from(dir, name, ret);
                        if (r != -ENOENT)
                                return r;
                }
                d += n + (d[n] == ':');
        }
        r = interface_load_from(IFACE_INSTALL_DIR, name, ret);
        if (r != -ENOENT)
                return r;
        return client_fail(-ENOENT, "interface %s: no %s.json in $IPCBUS_INTERFACE_PATH or %s", name, name,
                           IFACE_INSTALL_DIR);
}

_public_ ipcbus_interface *ipcbus_interface_ref(ipcbus_interface *iface)
{
        if (iface)
                iface->n_ref++;
        return iface;
}

_public_ ipcbus_interface *ipcbus_interface_unref(ipcbus_interface *iface)
{
        if (iface && --iface->n_ref == 0)
                interface_free(iface);
        return NULL;
}

_public_ const char *ipcbus_interface_get_name(const ipcbus_interface *iface)
{
        return iface ? iface->name : NULL;
}

_public_ const char *ipcbus_interface_get_json(const ipcbus_interface *iface)
{
        return iface ? iface->json : NULL;
}

/* ---- finding members ------------------------------------------------------------ */

const struct iface_method *iface_find_method(const ipcbus_interface *i, const char *name)
{
        for (size_t k = 0; i && name && k < i->n_methods; k++)
                if (strcmp(i->methods[k].name, name) == 0)
                        return &i->methods[k];
        return NULL;
}

const struct iface_signal *iface_find_signal(const ipcbus_interface *i, const char *name)
{
        for (size_t k = 0; i && name && k < i->n_signals; k++)
                if (strcmp(i->signals[k].name, name) == 0)
                        return &i->signals[k];
        return NULL;
}

const struct iface_property *iface_find_property(const ipcbus_interface *i, const char *name)
{
        for (size_t k = 0; i && name && k < i->n_properties; k++)
                if (strcmp(i->properties[k].name, name) == 0)
                        return &i->properties[k];
        return NULL;
}
