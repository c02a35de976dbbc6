#!/bin/sh
# Install the Debian 12 packages that one use of ipcbus needs: deps.sh [run|test|ci]
#
#   run   building ipcbus (libipcbus-glib too: GLib's headers) and running
#         the bus (scripts/run-bus.sh)
#   test  run's, and what `make check`, `make installcheck` and pytest add
#         (scripts/test.sh; the default): tshark reads ipc-monitor's
#         captures with tools/wireshark/ipcbus.lua in check_tools_capture;
#         promtool (Debian's prometheus) and python3-prometheus-client's
#         strict OpenMetrics parser check the metrics in check_bus_stats
#         and check_tools_stats
#   ci    test's, and what CI mode adds (scripts/test.sh with CI=true):
#         clang and its sanitizer runtimes (the sanitizer suite and
#         scripts/fuzz.sh), valgrind (make check-valgrind), python3 (the
#         generators of tests/data and tests/fuzz/corpus, run by hand)
#
# Only the missing packages are installed, and nothing installed is upgraded.
# When none is missing it does nothing, without apt-get, as any user. A
# missing package needs root: as another user it names the missing packages
# and the command that installs them, and exits 1.
set -e

run="build-essential autoconf automake libtool pkg-config libevent-dev libjson-c-dev libglib2.0-dev check"
test="systemd groff-base man-db python3 python3-pytest python3-venv tshark prometheus python3-prometheus-client"
ci="clang libclang-rt-14-dev valgrind python3"

case ${1:-test} in
run) want=$run ;;
test) want="$run $test" ;;
ci) want="$run $test $ci" ;;
*)
        echo "usage: $0 [run|test|ci]" >&2
        exit 2
        ;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
        echo "deps.sh: no dpkg-query (not Debian?): not checking packages; the Debian names are: $want" >&2
        exit 0
fi
missing=
for p in $want; do
        # one line per architecture known for the package; any one installed will do
        dpkg-query -W -f='${db:Status-Status}\n' "$p" 2>/dev/null | grep -qx installed || missing="$missing $p"
done
missing=${missing# }
[ -z "$missing" ] && exit 0

install="apt-get install -y -q --no-install-recommends --no-upgrade $missing"
if [ "$(id -u)" -ne 0 ]; then
        echo "deps.sh: missing Debian packages: $missing" >&2
        echo "deps.sh: install them as root, then run this again:" >&2
        echo "    apt-get update && $install" >&2
        exit 1
fi
echo "deps.sh: installing $missing" >&2
# no questions: tshark's (wireshark-common/install-setuid) takes its default, no
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
$install
