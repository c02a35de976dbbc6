/* SPDX-License-Identifier: MIT */
/*
 * The standard interface descriptions (interfaces/NAME.json), built into the
 * broker for the driver's Introspect: make generates daemon/bus/interfaces.c
 * from the files (each one C string literal, as written).
 */
#pragma once

#include <stddef.h>

struct builtin_interface {
        const char *name; /* "org.ipcbus.Bus" */
        const char *json; /* the file's text */
};

extern const struct builtin_interface builtin_interfaces[];
extern const size_t n_builtin_interfaces;
