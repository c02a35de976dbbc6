/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for daemon/bus/match: the match index on its own. Owners are plain
 * match_owner anchors; deliveries are recorded per owner. Covers adding and
 * removing (with reference counts), the member buckets against the wildcard
 * bucket, delivering once per owner, path namespaces, argument matches,
 * sender keys, and removing an owner; and that routing visits only the rules
 * filed under one of the message's own values (idx.n_visited), whatever the
 * number and kinds of rules that name other values.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "daemon/bus/match.h"
#include "protocol/message.h"
#include "tests/check-run.h"

#define N_OWNERS 3

static struct match_index idx;
static struct match_owner owners[N_OWNERS];
static unsigned delivered[N_OWNERS];
static unsigned owns_calls;

static void setup(void)
{
        match_index_init(&idx);
        for (int i = 0; i < N_OWNERS; i++) {
                match_owner_init(&owners[i]);
                delivered[i] = 0;
        }
        owns_calls = 0;
}

static void teardown(void)
{
        for (int i = 0; i < N_OWNERS; i++) {
                match_index_remove_owner(&idx, &owners[i]);
                match_owner_deinit(&owners[i]);
        }
        ck_assert_uint_eq(map_size(&idx.buckets), 0);
        ck_assert(list_is_empty(&idx.wildcard));
        match_index_deinit(&idx);
}

static void parse(struct match_rule *r, const char *json)
{
        match_rule_init(r);
        ck_assert_int_eq(match_rule_parse_json(r, json, strlen(json)), 0);
}

static void add(int owner, const char *json)
{
        struct match_rule r;

        parse(&r, json);
        ck_assert_int_eq(match_index_add(&idx, &owners[owner], &r), 0);
        /* the index took the rule's contents */
        ck_assert_ptr_null(r.member);
        ck_assert_ptr_null(r.interface);
        match_rule_deinit(&r);
}

static int del(int owner, const char *json)
{
        struct match_rule r;
        int ret;

        parse(&r, json);
        ret = match_index_remove(&idx, &owners[owner], &r);
        match_rule_deinit(&r);
        return ret;
}

/* "org.x.Owned" is owned by ":1.1"; nothing else is owned. */
static bool owns(const char *well_known, const char *unique, void *userdata)
{
        owns_calls++;
        return strcmp(well_known, "org.x.Owned") == 0 && strcmp(unique, ":1.1") == 0;
}

/* The names owned by ":1.1" (see owns). */
static void names(const char *unique, bool (*visit)(const char *name, const void *arg), const void *arg, void *userdata)
{
        if (strcmp(unique, ":1.1") == 0)
                visit("org.x.Owned", arg);
}

static void deliver(struct match_owner *owner, void *userdata)
{
        ck_assert_ptr_eq(userdata, &idx);
        ck_assert(owner >= owners && owner < owners + N_OWNERS);
        delivered[owner - owners]++;
}

static struct msg *msg_new_full(enum msg_type type, const char *sender, const char *path, const char *iface,
                                const char *member, const char *body)
{
        struct msg_header h;
        struct msg *m = NULL;

        msg_header_init(&h);
        h.type = type;
        h.serial = 7;
        h.sender = sender;
        h.path = path;
        h.interface = iface;
        h.member = member;
        ck_assert_int_eq(msg_build(&h, body, body ? strlen(body) : 0, &m), 0);
        return m;
}

static struct msg *sig(const char *path, const char *member, const char *body)
{
        return msg_new_full(MSG_SIGNAL, ":1.1", path, "org.x.I", member, body);
}

/* Route m, then return the per-owner delivery counts as "a,b,c" and reset them. */
static const char *route(struct msg *m)
{
        static char text[32];

        match_index_route(&idx, m, owns, names, deliver, &idx);
        msg_unref(m);
        snprintf(text, sizeof(text), "%u,%u,%u", delivered[0], delivered[1], delivered[2]);
        memset(delivered, 0, sizeof(delivered));
        return text;
}

START_TEST(test_add_remove_refcount)
{
        add(0, "{\"member\":\"Changed\"}");
        add(0, "{\"member\":\"Changed\"}");
        ck_assert_uint_eq(owners[0].n_rules, 2);
        ck_assert_str_eq(route(sig("/a", "Changed", NULL)), "1,0,0");

        /* one RemoveMatch removes one instance; the rule still matches */
        ck_assert_int_eq(del(0, "{\"member\":\"Changed\"}"), 0);
        ck_assert_uint_eq(owners[0].n_rules, 1);
        ck_assert_str_eq(route(sig("/a", "Changed", NULL)), "1,0,0");

        ck_assert_int_eq(del(0, "{\"member\":\"Changed\"}"), 0);
        ck_assert_uint_eq(owners[0].n_rules, 0);
        ck_assert_str_eq(route(sig("/a", "Changed", NULL)), "0,0,0");
        ck_assert_int_eq(del(0, "{\"member\":\"Changed\"}"), MATCH_E_NOT_FOUND);
        /* the empty bucket is gone */
        ck_assert_uint_eq(map_size(&idx.buckets), 0);
}
END_TEST

START_TEST(test_remove_needs_equal_rule_of_same_owner)
{
        add(0, "{\"type\":\"signal\",\"member\":\"Changed\"}");
        ck_assert_int_eq(del(1, "{\"type\":\"signal\",\"member\":\"Changed\"}"), MATCH_E_NOT_FOUND);
        ck_assert_int_eq(del(0, "{\"member\":\"Changed\"}"), MATCH_E_NOT_FOUND);
        ck_assert_int_eq(del(0, "{\"type\":\"signal\",\"member\":\"Changed\",\"path\":\"/a\"}"), MATCH_E_NOT_FOUND);
        ck_assert_uint_eq(owners[0].n_rules, 1);
        /* key order does not make a different rule */
        ck_assert_int_eq(del(0, "{\"member\":\"Changed\",\"type\":\"signal\"}"), 0);
}
END_TEST

START_TEST(test_buckets_and_wildcard)
{
        add(0, "{\"member\":\"A\"}");
        add(1, "{\"member\":\"B\"}");
        add(2, "{\"interface\":\"org.x.I\"}");
        /* one bucket per member, and one for the interface of a rule without member */
        ck_assert_uint_eq(map_size(&idx.buckets), 3);

        ck_assert_str_eq(route(sig("/p", "A", NULL)), "1,0,1");
        ck_assert_str_eq(route(sig("/p", "B", NULL)), "0,1,1");
        ck_assert_str_eq(route(sig("/p", "C", NULL)), "0,0,1");
        /* the interface bucket holds only its interface's rules */
        ck_assert_str_eq(route(msg_new_full(MSG_SIGNAL, ":1.1", "/p", "org.x.J", "C", NULL)), "0,0,0");
        ck_assert_str_eq(route(msg_new_full(MSG_SIGNAL, ":1.1", "/p", "org.x.J", "A", NULL)), "1,0,0");
        /* a message without member (an error) looks at the wildcard bucket only */
        {
                struct msg_header h;
                struct msg *m;

                msg_header_init(&h);
                h.type = MSG_ERROR;
                h.serial = 3;
                h.reply_serial = 2;
                h.error_name = "org.x.Error.Bad";
                ck_assert_int_eq(msg_build(&h, NULL, 0, &m), 0);
                ck_assert_str_eq(route(m), "0,0,0");
        }
}
END_TEST

START_TEST(test_unrelated_buckets_not_scanned)
{
        /* rules with a well-known sender make the index ask `owns`, so the
         * number of calls shows which rules routing looked at */
        for (int i = 0; i < 50; i++) {
                char rule[128];

                snprintf(rule, sizeof(rule), "{\"sender\":\"org.x.Other\",\"member\":\"M%d\"}", i);
                add(1, rule);
        }
        add(0, "{\"sender\":\"org.x.Owned\",\"member\":\"Hit\"}");

        ck_assert_str_eq(route(sig("/p", "Hit", NULL)), "1,0,0");
        ck_assert_uint_eq(owns_calls, 1);

        owns_calls = 0;
        ck_assert_str_eq(route(sig("/p", "M7", NULL)), "0,0,0");
        ck_assert_uint_eq(owns_calls, 1);

        owns_calls = 0;
        ck_assert_str_eq(route(sig("/p", "Nothing", NULL)), "0,0,0");
        ck_assert_uint_eq(owns_calls, 0);
}
END_TEST

START_TEST(test_deliver_once)
{
        /* three rules of owner 0 match, in both buckets; two of owner 1 */
        add(0, "{\"member\":\"Changed\"}");
        add(0, "{\"type\":\"signal\",\"member\":\"Changed\"}");
        add(0, "{}");
        add(1, "{\"path\":\"/a\"}");
        add(1, "{\"interface\":\"org.x.I\"}");
        ck_assert_str_eq(route(sig("/a", "Changed", NULL)), "1,1,0");
        /* and again on the next message: the per-pass stamp is not sticky */
        ck_assert_str_eq(route(sig("/a", "Changed", NULL)), "1,1,0");
        ck_assert_str_eq(route(sig("/b", "Other", NULL)), "1,1,0");
        ck_assert_str_eq(route(msg_new_full(MSG_SIGNAL, ":1.1", "/b", "org.y.J", "Other", NULL)), "1,0,0");
}
END_TEST

START_TEST(test_path_namespace)
{
        add(0, "{\"path_namespace\":\"/a\"}");
        add(1, "{\"path_namespace\":\"/\"}");
        add(2, "{\"path\":\"/a\"}");
        ck_assert_str_eq(route(sig("/a", "M", NULL)), "1,1,1");
        ck_assert_str_eq(route(sig("/a/b/c", "M", NULL)), "1,1,0");
        ck_assert_str_eq(route(sig("/ab", "M", NULL)), "0,1,0");
        ck_assert_str_eq(route(sig("/", "M", NULL)), "0,1,0");
}
END_TEST

START_TEST(test_args)
{
        add(0, "{\"member\":\"Changed\",\"args\":{\"title\":\"hello\"}}");
        add(1, "{\"args\":{\"title\":\"hello\",\"kind\":\"note\"}}");
        ck_assert_str_eq(route(sig("/a", "Changed", "{\"title\":\"hello\",\"kind\":\"note\"}")), "1,1,0");
        ck_assert_str_eq(route(sig("/a", "Changed", "{\"title\":\"hello\"}")), "1,0,0");
        ck_assert_str_eq(route(sig("/a", "Changed", "{\"title\":\"other\",\"kind\":\"note\"}")), "0,0,0");
        ck_assert_str_eq(route(sig("/a", "Changed", "{\"title\":3}")), "0,0,0");
        ck_assert_str_eq(route(sig("/a", "Changed", "{\"nested\":{\"title\":\"hello\"}}")), "0,0,0");
        ck_assert_str_eq(route(sig("/a", "Changed", NULL)), "0,0,0");
        ck_assert_str_eq(route(sig("/a", "Changed", "{\"title\":\"hel\\u006co\"}")), "1,0,0");
        /* escaped keys and values are looked up decoded */
        ck_assert_str_eq(route(sig("/a", "Changed", "{\"ti\\u0074le\":\"hello\",\"kind\":\"\\u006eote\"}")), "1,1,0");
}
END_TEST

START_TEST(test_sender)
{
        add(0, "{\"sender\":\":1.1\"}");
        add(1, "{\"sender\":\"org.x.Owned\"}");
        add(2, "{\"sender\":\"org.x.NotOwned\"}");
        ck_assert_str_eq(route(sig("/a", "M", NULL)), "1,1,0");
        ck_assert_str_eq(route(msg_new_full(MSG_SIGNAL, ":1.2", "/a", "org.x.I", "M", NULL)), "0,0,0");
}
END_TEST

START_TEST(test_type)
{
        add(0, "{\"type\":\"call\"}");
        add(1, "{\"type\":\"signal\",\"member\":\"M\"}");
        ck_assert_str_eq(route(msg_new_full(MSG_CALL, ":1.1", "/a", NULL, "M", NULL)), "1,0,0");
        ck_assert_str_eq(route(sig("/a", "M", NULL)), "0,1,0");
}
END_TEST

START_TEST(test_remove_owner)
{
        add(0, "{\"member\":\"A\"}");
        add(0, "{\"member\":\"A\"}");
        add(0, "{\"member\":\"B\"}");
        add(0, "{}");
        add(1, "{\"member\":\"A\"}");
        ck_assert_uint_eq(owners[0].n_rules, 4);

        match_index_remove_owner(&idx, &owners[0]);
        ck_assert_uint_eq(owners[0].n_rules, 0);
        ck_assert(list_is_empty(&owners[0].rules));
        /* B's bucket went with its last rule, A's stays for owner 1 */
        ck_assert_uint_eq(map_size(&idx.buckets), 1);
        ck_assert_str_eq(route(sig("/a", "A", NULL)), "0,1,0");
        ck_assert_str_eq(route(sig("/a", "B", NULL)), "0,0,0");
}
END_TEST

START_TEST(test_deinit_with_rules)
{
        /* deinit drops whatever is left, buckets included (valgrind checks the rest) */
        struct match_index other;
        struct match_owner o;
        struct match_rule r;

        match_index_init(&other);
        match_owner_init(&o);
        for (int i = 0; i < 3; i++) {
                parse(&r, i == 2 ? "{}" : "{\"member\":\"X\"}");
                ck_assert_int_eq(match_index_add(&other, &o, &r), 0);
        }
        parse(&r, "{\"member\":\"Y\"}");
        ck_assert_int_eq(match_index_add(&other, &o, &r), 0);
        ck_assert_uint_eq(o.n_rules, 4);
        match_index_deinit(&other);
        ck_assert_uint_eq(o.n_rules, 0);
        match_owner_deinit(&o);
}
END_TEST

/* Owner 1 holds n rules of every kind, none naming a value of sig("/a/b", "M", ...) from ":1.1". */
static void add_unrelated(int n)
{
        for (int i = 0; i < n; i++) {
                char rule[160];

                switch (i % 9) {
                case 0:
                        snprintf(rule, sizeof(rule), "{\"sender\":\"org.x.Other%d\"}", i);
                        break;
                case 1:
                        snprintf(rule, sizeof(rule), "{\"sender\":\":1.%d\"}", 1000 + i);
                        break;
                case 2:
                        snprintf(rule, sizeof(rule), "{\"interface\":\"org.x.Other%d\"}", i);
                        break;
                case 3:
                        snprintf(rule, sizeof(rule), "{\"member\":\"Other%d\"}", i);
                        break;
                case 4:
                        snprintf(rule, sizeof(rule), "{\"path\":\"/a/b/other%d\"}", i);
                        break;
                case 5:
                        snprintf(rule, sizeof(rule), "{\"path_namespace\":\"/a/b/other%d\"}", i);
                        break;
                case 6:
                        snprintf(rule, sizeof(rule), "{\"destination\":\":1.%d\"}", 1000 + i);
                        break;
                case 7:
                        snprintf(rule, sizeof(rule), "{\"args\":{\"title\":\"other%d\"}}", i);
                        break;
                default:
                        snprintf(rule, sizeof(rule), "{\"args\":{\"other%d\":\"hello\"}}", i);
                        break;
                }
                add(1, rule);
        }
}

START_TEST(test_unrelated_rules_not_visited)
{
        add_unrelated(9 * 200);
        add(0, "{\"member\":\"M\",\"args\":{\"title\":\"hello\"}}");
        add(2, "{\"path_namespace\":\"/a\"}");
        ck_assert_str_eq(route(sig("/a/b", "M", "{\"title\":\"hello\",\"kind\":\"note\"}")), "1,0,1");
        ck_assert_uint_eq(idx.n_visited, 2);
        /* owner 0's rule is filed under its argument value, which this message lacks */
        ck_assert_str_eq(route(sig("/a/b", "M", "{\"title\":\"other\"}")), "0,0,1");
        ck_assert_uint_eq(idx.n_visited, 1);
        ck_assert_str_eq(route(sig("/c", "N", NULL)), "0,0,0");
        ck_assert_uint_eq(idx.n_visited, 0);
        /* the unrelated rules still work, each for its own value */
        ck_assert_str_eq(route(sig("/a/b/other4", "M", NULL)), "0,1,1");
        ck_assert_str_eq(route(sig("/a/b/other5/x", "M", NULL)), "0,1,1");
        ck_assert_str_eq(route(sig("/z", "Other3", NULL)), "0,1,0");
        ck_assert_str_eq(route(sig("/z", "M", "{\"title\":\"other7\"}")), "0,1,0");
        ck_assert_str_eq(route(sig("/z", "M", "{\"other8\":\"hello\"}")), "0,1,0");
        ck_assert_str_eq(route(msg_new_full(MSG_SIGNAL, ":1.1001", "/z", "org.x.I", "M", NULL)), "0,1,0");
        ck_assert_str_eq(route(msg_new_full(MSG_SIGNAL, ":1.1", "/z", "org.x.Other2", "M", NULL)), "0,1,0");
        ck_assert_uint_eq(idx.n_visited, 1);
}
END_TEST

START_TEST(test_filed_under_smallest_bucket)
{
        /* 100 rules share member M and differ in path: each goes to its path's bucket */
        for (int i = 0; i < 100; i++) {
                char rule[96];

                snprintf(rule, sizeof(rule), "{\"member\":\"M\",\"path\":\"/p%d\"}", i);
                add(1, rule);
        }
        /* the first rule went to the member bucket, empty then (members break ties with paths) */
        ck_assert_str_eq(route(sig("/q", "M", NULL)), "0,0,0");
        ck_assert_uint_eq(idx.n_visited, 1);
        ck_assert_str_eq(route(sig("/p42", "M", NULL)), "0,1,0");
        ck_assert_uint_eq(idx.n_visited, 2);
        ck_assert_str_eq(route(sig("/p42", "N", NULL)), "0,0,0");
        ck_assert_uint_eq(idx.n_visited, 1);
        /* and removing finds them wherever they went */
        for (int i = 0; i < 100; i++) {
                char rule[96];

                snprintf(rule, sizeof(rule), "{\"path\":\"/p%d\",\"member\":\"M\"}", i);
                ck_assert_int_eq(del(1, rule), 0);
        }
        ck_assert_uint_eq(map_size(&idx.buckets), 0);
}
END_TEST

START_TEST(test_args_one_scan)
{
        /* many argument rules and a body with many members: lookups, not rules x members */
        char *body = malloc(2 + 5000 * 24), *p = body;

        for (int i = 0; i < 5000; i++) {
                char rule[96];

                snprintf(rule, sizeof(rule), "{\"args\":{\"k%d\":\"v%d\"}}", i, i);
                add(1, rule);
        }
        add(0, "{\"member\":\"M\",\"args\":{\"k7\":\"v7\",\"m9\":\"x\"}}");
        *p++ = '{';
        for (int i = 0; i < 5000; i++)
                p += sprintf(p, "%s\"m%d\":\"v%d\"", i ? "," : "", i, i);
        strcpy(p, "}");
        ck_assert_str_eq(route(sig("/a", "M", body)), "0,0,0");
        ck_assert_uint_eq(idx.n_visited, 0);
        memcpy(body + 2, "k", 1); /* the first member becomes "k0":"v0" */
        ck_assert_str_eq(route(sig("/a", "M", body)), "0,1,0");
        ck_assert_uint_eq(idx.n_visited, 1);
        free(body);
        ck_assert_str_eq(route(sig("/a", "M", "{\"m9\":\"x\",\"k7\":\"v7\"}")), "1,1,0");
        ck_assert_uint_eq(idx.n_visited, 2);
}
END_TEST

START_TEST(test_args_last_duplicate_wins)
{
        add(0, "{\"args\":{\"a\":\"x\"}}");
        add(1, "{\"args\":{\"a\":\"y\"}}");
        add(2, "{\"member\":\"M\",\"args\":{\"a\":\"y\",\"b\":\"z\"}}");
        ck_assert_str_eq(route(sig("/p", "M", "{\"a\":\"x\",\"b\":\"z\",\"a\":\"y\"}")), "0,1,1");
        ck_assert_str_eq(route(sig("/p", "M", "{\"a\":\"y\",\"a\":\"x\"}")), "1,0,0");
        /* the last counts whatever its type (PROTOCOL.md 4): a=3 matches no string */
        ck_assert_str_eq(route(sig("/p", "M", "{\"a\":\"y\",\"a\":3}")), "0,0,0");
        ck_assert_str_eq(route(sig("/p", "M", "{\"a\":3,\"a\":\"y\"}")), "0,1,0");
}
END_TEST

START_TEST(test_sender_names_looked_up)
{
        /* 100 rules on well-known senders nobody owns cost a message nothing */
        for (int i = 0; i < 100; i++) {
                char rule[96];

                snprintf(rule, sizeof(rule), "{\"sender\":\"org.x.Other%d\"}", i);
                add(1, rule);
        }
        add(0, "{\"sender\":\"org.x.Owned\"}");
        add(2, "{\"sender\":\"org.ipcbus.Bus\"}");
        owns_calls = 0;
        ck_assert_str_eq(route(sig("/a", "M", NULL)), "1,0,0");
        ck_assert_uint_eq(idx.n_visited, 1);
        ck_assert_str_eq(route(msg_new_full(MSG_SIGNAL, ":1.2", "/a", "org.x.I", "M", NULL)), "0,0,0");
        ck_assert_uint_eq(idx.n_visited, 0);
        /* the driver's messages carry its name as sender */
        ck_assert_str_eq(route(msg_new_full(MSG_SIGNAL, "org.ipcbus.Bus", "/a", "org.x.I", "M", NULL)), "0,0,1");
        ck_assert_uint_eq(idx.n_visited, 1);
}
END_TEST

START_TEST(test_destination)
{
        struct msg_header h;
        struct msg *m;

        add(0, "{\"destination\":\":1.4\"}");
        add(1, "{\"destination\":\":1.5\",\"member\":\"M\"}");
        msg_header_init(&h);
        h.type = MSG_SIGNAL;
        h.serial = 3;
        h.sender = ":1.1";
        h.destination = ":1.4";
        h.path = "/a";
        h.interface = "org.x.I";
        h.member = "M";
        ck_assert_int_eq(msg_build(&h, NULL, 0, &m), 0);
        ck_assert_str_eq(route(m), "1,0,0");
        h.destination = ":1.5";
        ck_assert_int_eq(msg_build(&h, NULL, 0, &m), 0);
        ck_assert_str_eq(route(m), "0,1,0");
        ck_assert_str_eq(route(sig("/a", "M", NULL)), "0,0,0");
}
END_TEST

START_TEST(test_namespace_prefixes)
{
        add(0, "{\"path_namespace\":\"/a/b\"}");
        add(1, "{\"path_namespace\":\"/a/bc/d\"}");
        ck_assert_str_eq(route(sig("/a/b", "M", NULL)), "1,0,0");
        ck_assert_str_eq(route(sig("/a/b/c/d/e", "M", NULL)), "1,0,0");
        ck_assert_str_eq(route(sig("/a/bc", "M", NULL)), "0,0,0");
        ck_assert_str_eq(route(sig("/a/bc/d", "M", NULL)), "0,1,0");
        ck_assert_str_eq(route(sig("/a/bc/de", "M", NULL)), "0,0,0");
        ck_assert_str_eq(route(sig("/a", "M", NULL)), "0,0,0");
        ck_assert_str_eq(route(sig("/", "M", NULL)), "0,0,0");
}
END_TEST

static Suite *match_index_suite(void)
{
        Suite *s = suite_create("daemon_match");
        TCase *tc = tcase_create("index");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_add_remove_refcount);
        tcase_add_test(tc, test_remove_needs_equal_rule_of_same_owner);
        tcase_add_test(tc, test_buckets_and_wildcard);
        tcase_add_test(tc, test_unrelated_buckets_not_scanned);
        tcase_add_test(tc, test_deliver_once);
        tcase_add_test(tc, test_path_namespace);
        tcase_add_test(tc, test_args);
        tcase_add_test(tc, test_sender);
        tcase_add_test(tc, test_type);
        tcase_add_test(tc, test_remove_owner);
        tcase_add_test(tc, test_deinit_with_rules);
        tcase_add_test(tc, test_unrelated_rules_not_visited);
        tcase_add_test(tc, test_filed_under_smallest_bucket);
        tcase_add_test(tc, test_args_one_scan);
        tcase_add_test(tc, test_args_last_duplicate_wins);
        tcase_add_test(tc, test_sender_names_looked_up);
        tcase_add_test(tc, test_destination);
        tcase_add_test(tc, test_namespace_prefixes);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return check_run(match_index_suite());
}
