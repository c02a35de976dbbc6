/* SPDX-License-Identifier: MIT */
/*
 * ipc-monitor's capture files (tools/monitor/capture.c): records written and
 * read back identical, the statistics block, "-" for stdin and stdout, files
 * built here byte by byte to the pcapng draft (either byte order, several
 * sections, blocks to skip), files cut short or damaged refused with the
 * sentence a user reads and no crash; tshark reading a capture with
 * tools/wireshark/ipcbus.lua, one line per message; and ipc-monitor itself
 * capturing a real bus's traffic and reading it back (--capture, --read),
 * also after SIGHUP.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "protocol/frame.h"
#include "tests/check-run.h"
#include "tests/testbus.h"
#include "tools/monitor/capture.h"
#include "util/file.h"
#include "util/util.h"

#define BUS_ADDRESS "unix:path=/run/ipcbus-test/bus"

/* The messages a capture of the tests holds, and the line tshark prints for each. */
static const struct sample {
        const char *header;
        const char *body; /* NULL: none */
        unsigned n_fds;
        uint32_t memfd_size;
        const char *comm;
        const char *info;
} samples[] = {
        {"{\"sender\":\":1.4\",\"sender_uid\":1000,\"sender_pid\":4242,\"type\":\"call\",\"serial\":7,"
         "\"destination\":\"org.example.Notes\",\"path\":\"/org/example/Notes\",\"interface\":\"org.example.Notes\","
         "\"member\":\"Add\"}",
         "{\"title\":\"hello\",\"text\":\"caf\xc3\xa9\"}", 0, 0, "notes-client",
         "call :1.4 -> org.example.Notes /org/example/Notes org.example.Notes.Add serial=7"},
        {"{\"sender\":\":1.5\",\"sender_uid\":1000,\"sender_pid\":4243,\"type\":\"return\",\"serial\":3,"
         "\"reply_serial\":7,\"destination\":\":1.4\"}",
         "{\"id\":1}", 2, 0, "notes-service", "return :1.5 -> :1.4 serial=3 reply_serial=7 fds=2"},
        {"{\"sender\":\":1.5\",\"sender_uid\":1000,\"sender_pid\":4243,\"type\":\"error\",\"serial\":4,"
         "\"reply_serial\":8,\"destination\":\":1.4\",\"error\":\"org.ipcbus.Error.Failed\"}",
         "{\"message\":\"no such note\"}", 0, 0, "notes-service",
         "error :1.5 -> :1.4 org.ipcbus.Error.Failed serial=4 reply_serial=8"},
        {"{\"sender\":\":1.5\",\"sender_uid\":1000,\"sender_pid\":4243,\"type\":\"signal\",\"serial\":9,"
         "\"path\":\"/org/example/Notes\",\"interface\":\"org.example.Notes\",\"member\":\"Changed\"}",
         "{\"blob\":\"0123456789abcdef\"}", 1, 1048577, "a-very-long-command-name",
         "signal :1.5 -> * /org/example/Notes org.example.Notes.Changed serial=9 fds=1 memfd=1048577"},
        {"{\"sender\":\"org.ipcbus.Bus\",\"sender_uid\":0,\"sender_pid\":1,\"type\":\"signal\",\"serial\":10,"
         "\"destination\":\":1.4\",\"path\":\"/org/ipcbus/Bus\",\"interface\":\"org.ipcbus.Bus\","
         "\"member\":\"NameAcquired\"}",
         NULL, 0, 0, "", "signal org.ipcbus.Bus -> :1.4 /org/ipcbus/Bus org.ipcbus.Bus.NameAcquired serial=10"},
};
#define N_SAMPLES (sizeof(samples) / sizeof(samples[0]))

/* ---- helpers ------------------------------------------------------------------------ */

/* The frame of a sample (malloc'd), as the monitor stores it: body inline, n_fds 0. */
static uint8_t *sample_frame(const struct sample *s, size_t *ret_len)
{
        size_t hl = strlen(s->header), bl = s->body ? strlen(s->body) : 0;
        uint8_t *f = malloc(16 + hl + bl);

        ck_assert_ptr_nonnull(f);
        frame_prefix_encode(f, (uint32_t) hl, (uint32_t) bl, 0);
        memcpy(f + 16, s->header, hl);
        if (bl)
                memcpy(f + 16 + hl, s->body, bl);
        *ret_len = 16 + hl + bl;
        return f;
}

/* The time of sample i: nanoseconds that a microsecond clock would lose. */
static struct timespec sample_time(size_t i)
{
        return (struct timespec){.tv_sec = 1796270000 + (time_t) i, .tv_nsec = 123456789 + (long) i * 1001};
}

/* A fresh file name in a directory of the test's own (removed by the fixture). */
static char tmpdir[64];

static void tmpdir_setup(void)
{
        strcpy(tmpdir, "/tmp/ipcbus-capture-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void tmpdir_teardown(void)
{
        char cmd[128];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", tmpdir);
}

static char *tmp_file(const char *name)
{
        char *p;

        ck_assert_int_gt(asprintf(&p, "%s/%s", tmpdir, name), 0);
        return p;
}

/* Write every sample to path (or "-"), with `lost` copies counted lost. */
static void write_samples(const char *path, uint64_t lost)
{
        struct capture *c;
        char err[256] = "";

        ck_assert_msg(capture_open_write(path, &c, err, sizeof(err)) == 0, "%s", err);
        ck_assert_int_eq(capture_set_interface(c, BUS_ADDRESS), 0);
        for (size_t i = 0; i < N_SAMPLES; i++) {
                size_t len;
                uint8_t *f = sample_frame(&samples[i], &len);
                struct capture_record rec = {
                        .ts = sample_time(i),
                        .frame = f,
                        .frame_len = len,
                        .n_fds = samples[i].n_fds,
                        .memfd_size = samples[i].memfd_size,
                        .comm = samples[i].comm,
                };

                ck_assert_int_eq(capture_write(c, &rec), 0);
                free(f);
                if (i == 1) {
                        capture_add_lost(c, lost / 2);
                        ck_assert_int_eq(capture_flush(c), 0);
                }
        }
        capture_add_lost(c, lost - lost / 2);
        ck_assert_int_eq(capture_close(c), 0);
}

/* Read path back and assert it holds the samples, their interface and `lost`. */
static void assert_samples(const char *path, uint64_t lost)
{
        struct capture *c;
        struct capture_record rec;
        uint64_t packets = 99, lost_read = 99;
        char err[256] = "";

        ck_assert_msg(capture_open_read(path, &c, err, sizeof(err)) == 0, "%s", err);
        for (size_t i = 0; i < N_SAMPLES; i++) {
                const struct sample *s = &samples[i];
                struct timespec ts = sample_time(i);
                size_t len;
                uint8_t *f = sample_frame(s, &len);
                char comm[16];

                ck_assert_msg(capture_read(c, &rec, err, sizeof(err)) == 1, "record %zu: %s", i, err);
                ck_assert_int_eq(rec.ts.tv_sec, ts.tv_sec);
                ck_assert_int_eq(rec.ts.tv_nsec, ts.tv_nsec);
                ck_assert_uint_eq(rec.frame_len, len);
                ck_assert_mem_eq(rec.frame, f, len);
                ck_assert_uint_eq(rec.n_fds, s->n_fds);
                ck_assert_uint_eq(rec.memfd_size, s->memfd_size);
                /* a command name is the kernel's: 15 bytes at most */
                snprintf(comm, sizeof(comm), "%s", s->comm);
                ck_assert_str_eq(rec.comm, comm);
                free(f);
        }
        ck_assert_msg(capture_read(c, &rec, err, sizeof(err)) == 0, "%s", err);
        ck_assert_int_eq(capture_read(c, &rec, err, sizeof(err)), 0);
        ck_assert_int_eq(capture_read_stats(c, &packets, &lost_read), 0);
        ck_assert_uint_eq(packets, N_SAMPLES);
        ck_assert_uint_eq(lost_read, lost);
        ck_assert_str_eq(capture_interface(c), BUS_ADDRESS);
        ck_assert_int_eq(capture_close(c), 0);
}

/* The bytes of a file (malloc'd). */
static uint8_t *slurp(const char *path, size_t *ret_len)
{
        char *data;

        ck_assert_int_eq(file_read_text(path, 1024 * 1024, &data, ret_len), 0);
        return (uint8_t *) data;
}

static void spit(const char *path, const uint8_t *data, size_t len)
{
        FILE *f = fopen(path, "wb");

        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(data, 1, len, f), len);
        ck_assert_int_eq(fclose(f), 0);
}

/*
 * Read a whole capture: returns the last capture_read result (0 at a clean
 * end) or capture_open_read's, with the records read in *ret_records and
 * the sentence in err. Asserts nothing of the content: damaged input.
 */
static int read_through(const char *path, size_t *ret_records, char *err, size_t err_size)
{
        struct capture *c;
        struct capture_record rec;
        size_t n = 0;
        int r;

        err[0] = 0;
        r = capture_open_read(path, &c, err, err_size);
        if (r == 0) {
                while ((r = capture_read(c, &rec, err, err_size)) == 1) {
                        /* touch every byte a record points at */
                        size_t sum = 0;

                        for (size_t i = 0; i < rec.frame_len; i++)
                                sum += rec.frame[i];
                        ck_assert_uint_le(sum, 255 * rec.frame_len);
                        ck_assert_uint_le(strlen(rec.comm), 16);
                        n++;
                }
                if (r < 0) {
                        char again[256];

                        /* it stays refused */
                        ck_assert_int_eq(capture_read(c, &rec, again, sizeof(again)), -EBADMSG);
                }
                capture_close(c);
        }
        *ret_records = n;
        return r;
}

/* ---- pcapng built byte by byte, to the draft, apart from capture.c ---------------------- */

struct bytes {
        uint8_t d[8192];
        size_t n;
        bool be; /* the section's byte order (a record is always little-endian) */
};

static void b_put(struct bytes *b, const void *p, size_t n)
{
        ck_assert_uint_le(b->n + n, sizeof(b->d));
        memcpy(b->d + b->n, p, n);
        b->n += n;
}

/* An integer of size bytes (at most 8) in b's byte order. */
static void b_int(struct bytes *b, uint64_t v, unsigned size)
{
        ck_assert_uint_le(size, 8);
        for (unsigned i = 0; i < size; i++) {
                unsigned shift = 8 * (b->be ? size - 1 - i : i);
                uint8_t byte = (uint8_t) (v >> shift);

                b_put(b, &byte, 1);
        }
}

static void b_pad(struct bytes *b)
{
        static const uint8_t zeros[4];

        b_put(b, zeros, (4 - b->n % 4) % 4);
}

static void b_option(struct bytes *b, uint16_t code, const void *v, uint16_t len)
{
        b_int(b, code, 2);
        b_int(b, len, 2);
        b_put(b, v, len);
        b_pad(b);
}

/* A block of out's byte order: type, length, body padded, length. */
static void b_block(struct bytes *out, uint32_t type, const struct bytes *body)
{
        uint32_t total = (uint32_t) (12 + (body->n + 3) / 4 * 4);
        static const uint8_t zeros[4];

        b_int(out, type, 4);
        b_int(out, total, 4);
        b_put(out, body->d, body->n);
        b_put(out, zeros, (4 - body->n % 4) % 4);
        b_int(out, total, 4);
}

static void b_option_u64(struct bytes *b, uint16_t code, uint64_t v)
{
        struct bytes value = {.be = b->be};

        b_int(&value, v, 8);
        b_option(b, code, value.d, 8);
}

static void b_shb(struct bytes *out)
{
        struct bytes h = {.be = out->be};

        b_int(&h, 0x1A2B3C4D, 4);
        b_int(&h, 1, 2);
        b_int(&h, 0, 2);
        b_int(&h, UINT64_MAX, 8);
        b_option(&h, 4, "handmade", 8);
        b_int(&h, 0, 4);
        b_block(out, 0x0A0D0D0A, &h);
}

/* An interface; tsresol < 0: no if_tsresol option (pcapng's default, microseconds). */
static void b_idb(struct bytes *out, uint16_t linktype, int tsresol)
{
        struct bytes h = {.be = out->be};
        uint8_t res = (uint8_t) tsresol;

        b_int(&h, linktype, 2);
        b_int(&h, 0, 2);
        b_int(&h, 0, 4);
        if (tsresol >= 0)
                b_option(&h, 9, &res, 1);
        b_int(&h, 0, 4);
        b_block(out, 1, &h);
}

/* The 32-byte record (always little-endian) and sample i's frame. */
static void b_record(struct bytes *d, size_t i)
{
        struct bytes le = {.be = false};
        char comm[16] = {0};
        size_t len;
        uint8_t *f = sample_frame(&samples[i], &len);

        snprintf(comm, sizeof(comm), "%s", samples[i].comm);
        b_put(&le, "IPCM", 4);
        b_int(&le, 1, 1);
        b_int(&le, 32, 1);
        b_int(&le, samples[i].n_fds, 2);
        b_int(&le, samples[i].memfd_size, 4);
        b_put(&le, comm, 16);
        b_int(&le, 0, 4);
        b_put(&le, f, len);
        free(f);
        b_put(d, le.d, le.n);
}

/* A packet block on interface ifc at ts (in the interface's unit) holding data. */
static void b_epb(struct bytes *out, uint32_t ifc, uint64_t ts, const struct bytes *data)
{
        struct bytes h = {.be = out->be};

        b_int(&h, ifc, 4);
        b_int(&h, ts >> 32, 4);
        b_int(&h, ts & 0xffffffffu, 4);
        b_int(&h, data->n, 4);
        b_int(&h, data->n, 4);
        b_put(&h, data->d, data->n);
        b_pad(&h);
        b_block(out, 6, &h);
}

static void b_epb_sample(struct bytes *out, uint32_t ifc, uint64_t ts, size_t i)
{
        struct bytes d = {0};

        b_record(&d, i);
        b_epb(out, ifc, ts, &d);
}

/* A file of one section and one packet of sample 0 (microseconds). */
static void b_file(struct bytes *out)
{
        b_shb(out);
        b_idb(out, 147, -1);
        b_epb_sample(out, 0, 1796270000123456u, 0);
}

/* Assert the file made of b is refused, after `good` records, with a sentence containing `want`. */
static void assert_refused(const struct bytes *b, size_t good, const char *want)
{
        char *path = tmp_file("bad.pcapng"), err[512];
        size_t n;
        int r;

        spit(path, b->d, b->n);
        r = read_through(path, &n, err, sizeof(err));
        ck_assert_msg(r == -EBADMSG, "read returned %d (%s), not -EBADMSG, wanting \"%s\"", r, err, want);
        ck_assert_uint_eq(n, good);
        ck_assert_msg(strstr(err, want), "\"%s\" does not say \"%s\"", err, want);
        ck_assert_msg(strstr(err, path), "\"%s\" does not name the file", err);
        free(path);
}

/* ---- tests -------------------------------------------------------------------------- */

START_TEST(test_roundtrip)
{
        char *path = tmp_file("a.pcapng");

        write_samples(path, 7);
        assert_samples(path, 7);
        free(path);
}
END_TEST

/* "-" writes to stdout and reads stdin, a pipe included. */
START_TEST(test_stdio)
{
        char *path = tmp_file("b.pcapng");
        int saved, fd, p[2];
        uint8_t *data;
        size_t len;

        saved = dup(STDOUT_FILENO);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ck_assert_int_ge(fd, 0);
        fflush(stdout);
        ck_assert_int_ge(dup2(fd, STDOUT_FILENO), 0);
        close(fd);
        write_samples("-", 3);
        fflush(stdout);
        ck_assert_int_ge(dup2(saved, STDOUT_FILENO), 0);
        close(saved);
        assert_samples(path, 3);

        /* read through a pipe: no seeking back */
        data = slurp(path, &len);
        ck_assert_uint_lt(len, 65536); /* fits in the pipe */
        ck_assert_int_eq(pipe(p), 0);
        ck_assert_uint_eq(write(p[1], data, len), len);
        close(p[1]);
        ck_assert_int_ge(dup2(p[0], STDIN_FILENO), 0);
        close(p[0]);
        clearerr(stdin);
        assert_samples("-", 3);
        free(data);
        free(path);
}
END_TEST

/* A capture closed with no message: no record, the counts read back. */
START_TEST(test_empty)
{
        char *path = tmp_file("empty.pcapng"), err[256];
        struct capture *c;
        struct capture_record rec;
        uint64_t packets, lost;

        ck_assert_int_eq(capture_open_write(path, &c, err, sizeof(err)), 0);
        capture_add_lost(c, 12);
        ck_assert_int_eq(capture_close(c), 0);
        ck_assert_int_eq(capture_open_read(path, &c, err, sizeof(err)), 0);
        ck_assert_int_eq(capture_read_stats(c, &packets, &lost), -ENODATA);
        ck_assert_int_eq(capture_read(c, &rec, err, sizeof(err)), 0);
        ck_assert_int_eq(capture_read_stats(c, &packets, &lost), 0);
        ck_assert_uint_eq(packets, 0);
        ck_assert_uint_eq(lost, 12);
        ck_assert_ptr_null(capture_interface(c));
        ck_assert_int_eq(capture_close(c), 0);
        free(path);
}
END_TEST

/* What the writer refuses: it never writes what the reader would refuse. */
START_TEST(test_writer_refuses)
{
        char *path = tmp_file("w.pcapng"), err[256];
        struct capture *c;
        size_t len;
        uint8_t *f = sample_frame(&samples[0], &len);
        struct capture_record rec = {.ts = sample_time(0), .frame = f, .frame_len = len, .comm = "ev\x1b[1m\x07"};

        ck_assert_int_eq(capture_open_write("/nonexistent-dir/x.pcapng", &c, err, sizeof(err)), -ENOENT);
        ck_assert_msg(strstr(err, "cannot create /nonexistent-dir/x.pcapng"), "%s", err);

        ck_assert_int_eq(capture_open_write(path, &c, err, sizeof(err)), 0);
        rec.frame_len = len - 1; /* the prefix says one more byte */
        ck_assert_int_eq(capture_write(c, &rec), -EINVAL);
        rec.frame_len = 10;
        ck_assert_int_eq(capture_write(c, &rec), -EINVAL);
        rec.frame_len = len;
        rec.n_fds = 17;
        ck_assert_int_eq(capture_write(c, &rec), -EINVAL);
        rec.n_fds = 0;
        f[6] = 1; /* n_fds in the prefix: a capture holds no descriptor */
        ck_assert_int_eq(capture_write(c, &rec), -EINVAL);
        f[6] = 0;
        ck_assert_int_eq(capture_write(c, &rec), 0);
        ck_assert_int_eq(capture_set_interface(c, BUS_ADDRESS), -EBUSY);
        ck_assert_int_eq(capture_close(c), 0);

        /* a command name comes back without its control characters (it ends up on a terminal) */
        ck_assert_int_eq(capture_open_read(path, &c, err, sizeof(err)), 0);
        ck_assert_int_eq(capture_read(c, &rec, err, sizeof(err)), 1);
        ck_assert_str_eq(rec.comm, "ev?[1m?");
        ck_assert_int_eq(capture_close(c), 0);
        free(f);
        free(path);
}
END_TEST

/* Files built by hand to the draft: both byte orders, units, sections, blocks to skip. */
START_TEST(test_handmade)
{
        char *path = tmp_file("h.pcapng"), err[256];
        struct capture *c;
        struct capture_record rec;
        uint64_t packets, lost;

        for (int be = 0; be <= 1; be++) {
                struct bytes b = {.be = be}, unknown = {.be = be}, isb = {.be = be};
                uint8_t res_pow2 = 0x80 | 10; /* 1/1024 s */

                b_file(&b);
                /* blocks a reader skips: a custom block, a name resolution block */
                b_put(&unknown, "opaque data of a block nobody here knows", 40);
                b_block(&b, 0x40000BAD, &unknown);
                b_block(&b, 4, &unknown);
                /* a second interface in nanoseconds, then one in 2^-10 s */
                b_idb(&b, 147, 9);
                b_epb_sample(&b, 1, 1796270000987654321u, 1);
                {
                        struct bytes h = {.be = be};

                        b_int(&h, 147, 2);
                        b_int(&h, 0, 2);
                        b_int(&h, 0, 4);
                        b_option(&h, 9, &res_pow2, 1);
                        b_option(&h, 2, "unix:path=/x", 12);
                        b_block(&b, 1, &h);
                }
                b_epb_sample(&b, 2, (1796270000ull << 10) | 512, 2);
                /* statistics of interface 0 */
                b_int(&isb, 0, 4);
                b_int(&isb, 0, 8);
                b_option_u64(&isb, 5, 5);
                b_option_u64(&isb, 8, 3);
                b_int(&isb, 0, 4);
                b_block(&b, 5, &isb);
                /* a second section of the other byte order, its interfaces from 0 again */
                b.be = !be;
                b_shb(&b);
                b_idb(&b, 147, 6);
                b_epb_sample(&b, 0, 1796270001000001u, 3);
                spit(path, b.d, b.n);

                ck_assert_msg(capture_open_read(path, &c, err, sizeof(err)) == 0, "%s", err);
                ck_assert_msg(capture_read(c, &rec, err, sizeof(err)) == 1, "%s", err);
                ck_assert_int_eq(rec.ts.tv_sec, 1796270000);
                ck_assert_int_eq(rec.ts.tv_nsec, 123456000);
                ck_assert_str_eq(rec.comm, samples[0].comm);
                ck_assert_msg(capture_read(c, &rec, err, sizeof(err)) == 1, "%s", err);
                ck_assert_int_eq(rec.ts.tv_sec, 1796270000);
                ck_assert_int_eq(rec.ts.tv_nsec, 987654321);
                ck_assert_uint_eq(rec.n_fds, 2);
                ck_assert_msg(capture_read(c, &rec, err, sizeof(err)) == 1, "%s", err);
                ck_assert_int_eq(rec.ts.tv_sec, 1796270000);
                ck_assert_int_eq(rec.ts.tv_nsec, 500000000);
                ck_assert_uint_eq(rec.memfd_size, 0);
                ck_assert_msg(capture_read(c, &rec, err, sizeof(err)) == 1, "%s", err);
                ck_assert_int_eq(rec.ts.tv_sec, 1796270001);
                ck_assert_int_eq(rec.ts.tv_nsec, 1000);
                ck_assert_uint_eq(rec.memfd_size, samples[3].memfd_size);
                ck_assert_msg(capture_read(c, &rec, err, sizeof(err)) == 0, "%s", err);
                ck_assert_int_eq(capture_read_stats(c, &packets, &lost), 0);
                ck_assert_uint_eq(lost, 5);
                ck_assert_uint_eq(packets, 3);
                ck_assert_str_eq(capture_interface(c), "unix:path=/x");
                ck_assert_int_eq(capture_close(c), 0);
        }
        free(path);
}
END_TEST

/* A capture cut at every byte: the records before the cut, then the block where it is cut. */
START_TEST(test_truncated)
{
        char *path = tmp_file("full.pcapng"), *cut = tmp_file("cut.pcapng"), err[256], want[128];
        uint64_t starts[32];
        size_t len, n_blocks = 0;
        uint8_t *data;

        write_samples(path, 0);
        data = slurp(path, &len);
        /* where each block starts: SHB, IDB, one EPB per sample, ISB */
        for (size_t off = 0; off < len; off += data[off + 4] | data[off + 5] << 8 | data[off + 6] << 16)
                starts[n_blocks++] = off;
        ck_assert_uint_eq(n_blocks, 3 + N_SAMPLES);
        for (size_t n = 0; n < len; n++) {
                size_t block = 0, records;
                int r;

                while (block + 1 < n_blocks && starts[block + 1] <= n)
                        block++;
                spit(cut, data, n);
                r = read_through(cut, &records, err, sizeof(err));
                if (n == starts[block] && block >= 1) {
                        /* cut between blocks: every whole one read, a clean end */
                        ck_assert_msg(r == 0, "cut at %zu: %d %s", n, r, err);
                        ck_assert_uint_eq(records, block >= 2 ? block - 2 : 0);
                        continue;
                }
                ck_assert_msg(r == -EBADMSG, "cut at %zu: %d %s", n, r, err);
                if (n < 4) {
                        ck_assert_msg(strstr(err, "not a pcapng file"), "cut at %zu: %s", n, err);
                        continue;
                }
                snprintf(want, sizeof(want), "truncated block at offset %llu", (unsigned long long) starts[block]);
                ck_assert_msg(strstr(err, want), "cut at %zu: \"%s\" is not \"%s\"", n, err, want);
                ck_assert_uint_eq(records, block >= 2 ? (block - 2 < N_SAMPLES ? block - 2 : N_SAMPLES) : 0);
        }
        free(data);
        free(cut);
        free(path);
}
END_TEST

/* Damaged files: each refused with its sentence. */
START_TEST(test_corrupted)
{
        struct bytes b, d;

        /* not pcapng at all */
        b = (struct bytes){0};
        b_put(&b, "{\"type\":\"call\"}", 15);
        assert_refused(&b, 0, "not a pcapng file");
        b = (struct bytes){0};
        b_int(&b, 0xA1B2C3D4, 4);
        b_put(&b, (const uint8_t[20]){0}, 20);
        assert_refused(&b, 0, "a pcap file, not pcapng");
        b = (struct bytes){0};
        assert_refused(&b, 0, "not a pcapng file");

        /* a section header without the byte-order magic */
        b = (struct bytes){0};
        b_file(&b);
        b.d[8] = 0x55;
        assert_refused(&b, 0, "no valid byte-order magic");

        /* pcapng 2.0 */
        b = (struct bytes){0};
        b_file(&b);
        b.d[12] = 2;
        assert_refused(&b, 0, "pcapng version 2");

        /* another link type: Ethernet */
        b = (struct bytes){0};
        b_shb(&b);
        b_idb(&b, 1, -1);
        b_epb_sample(&b, 0, 0, 0);
        assert_refused(&b, 0, "has link type 1, not ipcbus messages");

        /* lengths: not a multiple of 4, shorter than a block, the copy differs */
        b = (struct bytes){0};
        b_file(&b);
        b_epb_sample(&b, 0, 0, 1);
        {
                size_t off = 0, blocks[8], nb = 0;

                while (off < b.n) {
                        blocks[nb++] = off;
                        off += b.d[off + 4] | b.d[off + 5] << 8;
                }
                ck_assert_uint_eq(nb, 4);
                b.d[blocks[3] + 4] += 2;
                assert_refused(&b, 1, "invalid length");
                b.d[blocks[3] + 4] -= 2;
                b.d[b.n - 4] += 4;
                assert_refused(&b, 1, "trailing length");
                b.d[b.n - 4] -= 4;
                /* a block of 8 bytes */
                memcpy(b.d + blocks[3] + 4, "\x08\0\0\0", 4);
                assert_refused(&b, 1, "invalid length");
                /* a packet block of 4 GiB: refused before any allocation */
                memcpy(b.d + blocks[3] + 4, "\xf0\xff\xff\xff", 4);
                assert_refused(&b, 1, "more than a capture of ipcbus messages can hold");
                /* an unknown block of 4 GiB: read through until the file ends */
                memcpy(b.d + blocks[3], "\x77\0\0\0", 4);
                assert_refused(&b, 1, "truncated block at offset");
        }

        /* a packet on an interface never described */
        b = (struct bytes){0};
        b_shb(&b);
        b_idb(&b, 147, -1);
        b_epb_sample(&b, 1, 0, 0);
        assert_refused(&b, 0, "names interface 1, which is not described");

        /* a packet before any interface */
        b = (struct bytes){0};
        b_shb(&b);
        b_epb_sample(&b, 0, 0, 0);
        assert_refused(&b, 0, "names interface 0");

        /* captured length past the block; captured shorter than the original */
        d = (struct bytes){0};
        b_record(&d, 0);
        b = (struct bytes){0};
        b_shb(&b);
        b_idb(&b, 147, -1);
        b_epb(&b, 0, 0, &d);
        {
                size_t epb = b.n - (12 + 20 + (d.n + 3) / 4 * 4);

                b.d[epb + 20] = 0xff; /* caplen's low byte: far more */
                b.d[epb + 21] = 0xff;
                assert_refused(&b, 0, "its data overruns the block");
                b.d[epb + 20] = (uint8_t) d.n;
                b.d[epb + 21] = (uint8_t) (d.n >> 8);
                b.d[epb + 24] += 1; /* origlen */
                assert_refused(&b, 0, "was cut short");
        }

        /* the record: its magic, its version, its size, its counts */
        for (int what = 0; what < 6; what++) {
                static const char *const sentences[] = {
                        "not an ipcbus message record",
                        "record of version 2",
                        "record of version 1, 16 bytes",
                        "record with 17 descriptors",
                        "frame's prefix does not match its length",
                        "frame does not start with the magic",
                };

                d = (struct bytes){0};
                b_record(&d, 0);
                switch (what) {
                case 0:
                        d.d[0] = 'X';
                        break;
                case 1:
                        d.d[4] = 2;
                        break;
                case 2:
                        d.d[5] = 16;
                        break;
                case 3:
                        d.d[6] = 17;
                        break;
                case 4:
                        d.d[32 + 12] = 1; /* body_len one more than there is */
                        d.d[32 + 13] = 0x10;
                        break;
                case 5:
                        d.d[32] = 'X';
                        break;
                }
                b = (struct bytes){0};
                b_shb(&b);
                b_idb(&b, 147, -1);
                b_epb_sample(&b, 0, 0, 1);
                b_epb(&b, 0, 0, &d);
                assert_refused(&b, 1, sentences[what]);
        }

        /* an option running past its block */
        b = (struct bytes){0};
        b_shb(&b);
        {
                struct bytes h = {0};

                b_int(&h, 147, 2);
                b_int(&h, 0, 2);
                b_int(&h, 0, 4);
                b_int(&h, 2, 2);
                b_int(&h, 200, 2); /* if_name of 200 bytes, 4 there */
                b_put(&h, "abcd", 4);
                b_block(&b, 1, &h);
        }
        assert_refused(&b, 0, "option that overruns it");

        /* old packet blocks, which hold no timestamp */
        b = (struct bytes){0};
        b_shb(&b);
        b_idb(&b, 147, -1);
        d = (struct bytes){0};
        b_int(&d, 4, 4);
        b_put(&d, "IPCM", 4);
        b_block(&b, 3, &d);
        assert_refused(&b, 0, "packet block of a kind ipc-monitor does not read (type 3)");
}
END_TEST

/* Damaged at random: whatever comes back, no crash, no overrun (run it under valgrind and ASan). */
START_TEST(test_random_damage)
{
        char *path = tmp_file("full.pcapng"), *bad = tmp_file("bad.pcapng"), err[256];
        uint8_t *data, *copy;
        size_t len, records;
        unsigned seed = 12345;
        int rounds = 1500 / testbus_slow_factor();

        write_samples(path, 1);
        data = slurp(path, &len);
        copy = malloc(len);
        ck_assert_ptr_nonnull(copy);
        for (int round = 0; round < rounds; round++) {
                int flips = 1 + rand_r(&seed) % 4;
                int r;

                memcpy(copy, data, len);
                for (int i = 0; i < flips; i++) {
                        size_t at = (size_t) rand_r(&seed) % len;

                        /* lengths and counts are what hurt: often a byte of 0xff or 0 */
                        copy[at] = (uint8_t) (round % 3 == 0 ? 0xff : round % 3 == 1 ? 0 : rand_r(&seed));
                }
                spit(bad, copy, len);
                r = read_through(bad, &records, err, sizeof(err));
                ck_assert_msg(r == 0 || r == -EBADMSG, "round %d: %d %s", round, r, err);
                ck_assert_uint_le(records, N_SAMPLES);
                if (r != 0)
                        ck_assert_msg(strlen(err) > 0, "round %d: no sentence", round);
        }
        free(copy);
        free(data);
        free(bad);
        free(path);
}
END_TEST

/* tshark on PATH (the test needs it: scripts/deps.sh installs it). */
static char *find_tshark(void)
{
        const char *path = getenv("PATH");
        char *dirs = strdup(path ? path : "/usr/bin:/bin"), *save = NULL, *found = NULL;

        for (char *d = strtok_r(dirs, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
                char *p;

                ck_assert_int_gt(asprintf(&p, "%s/tshark", d), 0);
                if (access(p, X_OK) == 0)
                        found = p;
                else
                        free(p);
        }
        free(dirs);
        ck_assert_msg(found, "tshark is not installed (scripts/deps.sh test installs it): it must read our captures");
        return found;
}

/* The dissector's path in the source tree. */
static char *dissector(void)
{
        const char *src = getenv("IPCBUS_TEST_SRCDIR");
        char *p;

        ck_assert_int_gt(asprintf(&p, "%s/tools/wireshark/ipcbus.lua", src ? src : "."), 0);
        ck_assert_msg(access(p, R_OK) == 0, "no dissector at %s", p);
        return p;
}

/* Assert tshark's stderr says nothing but its warning about running as root. */
static void assert_quiet(const char *err)
{
        for (const char *p = err; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p)) {
                size_t n = strcspn(p, "\n");

                if (n == 0 || memmem(p, n, "Running as user \"root\"", 22))
                        continue;
                ck_abort_msg("tshark said: %.*s", (int) n, p);
        }
}

/* Run tshark with the dissector on path, and the extra arguments; its stdout (malloc'd). */
static char *run_tshark(const char *path, const char *const *extra)
{
        char *tshark = find_tshark(), *script = dissector(), *lua, *out;
        const char *argv[24] = {tshark, "-n", "-X", NULL, "-r", path};
        size_t n = 6;
        struct testbus_proc p;

        ck_assert_int_gt(asprintf(&lua, "lua_script:%s", script), 0);
        argv[3] = lua;
        for (; extra && *extra && n < 23; extra++)
                argv[n++] = *extra;
        argv[n] = NULL;
        ck_assert_int_eq(testbus_run(&p, argv, 6 * TESTBUS_WAIT_MS * testbus_slow_factor()), 0);
        assert_quiet(p.err.buf);
        out = strdup(p.out.buf);
        testbus_proc_deinit(&p);
        free(lua);
        free(script);
        free(tshark);
        return out;
}

START_TEST(test_tshark)
{
        char *path = tmp_file("t.pcapng"), *out, *line, *save = NULL;
        const char *fields[] = {
                "-T", "fields",      "-E", "separator=|",  "-e", "_ws.col.Protocol",  "-e", "_ws.col.Info",
                "-e", "ipcbus.comm", "-e", "ipcbus.n_fds", "-e", "ipcbus.memfd_size", NULL};
        const char *filter[] = {"-Y", "ipcbus.member == \"Add\" || ipcbus.type == \"error\"", NULL};
        size_t i = 0;

        write_samples(path, 2);

        /* one line per message: the protocol, the summary, the record's fields */
        out = run_tshark(path, fields);
        for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save), i++) {
                char want[512], comm[16];

                ck_assert_msg(i < N_SAMPLES, "more lines than messages: %s", line);
                snprintf(comm, sizeof(comm), "%s", samples[i].comm);
                snprintf(want, sizeof(want), "IPCBUS|%s|%s|%u|%u", samples[i].info, comm, samples[i].n_fds,
                         samples[i].memfd_size);
                ck_assert_str_eq(line, want);
        }
        ck_assert_uint_eq(i, N_SAMPLES);
        free(out);

        /* the header's fields filter */
        out = run_tshark(path, filter);
        ck_assert_msg(strstr(out, "org.example.Notes.Add serial=7") && strstr(out, "org.ipcbus.Error.Failed"), "%s",
                      out);
        ck_assert_msg(!strstr(out, "Changed") && !strstr(out, "return"), "%s", out);
        free(out);
        free(path);
}
END_TEST

/* ---- ipc-monitor --capture and --read on a real bus ---------------------------------- */

#define CAPTURED "org.example.Captured"

static const char *ipc_monitor(void)
{
        return testbus_program("IPC_MONITOR", "tools/ipc-monitor");
}

/* Run ipc-monitor with args (NULL-terminated, at most 12); asserts its exit status; p keeps its output. */
static void monitor_run_expect(struct testbus_proc *p, const char *const *args, int status)
{
        const char *argv[16] = {ipc_monitor()};
        size_t n = 1;

        for (; *args; args++) {
                ck_assert_uint_lt(n, 15);
                argv[n++] = *args;
        }
        argv[n] = NULL;
        ck_assert_int_eq(testbus_run(p, argv, 4 * TESTBUS_WAIT_MS * testbus_slow_factor()), status);
}

/* The number of lines of text. */
static size_t count_lines(const char *text)
{
        size_t n = 0;

        for (const char *p = text; (p = strchr(p, '\n')); p++)
                n++;
        return n;
}

/*
 * Calls to a service and an error, captured live while the same monitor
 * prints them as JSON; the capture read back prints the same JSON byte for
 * byte (times, latencies, command names, descriptors all kept); a capture
 * made from it with a rule holds just what the rule takes; tshark reads it
 * with the dissector, one line per message; cut short, what comes before the
 * cut is shown and the cut is reported.
 */
START_TEST(test_live_capture_read_back)
{
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        struct testbus_proc live, p;
        _cleanup_(freep) char *file = tmp_file("live.pcapng"), *errors = tmp_file("errors.pcapng"),
                              *cut = tmp_file("cut.pcapng"), *live_text = NULL;
        _cleanup_(freep) uint8_t *data = NULL;
        const char *live_argv[] = {ipc_monitor(), "--address", tb->address, "--capture", file, "--json", NULL};
        const char *said;
        unsigned long long captured = 0;
        size_t live_len = 0, size;
        FILE *acc = open_memstream(&live_text, &live_len);
        ipcbus_bus *c;
        char *line;

        ck_assert_ptr_nonnull(acc);
        testbus_service_start(tb, &svc, CAPTURED);
        testbus_proc_spawn(&live, live_argv);
        line = testbus_lines_read(&live.err, TESTBUS_WAIT_MS);
        ck_assert_msg(line && strstr(line, "ipc-monitor: watching ") && strstr(line, "captured to "), "%s", line);
        free(line);
        c = testbus_connect(tb);
        for (int i = 0; i < 3; i++)
                json_object_put(testbus_call(c, CAPTURED, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Echo",
                                             "{\"n\":1,\"text\":\"caf\xc3\xa9\"}"));
        free(testbus_call_error(c, CAPTURED, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Fail", "{}",
                                TESTBUS_SERVICE_ERROR));
        /* the error's line is out: everything before it was captured too */
        do {
                line = testbus_proc_read_line(&live, TESTBUS_WAIT_MS);
                ck_assert_msg(line, "the live monitor did not print the error");
                fprintf(acc, "%s\n", line);
                free(line);
        } while (!strstr(live_text ? live_text : "", TESTBUS_SERVICE_ERROR) && fflush(acc) == 0);
        /* the terminal it ran in closed: it still closes the capture, statistics block and all */
        ck_assert_int_eq(kill(live.pid, SIGHUP), 0);
        ck_assert_int_eq(testbus_proc_finish(&live, TESTBUS_WAIT_MS), 0);
        fputs(live.out.buf, acc); /* the lines not read above */
        ck_assert_int_eq(fclose(acc), 0);
        said = strstr(live.err.buf, "messages captured to ");
        ck_assert_msg(said, "stderr: %s", live.err.buf);
        while (said > live.err.buf && said[-1] != '\n')
                said--;
        ck_assert_msg(sscanf(said, "ipc-monitor: %llu messages captured", &captured) == 1, "stderr: %s", live.err.buf);
        ck_assert_uint_ge(captured, 8); /* 4 calls and their answers at least */
        ck_assert_uint_eq(count_lines(live_text), captured);
        testbus_proc_deinit(&live);

        /* read back: the very lines printed live, byte for byte */
        {
                const char *args[] = {"--read", file, "--json", NULL};

                monitor_run_expect(&p, args, 0);
                ck_assert_str_eq(p.out.buf, live_text);
                ck_assert_msg(strstr(p.err.buf, "ipc-monitor: reading ") && strstr(p.err.buf, tb->address) &&
                                      !strstr(p.err.buf, "cut short"),
                              "stderr: %s", p.err.buf);
                testbus_proc_deinit(&p);
        }

        /* a capture of a capture, with a rule: the error alone, still paired with its call */
        {
                const char *args[] = {"--read", file, "--capture", errors, "--quiet", "type=error", NULL};
                const char *again[] = {"--read", errors, NULL};

                monitor_run_expect(&p, args, 0);
                ck_assert_msg(strstr(p.err.buf, " 1 messages captured"), "stderr: %s", p.err.buf);
                ck_assert_str_eq(p.out.buf, "");
                testbus_proc_deinit(&p);
                monitor_run_expect(&p, again, 0);
                ck_assert_uint_eq(count_lines(p.out.buf), 1);
                ck_assert_msg(strncmp(p.out.buf, "error ", 6) == 0 && strstr(p.out.buf, TESTBUS_SERVICE_ERROR), "%s",
                              p.out.buf);
                testbus_proc_deinit(&p);
        }

        /* tshark: one line per message */
        {
                _cleanup_(freep) char *shown = run_tshark(file, NULL);

                ck_assert_uint_eq(count_lines(shown), captured);
                ck_assert_msg(
                        strstr(shown, "-> " CAPTURED " " TESTBUS_SERVICE_PATH " " TESTBUS_SERVICE_INTERFACE ".Echo"),
                        "tshark: %s", shown);
        }

        /* cut short (the statistics block at the end lost): every message, then the cut reported */
        data = slurp(file, &size);
        spit(cut, data, size - 10);
        {
                const char *args[] = {"--read", cut, NULL};

                monitor_run_expect(&p, args, 1);
                ck_assert_uint_eq(count_lines(p.out.buf), captured);
                ck_assert_msg(strstr(p.err.buf, "truncated block at offset"), "stderr: %s", p.err.buf);
                testbus_proc_deinit(&p);
        }
        ipcbus_unref(c);
        testbus_child_finish(&svc);
}
END_TEST

static Suite *capture_suite(void)
{
        Suite *s = suite_create("tools_capture");
        TCase *tc = tcase_create("files");

        tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_roundtrip);
        tcase_add_test(tc, test_stdio);
        tcase_add_test(tc, test_empty);
        tcase_add_test(tc, test_writer_refuses);
        tcase_add_test(tc, test_handmade);
        tcase_add_test(tc, test_truncated);
        tcase_add_test(tc, test_corrupted);
        tcase_add_test(tc, test_random_damage);
        suite_add_tcase(s, tc);

        tc = tcase_create("tshark");
        tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_tshark);
        suite_add_tcase(s, tc);

        tc = testbus_tcase("ipc-monitor");
        tcase_add_checked_fixture(tc, tmpdir_setup, tmpdir_teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_live_capture_read_back);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return check_run(capture_suite());
}
