#!/bin/sh
# Install dependencies, build everything, and run ipcbusd in the foreground on
# the session socket, printing its address. Ctrl-C stops it.
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh"
"$top/scripts/build.sh" "$top/build"
echo "ipcbusd: starting on the session bus; export IPCBUS_ADDRESS=<the address below> in other shells" >&2
exec "$top/build/daemon/ipcbusd" --session --print-address "$@"
