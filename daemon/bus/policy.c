/* SPDX-License-Identifier: MIT */
/*
 * The policy engine: rules in configuration order, the last applicable one
 * decides. Checks scan the rules backwards and stop at the first that
 * applies; an action no rule mentions costs one array lookup.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/bus/policy.h"
#include "protocol/message.h"
#include "protocol/names.h"

static const char *const action_names[_POLICY_ACTION_MAX] = {
        [POLICY_CONNECT] = "connect", [POLICY_OWN] = "own",         [POLICY_SEND] = "send",
        [POLICY_RECEIVE] = "receive", [POLICY_MONITOR] = "monitor",
};

const char *policy_action_to_string(enum policy_action action)
{
        if ((unsigned) action >= _POLICY_ACTION_MAX)
                return NULL;
        return action_names[action];
}

const char *policy_rule_describe(const struct policy_rule *rule, char *buf, size_t size)
{
        if (rule)
                snprintf(buf, size, "policy[%u]", rule->index);
        else
                snprintf(buf, size, "default");
        return buf;
}

bool policy_name_has_prefix(const char *name, const char *prefix)
{
        size_t n = strlen(prefix);

        return strncmp(name, prefix, n) == 0 && (name[n] == '\0' || name[n] == '.');
}

void policy_init(struct policy *p)
{
        *p = (struct policy){0};
}

static void policy_rule_deinit(struct policy_rule *r)
{
        free(r->name);
        free(r->interface);
        free(r->member);
        free(r->path);
}

void policy_deinit(struct policy *p)
{
        for (size_t i = 0; i < p->n_rules; i++)
                policy_rule_deinit(&p->rules[i]);
        free(p->rules);
        policy_init(p);
}

/* strdup that keeps NULL as NULL; false only when memory ran out. */
static bool dup_optional(char **dst, const char *src)
{
        *dst = src ? strdup(src) : NULL;
        return !src || *dst;
}

int policy_add(struct policy *p, const struct policy_rule *rule)
{
        struct policy_rule copy = *rule;

        if ((unsigned) rule->action >= _POLICY_ACTION_MAX)
                return -EINVAL;
        copy.name = copy.interface = copy.member = copy.path = NULL;
        if (!dup_optional(&copy.name, rule->name) || !dup_optional(&copy.interface, rule->interface) ||
            !dup_optional(&copy.member, rule->member) || !dup_optional(&copy.path, rule->path)) {
                policy_rule_deinit(&copy);
                return -ENOMEM;
        }
        /* The capacity is the next power of two: grow when n_rules reaches one. */
        if ((p->n_rules & (p->n_rules - 1)) == 0) {
                size_t cap = p->n_rules ? p->n_rules * 2 : 1;
                struct policy_rule *rules = reallocarray(p->rules, cap, sizeof(*rules));

                if (!rules) {
                        policy_rule_deinit(&copy);
                        return -ENOMEM;
                }
                p->rules = rules;
        }
        p->rules[p->n_rules++] = copy;
        p->n_by_action[rule->action]++;
        return 0;
}

static bool rule_matches_subject(const struct policy_rule *r, const struct policy_subject *who)
{
        switch (r->who) {
        case POLICY_WHO_ANYONE:
                return true;
        case POLICY_WHO_USER:
                return who->uid == (uid_t) r->id;
        case POLICY_WHO_GROUP:
                if (who->gid == (gid_t) r->id)
                        return true;
                for (size_t i = 0; i < who->n_groups; i++)
                        if (who->groups[i] == (gid_t) r->id)
                                return true;
                return false;
        }
        return false;
}

/*
 * Whether a rule's name criterion matches the peer on the other side: its
 * unique name, or a well-known name it owns. No peer (a broadcast) matches
 * no name.
 */
static bool rule_matches_peer(const struct policy_rule *r, const struct policy_peer *peer)
{
        if (!r->name)
                return true;
        if (!peer)
                return false;
        if (r->name_prefix)
                return peer->owns_prefix ? peer->owns_prefix(r->name, peer->userdata) : !r->allow;
        if (r->name[0] == ':')
                return peer->unique_name && strcmp(peer->unique_name, r->name) == 0;
        return peer->owns && peer->owns(r->name, peer->userdata);
}

static bool field_equals(const char *field, const char *want)
{
        return field && strcmp(field, want) == 0;
}

static bool rule_matches_header(const struct policy_rule *r, const struct msg_header *h)
{
        if (r->type && r->type != (int) h->type)
                return false;
        /* A message without interface falls under deny rules naming one, not allow rules (see policy.h). */
        if (r->interface && !(h->interface ? strcmp(h->interface, r->interface) == 0 : !r->allow))
                return false;
        if (r->member && !field_equals(h->member, r->member))
                return false;
        if (r->path) {
                if (!h->path)
                        return false;
                if (r->path_prefix ? !names_path_in_namespace(h->path, r->path) : strcmp(h->path, r->path) != 0)
                        return false;
        }
        return true;
}

/* What a check matches its rules' criteria against. */
struct check_ctx {
        const char *name;               /* own */
        const struct msg_header *h;     /* send, receive */
        const struct policy_peer *peer; /* send: the receiver; receive: the sender */
};

static bool rule_matches_ctx(const struct policy_rule *r, const struct check_ctx *ctx)
{
        switch (r->action) {
        case POLICY_CONNECT:
        case POLICY_MONITOR:
                return true;
        case POLICY_OWN:
                if (!r->name)
                        return true;
                return r->name_prefix ? policy_name_has_prefix(ctx->name, r->name) : strcmp(ctx->name, r->name) == 0;
        case POLICY_SEND:
        case POLICY_RECEIVE:
                return rule_matches_header(r, ctx->h) && rule_matches_peer(r, ctx->peer);
        case _POLICY_ACTION_MAX:
                break;
        }
        return false;
}

/*
 * The verdict on `action` for `who`: the last applicable rule's, or the
 * built-in default (everything but monitor allowed). Root may always monitor.
 */
static struct policy_verdict policy_decide(const struct policy *p, enum policy_action action,
                                           const struct policy_subject *who, const struct check_ctx *ctx)
{
        struct policy_verdict verdict = {.allowed = action != POLICY_MONITOR || who->uid == 0};

        if ((action == POLICY_MONITOR && who->uid == 0) || p->n_by_action[action] == 0)
                return verdict;
        for (size_t i = p->n_rules; i-- > 0;) {
                const struct policy_rule *r = &p->rules[i];

                if (r->action == action && rule_matches_subject(r, who) && rule_matches_ctx(r, ctx))
                        return (struct policy_verdict){.allowed = r->allow, .rule = r};
        }
        return verdict;
}

struct policy_verdict policy_check_connect(const struct policy *p, const struct policy_subject *who)
{
        return policy_decide(p, POLICY_CONNECT, who, &(struct check_ctx){0});
}

struct policy_verdict policy_check_own(const struct policy *p, const struct policy_subject *who, const char *name)
{
        return policy_decide(p, POLICY_OWN, who, &(struct check_ctx){.name = name});
}

struct policy_verdict policy_check_monitor(const struct policy *p, const struct policy_subject *who)
{
        return policy_decide(p, POLICY_MONITOR, who, &(struct check_ctx){0});
}

struct policy_verdict policy_check_send(const struct policy *p, const struct policy_subject *who,
                                        const struct msg_header *h, const struct policy_peer *to)
{
        return policy_decide(p, POLICY_SEND, who, &(struct check_ctx){.h = h, .peer = to});
}

struct policy_verdict policy_check_receive(const struct policy *p, const struct policy_subject *who,
                                           const struct msg_header *h, const struct policy_peer *from)
{
        return policy_decide(p, POLICY_RECEIVE, who, &(struct check_ctx){.h = h, .peer = from});
}
