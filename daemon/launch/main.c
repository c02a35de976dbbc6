/* SPDX-License-Identifier: MIT */
/* ipcbusd: options, the event loop, the listeners, the bus and systemd's protocols, wired together. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon/bus/bus.h"
#include "daemon/launch/heap.h"
#include "daemon/launch/scrape.h"
#include "daemon/launch/systemd.h"
#include "daemon/log.h"
#include "daemon/transport/connection.h"
#include "daemon/transport/listener.h"
#include "protocol/address.h"
#include "util/clock.h"
#include "util/util.h"

/* STATUS= updates are coalesced: at most one per this interval. */
#define STATUS_INTERVAL_USEC 1000000u

struct daemon {
        struct event_base *base;
        struct bus_config config;
        bool config_loaded;
        struct listener *listeners;
        size_t n_listeners;
        int n_handed;          /* sockets handed over (LISTEN_FDS) that no listener owns yet */
        char *default_address; /* the bus type's address when nothing else names one */
        struct bus bus;
        bool bus_up;
        struct event *ev_term, *ev_int, *ev_hup;
        const char *config_file; /* --config; NULL: the built-in file of config.type */
        bool stopping;
        char *address; /* where clients connect (the first listener), for --print-address and STATUS */
        struct systemd_notifier notifier;
        struct event *status_timer; /* armed only while an update waits for its interval */
        struct heap_trimmer trimmer;
        struct scrape_server scrape; /* the metrics socket; listening only when one is configured */
        bool metrics_pinned;         /* --metrics-socket given: the configuration's path does not count */
        uint64_t status_usec;        /* CLOCK_MONOTONIC when the last STATUS= went out */
        char status[512];            /* the last STATUS= text sent */
};

static void help(void)
{
        printf("Usage: ipcbusd [OPTIONS]\n"
               "\n"
               "The ipcbus message broker.\n"
               "\n"
               "  --config FILE      read the configuration from FILE (ipcbus-config(5))\n"
               "  --session          the session bus (default): the built-in session.json;\n"
               "                     $IPCBUS_ADDRESS, else unix:path=$XDG_RUNTIME_DIR/ipcbus/bus\n"
               "  --system           the system bus: the built-in system.json;\n"
               "                     $IPCBUS_SYSTEM_ADDRESS, else unix:path=/run/ipcbus/system_bus_socket\n"
               "  --address ADDRESS  listen on ADDRESS (unix:path=/absolute/path), not on the\n"
               "                     configuration's addresses\n"
               "  --print-address    print the address on stdout once it accepts connections\n"
               "  --metrics-socket PATH\n"
               "                     serve metrics to scrapers on the Unix socket PATH, not\n"
               "                     on the configuration's metrics_socket (\"\": none)\n"
               "  -v, --verbose      log more (info; twice: debug)\n"
               "  --log-prefix       start each line on stderr with its syslog priority (<3>),\n"
               "                     as when stderr is systemd's journal (JOURNAL_STREAM)\n"
               "  -h, --help         show this help\n"
               "      --version      show the version\n"
               "\n"
               "Under systemd: the sockets handed over in LISTEN_FDS are served (nothing else\n"
               "is bound), READY=1, STATUS= and STOPPING=1 go to NOTIFY_SOCKET, and log lines\n"
               "carry the syslog priority when stderr is the journal (JOURNAL_STREAM).\n");
}

/* Is path below $XDG_RUNTIME_DIR? (Then its parent may be created, private.) */
static bool path_in_runtime_dir(const char *path)
{
        const char *dir = getenv("XDG_RUNTIME_DIR");
        size_t n;

        if (!dir || dir[0] != '/')
                return false;
        n = strlen(dir);
        while (n > 1 && dir[n - 1] == '/')
                n--;
        return strncmp(path, dir, n) == 0 && path[n] == '/';
}

/* The one-line STATUS= text: what the bus does now, e.g. "Serving 3 connections on unix:path=...". */
static void daemon_status_text(struct daemon *d, char *buf, size_t size)
{
        unsigned n = d->bus.n_peers;

        snprintf(buf, size, "%s %u connection%s on %s%s", d->stopping ? "Shutting down, flushing" : "Serving", n,
                 n == 1 ? "" : "s", d->address ? d->address : "(no address)",
                 d->n_listeners > 1 ? " and more addresses" : "");
}

/* Tell the service manager how to describe the bus now, unless that is what it was told last. */
static void daemon_send_status(struct daemon *d)
{
        char text[sizeof(d->status)];
        int r;

        daemon_status_text(d, text, sizeof(text));
        if (strcmp(text, d->status) == 0)
                return;
        r = systemd_notify_status(&d->notifier, text);
        if (r < 0) {
                log_debug("cannot send the status to the service manager: %s", strerror(-r));
                return;
        }
        memcpy(d->status, text, sizeof(text));
        d->status_usec = clock_now_usec(CLOCK_MONOTONIC);
}

static void on_status_timer(evutil_socket_t fd, short what, void *userdata)
{
        daemon_send_status(userdata);
}

/*
 * The bus's peers_changed hook: a peer came or went. The status goes out at
 * once when the last one is a second old, else when the second is over (one
 * timer for any number of changes meanwhile); nothing runs while idle.
 */
static void on_peers_changed(struct bus *bus, void *userdata)
{
        struct daemon *d = userdata;
        uint64_t since;

        if (!d->status_timer || evtimer_pending(d->status_timer, NULL))
                return;
        since = clock_now_usec(CLOCK_MONOTONIC) - d->status_usec;
        if (since >= STATUS_INTERVAL_USEC) {
                daemon_send_status(d);
        } else {
                uint64_t wait = STATUS_INTERVAL_USEC - since;
                const struct timeval tv = {.tv_sec = (time_t) (wait / 1000000u),
                                           .tv_usec = (suseconds_t) (wait % 1000000u)};

                evtimer_add(d->status_timer, &tv);
        }
}

/* Tell the service manager something; a failure only costs a log line (the bus works on). */
static void daemon_notify(struct daemon *d, int (*notify)(struct systemd_notifier *n, const char *status),
                          const char *what)
{
        int r;

        if (!systemd_notifier_enabled(&d->notifier))
                return;
        daemon_status_text(d, d->status, sizeof(d->status));
        d->status_usec = clock_now_usec(CLOCK_MONOTONIC);
        r = notify(&d->notifier, d->status);
        if (r < 0)
                log_warning("cannot tell the service manager %s: %s", what, strerror(-r));
}

/* SIGTERM / SIGINT: stop accepting, flush every peer, leave the loop. A second
 * signal leaves at once. */
static void on_signal(evutil_socket_t sig, short what, void *userdata)
{
        struct daemon *d = userdata;

        if (d->stopping) {
                log_warning("second signal, exiting now");
                event_base_loopbreak(d->base);
                return;
        }
        d->stopping = true;
        log_info("%s, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        /* The listening sockets go first: whoever connects from now on is
         * refused (or, with socket activation, waits for the next instance). */
        for (size_t i = 0; i < d->n_listeners; i++)
                listener_deinit(&d->listeners[i]);
        scrape_server_deinit(&d->scrape);
        daemon_notify(d, systemd_notify_stopping, "STOPPING=1");
        bus_shutdown(&d->bus);
}

/* Do two configurations list the same addresses? */
static bool same_listen(const struct bus_config *a, const struct bus_config *b)
{
        if (a->n_listen != b->n_listen)
                return false;
        for (size_t i = 0; i < a->n_listen; i++)
                if (strcmp(a->listen[i], b->listen[i]) != 0)
                        return false;
        return true;
}

/*
 * SIGHUP and ReloadConfig (bus->reload): read the configuration again and
 * apply it (CONFIG.md "Reloading"). Anything wrong keeps the running one.
 */
static int daemon_reload(struct bus *bus, void *userdata, char *err, size_t err_size)
{
        struct daemon *d = userdata;
        struct bus_config next, old;
        int r;

        daemon_notify(d, systemd_notify_reloading, "RELOADING=1");
        r = d->config_file ? bus_config_load_file(&next, d->config_file, err, err_size)
                           : bus_config_load_default(&next, d->config.type, err, err_size);
        if (r) {
                if (r == -ENOMEM)
                        snprintf(err, err_size, "out of memory reading the configuration");
                log_error("reload failed, keeping the previous configuration: %s", err);
                daemon_notify(d, systemd_notify_ready, "READY=1");
                /* CONFIG_E_INVALID, or a file that cannot be read: the caller's to explain */
                return r == -ENOMEM ? r : BUS_E_RELOAD_REFUSED;
        }
        if (next.type != d->config.type) {
                log_warning("%s: type: a reload cannot change the bus type; restart ipcbusd for that", next.origin);
                next.type = d->config.type;
        }
        if (!same_listen(&next, &d->config))
                log_warning("%s: listen: changed addresses take effect only when ipcbusd restarts", next.origin);
        if (!d->metrics_pinned && strcmp(next.metrics_socket ? next.metrics_socket : "",
                                         d->config.metrics_socket ? d->config.metrics_socket : "") != 0)
                log_warning("%s: metrics_socket: a changed path takes effect only when ipcbusd restarts", next.origin);

        /* The bus points at d->config: swap the contents in, and back when the bus refuses. */
        old = d->config;
        d->config = next;
        r = bus_reconfigure(bus, &d->config);
        if (r < 0) {
                next = d->config;
                d->config = old;
                bus_config_deinit(&next);
                snprintf(err, err_size, "out of memory applying the configuration");
                log_error("reload failed, keeping the previous configuration: %s", err);
        } else {
                bus_config_deinit(&old);
                log_info("reloaded %s: %zu activatable services", d->config.origin,
                         service_registry_size(&bus->services));
        }
        daemon_notify(d, systemd_notify_ready, "READY=1");
        return r;
}

static void on_sighup(evutil_socket_t sig, short what, void *userdata)
{
        struct daemon *d = userdata;
        char err[512];

        if (d->stopping)
                return;
        log_info("SIGHUP, reloading the configuration");
        (void) daemon_reload(&d->bus, d, err, sizeof(err));
}

/*
 * Every connection costs a descriptor, and so does every fd queued towards a
 * peer: take the whole hard limit rather than the soft 1024, so clients run
 * into the broker's own limits (and their clear errors) long before the
 * process runs out of descriptors.
 */
static void raise_fd_limit(void)
{
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
                return;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                log_warning("cannot raise the descriptor limit to %llu: %s", (unsigned long long) rl.rlim_max,
                            strerror(errno));
}

/* Listen on one address; its parent directory is made (private) for the session bus's
 * default address and anywhere below $XDG_RUNTIME_DIR. Returns 0 or -1 (logged). */
static int daemon_listen(struct daemon *d, const char *address, bool make_parent)
{
        _cleanup_(freep) char *path = NULL;
        struct listener *l = &d->listeners[d->n_listeners];
        int r;

        if (address_parse(address, &path) < 0) {
                log_error("invalid address '%s': expected unix:path=/absolute/path", address);
                return -1;
        }
        r = listener_init(l, d->base, path, make_parent || path_in_runtime_dir(path), bus_accept, &d->bus);
        if (r == LISTENER_E_IN_USE) {
                log_error("another bus is already listening on %s", path);
                return -1;
        }
        if (r == LISTENER_E_NOT_SOCKET) {
                log_error("%s exists and is not a socket", path);
                return -1;
        }
        if (r == 0) {
                d->n_listeners++;
                listener_set_refuse(l, bus_refuse_fd);
                r = listener_start(l);
        }
        if (r < 0) {
                log_error("cannot listen on %s: %s", path, strerror(-r));
                return -1;
        }
        if (!d->address && !(d->address = strdup(address))) {
                log_error("out of memory");
                return -1;
        }
        log_info("listening on %s", address);
        return 0;
}

/* Why a handed descriptor cannot be served (listener_init_fd's and listener_get_address's errors). */
static const char *handed_fd_problem(int r)
{
        switch (r) {
        case -EBADF:
        case -ENOTSOCK:
                return "it is not a socket";
        case LISTENER_E_NOT_UNIX:
                return "it is not a Unix socket (AF_UNIX)";
        case LISTENER_E_NOT_STREAM:
                return "it is not a stream socket (SOCK_STREAM)";
        case LISTENER_E_NOT_LISTENING:
                return "it is not listening";
        case LISTENER_E_NO_PATH:
                return "it has no file system path (abstract or unnamed socket); ipcbus addresses are unix:path=/...";
        default:
                return strerror(-r);
        }
}

/*
 * Serve the n sockets the service manager handed over (fds 3 ...), exactly
 * those: each must be a listening Unix stream socket with a path. Returns 0
 * or -1 (logged); the descriptors not taken by a listener are closed then.
 */
static int daemon_serve_handed(struct daemon *d, int n)
{
        for (int i = 0; i < n; i++) {
                int fd = SYSTEMD_LISTEN_FDS_START + i;
                struct listener *l = &d->listeners[d->n_listeners];
                _cleanup_(freep) char *address = NULL;
                int r;

                r = listener_init_fd(l, d->base, fd, bus_accept, &d->bus);
                if (r) {
                        log_error("cannot serve descriptor %d handed over in LISTEN_FDS: %s; a listening Unix "
                                  "stream socket (ListenStream=) is required",
                                  fd, handed_fd_problem(r));
                        goto fail;
                }
                d->n_listeners++;
                r = listener_get_address(l, &address);
                if (r) {
                        log_error("cannot serve descriptor %d handed over in LISTEN_FDS: %s", fd, handed_fd_problem(r));
                        goto fail;
                }
                listener_set_refuse(l, bus_refuse_fd);
                r = listener_start(l);
                if (r < 0) {
                        log_error("cannot serve %s (descriptor %d): %s", address, fd, strerror(-r));
                        goto fail;
                }
                log_info("serving %s: descriptor %d, handed over by the service manager (LISTEN_FDS)", address, fd);
                if (!d->address)
                        d->address = steal_pointer(&address);
        }
        return 0;

fail:
        /* the listeners' own descriptors close with them */
        for (int fd = SYSTEMD_LISTEN_FDS_START + (int) d->n_listeners; fd < SYSTEMD_LISTEN_FDS_START + n; fd++)
                close(fd);
        return -1;
}

/* What the command line asks for. */
struct daemon_options {
        const char *address;        /* --address; NULL: the handed sockets', the configuration's or the default */
        const char *config_file;    /* --config; NULL: the built-in file of the bus type */
        const char *metrics_socket; /* --metrics-socket; NULL: the configuration's ("": none) */
        bool system_bus;            /* --system; the configuration file has the last word */
        bool type_given;            /* --session or --system was given */
        bool print_address;         /* --print-address */
        int verbose;                /* how many -v */
};

/* parse_argv's expected outcomes (util/error.h) when the bus is not to run. */
enum {
        PARSE_ARGV_EXIT = 1, /* --help or --version was printed */
        PARSE_ARGV_E_USAGE,  /* a usage error, logged */
};

/*
 * Read the command line into *ret. Returns 0 to run the bus, PARSE_ARGV_EXIT
 * when --help or --version printed all there is to do, or PARSE_ARGV_E_USAGE
 * for a usage error (logged, so it is shaped as every line on stderr is:
 * getopt stays quiet). --log-prefix takes effect at once, for the errors
 * after it.
 * *ret is written only on 0.
 */
static int parse_argv(int argc, char **argv, struct daemon_options *ret)
{
        enum {
                OPT_ADDRESS = 0x100,
                OPT_CONFIG,
                OPT_SESSION,
                OPT_SYSTEM,
                OPT_PRINT_ADDRESS,
                OPT_METRICS_SOCKET,
                OPT_LOG_PREFIX,
                OPT_VERSION
        };
        static const struct option options[] = {
                {"address", required_argument, NULL, OPT_ADDRESS},
                {"config", required_argument, NULL, OPT_CONFIG},
                {"session", no_argument, NULL, OPT_SESSION},
                {"system", no_argument, NULL, OPT_SYSTEM},
                {"print-address", no_argument, NULL, OPT_PRINT_ADDRESS},
                {"metrics-socket", required_argument, NULL, OPT_METRICS_SOCKET},
                {"log-prefix", no_argument, NULL, OPT_LOG_PREFIX},
                {"verbose", no_argument, NULL, 'v'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, OPT_VERSION},
                {},
        };
        struct daemon_options o = {0};
        int c;

        opterr = 0;
        while ((c = getopt_long(argc, argv, ":vh", options, NULL)) >= 0) {
                switch (c) {
                case OPT_ADDRESS:
                        o.address = optarg;
                        break;
                case OPT_CONFIG:
                        o.config_file = optarg;
                        break;
                case OPT_SESSION:
                case OPT_SYSTEM:
                        o.system_bus = c == OPT_SYSTEM;
                        o.type_given = true;
                        break;
                case OPT_PRINT_ADDRESS:
                        o.print_address = true;
                        break;
                case OPT_METRICS_SOCKET:
                        if (optarg[0] != '\0' && optarg[0] != '/') {
                                log_error("--metrics-socket: expected an absolute path or \"\", got '%s'", optarg);
                                return PARSE_ARGV_E_USAGE;
                        }
                        o.metrics_socket = optarg;
                        break;
                case OPT_LOG_PREFIX:
                        log_set_syslog_prefix(true);
                        break;
                case 'v':
                        o.verbose++;
                        break;
                case 'h':
                        help();
                        return PARSE_ARGV_EXIT;
                case OPT_VERSION:
                        printf("ipcbusd %s\n", PACKAGE_VERSION);
                        return PARSE_ARGV_EXIT;
                case ':':
                        log_error("option '%s' needs an argument. Try 'ipcbusd --help'.", argv[optind - 1]);
                        return PARSE_ARGV_E_USAGE;
                default:
                        if (optopt)
                                log_error("unknown option '-%c'. Try 'ipcbusd --help'.", optopt);
                        else
                                log_error("unknown option '%s'. Try 'ipcbusd --help'.", argv[optind - 1]);
                        return PARSE_ARGV_E_USAGE;
                }
        }
        if (optind < argc) {
                log_error("unexpected argument '%s'. Try 'ipcbusd --help'.", argv[optind]);
                return PARSE_ARGV_E_USAGE;
        }
        if (o.config_file && o.type_given) {
                log_error("--config and --session/--system exclude each other: the file says \"type\". Try "
                          "'ipcbusd --help'.");
                return PARSE_ARGV_E_USAGE;
        }
        *ret = o;
        return 0;
}

/*
 * Decide where the bus listens: sockets handed over (LISTEN_FDS) win over
 * --address and the configuration's addresses; with none of the three, the
 * bus type's default address is determined into d->default_address.
 * Returns 0 or -1 (logged).
 */
static int daemon_choose_address(struct daemon *d, const struct daemon_options *o)
{
        bool system_bus = d->config.type == BUS_TYPE_SYSTEM;
        int r;

        if (d->n_handed > 0) {
                if (o->address)
                        log_warning("not listening on --address %s: serving the %d socket%s handed over (LISTEN_FDS)",
                                    o->address, d->n_handed, d->n_handed == 1 ? "" : "s");
                else if (d->config.n_listen > 0)
                        log_info("not listening on the configuration's addresses: serving the %d socket%s handed "
                                 "over (LISTEN_FDS)",
                                 d->n_handed, d->n_handed == 1 ? "" : "s");
        } else if (!o->address && d->config.n_listen == 0) {
                r = system_bus ? address_system(&d->default_address) : address_session(&d->default_address);
                if (r < 0) {
                        log_error("cannot determine the %s bus address: %s", system_bus ? "system" : "session",
                                  r == -ENXIO ? "neither IPCBUS_ADDRESS nor XDG_RUNTIME_DIR is set" : strerror(-r));
                        return -1;
                }
        }
        return 0;
}

/*
 * Set-up, first part: the log level, what the service manager handed over
 * (LISTEN_FDS, NOTIFY_SOCKET), the configuration and the addresses to serve.
 * Returns 0 or -1 (logged); daemon_teardown() undoes what was done either way.
 */
static int daemon_load(struct daemon *d, const struct daemon_options *o)
{
        char err[512];
        int r;

        log_set_max_level(o->verbose >= 2 ? LOG_DEBUG : o->verbose == 1 ? LOG_INFO : LOG_WARNING);

        /* systemd's variables are taken (and removed) before anything else can start a program. */
        r = systemd_listen_fds(&d->n_handed);
        if (r) {
                log_error("socket activation: %s", r == SYSTEMD_E_BAD_LISTEN_VARS
                                                           ? "LISTEN_PID or LISTEN_FDS is not a number"
                                                   : r == -EBADF ? "a descriptor LISTEN_FDS counts is not open"
                                                                 : strerror(-r));
                return -1;
        }
        r = systemd_notifier_init(&d->notifier);
        if (r < 0)
                log_warning("not notifying the service manager: NOTIFY_SOCKET is unusable: %s", strerror(-r));

        d->config_file = o->config_file;
        r = o->config_file ? bus_config_load_file(&d->config, o->config_file, err, sizeof(err))
                           : bus_config_load_default(&d->config, o->system_bus ? BUS_TYPE_SYSTEM : BUS_TYPE_SESSION,
                                                     err, sizeof(err));
        if (r) {
                log_error("%s", r == -ENOMEM ? "out of memory reading the configuration" : err);
                return -1;
        }
        d->config_loaded = true;
        log_info("starting, version %s (pid %d, uid %u): the %s bus, configuration %s", PACKAGE_VERSION, (int) getpid(),
                 (unsigned) getuid(), d->config.type == BUS_TYPE_SYSTEM ? "system" : "session", d->config.origin);
        return daemon_choose_address(d, o);
}

/*
 * Set-up, second part: the process's limits, the event loop, the bus, the
 * signals and the status timer. Returns 0 or -1 (logged).
 */
static int daemon_build(struct daemon *d)
{
        int r;

        signal(SIGPIPE, SIG_IGN);
        raise_fd_limit();

        d->base = event_base_new();
        d->listeners = calloc(d->n_handed > 0 ? (size_t) d->n_handed : d->config.n_listen + 1, sizeof(*d->listeners));
        if (!d->base || !d->listeners || connection_loop_init(d->base) < 0) {
                log_error("cannot create the event loop");
                return -1;
        }

        r = bus_init(&d->bus, d->base, &d->config);
        if (r < 0) {
                log_error("cannot set up the bus: %s", strerror(-r));
                return -1;
        }
        d->bus_up = true;
        if (heap_trimmer_start(&d->trimmer, d->base, &d->bus.n_frames) < 0) {
                log_error("cannot set up the heap trimmer: out of memory");
                return -1;
        }
        d->bus.reload = daemon_reload;
        d->bus.reload_userdata = d;

        d->ev_term = evsignal_new(d->base, SIGTERM, on_signal, d);
        d->ev_int = evsignal_new(d->base, SIGINT, on_signal, d);
        d->ev_hup = evsignal_new(d->base, SIGHUP, on_sighup, d);
        if (!d->ev_term || !d->ev_int || !d->ev_hup || evsignal_add(d->ev_term, NULL) < 0 ||
            evsignal_add(d->ev_int, NULL) < 0 || evsignal_add(d->ev_hup, NULL) < 0) {
                log_error("cannot watch for signals");
                return -1;
        }
        if (systemd_notifier_enabled(&d->notifier)) {
                d->status_timer = evtimer_new(d->base, on_status_timer, d);
                if (!d->status_timer) {
                        log_error("cannot set up the status updates: out of memory");
                        return -1;
                }
                d->bus.peers_changed = on_peers_changed;
                d->bus.peers_changed_userdata = d;
                log_info("notifying the service manager at %s (NOTIFY_SOCKET)",
                         systemd_notifier_describe(&d->notifier));
        }
        return 0;
}

/*
 * Serve metrics on the socket --metrics-socket or the configuration names,
 * if any. Returns 0 or -1 (logged).
 */
static int daemon_serve_metrics(struct daemon *d, const struct daemon_options *o)
{
        const char *path = o->metrics_socket ? o->metrics_socket : d->config.metrics_socket;
        int r;

        d->metrics_pinned = o->metrics_socket != NULL;
        if (!path || path[0] == '\0')
                return 0;
        r = scrape_server_init(&d->scrape, d->base, &d->bus, path);
        if (r == LISTENER_E_IN_USE)
                log_error("metrics socket: something already answers on %s", path);
        else if (r == LISTENER_E_NOT_SOCKET)
                log_error("metrics socket: %s exists and is not a socket", path);
        else if (r < 0)
                log_error("metrics socket: cannot listen on %s: %s", path, strerror(-r));
        else
                log_info("serving metrics on %s", path);
        return r == 0 ? 0 : -1;
}

/*
 * Set-up, last part: serve metrics if asked to, and listen on the addresses
 * daemon_choose_address() settled on. Returns 0 or -1 (logged).
 */
static int daemon_open(struct daemon *d, const struct daemon_options *o)
{
        int r;

        if (daemon_serve_metrics(d, o) < 0)
                return -1;
        if (d->n_handed > 0) {
                r = daemon_serve_handed(d, d->n_handed);
                d->n_handed = 0; /* every descriptor is a listener's now, or closed */
                return r;
        }
        if (o->address)
                return daemon_listen(d, o->address, false);
        if (d->default_address)
                /* The session bus's own directory may be made; the system's belongs to the system. */
                return daemon_listen(d, d->default_address, d->config.type != BUS_TYPE_SYSTEM);
        for (size_t i = 0; i < d->config.n_listen; i++)
                if (daemon_listen(d, d->config.listen[i], false) < 0)
                        return -1;
        return 0;
}

/*
 * Run: say where the bus is and that it is ready, then serve until a signal
 * ends the loop. Returns 0 or -1 (logged).
 */
static int daemon_run(struct daemon *d, bool print_address)
{
        /* the services the bus starts are told where it is (IPCBUS_STARTER_ADDRESS) */
        bus_set_address(&d->bus, d->address);
        if (print_address) {
                printf("%s\n", d->address);
                fflush(stdout);
        }
        /* Ready: connections are accepted (they queue until the loop runs, just below). */
        daemon_notify(d, systemd_notify_ready, "READY=1");

        if (event_base_dispatch(d->base) < 0) {
                log_error("the event loop failed");
                return -1;
        }
        log_info("exiting");
        return 0;
}

/* Undo whatever part of the set-up was done, in reverse order. */
static void daemon_teardown(struct daemon *d)
{
        for (size_t i = 0; i < d->n_listeners; i++)
                listener_deinit(&d->listeners[i]);
        if (d->ev_term)
                event_free(d->ev_term);
        if (d->ev_int)
                event_free(d->ev_int);
        if (d->ev_hup)
                event_free(d->ev_hup);
        heap_trimmer_stop(&d->trimmer);
        scrape_server_deinit(&d->scrape);
        if (d->bus_up)
                bus_deinit(&d->bus);
        if (d->status_timer)
                event_free(d->status_timer);
        free(d->listeners);
        if (d->base)
                event_base_free(d->base);
        if (d->config_loaded)
                bus_config_deinit(&d->config);
        /* handed sockets that no listener took */
        for (int fd = SYSTEMD_LISTEN_FDS_START; fd < SYSTEMD_LISTEN_FDS_START + d->n_handed; fd++)
                close(fd);
        systemd_notifier_deinit(&d->notifier);
        free(d->default_address);
        free(d->address);
}

int main(int argc, char **argv)
{
        struct daemon_options o;
        struct daemon d = {.notifier.fd = -1};
        int r;

        heap_tune();
        r = parse_argv(argc, argv, &o);
        if (r != 0)
                return r == PARSE_ARGV_EXIT ? EXIT_SUCCESS : EXIT_FAILURE;

        r = daemon_load(&d, &o);
        if (r >= 0)
                r = daemon_build(&d);
        if (r >= 0)
                r = daemon_open(&d, &o);
        if (r >= 0)
                r = daemon_run(&d, o.print_address);
        daemon_teardown(&d);
        return r >= 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
