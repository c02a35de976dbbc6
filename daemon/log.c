/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/log.h"

static int log_max_level = LOG_WARNING;
/* -1: not decided yet (stderr is looked at on the first line), else 0 or 1. */
static int log_syslog_prefix = -1;

void log_set_max_level(int level)
{
        log_max_level = level;
}

int log_get_max_level(void)
{
        return log_max_level;
}

void log_set_syslog_prefix(bool on)
{
        log_syslog_prefix = on;
}

bool log_stderr_is_journal(void)
{
        const char *v = getenv("JOURNAL_STREAM");
        uintmax_t dev, ino;
        struct stat st;
        int end = 0;

        /* systemd sets it to "<device>:<inode>" of the stream it gave the
         * service; a child whose stderr was redirected inherits a stale one. */
        if (!v || sscanf(v, "%ju:%ju%n", &dev, &ino, &end) != 2 || v[end] != '\0')
                return false;
        return fstat(STDERR_FILENO, &st) == 0 && (uintmax_t) st.st_dev == dev && (uintmax_t) st.st_ino == ino;
}

/* How a line starts on a terminal or in a file: the name, and the level where it matters. */
static const char *log_level_word(int level)
{
        return level <= LOG_ERR ? "error: " : level == LOG_WARNING ? "warning: " : level == LOG_DEBUG ? "debug: " : "";
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

        if (log_syslog_prefix < 0)
                log_syslog_prefix = log_stderr_is_journal();
        if (log_syslog_prefix)
                n = snprintf(line, sizeof(line), "<%d>", level);
        else
                n = snprintf(line, sizeof(line), "ipcbusd: %s", log_level_word(level));
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
