/* SPDX-License-Identifier: MIT */
/* testbus: raw sockets and frames, for what libipcbus would never send. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tests/lib/broker.h"

/* A frame as received: header and body text (NUL-terminated) and parsed. */
struct testbus_frame {
        char *header;
        size_t header_len;
        char *body; /* NULL when body_len is 0 */
        size_t body_len;
        json_object *h;
        json_object *b; /* NULL when no body */
};

/* Connect a socket to the bus without saying Hello. */
int testbus_raw_connect(struct testbus *tb);
/* The same as another user (see testbus_connect_as). */
int testbus_raw_connect_as(struct testbus *tb, const struct testbus_cred *cred);
/* Write all bytes; returns 0 or -errno (no SIGPIPE). */
int testbus_raw_write(int fd, const void *data, size_t len);
/* Write all bytes, asserting success. */
void testbus_raw_send(int fd, const void *data, size_t len);
/* The 16-byte prefix, built by hand as PROTOCOL.md section 2 lays it out. */
void testbus_raw_prefix(uint8_t out[16], uint32_t header_len, uint32_t body_len, uint16_t n_fds);
/* Send one frame: header text and body text (NULL: no body). */
void testbus_raw_send_frame(int fd, const char *header, const char *body);
/* The same with n descriptors (SCM_RIGHTS on the first byte, announced in the prefix); 0 or -errno. */
int testbus_raw_send_frame_fds(int fd, const char *header, const char *body, const int *fds, unsigned n);
/* The same with a prefix that announces `announce` descriptors, however many are sent (n <= 64).
 * Uses no Check assertion: forked children (testbus_peer_*) may call it. */
int testbus_raw_send_frame_announcing(int fd, const char *header, const char *body, uint16_t announce, const int *fds,
                                      unsigned n);
/* Receive one frame: 1, 0 at EOF, -ETIMEDOUT, or another -errno (e.g. -ECONNRESET). */
int testbus_raw_recv(int fd, int timeout_ms, struct testbus_frame *ret);
void testbus_frame_deinit(struct testbus_frame *f);
/* Header fields of a received frame: NULL / -1 when absent. */
const char *testbus_frame_string(struct testbus_frame *f, const char *field);
int64_t testbus_frame_int(struct testbus_frame *f, const char *field);
/* Say Hello (serial 1) and return the unique name (malloc'd). Signals after it are left unread. */
char *testbus_raw_hello(int fd);
/*
 * Read frames, skipping signals, until a return or error comes; assert it
 * answers reply_serial (0: it must have no reply_serial) and is an error with
 * error_name (NULL: a return). Fills ret if not NULL.
 */
void testbus_raw_expect_reply(int fd, uint32_t reply_serial, const char *error_name, struct testbus_frame *ret);
/* Assert the broker closes the connection (EOF or reset) soon; signals before it are skipped. */
void testbus_raw_expect_eof(int fd);
/* Ping the driver with `serial` and expect its return: proves the connection still works. */
void testbus_raw_ping(int fd, uint32_t serial);
/*
 * The broker refuses or ends the connection: one error error_name without
 * reply_serial comes (signals before it are skipped), then EOF. Returns the
 * error's message (malloc'd; the test fails when it has none).
 */
char *testbus_raw_expect_refused(int fd, const char *error_name);
/* Does text mention `word` as a whole word ("max_connections" is not in "max_connections_per_uid")? */
bool testbus_text_names(const char *text, const char *word);
