/* SPDX-License-Identifier: MIT */
/*
 * ipc-monitor: print the traffic of an ipcbus bus, one message per line
 * (human form or JSON, see format.h). Modelled on dbus-monitor.
 *
 * Exit status: 0 on SIGINT/SIGTERM, 1 when the bus goes away or monitoring
 * cannot start, 2 on a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ipcbus/ipcbus.h>

#include "protocol/match.h"
#include "protocol/proto-error.h"
#include "tools/format.h"
#include "util/clock.h"

#define EXIT_USAGE 2

struct monitor {
        const char *address; /* --address, or NULL */
        bool system;         /* --system */
        bool json;
        bool timestamp;
        const char *unique_name; /* ours, to hide the driver's NameAcquired/NameLost to us */
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
               "Print every message on an ipcbus bus, or those matching one of the rules.\n"
               "\n"
               "Options:\n"
               "  --address ADDR  monitor the bus at ADDR (unix:path=/absolute/path)\n"
               "  --session       monitor the session bus (the default)\n"
               "  --system        monitor the system bus\n"
               "  --json          one JSON object per line: {\"header\":{...},\"body\":...}\n"
               "  --timestamp     prefix each line with the time of receipt (seconds since\n"
               "                  the epoch); with --json, add a \"timestamp\" member\n"
               "  -h, --help      show this help\n"
               "  --version       show the version\n"
               "\n"
               "MATCH is a rule in the string form, e.g.\n"
               "  ipc-monitor type=signal,interface=org.example.Notes\n"
               "  ipc-monitor \"type=call,destination=org.example.Notes\" \"type=error\"\n"
               "  ipc-monitor --json | jq .body\n"
               "\n"
               "Each line: TYPE SENDER -> DESTINATION serial=N [reply_serial=N] [path=P]\n"
               "[interface=I] [member=M] [error=E] [no_reply] BODY, e.g.\n"
               "  signal  :1.4 -> *        serial=7 path=/org/x interface=org.x.I member=Changed {\"title\":\"hi\"}\n");
}

/*
 * The filter that sees every message: print it, and consume it so the
 * library does not dispatch it further (a monitor answers nothing).
 */
static int monitor_on_message(ipcbus_message *m, void *userdata, ipcbus_error *ret_error)
{
        struct monitor *mon = userdata;
        struct timespec ts;
        const char *member = ipcbus_message_get_member(m);
        const char *sender = ipcbus_message_get_sender(m);
        const char *destination = ipcbus_message_get_destination(m);

        /* The driver telling us about our own (pre-monitor) unique name is not traffic. */
        if (ipcbus_message_get_type(m) == IPCBUS_MESSAGE_SIGNAL && sender && destination && member &&
            strcmp(sender, IPCBUS_DRIVER_NAME) == 0 && strcmp(destination, mon->unique_name) == 0 &&
            (strcmp(member, "NameAcquired") == 0 || strcmp(member, "NameLost") == 0))
                return 1;
        /* The bus dropped copies while we were behind: say so where a person looks, and in the stream. */
        if (ipcbus_message_get_type(m) == IPCBUS_MESSAGE_SIGNAL && sender && member &&
            strcmp(sender, IPCBUS_DRIVER_NAME) == 0 && strcmp(member, "MessagesLost") == 0) {
                size_t len = 0;
                const char *body = ipcbus_message_get_body(m, &len);

                fprintf(stderr, "ipc-monitor: the bus dropped messages while this monitor fell behind: %.*s\n",
                        (int) len, body ? body : "");
        }

        clock_gettime(CLOCK_REALTIME, &ts);
        if (mon->json)
                format_message_json(stdout, m, mon->timestamp ? &ts : NULL);
        else
                format_message_line(stdout, m, mon->timestamp ? &ts : NULL);
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
 * Wait for the bus to have work, or for SIGINT/SIGTERM. The signals stay
 * blocked except inside ppoll, so one that comes between a check of `quit`
 * and the wait is not lost.
 */
static int monitor_wait(ipcbus_bus *bus, const sigset_t *waitmask)
{
        struct pollfd p = {.fd = ipcbus_get_fd(bus), .events = (short) ipcbus_get_events(bus)};
        struct timespec ts, *tsp = NULL;
        uint64_t deadline = UINT64_MAX;

        ipcbus_get_timeout(bus, &deadline);
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
                        fprintf(stderr, "ipc-monitor: invalid match rule '%s': %s\n(see ipc-monitor --help)\n", argv[i],
                                r > 0 ? proto_strerror(r) : strerror(-r));
                        return EXIT_USAGE;
                }
        }
        return PARSE_RUN;
}

/*
 * Parse the options into mon and check the match rules after them (argv from
 * optind on). Returns PARSE_RUN, or the exit status when ipc-monitor is done
 * (--help, --version, a usage error).
 */
static int monitor_parse_options(int argc, char **argv, struct monitor *mon)
{
        enum { OPT_ADDRESS = 0x100, OPT_SESSION, OPT_SYSTEM, OPT_JSON, OPT_TIMESTAMP, OPT_VERSION };
        static const struct option options[] = {
                {"address", required_argument, NULL, OPT_ADDRESS}, {"session", no_argument, NULL, OPT_SESSION},
                {"system", no_argument, NULL, OPT_SYSTEM},         {"json", no_argument, NULL, OPT_JSON},
                {"timestamp", no_argument, NULL, OPT_TIMESTAMP},   {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, OPT_VERSION},       {},
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
                case OPT_TIMESTAMP:
                        mon->timestamp = true;
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
 * Print the traffic until SIGINT/SIGTERM (returns 0) or until the bus goes
 * away (says so, returns EXIT_FAILURE).
 */
static int monitor_run(ipcbus_bus *bus, const sigset_t *block, const sigset_t *waitmask)
{
        for (unsigned n = 1; !quit; n++) {
                int r = ipcbus_process(bus);

                if (r > 0) {
                        /* under a flood ppoll is not reached: look for the signals now and then */
                        if (n % 256 == 0 && monitor_signal_pending(block))
                                break;
                        continue;
                }
                if (r == 0)
                        r = monitor_wait(bus, waitmask);
                if (r < 0) {
                        fprintf(stderr, "ipc-monitor: the bus went away: %s\n", ipcbus_strerror(r));
                        return EXIT_FAILURE;
                }
        }
        return 0;
}

int main(int argc, char **argv)
{
        _cleanup_(ipcbus_unrefp) ipcbus_bus *bus = NULL;
        _cleanup_(ipcbus_error_freep) ipcbus_error error = IPCBUS_ERROR_NULL;
        struct monitor mon = {};
        sigset_t block, waitmask;
        ipcbus_slot *filter = NULL;
        int r;

        r = monitor_parse_options(argc, argv, &mon);
        if (r != PARSE_RUN)
                return r;
        monitor_catch_signals(&block, &waitmask);
        if (monitor_connect(&mon, &bus) < 0)
                return EXIT_FAILURE;
        r = ipcbus_add_filter(bus, &filter, monitor_on_message, &mon);
        if (r >= 0)
                r = ipcbus_become_monitor(bus, (const char *const *) argv + optind, (size_t) (argc - optind), &error);
        if (r < 0) {
                /* the broker's refusal says why (AccessDenied: the policy's "monitor" rules) */
                if (ipcbus_error_is_set(&error))
                        fprintf(stderr, "ipc-monitor: cannot become a monitor: %s: %s\n", error.name,
                                error.message ? error.message : ipcbus_strerror(r));
                else
                        fprintf(stderr, "ipc-monitor: cannot become a monitor: %s\n", ipcbus_strerror(r));
                ipcbus_slot_unref(filter);
                return EXIT_FAILURE;
        }
        r = monitor_run(bus, &block, &waitmask);
        ipcbus_slot_unref(filter);
        return r;
}
