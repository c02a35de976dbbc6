#!/bin/sh
# Configure and build ipcbus out of tree: build.sh BUILDDIR [configure options...]
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=$1
shift
[ -x "$top/configure" ] || "$top/autogen.sh"
mkdir -p "$builddir"
cd "$builddir"
[ -f Makefile ] || "$top/configure" -q "$@"
make -j"$(nproc)" -s
