/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#include "daemon/bus/user.h"
#include "util/util.h"

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

/* Free a user nothing refers to any more. */
static void user_registry_gc(struct user_registry *reg, struct user *user)
{
        if (user->n_connections > 0 || user->n_accounts > 0)
                return;
        assert(user->n_names == 0 && user->n_matches == 0 && user->n_pending == 0 && user->n_queued == 0);
        assert(user->n_incoming == 0 && user->n_fds == 0 && user->n_memfd_bytes == 0);
        map_remove(&reg->users, &user->node);
        free(user);
}

void user_registry_release(struct user_registry *reg, struct user *user)
{
        assert(user->n_connections > 0);
        user->n_connections--;
        user_registry_gc(reg, user);
}

int user_fds_new(struct user_registry *reg, struct user *user, struct user_fds **ret)
{
        struct user_fds *a = calloc(1, sizeof(*a));

        if (!a)
                return -ENOMEM;
        *a = (struct user_fds){.n_ref = 1, .user = user, .reg = reg};
        user->n_accounts++;
        *ret = a;
        return 0;
}

struct user_fds *user_fds_ref(struct user_fds *a)
{
        a->n_ref++;
        return a;
}

struct user_fds *user_fds_unref(struct user_fds *a)
{
        if (!a || --a->n_ref > 0)
                return NULL;
        assert(a->n_fds == 0 && a->n_memfd_bytes == 0);
        a->user->n_accounts--;
        user_registry_gc(a->reg, a->user);
        free(a);
        return NULL;
}

void user_fds_charge(struct user_fds *a, unsigned n)
{
        a->n_fds += n;
        a->user->n_fds += n;
        a->reg->n_fds += n;
}

void user_fds_uncharge(struct user_fds *a, unsigned n)
{
        assert(a->n_fds >= n);
        a->n_fds -= n;
        a->user->n_fds -= n;
        a->reg->n_fds -= n;
}

void user_memfd_charge(struct user_fds *a, uint64_t bytes)
{
        a->n_memfd_bytes += bytes;
        a->user->n_memfd_bytes += bytes;
}

void user_memfd_uncharge(struct user_fds *a, uint64_t bytes)
{
        assert(a->n_memfd_bytes >= bytes);
        a->n_memfd_bytes -= bytes;
        a->user->n_memfd_bytes -= bytes;
}
