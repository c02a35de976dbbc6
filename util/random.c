/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/random.h"

/* The fallback: a splitmix64 stream seeded from the wall clock, the pid and
 * the buffer's address. */
static void random_bytes_weak(uint8_t *p, size_t n)
{
        uint64_t x = clock_now_nsec(CLOCK_REALTIME) * 1000000007u;

        x ^= ((uint64_t) getpid() << 32) ^ (uint64_t) (uintptr_t) p;
        for (size_t i = 0; i < n; i += 8) {
                uint64_t z = (x += 0x9e3779b97f4a7c15ULL);

                z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
                z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
                z ^= z >> 31;
                memcpy(p + i, &z, n - i < 8 ? n - i : 8);
        }
}

void random_bytes(void *buf, size_t n)
{
        ssize_t got = getrandom(buf, n, GRND_NONBLOCK);

        if (got != (ssize_t) n) {
                int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

                got = fd >= 0 ? read(fd, buf, n) : -1;
                if (fd >= 0)
                        close(fd);
        }
        if (got != (ssize_t) n)
                random_bytes_weak(buf, n);
}
