/* SPDX-License-Identifier: MIT */
/*
 * Signals and match rules (PROTOCOL.md 8) against a real ipcbusd: broadcast to
 * subscriber processes, one delivery per connection, AddMatch / RemoveMatch
 * and their refcount, matching by every key, unicast signals, invalid rules.
 *
 * To know a signal was not delivered without sleeping, the emitter follows
 * it with a sentinel signal every subscriber matches: signals from one sender
 * are routed in order, so once the sentinel arrived, the signal before it
 * either arrived too or never will.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/testbus.h"

#define IFACE "org.example.Signals"
#define PATH "/org/example/Signals"
#define SENTINEL_IFACE "org.example.Sentinel"

/* A subscribing connection: matches the sentinel and records every signal it gets. */
struct sub {
        ipcbus_bus *bus;
        struct testbus_rec rec;
};

static void sub_open(struct sub *s)
{
        s->bus = testbus_connect(testbus_current());
        testbus_add_match(s->bus, "{\"type\":\"signal\",\"interface\":\"" SENTINEL_IFACE "\"}");
        testbus_rec_init(&s->rec, s->bus, TESTBUS_REC_SIGNALS);
}

static void sub_close(struct sub *s)
{
        testbus_rec_deinit(&s->rec);
        ipcbus_unref(s->bus);
}

static void emit(ipcbus_bus *bus, const char *destination, const char *path, const char *interface, const char *member,
                 const char *body)
{
        int r = ipcbus_emit_signal(bus, destination, path, interface, member, body);

        ck_assert_msg(r >= 0, "ipcbus_emit_signal(%s): %s", member, ipcbus_strerror(r));
        ck_assert_int_ge(ipcbus_flush(bus), 0);
}

/*
 * Send a sentinel from `from` and take what s received up to it: returns how
 * many signals named `member` came before it. Earlier sentinels are skipped;
 * any other signal fails.
 */
static size_t deliveries(struct sub *s, ipcbus_bus *from, const char *member)
{
        static unsigned seq;
        char body[64], want[16];
        size_t n = 0;

        snprintf(want, sizeof(want), "%u", ++seq);
        snprintf(body, sizeof(body), "{\"seq\":\"%s\"}", want);
        emit(from, NULL, "/", SENTINEL_IFACE, "Sentinel", body);
        for (;;) {
                ipcbus_message *m = testbus_rec_next(&s->rec, TESTBUS_WAIT_MS);
                const char *mm, *got;

                ck_assert_msg(m, "the sentinel did not arrive");
                mm = ipcbus_message_get_member(m);
                if (strcmp(mm, "Sentinel") == 0) {
                        got = ipcbus_message_get_arg(m, "seq");
                        if (got && strcmp(got, want) == 0)
                                return n;
                        continue;
                }
                ck_assert_msg(strcmp(mm, member) == 0, "unexpected signal %s", mm);
                n++;
        }
}

/* Emit one signal from `from` and count how often s got it. */
static size_t emit_count(struct sub *s, ipcbus_bus *from, const char *path, const char *interface, const char *member,
                         const char *body)
{
        emit(from, NULL, path, interface, member, body);
        return deliveries(s, from, member);
}

/* With `rule` added on s (and removed after), does a signal from `from` reach s? */
static bool rule_delivers(struct sub *s, ipcbus_bus *from, const char *rule, const char *path, const char *interface,
                          const char *member, const char *body)
{
        size_t n;

        testbus_add_match(s->bus, rule);
        n = emit_count(s, from, path, interface, member, body);
        testbus_remove_match(s->bus, rule);
        ck_assert_uint_le(n, 1);
        return n == 1;
}

/* ---- delivery ---------------------------------------------------------------------- */

START_TEST(test_broadcast_to_subscriber_processes)
{
        static const char *const rules[] = {"type=signal,interface=" IFACE ",member=Changed",
                                            "interface=" SENTINEL_IFACE, NULL};
        static const char *const sentinel_only[] = {"interface=" SENTINEL_IFACE, NULL};
        struct testbus *tb = testbus_current();
        struct testbus_child subs[4];
        ipcbus_bus *bus;
        char expect[256];

        for (int i = 0; i < 3; i++)
                testbus_subscriber_start(tb, &subs[i], rules);
        testbus_subscriber_start(tb, &subs[3], sentinel_only);
        bus = testbus_connect(tb);
        emit(bus, NULL, PATH, IFACE, "Changed", "{\"n\": 1, \"s\": \"x y\"}");
        emit(bus, NULL, "/", SENTINEL_IFACE, "Sentinel", "{}");
        for (int i = 0; i < 3; i++) {
                snprintf(expect, sizeof(expect), "signal Changed %s {\"n\": 1, \"s\": \"x y\"}",
                         ipcbus_get_unique_name(bus));
                testbus_child_expect(&subs[i], expect);
        }
        /* each got it exactly once; the one without the rule not at all */
        snprintf(expect, sizeof(expect), "signal Sentinel %s {}", ipcbus_get_unique_name(bus));
        for (int i = 0; i < 4; i++) {
                testbus_child_expect(&subs[i], expect);
                testbus_child_finish(&subs[i]);
        }
        ipcbus_unref(bus);
}
END_TEST

START_TEST(test_signal_stamped_and_unchanged)
{
        struct sub s;
        ipcbus_bus *e = testbus_connect(testbus_current());
        ipcbus_message *m;
        static const char body[] = "{ \"title\" :\t\"h\\u00e9\" , \"n\":[ 1,2 ] }";
        size_t len;

        sub_open(&s);
        testbus_add_match(s.bus, "{\"interface\":\"" IFACE "\"}");
        emit(e, NULL, PATH, IFACE, "Changed", body);
        m = testbus_rec_wait_member(&s.rec, "Changed", TESTBUS_WAIT_MS);
        ck_assert_ptr_nonnull(m);
        ck_assert_str_eq(ipcbus_message_get_sender(m), ipcbus_get_unique_name(e));
        ck_assert_int_eq(ipcbus_message_get_sender_uid(m), getuid());
        ck_assert_int_eq(ipcbus_message_get_sender_pid(m), getpid());
        ck_assert_str_eq(ipcbus_message_get_path(m), PATH);
        ck_assert_str_eq(ipcbus_message_get_interface(m), IFACE);
        ck_assert_ptr_null(ipcbus_message_get_destination(m));
        ck_assert_str_eq(ipcbus_message_get_body(m, &len), body);
        ck_assert_uint_eq(len, strlen(body));
        ck_assert_str_eq(ipcbus_message_get_arg(m, "title"), "h\xc3\xa9");
        sub_close(&s);
        ipcbus_unref(e);
}
END_TEST

START_TEST(test_one_delivery_with_two_rules)
{
        struct sub s;
        ipcbus_bus *e = testbus_connect(testbus_current());

        sub_open(&s);
        testbus_add_match(s.bus, "{\"member\":\"Changed\"}");
        testbus_add_match(s.bus, "{\"type\":\"signal\",\"interface\":\"" IFACE "\"}");
        ck_assert_uint_eq(emit_count(&s, e, PATH, IFACE, "Changed", "{}"), 1);
        sub_close(&s);
        ipcbus_unref(e);
}
END_TEST

START_TEST(test_remove_match_refcount)
{
        static const char rule[] = "{\"interface\":\"" IFACE "\",\"member\":\"Changed\"}";
        struct sub s;
        ipcbus_bus *e = testbus_connect(testbus_current());

        sub_open(&s);
        ck_assert_uint_eq(emit_count(&s, e, PATH, IFACE, "Changed", "{}"), 0);
        testbus_add_match(s.bus, rule);
        testbus_add_match(s.bus, rule);
        ck_assert_uint_eq(emit_count(&s, e, PATH, IFACE, "Changed", "{}"), 1);
        /* added twice, removed once: still there */
        testbus_remove_match(s.bus, rule);
        ck_assert_uint_eq(emit_count(&s, e, PATH, IFACE, "Changed", "{}"), 1);
        /* the same rule with its keys in another order */
        testbus_remove_match(s.bus, "{\"member\":\"Changed\",\"interface\":\"" IFACE "\"}");
        ck_assert_uint_eq(emit_count(&s, e, PATH, IFACE, "Changed", "{}"), 0);
        testbus_driver_error(s.bus, "RemoveMatch", "{\"rule\":{\"interface\":\"" IFACE "\",\"member\":\"Changed\"}}",
                             IPCBUS_ERROR_MATCH_RULE_NOT_FOUND);
        sub_close(&s);
        ipcbus_unref(e);
}
END_TEST

START_TEST(test_unicast_signal)
{
        struct sub to, other;
        ipcbus_bus *e = testbus_connect(testbus_current());
        ipcbus_message *m;

        sub_open(&to);
        sub_open(&other);
        /* `other` matches the signal's every field, but it is not addressed to it */
        testbus_add_match(other.bus, "{\"type\":\"signal\",\"interface\":\"" IFACE "\"}");
        emit(e, ipcbus_get_unique_name(to.bus), PATH, IFACE, "Direct", "{\"to\":\"you\"}");
        ck_assert_uint_eq(deliveries(&other, e, "Direct"), 0);
        /* `to` has no rule for it and gets it anyway */
        m = testbus_rec_next(&to.rec, TESTBUS_WAIT_MS);
        ck_assert_ptr_nonnull(m);
        ck_assert_str_eq(ipcbus_message_get_member(m), "Direct");
        ck_assert_str_eq(ipcbus_message_get_destination(m), ipcbus_get_unique_name(to.bus));
        ck_assert_str_eq(ipcbus_message_get_sender(m), ipcbus_get_unique_name(e));
        ck_assert_uint_eq(deliveries(&to, e, "Direct"), 0);

        /* by well-known name too */
        ck_assert_int_eq(testbus_request_name(to.bus, "org.example.To", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        testbus_sync(to.bus);
        testbus_rec_skip(&to.rec);
        emit(e, "org.example.To", PATH, IFACE, "Direct", "{}");
        ck_assert_uint_eq(deliveries(&to, e, "Direct"), 1);
        ck_assert_uint_eq(deliveries(&other, e, "Direct"), 0);
        sub_close(&to);
        sub_close(&other);
        ipcbus_unref(e);
}
END_TEST

/* ---- matching by each key ------------------------------------------------------------------ */

START_TEST(test_match_type)
{
        struct sub s;
        ipcbus_bus *e = testbus_connect(testbus_current());

        sub_open(&s);
        ck_assert(rule_delivers(&s, e, "{\"type\":\"signal\",\"interface\":\"" IFACE "\"}", PATH, IFACE, "M", NULL));
        ck_assert(!rule_delivers(&s, e, "{\"type\":\"call\",\"interface\":\"" IFACE "\"}", PATH, IFACE, "M", NULL));
        ck_assert(!rule_delivers(&s, e, "{\"type\":\"return\",\"interface\":\"" IFACE "\"}", PATH, IFACE, "M", NULL));
        ck_assert(!rule_delivers(&s, e, "{\"type\":\"error\",\"interface\":\"" IFACE "\"}", PATH, IFACE, "M", NULL));
        sub_close(&s);
        ipcbus_unref(e);
}
END_TEST

START_TEST(test_match_sender)
{
        struct sub s;
        ipcbus_bus *e1 = testbus_connect(testbus_current()), *e2 = testbus_connect(testbus_current());
        char rule[256];

        sub_open(&s);
        /* by unique name */
        snprintf(rule, sizeof(rule), "{\"sender\":\"%s\"}", ipcbus_get_unique_name(e1));
        testbus_add_match(s.bus, rule);
        ck_assert_uint_eq(emit_count(&s, e1, PATH, IFACE, "M", NULL), 1);
        ck_assert_uint_eq(emit_count(&s, e2, PATH, IFACE, "M", NULL), 0);
        testbus_remove_match(s.bus, rule);

        /* by well-known name: whoever owns it now */
        testbus_add_match(s.bus, "{\"sender\":\"org.example.Emitter\"}");
        ck_assert_uint_eq(emit_count(&s, e1, PATH, IFACE, "M", NULL), 0);
        ck_assert_int_eq(testbus_request_name(e1, "org.example.Emitter", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        ck_assert_uint_eq(emit_count(&s, e1, PATH, IFACE, "M", NULL), 1);
        ck_assert_uint_eq(emit_count(&s, e2, PATH, IFACE, "M", NULL), 0);
        ck_assert_int_eq(testbus_release_name(e1, "org.example.Emitter"), IPCBUS_RELEASE_NAME_RELEASED);
        ck_assert_uint_eq(emit_count(&s, e1, PATH, IFACE, "M", NULL), 0);
        ck_assert_int_eq(testbus_request_name(e2, "org.example.Emitter", 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
        ck_assert_uint_eq(emit_count(&s, e2, PATH, IFACE, "M", NULL), 1);
        sub_close(&s);
        ipcbus_unref(e1);
        ipcbus_unref(e2);
}
END_TEST

START_TEST(test_match_interface)
{
        struct sub s;
        ipcbus_bus *e = testbus_connect(testbus_current());

        sub_open(&s);
        testbus_add_match(s.bus, "{\"interface\":\"" IFACE "\"}");
        ck_assert_uint_eq(emit_count(&s, e, PATH, IFACE, "M", NULL), 1);
        ck_assert_uint_eq(emit_count(&s, e, PATH, "org.example.Other", "M", NULL), 0);
        ck_assert_uint_eq(emit_count(&s, e, PATH, IFACE ".Sub", "M", NULL), 0);
        sub_close(&s);
        ipcbus_unref(e);
}
END_TEST

START_TEST(test_match_member)
{
        struct sub s;
        ipcbus_bus *e = testbus_connect(testbus_current());

        sub_open(&s);
        testbus_add_match(s.bus, "{\"member\":\"Changed\"}");
        ck_assert_uint_eq(emit_count(&s, e, PATH, IFACE, "Changed", NULL), 1);
        ck_assert_uint_eq(emit_count(&s, e, PATH, IFACE, "Removed", NULL), 0);
        ck_assert_uint_eq(emit_count(&s, e, PATH, "org.example.Other", "Changed", NULL), 1);
        sub_close(&s);
        ipcbus_unref(e);
}
END_TEST

START_TEST(test_match_path)
{
        struct sub s;
        ipcbus_bus *e = testbus_connect(testbus_current());

        sub_open(&s);
        testbus_add_match(s.bus, "{\"path\":\"/org/example/Signals\"}");
        ck_assert_uint_eq(emit_count(&s, e, "/org/example/Signals", IFACE, "M", NULL), 1);
        ck_assert_uint_eq(emit_count(&s, e, "/org/example/Signals/sub", IFACE, "M", NULL), 0);
        ck_assert_uint_eq(emit_count(&s, e, "/org/example", IFACE, "M", NULL), 0);
        ck_assert_uint_eq(emit_count(&s, e, "/org/example/SignalsX", IFACE, "M", NULL), 0);
        sub_close(&s);
        ipcbus_unref(e);
}
END_TEST

START_TEST(test_match_path_namespace)
{
        static const char rule[] = "{\"path_namespace\":\"/org/example\",\"interface\":\"" IFACE "\"}";
        static const char root[] = "{\"path_namespace\":\"/\",\"interface\":\"" IFACE "\"}";
        struct sub s;
        ipcbus_bus *e = testbus_connect(testbus_current());

        sub_open(&s);
        ck_assert(rule_delivers(&s, e, rule, "/org/example", IFACE, "M", NULL));
        ck_assert(rule_delivers(&s, e, rule, "/org/example/Signals", IFACE, "M", NULL));
        ck_assert(rule_delivers(&s, e, rule, "/org/example/a/b/c", IFACE, "M", NULL));
        ck_assert(!rule_delivers(&s, e, rule, "/org/examples", IFACE, "M", NULL));
        ck_assert(!rule_delivers(&s, e, rule, "/org", IFACE, "M", NULL));
        ck_assert(!rule_delivers(&s, e, rule, "/", IFACE, "M", NULL));
        ck_assert(rule_delivers(&s, e, root, "/", IFACE, "M", NULL));
        ck_assert(rule_delivers(&s, e, root, "/any/path", IFACE, "M", NULL));
        sub_close(&s);
        ipcbus_unref(e);
}
END_TEST

START_TEST(test_match_destination)
{
        struct sub s;
        ipcbus_bus *e = testbus_connect(testbus_current());
        char rule[256];

        sub_open(&s);
        /* a broadcast has no destination, so a destination rule does not select it */
        snprintf(rule, sizeof(rule), "{\"destination\":\"%s\",\"interface\":\"" IFACE "\"}",
                 ipcbus_get_unique_name(s.bus));
        testbus_add_match(s.bus, rule);
        ck_assert_uint_eq(emit_count(&s, e, PATH, IFACE, "M", NULL), 0);
        /* a signal addressed to it is delivered once, rule or not */
        emit(e, ipcbus_get_unique_name(s.bus), PATH, IFACE, "M", NULL);
        ck_assert_uint_eq(deliveries(&s, e, "M"), 1);
        sub_close(&s);
        ipcbus_unref(e);
}
END_TEST

START_TEST(test_match_args)
{
        static const char rule[] = "{\"interface\":\"" IFACE "\",\"args\":{\"title\":\"hello\"}}";
        static const char two[] = "{\"interface\":\"" IFACE "\",\"args\":{\"title\":\"hello\",\"who\":\"me\"}}";
        struct sub s;
        ipcbus_bus *e = testbus_connect(testbus_current());

        sub_open(&s);
        ck_assert(rule_delivers(&s, e, rule, PATH, IFACE, "M", "{\"title\":\"hello\",\"n\":1}"));
        ck_assert(rule_delivers(&s, e, rule, PATH, IFACE, "M", "{ \"n\" : 1 , \"title\" : \"hello\" }"));
        /* the value is compared decoded */
        ck_assert(rule_delivers(&s, e, rule, PATH, IFACE, "M", "{\"title\":\"h\\u0065llo\"}"));
        ck_assert(!rule_delivers(&s, e, rule, PATH, IFACE, "M", "{\"title\":\"world\"}"));
        ck_assert(!rule_delivers(&s, e, rule, PATH, IFACE, "M", "{\"title\":\"hello world\"}"));
        ck_assert(!rule_delivers(&s, e, rule, PATH, IFACE, "M", "{\"title\":\"Hello\"}"));
        /* a member that is not a string does not match */
        ck_assert(!rule_delivers(&s, e, rule, PATH, IFACE, "M", "{\"title\":5}"));
        ck_assert(!rule_delivers(&s, e, rule, PATH, IFACE, "M", "{\"title\":[\"hello\"]}"));
        ck_assert(!rule_delivers(&s, e, rule, PATH, IFACE, "M", "{\"title\":null}"));
        /* only top-level members count */
        ck_assert(!rule_delivers(&s, e, rule, PATH, IFACE, "M", "{\"x\":{\"title\":\"hello\"}}"));
        ck_assert(!rule_delivers(&s, e, rule, PATH, IFACE, "M", "{}"));
        ck_assert(!rule_delivers(&s, e, rule, PATH, IFACE, "M", NULL));
        /* every arg must hold */
        ck_assert(rule_delivers(&s, e, two, PATH, IFACE, "M", "{\"who\":\"me\",\"title\":\"hello\"}"));
        ck_assert(!rule_delivers(&s, e, two, PATH, IFACE, "M", "{\"title\":\"hello\"}"));
        ck_assert(!rule_delivers(&s, e, two, PATH, IFACE, "M", "{\"title\":\"hello\",\"who\":\"you\"}"));
        sub_close(&s);
        ipcbus_unref(e);
}
END_TEST

/* ---- invalid rules ------------------------------------------------------------------------ */

START_TEST(test_match_rule_invalid)
{
        ipcbus_bus *bus = testbus_connect(testbus_current());
        static const char *const invalid[] = {
                "{\"bogus\":\"x\"}",
                "{\"type\":\"bogus\"}",
                "{\"type\":5}",
                "{\"sender\":\"not a name\"}",
                "{\"sender\":1}",
                "{\"interface\":\"nodots\"}",
                "{\"member\":\"a.b\"}",
                "{\"member\":\"\"}",
                "{\"path\":\"/a/\"}",
                "{\"path\":\"relative\"}",
                "{\"path_namespace\":\"/a//b\"}",
                "{\"path\":\"/a\",\"path_namespace\":\"/a\"}",
                "{\"destination\":\"x\"}",
                "{\"args\":\"title=hello\"}",
                "{\"args\":{\"title\":5}}",
                "{\"args\":{\"title\":null}}",
                NULL,
        };
        char rule[1024], body[1100];
        size_t n;

        for (size_t i = 0; invalid[i]; i++) {
                snprintf(body, sizeof(body), "{\"rule\":%s}", invalid[i]);
                testbus_driver_error(bus, "AddMatch", body, IPCBUS_ERROR_MATCH_RULE_INVALID);
        }
        /* 16 args is the limit */
        n = (size_t) snprintf(rule, sizeof(rule), "{\"args\":{");
        for (int i = 0; i < 16; i++)
                n += (size_t) snprintf(rule + n, sizeof(rule) - n, "%s\"k%d\":\"v\"", i ? "," : "", i);
        snprintf(rule + n, sizeof(rule) - n, "}}");
        testbus_add_match(bus, rule);
        snprintf(rule + n, sizeof(rule) - n, ",\"k16\":\"v\"}}");
        snprintf(body, sizeof(body), "{\"rule\":%s}", rule);
        testbus_driver_error(bus, "AddMatch", body, IPCBUS_ERROR_MATCH_RULE_INVALID);
        /* the connection carries on */
        testbus_sync(bus);
        ipcbus_unref(bus);
}
END_TEST

START_TEST(test_match_rule_not_found)
{
        ipcbus_bus *a = testbus_connect(testbus_current()), *b = testbus_connect(testbus_current());

        testbus_driver_error(a, "RemoveMatch", "{\"rule\":{\"member\":\"Never\"}}", IPCBUS_ERROR_MATCH_RULE_NOT_FOUND);
        /* rules belong to the connection that added them */
        testbus_add_match(a, "{\"member\":\"Mine\"}");
        testbus_driver_error(b, "RemoveMatch", "{\"rule\":{\"member\":\"Mine\"}}", IPCBUS_ERROR_MATCH_RULE_NOT_FOUND);
        /* a rule with more keys is another rule */
        testbus_driver_error(a, "RemoveMatch", "{\"rule\":{\"member\":\"Mine\",\"type\":\"signal\"}}",
                             IPCBUS_ERROR_MATCH_RULE_NOT_FOUND);
        testbus_remove_match(a, "{\"member\":\"Mine\"}");
        ipcbus_unref(a);
        ipcbus_unref(b);
}
END_TEST

static Suite *signals_suite(void)
{
        Suite *s = suite_create("bus_signals");
        TCase *tc;

        tc = testbus_tcase("delivery");
        tcase_add_test(tc, test_broadcast_to_subscriber_processes);
        tcase_add_test(tc, test_signal_stamped_and_unchanged);
        tcase_add_test(tc, test_one_delivery_with_two_rules);
        tcase_add_test(tc, test_remove_match_refcount);
        tcase_add_test(tc, test_unicast_signal);
        suite_add_tcase(s, tc);

        tc = testbus_tcase("keys");
        tcase_add_test(tc, test_match_type);
        tcase_add_test(tc, test_match_sender);
        tcase_add_test(tc, test_match_interface);
        tcase_add_test(tc, test_match_member);
        tcase_add_test(tc, test_match_path);
        tcase_add_test(tc, test_match_path_namespace);
        tcase_add_test(tc, test_match_destination);
        tcase_add_test(tc, test_match_args);
        suite_add_tcase(s, tc);

        tc = testbus_tcase("rules");
        tcase_add_test(tc, test_match_rule_invalid);
        tcase_add_test(tc, test_match_rule_not_found);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return testbus_run_suite(signals_suite());
}
