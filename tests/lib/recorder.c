/* SPDX-License-Identifier: MIT */
/* testbus: recording what a connection receives. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lib/recorder.h"
#include "tests/lib/client.h"
#include "tests/lib/internal.h"
#include "tests/lib/util.h"

/* One line describing a message, for failure messages (static buffer). */
static const char *message_text(ipcbus_message *m)
{
        static const char *const types[] = {"?", "call", "return", "error", "signal"};
        static char buf[512];
        ipcbus_message_type t = ipcbus_message_get_type(m);
        const char *body = ipcbus_message_get_body(m, NULL);

        snprintf(buf, sizeof(buf), "%s %s%s from %s: %.200s", t >= 1 && t <= 4 ? types[t] : "?",
                 ipcbus_message_get_member(m) ?: "", ipcbus_message_get_error_name(m) ?: "",
                 ipcbus_message_get_sender(m) ?: "?", body ? body : "");
        return buf;
}

static int rec_filter(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct testbus_rec *r = userdata;

        if (r->types && !(r->types & (1u << ipcbus_message_get_type(m))))
                return 0;
        if (r->n == r->cap) {
                r->cap = r->cap ? r->cap * 2 : 16;
                r->msgs = realloc(r->msgs, r->cap * sizeof(*r->msgs));
                ck_assert_ptr_nonnull(r->msgs);
        }
        r->msgs[r->n++] = ipcbus_message_ref(m);
        return 0;
}

void testbus_rec_init(struct testbus_rec *r, ipcbus_bus *bus, unsigned types)
{
        int ret;

        *r = (struct testbus_rec){.bus = bus, .types = types};
        ret = ipcbus_add_filter(bus, &r->slot, rec_filter, r);
        ck_assert_msg(ret >= 0, "ipcbus_add_filter: %s", ipcbus_strerror(ret));
}

void testbus_rec_deinit(struct testbus_rec *r)
{
        ipcbus_slot_unref(r->slot);
        for (size_t i = 0; i < r->n; i++)
                ipcbus_message_unref(r->msgs[i]);
        free(r->msgs);
        *r = (struct testbus_rec){0};
}

static bool rec_has_next(void *userdata)
{
        struct testbus_rec *r = userdata;

        return r->next < r->n;
}

ipcbus_message *testbus_rec_next(struct testbus_rec *r, int timeout_ms)
{
        ipcbus_bus *buses[] = {r->bus, NULL};

        if (!testbus_pump_until(buses, rec_has_next, r, timeout_ms))
                return NULL;
        return r->msgs[r->next++];
}

ipcbus_message *testbus_rec_expect(struct testbus_rec *r, const char *member, const char *name)
{
        ipcbus_message *m = testbus_rec_next(r, TESTBUS_WAIT_MS);
        const char *got;

        ck_assert_msg(m, "expected signal %s(%s) on %s, nothing came", member, name ? name : "",
                      ipcbus_get_unique_name(r->bus));
        ck_assert_msg(ipcbus_message_get_type(m) == IPCBUS_MESSAGE_SIGNAL && ipcbus_message_get_member(m) &&
                              strcmp(ipcbus_message_get_member(m), member) == 0,
                      "expected signal %s(%s) on %s, got %s", member, name ? name : "", ipcbus_get_unique_name(r->bus),
                      message_text(m));
        if (name) {
                got = ipcbus_message_get_arg(m, "name");
                ck_assert_msg(got && strcmp(got, name) == 0, "expected %s(%s) on %s, got %s", member, name,
                              ipcbus_get_unique_name(r->bus), message_text(m));
        }
        return m;
}

ipcbus_message *testbus_rec_wait_member(struct testbus_rec *r, const char *member, int timeout_ms)
{
        int64_t deadline = testbus_now_ms() + timeout_ms;
        ipcbus_message *m;

        while ((m = testbus_rec_next(r, ms_left(deadline)))) {
                const char *mm = ipcbus_message_get_member(m);

                if (ipcbus_message_get_type(m) == IPCBUS_MESSAGE_SIGNAL && mm && strcmp(mm, member) == 0)
                        return m;
        }
        return NULL;
}

void testbus_rec_expect_quiet(struct testbus_rec *r)
{
        testbus_sync(r->bus);
        ck_assert_msg(r->next == r->n, "%s: unexpected %s", ipcbus_get_unique_name(r->bus),
                      r->next < r->n ? message_text(r->msgs[r->next]) : "");
}

void testbus_rec_skip(struct testbus_rec *r)
{
        r->next = r->n;
}

size_t testbus_rec_count(struct testbus_rec *r, const char *member)
{
        size_t n = 0;

        for (size_t i = r->next; i < r->n; i++) {
                const char *mm = ipcbus_message_get_member(r->msgs[i]);

                if (ipcbus_message_get_type(r->msgs[i]) == IPCBUS_MESSAGE_SIGNAL && mm && strcmp(mm, member) == 0)
                        n++;
        }
        return n;
}
