/* SPDX-License-Identifier: MIT */
/*
 * Capture files in pcapng (draft-ietf-opsawg-pcapng): the writer puts out a
 * Section Header Block, one Interface Description Block of link type
 * LINKTYPE_USER0 with nanosecond timestamps, an Enhanced Packet Block per
 * message and an Interface Statistics Block at close. The reader takes any
 * pcapng file (either byte order, several sections, blocks it does not know
 * skipped) whose packets are ours, and trusts no length it reads. The layout
 * of a packet is in man/ipc-monitor.1, "CAPTURE FORMAT".
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <ipcbus/wire.h>

#include "protocol/frame.h"
#include "protocol/jbuf.h"
#include "protocol/proto-error.h"
#include "tools/monitor/capture.h"
#include "util/clock.h"
#include "util/util.h"

/* pcapng block types and option codes. */
#define BLOCK_SHB 0x0A0D0D0Au
#define BLOCK_IDB 0x00000001u
#define BLOCK_PB_OBSOLETE 0x00000002u
#define BLOCK_SPB 0x00000003u
#define BLOCK_ISB 0x00000005u
#define BLOCK_EPB 0x00000006u
#define BYTE_ORDER_MAGIC 0x1A2B3C4Du
#define OPT_END 0
#define OPT_SHB_OS 3
#define OPT_SHB_USERAPPL 4
#define OPT_IF_NAME 2
#define OPT_IF_DESCRIPTION 3
#define OPT_IF_TSRESOL 9
#define OPT_IF_TSOFFSET 14
#define OPT_ISB_STARTTIME 2
#define OPT_ISB_ENDTIME 3
#define OPT_ISB_IFRECV 4
#define OPT_ISB_IFDROP 5
#define OPT_ISB_USRDELIV 8

/* LINKTYPE_USER0: the first of the link types reserved for private use. */
#define CAPTURE_LINKTYPE 147

/* The record before each frame (man/ipc-monitor.1, "CAPTURE FORMAT"). */
#define RECORD_MAGIC "IPCM"
#define RECORD_VERSION 1
#define RECORD_SIZE 32
#define COMM_SIZE 16

#define FRAME_MAX ((size_t) IPCBUS_FRAME_PREFIX_SIZE + IPCBUS_HEADER_MAX + IPCBUS_BODY_MAX)
#define PAD4(n) (((n) + 3) & ~(size_t) 3)
/* The largest block the reader takes in: a packet block holding the largest
 * record, with 64 KiB of options; any other block it keeps (section,
 * interface, statistics) is options alone and gets 1 MiB. A longer block of
 * a kind it skips is read through, never held. */
#define EPB_FIXED 20
#define EPB_MAX (12 + EPB_FIXED + PAD4(RECORD_SIZE + FRAME_MAX) + 65536)
#define META_BLOCK_MAX (1024 * 1024)
#define IFACES_MAX 256
#define IF_NAME_MAX 4096

struct capture_iface {
        uint16_t linktype;
        /* a timestamp's unit: 10^-exp seconds, or 2^-exp when pow2 */
        bool pow2;
        uint8_t exp;
        int64_t offset_sec; /* if_tsoffset */
};

struct capture {
        FILE *f;
        bool std; /* stdin or stdout: not closed */
        bool writing;
        char *name; /* the path, or "standard input/output", for sentences */

        /* writer */
        char *if_name;
        bool idb_written;
        uint64_t start_nsec;
        uint64_t packets;
        uint64_t lost;
        int error; /* the first write error, sticky */

        /* reader */
        uint64_t offset; /* bytes consumed so far: where the next block starts */
        uint8_t back[4]; /* bytes read to recognise the file, given again before the file's next */
        size_t n_back;
        bool le; /* the current section is little-endian */
        struct capture_iface ifaces[IFACES_MAX];
        unsigned n_ifaces;
        char *first_if_name;
        uint8_t *buf; /* the current block's body */
        size_t buf_cap;
        char comm[COMM_SIZE + 1];
        bool broken; /* a read failed: the blocks after it are not where we would look */
        bool have_stats;
        uint64_t stat_packets;
        uint64_t stat_lost;
};

static int fail(char *err, size_t err_size, int ret, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t err_size, int ret, const char *fmt, ...)
{
        va_list ap;

        if (err && err_size) {
                va_start(ap, fmt);
                vsnprintf(err, err_size, fmt, ap);
                va_end(ap);
        }
        return ret;
}

static struct capture *capture_new(const char *path, bool writing)
{
        struct capture *c = calloc(1, sizeof(*c));

        if (!c)
                return NULL;
        c->writing = writing;
        c->std = streq(path, "-");
        c->name = strdup(c->std ? (writing ? "standard output" : "standard input") : path);
        if (!c->name) {
                free(c);
                return NULL;
        }
        return c;
}

/* ---- writing ------------------------------------------------------------------------ */

static void put16(struct jbuf *b, uint16_t v)
{
        uint8_t p[2] = {(uint8_t) v, (uint8_t) (v >> 8)};

        jbuf_put(b, p, sizeof(p));
}

static void put32(struct jbuf *b, uint32_t v)
{
        put16(b, (uint16_t) v);
        put16(b, (uint16_t) (v >> 16));
}

static void put64(struct jbuf *b, uint64_t v)
{
        put32(b, (uint32_t) v);
        put32(b, (uint32_t) (v >> 32));
}

/* A timestamp as pcapng stores it: the high 32 bits, then the low. */
static void put_time(struct jbuf *b, uint64_t nsec)
{
        put32(b, (uint32_t) (nsec >> 32));
        put32(b, (uint32_t) nsec);
}

/* One option: code, length, value, padding to 32 bits. */
static void put_option(struct jbuf *b, uint16_t code, const void *value, size_t len)
{
        static const uint8_t zeros[4];

        put16(b, code);
        put16(b, (uint16_t) len);
        jbuf_put(b, value, len);
        jbuf_put(b, zeros, PAD4(len) - len);
}

static void put_option_u64(struct jbuf *b, uint16_t code, uint64_t v)
{
        uint8_t p[8];

        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t) (v >> (8 * i));
        put_option(b, code, p, sizeof(p));
}

static void put_option_time(struct jbuf *b, uint16_t code, uint64_t nsec)
{
        /* the high half first, as in a block's own timestamp */
        put_option_u64(b, code, (nsec >> 32) | (nsec << 32));
}

static void put_option_end(struct jbuf *b)
{
        put16(b, OPT_END);
        put16(b, 0);
}

static int write_bytes(struct capture *c, const void *p, size_t n)
{
        if (c->error)
                return c->error;
        if (n && fwrite(p, 1, n, c->f) != n)
                c->error = errno ? -errno : -EIO;
        return c->error;
}

/*
 * One block: type, total length, head (a multiple of 4 bytes), data padded
 * to 32 bits, the total length again.
 */
static int write_block(struct capture *c, uint32_t type, const struct jbuf *head, const void *data, size_t data_len)
{
        static const uint8_t zeros[4];
        _cleanup_(jbuf_deinit) struct jbuf b = {0};
        size_t total = 12 + head->len + PAD4(data_len);

        if (c->error)
                return c->error;
        if (head->failed)
                return -ENOMEM;
        put32(&b, type);
        put32(&b, (uint32_t) total);
        jbuf_put(&b, head->data, head->len);
        if (b.failed)
                return -ENOMEM;
        write_bytes(c, b.data, b.len);
        write_bytes(c, data, data_len);
        write_bytes(c, zeros, PAD4(data_len) - data_len);
        jbuf_reset(&b);
        put32(&b, (uint32_t) total);
        return write_bytes(c, b.data, b.len);
}

static int write_shb(struct capture *c)
{
        _cleanup_(jbuf_deinit) struct jbuf h = {0};
        static const char appl[] = "ipc-monitor " PACKAGE_VERSION;
        struct utsname u;

        put32(&h, BYTE_ORDER_MAGIC);
        put16(&h, 1);          /* major */
        put16(&h, 0);          /* minor */
        put64(&h, UINT64_MAX); /* section length: not given */
        if (uname(&u) == 0) {
                char os[sizeof(u.sysname) + sizeof(u.release) + 1];

                snprintf(os, sizeof(os), "%s %s", u.sysname, u.release);
                put_option(&h, OPT_SHB_OS, os, strlen(os));
        }
        put_option(&h, OPT_SHB_USERAPPL, appl, strlen(appl));
        put_option_end(&h);
        return write_block(c, BLOCK_SHB, &h, NULL, 0);
}

static int write_idb(struct capture *c)
{
        _cleanup_(jbuf_deinit) struct jbuf h = {0};
        static const char desc[] = "ipcbus messages (ipc-monitor)";
        const uint8_t tsresol = 9; /* nanoseconds */

        put16(&h, CAPTURE_LINKTYPE);
        put16(&h, 0);
        put32(&h, 0); /* snaplen: no limit */
        if (c->if_name)
                put_option(&h, OPT_IF_NAME, c->if_name, strlen(c->if_name));
        put_option(&h, OPT_IF_DESCRIPTION, desc, strlen(desc));
        put_option(&h, OPT_IF_TSRESOL, &tsresol, 1);
        put_option_end(&h);
        c->idb_written = true;
        return write_block(c, BLOCK_IDB, &h, NULL, 0);
}

static int write_isb(struct capture *c)
{
        _cleanup_(jbuf_deinit) struct jbuf h = {0};
        uint64_t now = clock_now_nsec(CLOCK_REALTIME);

        put32(&h, 0); /* interface */
        put_time(&h, now);
        put_option_time(&h, OPT_ISB_STARTTIME, c->start_nsec);
        put_option_time(&h, OPT_ISB_ENDTIME, now);
        put_option_u64(&h, OPT_ISB_IFRECV, c->packets + c->lost);
        put_option_u64(&h, OPT_ISB_IFDROP, c->lost);
        put_option_u64(&h, OPT_ISB_USRDELIV, c->packets);
        put_option_end(&h);
        return write_block(c, BLOCK_ISB, &h, NULL, 0);
}

int capture_open_write(const char *path, struct capture **ret, char *err, size_t err_size)
{
        struct capture *c;
        int r;

        if (!path || !ret)
                return fail(err, err_size, -EINVAL, "no capture file given");
        c = capture_new(path, true);
        if (!c)
                return fail(err, err_size, -ENOMEM, "out of memory");
        if (c->std) {
                if (isatty(STDOUT_FILENO)) {
                        capture_close(c);
                        return fail(err, err_size, -ENOTTY, "not writing a capture file to a terminal");
                }
                c->f = stdout;
        } else {
                c->f = fopen(path, "we");
                if (!c->f) {
                        r = -errno;
                        capture_close(c);
                        return fail(err, err_size, r, "cannot create %s: %s", path, strerror(-r));
                }
        }
        /* whole blocks in few writes; a reader of a file cut short gets every block but the last */
        if (!c->std)
                setvbuf(c->f, NULL, _IOFBF, 64 * 1024);
        c->start_nsec = clock_now_nsec(CLOCK_REALTIME);
        r = write_shb(c);
        if (r < 0) {
                const char *why = strerror(-r);

                fail(err, err_size, r, "cannot write to %s: %s", c->name, why);
                capture_close(c);
                return r;
        }
        *ret = c;
        return 0;
}

int capture_set_interface(struct capture *c, const char *name)
{
        char *copy;

        if (!c || !c->writing || !name)
                return -EINVAL;
        if (c->idb_written)
                return -EBUSY;
        if (strlen(name) > IF_NAME_MAX)
                return -EINVAL;
        copy = strdup(name);
        if (!copy)
                return -ENOMEM;
        free(c->if_name);
        c->if_name = copy;
        return 0;
}

/* The record that goes before the frame, little-endian. */
static void put_record(struct jbuf *b, const struct capture_record *rec)
{
        char comm[COMM_SIZE] = {0};

        /* like the kernel's: at most 15 bytes and a NUL */
        if (rec->comm)
                memcpy(comm, rec->comm, strnlen(rec->comm, COMM_SIZE - 1));
        jbuf_put(b, RECORD_MAGIC, 4);
        jbuf_putc(b, RECORD_VERSION);
        jbuf_putc(b, RECORD_SIZE);
        put16(b, (uint16_t) rec->n_fds);
        put32(b, rec->memfd_size);
        jbuf_put(b, comm, COMM_SIZE);
        put32(b, 0); /* reserved */
}

/* Whether a frame is whole and what the protocol allows, so that what is written can be read back. */
static bool frame_ok(const uint8_t *frame, size_t len)
{
        struct frame_prefix p;

        if (!frame || len < IPCBUS_FRAME_PREFIX_SIZE || len > FRAME_MAX)
                return false;
        if (frame_prefix_decode(frame, 0, 0, &p) != 0 || p.n_fds != 0)
                return false;
        return (uint64_t) IPCBUS_FRAME_PREFIX_SIZE + p.header_len + p.body_len == len;
}

int capture_write(struct capture *c, const struct capture_record *rec)
{
        _cleanup_(jbuf_deinit) struct jbuf h = {0};
        uint64_t nsec;

        if (!c || !c->writing || !rec || rec->ts.tv_sec < 0 || rec->n_fds > IPCBUS_FDS_MAX ||
            rec->memfd_size > IPCBUS_BODY_MAX || !frame_ok(rec->frame, rec->frame_len))
                return -EINVAL;
        if (c->error)
                return c->error;
        if (!c->idb_written) {
                int r = write_idb(c);

                if (r < 0)
                        return r;
        }
        nsec = (uint64_t) rec->ts.tv_sec * 1000000000u + (uint64_t) rec->ts.tv_nsec;
        put32(&h, 0); /* interface */
        put_time(&h, nsec);
        put32(&h, (uint32_t) (RECORD_SIZE + rec->frame_len)); /* captured */
        put32(&h, (uint32_t) (RECORD_SIZE + rec->frame_len)); /* original */
        put_record(&h, rec);
        /* the block: its head and the record, then the frame straight from the caller */
        if (write_block(c, BLOCK_EPB, &h, rec->frame, rec->frame_len) < 0)
                return c->error ? c->error : -ENOMEM;
        c->packets++;
        return 0;
}

void capture_add_lost(struct capture *c, uint64_t n)
{
        if (c && c->writing)
                c->lost += n;
}

int capture_flush(struct capture *c)
{
        if (!c || !c->writing)
                return -EINVAL;
        if (!c->error && fflush(c->f) != 0)
                c->error = errno ? -errno : -EIO;
        return c->error;
}

/* ---- reading ------------------------------------------------------------------------ */

static uint16_t get16(const struct capture *c, const uint8_t *p)
{
        return c->le ? (uint16_t) (p[0] | p[1] << 8) : (uint16_t) (p[1] | p[0] << 8);
}

static uint32_t get32(const struct capture *c, const uint8_t *p)
{
        uint32_t a = get16(c, p), b = get16(c, p + 2);

        return c->le ? a | b << 16 : b | a << 16;
}

static uint64_t get64(const struct capture *c, const uint8_t *p)
{
        uint64_t a = get32(c, p), b = get32(c, p + 4);

        return c->le ? a | b << 32 : b | a << 32;
}

static uint32_t le32(const uint8_t *p)
{
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

/*
 * Read exactly n bytes. Returns 0, 1 when the file ends before them (having
 * read *ret_got), or a negative errno.
 */
static int read_exact(struct capture *c, void *p, size_t n, size_t *ret_got)
{
        size_t got = n < c->n_back ? n : c->n_back;

        memcpy(p, c->back, got);
        memmove(c->back, c->back + got, c->n_back - got);
        c->n_back -= got;
        got += fread((uint8_t *) p + got, 1, n - got, c->f);

        c->offset += got;
        if (ret_got)
                *ret_got = got;
        if (got == n)
                return 0;
        if (ferror(c->f))
                return errno ? -errno : -EIO;
        return 1;
}

/* Read and drop n bytes (a block of a kind we skip: it may be larger than any we keep). */
static int read_skip(struct capture *c, uint64_t n)
{
        uint8_t scratch[4096];

        while (n > 0) {
                size_t k = n < sizeof(scratch) ? (size_t) n : sizeof(scratch);
                int r = read_exact(c, scratch, k, NULL);

                if (r != 0)
                        return r;
                n -= k;
        }
        return 0;
}

/* A whole block read: its type, its body (between the length and the trailing copy) in c->buf. */
struct block {
        uint64_t offset;
        uint32_t type;
        uint32_t total;
        const uint8_t *body; /* NULL for a block skipped */
        size_t len;
};

static int block_cut(struct capture *c, uint64_t offset, char *err, size_t err_size)
{
        return fail(err, err_size, -EBADMSG, "%s: truncated block at offset %llu (the capture was cut short)", c->name,
                    (unsigned long long) offset);
}

/* The body buffer, grown to n bytes (bounded by the caller). */
static int buf_reserve(struct capture *c, size_t n)
{
        uint8_t *p;

        if (n <= c->buf_cap)
                return 0;
        p = realloc(c->buf, n);
        if (!p)
                return -ENOMEM;
        c->buf = p;
        c->buf_cap = n;
        return 0;
}

/* The largest block of a type that the reader holds in memory; 0: skipped unread. */
static size_t block_max(uint32_t type)
{
        switch (type) {
        case BLOCK_EPB:
                return EPB_MAX;
        case BLOCK_SHB:
        case BLOCK_IDB:
        case BLOCK_ISB:
                return META_BLOCK_MAX;
        default:
                return 0;
        }
}

/*
 * Read the next block. Returns 0 with *ret, 1 at the clean end of the file
 * (no byte of a next block), -EBADMSG or a negative errno with a sentence.
 * A Section Header Block sets the byte order of what follows.
 */
static int read_block(struct capture *c, struct block *ret, char *err, size_t err_size)
{
        uint8_t head[12], tail[4];
        struct block b = {.offset = c->offset};
        size_t got, min = 12, max;
        int r;

        r = read_exact(c, head, 8, &got);
        if (r < 0)
                return fail(err, err_size, r, "%s: %s", c->name, strerror(-r));
        if (r > 0)
                return got == 0 ? 1 : block_cut(c, b.offset, err, err_size);
        b.type = le32(head); /* the same in both byte orders for a section header */
        if (b.type == BLOCK_SHB) {
                r = read_exact(c, head + 8, 4, NULL);
                if (r != 0)
                        return r < 0 ? fail(err, err_size, r, "%s: %s", c->name, strerror(-r))
                                     : block_cut(c, b.offset, err, err_size);
                if (le32(head + 8) == BYTE_ORDER_MAGIC)
                        c->le = true;
                else if (le32(head + 8) == __builtin_bswap32(BYTE_ORDER_MAGIC))
                        c->le = false;
                else
                        return fail(err, err_size, -EBADMSG,
                                    "%s: section header at offset %llu has no valid byte-order magic", c->name,
                                    (unsigned long long) b.offset);
                min = 28;
        }
        b.type = get32(c, head);
        b.total = get32(c, head + 4);
        max = block_max(b.type);
        if (b.total < min || b.total % 4 != 0)
                return fail(err, err_size, -EBADMSG, "%s: block at offset %llu has an invalid length (%u bytes)",
                            c->name, (unsigned long long) b.offset, b.total);
        if (max == 0) {
                r = read_skip(c, b.total - (c->offset - b.offset) - 4);
        } else {
                if (b.total > max)
                        return fail(err, err_size, -EBADMSG,
                                    "%s: block at offset %llu is %u bytes long, more than a capture of ipcbus messages "
                                    "can hold (%zu)",
                                    c->name, (unsigned long long) b.offset, b.total, max);
                b.len = b.total - 12;
                if (buf_reserve(c, b.len + 1) < 0)
                        return fail(err, err_size, -ENOMEM, "out of memory");
                /* a section header's first body bytes (the magic) are read already */
                if (b.type == BLOCK_SHB)
                        memcpy(c->buf, head + 8, 4);
                got = b.type == BLOCK_SHB ? 4 : 0;
                r = read_exact(c, c->buf + got, b.len - got, NULL);
                b.body = c->buf;
        }
        if (r == 0)
                r = read_exact(c, tail, 4, NULL);
        if (r < 0)
                return fail(err, err_size, r, "%s: %s", c->name, strerror(-r));
        if (r > 0)
                return block_cut(c, b.offset, err, err_size);
        if (get32(c, tail) != b.total)
                return fail(err, err_size, -EBADMSG,
                            "%s: block at offset %llu: its trailing length (%u) differs from its length (%u)", c->name,
                            (unsigned long long) b.offset, get32(c, tail), b.total);
        *ret = b;
        return 0;
}

/* Options from p to end (pcapng 3.5): code, length, value padded to 32 bits. */
struct opt_iter {
        const uint8_t *p, *end;
};

/* The next option: 1 with code, value and length; 0 at the end; -EBADMSG when one overruns its block. */
static int opt_next(const struct capture *c, struct opt_iter *it, uint16_t *code, const uint8_t **value, uint16_t *len)
{
        size_t left = (size_t) (it->end - it->p);

        if (left < 4)
                return left == 0 ? 0 : -EBADMSG;
        *code = get16(c, it->p);
        *len = get16(c, it->p + 2);
        if (*code == OPT_END)
                return 0;
        if (PAD4((size_t) *len) > left - 4)
                return -EBADMSG;
        *value = it->p + 4;
        it->p += 4 + PAD4((size_t) *len);
        return 1;
}

static int bad_options(const struct capture *c, const struct block *b, char *err, size_t err_size)
{
        return fail(err, err_size, -EBADMSG, "%s: block at offset %llu has an option that overruns it", c->name,
                    (unsigned long long) b->offset);
}

static int read_shb(struct capture *c, const struct block *b, char *err, size_t err_size)
{
        uint16_t major = get16(c, b->body + 4);

        if (major != 1)
                return fail(err, err_size, -EBADMSG, "%s: section at offset %llu is pcapng version %u, not 1", c->name,
                            (unsigned long long) b->offset, major);
        /* a new section: its own interfaces, from 0 */
        c->n_ifaces = 0;
        return 0;
}

static int read_idb(struct capture *c, const struct block *b, char *err, size_t err_size)
{
        struct capture_iface ifc = {.exp = 6}; /* pcapng's default unit: microseconds */
        struct opt_iter it;
        const uint8_t *v;
        uint16_t code, len;
        int r;

        if (b->len < 8)
                return fail(err, err_size, -EBADMSG, "%s: interface block at offset %llu is too short", c->name,
                            (unsigned long long) b->offset);
        if (c->n_ifaces == IFACES_MAX)
                return fail(err, err_size, -EBADMSG, "%s: more than %d interfaces in a section", c->name, IFACES_MAX);
        ifc.linktype = get16(c, b->body);
        if (ifc.linktype != CAPTURE_LINKTYPE)
                return fail(err, err_size, -EBADMSG,
                            "%s: interface %u has link type %u, not ipcbus messages (%d): not a capture of ipc-monitor",
                            c->name, c->n_ifaces, ifc.linktype, CAPTURE_LINKTYPE);
        it = (struct opt_iter){b->body + 8, b->body + b->len};
        while ((r = opt_next(c, &it, &code, &v, &len)) > 0) {
                if (code == OPT_IF_TSRESOL && len == 1) {
                        ifc.pow2 = v[0] & 0x80;
                        ifc.exp = v[0] & 0x7f;
                        if (ifc.exp > (ifc.pow2 ? 63 : 19))
                                return fail(err, err_size, -EBADMSG, "%s: interface %u has an unusable time resolution",
                                            c->name, c->n_ifaces);
                } else if (code == OPT_IF_TSOFFSET && len == 8) {
                        ifc.offset_sec = (int64_t) get64(c, v);
                } else if (code == OPT_IF_NAME && !c->first_if_name) {
                        c->first_if_name = strndup((const char *) v, len);
                        if (!c->first_if_name)
                                return fail(err, err_size, -ENOMEM, "out of memory");
                }
        }
        if (r < 0)
                return bad_options(c, b, err, err_size);
        c->ifaces[c->n_ifaces++] = ifc;
        return 0;
}

static int read_isb(struct capture *c, const struct block *b, char *err, size_t err_size)
{
        struct opt_iter it;
        const uint8_t *v;
        uint16_t code, len;
        int r;

        if (b->len < 12)
                return fail(err, err_size, -EBADMSG, "%s: statistics block at offset %llu is too short", c->name,
                            (unsigned long long) b->offset);
        c->have_stats = true;
        c->stat_packets = c->stat_lost = 0;
        it = (struct opt_iter){b->body + 12, b->body + b->len};
        while ((r = opt_next(c, &it, &code, &v, &len)) > 0) {
                if (code == OPT_ISB_IFDROP && len == 8)
                        c->stat_lost = get64(c, v);
                else if (code == OPT_ISB_USRDELIV && len == 8)
                        c->stat_packets = get64(c, v);
        }
        return r < 0 ? bad_options(c, b, err, err_size) : 0;
}

/* A timestamp in an interface's unit as a timespec; false when it is out of range. */
static bool time_convert(const struct capture_iface *ifc, uint64_t t, struct timespec *ret)
{
        unsigned __int128 unit = 1, frac;
        int64_t sec;

        if (ifc->pow2)
                unit <<= ifc->exp;
        else
                for (unsigned i = 0; i < ifc->exp; i++)
                        unit *= 10;
        frac = t % unit;
        if (t / unit > (uint64_t) INT64_MAX || __builtin_add_overflow((int64_t) (t / unit), ifc->offset_sec, &sec) ||
            sec < 0)
                return false;
        ret->tv_sec = sec;
        ret->tv_nsec = (long) (frac * 1000000000u / unit);
        return true;
}

/* Check the record and frame of a packet block and point *ret at them. */
static int read_packet(struct capture *c, const struct block *b, struct capture_record *ret, char *err, size_t err_size)
{
        const unsigned long long off = (unsigned long long) b->offset;
        struct frame_prefix fp;
        const uint8_t *d;
        uint32_t ifn, caplen, origlen, n_fds, memfd_size;
        size_t hdr, frame_len;
        struct timespec ts;
        int r;

        if (b->len < EPB_FIXED)
                return fail(err, err_size, -EBADMSG, "%s: packet block at offset %llu is too short", c->name, off);
        ifn = get32(c, b->body);
        caplen = get32(c, b->body + 12);
        origlen = get32(c, b->body + 16);
        if (ifn >= c->n_ifaces)
                return fail(err, err_size, -EBADMSG,
                            "%s: packet block at offset %llu names interface %u, which is not described", c->name, off,
                            ifn);
        if (PAD4((size_t) caplen) > b->len - EPB_FIXED)
                return fail(err, err_size, -EBADMSG, "%s: packet block at offset %llu: its data overruns the block",
                            c->name, off);
        if (caplen != origlen)
                return fail(err, err_size, -EBADMSG,
                            "%s: packet at offset %llu was cut short (%u of %u bytes captured)", c->name, off, caplen,
                            origlen);
        if (!time_convert(&c->ifaces[ifn], (uint64_t) get32(c, b->body + 4) << 32 | get32(c, b->body + 8), &ts))
                return fail(err, err_size, -EBADMSG, "%s: packet at offset %llu has a timestamp out of range", c->name,
                            off);

        /* the record, little-endian whatever the section's byte order */
        d = b->body + EPB_FIXED;
        if (caplen < RECORD_SIZE || memcmp(d, RECORD_MAGIC, 4) != 0)
                return fail(err, err_size, -EBADMSG, "%s: packet at offset %llu is not an ipcbus message record",
                            c->name, off);
        hdr = d[5];
        n_fds = (uint32_t) (d[6] | d[7] << 8);
        memfd_size = le32(d + 8);
        if (d[4] != RECORD_VERSION || hdr < RECORD_SIZE || hdr > caplen)
                return fail(err, err_size, -EBADMSG,
                            "%s: packet at offset %llu: record of version %u, %zu bytes: not readable", c->name, off,
                            d[4], hdr);
        if (n_fds > IPCBUS_FDS_MAX || memfd_size > IPCBUS_BODY_MAX)
                return fail(err, err_size, -EBADMSG,
                            "%s: packet at offset %llu: record with %u descriptors, memfd of %u bytes", c->name, off,
                            n_fds, memfd_size);

        /* the frame: a valid prefix whose lengths add up to what is there */
        frame_len = caplen - hdr;
        if (frame_len < IPCBUS_FRAME_PREFIX_SIZE)
                return fail(err, err_size, -EBADMSG, "%s: packet at offset %llu holds no whole frame", c->name, off);
        r = frame_prefix_decode(d + hdr, 0, 0, &fp);
        if (r != 0)
                return fail(err, err_size, -EBADMSG, "%s: packet at offset %llu: %s", c->name, off, proto_strerror(r));
        if (fp.n_fds != 0 || (uint64_t) IPCBUS_FRAME_PREFIX_SIZE + fp.header_len + fp.body_len != frame_len)
                return fail(err, err_size, -EBADMSG,
                            "%s: packet at offset %llu: its frame's prefix does not match its length (%zu bytes)",
                            c->name, off, frame_len);

        /* the command name as text: at most 16 bytes, control characters shown as '?' */
        memcpy(c->comm, d + 12, COMM_SIZE);
        c->comm[COMM_SIZE] = 0;
        for (char *p = c->comm; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = '?';
        *ret = (struct capture_record){
                .ts = ts,
                .frame = d + hdr,
                .frame_len = frame_len,
                .n_fds = n_fds,
                .memfd_size = memfd_size,
                .comm = c->comm,
        };
        return 0;
}

int capture_open_read(const char *path, struct capture **ret, char *err, size_t err_size)
{
        struct capture *c;
        struct block b;
        uint8_t magic[4];
        size_t got;
        int r;

        if (!path || !ret)
                return fail(err, err_size, -EINVAL, "no capture file given");
        c = capture_new(path, false);
        if (!c)
                return fail(err, err_size, -ENOMEM, "out of memory");
        c->f = c->std ? stdin : fopen(path, "re");
        if (!c->f) {
                r = -errno;
                capture_close(c);
                return fail(err, err_size, r, "cannot open %s: %s", path, strerror(-r));
        }
        /* the first block must be a section header; say what else it is when it is not */
        r = read_exact(c, magic, 4, &got);
        if (r == 0 && le32(magic) == BLOCK_SHB) {
                /* read again as the block's start (a pipe cannot seek back) */
                memcpy(c->back, magic, 4);
                c->n_back = 4;
                c->offset = 0;
                r = read_block(c, &b, err, err_size);
                if (r == 0)
                        r = read_shb(c, &b, err, err_size);
                else if (r == 1)
                        r = block_cut(c, 0, err, err_size);
        } else if (r < 0) {
                fail(err, err_size, r, "%s: %s", c->name, strerror(-r));
        } else if (r == 0 && (le32(magic) == 0xA1B2C3D4u || le32(magic) == 0xD4C3B2A1u || le32(magic) == 0xA1B23C4Du ||
                              le32(magic) == 0x4D3CB2A1u)) {
                r = fail(err, err_size, -EBADMSG, "%s: a pcap file, not pcapng: not a capture of ipc-monitor", c->name);
        } else {
                r = fail(err, err_size, -EBADMSG, "%s: not a pcapng file (no section header at its start)", c->name);
        }
        if (r != 0) {
                capture_close(c);
                return r;
        }
        *ret = c;
        return 0;
}

/* The next record: capture_read but for the check of an earlier failure. */
static int capture_read_next(struct capture *c, struct capture_record *ret, char *err, size_t err_size)
{
        struct block b;
        int r;

        for (;;) {
                r = read_block(c, &b, err, err_size);
                if (r == 1)
                        return 0;
                if (r < 0)
                        return r;
                switch (b.type) {
                case BLOCK_SHB:
                        r = read_shb(c, &b, err, err_size);
                        break;
                case BLOCK_IDB:
                        r = read_idb(c, &b, err, err_size);
                        break;
                case BLOCK_ISB:
                        r = read_isb(c, &b, err, err_size);
                        break;
                case BLOCK_EPB:
                        r = read_packet(c, &b, ret, err, err_size);
                        return r < 0 ? r : 1;
                case BLOCK_PB_OBSOLETE:
                case BLOCK_SPB:
                        /* never written by ipc-monitor: their packets lack what a record needs */
                        return fail(err, err_size, -EBADMSG,
                                    "%s: block at offset %llu is a packet block of a kind ipc-monitor does not read "
                                    "(type %u)",
                                    c->name, (unsigned long long) b.offset, b.type);
                default:
                        break; /* skipped, as pcapng asks */
                }
                if (r < 0)
                        return r;
        }
}

int capture_read(struct capture *c, struct capture_record *ret, char *err, size_t err_size)
{
        int r;

        if (!c || c->writing || !ret)
                return fail(err, err_size, -EINVAL, "not a capture open for reading");
        if (c->broken)
                return fail(err, err_size, -EBADMSG, "%s: reading stopped at the damage reported before", c->name);
        r = capture_read_next(c, ret, err, err_size);
        c->broken = r < 0;
        return r;
}

int capture_read_stats(struct capture *c, uint64_t *ret_packets, uint64_t *ret_lost)
{
        if (!c || c->writing)
                return -EINVAL;
        if (!c->have_stats)
                return -ENODATA;
        if (ret_packets)
                *ret_packets = c->stat_packets;
        if (ret_lost)
                *ret_lost = c->stat_lost;
        return 0;
}

const char *capture_interface(struct capture *c)
{
        return c && !c->writing ? c->first_if_name : NULL;
}

int capture_close(struct capture *c)
{
        int r = 0;

        if (!c)
                return 0;
        if (c->writing && c->f) {
                if (!c->idb_written)
                        write_idb(c);
                write_isb(c);
                capture_flush(c);
                r = c->error;
        }
        if (c->f && !c->std && fclose(c->f) != 0 && c->writing && r == 0)
                r = -errno;
        free(c->name);
        free(c->if_name);
        free(c->first_if_name);
        free(c->buf);
        free(c);
        return r;
}
