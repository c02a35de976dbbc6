/* SPDX-License-Identifier: MIT */
/* Unit tests for daemon/bus/policy: rule matching, order, defaults and the shipped policies (daemon/CONFIG.md). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/bus/policy.h"
#include "daemon/launch/config.h"
#include "protocol/message.h"
#include "tests/check-run.h"

static struct bus_config config;

/* The policy of `rules`, the inside of a "policy" array. */
static const struct policy *load(const char *rules)
{
        char json[4096], err[512] = "";
        int r;

        bus_config_deinit(&config);
        snprintf(json, sizeof(json), "{\"policy\": [%s]}", rules);
        r = bus_config_parse(&config, json, strlen(json), "test.json", err, sizeof(err));
        ck_assert_msg(r == 0, "%s: %s", json, err);
        return &config.policy;
}

static void setup(void)
{
        bus_config_init(&config);
}

static void teardown(void)
{
        bus_config_deinit(&config);
}

#define USER(u) (&(struct policy_subject){.uid = (u), .gid = (u)})

/* A peer on the other side: a unique name and up to three well-known names. */
struct fake_peer {
        const char *unique;
        const char *names[3];
};

static bool fake_owns(const char *name, void *userdata)
{
        const struct fake_peer *f = userdata;

        for (size_t i = 0; i < 3 && f->names[i]; i++)
                if (strcmp(f->names[i], name) == 0)
                        return true;
        return false;
}

static bool fake_owns_prefix(const char *prefix, void *userdata)
{
        const struct fake_peer *f = userdata;

        for (size_t i = 0; i < 3 && f->names[i]; i++)
                if (policy_name_has_prefix(f->names[i], prefix))
                        return true;
        return false;
}

static struct policy_peer peer_of(struct fake_peer *f)
{
        return (struct policy_peer){f->unique, fake_owns, f, fake_owns_prefix};
}

static struct msg_header header(enum msg_type type, const char *path, const char *interface, const char *member)
{
        struct msg_header h;

        msg_header_init(&h);
        h.type = type;
        h.serial = 1;
        h.path = path;
        h.interface = interface;
        h.member = member;
        return h;
}

static bool may_send(const struct policy *p, uid_t uid, const struct msg_header *h, struct fake_peer *to)
{
        struct policy_peer peer = to ? peer_of(to) : (struct policy_peer){0};

        return policy_check_send(p, USER(uid), h, to ? &peer : NULL).allowed;
}

static bool may_receive(const struct policy *p, uid_t uid, const struct msg_header *h, struct fake_peer *from)
{
        struct policy_peer peer = peer_of(from);

        return policy_check_receive(p, USER(uid), h, &peer).allowed;
}

START_TEST(test_defaults)
{
        struct fake_peer svc = {":1.1", {"org.a.S"}};
        struct msg_header h = header(MSG_CALL, "/", NULL, "M");
        struct policy_verdict v;
        char buf[32];

        load("");
        v = policy_check_connect(&config.policy, USER(1000));
        ck_assert(v.allowed);
        ck_assert_ptr_null(v.rule);
        ck_assert_str_eq(policy_rule_describe(v.rule, buf, sizeof(buf)), "default");
        ck_assert(policy_check_own(&config.policy, USER(1000), "org.a.S").allowed);
        ck_assert(may_send(&config.policy, 1000, &h, &svc));
        ck_assert(may_receive(&config.policy, 1000, &h, &svc));
        /* Monitoring is for root only, unless a rule allows it. */
        v = policy_check_monitor(&config.policy, USER(1000));
        ck_assert(!v.allowed);
        ck_assert_ptr_null(v.rule);
        ck_assert(policy_check_monitor(&config.policy, USER(0)).allowed);
}
END_TEST

/* One deny rule per action: it applies to its action and to no other. */
START_TEST(test_each_action)
{
        static const char *const actions[] = {"connect", "own", "send", "receive", "monitor"};
        struct fake_peer svc = {":1.1", {"org.a.S"}};
        struct msg_header h = header(MSG_CALL, "/", "org.a.I", "M");
        const struct policy *p;
        char rules[128];
        bool verdicts[5];

        snprintf(rules, sizeof(rules), "{\"%s\": \"%s\"}", _i == POLICY_MONITOR ? "allow" : "deny", actions[_i]);
        p = load(rules);
        ck_assert_str_eq(policy_action_to_string(_i), actions[_i]);
        ck_assert_uint_eq(p->n_by_action[_i], 1);
        verdicts[POLICY_CONNECT] = policy_check_connect(p, USER(1000)).allowed;
        verdicts[POLICY_OWN] = policy_check_own(p, USER(1000), "org.a.S").allowed;
        verdicts[POLICY_SEND] = may_send(p, 1000, &h, &svc);
        verdicts[POLICY_RECEIVE] = may_receive(p, 1000, &h, &svc);
        verdicts[POLICY_MONITOR] = policy_check_monitor(p, USER(1000)).allowed;
        for (int a = 0; a < 5; a++) {
                bool expect = a == POLICY_MONITOR ? a == _i : a != _i;

                ck_assert_msg(verdicts[a] == expect, "rule %s: %s is %s", rules, actions[a],
                              verdicts[a] ? "allowed" : "denied");
        }
}
END_TEST

START_TEST(test_user)
{
        char rules[256];
        const struct policy *p;

        p = load("{\"deny\": \"connect\", \"user\": 1000}");
        ck_assert(!policy_check_connect(p, USER(1000)).allowed);
        ck_assert(policy_check_connect(p, USER(1001)).allowed);
        ck_assert(policy_check_connect(p, USER(0)).allowed);

        p = load("{\"deny\": \"connect\", \"user\": \"root\"}");
        ck_assert(!policy_check_connect(p, USER(0)).allowed);
        ck_assert(policy_check_connect(p, USER(1)).allowed);

        p = load("{\"deny\": \"connect\", \"user\": \"*\"}");
        ck_assert(!policy_check_connect(p, USER(0)).allowed);
        ck_assert(!policy_check_connect(p, USER(65534)).allowed);

        p = load("{\"deny\": \"connect\"}, {\"allow\": \"connect\", \"user\": \"@self\"}");
        ck_assert(policy_check_connect(p, USER(getuid())).allowed);
        ck_assert(!policy_check_connect(p, USER(getuid() + 1)).allowed);

        /* The user is matched by uid, not by the subject's group. */
        snprintf(rules, sizeof(rules), "{\"deny\": \"connect\", \"user\": 50}");
        p = load(rules);
        ck_assert(policy_check_connect(p, &(struct policy_subject){.uid = 7, .gid = 50}).allowed);
}
END_TEST

START_TEST(test_group)
{
        const gid_t groups[] = {10, 20, 30};
        const struct policy *p = load("{\"deny\": \"own\", \"group\": 20}");

        /* primary group */
        ck_assert(!policy_check_own(p, &(struct policy_subject){.uid = 1000, .gid = 20}, "a.b").allowed);
        /* supplementary group, first, middle and last */
        ck_assert(!policy_check_own(p, &(struct policy_subject){1000, 5, groups, 3}, "a.b").allowed);
        ck_assert(!policy_check_own(p, &(struct policy_subject){1000, 5, groups + 1, 1}, "a.b").allowed);
        ck_assert(!policy_check_own(p, &(struct policy_subject){1000, 5, groups, 2}, "a.b").allowed);
        /* not in the group */
        ck_assert(policy_check_own(p, &(struct policy_subject){1000, 5, groups, 1}, "a.b").allowed);
        ck_assert(policy_check_own(p, &(struct policy_subject){1000, 5, groups + 2, 1}, "a.b").allowed);
        ck_assert(policy_check_own(p, &(struct policy_subject){.uid = 20, .gid = 5}, "a.b").allowed);

        p = load("{\"deny\": \"own\", \"group\": \"root\"}");
        ck_assert(!policy_check_own(p, &(struct policy_subject){.uid = 1000, .gid = 0}, "a.b").allowed);
        ck_assert(policy_check_own(p, &(struct policy_subject){.uid = 0, .gid = 1}, "a.b").allowed);
}
END_TEST

START_TEST(test_own)
{
        const struct policy *p;

        p = load("{\"deny\": \"own\"}, {\"allow\": \"own\", \"name_prefix\": \"org.a\"},"
                 "{\"allow\": \"own\", \"name\": \"org.x.Y\"}");
        ck_assert(policy_check_own(p, USER(1000), "org.a").allowed);
        ck_assert(policy_check_own(p, USER(1000), "org.a.b").allowed);
        ck_assert(policy_check_own(p, USER(1000), "org.a.b.c").allowed);
        ck_assert(!policy_check_own(p, USER(1000), "org.ab").allowed);
        ck_assert(!policy_check_own(p, USER(1000), "org.b").allowed);
        ck_assert(policy_check_own(p, USER(1000), "org.x.Y").allowed);
        ck_assert(!policy_check_own(p, USER(1000), "org.x.Y.Z").allowed);
        ck_assert(!policy_check_own(p, USER(1000), "org.x.Yz").allowed);
        ck_assert(!policy_check_own(p, USER(1000), "org.x").allowed);
        ck_assert_uint_eq(policy_check_own(p, USER(1000), "org.a.b").rule->index, 1);
        ck_assert_uint_eq(policy_check_own(p, USER(1000), "org.b").rule->index, 0);

        ck_assert(policy_name_has_prefix("org.a", "org.a"));
        ck_assert(policy_name_has_prefix("org.a.b", "org.a"));
        ck_assert(!policy_name_has_prefix("org.ab", "org.a"));
        ck_assert(!policy_name_has_prefix("org", "org.a"));
}
END_TEST

START_TEST(test_send_criteria)
{
        struct fake_peer svc = {":1.1", {"org.a.S", "com.b.T"}};
        struct fake_peer other = {":1.2", {"org.ab.S"}};
        struct msg_header call = header(MSG_CALL, "/org/a/obj", "org.a.I", "Get");
        struct msg_header h;
        const struct policy *p;

        /* destination by well-known name, whichever the sender addressed */
        p = load("{\"deny\": \"send\", \"name\": \"com.b.T\"}");
        ck_assert(!may_send(p, 1000, &call, &svc));
        ck_assert(may_send(p, 1000, &call, &other));
        /* destination by unique name */
        p = load("{\"deny\": \"send\", \"name\": \":1.2\"}");
        ck_assert(may_send(p, 1000, &call, &svc));
        ck_assert(!may_send(p, 1000, &call, &other));
        /* destination by prefix */
        p = load("{\"deny\": \"send\", \"name_prefix\": \"org.a\"}");
        ck_assert(!may_send(p, 1000, &call, &svc));
        ck_assert(may_send(p, 1000, &call, &other));
        /* a broadcast has no destination: name rules pass it by */
        h = header(MSG_SIGNAL, "/org/a/obj", "org.a.I", "Changed");
        ck_assert(may_send(p, 1000, &h, NULL));
        ck_assert(!may_send(p, 1000, &h, &svc));

        /* interface */
        p = load("{\"deny\": \"send\", \"interface\": \"org.a.I\"}");
        ck_assert(!may_send(p, 1000, &call, &svc));
        h = header(MSG_CALL, "/org/a/obj", "org.a.J", "Get");
        ck_assert(may_send(p, 1000, &h, &svc));
        /* member */
        p = load("{\"deny\": \"send\", \"member\": \"Get\"}");
        ck_assert(!may_send(p, 1000, &call, &svc));
        h = header(MSG_CALL, "/org/a/obj", "org.a.I", "Set");
        ck_assert(may_send(p, 1000, &h, &svc));
        /* path */
        p = load("{\"deny\": \"send\", \"path\": \"/org/a\"}");
        ck_assert(may_send(p, 1000, &call, &svc));
        h = header(MSG_CALL, "/org/a", "org.a.I", "Get");
        ck_assert(!may_send(p, 1000, &h, &svc));
        /* path_prefix: the path and below, not a sibling with the same start */
        p = load("{\"deny\": \"send\", \"path_prefix\": \"/org/a\"}");
        ck_assert(!may_send(p, 1000, &call, &svc));
        ck_assert(!may_send(p, 1000, &h, &svc));
        h = header(MSG_CALL, "/org/ab", "org.a.I", "Get");
        ck_assert(may_send(p, 1000, &h, &svc));
        h = header(MSG_CALL, "/org", "org.a.I", "Get");
        ck_assert(may_send(p, 1000, &h, &svc));
        /* type */
        p = load("{\"deny\": \"send\", \"type\": \"signal\"}");
        ck_assert(may_send(p, 1000, &call, &svc));
        h = header(MSG_SIGNAL, "/org/a/obj", "org.a.I", "Changed");
        ck_assert(!may_send(p, 1000, &h, &svc));
        ck_assert(!may_send(p, 1000, &h, NULL));
        h = header(MSG_ERROR, "/", NULL, NULL);
        ck_assert(may_send(p, 1000, &h, &svc));

        /* all criteria together: each must match */
        p = load("{\"deny\": \"send\", \"name\": \"org.a.S\", \"interface\": \"org.a.I\", \"member\": \"Get\","
                 "\"path_prefix\": \"/org\", \"type\": \"call\", \"user\": 1000}");
        ck_assert(!may_send(p, 1000, &call, &svc));
        ck_assert(may_send(p, 1001, &call, &svc));
        ck_assert(may_send(p, 1000, &call, &other));
        h = header(MSG_CALL, "/org/a/obj", "org.a.I", "Put");
        ck_assert(may_send(p, 1000, &h, &svc));
        h = header(MSG_CALL, "/net", "org.a.I", "Get");
        ck_assert(may_send(p, 1000, &h, &svc));
}
END_TEST

START_TEST(test_receive_criteria)
{
        struct fake_peer svc = {":1.1", {"org.a.S"}};
        struct fake_peer other = {":1.2", {NULL}};
        struct msg_header sig = header(MSG_SIGNAL, "/org/a", "org.a.I", "Changed");
        const struct policy *p;

        /* the name is the sender's */
        p = load("{\"deny\": \"receive\", \"name\": \"org.a.S\", \"member\": \"Changed\"}");
        ck_assert(!may_receive(p, 1000, &sig, &svc));
        ck_assert(may_receive(p, 1000, &sig, &other));
        p = load("{\"deny\": \"receive\", \"name_prefix\": \"org.a\"}");
        ck_assert(!may_receive(p, 1000, &sig, &svc));
        ck_assert(may_receive(p, 1000, &sig, &other));
        p = load("{\"deny\": \"receive\", \"name\": \":1.2\"}");
        ck_assert(may_receive(p, 1000, &sig, &svc));
        ck_assert(!may_receive(p, 1000, &sig, &other));
        /* the receiver is the subject */
        p = load("{\"deny\": \"receive\", \"user\": 1000, \"type\": \"signal\"}");
        ck_assert(!may_receive(p, 1000, &sig, &svc));
        ck_assert(may_receive(p, 1001, &sig, &svc));
        /* send rules say nothing about receiving, and the other way round */
        p = load("{\"deny\": \"send\"}");
        ck_assert(may_receive(p, 1000, &sig, &svc));
        p = load("{\"deny\": \"receive\"}");
        ck_assert(may_send(p, 1000, &sig, &svc));
}
END_TEST

START_TEST(test_no_interface)
{
        struct fake_peer svc = {":1.1", {"org.a.S"}};
        struct msg_header bare = header(MSG_CALL, "/", NULL, "Get");
        const struct policy *p;

        /* Leaving the interface out does not get around a denial ... */
        p = load("{\"deny\": \"send\", \"interface\": \"org.a.I\"}");
        ck_assert(!may_send(p, 1000, &bare, &svc));
        /* ... nor into an allowance. */
        p = load("{\"deny\": \"send\"}, {\"allow\": \"send\", \"interface\": \"org.a.I\"}");
        ck_assert(!may_send(p, 1000, &bare, &svc));
        bare.interface = "org.a.I";
        ck_assert(may_send(p, 1000, &bare, &svc));
}
END_TEST

START_TEST(test_prefix_undecidable)
{
        /* A peer that cannot answer prefix questions: deny rules apply, allow rules do not. */
        struct fake_peer svc = {":1.1", {"org.a.S"}};
        struct policy_peer peer = {svc.unique, fake_owns, &svc, NULL};
        struct msg_header call = header(MSG_CALL, "/", "org.b.I", "Get");
        const struct policy *p;

        p = load("{\"deny\": \"send\", \"name_prefix\": \"net.x\"}");
        ck_assert(!policy_check_send(p, USER(1000), &call, &peer).allowed);
        p = load("{\"deny\": \"send\"}, {\"allow\": \"send\", \"name_prefix\": \"org.a\"}");
        ck_assert(!policy_check_send(p, USER(1000), &call, &peer).allowed);
        /* owns() alone decides exact names */
        p = load("{\"deny\": \"send\"}, {\"allow\": \"send\", \"name\": \"org.a.S\"}");
        ck_assert(policy_check_send(p, USER(1000), &call, &peer).allowed);
}
END_TEST

START_TEST(test_order)
{
        struct fake_peer svc = {":1.1", {"org.a.S"}};
        struct msg_header ping = header(MSG_CALL, "/", "org.a.I", "Ping");
        struct msg_header get = header(MSG_CALL, "/", "org.a.I", "Get");
        struct policy_verdict v;
        struct policy_peer peer = peer_of(&svc);
        const struct policy *p;
        char buf[32];

        /* The last applicable rule wins. */
        p = load("{\"deny\": \"send\"}, {\"allow\": \"send\", \"member\": \"Ping\"}");
        v = policy_check_send(p, USER(1000), &ping, &peer);
        ck_assert(v.allowed);
        ck_assert_str_eq(policy_rule_describe(v.rule, buf, sizeof(buf)), "policy[1]");
        v = policy_check_send(p, USER(1000), &get, &peer);
        ck_assert(!v.allowed);
        ck_assert_str_eq(policy_rule_describe(v.rule, buf, sizeof(buf)), "policy[0]");

        /* The other order: the broad deny comes last and decides everything. */
        p = load("{\"allow\": \"send\", \"member\": \"Ping\"}, {\"deny\": \"send\"}");
        ck_assert(!may_send(p, 1000, &ping, &svc));
        ck_assert(!may_send(p, 1000, &get, &svc));

        /* Rules of other actions and other users between them change nothing. */
        p = load("{\"deny\": \"send\", \"user\": 1000}, {\"allow\": \"own\"}, {\"allow\": \"send\", \"user\": 1001},"
                 "{\"deny\": \"connect\"}");
        v = policy_check_send(p, USER(1000), &get, &peer);
        ck_assert(!v.allowed);
        ck_assert_uint_eq(v.rule->index, 0);
        ck_assert(may_send(p, 1001, &get, &svc));
        ck_assert(may_send(p, 1002, &get, &svc));
}
END_TEST

START_TEST(test_root_monitor)
{
        const struct policy *p = load("{\"deny\": \"monitor\"}, {\"deny\": \"monitor\", \"user\": 0}");

        ck_assert(policy_check_monitor(p, USER(0)).allowed);
        ck_assert(!policy_check_monitor(p, USER(1000)).allowed);
        p = load("{\"allow\": \"monitor\", \"group\": 100}");
        ck_assert(policy_check_monitor(p, &(struct policy_subject){.uid = 1000, .gid = 100}).allowed);
        ck_assert(!policy_check_monitor(p, &(struct policy_subject){.uid = 1000, .gid = 101}).allowed);
}
END_TEST

START_TEST(test_add_copies)
{
        struct policy p;
        char name[] = "org.a.S";
        struct policy_rule rule = {.action = POLICY_OWN, .allow = false, .name = name, .index = 3};

        policy_init(&p);
        for (unsigned i = 0; i < 9; i++)
                ck_assert_int_eq(policy_add(&p, &rule), 0);
        name[0] = 'x';
        ck_assert_uint_eq(p.n_rules, 9);
        ck_assert_uint_eq(p.n_by_action[POLICY_OWN], 9);
        ck_assert(!policy_check_own(&p, USER(1000), "org.a.S").allowed);
        ck_assert(policy_check_own(&p, USER(1000), "xrg.a.S").allowed);
        rule.action = _POLICY_ACTION_MAX;
        ck_assert_int_eq(policy_add(&p, &rule), -EINVAL);
        ck_assert_uint_eq(p.n_rules, 9);
        policy_deinit(&p);
        ck_assert_uint_eq(p.n_rules, 0);
        ck_assert_ptr_null(policy_action_to_string(_POLICY_ACTION_MAX));
}
END_TEST

START_TEST(test_shipped_session)
{
        struct bus_config c;
        uid_t self = getuid(), other = self == 1000 ? 1001 : 1000;
        char err[256] = "";

        ck_assert_msg(bus_config_load_default(&c, BUS_TYPE_SESSION, err, sizeof(err)) == 0, "%s", err);
        /* only the bus's own uid gets in ... */
        ck_assert(policy_check_connect(&c.policy, USER(self)).allowed);
        ck_assert(!policy_check_connect(&c.policy, USER(other)).allowed);
        ck_assert(!policy_check_connect(&c.policy, &(struct policy_subject){.uid = other, .gid = self}).allowed);
        /* ... and may monitor; root always may */
        ck_assert(policy_check_monitor(&c.policy, USER(self)).allowed);
        ck_assert(!policy_check_monitor(&c.policy, USER(other)).allowed);
        ck_assert(policy_check_monitor(&c.policy, USER(0)).allowed);
        /* inside, everything else is allowed */
        ck_assert(policy_check_own(&c.policy, USER(self), "org.a.S").allowed);
        bus_config_deinit(&c);
}
END_TEST

START_TEST(test_shipped_system)
{
        struct bus_config c;
        struct fake_peer svc = {":1.1", {"org.a.S"}};
        struct msg_header call = header(MSG_CALL, "/", "org.a.I", "Get");
        char err[256] = "";

        ck_assert_msg(bus_config_load_default(&c, BUS_TYPE_SYSTEM, err, sizeof(err)) == 0, "%s", err);
        /* everyone connects */
        ck_assert(policy_check_connect(&c.policy, USER(1000)).allowed);
        ck_assert(policy_check_connect(&c.policy, USER(0)).allowed);
        /* root owns any name, others none */
        ck_assert(policy_check_own(&c.policy, USER(0), "org.a.S").allowed);
        ck_assert(policy_check_own(&c.policy, USER(0), "com.x.Y").allowed);
        ck_assert(!policy_check_own(&c.policy, USER(1000), "org.a.S").allowed);
        ck_assert(!policy_check_own(&c.policy, &(struct policy_subject){.uid = 1000, .gid = 0}, "org.a.S").allowed);
        /* sending and receiving are allowed; monitoring is root's */
        ck_assert(policy_check_send(&c.policy, USER(1000), &call,
                                    &(struct policy_peer){":1.1", fake_owns, &svc, fake_owns_prefix})
                          .allowed);
        ck_assert(may_receive(&c.policy, 1000, &call, &svc));
        ck_assert(!policy_check_monitor(&c.policy, USER(1000)).allowed);
        ck_assert(policy_check_monitor(&c.policy, USER(0)).allowed);
        bus_config_deinit(&c);
}
END_TEST

static Suite *policy_suite(void)
{
        Suite *s = suite_create("daemon_policy");
        TCase *tc = tcase_create("policy");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_defaults);
        tcase_add_loop_test(tc, test_each_action, 0, _POLICY_ACTION_MAX);
        tcase_add_test(tc, test_user);
        tcase_add_test(tc, test_group);
        tcase_add_test(tc, test_own);
        tcase_add_test(tc, test_send_criteria);
        tcase_add_test(tc, test_receive_criteria);
        tcase_add_test(tc, test_no_interface);
        tcase_add_test(tc, test_prefix_undecidable);
        tcase_add_test(tc, test_order);
        tcase_add_test(tc, test_root_monitor);
        tcase_add_test(tc, test_add_copies);
        tcase_add_test(tc, test_shipped_session);
        tcase_add_test(tc, test_shipped_system);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        return check_run(policy_suite());
}
