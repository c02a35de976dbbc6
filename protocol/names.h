/* SPDX-License-Identifier: MIT */
/*
 * Validation of the names of PROTOCOL.md ("Names"): bus names (unique and
 * well-known), object paths, interface, member and error names. Each takes a
 * NUL-terminated string and returns true when it is valid, length included.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

bool names_is_unique(const char *s);     /* ":1.42" */
bool names_is_well_known(const char *s); /* "org.example.Service" */
bool names_is_bus_name(const char *s);   /* either of the above */
bool names_is_path(const char *s);       /* "/", "/org/example" */
bool names_is_interface(const char *s);  /* "org.example.Iface" */
bool names_is_member(const char *s);     /* "Method" */
bool names_is_error_name(const char *s); /* same rules as interface */

/*
 * True when `path` equals `ns` or lies below it ("/a/b" is in "/a"; "/" holds
 * every path). Both must be valid paths.
 */
bool names_path_in_namespace(const char *path, const char *ns);
