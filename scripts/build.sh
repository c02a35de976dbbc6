#!/bin/sh
# Configure and build ipcbus out of tree: build.sh BUILDDIR [configure options...]
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=$1
shift
# Regenerate configure only when it is missing or stale: autogen.sh rewrites
# every generated file, so running it each time would make the next make in
# every existing build directory reconfigure and rebuild everything.
if [ ! -x "$top/configure" ] ||
        [ -n "$(find "$top/configure.ac" "$top/Makefile.am" -newer "$top/configure")" ]; then
        "$top/autogen.sh"
fi
mkdir -p "$builddir"
cd "$builddir"
# --with-glib=yes: libipcbus-glib is built wherever this script builds (the
# README's commands, CI), and a missing GLib fails here; a later option wins.
[ -f Makefile ] || "$top/configure" -q --with-glib=yes "$@"
make -j"$(nproc)" -s
