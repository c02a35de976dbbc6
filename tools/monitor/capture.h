/* SPDX-License-Identifier: MIT */
/*
 * Capture files: ipc-monitor --capture writes the messages it sees to a
 * pcapng file, ipc-monitor --read reads them back. The link-layer format
 * (one packet per message: a small record of what the frame does not say,
 * then the frame) is described in man/ipc-monitor.1, "CAPTURE FORMAT", and
 * dissected by tools/wireshark/ipcbus.lua.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* One captured message. */
struct capture_record {
        struct timespec ts;   /* CLOCK_REALTIME of receipt */
        const uint8_t *frame; /* the whole frame (PROTOCOL.md 2), body inline, n_fds 0 in its prefix */
        size_t frame_len;
        unsigned n_fds;      /* descriptors the message carried (not captured) */
        uint32_t memfd_size; /* its body came in a sealed memfd of this many bytes; 0: in the frame */
        const char *comm;    /* the sender's command name, "" when unknown */
};

struct capture;

/*
 * Create (truncate) path, "-" for stdout, and write the file's header blocks.
 * Returns 0, or a negative errno with a sentence in err (err_size bytes):
 * -ENOTTY for "-" when stdout is a terminal.
 */
int capture_open_write(const char *path, struct capture **ret, char *err, size_t err_size);
/*
 * Append one record. Returns 0, -EINVAL for a record a reader would refuse
 * (a frame whose prefix does not match its length or announces descriptors,
 * more than 16 descriptors, a memfd over the body limit: nothing written), or
 * a negative errno (the file is then unusable).
 */
int capture_write(struct capture *c, const struct capture_record *rec);
/* Count copies the bus dropped before they reached the monitor (MessagesLost): written as the interface's drop count at close. */
void capture_add_lost(struct capture *c, uint64_t n);
/*
 * Name the capture's interface (if_name: the bus address watched), before
 * the first capture_write. Returns 0, -EBUSY once a record was written,
 * -EINVAL for a name over 4096 bytes, or -ENOMEM.
 */
int capture_set_interface(struct capture *c, const char *name);
/*
 * Hand what is buffered to the kernel (a monitor idle between messages calls
 * it, so that a capture killed then loses nothing). Returns 0 or the first
 * write error.
 */
int capture_flush(struct capture *c);

/*
 * Open path, "-" for stdin, for reading. Returns 0, or a negative errno or
 * -EBADMSG (not a capture of ours) with a sentence in err.
 */
int capture_open_read(const char *path, struct capture **ret, char *err, size_t err_size);
/*
 * Read the next record: 1 with *ret (its pointers valid until the next call
 * or capture_close; comm at most 16 bytes, control characters in it shown
 * as '?'), 0 at the end, or -EBADMSG (a damaged or truncated file)
 * / a negative errno with a sentence in err; after a failure, -EBADMSG again.
 */
int capture_read(struct capture *c, struct capture_record *ret, char *err, size_t err_size);
/*
 * For a reader: the counts of the last statistics block read (the writer's
 * close), packets written and copies lost. Returns 0, or -ENODATA when none
 * was read (yet: it is the file's last block; or the writer never closed it).
 */
int capture_read_stats(struct capture *c, uint64_t *ret_packets, uint64_t *ret_lost);
/*
 * For a reader: the first interface name the file gives (ipc-monitor's: the
 * bus address), known once capture_read has returned the first record; NULL
 * when none was read.
 */
const char *capture_interface(struct capture *c);

/*
 * Flush and close; for a writer, writes the statistics block (packets
 * written, copies lost). Returns 0 or the first write error. Accepts NULL.
 */
int capture_close(struct capture *c);
