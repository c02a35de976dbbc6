#!/bin/bash
# Build the libFuzzer targets and run each for a while: fuzz.sh [SECONDS] (default 60).
#
# Builds in build-fuzz/ with clang, the whole tree instrumented
# (-fsanitize=fuzzer-no-link,address,undefined). Each target in turn fuzzes a
# temporary copy of its seed corpus (tests/fuzz/corpus/TARGET; the tree is
# never written to) with its dictionary. Prints each target's final stats
# line; exits non-zero if any target found a crash, a leak, a timeout or an
# out-of-memory, and leaves the reproducer under the work directory it names.
# Replay one with: build-fuzz/tests/fuzz/TARGET REPRODUCER
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
builddir=$top/build-fuzz
targets="fuzz-frame fuzz-daemon fuzz-match fuzz-client"

case $seconds in
'' | *[!0-9]*)
        echo "usage: $0 [SECONDS]" >&2
        exit 2
        ;;
esac

echo "=== fuzz: build in $builddir"
"$top/scripts/build.sh" "$builddir" --enable-fuzzing CC=clang \
        CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined" \
        LDFLAGS="-fsanitize=address,undefined"

work=$(mktemp -d "${TMPDIR:-/tmp}/ipcbus-fuzz.XXXXXX")
status=0
for t in $targets; do
        corpus=$work/$t/corpus
        artifacts=$work/$t/artifacts
        mkdir -p "$corpus" "$artifacts"
        cp "$top/tests/fuzz/corpus/$t/"* "$corpus/"
        echo "=== $t: ${seconds}s"
        rc=0
        "$builddir/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
                -dict="$top/tests/fuzz/$t.dict" -artifact_prefix="$artifacts/" -print_final_stats=1 \
                "$corpus" >"$work/$t/log" 2>&1 || rc=$?
        grep -E '^#[0-9]+[[:space:]]+DONE ' "$work/$t/log" | tail -1 || true
        grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$work/$t/log" || true
        found=$(find "$artifacts" -type f | sort)
        if [ $rc -ne 0 ] || [ -n "$found" ]; then
                status=1
                echo "=== $t: FAILED (exit $rc); the end of its log ($work/$t/log):"
                grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)' "$work/$t/log" | tail -40
                for f in $found; do
                        echo "=== $t: reproducer: $f"
                done
        else
                echo "=== $t: passed"
                rm -rf "${work:?}/$t"
        fi
done
if [ $status -eq 0 ]; then
        rm -rf "$work"
        echo "=== fuzz: every target passed"
else
        echo "=== fuzz: FAILED; reproducers and logs are in $work"
fi
exit $status
