/* SPDX-License-Identifier: MIT */
/*
 * Loading the broker's JSON configuration (daemon/CONFIG.md). The whole file
 * is checked before anything is used: the first problem found is reported as
 * "ORIGIN: KEY: REASON" and the load fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <json-c/json.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/launch/config-defaults.h"
#include "daemon/launch/config.h"
#include "protocol/address.h"
#include "protocol/ipcbus/wire.h"
#include "protocol/message.h"
#include "protocol/names.h"
#include "util/file.h"
#include "util/util.h"

/* Larger configuration text is refused: a real one is a few kilobytes. */
#define CONFIG_TEXT_MAX (4u * 1024u * 1024u)
#define TIMEOUT_MAX_MS (24u * 60u * 60u * 1000u)

void bus_limits_init(struct bus_limits *limits)
{
        *limits = (struct bus_limits){
                .max_frame = IPCBUS_FRAME_PREFIX_SIZE + IPCBUS_CLIENT_HEADER_MAX + IPCBUS_BODY_MAX,
                .max_header = IPCBUS_CLIENT_HEADER_MAX,
                .max_body = IPCBUS_BODY_MAX,
                .max_fds = IPCBUS_FDS_MAX,
                .max_connections = 4096,
                .max_connections_per_uid = 2048,
                .max_names = 1024,
                .max_names_per_uid = 8192,
                .max_matches = 4096,
                .max_matches_per_uid = 65536,
                .max_pending = 16384,
                .max_pending_per_uid = 65536,
                .max_queue = 128u * 1024u * 1024u,
                .max_queue_per_uid = 512u * 1024u * 1024u,
                .backpressure = 1024u * 1024u,
                .hello_timeout_ms = 10000,
                .stall_timeout_ms = 30000,
                .reply_timeout_ms = 25000,
                .activation_timeout_ms = 25000,
                .max_activations_per_uid = 32,
                .activation_interval_ms = 10000,
                .max_monitor_queue = 16u * 1024u * 1024u,
                .reserved_connections = 0,
                .idle_timeout_ms = 0,
                .max_inflight_fds = 256,
                .max_inflight_fds_uid = 1024,
                .max_incoming_uid = 128u * 1024u * 1024u,
                .max_memfd_uid = 512u * 1024u * 1024u,
        };
}

void bus_config_init(struct bus_config *config)
{
        *config = (struct bus_config){.type = BUS_TYPE_SESSION, .standard_service_dirs = true};
        bus_limits_init(&config->limits);
        policy_init(&config->policy);
}

void bus_config_deinit(struct bus_config *config)
{
        for (size_t i = 0; i < config->n_listen; i++)
                free(config->listen[i]);
        free(config->listen);
        config->listen = NULL;
        config->n_listen = 0;
        for (size_t i = 0; i < config->n_service_dirs; i++)
                free(config->service_dirs[i]);
        free(config->service_dirs);
        config->service_dirs = NULL;
        config->n_service_dirs = 0;
        free(config->metrics_socket);
        config->metrics_socket = NULL;
        policy_deinit(&config->policy);
}

/* ---- errors ---------------------------------------------------------------- */

struct parser {
        struct bus_config *config;
        char *err;
        size_t err_size;
};

/* Report "ORIGIN: REASON" in the caller's buffer; returns r. */
static int __attribute__((format(printf, 3, 4))) fail_plain(struct parser *ps, int r, const char *fmt, ...)
{
        va_list ap;
        int n;

        if (!ps->err || ps->err_size == 0)
                return r;
        n = snprintf(ps->err, ps->err_size, "%s: ", ps->config->origin);
        if (n >= 0 && (size_t) n < ps->err_size) {
                va_start(ap, fmt);
                vsnprintf(ps->err + n, ps->err_size - (size_t) n, fmt, ap);
                va_end(ap);
        }
        return r;
}

/* Report "ORIGIN: KEY: REASON" and return CONFIG_E_INVALID. */
static int __attribute__((format(printf, 3, 4))) fail(struct parser *ps, const char *key, const char *fmt, ...)
{
        char reason[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(reason, sizeof(reason), fmt, ap);
        va_end(ap);
        return fail_plain(ps, CONFIG_E_INVALID, "%s: %s", key, reason);
}

/*
 * A value as it was written, for "got ..." in errors: compact JSON, cut at
 * 60 bytes. Valid while the value lives, or until the next call.
 */
static const char *got(struct json_object *v)
{
        static char buf[80];
        const char *s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

        if (strlen(s) <= 60)
                return s;
        snprintf(buf, sizeof(buf), "%.60s...", s);
        return buf;
}

static int expect_type(struct parser *ps, const char *key, struct json_object *v, enum json_type type)
{
        static const char *const what[] = {
                [json_type_object] = "an object",      [json_type_array] = "an array",
                [json_type_string] = "a string",       [json_type_int] = "an integer",
                [json_type_boolean] = "true or false",
        };

        if (json_object_is_type(v, type))
                return 0;
        return fail(ps, key, "expected %s, got %s", what[type], got(v));
}

/* ---- limits ---------------------------------------------------------------- */

_Static_assert(sizeof(unsigned) == sizeof(uint32_t), "limit fields are 32 or 64 bits");

struct limit_key {
        const char *key;
        size_t offset;
        size_t size; /* 4 or 8 */
        uint64_t min, max;
};

#define LIMIT(k, field, lo, hi)                                                                                        \
        {                                                                                                              \
                k, offsetof(struct bus_limits, field), sizeof(((struct bus_limits *) 0)->field), lo, hi                \
        }

static const struct limit_key limit_keys[] = {
        LIMIT("max_frame_bytes", max_frame, IPCBUS_FRAME_PREFIX_SIZE + 1024,
              IPCBUS_FRAME_PREFIX_SIZE + IPCBUS_CLIENT_HEADER_MAX + IPCBUS_BODY_MAX),
        LIMIT("max_header_bytes", max_header, 1024, IPCBUS_CLIENT_HEADER_MAX),
        LIMIT("max_body_bytes", max_body, 1, IPCBUS_BODY_MAX),
        LIMIT("max_fds_per_message", max_fds, 0, IPCBUS_FDS_MAX),
        LIMIT("max_connections", max_connections, 1, UINT32_MAX),
        LIMIT("max_connections_per_uid", max_connections_per_uid, 1, UINT32_MAX),
        LIMIT("max_names_per_connection", max_names, 1, UINT32_MAX),
        LIMIT("max_names_per_uid", max_names_per_uid, 1, UINT32_MAX),
        LIMIT("max_matches_per_connection", max_matches, 1, UINT32_MAX),
        LIMIT("max_matches_per_uid", max_matches_per_uid, 1, UINT32_MAX),
        LIMIT("max_pending_calls_per_connection", max_pending, 1, UINT32_MAX),
        LIMIT("max_pending_calls_per_uid", max_pending_per_uid, 1, UINT32_MAX),
        LIMIT("max_queued_bytes_per_connection", max_queue, 1, INT64_MAX),
        LIMIT("max_queued_bytes_per_uid", max_queue_per_uid, 1, INT64_MAX),
        LIMIT("backpressure_bytes", backpressure, 1, INT64_MAX),
        LIMIT("hello_timeout_ms", hello_timeout_ms, 1, TIMEOUT_MAX_MS),
        LIMIT("stall_timeout_ms", stall_timeout_ms, 1, TIMEOUT_MAX_MS),
        LIMIT("reply_timeout_ms", reply_timeout_ms, 1, TIMEOUT_MAX_MS),
        LIMIT("activation_timeout_ms", activation_timeout_ms, 1, TIMEOUT_MAX_MS),
        LIMIT("max_activations_per_uid", max_activations_per_uid, 1, UINT32_MAX),
        LIMIT("activation_interval_ms", activation_interval_ms, 1, TIMEOUT_MAX_MS),
        LIMIT("max_monitor_queued_bytes", max_monitor_queue, 1, INT64_MAX),
        LIMIT("reserved_connections", reserved_connections, 0, UINT32_MAX - 1),
        LIMIT("idle_timeout_ms", idle_timeout_ms, 0, TIMEOUT_MAX_MS),
        LIMIT("max_fds_in_flight_per_connection", max_inflight_fds, 1, UINT32_MAX),
        LIMIT("max_fds_in_flight_per_uid", max_inflight_fds_uid, 1, UINT32_MAX),
        LIMIT("max_incoming_bytes_per_uid", max_incoming_uid, IPCBUS_FRAME_PREFIX_SIZE + 1024, INT64_MAX),
        LIMIT("max_memfd_bytes_per_uid", max_memfd_uid, 1, INT64_MAX),
};

/* Pairs that must hold low <= high, by index in limit_keys. */
enum {
        L_FRAME,
        L_HEADER,
        L_BODY,
        L_FDS,
        L_CONNECTIONS,
        L_CONNECTIONS_PER_UID,
        L_NAMES,
        L_NAMES_PER_UID,
        L_MATCHES,
        L_MATCHES_PER_UID,
        L_PENDING,
        L_PENDING_PER_UID,
        L_QUEUE,
        L_QUEUE_PER_UID,
        L_BACKPRESSURE,
        L_HELLO,
        L_STALL,
        L_REPLY,
        L_ACTIVATION,
        L_ACTIVATIONS_PER_UID,
        L_ACTIVATION_INTERVAL,
        L_MONITOR_QUEUE,
        L_RESERVED_CONNECTIONS,
        L_IDLE,
        L_FDS_IN_FLIGHT,
        L_FDS_IN_FLIGHT_PER_UID,
        L_INCOMING_PER_UID,
        L_MEMFD_PER_UID,
        _L_MAX,
};
_Static_assert(_L_MAX == ELEMENTSOF(limit_keys), "limit_keys and its indices agree");

static const struct {
        unsigned low, high;
} limit_order[] = {
        {L_NAMES, L_NAMES_PER_UID},
        {L_MATCHES, L_MATCHES_PER_UID},
        {L_PENDING, L_PENDING_PER_UID},
        {L_QUEUE, L_QUEUE_PER_UID},
        {L_CONNECTIONS_PER_UID, L_CONNECTIONS},
        {L_RESERVED_CONNECTIONS, L_CONNECTIONS},
        {L_FRAME, L_QUEUE},        /* a message always fits an empty queue */
        {L_BACKPRESSURE, L_QUEUE}, /* a queue must be able to fill up to where its senders wait */
        {L_FDS, L_FDS_IN_FLIGHT},  /* a message with descriptors always fits an empty account */
        {L_FDS_IN_FLIGHT, L_FDS_IN_FLIGHT_PER_UID},
        {L_FRAME, L_INCOMING_PER_UID}, /* one whole frame can always come in */
        {L_BODY, L_MEMFD_PER_UID},     /* one whole body can always come in a memfd */
};

static uint64_t limit_get(const struct bus_limits *limits, const struct limit_key *k)
{
        const char *p = (const char *) limits + k->offset;

        if (k->size == sizeof(uint64_t))
                return *(const uint64_t *) (const void *) p;
        return *(const uint32_t *) (const void *) p;
}

static void limit_set(struct bus_limits *limits, const struct limit_key *k, uint64_t value)
{
        char *p = (char *) limits + k->offset;

        if (k->size == sizeof(uint64_t))
                *(uint64_t *) (void *) p = value;
        else
                *(uint32_t *) (void *) p = (uint32_t) value;
}

static int parse_limits(struct parser *ps, struct json_object *obj)
{
        struct bus_limits *limits = &ps->config->limits;
        bool given[_L_MAX] = {false};
        char key[128];
        int r;

        r = expect_type(ps, "limits", obj, json_type_object);
        if (r)
                return r;
        json_object_object_foreach(obj, name, v)
        {
                const struct limit_key *k = NULL;
                int64_t value;

                snprintf(key, sizeof(key), "limits.%s", name);
                for (size_t i = 0; i < ELEMENTSOF(limit_keys); i++)
                        if (strcmp(limit_keys[i].key, name) == 0) {
                                k = &limit_keys[i];
                                given[i] = true;
                        }
                if (!k)
                        return fail(ps, key, "unknown key");
                r = expect_type(ps, key, v, json_type_int);
                if (r)
                        return r;
                /* json-c keeps integers above INT64_MAX as unsigned; get_int64 clamps them to INT64_MAX. */
                value = json_object_get_int64(v);
                if (value < 0 || (uint64_t) value < k->min)
                        return fail(ps, key, "must be at least %" PRIu64 ", got %s", k->min, got(v));
                if ((uint64_t) value > k->max || json_object_get_uint64(v) > k->max)
                        return fail(ps, key, "must be at most %" PRIu64 ", got %s", k->max, got(v));
                limit_set(limits, k, (uint64_t) value);
        }

        /*
         * Blame the key the file gave: the higher one when it is given,
         * else the lower one (the defaults agree among themselves).
         */
        for (size_t i = 0; i < ELEMENTSOF(limit_order); i++) {
                const struct limit_key *low = &limit_keys[limit_order[i].low];
                const struct limit_key *high = &limit_keys[limit_order[i].high];
                uint64_t lv = limit_get(limits, low), hv = limit_get(limits, high);

                if (lv <= hv)
                        continue;
                if (given[limit_order[i].high]) {
                        snprintf(key, sizeof(key), "limits.%s", high->key);
                        return fail(ps, key, "must be at least limits.%s (%" PRIu64 "), got %" PRIu64, low->key, lv,
                                    hv);
                }
                snprintf(key, sizeof(key), "limits.%s", low->key);
                return fail(ps, key, "must be at most limits.%s (%" PRIu64 "), got %" PRIu64, high->key, hv, lv);
        }
        return 0;
}

/* ---- listen ---------------------------------------------------------------- */

static int parse_listen(struct parser *ps, struct json_object *arr)
{
        struct bus_config *config = ps->config;
        size_t n;
        char key[64];
        int r;

        r = expect_type(ps, "listen", arr, json_type_array);
        if (r)
                return r;
        n = json_object_array_length(arr);
        if (n == 0)
                return 0;
        config->listen = calloc(n, sizeof(*config->listen));
        if (!config->listen)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct json_object *v = json_object_array_get_idx(arr, i);
                _cleanup_(freep) char *path = NULL;
                const char *address;

                snprintf(key, sizeof(key), "listen[%zu]", i);
                r = expect_type(ps, key, v, json_type_string);
                if (r)
                        return r;
                address = json_object_get_string(v);
                r = address_parse(address, &path);
                if (r == -ENOMEM)
                        return r;
                if (r)
                        return fail(ps, key, "expected an address unix:path=/ABSOLUTE/PATH, got %s", got(v));
                for (size_t j = 0; j < config->n_listen; j++)
                        if (strcmp(config->listen[j], address) == 0)
                                return fail(ps, key, "listed twice: %s", got(v));
                config->listen[config->n_listen] = strdup(address);
                if (!config->listen[config->n_listen])
                        return -ENOMEM;
                config->n_listen++;
        }
        return 0;
}

/* ---- the metrics socket ------------------------------------------------------- */

/* "metrics_socket": an absolute path that fits a socket address, or "" for none. */
static int parse_metrics_socket(struct parser *ps, struct json_object *v)
{
        const char *path;
        int r;

        r = expect_type(ps, "metrics_socket", v, json_type_string);
        if (r)
                return r;
        path = json_object_get_string(v);
        if (path[0] == '\0')
                return 0;
        if (path[0] != '/' || strlen(path) >= sizeof(((struct sockaddr_un *) 0)->sun_path))
                return fail(ps, "metrics_socket", "expected an absolute path of at most %zu bytes, or \"\", got %s",
                            sizeof(((struct sockaddr_un *) 0)->sun_path) - 1, got(v));
        free(ps->config->metrics_socket);
        ps->config->metrics_socket = strdup(path);
        return ps->config->metrics_socket ? 0 : -ENOMEM;
}

/* ---- service directories ----------------------------------------------------- */

static int parse_service_dirs(struct parser *ps, struct json_object *arr)
{
        struct bus_config *config = ps->config;
        size_t n;
        char key[64];
        int r;

        r = expect_type(ps, "service_dirs", arr, json_type_array);
        if (r)
                return r;
        n = json_object_array_length(arr);
        if (n == 0)
                return 0;
        config->service_dirs = calloc(n, sizeof(*config->service_dirs));
        if (!config->service_dirs)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct json_object *v = json_object_array_get_idx(arr, i);
                const char *dir;

                snprintf(key, sizeof(key), "service_dirs[%zu]", i);
                r = expect_type(ps, key, v, json_type_string);
                if (r)
                        return r;
                dir = json_object_get_string(v);
                if (dir[0] != '/' || strlen(dir) >= PATH_MAX)
                        return fail(ps, key, "expected an absolute directory path, got %s", got(v));
                config->service_dirs[config->n_service_dirs] = strdup(dir);
                if (!config->service_dirs[config->n_service_dirs])
                        return -ENOMEM;
                config->n_service_dirs++;
        }
        return 0;
}

/* ---- policy ---------------------------------------------------------------- */

enum rule_key {
        K_ALLOW,
        K_DENY,
        K_USER,
        K_GROUP,
        K_NAME,
        K_NAME_PREFIX,
        K_INTERFACE,
        K_MEMBER,
        K_PATH,
        K_PATH_PREFIX,
        K_TYPE,
        _K_MAX,
};

static const char *const rule_keys[_K_MAX] = {
        [K_ALLOW] = "allow",         [K_DENY] = "deny",
        [K_USER] = "user",           [K_GROUP] = "group",
        [K_NAME] = "name",           [K_NAME_PREFIX] = "name_prefix",
        [K_INTERFACE] = "interface", [K_MEMBER] = "member",
        [K_PATH] = "path",           [K_PATH_PREFIX] = "path_prefix",
        [K_TYPE] = "type",
};

#define CRITERIA_NAME ((1u << K_NAME) | (1u << K_NAME_PREFIX))
#define CRITERIA_MESSAGE                                                                                               \
        (CRITERIA_NAME | (1u << K_INTERFACE) | (1u << K_MEMBER) | (1u << K_PATH) | (1u << K_PATH_PREFIX) |             \
         (1u << K_TYPE))

/* The criteria each action takes (policy.h). */
static const unsigned action_criteria[_POLICY_ACTION_MAX] = {
        [POLICY_CONNECT] = 0,
        [POLICY_OWN] = CRITERIA_NAME,
        [POLICY_SEND] = CRITERIA_MESSAGE,
        [POLICY_RECEIVE] = CRITERIA_MESSAGE,
        [POLICY_MONITOR] = 0,
};

/* A JSON integer in 0..2^32-2 (the id -1 means "none" to the kernel). */
static bool get_id(struct json_object *v, uint32_t *ret)
{
        int64_t id;

        if (!json_object_is_type(v, json_type_int))
                return false;
        id = json_object_get_int64(v);
        if (id < 0 || id >= (int64_t) UINT32_MAX)
                return false;
        *ret = (uint32_t) id;
        return true;
}

/* "user": a uid, "*", "@self" or a user name looked up now. */
static int parse_rule_user(struct parser *ps, const char *key, struct json_object *v, struct policy_rule *rule)
{
        const char *s = json_object_get_string(v);
        struct passwd *pw;

        rule->who = POLICY_WHO_USER;
        if (get_id(v, &rule->id))
                return 0;
        if (!json_object_is_type(v, json_type_string) || s[0] == '\0')
                return fail(ps, key, "expected a uid, a user name, \"*\" or \"@self\", got %s", got(v));
        if (strcmp(s, "*") == 0) {
                rule->who = POLICY_WHO_ANYONE;
                return 0;
        }
        if (strcmp(s, "@self") == 0) {
                rule->id = (uint32_t) getuid();
                return 0;
        }
        errno = 0;
        pw = getpwnam(s);
        if (!pw) {
                if (errno != 0 && errno != ENOENT && errno != ESRCH)
                        return fail(ps, key, "cannot look up user %s: %s", got(v), strerror(errno));
                return fail(ps, key, "no such user %s", got(v));
        }
        rule->id = (uint32_t) pw->pw_uid;
        return 0;
}

/* "group": a gid or a group name looked up now. */
static int parse_rule_group(struct parser *ps, const char *key, struct json_object *v, struct policy_rule *rule)
{
        const char *s = json_object_get_string(v);
        struct group *gr;

        rule->who = POLICY_WHO_GROUP;
        if (get_id(v, &rule->id))
                return 0;
        if (!json_object_is_type(v, json_type_string) || s[0] == '\0')
                return fail(ps, key, "expected a gid or a group name, got %s", got(v));
        errno = 0;
        gr = getgrnam(s);
        if (!gr) {
                if (errno != 0 && errno != ENOENT && errno != ESRCH)
                        return fail(ps, key, "cannot look up group %s: %s", got(v), strerror(errno));
                return fail(ps, key, "no such group %s", got(v));
        }
        rule->id = (uint32_t) gr->gr_gid;
        return 0;
}

/*
 * A string criterion, checked by `valid` (what: what it must be, for the
 * error). Returns the string (owned by v) through *ret.
 */
static int parse_rule_string(struct parser *ps, const char *key, struct json_object *v, bool (*valid)(const char *),
                             const char *what, char **ret)
{
        int r = expect_type(ps, key, v, json_type_string);

        if (r)
                return r;
        if (!valid(json_object_get_string(v)))
                return fail(ps, key, "expected %s, got %s", what, got(v));
        *ret = (char *) json_object_get_string(v);
        return 0;
}

/* "type": "call", "return", "error" or "signal". */
static int parse_rule_type(struct parser *ps, const char *key, struct json_object *v, struct policy_rule *rule)
{
        if (json_object_is_type(v, json_type_string))
                rule->type = (int) msg_type_from_string(json_object_get_string(v));
        if (rule->type == MSG_TYPE_INVALID)
                return fail(ps, key, "expected \"call\", \"return\", \"error\" or \"signal\", got %s", got(v));
        return 0;
}

/* Two keys that exclude each other: report the pair under the rule's own key. */
static int check_exclusive(struct parser *ps, const char *rule_key, struct json_object *const *v, enum rule_key a,
                           enum rule_key b)
{
        if (v[a] && v[b])
                return fail(ps, rule_key, "\"%s\" and \"%s\" both given", rule_keys[a], rule_keys[b]);
        return 0;
}

/* The keys of the rule object into v (indexed by enum rule_key); any other key is refused. */
static int parse_rule_keys(struct parser *ps, const char *rule_key, struct json_object *obj, struct json_object **v)
{
        char key[64];
        enum rule_key k;
        int r;

        r = expect_type(ps, rule_key, obj, json_type_object);
        if (r)
                return r;
        json_object_object_foreach(obj, name, value)
        {
                for (k = 0; k < _K_MAX && strcmp(rule_keys[k], name) != 0; k++)
                        ;
                if (k == _K_MAX) {
                        snprintf(key, sizeof(key), "%s.%s", rule_key, name);
                        return fail(ps, key, "unknown key");
                }
                v[k] = value;
        }
        return 0;
}

/* Exactly one of allow and deny, and no two keys that exclude each other. */
static int check_rule_keys(struct parser *ps, const char *rule_key, struct json_object *const *v)
{
        int r;

        if (!v[K_ALLOW] && !v[K_DENY])
                return fail(ps, rule_key, "expected \"allow\" or \"deny\"");
        if ((r = check_exclusive(ps, rule_key, v, K_ALLOW, K_DENY)) != 0 ||
            (r = check_exclusive(ps, rule_key, v, K_USER, K_GROUP)) != 0 ||
            (r = check_exclusive(ps, rule_key, v, K_NAME, K_NAME_PREFIX)) != 0 ||
            (r = check_exclusive(ps, rule_key, v, K_PATH, K_PATH_PREFIX)) != 0)
                return r;
        return 0;
}

/* The rule's verdict and action (the value of allow or deny), and only the criteria that action has. */
static int parse_rule_action(struct parser *ps, const char *rule_key, struct json_object *const *v,
                             struct policy_rule *rule)
{
        char key[64];
        const char *action;
        enum rule_key k;

        rule->allow = v[K_ALLOW] != NULL;
        k = rule->allow ? K_ALLOW : K_DENY;
        snprintf(key, sizeof(key), "%s.%s", rule_key, rule_keys[k]);
        action = json_object_is_type(v[k], json_type_string) ? json_object_get_string(v[k]) : "";
        for (rule->action = 0; rule->action < _POLICY_ACTION_MAX; rule->action++)
                if (strcmp(policy_action_to_string(rule->action), action) == 0)
                        break;
        if (rule->action == _POLICY_ACTION_MAX)
                return fail(ps, key, "expected \"connect\", \"own\", \"send\", \"receive\" or \"monitor\", got %s",
                            got(v[k]));

        for (k = K_NAME; k < _K_MAX; k++)
                if (v[k] && !(action_criteria[rule->action] & (1u << k))) {
                        snprintf(key, sizeof(key), "%s.%s", rule_key, rule_keys[k]);
                        return fail(ps, key, "not a criterion of \"%s\" rules", action);
                }
        return 0;
}

/* One criterion k of the rule, its value v reported under key. */
static int parse_rule_criterion(struct parser *ps, const char *key, enum rule_key k, struct json_object *v,
                                struct policy_rule *rule)
{
        int r;

        switch (k) {
        case K_USER:
                r = parse_rule_user(ps, key, v, rule);
                break;
        case K_GROUP:
                r = parse_rule_group(ps, key, v, rule);
                break;
        case K_NAME:
                /* A unique name can be talked to but never owned. */
                if (rule->action == POLICY_OWN)
                        r = parse_rule_string(ps, key, v, names_is_well_known, "a well-known name", &rule->name);
                else
                        r = parse_rule_string(ps, key, v, names_is_bus_name, "a bus name", &rule->name);
                break;
        case K_NAME_PREFIX:
                r = parse_rule_string(ps, key, v, names_is_well_known, "a well-known name", &rule->name);
                rule->name_prefix = true;
                break;
        case K_INTERFACE:
                r = parse_rule_string(ps, key, v, names_is_interface, "an interface name", &rule->interface);
                break;
        case K_MEMBER:
                r = parse_rule_string(ps, key, v, names_is_member, "a member name", &rule->member);
                break;
        case K_PATH:
        case K_PATH_PREFIX:
                r = parse_rule_string(ps, key, v, names_is_path, "an object path", &rule->path);
                rule->path_prefix = k == K_PATH_PREFIX;
                break;
        case K_TYPE:
                r = parse_rule_type(ps, key, v, rule);
                break;
        default:
                r = 0;
                break;
        }
        return r;
}

static int parse_rule(struct parser *ps, size_t index, struct json_object *obj)
{
        struct json_object *v[_K_MAX] = {NULL};
        struct policy_rule rule = {.index = (unsigned) index, .who = POLICY_WHO_ANYONE};
        char rule_key[32], key[64];
        enum rule_key k;
        int r;

        snprintf(rule_key, sizeof(rule_key), "policy[%zu]", index);
        r = parse_rule_keys(ps, rule_key, obj, v);
        if (r)
                return r;
        r = check_rule_keys(ps, rule_key, v);
        if (r)
                return r;
        r = parse_rule_action(ps, rule_key, v, &rule);
        if (r)
                return r;

        for (k = K_USER; k < _K_MAX; k++) {
                if (!v[k])
                        continue;
                snprintf(key, sizeof(key), "%s.%s", rule_key, rule_keys[k]);
                r = parse_rule_criterion(ps, key, k, v[k], &rule);
                if (r)
                        return r;
        }
        return policy_add(&ps->config->policy, &rule);
}

static int parse_policy(struct parser *ps, struct json_object *arr)
{
        int r = expect_type(ps, "policy", arr, json_type_array);

        for (size_t i = 0; r == 0 && i < json_object_array_length(arr); i++)
                r = parse_rule(ps, i, json_object_array_get_idx(arr, i));
        return r;
}

/* ---- the file -------------------------------------------------------------- */

static int parse_type(struct parser *ps, struct json_object *v)
{
        const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";

        if (strcmp(s, "session") == 0)
                ps->config->type = BUS_TYPE_SESSION;
        else if (strcmp(s, "system") == 0)
                ps->config->type = BUS_TYPE_SYSTEM;
        else
                return fail(ps, "type", "expected \"session\" or \"system\", got %s", got(v));
        return 0;
}

static void json_object_putp(struct json_object **o)
{
        json_object_put(*o);
}

static void json_tokener_freep(struct json_tokener **t)
{
        if (*t)
                json_tokener_free(*t);
}

/* Parse the JSON text, reporting a syntax error with its line and column. */
static int parse_json(struct parser *ps, const char *text, size_t len, struct json_object **ret)
{
        _cleanup_(json_tokener_freep) struct json_tokener *tok = NULL;
        struct json_object *obj;
        enum json_tokener_error jerr;
        size_t pos, line = 1, column = 1;

        if (len > CONFIG_TEXT_MAX)
                return fail_plain(ps, CONFIG_E_INVALID, "larger than %u bytes", CONFIG_TEXT_MAX);
        tok = json_tokener_new_ex(JSON_TOKENER_DEFAULT_DEPTH);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        obj = json_tokener_parse_ex(tok, text, (int) len);
        jerr = json_tokener_get_error(tok);
        pos = json_tokener_get_parse_end(tok);
        if (obj && jerr == json_tokener_success && pos < len) {
                /* Strict mode stops after the value: only white space may follow. */
                while (pos < len && strchr(" \t\r\n", text[pos]) && text[pos] != '\0')
                        pos++;
                if (pos < len) {
                        json_object_put(obj);
                        obj = NULL;
                }
        }
        if (!obj) {
                const char *desc = jerr == json_tokener_continue  ? "unexpected end of text"
                                   : jerr == json_tokener_success ? "text after the JSON value"
                                                                  : json_tokener_error_desc(jerr);

                for (size_t i = 0; i < pos && i < len; i++) {
                        column++;
                        if (text[i] == '\n') {
                                line++;
                                column = 1;
                        }
                }
                return fail_plain(ps, CONFIG_E_INVALID, "line %zu, column %zu: syntax error: %s", line, column, desc);
        }
        *ret = obj;
        return 0;
}

static int parse_config(struct parser *ps, const char *text, size_t len)
{
        _cleanup_(json_object_putp) struct json_object *root = NULL;
        int r;

        r = parse_json(ps, text, len, &root);
        if (r)
                return r;
        if (!json_object_is_type(root, json_type_object))
                return fail_plain(ps, CONFIG_E_INVALID, "expected a JSON object at the top level, got %s", got(root));
        json_object_object_foreach(root, name, v)
        {
                if (strcmp(name, "type") == 0)
                        r = parse_type(ps, v);
                else if (strcmp(name, "listen") == 0)
                        r = parse_listen(ps, v);
                else if (strcmp(name, "limits") == 0)
                        r = parse_limits(ps, v);
                else if (strcmp(name, "policy") == 0)
                        r = parse_policy(ps, v);
                else if (strcmp(name, "service_dirs") == 0)
                        r = parse_service_dirs(ps, v);
                else if (strcmp(name, "metrics_socket") == 0)
                        r = parse_metrics_socket(ps, v);
                else if (strcmp(name, "standard_service_dirs") == 0) {
                        r = expect_type(ps, name, v, json_type_boolean);
                        if (r == 0)
                                ps->config->standard_service_dirs = json_object_get_boolean(v);
                } else
                        r = fail(ps, name, "unknown key");
                if (r)
                        return r;
        }
        return 0;
}

int bus_config_parse(struct bus_config *config, const char *text, size_t len, const char *origin, char *err,
                     size_t err_size)
{
        struct parser ps = {.config = config, .err = err, .err_size = err_size};
        int r;

        bus_config_init(config);
        snprintf(config->origin, sizeof(config->origin), "%s", origin);
        r = parse_config(&ps, text, len);
        if (r) {
                if (r == -ENOMEM)
                        fail_plain(&ps, r, "out of memory");
                bus_config_deinit(config);
        }
        return r;
}

int bus_config_load_file(struct bus_config *config, const char *path, char *err, size_t err_size)
{
        _cleanup_(freep) char *text = NULL;
        size_t len = 0;
        int r;

        r = file_read_text(path, CONFIG_TEXT_MAX, &text, &len);
        if (r < 0) {
                if (err && err_size)
                        snprintf(err, err_size, "%s: %s", path,
                                 r == -EFBIG ? "file too large for a configuration" : strerror(-r));
                return r;
        }
        return bus_config_parse(config, text, len, path, err, err_size);
}

int bus_config_load_default(struct bus_config *config, enum bus_type type, char *err, size_t err_size)
{
        const char *text = type == BUS_TYPE_SYSTEM ? config_default_system : config_default_session;
        const char *origin = type == BUS_TYPE_SYSTEM ? "built-in system.json" : "built-in session.json";
        int r;

        r = bus_config_parse(config, text, strlen(text), origin, err, err_size);
        if (r == 0 && config->type != type) {
                /* Only a broken build gets here: the shipped file says another type. */
                if (err && err_size)
                        snprintf(err, err_size, "%s: type: does not match the file's name", origin);
                bus_config_deinit(config);
                return CONFIG_E_INVALID;
        }
        return r;
}
