/* SPDX-License-Identifier: MIT */
/*
 * The match index: the match rules (protocol/match.h) of every subscriber,
 * indexed so that routing a message looks only at rules that could match it.
 *
 * Every key a rule can fix is indexable: an argument (name and value),
 * member, path, destination, interface, path_namespace, sender. A rule is
 * filed in exactly one bucket, under the one of its keys whose bucket is the
 * smallest when the rule is added (ties go to the order above: arguments are
 * the most selective); rules that fix none of these keys (at most a type) sit
 * in one wildcard list. Routing a message looks up the buckets of the
 * message's own values: its member, interface, path, each namespace its path
 * is in, destination, sender and the well-known names the sender owns, and,
 * when the index holds argument buckets, each top-level string member of the
 * body (read in one scan, in place). It checks the rules found
 * there and the wildcard list, and nothing else.
 *
 * The cost bound: a message visits a rule only when the rule is filed under a
 * value the message carries, so rules naming other senders, interfaces,
 * members, paths or argument values cost it nothing however many there are,
 * and a rule's keys other than the one it is filed under are checked in
 * O(keys) with arguments found by binary search (struct match_args), never
 * by comparing every body member with every rule. A uid's rules thus cost a
 * message at most its rule limit in visits, and only when that uid's rules
 * share values with the message; a rule with one value of its own costs
 * nothing to messages without it.
 *
 * A subscriber is a `struct match_owner` the caller embeds in its connection
 * object. The same rule added twice by one owner is one entry with two
 * references (AddMatch twice, RemoveMatch removes one).
 */
#pragma once

#include <stdint.h>

#include "protocol/match.h"
#include "util/list.h"
#include "util/map.h"

struct match_owner {
        struct list rules;   /* struct match_entry.owner_link */
        unsigned n_rules;    /* rule instances, references included */
        unsigned *total;     /* a shared count n_rules is part of (e.g. per uid); NULL: none */
        uint64_t generation; /* the last routing pass that delivered to this owner */
};

struct match_index {
        struct map buckets;   /* struct match_bucket by kind and value */
        struct map entries;   /* struct match_entry by owner and rule (finding an owner's equal rule) */
        struct list wildcard; /* struct match_entry.bucket_link: rules fixing no indexed key */
        uint64_t generation;  /* counts routing passes */
        unsigned n_arg_buckets, n_name_buckets, n_namespace_buckets; /* buckets of kinds that cost a lookup each */
        size_t key_max; /* the longest bucket key ever made: longer values have no bucket */
        char *key_buf;  /* scratch for building keys, key_cap bytes */
        size_t key_cap;
        size_t n_visited; /* rules the last routing pass checked (for tests and statistics) */
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

/* The expected outcomes of this module (util/error.h), never a fault. */
enum {
        MATCH_E_NOT_FOUND = 1, /* the owner has no rule equal to the one given */
};

/* Remove one instance of an equal rule of owner. Returns 0 or MATCH_E_NOT_FOUND. */
int match_index_remove(struct match_index *idx, struct match_owner *owner, const struct match_rule *rule);

/* Remove all of owner's rules. */
void match_index_remove_owner(struct match_index *idx, struct match_owner *owner);

typedef void (*match_deliver_fn)(struct match_owner *owner, void *userdata);

/*
 * Call visit(name, arg) for each well-known name that the sender `unique`
 * owns, i.e. each name for which match_owner_fn holds (in the broker: the
 * names whose primary owner is that connection; none for a sender that is
 * no connection, such as the driver), until visit returns true.
 */
typedef void (*match_names_fn)(const char *unique, bool (*visit)(const char *name, const void *arg), const void *arg,
                               void *userdata);

/*
 * Call deliver once for each owner that has at least one rule matching m,
 * whatever the number of its matching rules. `owns` resolves well-known
 * sender keys (see protocol/match.h) and `names` lists the sender's names
 * (neither may be NULL); both get the same userdata. deliver must not modify
 * the index.
 */
void match_index_route(struct match_index *idx, struct msg *m, match_owner_fn owns, match_names_fn names,
                       match_deliver_fn deliver, void *userdata);
