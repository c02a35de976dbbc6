/* SPDX-License-Identifier: MIT */
/*
 * Framing (PROTOCOL.md, "Framing"): the 16-byte prefix and an incremental
 * reader that cuts whole frames out of a byte stream arriving in pieces of
 * any size (one byte at a time works).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct frame_prefix {
        uint8_t version;
        uint16_t n_fds;
        uint32_t header_len;
        uint32_t body_len;
};

/* Write the 16-byte prefix for the given lengths into out. */
void frame_prefix_encode(uint8_t out[16], uint32_t header_len, uint32_t body_len, uint16_t n_fds);

/*
 * Decode and check a prefix against the protocol's hard limits and the given
 * caller limits (0 means the protocol maximum). Returns 0 or PROTO_E_BAD_MAGIC,
 * PROTO_E_BAD_VERSION, PROTO_E_BAD_RESERVED, PROTO_E_HEADER_EMPTY,
 * PROTO_E_HEADER_TOO_LARGE, PROTO_E_BODY_TOO_LARGE, PROTO_E_TOO_MANY_FDS.
 */
int frame_prefix_decode(const uint8_t in[16], uint32_t max_header, uint32_t max_body, struct frame_prefix *ret);

/*
 * Incremental reader. The owner reads into the space frame_reader_space()
 * hands out, reports the count with frame_reader_commit(), then takes frames
 * with frame_reader_next() until it returns no frame (or a framing code). A
 * frame is returned as a view into the reader's buffer, valid until the next
 * call on the reader.
 */
struct frame_reader {
        uint8_t *buf;
        size_t size;  /* allocated */
        size_t start; /* first unconsumed byte */
        size_t end;   /* one past the last byte read */
        uint32_t max_header;
        uint32_t max_body;
        uint32_t max_frame; /* prefix + header + body; 0: only the two above bound it */
        /* Large frames (the owner's choice; 0: none): a frame of at least own_min
         * bytes is read into a buffer of its own, with `headroom` free bytes
         * before it and one after, and handed over with the frame
         * (frame_view.owned) instead of being copied. Its buffer is sized by its
         * prefix when it announces at most own_reserve_max bytes (0: any), and
         * grows with what arrives otherwise. */
        size_t own_min;
        size_t own_reserve_max;
        size_t headroom;
        size_t own_frame; /* private: the size of the large head frame being read, else 0 */
        uint8_t *given; /* private: the own buffer of the frame last returned, freed by the next call unless taken */
        size_t given_cap;
        int error;      /* private: the PROTO_E_* frame_reader_next() keeps returning once the stream broke */
};

struct frame_view {
        const uint8_t *data; /* the whole frame: prefix, header, body */
        size_t size;
        struct frame_prefix prefix;
        const char *header; /* data + 16 */
        const char *body;   /* header + header_len; NULL when body_len == 0 */
        /* Not NULL when the frame came in a buffer of its own (own_min): *owned is
         * that malloc'd buffer, data - *owned bytes of headroom, one spare byte
         * after the frame. Whoever takes it (msg_parse) sets *owned to NULL; if
         * no one does, the reader frees it at its next call. owned_cap is its
         * size, for bufcache_free() (util/bufcache.h), which frees it. */
        uint8_t **owned;
        size_t owned_cap;
};

void frame_reader_init(struct frame_reader *r, uint32_t max_header, uint32_t max_body);
void frame_reader_deinit(struct frame_reader *r);

/*
 * Return free space of at least `want` bytes at *ret_ptr with its size;
 * -ENOMEM on allocation failure. The buffer grows with the bytes that have
 * arrived (up to as many again, within the frame being read), never by the
 * size a prefix announces; except for a large frame up to own_reserve_max
 * (so the owner counts frame_reader_held(), not frame_reader_pending(),
 * against the sender). A large frame is offered no space past its end.
 */
int frame_reader_space(struct frame_reader *r, size_t want, uint8_t **ret_ptr, size_t *ret_size);
void frame_reader_commit(struct frame_reader *r, size_t n);

/*
 * Take the next whole frame: returns 0 with *ret the frame, or 0 with
 * ret->data NULL (and the rest of *ret zero) when no whole frame is in yet.
 * When the stream is broken, returns a positive PROTO_E_* framing code, the
 * same one on every later call, and leaves *ret alone. Never allocates, so
 * never a negative errno. A frame read into a buffer of its own comes with
 * that buffer (ret->owned) for the caller to take.
 */
int frame_reader_next(struct frame_reader *r, struct frame_view *ret);

/* Bytes received and not yet returned as frames (0 at a clean frame boundary). */
size_t frame_reader_pending(const struct frame_reader *r);

/* Bytes held for frames not yet returned: those received, or the whole
 * buffer of a large frame being read into its own. */
size_t frame_reader_held(const struct frame_reader *r);

/* Free the buffer when no byte is pending, so an idle reader holds no memory. */
void frame_reader_release(struct frame_reader *r);
