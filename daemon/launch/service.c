/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/launch/service.h"
#include "daemon/log.h"
#include "protocol/ipcbus/wire.h"
#include "protocol/names.h"
#include "util/file.h"
#include "util/util.h"

/* A service file is a few hundred bytes; anything this large is a mistake. */
#define SERVICE_TEXT_MAX (64u * 1024u)
#define SERVICE_SUFFIX ".service"

void service_free(struct service *s)
{
        if (!s)
                return;
        if (s->argv)
                for (char **a = s->argv; *a; a++)
                        free(*a);
        free(s->argv);
        free(s->name);
        free(s->user);
        free(s->unit);
        free(s->path);
        free(s);
}

static void service_freep(struct service **s)
{
        service_free(*s);
}

static int __attribute__((format(printf, 5, 6)))
fail(char *err, size_t err_size, const char *path, const char *key, const char *fmt, ...)
{
        char reason[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(reason, sizeof(reason), fmt, ap);
        va_end(ap);
        if (err && err_size)
                snprintf(err, err_size, "%s: %s%s%s", path, key ? key : "", key ? ": " : "", reason);
        return SERVICE_E_INVALID;
}

static const char *got(struct json_object *v)
{
        return json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

static int parse_exec(struct service *s, struct json_object *v, char *err, size_t err_size)
{
        size_t n;

        if (!json_object_is_type(v, json_type_array) || (n = json_object_array_length(v)) == 0)
                return fail(err, err_size, s->path, "exec", "expected an array of at least one string, got %.60s",
                            got(v));
        s->argv = calloc(n + 1, sizeof(*s->argv));
        if (!s->argv)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct json_object *a = json_object_array_get_idx(v, i);

                if (!json_object_is_type(a, json_type_string))
                        return fail(err, err_size, s->path, "exec", "element %zu: expected a string, got %.60s", i,
                                    got(a));
                if (i == 0 && json_object_get_string(a)[0] != '/')
                        return fail(err, err_size, s->path, "exec", "the program must be an absolute path, got %.60s",
                                    got(a));
                s->argv[i] = strdup(json_object_get_string(a));
                if (!s->argv[i])
                        return -ENOMEM;
        }
        return 0;
}

static int parse_string(struct service *s, const char *key, struct json_object *v, char **ret, char *err,
                        size_t err_size)
{
        if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0)
                return fail(err, err_size, s->path, key, "expected a non-empty string, got %.60s", got(v));
        *ret = strdup(json_object_get_string(v));
        return *ret ? 0 : -ENOMEM;
}

int service_parse(const char *text, size_t len, const char *path, struct service **ret, char *err, size_t err_size)
{
        _cleanup_(service_freep) struct service *s = NULL;
        struct json_object *root;
        struct json_tokener *tok;
        const char *base;
        size_t base_len;
        int r = 0;

        s = calloc(1, sizeof(*s));
        if (!s || !(s->path = strdup(path)))
                return -ENOMEM;

        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        root = json_tokener_parse_ex(tok, text, (int) len);
        if (!root || json_tokener_get_parse_end(tok) != len) {
                enum json_tokener_error jerr = json_tokener_get_error(tok);

                r = fail(err, err_size, path, NULL, "not a JSON document: %s",
                         root                            ? "text after the JSON value"
                         : jerr == json_tokener_continue ? "unexpected end of text"
                                                         : json_tokener_error_desc(jerr));
                json_object_put(root);
                json_tokener_free(tok);
                return r;
        }
        json_tokener_free(tok);

        if (!json_object_is_type(root, json_type_object)) {
                json_object_put(root);
                return fail(err, err_size, path, NULL, "expected a JSON object");
        }
        json_object_object_foreach(root, key, v)
        {
                if (strcmp(key, "name") == 0) {
                        r = parse_string(s, key, v, &s->name, err, err_size);
                        if (r == 0 && (!names_is_well_known(s->name) || strcmp(s->name, IPCBUS_DRIVER_NAME) == 0))
                                r = fail(err, err_size, path, key, "not a well-known name one may own: %.60s", got(v));
                } else if (strcmp(key, "exec") == 0)
                        r = parse_exec(s, v, err, err_size);
                else if (strcmp(key, "user") == 0)
                        r = parse_string(s, key, v, &s->user, err, err_size);
                else if (strcmp(key, "unit") == 0)
                        r = parse_string(s, key, v, &s->unit, err, err_size);
                else
                        r = fail(err, err_size, path, key, "unknown key");
                if (r)
                        break;
        }
        json_object_put(root);
        if (r)
                return r;

        if (!s->name)
                return fail(err, err_size, path, "name", "missing");
        if (!s->argv && !s->unit)
                return fail(err, err_size, path, NULL, "needs \"exec\" or \"unit\"");
        if (s->user && !s->argv)
                return fail(err, err_size, path, "user", "only applies to \"exec\"");

        base = strrchr(path, '/');
        base = base ? base + 1 : path;
        base_len = strlen(s->name);
        if (strncmp(base, s->name, base_len) != 0 || strcmp(base + base_len, SERVICE_SUFFIX) != 0)
                return fail(err, err_size, path, "name", "the file must be called %s%s", s->name, SERVICE_SUFFIX);

        *ret = steal_pointer(&s);
        return 0;
}

/* ---- the registry ------------------------------------------------------------ */

void service_registry_init(struct service_registry *reg)
{
        map_init(&reg->by_name);
}

void service_registry_deinit(struct service_registry *reg)
{
        struct map_node *n, *next;

        for (n = map_first(&reg->by_name); n; n = next) {
                next = map_next(&reg->by_name, n);
                map_remove(&reg->by_name, n);
                service_free(container_of(n, struct service, node));
        }
        map_deinit(&reg->by_name);
}

static bool service_name_eq(const struct map_node *node, const void *key)
{
        return strcmp(container_of(node, struct service, node)->name, key) == 0;
}

struct service *service_registry_find(const struct service_registry *reg, const char *name)
{
        struct map_node *n = map_find(&reg->by_name, map_hash_string(name), service_name_eq, name);

        return n ? container_of(n, struct service, node) : NULL;
}

size_t service_registry_size(const struct service_registry *reg)
{
        return map_size(&reg->by_name);
}

static int strcmpp(const void *a, const void *b)
{
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

const char **service_registry_names(const struct service_registry *reg)
{
        size_t n = 0;
        const char **names = calloc(map_size(&reg->by_name) + 1, sizeof(*names));

        if (!names)
                return NULL;
        for (struct map_node *node = map_first(&reg->by_name); node; node = map_next(&reg->by_name, node))
                names[n++] = container_of(node, struct service, node)->name;
        qsort(names, n, sizeof(*names), strcmpp);
        return names;
}

int service_copy(const struct service *from, struct service **ret)
{
        _cleanup_(service_freep) struct service *s = calloc(1, sizeof(*s));
        size_t n = 0;

        if (!s || !(s->name = strdup(from->name)) || !(s->path = strdup(from->path)) ||
            (from->user && !(s->user = strdup(from->user))) || (from->unit && !(s->unit = strdup(from->unit))))
                return -ENOMEM;
        if (from->argv) {
                while (from->argv[n])
                        n++;
                s->argv = calloc(n + 1, sizeof(*s->argv));
                if (!s->argv)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++)
                        if (!(s->argv[i] = strdup(from->argv[i])))
                                return -ENOMEM;
        }
        *ret = steal_pointer(&s);
        return 0;
}

static const struct service *service_registry_find_path(const struct service_registry *reg, const char *path)
{
        if (!reg)
                return NULL;
        for (struct map_node *n = map_first(&reg->by_name); n; n = map_next(&reg->by_name, n)) {
                const struct service *s = container_of(n, struct service, node);

                if (strcmp(s->path, path) == 0)
                        return s;
        }
        return NULL;
}

/* Read one file: its declaration, the previous one of the same file when it is broken, or none (SERVICE_E_INVALID). */
static int service_load_file(const char *path, const struct service_registry *previous, struct service **ret)
{
        _cleanup_(freep) char *text = NULL;
        const struct service *old;
        char err[PATH_MAX + 512];
        size_t len;
        int r;

        r = file_read_text(path, SERVICE_TEXT_MAX, &text, &len);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                snprintf(err, sizeof(err), "%s: %s", path,
                         r == -EFBIG ? "file too large for a service file" : strerror(-r));
        else
                r = service_parse(text, len, path, ret, err, sizeof(err));
        if (r == 0 || r == -ENOMEM)
                return r;

        old = service_registry_find_path(previous, path);
        if (old) {
                log_warning("service file %s; keeping its previous declaration of %s", err, old->name);
                return service_copy(old, ret);
        }
        log_warning("service file %s; skipped", err);
        return SERVICE_E_INVALID;
}

int service_registry_load(struct service_registry *reg, char *const *dirs, size_t n_dirs,
                          const struct service_registry *previous)
{
        for (size_t i = 0; i < n_dirs; i++) {
                struct dirent **entries = NULL;
                int n = scandir(dirs[i], &entries, NULL, alphasort);
                int r = 0;

                if (n < 0) {
                        if (errno == ENOMEM)
                                return -ENOMEM;
                        if (errno != ENOENT && errno != ENOTDIR)
                                log_warning("cannot read the service directory %s: %s", dirs[i], strerror(errno));
                        continue;
                }
                for (int j = 0; j < n; j++) {
                        const char *fname = entries[j]->d_name;
                        size_t flen = strlen(fname);
                        struct service *s = NULL;
                        char path[PATH_MAX];

                        if (r < 0 || fname[0] == '.' || flen <= strlen(SERVICE_SUFFIX) ||
                            strcmp(fname + flen - strlen(SERVICE_SUFFIX), SERVICE_SUFFIX) != 0)
                                continue;
                        if ((size_t) snprintf(path, sizeof(path), "%s/%s", dirs[i], fname) >= sizeof(path))
                                continue;
                        r = service_load_file(path, previous, &s);
                        if (r == SERVICE_E_INVALID) {
                                r = 0;
                                continue;
                        }
                        if (r < 0)
                                continue;
                        if (service_registry_find(reg, s->name)) {
                                log_info("service file %s: %s is already declared by an earlier directory; ignored",
                                         path, s->name);
                                service_free(s);
                                continue;
                        }
                        r = map_add(&reg->by_name, &s->node, map_hash_string(s->name));
                        if (r < 0)
                                service_free(s);
                }
                for (int j = 0; j < n; j++)
                        free(entries[j]);
                free(entries);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- directories ------------------------------------------------------------- */

struct dir_list {
        char **dirs;
        size_t n, size;
};

static int dir_list_add(struct dir_list *l, const char *a, const char *b)
{
        char *d;

        if (asprintf(&d, "%s%s", a, b) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < l->n; i++)
                if (strcmp(l->dirs[i], d) == 0) {
                        free(d);
                        return 0;
                }
        if (l->n + 1 >= l->size) {
                size_t size = l->size ? l->size * 2 : 8;
                char **p = realloc(l->dirs, size * sizeof(*p));

                if (!p) {
                        free(d);
                        return -ENOMEM;
                }
                l->dirs = p;
                l->size = size;
        }
        l->dirs[l->n++] = d;
        l->dirs[l->n] = NULL;
        return 0;
}

/* An absolute directory from the environment, or NULL (the XDG rules ignore relative ones). */
static const char *env_dir(const char *name)
{
        const char *v = getenv(name);

        return v && v[0] == '/' ? v : NULL;
}

static int add_standard_session_dirs(struct dir_list *l, const char *datadir)
{
        const char *v, *data_dirs;
        char home_data[PATH_MAX];
        int r = 0;

        if ((v = env_dir("XDG_RUNTIME_DIR")))
                r = dir_list_add(l, v, "/ipcbus/services");
        if (r >= 0 && (v = env_dir("XDG_DATA_HOME")))
                r = dir_list_add(l, v, "/ipcbus/services");
        else if (r >= 0 && (v = env_dir("HOME"))) {
                snprintf(home_data, sizeof(home_data), "%s/.local/share", v);
                r = dir_list_add(l, home_data, "/ipcbus/services");
        }

        data_dirs = getenv("XDG_DATA_DIRS");
        if (!data_dirs || !*data_dirs)
                data_dirs = "/usr/local/share:/usr/share";
        for (const char *p = data_dirs; r >= 0 && *p;) {
                size_t n = strcspn(p, ":");
                char dir[PATH_MAX];

                if (p[0] == '/' && n < sizeof(dir)) {
                        memcpy(dir, p, n);
                        dir[n] = '\0';
                        r = dir_list_add(l, dir, "/ipcbus/services");
                }
                p += n;
                if (*p == ':')
                        p++;
        }
        if (r >= 0)
                r = dir_list_add(l, datadir, "/ipcbus/services");
        return r;
}

static int add_standard_system_dirs(struct dir_list *l, const char *datadir)
{
        int r = dir_list_add(l, datadir, "/ipcbus/system-services");

        if (r >= 0)
                r = dir_list_add(l, "/usr/local/share", "/ipcbus/system-services");
        if (r >= 0)
                r = dir_list_add(l, "/usr/share", "/ipcbus/system-services");
        return r;
}

int service_dirs_resolve(const struct bus_config *config, const char *datadir, char ***ret, size_t *ret_n)
{
        struct dir_list l = {.dirs = calloc(8, sizeof(char *)), .size = 8};
        int r = l.dirs ? 0 : -ENOMEM;

        for (size_t i = 0; r >= 0 && i < config->n_service_dirs; i++)
                r = dir_list_add(&l, config->service_dirs[i], "");
        if (r >= 0 && config->standard_service_dirs)
                r = config->type == BUS_TYPE_SYSTEM ? add_standard_system_dirs(&l, datadir)
                                                    : add_standard_session_dirs(&l, datadir);
        if (r < 0) {
                service_dirs_free(l.dirs);
                return r;
        }
        *ret = l.dirs;
        *ret_n = l.n;
        return 0;
}

void service_dirs_free(char **dirs)
{
        if (!dirs)
                return;
        for (char **d = dirs; *d; d++)
                free(*d);
        free(dirs);
}
