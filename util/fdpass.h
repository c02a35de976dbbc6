/* SPDX-License-Identifier: MIT */
/*
 * Descriptor passing: the one place that writes and reads SCM_RIGHTS control
 * messages. The callers own the sendmsg/recvmsg and their buffers; these
 * only fill and empty the control part of a struct msghdr.
 */
#pragma once

#include <sys/socket.h>

/*
 * Attach fds[0..n) (n > 0) to mh as one SCM_RIGHTS control message, written
 * into control: at least CMSG_SPACE(sizeof(int) * n) bytes, aligned as a
 * struct cmsghdr. The descriptors stay the caller's.
 */
void fdpass_attach(struct msghdr *mh, void *control, const int *fds, unsigned n);

/*
 * The descriptors that came with a recvmsg into mh, in order: the first `max`
 * go to fds (the caller's now), any more are closed. Returns how many went to
 * fds. Truncation (MSG_CTRUNC in mh->msg_flags) is the caller's to judge.
 */
unsigned fdpass_collect(const struct msghdr *mh, int *fds, unsigned max);
