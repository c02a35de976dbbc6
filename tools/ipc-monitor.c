/* SPDX-License-Identifier: MIT */
/*
 * ipc-monitor: print the traffic of an ipcbus bus, one message per line
 * (human form or JSON, see tools/monitor/output.h), each answer paired with
 * its call. Modelled on dbus-monitor.
 *
 * Every message goes the same way, wherever it came from:
 * monitor_handle_event takes it through the pairing of calls with answers,
 * the statistics of --summary, the --slow filter and the chosen output.
 *
 * Exit status: 0 on SIGINT/SIGTERM, 1 when the bus goes away or monitoring
 * cannot start, 2 on a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ipcbus/ipcbus.h>

#include "protocol/address.h"
#include "protocol/match.h"
#include "protocol/proto-error.h"
#include "tools/format.h"
#include "tools/monitor/event.h"
#include "tools/monitor/output.h"
#include "tools/monitor/pairing.h"
#include "tools/monitor/summary.h"
#include "util/clock.h"

#define EXIT_USAGE 2
/* How often calls awaiting an answer are looked at for their deadline. */
#define MONITOR_EXPIRE_USEC 1000000u

struct monitor {
        /* options */
        const char *address; /* --address, or NULL */
        bool system;         /* --system */
        bool json;
        bool full;
        bool summary;
        int64_t slow_ms; /* --slow; -1: every message */
        enum output_color color;
        enum output_timestamp time;
        bool time_given; /* --timestamp was given; else absolute on a terminal, none elsewhere */
        char **rules;    /* the MATCH arguments */
        size_t n_rules;

        const char *unique_name; /* ours, to hide the driver's NameAcquired/NameLost to us */
        struct output out;
        struct pairing *pairing;
        struct summary *stats; /* with --summary */
        struct mon_comms *comms;
        uint64_t last_expire_usec; /* CLOCK_MONOTONIC of the last look at deadlines */
        int error;                 /* the first fault (-ENOMEM) handling a message; ends the monitor */
};

static volatile sig_atomic_t quit;

static void on_signal(int sig)
{
        quit = 1;
}

static void help(void)
{
        printf("Usage: ipc-monitor [OPTIONS] [MATCH...]\n"
               "\n"
               "Print every message on an ipcbus bus, or those matching one of the rules;\n"
               "each answer shows the call it answers and how long it took.\n"
               "\n"
               "Options:\n"
               "  --address ADDR       monitor the bus at ADDR (unix:path=/absolute/path)\n"
               "  --session            monitor the session bus (the default)\n"
               "  --system             monitor the system bus\n"
               "  --json               one JSON object per line: {\"header\":{...},\"body\":...,\n"
               "                       \"timestamp\":...,\"comm\":...,\"call\":{...},\"latency_us\":N}\n"
               "  --timestamp[=WHEN]   prefix each line with the time: absolute (local time, the\n"
               "                       default on a terminal and for a bare --timestamp),\n"
               "                       relative (since the first message), delta (since the\n"
               "                       previous one) or none (the default elsewhere)\n"
               "  --color[=WHEN]       colour by message type: auto (on a terminal, unless\n"
               "                       NO_COLOR is set; the default), always, never\n"
               "  --full               show whole bodies, pretty, below each line (else one\n"
               "                       line, long strings and arrays cut with \"…\")\n"
               "  --slow MS            show only calls answered after MS milliseconds or more,\n"
               "                       or never, each with its answer\n"
               "  --summary            at the end, a table per member called: calls, errors,\n"
               "                       timeouts, p50/p99/max latency\n"
               "  -h, --help           show this help\n"
               "  --version            show the version\n"
               "\n"
               "MATCH is a rule in the string form, e.g.\n"
               "  ipc-monitor type=signal,interface=org.example.Notes\n"
               "  ipc-monitor \"type=call,destination=org.example.Notes\" \"type=error\"\n"
               "  ipc-monitor --slow 100 --summary\n"
               "  ipc-monitor --json | jq .body\n"
               "\n"
               "Each line: [TIME] TYPE SENDER -> DESTINATION serial=N [reply_serial=N] [path=P]\n"
               "[interface=I] [member=M] [error=E] [no_reply] [fds=N] [memfd=BYTES]\n"
               "[← [CALLDEST] IFACE.MEMBER LATENCY] [uid=U pid=P comm=C] BODY, e.g.\n"
               "  return :1.7 -> :1.5 serial=9 reply_serial=4 ← org.example.Notes.Add 1.23 ms uid=1000 pid=812 "
               "comm=notes-service {\"id\":3}\n"
               "The first line, on stderr, says what is watched. See ipc-monitor(1).\n");
}

/* The driver telling us about our own (pre-monitor) unique name is not traffic. */
static bool monitor_is_own_name_signal(const struct monitor *mon, const struct msg_header *h)
{
        return h->type == MSG_SIGNAL && h->sender && h->destination && h->member &&
               strcmp(h->sender, IPCBUS_DRIVER_NAME) == 0 && strcmp(h->destination, mon->unique_name) == 0 &&
               (strcmp(h->member, "NameAcquired") == 0 || strcmp(h->member, "NameLost") == 0);
}

static bool monitor_is_messages_lost(const struct msg_header *h)
{
        return h->type == MSG_SIGNAL && h->sender && h->member && strcmp(h->sender, IPCBUS_DRIVER_NAME) == 0 &&
               strcmp(h->member, "MessagesLost") == 0;
}

/* Count and show a call never answered (pairing_expire's callback). */
static void monitor_on_unanswered(const struct mon_call *call, void *userdata)
{
        struct monitor *mon = userdata;
        struct timespec now;
        int r;

        clock_gettime(CLOCK_REALTIME, &now);
        r = mon->stats ? summary_unanswered(mon->stats, call) : 0;
        if (r == 0)
                r = output_unanswered(&mon->out, call, &now);
        if (r < 0 && !mon->error)
                mon->error = r;
}

/* Once a second: report the calls whose deadline passed unanswered. */
static void monitor_expire(struct monitor *mon)
{
        uint64_t now_usec = clock_now_usec(CLOCK_MONOTONIC);
        struct timespec now;

        if (now_usec - mon->last_expire_usec < MONITOR_EXPIRE_USEC)
                return;
        mon->last_expire_usec = now_usec;
        clock_gettime(CLOCK_REALTIME, &now);
        pairing_expire(mon->pairing, &now, monitor_on_unanswered, mon);
}

/* Whether ev is shown: everything, or with --slow a slow answer (its call printed first) and the bus's notices. */
static int monitor_slow_filter(struct monitor *mon, const struct mon_event *ev, bool *ret_show)
{
        const struct msg_header *h = &ev->msg->h;

        *ret_show = true;
        if (mon->slow_ms < 0 || monitor_is_messages_lost(h))
                return 0;
        if (!ev->call || ev->latency_usec < (uint64_t) mon->slow_ms * 1000) {
                *ret_show = false;
                return 0;
        }
        return output_call(&mon->out, ev->call);
}

/*
 * Take one event through the pairing, the statistics, --slow and the
 * output. The one path for every event, live or read back. Returns 0 or
 * -ENOMEM.
 */
static int monitor_handle_event(struct monitor *mon, struct mon_event *ev)
{
        const struct msg_header *h = &ev->msg->h;
        bool show;
        int r;

        r = pairing_feed(mon->pairing, ev);
        if (r < 0)
                return r;
        if (mon->stats && h->type == MSG_CALL)
                r = summary_call(mon->stats, h);
        else if (mon->stats && ev->call)
                r = summary_answer(mon->stats, ev->call, h->type == MSG_ERROR ? h->error_name : NULL, ev->latency_usec);
        if (r < 0)
                return r;
        r = monitor_slow_filter(mon, ev, &show);
        if (r < 0 || !show)
                return r;
        return output_event(&mon->out, ev);
}

/*
 * The filter that sees every message: make it an event and handle it, and
 * consume it so the library does not dispatch it further (a monitor answers
 * nothing).
 */
static int monitor_on_message(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct monitor *mon = userdata;
        struct mon_event ev;
        struct timespec ts;
        int r;

        clock_gettime(CLOCK_REALTIME, &ts);
        r = mon_event_from_message(m, &ts, mon->comms, &ev);
        if (r == -EINVAL) {
                fprintf(stderr, "ipc-monitor: a message the codec refuses was skipped (serial %" PRIu32 ")\n",
                        ipcbus_message_get_serial(m));
                return 1;
        }
        if (r < 0) {
                mon->error = mon->error ? mon->error : r;
                return 1;
        }
        if (monitor_is_own_name_signal(mon, &ev.msg->h)) {
                mon_event_clear(&ev);
                return 1;
        }
        /* The bus dropped copies while we were behind: say so where a person looks, and in the stream. */
        if (monitor_is_messages_lost(&ev.msg->h))
                fprintf(stderr, "ipc-monitor: the bus dropped messages while this monitor fell behind: %.*s\n",
                        (int) ev.msg->body_len, ev.msg->body ? ev.msg->body : "");
        r = monitor_handle_event(mon, &ev);
        if (r < 0 && !mon->error)
                mon->error = r;
        mon_event_clear(&ev);
        return 1;
}

/* True when one of the blocked signals of `set` is pending. */
static bool monitor_signal_pending(const sigset_t *set)
{
        sigset_t pending;

        if (sigpending(&pending) < 0)
                return false;
        return sigismember(&pending, SIGINT) == 1 || sigismember(&pending, SIGTERM) == 1;
}

/*
 * Wait for the bus to have work, for SIGINT/SIGTERM, or for the next look
 * at the deadlines of calls awaiting an answer. The signals stay
 * blocked except inside ppoll, so one that comes between a check of `quit`
 * and the wait is not lost.
 */
static int monitor_wait(struct monitor *mon, ipcbus_bus *bus, const sigset_t *waitmask)
{
        struct pollfd p = {.fd = ipcbus_get_fd(bus), .events = (short) ipcbus_get_events(bus)};
        struct timespec ts, *tsp = NULL;
        uint64_t deadline = UINT64_MAX;

        ipcbus_get_timeout(bus, &deadline);
        /* calls awaiting an answer: wake up to see their deadlines pass */
        if (pairing_in_flight(mon->pairing) > 0 && deadline > mon->last_expire_usec + MONITOR_EXPIRE_USEC)
                deadline = mon->last_expire_usec + MONITOR_EXPIRE_USEC;
        if (deadline != UINT64_MAX) {
                uint64_t now_usec = clock_now_usec(CLOCK_MONOTONIC), left;

                left = deadline > now_usec ? deadline - now_usec : 0;
                ts.tv_sec = (time_t) (left / 1000000u);
                ts.tv_nsec = (long) (left % 1000000u) * 1000;
                tsp = &ts;
        }
        if (ppoll(&p, 1, tsp, waitmask) < 0 && errno != EINTR)
                return -errno;
        return 0;
}

/* What monitor_parse_options returns when ipc-monitor goes on to monitor. */
#define PARSE_RUN (-1)

/* Check the match rules argv[optind..]. Returns PARSE_RUN, or EXIT_USAGE for an invalid one. */
static int monitor_check_rules(int argc, char **argv)
{
        for (int i = optind; i < argc; i++) {
                struct match_rule rule;
                int r;

                match_rule_init(&rule);
                r = match_rule_parse_string(&rule, argv[i]);
                match_rule_deinit(&rule);
                if (r != 0) {
                        _cleanup_(freep) char *shown = format_sanitize(argv[i], strlen(argv[i]));

                        fprintf(stderr, "ipc-monitor: invalid match rule '%s': %s\n(see ipc-monitor --help)\n",
                                shown ? shown : "?", r > 0 ? proto_strerror(r) : strerror(-r));
                        return EXIT_USAGE;
                }
        }
        return PARSE_RUN;
}

/* Parse a --timestamp, --color or --slow argument into mon. Returns 0, or -EINVAL having said why. */
static int monitor_parse_value(struct monitor *mon, int opt, const char *arg)
{
        static const char *const times[] = {[OUTPUT_TIME_NONE] = "none",
                                            [OUTPUT_TIME_ABSOLUTE] = "absolute",
                                            [OUTPUT_TIME_RELATIVE] = "relative",
                                            [OUTPUT_TIME_DELTA] = "delta"};
        static const char *const colors[] = {
                [OUTPUT_COLOR_AUTO] = "auto", [OUTPUT_COLOR_ALWAYS] = "always", [OUTPUT_COLOR_NEVER] = "never"};
        char *end;

        if (opt == 't') {
                for (size_t i = 0; i < ELEMENTSOF(times); i++)
                        if (strcmp(arg, times[i]) == 0) {
                                mon->time = (enum output_timestamp) i;
                                mon->time_given = true;
                                return 0;
                        }
                fprintf(stderr, "ipc-monitor: --timestamp takes absolute, relative, delta or none, not '%s'\n", arg);
                return -EINVAL;
        }
        if (opt == 'c') {
                for (size_t i = 0; i < ELEMENTSOF(colors); i++)
                        if (strcmp(arg, colors[i]) == 0) {
                                mon->color = (enum output_color) i;
                                return 0;
                        }
                fprintf(stderr, "ipc-monitor: --color takes auto, always or never, not '%s'\n", arg);
                return -EINVAL;
        }
        errno = 0;
        mon->slow_ms = strtoll(arg, &end, 10);
        if (errno || end == arg || *end || mon->slow_ms < 0 || mon->slow_ms > INT32_MAX) {
                fprintf(stderr, "ipc-monitor: --slow takes a number of milliseconds, not '%s'\n", arg);
                return -EINVAL;
        }
        return 0;
}

/*
 * Parse the options into mon and check the match rules after them (argv from
 * optind on). Returns PARSE_RUN, or the exit status when ipc-monitor is done
 * (--help, --version, a usage error).
 */
static int monitor_parse_options(int argc, char **argv, struct monitor *mon)
{
        enum { OPT_ADDRESS = 0x100, OPT_SESSION, OPT_SYSTEM, OPT_JSON, OPT_FULL, OPT_SUMMARY, OPT_VERSION };
        static const struct option options[] = {
                {"address", required_argument, NULL, OPT_ADDRESS},
                {"session", no_argument, NULL, OPT_SESSION},
                {"system", no_argument, NULL, OPT_SYSTEM},
                {"json", no_argument, NULL, OPT_JSON},
                {"timestamp", optional_argument, NULL, 't'},
                {"color", optional_argument, NULL, 'c'},
                {"colour", optional_argument, NULL, 'c'},
                {"full", no_argument, NULL, OPT_FULL},
                {"slow", required_argument, NULL, 's'},
                {"summary", no_argument, NULL, OPT_SUMMARY},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, OPT_VERSION},
                {},
        };
        int opt;

        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (opt) {
                case OPT_ADDRESS:
                        mon->address = optarg;
                        mon->system = false;
                        break;
                case OPT_SESSION:
                        mon->address = NULL;
                        mon->system = false;
                        break;
                case OPT_SYSTEM:
                        mon->address = NULL;
                        mon->system = true;
                        break;
                case OPT_JSON:
                        mon->json = true;
                        break;
                case OPT_FULL:
                        mon->full = true;
                        break;
                case OPT_SUMMARY:
                        mon->summary = true;
                        break;
                case 't':
                case 'c':
                case 's':
                        /* a bare --timestamp is the absolute time, a bare --color always */
                        if (monitor_parse_value(mon, opt, optarg ? optarg : opt == 't' ? "absolute" : "always") < 0)
                                return EXIT_USAGE;
                        break;
                case 'h':
                        help();
                        return 0;
                case OPT_VERSION:
                        printf("ipc-monitor %s\n", PACKAGE_VERSION);
                        return 0;
                default:
                        fputs("(see ipc-monitor --help)\n", stderr);
                        return EXIT_USAGE;
                }
        }
        mon->rules = argv + optind;
        mon->n_rules = (size_t) (argc - optind);
        return monitor_check_rules(argc, argv);
}

/*
 * Block SIGINT/SIGTERM and catch them: they are delivered only inside ppoll
 * (see monitor_wait), with *ret_waitmask. *ret_block is the blocked set.
 */
static void monitor_catch_signals(sigset_t *ret_block, sigset_t *ret_waitmask)
{
        struct sigaction sa = {.sa_handler = on_signal};

        sigemptyset(ret_block);
        sigaddset(ret_block, SIGINT);
        sigaddset(ret_block, SIGTERM);
        sigprocmask(SIG_BLOCK, ret_block, ret_waitmask);
        sigdelset(ret_waitmask, SIGINT);
        sigdelset(ret_waitmask, SIGTERM);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
}

/* Connect to the bus mon names; says why on failure. Returns 0 or negative errno. */
static int monitor_connect(struct monitor *mon, ipcbus_bus **ret)
{
        int r;

        if (mon->address)
                r = ipcbus_open_address(mon->address, ret);
        else if (mon->system)
                r = ipcbus_open_system(ret);
        else
                r = ipcbus_open_session(ret);
        if (r < 0) {
                fprintf(stderr, "ipc-monitor: cannot connect to %s: %s\n",
                        mon->address  ? mon->address
                        : mon->system ? "the system bus"
                                      : "the session bus",
                        ipcbus_strerror(r));
                return r;
        }
        mon->unique_name = ipcbus_get_unique_name(*ret);
        return 0;
}

/*
 * The first line, on stderr: what is watched (the bus's address, the rules
 * or everything) and how. On stderr, not stdout: stdout stays the messages
 * alone for grep, jq and files, and a person at a terminal sees both.
 */
static void monitor_announce(const struct monitor *mon)
{
        _cleanup_(freep) char *resolved = NULL;
        const char *address = mon->address;

        if (!address && (mon->system ? address_system(&resolved) : address_session(&resolved)) == 0)
                address = resolved;
        fprintf(stderr, "ipc-monitor: watching %s%s%s", mon->system ? "the system bus " : "",
                address ? address : "the session bus", mon->n_rules ? ", messages matching " : ": everything");
        for (size_t i = 0; i < mon->n_rules; i++) {
                /* a rule's value may hold any character: keep the terminal safe */
                _cleanup_(freep) char *rule = format_sanitize(mon->rules[i], strlen(mon->rules[i]));

                fprintf(stderr, "%s\"%s\"", i ? " or " : "", rule ? rule : "?");
        }
        if (mon->slow_ms >= 0)
                fprintf(stderr, "; calls slower than %" PRId64 " ms", mon->slow_ms);
        fputs(mon->summary ? "; a summary at the end (Ctrl-C)\n" : " (Ctrl-C to stop)\n", stderr);
}

/*
 * Print the traffic until SIGINT/SIGTERM (returns 0) or until the bus goes
 * away (says so, returns EXIT_FAILURE), or a fault handling a message.
 */
static int monitor_run(struct monitor *mon, ipcbus_bus *bus, const sigset_t *block, const sigset_t *waitmask)
{
        for (unsigned n = 1; !quit; n++) {
                int r = ipcbus_process(bus);

                if (mon->error) {
                        fprintf(stderr, "ipc-monitor: %s\n", strerror(-mon->error));
                        return EXIT_FAILURE;
                }
                monitor_expire(mon);
                if (r > 0) {
                        /* under a flood ppoll is not reached: look for the signals now and then */
                        if (n % 256 == 0 && monitor_signal_pending(block))
                                break;
                        continue;
                }
                if (r == 0)
                        r = monitor_wait(mon, bus, waitmask);
                if (r < 0) {
                        fprintf(stderr, "ipc-monitor: the bus went away: %s\n", ipcbus_strerror(r));
                        return EXIT_FAILURE;
                }
        }
        return 0;
}

/* Make what the monitor needs beyond its options: output, pairing, statistics, command names. */
static int monitor_setup(struct monitor *mon)
{
        bool tty = isatty(STDOUT_FILENO) == 1;
        int r;

        if (!mon->time_given)
                mon->time = tty && !mon->json ? OUTPUT_TIME_ABSOLUTE : OUTPUT_TIME_NONE;
        output_init(&mon->out, stdout, mon->json, output_want_color(mon->color, STDOUT_FILENO), tty, mon->full,
                    mon->time);
        mon->last_expire_usec = clock_now_usec(CLOCK_MONOTONIC);
        r = pairing_new(&mon->pairing);
        if (r == 0)
                r = mon_comms_new(&mon->comms);
        if (r == 0 && mon->summary)
                r = summary_new(&mon->stats);
        return r;
}

static void monitor_teardown(struct monitor *mon)
{
        mon->pairing = pairing_free(mon->pairing);
        mon->comms = mon_comms_free(mon->comms);
        mon->stats = summary_free(mon->stats);
}

int main(int argc, char **argv)
{
        _cleanup_(ipcbus_unrefp) ipcbus_bus *bus = NULL;
        _cleanup_(ipcbus_error_freep) ipcbus_error error = IPCBUS_ERROR_NULL;
        struct monitor mon = {.slow_ms = -1};
        sigset_t block, waitmask;
        ipcbus_slot *filter = NULL;
        int r;

        r = monitor_parse_options(argc, argv, &mon);
        if (r != PARSE_RUN)
                return r;
        if (monitor_setup(&mon) < 0) {
                fputs("ipc-monitor: out of memory\n", stderr);
                monitor_teardown(&mon);
                return EXIT_FAILURE;
        }
        monitor_catch_signals(&block, &waitmask);
        if (monitor_connect(&mon, &bus) < 0) {
                monitor_teardown(&mon);
                return EXIT_FAILURE;
        }
        r = ipcbus_add_filter(bus, &filter, monitor_on_message, &mon);
        if (r >= 0)
                r = ipcbus_become_monitor(bus, (const char *const *) mon.rules, mon.n_rules, &error);
        if (r < 0) {
                /* the broker's refusal says why (AccessDenied: the policy's "monitor" rules) */
                if (ipcbus_error_is_set(&error))
                        fprintf(stderr, "ipc-monitor: cannot become a monitor: %s: %s\n", error.name,
                                error.message ? error.message : ipcbus_strerror(r));
                else
                        fprintf(stderr, "ipc-monitor: cannot become a monitor: %s\n", ipcbus_strerror(r));
                ipcbus_slot_unref(filter);
                monitor_teardown(&mon);
                return EXIT_FAILURE;
        }
        monitor_announce(&mon);
        r = monitor_run(&mon, bus, &block, &waitmask);
        /* Ctrl-C, SIGTERM or the bus gone: the table of what was seen, apart from JSON on stdout */
        if (mon.stats)
                summary_print(mon.stats, mon.json ? stderr : stdout);
        ipcbus_slot_unref(filter);
        monitor_teardown(&mon);
        return r;
}
