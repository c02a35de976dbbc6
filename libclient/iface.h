/* SPDX-License-Identifier: MIT */
/*
 * Interface descriptions inside the library (PROTOCOL.md section 13): the
 * parsed form of an ipcbus_interface, and the checks of a JSON value against
 * a type. iface.c parses and loads, iface-check.c checks; object.c and the
 * standard interfaces beside it (exported objects) and value.c (typed
 * bodies) use what is declared here.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <ipcbus/ipcbus.h>

struct json_object;
struct jbuf;

enum iface_kind {
        IFACE_BOOL,
        IFACE_INT,
        IFACE_UINT,
        IFACE_DOUBLE,
        IFACE_STRING,
        IFACE_BYTES,
        IFACE_FD,
        IFACE_ANY,
        IFACE_ARRAY,    /* elem */
        IFACE_MAP,      /* elem; keys are strings */
        IFACE_STRUCT,   /* fields */
        IFACE_OPTIONAL, /* elem: absent or null, or elem */
};

struct iface_field;

struct iface_type {
        enum iface_kind kind;
        struct iface_type *elem;    /* array, map, optional */
        struct iface_field *fields; /* struct */
        size_t n_fields;
};

/* A named, typed member: an argument, a result, a struct's field. */
struct iface_field {
        char *name;
        struct iface_type *type;
};

struct iface_args {
        struct iface_field *fields;
        size_t n;
};

struct iface_method {
        char *name;
        struct iface_args in;
        struct iface_args out;
        bool no_reply;
        bool deprecated;
        bool unchecked; /* "unchecked": true: arguments not described, not checked (in and out empty) */
};

struct iface_signal {
        char *name;
        struct iface_args args;
        bool deprecated;
};

enum iface_access {
        IFACE_ACCESS_READ = 1,
        IFACE_ACCESS_WRITE = 2,
        IFACE_ACCESS_READWRITE = 3,
};

enum iface_changes {
        IFACE_CHANGES_EMIT,       /* PropertiesChanged carries the new value (the default) */
        IFACE_CHANGES_INVALIDATE, /* PropertiesChanged names it without a value */
        IFACE_CHANGES_CONST,      /* never changes while the object lives */
        IFACE_CHANGES_NONE,       /* changes, unannounced */
};

struct iface_property {
        char *name;
        struct iface_type *type;
        enum iface_access access;
        enum iface_changes changes;
        bool deprecated;
};

struct ipcbus_interface {
        unsigned n_ref;
        char *name;
        char *json; /* canonical description text */
        struct iface_method *methods;
        size_t n_methods;
        struct iface_signal *signals;
        size_t n_signals;
        struct iface_property *properties;
        size_t n_properties;
        bool deprecated;
};

const struct iface_method *iface_find_method(const ipcbus_interface *i, const char *name);
const struct iface_signal *iface_find_signal(const ipcbus_interface *i, const char *name);
const struct iface_property *iface_find_property(const ipcbus_interface *i, const char *name);

/*
 * Check a body (a JSON object; NULL counts as {}) against named arguments.
 * strict: members the arguments do not name are refused (what this side
 * sends); otherwise ignored (what it receives, PROTOCOL.md 13.3). n_fds: the
 * descriptors of the frame, which fd values index. Returns 0, or -EBADMSG
 * with a sentence in err naming the argument, the expected type and what
 * came: "argument 'notes[2].id': expected uint, got string",
 * "argument 'id': missing (expected uint)".
 */
int iface_check_args(const struct iface_args *args, struct json_object *body, bool strict, unsigned n_fds, char *err,
                     size_t err_size);
/* The same for one value of type t, named `where` in the sentence. */
int iface_check_value(const struct iface_type *t, struct json_object *v, const char *where, bool strict, unsigned n_fds,
                      char *err, size_t err_size);

/*
 * What the values of a body may refer to outside themselves: the frame's
 * descriptors (fd) and, for a body that travels in a memfd, its binary
 * area (bytes written {"$bytes":[OFFSET,LENGTH]}, PROTOCOL.md 14.5).
 * iface_check_args and iface_check_value check a body that came in its
 * frame: no binary area.
 */
struct iface_refs {
        unsigned n_fds;
        int64_t binary_len; /* bytes in the binary area; IFACE_NO_BINARY: the body came in its frame */
};
#define IFACE_NO_BINARY (-1)

/* iface_check_args and iface_check_value for a body whose references refs describes. */
int iface_check_args_refs(const struct iface_args *args, struct json_object *body, bool strict,
                          const struct iface_refs *refs, char *err, size_t err_size);
int iface_check_value_refs(const struct iface_type *t, struct json_object *v, const char *where, bool strict,
                           const struct iface_refs *refs, char *err, size_t err_size);

/* The short form of a type, for people: "uint", "array<struct{id: uint, text: string}>", "map<string>". */
void iface_type_format(const struct iface_type *t, struct jbuf *b);

/* ---- shared by iface.c and iface-check.c ---- */

/* JSON paths in sentences ("methods.Add.in.text", "notes[2].id") are cut at this length. */
#define IFACE_PATH_MAX 512

/* Where in a description or a value a sentence points. */
struct json_path {
        char s[IFACE_PATH_MAX];
        size_t len;
};

/* Append to the path (cut at its size); returns the length to restore with iface_path_pop. */
size_t iface_path_pushf(struct json_path *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append a member ("key" at the top, ".key" below); returns the length to restore with iface_path_pop. */
size_t iface_path_push(struct json_path *p, const char *key);
/* Cut the path back to the length `old` that iface_path_push or iface_path_pushf returned. */
void iface_path_pop(struct json_path *p, size_t old);

/* The names of the scalar kinds (IFACE_BOOL to IFACE_ANY), as in descriptions. */
extern const char *const iface_scalar_names[];
