/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "protocol/address.h"

#define UNIX_PATH_PREFIX "unix:path="

/* The longest path a socket address holds: sun_path (108 bytes on Linux) less its NUL. */
#define PATH_MAX_BYTES (sizeof(((struct sockaddr_un *) 0)->sun_path) - 1)

int address_check(const char *address, const char **reterr_reason)
{
        const char *path;

        if (!address || strncmp(address, UNIX_PATH_PREFIX, strlen(UNIX_PATH_PREFIX)) != 0) {
                *reterr_reason = "expected " ADDRESS_FORM;
                return -EINVAL;
        }
        path = address + strlen(UNIX_PATH_PREFIX);
        if (path[0] != '/') {
                *reterr_reason = "the path must be absolute (" ADDRESS_FORM ")";
                return -EINVAL;
        }
        if (strlen(path) > PATH_MAX_BYTES) {
                *reterr_reason = "the path is longer than a socket address holds (107 bytes)";
                return -EINVAL;
        }
        return 0;
}

int address_parse(const char *address, char **ret_path)
{
        const char *reason;
        char *p;

        if (address_check(address, &reason) < 0)
                return -EINVAL;
        p = strdup(address + strlen(UNIX_PATH_PREFIX));
        if (!p)
                return -ENOMEM;
        *ret_path = p;
        return 0;
}

static int address_from_path(const char *prefix_dir, const char *rest, char **ret)
{
        char *s;

        if (asprintf(&s, UNIX_PATH_PREFIX "%s%s", prefix_dir, rest) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int address_session(char **ret_address)
{
        const char *e = getenv("IPCBUS_ADDRESS");
        char dir[64];

        if (e && *e) {
                char *s = strdup(e);
                if (!s)
                        return -ENOMEM;
                *ret_address = s;
                return 0;
        }
        e = getenv("XDG_RUNTIME_DIR");
        if (e && e[0] == '/')
                return address_from_path(e, "/ipcbus/bus", ret_address);
        /* No runtime dir (e.g. a root shell without a login session): the
         * directory systemd-logind would have made. */
        snprintf(dir, sizeof(dir), "/run/user/%u", (unsigned) getuid());
        return address_from_path(dir, "/ipcbus/bus", ret_address);
}

int address_system(char **ret_address)
{
        const char *e = getenv("IPCBUS_SYSTEM_ADDRESS");
        char *s;

        s = strdup(e && *e ? e : UNIX_PATH_PREFIX "/run/ipcbus/system_bus_socket");
        if (!s)
                return -ENOMEM;
        *ret_address = s;
        return 0;
}
