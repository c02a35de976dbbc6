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
 * Bodies are JSON text: a JSON object with named members (NULL means no
 * body). The library checks outgoing bodies are well-formed and hands
 * incoming ones over as the bytes that came.
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

/* Close the connection and free it, dropping every slot's callback. */
ipcbus_bus *ipcbus_unref(ipcbus_bus *bus);

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
/* The decoded value of a top-level string member of the body, or NULL. */
const char *ipcbus_message_get_arg(ipcbus_message *m, const char *key);
/* The connection a message came in on (valid while the message lives). */
ipcbus_bus *ipcbus_message_get_bus(ipcbus_message *m);

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

/* Send a call that expects no reply (no_reply flag set). */
int ipcbus_send_oneway(ipcbus_bus *bus, const char *destination, const char *path, const char *interface,
                       const char *member, const char *body);

/* ---- signals ---------------------------------------------------------- */

/* Emit a signal; destination NULL broadcasts, a bus name unicasts. */
int ipcbus_emit_signal(ipcbus_bus *bus, const char *destination, const char *path, const char *interface,
                       const char *member, const char *body);

/*
 * Subscribe: AddMatch on the broker with `rule` (string form,
 * "type=signal,interface=org.x.I,member=M,arg.key=value"; "type=signal" is
 * implied when no type is given), and run callback for each incoming signal
 * matching it. Blocks for the broker's answer. Dropping the slot removes the
 * match. Returns -EINVAL for an invalid rule, -EREMOTEIO if the broker refused.
 */
int ipcbus_add_match(ipcbus_bus *bus, ipcbus_slot **ret_slot, const char *rule, ipcbus_message_handler callback,
                     void *userdata);

/*
 * See every incoming message before it is dispatched (for monitors and
 * debugging). Return 1 from the handler to consume the message.
 */
int ipcbus_add_filter(ipcbus_bus *bus, ipcbus_slot **ret_slot, ipcbus_message_handler callback, void *userdata);

/*
 * Turn this connection into a monitor (BecomeMonitor) with the given rules
 * (string form; NULL or empty array: everything). Afterwards the connection
 * only receives: use a filter to see the traffic.
 */
int ipcbus_become_monitor(ipcbus_bus *bus, const char *const *rules, size_t n_rules);

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

/* Answer a call with a body (NULL: none). No-op (returns 0) if the call has no_reply. */
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

#ifdef __cplusplus
}
#endif
