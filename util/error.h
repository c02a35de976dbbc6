/* SPDX-License-Identifier: MIT */
/*
 * The error convention, for protocol/, daemon/ and libclient's internals (the
 * public API returns only 0 or a negative errno). A function that can fail
 * returns an int:
 *
 *   0    success;
 *   < 0  a negative errno: a fault (out of memory, a failed system call),
 *        passed up unchanged by every caller that cannot do better;
 *   > 0  a code of the function's own module (PROTO_E_* in protocol/,
 *        NAME_E_*, MATCH_E_*, ... in daemon/: <MODULE>_E_*, declared in the
 *        module's header with the function that returns it) for an expected
 *        outcome that the caller must handle: a refusal, a limit, input that
 *        breaks the rules. Each module numbers its codes from 1 (PROTO_E_*
 *        from 2, for history); a caller knows from the function it called
 *        which module's codes it may get, and handles each of them by name,
 *        never by sign alone.
 *
 * A result goes to an output, never into the return value beside these codes:
 * frame_reader_next() returns 0 with a frame, or 0 with no frame when none is
 * complete. Outputs named ret_* are written only on success; an output that
 * is written on failure too is named reterr_* (msg_parse's reterr_serial,
 * which addresses the error reply to a bad message) or returned in a struct.
 *
 * Functions whose whole job is a yes/no question return bool. Functions that
 * explain a failure themselves, in the log or in a message output (the
 * daemon's set-up in launch/, activation_start), may return -1 for it, and
 * say so in their contract.
 */
#pragma once
