/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon/log.h"

static int log_max_level = LOG_WARNING;

void log_set_max_level(int level)
{
        log_max_level = level;
}

int log_get_max_level(void)
{
        return log_max_level;
}

/*
 * Format the whole line first and write it with one write(2), so lines from
 * several processes sharing a stderr never interleave. Over-long lines are
 * cut; the newline is always there.
 */
void log_printf(int level, const char *fmt, ...)
{
        char line[2048];
        int saved = errno;
        va_list ap;
        int n, m;

        if (!log_enabled(level))
                return;

        n = snprintf(line, sizeof(line), "<%d>", level);
        va_start(ap, fmt);
        m = vsnprintf(line + n, sizeof(line) - (size_t) n - 1, fmt, ap);
        va_end(ap);
        if (m < 0)
                m = 0;
        n += m;
        if ((size_t) n > sizeof(line) - 2)
                n = (int) sizeof(line) - 2;
        line[n++] = '\n';

        for (const char *p = line; n > 0;) {
                ssize_t w = write(STDERR_FILENO, p, (size_t) n);

                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        break;
                p += w;
                n -= (int) w;
        }
        errno = saved;
}
