/* SPDX-License-Identifier: MIT */
/*
 * libipcbus: the ipcbus client library.
 *
 * Conventions: every fallible function returns a negative errno on failure
 * and 0 (or a documented positive value) on success; output parameters are
 * named ret_* and are left untouched on failure; *_unref() accepts NULL and
 * returns NULL. The library never logs, never exits and owns no event loop:
 * it exposes ipcbus_get_fd / ipcbus_get_events / ipcbus_get_timeout /
 * ipcbus_process for any loop, and ipcbus_attach_event for libevent.
 *
 * Bodies are JSON objects with named members. Applications build them with
 * ipcbus_message_append() and read them with ipcbus_message_read(): typed,
 * by name, nested values included, no JSON text written by hand (see
 * "typed bodies" below). The raw-JSON calls (a body given as text, the body
 * handed over as the bytes that came) stay for tools.
 *
 * Local failures: a function that refuses its arguments (a bad name, path,
 * body, format or value) returns a negative errno and leaves a sentence
 * naming the argument and the rule it broke in ipcbus_last_error().
 *
 * Threads: a connection and everything made from it (messages, slots) is
 * used by one thread at a time; the library takes no locks. Different
 * connections may be used from different threads at once.
 * fork(): a connection belongs to the process that opened it. In a child
 * every function on an inherited connection returns -ECHILD (as sd-bus
 * does), and ipcbus_unref() there only frees memory and closes the child's
 * copy of the socket, without a word to the broker.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <ipcbus/wire.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ipcbus_bus ipcbus_bus;
typedef struct ipcbus_message ipcbus_message;
typedef struct ipcbus_slot ipcbus_slot;

struct event_base;
struct json_object;

/* An error that came from the remote side (or is to be sent to it). */
typedef struct ipcbus_error {
        char *name;    /* e.g. "org.ipcbus.Error.ServiceUnknown"; NULL when unset */
        char *message; /* human-readable; may be NULL */
} ipcbus_error;

#define IPCBUS_ERROR_NULL ((ipcbus_error){NULL, NULL})

/* Set name and message (copied). Returns -EINVAL for an invalid error name. */
int ipcbus_error_set(ipcbus_error *e, const char *name, const char *message);
int ipcbus_error_setf(ipcbus_error *e, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
bool ipcbus_error_is_set(const ipcbus_error *e);
bool ipcbus_error_has_name(const ipcbus_error *e, const char *name);
void ipcbus_error_free(ipcbus_error *e); /* frees the strings, resets to NULL */

/*
 * The last local failure of a libipcbus function in this thread, as a
 * sentence naming the argument and the rule it broke ("path 'foo': not a
 * valid object path (PROTOCOL.md section 5: ...)", "argument 'id': expected
 * uint, got string", "callback: NULL"). Every -EINVAL (or other refusal) a
 * function returns because of its arguments leaves one; failures from the
 * bus leave none. "" when none has been recorded. Valid until the next
 * libipcbus call in this thread.
 */
const char *ipcbus_last_error(void);

/* Name checks (PROTOCOL.md section 5), the ones the broker applies. */
bool ipcbus_is_bus_name(const char *s);     /* unique or well-known */
bool ipcbus_is_unique_name(const char *s);  /* ":1.42" */
bool ipcbus_is_well_known_name(const char *s);
bool ipcbus_is_object_path(const char *s);
bool ipcbus_is_interface_name(const char *s);
bool ipcbus_is_member_name(const char *s);
bool ipcbus_is_error_name(const char *s);

/* ---- connections ------------------------------------------------------ */

/*
 * Connect and say Hello. Session: $IPCBUS_ADDRESS, else
 * unix:path=$XDG_RUNTIME_DIR/ipcbus/bus. System: $IPCBUS_SYSTEM_ADDRESS, else
 * unix:path=/run/ipcbus/system_bus_socket. Address form: "unix:path=/abs/path".
 * Blocks until Hello is answered (at most 25 s).
 */
int ipcbus_open_session(ipcbus_bus **ret);
int ipcbus_open_system(ipcbus_bus **ret);
int ipcbus_open_address(const char *address, ipcbus_bus **ret);
/*
 * The bus that started this process: $IPCBUS_STARTER_ADDRESS (set by the
 * broker for activated services), else the session bus. What an activatable
 * service opens.
 */
int ipcbus_open_starter(ipcbus_bus **ret);

/*
 * References. ipcbus_open_* returns one; ipcbus_ref adds one. Dropping the
 * last reference closes the connection (if still open) and frees it.
 */
ipcbus_bus *ipcbus_ref(ipcbus_bus *bus);
ipcbus_bus *ipcbus_unref(ipcbus_bus *bus);

/*
 * Close the connection now, dropping every slot's callback, and keep the
 * handle: afterwards every function on it returns -ENOTCONN, and
 * ipcbus_unref still frees it. Idempotent.
 */
void ipcbus_close(ipcbus_bus *bus);

/* The unique name the broker gave (":1.42"). */
const char *ipcbus_get_unique_name(ipcbus_bus *bus);

/* True until the connection is lost (then every call returns -ENOTCONN). */
bool ipcbus_is_open(ipcbus_bus *bus);

/* ---- messages --------------------------------------------------------- */

typedef enum ipcbus_message_type {
        IPCBUS_MESSAGE_CALL = 1,
        IPCBUS_MESSAGE_RETURN = 2,
        IPCBUS_MESSAGE_ERROR = 3,
        IPCBUS_MESSAGE_SIGNAL = 4,
} ipcbus_message_type;

ipcbus_message *ipcbus_message_ref(ipcbus_message *m);
ipcbus_message *ipcbus_message_unref(ipcbus_message *m);

ipcbus_message_type ipcbus_message_get_type(ipcbus_message *m);
uint32_t ipcbus_message_get_serial(ipcbus_message *m);
uint32_t ipcbus_message_get_reply_serial(ipcbus_message *m); /* 0 if none */
const char *ipcbus_message_get_sender(ipcbus_message *m);    /* NULL if none */
const char *ipcbus_message_get_destination(ipcbus_message *m);
const char *ipcbus_message_get_path(ipcbus_message *m);
const char *ipcbus_message_get_interface(ipcbus_message *m);
const char *ipcbus_message_get_member(ipcbus_message *m);
const char *ipcbus_message_get_error_name(ipcbus_message *m); /* error messages only */
int64_t ipcbus_message_get_sender_uid(ipcbus_message *m);     /* -1 if absent */
int64_t ipcbus_message_get_sender_pid(ipcbus_message *m);     /* -1 if absent */
bool ipcbus_message_get_no_reply(ipcbus_message *m);
/* The body as received: JSON text of body_len bytes, NUL-terminated; "" when absent. */
const char *ipcbus_message_get_body(ipcbus_message *m, size_t *ret_len);
/* The header as received (JSON text, NUL-terminated), for tools that print it. */
const char *ipcbus_message_get_header(ipcbus_message *m, size_t *ret_len);
/* For an error message: fill e with its name and the body's "message" member. */
int ipcbus_message_get_error(ipcbus_message *m, ipcbus_error *e);
/* The decoded value of a top-level string member of the body, or NULL (raw; see ipcbus_message_read). */
const char *ipcbus_message_get_arg(ipcbus_message *m, const char *key);
/*
 * The body as a json-c tree (a new reference the caller puts; an empty
 * object when the message has none), for programs that already use json-c.
 */
int ipcbus_message_get_json(ipcbus_message *m, struct json_object **ret);
/* The connection a message came in on (valid while the message lives). */
ipcbus_bus *ipcbus_message_get_bus(ipcbus_message *m);

/* ---- typed bodies ----------------------------------------------------- */

/*
 * Why a format string: a body is an object of named, typed members, and a
 * format that names them ("id:t text:s") says in one line what a reader of
 * the code needs, checks each value's type as sd-bus's "su" does, and needs
 * no second JSON library, no trees and no escaping by hand. Containers whose
 * length is known only at run time (arrays, maps) are opened and closed, as
 * sd-bus opens containers. The types are those of PROTOCOL.md section 13
 * (interface descriptions):
 *
 *   letter  type     append takes           read stores to
 *   b       bool     int                    bool *
 *   i       int      int                    int *       (refused if out of range)
 *   x       int      int64_t                int64_t *
 *   u       uint     unsigned               unsigned *  (refused if out of range)
 *   t       uint     uint64_t               uint64_t *
 *   d       double   double                 double *    (an integer is accepted)
 *   s       string   const char *           const char **
 *   y       bytes    const void *, size_t   const void **, size_t *   (base64, or raw in a memfd body)
 *   h       fd       int (duplicated)       int *       (borrowed; see ipcbus_message_take_fd)
 *   v       any      const char * JSON text const char ** JSON text of the value
 *   n       null     (nothing)              (not for reading)
 *   {...}   struct   its members, inline    its members, inline
 *   ?T      optional: as T               as T; an absent or null member leaves
 *                                           the output untouched (not an error)
 *
 * In an object (the body itself, a struct, an opened object) each value is
 * named: "name:T", separated by spaces or commas ("id:t, text:s",
 * "point:{x:d y:d}"). In an array, or at a single value (a property's
 * getter and setter), values have no name ("t", "{id:t text:s}"). A name of
 * "%" takes the name from the argument list (const char *) before the
 * value, for maps.
 * Appending ?s, ?y or ?v with NULL writes null; other optional appends are
 * written as T.
 *
 * Strings read (s, y, v) point into the message and live as long as it does.
 * Integers with a magnitude above 2^53 - 1 are written as decimal strings and
 * accepted either way (PROTOCOL.md 13.2), so a JavaScript peer loses nothing.
 *
 * Every function returns a negative errno on failure with ipcbus_last_error()
 * naming the member ("argument 'notes[2].id': expected uint, got string"):
 * -EINVAL for a bad format or value, -EBADMSG for a body that does not match
 * the format when reading, -ENOMEM.
 */

/* A call to send with ipcbus_call_message / ipcbus_call_message_async / ipcbus_send (no_reply). */
int ipcbus_message_new_call(ipcbus_bus *bus, ipcbus_message **ret, const char *destination, const char *path,
                            const char *interface, const char *member);
/* A signal (broadcast; ipcbus_message_set_destination makes it unicast), sent with ipcbus_send. */
int ipcbus_message_new_signal(ipcbus_bus *bus, ipcbus_message **ret, const char *path, const char *interface,
                              const char *member);
/* The return for `call`, sent with ipcbus_send. When the call was dispatched to a described method,
 * ipcbus_send checks the body against the method's results. */
int ipcbus_message_new_return(ipcbus_message *call, ipcbus_message **ret);

/* Header fields of a message being built (not yet sent). */
int ipcbus_message_set_destination(ipcbus_message *m, const char *destination);
int ipcbus_message_set_no_reply(ipcbus_message *m, bool no_reply);
int ipcbus_message_set_no_auto_start(ipcbus_message *m, bool no_auto_start);

/* Append members (in an object) or elements (in an array) as the format says. */
int ipcbus_message_append(ipcbus_message *m, const char *format, ...);
int ipcbus_message_appendv(ipcbus_message *m, const char *format, va_list ap);
/*
 * Open a container as the next value: "name" in an object, NULL in an array
 * or at a single value. kind is '[' (array) or '{' (object: a struct or a
 * map, filled with named values). Every open is closed before sending.
 */
int ipcbus_message_open(ipcbus_message *m, char kind, const char *name);
int ipcbus_message_close(ipcbus_message *m);
/*
 * The whole body as JSON text (a JSON object), for tools; replaces the
 * members appended before and ends appending. Descriptors appended before
 * ("h") stay attached, so that the text can name them by index.
 */
int ipcbus_message_set_body(ipcbus_message *m, const char *json);

/*
 * Read members (in an object: by name, in any order; absent members are an
 * error unless optional) or the next element (in an array). Returns 1 when it
 * read, 0 at the end of an array (nothing read), negative errno.
 */
int ipcbus_message_read(ipcbus_message *m, const char *format, ...);
int ipcbus_message_readv(ipcbus_message *m, const char *format, va_list ap);
/*
 * Step into the member `name` (in an object) or the next element (NULL, in
 * an array): an array or object becomes the place reads happen, as sd-bus
 * enters containers. Returns 1, 0 at the end of an array, -ENXIO when the
 * member is absent, -EBADMSG when it is not an array or object.
 */
int ipcbus_message_enter(ipcbus_message *m, const char *name);
int ipcbus_message_exit(ipcbus_message *m);
/* Start reading from the top of the body again. */
int ipcbus_message_rewind(ipcbus_message *m);

/* ---- descriptors -------------------------------------------------------- */

/* Descriptors travel with their frame (at most IPCBUS_FDS_MAX); the body
 * names them by index ("h" in a format). */
unsigned ipcbus_message_get_n_fds(ipcbus_message *m);
/* The descriptor at index: still the message's (closed when it is freed). -EBADF/-ENXIO when none. */
int ipcbus_message_get_fd(ipcbus_message *m, unsigned index);
/* Take the descriptor at index: the caller owns it and closes it. A second take gives -EBADF. */
int ipcbus_message_take_fd(ipcbus_message *m, unsigned index);

/* ---- calls ------------------------------------------------------------ */

/* timeout_usec: 0 means the default (25 s); IPCBUS_TIMEOUT_INFINITE waits forever. */
#define IPCBUS_TIMEOUT_DEFAULT 0
#define IPCBUS_TIMEOUT_INFINITE UINT64_MAX

/*
 * Call a method and wait for the answer, dispatching nothing else meanwhile
 * (other incoming messages are queued for ipcbus_process). The timeout is
 * also sent to the broker, which enforces it. Returns 0 and *ret_reply (if
 * not NULL) on a return; -EREMOTEIO with *ret_error (if not NULL) filled on an
 * error reply (including the broker's Timeout and NoReply); -ETIMEDOUT if no
 * answer came locally in time; other negative errno on local failures.
 */
int ipcbus_call(ipcbus_bus *bus, const char *destination, const char *path, const char *interface, const char *member,
                const char *body, uint64_t timeout_usec, ipcbus_message **ret_reply, ipcbus_error *ret_error);

/*
 * Message callback. For a call's answer, m is the return or error message
 * (ipcbus_message_get_type tells which). Return >= 0 normally; a negative
 * return is ignored for replies and signals, and for method handlers it turns
 * into an error reply (ret_error if set, otherwise Failed with strerror).
 */
typedef int (*ipcbus_message_handler)(ipcbus_message *m, void *userdata, ipcbus_error *ret_error);

/*
 * Call a method without waiting; the handler runs from ipcbus_process with the
 * answer (a local timeout produces an org.ipcbus.Error.Timeout error message).
 * With ret_slot NULL the call is "floating": its slot belongs to the bus.
 * Dropping the slot before the answer cancels the callback.
 */
int ipcbus_call_async(ipcbus_bus *bus, ipcbus_slot **ret_slot, const char *destination, const char *path,
                      const char *interface, const char *member, const char *body, uint64_t timeout_usec,
                      ipcbus_message_handler callback, void *userdata);

/*
 * Typed calls: the body built from format and arguments (NULL format: no
 * body). Returns as ipcbus_call. Read the reply with ipcbus_message_read.
 */
int ipcbus_call_method(ipcbus_bus *bus, const char *destination, const char *path, const char *interface,
                       const char *member, uint64_t timeout_usec, ipcbus_message **ret_reply, ipcbus_error *ret_error,
                       const char *format, ...);

/* Send a built call and wait for its answer (as ipcbus_call), or not (as ipcbus_call_async). */
int ipcbus_call_message(ipcbus_bus *bus, ipcbus_message *call, uint64_t timeout_usec, ipcbus_message **ret_reply,
                        ipcbus_error *ret_error);
int ipcbus_call_message_async(ipcbus_bus *bus, ipcbus_slot **ret_slot, ipcbus_message *call, uint64_t timeout_usec,
                              ipcbus_message_handler callback, void *userdata);

/*
 * Send a built message without waiting: a signal, a return, or a call with
 * no_reply. A message is sent at most once (-EALREADY after).
 */
int ipcbus_send(ipcbus_bus *bus, ipcbus_message *m);

/* Send a call that expects no reply (no_reply flag set). */
int ipcbus_send_oneway(ipcbus_bus *bus, const char *destination, const char *path, const char *interface,
                       const char *member, const char *body);

/* ---- signals ---------------------------------------------------------- */

/*
 * Emit a typed signal (broadcast). When an object exported with
 * ipcbus_add_object_vtable describes the signal at path, the body is checked
 * against its arguments first, and refused locally (-EBADMSG, naming the
 * argument) if it breaks them.
 */
int ipcbus_emit(ipcbus_bus *bus, const char *path, const char *interface, const char *member, const char *format,
                ...);

/* Emit a signal; destination NULL broadcasts, a bus name unicasts. */
int ipcbus_emit_signal(ipcbus_bus *bus, const char *destination, const char *path, const char *interface,
                       const char *member, const char *body);

/*
 * Subscribe: AddMatch on the broker with `rule` (string form,
 * "type=signal,interface=org.x.I,member=M,arg.key=value"; "type=signal" is
 * implied when no type is given), and run callback for each incoming signal
 * matching it. Blocks for the broker's answer. Dropping the slot removes the
 * match. Returns -EINVAL for an invalid rule (ipcbus_last_error names the
 * key or value at fault), -EREMOTEIO if the broker refused, with its error
 * (AccessDenied, LimitsExceeded, ...) in ret_error when not NULL.
 */
int ipcbus_add_match(ipcbus_bus *bus, ipcbus_slot **ret_slot, const char *rule, ipcbus_message_handler callback,
                     void *userdata, ipcbus_error *ret_error);

/*
 * See every incoming message before it is dispatched (for monitors and
 * debugging). Return 1 from the handler to consume the message.
 */
int ipcbus_add_filter(ipcbus_bus *bus, ipcbus_slot **ret_slot, ipcbus_message_handler callback, void *userdata);

/*
 * Turn this connection into a monitor (BecomeMonitor) with the given rules
 * (string form; NULL or empty array: everything). Afterwards the connection
 * only receives: use a filter to see the traffic. -EREMOTEIO with the
 * broker's error (AccessDenied, ...) in ret_error when not NULL.
 */
int ipcbus_become_monitor(ipcbus_bus *bus, const char *const *rules, size_t n_rules, ipcbus_error *ret_error);

/* ---- names ------------------------------------------------------------ */

/*
 * RequestName with IPCBUS_NAME_* flags. Returns the positive result code
 * (IPCBUS_REQUEST_NAME_*) or a negative errno (-EREMOTEIO with ret_error).
 */
int ipcbus_request_name(ipcbus_bus *bus, const char *name, unsigned flags, ipcbus_error *ret_error);
/* ReleaseName: IPCBUS_RELEASE_NAME_* or negative errno. */
int ipcbus_release_name(ipcbus_bus *bus, const char *name, ipcbus_error *ret_error);

/* ---- exporting objects ------------------------------------------------ */

typedef struct ipcbus_method {
        const char *member;
        ipcbus_message_handler handler;
} ipcbus_method;

/*
 * Serve `interface` at `path`: incoming calls whose member appears in the
 * NULL-member-terminated `methods` table run its handler with the call
 * message. The handler answers with ipcbus_reply / ipcbus_reply_error, now or
 * later (take a reference to reply later); returning negative sends an error
 * for it. Calls to an exported path with an unknown member get UnknownMethod,
 * an unknown interface UnknownInterface, an unknown path UnknownObject.
 * The table must outlive the slot. Dropping the slot unexports.
 */
int ipcbus_add_object(ipcbus_bus *bus, ipcbus_slot **ret_slot, const char *path, const char *interface,
                      const ipcbus_method *methods, void *userdata);

/* ---- interface descriptions ------------------------------------------- */

/*
 * An interface description (PROTOCOL.md section 13): methods with named,
 * typed arguments and results, signals, properties. Parsed once, shared by
 * reference, immutable.
 */
typedef struct ipcbus_interface ipcbus_interface;

/* Parse a description from JSON text. -EINVAL with ipcbus_last_error naming the fault and where. */
int ipcbus_interface_parse(const char *json, ipcbus_interface **ret);
/*
 * Load NAME.json from the directories of $IPCBUS_INTERFACE_PATH (colon
 * separated), then $(datadir)/ipcbus/interfaces. -ENOENT when none has it.
 */
int ipcbus_interface_load(const char *name, ipcbus_interface **ret);
ipcbus_interface *ipcbus_interface_ref(ipcbus_interface *iface);
ipcbus_interface *ipcbus_interface_unref(ipcbus_interface *iface);
const char *ipcbus_interface_get_name(const ipcbus_interface *iface);
/* The description as canonical JSON text (what Introspect returns for it). */
const char *ipcbus_interface_get_json(const ipcbus_interface *iface);
/*
 * Check a body (JSON text, NULL: none) against the description of `member`:
 * a method's arguments (IPCBUS_MESSAGE_CALL), its results
 * (IPCBUS_MESSAGE_RETURN) or a signal's arguments (IPCBUS_MESSAGE_SIGNAL).
 * 0 when it fits; -EBADMSG with ret_error (if not NULL) set to InvalidArgs
 * naming the argument, the expected type and what came; -ENOENT when the
 * interface has no such member.
 */
int ipcbus_interface_check(const ipcbus_interface *iface, ipcbus_message_type type, const char *member,
                           const char *body, ipcbus_error *ret_error);

/* ---- exporting described objects --------------------------------------- */

/*
 * A property's getter appends its one value to `reply` (at a single value:
 * ipcbus_message_append(reply, "t", count)); a setter reads it from `value`
 * (ipcbus_message_read(value, "t", &count)). Return >= 0, or negative with
 * ret_error set (else Failed).
 */
typedef int (*ipcbus_property_get_handler)(ipcbus_message *reply, const char *property, void *userdata,
                                           ipcbus_error *ret_error);
typedef int (*ipcbus_property_set_handler)(ipcbus_message *value, const char *property, void *userdata,
                                           ipcbus_error *ret_error);

typedef enum ipcbus_vtable_kind {
        IPCBUS_VTABLE_END_KIND = 0,
        IPCBUS_VTABLE_METHOD_KIND = 1,
        IPCBUS_VTABLE_PROPERTY_KIND = 2,
} ipcbus_vtable_kind;

typedef struct ipcbus_vtable {
        ipcbus_vtable_kind kind;
        const char *member;
        ipcbus_message_handler method;
        ipcbus_property_get_handler get;
        ipcbus_property_set_handler set;
} ipcbus_vtable;

#define IPCBUS_METHOD(member, handler) {IPCBUS_VTABLE_METHOD_KIND, (member), (handler), NULL, NULL}
#define IPCBUS_PROPERTY(member, get, set) {IPCBUS_VTABLE_PROPERTY_KIND, (member), NULL, (get), (set)}
#define IPCBUS_VTABLE_END {IPCBUS_VTABLE_END_KIND, NULL, NULL, NULL, NULL}

/*
 * Serve the described interface at `path` with one table: a handler for
 * every method of the description, a getter for every readable property and
 * a setter for every writable one (else -EINVAL naming what is missing or
 * extra). Before a handler runs, the call is checked against the method's
 * arguments and answered InvalidArgs (naming the argument, the expected type
 * and what came) if it breaks them; members the description does not name
 * are ignored, for peers newer than us (PROTOCOL.md 13.3). Returns built
 * with ipcbus_message_new_return are checked against the results.
 * The library answers, for every object: org.ipcbus.Introspectable
 * (Introspect, at the path and at every path above it), org.ipcbus.Properties
 * (Get, GetAll, Set) and org.ipcbus.Peer. An object manager above the path
 * announces it (InterfacesAdded, and InterfacesRemoved when the slot is
 * dropped). The vtable must outlive the slot; the slot holds a reference
 * on iface.
 */
int ipcbus_add_object_vtable(ipcbus_bus *bus, ipcbus_slot **ret_slot, const char *path, ipcbus_interface *iface,
                             const ipcbus_vtable *vtable, void *userdata);

/*
 * Emit org.ipcbus.Properties.PropertiesChanged for the named properties of
 * an object exported with ipcbus_add_object_vtable (NULL-terminated list):
 * the current values of those that announce changes ("changes": "emit"),
 * the names of those that only invalidate. -EINVAL for a property that is
 * not there or is "const".
 */
int ipcbus_emit_properties_changed(ipcbus_bus *bus, const char *path, const char *interface, const char *property,
                                   ...) __attribute__((sentinel));

/*
 * Serve org.ipcbus.ObjectManager at `path`: GetManagedObjects lists every
 * described object below it with its interfaces and their properties, and
 * InterfacesAdded / InterfacesRemoved are emitted as objects below it are
 * exported and dropped. Dropping the slot stops it.
 */
int ipcbus_add_object_manager(ipcbus_bus *bus, ipcbus_slot **ret_slot, const char *path);

/*
 * Answer a call with a typed body (format NULL: an empty one). No-op
 * (returns 0) if the call has no_reply. Checked against the method's results
 * when the call was dispatched to a described method.
 */
int ipcbus_reply_method(ipcbus_message *call, const char *format, ...);

/* Answer a call with a body given as JSON text (NULL: none). No-op (returns 0) if the call has no_reply. */
int ipcbus_reply(ipcbus_message *call, const char *body);
int ipcbus_reply_error(ipcbus_message *call, const char *name, const char *message);
int ipcbus_reply_errorf(ipcbus_message *call, const char *name, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* ---- slots ------------------------------------------------------------ */

/* Drop a registration (match, filter, object, pending async call). */
ipcbus_slot *ipcbus_slot_unref(ipcbus_slot *slot);
void *ipcbus_slot_get_userdata(ipcbus_slot *slot);

/* ---- event loop integration ------------------------------------------ */

/* The socket to watch. */
int ipcbus_get_fd(ipcbus_bus *bus);
/* POLLIN, plus POLLOUT while output is queued. */
int ipcbus_get_events(ipcbus_bus *bus);
/*
 * The next deadline on CLOCK_MONOTONIC in µs (an async call's timeout), or
 * UINT64_MAX for none; 0 when work is already queued. Returns 0.
 */
int ipcbus_get_timeout(ipcbus_bus *bus, uint64_t *ret_usec);
/*
 * Do one unit of work without blocking: write queued output, read what is
 * there, dispatch one message or expire one timeout. Returns 1 if it did
 * something (call again), 0 if there was nothing to do, negative errno on
 * failure (-ECONNRESET when the broker hung up).
 */
int ipcbus_process(ipcbus_bus *bus);
/* Block until there is something to process or timeout_usec passed (UINT64_MAX: no limit). */
int ipcbus_wait(ipcbus_bus *bus, uint64_t timeout_usec);
/* Block until all queued output is written. */
int ipcbus_flush(ipcbus_bus *bus);
/*
 * Serve the connection until it ends: process, and wait when there is
 * nothing to do. Returns 0 when the broker hung up or a callback closed the
 * connection (ipcbus_close), a negative errno on failure. What a service's
 * main() ends with when it needs no other loop.
 */
int ipcbus_run(ipcbus_bus *bus);

/* Drive the connection from a libevent event_base (process on readiness and timeouts). */
int ipcbus_attach_event(ipcbus_bus *bus, struct event_base *base);
int ipcbus_detach_event(ipcbus_bus *bus);

/* Human-readable text for negative returns of this library (strerror-like). */
const char *ipcbus_strerror(int error);

/*
 * For __attribute__((cleanup)): a local that drops its reference (or frees
 * its strings) when it goes out of scope, as sd-bus's sd_bus_unrefp does.
 * Each takes a pointer to the local, which may hold NULL.
 */
static inline void ipcbus_unrefp(ipcbus_bus **bus)
{
        ipcbus_unref(*bus);
}

static inline void ipcbus_message_unrefp(ipcbus_message **m)
{
        ipcbus_message_unref(*m);
}

static inline void ipcbus_error_freep(ipcbus_error *e)
{
        ipcbus_error_free(e);
}

static inline void ipcbus_slot_unrefp(ipcbus_slot **s)
{
        ipcbus_slot_unref(*s);
}

static inline void ipcbus_interface_unrefp(ipcbus_interface **i)
{
        ipcbus_interface_unref(*i);
}

#ifdef __cplusplus
}
#endif
