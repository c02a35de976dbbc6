/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libclient/bus-internal.h"
#include "libclient/memfd.h"
#include "protocol/ipcbus/wire.h"
#include "protocol/jbuf.h"
#include "protocol/jscan.h"
#include "protocol/message.h"
#include "util/bufcache.h"
#include "util/memfd.h"

/*
 * A file this large or larger is mapped, a smaller one read with pread into
 * a buffer kept for reuse (util/bufcache). Measured with ipc-bench's Echo
 * calls on the machine of issue 12 (a VM, 2 vCPUs), pread into a kept
 * buffer was faster than a mapping (MAP_POPULATE or not) at every size from
 * 64 KiB to 4 MiB, pinned to one CPU or not: unmapping costs a TLB flush
 * (flush_tlb_mm_range, 300 to 900 us there), where copying bytes that are
 * about to be validated anyway costs a fraction of their scan. A buffer too
 * big to be kept is new memory each time, faulted in page by page: pread
 * into it made 8 MiB bodies of bytes 6 times slower than a mapping
 * (call_rtt_1m_bytes --payload 8388608: 204 against 1244 MB/s, 4064
 * against 257 page faults per call). So files the cache cannot hold are
 * mapped.
 */
#define MEMFD_BODY_MAP_MIN BUFCACHE_MAX

/*
 * A body in a memfd, in memory until its message is freed: a received
 * file mapped or read whole (base: text, NUL, binary area), or the text
 * and binary area of a message sealed here, each where it was built.
 */
struct memfd_body {
        enum { MEMFD_BODY_READ, MEMFD_BODY_MAPPED, MEMFD_BODY_BUILT } kind;
        void *base;  /* received: the file; built: the text (malloc'd) */
        size_t size; /* received: the file's size */
        size_t cap;  /* read: base's size (bufcache) */
        const uint8_t *area; /* the binary area */
        size_t area_len;
        void *area_alloc; /* built: the area's buffer (bufcache), area_cap bytes */
        size_t area_cap;
};

size_t memfd_body_threshold(void)
{
        const char *s = getenv("IPCBUS_MEMFD_THRESHOLD");
        unsigned long long v;
        char *end;

        if (!s || !*s)
                return MEMFD_BODY_THRESHOLD_DEFAULT;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || *end || s[0] == '-')
                return MEMFD_BODY_THRESHOLD_DEFAULT;
        return v > SIZE_MAX ? SIZE_MAX : (size_t) v;
}

/*
 * Whether a message with header h, n_fds descriptors and a body of body_len
 * bytes in its frame leaves with the body in a memfd instead (PROTOCOL.md 14;
 * the driver reads none).
 */
static bool memfd_body_fits(const struct msg_header *h, unsigned n_fds, size_t body_len, size_t threshold)
{
        if (threshold == 0 || body_len == 0 || body_len < threshold || h->body_size)
                return false;
        if (h->type != MSG_CALL && h->type != MSG_RETURN && h->type != MSG_SIGNAL)
                return false;
        if (n_fds >= IPCBUS_FDS_MAX)
                return false;
        return !streq(h->destination, IPCBUS_DRIVER_NAME);
}

static void memfd_body_free(struct msg *m, void *userdata)
{
        struct memfd_body *b = userdata;

        (void) m;
        if (b->kind == MEMFD_BODY_MAPPED)
                munmap(b->base, b->size);
        else if (b->kind == MEMFD_BODY_READ)
                bufcache_free(b->base, b->cap);
        else {
                free(b->base);
                bufcache_free(b->area_alloc, b->area_cap);
        }
        free(b);
}

/*
 * The message of header h (plus body_fd and body_size) whose body is the
 * text[0..text_len] (its NUL included) and the binary area[0..area_len),
 * written to a new sealed memfd that goes after fds[0..n_fds), which the
 * message then owns. With b, the body stays readable in the message from
 * where it is (b, filled in as built, is the message's; the caller hands it
 * what the body lies in); without, the message has none. 0, 1 when the memfd
 * could not be made (the caller sends the body in its frame), a PROTO_E_*
 * code or -ENOMEM.
 */
static int memfd_body_build(const struct msg_header *h, const char *text, size_t text_len, const uint8_t *area,
                            size_t area_len, const int *fds, unsigned n_fds, struct memfd_body *b, struct msg **ret)
{
        struct iovec iov[2] = {{(void *) text, text_len + 1}, {(void *) area, area_len}};
        struct msg_header h2 = *h;
        int all[IPCBUS_FDS_MAX];
        struct msg *m = NULL;
        int fd = -1, r;

        if (memfd_new_sealed("ipcbus-body", iov, area_len ? 2 : 1, &fd) < 0)
                return 1;
        if (n_fds)
                memcpy(all, fds, n_fds * sizeof(int));
        all[n_fds] = fd;
        h2.body_size = (uint32_t) text_len;
        h2.body_fd = (uint16_t) n_fds;
        r = msg_build_fds(&h2, NULL, 0, all, n_fds + 1, 0, &m);
        if (r != 0) {
                close(fd);
                return r;
        }
        if (b) {
                b->kind = MEMFD_BODY_BUILT;
                b->area = area;
                b->area_len = area_len;
                m->body = text;
                m->body_len = text_len;
                m->on_free = memfd_body_free;
                m->on_free_userdata = b;
        }
        *ret = m;
        return 0;
}

int memfd_body_outgoing(const struct msg *m, size_t threshold, struct msg **ret)
{
        int fds[IPCBUS_FDS_MAX] = {0};
        unsigned n = 0;
        int r;

        if (!m->body || !memfd_body_fits(&m->h, m->n_fds, m->body_len, threshold))
                return 0;
        for (; n < m->n_fds; n++) {
                fds[n] = fcntl(m->fds[n], F_DUPFD_CLOEXEC, 3);
                if (fds[n] < 0) {
                        close_fds(fds, n);
                        return 0;
                }
        }
        /* the codec keeps a NUL after the frame, whose last bytes the body is: it goes along */
        r = memfd_body_build(&m->h, m->body, m->body_len, NULL, 0, fds, n, NULL, ret);
        if (r == 0)
                return 1;
        close_fds(fds, n);
        return r < 0 ? r : 0;
}

int memfd_text_build(struct jbuf *text, size_t threshold, const struct msg_header *h, const int *fds, unsigned n_fds,
                     struct msg **ret)
{
        struct memfd_body *b;
        int r;

        /* (a body over the limit goes the frame's way, to be refused there) */
        if (text->failed || text->len > IPCBUS_BODY_MAX || !memfd_body_fits(h, n_fds, text->len, threshold))
                return 1;
        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        r = memfd_body_build(h, text->data, text->len, NULL, 0, fds, n_fds, b, ret);
        if (r != 0) {
                free(b);
                return r;
        }
        b->base = jbuf_steal(text, NULL); /* the text m->body points to, now m's */
        return 0;
}

/* The whole of fd (size bytes) into a new buffer with pread. 0 or a negative errno. */
static int memfd_body_pread(int fd, size_t size, struct memfd_body *b)
{
        size_t got = 0, cap = 0;
        char *p = bufcache_alloc(size, &cap);

        if (!p)
                return -ENOMEM;
        while (got < size) {
                ssize_t k = pread(fd, p + got, size - got, (off_t) got);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        bufcache_free(p, cap);
                        return k < 0 ? -errno : -EIO;
                }
                got += (size_t) k;
        }
        *b = (struct memfd_body){.kind = MEMFD_BODY_READ, .base = p, .size = size, .cap = cap};
        return 0;
}

/* Map or read the checked file of size bytes, as `how` says. 0, MEMFD_BODY_E_INVALID, or a negative errno. */
static int memfd_body_load(int fd, size_t size, enum memfd_read how, struct memfd_body *b)
{
        void *p = MAP_FAILED;
        int r;

        if (how == MEMFD_READ_MAP || (how == MEMFD_READ_AUTO && size >= MEMFD_BODY_MAP_MIN))
                p = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        if (p != MAP_FAILED) {
                *b = (struct memfd_body){.kind = MEMFD_BODY_MAPPED, .base = p, .size = size};
                return 0;
        }
        r = memfd_body_pread(fd, size, b);
        /* a file that cannot be read whole is as bad as one that breaks the rules */
        return r == -ENOMEM ? r : r < 0 ? MEMFD_BODY_E_INVALID : 0;
}

int memfd_body_incoming(struct msg *m, enum memfd_read how)
{
        struct memfd_body *b;
        enum jscan_kind kind;
        uint64_t size = 0;
        const char *text;
        int fd, r;

        if (!m->h.body_size)
                return 0;
        /* the codec checked that body_fd is the last descriptor; it goes now, whatever comes */
        fd = m->fds[m->h.body_fd];
        m->fds[m->h.body_fd] = -1;
        m->n_fds--;
        r = memfd_sealed_size(fd, &size);
        if (r == 0 && (size < (uint64_t) m->h.body_size + 1 || size > IPCBUS_BODY_MAX))
                r = MEMFD_BODY_E_INVALID;
        if (r == MEMFD_E_NOT_SEALED)
                r = MEMFD_BODY_E_INVALID;
        b = r == 0 ? malloc(sizeof(*b)) : NULL;
        if (r == 0 && !b)
                r = -ENOMEM;
        if (r == 0)
                r = memfd_body_load(fd, (size_t) size, how, b);
        close(fd);
        if (r != 0) {
                free(b);
                return r;
        }

        text = b->base;
        if (text[m->h.body_size] != '\0' || jscan_validate(text, m->h.body_size, IPCBUS_DEPTH_MAX, &kind) != 0 ||
            kind != JSCAN_OBJECT) {
                memfd_body_free(m, b);
                return MEMFD_BODY_E_INVALID;
        }
        b->area = (const uint8_t *) b->base + m->h.body_size + 1;
        b->area_len = b->size - m->h.body_size - 1;
        m->body = text;
        m->body_len = m->h.body_size;
        m->on_free = memfd_body_free;
        m->on_free_userdata = b;
        return 0;
}

/* ---- bytes apart from the text (PROTOCOL.md 14.5) ---- */

bool memfd_body_binary(const struct msg *m, const uint8_t **ret, size_t *ret_len)
{
        const struct memfd_body *b;

        if (!m || m->on_free != memfd_body_free || !m->h.body_size)
                return false;
        b = m->on_free_userdata;
        if (ret)
                *ret = b->area;
        if (ret_len)
                *ret_len = b->area_len;
        return true;
}

int memfd_bytes_parse(struct json_object *v, uint64_t *ret_offset, uint64_t *ret_length)
{
        struct json_object *a, *o, *l;

        if (!json_object_is_type(v, json_type_object) || json_object_object_length(v) != 1 ||
            !json_object_object_get_ex(v, "$bytes", &a) || !json_object_is_type(a, json_type_array) ||
            json_object_array_length(a) != 2)
                return -EBADMSG;
        o = json_object_array_get_idx(a, 0);
        l = json_object_array_get_idx(a, 1);
        if (!json_object_is_type(o, json_type_int) || !json_object_is_type(l, json_type_int) ||
            json_object_get_int64(o) < 0 || json_object_get_int64(l) < 0)
                return -EBADMSG;
        *ret_offset = (uint64_t) json_object_get_int64(o);
        *ret_length = (uint64_t) json_object_get_int64(l);
        return 0;
}

int memfd_bytes_ref(const struct msg *m, uint64_t offset, uint64_t length, const void **ret)
{
        const uint8_t *area;
        size_t len;

        if (!memfd_body_binary(m, &area, &len))
                return -ENXIO;
        if (offset > len || length > len - offset)
                return -ERANGE;
        *ret = area + offset;
        return 0;
}

/* One bytes value kept apart: where in the text its value goes, and where its bytes are in the area. */
struct memfd_blob {
        size_t at;
        size_t off;
        size_t len;
};

struct memfd_blobs {
        struct memfd_blob *v;
        size_t n;
        size_t cap;
        uint8_t *area; /* the bytes of all of them, in order: the binary area to be (bufcache) */
        size_t total;
        size_t area_cap;
};

/* Room for n more bytes in the area. 0 or -ENOMEM. */
static int blobs_area_reserve(struct memfd_blobs *bs, size_t n)
{
        size_t cap = 0;
        uint8_t *area;

        if (bs->area_cap - bs->total >= n)
                return 0;
        /* one value, the usual case, takes exactly its size; more double it */
        area = bufcache_alloc(bs->total ? (bs->total + n > 2 * bs->area_cap ? bs->total + n : 2 * bs->area_cap) : n, &cap);
        if (!area)
                return -ENOMEM;
        if (bs->total)
                memcpy(area, bs->area, bs->total);
        bufcache_free(bs->area, bs->area_cap);
        bs->area = area;
        bs->area_cap = cap;
        return 0;
}

int memfd_blobs_add(struct memfd_blobs **blobs, size_t at, const void *p, size_t n)
{
        struct memfd_blobs *bs = *blobs;

        if (!bs) {
                bs = calloc(1, sizeof(*bs));
                if (!bs)
                        return -ENOMEM;
                *blobs = bs;
        }
        if (bs->n == bs->cap) {
                size_t cap = bs->cap ? 2 * bs->cap : 4;
                struct memfd_blob *v = realloc(bs->v, cap * sizeof(*v));

                if (!v)
                        return -ENOMEM;
                bs->v = v;
                bs->cap = cap;
        }
        if (blobs_area_reserve(bs, n) < 0)
                return -ENOMEM;
        if (n)
                memcpy(bs->area + bs->total, p, n);
        bs->v[bs->n++] = (struct memfd_blob){.at = at, .off = bs->total, .len = n};
        bs->total += n;
        return 0;
}

void memfd_blobs_free(struct memfd_blobs *blobs)
{
        if (!blobs)
                return;
        bufcache_free(blobs->area, blobs->area_cap);
        free(blobs->v);
        free(blobs);
}

/* The text with each blob's value written by put(out, blobs, blob). */
static void blobs_text(const struct memfd_blobs *blobs, const char *text, size_t text_len, struct jbuf *out,
                       void (*put)(struct jbuf *out, const struct memfd_blobs *blobs, const struct memfd_blob *blob))
{
        size_t prev = 0;

        for (size_t i = 0; i < blobs->n; i++) {
                jbuf_put(out, text + prev, blobs->v[i].at - prev);
                put(out, blobs, &blobs->v[i]);
                prev = blobs->v[i].at;
        }
        jbuf_put(out, text + prev, text_len - prev);
}

static void put_base64(struct jbuf *out, const struct memfd_blobs *blobs, const struct memfd_blob *blob)
{
        value_base64_put(out, blobs->area + blob->off, blob->len);
}

static void put_ref(struct jbuf *out, const struct memfd_blobs *blobs, const struct memfd_blob *blob)
{
        (void) blobs;
        jbuf_printf(out, "{\"$bytes\":[%zu,%zu]}", blob->off, blob->len);
}

/*
 * The memfd form of a body with blobs: the text with references, its NUL
 * and the blobs' area written to a sealed memfd that goes last after fds;
 * the message's body is that text and area, taken over from t and blobs (as
 * a received one's). Returns 0 with *ret, 1 when the body must go in its
 * frame after all (too deep with the references, too large, no memfd), a
 * PROTO_E_* code or -ENOMEM.
 */
static int blobs_build_memfd(struct memfd_blobs *blobs, const struct msg_header *h, const char *text,
                             size_t text_len, const int *fds, unsigned n_fds, struct msg **ret)
{
        _cleanup_(freep) struct memfd_body *b = NULL;
        struct jbuf t;
        int r;

        jbuf_init(&t);
        blobs_text(blobs, text, text_len, &t, put_ref);
        r = t.failed ? -ENOMEM : 0;
        if (r == 0 && (t.len > IPCBUS_BODY_MAX || t.len + 1 + blobs->total > IPCBUS_BODY_MAX ||
                       jscan_validate(t.data, t.len, IPCBUS_DEPTH_MAX, NULL) != 0))
                r = 1;
        b = r == 0 ? calloc(1, sizeof(*b)) : NULL;
        if (r == 0 && !b)
                r = -ENOMEM;
        if (r == 0)
                r = memfd_body_build(h, t.data, t.len, blobs->area, blobs->total, fds, n_fds, b, ret);
        if (r != 0) {
                jbuf_deinit(&t);
                return r;
        }
        /* what the message's body points to is its own now */
        b->base = jbuf_steal(&t, NULL);
        b->area_alloc = steal_pointer(&blobs->area);
        b->area_cap = blobs->area_cap;
        blobs->area_cap = blobs->total = 0;
        b = NULL;
        return 0;
}

int memfd_blobs_build(struct memfd_blobs *blobs, size_t threshold, const struct msg_header *h, const char *text,
                      size_t text_len, const int *fds, unsigned n_fds, struct msg **ret)
{
        size_t inline_len = text_len;
        struct jbuf t;
        int r;

        for (size_t i = 0; i < blobs->n; i++)
                inline_len += 2 + (blobs->v[i].len + 2) / 3 * 4;
        if (threshold && blobs->total >= MEMFD_BLOBS_BY_MEMFD)
                threshold = 1; /* base64 would cost more than the file, whatever the body's size */
        if (memfd_body_fits(h, n_fds, inline_len, threshold)) {
                r = blobs_build_memfd(blobs, h, text, text_len, fds, n_fds, ret);
                if (r <= 0)
                        return r;
        }
        jbuf_init(&t);
        blobs_text(blobs, text, text_len, &t, put_base64);
        r = t.failed ? -ENOMEM : msg_build_fds(h, t.data, t.len, fds, n_fds, MSG_BUILD_BODY_CHECKED, ret);
        jbuf_deinit(&t);
        return r;
}
