/* SPDX-License-Identifier: MIT */
/* testbus: line readers over pipes. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/lib/lines.h"
#include "tests/lib/internal.h"

/*
 * The line readers also run in forked children, where Check must not be
 * called (its messages would go to whatever descriptor now has the number
 * of Check's pipe, e.g. a bus socket): allocation failure aborts instead.
 */
static void *nonnull(void *p)
{
        if (!p)
                abort();
        return p;
}

void testbus_lines_init(struct testbus_lines *l, int fd)
{
        *l = (struct testbus_lines){.fd = fd};
        l->cap = 4096;
        l->buf = nonnull(malloc(l->cap));
        l->buf[0] = '\0';
}

void testbus_lines_deinit(struct testbus_lines *l)
{
        if (l->fd >= 0)
                close(l->fd);
        free(l->buf);
        *l = (struct testbus_lines){.fd = -1};
}

bool lines_fill(struct testbus_lines *l, int timeout_ms)
{
        struct pollfd pfd = {.fd = l->fd, .events = POLLIN};
        ssize_t n;
        int r;

        if (l->eof)
                return true;
        r = poll(&pfd, 1, timeout_ms);
        if (r < 0 && errno == EINTR)
                return true;
        if (r <= 0)
                return false;
        if (l->cap - l->len < 65536 + 1) {
                l->cap = (l->len + 65536 + 1) * 2;
                l->buf = nonnull(realloc(l->buf, l->cap));
        }
        n = read(l->fd, l->buf + l->len, 65536);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return true;
        if (n <= 0)
                l->eof = true;
        else
                l->len += (size_t) n;
        l->buf[l->len] = '\0';
        return true;
}

char *testbus_lines_read(struct testbus_lines *l, int timeout_ms)
{
        int64_t deadline = testbus_now_ms() + timeout_ms;

        for (;;) {
                char *nl = memchr(l->buf, '\n', l->len), *line;
                size_t n;

                if (nl || (l->eof && l->len)) {
                        n = nl ? (size_t) (nl - l->buf) : l->len;
                        line = nonnull(strndup(l->buf, n));
                        n = nl ? n + 1 : n;
                        memmove(l->buf, l->buf + n, l->len - n);
                        l->len -= n;
                        l->buf[l->len] = '\0';
                        return line;
                }
                if (l->eof || ms_left(deadline) <= 0)
                        return NULL;
                lines_fill(l, ms_left(deadline));
        }
}

bool testbus_lines_drain(struct testbus_lines *l, int64_t deadline_ms)
{
        while (!l->eof && ms_left(deadline_ms) > 0)
                lines_fill(l, ms_left(deadline_ms));
        return l->eof;
}

bool lines_drain_two(struct testbus_lines *a, struct testbus_lines *b, int64_t deadline_ms)
{
        while ((!a->eof || !b->eof) && ms_left(deadline_ms) > 0) {
                struct pollfd pfd[2] = {
                        {.fd = a->eof ? -1 : a->fd, .events = POLLIN},
                        {.fd = b->eof ? -1 : b->fd, .events = POLLIN},
                };

                if (poll(pfd, 2, ms_left(deadline_ms)) <= 0)
                        continue;
                if (pfd[0].revents)
                        lines_fill(a, 0);
                if (pfd[1].revents)
                        lines_fill(b, 0);
        }
        return a->eof && b->eof;
}
