/* SPDX-License-Identifier: MIT */
/* Bus addresses (PROTOCOL.md, "Addresses"): "unix:path=/absolute/path". */
#pragma once

/* Extract the socket path of an address (caller frees). Returns 0 or -EINVAL
 * (not a unix:path= address, relative path, path too long for sun_path). */
int address_parse(const char *address, char **ret_path);

/* The session bus address: $IPCBUS_ADDRESS, else unix:path=$XDG_RUNTIME_DIR/ipcbus/bus,
 * else (no runtime dir set) unix:path=/run/user/UID/ipcbus/bus. Returns 0 or -ENOMEM. */
int address_session(char **ret_address);

/* The system bus address: $IPCBUS_SYSTEM_ADDRESS, else unix:path=/run/ipcbus/system_bus_socket. */
int address_system(char **ret_address);
