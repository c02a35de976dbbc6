#!/bin/sh
# Install what building and running the bus needs (scripts/deps.sh run: only
# the missing packages, and nothing when none is), build everything, and run
# ipcbusd in the foreground on the session socket, printing its address on
# stdout (and nothing else there: installing and building report on stderr).
# Ctrl-C stops it.
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh" run >&2
"$top/scripts/build.sh" "$top/build" >&2
echo "ipcbusd: starting on the session bus; export IPCBUS_ADDRESS=<the address below> in other shells" >&2
exec "$top/build/daemon/ipcbusd" --session --print-address "$@"
