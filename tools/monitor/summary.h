/* SPDX-License-Identifier: MIT */
/*
 * ipc-monitor --summary: per member called (interface.member, by
 * destination), the calls, their errors by name, timeouts and latency
 * percentiles, printed as a table at the end. Bounded: a fixed histogram per
 * member, at most SUMMARY_MEMBERS_MAX members, the rest counted as "(other)".
 */
#pragma once

#include <stdint.h>
#include <stdio.h>

#include "protocol/message.h"
#include "tools/monitor/pairing.h"

#define SUMMARY_MEMBERS_MAX 256u

struct summary;

int summary_new(struct summary **ret);
struct summary *summary_free(struct summary *s);

/* Count a call (h of type call). Returns 0 or -ENOMEM. */
int summary_call(struct summary *s, const struct msg_header *h);
/*
 * Count the answer to call after latency_usec: a return (error_name NULL), an
 * error, or a timeout (the broker's org.ipcbus.Error.Timeout). Returns 0 or -ENOMEM.
 */
int summary_answer(struct summary *s, const struct mon_call *call, const char *error_name, uint64_t latency_usec);
/* Count a call the monitor saw no answer to before its deadline. Returns 0 or -ENOMEM. */
int summary_unanswered(struct summary *s, const struct mon_call *call);

/* Print the table to f, busiest member first; "no calls seen" when empty. */
void summary_print(struct summary *s, FILE *f);
