/* SPDX-License-Identifier: MIT */
/*
 * The match index: the match rules (protocol/match.h) of every subscriber,
 * indexed so that routing a message looks only at rules that could match it.
 * Rules with a `member` sit in a per-member bucket, rules with an `interface`
 * but no member in a per-interface bucket, the others in one wildcard list;
 * routing checks the message's member bucket, its interface bucket and the
 * wildcard list, so unrelated rules cost nothing.
 *
 * A subscriber is a `struct match_owner` the caller embeds in its connection
 * object. The same rule added twice by one owner is one entry with two
 * references (AddMatch twice, RemoveMatch removes one).
 */
#pragma once

#include <stdint.h>

#include "list.h"
#include "map.h"
#include "protocol/match.h"

struct match_owner {
        struct list rules;   /* struct match_entry.owner_link */
        unsigned n_rules;    /* rule instances, references included */
        unsigned *total;     /* a shared count n_rules is part of (e.g. per uid); NULL: none */
        uint64_t generation; /* the last routing pass that delivered to this owner */
};

struct match_index {
        struct map buckets;   /* struct match_bucket by "M"+member or "I"+interface */
        struct list wildcard; /* struct match_entry.bucket_link: rules with neither */
        uint64_t generation;  /* counts routing passes */
};

void match_owner_init(struct match_owner *owner);
/* The owner must hold no rule any more (match_index_remove_owner). */
void match_owner_deinit(struct match_owner *owner);

void match_index_init(struct match_index *idx);
/* Drop every rule of every owner. */
void match_index_deinit(struct match_index *idx);

/*
 * Add one instance of *rule for owner. On success the index has taken the
 * rule's contents and *rule is left empty (match_rule_init); on failure
 * (-ENOMEM) *rule is untouched.
 */
int match_index_add(struct match_index *idx, struct match_owner *owner, struct match_rule *rule);

/* Remove one instance of an equal rule of owner. Returns 0 or -ENOENT. */
int match_index_remove(struct match_index *idx, struct match_owner *owner, const struct match_rule *rule);

/* Remove all of owner's rules. */
void match_index_remove_owner(struct match_index *idx, struct match_owner *owner);

typedef void (*match_deliver_fn)(struct match_owner *owner, void *userdata);

/*
 * Call deliver once for each owner that has at least one rule matching m,
 * whatever the number of its matching rules. `owns` resolves well-known
 * sender keys (see protocol/match.h) and gets the same userdata. deliver must
 * not modify the index.
 */
void match_index_route(struct match_index *idx, struct msg *m, match_owner_fn owns, match_deliver_fn deliver,
                       void *userdata);
