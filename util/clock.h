/* SPDX-License-Identifier: MIT */
/*
 * The clocks: the time now on a clock (CLOCK_MONOTONIC for deadlines and
 * intervals, CLOCK_REALTIME for wall-clock stamps) in one unit or another.
 * One family for the whole tree, so no module keeps its own conversion.
 */
#pragma once

#include <stdint.h>
#include <time.h>

/* Nanoseconds on `clock` (whole microseconds, milliseconds, rounded down). */
uint64_t clock_now_nsec(clockid_t clock);
uint64_t clock_now_usec(clockid_t clock);
uint64_t clock_now_msec(clockid_t clock);
