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
#include "protocol/jscan.h"
#include "protocol/message.h"
#include "util/bufcache.h"
#include "util/memfd.h"

/*
 * A file this large or larger is mapped, a smaller one read with pread into
 * a buffer kept for reuse (util/bufcache). Measured with ipc-bench's Echo
 * calls on the machine of issue 12 (a VM, 2 vCPUs), pread was faster than a
 * mapping (MAP_POPULATE or not) at every size from 64 KiB to 4 MiB, pinned
 * to one CPU or not, and level at 16 MiB: unmapping costs a TLB flush
 * (flush_tlb_mm_range, 300 to 900 us there), where copying bytes that are
 * about to be validated anyway costs a fraction of their scan. Above it a
 * mapping saves the copy and a second copy of the memory.
 */
#define MEMFD_BODY_MAP_MIN (16u * 1024u * 1024u)

/* A received body's file, mapped or read into memory, until its message is freed. */
struct memfd_body {
        void *base;
        size_t size; /* the whole file: text, NUL, binary area */
        size_t cap;  /* read: the buffer's size (bufcache) */
        bool mapped;
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

int memfd_body_outgoing(const struct msg *m, size_t threshold, struct msg **ret)
{
        int fds[IPCBUS_FDS_MAX];
        struct msg_header h;
        unsigned n = 0;
        int r;

        if (!m->body || !memfd_body_fits(&m->h, m->n_fds, m->body_len, threshold))
                return 0;
        for (; n < m->n_fds; n++) {
                fds[n] = fcntl(m->fds[n], F_DUPFD_CLOEXEC, 3);
                if (fds[n] < 0)
                        goto inline_body;
        }
        /* the codec keeps a NUL after the frame, whose last bytes the body is: it goes along */
        r = memfd_new_sealed("ipcbus-body", &(struct iovec){(void *) m->body, m->body_len + 1}, 1, &fds[n]);
        if (r < 0)
                goto inline_body;
        n++;
        h = m->h;
        h.body_fd = (uint16_t) (n - 1);
        h.body_size = (uint32_t) m->body_len;
        r = msg_build_fds(&h, NULL, 0, fds, n, 0, ret);
        if (r == 0)
                return 1;
        close_fds(fds, n);
        return r < 0 ? r : 0;

inline_body:
        close_fds(fds, n);
        return 0;
}

static void memfd_body_free(struct msg *m, void *userdata)
{
        struct memfd_body *b = userdata;

        (void) m;
        if (b->mapped)
                munmap(b->base, b->size);
        else
                bufcache_free(b->base, b->cap);
        free(b);
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
        *b = (struct memfd_body){.base = p, .size = size, .cap = cap, .mapped = false};
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
                *b = (struct memfd_body){.base = p, .size = size, .mapped = true};
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
                *ret = (const uint8_t *) b->base + m->h.body_size + 1;
        if (ret_len)
                *ret_len = b->size - m->h.body_size - 1;
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

/* One bytes value kept apart: its bytes, and where in the text its value goes. */
struct memfd_blob {
        size_t at;
        size_t len;
        uint8_t *data;
};

struct memfd_blobs {
        struct memfd_blob *v;
        size_t n;
        size_t cap;
        size_t total; /* the bytes of all of them */
};

int memfd_blobs_add(struct memfd_blobs **blobs, size_t at, const void *p, size_t n)
{
        struct memfd_blobs *bs = *blobs;
        uint8_t *copy;

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
        copy = malloc(n ? n : 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, p, n);
        bs->v[bs->n++] = (struct memfd_blob){.at = at, .len = n, .data = copy};
        bs->total += n;
        return 0;
}

void memfd_blobs_free(struct memfd_blobs *blobs)
{
        if (!blobs)
                return;
        for (size_t i = 0; i < blobs->n; i++)
                free(blobs->v[i].data);
        free(blobs->v);
        free(blobs);
}

/* The text with each blob's value written by put(b, blob, offset in the binary area). */
static void blobs_text(const struct memfd_blobs *blobs, const char *text, size_t text_len, struct jbuf *out,
                       void (*put)(struct jbuf *out, const struct memfd_blob *blob, size_t offset))
{
        size_t prev = 0, offset = 0;

        for (size_t i = 0; i < blobs->n; i++) {
                jbuf_put(out, text + prev, blobs->v[i].at - prev);
                put(out, &blobs->v[i], offset);
                offset += blobs->v[i].len;
                prev = blobs->v[i].at;
        }
        jbuf_put(out, text + prev, text_len - prev);
}

static void put_base64(struct jbuf *out, const struct memfd_blob *blob, size_t offset)
{
        (void) offset;
        value_base64_put(out, blob->data, blob->len);
}

static void put_ref(struct jbuf *out, const struct memfd_blob *blob, size_t offset)
{
        jbuf_printf(out, "{\"$bytes\":[%zu,%zu]}", offset, blob->len);
}

/*
 * The memfd form of a body with blobs: the text with references, its NUL
 * and the blobs in one buffer, written to a sealed memfd that goes last
 * after fds; the message's body is that buffer (as a received one's).
 * Returns 0 with *ret, 1 when the body must go in its frame after all (too
 * deep with the references, too large, no memfd), a PROTO_E_* code or
 * -ENOMEM.
 */
static int blobs_build_memfd(const struct memfd_blobs *blobs, const struct msg_header *h, const char *text,
                             size_t text_len, const int *fds, unsigned n_fds, struct msg **ret)
{
        _cleanup_(freep) struct memfd_body *b = NULL;
        int all[IPCBUS_FDS_MAX];
        struct msg_header h2 = *h;
        struct jbuf t;
        size_t size, cap = 0;
        uint8_t *buf;
        struct msg *m = NULL;
        int fd = -1, r;

        jbuf_init(&t);
        blobs_text(blobs, text, text_len, &t, put_ref);
        if (t.failed) {
                jbuf_deinit(&t);
                return -ENOMEM;
        }
        size = t.len + 1 + blobs->total;
        if (t.len > IPCBUS_BODY_MAX || size > IPCBUS_BODY_MAX ||
            jscan_validate(t.data, t.len, IPCBUS_DEPTH_MAX, NULL) != 0) {
                jbuf_deinit(&t);
                return 1;
        }
        b = malloc(sizeof(*b));
        buf = b ? bufcache_alloc(size, &cap) : NULL;
        if (!buf) {
                jbuf_deinit(&t);
                return -ENOMEM;
        }
        memcpy(buf, t.data, t.len);
        buf[t.len] = '\0';
        for (size_t i = 0, at = t.len + 1; i < blobs->n; at += blobs->v[i].len, i++)
                memcpy(buf + at, blobs->v[i].data, blobs->v[i].len);
        h2.body_size = (uint32_t) t.len;
        h2.body_fd = (uint16_t) n_fds;
        jbuf_deinit(&t);

        r = memfd_new_sealed("ipcbus-body", &(struct iovec){buf, size}, 1, &fd);
        if (r < 0) {
                bufcache_free(buf, cap);
                return 1;
        }
        if (n_fds)
                memcpy(all, fds, n_fds * sizeof(int));
        all[n_fds] = fd;
        r = msg_build_fds(&h2, NULL, 0, all, n_fds + 1, 0, &m);
        if (r != 0) {
                close(fd);
                bufcache_free(buf, cap);
                return r;
        }
        *b = (struct memfd_body){.base = buf, .size = size, .cap = cap, .mapped = false};
        m->body = (const char *) buf;
        m->body_len = h2.body_size;
        m->on_free = memfd_body_free;
        m->on_free_userdata = steal_pointer(&b);
        *ret = m;
        return 0;
}

int memfd_blobs_build(const struct memfd_blobs *blobs, size_t threshold, const struct msg_header *h, const char *text,
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
