#!/bin/bash
# Install what the tests need (scripts/deps.sh test, or ci in CI mode: only
# the missing packages), build everything and run every test suite.
#
# Always: a normal build and `make check`. With CI=true (or --full)
# instead: a -Werror build whose suite runs under valgrind memcheck, the
# suite under AddressSanitizer + UndefinedBehaviorSanitizer, every
# libFuzzer target for 30 seconds (scripts/fuzz.sh), and `make distcheck`
# (which runs the suite once more, plainly, -Werror, and make installcheck
# on a prefix install). The default mode ends by installing into a
# temporary DESTDIR and running make installcheck on it.
# Both modes also run the Python package's tests with pytest
# (scripts/pytest.sh) against the build. Exits non-zero on any failure and
# prints Check's summary line of every suite and pytest's.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
full=${CI:-false}
[ "${1:-}" = --full ] && full=true

if [ "$full" = true ]; then
        "$top/scripts/deps.sh" ci
else
        "$top/scripts/deps.sh" test
fi
# Each build goes through scripts/build.sh, which runs autogen.sh when
# configure is missing or older than configure.ac or Makefile.am.

total_pass=0
total_fail=0

# run_suite NAME BUILDDIR TARGET [configure options...]: build (unless
# TARGET is check-valgrind, which reuses the build), make TARGET, report.
run_suite() {
        local name=$1 dir=$2 target=$3 rc=0
        shift 3
        if [ "$target" = check ]; then
                echo "=== $name: build"
                rm -rf "$dir"
                "$top/scripts/build.sh" "$dir" "$@"
        fi
        echo "=== $name: make $target"
        make -C "$dir" -s -j2 "$target" || rc=$?
        echo "--- $name: Check summaries"
        for log in "$dir"/tests/check_*.log; do
                printf '%-28s ' "$(basename "$log" .log)"
                grep -h -E '^[0-9]+%: Checks:' "$log" || echo "(no Check summary: crashed?)"
        done
        local p f
        p=$(grep -h -E '^[0-9]+%: Checks:' "$dir"/tests/check_*.log | sed -E 's/.*Checks: ([0-9]+), Failures: ([0-9]+), Errors: ([0-9]+).*/\1 \2 \3/' |
                awk '{ pass += $1 - $2 - $3 } END { print pass + 0 }')
        f=$(grep -h -E '^[0-9]+%: Checks:' "$dir"/tests/check_*.log | sed -E 's/.*Checks: ([0-9]+), Failures: ([0-9]+), Errors: ([0-9]+).*/\1 \2 \3/' |
                awk '{ fail += $2 + $3 } END { print fail + 0 }')
        total_pass=$((total_pass + p))
        total_fail=$((total_fail + f))
        if [ $rc -ne 0 ]; then
                echo "=== $name: FAILED; the test suite log follows"
                cat "$dir/test-suite.log" "$dir/test-suite-valgrind.log" 2>/dev/null || true
                total_fail=$((total_fail + 1))
                return 1
        fi
        echo "=== $name: passed"
}

# run_pytest BUILDDIR: the Python package's tests (python/tests, pytest)
# against that build's ipcbusd, tools and examples; pytest's summary line is
# printed and counted.
run_pytest() {
        local dir=$1 rc=0 summary p f
        echo "=== python: pytest"
        "$top/scripts/pytest.sh" "$dir" >"$dir/pytest.log" 2>&1 || rc=$?
        summary=$(grep -E '^(=+ )?[0-9]+ (passed|failed|error)|no tests ran' "$dir/pytest.log" | tail -1)
        echo "--- python: pytest summary"
        echo "${summary:-(no pytest summary: crashed?)}"
        p=$(grep -oE '[0-9]+ passed' <<<"$summary" | grep -oE '[0-9]+' || echo 0)
        f=$(($(grep -oE '[0-9]+ (failed|errors?)' <<<"$summary" | grep -oE '[0-9]+' | paste -sd+ - || echo 0) + 0))
        total_pass=$((total_pass + p))
        total_fail=$((total_fail + f))
        if [ $rc -ne 0 ]; then
                echo "=== python: pytest FAILED; its log follows"
                tail -150 "$dir/pytest.log"
                [ "$f" -eq 0 ] && total_fail=$((total_fail + 1))
                return 1
        fi
        echo "=== python: pytest passed"
}

status=0
if [ "$full" = true ]; then
        # The plain run of the suite is make distcheck's (below, also -Werror):
        # this build runs it under valgrind only.
        echo "=== build (-Werror)"
        rm -rf "$top/build-test"
        if "$top/scripts/build.sh" "$top/build-test" --enable-werror; then
                run_suite "valgrind memcheck" "$top/build-test" check-valgrind || status=1
                run_pytest "$top/build-test" || status=1
        else
                echo "=== build (-Werror): FAILED"
                status=1
                total_fail=$((total_fail + 1))
        fi
        run_suite "clang, AddressSanitizer + UndefinedBehaviorSanitizer" "$top/build-asan" check --enable-werror CC=clang \
                CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
                LDFLAGS="-fsanitize=address,undefined" || status=1
        if "$top/scripts/fuzz.sh" 30; then
                echo "=== fuzz: passed"
        else
                echo "=== fuzz: FAILED"
                status=1
                total_fail=$((total_fail + 1))
        fi
        echo "=== make distcheck"
        if make -C "$top/build-test" -s distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-werror >"$top/build-test/distcheck.log" 2>&1; then
                grep -E '^# (TOTAL|PASS|FAIL|ERROR):|^installcheck:' "$top/build-test/distcheck.log" || true
                echo "=== make distcheck: passed"
        else
                echo "=== make distcheck: FAILED"
                for log in "$top"/build-test/ipcbus-*/_build/sub/tests/check_*.log; do
                        [ -f "$log" ] || continue
                        printf '%-28s ' "$(basename "$log" .log)"
                        grep -h -E '^[0-9]+%: Checks:' "$log" || echo "(no Check summary: crashed?)"
                done
                tail -80 "$top/build-test/distcheck.log"
                status=1
                total_fail=$((total_fail + 1))
        fi
else
        run_suite "build" "$top/build-test" check || status=1
        run_pytest "$top/build-test" || status=1
fi
# The install, in the default mode (in CI mode make distcheck does it, with
# a real prefix): make install into a temporary DESTDIR and make
# installcheck on it (scripts/installcheck.sh: programs, library,
# pkg-config, man pages, units under systemd-analyze verify).
if [ "$full" != true ]; then
        echo "=== make install + installcheck (DESTDIR)"
        inst=$(mktemp -d)
        if make -C "$top/build-test" -s install DESTDIR="$inst" >"$top/build-test/installcheck.log" 2>&1 &&
                make -C "$top/build-test" -s installcheck DESTDIR="$inst" >>"$top/build-test/installcheck.log" 2>&1; then
                grep '^installcheck:' "$top/build-test/installcheck.log" || true
                echo "=== make install + installcheck: passed"
        else
                echo "=== make install + installcheck: FAILED"
                tail -60 "$top/build-test/installcheck.log"
                status=1
                total_fail=$((total_fail + 1))
        fi
        rm -rf "$inst"
fi
echo "$total_pass passed, $total_fail failed"
exit $status
