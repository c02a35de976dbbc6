/* SPDX-License-Identifier: MIT */
/*
 * libipcbus internals, shared by the modules of libclient/:
 *   bus.c          the connection: socket, Hello, output and input queues,
 *                  calls
 *   slot.c         registrations (pending calls, matches, filters, objects),
 *                  the owners of the well-known names matches use as
 *                  sender, and the dispatch of an incoming message to them
 *   message.c      the ipcbus_message handle, its descriptors, and replies
 *   builder.c      messages being built: header fields, typed appends (JSON
 *                  written into a jbuf), descriptors duplicated into them
 *   reader.c       typed reads: the body indexed once (msg_body_index) and
 *                  walked with a stack of cursors over its nodes
 *   value.c        what building and reading share: the format scanner,
 *                  type names, base64, the member path named in errors
 *   object.c       exported objects (untyped and described), the index of
 *                  their paths, the calls to them (org.ipcbus.Peer answered
 *                  there), and the check of what is sent against the
 *                  descriptions; object.h is what it shares with the three
 *                  files of the other standard interfaces:
 *   introspect.c   org.ipcbus.Introspectable: Introspect, the children
 *   properties.c   org.ipcbus.Properties: Get, GetAll, Set through the
 *                  getters and setters, ipcbus_emit_properties_changed
 *   manager.c      org.ipcbus.ObjectManager: object managers,
 *                  GetManagedObjects, InterfacesAdded and InterfacesRemoved
 *   iface.c        interface descriptions (iface.h): parsing, loading,
 *                  finding members
 *   iface-check.c  checking JSON values against the described types
 *   memfd.c        bodies in sealed memfds (PROTOCOL.md 14): sent above
 *                  the connection's threshold, mapped on receipt
 *   event.c        the event-loop interface and the libevent attachment
 *   error.c        ipcbus_error and ipcbus_strerror
 * All wire work goes through protocol/ (frame, message, match, jbuf, jscan).
 * The connection's internals are named client_* (and the sender owners
 * struct client_name_owner) so that no name means one thing here and
 * another in the daemon, whose bus_* and struct name_owner are its own.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <ipcbus/ipcbus.h>

#include "protocol/frame.h"
#include "protocol/jbuf.h"
#include "protocol/match.h"
#include "protocol/message.h"
#include "protocol/msg-queue.h"
#include "util/list.h"
#include "util/map.h"
#include "util/util.h"

#define _public_ __attribute__((visibility("default")))

struct iface_method;
struct json_object;

/* Calls: the default timeout, and how much longer than the broker we wait
 * locally, so that the broker's Timeout error normally arrives first. */
#define BUS_TIMEOUT_DEFAULT_USEC (25ull * 1000 * 1000)
#define BUS_TIMEOUT_GRACE_USEC (250ull * 1000)

/* What one connection may hold locally. */
#define BUS_RQUEUE_MAX (384u * 1024u)               /* parsed messages waiting for dispatch */
#define BUS_WQUEUE_MAX_BYTES (256ull * 1024 * 1024) /* encoded bytes waiting to be written */
#define BUS_FDS_PENDING_MAX (4u * IPCBUS_FDS_MAX)   /* received fds not yet claimed by a frame */

enum slot_type {
        SLOT_CALL, /* pending async call, ordered by deadline */
        SLOT_MATCH,
        SLOT_FILTER,
        SLOT_OBJECT,
        SLOT_MANAGER, /* an object manager (org.ipcbus.ObjectManager) at a path */
        _SLOT_TYPE_MAX,
};

struct slot_list {
        struct ipcbus_slot *first;
        struct ipcbus_slot *last;
};

/* The objects exported at one path, in the order they were added. */
struct client_object_path {
        struct map_node node; /* in bus->object_paths, keyed by path */
        struct list objects;  /* their slots, by object.link */
        char path[];
};

struct ipcbus_slot {
        unsigned n_ref;
        enum slot_type type;
        ipcbus_bus *bus;    /* set while registered with a bus (not a reference) */
        bool floating;      /* the bus holds the only reference */
        unsigned iteration; /* the last dispatch round this slot ran in */
        ipcbus_message_handler callback;
        void *userdata;
        struct ipcbus_slot *prev;
        struct ipcbus_slot *next;
        union {
                struct {
                        uint32_t serial;
                        uint64_t deadline;    /* CLOCK_MONOTONIC µs; UINT64_MAX: none */
                        struct map_node node; /* in bus->calls, keyed by serial */
                } call;
                struct {
                        struct match_rule rule;
                        char *rule_json; /* as sent with AddMatch, for RemoveMatch */
                } match;
                struct {
                        char *path;
                        char *interface;
                        const ipcbus_method *methods;  /* untyped (ipcbus_add_object); else NULL */
                        ipcbus_interface *iface;       /* described: a reference; else NULL */
                        const ipcbus_vtable *vtable;   /* described: its handlers */
                        struct client_object_path *at; /* while registered */
                        struct list link;              /* in at->objects */
                } object;
                struct {
                        char *path;
                } manager;
        };
};

/*
 * The owner of a well-known name that match rules of this connection use as
 * their sender, kept current from the driver's NameOwnerChanged (as sd-bus
 * does): the broker filters broadcasts by any of the connection's rules, so
 * the library must tell for itself which rule a message satisfies.
 */
struct client_name_owner {
        struct map_node node;            /* in bus->name_owners, keyed by name */
        unsigned n_ref;                  /* match slots whose rule has this sender */
        char owner[IPCBUS_NAME_MAX + 1]; /* unique name; "": none */
        char *rule_json;                 /* the NameOwnerChanged match, for RemoveMatch */
        char name[];
};

struct message_builder;
struct message_reader;

/*
 * A message is either received (msg set, builder NULL) or being built
 * (builder set, msg NULL) until it is sealed for sending: then msg holds the
 * encoded message and the builder is gone.
 */
struct ipcbus_message {
        unsigned n_ref;
        ipcbus_bus *bus;   /* a reference */
        struct msg *msg;   /* a reference; NULL while being built */
        char *header_text; /* NUL-terminated copy of the header, made on demand */
        bool replied;      /* a call that has been answered */
        bool built;        /* made by ipcbus_message_new_* (not received) */
        bool sent;         /* a built message that went out (ipcbus_send and the calls) */
        /* A call: the described method it was dispatched to (set by object.c);
         * a return: the method of the call it answers. NULL: not described.
         * method_iface is a reference on the description holding it, so that
         * a call answered after its object was dropped is still checked. */
        const struct iface_method *method;
        ipcbus_interface *method_iface;
        struct message_builder *builder; /* while being built */
        struct message_reader *reader;   /* the read cursors, from the first read on */
};

struct ipcbus_bus {
        unsigned n_ref;      /* the user's references, plus one per live ipcbus_message and running dispatch */
        unsigned n_user_ref; /* ipcbus_open_* and ipcbus_ref: the last ipcbus_unref closes */
        pid_t pid;           /* the process that opened it: in any other, every function gives -ECHILD */
        int fd;
        bool open;            /* connected: sending allowed */
        bool closed;          /* ipcbus_close() or the last ipcbus_unref() */
        bool monitor;         /* BecomeMonitor succeeded: the broker takes nothing more */
        bool processing;      /* inside ipcbus_process() */
        bool drained;         /* the last read took less than it could: the socket was empty then */
        bool hangup_reported; /* ipcbus_process() has returned hangup_error */
        int hangup_error;     /* why the connection ended (negative errno); 0 while open */
        char *unique_name;
        uint32_t next_serial;
        size_t memfd_threshold; /* bodies this large go in a memfd (memfd.c); 0: never */

        struct frame_reader reader;
        int *fds; /* received descriptors not yet claimed by a frame */
        size_t n_fds;
        struct msg_queue rqueue; /* parsed, waiting for dispatch */
        struct msg_queue wqueue; /* encoded, waiting to be written */
        size_t wqueue_offset;    /* bytes of the first queued message already written */
        size_t wqueue_bytes;

        struct slot_list slots[_SLOT_TYPE_MAX]; /* in registration order (calls: by deadline) */
        struct map calls;                       /* pending call slots by serial */
        struct map object_paths;                /* struct client_object_path by path */
        struct map name_owners;                 /* struct client_name_owner by name */
        unsigned iteration;                     /* dispatch round counter */
        unsigned generation;                    /* bumped on every slot (un)registration */

        struct event_base *event_base;
        struct event *ev_read;
        struct event *ev_write;
        struct event *ev_timer;
        bool ev_write_armed;
};

/* ---- bus.c ---- */
int client_check_pid(ipcbus_bus *bus);
int client_enter(ipcbus_bus *bus, bool need_open);
/* A reference on bus; both take NULL. */
ipcbus_bus *client_ref(ipcbus_bus *bus);
void client_unref(ipcbus_bus *bus);
uint32_t client_next_serial(ipcbus_bus *bus);
int client_send(ipcbus_bus *bus, struct msg *m);
int client_write(ipcbus_bus *bus);
int client_read(ipcbus_bus *bus, uint32_t want_serial, struct msg **ret_reply);
int client_poll(ipcbus_bus *bus, short events, uint64_t timeout_usec);
void client_hangup(ipcbus_bus *bus, int error);
int client_build_text(const struct msg_header *h, const char *body, struct msg **ret);
int client_build_call(ipcbus_bus *bus, const char *destination, const char *path, const char *interface,
                      const char *member, const char *body, uint64_t timeout_usec, bool no_reply, struct msg **ret);
char *client_name_body(const char *name, int flags);
int client_call_driver(ipcbus_bus *bus, const char *member, const char *body, struct msg **ret_reply,
                       ipcbus_error *ret_error);
uint64_t client_call_deadline(uint64_t timeout_usec);
uint32_t client_timeout_ms(uint64_t timeout_usec);

/* ---- slot.c ---- */
int slot_new(enum slot_type type, bool floating, ipcbus_message_handler callback, void *userdata, ipcbus_slot **ret);
ipcbus_slot *slot_ref(ipcbus_slot *s);
void slot_unref(ipcbus_slot *s);
int slot_link(ipcbus_slot *s, ipcbus_bus *bus);
void slot_unlink(ipcbus_slot *s);
void slot_disconnect_all(ipcbus_bus *bus);
int slot_fail_call(ipcbus_slot *s, const char *error_name, const char *text);
void slot_dispatch(ipcbus_bus *bus, ipcbus_message *m);

/* ---- object.c ---- */
/* Enter an object slot in bus->object_paths (0 or -ENOMEM, nothing changed then), and take it out. */
int object_path_link(ipcbus_bus *bus, ipcbus_slot *s);
void object_path_unlink(ipcbus_bus *bus, ipcbus_slot *s);
/* Free what an object or manager slot owns. */
void object_slot_free(ipcbus_slot *s);
/* Answer an incoming call: the standard interfaces, or the object exported at its path. */
void object_dispatch_call(ipcbus_bus *bus, ipcbus_message *m);
/*
 * Check a message about to be sent against its description: a return whose
 * m->method is set against the method's results, a signal from an exported
 * described object against the signal's arguments, strictly. Returns 0, or
 * -EBADMSG with ipcbus_last_error() naming the field.
 */
int object_check_outgoing(ipcbus_bus *bus, ipcbus_message *m);

/* ---- message.c ---- */
/*
 * Wrap a received m (a new reference is taken) for the user; NULL on
 * allocation failure. bus may be NULL: a message that can only be read
 * (the fuzz target and unit tests make them from bytes without a connection).
 */
ipcbus_message *message_new(ipcbus_bus *bus, struct msg *m);
/* Set the described method m was dispatched to (or answers), and a reference on iface, which holds it. */
void message_set_method(ipcbus_message *m, const ipcbus_interface *iface, const struct iface_method *method);
int message_get_int(struct msg *m, const char *key, int64_t min, int64_t max, int64_t *ret);
int message_build_error(uint32_t reply_serial, uint32_t serial, const char *sender, const char *destination,
                        const char *error_name, const char *text, struct msg **ret);

/* ---- value.c ---- */
/* A format being scanned (see "typed bodies" in ipcbus.h). */
struct fmt {
        const char *format; /* the whole format, named in errors */
        const char *p;      /* the next character */
};

struct fmt_item {
        char type;        /* a letter of the table, or '{' (the scanner is then just past it) */
        bool optional;    /* "?T" */
        bool percent;     /* named "%": the caller takes the name from its arguments */
        const char *name; /* NULL when unnamed (in an array, at a single value) */
        char name_buf[256];
};

/*
 * The next item of f: "name:T" when named, else "T", after any spaces and
 * commas. Returns 1 with *ret, 0 at `end` ('\0' or the '}' of an inline
 * struct, not consumed), -EINVAL with a sentence naming the format.
 */
int fmt_next(struct fmt *f, bool named, char end, struct fmt_item *ret);
/* The protocol's name of a format letter's type ("uint" for 't'), "struct" for '{'. */
const char *value_type_name(char type);
/* Append n bytes as a JSON string in base64 (RFC 4648, padded). */
void value_base64_put(struct jbuf *b, const uint8_t *p, size_t n);
/* Decode base64 text (padded; out has room for len / 4 * 3 bytes). 0 or -EBADMSG. */
int value_base64_decode(const char *s, size_t len, uint8_t *out, size_t *ret_len);
/*
 * json-c reads an integer literal beyond 64 bits as the nearest bound
 * (18446744073709551616 as 2^64-1), which no range check could tell from
 * the bound itself. Returns 1 and a malloc'd copy of the JSON text in which
 * each such literal is followed by ".0", a double for json-c (which then
 * fails int and uint, and is the number it says for double); 0 when the
 * text has none (nothing allocated); -ENOMEM.
 */
int value_json_widen(const char *text, size_t len, char **ret, size_t *ret_len);
/* One JSON value from text[0..len) into a json-c tree, integers beyond 64 bits widened (see value.c). */
int value_json_parse(const char *text, size_t len, bool checked, struct json_object **ret);
/*
 * The member path named in errors ("notes[2].id"): push a member name, or
 * an index when name is NULL; returns the length to pop back to.
 */
size_t value_path_push(struct jbuf *path, const char *name, size_t index);
void value_path_pop(struct jbuf *path, size_t len);
const char *value_path(const struct jbuf *path);

/* ---- builder.c ---- */
void builder_free(struct message_builder *b);
/* The header of m, received or being built. */
const struct msg_header *message_header(ipcbus_message *m);
/*
 * Seal a built message: close the body, take the next serial (a call
 * expecting a reply gets timeout_usec as its timeout), encode it with its
 * descriptors into m->msg. A no-op for a message already sealed. Returns 0,
 * -EPERM for a received message, -EINVAL (containers left open), -ENOMEM.
 */
int message_seal(ipcbus_message *m, uint64_t timeout_usec);
/*
 * At a property's value: the next append (or open) writes the value of
 * member `name` of the current object, with no name in its format
 * ("t", "{id:t text:s}"), e.g. a getter's reply. Returns 0 or -EINVAL.
 */
int message_begin_value(ipcbus_message *m, const char *name);
/* A return being built: the call it answers (NULL for other messages, and once sealed). */
ipcbus_message *message_answered_call(ipcbus_message *m);
/* The descriptors appended to a message being built. */
unsigned builder_n_fds(const struct message_builder *b);

/* ---- reader.c ---- */
void reader_free(struct message_reader *r);
/*
 * The reading counterpart: until the next exit or rewind, reads of a format
 * with one unnamed type ("t") read member `name` of the current object (a
 * setter's value). Returns 0, -EBADMSG (body not an object), -ENOMEM.
 */
int message_enter_value(ipcbus_message *m, const char *name);

/* ---- error.c ---- */
int error_from_msg(struct msg *m, ipcbus_error *e);
int error_from_proto(int r);
/* Record a sentence for ipcbus_last_error() and return r (a negative errno). */
int client_fail(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * Check the names of a header about to be built (destination, path,
 * interface, member, error name; those a call or signal requires): 0, or
 * -EINVAL with a sentence naming the field.
 */
int client_check_header(const struct msg_header *h);
/* The kinds of names client_check_name knows the rules of. */
enum client_name {
        CLIENT_NAME_BUS,
        CLIENT_NAME_WELL_KNOWN,
        CLIENT_NAME_PATH,
        CLIENT_NAME_INTERFACE,
        CLIENT_NAME_MEMBER,
        CLIENT_NAME_ERROR,
};
/*
 * Check argument `arg` (its name in the sentence) is a valid name of `kind`:
 * 0, or -EINVAL with "path 'foo': not a valid object path (PROTOCOL.md
 * section 5: <the rule>)" ("path: NULL (...)" for NULL).
 */
int client_check_name(const char *arg, const char *value, enum client_name kind);
/* -EINVAL with the sentence "<arg>: NULL". */
int client_fail_null(const char *arg);
/* Check a body given as JSON text (NULL: none): 0, or -EINVAL with a sentence. */
int client_check_body(const char *body);
/* A protocol/ result of building a message, with a sentence for a PROTO_E_* code. */
int client_fail_proto(int r);

/* ---- event.c ---- */
void client_event_update(ipcbus_bus *bus);
void client_event_update_write(ipcbus_bus *bus);

/*
 * Record a local failure for ipcbus_last_error() (a sentence naming the
 * argument and the rule it broke) and return r, a negative errno.
 */
int client_fail(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
