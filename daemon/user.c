/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#include "user.h"
#include "util.h"

void user_registry_init(struct user_registry *reg)
{
        map_init(&reg->users);
}

void user_registry_deinit(struct user_registry *reg)
{
        assert(map_size(&reg->users) == 0);
        map_deinit(&reg->users);
}

static bool user_eq(const struct map_node *node, const void *key)
{
        return container_of(node, struct user, node)->uid == *(const uid_t *) key;
}

struct user *user_registry_find(struct user_registry *reg, uid_t uid)
{
        struct map_node *n = map_find(&reg->users, map_hash(&uid, sizeof(uid)), user_eq, &uid);

        return n ? container_of(n, struct user, node) : NULL;
}

int user_registry_acquire(struct user_registry *reg, uid_t uid, struct user **ret)
{
        struct user *u = user_registry_find(reg, uid);

        if (!u) {
                u = calloc(1, sizeof(*u));
                if (!u)
                        return -ENOMEM;
                u->uid = uid;
                if (map_add(&reg->users, &u->node, map_hash(&uid, sizeof(uid))) < 0) {
                        free(u);
                        return -ENOMEM;
                }
        }
        u->n_connections++;
        *ret = u;
        return 0;
}

void user_registry_release(struct user_registry *reg, struct user *user)
{
        assert(user->n_connections > 0);
        if (--user->n_connections > 0)
                return;
        assert(user->n_names == 0 && user->n_matches == 0 && user->n_pending == 0 && user->n_queued == 0);
        map_remove(&reg->users, &user->node);
        free(user);
}
