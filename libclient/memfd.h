/* SPDX-License-Identifier: MIT */
/*
 * Bodies in sealed memfds (PROTOCOL.md 14), the library's side. A message
 * about to be sent whose body is large enough leaves with the body in a
 * sealed memfd; a received message whose body came in one has it mapped
 * read-only (or read, when mapping fails) and set as m->body, so that every
 * body API reads it as a body that came in the frame.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jbuf;
struct json_object;
struct msg;
struct msg_header;

/*
 * IPCBUS_MEMFD_THRESHOLD when unset: bodies of this many bytes or more go in
 * a memfd. Measured with `ipc-bench --payload N --scenario call_rtt_1m`
 * (sequential Echo calls of an N-character string, MB/s both ways, median of
 * 3 runs each), IPCBUS_MEMFD_THRESHOLD=0 (frames) against 1 (memfds), issue
 * 12's 2-vCPU VM, after the work on copies and scans:
 *
 *   N          64K   128K  256K  512K   1M    4M
 *   pinned     1220  1256  1292  1565  1734  1467   frames
 *              748   1060  1376  1720  1901  1785   memfds
 *   unpinned   952   1283  1426  1728  1564  1850   frames
 *              677   909   1041  1270  1486  1584   memfds
 *
 * On one CPU memfds win from 256 KiB; across two, frames win at every size
 * (a memfd costs its sender a tmpfs page allocated, zeroed and written per
 * 4 KiB, its receiver a copy out). A memfd spares the broker: its CPU per
 * 1 MiB call falls from 450-650 us to 50-150 us, and it buffers nothing. 1 MiB
 * is where the caller loses at most 5% unpinned and gains 10% pinned, and
 * from there on the broker's time, shared by everyone, is not spent on
 * copying and validating one client's bodies.
 */
#define MEMFD_BODY_THRESHOLD_DEFAULT (1024u * 1024u)

/*
 * How memfd_body_incoming gets the bytes: AUTO reads a file below
 * MEMFD_BODY_MAP_MIN with pread into a kept buffer and maps a larger one
 * (why: memfd.c); the others force one way, for tests.
 */
enum memfd_read {
        MEMFD_READ_AUTO,
        MEMFD_READ_MAP,
        MEMFD_READ_PREAD,
};

/* Why memfd_body_incoming refuses a message. */
enum {
        MEMFD_BODY_E_INVALID = 1, /* the file breaks PROTOCOL.md 14, or its text section 2: drop the message */
};

/*
 * The threshold of a connection opening now: $IPCBUS_MEMFD_THRESHOLD (bytes,
 * decimal; 0: never), else MEMFD_BODY_THRESHOLD_DEFAULT (also when the value
 * is not a number).
 */
size_t memfd_body_threshold(void);

/*
 * The message to send for m: when m's body is at least `threshold` bytes
 * (threshold 0: never) and it may travel in a memfd (a call, return or
 * signal not addressed to the driver, with fewer than IPCBUS_FDS_MAX
 * descriptors), a new message with m's header plus body_fd and body_size,
 * no body in its frame, and duplicates of m's descriptors followed by a new
 * sealed memfd holding the body. Returns 1 with *ret, 0 when m goes as it is
 * (also when the memfd could not be made: the body then goes in its frame,
 * the sender sees no difference), or -ENOMEM.
 */
int memfd_body_outgoing(const struct msg *m, size_t threshold, struct msg **ret);

/*
 * The same at sealing, from the text being built: when text (a body,
 * NUL-terminated) may go in a memfd under memfd_body_outgoing's rules, the
 * message of header h with it there, fds[0..n_fds) before it (then the
 * message's). The text is written to the file from where it was built and
 * taken over as the message's body, readable as a received one's: no copy
 * into a frame first. Returns 0 with *ret, 1 when the body goes in its
 * frame (text untouched), a PROTO_E_* code or -ENOMEM.
 */
int memfd_text_build(struct jbuf *text, size_t threshold, const struct msg_header *h, const int *fds, unsigned n_fds,
                     struct msg **ret);

/*
 * Read the body of a received m from its memfd, when it came in one (else
 * nothing to do): check the seals and the size, read the whole file as
 * `how` says (a mapping is read-only and private; when mapping fails, pread
 * it is), check the NUL after the text and validate the text as a body,
 * then point m->body and m->body_len at it until m is freed (m->on_free).
 * The descriptor is closed and no longer counted in m->n_fds. Returns 0,
 * MEMFD_BODY_E_INVALID (m unchanged but for its descriptor), or a negative
 * errno.
 */
int memfd_body_incoming(struct msg *m, enum memfd_read how);

/* ---- bytes apart from the text (PROTOCOL.md 14.5) ---- */

/*
 * The builder keeps a bytes value of this many bytes or more apart (a
 * blob): in a body that goes in a memfd its bytes go raw into the binary
 * area, else they are written in base64 when the message is sealed.
 */
#define MEMFD_BLOB_MIN 4096u
/*
 * Blobs of this many bytes in all take their body into a memfd even below
 * the threshold (not when it is 0): base64 costs more than the file. Echo
 * calls of N bytes ('y', 2,000 each, medians of 3), base64 in the frame /
 * raw in a memfd, MB/s: 4 KiB 60 / 55, 8 KiB 86 / 113, 16 KiB 75 / 232,
 * 32 KiB 73 / 391, 64 KiB 114 / 649; ipc-bench's call_rtt_1m_bytes 31 /
 * 1371.
 */
#define MEMFD_BLOBS_BY_MEMFD 8192u

/* The binary area of m when its body travels in a memfd (received or sealed): true with where and how long. */
bool memfd_body_binary(const struct msg *m, const uint8_t **ret, size_t *ret_len);
/* Whether v is a bytes reference {"$bytes":[OFFSET,LENGTH]}: 0 with both, or -EBADMSG. */
int memfd_bytes_parse(struct json_object *v, uint64_t *ret_offset, uint64_t *ret_length);
/*
 * The bytes a reference names in m's binary area: 0 with a pointer into it
 * (valid while m lives), -ENXIO when m's body has no binary area (it came
 * in its frame), -ERANGE when they lie beyond it.
 */
int memfd_bytes_ref(const struct msg *m, uint64_t offset, uint64_t length, const void **ret);

/* The blobs of a body being built; NULL: none. */
struct memfd_blobs;

/* Keep a copy of p[0..n) whose value goes at byte `at` of the text being built. 0 or -ENOMEM. */
int memfd_blobs_add(struct memfd_blobs **blobs, size_t at, const void *p, size_t n);
/* Accepts NULL. */
void memfd_blobs_free(struct memfd_blobs *blobs);
/*
 * Build the message of header h whose body is `text` with each blob's value
 * at its place: when the body in its frame (blobs in base64) would be at
 * least `threshold` bytes, or the blobs hold MEMFD_BLOBS_BY_MEMFD bytes
 * (threshold 0: never), and it may go in a memfd (memfd_body_outgoing's
 * rules), the text with {"$bytes":[OFFSET,LENGTH]} references and the blobs
 * raw in its binary area, in a sealed memfd after fds, the message's body
 * then readable locally as a received one's (the blobs' bytes taken over,
 * not copied again); else the text with the blobs
 * in base64, in its frame. On success the message owns fds[0..n_fds), as
 * msg_build_fds, and, when it went by memfd, the blobs' bytes: blobs are then
 * only to be freed. Returns 0, a PROTO_E_* code or -ENOMEM.
 */
int memfd_blobs_build(struct memfd_blobs *blobs, size_t threshold, const struct msg_header *h, const char *text,
                      size_t text_len, const int *fds, unsigned n_fds, struct msg **ret);
