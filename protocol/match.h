/* SPDX-License-Identifier: MIT */
/*
 * Match rules (PROTOCOL.md, "Match rules"): which messages a subscriber or a
 * monitor receives. On the wire a rule is a JSON object
 *   {"type":"signal","sender":"org.x","interface":"org.x.I","member":"M",
 *    "path":"/p","path_namespace":"/p","destination":":1.4",
 *    "args":{"name":"value"}}
 * with every key optional. Tools also accept the D-Bus-like string form
 *   type=signal,member=M,arg.name=value      (values may be 'quoted')
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "protocol/message.h"

struct match_arg {
        char *key;
        char *value;
};

struct match_rule {
        enum msg_type type; /* MSG_TYPE_INVALID = any */
        char *sender;
        char *interface;
        char *member;
        char *path;
        char *path_namespace;
        char *destination;
        struct match_arg *args; /* sorted by key, keys unique */
        size_t n_args;
};

#define MATCH_ARGS_MAX 16

void match_rule_init(struct match_rule *r);
void match_rule_deinit(struct match_rule *r);

/*
 * Why a rule was refused: one line naming the key or value at fault and what
 * is allowed (`member: 'a.b' is not a valid member name`). Written only when
 * a parse returns PROTO_E_BAD_MATCH.
 */
struct match_error {
        char text[256];
};

/* Parse the JSON object form. Returns 0, -ENOMEM or PROTO_E_BAD_MATCH (unknown
 * key, wrong type, invalid name, path and path_namespace both set, too many args). */
int match_rule_parse_json(struct match_rule *r, const char *json, size_t len);
/* Parse the string form. Same returns. An empty string is the rule matching everything. */
int match_rule_parse_string(struct match_rule *r, const char *s);
/* The same, saying in err (which may be NULL) why a rule is refused. */
int match_rule_parse_json_err(struct match_rule *r, const char *json, size_t len, struct match_error *err);
int match_rule_parse_string_err(struct match_rule *r, const char *s, struct match_error *err);
/* The canonical JSON object text of a rule (keys in the order above); caller frees. */
int match_rule_to_json(const struct match_rule *r, char **ret);

bool match_rule_equal(const struct match_rule *a, const struct match_rule *b);

/*
 * Is `well_known` currently owned by `unique`? The broker answers from its
 * name registry; rules whose sender is a unique name never ask.
 */
typedef bool (*match_owner_fn)(const char *well_known, const char *unique, void *userdata);

/*
 * A message's top-level string members (msg_get_args) sorted by key, a later
 * duplicate key hiding an earlier one, so that a rule's argument keys are
 * found by binary search: a message is scanned once however many rules look
 * into it.
 */
struct match_args {
        const struct msg_arg **by_key; /* n entries, keys unique and ascending */
        size_t n;
};

/* Build the lookup for m's body (none: n 0). Returns 0 or -ENOMEM. */
int match_args_init(struct match_args *a, struct msg *m);
void match_args_deinit(struct match_args *a);
/* The value of top-level string member `key`, or NULL. */
const char *match_args_get(const struct match_args *a, const char *key);

/*
 * Whether message m matches rule r. `owns` resolves a well-known sender key;
 * when it is NULL such a key is taken as satisfied (the client library, which
 * the broker has already filtered for). Arg keys look into the body only when
 * the rule has any (msg_get_arg; an allocation failure counts as no match).
 */
bool match_rule_matches(const struct match_rule *r, struct msg *m, match_owner_fn owns, void *userdata);
/* The same, reading arg keys from args, which was built for m. */
bool match_rule_matches_args(const struct match_rule *r, struct msg *m, match_owner_fn owns, void *userdata,
                             const struct match_args *args);
