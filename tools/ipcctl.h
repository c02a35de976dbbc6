/* SPDX-License-Identifier: MIT */
/*
 * ipcctl's shared state and helpers: tools/ipcctl.c (options, list, call,
 * emit, status, wait), tools/ipcctl-introspect.c (introspect, tree,
 * get-property, set-property) and tools/ipcctl-stats.c (stats, metrics).
 * Only the public libipcbus API and json-c.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <ipcbus/ipcbus.h>

#include "tools/format.h"

#define EXIT_USAGE 2

struct ctl {
        const char *address;     /* --address, or NULL */
        bool system;             /* --system */
        bool json;               /* --json */
        uint64_t timeout_usec;   /* --timeout; 0 = library default */
        bool timeout_set;        /* --timeout was given (wait: else no limit) */
        const char *destination; /* --destination (emit) */
        bool no_reply;           /* --no-reply (call) */
        bool no_auto_start;      /* --no-auto-start (call) */
        bool no_check;           /* --no-check (call, emit, set-property) */
        bool full;               /* --full (introspect): no cell shortened on a terminal */
        const char *format;      /* --format (metrics): "openmetrics", "prometheus"; NULL: the broker's default */
        ipcbus_bus *bus;
};

/* Print a usage error and return the exit status for it. */
int ctl_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "ipcctl: " and the message, return EXIT_FAILURE. */
int ctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print a remote error as "NAME: message" and return EXIT_FAILURE. */
int ctl_remote_error(const ipcbus_error *e);
/* Report a failed call: remote errors as NAME: message, local ones with the reason. Returns EXIT_FAILURE. */
int ctl_call_failed(const char *what, int r, const ipcbus_error *e);
/* Connect as the options say. Returns 0 or the exit status after saying why. */
int ctl_connect(struct ctl *c);

/*
 * Call a method with a json-c body (NULL: none) and parse the reply's body.
 * Returns 0 with *ret the reply body (an object, the caller puts it),
 * -EREMOTEIO with e filled on an error reply, -EBADMSG for a reply that is
 * not an object, another negative errno.
 */
int ctl_call_json(struct ctl *c, const char *destination, const char *path, const char *interface,
                  const char *member, struct json_object *body, struct json_object **ret, ipcbus_error *e);

/* Check a bus name, object path, interface name argument. Returns 0 or the usage exit status. */
int ctl_check_bus_name(const char *name);
int ctl_check_path(const char *path);
int ctl_check_interface(const char *interface);

/* The member `key` of obj if it has type `type`, else NULL. */
struct json_object *ctl_json_get(struct json_object *obj, const char *key, enum json_type type);

/* ":1.9" before ":1.10": unique names compared element by element, numbers as numbers (qsort order). */
int ctl_unique_name_compare(const char *a, const char *b);

int cmd_introspect(struct ctl *c, int argc, char **argv);
int cmd_tree(struct ctl *c, int argc, char **argv);
int cmd_get_property(struct ctl *c, int argc, char **argv);
int cmd_set_property(struct ctl *c, int argc, char **argv);
int cmd_stats(struct ctl *c, int argc, char **argv);
int cmd_metrics(struct ctl *c, int argc, char **argv);
