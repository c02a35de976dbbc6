/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "daemon/bus/bus.h"
#include "daemon/bus/peer.h"
#include "daemon/bus/user.h"
#include "daemon/launch/config.h"
#include "daemon/log.h"
#include "protocol/message.h"
#include "util/clock.h"
#include "util/memfd.h"
#include "util/util.h"

int peer_new(struct bus *bus, struct event_base *base, int fd, uint64_t id, const struct connection_limits *limits,
             const struct connection_ops *ops, struct peer **ret)
{
        struct peer *p = calloc(1, sizeof(*p));
        int r;

        if (!p)
                return -ENOMEM;
        p->bus = bus;
        p->id = id;
        p->state = PEER_NEW;
        snprintf(p->unique_name, sizeof(p->unique_name), ":1.%" PRIu64, id);
        name_owner_init(&p->names);
        match_owner_init(&p->matches);
        match_owner_init(&p->monitor);
        reply_owner_init(&p->replies);
        list_init(&p->link);
        list_init(&p->waiters);
        list_init(&p->wait_link);
        list_init(&p->activation_requests);
        p->stats.connected_ms = (int64_t) clock_now_msec(CLOCK_MONOTONIC);

        r = connection_init(&p->conn, base, fd, limits, ops, p);
        if (r < 0) {
                free(p);
                return r;
        }
        r = connection_start(&p->conn);
        if (r < 0) {
                p->conn.fd = -1; /* the caller still owns fd */
                connection_deinit(&p->conn);
                free(p);
                return r;
        }
        *ret = p;
        return 0;
}

void peer_free(struct peer *p)
{
        if (!p)
                return;
        list_unlink(&p->link);
        if (p->fds) {
                user_fds_uncharge(p->fds, connection_held_fds(&p->conn));
                p->fds = user_fds_unref(p->fds);
        }
        if (p->timer)
                event_free(p->timer);
        reply_owner_deinit(&p->replies);
        match_owner_deinit(&p->monitor);
        match_owner_deinit(&p->matches);
        name_owner_deinit(&p->names);
        connection_deinit(&p->conn);
        free(p);
}

int peer_charge_fds(struct peer *p, unsigned n, const struct bus_limits *l, unsigned fds_free)
{
        if (!p->fds || p->fds->n_fds + n > l->max_inflight_fds)
                return CONNECTION_FDS_OVER_CONNECTION;
        if (p->fds->user->n_fds + n > l->max_inflight_fds_uid)
                return CONNECTION_FDS_OVER_TOTAL;
        if (n > fds_free)
                return CONNECTION_FDS_SHORT;
        user_fds_charge(p->fds, n);
        return 0;
}

static void peer_on_msg_free(struct msg *m, void *userdata)
{
        struct user_fds *a = userdata;

        user_fds_uncharge(a, m->n_fds);
        user_memfd_uncharge(a, m->charged_bytes);
        user_fds_unref(a);
}

void peer_hold_fds(struct peer *p, struct msg *m)
{
        if (m->n_fds == 0 || !p->fds)
                return;
        m->on_free = peer_on_msg_free;
        m->on_free_userdata = user_fds_ref(p->fds);
}

int peer_charge_memfd(struct peer *p, struct msg *m, const struct bus_limits *l, uint64_t *reterr_size)
{
        uint64_t size = 0;
        int r;

        *reterr_size = 0;
        /* the descriptors are charged and held by then (peer_hold_fds): so is the release */
        if (!p->fds || m->on_free_userdata != p->fds)
                return -EINVAL;
        r = memfd_sealed_size(m->fds[m->h.body_fd], &size);
        if (r == MEMFD_E_NOT_SEALED)
                return PEER_MEMFD_E_NOT_SEALED;
        if (r < 0)
                return r;
        *reterr_size = size;
        if (size < (uint64_t) m->h.body_size + 1)
                return PEER_MEMFD_E_SHORT;
        if (size > l->max_body)
                return PEER_MEMFD_E_TOO_LARGE;
        if (p->fds->user->n_memfd_bytes + size > l->max_memfd_uid)
                return PEER_MEMFD_E_OVER_UID;
        user_memfd_charge(p->fds, size);
        m->charged_bytes = size;
        return 0;
}

void peer_drop_fds(struct peer *p, int *fds, unsigned n)
{
        if (!fds || n == 0)
                return;
        close_fds(fds, n);
        if (p->fds)
                user_fds_uncharge(p->fds, n);
}

void peer_describe_fds_refusal(struct peer *p, int code, unsigned n, const struct bus_limits *l, char *buf, size_t size)
{
        if (code == CONNECTION_FDS_OVER_CONNECTION)
                snprintf(buf, size,
                         "%u descriptors would put %s over the max_fds_in_flight_per_connection limit (%u, %u in "
                         "flight)",
                         n, p->unique_name, l->max_inflight_fds, p->fds ? p->fds->n_fds : 0);
        else if (code == CONNECTION_FDS_OVER_TOTAL)
                snprintf(buf, size,
                         "%u descriptors would put uid %u over the max_fds_in_flight_per_uid limit (%u, %u in flight)",
                         n, (unsigned) peer_uid(p), l->max_inflight_fds_uid, p->fds->user->n_fds);
        else
                snprintf(buf, size,
                         "The bus is short of file descriptors (its RLIMIT_NOFILE reserve); the message's descriptors "
                         "were not taken, try again later");
}

int peer_check_room(struct peer *p, struct msg *m)
{
        return connection_check_room(&p->conn, msg_weight(m));
}

const char *peer_queue_limit_name(int error)
{
        return error == CONNECTION_E_QUEUE_FULL_UID ? "max_queued_bytes_per_uid" : "max_queued_bytes_per_connection";
}

int peer_send(struct peer *p, struct msg *m)
{
        int r = connection_queue(&p->conn, m);

        if (r == 0 && p->state != PEER_MONITOR)
                p->bus->stats.deliveries++;

        if (r == CONNECTION_E_QUEUE_FULL || r == CONNECTION_E_QUEUE_FULL_UID) {
                const struct connection_limits *l = p->conn.limits;

                log_warning("%s (pid %d, uid %u): outgoing queue over the %s limit (%" PRIu64 " bytes), disconnecting",
                            p->unique_name, (int) peer_pid(p), (unsigned) peer_uid(p), peer_queue_limit_name(r),
                            r == CONNECTION_E_QUEUE_FULL_UID ? l->max_queue_total : l->max_queue);
                p->conn.failed = true;
                p->stats.end = BUS_DISCONNECT_LIMITS;
                connection_close(&p->conn, "outgoing queue over the %s limit", peer_queue_limit_name(r));
        } else if (r == -ENOMEM) {
                log_error("%s: out of memory queueing a message, disconnecting", p->unique_name);
                p->stats.end = BUS_DISCONNECT_NO_MEMORY;
                connection_close(&p->conn, "out of memory");
        }
        return r;
}
