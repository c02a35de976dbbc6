/* SPDX-License-Identifier: MIT */
/*
 * Descriptors through libipcbus and a real ipcbusd: "h" appends duplicate a
 * descriptor into the message, which goes out with it (SCM_RIGHTS) and
 * arrives usable: a memfd whose content the receiver reads, a pipe's write
 * end the receiver writes into, in a call, in its reply and in a signal.
 * Also ipcbus_message_get_fd / take_fd, and the limit of IPCBUS_FDS_MAX.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/testbus.h"

#define PATH "/org/example/Fds"
#define IFACE "org.example.Fds"

#define _msg_ __attribute__((cleanup(ipcbus_message_unrefp)))

struct pair {
        ipcbus_bus *caller;
        ipcbus_bus *service;
        ipcbus_bus *buses[3];
        ipcbus_slot *slot;
        int service_read_end; /* WriteBack: the pipe end the service keeps */
};

/* A memfd holding text, at offset 0. */
static int memfd_with(const char *text)
{
        int fd = memfd_create("ipcbus-test", MFD_CLOEXEC);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        return fd;
}

/* What fd holds from offset 0 (a memfd) or what comes out of it (a pipe), as a string in buf. */
static const char *content(int fd, char *buf, size_t size)
{
        ssize_t n = pread(fd, buf, size - 1, 0);

        if (n < 0 && errno == ESPIPE)
                n = read(fd, buf, size - 1);
        ck_assert_int_ge(n, 0);
        buf[n] = '\0';
        return buf;
}

/* Read: the call carries a memfd; answer with its content and a memfd of our own. */
static int on_read(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        char buf[64];
        int fd = -1, mine, r;

        (void) userdata;
        (void) ret_error;
        ck_assert_int_eq(ipcbus_message_read(m, "fd:h", &fd), 1);
        ck_assert_uint_ge(ipcbus_message_get_n_fds(m), 1);
        mine = memfd_with("from the service");
        r = ipcbus_reply_method(m, "text:s fd:h", content(fd, buf, sizeof(buf)), mine);
        close(mine); /* the reply holds its own copy */
        return r;
}

/* Write: write into the pipe end that came; answer with the write end of a pipe of our own. */
static int on_write(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct pair *p = userdata;
        int fd = -1, ends[2], r;

        (void) ret_error;
        ck_assert_int_eq(ipcbus_message_read(m, "out:h", &fd), 1);
        ck_assert_int_eq(write(fd, "written by the service", 22), 22);
        ck_assert_int_eq(pipe2(ends, O_CLOEXEC), 0);
        p->service_read_end = ends[0];
        r = ipcbus_reply_method(m, "back:h", ends[1]);
        close(ends[1]);
        return r;
}

static const ipcbus_method methods[] = {
        {"Read", on_read},
        {"Write", on_write},
        {NULL, NULL},
};

static void pair_init(struct pair *p)
{
        struct testbus *tb = testbus_current();

        p->caller = testbus_connect(tb);
        p->service = testbus_connect(tb);
        p->buses[0] = p->caller;
        p->buses[1] = p->service;
        p->buses[2] = NULL;
        p->service_read_end = -1;
        ck_assert_int_eq(ipcbus_add_object(p->service, &p->slot, PATH, IFACE, methods, p), 0);
}

static void pair_deinit(struct pair *p)
{
        if (p->service_read_end >= 0)
                close(p->service_read_end);
        ipcbus_slot_unref(p->slot);
        ipcbus_unref(p->caller);
        ipcbus_unref(p->service);
}

static ipcbus_message *call_with_fd(struct pair *p, const char *member, const char *format, int fd)
{
        __attribute__((cleanup(ipcbus_message_unrefp))) ipcbus_message *call = NULL;
        ipcbus_message *reply;

        ck_assert_int_eq(
                ipcbus_message_new_call(p->caller, &call, ipcbus_get_unique_name(p->service), PATH, IFACE, member), 0);
        ck_assert_int_eq(ipcbus_message_append(call, format, fd), 0);
        ck_assert_uint_eq(ipcbus_message_get_n_fds(call), 1);
        reply = testbus_call_pumped(p->buses, p->caller, call);
        ck_assert_msg(ipcbus_message_get_type(reply) == IPCBUS_MESSAGE_RETURN, "error %s: %s",
                      ipcbus_message_get_error_name(reply), ipcbus_message_get_arg(reply, "message"));
        return reply;
}

START_TEST(test_memfd)
{
        struct pair p;
        const char *text = NULL;
        char buf[64];
        int fd, got = -1;

        pair_init(&p);
        fd = memfd_with("from the caller");
        {
                _msg_ ipcbus_message *reply = call_with_fd(&p, "Read", "fd:h", fd);

                close(fd); /* the message had its own copy */
                ck_assert_int_eq(ipcbus_message_read(reply, "text:s fd:h", &text, &got), 1);
                ck_assert_str_eq(text, "from the caller");
                ck_assert_str_eq(content(got, buf, sizeof(buf)), "from the service");
                ck_assert_str_eq(ipcbus_message_get_body(reply, NULL), "{\"text\":\"from the caller\",\"fd\":0}");
        }
        pair_deinit(&p);
}
END_TEST

START_TEST(test_pipe)
{
        struct pair p;
        char buf[64];
        int ends[2], back = -1;

        pair_init(&p);
        ck_assert_int_eq(pipe2(ends, O_CLOEXEC), 0);
        {
                _msg_ ipcbus_message *reply = call_with_fd(&p, "Write", "out:h", ends[1]);

                close(ends[1]);
                /* the service wrote into the write end it received */
                ck_assert_str_eq(content(ends[0], buf, sizeof(buf)), "written by the service");
                /* and we write into the one that came back */
                ck_assert_int_eq(ipcbus_message_read(reply, "back:h", &back), 1);
                ck_assert_int_eq(write(back, "written by the caller", 21), 21);
                ck_assert_str_eq(content(p.service_read_end, buf, sizeof(buf)), "written by the caller");
        }
        close(ends[0]);
        pair_deinit(&p);
}
END_TEST

static int on_signal(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        ipcbus_message **got = userdata;

        (void) ret_error;
        *got = ipcbus_message_ref(m);
        return 0;
}

static bool signal_came(void *userdata)
{
        return *(ipcbus_message **) userdata != NULL;
}

START_TEST(test_signal)
{
        struct pair p;
        ipcbus_message *got = NULL;
        ipcbus_slot *match = NULL;
        char buf[64];
        int fd, in = -1;

        pair_init(&p);
        ck_assert_int_eq(
                ipcbus_add_match(p.service, &match, "interface=" IFACE ",member=Changed", on_signal, &got, NULL), 0);
        fd = memfd_with("in a signal");
        ck_assert_int_eq(ipcbus_emit(p.caller, PATH, IFACE, "Changed", "what:s fd:h", "memfd", fd), 0);
        close(fd);
        ck_assert(testbus_pump_until(p.buses, signal_came, &got, TESTBUS_WAIT_MS));
        ck_assert_int_eq(ipcbus_message_read(got, "fd:h", &in), 1);
        ck_assert_str_eq(content(in, buf, sizeof(buf)), "in a signal");

        /* take: the caller's now, and no longer the message's */
        ck_assert_int_eq(ipcbus_message_get_fd(got, 1), -ENXIO);
        ck_assert_int_eq(ipcbus_message_take_fd(got, 0), in);
        ck_assert_int_eq(ipcbus_message_get_fd(got, 0), -EBADF);
        ck_assert_int_eq(ipcbus_message_take_fd(got, 0), -EBADF);
        ck_assert_int_eq(ipcbus_message_read(got, "fd:h", &fd), -EBADF);
        ipcbus_message_unref(got);
        ck_assert_int_ge(fcntl(in, F_GETFD), 0); /* still open */
        close(in);
        ipcbus_slot_unref(match);
        pair_deinit(&p);
}
END_TEST

START_TEST(test_get_closes)
{
        struct pair p;
        int fd, got = -1;

        pair_init(&p);
        fd = memfd_with("x");
        {
                _msg_ ipcbus_message *reply = call_with_fd(&p, "Read", "fd:h", fd);

                ck_assert_int_eq(ipcbus_message_read(reply, "fd:h", &got), 1);
                ck_assert_int_eq(ipcbus_message_get_fd(reply, 0), got);
                ck_assert_int_eq(ipcbus_message_get_fd(reply, 0), got);
        }
        /* borrowed: closed with the message */
        ck_assert_int_eq(fcntl(got, F_GETFD), -1);
        ck_assert_int_eq(errno, EBADF);
        close(fd);
        pair_deinit(&p);
}
END_TEST

START_TEST(test_too_many)
{
        _msg_ ipcbus_message *call = NULL, *reply = NULL;
        struct pair p;
        int fd, got = -1;

        pair_init(&p);
        fd = memfd_with("many");
        ck_assert_int_eq(
                ipcbus_message_new_call(p.caller, &call, ipcbus_get_unique_name(p.service), PATH, IFACE, "Read"), 0);
        ck_assert_int_eq(ipcbus_message_open(call, '[', "spare"), 0);
        for (unsigned i = 0; i < IPCBUS_FDS_MAX - 1; i++)
                ck_assert_int_eq(ipcbus_message_append(call, "h", fd), 0);
        ck_assert_int_eq(ipcbus_message_append(call, "h", fd), 0);
        ck_assert_int_eq(ipcbus_message_append(call, "h", fd), -EINVAL);
        ck_assert_str_eq(ipcbus_last_error(), "argument 'spare[16]': more than 16 descriptors in one message");
        ck_assert_int_eq(ipcbus_message_append(call, "h", -1), -EBADF);
        ck_assert_int_eq(ipcbus_message_close(call), 0);
        ck_assert_int_eq(ipcbus_message_append(call, "fd:?h", fd), -EINVAL);
        ck_assert_uint_eq(ipcbus_message_get_n_fds(call), IPCBUS_FDS_MAX);
        /* sixteen go through */
        ck_assert_int_eq(ipcbus_message_set_body(call, "{\"fd\":15}"), 0);
        reply = testbus_call_pumped(p.buses, p.caller, call);
        ck_assert_int_eq(ipcbus_message_get_type(reply), IPCBUS_MESSAGE_RETURN);
        ck_assert_int_eq(ipcbus_message_read(reply, "fd:h", &got), 1);
        close(fd);
        pair_deinit(&p);
}
END_TEST

int main(void)
{
        Suite *s = suite_create("client_fds");
        TCase *tc = testbus_tcase("fds");

        tcase_add_test(tc, test_memfd);
        tcase_add_test(tc, test_pipe);
        tcase_add_test(tc, test_signal);
        tcase_add_test(tc, test_get_closes);
        tcase_add_test(tc, test_too_many);
        suite_add_tcase(s, tc);
        return testbus_run_suite(s);
}
