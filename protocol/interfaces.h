/* SPDX-License-Identifier: MIT */
/*
 * The standard interface descriptions (interfaces/NAME.json), built in for
 * the driver's Introspect and for the interfaces libipcbus answers on every
 * object: make generates protocol/interfaces.c from the files (each one C
 * string literal, as written).
 */
#pragma once

#include <stddef.h>

struct builtin_interface {
        const char *name; /* "org.ipcbus.Bus" */
        const char *json; /* the file's text */
};

extern const struct builtin_interface builtin_interfaces[];
extern const size_t n_builtin_interfaces;
