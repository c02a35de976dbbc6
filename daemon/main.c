/* SPDX-License-Identifier: MIT */
/* ipcbusd: options, the event loop, the listener and the bus, wired together. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <event2/event.h>

#include "bus.h"
#include "listener.h"
#include "log.h"
#include "protocol/address.h"
#include "util.h"

struct daemon {
        struct event_base *base;
        struct bus_config config;
        struct listener *listeners;
        size_t n_listeners;
        struct bus bus;
        bool stopping;
};

static void help(void)
{
        printf("Usage: ipcbusd [OPTIONS]\n"
               "\n"
               "The ipcbus message broker.\n"
               "\n"
               "  --config FILE      read the configuration from FILE (daemon/CONFIG.md)\n"
               "  --session          the session bus (default): the built-in session.json;\n"
               "                     $IPCBUS_ADDRESS, else unix:path=$XDG_RUNTIME_DIR/ipcbus/bus\n"
               "  --system           the system bus: the built-in system.json;\n"
               "                     $IPCBUS_SYSTEM_ADDRESS, else unix:path=/run/ipcbus/system_bus_socket\n"
               "  --address ADDRESS  listen on ADDRESS (unix:path=/absolute/path), not on the\n"
               "                     configuration's addresses\n"
               "  --print-address    print the address on stdout once it accepts connections\n"
               "  -v, --verbose      log more (info; twice: debug)\n"
               "  -h, --help         show this help\n"
               "      --version      show the version\n");
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
        for (size_t i = 0; i < d->n_listeners; i++)
                listener_deinit(&d->listeners[i]);
        bus_shutdown(&d->bus);
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
        if (r == -EADDRINUSE) {
                log_error("another bus is already listening on %s", path);
                return -1;
        }
        if (r == -EEXIST) {
                log_error("%s exists and is not a socket", path);
                return -1;
        }
        if (r >= 0) {
                d->n_listeners++;
                r = listener_start(l);
        }
        if (r < 0) {
                log_error("cannot listen on %s: %s", path, strerror(-r));
                return -1;
        }
        log_info("listening on %s (pid %d)", address, (int) getpid());
        return 0;
}

int main(int argc, char **argv)
{
        enum { OPT_ADDRESS = 0x100, OPT_CONFIG, OPT_SESSION, OPT_SYSTEM, OPT_PRINT_ADDRESS, OPT_VERSION };
        static const struct option options[] = {
                {"address", required_argument, NULL, OPT_ADDRESS},
                {"config", required_argument, NULL, OPT_CONFIG},
                {"session", no_argument, NULL, OPT_SESSION},
                {"system", no_argument, NULL, OPT_SYSTEM},
                {"print-address", no_argument, NULL, OPT_PRINT_ADDRESS},
                {"verbose", no_argument, NULL, 'v'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, OPT_VERSION},
                {},
        };
        const char *address = NULL, *config_file = NULL;
        _cleanup_(freep) char *default_address = NULL;
        struct event *ev_term = NULL, *ev_int = NULL;
        struct daemon d = {0};
        bool system_bus = false, type_given = false, print_address = false;
        char err[512];
        int verbose = 0, c, r, ret = EXIT_FAILURE;

        while ((c = getopt_long(argc, argv, "vh", options, NULL)) >= 0) {
                switch (c) {
                case OPT_ADDRESS:
                        address = optarg;
                        break;
                case OPT_CONFIG:
                        config_file = optarg;
                        break;
                case OPT_SESSION:
                case OPT_SYSTEM:
                        system_bus = c == OPT_SYSTEM;
                        type_given = true;
                        break;
                case OPT_PRINT_ADDRESS:
                        print_address = true;
                        break;
                case 'v':
                        verbose++;
                        break;
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case OPT_VERSION:
                        printf("ipcbusd %s\n", PACKAGE_VERSION);
                        return EXIT_SUCCESS;
                default:
                        fprintf(stderr, "Try 'ipcbusd --help'.\n");
                        return EXIT_FAILURE;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "ipcbusd: unexpected argument '%s'. Try 'ipcbusd --help'.\n", argv[optind]);
                return EXIT_FAILURE;
        }
        if (config_file && type_given) {
                fprintf(stderr, "ipcbusd: --config and --session/--system exclude each other: the file says "
                                "\"type\". Try 'ipcbusd --help'.\n");
                return EXIT_FAILURE;
        }
        log_set_max_level(verbose >= 2 ? LOG_DEBUG : verbose == 1 ? LOG_INFO : LOG_WARNING);

        r = config_file ? bus_config_load_file(&d.config, config_file, err, sizeof(err))
                        : bus_config_load_default(&d.config, system_bus ? BUS_TYPE_SYSTEM : BUS_TYPE_SESSION, err,
                                                  sizeof(err));
        if (r < 0) {
                log_error("%s", r == -ENOMEM ? "out of memory reading the configuration" : err);
                return EXIT_FAILURE;
        }
        system_bus = d.config.type == BUS_TYPE_SYSTEM;

        if (!address && d.config.n_listen == 0) {
                r = system_bus ? address_system(&default_address) : address_session(&default_address);
                if (r < 0) {
                        log_error("cannot determine the %s bus address: %s", system_bus ? "system" : "session",
                                  r == -ENXIO ? "neither IPCBUS_ADDRESS nor XDG_RUNTIME_DIR is set" : strerror(-r));
                        goto out_config;
                }
        }

        signal(SIGPIPE, SIG_IGN);
        raise_fd_limit();

        d.base = event_base_new();
        d.listeners = calloc(d.config.n_listen + 1, sizeof(*d.listeners));
        if (!d.base || !d.listeners) {
                log_error("cannot create the event loop");
                goto out_base;
        }

        r = bus_init(&d.bus, d.base, &d.config);
        if (r < 0) {
                log_error("cannot set up the bus: %s", strerror(-r));
                goto out_base;
        }

        ev_term = evsignal_new(d.base, SIGTERM, on_signal, &d);
        ev_int = evsignal_new(d.base, SIGINT, on_signal, &d);
        if (!ev_term || !ev_int || evsignal_add(ev_term, NULL) < 0 || evsignal_add(ev_int, NULL) < 0) {
                log_error("cannot watch for signals");
                goto out_listeners;
        }

        if (address) {
                if (daemon_listen(&d, address, false) < 0)
                        goto out_listeners;
        } else if (default_address) {
                /* The session bus's own directory may be made; the system's belongs to the system. */
                address = default_address;
                if (daemon_listen(&d, address, !system_bus) < 0)
                        goto out_listeners;
        } else {
                address = d.config.listen[0];
                for (size_t i = 0; i < d.config.n_listen; i++)
                        if (daemon_listen(&d, d.config.listen[i], false) < 0)
                                goto out_listeners;
        }
        log_info("configuration: %s (%s bus)", d.config.origin, system_bus ? "system" : "session");

        if (print_address) {
                printf("%s\n", address);
                fflush(stdout);
        }

        if (event_base_dispatch(d.base) < 0) {
                log_error("the event loop failed");
                goto out_listeners;
        }
        log_info("exiting");
        ret = EXIT_SUCCESS;

out_listeners:
        for (size_t i = 0; i < d.n_listeners; i++)
                listener_deinit(&d.listeners[i]);
        if (ev_term)
                event_free(ev_term);
        if (ev_int)
                event_free(ev_int);
        bus_deinit(&d.bus);
out_base:
        free(d.listeners);
        if (d.base)
                event_base_free(d.base);
out_config:
        bus_config_deinit(&d.config);
        return ret;
}
