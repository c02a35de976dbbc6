/* SPDX-License-Identifier: MIT */
/*
 * Calls held for activation: a call (or StartServiceByName) to a name whose
 * service is being started waits here, in arrival order, and is delivered
 * to the name's owner or answered with the error once the start ended.
 * Starting the service itself is daemon/launch/activation.c's.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/bus/internal.h"
#include "daemon/bus/voice.h"
#include "daemon/log.h"
#include "protocol/ipcbus/wire.h"
#include "protocol/message.h"
#include "util/clock.h"
#include "util/util.h"

/* A call (or StartServiceByName) waiting for the owner of a name being activated. */
struct activation_request {
        struct list link;      /* in activation.requests, in arrival order */
        struct list peer_link; /* in the sender's activation_requests */
        struct peer *sender;
        struct msg *m;
        int64_t queued_ms;  /* CLOCK_MONOTONIC, for what is left of the call's deadline */
        bool start_service; /* StartServiceByName: answered {"result": 1} */
        bool awaited;       /* a call awaiting a reply: its pending reply is counted already */
};

static void activation_request_free(struct activation_request *req)
{
        list_unlink(&req->link);
        list_unlink(&req->peer_link);
        if (!req->awaited)
                req->sender->n_activation_requests--;
        msg_unref(req->m);
        free(req);
}

/* The peer leaves (or becomes a monitor): its queued requests go; their pending replies go with its others. */
void bus_drop_activation_requests(struct peer *peer)
{
        struct activation_request *req;

        while ((req = list_first_entry(&peer->activation_requests, struct activation_request, peer_link)))
                activation_request_free(req);
}

/* Forget the call `serial` of `sender` held for activation a (its deadline passed). */
void bus_drop_activation_request(struct activation *a, struct peer *sender, uint32_t serial)
{
        struct activation_request *req;

        list_for_each_entry(req, &a->requests, link) {
                if (req->sender == sender && req->awaited && req->m->h.serial == serial) {
                        activation_request_free(req);
                        return;
                }
        }
}

/* The activation whose queued calls `callee` anchors, or NULL for a peer. */
struct activation *bus_activation_of(struct bus *bus, const struct reply_owner *callee)
{
        for (struct map_node *n = map_first(&bus->activations.by_name); n; n = map_next(&bus->activations.by_name, n)) {
                struct activation *a = container_of(n, struct activation, node);

                if (&a->replies == callee)
                        return a;
        }
        return NULL;
}

static bool bus_is_name(const char *name, void *userdata)
{
        return strcmp(name, userdata) == 0;
}

static bool bus_name_below(const char *prefix, void *userdata)
{
        return bus_name_has_prefix(userdata, prefix);
}

/*
 * May sender send m to whoever will own `name`? The send rules decide, with
 * the name as the receiver's only name; receive rules wait for the owner.
 * StartServiceByName (start_service) is judged as a call to the name without
 * interface, member or path would be, so a user may not start what it may
 * not call.
 */
static bool bus_may_activate(struct bus *bus, struct peer *sender, struct msg *m, const char *name, bool start_service)
{
        struct policy_subject who = bus_subject(sender);
        struct policy_peer to = {NULL, bus_is_name, (void *) name, bus_name_below};
        struct msg_header h = m->h;
        struct policy_verdict v;
        char what[512];

        if (start_service) {
                msg_header_init(&h);
                h.type = MSG_CALL;
                h.destination = name;
        }
        v = policy_check_send(&bus->config->policy, &who, &h, &to);
        if (v.allowed)
                return true;
        bus_log_denied(bus, sender, POLICY_SEND, &v, bus_describe_message(m, what, sizeof(what)));
        if (start_service)
                driver_reply_error(bus, sender, m, IPCBUS_ERROR_ACCESS_DENIED,
                                   "Starting %s is denied by policy: uid %u may not call it", name,
                                   (unsigned) peer_uid(sender));
        else
                driver_reply_error(bus, sender, m, IPCBUS_ERROR_ACCESS_DENIED,
                                   "Sending %s %s.%s to %s is denied by policy", msg_type_to_string(m->h.type),
                                   m->h.interface ? m->h.interface : "", m->h.member ? m->h.member : "", name);
        return false;
}

/*
 * May sender's request make the broker start a service now? Root and the
 * broker's own user always may; others within max_activations_per_uid per
 * activation_interval_ms, else they are told so (LimitsExceeded).
 */
static bool bus_may_start(struct bus *bus, struct peer *sender, struct msg *m)
{
        uid_t uid = peer_uid(sender);
        int r;

        if (uid == 0 || uid == bus->uid)
                return true;
        r = activation_charge(&bus->activations, uid, bus->limits.max_activations_per_uid,
                              bus->limits.activation_interval_ms, (int64_t) clock_now_msec(CLOCK_MONOTONIC));
        if (r == 0)
                return true;
        if (r == ACTIVATION_E_RATE_LIMITED) {
                bus_stats_refused(&bus->stats, BUS_REFUSAL_MAX_ACTIVATIONS_PER_UID);
                log_info("%s: uid %u asked for more than %u service starts in %u ms, the "
                         "max_activations_per_uid limit",
                         sender->unique_name, (unsigned) uid, bus->limits.max_activations_per_uid,
                         bus->limits.activation_interval_ms);
                driver_reply_error(bus, sender, m, IPCBUS_ERROR_LIMITS_EXCEEDED,
                                   "uid %u has had %u services started within %u ms, the max_activations_per_uid "
                                   "limit (activation_interval_ms); try again later",
                                   (unsigned) uid, bus->limits.max_activations_per_uid,
                                   bus->limits.activation_interval_ms);
        } else {
                driver_reply_error(bus, sender, m, IPCBUS_ERROR_NO_MEMORY, "Out of memory");
        }
        return false;
}

/*
 * Queue m (a call to `name`, or StartServiceByName) until name is owned,
 * starting its service unless that is under way. Every way out answers m.
 */
void bus_activate(struct bus *bus, struct peer *sender, struct msg *m, const char *name, bool start_service)
{
        struct activation *a = activation_find(&bus->activations, name);
        struct activation_request *req;
        bool await = !start_service && !m->h.no_reply;
        char message[512];
        const char *error;

        if (!bus_may_activate(bus, sender, m, name, start_service))
                return;
        if (!bus_may_await(bus, sender, m))
                return;
        if (await && reply_slot_find(&bus->replies, &sender->replies, m->h.serial)) {
                driver_reply_error(bus, sender, m, IPCBUS_ERROR_INVALID_MESSAGE,
                                   "Serial %" PRIu32 " is already used by a call still awaiting an answer",
                                   m->h.serial);
                return;
        }
        req = calloc(1, sizeof(*req));
        if (!req) {
                driver_reply_error(bus, sender, m, IPCBUS_ERROR_NO_MEMORY, "Out of memory");
                return;
        }
        if (!a && !bus_may_start(bus, sender, m)) {
                free(req);
                return;
        }
        if (!a && activation_start(&bus->activations, service_registry_find(&bus->services, name), &a, &error, message,
                                   sizeof(message)) < 0) {
                free(req);
                log_warning("%s: cannot activate %s: %s", sender->unique_name, name, message);
                driver_reply_error(bus, sender, m, error, "%s", message);
                return;
        }
        /* The call's own deadline runs while it is held (PROTOCOL.md 7.5). */
        if (await && !bus_await_reply(bus, sender, &a->replies, m, m->h.timeout_ms)) {
                free(req);
                return;
        }
        req->sender = sender;
        req->m = msg_ref(m);
        req->queued_ms = (int64_t) clock_now_msec(CLOCK_MONOTONIC);
        req->start_service = start_service;
        req->awaited = await;
        list_link_tail(&a->requests, &req->link);
        list_link_tail(&sender->activation_requests, &req->peer_link);
        if (!await)
                sender->n_activation_requests++;
        log_debug("%s: %s to %s waits for its activation", sender->unique_name,
                  start_service ? "StartServiceByName" : "a call", name);
}

/* What is left of a queued call's deadline (at least 1 ms: an expired one was answered already). */
static uint32_t bus_remaining_ms(struct bus *bus, const struct activation_request *req)
{
        int64_t timeout = req->m->h.timeout_ms ? req->m->h.timeout_ms : bus->limits.reply_timeout_ms;
        int64_t left = timeout - ((int64_t) clock_now_msec(CLOCK_MONOTONIC) - req->queued_ms);

        return left > 0 ? (uint32_t) left : 1;
}

/* An activation ended: deliver its requests in order to the name's owner, or answer each with the error. */
void bus_on_activation_done(struct activation *a, const char *error, const char *message, void *userdata)
{
        struct bus *bus = userdata;
        struct peer *callee = error ? NULL : bus_find_peer(bus, a->name);
        struct activation_request *req;

        if (!error && !callee) {
                error = IPCBUS_ERROR_SERVICE_UNKNOWN;
                message = "The name was owned and released again before its queued calls could be delivered";
        }
        bus->stats.activations[!error                                           ? BUS_ACTIVATION_STARTED
                               : strcmp(error, IPCBUS_ERROR_SPAWN_TIMEOUT) == 0 ? BUS_ACTIVATION_TIMED_OUT
                                                                                : BUS_ACTIVATION_FAILED]++;
        while ((req = list_first_entry(&a->requests, struct activation_request, link))) {
                struct peer *sender = req->sender;
                struct msg *m = msg_ref(req->m);
                bool start_service = req->start_service;
                uint32_t timeout_ms = bus_remaining_ms(bus, req);
                struct reply_slot *slot = NULL;

                activation_request_free(req);
                if (!start_service && !m->h.no_reply) {
                        slot = reply_slot_find(&bus->replies, &sender->replies, m->h.serial);
                        if (!slot || slot->callee != &a->replies) {
                                msg_unref(m); /* its deadline passed while it was queued: answered then */
                                continue;
                        }
                        reply_slot_free(slot);
                }
                if (error) {
                        driver_reply_error(bus, sender, m, error, "%s", message);
                } else if (start_service) {
                        driver_reply_start_result(bus, sender, m, IPCBUS_START_REPLY_SUCCESS);
                } else {
                        bus_forward_call(bus, sender, callee, m, timeout_ms);
                }
                msg_unref(m);
        }
}

void bus_start_service(struct bus *bus, struct peer *sender, struct msg *call, const char *name)
{
        if (bus_find_peer(bus, name)) {
                driver_reply_start_result(bus, sender, call, IPCBUS_START_REPLY_ALREADY_RUNNING);
                return;
        }
        if (!activation_find(&bus->activations, name) && !service_registry_find(&bus->services, name)) {
                driver_reply_error(bus, sender, call, IPCBUS_ERROR_SERVICE_UNKNOWN,
                                   "No service file declares the name %s", name);
                return;
        }
        bus_activate(bus, sender, call, name, true);
}
