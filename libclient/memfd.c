/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
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

/* Whether m may leave with its body in a memfd (PROTOCOL.md 14; the driver reads none). */
static bool memfd_body_fits(const struct msg *m, size_t threshold)
{
        if (threshold == 0 || !m->body || m->body_len < threshold || m->h.body_size)
                return false;
        if (m->h.type != MSG_CALL && m->h.type != MSG_RETURN && m->h.type != MSG_SIGNAL)
                return false;
        if (m->n_fds >= IPCBUS_FDS_MAX)
                return false;
        return !streq(m->h.destination, IPCBUS_DRIVER_NAME);
}

int memfd_body_outgoing(const struct msg *m, size_t threshold, struct msg **ret)
{
        int fds[IPCBUS_FDS_MAX];
        struct msg_header h;
        unsigned n = 0;
        int r;

        if (!memfd_body_fits(m, threshold))
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
        r = msg_build_fds(&h, NULL, 0, fds, n, ret);
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
