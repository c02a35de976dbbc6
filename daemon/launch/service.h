/* SPDX-License-Identifier: MIT */
/*
 * Service files (CONFIG.md "Service activation"): `NAME.service` files in
 * the service directories, each a JSON object declaring a well-known name
 * and how to start its owner: a program (`exec`, optionally as `user`) or a
 * systemd `unit`. The registry maps names to their declarations; it is
 * rebuilt whole on every load and replaces the previous one.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "daemon/launch/config.h"
#include "util/map.h"

struct service {
        struct map_node node; /* in the registry, by name */
        char *name;           /* the well-known name it owns */
        char **argv;          /* "exec": NULL-terminated, argv[0] absolute; NULL when not given */
        char *user;           /* "user": name or number; NULL: the broker's own */
        char *unit;           /* "unit": a systemd unit; NULL when not given. Preferred over argv. */
        char *path;           /* the file it came from */
};

struct service_registry {
        struct map by_name;
};

/* The expected outcome of reading a service file (util/error.h), never a fault. */
enum {
        SERVICE_E_INVALID = 1, /* the file breaks the rules of service files: err says where and why */
};

/*
 * Parse one service file's text. `path` names it in errors and must end in
 * "/<name>.service". Returns 0, SERVICE_E_INVALID with "PATH: KEY: REASON"
 * in err, or -ENOMEM.
 */
int service_parse(const char *text, size_t len, const char *path, struct service **ret, char *err, size_t err_size);
void service_free(struct service *s);
/* A deep copy. Returns 0 or -ENOMEM. */
int service_copy(const struct service *from, struct service **ret);

void service_registry_init(struct service_registry *reg);
void service_registry_deinit(struct service_registry *reg);

/*
 * Fill an empty registry from every "*.service" file of the directories, in
 * order: the first declaration of a name wins. Missing directories are
 * skipped quietly. A file that cannot be read or parsed is logged (a
 * warning naming the file and the reason) and skipped; when `previous`
 * holds a declaration from the same file, that one is kept instead (a
 * broken file on reload changes nothing). Returns 0 or -ENOMEM.
 */
int service_registry_load(struct service_registry *reg, char *const *dirs, size_t n_dirs,
                          const struct service_registry *previous);

struct service *service_registry_find(const struct service_registry *reg, const char *name);
size_t service_registry_size(const struct service_registry *reg);
/* Every declared name, sorted (strcmp), in a NULL-terminated array the caller frees (not the strings). */
const char **service_registry_names(const struct service_registry *reg);

/*
 * The directories a configuration searches, in order: its service_dirs,
 * then (standard_service_dirs) the standard ones of its bus type, computed
 * from the environment (XDG_RUNTIME_DIR, XDG_DATA_HOME, HOME, XDG_DATA_DIRS)
 * and `datadir`. Duplicates are dropped. Returns 0 with a NULL-terminated
 * array of strings (free with service_dirs_free), or -ENOMEM.
 */
int service_dirs_resolve(const struct bus_config *config, const char *datadir, char ***ret, size_t *ret_n);
void service_dirs_free(char **dirs);
