/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: match rules, in both forms, and the broker's match index.
 *
 * The input is up to MAX_RULES lines; a line starting with '{' is a rule in
 * the JSON form, any other in the string form. For every rule that parses:
 * its JSON text parses back to an equal rule and the same text; a message
 * built to fit the rule matches it, and that message with a required piece
 * taken away does not. Then the rules go into a match index (owned by a few
 * subscribers in turn), and routing each message through the index must
 * reach exactly the subscribers that a rule-by-rule check finds; removing
 * every rule again must leave the index empty.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/bus/match.h"
#include "protocol/ipcbus/wire.h"
#include "protocol/jbuf.h"
#include "protocol/match.h"
#include "protocol/message.h"
#include "protocol/proto-error.h"
#include "tests/fuzz/fuzz-util.h"

#define MAX_RULES 8
#define N_OWNERS 3
#define MAX_MESSAGES (8 + 3 * MAX_RULES)

/* Any deterministic answer will do, as long as index and rule-by-rule checks get the same one. */
static bool fuzz_owns(const char *well_known, const char *unique, void *userdata)
{
        return (strlen(well_known) + strlen(unique)) % 2 == 0;
}

static const struct match_rule *fuzz_rules;
static size_t fuzz_n_rules;

/* The names fuzz_owns gives `unique`, among those the rules name (no others matter). */
static void fuzz_names(const char *unique, bool (*visit)(const char *name, const void *arg), const void *arg,
                       void *userdata)
{
        for (size_t i = 0; i < fuzz_n_rules; i++) {
                const char *name = fuzz_rules[i].sender;

                if (name && name[0] != ':' && fuzz_owns(name, unique, NULL) && visit(name, arg))
                        return;
        }
}

static bool owns_never(const char *well_known, const char *unique, void *userdata)
{
        return false;
}

/* Build a message; the header must be valid. */
static struct msg *build(const struct msg_header *h, const char *body)
{
        struct msg *m = NULL;
        int r = msg_build(h, body, body ? strlen(body) : 0, &m);

        fuzz_assert(r == 0, "msg_build: %d (%s)", r, r > 0 ? proto_strerror(r) : "errno");
        return m;
}

/* A few messages of every type, whatever the rules. */
static size_t add_samples(struct msg **msgs)
{
        struct msg_header h;
        size_t n = 0;

        msg_header_init(&h);
        h.type = MSG_SIGNAL;
        h.serial = 9;
        h.sender = ":1.7";
        h.path = "/org/example/Notes";
        h.interface = "org.example.Notes";
        h.member = "Changed";
        msgs[n++] = build(&h, "{\"title\":\"hello\",\"count\":3,\"t\\u00e9\":\"\\u00e9\"}");
        h.destination = ":1.4";
        h.path = "/";
        msgs[n++] = build(&h, NULL);

        msg_header_init(&h);
        h.type = MSG_CALL;
        h.serial = 2;
        h.sender = ":1.3";
        h.destination = "org.example.Echo";
        h.path = "/org/example/Echo";
        h.interface = "org.example.Echo";
        h.member = "Echo";
        msgs[n++] = build(&h, "{\"data\":\"hello, world\"}");

        msg_header_init(&h);
        h.type = MSG_RETURN;
        h.serial = 7;
        h.reply_serial = 2;
        h.sender = ":1.7";
        h.destination = ":1.3";
        msgs[n++] = build(&h, "{\"data\":\"hello, world\"}");

        msg_header_init(&h);
        h.type = MSG_ERROR;
        h.serial = 8;
        h.reply_serial = 2;
        h.sender = IPCBUS_DRIVER_NAME;
        h.destination = ":1.3";
        h.error_name = IPCBUS_ERROR_SERVICE_UNKNOWN;
        msgs[n++] = build(&h, "{\"message\":\"gone\"}");
        return n;
}

/* The body {"k":"v",...} holding every argument of r; NULL when r has none. */
static char *args_body(const struct match_rule *r)
{
        struct jbuf b;

        if (r->n_args == 0)
                return NULL;
        jbuf_init(&b);
        jbuf_putc(&b, '{');
        for (size_t i = 0; i < r->n_args; i++) {
                if (i)
                        jbuf_putc(&b, ',');
                jbuf_put_string(&b, r->args[i].key);
                jbuf_putc(&b, ':');
                jbuf_put_string(&b, r->args[i].value);
        }
        jbuf_putc(&b, '}');
        fuzz_assert(!b.failed, "out of memory");
        return jbuf_steal(&b, NULL);
}

/*
 * The header of a message that fits r, or false when no message can (a
 * return or an error carries no path, interface or member).
 */
static bool header_for_rule(const struct match_rule *r, struct msg_header *h)
{
        msg_header_init(h);
        h->type = r->type != MSG_TYPE_INVALID ? r->type : MSG_SIGNAL;
        h->serial = 1;
        h->sender = r->sender ? r->sender : ":1.1";
        h->destination = r->destination;
        if (h->type == MSG_RETURN || h->type == MSG_ERROR) {
                if (r->path || r->path_namespace || r->interface || r->member)
                        return false;
                h->reply_serial = 1;
                if (h->type == MSG_ERROR)
                        h->error_name = IPCBUS_ERROR_FAILED;
                else if (!h->destination)
                        h->destination = ":1.1";
                return true;
        }
        h->path = r->path ? r->path : r->path_namespace ? r->path_namespace : "/";
        h->interface = r->interface ? r->interface : h->type == MSG_SIGNAL ? "org.fuzz.I" : NULL;
        h->member = r->member ? r->member : "M";
        return true;
}

/*
 * Messages that must and must not match r: the one built to fit it, and
 * variants. Adds those to msgs (for the index check) and returns how many.
 */
static size_t check_fitting(const struct match_rule *r, struct msg **msgs)
{
        struct msg_header h, v;
        char *body = args_body(r);
        size_t n = 0;
        struct msg *m;

        if (!header_for_rule(r, &h)) {
                free(body);
                return 0;
        }
        m = msgs[n++] = build(&h, body);
        fuzz_assert(match_rule_matches(r, m, NULL, NULL), "a message built to fit the rule does not match");
        fuzz_assert(match_rule_matches(r, m, owns_never, NULL), "the rule's own sender needs no owner lookup");

        if (body) {
                m = msgs[n++] = build(&h, NULL);
                fuzz_assert(!match_rule_matches(r, m, NULL, NULL), "matches without the arguments it asks for");
        }
        if (r->member) {
                char member[IPCBUS_NAME_MAX + 1];

                snprintf(member, sizeof(member), "%s", r->member);
                member[0] = member[0] == 'A' ? 'B' : 'A';
                v = h;
                v.member = member;
                m = msgs[n++] = build(&v, body);
                fuzz_assert(!match_rule_matches(r, m, NULL, NULL), "matches another member");
        } else if (r->path_namespace) {
                char path[IPCBUS_PATH_MAX + 1];

                /* A path below the namespace is in it (when it still fits the limit). */
                if (strlen(r->path_namespace) + 2 <= IPCBUS_PATH_MAX) {
                        snprintf(path, sizeof(path), "%s/x", strcmp(r->path_namespace, "/") ? r->path_namespace : "");
                        v = h;
                        v.path = path;
                        m = msgs[n++] = build(&v, body);
                        fuzz_assert(match_rule_matches(r, m, NULL, NULL), "%s is not in namespace %s", path,
                                    r->path_namespace);
                }
        }
        free(body);
        return n;
}

/* The JSON form of r parses back to an equal rule, and prints the same again. */
static void check_json_roundtrip(const struct match_rule *r)
{
        struct match_rule again;
        char *text, *text2;
        int e;

        fuzz_assert(match_rule_to_json(r, &text) == 0, "match_rule_to_json failed");
        e = match_rule_parse_json(&again, text, strlen(text));
        fuzz_assert(e == 0, "its own JSON does not parse (%d): %s", e, text);
        fuzz_assert(match_rule_equal(r, &again), "reparsed rule differs: %s", text);
        fuzz_assert(match_rule_to_json(&again, &text2) == 0 && strcmp(text, text2) == 0, "JSON differs: %s", text);
        free(text2);
        free(text);
        match_rule_deinit(&again);
}

struct route_seen {
        struct match_owner *owners;
        unsigned count[N_OWNERS];
};

static void route_deliver(struct match_owner *owner, void *userdata)
{
        struct route_seen *seen = userdata;

        fuzz_assert(owner >= seen->owners && owner < seen->owners + N_OWNERS, "delivered to a stranger");
        seen->count[owner - seen->owners]++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct match_rule rules[MAX_RULES];
        struct match_owner owners[N_OWNERS];
        struct msg *msgs[MAX_MESSAGES];
        struct match_index idx;
        size_t n_rules = 0, n_msgs, off = 0;

        n_msgs = add_samples(msgs);
        while (off < size && n_rules < MAX_RULES) {
                const uint8_t *nl = memchr(data + off, '\n', size - off);
                size_t len = nl ? (size_t) (nl - (data + off)) : size - off;
                char *line = malloc(len + 1);
                struct match_rule *r = &rules[n_rules];
                int e;

                fuzz_assert(line, "out of memory");
                memcpy(line, data + off, len);
                line[len] = '\0'; /* the string form ends at the first NUL; the JSON form sees them all */
                off += len + 1;
                e = line[0] == '{' ? match_rule_parse_json(r, line, len) : match_rule_parse_string(r, line);
                free(line);
                fuzz_assert(e == 0 || e == PROTO_E_BAD_MATCH, "parse returned %d", e);
                if (e)
                        continue;
                fuzz_assert(r->n_args <= MATCH_ARGS_MAX && !(r->path && r->path_namespace), "an invalid rule passed");
                check_json_roundtrip(r);
                n_msgs += check_fitting(r, msgs + n_msgs);
                n_rules++;
        }

        /* The index finds exactly the owners that a rule-by-rule check finds. */
        fuzz_rules = rules;
        fuzz_n_rules = n_rules;
        match_index_init(&idx);
        for (size_t i = 0; i < N_OWNERS; i++)
                match_owner_init(&owners[i]);
        for (size_t i = 0; i < n_rules; i++) {
                struct match_rule copy;
                char *text;

                /* The index takes the rule's contents; give it a copy. */
                fuzz_assert(match_rule_to_json(&rules[i], &text) == 0, "match_rule_to_json failed");
                fuzz_assert(match_rule_parse_json(&copy, text, strlen(text)) == 0, "reparse failed");
                free(text);
                fuzz_assert(match_index_add(&idx, &owners[i % N_OWNERS], &copy) == 0, "match_index_add failed");
                match_rule_deinit(&copy);
        }
        for (size_t k = 0; k < n_msgs; k++) {
                struct route_seen seen = {.owners = owners};

                match_index_route(&idx, msgs[k], fuzz_owns, fuzz_names, route_deliver, &seen);
                for (size_t o = 0; o < N_OWNERS; o++) {
                        bool want = false;

                        for (size_t i = o; i < n_rules; i += N_OWNERS)
                                want = want || match_rule_matches(&rules[i], msgs[k], fuzz_owns, NULL);
                        fuzz_assert(seen.count[o] == (want ? 1u : 0u), "message %zu: owner %zu got %u copies, wants %d",
                                    k, o, seen.count[o], want);
                }
        }
        for (size_t i = 0; i < n_rules; i++)
                fuzz_assert(match_index_remove(&idx, &owners[i % N_OWNERS], &rules[i]) == 0, "rule %zu not found", i);
        for (size_t o = 0; o < N_OWNERS; o++) {
                struct route_seen seen = {.owners = owners};

                fuzz_assert(owners[o].n_rules == 0, "owner %zu keeps %u rules", o, owners[o].n_rules);
                if (n_msgs > 0)
                        match_index_route(&idx, msgs[0], fuzz_owns, fuzz_names, route_deliver, &seen);
                fuzz_assert(seen.count[o] == 0, "routed to an owner without rules");
                match_owner_deinit(&owners[o]);
        }
        match_index_deinit(&idx);

        for (size_t i = 0; i < n_rules; i++)
                match_rule_deinit(&rules[i]);
        for (size_t k = 0; k < n_msgs; k++)
                msg_unref(msgs[k]);
        return 0;
}
