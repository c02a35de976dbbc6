/* SPDX-License-Identifier: MIT */
/*
 * Policy (daemon/CONFIG.md, "Policy"): allow and deny rules deciding who may
 * connect, own a name, send, receive and monitor. The rules are checked in
 * the order of the configuration and the LAST rule that applies decides, as
 * within one context of dbus-daemon's XML policy. When none applies, the
 * built-in default decides: connect, own, send and receive are allowed,
 * monitor is denied. Root may always monitor.
 *
 * Checks never block and never allocate.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct msg_header;

enum policy_action {
        POLICY_CONNECT, /* "connect": open a connection to the bus */
        POLICY_OWN,     /* "own": RequestName */
        POLICY_SEND,    /* "send": calls and signals the sender sends */
        POLICY_RECEIVE, /* "receive": calls and signals the receiver gets */
        POLICY_MONITOR, /* "monitor": BecomeMonitor */
        _POLICY_ACTION_MAX,
};

enum policy_who {
        POLICY_WHO_ANYONE, /* neither "user" nor "group" given, or "user": "*" */
        POLICY_WHO_USER,   /* "user": uid, user name, or "@self" (the broker's uid) */
        POLICY_WHO_GROUP,  /* "group": gid or group name; primary or supplementary */
};

/*
 * One rule. Absent criteria (NULL strings, type 0) match anything. Which
 * criteria an action takes:
 *   own:     name (exact) or name_prefix (the name and names below it, as
 *            D-Bus own_prefix: "org.a" matches "org.a" and "org.a.b")
 *   send:    name / name_prefix match the destination (a name the receiver
 *            owns, or its unique name), interface, member, path,
 *            path_prefix (the path and paths below it), type
 *   receive: name / name_prefix match the sender (a name it owns, or its
 *            unique name), interface, member, path, path_prefix, type
 *   connect, monitor: no criteria besides who
 * A message without an interface (a call may omit it) is matched by a deny
 * rule naming an interface but not by an allow rule, as in dbus-daemon, so
 * leaving the interface out cannot get around a denial.
 */
struct policy_rule {
        enum policy_action action;
        bool allow;
        enum policy_who who;
        uint32_t id; /* uid or gid */
        char *name;  /* JSON "name" or "name_prefix" (then name_prefix is true) */
        bool name_prefix;
        char *interface;
        char *member;
        char *path; /* JSON "path" or "path_prefix" (then path_prefix is true) */
        bool path_prefix;
        int type;       /* enum msg_type; 0: any. JSON "type": "call" | "return" | "error" | "signal" */
        unsigned index; /* position in the configuration's "policy" array, for logs */
};

struct policy {
        struct policy_rule *rules;
        size_t n_rules;
        size_t n_by_action[_POLICY_ACTION_MAX]; /* fast path: no rule for an action */
};

/* Who asks: the credentials of a connection (SO_PEERCRED, SO_PEERGROUPS). */
struct policy_subject {
        uid_t uid;
        gid_t gid;
        const gid_t *groups; /* supplementary groups */
        size_t n_groups;
};

/*
 * The other side of a send or receive check: a peer, known by its unique
 * name and the well-known names it owns. owns(name) answers whether the peer
 * is the primary owner of the well-known name; owns_prefix(prefix) whether
 * it is the primary owner of `prefix` or of a name below it (as
 * policy_name_has_prefix). Either may be NULL for a peer that owns no
 * well-known name, except that without owns_prefix a name_prefix rule cannot
 * be decided: it is then taken to match when it denies and not when it allows
 * (fail closed).
 */
struct policy_peer {
        const char *unique_name;
        bool (*owns)(const char *name, void *userdata);
        void *userdata;
        bool (*owns_prefix)(const char *prefix, void *userdata);
};

/* Whether `name` is `prefix` or lies below it, as name_prefix rules match ("org.a": "org.a.b" yes, "org.ab" no). */
bool policy_name_has_prefix(const char *name, const char *prefix);

void policy_init(struct policy *p);
void policy_deinit(struct policy *p);
/* Append a copy of *rule (its strings are duplicated). Returns 0 or -ENOMEM. */
int policy_add(struct policy *p, const struct policy_rule *rule);

/* The verdict and the rule that gave it (NULL: the built-in default). */
struct policy_verdict {
        bool allowed;
        const struct policy_rule *rule;
};

struct policy_verdict policy_check_connect(const struct policy *p, const struct policy_subject *who);
struct policy_verdict policy_check_own(const struct policy *p, const struct policy_subject *who, const char *name);
struct policy_verdict policy_check_monitor(const struct policy *p, const struct policy_subject *who);
/* `to` is NULL for a broadcast signal: rules naming a destination do not apply to it. */
struct policy_verdict policy_check_send(const struct policy *p, const struct policy_subject *who,
                                        const struct msg_header *h, const struct policy_peer *to);
struct policy_verdict policy_check_receive(const struct policy *p, const struct policy_subject *who,
                                           const struct msg_header *h, const struct policy_peer *from);

const char *policy_action_to_string(enum policy_action action);
/* "policy[3]" for a rule, "default" for NULL; into buf. */
const char *policy_rule_describe(const struct policy_rule *rule, char *buf, size_t size);
