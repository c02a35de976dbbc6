/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

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
