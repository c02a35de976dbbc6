/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/bus/bus.h"
#include "daemon/bus/driver.h"
#include "daemon/bus/metrics.h"
#include "daemon/bus/stats.h"
#include "protocol/interfaces.h"
#include "daemon/bus/peer.h"
#include "daemon/bus/voice.h"
#include "daemon/log.h"
#include "protocol/ipcbus/wire.h"
#include "protocol/jbuf.h"
#include "protocol/jscan.h"
#include "protocol/match.h"
#include "protocol/message.h"
#include "protocol/names.h"
#include "protocol/proto-error.h"
#include "util/util.h"

/* A method has answered its call, with a result or an error. */
#define DRIVER_ANSWERED 1

/* Strings a call's arguments decode to, at most (each method takes one or two). */
#define DRIVER_STRINGS_MAX 4

/*
 * Echoed text in an error message is cut at this many bytes (and the whole
 * message at voice.c's DRIVER_ERROR_TEXT_MAX): an error reply stays small
 * whatever the argument it quotes.
 */
#define DRIVER_ECHO_MAX 256

struct driver_call {
        struct bus *bus;
        struct peer *peer;
        struct msg *m;
        char *strings[DRIVER_STRINGS_MAX]; /* decoded string arguments, owned */
        size_t n_strings;
};

/* How much of s[0..len) an error message quotes ("%.*s"): DRIVER_ECHO_MAX bytes at most, whole characters. */
static int echo_len(const char *s, size_t len)
{
        size_t n = len < DRIVER_ECHO_MAX ? len : DRIVER_ECHO_MAX;

        if (n < len)
                while (n > 0 && ((unsigned char) s[n] & 0xc0) == 0x80)
                        n--;
        return (int) n;
}

/* Send the return with body b (unless the call wants none). */
static int call_reply(struct driver_call *c, const struct jbuf *b)
{
        int r = driver_reply(c->bus, c->peer, c->m, b);

        return r < 0 ? r : DRIVER_ANSWERED;
}

/* Reply with a fixed JSON text. */
static int call_reply_text(struct driver_call *c, const char *text)
{
        struct jbuf b;
        int r;

        jbuf_init(&b);
        jbuf_puts(&b, text);
        r = call_reply(c, &b);
        jbuf_deinit(&b);
        return r;
}

/* Reply {"result": N} (RequestName, ReleaseName). */
static int call_reply_result(struct driver_call *c, unsigned result)
{
        char text[32];

        snprintf(text, sizeof(text), "{\"result\":%u}", result);
        return call_reply_text(c, text);
}

static int call_error(struct driver_call *c, const char *name, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int call_error(struct driver_call *c, const char *name, const char *fmt, ...)
{
        va_list ap;
        int r = 0;

        if (!c->m->h.no_reply) {
                va_start(ap, fmt);
                r = driver_send_errorv(c->bus, c->peer, c->m->h.serial, name, fmt, ap);
                va_end(ap);
        }
        return r < 0 ? r : DRIVER_ANSWERED;
}

/*
 * The argument `key`: the last top-level member of the body so named (as a
 * JSON parser keeping the last duplicate would), read from the body bytes
 * without building a tree. False when absent or null.
 */
static bool call_arg(struct driver_call *c, const char *key, struct jscan_member *ret)
{
        struct jscan_iter it;
        struct jscan_member m;
        bool found = false;

        if (!c->m->body || jscan_object_begin(&it, c->m->body, c->m->body_len) != 0)
                return false;
        while (jscan_object_next(&it, &m) > 0) {
                if (jscan_key_equal(&m, key)) {
                        *ret = m;
                        found = m.kind != JSCAN_NULL;
                }
        }
        return found;
}

/* Decode the raw string v into a string the call owns. NULL on ENOMEM. */
static const char *call_keep_string(struct driver_call *c, const char *raw, size_t raw_len)
{
        char *s;

        if (c->n_strings >= DRIVER_STRINGS_MAX)
                return NULL;
        s = malloc(raw_len + 1);
        if (!s)
                return NULL;
        jscan_string_decode(raw, raw_len, s);
        c->strings[c->n_strings++] = s;
        return s;
}

/* A required string argument. Returns 0, DRIVER_ANSWERED after InvalidArgs, or -ENOMEM. */
static int call_arg_string(struct driver_call *c, const char *key, const char **ret)
{
        struct jscan_member v;

        if (!call_arg(c, key, &v))
                return call_error(c, IPCBUS_ERROR_INVALID_ARGS, "Missing argument '%s'", key);
        if (v.kind != JSCAN_STRING)
                return call_error(c, IPCBUS_ERROR_INVALID_ARGS, "Argument '%s' must be a string", key);
        *ret = call_keep_string(c, v.value, v.value_len);
        return *ret ? 0 : -ENOMEM;
}

/* An optional non-negative integer argument: 0 and *ret (untouched when absent), or 1 when it is not one. */
static int call_arg_flags(struct driver_call *c, const char *key, int64_t *ret)
{
        struct jscan_member v;

        if (!call_arg(c, key, &v))
                return 0;
        if (v.kind != JSCAN_NUMBER || jscan_number_to_int64(v.value, v.value_len, 0, INT64_MAX, ret) < 0)
                return 1;
        return 0;
}

/* A required bus name argument (unique or well-known). */
static int call_arg_bus_name(struct driver_call *c, const char *key, const char **ret)
{
        int r = call_arg_string(c, key, ret);

        if (r)
                return r;
        if (!names_is_bus_name(*ret))
                return call_error(c, IPCBUS_ERROR_INVALID_ARGS, "Argument '%s': '%.*s' is not a valid bus name", key,
                                  echo_len(*ret, strlen(*ret)), *ret);
        return 0;
}

/* A name RequestName / ReleaseName may act on: well-known, not the driver's. */
static int call_arg_ownable_name(struct driver_call *c, const char **ret)
{
        int r = call_arg_string(c, "name", ret);

        if (r)
                return r;
        if (names_is_unique(*ret))
                return call_error(c, IPCBUS_ERROR_INVALID_ARGS,
                                  "'%s' is a unique name: only well-known names can be requested or released", *ret);
        if (!names_is_well_known(*ret))
                return call_error(c, IPCBUS_ERROR_INVALID_ARGS, "'%.*s' is not a valid well-known name",
                                  echo_len(*ret, strlen(*ret)), *ret);
        if (strcmp(*ret, IPCBUS_DRIVER_NAME) == 0)
                return call_error(c, IPCBUS_ERROR_INVALID_ARGS, "The name %s belongs to the bus itself",
                                  IPCBUS_DRIVER_NAME);
        return 0;
}

/* Parse the match rule v (an argument or an element of one named key) into rule. */
static int call_parse_rule(struct driver_call *c, const char *key, const struct jscan_member *v,
                           struct match_rule *rule)
{
        struct match_error why;
        int r;

        if (!v)
                return call_error(c, IPCBUS_ERROR_INVALID_ARGS, "Missing argument '%s'", key);
        if (v->kind != JSCAN_OBJECT)
                return call_error(c, IPCBUS_ERROR_INVALID_ARGS, "Argument '%s' must be a match rule object", key);
        r = match_rule_parse_json_err(rule, v->value, v->value_len, &why);
        if (r < 0)
                return r;
        if (r > 0)
                return call_error(c, IPCBUS_ERROR_MATCH_RULE_INVALID, "Invalid match rule %.*s%s: %s",
                                  echo_len(v->value, v->value_len), v->value,
                                  v->value_len > DRIVER_ECHO_MAX ? DRIVER_TRUNCATED : "", why.text);
        return 0;
}

/* ---- methods ----------------------------------------------------------- */

static int method_hello(struct driver_call *c)
{
        struct jbuf b;
        int r;

        if (c->peer->state != PEER_NEW)
                return call_error(c, IPCBUS_ERROR_FAILED, "Hello was already called on this connection");

        r = bus_register(c->bus, c->peer);
        if (r < 0)
                return r;

        /* The reply first: a client learns its name from it, then sees it acquired. */
        jbuf_init(&b);
        jbuf_puts(&b, "{\"name\":");
        jbuf_put_string(&b, c->peer->unique_name);
        jbuf_putc(&b, '}');
        r = call_reply(c, &b);
        jbuf_deinit(&b);

        driver_emit_name_acquired(c->bus, c->peer, c->peer->unique_name);
        driver_emit_name_owner_changed(c->bus, c->peer->unique_name, "", c->peer->unique_name);
        return r;
}

static int method_request_name(struct driver_call *c)
{
        struct bus *bus = c->bus;
        const char *name;
        int64_t flags = 0;
        unsigned result;
        int r;

        r = call_arg_ownable_name(c, &name);
        if (r)
                return r;

        {
                const int64_t all =
                        IPCBUS_NAME_ALLOW_REPLACEMENT | IPCBUS_NAME_REPLACE_EXISTING | IPCBUS_NAME_DO_NOT_QUEUE;

                if (call_arg_flags(c, "flags", &flags) || (flags & ~all))
                        return call_error(c, IPCBUS_ERROR_INVALID_ARGS,
                                          "Argument 'flags' must be an integer made of the bits 1 "
                                          "(allow replacement), 2 (replace existing) and 4 (do not queue)");
        }

        {
                struct policy_subject who = bus_subject(c->peer);
                struct policy_verdict verdict = policy_check_own(&bus->config->policy, &who, name);

                if (!verdict.allowed) {
                        char what[300];

                        snprintf(what, sizeof(what), "name=%s", name);
                        bus_log_denied(bus, c->peer, POLICY_OWN, &verdict, what);
                        return call_error(c, IPCBUS_ERROR_ACCESS_DENIED, "uid %u may not own %s",
                                          (unsigned) peer_uid(c->peer), name);
                }
        }

        /* Ownership changes are signalled from inside, before the reply (as D-Bus does). */
        r = name_registry_request(&bus->names, &c->peer->names, name, (unsigned) flags, &result);
        if (r == NAME_E_QUOTA) {
                bus_stats_refused(&bus->stats, BUS_REFUSAL_MAX_NAMES_PER_CONNECTION);
                return call_error(c, IPCBUS_ERROR_LIMITS_EXCEEDED,
                                  "%s already holds or waits for %u names, the max_names_per_connection limit",
                                  c->peer->unique_name, bus->limits.max_names);
        }
        if (r == NAME_E_QUOTA_UID) {
                bus_stats_refused(&bus->stats, BUS_REFUSAL_MAX_NAMES_PER_UID);
                return call_error(c, IPCBUS_ERROR_LIMITS_EXCEEDED,
                                  "uid %u already holds or waits for %u names, the max_names_per_uid limit",
                                  (unsigned) peer_uid(c->peer), bus->limits.max_names_per_uid);
        }
        if (r < 0)
                return r;

        return call_reply_result(c, result);
}

static int method_release_name(struct driver_call *c)
{
        const char *name;
        unsigned result;
        int r;

        r = call_arg_ownable_name(c, &name);
        if (r)
                return r;

        result = name_registry_release(&c->bus->names, &c->peer->names, name);

        return call_reply_result(c, result);
}

static void list_names_add(const char *name, struct name_owner *primary, void *userdata)
{
        struct jbuf *b = userdata;

        jbuf_putc(b, ',');
        jbuf_put_string(b, name);
}

static int method_list_names(struct driver_call *c)
{
        struct bus *bus = c->bus;
        struct jbuf b;
        int r;

        jbuf_init(&b);
        jbuf_puts(&b, "{\"names\":[");
        jbuf_put_string(&b, IPCBUS_DRIVER_NAME);
        name_registry_foreach(&bus->names, list_names_add, &b);
        for (struct map_node *n = map_first(&bus->peers_by_name); n; n = map_next(&bus->peers_by_name, n)) {
                jbuf_putc(&b, ',');
                jbuf_put_string(&b, container_of(n, struct peer, name_node)->unique_name);
        }
        jbuf_puts(&b, "]}");
        r = call_reply(c, &b);
        jbuf_deinit(&b);
        return r;
}

static int method_list_activatable_names(struct driver_call *c)
{
        _cleanup_(freep) const char **names = service_registry_names(&c->bus->services);
        bool driver_listed = false;
        struct jbuf b;
        int r;

        if (!names)
                return -ENOMEM;
        jbuf_init(&b);
        jbuf_puts(&b, "{\"names\":[");
        for (const char **n = names;; n++) {
                /* The driver's name in its sorted place. */
                if (!driver_listed && (!*n || strcmp(IPCBUS_DRIVER_NAME, *n) < 0)) {
                        if (n != names)
                                jbuf_putc(&b, ',');
                        jbuf_put_string(&b, IPCBUS_DRIVER_NAME);
                        driver_listed = true;
                }
                if (!*n)
                        break;
                if (n != names || driver_listed)
                        jbuf_putc(&b, ',');
                jbuf_put_string(&b, *n);
        }
        jbuf_puts(&b, "]}");
        r = call_reply(c, &b);
        jbuf_deinit(&b);
        return r;
}

static int method_start_service_by_name(struct driver_call *c)
{
        const char *name;
        int64_t flags = 0;
        int r;

        r = call_arg_string(c, "name", &name);
        if (r)
                return r;
        if (!names_is_well_known(name))
                return call_error(c, IPCBUS_ERROR_INVALID_ARGS, "'%.*s' is not a valid well-known name",
                                  echo_len(name, strlen(name)), name);
        if (call_arg_flags(c, "flags", &flags))
                return call_error(c, IPCBUS_ERROR_INVALID_ARGS,
                                  "Argument 'flags' must be an integer (0: none are defined)");
        if (strcmp(name, IPCBUS_DRIVER_NAME) == 0)
                return call_reply_text(c, "{\"result\":2}");
        bus_start_service(c->bus, c->peer, c->m, name);
        return DRIVER_ANSWERED;
}

/* Root and the broker's own user may change how the bus runs (activation environment, reload). */
static int call_check_privileged(struct driver_call *c)
{
        if (bus_may_administer(c->bus, c->peer))
                return 0;
        return call_error(c, IPCBUS_ERROR_ACCESS_DENIED, "%s is only for root and uid %u, not uid %u", c->m->h.member,
                          (unsigned) c->bus->uid, (unsigned) peer_uid(c->peer));
}

static void strings_free(char ***p)
{
        if (*p)
                for (char **s = *p; *s; s++)
                        free(*s);
        free(*p);
}

static int method_update_activation_environment(struct driver_call *c)
{
        _cleanup_(strings_free) char **keys = NULL;
        _cleanup_(strings_free) char **values = NULL;
        struct jscan_member env, v;
        struct jscan_iter it;
        size_t n = 0, size = 0;
        int r;

        r = call_check_privileged(c);
        if (r)
                return r;
        if (c->bus->config->type == BUS_TYPE_SYSTEM)
                return call_error(c, IPCBUS_ERROR_ACCESS_DENIED,
                                  "The activation environment of the system bus cannot be changed");
        if (!call_arg(c, "environment", &env) || env.kind != JSCAN_OBJECT)
                return call_error(c, IPCBUS_ERROR_INVALID_ARGS,
                                  "Argument 'environment' must be an object of strings: {\"KEY\": \"VALUE\", ...}");
        jscan_object_begin(&it, env.value, env.value_len);
        while (jscan_object_next(&it, &v) > 0)
                size++;
        keys = calloc(size + 1, sizeof(*keys));
        values = calloc(size + 1, sizeof(*values));
        if (!keys || !values)
                return -ENOMEM;
        jscan_object_begin(&it, env.value, env.value_len);
        while (jscan_object_next(&it, &v) > 0) {
                keys[n] = malloc(v.key_len + 1);
                values[n] = malloc(v.value_len + 1);
                if (!keys[n] || !values[n])
                        return -ENOMEM; /* what was allocated goes with the arrays */
                jscan_string_decode(v.key, v.key_len, keys[n]);
                if (v.kind == JSCAN_STRING)
                        jscan_string_decode(v.value, v.value_len, values[n]);
                n++;
                if (!keys[n - 1][0] || strchr(keys[n - 1], '=') || strlen(keys[n - 1]) > 255)
                        return call_error(c, IPCBUS_ERROR_INVALID_ARGS,
                                          "Invalid variable name '%.*s': it must be 1 to 255 bytes without '='",
                                          echo_len(keys[n - 1], strlen(keys[n - 1])), keys[n - 1]);
                if (v.kind != JSCAN_STRING)
                        return call_error(c, IPCBUS_ERROR_INVALID_ARGS, "The value of %.*s must be a string",
                                          echo_len(keys[n - 1], strlen(keys[n - 1])), keys[n - 1]);
        }
        r = activation_update_environment(&c->bus->activations, (const char *const *) keys,
                                          (const char *const *) values, n);
        if (r == ACTIVATION_E_ENV_FULL) {
                bus_stats_refused(&c->bus->stats, BUS_REFUSAL_ACTIVATION_ENVIRONMENT);
                return call_error(c, IPCBUS_ERROR_LIMITS_EXCEEDED,
                                  "The activation environment would hold more than %u variables", ACTIVATION_ENV_MAX);
        }
        if (r < 0)
                return r;
        log_info("driver: %s updated the activation environment (%zu variables)", c->peer->unique_name, n);
        return call_reply_text(c, "{}");
}

static int method_reload_config(struct driver_call *c)
{
        char err[512];
        int r;

        r = call_check_privileged(c);
        if (r)
                return r;
        if (!c->bus->reload)
                return call_error(c, IPCBUS_ERROR_NOT_SUPPORTED, "This bus cannot reload its configuration");
        log_info("driver: ReloadConfig from %s", c->peer->unique_name);
        err[0] = '\0';
        r = c->bus->reload(c->bus, c->bus->reload_userdata, err, sizeof(err));
        if (r == BUS_E_RELOAD_REFUSED)
                return call_error(c, IPCBUS_ERROR_CONFIG_INVALID, "The configuration was not reloaded: %s", err);
        if (r < 0)
                return r;
        return call_reply_text(c, "{}");
}

static void list_queued_add(struct name_owner *owner, unsigned flags, void *userdata)
{
        struct jbuf *b = userdata;

        if (b->len > 0 && b->data[b->len - 1] != '[')
                jbuf_putc(b, ',');
        jbuf_put_string(b, container_of(owner, struct peer, names)->unique_name);
}

static int method_list_queued_owners(struct driver_call *c)
{
        const char *name;
        struct jbuf b;
        int r;

        r = call_arg_bus_name(c, "name", &name);
        if (r)
                return r;

        jbuf_init(&b);
        jbuf_puts(&b, "{\"owners\":[");
        if (strcmp(name, IPCBUS_DRIVER_NAME) == 0) {
                jbuf_put_string(&b, IPCBUS_DRIVER_NAME);
        } else if (names_is_unique(name)) {
                struct peer *p = bus_find_peer(c->bus, name);

                if (p)
                        jbuf_put_string(&b, p->unique_name);
                else
                        r = NAME_E_NOT_FOUND; /* as the registry answers for a well-known name */
        } else {
                r = name_registry_foreach_queued(&c->bus->names, name, list_queued_add, &b);
        }
        jbuf_puts(&b, "]}");

        if (r == NAME_E_NOT_FOUND)
                r = call_error(c, IPCBUS_ERROR_NAME_HAS_NO_OWNER, "Could not get the owners of %s: no such name", name);
        else
                r = call_reply(c, &b);
        jbuf_deinit(&b);
        return r;
}

static int method_name_has_owner(struct driver_call *c)
{
        const char *name;
        bool has;
        int r;

        r = call_arg_bus_name(c, "name", &name);
        if (r)
                return r;
        has = strcmp(name, IPCBUS_DRIVER_NAME) == 0 || bus_find_peer(c->bus, name);
        return call_reply_text(c, has ? "{\"has_owner\":true}" : "{\"has_owner\":false}");
}

static int method_get_name_owner(struct driver_call *c)
{
        const char *name, *owner;
        struct jbuf b;
        int r;

        r = call_arg_bus_name(c, "name", &name);
        if (r)
                return r;

        if (strcmp(name, IPCBUS_DRIVER_NAME) == 0) {
                owner = IPCBUS_DRIVER_NAME;
        } else {
                struct peer *p = bus_find_peer(c->bus, name);

                if (!p)
                        return call_error(c, IPCBUS_ERROR_NAME_HAS_NO_OWNER,
                                          "Could not get the owner of %s: no such name", name);
                owner = p->unique_name;
        }

        jbuf_init(&b);
        jbuf_puts(&b, "{\"owner\":");
        jbuf_put_string(&b, owner);
        jbuf_putc(&b, '}');
        r = call_reply(c, &b);
        jbuf_deinit(&b);
        return r;
}

static int method_get_connection_credentials(struct driver_call *c)
{
        struct bus *bus = c->bus;
        const char *name, *unique;
        uid_t uid;
        gid_t gid;
        pid_t pid;
        struct jbuf b;
        int r;

        r = call_arg_bus_name(c, "name", &name);
        if (r)
                return r;

        if (strcmp(name, IPCBUS_DRIVER_NAME) == 0) {
                unique = IPCBUS_DRIVER_NAME;
                uid = bus->uid;
                gid = bus->gid;
                pid = bus->pid;
        } else {
                struct peer *p = bus_find_peer(bus, name);

                if (!p)
                        return call_error(c, IPCBUS_ERROR_NAME_HAS_NO_OWNER,
                                          "Could not get the credentials of %s: no such name", name);
                unique = p->unique_name;
                uid = peer_uid(p);
                gid = peer_gid(p);
                pid = peer_pid(p);
        }

        jbuf_init(&b);
        jbuf_puts(&b, "{\"unique_name\":");
        jbuf_put_string(&b, unique);
        jbuf_printf(&b, ",\"uid\":%u,\"gid\":%u,\"pid\":%d}", (unsigned) uid, (unsigned) gid, (int) pid);
        r = call_reply(c, &b);
        jbuf_deinit(&b);
        return r;
}

static int method_get_id(struct driver_call *c)
{
        struct jbuf b;
        int r;

        jbuf_init(&b);
        jbuf_printf(&b, "{\"id\":\"%s\"}", c->bus->id);
        r = call_reply(c, &b);
        jbuf_deinit(&b);
        return r;
}

static int method_ping(struct driver_call *c)
{
        return call_reply_text(c, "{}");
}

static int method_add_match(struct driver_call *c)
{
        struct bus *bus = c->bus;
        _cleanup_(match_rule_deinit) struct match_rule rule;
        struct jscan_member v;
        int r;

        match_rule_init(&rule);
        r = call_parse_rule(c, "rule", call_arg(c, "rule", &v) ? &v : NULL, &rule);
        if (r)
                return r;

        if (c->peer->matches.n_rules >= bus->limits.max_matches) {
                bus_stats_refused(&bus->stats, BUS_REFUSAL_MAX_MATCHES_PER_CONNECTION);
                return call_error(c, IPCBUS_ERROR_LIMITS_EXCEEDED,
                                  "%s already has %u match rules, the max_matches_per_connection limit",
                                  c->peer->unique_name, bus->limits.max_matches);
        }
        if (c->peer->user && c->peer->user->n_matches >= bus->limits.max_matches_per_uid) {
                bus_stats_refused(&bus->stats, BUS_REFUSAL_MAX_MATCHES_PER_UID);
                return call_error(c, IPCBUS_ERROR_LIMITS_EXCEEDED,
                                  "uid %u already has %u match rules, the max_matches_per_uid limit",
                                  (unsigned) peer_uid(c->peer), bus->limits.max_matches_per_uid);
        }

        r = match_index_add(&bus->matches, &c->peer->matches, &rule);
        if (r < 0)
                return r;
        return call_reply_text(c, "{}");
}

static int method_remove_match(struct driver_call *c)
{
        _cleanup_(match_rule_deinit) struct match_rule rule;
        struct jscan_member v;
        int r;

        match_rule_init(&rule);
        r = call_parse_rule(c, "rule", call_arg(c, "rule", &v) ? &v : NULL, &rule);
        if (r)
                return r;

        r = match_index_remove(&c->bus->matches, &c->peer->matches, &rule);
        if (r == MATCH_E_NOT_FOUND)
                return call_error(c, IPCBUS_ERROR_MATCH_RULE_NOT_FOUND,
                                  "%s has no such match rule (it must equal one added with AddMatch)",
                                  c->peer->unique_name);
        if (r < 0)
                return r;
        return call_reply_text(c, "{}");
}

struct rule_array {
        struct match_rule *rules;
        size_t n;
};

static void rule_array_deinit(struct rule_array *a)
{
        for (size_t i = 0; i < a->n; i++)
                match_rule_deinit(&a->rules[i]);
        free(a->rules);
}

static int method_become_monitor(struct driver_call *c)
{
        struct bus *bus = c->bus;
        _cleanup_(rule_array_deinit) struct rule_array a = {NULL, 0};
        struct jscan_member v, e;
        struct jscan_iter it;
        bool has_rules = call_arg(c, "rules", &v);
        size_t n = 0;
        int r;

        if (has_rules && v.kind != JSCAN_ARRAY)
                return call_error(c, IPCBUS_ERROR_INVALID_ARGS,
                                  "Argument 'rules' must be an array of match rule objects");
        if (has_rules) {
                jscan_array_begin(&it, v.value, v.value_len);
                while (jscan_array_next(&it, &e) > 0)
                        n++;
        }
        if (n > bus->limits.max_matches) {
                bus_stats_refused(&bus->stats, BUS_REFUSAL_MAX_MATCHES_PER_CONNECTION);
                return call_error(c, IPCBUS_ERROR_LIMITS_EXCEEDED,
                                  "%zu monitor rules are more than the max_matches_per_connection limit of %u", n,
                                  bus->limits.max_matches);
        }
        {
                struct policy_subject who = bus_subject(c->peer);
                struct policy_verdict verdict = policy_check_monitor(&bus->config->policy, &who);

                if (!verdict.allowed) {
                        bus_log_denied(bus, c->peer, POLICY_MONITOR, &verdict, NULL);
                        return call_error(c, IPCBUS_ERROR_ACCESS_DENIED, "uid %u may not monitor this bus",
                                          (unsigned) peer_uid(c->peer));
                }
        }

        /* No rules: one empty rule, which matches every message. */
        a.rules = calloc(n ? n : 1, sizeof(*a.rules));
        if (!a.rules)
                return -ENOMEM;
        for (size_t i = 0; i < (n ? n : 1); i++) {
                match_rule_init(&a.rules[i]);
                a.n++;
        }
        if (has_rules)
                jscan_array_begin(&it, v.value, v.value_len);
        for (size_t i = 0; i < n && jscan_array_next(&it, &e) > 0; i++) {
                r = call_parse_rule(c, "rules", &e, &a.rules[i]);
                if (r)
                        return r;
        }

        r = call_reply_text(c, "{}");
        if (r < 0)
                return r;
        bus_become_monitor(bus, c->peer, a.rules, a.n);
        return r;
}

/* GetStats: the bus totals and the connections the caller may see (PROTOCOL.md 7.6). */
static int method_get_stats(struct driver_call *c)
{
        struct jbuf b;
        int r;

        jbuf_init(&b);
        bus_stats_write(c->bus, c->peer, &b);
        r = call_reply(c, &b); /* -ENOMEM when b failed (driver_build) */
        jbuf_deinit(&b);
        return r;
}

/* GetConnectionStats: one connection's figures, if the caller may see them. */
static int method_get_connection_stats(struct driver_call *c)
{
        struct peer *p;
        const char *name;
        struct jbuf b;
        int r;

        r = call_arg_bus_name(c, "name", &name);
        if (r)
                return r;
        if (strcmp(name, IPCBUS_DRIVER_NAME) == 0)
                return call_error(c, IPCBUS_ERROR_INVALID_ARGS,
                                  "%s is the bus itself, not a connection: its figures are GetStats's \"bus\"",
                                  IPCBUS_DRIVER_NAME);
        p = bus_find_peer(c->bus, name);
        if (!p)
                return call_error(c, IPCBUS_ERROR_NAME_HAS_NO_OWNER, "Could not get the statistics of %s: no such name",
                                  name);
        if (!bus_stats_may_see(c->bus, c->peer, p))
                return call_error(c, IPCBUS_ERROR_ACCESS_DENIED,
                                  "The statistics of %s (uid %u) are only for root, uid %u and uid %u", name,
                                  (unsigned) peer_uid(p), (unsigned) c->bus->uid, (unsigned) peer_uid(p));

        jbuf_init(&b);
        bus_stats_write_connection(c->bus, p, &b);
        r = call_reply(c, &b); /* -ENOMEM when b failed (driver_build) */
        jbuf_deinit(&b);
        return r;
}

/* GetMetrics: the bus totals as OpenMetrics (default) or Prometheus text, {"text": "..."}. */
static int method_get_metrics(struct driver_call *c)
{
        enum bus_metrics_format format = BUS_METRICS_OPENMETRICS;
        _cleanup_(freep) char *text = NULL;
        struct jscan_member v;
        size_t len;
        struct jbuf b;
        int r;

        if (call_arg(c, "format", &v)) {
                const char *f;

                r = call_arg_string(c, "format", &f);
                if (r)
                        return r;
                if (strcmp(f, "openmetrics") == 0)
                        format = BUS_METRICS_OPENMETRICS;
                else if (strcmp(f, "prometheus") == 0)
                        format = BUS_METRICS_PROMETHEUS;
                else
                        return call_error(c, IPCBUS_ERROR_INVALID_ARGS,
                                          "Unknown format '%.*s': \"openmetrics\" or \"prometheus\"",
                                          echo_len(f, strlen(f)), f);
        }
        r = bus_metrics_render(c->bus, format, &text, &len);
        if (r < 0)
                return r;
        jbuf_init(&b);
        jbuf_puts(&b, "{\"text\":");
        jbuf_put_string_len(&b, text, len);
        jbuf_putc(&b, '}');
        r = call_reply(c, &b); /* -ENOMEM when b failed (driver_build) */
        jbuf_deinit(&b);
        return r;
}

/*
 * The driver's objects (PROTOCOL.md 13.4): its own path, and every path above
 * it, where it answers org.ipcbus.Introspectable and org.ipcbus.Peer.
 */
static const struct driver_object {
        const char *path;
        const char *child; /* the next component towards the driver's path; NULL at it */
} driver_objects[] = {
        {"/", "org"},
        {"/org", "ipcbus"},
        {"/org/ipcbus", "Bus"},
        {IPCBUS_DRIVER_PATH, NULL},
};

static const struct driver_object *driver_object_at(const char *path)
{
        for (size_t i = 0; i < ELEMENTSOF(driver_objects); i++)
                if (strcmp(path, driver_objects[i].path) == 0)
                        return &driver_objects[i];
        return NULL;
}

/*
 * The built-in description of `name` in its canonical form (parsed and
 * re-serialised plain, as libipcbus's ipcbus_interface_get_json gives it),
 * made once per bus: an Introspect costs a copy, not a parse. NULL if it is
 * not built in or does not parse (a build fault), or without memory.
 */
static const char *driver_description(struct bus *bus, const char *name)
{
        for (size_t i = 0; i < n_builtin_interfaces; i++) {
                struct json_object *o;

                if (strcmp(builtin_interfaces[i].name, name) != 0)
                        continue;
                if (!bus->descriptions && !(bus->descriptions = calloc(n_builtin_interfaces, sizeof(char *))))
                        return NULL;
                if (bus->descriptions[i])
                        return bus->descriptions[i];
                o = json_tokener_parse(builtin_interfaces[i].json);
                if (!o)
                        return NULL;
                bus->descriptions[i] = strdup(
                        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
                json_object_put(o);
                return bus->descriptions[i];
        }
        return NULL;
}

/* org.ipcbus.Introspectable.Introspect: {"path": P, "interfaces": [DESC, ...], "children": [...]}. */
static int method_introspect(struct driver_call *c)
{
        const struct driver_object *o = driver_object_at(c->m->h.path);
        const char *const names[] = {IPCBUS_DRIVER_INTERFACE, IPCBUS_INTROSPECTABLE_INTERFACE, IPCBUS_PEER_INTERFACE};
        struct jbuf b;
        int r = 0;

        jbuf_init(&b);
        jbuf_puts(&b, "{\"path\":");
        jbuf_put_string(&b, o->path);
        jbuf_puts(&b, ",\"interfaces\":[");
        /* org.ipcbus.Bus only at the driver's own path */
        for (size_t i = o->child ? 1 : 0; i < ELEMENTSOF(names) && r == 0; i++) {
                if (i > (o->child ? 1u : 0u))
                        jbuf_putc(&b, ',');
                const char *text = driver_description(c->bus, names[i]);

                if (text)
                        jbuf_puts(&b, text);
                else
                        r = -EINVAL;
        }
        jbuf_puts(&b, "],\"children\":[");
        if (o->child)
                jbuf_put_string(&b, o->child);
        jbuf_puts(&b, "]}");
        if (r == 0)
                r = b.failed ? -ENOMEM : call_reply(c, &b);
        jbuf_deinit(&b);
        return r;
}

/*
 * The largest body each method reads (PROTOCOL.md 7.2, "Bodies of driver
 * calls"): checked before any of it is looked at, so what a call costs the
 * broker is bounded by its method, not by the frame limit. Names fit in 4 KiB
 * even fully escaped; a match rule in 64 KiB; monitor rules and an
 * activation environment in 256 KiB.
 */
#define DRIVER_BODY_SMALL (4u * 1024u)
#define DRIVER_BODY_RULE (64u * 1024u)
#define DRIVER_BODY_LARGE (256u * 1024u)

/*
 * The driver's methods: those of org.ipcbus.Bus (interface NULL), answered
 * at the driver's path, then those of the standard interfaces, answered at
 * every driver object (any_path: on every path).
 */
static const struct driver_method {
        const char *name;
        int (*fn)(struct driver_call *c);
        size_t max_body;
        const char *interface; /* NULL: IPCBUS_DRIVER_INTERFACE */
        bool any_path;
} driver_methods[] = {
        {"Hello", method_hello, DRIVER_BODY_SMALL, NULL, false},
        {"RequestName", method_request_name, DRIVER_BODY_SMALL, NULL, false},
        {"ReleaseName", method_release_name, DRIVER_BODY_SMALL, NULL, false},
        {"ListNames", method_list_names, DRIVER_BODY_SMALL, NULL, false},
        {"ListActivatableNames", method_list_activatable_names, DRIVER_BODY_SMALL, NULL, false},
        {"StartServiceByName", method_start_service_by_name, DRIVER_BODY_SMALL, NULL, false},
        {"UpdateActivationEnvironment", method_update_activation_environment, DRIVER_BODY_LARGE, NULL, false},
        {"ReloadConfig", method_reload_config, DRIVER_BODY_SMALL, NULL, false},
        {"ListQueuedOwners", method_list_queued_owners, DRIVER_BODY_SMALL, NULL, false},
        {"NameHasOwner", method_name_has_owner, DRIVER_BODY_SMALL, NULL, false},
        {"GetNameOwner", method_get_name_owner, DRIVER_BODY_SMALL, NULL, false},
        {"GetConnectionCredentials", method_get_connection_credentials, DRIVER_BODY_SMALL, NULL, false},
        {"GetId", method_get_id, DRIVER_BODY_SMALL, NULL, false},
        {"Ping", method_ping, DRIVER_BODY_SMALL, NULL, false},
        {"AddMatch", method_add_match, DRIVER_BODY_RULE, NULL, false},
        {"RemoveMatch", method_remove_match, DRIVER_BODY_RULE, NULL, false},
        {"BecomeMonitor", method_become_monitor, DRIVER_BODY_LARGE, NULL, false},
        {"GetStats", method_get_stats, DRIVER_BODY_SMALL, NULL, false},
        {"GetConnectionStats", method_get_connection_stats, DRIVER_BODY_SMALL, NULL, false},
        {"GetMetrics", method_get_metrics, DRIVER_BODY_SMALL, NULL, false},
        {"Introspect", method_introspect, DRIVER_BODY_SMALL, IPCBUS_INTROSPECTABLE_INTERFACE, false},
        {"Ping", method_ping, DRIVER_BODY_SMALL, IPCBUS_PEER_INTERFACE, true},
};

static const char *method_interface(const struct driver_method *method)
{
        return method->interface ? method->interface : IPCBUS_DRIVER_INTERFACE;
}

/* The method `member` of `interface`, or NULL. *ret_served: the interface has any method at all. */
static const struct driver_method *driver_find_method(const char *interface, const char *member, bool *ret_served)
{
        *ret_served = false;
        for (size_t i = 0; i < ELEMENTSOF(driver_methods); i++) {
                if (strcmp(interface, method_interface(&driver_methods[i])) != 0)
                        continue;
                *ret_served = true;
                if (strcmp(member, driver_methods[i].name) == 0)
                        return &driver_methods[i];
        }
        return NULL;
}

/*
 * Find what answers m, or answer it with UnknownObject (a path that is none
 * of the driver's objects, or org.ipcbus.Bus away from its path),
 * UnknownInterface or UnknownMethod and return NULL.
 */
static const struct driver_method *driver_route(struct bus *bus, struct peer *peer, struct msg *m)
{
        const char *interface = m->h.interface ? m->h.interface : IPCBUS_DRIVER_INTERFACE;
        const struct driver_object *o = driver_object_at(m->h.path);
        bool served;
        const struct driver_method *method = driver_find_method(interface, m->h.member, &served);

        if (method && method->any_path)
                return method;
        if (!o || (o->child && strcmp(interface, IPCBUS_DRIVER_INTERFACE) == 0)) {
                driver_reply_error(bus, peer, m, IPCBUS_ERROR_UNKNOWN_OBJECT, "No object at %s (the bus is at %s)",
                                   m->h.path, IPCBUS_DRIVER_PATH);
                return NULL;
        }
        if (!served) {
                driver_reply_error(bus, peer, m, IPCBUS_ERROR_UNKNOWN_INTERFACE, "No interface %s at %s", interface,
                                   m->h.path);
                return NULL;
        }
        if (!method)
                driver_reply_error(bus, peer, m, IPCBUS_ERROR_UNKNOWN_METHOD, "No method %s in interface %s",
                                   m->h.member, interface);
        return method;
}

void driver_dispatch(struct bus *bus, struct peer *peer, struct msg *m)
{
        struct driver_call c = {.bus = bus, .peer = peer, .m = m};
        const struct driver_method *method = NULL;
        int r;

        method = driver_route(bus, peer, m);
        if (!method)
                return;
        if (m->h.body_size) {
                driver_reply_error(bus, peer, m, IPCBUS_ERROR_INVALID_ARGS,
                                   "The driver reads no body in a memfd (PROTOCOL.md 14): send the arguments of %s in "
                                   "the frame",
                                   m->h.member);
                return;
        }
        if (m->body_len > method->max_body) {
                bus_stats_refused(&bus->stats, BUS_REFUSAL_DRIVER_BODY);
                log_info("driver: %s from %s refused: a body of %zu bytes, over its bound of %zu", m->h.member,
                         peer->unique_name, m->body_len, method->max_body);
                driver_reply_error(bus, peer, m, IPCBUS_ERROR_LIMITS_EXCEEDED,
                                   "The body of %s is %zu bytes, over the driver's bound of %zu bytes for this method",
                                   m->h.member, m->body_len, method->max_body);
                return;
        }

        log_debug("driver: %s from %s (serial %" PRIu32 ")", m->h.member, peer->unique_name, m->h.serial);
        r = method->fn(&c);
        for (size_t i = 0; i < c.n_strings; i++)
                free(c.strings[i]);
        if (r < 0) {
                log_error("driver: %s from %s failed: %s", m->h.member, peer->unique_name, strerror(-r));
                driver_reply_error(bus, peer, m, r == -ENOMEM ? IPCBUS_ERROR_NO_MEMORY : IPCBUS_ERROR_FAILED,
                                   "%s failed: %s", m->h.member, strerror(-r));
        }
}
