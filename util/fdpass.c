/* SPDX-License-Identifier: MIT */
#include <string.h>
#include <unistd.h>

#include "util/fdpass.h"

void fdpass_attach(struct msghdr *mh, void *control, const int *fds, unsigned n)
{
        struct cmsghdr *cm;

        memset(control, 0, CMSG_SPACE(sizeof(int) * n));
        mh->msg_control = control;
        mh->msg_controllen = CMSG_SPACE(sizeof(int) * n);
        cm = CMSG_FIRSTHDR(mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
}

unsigned fdpass_collect(const struct msghdr *mh, int *fds, unsigned max)
{
        unsigned n = 0;

        for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR((struct msghdr *) mh, cm)) {
                size_t k;

                if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
                        continue;
                k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k; i++) {
                        int fd;

                        memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
                        if (n < max)
                                fds[n++] = fd;
                        else
                                close(fd);
                }
        }
        return n;
}
