/* SPDX-License-Identifier: MIT */
/* testbus: the test service and the subscriber. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "tests/lib/service.h"

struct service {
        struct testbus_peer *p;
        ipcbus_bus *bus;
        ipcbus_message *held[64];
        size_t n_held;
};

static int service_echo(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        size_t len = 0;
        const char *body = ipcbus_message_get_body(m, &len);

        return ipcbus_reply(m, len ? body : NULL);
}

static int service_fixed(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        return ipcbus_reply(m, TESTBUS_FIXED_BODY);
}

static int service_fail(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        return ipcbus_reply_error(m, TESTBUS_SERVICE_ERROR, "failed on purpose");
}

static int service_fail_errno(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        return -ENOENT;
}

static int service_fail_custom(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        ipcbus_error_set(ret_error, TESTBUS_SERVICE_CUSTOM_ERROR, "custom failure");
        return -EIO;
}

static int service_hold(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct service *s = userdata;

        testbus_peer_check(s->p, s->n_held < 64);
        s->held[s->n_held++] = ipcbus_message_ref(m);
        testbus_peer_report(s->p, "held %u", ipcbus_message_get_serial(m));
        return 0;
}

static int service_who_am_i(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        const char *sender = ipcbus_message_get_sender(m);
        char body[512];

        snprintf(body, sizeof(body), "{\"sender\":\"%s\",\"uid\":%lld,\"pid\":%lld}", sender ? sender : "",
                 (long long) ipcbus_message_get_sender_uid(m), (long long) ipcbus_message_get_sender_pid(m));
        return ipcbus_reply(m, body);
}

static int service_record(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct service *s = userdata;

        testbus_peer_report(s->p, "record %d %s", ipcbus_message_get_no_reply(m) ? 1 : 0,
                            ipcbus_message_get_body(m, NULL));
        return ipcbus_reply(m, "{}");
}

static int service_emit_then_reply(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct service *s = userdata;
        size_t len = 0;
        const char *body = ipcbus_message_get_body(m, &len);
        json_object *o = len ? json_tokener_parse(body) : NULL, *n = NULL;
        int count = 0, r;

        if (o && json_object_object_get_ex(o, "n", &n))
                count = json_object_get_int(n);
        json_object_put(o);
        for (int i = 0; i < count; i++) {
                char tick[64];

                snprintf(tick, sizeof(tick), "{\"i\":%d}", i);
                r = ipcbus_emit_signal(s->bus, NULL, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, "Tick", tick);
                if (r < 0)
                        return r;
        }
        return ipcbus_reply(m, "{}");
}

static const ipcbus_method service_methods[] = {
        {"Echo", service_echo},
        {"Fixed", service_fixed},
        {"Fail", service_fail},
        {"FailErrno", service_fail_errno},
        {"FailCustom", service_fail_custom},
        {"Hold", service_hold},
        {"WhoAmI", service_who_am_i},
        {"Record", service_record},
        {"EmitThenReply", service_emit_then_reply},
        {NULL, NULL},
};

static int service_filter(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct service *s = userdata;

        if (ipcbus_message_get_type(m) == IPCBUS_MESSAGE_ERROR)
                testbus_peer_report(s->p, "error %s", ipcbus_message_get_error_name(m));
        return 0;
}

static int service_command(struct testbus_peer *p, const char *line, void *userdata)
{
        struct service *s = userdata;
        char member[256];
        int consumed = 0, r;

        if (strcmp(line, "release") == 0) {
                size_t n = s->n_held;

                for (size_t i = 0; i < n; i++) {
                        r = ipcbus_reply(s->held[i], "{\"released\":true}");
                        testbus_peer_check(p, r >= 0);
                        ipcbus_message_unref(s->held[i]);
                }
                s->n_held = 0;
                testbus_peer_check(p, ipcbus_flush(s->bus) >= 0);
                testbus_peer_report(p, "released %zu", n);
                return 0;
        }
        if (sscanf(line, "emit %255s %n", member, &consumed) == 1 && consumed > 0) {
                r = ipcbus_emit_signal(s->bus, NULL, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, member,
                                       line[consumed] ? line + consumed : NULL);
                testbus_peer_check(p, r >= 0);
                testbus_peer_check(p, ipcbus_flush(s->bus) >= 0);
                testbus_peer_report(p, "emitted");
                return 0;
        }
        testbus_peer_fail(p, "unknown command '%s'", line);
}

static int service_main(struct testbus_peer *p, void *arg)
{
        const char *name = arg;
        struct service s = {.p = p};
        ipcbus_slot *object = NULL, *filter = NULL;
        int r;

        s.bus = testbus_peer_connect(p);
        r = ipcbus_add_object(s.bus, &object, TESTBUS_SERVICE_PATH, TESTBUS_SERVICE_INTERFACE, service_methods, &s);
        testbus_peer_check(p, r >= 0);
        r = ipcbus_add_filter(s.bus, &filter, service_filter, &s);
        testbus_peer_check(p, r >= 0);
        if (name) {
                r = ipcbus_request_name(s.bus, name, 0, NULL);
                if (r != IPCBUS_REQUEST_NAME_PRIMARY_OWNER)
                        testbus_peer_fail(p, "RequestName(%s) = %d", name, r);
        }
        testbus_peer_report(p, "ready %s", ipcbus_get_unique_name(s.bus));
        testbus_peer_run(p, s.bus, service_command, &s);
        for (size_t i = 0; i < s.n_held; i++)
                ipcbus_message_unref(s.held[i]);
        ipcbus_slot_unref(filter);
        ipcbus_slot_unref(object);
        ipcbus_flush(s.bus);
        ipcbus_unref(s.bus);
        return 0;
}

void testbus_service_start(struct testbus *tb, struct testbus_child *c, const char *name)
{
        testbus_child_start(tb, c, service_main, (void *) name);
        testbus_child_ready(c);
}

void testbus_service_start_as(struct testbus *tb, struct testbus_child *c, const struct testbus_cred *cred,
                              const char *name)
{
        testbus_child_start_cred(tb, c, cred, service_main, (void *) name);
        testbus_child_ready(c);
}

static int subscriber_filter(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct testbus_peer *p = userdata;

        if (ipcbus_message_get_type(m) == IPCBUS_MESSAGE_SIGNAL)
                testbus_peer_report(p, "signal %s %s %s", ipcbus_message_get_member(m),
                                    ipcbus_message_get_sender(m) ?: "-", ipcbus_message_get_body(m, NULL));
        return 0;
}

static int subscriber_signal(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        return 0;
}

static int subscriber_main(struct testbus_peer *p, void *arg)
{
        const char *const *rules = arg;
        ipcbus_slot *filter = NULL, *slots[16] = {NULL};
        ipcbus_bus *bus = testbus_peer_connect(p);
        size_t n = 0;
        int r;

        r = ipcbus_add_filter(bus, &filter, subscriber_filter, p);
        testbus_peer_check(p, r >= 0);
        for (; rules[n]; n++) {
                testbus_peer_check(p, n < 16);
                r = ipcbus_add_match(bus, &slots[n], rules[n], subscriber_signal, NULL, NULL);
                if (r < 0)
                        testbus_peer_fail(p, "ipcbus_add_match(%s, NULL): %s", rules[n], ipcbus_strerror(r));
        }
        testbus_peer_report(p, "ready %s", ipcbus_get_unique_name(bus));
        testbus_peer_run(p, bus, NULL, NULL);
        for (size_t i = 0; i < n; i++)
                ipcbus_slot_unref(slots[i]);
        ipcbus_slot_unref(filter);
        ipcbus_unref(bus);
        return 0;
}

void testbus_subscriber_start(struct testbus *tb, struct testbus_child *c, const char *const *rules)
{
        testbus_child_start(tb, c, subscriber_main, (void *) rules);
        testbus_child_ready(c);
}
