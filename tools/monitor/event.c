/* SPDX-License-Identifier: MIT */
/*
 * Events: a message seen by ipc-monitor, as one frame with its body inline,
 * and the cache of senders' command names.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "protocol/frame.h"
#include "tools/format.h"
#include "protocol/ipcbus/wire.h"
#include "protocol/proto-error.h"
#include "tools/monitor/event.h"
#include "util/map.h"
#include "util/util.h"

/* Connections whose command names are kept; the oldest goes first beyond. */
#define MON_COMMS_MAX 1024u

struct mon_comm {
        struct map_node node;
        char *name; /* the unique name */
        char comm[16];
};

struct mon_comms {
        struct map by_name;
        struct mon_comm *ring[MON_COMMS_MAX]; /* in the order they came; next replaces the oldest */
        size_t next;
};

int mon_comms_new(struct mon_comms **ret)
{
        struct mon_comms *c = calloc(1, sizeof(*c));

        if (!c)
                return -ENOMEM;
        map_init(&c->by_name);
        *ret = c;
        return 0;
}

static void mon_comm_free(struct mon_comm *e)
{
        if (!e)
                return;
        free(e->name);
        free(e);
}

struct mon_comms *mon_comms_free(struct mon_comms *c)
{
        if (!c)
                return NULL;
        for (size_t i = 0; i < MON_COMMS_MAX; i++)
                mon_comm_free(c->ring[i]);
        map_deinit(&c->by_name);
        free(c);
        return NULL;
}

static bool mon_comm_eq(const struct map_node *node, const void *key)
{
        return strcmp(container_of(node, struct mon_comm, node)->name, key) == 0;
}

/* /proc/PID/comm into out (16 bytes), "" when it cannot be read (the process is gone, another namespace). */
static void mon_comm_read(int64_t pid, char out[16])
{
        char path[64];
        _cleanup_(closep) int fd = -1;
        ssize_t n;

        out[0] = '\0';
        snprintf(path, sizeof(path), "/proc/%lld/comm", (long long) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        n = read(fd, out, 15);
        if (n <= 0) {
                out[0] = '\0';
                return;
        }
        out[n] = '\0';
        out[strcspn(out, "\n")] = '\0';
}

/*
 * The command name of the connection `name` with process pid into out: the
 * cached one, or read now and cached when it could be read. Out of memory
 * just leaves it uncached.
 */
static void mon_comms_lookup(struct mon_comms *c, const char *name, int64_t pid, char out[16])
{
        uint64_t hash = map_hash_string(name);
        struct map_node *node = map_find(&c->by_name, hash, mon_comm_eq, name);
        struct mon_comm *e;

        if (node) {
                memcpy(out, container_of(node, struct mon_comm, node)->comm, 16);
                return;
        }
        mon_comm_read(pid, out);
        /* not known now (a race with /proc, another pid namespace): try again with its next message */
        if (!out[0])
                return;
        e = calloc(1, sizeof(*e));
        if (!e)
                return;
        e->name = strdup(name);
        if (!e->name || map_add(&c->by_name, &e->node, hash) < 0) {
                mon_comm_free(e);
                return;
        }
        memcpy(e->comm, out, 16);
        if (c->ring[c->next]) {
                map_remove(&c->by_name, &c->ring[c->next]->node);
                mon_comm_free(c->ring[c->next]);
        }
        c->ring[c->next] = e;
        c->next = (c->next + 1) % MON_COMMS_MAX;
}

/* Parse a frame whose header may name a memfd body (then its prefix counts that descriptor, as -1). */
static int mon_parse(const uint8_t *frame, size_t size, struct msg **ret)
{
        static int no_fds[IPCBUS_FDS_MAX] = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1};
        struct frame_view f = {.data = frame, .size = size};
        int r;

        if (size < IPCBUS_FRAME_PREFIX_SIZE)
                return PROTO_E_HEADER_EMPTY;
        r = frame_prefix_decode(frame, 0, 0, &f.prefix);
        if (r != 0)
                return r;
        if (f.prefix.n_fds > IPCBUS_FDS_MAX ||
            (uint64_t) IPCBUS_FRAME_PREFIX_SIZE + f.prefix.header_len + f.prefix.body_len != size)
                return PROTO_E_BAD_RESERVED;
        f.header = (const char *) frame + IPCBUS_FRAME_PREFIX_SIZE;
        f.body = f.prefix.body_len ? f.header + f.prefix.header_len : NULL;
        return msg_parse(&f, NULL, MSG_PARSE_FROM_BROKER, no_fds, ret, NULL, NULL);
}

/* *ret: m rebuilt with body as its inline body, without body_fd/body_size and descriptors. */
static int mon_rebuild(const struct msg *m, const char *body, size_t body_len, struct msg **ret)
{
        struct msg_header h = m->h;

        h.body_fd = 0;
        h.body_size = 0;
        return msg_build(&h, body, body_len, ret);
}

/* The parts of an event both constructors fill alike. */
static void mon_event_init(struct mon_event *ev, struct msg *m, const struct timespec *ts, unsigned n_fds,
                           uint32_t memfd_size)
{
        *ev = (struct mon_event){.ts = *ts, .msg = m, .n_fds = n_fds, .memfd_size = memfd_size};
}

int mon_event_from_message(ipcbus_message *m, const struct timespec *ts, struct mon_comms *comms, struct mon_event *ret)
{
        _cleanup_(msg_unrefp) struct msg *parsed = NULL;
        _cleanup_(freep) uint8_t *frame = NULL;
        struct msg *built = NULL;
        size_t header_len = 0, body_len = 0;
        const char *header = ipcbus_message_get_header(m, &header_len);
        const char *body = ipcbus_message_get_body(m, &body_len);
        uint32_t memfd_size;
        int r;

        if (!header)
                return -ENOMEM;
        if (header_len > UINT32_MAX - IPCBUS_FRAME_PREFIX_SIZE)
                return -EINVAL;
        /* The header alone, its descriptor count to be learnt from the header itself. */
        frame = malloc(IPCBUS_FRAME_PREFIX_SIZE + header_len);
        if (!frame)
                return -ENOMEM;
        memcpy(frame + IPCBUS_FRAME_PREFIX_SIZE, header, header_len);
        frame_prefix_encode(frame, (uint32_t) header_len, 0, 0);
        r = mon_parse(frame, IPCBUS_FRAME_PREFIX_SIZE + header_len, &parsed);
        if (r != 0 && r != -ENOMEM) {
                /* A memfd body: the prefix must count its descriptor, the last
                 * one, which the library has taken out of the message's. */
                frame_prefix_encode(frame, (uint32_t) header_len, 0, (uint16_t) (ipcbus_message_get_n_fds(m) + 1));
                r = mon_parse(frame, IPCBUS_FRAME_PREFIX_SIZE + header_len, &parsed);
        }
        if (r == -ENOMEM)
                return r;
        if (r != 0)
                return -EINVAL;
        memfd_size = parsed->h.body_size;
        r = mon_rebuild(parsed, body_len ? body : NULL, body_len, &built);
        if (r == -ENOMEM)
                return r;
        if (r != 0)
                return -EINVAL;
        mon_event_init(ret, built, ts, ipcbus_message_get_n_fds(m), memfd_size);
        if (comms && built->h.sender && built->h.sender_pid > 0)
                mon_comms_lookup(comms, built->h.sender, built->h.sender_pid, ret->comm);
        return 0;
}

int mon_event_from_frame(const uint8_t *frame, size_t size, const struct timespec *ts, unsigned n_fds,
                         uint32_t memfd_size, const char *comm, struct mon_event *ret)
{
        struct msg *m = NULL;
        int r;

        r = mon_parse(frame, size, &m);
        if (r != 0)
                return r;
        if (m->h.body_size != 0) {
                /* a capture keeps bodies inline: a memfd reference here is a damaged record */
                msg_unref(m);
                return PROTO_E_BAD_RESERVED;
        }
        mon_event_init(ret, m, ts, n_fds, memfd_size);
        if (comm)
                snprintf(ret->comm, sizeof(ret->comm), "%s", comm);
        return 0;
}

uint64_t mon_event_lost(const struct mon_event *ev)
{
        const struct msg_header *h = &ev->msg->h;
        _cleanup_(json_object_putp) struct json_object *body = NULL;
        struct json_object *count;

        if (h->type != MSG_SIGNAL || !streq(h->sender, IPCBUS_DRIVER_NAME) || !streq(h->member, "MessagesLost") ||
            !ev->msg->body)
                return 0;
        if (format_json_parse(ev->msg->body, ev->msg->body_len, &body) < 0 ||
            !json_object_object_get_ex(body, "count", &count) || !json_object_is_type(count, json_type_int))
                return 0;
        return (uint64_t) json_object_get_int64(count);
}

void mon_event_clear(struct mon_event *ev)
{
        msg_unref(ev->msg);
        *ev = (struct mon_event){};
}
