/* SPDX-License-Identifier: MIT */
#include "util/clock.h"

uint64_t clock_now_nsec(clockid_t clock)
{
        struct timespec ts;

        clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

uint64_t clock_now_usec(clockid_t clock)
{
        return clock_now_nsec(clock) / 1000u;
}

uint64_t clock_now_msec(clockid_t clock)
{
        return clock_now_nsec(clock) / 1000000u;
}
