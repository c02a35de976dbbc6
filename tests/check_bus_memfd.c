/* SPDX-License-Identifier: MIT */
/*
 * Bodies in sealed memfds (PROTOCOL.md 14) against a real ipcbusd: a large
 * call, its reply and a signal travel by memfd (a monitor sees body_fd in
 * the frames) and read as any body, the descriptors they carry besides keep
 * their indices, match rules with args leave such a body alone, and the
 * threshold follows IPCBUS_MEMFD_THRESHOLD. The broker refuses a memfd
 * without its seals, one shorter than its body_size, one over
 * max_body_bytes, and the one that takes its sender's uid over
 * max_memfd_bytes_per_uid, telling the sender, and nobody else is touched;
 * a queued memfd body weighs its file's size in backpressure.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/testbus.h"

#define PATH "/org/example/Big"
#define IFACE "org.example.Big"
#define MIB (1024u * 1024u)

#define _msg_ __attribute__((cleanup(ipcbus_message_unrefp)))

static const struct testbus_cred alice = {.uid = 4242, .gid = 4242};
static const struct testbus_cred bob = {.uid = 4243, .gid = 4243};

/* {"data":"<n letters>","kind":KIND}, malloc'd. */
static char *big_body(size_t n, const char *kind)
{
        char *s = malloc(n + 128);
        size_t len;

        ck_assert_ptr_nonnull(s);
        strcpy(s, "{\"data\":\"");
        len = strlen(s);
        for (size_t i = 0; i < n; i++)
                s[len++] = (char) ('a' + i % 26);
        snprintf(s + len, 128, "\",\"kind\":\"%s\",\"end\":\"gr\xc3\xbc\xc3\x9f\\u00e9\"}", kind);
        return s;
}

/* ---- through libipcbus -------------------------------------------------------------- */

struct service {
        unsigned calls;
        unsigned last_n_fds;
        char *last_body;
};

/* Echo: answer with the body that came, and note what came. */
static int on_echo(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct service *s = userdata;
        const char *body = ipcbus_message_get_body(m, NULL);

        (void) ret_error;
        s->calls++;
        s->last_n_fds = ipcbus_message_get_n_fds(m);
        free(s->last_body);
        s->last_body = strdup(body);
        return ipcbus_reply(m, body);
}

/* Tell: the descriptor at index 0 is a pipe's write end; write the body's "kind" into it. */
static int on_tell(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct service *s = userdata;
        const char *kind = NULL;
        int fd = -1;

        (void) ret_error;
        s->calls++;
        s->last_n_fds = ipcbus_message_get_n_fds(m);
        ck_assert_int_eq(ipcbus_message_read(m, "kind:s out:h", &kind, &fd), 1);
        ck_assert_int_eq(write(fd, kind, strlen(kind)), (ssize_t) strlen(kind));
        return ipcbus_reply(m, "{}");
}

static const ipcbus_method methods[] = {
        {"Echo", on_echo},
        {"Tell", on_tell},
        {NULL, NULL},
};

struct world {
        ipcbus_bus *caller, *service, *monitor;
        ipcbus_bus *buses[4];
        ipcbus_slot *object;
        struct service svc;
        struct testbus_rec mon; /* every message the monitor sees */
};

/* A caller, a service and a monitor, all opened with IPCBUS_MEMFD_THRESHOLD = threshold (NULL: unset). */
static void world_open(struct world *w, const char *threshold)
{
        struct testbus *tb = testbus_current();
        int r;

        *w = (struct world){0};
        if (threshold)
                setenv("IPCBUS_MEMFD_THRESHOLD", threshold, 1);
        else
                unsetenv("IPCBUS_MEMFD_THRESHOLD");
        w->caller = testbus_connect(tb);
        w->service = testbus_connect(tb);
        w->monitor = testbus_connect(tb);
        unsetenv("IPCBUS_MEMFD_THRESHOLD");
        r = ipcbus_become_monitor(w->monitor, NULL, 0, NULL);
        ck_assert_msg(r >= 0, "ipcbus_become_monitor: %s", ipcbus_strerror(r));
        testbus_rec_init(&w->mon, w->monitor, 0);
        ck_assert_int_eq(ipcbus_add_object(w->service, &w->object, PATH, IFACE, methods, &w->svc), 0);
        w->buses[0] = w->caller;
        w->buses[1] = w->service;
        w->buses[2] = w->monitor;
}

static void world_close(struct world *w)
{
        testbus_rec_deinit(&w->mon);
        ipcbus_slot_unref(w->object);
        ipcbus_unref(w->caller);
        ipcbus_unref(w->service);
        ipcbus_unref(w->monitor);
        free(w->svc.last_body);
}

/* A call of member with body text (and the descriptor fd as "out", unless < 0), answered. */
static ipcbus_message *world_call(struct world *w, const char *member, const char *body, int fd)
{
        _msg_ ipcbus_message *call = NULL;
        ipcbus_message *reply;

        ck_assert_int_eq(
                ipcbus_message_new_call(w->caller, &call, ipcbus_get_unique_name(w->service), PATH, IFACE, member), 0);
        if (fd >= 0)
                ck_assert_int_eq(ipcbus_message_append(call, "out:h", fd), 0);
        ck_assert_int_eq(ipcbus_message_set_body(call, body), 0);
        reply = testbus_call_pumped(w->buses, w->caller, call);
        ck_assert_msg(ipcbus_message_get_type(reply) == IPCBUS_MESSAGE_RETURN, "error %s: %s",
                      ipcbus_message_get_error_name(reply), ipcbus_message_get_arg(reply, "message"));
        return reply;
}

struct wanted {
        struct world *w;
        ipcbus_message_type type;
        const char *member; /* NULL: any */
        const char *sender;
        ipcbus_message *found;
};

static bool wanted_seen(void *userdata)
{
        struct wanted *q = userdata;

        for (size_t i = 0; i < q->w->mon.n && !q->found; i++) {
                ipcbus_message *m = q->w->mon.msgs[i];
                const char *mm = ipcbus_message_get_member(m), *s = ipcbus_message_get_sender(m);

                if (ipcbus_message_get_type(m) == q->type && (!q->member || (mm && strcmp(mm, q->member) == 0)) && s &&
                    strcmp(s, q->sender) == 0)
                        q->found = m;
        }
        return q->found != NULL;
}

/* The monitor's copy of the message of this type and member (NULL: any) from `sender`; fails if none came. */
static ipcbus_message *monitor_saw(struct world *w, ipcbus_message_type type, const char *member, const char *sender)
{
        struct wanted q = {w, type, member, sender, NULL};
        ipcbus_bus *buses[] = {w->monitor, NULL};

        /* a monitor may not send: no round trip to sync with, only waiting */
        ck_assert_msg(testbus_pump_until(buses, wanted_seen, &q, TESTBUS_WAIT_MS),
                      "the monitor saw no message of type %d %s from %s", (int) type, member ? member : "", sender);
        return q.found;
}

/* Whether the frame of m (as received) had its body in a memfd. */
static bool came_by_memfd(ipcbus_message *m)
{
        const char *header = ipcbus_message_get_header(m, NULL);

        return header && strstr(header, "\"body_fd\":") && strstr(header, "\"body_size\":");
}

START_TEST(test_call_and_reply_by_memfd)
{
        struct world w;
        char *body = big_body(MIB, "big");
        const char *data = NULL, *end = NULL;
        struct json_object *tree = NULL;
        ipcbus_message *call_copy, *reply_copy;

        world_open(&w, NULL); /* the default threshold: 1 MiB (and the rest of the body) goes by memfd */
        {
                _msg_ ipcbus_message *reply = world_call(&w, "Echo", body, -1);

                /* the service got the body as sent, and no descriptor */
                ck_assert_uint_eq(w.svc.calls, 1);
                ck_assert_str_eq(w.svc.last_body, body);
                ck_assert_uint_eq(w.svc.last_n_fds, 0);
                /* and so did the caller: every body API reads it */
                ck_assert_str_eq(ipcbus_message_get_body(reply, NULL), body);
                ck_assert_uint_eq(ipcbus_message_get_n_fds(reply), 0);
                ck_assert_str_eq(ipcbus_message_get_arg(reply, "kind"), "big");
                ck_assert_int_eq(ipcbus_message_read(reply, "data:s end:s", &data, &end), 1);
                ck_assert_uint_eq(strlen(data), MIB);
                ck_assert_str_eq(end, "gr\xc3\xbc\xc3\x9f\xc3\xa9");
                ck_assert_int_eq(ipcbus_message_get_json(reply, &tree), 0);
                ck_assert_str_eq(json_object_get_string(json_object_object_get(tree, "kind")), "big");
                json_object_put(tree);
                ck_assert(came_by_memfd(reply));
        }
        /* the frames carried body_fd, and the monitor read the bodies too */
        call_copy = monitor_saw(&w, IPCBUS_MESSAGE_CALL, "Echo", ipcbus_get_unique_name(w.caller));
        reply_copy = monitor_saw(&w, IPCBUS_MESSAGE_RETURN, NULL, ipcbus_get_unique_name(w.service));
        ck_assert_msg(came_by_memfd(call_copy), "the call's frame: %s", ipcbus_message_get_header(call_copy, NULL));
        ck_assert_msg(came_by_memfd(reply_copy), "the reply's frame: %s", ipcbus_message_get_header(reply_copy, NULL));
        ck_assert_ptr_nonnull(strstr(ipcbus_message_get_header(call_copy, NULL), "\"body_fd\":0"));
        ck_assert_str_eq(ipcbus_message_get_body(call_copy, NULL), body);
        ck_assert_str_eq(ipcbus_message_get_body(reply_copy, NULL), body);
        world_close(&w);
        free(body);
}
END_TEST

/* The descriptors a message carries besides keep their indices: the memfd goes last. */
START_TEST(test_descriptors_keep_their_index)
{
        struct world w;
        char *body = big_body(256 * 1024, "told");
        char buf[16] = {0};
        int p[2];
        ipcbus_message *copy;

        world_open(&w, "1000");
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        /* the body names its descriptor by index: "out":0 */
        body[strlen(body) - 1] = '\0';
        {
                char *with_fd = NULL;

                ck_assert_int_ge(asprintf(&with_fd, "%s,\"out\":0}", body), 0);
                ipcbus_message_unref(world_call(&w, "Tell", with_fd, p[1]));
                free(with_fd);
        }
        close(p[1]);
        ck_assert_int_eq(read(p[0], buf, sizeof(buf) - 1), 4);
        ck_assert_str_eq(buf, "told");
        ck_assert_uint_eq(w.svc.last_n_fds, 1);
        copy = monitor_saw(&w, IPCBUS_MESSAGE_CALL, "Tell", ipcbus_get_unique_name(w.caller));
        ck_assert_ptr_nonnull(strstr(ipcbus_message_get_header(copy, NULL), "\"body_fd\":1,"));
        close(p[0]);
        world_close(&w);
        free(body);
}
END_TEST

struct got {
        unsigned n;
        char *body;
};

static int on_signal(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct got *g = userdata;

        (void) ret_error;
        g->n++;
        free(g->body);
        g->body = strdup(ipcbus_message_get_body(m, NULL));
        return 0;
}

START_TEST(test_signal_by_memfd)
{
        struct world w;
        char *big = big_body(2 * MIB, "big"), *small = big_body(10, "big");
        struct got all = {0}, by_arg = {0};
        ipcbus_slot *m1 = NULL, *m2 = NULL;
        ipcbus_message *copy;

        world_open(&w, NULL);
        ck_assert_int_eq(ipcbus_add_match(w.service, &m1, "interface=" IFACE ",member=Changed", on_signal, &all, NULL),
                         0);
        ck_assert_int_eq(ipcbus_add_match(w.service, &m2,
                                          "interface=" IFACE ",member=Changed,arg.kind=big", on_signal, &by_arg, NULL),
                         0);
        ck_assert_int_eq(ipcbus_emit_signal(w.caller, NULL, PATH, IFACE, "Changed", big), 0);
        testbus_sync(w.caller);
        testbus_sync(w.service);
        /* the plain rule gets it, body and all; the rule on an argument does not (PROTOCOL.md 14.2) */
        ck_assert_uint_eq(all.n, 1);
        ck_assert_str_eq(all.body, big);
        ck_assert_uint_eq(by_arg.n, 0);
        copy = monitor_saw(&w, IPCBUS_MESSAGE_SIGNAL, "Changed", ipcbus_get_unique_name(w.caller));
        ck_assert(came_by_memfd(copy));
        ck_assert_str_eq(ipcbus_message_get_body(copy, NULL), big);
        /* the same argument in a body small enough for its frame matches */
        ck_assert_int_eq(ipcbus_emit_signal(w.caller, NULL, PATH, IFACE, "Changed", small), 0);
        testbus_sync(w.caller);
        testbus_sync(w.service);
        ck_assert_uint_eq(all.n, 2);
        ck_assert_uint_eq(by_arg.n, 1);
        ck_assert_str_eq(by_arg.body, small);
        ipcbus_slot_unref(m1);
        ipcbus_slot_unref(m2);
        free(all.body);
        free(by_arg.body);
        world_close(&w);
        free(big);
        free(small);
}
END_TEST

START_TEST(test_threshold)
{
        struct world w;
        char *body = big_body(2000, "x");
        ipcbus_message *copy;

        /* 0: never, however large */
        world_open(&w, "0");
        {
                char *huge = big_body(2 * MIB, "x");
                _msg_ ipcbus_message *reply = world_call(&w, "Echo", huge, -1);

                ck_assert_str_eq(ipcbus_message_get_body(reply, NULL), huge);
                copy = monitor_saw(&w, IPCBUS_MESSAGE_CALL, "Echo", ipcbus_get_unique_name(w.caller));
                ck_assert_msg(!came_by_memfd(copy), "%s", ipcbus_message_get_header(copy, NULL));
                free(huge);
        }
        world_close(&w);
        /* a low threshold takes a small body too; the answer comes back the same way */
        world_open(&w, "1500");
        {
                _msg_ ipcbus_message *reply = world_call(&w, "Echo", body, -1);

                ck_assert_str_eq(ipcbus_message_get_body(reply, NULL), body);
                ck_assert(came_by_memfd(reply));
                copy = monitor_saw(&w, IPCBUS_MESSAGE_CALL, "Echo", ipcbus_get_unique_name(w.caller));
                ck_assert(came_by_memfd(copy));
        }
        world_close(&w);
        free(body);
}
END_TEST

/* Expect the error `name` answering serial, its message containing `words`. */
static void expect_error(int sock, uint32_t serial, const char *name, const char *words)
{
        struct testbus_frame f;
        const char *text;

        testbus_raw_expect_reply(sock, serial, name, &f);
        text = testbus_json_string(f.b, "message");
        ck_assert_msg(text && strstr(text, words), "%s: the message does not say '%s': %s", name, words,
                      text ? text : "(none)");
        testbus_frame_deinit(&f);
}

/* ---- bytes without base64 (PROTOCOL.md 14.5) ----------------------------------------- */

#define STORE_JSON                                                                                                     \
        "{\"interface\": \"" IFACE "\", \"methods\": {\"Store\": {\"in\": {\"name\": \"string\", \"data\": \"bytes\"}, " \
        "\"out\": {\"size\": \"uint\", \"data\": \"bytes\"}}}}"

struct store {
        size_t size;
        bool in_binary_area; /* the bytes read were a pointer into the body's binary area */
        const void *first, *again;
};

/* Whether p is where the binary area of m's body starts (just past the body's text and its NUL). */
static bool in_binary_area(ipcbus_message *m, const void *p)
{
        size_t len = 0;
        const char *body = ipcbus_message_get_body(m, &len);

        return (const char *) p == body + len + 1;
}

/* Store: read the bytes twice (the same pointer: no copy either time), answer with their size and them. */
static int on_store(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct store *st = userdata;
        const char *name = NULL;
        const void *data = NULL, *again = NULL;
        size_t n = 0, n2 = 0;
        int r;

        (void) ret_error;
        r = ipcbus_message_read(m, "name:s data:y", &name, &data, &n);
        if (r < 0)
                return r;
        ck_assert_int_eq(ipcbus_message_rewind(m), 0);
        ck_assert_int_eq(ipcbus_message_read(m, "data:y", &again, &n2), 1);
        ck_assert_uint_eq(n, n2);
        st->size = n;
        st->first = data;
        st->again = again;
        st->in_binary_area = in_binary_area(m, data);
        return ipcbus_reply_method(m, "size:t data:y", (uint64_t) n, data, n);
}

static const ipcbus_vtable store_vtable[] = {
        IPCBUS_METHOD("Store", on_store),
        IPCBUS_VTABLE_END,
};

/* n bytes of every value 0..255 in turn, malloc'd. */
static uint8_t *binary(size_t n)
{
        uint8_t *p = malloc(n ? n : 1);

        for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t) (i * 7 + i / 256);
        return p;
}

/*
 * Store n bytes with the world opened at threshold, and check what comes
 * back. Returns 1 when the bytes went raw in a binary area both ways, 0
 * when in base64; *ret_by_memfd: whether the messages went by memfd.
 */
static int store_round_trip(const char *threshold, size_t n, bool *ret_by_memfd)
{
        struct world w;
        struct store st = {0};
        ipcbus_interface *iface = NULL;
        ipcbus_slot *slot = NULL;
        uint8_t *data = binary(n);
        const void *back = NULL;
        uint64_t size = 0;
        size_t back_n = 0;
        ipcbus_message *copy;
        bool by_memfd, raw;

        world_open(&w, threshold);
        ck_assert_int_eq(ipcbus_interface_parse(STORE_JSON, &iface), 0);
        ck_assert_int_eq(ipcbus_add_object_vtable(w.service, &slot, PATH "/store", iface, store_vtable, &st), 0);
        {
                _msg_ ipcbus_message *call = NULL;
                _msg_ ipcbus_message *reply = NULL;

                ck_assert_int_eq(ipcbus_message_new_call(w.caller, &call, ipcbus_get_unique_name(w.service),
                                                         PATH "/store", IFACE, "Store"),
                                 0);
                ck_assert_int_eq(ipcbus_message_append(call, "name:s data:y", "blob", data, n), 0);
                reply = testbus_call_pumped(w.buses, w.caller, call);
                ck_assert_msg(ipcbus_message_get_type(reply) == IPCBUS_MESSAGE_RETURN, "error %s: %s",
                              ipcbus_message_get_error_name(reply), ipcbus_message_get_arg(reply, "message"));
                ck_assert_uint_eq(st.size, n);
                ck_assert_int_eq(ipcbus_message_read(reply, "size:t data:y", &size, &back, &back_n), 1);
                ck_assert_uint_eq(size, n);
                ck_assert_uint_eq(back_n, n);
                ck_assert_int_eq(memcmp(back, data, n), 0);
                by_memfd = came_by_memfd(reply);
                raw = in_binary_area(reply, back);
                /* raw bytes, only ever in a memfd, are read in place, each time (no copy); base64 is decoded apart */
                ck_assert(!raw || by_memfd);
                ck_assert(st.in_binary_area == raw);
                if (raw)
                        ck_assert_ptr_eq(st.first, st.again);
                if (raw)
                        ck_assert_ptr_nonnull(strstr(ipcbus_message_get_body(reply, NULL), "{\"$bytes\":[0,"));
                else
                        ck_assert_ptr_null(strstr(ipcbus_message_get_body(reply, NULL), "$bytes"));
        }
        /* the call went the same way as its answer, and the monitor read it too */
        copy = monitor_saw(&w, IPCBUS_MESSAGE_CALL, "Store", ipcbus_get_unique_name(w.caller));
        ck_assert(came_by_memfd(copy) == by_memfd);
        {
                const char *name = NULL;
                const void *p = NULL;
                size_t pn = 0;

                ck_assert_int_eq(ipcbus_message_read(copy, "name:s data:y", &name, &p, &pn), 1);
                ck_assert_uint_eq(pn, n);
                ck_assert_int_eq(memcmp(p, data, n), 0);
        }
        ipcbus_slot_unref(slot);
        ipcbus_interface_unref(iface);
        world_close(&w);
        free(data);
        *ret_by_memfd = by_memfd;
        return raw;
}

START_TEST(test_bytes_raw)
{
        bool by_memfd;

        /* 1 MiB of bytes: over the threshold in base64, so raw in the binary area both ways */
        ck_assert_int_eq(store_round_trip(NULL, 1024 * 1024, &by_memfd), 1);
        ck_assert(by_memfd);
        /* a smaller blob with a threshold it passes */
        ck_assert_int_eq(store_round_trip("4000", 5000, &by_memfd), 1);
        ck_assert(by_memfd);
        /* 100 KiB: below the threshold, but bytes enough to be cheaper raw */
        ck_assert_int_eq(store_round_trip(NULL, 100 * 1024, &by_memfd), 1);
        ck_assert(by_memfd);
}
END_TEST

START_TEST(test_bytes_base64)
{
        bool by_memfd;

        /* memfds off: the same bytes go in base64 */
        ck_assert_int_eq(store_round_trip("0", 1024 * 1024, &by_memfd), 0);
        ck_assert(!by_memfd);
        /* below the threshold, and too little to take the body into a memfd by itself */
        ck_assert_int_eq(store_round_trip(NULL, 6000, &by_memfd), 0);
        ck_assert(!by_memfd);
        /* too small to be kept apart: base64, even in a body that goes by memfd */
        ck_assert_int_eq(store_round_trip("1", 100, &by_memfd), 0);
        ck_assert(by_memfd);
}
END_TEST

/* A raw call of Store with this body text, in a memfd with `area` bytes of binary area or in its frame (area < 0). */
static void store_raw(int sock, const char *dest, uint32_t serial, const char *body, long area)
{
        char header[512];
        int fd;

        if (area < 0) {
                snprintf(header, sizeof(header),
                         "{\"type\":\"call\",\"serial\":%u,\"destination\":\"%s\",\"path\":\"" PATH
                         "/store\",\"interface\":\"" IFACE "\",\"member\":\"Store\"}",
                         serial, dest);
                testbus_raw_send_frame(sock, header, body);
                return;
        }
        fd = memfd_create("test-body", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, body, strlen(body) + 1), (ssize_t) strlen(body) + 1);
        ck_assert_int_eq(ftruncate(fd, (off_t) (strlen(body) + 1 + (size_t) area)), 0);
        ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW), 0);
        snprintf(header, sizeof(header),
                 "{\"type\":\"call\",\"serial\":%u,\"destination\":\"%s\",\"path\":\"" PATH "/store\",\"interface\":\"" IFACE
                 "\",\"member\":\"Store\",\"body_fd\":0,\"body_size\":%zu}",
                 serial, dest, strlen(body));
        ck_assert_int_eq(testbus_raw_send_frame_fds(sock, header, NULL, &fd, 1), 0);
        close(fd);
}

/* A described method checks a reference like any bytes: beyond the area, or in a frame, is InvalidArgs. */
START_TEST(test_bytes_ref_checked)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *service = testbus_connect(tb);
        struct store st = {0};
        ipcbus_interface *iface = NULL;
        ipcbus_slot *slot = NULL;
        int sock = testbus_raw_connect(tb);
        const char *dest = ipcbus_get_unique_name(service);
        struct testbus_frame f;

        free(testbus_raw_hello(sock));
        ck_assert_int_eq(ipcbus_interface_parse(STORE_JSON, &iface), 0);
        ck_assert_int_eq(ipcbus_add_object_vtable(service, &slot, PATH "/store", iface, store_vtable, &st), 0);

        store_raw(sock, dest, 2, "{\"name\":\"a\",\"data\":{\"$bytes\":[2,8]}}", 10);
        store_raw(sock, dest, 3, "{\"name\":\"a\",\"data\":{\"$bytes\":[4,8]}}", 10);
        store_raw(sock, dest, 4, "{\"name\":\"a\",\"data\":{\"$bytes\":[0,0]}}", -1);
        store_raw(sock, dest, 5, "{\"name\":\"a\",\"data\":{\"$bytes\":[0]}}", 10);
        /* the broker has queued the four calls to the service once it answers this; the service then answers them */
        testbus_raw_ping(sock, 6);
        testbus_sync(service);
        testbus_raw_expect_reply(sock, 2, NULL, &f);
        ck_assert_int_eq(json_object_get_int64(json_object_object_get(f.b, "size")), 8);
        testbus_frame_deinit(&f);
        ck_assert_uint_eq(st.size, 8);
        expect_error(sock, 3, IPCBUS_ERROR_INVALID_ARGS, "beyond the binary area");
        expect_error(sock, 4, IPCBUS_ERROR_INVALID_ARGS, "came in its frame");
        expect_error(sock, 5, IPCBUS_ERROR_INVALID_ARGS, "expected bytes, got object");
        ipcbus_slot_unref(slot);
        ipcbus_interface_unref(iface);
        ipcbus_unref(service);
        close(sock);
}
END_TEST

/* ---- what the broker refuses ------------------------------------------------------- */

/* A memfd holding text, its NUL and `extra` more bytes, with the given seals. */
static int memfd_body(const char *text, size_t extra, int seals)
{
        int fd = memfd_create("test-body", MFD_CLOEXEC | MFD_ALLOW_SEALING);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, text, strlen(text) + 1), (ssize_t) strlen(text) + 1);
        if (extra)
                ck_assert_int_eq(ftruncate(fd, (off_t) (strlen(text) + 1 + extra)), 0);
        if (seals)
                ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, seals), 0);
        return fd;
}

#define SEALED (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW)

/* Send a raw frame whose body is in fd (body_size size): a call to dest, or a signal to it when signal. */
static void send_with_body_fd(int sock, uint32_t serial, const char *dest, bool signal, bool no_reply, int fd,
                              size_t size)
{
        char header[512];

        if (signal)
                snprintf(header, sizeof(header),
                         "{\"type\":\"signal\",\"serial\":%u,\"destination\":\"%s\",\"path\":\"" PATH
                         "\",\"interface\":\"" IFACE "\",\"member\":\"Changed\",\"body_fd\":0,\"body_size\":%zu}",
                         serial, dest, size);
        else
                snprintf(header, sizeof(header),
                         "{\"type\":\"call\",\"serial\":%u,\"destination\":\"%s\",\"path\":\"" PATH
                         "\",\"interface\":\"" IFACE "\",\"member\":\"Echo\"%s,\"body_fd\":0,\"body_size\":%zu}",
                         serial, dest, no_reply ? ",\"no_reply\":true" : "", size);
        ck_assert_int_eq(testbus_raw_send_frame_fds(sock, header, NULL, &fd, 1), 0);
        close(fd);
}

START_TEST(test_unsealed_refused)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *service = testbus_connect(tb), *bystander = testbus_connect(tb);
        struct service svc = {0};
        ipcbus_slot *object = NULL;
        int sock = testbus_raw_connect(tb), p[2];
        const char *text = "{\"a\":\"b\"}";
        const char *dest;
        char *me;

        ck_assert_int_eq(ipcbus_add_object(service, &object, PATH, IFACE, methods, &svc), 0);
        dest = ipcbus_get_unique_name(service);
        me = testbus_raw_hello(sock);

        /* not sealed at all; sealed but still writable; a pipe, which cannot be sealed */
        send_with_body_fd(sock, 2, dest, false, false, memfd_body(text, 0, 0), strlen(text));
        expect_error(sock, 2, IPCBUS_ERROR_INVALID_MESSAGE, "F_SEAL_WRITE");
        send_with_body_fd(sock, 3, dest, false, false, memfd_body(text, 0, F_SEAL_SHRINK | F_SEAL_GROW), strlen(text));
        expect_error(sock, 3, IPCBUS_ERROR_INVALID_MESSAGE, "not a memfd sealed");
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        ck_assert_int_eq(write(p[1], "{}", 3), 3);
        send_with_body_fd(sock, 4, dest, true, false, p[0], 2);
        expect_error(sock, 4, IPCBUS_ERROR_INVALID_MESSAGE, "not a memfd sealed");
        close(p[1]);
        /* sealed, but shorter than its body_size and the NUL */
        send_with_body_fd(sock, 5, dest, false, false, memfd_body(text, 0, SEALED), strlen(text) + 1);
        expect_error(sock, 5, IPCBUS_ERROR_INVALID_MESSAGE, "fewer than body_size");
        /* a call with no_reply is refused unanswered (PROTOCOL.md 9): the ping's answer comes first */
        send_with_body_fd(sock, 6, dest, false, true, memfd_body(text, 0, 0), strlen(text));
        testbus_raw_ping(sock, 7);
        testbus_log_expect(tb, me, "not a sealed memfd");

        /* the sender stays connected, a good one goes through, and nothing bad reached the service */
        send_with_body_fd(sock, 8, dest, false, false, memfd_body(text, 0, SEALED), strlen(text));
        {
                struct testbus_frame f;

                testbus_pump(service);
                for (int i = 0; i < 500 && svc.calls == 0; i++) {
                        usleep(10000);
                        testbus_pump(service);
                }
                ck_assert_uint_eq(svc.calls, 1);
                ck_assert_str_eq(svc.last_body, text);
                testbus_raw_expect_reply(sock, 8, NULL, &f);
                testbus_frame_deinit(&f);
        }
        /* and the bystander never noticed */
        json_object_put(testbus_driver(bystander, "Ping", NULL));
        ipcbus_slot_unref(object);
        ipcbus_unref(service);
        ipcbus_unref(bystander);
        free(svc.last_body);
        free(me);
        close(sock);
}
END_TEST

/* The driver reads no body in a memfd. */
START_TEST(test_driver_refuses)
{
        struct testbus *tb = testbus_current();
        int sock = testbus_raw_connect(tb);
        const char *text = "{\"name\":\"org.example.Big\"}";
        char header[512];
        int fd = memfd_body(text, 0, SEALED);

        free(testbus_raw_hello(sock));
        snprintf(header, sizeof(header),
                 "{\"type\":\"call\",\"serial\":2,\"destination\":\"org.ipcbus.Bus\",\"path\":\"/org/ipcbus/Bus\","
                 "\"interface\":\"org.ipcbus.Bus\",\"member\":\"RequestName\",\"body_fd\":0,\"body_size\":%zu}",
                 strlen(text));
        ck_assert_int_eq(testbus_raw_send_frame_fds(sock, header, NULL, &fd, 1), 0);
        close(fd);
        expect_error(sock, 2, IPCBUS_ERROR_INVALID_ARGS, "no body in a memfd");
        testbus_raw_ping(sock, 3);
        close(sock);
}
END_TEST

#define SIZE_CONFIG "{\"limits\":{\"max_body_bytes\":1048576}}"

START_TEST(test_oversized_refused)
{
        struct testbus *tb = testbus_current();
        int sock = testbus_raw_connect(tb), rx = testbus_raw_connect(tb);
        const char *text = "{\"a\":1}";
        char *me = testbus_raw_hello(sock), *rx_name = testbus_raw_hello(rx);
        struct testbus_frame f;

        /* the whole file counts: 8 bytes of text and NUL, and a binary area that makes it 1 MiB + 1 */
        send_with_body_fd(sock, 2, rx_name, false, false, memfd_body(text, MIB - strlen(text), SEALED), strlen(text));
        expect_error(sock, 2, IPCBUS_ERROR_LIMITS_EXCEEDED, "max_body_bytes");
        testbus_log_expect(tb, me, "over max_body_bytes");
        /* exactly the limit goes */
        send_with_body_fd(sock, 3, rx_name, true, false, memfd_body(text, MIB - strlen(text) - 1, SEALED),
                          strlen(text));
        testbus_raw_ping(sock, 4);
        for (;;) {
                ck_assert_int_eq(testbus_raw_recv(rx, TESTBUS_WAIT_MS, &f), 1);
                if (testbus_frame_int(&f, "serial") == 3 && testbus_frame_int(&f, "body_size") == (int64_t) strlen(text))
                        break;
                testbus_frame_deinit(&f);
        }
        ck_assert_int_eq(testbus_frame_int(&f, "body_fd"), 0);
        testbus_frame_deinit(&f);
        free(me);
        free(rx_name);
        close(sock);
        close(rx);
}
END_TEST

/*
 * Fill the socket of the connection `victim_name` (which reads nothing) from
 * filler: 16 plain bodies of 256 KiB, of which what the socket does not take
 * stays queued in the broker; then a ping the broker answers the filler.
 */
static void fill_socket(int filler, const char *victim_name)
{
        char *filler_body = big_body(256 * 1024, "filler");
        char header[512];

        for (int i = 0; i < 16; i++) {
                snprintf(header, sizeof(header),
                         "{\"type\":\"signal\",\"serial\":%d,\"destination\":\"%s\",\"path\":\"/f\",\"interface\":"
                         "\"org.example.F\",\"member\":\"Fill\"}",
                         i + 2, victim_name);
                testbus_raw_send_frame(filler, header, filler_body);
        }
        testbus_raw_ping(filler, 100);
        free(filler_body);
}

/*
 * The quota: a receiver that reads nothing keeps what is queued to it in the
 * broker (its socket filled first by a filler's plain bodies); alice's memfd
 * bodies to it count against her uid until refused; bob's do not; once the
 * receiver is gone, alice's bytes are hers again.
 */
#define QUOTA_CONFIG                                                                                                   \
        "{\"limits\":{\"max_body_bytes\":1048576,\"max_memfd_bytes_per_uid\":4194304,"                               \
        "\"backpressure_bytes\":67108864}}"

START_TEST(test_quota)
{
        struct testbus *tb = testbus_current();
        int victim = testbus_raw_connect(tb), filler = testbus_raw_connect(tb);
        int a = testbus_raw_connect_as(tb, &alice), b = testbus_raw_connect_as(tb, &bob);
        char *victim_name = testbus_raw_hello(victim), *alice_name;
        const char *text = "{\"chunk\":true}";
        size_t file = MIB - strlen(text) - 1; /* extra bytes: each file is exactly 1 MiB */
        uint32_t serial = 10;

        free(testbus_raw_hello(filler));
        alice_name = testbus_raw_hello(a);
        free(testbus_raw_hello(b));
        /* fill the victim's socket: what comes next stays queued in the broker */
        fill_socket(filler, victim_name);

        /* four files of 1 MiB fit alice's 4 MiB, the fifth does not */
        for (int i = 0; i < 4; i++)
                send_with_body_fd(a, serial++, victim_name, true, false, memfd_body(text, file, SEALED), strlen(text));
        testbus_raw_ping(a, serial++);
        send_with_body_fd(a, serial, victim_name, true, false, memfd_body(text, file, SEALED), strlen(text));
        expect_error(a, serial++, IPCBUS_ERROR_LIMITS_EXCEEDED, "max_memfd_bytes_per_uid");
        testbus_log_expect(tb, alice_name, "max_memfd_bytes_per_uid");
        /* a smaller one does not fit either: the bound is on bytes */
        send_with_body_fd(a, serial, victim_name, true, false, memfd_body(text, 0, SEALED), strlen(text));
        expect_error(a, serial++, IPCBUS_ERROR_LIMITS_EXCEEDED, "max_memfd_bytes_per_uid");

        /* bob is another user: his go to the same receiver */
        for (int i = 0; i < 4; i++)
                send_with_body_fd(b, 50 + (uint32_t) i, victim_name, true, false, memfd_body(text, file, SEALED),
                                  strlen(text));
        testbus_raw_ping(b, 60);

        /* the receiver goes, and with it what was queued to it: alice's bytes are free again */
        close(victim);
        testbus_raw_ping(filler, 101);
        {
                int rx = testbus_raw_connect(tb);
                char *rx_name = testbus_raw_hello(rx);
                struct testbus_frame f;

                for (int i = 0; i < 4; i++)
                        send_with_body_fd(a, serial++, rx_name, true, false, memfd_body(text, file, SEALED),
                                          strlen(text));
                testbus_raw_ping(a, serial++);
                for (int got = 0; got < 4;) {
                        ck_assert_int_eq(testbus_raw_recv(rx, TESTBUS_WAIT_MS, &f), 1);
                        got += testbus_frame_int(&f, "body_fd") == 0;
                        testbus_frame_deinit(&f);
                }
                free(rx_name);
                close(rx);
        }
        free(victim_name);
        free(alice_name);
        close(filler);
        close(a);
        close(b);
}
END_TEST

/*
 * Backpressure counts a queued memfd body by its file: a receiver's queue
 * that its bodies in memfds fill makes their sender wait, as bodies in
 * frames would, instead of queueing without bound until a quota refuses
 * them; nothing is lost once the receiver reads. The victim's socket is
 * filled first by a filler's plain bodies (under backpressure_bytes), so
 * what alice sends stays queued in the broker.
 */
#define BACKPRESSURE_CONFIG                                                                                            \
        "{\"limits\":{\"max_body_bytes\":1048576,\"backpressure_bytes\":8388608,"                                    \
        "\"max_memfd_bytes_per_uid\":67108864}}"
#define BACKPRESSURE_FILES 12

START_TEST(test_backpressure)
{
        struct testbus *tb = testbus_current();
        int victim = testbus_raw_connect(tb), filler = testbus_raw_connect(tb), a = testbus_raw_connect_as(tb, &alice);
        char *victim_name = testbus_raw_hello(victim);
        const char *text = "{\"chunk\":true}";
        size_t file = MIB - strlen(text) - 1;
        struct testbus_frame f = {0};
        unsigned fills = 0, files = 0;

        free(testbus_raw_hello(filler));
        free(testbus_raw_hello(a));
        /* 4 MiB queued, under backpressure_bytes: the filler is not held back */
        fill_socket(filler, victim_name);

        /* twelve files of 1 MiB: a few put the queue over 8 MiB, and alice waits */
        for (uint32_t i = 0; i < BACKPRESSURE_FILES; i++)
                send_with_body_fd(a, 10 + i, victim_name, true, false, memfd_body(text, file, SEALED), strlen(text));
        testbus_raw_send_frame(a,
                               "{\"type\":\"call\",\"serial\":99,\"destination\":\"org.ipcbus.Bus\",\"path\":"
                               "\"/org/ipcbus/Bus\",\"interface\":\"org.ipcbus.Peer\",\"member\":\"Ping\"}",
                               NULL);
        /* (her Hello's NameAcquired may still be unread) */
        for (int r; (r = testbus_raw_recv(a, 500, &f)) != -ETIMEDOUT;) {
                ck_assert_int_eq(r, 1);
                ck_assert_msg(strcmp(testbus_frame_string(&f, "type"), "signal") == 0, "alice was not held back: %s",
                              f.header);
                testbus_frame_deinit(&f);
        }

        /* the victim reads: everything comes, in order, and alice is answered */
        while (fills < 16 || files < BACKPRESSURE_FILES) {
                ck_assert_int_eq(testbus_raw_recv(victim, TESTBUS_WAIT_MS, &f), 1);
                if (testbus_frame_int(&f, "body_fd") == 0)
                        ck_assert_int_eq(testbus_frame_int(&f, "serial"), 10 + files++);
                else if (testbus_frame_string(&f, "member") && strcmp(testbus_frame_string(&f, "member"), "Fill") == 0)
                        fills++;
                testbus_frame_deinit(&f);
        }
        testbus_raw_expect_reply(a, 99, NULL, NULL);
        testbus_raw_ping(a, 100);
        free(victim_name);
        close(victim);
        close(filler);
        close(a);
}
END_TEST

static Suite *memfd_suite(void)
{
        Suite *s = suite_create("bus_memfd");
        TCase *tc;

        tc = testbus_tcase("library");
        tcase_add_test(tc, test_call_and_reply_by_memfd);
        tcase_add_test(tc, test_descriptors_keep_their_index);
        tcase_add_test(tc, test_signal_by_memfd);
        tcase_add_test(tc, test_threshold);
        tcase_add_test(tc, test_bytes_raw);
        tcase_add_test(tc, test_bytes_base64);
        tcase_add_test(tc, test_bytes_ref_checked);
        suite_add_tcase(s, tc);

        tc = testbus_tcase("refusals");
        tcase_add_test(tc, test_unsealed_refused);
        tcase_add_test(tc, test_driver_refuses);
        suite_add_tcase(s, tc);

        tc = testbus_tcase_config("size", SIZE_CONFIG);
        tcase_add_test(tc, test_oversized_refused);
        suite_add_tcase(s, tc);

        tc = testbus_tcase_config("quota", QUOTA_CONFIG);
        tcase_add_test(tc, test_quota);
        suite_add_tcase(s, tc);

        tc = testbus_tcase_config("backpressure", BACKPRESSURE_CONFIG);
        tcase_add_test(tc, test_backpressure);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return testbus_run_suite(memfd_suite());
}
