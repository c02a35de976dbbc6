/* SPDX-License-Identifier: MIT */
/*
 * The floors: a 64-byte ping-pong over a Unix socket pair, directly and
 * through a forwarding process, without a broker (raw_pingpong,
 * raw_relay_pingpong), and the latter with call_rtt_64k's payload
 * (raw_relay_64k): what no broker on this machine can beat.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tools/bench/bench.h"

/* Read exactly n bytes. Returns n, 0 on EOF at the start, or negative errno. */
static ssize_t read_full(int fd, void *buf, size_t n)
{
        size_t done = 0;

        while (done < n) {
                ssize_t k = read(fd, (char *) buf + done, n - done);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return done == 0 ? 0 : -EPIPE;
                done += (size_t) k;
        }
        return (ssize_t) n;
}

static int write_full(int fd, const void *buf, size_t n)
{
        size_t done = 0;

        while (done < n) {
                ssize_t k = send(fd, (const char *) buf + done, n - done, MSG_NOSIGNAL);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                done += (size_t) k;
        }
        return 0;
}

/* What a raw scenario's children share: the counts and the payload of each message. */
struct raw_arg {
        uint64_t warmup;
        uint64_t count;
        size_t payload;
};

/* Raw echo (EXTRA_FD): send back every message of a->payload bytes until EOF. */
static int raw_echo_main(const struct bench *b, void *arg)
{
        const struct raw_arg *a = arg;
        char *buf = malloc(a->payload);
        int r = -ENOMEM;

        while (buf) {
                ssize_t n = read_full(EXTRA_FD, buf, a->payload);

                if (n <= 0) {
                        r = (int) n;
                        break;
                }
                if (write_full(EXTRA_FD, buf, a->payload) < 0) {
                        r = -1;
                        break;
                }
        }
        free(buf);
        return r;
}

/* Raw relay between EXTRA_FD and EXTRA_FD + 1: read, write, nothing else. */
static int raw_relay_main(const struct bench *b, void *arg)
{
        struct pollfd p[2] = {{.fd = EXTRA_FD, .events = POLLIN}, {.fd = EXTRA_FD + 1, .events = POLLIN}};
        char buf[64 * 1024];

        for (;;) {
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                for (int i = 0; i < 2; i++) {
                        ssize_t n;

                        if (!p[i].revents)
                                continue;
                        n = read(p[i].fd, buf, sizeof(buf));
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0) {
                                /* one side closed: pass the EOF on */
                                shutdown(p[1 - i].fd, SHUT_WR);
                                return n < 0 ? -errno : 0;
                        }
                        if (write_full(p[1 - i].fd, buf, (size_t) n) < 0)
                                return -1;
                }
        }
}

/* Raw client (EXTRA_FD): timed round trips of a->payload bytes; reports latencies. */
static int raw_client_main(const struct bench *b, void *arg)
{
        const struct raw_arg *a = arg;
        struct report rep = {};
        struct samples s = {};
        char *out = malloc(a->payload), *in = malloc(a->payload);
        int r;

        if (!out || !in) {
                free(out);
                free(in);
                return -ENOMEM;
        }
        memset(out, 'p', a->payload);
        r = samples_init(&s, a->count);
        for (uint64_t i = 0; r == 0 && i < a->warmup + a->count; i++) {
                uint64_t t0 = clock_now_nsec(CLOCK_MONOTONIC);

                if (i == a->warmup)
                        rep.t_start = t0;
                r = write_full(EXTRA_FD, out, a->payload);
                if (r == 0 && read_full(EXTRA_FD, in, a->payload) != (ssize_t) a->payload)
                        r = -EPIPE;
                if (r < 0)
                        break;
                if (i >= a->warmup) {
                        s.v[s.n++] = clock_now_nsec(CLOCK_MONOTONIC) - t0;
                        rep.count++;
                        if (memcmp(in, out, a->payload) != 0)
                                rep.failed++;
                }
        }
        rep.t_end = clock_now_nsec(CLOCK_MONOTONIC);
        rep.error = r;
        rep.lost = a->count - rep.count;
        samples_finish(&s, &rep);
        report_send(&rep, REPORT_DONE);
        free(out);
        free(in);
        return r;
}

/* raw_pingpong, raw_relay_pingpong and raw_relay_64k (a: its counts and payload). */
static int run_raw(const struct bench *b, const char *name, bool relay, struct raw_arg a)
{
        struct child echo = CHILD_NULL, mid = CHILD_NULL, client = CHILD_NULL;
        int client_sp[2] = {-1, -1}, echo_sp[2] = {-1, -1};
        struct report rep = {};
        int r, bad = 0;

        r = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, client_sp);
        if (r == 0 && relay)
                r = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, echo_sp);
        if (r < 0) {
                r = -errno;
        } else if (relay) {
                int mid_fds[2] = {client_sp[1], echo_sp[0]};

                r = child_spawn(&echo, b, raw_echo_main, &a, &echo_sp[1], 1);
                if (r >= 0)
                        r = child_spawn(&mid, b, raw_relay_main, NULL, mid_fds, 2);
        } else {
                r = child_spawn(&echo, b, raw_echo_main, &a, &client_sp[1], 1);
        }
        if (r >= 0)
                r = child_spawn(&client, b, raw_client_main, &a, &client_sp[0], 1);
        for (int i = 0; i < 2; i++) {
                if (client_sp[i] >= 0)
                        close(client_sp[i]);
                if (echo_sp[i] >= 0)
                        close(echo_sp[i]);
        }
        if (r < 0) {
                fprintf(stderr, "ipc-bench: %s: %s\n", name, strerror(-r));
                rep.failed = a.count;
                bad = 1;
        } else {
                bad = client_result(name, &client, a.count, &rep);
        }
        child_reap(&client);
        child_reap(&mid);
        child_reap(&echo);
        return result_print(name, bench_us(rep.p50_ns), "us", rep.lost, rep.failed,
                            " p99_us=%.2f round_trips_per_s=%.0f count=%" PRIu64 " payload_bytes=%zu mbs_both_ways=%.0f",
                            bench_us(rep.p99_ns), bench_rate(rep.count, rep.t_start, rep.t_end), rep.count, a.payload,
                            rep.p50_ns ? 2.0 * (double) a.payload * 1e3 / (double) rep.p50_ns : 0.0) |
               bad;
}

int scenario_raw_pingpong(const struct bench *b, const char *name)
{
        return run_raw(b, name, false,
                       (struct raw_arg){bench_scaled(b, 1000), bench_scaled(b, 100000), SMALL_PAYLOAD});
}

int scenario_raw_relay_pingpong(const struct bench *b, const char *name)
{
        return run_raw(b, name, true, (struct raw_arg){bench_scaled(b, 1000), bench_scaled(b, 100000), SMALL_PAYLOAD});
}

/* call_rtt_64k's payload and counts (or --payload's) through the relay: that scenario's floor. */
int scenario_raw_relay_64k(const struct bench *b, const char *name)
{
        return run_raw(b, name, true,
                       (struct raw_arg){bench_scaled(b, 100), bench_scaled(b, 5000), b->payload ? b->payload : 65536});
}
