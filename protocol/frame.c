/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/frame.h"
#include "protocol/ipcbus/wire.h"
#include "protocol/proto-error.h"

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
        free(r->buf);
        *r = (struct frame_reader){0};
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
        size_t frame = frame_reader_frame_size(r);
        size_t have = r->end - r->start;
        size_t need;

        /* Grow with what has arrived, never by what the prefix announces: offer
         * as much again as is already in (up to the rest of the frame), so a
         * big frame takes a logarithmic number of reallocations while a
         * sender that announces much and sends little is given little. */
        if (frame > have && have > want)
                want = have < frame - have ? have : frame - have;
        if (want == 0)
                want = 1;
        if (r->size - r->end < want) {
                /* Move unconsumed bytes to the front, then grow if still short. */
                if (r->start > 0) {
                        memmove(r->buf, r->buf + r->start, have);
                        r->start = 0;
                        r->end = have;
                }
                need = have + want;
                if (r->size < need) {
                        size_t size = r->size ? r->size : 4096;
                        uint8_t *p;

                        while (size < need)
                                size *= 2;
                        p = realloc(r->buf, size);
                        if (!p)
                                return -ENOMEM;
                        r->buf = p;
                        r->size = size;
                }
        }
        *ret_ptr = r->buf + r->end;
        *ret_size = r->size - r->end;
        return 0;
}

void frame_reader_commit(struct frame_reader *r, size_t n)
{
        r->end += n;
}

int frame_reader_next(struct frame_reader *r, struct frame_view *ret)
{
        static const struct frame_view none = {0};
        struct frame_prefix p;
        size_t size;
        int e;

        if (r->error)
                return r->error;
        if (r->start == r->end) {
                r->start = r->end = 0;
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
        r->start += size;
        return 0;
}

size_t frame_reader_pending(const struct frame_reader *r)
{
        return r->end - r->start;
}

void frame_reader_release(struct frame_reader *r)
{
        if (r->start != r->end)
                return;
        free(r->buf);
        r->buf = NULL;
        r->size = r->start = r->end = 0;
}
