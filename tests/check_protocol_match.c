/* SPDX-License-Identifier: MIT */
/* Unit tests for protocol/match: parsing both forms, equality, matching. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/match.h"
#include "protocol/message.h"
#include "protocol/proto-error.h"
#include "tests/check-run.h"

static struct msg *signal_msg(const char *sender, const char *path, const char *iface, const char *member,
                              const char *destination, const char *body)
{
        struct msg_header h;
        struct msg *m;

        msg_header_init(&h);
        h.type = MSG_SIGNAL;
        h.serial = 1;
        h.sender = sender;
        h.path = path;
        h.interface = iface;
        h.member = member;
        h.destination = destination;
        ck_assert_int_eq(msg_build(&h, body, body ? strlen(body) : 0, &m), 0);
        return m;
}

static bool matches_string(const char *rule, struct msg *m)
{
        struct match_rule r;
        bool b;

        ck_assert_int_eq(match_rule_parse_string(&r, rule), 0);
        b = match_rule_matches(&r, m, NULL, NULL);
        match_rule_deinit(&r);
        return b;
}

START_TEST(test_parse_json)
{
        const char *j = "{\"type\":\"signal\",\"sender\":\"org.x.S\",\"interface\":\"org.x.I\",\"member\":\"M\","
                        "\"path_namespace\":\"/org\",\"destination\":\":1.4\",\"args\":{\"b\":\"2\",\"a\":\"1\"}}";
        struct match_rule r;
        char *out;

        ck_assert_int_eq(match_rule_parse_json(&r, j, strlen(j)), 0);
        ck_assert_int_eq(r.type, MSG_SIGNAL);
        ck_assert_str_eq(r.sender, "org.x.S");
        ck_assert_str_eq(r.path_namespace, "/org");
        ck_assert_uint_eq(r.n_args, 2);
        ck_assert_str_eq(r.args[0].key, "a"); /* sorted */
        ck_assert_int_eq(match_rule_to_json(&r, &out), 0);
        ck_assert_str_eq(out,
                         "{\"type\":\"signal\",\"sender\":\"org.x.S\",\"interface\":\"org.x.I\",\"member\":\"M\","
                         "\"path_namespace\":\"/org\",\"destination\":\":1.4\",\"args\":{\"a\":\"1\",\"b\":\"2\"}}");
        free(out);
        match_rule_deinit(&r);
        ck_assert_int_eq(match_rule_parse_json(&r, "{}", 2), 0);
        ck_assert_int_eq(match_rule_to_json(&r, &out), 0);
        ck_assert_str_eq(out, "{}");
        free(out);
        match_rule_deinit(&r);
}
END_TEST

/* A refused rule and the detail that says why (struct match_error). */
struct refusal {
        const char *rule;
        const char *why;
};

#define KEYS "type, sender, interface, member, path, path_namespace, destination"

static const struct refusal bad_json_rules[] = {
        {"[]", "a match rule is a JSON object of strings (PROTOCOL.md, \"Match rules\")"},
        {"{", "a match rule is a JSON object of strings (PROTOCOL.md, \"Match rules\")"},
        {"{\"type\":\"sig\"}", "type: 'sig' is not a message type (call, return, error, signal)"},
        {"{\"color\":\"red\"}", "unknown key 'color' (keys: " KEYS ", args)"},
        {"{\"member\":1}", "member: must be a string"},
        {"{\"path\":\"/a\",\"path_namespace\":\"/\"}", "path and path_namespace exclude each other: give one"},
        {"{\"interface\":\"nodot\"}", "interface: 'nodot' is not a valid interface name"},
        {"{\"sender\":\"x\"}", "sender: 'x' is not a valid bus name"},
        {"{\"destination\":\"1x\"}", "destination: '1x' is not a valid bus name"},
        {"{\"args\":{\"a\":1}}", "args.a: must be a string"},
        {"{\"args\":[\"a\"]}", "args: must be an object of strings (expected args {\"NAME\":\"VALUE\"})"},
        {"{\"args\":{},\"args\":{}}", "a key given twice: 'args'"},
        {"{\"args\":{\"\":\"v\"}}", "an empty argument key (expected args {\"NAME\":\"VALUE\"})"},
        {"{\"args\":{\"a\":\"1\",\"a\":\"2\"}}", "a key given twice: 'args.a'"},
        {"{\"member\":\"A\",\"member\":\"B\"}", "a key given twice: 'member'"},
        {"{\"path\":\"a\"}", "path: 'a' is not a valid object path"},
};

static const struct refusal bad_string_rules[] = {
        {"foo=bar", "unknown key 'foo' (keys: " KEYS ", arg.NAME)"},
        {"type=sgnal", "type: 'sgnal' is not a message type (call, return, error, signal)"},
        {"member=a.b", "member: 'a.b' is not a valid member name"},
        {"member=A,member=B", "a key given twice: 'member'"},
        {"type=signal,type=call", "a key given twice: 'type'"},
        {"type", "'type': not KEY=VALUE"},
        {"member=A,type", "'type': not KEY=VALUE"},
        {"type,member=A", "unknown key 'type,member' (keys: " KEYS ", arg.NAME)"},
        {"member='x", "member: unterminated quote (a quoted value ends with ')"},
        {"member='x'y", "member: text after the closing quote (expected ',' or the end)"},
        {"arg.=1", "an empty argument key (expected arg.NAME=VALUE)"},
        {"arg.a=1,arg.a=2", "a key given twice: 'arg.a'"},
        {"path_namespace=/a,path=/a/b", "path and path_namespace exclude each other: give one"},
        {"path=a", "path: 'a' is not a valid object path"},
        {"arg.title='\xc0\xaf'", "not valid UTF-8 (keys and values become JSON strings)"},
        /* a long value is quoted to 64 bytes */
        {"member=0123456789012345678901234567890123456789012345678901234567890123456789",
         "member: '0123456789012345678901234567890123456789012345678901234567890123' is not a valid member name"},
};

START_TEST(test_parse_json_bad)
{
        const struct refusal *t = &bad_json_rules[_i];
        struct match_error why;
        struct match_rule r;

        ck_assert_msg(match_rule_parse_json_err(&r, t->rule, strlen(t->rule), &why) == PROTO_E_BAD_MATCH, "accepted %s",
                      t->rule);
        ck_assert_str_eq(why.text, t->why);
        ck_assert_int_eq(match_rule_parse_json(&r, t->rule, strlen(t->rule)), PROTO_E_BAD_MATCH);
}
END_TEST

START_TEST(test_parse_string_bad)
{
        const struct refusal *t = &bad_string_rules[_i];
        struct match_error why;
        struct match_rule r;

        ck_assert_msg(match_rule_parse_string_err(&r, t->rule, &why) == PROTO_E_BAD_MATCH, "accepted %s", t->rule);
        ck_assert_str_eq(why.text, t->why);
        ck_assert_int_eq(match_rule_parse_string(&r, t->rule), PROTO_E_BAD_MATCH);
}
END_TEST

START_TEST(test_parse_string)
{
        struct match_rule r, r2;
        const char *j = "{\"type\":\"signal\",\"interface\":\"org.x.I\",\"args\":{\"title\":\"a,b\"}}";

        ck_assert_int_eq(match_rule_parse_string(&r, "type=signal,interface='org.x.I',arg.title='a,b'"), 0);
        ck_assert_int_eq(match_rule_parse_json(&r2, j, strlen(j)), 0);
        ck_assert(match_rule_equal(&r, &r2));
        match_rule_deinit(&r2);
        ck_assert_int_eq(match_rule_parse_string(&r2, "type=signal,interface=org.x.I"), 0);
        ck_assert(!match_rule_equal(&r, &r2));
        match_rule_deinit(&r2);
        match_rule_deinit(&r);
        ck_assert_int_eq(match_rule_parse_string(&r, ""), 0);
        match_rule_deinit(&r);
        ck_assert_int_eq(match_rule_parse_string(&r, "type"), PROTO_E_BAD_MATCH);
        ck_assert_int_eq(match_rule_parse_string(&r, "member='x"), PROTO_E_BAD_MATCH);
        ck_assert_int_eq(match_rule_parse_string(&r, "bogus=1"), PROTO_E_BAD_MATCH);
        ck_assert_int_eq(match_rule_parse_string(&r, "arg.=1"), PROTO_E_BAD_MATCH);
        ck_assert_int_eq(match_rule_parse_string(&r, "arg.a=1,arg.a=2"), PROTO_E_BAD_MATCH);
        ck_assert_int_eq(match_rule_parse_string(&r, "type=signal,type=call"), PROTO_E_BAD_MATCH);
        /* keys and values become JSON strings: invalid UTF-8 is refused (found by fuzz-match) */
        ck_assert_int_eq(match_rule_parse_string(&r, "type=signal,arg.\x8c\x8ctle=hello"), PROTO_E_BAD_MATCH);
        ck_assert_int_eq(match_rule_parse_string(&r, "arg.title='\xc0\xaf'"), PROTO_E_BAD_MATCH);
        ck_assert_int_eq(match_rule_parse_string(&r, "arg.t\xc3\xa9tle='h\xc3\xa9'"), 0);
        match_rule_deinit(&r);
}
END_TEST

START_TEST(test_too_many_args)
{
        char buf[512] = "";
        struct match_error why;
        struct match_rule r;

        for (int i = 0; i <= MATCH_ARGS_MAX; i++)
                sprintf(buf + strlen(buf), "%sarg.k%d=v", i ? "," : "", i);
        ck_assert_int_eq(match_rule_parse_string_err(&r, buf, &why), PROTO_E_BAD_MATCH);
        ck_assert_str_eq(why.text, "arg.k16: too many argument keys (at most 16)");
        *strrchr(buf, ',') = '\0';
        ck_assert_int_eq(match_rule_parse_string(&r, buf), 0);
        ck_assert_uint_eq(r.n_args, MATCH_ARGS_MAX);
        match_rule_deinit(&r);
}
END_TEST

START_TEST(test_matching_keys)
{
        struct msg *m =
                signal_msg(":1.7", "/org/x/a", "org.x.I", "Changed", NULL, "{\"title\":\"hi\",\"n\":\"1\",\"k\":2}");

        ck_assert(matches_string("", m));
        ck_assert(matches_string("type=signal", m));
        ck_assert(!matches_string("type=call", m));
        ck_assert(matches_string("sender=:1.7", m));
        ck_assert(!matches_string("sender=:1.8", m));
        ck_assert(matches_string("interface=org.x.I", m));
        ck_assert(!matches_string("interface=org.x.J", m));
        ck_assert(matches_string("member=Changed", m));
        ck_assert(!matches_string("member=Changes", m));
        ck_assert(matches_string("path=/org/x/a", m));
        ck_assert(!matches_string("path=/org/x", m));
        ck_assert(matches_string("path_namespace=/org/x", m));
        ck_assert(matches_string("path_namespace=/", m));
        ck_assert(!matches_string("path_namespace=/org/xa", m));
        ck_assert(!matches_string("destination=:1.3", m));
        ck_assert(matches_string("arg.title=hi", m));
        ck_assert(matches_string("arg.title=hi,arg.n=1", m));
        ck_assert(!matches_string("arg.title=ho", m));
        ck_assert(!matches_string("arg.k=2", m)); /* not a string member */
        ck_assert(!matches_string("arg.missing=x", m));
        ck_assert(matches_string("type=signal,sender=:1.7,interface=org.x.I,member=Changed,path=/org/x/a", m));
        msg_unref(m);

        m = signal_msg(":1.7", "/p", "org.x.I", "M", ":1.3", NULL);
        ck_assert(matches_string("destination=:1.3", m));
        ck_assert(!matches_string("arg.a=b", m)); /* no body */
        msg_unref(m);
}
END_TEST

static bool owns_cb(const char *well_known, const char *unique, void *userdata)
{
        (void) userdata;
        return strcmp(well_known, "org.x.Owner") == 0 && strcmp(unique, ":1.7") == 0;
}

START_TEST(test_matching_well_known_sender)
{
        struct msg *m = signal_msg(":1.7", "/p", "org.x.I", "M", NULL, NULL);
        struct match_rule r;

        ck_assert_int_eq(match_rule_parse_string(&r, "sender=org.x.Owner"), 0);
        ck_assert(match_rule_matches(&r, m, owns_cb, NULL));
        ck_assert(match_rule_matches(&r, m, NULL, NULL)); /* the client side trusts the broker */
        match_rule_deinit(&r);
        ck_assert_int_eq(match_rule_parse_string(&r, "sender=org.x.Other"), 0);
        ck_assert(!match_rule_matches(&r, m, owns_cb, NULL));
        match_rule_deinit(&r);
        msg_unref(m);
}
END_TEST

/* The sorted lookup finds what msg_get_arg finds: a later duplicate wins whatever its type; only strings have values.
 */
START_TEST(test_match_args)
{
        struct msg *m = signal_msg(":1.7", "/p", "org.x.I", "M", NULL,
                                   "{\"b\":\"1\",\"a\":\"x\",\"n\":2,\"c\":{\"d\":\"e\"},\"a\":\"y\","
                                   "\"t\\u00e9\":\"\\u00e9\",\"\":\"empty\"}");
        struct match_args args;
        struct match_rule r;

        ck_assert_int_eq(match_args_init(&args, m), 0);
        ck_assert_uint_eq(args.n, 6); /* every distinct key; n and c without a value */
        for (size_t i = 1; i < args.n; i++)
                ck_assert_int_lt(strcmp(args.by_key[i - 1]->key, args.by_key[i]->key), 0);
        ck_assert_str_eq(match_args_get(&args, "a"), "y");
        ck_assert_str_eq(match_args_get(&args, "b"), "1");
        ck_assert_str_eq(match_args_get(&args, "t\xc3\xa9"), "\xc3\xa9");
        ck_assert_str_eq(match_args_get(&args, ""), "empty");
        ck_assert_ptr_null(match_args_get(&args, "n"));
        ck_assert_ptr_null(match_args_get(&args, "c"));
        ck_assert_ptr_null(match_args_get(&args, "d"));
        ck_assert_ptr_null(match_args_get(&args, "z"));

        ck_assert_int_eq(match_rule_parse_string(&r, "arg.a=y,arg.b=1"), 0);
        ck_assert(match_rule_matches_args(&r, m, NULL, NULL, &args));
        ck_assert(match_rule_matches(&r, m, NULL, NULL));
        match_rule_deinit(&r);
        ck_assert_int_eq(match_rule_parse_string(&r, "arg.a=x"), 0);
        ck_assert(!match_rule_matches_args(&r, m, NULL, NULL, &args));
        ck_assert(!match_rule_matches(&r, m, NULL, NULL));
        match_rule_deinit(&r);
        match_args_deinit(&args);
        msg_unref(m);

        /* no body, and a body without string members */
        m = signal_msg(":1.7", "/p", "org.x.I", "M", NULL, NULL);
        ck_assert_int_eq(match_args_init(&args, m), 0);
        ck_assert_uint_eq(args.n, 0);
        ck_assert_ptr_null(match_args_get(&args, "a"));
        match_args_deinit(&args);
        msg_unref(m);
        m = signal_msg(":1.7", "/p", "org.x.I", "M", NULL, "{\"a\":[\"x\"]}");
        ck_assert_int_eq(match_args_init(&args, m), 0);
        ck_assert_uint_eq(args.n, 1);
        ck_assert_ptr_null(match_args_get(&args, "a"));
        match_args_deinit(&args);
        msg_unref(m);
}
END_TEST

static Suite *match_suite(void)
{
        Suite *s = suite_create("protocol_match");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_parse_json);
        tcase_add_loop_test(tc, test_parse_json_bad, 0, (int) (sizeof(bad_json_rules) / sizeof(*bad_json_rules)));
        tcase_add_test(tc, test_parse_string);
        tcase_add_loop_test(tc, test_parse_string_bad, 0, (int) (sizeof(bad_string_rules) / sizeof(*bad_string_rules)));
        tcase_add_test(tc, test_too_many_args);
        tcase_add_test(tc, test_matching_keys);
        tcase_add_test(tc, test_matching_well_known_sender);
        tcase_add_test(tc, test_match_args);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return check_run(match_suite());
}
