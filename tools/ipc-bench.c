/* SPDX-License-Identifier: MIT */
/*
 * ipc-bench: measure the bus in named scenarios (ipc-bench --list says what
 * each measures, its unit and which way is better). Every server and client
 * is a forked process with its own connection; each reports to the parent
 * over a pipe, and the parent prints one line per scenario:
 *
 *   RESULT broker=ipcbus scenario=<name> value=<number> unit=<unit> [key=value ...]
 *
 * Without --address it starts its own ipcbusd on a socket in a temporary
 * directory and stops it at the end. Exit status: 0 when every scenario ran
 * and lost and failed nothing, 1 otherwise, 2 on a usage error.
 *
 * This file holds the options and the table of scenarios; the harness and
 * the scenarios, one file per family, are in bench/ (see bench/bench.h).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/bench/bench.h"
#include "tools/format.h"

#define EXIT_USAGE 2

static void on_signal(int sig)
{
        bench_interrupted = 1;
}

/*
 * The scenarios, in the order they run. What --list and the manual say of
 * each: what its value measures (the counts before --scale), its unit (that
 * of its RESULT line) and whether a higher value is better.
 */
static const struct scenario {
        const char *name;
        const char *summary;
        const char *unit;
        bool higher_better;
        bool needs_bus;
        int (*run)(const struct bench *b, const char *name);
} scenarios[] = {
        {"raw_pingpong",
         "The median round trip of a 64-byte ping-pong between two processes over a direct Unix socket, no broker, "
         "100,000 round trips: the kernel's floor.",
         "us", false, false, scenario_raw_pingpong},
        {"raw_relay_pingpong",
         "raw_pingpong through a third process that forwards every message as a broker would (no broker): the floor "
         "of a call's two hops.",
         "us", false, false, scenario_raw_relay_pingpong},
        {"raw_relay_64k",
         "raw_relay_pingpong with 64 KiB each way (or --payload), 5,000 round trips: the floor under call_rtt_64k.",
         "us", false, false, scenario_raw_relay_64k},
        {"call_rtt_small",
         "The median round trip of sequential 64-byte Echo calls through the broker, 20,000 after 1,000 warm-up; the "
         "line adds the p99 and the rate.",
         "us", false, true, scenario_call_rtt_small},
        {"call_pipelined", "Echo calls with 64 outstanding at a time, 200,000 calls: the broker's call throughput.",
         "calls/s", true, true, scenario_call_pipelined},
        {"signal_fanout_10",
         "Signals delivered per second when one process emits 100,000 signals to 10 subscriber processes.", "signals/s",
         true, true, scenario_signal_fanout},
        {"call_rtt_64k",
         "Sequential Echo calls with a 64 KiB string, 5,000 after 100 warm-up; the payload counted both ways, in 10^6 "
         "bytes a second.",
         "MB/s", true, true, scenario_call_rtt_64k},
        {"connect_hello", "Connections a second when one client connects, says Hello and disconnects, 2,000 times.",
         "conn/s", true, true, scenario_connect_hello},
        {"broker_rss_kb", "The broker's peak resident memory (VmHWM) after the scenarios before it.", "kB", false, true,
         scenario_broker_rss},
        /* after broker_rss_kb, whose figure then leaves out the rules this one installs */
        {"signal_fanout_rules",
         "signal_fanout_10 while other connections hold --rules match rules (default 10,000) that none of its "
         "signals match; indexed routing keeps it close to signal_fanout_10.",
         "signals/s", true, true, scenario_signal_fanout_rules},
        /* after broker_rss_kb too: its megabyte buffers would raise the peak */
        {"call_rtt_1m", "call_rtt_64k with a 1 MiB string, 200 calls after 20 warm-up.", "MB/s", true, true,
         scenario_call_rtt_1m},
        {"call_rtt_64k_bytes",
         "call_rtt_64k with 64 KiB of binary data (the bytes type, built and read with the typed API), every reply "
         "compared.",
         "MB/s", true, true, scenario_call_rtt_64k_bytes},
        {"call_rtt_1m_bytes", "call_rtt_1m with 1 MiB of binary data (the bytes type).", "MB/s", true, true,
         scenario_call_rtt_1m_bytes},
        {"call_under_flood",
         "The p99 round trip of call_rtt_small's calls while 10 subscribers take a signal flood; the line adds "
         "p99_ratio, over the quiet p99 of the same run.",
         "us", false, true, scenario_call_under_flood},
};

#define N_SCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

/* ---- main ------------------------------------------------------------------- */

static void help(void)
{
        printf("Usage: ipc-bench [OPTIONS]\n"
               "\n"
               "Run the ipcbus benchmark scenarios (see ipc-bench --list) and print one line\n"
               "per scenario:\n"
               "  RESULT broker=ipcbus scenario=NAME value=NUMBER unit=UNIT [key=value ...]\n"
               "lost=N and failed=N appear when messages were lost or failed; the exit\n"
               "status is then 1. call_rtt_64k and call_rtt_1m (and their _bytes twins,\n"
               "with binary payloads) count the payload both ways (argument and result)\n"
               "in their MB/s (10^6 bytes). The call scenarios add the minor page faults\n"
               "and CPU time per timed call of the broker (broker_minflt_per_call,\n"
               "broker_cpu_us_per_call) and of the caller and server processes together\n"
               "(client_minflt_per_call, client_cpu_us_per_call). call_under_flood prints\n"
               "the flooded p99 and p99_ratio, its ratio to the quiet p99 of the same run.\n"
               "\n"
               "Options:\n"
               "  --address ADDR     use the running bus at ADDR; otherwise start ipcbusd\n"
               "                     ($IPCBUSD, beside ipc-bench, or from PATH) on a\n"
               "                     temporary socket\n"
               "  --scenario NAME    run NAME (repeatable; default: all, in order)\n"
               "  --scale F          multiply every count by F (e.g. 0.01 for a smoke run)\n"
               "  --rules N          unrelated match rules signal_fanout_rules installs\n"
               "                     (default 10000; not scaled)\n"
               "  --payload BYTES    the payload of raw_relay_64k, call_rtt_64k, call_rtt_1m and their\n"
               "                     _bytes twins instead of theirs (1 to 16777216; to\n"
               "                     find where bodies are cheaper in memfds)\n"
               "  --list             list the scenarios: what each measures, its unit, and\n"
               "                     whether higher or lower is better\n"
               "  -h, --help         show this help\n"
               "  --version          show the version\n"
               "\n"
               "Example:\n"
               "  ipc-bench --scale 0.1 --scenario call_rtt_small --scenario signal_fanout_10\n");
}

/*
 * Print the scenarios for --list: each one's name, unit and which way is
 * better, then what it measures, indented and wrapped to 78 columns.
 */
static void scenarios_list(void)
{
        for (size_t i = 0; i < N_SCENARIOS; i++) {
                const char *word = scenarios[i].summary;
                size_t column = 0;

                printf("%s (%s, %s is better)\n", scenarios[i].name, scenarios[i].unit,
                       scenarios[i].higher_better ? "higher" : "lower");
                while (*word) {
                        size_t len = strcspn(word, " ");

                        if (column > 0 && column + 1 + len > 78) {
                                putchar('\n');
                                column = 0;
                        }
                        column += (size_t) printf(column ? " %.*s" : "  %.*s", (int) len, word);
                        word += len + strspn(word + len, " ");
                }
                putchar('\n');
        }
}

/* The index of the scenario called `name`, or N_SCENARIOS. */
static size_t scenario_find(const char *name)
{
        size_t i;

        for (i = 0; i < N_SCENARIOS && strcmp(scenarios[i].name, name) != 0; i++)
                ;
        return i;
}

/* Parse --scale F (above 0, at most 1000). Returns 0 or -EINVAL. */
static int parse_scale(const char *s, double *ret)
{
        char *end;
        double v;

        errno = 0;
        v = strtod(s, &end);
        if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v <= 0 || v > 1000)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* Parse --rules N (0 to 1000000). Returns 0 or -EINVAL. */
static int parse_rules(const char *s, uint64_t *ret)
{
        char *end;
        unsigned long long n;

        errno = 0;
        n = strtoull(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || n > 1000000)
                return -EINVAL;
        *ret = n;
        return 0;
}

/* Parse --payload BYTES (1 to 16 MiB, a quarter of the largest body). Returns 0 or -EINVAL. */
static int parse_payload(const char *s, size_t *ret)
{
        char *end;
        unsigned long long n;

        errno = 0;
        n = strtoull(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || n < 1 || n > 16u * 1024u * 1024u)
                return -EINVAL;
        *ret = (size_t) n;
        return 0;
}

/* What parse_options returns when ipc-bench goes on to run the scenarios. */
#define PARSE_RUN (-1)

/*
 * Parse the command line into b and selected[] (*any: a scenario was named).
 * Returns PARSE_RUN, or the exit status when ipc-bench is done (--help,
 * --list, --version, a usage error).
 */
static int parse_options(int argc, char **argv, struct bench *b, bool *selected, bool *any)
{
        enum { OPT_ADDRESS = 0x100, OPT_SCENARIO, OPT_SCALE, OPT_LIST, OPT_VERSION, OPT_RULES, OPT_PAYLOAD };
        static const struct option options[] = {
                {"address", required_argument, NULL, OPT_ADDRESS},
                {"scenario", required_argument, NULL, OPT_SCENARIO},
                {"scale", required_argument, NULL, OPT_SCALE},
                {"rules", required_argument, NULL, OPT_RULES},
                {"payload", required_argument, NULL, OPT_PAYLOAD},
                {"list", no_argument, NULL, OPT_LIST},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, OPT_VERSION},
                {},
        };
        int opt;

        /* getopt names the program by argv[0]: from a build tree, libtool's .libs/ path */
        argv[0] = (char *) "ipc-bench";
        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                size_t i;

                switch (opt) {
                case OPT_ADDRESS:
                        if (format_check_address("ipc-bench", optarg) < 0)
                                return EXIT_USAGE;
                        b->address = optarg;
                        break;
                case OPT_SCENARIO:
                        i = scenario_find(optarg);
                        if (i == N_SCENARIOS) {
                                fprintf(stderr, "ipc-bench: unknown scenario '%s' (see ipc-bench --list)\n", optarg);
                                return EXIT_USAGE;
                        }
                        selected[i] = *any = true;
                        break;
                case OPT_SCALE:
                        if (parse_scale(optarg, &b->scale) < 0) {
                                fprintf(stderr, "ipc-bench: invalid scale '%s' (a number above 0)\n", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case OPT_RULES:
                        if (parse_rules(optarg, &b->rules) < 0) {
                                fprintf(stderr, "ipc-bench: invalid rule count '%s' (0 to 1000000)\n", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case OPT_PAYLOAD:
                        if (parse_payload(optarg, &b->payload) < 0) {
                                fprintf(stderr, "ipc-bench: invalid payload '%s' (1 to 16777216 bytes)\n", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case OPT_LIST:
                        scenarios_list();
                        return 0;
                case 'h':
                        help();
                        return 0;
                case OPT_VERSION:
                        printf("ipc-bench %s\n", PACKAGE_VERSION);
                        return 0;
                default:
                        fputs("(see ipc-bench --help)\n", stderr);
                        return EXIT_USAGE;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "ipc-bench: unexpected argument '%s' (see ipc-bench --help)\n", argv[optind]);
                return EXIT_USAGE;
        }
        return PARSE_RUN;
}

int main(int argc, char **argv)
{
        struct bench b = {.scale = 1.0, .rules = FANOUT_RULES_DEFAULT};
        bool selected[N_SCENARIOS] = {}, any = false, need_bus = false;
        struct sigaction sa = {.sa_handler = on_signal};
        int r, status = 0;

        r = parse_options(argc, argv, &b, selected, &any);
        if (r != PARSE_RUN)
                return r;

        signal(SIGPIPE, SIG_IGN);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);

        for (size_t i = 0; i < N_SCENARIOS; i++)
                if ((!any || selected[i]) && scenarios[i].needs_bus)
                        need_bus = true;
        if (!b.address && need_bus) {
                r = broker_start(&b);
                if (r < 0) {
                        fprintf(stderr, "ipc-bench: cannot start ipcbusd: %s\n", strerror(-r));
                        broker_stop(&b);
                        return EXIT_FAILURE;
                }
        }
        for (size_t i = 0; i < N_SCENARIOS && !bench_interrupted; i++)
                if (!any || selected[i])
                        status |= scenarios[i].run(&b, scenarios[i].name);
        if (bench_interrupted) {
                fprintf(stderr, "ipc-bench: interrupted\n");
                status = 1;
        }
        broker_stop(&b);
        return status ? EXIT_FAILURE : EXIT_SUCCESS;
}
