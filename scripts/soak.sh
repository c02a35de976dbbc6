#!/bin/sh
# Build the tree (out of tree, in BUILDDIR, default ./build) and run the soak
# program against the ipcbusd of that build:
#
#   scripts/soak.sh [BUILDDIR] [ipc-soak options...]
#   scripts/soak.sh /tmp/b --duration 60 --clients 1000
#
# With no options it runs the full soak: 1000 clients for 600 s. It prints
# ipc-soak's RESULT lines and exits with its status (0: everything held).
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
builddir=$top/build
case ${1:-} in
-* | "") ;;
*)
	builddir=$1
	shift
	;;
esac
"$top/scripts/build.sh" "$builddir" >&2
exec env IPCBUSD="$builddir/daemon/ipcbusd" "$builddir/tests/ipc-soak" "$@"
