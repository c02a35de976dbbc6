/* SPDX-License-Identifier: MIT */
/*
 * Logging to stderr, one line per call, prefixed with the syslog priority in
 * the form the journal understands ("<4>..."). Quiet by default: errors and
 * warnings only; log_set_max_level(LOG_INFO) or LOG_DEBUG adds more.
 */
#pragma once

#include <stdbool.h>
#include <syslog.h>

void log_set_max_level(int level);
int log_get_max_level(void);

static inline bool log_enabled(int level)
{
        return level <= log_get_max_level();
}

void log_printf(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_printf(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_printf(LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_printf(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_printf(LOG_DEBUG, __VA_ARGS__)
