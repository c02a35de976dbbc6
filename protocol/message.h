/* SPDX-License-Identifier: MIT */
/*
 * Messages (PROTOCOL.md, "Header" and "Message types"): a refcounted, whole
 * encoded frame plus its decoded header. One allocation holds the struct, the
 * frame bytes and the decoded header strings. A message is immutable once
 * built, so a broadcast shares one copy among all receivers.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/frame.h"

enum msg_type {
        MSG_TYPE_INVALID = 0,
        MSG_CALL = 1,
        MSG_RETURN = 2,
        MSG_ERROR = 3,
        MSG_SIGNAL = 4,
};

/* "call", "return", "error", "signal"; NULL for anything else. */
const char *msg_type_to_string(enum msg_type t);
/* MSG_TYPE_INVALID for an unknown string. */
enum msg_type msg_type_from_string(const char *s);

struct msg_header {
        enum msg_type type;
        uint32_t serial;       /* 1..2^32-1 */
        uint32_t reply_serial; /* 0 = absent */
        const char *sender;    /* broker-only; NULL = absent */
        int64_t sender_uid;    /* broker-only; -1 = absent */
        int64_t sender_pid;    /* broker-only; -1 = absent */
        const char *destination;
        const char *path;
        const char *interface;
        const char *member;
        const char *error_name;
        bool no_reply;
        bool no_auto_start;
        uint32_t timeout_ms; /* 0 = absent */
        /* A body in a sealed memfd (PROTOCOL.md 14): its JSON text is the first
         * body_size bytes of descriptor body_fd, the frame's last. */
        uint32_t body_size; /* 0 = absent (the body, if any, is in the frame) */
        uint16_t body_fd;   /* meaningful only with body_size */
};

/* A header with every field absent (uids/pids -1). */
void msg_header_init(struct msg_header *h);

struct jscan_node;

struct msg_arg {
        const char *key;
        const char *value;
};

struct msg {
        unsigned n_ref;
        struct msg_header h;
        const uint8_t *data; /* the whole frame as sent on the wire, followed by one
                              * NUL byte (not part of the frame) so the body is a C string */
        size_t size;
        const char *header; /* data + 16, header_len bytes, not NUL-terminated */
        size_t header_len;
        const char *body; /* NULL when body_len == 0 */
        size_t body_len;
        int *fds; /* owned; closed when the message is freed */
        unsigned n_fds;
        /* top-level string members of the body, decoded on first use */
        struct msg_arg *args;
        size_t n_args;
        bool args_done;
        void *data_alloc; /* the separate allocation data lies in (msg_build, a frame taken over), freed
                           * with the message (bufcache_free); NULL: data is part of the message's own allocation */
        size_t data_cap;  /* data_alloc's size */
        /* the body indexed by msg_body_index, and its strings as they are decoded */
        struct jscan_node *nodes;
        size_t n_nodes;
        char *decoded; /* body_len + 1 bytes: each string decoded at its own offset */
        /* Called when the last reference goes, before the descriptors are
         * closed: the broker's accounting of descriptors in flight. */
        void (*on_free)(struct msg *m, void *userdata);
        void *on_free_userdata;
        /* The broker's: bytes of a memfd body (PROTOCOL.md 14) charged to the
         * sender, released by on_free. */
        uint64_t charged_bytes;
};

/*
 * What a message weighs in a queue: its frame, and the bytes of a memfd body
 * the broker charged (a queued memfd holds its memory as its frame would), so
 * that backpressure holds back a sender of large memfd bodies as it holds
 * back one of large frames.
 */
static inline uint64_t msg_weight(const struct msg *m)
{
        return m->size + m->charged_bytes;
}

/* Accept broker-only header fields (the client side: they come from the broker). */
#define MSG_PARSE_FROM_BROKER 0x1u

/* What the broker stitches into a message it forwards (sender: a bus name; msg_parse fails with -EINVAL otherwise). */
struct msg_stamp {
        const char *sender;
        uint32_t uid;
        uint32_t pid;
};

/*
 * Validate the frame `f` (header JSON, header fields by message type, names,
 * body JSON, an error's body: PROTO_E_BAD_ERROR_BODY) and copy it into a new
 * message with n_ref 1. Without MSG_PARSE_FROM_BROKER a broker-only field is
 * PROTO_E_BROKER_FIELD. With a stamp, the copy is the frame with the sender
 * fields stitched in at the front of the header object; the body bytes are
 * copied once, unchanged. A frame that comes with its own buffer (f->owned)
 * is not copied: on success the message takes that buffer (*f->owned
 * becomes NULL) and, with a stamp, stitches the sender into the headroom
 * before the header when it fits there.
 * `fds` (n_fds of them, matching the prefix) pass to the message on success.
 *
 * Returns 0 with *ret set, -ENOMEM, or a PROTO_E_* code; *ret is written only
 * on 0. The reterr_ outputs (each may be NULL) are written whatever the
 * result, so that an error reply can be addressed even when the rest of the
 * header is bad: *reterr_serial is the frame's serial whenever it could be
 * read (0 otherwise), *reterr_no_reply is true when the frame is a call with
 * no_reply (no error reply wanted).
 */
int msg_parse(const struct frame_view *f, const struct msg_stamp *stamp, unsigned flags, int *fds, struct msg **ret,
              uint32_t *reterr_serial, bool *reterr_no_reply);

/* The size of the sentence msg_parse_why leaves, its NUL included. */
#define MSG_WHY_MAX 384

/*
 * msg_parse, and on a PROTO_E_* code a sentence in reterr_why (MSG_WHY_MAX
 * bytes; NULL: none wanted) saying what is wrong and where: the field and
 * what it got and expected, or the part (header or body) and byte offset.
 * It is composed only on failure.
 */
int msg_parse_why(const struct frame_view *f, const struct msg_stamp *stamp, unsigned flags, int *fds, struct msg **ret,
                  uint32_t *reterr_serial, bool *reterr_no_reply, char *reterr_why);

/*
 * Build a message from a header and an optional body (body NULL or body_len
 * 0 means none). The header is encoded canonically: fields in the order of
 * PROTOCOL.md, no whitespace. Fields are checked as msg_parse checks them
 * (broker-only fields are allowed: the driver builds with them) and the body
 * must be a JSON object. Returns 0, -ENOMEM or a PROTO_E_* code.
 */
int msg_build(const struct msg_header *h, const char *body, size_t body_len, struct msg **ret);
/*
 * msg_build_fds flag: the body is known to be valid (a JSON object within
 * IPCBUS_DEPTH_MAX, UTF-8 as jscan judges it), written by the library's own
 * builder or checked already, so it is not scanned again. Never for text a
 * user handed over unchecked.
 */
#define MSG_BUILD_BODY_CHECKED 0x100u
/*
 * The same with descriptors: the frame's prefix announces n_fds (at most
 * IPCBUS_FDS_MAX, else PROTO_E_TOO_MANY_FDS) and, on success only, the
 * message owns fds[0..n_fds) and closes them when it is freed. flags: 0 or
 * MSG_BUILD_BODY_CHECKED.
 */
int msg_build_fds(const struct msg_header *h, const char *body, size_t body_len, const int *fds, unsigned n_fds,
                  unsigned flags, struct msg **ret);

/* Encode just the canonical header text of h (for tests and tools). */
int msg_header_encode(const struct msg_header *h, char **ret, size_t *ret_len);

struct msg *msg_ref(struct msg *m);
struct msg *msg_unref(struct msg *m); /* returns NULL; accepts NULL */
/* For _cleanup_(msg_unrefp) locals. */
static inline void msg_unrefp(struct msg **m)
{
        msg_unref(*m);
}

/*
 * The top-level members of the body in order, keys decoded, values decoded
 * when they are strings and NULL otherwise. Done once per message, in one
 * walk (over the index when there is one), and cached. Returns 0 or
 * -ENOMEM; a body that is absent or empty yields n 0.
 */
int msg_get_args(struct msg *m, const struct msg_arg **ret, size_t *ret_n);
/*
 * The decoded value of top-level member `key` (the last, when it appears
 * more than once), or NULL when absent, not a string, or out of memory. With
 * an index (msg_body_index), only that value is decoded.
 */
const char *msg_get_arg(struct msg *m, const char *key);

/*
 * Index the whole body on first use (jscan_index, every depth; m->nodes),
 * for a reader that walks it: msg_get_arg and msg_get_args then use the
 * index, so a body is scanned once whatever reads it. Returns 0 or -ENOMEM;
 * a message without a body gets no nodes.
 */
int msg_body_index(struct msg *m);
/*
 * The decoded text of the string node i of m's index (a key or a string
 * value), NUL-terminated, decoded on first use and kept as long as m (the
 * message's bytes are not touched). NULL when out of memory.
 */
const char *msg_body_string(struct msg *m, size_t i);
