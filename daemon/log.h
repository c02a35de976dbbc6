/* SPDX-License-Identifier: MIT */
/*
 * Logging to stderr, one line per call. When stderr is systemd's journal
 * (JOURNAL_STREAM names it) or when asked (ipcbusd --log-prefix), each line
 * starts with its syslog priority in the form the journal understands
 * ("<4>..."); otherwise with the program's name and, for errors, warnings
 * and debug lines, the level in words ("ipcbusd: warning: ..."). Quiet by
 * default: errors and warnings only; log_set_max_level(LOG_INFO) or
 * LOG_DEBUG adds more.
 */
#pragma once

#include <stdbool.h>
#include <syslog.h>

void log_set_max_level(int level);
int log_get_max_level(void);

/* Start every line with its syslog priority, whatever stderr is. */
void log_set_syslog_prefix(bool on);
/* Whether JOURNAL_STREAM ("device:inode") names the file stderr is: systemd's journal reads it. */
bool log_stderr_is_journal(void);

static inline bool log_enabled(int level)
{
        return level <= log_get_max_level();
}

void log_printf(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_printf(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_printf(LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_printf(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_printf(LOG_DEBUG, __VA_ARGS__)
