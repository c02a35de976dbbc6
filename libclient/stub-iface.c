/* SPDX-License-Identifier: MIT */
/*
 * TEMPORARY (branch h-iface): client_fail and ipcbus_last_error until the
 * "values" helper's libclient/error.c is merged; the merge deletes this file.
 */
#include <stdarg.h>
#include <stdio.h>

#include "libclient/bus-internal.h"

static _Thread_local char last_error[1024];

int client_fail(int r, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(last_error, sizeof(last_error), fmt, ap);
        va_end(ap);
        return r;
}

_public_ const char *ipcbus_last_error(void)
{
        return last_error;
}
