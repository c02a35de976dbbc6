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
 * Exit status: 0 on SIGINT/SIGTERM/SIGHUP, 1 when the bus goes away or monitoring
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
#include "tools/monitor/capture.h"
#include "tools/monitor/event.h"
#include "tools/monitor/output.h"
#include "tools/monitor/pairing.h"
#include "tools/monitor/summary.h"
#include "tools/monitor/top.h"
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
        bool quiet;               /* -q: no messages printed (with --capture) */
        const char *capture_path; /* --capture */
        const char *read_path;    /* --read */
        bool top;                 /* --top */
        bool once;                /* --once */
        uint64_t interval_usec;   /* --interval */

        const char *unique_name; /* ours, to hide the driver's NameAcquired/NameLost to us */
        struct output out;
        struct pairing *pairing;
        struct summary *stats; /* with --summary */
        struct mon_comms *comms;
        uint64_t last_expire_usec; /* CLOCK_MONOTONIC of the last look at deadlines */
        struct timespec now;       /* the time deadlines are looked at: the clock's, or a capture's */
        struct capture *capture;   /* with --capture */
        uint64_t n_captured;
        struct match_rule *read_rules; /* with --read: the rules, applied here (live, the broker applies them) */
        struct top *top_view;          /* with --top */
        int error;                     /* the first fault handling a message; ends the monitor */
        const char *error_what;        /* what it was doing then ("writing the capture"), or NULL */
};

static volatile sig_atomic_t quit;

/* What stops the monitor cleanly (the summary printed, a capture closed): Ctrl-C, kill, the terminal gone. */
static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP};

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
               "  --capture FILE       also write every message to FILE, a pcapng capture\n"
               "                       (\"-\": standard output, then nothing else is printed)\n"
               "  -q, --quiet          print no messages (with --capture, --summary)\n"
               "  --read FILE          show the messages of a capture instead of a bus's, with\n"
               "                       every option above (MATCH rules applied as they are read)\n"
               "  --top                a view of who is busy, redrawn every second: senders,\n"
               "                       destinations, members, latencies, queues (keys: m b e l\n"
               "                       sort, q quit)\n"
               "  --once               with --top: one plain report after one interval, then exit\n"
               "  --interval SECONDS   with --top: time between redraws (default 1)\n"
               "  -h, --help           show this help\n"
               "  --version            show the version\n"
               "\n"
               "MATCH is a rule in the string form, e.g.\n"
               "  ipc-monitor type=signal,interface=org.example.Notes\n"
               "  ipc-monitor \"type=call,destination=org.example.Notes\" \"type=error\"\n"
               "  ipc-monitor --slow 100 --summary\n"
               "  ipc-monitor --capture notes.pcapng destination=org.example.Notes\n"
               "  ipc-monitor --read notes.pcapng --summary\n"
               "  ipc-monitor --top\n"
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

/* Keep the first fault of handling a message, which ends the monitor, and what it was doing. */
static void monitor_fail(struct monitor *mon, int r, const char *what)
{
        if (r < 0 && !mon->error) {
                mon->error = r;
                mon->error_what = what;
        }
}

/* Count and show a call never answered (pairing_expire's callback). */
static void monitor_on_unanswered(const struct mon_call *call, void *userdata)
{
        struct monitor *mon = userdata;
        int r;

        r = mon->stats ? summary_unanswered(mon->stats, call) : 0;
        if (r == 0 && !mon->quiet)
                r = output_unanswered(&mon->out, call, &mon->now);
        monitor_fail(mon, r, NULL);
}

/* Report the calls whose deadline passed unanswered at now (the clock's time, or a capture's). */
static void monitor_expire_at(struct monitor *mon, const struct timespec *now)
{
        mon->now = *now;
        pairing_expire(mon->pairing, now, monitor_on_unanswered, mon);
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
        monitor_expire_at(mon, &now);
}

/* Whether ev is shown: everything, or with --slow a slow answer (its call printed first) and the bus's notices. */
static int monitor_slow_filter(struct monitor *mon, const struct mon_event *ev, bool *ret_show)
{
        *ret_show = true;
        if (mon->slow_ms < 0 || mon_event_lost(ev) > 0)
                return 0;
        if (!ev->call || ev->latency_usec < (uint64_t) mon->slow_ms * 1000) {
                *ret_show = false;
                return 0;
        }
        return output_call(&mon->out, ev->call);
}

/* Write ev to the capture file, and the copies the bus says it dropped. Returns 0 or a negative errno. */
static int monitor_capture(struct monitor *mon, const struct mon_event *ev)
{
        const struct capture_record rec = {
                .ts = ev->ts,
                .frame = ev->msg->data,
                .frame_len = ev->msg->size,
                .n_fds = ev->n_fds,
                .memfd_size = ev->memfd_size,
                .comm = ev->comm,
        };
        int r;

        capture_add_lost(mon->capture, mon_event_lost(ev));
        r = capture_write(mon->capture, &rec);
        if (r < 0) {
                monitor_fail(mon, r, "writing the capture");
                return r;
        }
        mon->n_captured++;
        return 0;
}

/*
 * Take one event through the capture, the pairing, the top view or the
 * statistics, --slow and the output. The one path for every event, live or read back. Returns 0 or
 * -ENOMEM.
 */
static int monitor_handle_event(struct monitor *mon, struct mon_event *ev)
{
        const struct msg_header *h = &ev->msg->h;
        bool show;
        int r;

        if (mon->capture) {
                r = monitor_capture(mon, ev);
                if (r < 0)
                        return r;
        }
        r = pairing_feed(mon->pairing, ev);
        if (r < 0)
                return r;
        if (mon->top_view) {
                top_feed(mon->top_view, ev);
                return 0;
        }
        if (mon->stats && h->type == MSG_CALL)
                r = summary_call(mon->stats, h);
        else if (mon->stats && ev->call)
                r = summary_answer(mon->stats, ev->call, h->type == MSG_ERROR ? h->error_name : NULL, ev->latency_usec);
        if (r < 0 || mon->quiet)
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
                monitor_fail(mon, r, NULL);
                return 1;
        }
        if (monitor_is_own_name_signal(mon, &ev.msg->h)) {
                mon_event_clear(&ev);
                return 1;
        }
        /* The bus dropped copies while we were behind: say so where a person looks, and in the stream. */
        if (mon_event_lost(&ev) > 0)
                fprintf(stderr, "ipc-monitor: the bus dropped messages while this monitor fell behind: %.*s\n",
                        (int) ev.msg->body_len, ev.msg->body ? ev.msg->body : "");
        monitor_fail(mon, monitor_handle_event(mon, &ev), NULL);
        mon_event_clear(&ev);
        return 1;
}

/* True when one of the blocked signals of `set` is pending. */
static bool monitor_signal_pending(const sigset_t *set)
{
        sigset_t pending;

        if (sigpending(&pending) < 0)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(stop_signals); i++)
                if (sigismember(&pending, stop_signals[i]) == 1)
                        return true;
        return false;
}

/*
 * Wait for the bus to have work, for a stop signal (SIGINT, SIGTERM, SIGHUP), or for the next look
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
        /* idle: what was captured reaches the file, so a killed monitor loses little */
        if (mon->capture) {
                int r = capture_flush(mon->capture);

                if (r < 0) {
                        monitor_fail(mon, r, "writing the capture");
                        return 0;
                }
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
                struct match_error why;
                struct match_rule rule;
                int r;

                match_rule_init(&rule);
                r = match_rule_parse_string_err(&rule, argv[i], &why);
                match_rule_deinit(&rule);
                if (r != 0) {
                        _cleanup_(freep) char *shown = format_sanitize(argv[i], strlen(argv[i]));
                        _cleanup_(freep) char *detail = r > 0 ? format_sanitize(why.text, strlen(why.text)) : NULL;

                        fprintf(stderr, "ipc-monitor: invalid match rule '%s': %s\n(see ipc-monitor --help)\n",
                                shown ? shown : "?",
                                detail  ? detail
                                : r > 0 ? "?"
                                        : strerror(-r));
                        return EXIT_USAGE;
                }
        }
        return PARSE_RUN;
}

/* Parse a --timestamp, --color, --interval or --slow argument into mon. Returns 0, or -EINVAL having said why. */
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
        if (opt == 'i') {
                double secs;

                errno = 0;
                secs = strtod(arg, &end);
                if (errno || end == arg || *end || !(secs >= 0.1 && secs <= 3600)) {
                        fprintf(stderr, "ipc-monitor: --interval takes seconds from 0.1 to 3600, not '%s'\n", arg);
                        return -EINVAL;
                }
                mon->interval_usec = (uint64_t) (secs * 1e6);
                return 0;
        }
        errno = 0;
        mon->slow_ms = strtoll(arg, &end, 10);
        if (errno || end == arg || *end || mon->slow_ms < 0 || mon->slow_ms > INT32_MAX) {
                fprintf(stderr, "ipc-monitor: --slow takes a number of milliseconds, not '%s'\n", arg);
                return -EINVAL;
        }
        return 0;
}

/* Refuse options that cannot go together. Returns 0, or -EINVAL having said why. */
static int monitor_check_modes(struct monitor *mon)
{
        const char *clash = NULL;

        if (mon->top)
                clash = mon->json                                                  ? "--json"
                        : mon->full                                                ? "--full"
                        : mon->slow_ms >= 0                                        ? "--slow"
                        : mon->summary                                             ? "--summary"
                        : mon->read_path                                           ? "--read"
                        : mon->quiet                                               ? "--quiet"
                        : mon->capture_path && strcmp(mon->capture_path, "-") == 0 ? "--capture -"
                                                                                   : NULL;
        if (clash) {
                fprintf(stderr,
                        "ipc-monitor: --top shows its own view: it does not go with %s\n(see ipc-monitor --help)\n",
                        clash);
                return -EINVAL;
        }
        if (!mon->top && (mon->once || mon->interval_usec)) {
                fprintf(stderr, "ipc-monitor: %s goes with --top only\n(see ipc-monitor --help)\n",
                        mon->once ? "--once" : "--interval");
                return -EINVAL;
        }
        /* a capture on standard output leaves no room for text there */
        if (mon->capture_path && strcmp(mon->capture_path, "-") == 0) {
                if (mon->json || mon->summary) {
                        fprintf(stderr,
                                "ipc-monitor: --capture - writes the capture to standard output: it does not go with "
                                "%s\n",
                                mon->json ? "--json" : "--summary");
                        return -EINVAL;
                }
                mon->quiet = true;
        }
        if (mon->read_path && mon->capture_path && strcmp(mon->read_path, mon->capture_path) == 0 &&
            strcmp(mon->read_path, "-") != 0) {
                fprintf(stderr, "ipc-monitor: --read and --capture name the same file\n");
                return -EINVAL;
        }
        if (!mon->interval_usec)
                mon->interval_usec = 1000000u;
        return 0;
}

/*
 * Parse the options into mon and check the match rules after them (argv from
 * optind on). Returns PARSE_RUN, or the exit status when ipc-monitor is done
 * (--help, --version, a usage error).
 */
static int monitor_parse_options(int argc, char **argv, struct monitor *mon)
{
        enum {
                OPT_ADDRESS = 0x100,
                OPT_SESSION,
                OPT_SYSTEM,
                OPT_JSON,
                OPT_FULL,
                OPT_SUMMARY,
                OPT_CAPTURE,
                OPT_READ,
                OPT_TOP,
                OPT_ONCE,
                OPT_VERSION
        };
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
                {"capture", required_argument, NULL, OPT_CAPTURE},
                {"quiet", no_argument, NULL, 'q'},
                {"read", required_argument, NULL, OPT_READ},
                {"top", no_argument, NULL, OPT_TOP},
                {"once", no_argument, NULL, OPT_ONCE},
                {"interval", required_argument, NULL, 'i'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, OPT_VERSION},
                {},
        };
        int opt;

        /* getopt names the program by argv[0]: from a build tree, libtool's .libs/ path */
        argv[0] = (char *) "ipc-monitor";
        while ((opt = getopt_long(argc, argv, "hq", options, NULL)) >= 0) {
                switch (opt) {
                case OPT_ADDRESS:
                        if (format_check_address("ipc-monitor", optarg) < 0)
                                return EXIT_USAGE;
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
                case OPT_CAPTURE:
                        mon->capture_path = optarg;
                        break;
                case 'q':
                        mon->quiet = true;
                        break;
                case OPT_READ:
                        mon->read_path = optarg;
                        break;
                case OPT_TOP:
                        mon->top = true;
                        break;
                case OPT_ONCE:
                        mon->once = true;
                        break;
                case 't':
                case 'c':
                case 'i':
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
        if (monitor_check_modes(mon) < 0)
                return EXIT_USAGE;
        return monitor_check_rules(argc, argv);
}

/*
 * Block the stop signals and catch them: they are delivered only inside
 * ppoll (see monitor_wait), with *ret_waitmask. *ret_block is the blocked set.
 */
static void monitor_catch_signals(sigset_t *ret_block, sigset_t *ret_waitmask)
{
        struct sigaction sa = {.sa_handler = on_signal};

        sigemptyset(ret_block);
        for (size_t i = 0; i < ELEMENTSOF(stop_signals); i++)
                sigaddset(ret_block, stop_signals[i]);
        sigprocmask(SIG_BLOCK, ret_block, ret_waitmask);
        for (size_t i = 0; i < ELEMENTSOF(stop_signals); i++) {
                sigdelset(ret_waitmask, stop_signals[i]);
                sigaction(stop_signals[i], &sa, NULL);
        }
}

/* Connect to the bus mon names; says why on failure. Returns 0 or negative errno. */
static int monitor_open(const struct monitor *mon, ipcbus_bus **ret)
{
        return format_open_bus("ipc-monitor", mon->address, mon->system, ret);
}

/* The address of the bus watched, for people (*ret_free: what to free). */
static const char *monitor_address(const struct monitor *mon, char **ret_free)
{
        *ret_free = NULL;
        if (mon->address)
                return mon->address;
        if ((mon->system ? address_system(ret_free) : address_session(ret_free)) == 0)
                return *ret_free;
        return mon->system ? "the system bus" : "the session bus";
}

/*
 * The first line, on stderr: what is watched (the bus's address or the
 * capture read, the rules or everything) and how. On stderr, not stdout:
 * stdout stays the messages alone for grep, jq and files, and a person at a
 * terminal sees both.
 */
static void monitor_announce(const struct monitor *mon, const char *source)
{
        _cleanup_(freep) char *safe_source = format_sanitize(source, strlen(source));

        fprintf(stderr, "ipc-monitor: %s %s%s", mon->read_path ? "reading" : "watching",
                safe_source ? safe_source : "?", mon->n_rules ? ", messages matching " : ": everything");
        for (size_t i = 0; i < mon->n_rules; i++) {
                /* a rule's value may hold any character: keep the terminal safe */
                _cleanup_(freep) char *rule = format_sanitize(mon->rules[i], strlen(mon->rules[i]));

                fprintf(stderr, "%s\"%s\"", i ? " or " : "", rule ? rule : "?");
        }
        if (mon->slow_ms >= 0)
                fprintf(stderr, "; calls slower than %" PRId64 " ms", mon->slow_ms);
        if (mon->capture_path)
                fprintf(stderr, "; captured to %s",
                        strcmp(mon->capture_path, "-") == 0 ? "standard output" : mon->capture_path);
        if (mon->read_path)
                fputs(mon->summary ? "; a summary at the end\n" : "\n", stderr);
        else
                fputs(mon->summary ? "; a summary at the end (Ctrl-C)\n" : " (Ctrl-C to stop)\n", stderr);
}

/* The first line for --read: the file, and the bus it was captured on when it says. */
static void monitor_announce_capture(const struct monitor *mon, const char *captured_on)
{
        _cleanup_(freep) char *source = NULL;

        if (captured_on && asprintf(&source, "%s (captured on %s)", mon->read_path, captured_on) >= 0)
                monitor_announce(mon, source);
        else
                monitor_announce(mon, mon->read_path);
}

/* Say what fault ended the monitor. Returns EXIT_FAILURE. */
static int monitor_report_error(const struct monitor *mon)
{
        if (mon->error_what)
                fprintf(stderr, "ipc-monitor: %s %s: %s\n", mon->error_what,
                        strcmp(mon->capture_path, "-") == 0 ? "to standard output" : mon->capture_path,
                        strerror(-mon->error));
        else
                fprintf(stderr, "ipc-monitor: %s\n", strerror(-mon->error));
        return EXIT_FAILURE;
}

/*
 * Print the traffic until a stop signal (returns 0) or until the bus goes
 * away (says so, returns EXIT_FAILURE), or a fault handling a message.
 */
static int monitor_run(struct monitor *mon, ipcbus_bus *bus, const sigset_t *block, const sigset_t *waitmask)
{
        for (unsigned n = 1; !quit; n++) {
                int r = ipcbus_process(bus);

                if (mon->error)
                        return monitor_report_error(mon);
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
        return mon->error ? monitor_report_error(mon) : 0;
}

/* With --read: parse the MATCH rules, which the monitor applies itself. Returns 0 or -ENOMEM. */
static int monitor_read_rules(struct monitor *mon)
{
        if (mon->n_rules == 0)
                return 0;
        mon->read_rules = calloc(mon->n_rules, sizeof(*mon->read_rules));
        if (!mon->read_rules)
                return -ENOMEM;
        for (size_t i = 0; i < mon->n_rules; i++) {
                int r;

                match_rule_init(&mon->read_rules[i]);
                r = match_rule_parse_string(&mon->read_rules[i], mon->rules[i]);
                if (r != 0) /* checked with the options: only memory can fail here */
                        return r < 0 ? r : -ENOMEM;
        }
        return 0;
}

/*
 * Whether a message read back matches one of the rules (or there are none).
 * A rule's well-known sender matches nothing here: a capture holds unique
 * names, and who owned which name is the broker's knowledge.
 */
static bool monitor_read_matches(const struct monitor *mon, struct mon_event *ev)
{
        if (mon->n_rules == 0)
                return true;
        for (size_t i = 0; i < mon->n_rules; i++)
                if (match_rule_matches(&mon->read_rules[i], ev->msg, NULL, NULL) &&
                    (!mon->read_rules[i].sender || mon->read_rules[i].sender[0] == ':' ||
                     streq(mon->read_rules[i].sender, IPCBUS_DRIVER_NAME)))
                        return true;
        return false;
}

/* After a capture is read: what its statistics block says, or that it has none. */
static void monitor_read_report(struct capture *c, const char *path)
{
        uint64_t packets, lost;

        if (capture_read_stats(c, &packets, &lost) < 0) {
                fprintf(stderr, "ipc-monitor: %s has no statistics block: the capture was cut short\n", path);
                return;
        }
        if (lost > 0)
                fprintf(stderr,
                        "ipc-monitor: %s: the bus dropped %" PRIu64 " messages that never reached the capture\n", path,
                        lost);
}

/*
 * --read: take the messages of a capture through the same path as live ones,
 * deadlines measured in the capture's time. Returns 0, or EXIT_FAILURE
 * having said why (a damaged file: the messages before the damage are shown).
 */
static int monitor_read(struct monitor *mon, const sigset_t *block)
{
        struct capture *c = NULL;
        struct timespec last = {};
        char err[512];
        int r;

        r = capture_open_read(mon->read_path, &c, err, sizeof(err));
        if (r < 0) {
                fprintf(stderr, "ipc-monitor: %s\n", err);
                return EXIT_FAILURE;
        }
        for (unsigned n = 1; !quit && !mon->error; n++) {
                struct capture_record rec;
                struct mon_event ev;

                r = capture_read(c, &rec, err, sizeof(err));
                if (r <= 0)
                        break;
                if (n == 1)
                        monitor_announce_capture(mon, capture_interface(c));
                r = mon_event_from_frame(rec.frame, rec.frame_len, &rec.ts, rec.n_fds, rec.memfd_size, rec.comm, &ev);
                if (r != 0) {
                        fprintf(stderr, "ipc-monitor: %s: message %u is not a valid message, skipped: %s\n",
                                mon->read_path, n, r > 0 ? proto_strerror(r) : strerror(-r));
                        monitor_fail(mon, r < 0 && r != -EINVAL ? r : 0, NULL);
                        continue;
                }
                last = ev.ts;
                /* deadlines in the capture's time, looked at once a second of it as live */
                if (ev.ts.tv_sec != mon->now.tv_sec)
                        monitor_expire_at(mon, &ev.ts);
                if (monitor_read_matches(mon, &ev))
                        monitor_fail(mon, monitor_handle_event(mon, &ev), NULL);
                mon_event_clear(&ev);
                if (n % 256 == 0 && monitor_signal_pending(block))
                        break;
        }
        if (r < 0)
                fprintf(stderr, "ipc-monitor: %s\n", err);
        else if (!quit && !mon->error) {
                monitor_expire_at(mon, &last);
                monitor_read_report(c, mon->read_path);
        }
        capture_close(c);
        if (mon->error)
                return monitor_report_error(mon);
        return r < 0 ? EXIT_FAILURE : 0;
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
        if (r == 0 && mon->read_path)
                r = monitor_read_rules(mon);
        return r;
}

/* Open the capture file of --capture, named for the bus. Returns 0, or -errno having said why. */
static int monitor_open_capture(struct monitor *mon, const char *source)
{
        char err[512];
        int r;

        r = capture_open_write(mon->capture_path, &mon->capture, err, sizeof(err));
        if (r == 0)
                r = capture_set_interface(mon->capture, source);
        if (r < 0) {
                fprintf(stderr, "ipc-monitor: %s\n", r == -ENOMEM ? strerror(ENOMEM) : err);
                return r;
        }
        return 0;
}

/* Close the capture file (if any) and say how much it holds. Returns the exit status, given the run's. */
static int monitor_close_capture(struct monitor *mon, int status)
{
        int r;

        if (!mon->capture)
                return status;
        r = capture_close(steal_pointer(&mon->capture));
        if (r < 0) {
                fprintf(stderr, "ipc-monitor: writing the capture %s: %s\n", mon->capture_path, strerror(-r));
                return EXIT_FAILURE;
        }
        fprintf(stderr, "ipc-monitor: %" PRIu64 " messages captured to %s\n", mon->n_captured,
                strcmp(mon->capture_path, "-") == 0 ? "standard output" : mon->capture_path);
        return status;
}

static void monitor_teardown(struct monitor *mon)
{
        if (mon->capture)
                capture_close(steal_pointer(&mon->capture));
        if (mon->read_rules)
                for (size_t i = 0; i < mon->n_rules; i++)
                        match_rule_deinit(&mon->read_rules[i]);
        free(mon->read_rules);
        mon->read_rules = NULL;
        mon->top_view = top_free(mon->top_view);
        mon->pairing = pairing_free(mon->pairing);
        mon->comms = mon_comms_free(mon->comms);
        mon->stats = summary_free(mon->stats);
}

static size_t monitor_in_flight(void *userdata)
{
        struct monitor *mon = userdata;

        return pairing_in_flight(mon->pairing);
}

static void monitor_tick(void *userdata)
{
        monitor_expire(userdata);
}

/*
 * --top: the view over the monitor connection bus, with a second connection
 * for the broker's statistics. Returns the exit status.
 */
static int monitor_top(struct monitor *mon, ipcbus_bus *bus, const char *source, const sigset_t *waitmask)
{
        _cleanup_(ipcbus_unrefp) ipcbus_bus *stats = NULL;
        const struct top_options o = {.what = source, .interval_usec = mon->interval_usec, .once = mon->once};
        const struct top_hooks hooks = {.in_flight = monitor_in_flight, .tick = monitor_tick, .userdata = mon};
        int r;

        if (monitor_open(mon, &stats) < 0)
                return EXIT_FAILURE;
        r = top_new(&o, &mon->top_view);
        if (r < 0) {
                fprintf(stderr, "ipc-monitor: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        r = top_run(mon->top_view, bus, stats, &hooks, waitmask, &quit);
        if (r == 0 && mon->error)
                r = monitor_report_error(mon);
        return r;
}

/* Become a monitor on bus with the rules, events through the filter. Returns 0 or EXIT_FAILURE having said why. */
static int monitor_become(struct monitor *mon, ipcbus_bus *bus, ipcbus_slot **ret_filter)
{
        _cleanup_(ipcbus_error_freep) ipcbus_error error = IPCBUS_ERROR_NULL;
        int r;

        mon->unique_name = ipcbus_get_unique_name(bus);
        r = ipcbus_add_filter(bus, ret_filter, monitor_on_message, mon);
        if (r >= 0)
                r = ipcbus_become_monitor(bus, (const char *const *) mon->rules, mon->n_rules, &error);
        if (r >= 0)
                return 0;
        /* the broker's refusal says why (AccessDenied: the policy's "monitor" rules) */
        if (ipcbus_error_is_set(&error))
                fprintf(stderr, "ipc-monitor: cannot become a monitor: %s: %s\n", error.name,
                        error.message ? error.message : ipcbus_strerror(r));
        else
                fprintf(stderr, "ipc-monitor: cannot become a monitor: %s\n", ipcbus_strerror(r));
        return EXIT_FAILURE;
}

/* Watch a bus live: the messages, or the top view. Returns the exit status. */
static int monitor_live(struct monitor *mon, const sigset_t *block, const sigset_t *waitmask)
{
        _cleanup_(ipcbus_unrefp) ipcbus_bus *bus = NULL;
        _cleanup_(freep) char *address_free = NULL;
        const char *source = monitor_address(mon, &address_free);
        ipcbus_slot *filter = NULL;
        int r;

        if (monitor_open(mon, &bus) < 0)
                return EXIT_FAILURE;
        if (mon->capture_path && monitor_open_capture(mon, source) < 0)
                return EXIT_FAILURE;
        r = monitor_become(mon, bus, &filter);
        if (r == 0)
                monitor_announce(mon, source);
        if (r == 0 && mon->top)
                r = monitor_top(mon, bus, source, waitmask);
        else if (r == 0)
                r = monitor_run(mon, bus, block, waitmask);
        ipcbus_slot_unref(filter);
        return r;
}

int main(int argc, char **argv)
{
        struct monitor mon = {.slow_ms = -1};
        sigset_t block, waitmask;
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
        if (mon.read_path && mon.capture_path && monitor_open_capture(&mon, mon.read_path) < 0)
                r = EXIT_FAILURE;
        else
                r = mon.read_path ? monitor_read(&mon, &block) : monitor_live(&mon, &block, &waitmask);
        /* Ctrl-C, SIGTERM, the end of a capture or the bus gone: the table of what was seen, apart from JSON on stdout
         */
        if (mon.stats)
                summary_print(mon.stats, mon.json ? stderr : stdout);
        r = monitor_close_capture(&mon, r);
        monitor_teardown(&mon);
        return r;
}
