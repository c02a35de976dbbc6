/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/frame.h"
#include "protocol/ipcbus/wire.h"
#include "protocol/proto-error.h"
#include "util/bufcache.h"

static void put_le16(uint8_t *p, uint16_t v)
{
        p[0] = (uint8_t) v;
        p[1] = (uint8_t) (v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t) v;
        p[1] = (uint8_t) (v >> 8);
        p[2] = (uint8_t) (v >> 16);
        p[3] = (uint8_t) (v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

void frame_prefix_encode(uint8_t out[16], uint32_t header_len, uint32_t body_len, uint16_t n_fds)
{
        memcpy(out, IPCBUS_FRAME_MAGIC, 4);
        out[4] = IPCBUS_PROTOCOL_VERSION;
        out[5] = 0;
        put_le16(out + 6, n_fds);
        put_le32(out + 8, header_len);
        put_le32(out + 12, body_len);
}

int frame_prefix_decode(const uint8_t in[16], uint32_t max_header, uint32_t max_body, struct frame_prefix *ret)
{
        struct frame_prefix p;

        if (max_header == 0 || max_header > IPCBUS_HEADER_MAX)
                max_header = IPCBUS_HEADER_MAX;
        if (max_body == 0 || max_body > IPCBUS_BODY_MAX)
                max_body = IPCBUS_BODY_MAX;
        if (memcmp(in, IPCBUS_FRAME_MAGIC, 4) != 0)
                return PROTO_E_BAD_MAGIC;
        if (in[4] != IPCBUS_PROTOCOL_VERSION)
                return PROTO_E_BAD_VERSION;
        if (in[5] != 0)
                return PROTO_E_BAD_RESERVED;
        p.version = in[4];
        p.n_fds = (uint16_t) (in[6] | in[7] << 8);
        p.header_len = get_le32(in + 8);
        p.body_len = get_le32(in + 12);
        if (p.header_len < 2)
                return PROTO_E_HEADER_EMPTY;
        if (p.header_len > max_header)
                return PROTO_E_HEADER_TOO_LARGE;
        if (p.body_len > max_body)
                return PROTO_E_BODY_TOO_LARGE;
        if (p.n_fds > IPCBUS_FDS_MAX)
                return PROTO_E_TOO_MANY_FDS;
        *ret = p;
        return 0;
}

void frame_reader_init(struct frame_reader *r, uint32_t max_header, uint32_t max_body)
{
        *r = (struct frame_reader){.max_header = max_header, .max_body = max_body};
}

void frame_reader_deinit(struct frame_reader *r)
{
        bufcache_free(r->buf, r->size);
        bufcache_free(r->given, r->given_cap);
        *r = (struct frame_reader){0};
}

/* Free the own buffer of the frame returned last, unless someone took it. */
static void frame_reader_drop_given(struct frame_reader *r)
{
        bufcache_free(r->given, r->given_cap);
        r->given = NULL;
}

/* Where an empty reader puts the next bytes: after the headroom a large frame would need. */
static size_t frame_reader_front(const struct frame_reader *r)
{
        return r->own_min ? r->headroom : 0;
}

/*
 * Give the head frame (`frame` bytes, `have` in) a buffer of its own sized
 * for it: headroom, the frame, a spare byte. Returns 0 or -ENOMEM.
 */
static int frame_reader_reserve(struct frame_reader *r, size_t frame, size_t have)
{
        uint8_t *p;
        size_t cap;

        if (r->start >= r->headroom && r->size - r->start >= frame + 1)
                return 0; /* already at the front of a buffer big enough */
        p = bufcache_alloc(r->headroom + frame + 1, &cap);
        if (!p)
                return -ENOMEM;
        memcpy(p + r->headroom, r->buf + r->start, have);
        bufcache_free(r->buf, r->size);
        r->buf = p;
        r->size = cap;
        r->start = r->headroom;
        r->end = r->start + have;
        return 0;
}

/* Size of the frame starting at r->start if its prefix is in and valid; 0 otherwise. */
static size_t frame_reader_frame_size(struct frame_reader *r)
{
        struct frame_prefix p;

        if (r->end - r->start < IPCBUS_FRAME_PREFIX_SIZE || r->error)
                return 0;
        if (frame_prefix_decode(r->buf + r->start, r->max_header, r->max_body, &p) != 0)
                return 0;
        if (r->max_frame && IPCBUS_FRAME_PREFIX_SIZE + (uint64_t) p.header_len + p.body_len > r->max_frame)
                return 0;
        return IPCBUS_FRAME_PREFIX_SIZE + (size_t) p.header_len + p.body_len;
}

int frame_reader_space(struct frame_reader *r, size_t want, uint8_t **ret_ptr, size_t *ret_size)
{
        size_t frame, have, need;

        frame_reader_drop_given(r);
        if (r->start == r->end)
                r->start = r->end = frame_reader_front(r);
        frame = frame_reader_frame_size(r);
        have = r->end - r->start;

        /* A large frame: read no further than its end, so that the buffer is
         * its alone once it is in; reserved by its prefix up to own_reserve_max. */
        r->own_frame = r->own_min && frame >= r->own_min && have < frame ? frame : 0;
        if (r->own_frame && (!r->own_reserve_max || frame <= r->own_reserve_max)) {
                int e = frame_reader_reserve(r, frame, have);

                if (e < 0)
                        return e;
        }

        /* Otherwise grow with what has arrived, never by what the prefix
         * announces: offer as much again as is already in (up to the rest of
         * the frame), so a big frame takes a logarithmic number of
         * reallocations while a sender that announces much and sends little
         * is given little. */
        if (frame > have && have > want)
                want = have < frame - have ? have : frame - have;
        if (r->own_frame && want > frame - have)
                want = frame - have;
        if (want == 0)
                want = 1;
        if (r->size < r->end + want + 1) {
                /* Move unconsumed bytes to the front, then grow if still short
                 * (with a spare byte, for the NUL a message puts after its frame). */
                size_t front = frame_reader_front(r);

                if (r->start > front) {
                        memmove(r->buf + front, r->buf + r->start, have);
                        r->start = front;
                        r->end = front + have;
                }
                need = r->end + want + 1;
                if (r->size < need) {
                        size_t size = r->size ? r->size : 4096;
                        uint8_t *p;

                        while (size < need)
                                size *= 2;
                        p = r->buf ? realloc(r->buf, size) : bufcache_alloc(size, &size);
                        if (!p)
                                return -ENOMEM;
                        r->buf = p;
                        r->size = size;
                }
        }
        *ret_ptr = r->buf + r->end;
        *ret_size = r->size - r->end - 1;
        if (r->own_frame && *ret_size > frame - have)
                *ret_size = frame - have;
        return 0;
}

void frame_reader_commit(struct frame_reader *r, size_t n)
{
        r->end += n;
}

/*
 * The large frame *f just returned is the last thing in the buffer, with the
 * headroom before it and a spare byte after: the buffer goes with it
 * (trimmed to the frame when it is much bigger), and the reader starts again
 * empty.
 */
static void frame_reader_give(struct frame_reader *r, struct frame_view *f)
{
        uint8_t *buf = r->buf;

        buf[r->end] = '\0';
        r->given = buf;
        r->given_cap = r->size;
        f->owned = &r->given;
        f->owned_cap = r->size;
        r->buf = NULL;
        r->size = r->start = r->end = r->own_frame = 0;
}

int frame_reader_next(struct frame_reader *r, struct frame_view *ret)
{
        static const struct frame_view none = {0};
        struct frame_prefix p;
        size_t size;
        int e;

        frame_reader_drop_given(r);
        if (r->error)
                return r->error;
        if (r->start == r->end) {
                r->start = r->end = frame_reader_front(r);
                *ret = none;
                return 0;
        }
        if (r->end - r->start < IPCBUS_FRAME_PREFIX_SIZE) {
                /* A wrong magic is visible before the whole prefix is in. */
                size_t n = r->end - r->start;
                if (n > 4)
                        n = 4;
                if (memcmp(r->buf + r->start, IPCBUS_FRAME_MAGIC, n) != 0)
                        return r->error = PROTO_E_BAD_MAGIC;
                *ret = none;
                return 0;
        }
        e = frame_prefix_decode(r->buf + r->start, r->max_header, r->max_body, &p);
        if (e)
                return r->error = e;
        size = IPCBUS_FRAME_PREFIX_SIZE + (size_t) p.header_len + p.body_len;
        if (r->max_frame && size > r->max_frame)
                return r->error = PROTO_E_FRAME_TOO_LARGE;
        if (r->end - r->start < size) {
                *ret = none;
                return 0;
        }
        ret->data = r->buf + r->start;
        ret->size = size;
        ret->prefix = p;
        ret->header = (const char *) ret->data + IPCBUS_FRAME_PREFIX_SIZE;
        ret->body = p.body_len ? ret->header + p.header_len : NULL;
        ret->owned = NULL;
        ret->owned_cap = 0;
        r->start += size;
        if (r->own_min && size >= r->own_min && r->start == r->end && r->start - size >= r->headroom &&
            r->size > r->end)
                frame_reader_give(r, ret);
        return 0;
}

size_t frame_reader_pending(const struct frame_reader *r)
{
        return r->end - r->start;
}

size_t frame_reader_held(const struct frame_reader *r)
{
        return r->own_frame && r->size - r->start > r->own_frame ? r->own_frame : r->end - r->start;
}

void frame_reader_release(struct frame_reader *r)
{
        frame_reader_drop_given(r);
        if (r->start != r->end)
                return;
        bufcache_free(r->buf, r->size);
        r->buf = NULL;
        r->size = r->start = r->end = r->own_frame = 0;
}
