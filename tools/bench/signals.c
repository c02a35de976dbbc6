/* SPDX-License-Identifier: MIT */
/*
 * Signal fan-out: one emitter, FANOUT_SUBSCRIBERS subscriber processes, and
 * for signal_fanout_rules connections holding unrelated match rules
 * (signal_fanout_10, signal_fanout_rules). The same emitter and subscribers
 * make the flood of call_under_flood (flood.c): the emitter then sends until
 * it is stopped.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/bench/bench.h"
#include "tools/format.h"

#define RULES_PER_HOLDER 4000    /* below the default max_matches_per_connection */
#define FLOOD_READY_SIGNALS 1024 /* a flooding emitter says it is under way after these */

struct subscriber {
        uint64_t expected; /* 0 until Done tells, in a flood */
        uint64_t received;
        uint64_t t_last; /* when the expected-th Tick came (in a flood: Done) */
        bool done;
};

/*
 * Ticks are counted; Done (sent last, so it comes last) ends the wait. Done
 * carries the count of Ticks sent, which a flood's subscribers learn only
 * from it.
 */
static int subscriber_on_signal(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct subscriber *sub = userdata;
        const char *member = ipcbus_message_get_member(m);

        if (member && strcmp(member, "Tick") == 0) {
                if (++sub->received == sub->expected)
                        sub->t_last = clock_now_nsec(CLOCK_MONOTONIC);
        } else if (member && strcmp(member, "Done") == 0) {
                if (sub->expected == 0) {
                        uint64_t sent = 0;

                        (void) ipcbus_message_read(m, "count:t", &sent);
                        sub->expected = sent;
                        sub->t_last = clock_now_nsec(CLOCK_MONOTONIC);
                }
                sub->done = true;
        }
        return 0;
}

static int subscriber_main(const struct bench *b, void *arg)
{
        const struct fanout_arg *a = arg;
        _cleanup_(ipcbus_unrefp) ipcbus_bus *bus = NULL;
        struct subscriber sub = {.expected = a->count};
        struct report rep = {};
        ipcbus_slot *slot = NULL;
        int r;

        r = bench_connect(b, &bus);
        if (r >= 0) {
                r = ipcbus_add_match(bus, &slot, "type=signal,path=" BENCH_PATH ",interface=" BENCH_INTERFACE,
                                     subscriber_on_signal, &sub, NULL);
                if (r >= 0) {
                        report_send(&rep, REPORT_READY);
                        r = bus_run(bus, &sub.done);
                }
                if (r < 0)
                        fprintf(stderr, "ipc-bench: subscriber: %s\n", ipcbus_strerror(r));
        }
        rep.error = r < 0 ? r : 0;
        rep.count = sub.received;
        rep.lost = sub.received < sub.expected ? sub.expected - sub.received : 0;
        rep.failed = sub.received > sub.expected ? sub.received - sub.expected : 0;
        rep.t_end = sub.t_last ? sub.t_last : clock_now_nsec(CLOCK_MONOTONIC);
        ipcbus_slot_unref(slot);
        report_send(&rep, REPORT_DONE);
        return r < 0 ? r : 0;
}

/* Whether the parent closed our control pipe (it stops a flood so). */
static bool emitter_told_to_stop(void)
{
        struct pollfd p = {.fd = CTL_FD, .events = POLLIN};

        return poll(&p, 1, 0) > 0;
}

/*
 * The emitter: count Tick signals with a 64-byte payload (count 0: until the
 * parent stops it, after a READY report once FLOOD_READY_SIGNALS are out),
 * then Done with the count sent.
 */
static int emitter_main(const struct bench *b, void *arg)
{
        const struct fanout_arg *a = arg;
        _cleanup_(ipcbus_unrefp) ipcbus_bus *bus = NULL;
        _cleanup_(freep) char *body = payload_body(SMALL_PAYLOAD);
        bool flood = a->count == 0;
        struct report rep = {};
        char done[64];
        int r;

        r = body ? bench_connect(b, &bus) : -ENOMEM;
        rep.t_start = clock_now_nsec(CLOCK_MONOTONIC);
        for (uint64_t i = 0; r >= 0 && (flood || i < a->count); i++) {
                r = ipcbus_emit_signal(bus, NULL, BENCH_PATH, BENCH_INTERFACE, "Tick", body);
                if (r >= 0)
                        rep.count++;
                /* write out regularly: the socket's backpressure paces the emitter */
                if (r >= 0 && i % 64 == 63) {
                        r = ipcbus_flush(bus);
                        if (flood && rep.count == FLOOD_READY_SIGNALS)
                                report_send(&(struct report){}, REPORT_READY);
                        if (flood && emitter_told_to_stop())
                                break;
                }
        }
        snprintf(done, sizeof(done), "{\"count\":%" PRIu64 "}", rep.count);
        if (r >= 0)
                r = ipcbus_emit_signal(bus, NULL, BENCH_PATH, BENCH_INTERFACE, "Done", done);
        if (r >= 0)
                r = ipcbus_flush(bus);
        rep.t_end = clock_now_nsec(CLOCK_MONOTONIC);
        if (r < 0)
                fprintf(stderr, "ipc-bench: emitter: %s\n", ipcbus_strerror(r));
        rep.error = r < 0 ? r : 0;
        rep.lost = flood ? 0 : a->count - rep.count;
        report_send(&rep, REPORT_DONE);
        return r < 0 ? r : 0;
}

struct rules_arg {
        uint64_t first, count; /* the rules this holder installs: first .. first + count - 1 */
};

/*
 * Unrelated rule number i, one kind after another: a well-known or unique
 * sender, an interface, a member, a path, a path namespace, an argument.
 * None matches the fan-out's signals.
 */
static void rule_text(uint64_t i, char *buf, size_t size)
{
        switch (i % 7) {
        case 0:
                snprintf(buf, size, "{\"type\":\"signal\",\"sender\":\"org.ipcbus.BenchOther.N%" PRIu64 "\"}", i);
                break;
        case 1:
                snprintf(buf, size, "{\"type\":\"signal\",\"interface\":\"org.ipcbus.BenchOther.I%" PRIu64 "\"}", i);
                break;
        case 2:
                snprintf(buf, size, "{\"type\":\"signal\",\"member\":\"Other%" PRIu64 "\"}", i);
                break;
        case 3:
                snprintf(buf, size, "{\"type\":\"signal\",\"path\":\"/org/ipcbus/BenchOther/p%" PRIu64 "\"}", i);
                break;
        case 4:
                snprintf(buf, size, "{\"type\":\"signal\",\"path_namespace\":\"/org/ipcbus/BenchOther/n%" PRIu64 "\"}",
                         i);
                break;
        case 5:
                snprintf(buf, size, "{\"type\":\"signal\",\"args\":{\"data\":\"other%" PRIu64 "\"}}", i);
                break;
        default:
                /* a unique name no connection has: far above any the broker hands out in a run */
                snprintf(buf, size, "{\"type\":\"signal\",\"sender\":\":1.%" PRIu64 "\"}", 1000000000 + i);
                break;
        }
}

/* A connection holding unrelated rules until the parent says stop. */
static int rules_holder_main(const struct bench *b, void *arg)
{
        const struct rules_arg *a = arg;
        _cleanup_(ipcbus_unrefp) ipcbus_bus *bus = NULL;
        struct report rep = {};
        int r;

        r = bench_connect(b, &bus);
        for (uint64_t i = a->first; r >= 0 && i < a->first + a->count; i++) {
                ipcbus_error e = IPCBUS_ERROR_NULL;
                char body[256];

                memcpy(body, "{\"rule\":", 8);
                rule_text(i, body + 8, sizeof(body) - 9);
                strcat(body, "}");
                r = ipcbus_call(bus, IPCBUS_DRIVER_NAME, IPCBUS_DRIVER_PATH, IPCBUS_DRIVER_INTERFACE, "AddMatch", body,
                                30 * 1000000ull, NULL, &e);
                if (r < 0)
                        fprintf(stderr, "ipc-bench: AddMatch: %s\n", r == -EREMOTEIO ? e.name : ipcbus_strerror(r));
                ipcbus_error_free(&e);
                if (r >= 0)
                        rep.count++;
        }
        rep.error = r < 0 ? r : 0;
        report_send(&rep, REPORT_READY);
        if (r >= 0)
                r = bus_run(bus, NULL);
        return r < 0 ? r : 0;
}

/*
 * Collect a subscriber's final report. After the emitter is done it gets
 * `wait_ms`; one still waiting then (its Done never came) is told to stop and
 * reports what it has.
 */
static int subscriber_collect(const char *name, struct child *sub, int wait_ms, struct report *rep)
{
        int r = child_wait_report(sub, REPORT_DONE, wait_ms, rep);

        if (r == -ETIMEDOUT) {
                child_stop(sub);
                r = child_wait_report(sub, REPORT_DONE, REAP_TIMEOUT_MS, rep);
        }
        if (r < 0)
                child_complain(name, "subscriber", r, rep);
        return r;
}

/*
 * Start the holders of n_rules unrelated rules (RULES_PER_HOLDER each) and
 * wait until they hold them all. *ret is an array of *ret_n children (also
 * on failure, for stopping them). Returns 0 or negative errno.
 */
static int rules_holders_start(const struct bench *b, const char *name, uint64_t n_rules, struct child **ret,
                               size_t *ret_n, struct rules_arg **ret_args)
{
        size_t n = (size_t) ((n_rules + RULES_PER_HOLDER - 1) / RULES_PER_HOLDER), started = 0;
        struct child *holders = calloc(n ? n : 1, sizeof(*holders));
        struct rules_arg *args = calloc(n ? n : 1, sizeof(*args));
        int r = holders && args ? 0 : -ENOMEM;

        for (; r >= 0 && started < n; started++) {
                args[started].first = (uint64_t) started * RULES_PER_HOLDER;
                args[started].count = n_rules - args[started].first < RULES_PER_HOLDER ? n_rules - args[started].first
                                                                                       : RULES_PER_HOLDER;
                holders[started] = CHILD_NULL;
                r = child_spawn(&holders[started], b, rules_holder_main, &args[started], NULL, 0);
                if (r < 0)
                        fprintf(stderr, "ipc-bench: %s: %s\n", name, strerror(-r));
        }
        for (size_t i = 0; r >= 0 && i < started; i++) {
                struct report rep = {};

                r = child_wait_report(&holders[i], REPORT_READY, DONE_TIMEOUT_MS, &rep);
                if (r >= 0 && rep.error < 0)
                        r = rep.error;
                if (r < 0)
                        child_complain(name, "rule holder", r, &rep);
        }
        *ret = holders;
        *ret_n = holders ? started : 0;
        *ret_args = args;
        return r;
}

void fanout_init(struct fanout *f, uint64_t count)
{
        *f = (struct fanout){.a = {.count = count}, .emitter = CHILD_NULL};
        for (size_t i = 0; i < FANOUT_SUBSCRIBERS; i++)
                f->subs[i] = CHILD_NULL;
}

int fanout_subscribe(const struct bench *b, const char *name, struct fanout *f)
{
        int r = 0;

        for (; f->n_subs < FANOUT_SUBSCRIBERS; f->n_subs++) {
                r = child_spawn(&f->subs[f->n_subs], b, subscriber_main, &f->a, NULL, 0);
                if (r < 0) {
                        fprintf(stderr, "ipc-bench: %s: %s\n", name, strerror(-r));
                        break;
                }
        }
        for (size_t i = 0; r >= 0 && i < f->n_subs; i++) {
                r = child_wait_report(&f->subs[i], REPORT_READY, READY_TIMEOUT_MS, &f->reps[i]);
                if (r == -EPROTO)
                        f->reported[i] = true; /* it failed and sent its final report */
                if (r < 0)
                        child_complain(name, "subscriber", r, &f->reps[i]);
        }
        return r;
}

/* Fork the emitter. Returns 0 or negative errno (said). */
static int fanout_spawn_emitter(const struct bench *b, const char *name, struct fanout *f)
{
        int r = child_spawn(&f->emitter, b, emitter_main, &f->a, NULL, 0);

        if (r < 0)
                fprintf(stderr, "ipc-bench: %s: %s\n", name, strerror(-r));
        return r;
}

/* Wait for the emitter's final report into f->erep. Returns 0 or negative errno (said). */
static int fanout_emitter_done(const char *name, struct fanout *f)
{
        int r = child_wait_report(&f->emitter, REPORT_DONE, DONE_TIMEOUT_MS, &f->erep);

        if (r < 0 || f->erep.error < 0)
                child_complain(name, "emitter", r < 0 ? r : -EPROTO, &f->erep);
        return r < 0 ? r : f->erep.error;
}

int fanout_emit(const struct bench *b, const char *name, struct fanout *f)
{
        int r = fanout_spawn_emitter(b, name, f);

        return r < 0 ? r : fanout_emitter_done(name, f);
}

int fanout_flood_start(const struct bench *b, const char *name, struct fanout *f)
{
        int r = fanout_spawn_emitter(b, name, f);

        if (r < 0)
                return r;
        r = child_wait_report(&f->emitter, REPORT_READY, READY_TIMEOUT_MS, &f->erep);
        if (r < 0)
                child_complain(name, "emitter", r, &f->erep);
        return r;
}

int fanout_flood_stop(const char *name, struct fanout *f)
{
        child_stop(&f->emitter);
        return fanout_emitter_done(name, f);
}

int fanout_collect(const char *name, struct fanout *f, bool emitted)
{
        /* what the broker has accepted it delivers within a minute, or something is wrong */
        uint64_t deadline = clock_now_nsec(CLOCK_MONOTONIC) + 60 * UINT64_C(1000000000);
        /* a flood's count is the emitter's */
        uint64_t expected = f->a.count ? f->a.count : f->erep.count;
        int bad = 0;

        if (!emitted)
                /* no Done will come: the subscribers report what they have */
                for (size_t i = 0; i < f->n_subs; i++)
                        child_stop(&f->subs[i]);
        for (size_t i = 0; i < f->n_subs; i++) {
                struct report *rep = &f->reps[i];
                uint64_t now = clock_now_nsec(CLOCK_MONOTONIC);
                int wait_ms = now < deadline ? (int) ((deadline - now) / 1000000) : 0;

                if (!f->reported[i] && subscriber_collect(name, &f->subs[i], wait_ms, rep) < 0) {
                        *rep = (struct report){};
                        bad = 1;
                }
                if (rep->error < 0)
                        bad = 1;
                f->delivered += rep->count;
                f->lost += rep->count < expected ? expected - rep->count : 0;
                f->failed += rep->count > expected ? rep->count - expected : 0;
                if (rep->t_end > f->t_end)
                        f->t_end = rep->t_end;
        }
        if (f->n_subs < FANOUT_SUBSCRIBERS)
                f->lost += (uint64_t) (FANOUT_SUBSCRIBERS - f->n_subs) * expected;
        return bad;
}

void fanout_reap(struct fanout *f)
{
        child_reap(&f->emitter);
        for (size_t i = 0; i < f->n_subs; i++)
                child_reap(&f->subs[i]);
}

/* signal_fanout_10, and signal_fanout_rules (with_rules) with b->rules unrelated rules installed first. */
static int run_fanout(const struct bench *b, const char *name, bool with_rules)
{
        struct fanout f;
        struct child *holders = NULL;
        struct rules_arg *holder_args = NULL;
        uint64_t n_rules = with_rules ? b->rules : 0;
        size_t n_holders = 0;
        double value;
        int r = 0, bad = 0;

        fanout_init(&f, bench_scaled(b, 100000));
        if (n_rules > 0)
                r = rules_holders_start(b, name, n_rules, &holders, &n_holders, &holder_args);
        if (r < 0)
                bad = 1; /* no subscriber starts: every signal counts as lost */
        if (r >= 0)
                r = fanout_subscribe(b, name, &f);
        if (r >= 0)
                r = fanout_emit(b, name, &f);
        if (r < 0)
                bad = 1;
        bad |= fanout_collect(name, &f, r >= 0);
        fanout_reap(&f);
        for (size_t i = 0; i < n_holders; i++)
                child_reap(&holders[i]);
        free(holders);
        free(holder_args);
        value = f.erep.t_start ? bench_rate(f.delivered, f.erep.t_start, f.t_end) : 0.0;
        if (with_rules)
                return result_print(name, value, "signals/s", f.lost, f.failed,
                                    " subscribers=%d signals=%" PRIu64 " delivered=%" PRIu64 " rules=%" PRIu64,
                                    FANOUT_SUBSCRIBERS, f.a.count, f.delivered, n_rules) |
                       bad;
        return result_print(name, value, "signals/s", f.lost, f.failed,
                            " subscribers=%d signals=%" PRIu64 " delivered=%" PRIu64, FANOUT_SUBSCRIBERS, f.a.count,
                            f.delivered) |
               bad;
}

int scenario_signal_fanout(const struct bench *b, const char *name)
{
        return run_fanout(b, name, false);
}

int scenario_signal_fanout_rules(const struct bench *b, const char *name)
{
        return run_fanout(b, name, true);
}
