/* SPDX-License-Identifier: MIT */
/*
 * What a client costs the broker on the receiving side (daemon/CONFIG.md,
 * "Accounting"), attacked by another user (uid 65534) of a real ipcbusd:
 * descriptors in flight (per connection, per uid, and the broker's reserve
 * below RLIMIT_NOFILE, so accept() keeps working and a shortage of its own
 * is never blamed on a client), and bytes of incoming partial frames (a
 * per-uid cap, a small bound before Hello, buffers that grow with what
 * arrived, and the stall timeout for a frame that does not come whole).
 * Each attack checks the broker's bound (descriptors, RSS, VmSize) and a
 * bystander of another uid (root), whose calls keep being answered within
 * a second. Each prints a FIGURE line with what it measured.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/testbus.h"

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

static const struct testbus_cred nobody = {.uid = 65534, .gid = 65534};

/* ---- what the tests measure ------------------------------------------------------------------------------------ */

/* A bystander of another uid (the test's, root) whose driver calls are timed. */
struct bystander {
        ipcbus_bus *bus;
        int64_t worst_ms;
        unsigned calls;
};

static void bystander_call(struct bystander *b)
{
        int64_t t = testbus_now_ms(), took;

        json_object_put(testbus_driver(b->bus, "Ping", NULL));
        took = testbus_now_ms() - t;
        if (took > b->worst_ms)
                b->worst_ms = took;
        b->calls++;
}

static void bystander_check(const struct bystander *b)
{
        ck_assert_msg(b->worst_ms < 1000 * testbus_slow_factor(), "a bystander's call took %lld ms",
                      (long long) b->worst_ms);
}

/* Whether the broker has closed fd (EOF or reset), reading and dropping what it sent meanwhile. */
static bool closed_by_broker(int fd, int timeout_ms)
{
        int64_t deadline = testbus_now_ms() + timeout_ms;
        char buf[65536];

        for (;;) {
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                int64_t left = deadline - testbus_now_ms();
                ssize_t n;

                if (poll(&pfd, 1, left > 0 ? (int) left : 0) <= 0)
                        return false;
                n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n == 0 || (n < 0 && errno == ECONNRESET))
                        return true;
                if (n < 0 && errno != EAGAIN && errno != EINTR)
                        return true;
        }
}

/* The broker's log must never blame a client for the broker's own shortage. */
static void expect_nobody_blamed(struct testbus *tb)
{
        ck_assert_msg(!testbus_log_wait(tb, "too many file descriptors", 0),
                      "a client was blamed for the broker's shortage:\n%s", testbus_log_tail(tb));
}

/* ---- descriptors in flight ------------------------------------------------------------------------------------- */

#define FDS_PER_CONNECTION 64
#define FDS_PER_UID 256
#define N_ATTACKERS 8
#define FLOOD_ROUNDS 150

struct flood {
        int victim; /* the attacker's own connection, which never reads */
        char *victim_name;
        int attackers[N_ATTACKERS];
        uint32_t serial;
        unsigned peak_fds;
        unsigned limits_exceeded; /* LimitsExceeded answers */
        unsigned other_errors;    /* any other error (the attacker blamed, e.g. ProtocolError) */
        char last_error[512];
        char other_error[512];
};

static void flood_open(struct testbus *tb, struct flood *fl)
{
        *fl = (struct flood){.serial = 1};
        fl->victim = testbus_raw_connect_as(tb, &nobody);
        fl->victim_name = testbus_raw_hello(fl->victim);
        for (int i = 0; i < N_ATTACKERS; i++) {
                fl->attackers[i] = testbus_raw_connect_as(tb, &nobody);
                free(testbus_raw_hello(fl->attackers[i]));
        }
}

static void flood_close(struct flood *fl)
{
        close(fl->victim);
        free(fl->victim_name);
        for (int i = 0; i < N_ATTACKERS; i++)
                close(fl->attackers[i]);
}

/* Read what came back to an attacker: errors should all be LimitsExceeded (flood_check). */
static void flood_collect(struct flood *fl, int fd, int timeout_ms)
{
        struct testbus_frame f;

        while (testbus_raw_recv(fd, timeout_ms, &f) == 1) {
                const char *type = testbus_frame_string(&f, "type");

                if (strcmp(type, "error") == 0) {
                        json_object *v = NULL;

                        if (strcmp(testbus_frame_string(&f, "error"), IPCBUS_ERROR_LIMITS_EXCEEDED) != 0) {
                                if (!fl->other_errors++)
                                        snprintf(fl->other_error, sizeof(fl->other_error), "%s %s", f.header,
                                                 f.body ? f.body : "");
                        } else {
                                if (f.b && json_object_object_get_ex(f.b, "message", &v))
                                        snprintf(fl->last_error, sizeof(fl->last_error), "%s",
                                                 json_object_get_string(v));
                                fl->limits_exceeded++;
                        }
                }
                testbus_frame_deinit(&f);
        }
}

/* The attackers were told LimitsExceeded, nothing else, and are still connected. */
static void flood_check(struct flood *fl)
{
        ck_assert_msg(fl->other_errors == 0, "%u attacker messages got another error, such as %s", fl->other_errors,
                      fl->other_error);
        ck_assert_msg(fl->limits_exceeded > 0, "the attackers were never told LimitsExceeded");
        for (int i = 0; i < N_ATTACKERS; i++)
                testbus_raw_ping(fl->attackers[i], 1000000 + (uint32_t) i);
}

/* Every attacker sends `rounds` unicast signals with 16 descriptors each to the victim. */
static void flood_run(struct testbus *tb, struct flood *fl, struct bystander *by, unsigned rounds)
{
        int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        int fds[16];
        char header[512];

        ck_assert_int_ge(null_fd, 0);
        for (int i = 0; i < 16; i++)
                fds[i] = null_fd;
        for (unsigned round = 0; round < rounds; round++) {
                for (int i = 0; i < N_ATTACKERS; i++) {
                        snprintf(header, sizeof(header),
                                 "{\"type\":\"signal\",\"serial\":%u,\"destination\":\"%s\",\"path\":\"/a\","
                                 "\"interface\":\"org.example.A\",\"member\":\"Fds\"}",
                                 ++fl->serial, fl->victim_name);
                        ck_assert_int_eq(testbus_raw_send_frame_fds(fl->attackers[i], header, NULL, fds, 16), 0);
                }
                if (round % 10 == 9) {
                        unsigned n;

                        bystander_call(by);
                        n = testbus_fd_count(tb);
                        if (n > fl->peak_fds)
                                fl->peak_fds = n;
                        for (int i = 0; i < N_ATTACKERS; i++)
                                flood_collect(fl, fl->attackers[i], 0);
                }
        }
        close(null_fd);
        bystander_call(by);
        for (int i = 0; i < N_ATTACKERS; i++)
                flood_collect(fl, fl->attackers[i], 300 * testbus_slow_factor());
        if (testbus_fd_count(tb) > fl->peak_fds)
                fl->peak_fds = testbus_fd_count(tb);
}

/*
 * A well-behaved client of another uid sends one descriptor to another
 * while the attack holds what it can: it is delivered, or (when the broker
 * itself is short) answered with LimitsExceeded; either way within a second
 * and the sender stays connected. Returns how long it took (ms).
 */
static int64_t bystander_send_fd(struct testbus *tb, bool may_be_refused)
{
        int rx = testbus_raw_connect(tb), tx = testbus_raw_connect(tb);
        char *rx_name = testbus_raw_hello(rx);
        int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        char header[512];
        struct testbus_frame f;
        int64_t t0, took;
        bool delivered = false;

        free(testbus_raw_hello(tx));
        snprintf(header, sizeof(header),
                 "{\"type\":\"signal\",\"serial\":7,\"destination\":\"%s\",\"path\":\"/b\","
                 "\"interface\":\"org.example.B\",\"member\":\"OneFd\"}",
                 rx_name);
        t0 = testbus_now_ms();
        ck_assert_int_eq(testbus_raw_send_frame_fds(tx, header, NULL, &null_fd, 1), 0);
        while (!delivered) {
                int r = testbus_raw_recv(rx, 1000 * testbus_slow_factor(), &f);

                if (r != 1)
                        break;
                delivered = strcmp(testbus_frame_string(&f, "member"), "OneFd") == 0;
                testbus_frame_deinit(&f);
        }
        took = testbus_now_ms() - t0;
        if (!delivered) {
                ck_assert_msg(may_be_refused, "the bystander's descriptor was not delivered within %lld ms",
                              (long long) took);
                testbus_raw_expect_reply(tx, 7, IPCBUS_ERROR_LIMITS_EXCEEDED, &f);
                testbus_frame_deinit(&f);
                took = testbus_now_ms() - t0;
        }
        ck_assert_msg(took < 1000 * testbus_slow_factor(), "the bystander's descriptor took %lld ms", (long long) took);
        testbus_raw_ping(tx, 8); /* still connected */
        close(null_fd);
        close(rx);
        close(tx);
        free(rx_name);
        return took;
}

/* New clients can connect and say Hello. */
static void new_clients_welcome(struct testbus *tb, int n)
{
        for (int i = 0; i < n; i++) {
                int fd = testbus_raw_connect(tb);

                free(testbus_raw_hello(fd));
                close(fd);
        }
}

#define FDS_CONFIG "{\"limits\":{\"max_fds_in_flight_per_connection\":64,\"max_fds_in_flight_per_uid\":256}}"

START_TEST(test_fds_flood)
{
        struct testbus *tb = testbus_current();
        struct bystander by = {.bus = testbus_connect(tb)};
        struct flood fl;
        unsigned base_fds, bound;
        int64_t fd_ms;

        bystander_call(&by);
        base_fds = testbus_fd_count(tb);
        flood_open(tb, &fl);
        flood_run(tb, &fl, &by, FLOOD_ROUNDS);
        /* The broker's descriptors: its own, the connections', and what the uid may hold. */
        bound = base_fds + 1 + N_ATTACKERS + 4 + FDS_PER_UID + 32;
        fprintf(stderr, "FIGURE item=1 case=flood fds=%u fd_bound=%u limits_exceeded=%u bystander_worst_ms=%lld\n",
                fl.peak_fds, bound, fl.limits_exceeded, (long long) by.worst_ms);

        flood_check(&fl);
        ck_assert_msg(testbus_text_names(fl.last_error, "max_fds_in_flight_per_uid") ||
                              testbus_text_names(fl.last_error, "max_fds_in_flight_per_connection"),
                      "the error does not name the limit: %s", fl.last_error);
        ck_assert_msg(fl.peak_fds <= bound, "the broker held %u descriptors, more than the %u its limits allow",
                      fl.peak_fds, bound);
        new_clients_welcome(tb, 5);
        fd_ms = bystander_send_fd(tb, false);
        bystander_call(&by);
        bystander_check(&by);
        expect_nobody_blamed(tb);
        fprintf(stderr, "FIGURE item=1 case=flood_then bystander_fd_ms=%lld bystander_worst_ms=%lld\n",
                (long long) fd_ms, (long long) by.worst_ms);
        flood_close(&fl);
        ipcbus_unref(by.bus);
}
END_TEST

#define LOW_NOFILE 192
#define HELLO_HEADER                                                                                                   \
        "{\"type\":\"call\",\"serial\":1,\"destination\":\"org.ipcbus.Bus\",\"path\":\"/org/ipcbus/"                   \
        "Bus\",\"member\":\"Hello\"}"

/*
 * The broker under a small RLIMIT_NOFILE (set with prlimit, as an operator
 * can at any time; under valgrind, which keeps its own copy of the limit,
 * this test is left out): its reserve stops the
 * flood, not the descriptor table's end, so accept() keeps working. Then
 * the table is made full behind its back (prlimit): a new client is turned
 * away with a clear error, and a client whose descriptor the broker cannot
 * take hears LimitsExceeded and stays connected, not a protocol error.
 */
START_TEST(test_fds_low_nofile)
{
        struct testbus *tb = testbus_current();
        struct rlimit low = {LOW_NOFILE, LOW_NOFILE};
        struct bystander by;
        struct flood fl;
        int64_t fd_ms;
        int refused = 0, welcomed = 0;
        int kept[64];
        size_t n_kept = 0;
        struct rlimit full;
        struct testbus_frame f;
        uint8_t hello[16 + sizeof(HELLO_HEADER) - 1];
        int client, null_fd;

        ck_assert_int_eq(prlimit(tb->pid, RLIMIT_NOFILE, &low, NULL), 0);

        by.bus = testbus_connect(tb);
        by.worst_ms = 0;
        by.calls = 0;
        flood_open(tb, &fl);
        flood_run(tb, &fl, &by, 40);
        fprintf(stderr,
                "FIGURE item=1 case=low_nofile nofile=%d fds=%u limits_exceeded=%u other_errors=%u "
                "bystander_worst_ms=%lld\n",
                LOW_NOFILE, fl.peak_fds, fl.limits_exceeded, fl.other_errors, (long long) by.worst_ms);
        flood_check(&fl);
        new_clients_welcome(tb, 5);
        fd_ms = bystander_send_fd(tb, true);
        bystander_call(&by);
        bystander_check(&by);
        expect_nobody_blamed(tb);

        testbus_raw_prefix(hello, sizeof(HELLO_HEADER) - 1, 0, 0);
        memcpy(hello + 16, HELLO_HEADER, sizeof(HELLO_HEADER) - 1);

        /* No descriptor left at all. */
        client = testbus_raw_connect(tb);
        free(testbus_raw_hello(client));
        full.rlim_cur = testbus_fd_count(tb);
        full.rlim_max = LOW_NOFILE;
        ck_assert_int_eq(prlimit(tb->pid, RLIMIT_NOFILE, &full, NULL), 0);
        /* Holes in the table may still take a few (kept open, so they stay
         * filled); then comes the refusal. */
        for (int i = 0; i < (int) ELEMENTSOF(kept) && refused == 0; i++) {
                int fd = testbus_raw_connect(tb);
                int r;

                /* (a refused client may find the door closed before it speaks) */
                (void) testbus_raw_write(fd, hello, sizeof(hello));
                r = testbus_raw_recv(fd, 1000, &f);
                ck_assert_msg(r == 1, "a new client got no answer while the broker is out of descriptors");
                if (strcmp(testbus_frame_string(&f, "type"), "error") == 0) {
                        ck_assert_str_eq(testbus_frame_string(&f, "error"), IPCBUS_ERROR_LIMITS_EXCEEDED);
                        refused++;
                } else {
                        welcomed++;
                }
                testbus_frame_deinit(&f);
                kept[n_kept++] = fd;
        }
        ck_assert_msg(refused == 1, "no new client was refused with the table full");
        testbus_log_expect(tb, "out of file descriptors");

        /* A descriptor the kernel cannot pass (EMFILE: MSG_CTRUNC) is not the client's fault. */
        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        ck_assert_int_eq(testbus_raw_send_frame_fds(client,
                                                    "{\"type\":\"call\",\"serial\":5,\"destination\":"
                                                    "\"org.ipcbus.Bus\",\"path\":\"/org/ipcbus/Bus\","
                                                    "\"member\":\"Ping\"}",
                                                    NULL, &null_fd, 1),
                         0);
        close(null_fd);
        testbus_raw_expect_reply(client, 5, IPCBUS_ERROR_LIMITS_EXCEEDED, &f);
        testbus_frame_deinit(&f);
        testbus_raw_ping(client, 6);
        expect_nobody_blamed(tb);
        close(client);
        while (n_kept > 0)
                close(kept[--n_kept]);
        full = (struct rlimit){LOW_NOFILE, LOW_NOFILE};
        ck_assert_int_eq(prlimit(tb->pid, RLIMIT_NOFILE, &full, NULL), 0);
        fprintf(stderr, "FIGURE item=1 case=low_nofile_then bystander_fd_ms=%lld refused_when_full=%d welcomed=%d\n",
                (long long) fd_ms, refused, welcomed);
        flood_close(&fl);
        ipcbus_unref(by.bus);
}
END_TEST

/* ---- incoming partial frames ----------------------------------------------------------------------------------- */

#define BODY_MAX (4u * 1024u * 1024u)
#define INCOMING_PER_UID (10u * 1024u * 1024u)
#define N_PARTIAL 8
#define RSS_MARGIN_KB (6 * 1024)

static void start_incoming(struct testbus *tb, unsigned stall_ms)
{
        char config[512];

        snprintf(config, sizeof(config),
                 "{\"limits\":{\"max_frame_bytes\":%u,\"max_body_bytes\":%u,\"max_incoming_bytes_per_uid\":%u,"
                 "\"stall_timeout_ms\":%u}}",
                 BODY_MAX + 65536, BODY_MAX, INCOMING_PER_UID, stall_ms);
        testbus_start_config(tb, config);
}

/* Send a frame of about BODY_MAX bytes but its last byte; false when the broker closed the connection first. */
static bool send_all_but_last(int fd)
{
        static const char header[] =
                "{\"type\":\"signal\",\"serial\":2,\"path\":\"/a\",\"interface\":\"org.example.A\","
                "\"member\":\"Big\"}";
        size_t body_len = BODY_MAX - 1024;
        char *body = malloc(body_len);
        uint8_t prefix[16];
        bool ok;

        ck_assert_ptr_nonnull(body);
        memset(body, ' ', body_len);
        body[0] = '{';
        body[body_len - 1] = '}';
        testbus_raw_prefix(prefix, sizeof(header) - 1, (uint32_t) body_len, 0);
        ok = testbus_raw_write(fd, prefix, sizeof(prefix)) == 0 &&
             testbus_raw_write(fd, header, sizeof(header) - 1) == 0 && testbus_raw_write(fd, body, body_len - 1) == 0;
        free(body);
        return ok;
}

static void partial_frames(bool hello)
{
        struct testbus *tb = testbus_current();
        int slow = testbus_slow_factor();
        unsigned stall_ms = 3000 * (unsigned) slow;
        struct bystander by;
        int fds[N_PARTIAL];
        long idle_kb, peak_kb, kb;
        bool gone[N_PARTIAL] = {false};
        int closed_early = 0, closed = 0;
        int64_t t0;

        start_incoming(tb, stall_ms);
        by = (struct bystander){.bus = testbus_connect(tb)};
        bystander_call(&by);
        idle_kb = peak_kb = testbus_rss_kb(tb);
        t0 = testbus_now_ms();
        for (int i = 0; i < N_PARTIAL; i++) {
                fds[i] = testbus_raw_connect_as(tb, &nobody);
                if (hello)
                        free(testbus_raw_hello(fds[i]));
                send_all_but_last(fds[i]);
                bystander_call(&by);
                kb = testbus_rss_kb(tb);
                if (kb > peak_kb)
                        peak_kb = kb;
        }
        for (int i = 0; i < N_PARTIAL; i++) {
                gone[i] = closed_by_broker(fds[i], 100);
                closed_early += gone[i];
        }
        bystander_call(&by);
        kb = testbus_rss_kb(tb);
        if (kb > peak_kb)
                peak_kb = kb;

        fprintf(stderr,
                "FIGURE item=2 case=partial_%s connections=%d idle_rss_kb=%ld peak_rss_kb=%ld closed_at_once=%d "
                "bystander_worst_ms=%lld\n",
                hello ? "after_hello" : "before_hello", N_PARTIAL, idle_kb, peak_kb, closed_early,
                (long long) by.worst_ms);
        /* Within the uid's cap (before Hello: within the small pre-Hello bound). */
        ck_assert_msg(slow > 1 || !testbus_memory_bounds_apply("partial frames") ||
                              peak_kb - idle_kb <= (long) (hello ? INCOMING_PER_UID / 1024 : 0) + RSS_MARGIN_KB,
                      "the broker grew from %ld kB to %ld kB holding partial frames", idle_kb, peak_kb);
        ck_assert_msg(closed_early >= (hello ? N_PARTIAL - (int) (INCOMING_PER_UID / BODY_MAX) : N_PARTIAL),
                      "only %d of %d offenders were disconnected at once", closed_early, N_PARTIAL);
        if (hello)
                testbus_log_expect(tb, "max_incoming_bytes_per_uid");
        else
                testbus_log_expect(tb, "before Hello");

        /* The rest go when their frames stall. */
        for (int i = 0; i < N_PARTIAL; i++) {
                if (!gone[i])
                        closed += closed_by_broker(fds[i], (int) (stall_ms + 2000 * (unsigned) slow));
                bystander_call(&by);
                close(fds[i]);
        }
        fprintf(stderr, "FIGURE item=2 case=partial_%s_then all_closed_ms=%lld bystander_worst_ms=%lld\n",
                hello ? "after_hello" : "before_hello", (long long) (testbus_now_ms() - t0), (long long) by.worst_ms);
        ck_assert_int_eq(closed, N_PARTIAL - closed_early);
        bystander_check(&by);
        ipcbus_unref(by.bus);
}

START_TEST(test_partial_frames_after_hello)
{
        partial_frames(true);
}
END_TEST

START_TEST(test_partial_frames_before_hello)
{
        partial_frames(false);
}
END_TEST

/* A byte a while: closed stall_timeout_ms after the frame's first byte, before and after Hello. */
START_TEST(test_trickle)
{
        struct testbus *tb = testbus_current();
        int slow = testbus_slow_factor();
        unsigned stall_ms = 1000 * (unsigned) slow;
        struct bystander by;
        int fds[2];
        int64_t t0, closed_at[2] = {-1, -1};
        uint8_t frame[16 + 64];

        start_incoming(tb, stall_ms);
        by = (struct bystander){.bus = testbus_connect(tb)};
        fds[0] = testbus_raw_connect_as(tb, &nobody);
        free(testbus_raw_hello(fds[0]));
        fds[1] = testbus_raw_connect_as(tb, &nobody); /* no Hello */
        testbus_raw_prefix(frame, 64, 0, 0);
        memset(frame + 16, ' ', 64);
        frame[16] = '{';
        frame[16 + 63] = '}';

        t0 = testbus_now_ms();
        for (size_t off = 0; off < sizeof(frame) && (closed_at[0] < 0 || closed_at[1] < 0); off++) {
                for (int i = 0; i < 2; i++) {
                        if (closed_at[i] >= 0)
                                continue;
                        if (testbus_raw_write(fds[i], frame + off, 1) < 0 || closed_by_broker(fds[i], 0))
                                closed_at[i] = testbus_now_ms() - t0;
                }
                bystander_call(&by);
                usleep(200 * 1000);
                if (testbus_now_ms() - t0 > stall_ms + 3000 * slow)
                        break;
        }
        fprintf(stderr,
                "FIGURE item=2 case=trickle stall_timeout_ms=%u closed_after_hello_ms=%lld closed_before_hello_ms=%lld "
                "bystander_worst_ms=%lld\n",
                stall_ms, (long long) closed_at[0], (long long) closed_at[1], (long long) by.worst_ms);
        for (int i = 0; i < 2; i++) {
                ck_assert_msg(closed_at[i] >= 0, "a trickler (%s Hello) was never closed", i ? "before" : "after");
                ck_assert_msg(closed_at[i] >= stall_ms - 250, "a trickler was closed after %lld ms, before the %u ms",
                              (long long) closed_at[i], stall_ms);
                close(fds[i]);
        }
        testbus_log_expect(tb, "stalled: an incoming frame");
        bystander_check(&by);
        ipcbus_unref(by.bus);
}
END_TEST

#define N_ANNOUNCE 50

/* Prefixes that announce 64 MiB bodies make the broker reserve nothing for them. */
START_TEST(test_announce_huge)
{
        struct testbus *tb = testbus_current();
        struct bystander by = {.bus = testbus_connect(tb)};
        int fds[N_ANNOUNCE];
        long idle_kb, kb;
        uint8_t prefix[16];

        bystander_call(&by);
        idle_kb = testbus_status_kb(tb, "VmSize");
        testbus_raw_prefix(prefix, 1024, 64u * 1024u * 1024u, 0);
        for (int i = 0; i < N_ANNOUNCE; i++) {
                fds[i] = testbus_raw_connect_as(tb, &nobody);
                free(testbus_raw_hello(fds[i]));
                testbus_raw_send(fds[i], prefix, sizeof(prefix));
                testbus_raw_send(fds[i], "{\"type\"", 7);
        }
        bystander_call(&by);
        kb = testbus_status_kb(tb, "VmSize");
        fprintf(stderr, "FIGURE item=2 case=announce_64mib connections=%d vmsize_kb=%ld->%ld bystander_worst_ms=%lld\n",
                N_ANNOUNCE, idle_kb, kb, (long long) by.worst_ms);
        ck_assert_msg(testbus_slow_factor() > 1 || kb - idle_kb < 64 * 1024,
                      "VmSize grew from %ld kB to %ld kB for %d announced frames", idle_kb, kb, N_ANNOUNCE);
        for (int i = 0; i < N_ANNOUNCE; i++)
                ck_assert_msg(!closed_by_broker(fds[i], 0), "a connection was closed for announcing a frame");
        bystander_check(&by);
        for (int i = 0; i < N_ANNOUNCE; i++)
                close(fds[i]);
        ipcbus_unref(by.bus);
}
END_TEST

static Suite *rx_costs_suite(void)
{
        Suite *s = suite_create("bus_rx_costs");
        TCase *tc;

        if (geteuid() != 0) {
                /* Every attack here comes from another user. */
                fprintf(stderr, "not root: the attacks of another user are left out\n");
                return s;
        }
        tc = testbus_tcase_config("fds", FDS_CONFIG);
        tcase_add_test(tc, test_fds_flood);
        suite_add_tcase(s, tc);

        tc = testbus_tcase_config("nofile", "{}");
        if (testbus_slow_factor() == 1)
                tcase_add_test(tc, test_fds_low_nofile);
        else /* valgrind keeps its own copy of RLIMIT_NOFILE: the plain and sanitizer runs cover it */
                fprintf(stderr, "SKIP test_fds_low_nofile: not under valgrind\n");
        suite_add_tcase(s, tc);

        tc = testbus_tcase_bare("incoming");
        tcase_add_test(tc, test_partial_frames_after_hello);
        tcase_add_test(tc, test_partial_frames_before_hello);
        tcase_add_test(tc, test_trickle);
        suite_add_tcase(s, tc);

        tc = testbus_tcase_config("announce", "{}");
        tcase_add_test(tc, test_announce_huge);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return testbus_run_suite(rx_costs_suite());
}
