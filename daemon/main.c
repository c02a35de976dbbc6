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
        struct listener listener;
        struct bus bus;
        bool stopping;
};

static void help(void)
{
        printf("Usage: ipcbusd [OPTIONS]\n"
               "\n"
               "The ipcbus message broker.\n"
               "\n"
               "  --address ADDRESS  listen on ADDRESS (unix:path=/absolute/path)\n"
               "  --session          the session bus (default): $IPCBUS_ADDRESS, else\n"
               "                     unix:path=$XDG_RUNTIME_DIR/ipcbus/bus\n"
               "  --system           the system bus: $IPCBUS_SYSTEM_ADDRESS, else\n"
               "                     unix:path=/run/ipcbus/system_bus_socket\n"
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
        listener_deinit(&d->listener);
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

int main(int argc, char **argv)
{
        enum { OPT_ADDRESS = 0x100, OPT_SESSION, OPT_SYSTEM, OPT_PRINT_ADDRESS, OPT_VERSION };
        static const struct option options[] = {
                {"address", required_argument, NULL, OPT_ADDRESS},
                {"session", no_argument, NULL, OPT_SESSION},
                {"system", no_argument, NULL, OPT_SYSTEM},
                {"print-address", no_argument, NULL, OPT_PRINT_ADDRESS},
                {"verbose", no_argument, NULL, 'v'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, OPT_VERSION},
                {},
        };
        _cleanup_(freep) char *address = NULL;
        _cleanup_(freep) char *path = NULL;
        struct event *ev_term = NULL, *ev_int = NULL;
        struct daemon d = {.listener = {.fd = -1}};
        bool system_bus = false, print_address = false, make_parent;
        int verbose = 0, c, r, ret = EXIT_FAILURE;

        while ((c = getopt_long(argc, argv, "vh", options, NULL)) >= 0) {
                switch (c) {
                case OPT_ADDRESS:
                        free(address);
                        address = strdup(optarg);
                        if (!address) {
                                log_error("out of memory");
                                return EXIT_FAILURE;
                        }
                        break;
                case OPT_SESSION:
                        system_bus = false;
                        free(address);
                        address = NULL;
                        break;
                case OPT_SYSTEM:
                        system_bus = true;
                        free(address);
                        address = NULL;
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
        log_set_max_level(verbose >= 2 ? LOG_DEBUG : verbose == 1 ? LOG_INFO : LOG_WARNING);

        if (address) {
                make_parent = false;
        } else {
                r = system_bus ? address_system(&address) : address_session(&address);
                if (r < 0) {
                        log_error("cannot determine the %s bus address: %s", system_bus ? "system" : "session",
                                  r == -ENXIO ? "neither IPCBUS_ADDRESS nor XDG_RUNTIME_DIR is set" : strerror(-r));
                        return EXIT_FAILURE;
                }
                make_parent = !system_bus;
        }
        r = address_parse(address, &path);
        if (r < 0) {
                log_error("invalid address '%s': expected unix:path=/absolute/path", address);
                return EXIT_FAILURE;
        }
        if (path_in_runtime_dir(path))
                make_parent = true;

        signal(SIGPIPE, SIG_IGN);
        raise_fd_limit();

        d.base = event_base_new();
        if (!d.base) {
                log_error("cannot create the event loop");
                return EXIT_FAILURE;
        }

        r = bus_init(&d.bus, d.base, NULL);
        if (r < 0) {
                log_error("cannot set up the bus: %s", strerror(-r));
                goto out_base;
        }

        ev_term = evsignal_new(d.base, SIGTERM, on_signal, &d);
        ev_int = evsignal_new(d.base, SIGINT, on_signal, &d);
        if (!ev_term || !ev_int || evsignal_add(ev_term, NULL) < 0 || evsignal_add(ev_int, NULL) < 0) {
                log_error("cannot watch for signals");
                goto out_bus;
        }

        r = listener_init(&d.listener, d.base, path, make_parent, bus_accept, &d.bus);
        if (r == -EADDRINUSE) {
                log_error("another bus is already listening on %s", path);
                goto out_bus;
        }
        if (r == -EEXIST) {
                log_error("%s exists and is not a socket", path);
                goto out_bus;
        }
        if (r >= 0)
                r = listener_start(&d.listener);
        if (r < 0) {
                log_error("cannot listen on %s: %s", path, strerror(-r));
                goto out_listener;
        }

        log_info("listening on %s (pid %d)", address, (int) getpid());
        if (print_address) {
                printf("%s\n", address);
                fflush(stdout);
        }

        if (event_base_dispatch(d.base) < 0) {
                log_error("the event loop failed");
                goto out_listener;
        }
        log_info("exiting");
        ret = EXIT_SUCCESS;

out_listener:
        listener_deinit(&d.listener);
out_bus:
        if (ev_term)
                event_free(ev_term);
        if (ev_int)
                event_free(ev_int);
        bus_deinit(&d.bus);
out_base:
        event_base_free(d.base);
        return ret;
}
