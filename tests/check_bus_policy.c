/* SPDX-License-Identifier: MIT */
/*
 * Policy (daemon/CONFIG.md, "Policy") against a real ipcbusd, with clients
 * of different users: the suite runs as root and connects as other uids,
 * gids and supplementary groups (the broker learns them from the socket).
 * Each rule kind is asserted on both sides, allowed and denied: own (exact,
 * prefix, user, group, supplementary group), send (destination, interface,
 * member, path, path prefix, type), receive, the order (the last applicable
 * rule wins), connect, monitor, and the shipped session and system defaults.
 * A denial is AccessDenied to the one who asked and one log line naming the
 * rule; calls to the driver, the driver's messages and replies are never
 * denied.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/testbus.h"

static const struct testbus_cred alice = {.uid = 4242, .gid = 4242};
static const struct testbus_cred bob = {.uid = 4243, .gid = 4243};
/* the group 4300 as primary group, as supplementary group, and another group */
static const struct testbus_cred carol = {.uid = 4244, .gid = 4300};
static const struct testbus_cred dave = {.uid = 4245, .gid = 100, .n_groups = 1, .groups = {4300}};
static const struct testbus_cred erin = {.uid = 4246, .gid = 100, .n_groups = 1, .groups = {4301}};

#define SVC "org.example.Svc"
#define OTHER "org.example.Other"
#define NEWS "org.example.News"

/* Start the test's broker with this "policy" array. */
static struct testbus *start_policy(const char *policy)
{
        struct testbus *tb = testbus_current();
        char config[2048];

        snprintf(config, sizeof(config), "{\"policy\":%s}", policy);
        testbus_start_config(tb, config);
        return tb;
}

/* The denial was logged as one line: "access denied", the rule, and what it was about. */
static void expect_denial_logged(const char *rule, const char *about)
{
        testbus_log_expect(testbus_current(), "access denied", rule, about);
}

static void own_ok(ipcbus_bus *bus, const char *name)
{
        ck_assert_int_eq(testbus_request_name(bus, name, 0), IPCBUS_REQUEST_NAME_PRIMARY_OWNER);
}

static void own_denied(ipcbus_bus *bus, const char *name, const char *rule)
{
        char body[300], *owner;

        snprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
        testbus_driver_error(bus, "RequestName", body, IPCBUS_ERROR_ACCESS_DENIED);
        owner = testbus_name_owner(bus, name);
        ck_assert_msg(!owner || strcmp(owner, ipcbus_get_unique_name(bus)) != 0, "%s owns %s", owner, name);
        free(owner);
        expect_denial_logged(rule, name);
}

/* ---- own -------------------------------------------------------------------------------------- */

START_TEST(test_own_exact)
{
        struct testbus *tb = start_policy("[{\"deny\":\"own\",\"name\":\"org.example.Secret\"},"
                                          "{\"allow\":\"own\",\"name\":\"org.example.Secret\",\"user\":4242}]");
        ipcbus_bus *a = testbus_connect_as(tb, &alice), *b = testbus_connect_as(tb, &bob), *root = testbus_connect(tb);

        own_denied(b, "org.example.Secret", "rule=policy[0]");
        testbus_log_expect(tb, "access denied", "4243", "org.example.Secret");
        /* root is nobody special here */
        own_denied(root, "org.example.Secret", "rule=policy[0]");
        own_ok(a, "org.example.Secret");
        /* an exact name covers nothing below it */
        own_ok(b, "org.example.Secret.Sub");
        own_ok(b, "org.example.Public");

        ipcbus_unref(root);
        ipcbus_unref(b);
        ipcbus_unref(a);
}
END_TEST

START_TEST(test_own_prefix)
{
        struct testbus *tb = start_policy("[{\"deny\":\"own\",\"name_prefix\":\"org.example.Private\"}]");
        ipcbus_bus *b = testbus_connect_as(tb, &bob);

        own_denied(b, "org.example.Private", "rule=policy[0]");
        own_denied(b, "org.example.Private.Sub.Deeper", "rule=policy[0]");
        own_ok(b, "org.example.PrivateX");
        own_ok(b, "org.example.Public");
        ipcbus_unref(b);
}
END_TEST

START_TEST(test_own_user_and_group)
{
        struct testbus *tb = start_policy("[{\"deny\":\"own\"},"
                                          "{\"allow\":\"own\",\"group\":4300},"
                                          "{\"allow\":\"own\",\"user\":4243,\"name\":\"org.example.Bob\"}]");
        ipcbus_bus *c = testbus_connect_as(tb, &carol), *d = testbus_connect_as(tb, &dave);
        ipcbus_bus *e = testbus_connect_as(tb, &erin), *b = testbus_connect_as(tb, &bob);
        ipcbus_bus *a = testbus_connect_as(tb, &alice);

        own_ok(c, "org.example.Carol"); /* primary group */
        own_ok(d, "org.example.Dave");  /* supplementary group */
        own_denied(e, "org.example.Erin", "rule=policy[0]");
        own_ok(b, "org.example.Bob");
        own_denied(b, "org.example.Bobby", "rule=policy[0]");
        own_denied(a, "org.example.Bob", "rule=policy[0]");

        ipcbus_unref(a);
        ipcbus_unref(b);
        ipcbus_unref(e);
        ipcbus_unref(d);
        ipcbus_unref(c);
}
END_TEST

/* The last applicable rule decides: the same two rules in both orders. */
START_TEST(test_order)
{
        struct testbus *tb = start_policy("[{\"deny\":\"own\",\"name_prefix\":\"org.example\"},"
                                          "{\"allow\":\"own\",\"name\":\"org.example.Ok\"}]");
        ipcbus_bus *a = testbus_connect_as(tb, &alice);

        own_ok(a, "org.example.Ok");
        own_denied(a, "org.example.No", "rule=policy[0]");
        ipcbus_unref(a);
        testbus_stop(tb);

        tb = start_policy("[{\"allow\":\"own\",\"name\":\"org.example.Ok\"},"
                          "{\"deny\":\"own\",\"name_prefix\":\"org.example\"}]");
        a = testbus_connect_as(tb, &alice);
        own_denied(a, "org.example.Ok", "rule=policy[1]");
        own_denied(a, "org.example.No", "rule=policy[1]");
        ipcbus_unref(a);
}
END_TEST

/* ---- send ------------------------------------------------------------------------------------- */

enum { ALICE, BOB };

/* A call by ALICE or BOB; destination "@svc" is SVC's unique name. */
struct probe {
        int who;
        const char *destination;
        const char *path;
        const char *interface;
        const char *member;
        bool allowed;
};

struct send_case {
        const char *what;
        const char *policy;
        const char *rule; /* logged for the denials */
        struct probe probes[6];
};

#define TPATH TESTBUS_SERVICE_PATH
#define TIFACE TESTBUS_SERVICE_INTERFACE
#define PEER_IFACE "org.ipcbus.Peer"
#define DRIVER_PING                                                                                                    \
        {                                                                                                              \
                ALICE, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE, "Ping", true                   \
        }

static const struct send_case send_cases[] = {
        {"destination, by any of its names",
         "[{\"deny\":\"send\",\"name\":\"" SVC "\"}]",
         "rule=policy[0]",
         {{ALICE, SVC, TPATH, TIFACE, "Echo", false},
          {ALICE, "@svc", TPATH, TIFACE, "Echo", false},
          {ALICE, OTHER, TPATH, TIFACE, "Echo", true},
          DRIVER_PING}},
        {"destination prefix",
         "[{\"deny\":\"send\",\"name_prefix\":\"org.example\"}]",
         "rule=policy[0]",
         {{ALICE, SVC, TPATH, TIFACE, "Echo", false}, {ALICE, OTHER, TPATH, TIFACE, "Fixed", false}, DRIVER_PING}},
        {"interface",
         "[{\"deny\":\"send\",\"interface\":\"" TIFACE "\"}]",
         "rule=policy[0]",
         {{ALICE, SVC, TPATH, TIFACE, "Echo", false}, {ALICE, SVC, TPATH, PEER_IFACE, "Ping", true}}},
        {"member",
         "[{\"deny\":\"send\",\"member\":\"Echo\"}]",
         "rule=policy[0]",
         {{ALICE, SVC, TPATH, TIFACE, "Echo", false}, {ALICE, SVC, TPATH, TIFACE, "Fixed", true}}},
        {"path",
         "[{\"deny\":\"send\",\"path\":\"/org/example/Test\"}]",
         "rule=policy[0]",
         {{ALICE, SVC, TPATH, TIFACE, "Echo", false},
          {ALICE, SVC, "/org/example/Test", PEER_IFACE, "Ping", false},
          {ALICE, SVC, "/org/example/Test/Sub", PEER_IFACE, "Ping", true}}},
        {"path prefix",
         "[{\"deny\":\"send\",\"path_prefix\":\"/org/example\"}]",
         "rule=policy[0]",
         {{ALICE, SVC, "/org/example", PEER_IFACE, "Ping", false},
          {ALICE, SVC, "/org/example/Test/Sub", PEER_IFACE, "Ping", false},
          {ALICE, SVC, "/org/examples", PEER_IFACE, "Ping", true},
          {ALICE, SVC, "/org", PEER_IFACE, "Ping", true}}},
        {"type",
         "[{\"deny\":\"send\",\"type\":\"call\"}]",
         "rule=policy[0]",
         {{ALICE, SVC, TPATH, TIFACE, "Echo", false}, {BOB, OTHER, TPATH, PEER_IFACE, "Ping", false}, DRIVER_PING}},
        {"everything, but the driver",
         "[{\"deny\":\"send\"},{\"deny\":\"send\",\"name\":\"" IPCBUS_DRIVER_NAME "\"}]",
         "rule=policy[0]",
         {{ALICE, SVC, TPATH, TIFACE, "Echo", false},
          DRIVER_PING,
          {BOB, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE, "ListNames", true}}},
        {"user, the later rule winning",
         "[{\"deny\":\"send\",\"name\":\"" SVC "\"},{\"allow\":\"send\",\"name\":\"" SVC "\",\"user\":4242}]",
         "rule=policy[0]",
         {{ALICE, SVC, TPATH, TIFACE, "Echo", true}, {BOB, SVC, TPATH, TIFACE, "Echo", false}}},
        {"group",
         "[{\"deny\":\"send\",\"group\":4243}]",
         "rule=policy[0]",
         {{BOB, SVC, TPATH, TIFACE, "Echo", false}, {ALICE, SVC, TPATH, TIFACE, "Echo", true}}},
};

START_TEST(test_send)
{
        const struct send_case *c = &send_cases[_i];
        struct testbus *tb = start_policy(c->policy);
        struct testbus_child svc, other;
        ipcbus_bus *bus[2];

        testbus_service_start(tb, &svc, SVC);
        testbus_service_start(tb, &other, OTHER);
        bus[ALICE] = testbus_connect_as(tb, &alice);
        bus[BOB] = testbus_connect_as(tb, &bob);
        for (const struct probe *p = c->probes; p->destination; p++) {
                const char *to = strcmp(p->destination, "@svc") == 0 ? svc.unique : p->destination;

                if (p->allowed) {
                        json_object_put(testbus_call(bus[p->who], to, p->path, p->interface, p->member, "{}"));
                } else {
                        free(testbus_call_error(bus[p->who], to, p->path, p->interface, p->member, "{}",
                                                IPCBUS_ERROR_ACCESS_DENIED));
                        expect_denial_logged(c->rule, p->path);
                }
        }
        ipcbus_unref(bus[BOB]);
        ipcbus_unref(bus[ALICE]);
        testbus_child_finish(&other);
        testbus_child_finish(&svc);
}
END_TEST

/* A signal frame from a raw connection: broadcast when `to` is NULL. */
static void send_signal(int fd, uint32_t serial, const char *to, const char *member)
{
        char header[512];

        snprintf(header, sizeof(header),
                 "{\"type\":\"signal\",\"serial\":%u,%s%s%s\"path\":\"/org/example/News\",\"interface\":\"" NEWS
                 "\",\"member\":\"%s\"}",
                 serial, to ? "\"destination\":\"" : "", to ? to : "", to ? "\"," : "", member);
        testbus_raw_send_frame(fd, header, "{}");
}

/* A subscriber to NEWS: every signal it gets is recorded. */
static ipcbus_bus *news_subscriber(const struct testbus_cred *cred, struct testbus_rec *rec)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *bus = cred ? testbus_connect_as(tb, cred) : testbus_connect(tb);

        testbus_add_match(bus, "{\"interface\":\"" NEWS "\"}");
        testbus_rec_init(rec, bus, TESTBUS_REC_SIGNALS);
        return bus;
}

/* Signals by type: a denied one gets AccessDenied and reaches nobody, broadcast or not. */
START_TEST(test_send_signal)
{
        struct testbus *tb = start_policy("[{\"deny\":\"send\",\"type\":\"signal\",\"member\":\"Secret\"}]");
        struct testbus_rec rec;
        ipcbus_bus *sub = news_subscriber(NULL, &rec);
        int fd = testbus_raw_connect_as(tb, &alice);

        free(testbus_raw_hello(fd));
        send_signal(fd, 2, NULL, "Secret");
        testbus_raw_expect_reply(fd, 2, IPCBUS_ERROR_ACCESS_DENIED, NULL);
        expect_denial_logged("rule=policy[0]", "Secret");
        send_signal(fd, 3, ipcbus_get_unique_name(sub), "Secret");
        testbus_raw_expect_reply(fd, 3, IPCBUS_ERROR_ACCESS_DENIED, NULL);
        send_signal(fd, 4, NULL, "Public");
        send_signal(fd, 5, ipcbus_get_unique_name(sub), "Public");
        testbus_raw_ping(fd, 6);
        testbus_rec_expect(&rec, "Public", NULL);
        testbus_rec_expect(&rec, "Public", NULL);
        testbus_rec_expect_quiet(&rec);

        close(fd);
        testbus_rec_deinit(&rec);
        ipcbus_unref(sub);
}
END_TEST

/* ---- receive ---------------------------------------------------------------------------------- */

/* A call the receiver may not get is denied to the caller. */
START_TEST(test_receive_call)
{
        struct testbus *tb = start_policy("[{\"deny\":\"receive\",\"user\":4243,\"member\":\"Echo\"}]");
        struct testbus_child svc;
        ipcbus_bus *a;

        testbus_service_start_as(tb, &svc, &bob, "org.example.Bob");
        a = testbus_connect_as(tb, &alice);
        free(testbus_call_error(a, "org.example.Bob", TPATH, TIFACE, "Echo", "{}", IPCBUS_ERROR_ACCESS_DENIED));
        expect_denial_logged("rule=policy[0]", "Echo");
        json_object_put(testbus_call(a, "org.example.Bob", TPATH, TIFACE, "Fixed", NULL));
        /* the rule is bob's: alice's own service takes Echo */
        ipcbus_unref(a);
        testbus_child_finish(&svc);
        testbus_service_start_as(tb, &svc, &alice, "org.example.Alice");
        a = testbus_connect_as(tb, &bob);
        json_object_put(testbus_call(a, "org.example.Alice", TPATH, TIFACE, "Echo", "{}"));
        ipcbus_unref(a);
        testbus_child_finish(&svc);
}
END_TEST

/*
 * Broadcast signals a subscriber may not receive pass it by, by member and
 * by sender (a name the sender owns); the others get them and the sender
 * hears nothing of it. A unicast one is denied to its sender.
 */
START_TEST(test_receive_signal)
{
        struct testbus *tb = start_policy("[{\"deny\":\"receive\",\"user\":4243,\"member\":\"Secret\"},"
                                          "{\"deny\":\"receive\",\"user\":4243,\"name\":\"org.example.Spam\"}]");
        struct testbus_rec rec_b, rec_a, rec_e;
        ipcbus_bus *b = news_subscriber(&bob, &rec_b), *a = news_subscriber(&alice, &rec_a);
        ipcbus_bus *e1 = testbus_connect(tb), *e2 = testbus_connect(tb);
        const char *path = "/org/example/News";
        ipcbus_message *m;

        own_ok(e2, "org.example.Spam");
        testbus_rec_init(&rec_e, e1, 1u << IPCBUS_MESSAGE_ERROR);
        ck_assert_int_ge(ipcbus_emit_signal(e1, NULL, path, NEWS, "Secret", "{}"), 0);
        ck_assert_int_ge(ipcbus_emit_signal(e1, NULL, path, NEWS, "Public", "{}"), 0);
        testbus_sync(e1);
        ck_assert_int_ge(ipcbus_emit_signal(e2, NULL, path, NEWS, "Public", "{}"), 0);
        testbus_sync(e2);
        ck_assert_int_ge(ipcbus_emit_signal(e1, NULL, path, NEWS, "End", "{}"), 0);
        testbus_rec_expect_quiet(&rec_e);

        m = testbus_rec_expect(&rec_b, "Public", NULL);
        ck_assert_str_eq(ipcbus_message_get_sender(m), ipcbus_get_unique_name(e1));
        testbus_rec_expect(&rec_b, "End", NULL);
        testbus_rec_expect_quiet(&rec_b);
        testbus_rec_expect(&rec_a, "Secret", NULL);
        testbus_rec_expect(&rec_a, "Public", NULL);
        m = testbus_rec_expect(&rec_a, "Public", NULL);
        ck_assert_str_eq(ipcbus_message_get_sender(m), ipcbus_get_unique_name(e2));
        testbus_rec_expect(&rec_a, "End", NULL);

        /* unicast: bob's rule denies it to the sender */
        {
                int fd = testbus_raw_connect(tb);

                free(testbus_raw_hello(fd));
                send_signal(fd, 2, ipcbus_get_unique_name(b), "Secret");
                testbus_raw_expect_reply(fd, 2, IPCBUS_ERROR_ACCESS_DENIED, NULL);
                send_signal(fd, 3, ipcbus_get_unique_name(b), "Unicast");
                testbus_raw_ping(fd, 4);
                close(fd);
        }
        testbus_rec_expect(&rec_b, "Unicast", NULL);
        testbus_rec_expect_quiet(&rec_b);

        testbus_rec_deinit(&rec_e);
        testbus_rec_deinit(&rec_a);
        testbus_rec_deinit(&rec_b);
        ipcbus_unref(e2);
        ipcbus_unref(e1);
        ipcbus_unref(a);
        ipcbus_unref(b);
}
END_TEST

/* Calls to the driver, the driver's messages and replies to pending calls pass whatever the rules say. */
START_TEST(test_driver_and_replies_exempt)
{
        struct testbus *tb = start_policy("[{\"deny\":\"send\",\"name\":\"" IPCBUS_DRIVER_NAME "\"},"
                                          "{\"deny\":\"send\",\"type\":\"return\"},"
                                          "{\"deny\":\"send\",\"type\":\"error\"},"
                                          "{\"deny\":\"receive\",\"user\":4242}]");
        struct testbus_child svc;
        struct testbus_rec rec;
        ipcbus_bus *a;
        json_object *o;

        testbus_service_start(tb, &svc, SVC);
        a = testbus_connect_as(tb, &alice);
        testbus_rec_init(&rec, a, TESTBUS_REC_SIGNALS);
        json_object_put(testbus_driver(a, "Ping", NULL));
        own_ok(a, "org.example.Alice");
        testbus_rec_expect(&rec, "NameAcquired", "org.example.Alice");
        o = testbus_call(a, SVC, TPATH, TIFACE, "Echo", "{\"back\":\"to alice\"}");
        ck_assert_str_eq(testbus_json_string(o, "back"), "to alice");
        json_object_put(o);
        free(testbus_call_error(a, SVC, TPATH, TIFACE, "Fail", NULL, TESTBUS_SERVICE_ERROR));
        ck_assert(!testbus_log_wait(tb, "access denied", 0));

        testbus_rec_deinit(&rec);
        ipcbus_unref(a);
        testbus_child_finish(&svc);
}
END_TEST

/* ---- connect ---------------------------------------------------------------------------------- */

/* A connection of cred's user is refused: AccessDenied, then the broker closes it. */
static void expect_connect_denied(const struct testbus_cred *cred)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *bus = NULL;
        char uid[32];
        int fd = testbus_raw_connect_as(tb, cred);

        free(testbus_raw_expect_refused(fd, IPCBUS_ERROR_ACCESS_DENIED));
        close(fd);
        snprintf(uid, sizeof(uid), "%u", (unsigned) cred->uid);
        testbus_log_expect(tb, "access denied", "connect", uid);
        ck_assert_int_lt(testbus_open_as(tb, cred, &bus), 0);
        ck_assert_ptr_null(bus);
}

static void expect_connect_ok(const struct testbus_cred *cred)
{
        ipcbus_bus *bus = testbus_connect_as(testbus_current(), cred);

        testbus_sync(bus);
        ipcbus_unref(bus);
}

/* The shipped session configuration: only the bus's own uid (root here) gets in. */
START_TEST(test_connect_session_default)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *root;

        testbus_start(tb);
        root = testbus_connect(tb);
        expect_connect_denied(&alice);
        testbus_log_expect(tb, "access denied", "4242", "rule=policy[0]");
        expect_connect_denied(&carol);
        testbus_sync(root);
        ipcbus_unref(root);
}
END_TEST

START_TEST(test_connect_allow_rules)
{
        start_policy("[{\"deny\":\"connect\"},{\"allow\":\"connect\",\"user\":\"@self\"},"
                     "{\"allow\":\"connect\",\"user\":4242},{\"allow\":\"connect\",\"group\":4300}]");
        expect_connect_ok(&alice);
        expect_connect_ok(&carol);
        expect_connect_ok(&dave);
        expect_connect_denied(&bob);
        expect_connect_denied(&erin);
        ipcbus_unref(testbus_connect(testbus_current()));
}
END_TEST

/* ---- monitor ---------------------------------------------------------------------------------- */

static void monitor_ok(const struct testbus_cred *cred)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *bus = cred ? testbus_connect_as(tb, cred) : testbus_connect(tb);

        json_object_put(testbus_driver(bus, "BecomeMonitor", "{}"));
        ipcbus_unref(bus);
}

static void monitor_denied(const struct testbus_cred *cred, const char *rule)
{
        struct testbus *tb = testbus_current();
        ipcbus_bus *bus = testbus_connect_as(tb, cred);
        char uid[32];

        testbus_driver_error(bus, "BecomeMonitor", "{}", IPCBUS_ERROR_ACCESS_DENIED);
        /* still an ordinary connection */
        testbus_sync(bus);
        ipcbus_unref(bus);
        snprintf(uid, sizeof(uid), "%u", (unsigned) cred->uid);
        testbus_log_expect(tb, "access denied", "monitor", uid, rule);
}

START_TEST(test_monitor_rules)
{
        start_policy("[{\"allow\":\"monitor\",\"user\":4242}]");
        monitor_ok(&alice);
        monitor_denied(&bob, "rule=default");
        monitor_ok(NULL);
}
END_TEST

START_TEST(test_monitor_root_always)
{
        start_policy("[{\"deny\":\"monitor\"}]");
        monitor_ok(NULL);
        monitor_denied(&alice, "rule=policy[0]");
}
END_TEST

/*
 * The shipped session configuration on a bus run by an ordinary user: that
 * user may connect and monitor, and nobody else gets in.
 */
START_TEST(test_session_default_own_uid)
{
        static const struct testbus_cred owner = {.uid = 4250, .gid = 4250};
        const struct testbus_options o = {.cred = &owner};
        struct testbus *tb = testbus_current();

        testbus_start_with(tb, &o);
        monitor_ok(&owner);
        expect_connect_denied(&alice);
}
END_TEST

/* ---- the shipped system configuration ---------------------------------------------------------- */

START_TEST(test_system_default)
{
        static const char *const args[] = {"--system", NULL};
        const struct testbus_options o = {.args = args};
        struct testbus *tb = testbus_current();
        struct testbus_child svc;
        ipcbus_bus *a, *root;
        json_object *o2;

        testbus_start_with(tb, &o);
        root = testbus_connect(tb);
        a = testbus_connect_as(tb, &alice);
        /* root may own any name, others none */
        own_ok(root, "org.example.Root");
        own_denied(a, "org.example.Alice", "rule=policy[0]");
        testbus_log_expect(tb, "access denied", "4242", "org.example.Alice");
        /* everyone may call the driver, and send to a service */
        o2 = testbus_driver(a, "ListNames", NULL);
        ck_assert(testbus_json_array_has(testbus_json_array(o2, "names"), "org.example.Root"));
        json_object_put(o2);
        testbus_service_start(tb, &svc, SVC);
        o2 = testbus_call(a, SVC, TPATH, TIFACE, "WhoAmI", NULL);
        ck_assert_int_eq(testbus_json_int(o2, "uid"), 4242);
        json_object_put(o2);
        /* monitoring: root only */
        testbus_driver_error(a, "BecomeMonitor", "{}", IPCBUS_ERROR_ACCESS_DENIED);

        testbus_child_finish(&svc);
        ipcbus_unref(a);
        ipcbus_unref(root);
}
END_TEST

static Suite *policy_suite(void)
{
        Suite *s = suite_create("bus_policy");
        TCase *tc;

        tc = testbus_tcase_bare("own");
        tcase_add_test(tc, test_own_exact);
        tcase_add_test(tc, test_own_prefix);
        tcase_add_test(tc, test_own_user_and_group);
        tcase_add_test(tc, test_order);
        suite_add_tcase(s, tc);

        tc = testbus_tcase_bare("send");
        tcase_add_loop_test(tc, test_send, 0, (int) (sizeof(send_cases) / sizeof(send_cases[0])));
        tcase_add_test(tc, test_send_signal);
        suite_add_tcase(s, tc);

        tc = testbus_tcase_bare("receive");
        tcase_add_test(tc, test_receive_call);
        tcase_add_test(tc, test_receive_signal);
        tcase_add_test(tc, test_driver_and_replies_exempt);
        suite_add_tcase(s, tc);

        tc = testbus_tcase_bare("connect");
        tcase_add_test(tc, test_connect_session_default);
        tcase_add_test(tc, test_connect_allow_rules);
        suite_add_tcase(s, tc);

        tc = testbus_tcase_bare("monitor");
        tcase_add_test(tc, test_monitor_rules);
        tcase_add_test(tc, test_monitor_root_always);
        tcase_add_test(tc, test_session_default_own_uid);
        suite_add_tcase(s, tc);

        tc = testbus_tcase_bare("system");
        tcase_add_test(tc, test_system_default);
        suite_add_tcase(s, tc);
        return s;
}

int main(void)
{
        if (geteuid() != 0) {
                fprintf(stderr, "bus_policy: needs root (it connects as other users); skipped\n");
                return 77;
        }
        return testbus_run_suite(policy_suite());
}
