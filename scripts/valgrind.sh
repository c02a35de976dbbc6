#!/bin/sh
# Run one test program under valgrind memcheck: valgrind.sh TEST [ARGS...]
#
# `make check-valgrind` uses it as the tests' LOG_COMPILER. Every process the
# test starts is checked too: the children Check forks for each test, the
# clients the suites fork, and the programs they exec (ipcbusd and the
# tools, run as real binaries rather than through libtool's wrapper
# scripts). The test fails when it fails, or when any of those processes had
# a memcheck error or a definite or indirect leak; the valgrind log of each
# such process is printed. Logs: $VALGRIND_LOG_DIR/TEST/PID.N.log (N counts the programs a process ran).
#
# Environment: LIBTOOL (the build tree's libtool; the Makefile sets it),
# VALGRIND (default valgrind), VALGRIND_LOG_DIR (default ./valgrind-logs),
# VALGRIND_SUPPRESSIONS (a suppressions file; default none).
set -u
test=$1
shift
libtool=${LIBTOOL:-libtool}
valgrind=${VALGRIND:-valgrind}
logdir=${VALGRIND_LOG_DIR:-valgrind-logs}/$(basename "$test")

if ! command -v "$valgrind" >/dev/null 2>&1; then
        echo "valgrind.sh: $valgrind is not installed (scripts/deps.sh ci installs it)" >&2
        exit 99 # a hard error for automake's test driver
fi
rm -rf "$logdir"
mkdir -p "$logdir" || exit 99
# Suites run ipcbusd and clients as other users: they write their logs here too.
chmod 1777 "$logdir" || exit 99

# The programs the suites start: name the real binaries behind libtool's wrapper
# scripts (the wrappers are shell scripts, which valgrind should not trace).
for var in IPCBUSD IPCCTL IPC_MONITOR IPC_BENCH; do
        eval "path=\${$var:-}"
        if [ -n "$path" ]; then
                # shellcheck disable=SC2086 # $libtool is a command with arguments
                real=$($libtool --mode=execute echo "$path") || exit 99
                export "$var=$real"
        fi
done

set -- --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect \
        --errors-for-leak-kinds=definite,indirect --error-exitcode=1 --num-callers=30 --vgdb=no \
        --trace-children=yes --trace-children-skip='/bin/*,/usr/bin/*,/sbin/*,/usr/sbin/*' \
        --log-file="$logdir/%p.%n.log" ${VALGRIND_SUPPRESSIONS:+--suppressions="$VALGRIND_SUPPRESSIONS"} \
        "$test" "$@"
# libtool runs the real program behind a wrapper, with the library path it needs.
# shellcheck disable=SC2086
$libtool --mode=execute "$valgrind" "$@"
rc=$?

bad=$(grep -l -E 'ERROR SUMMARY: [1-9]' "$logdir"/*.log 2>/dev/null)
for log in $bad; do
        echo "=== valgrind found errors or leaks: $log"
        cat "$log"
done
if [ -n "$bad" ]; then
        echo "valgrind.sh: memcheck errors or leaks in $(echo "$bad" | wc -l) process(es) of $test"
        [ $rc -eq 0 ] && rc=1
fi
exit $rc
