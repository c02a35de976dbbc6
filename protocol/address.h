/* SPDX-License-Identifier: MIT */
/* Bus addresses (PROTOCOL.md, "Addresses"): "unix:path=/absolute/path". */
#pragma once

/* The form of every address, for messages that say what was expected. */
#define ADDRESS_FORM "unix:path=/absolute/path"

/*
 * Check that address has the form ADDRESS_FORM with a path that fits a
 * socket address. Returns 0, or -EINVAL with *reterr_reason (static text:
 * "expected unix:path=/absolute/path", ...) saying what is wrong.
 */
int address_check(const char *address, const char **reterr_reason);

/* Extract the socket path of an address (caller frees). Returns 0 or -EINVAL
 * (address_check fails: not a unix:path= address, relative path, path too
 * long for sun_path). */
int address_parse(const char *address, char **ret_path);

/* The session bus address: $IPCBUS_ADDRESS, else unix:path=$XDG_RUNTIME_DIR/ipcbus/bus,
 * else (no runtime dir set) unix:path=/run/user/UID/ipcbus/bus. Returns 0 or -ENOMEM. */
int address_session(char **ret_address);

/* The system bus address: $IPCBUS_SYSTEM_ADDRESS, else unix:path=/run/ipcbus/system_bus_socket. */
int address_system(char **ret_address);
