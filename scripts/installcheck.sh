#!/bin/bash
# Check an installed ipcbus: run by `make installcheck` (and so by distcheck
# and scripts/test.sh), which passes the install directories in the
# environment: DESTDIR (may be empty), bindir, libdir, includedir,
# pkgconfigdir, pkgdatadir, mandir, bashcompletiondir, systemdsystemunitdir
# and systemduserunitdir ("no": not installed), PACKAGE_VERSION,
# LIBIPCBUS_LT_VERSION, with_glib (yes: libipcbus-glib was built),
# LIBIPCBUS_GLIB_LT_VERSION, CC, CFLAGS, LDFLAGS, PKG_CONFIG.
#
# Checks, everything from the installed paths below $DESTDIR:
# - every program runs --version and --help; the tools load the installed
#   libipcbus; the installed ipcbusd serves a bus with the installed
#   session.json, ipcctl talks to it, ipc-bench finds the ipcbusd beside it;
# - libipcbus.so.MAJOR.AGE.REV with its two symlinks, SONAME libipcbus.so.MAJOR,
#   only ipcbus_* symbols exported, GLib not linked; the same of
#   libipcbus-glib.so (only ipcbus_*_glib exported);
# - the headers and ipcbus.pc: a small program built with
#   `pkg-config --cflags --libs ipcbus` calls the bus driver; the example
#   application (examples/notes) builds with them alone; with GLib,
#   ipcbus-glib.pc: a program built with `pkg-config --cflags --libs
#   ipcbus-glib` calls the driver from a GMainLoop, and examples/glib builds;
# - session.json, system.json, the standard interface descriptions and the
#   example's; every man page renders without a warning;
# - the bash completion of ipcctl: in place, and it defines its function;
# - the units: in place, @bindir@ filled in, `systemd-analyze verify` (system)
#   and `systemd-analyze --user verify` (user) silent. Under a DESTDIR the
#   services are verified with ExecStart moved below DESTDIR, where the
#   program is.
# Prints one line per failed check and a summary; exits 1 on any failure.
# shellcheck disable=SC2154 # the directories come from the environment, checked below
set -u

: "${DESTDIR:=}" "${CC:=cc}" "${CFLAGS:=}" "${LDFLAGS:=}" "${PKG_CONFIG:=pkg-config}"
for v in bindir libdir includedir pkgconfigdir pkgdatadir mandir bashcompletiondir systemdsystemunitdir systemduserunitdir \
        PACKAGE_VERSION LIBIPCBUS_LT_VERSION with_glib LIBIPCBUS_GLIB_LT_VERSION; do
        if [ -z "${!v:-}" ]; then
                echo "installcheck: $v is not set (run it through make installcheck)" >&2
                exit 2
        fi
done

failures=0
checks=0
fail() {
        echo "installcheck: FAILED: $*" >&2
        failures=$((failures + 1))
}
ok() {
        checks=$((checks + 1))
}
# check DESCRIPTION COMMAND...: run it, fail loudly with its output if it fails.
check() {
        local what=$1 out
        shift
        if out=$("$@" 2>&1); then
                ok
        else
                fail "$what (exit $?): $*"
                [ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/    /' >&2
        fi
}

bin=$DESTDIR$bindir
lib=$DESTDIR$libdir
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ipcbus-installcheck.XXXXXX") || exit 1
chmod 700 "$tmp"
daemon_pid=
cleanup() {
        [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
        rm -rf "$tmp"
}
trap cleanup EXIT

# The installed programs find the installed library through LD_LIBRARY_PATH
# under a DESTDIR (their RUNPATH, when libtool gives them one, names
# $libdir: it gives none for a directory the dynamic linker searches, such
# as /usr/local/lib), and the environment of a
# test run must not steer them elsewhere.
export LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
unset IPCBUSD IPCBUS_ADDRESS IPCBUS_SYSTEM_ADDRESS LISTEN_FDS LISTEN_PID LISTEN_FDNAMES NOTIFY_SOCKET

# lib_files NAME LT_VERSION: sets soname and real, the file names of libNAME.so.
lib_files() {
        local lt_current lt_revision lt_age major
        IFS=: read -r lt_current lt_revision lt_age <<<"$2"
        major=$((lt_current - lt_age))
        soname=lib$1.so.$major
        real=lib$1.so.$major.$lt_age.$lt_revision
}
lib_files ipcbus "$LIBIPCBUS_LT_VERSION"

# ---- programs ----
for p in ipcbusd ipcctl ipc-monitor ipc-bench; do
        if [ ! -x "$bin/$p" ]; then
                fail "$bin/$p is not installed"
                continue
        fi
        ok
        out=$("$bin/$p" --version 2>&1)
        if [ "$out" = "$p $PACKAGE_VERSION" ]; then ok; else fail "$p --version printed '$out', not '$p $PACKAGE_VERSION'"; fi
        out=$("$bin/$p" --help 2>&1)
        rc=$?
        if [ $rc -eq 0 ] && [[ $out == "Usage: $p "* ]]; then ok; else fail "$p --help (exit $rc): $(head -1 <<<"$out")"; fi
        if [ "$p" != ipcbusd ]; then
                # the tools link libipcbus: it must be the installed one
                line=$(ldd "$bin/$p" 2>&1 | grep 'libipcbus\.so')
                resolved=$(awk '{ print $3 }' <<<"$line")
                if [ -n "$resolved" ] && [ "$(readlink -f "$resolved")" = "$(readlink -f "$lib/$soname" 2>/dev/null)" ]; then
                        ok
                else
                        fail "$p does not load the installed $lib/$soname: ldd says '${line//$'\n'/ }'"
                fi
        fi
done
check "ipc-bench --list" "$bin/ipc-bench" --list

# ---- the libraries ----
# check_library NAME LT_VERSION EXPORTS: libNAME.so.MAJOR.AGE.REV a file, its
# two symlinks, its SONAME, and no symbol exported but those matching the
# awk regular expression EXPORTS.
check_library() {
        local name=$1 exports=$3 soname real got others
        lib_files "$name" "$2"
        if [ -f "$lib/$real" ] && [ ! -L "$lib/$real" ]; then ok; else fail "$lib/$real is not installed (a regular file)"; fi
        for link in "$soname" "lib$name.so"; do
                if [ -L "$lib/$link" ] && [ "$(readlink -f "$lib/$link")" = "$(readlink -f "$lib/$real")" ]; then
                        ok
                else
                        fail "$lib/$link is not a symlink to $real"
                fi
        done
        got=$(readelf -d "$lib/$real" 2>&1 | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
        if [ "$got" = "$soname" ]; then ok; else fail "SONAME of $real is '$got', not $soname"; fi
        others=$(nm -D --defined-only "$lib/$real" 2>&1 | awk -v re="$exports" '$2 != "A" && $3 !~ re { print $3 }')
        if [ -z "$others" ]; then ok; else fail "lib$name exports more than $exports: ${others//$'\n'/ }"; fi
}
check_library ipcbus "$LIBIPCBUS_LT_VERSION" '^ipcbus_'
# GLib lives in libipcbus-glib only
if readelf -d "$lib/$real" 2>&1 | grep -q 'NEEDED.*libglib'; then fail "$real links GLib"; else ok; fi
if [ "$with_glib" = yes ]; then
        check_library ipcbus-glib "$LIBIPCBUS_GLIB_LT_VERSION" '^ipcbus_[a-z_]*_glib(@|$)'
fi

# ---- headers, pkg-config, a program built against them ----
for h in ipcbus/ipcbus.h ipcbus/wire.h; do
        if [ -f "$DESTDIR$includedir/$h" ]; then ok; else fail "$DESTDIR$includedir/$h is not installed"; fi
done
# PKG_CONFIG_SYSROOT_DIR puts the DESTDIR before the .pc file's -I and -L.
export PKG_CONFIG_PATH=$DESTDIR$pkgconfigdir
[ -n "$DESTDIR" ] && export PKG_CONFIG_SYSROOT_DIR=$DESTDIR
got=$($PKG_CONFIG --modversion ipcbus 2>&1)
if [ "$got" = "$PACKAGE_VERSION" ]; then ok; else fail "pkg-config --modversion ipcbus: '$got', not $PACKAGE_VERSION"; fi
cat >"$tmp/client.c" <<'EOF'
/* Built against the installed header and library: ask the bus driver for its id. */
#include <stdio.h>
#include <string.h>

#include <ipcbus/ipcbus.h>

int main(int argc, char **argv)
{
        ipcbus_bus *bus = NULL;
        ipcbus_message *reply = NULL;
        ipcbus_error error = IPCBUS_ERROR_NULL;
        const char *id;
        int r;

        if (argc != 2)
                return 2;
        r = ipcbus_open_address(argv[1], &bus);
        if (r < 0) {
                fprintf(stderr, "cannot connect to %s: %s\n", argv[1], ipcbus_strerror(r));
                return 1;
        }
        r = ipcbus_call(bus, "org.ipcbus.Bus", "/org/ipcbus/Bus", "org.ipcbus.Bus", "GetId", NULL, 0, &reply,
                        &error);
        if (r < 0) {
                fprintf(stderr, "GetId: %s: %s\n", error.name ? error.name : ipcbus_strerror(r),
                        error.message ? error.message : "");
                ipcbus_error_free(&error);
                ipcbus_unref(bus);
                return 1;
        }
        id = ipcbus_message_get_arg(reply, "id");
        printf("%s\n", id ? id : "(none)");
        r = id && strlen(id) == 32 ? 0 : 1;
        ipcbus_message_unref(reply);
        ipcbus_unref(bus);
        return r;
}
EOF
if flags=$($PKG_CONFIG --cflags --libs ipcbus 2>&1); then
        ok
        # shellcheck disable=SC2086 # word splitting of the flags is wanted
        check "compiling a program with \`pkg-config --cflags --libs ipcbus\`" \
                $CC $CFLAGS -std=c11 -Wall -Wextra -Werror -o "$tmp/client" "$tmp/client.c" $flags $LDFLAGS
        # the example application needs nothing but what is installed
        for p in notes-service notes-client; do
                # shellcheck disable=SC2086 # word splitting of the flags is wanted
                check "compiling examples/notes/$p.c with \`pkg-config --cflags --libs ipcbus\`" \
                        $CC $CFLAGS -Wall -Wextra -Wno-unused-parameter -Werror -o "$tmp/$p" \
                        "$(dirname "$0")/../examples/notes/$p.c" $flags $LDFLAGS
        done
else
        fail "pkg-config --cflags --libs ipcbus: $flags"
fi

# ---- libipcbus-glib: its header, ipcbus-glib.pc, a GLib program built against them ----
# GLib's own flags must stay those of the system, so here no sysroot: under
# a DESTDIR, copies of our two .pc files name the DESTDIR paths themselves.
glib_pkg_config() {
        if [ -z "$DESTDIR" ]; then
                env -u PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_PATH="$pkgconfigdir" "$PKG_CONFIG" "$@"
        else
                env -u PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_PATH="$tmp/pkgconfig" "$PKG_CONFIG" "$@"
        fi
}
if [ "$with_glib" = yes ]; then
        if [ -f "$DESTDIR$includedir/ipcbus/ipcbus-glib.h" ]; then ok; else fail "$DESTDIR$includedir/ipcbus/ipcbus-glib.h is not installed"; fi
        mkdir -p "$tmp/pkgconfig"
        for pc in ipcbus ipcbus-glib; do
                sed -e "s|^prefix=|prefix=$DESTDIR|" -e "s%^\(exec_prefix\|libdir\|includedir\)=/%\1=$DESTDIR/%" \
                        "$DESTDIR$pkgconfigdir/$pc.pc" >"$tmp/pkgconfig/$pc.pc" 2>/dev/null ||
                        fail "$DESTDIR$pkgconfigdir/$pc.pc is not installed"
        done
        got=$(glib_pkg_config --modversion ipcbus-glib 2>&1)
        if [ "$got" = "$PACKAGE_VERSION" ]; then ok; else fail "pkg-config --modversion ipcbus-glib: '$got', not $PACKAGE_VERSION"; fi
        got=$(glib_pkg_config --print-requires ipcbus-glib 2>&1 | awk '{ print $1 }' | sort | tr '\n' ' ')
        if [ "$got" = "glib-2.0 ipcbus " ]; then ok; else fail "ipcbus-glib.pc requires '$got', not 'glib-2.0 ipcbus'"; fi
        cat >"$tmp/glib-client.c" <<'EOF'
/* Built against the installed libipcbus-glib: ask the bus driver for its id from a GMainLoop. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <ipcbus/ipcbus-glib.h>

static GMainLoop *loop;
static int status = 1;

static int on_reply(ipcbus_message *m, void *userdata, ipcbus_error *error)
{
        const char *id = ipcbus_message_get_arg(m, "id");

        printf("%s\n", id ? id : "(none)");
        status = id && strlen(id) == 32 ? 0 : 1;
        g_main_loop_quit(loop);
        return 0;
}

int main(int argc, char **argv)
{
        ipcbus_bus *bus = NULL;
        int r;

        if (argc != 2)
                return 2;
        r = ipcbus_open_address(argv[1], &bus);
        if (r < 0) {
                fprintf(stderr, "cannot connect to %s: %s\n", argv[1], ipcbus_strerror(r));
                return 1;
        }
        loop = g_main_loop_new(NULL, FALSE);
        if (ipcbus_attach_glib(bus, NULL) == 0) {
                fprintf(stderr, "ipcbus_attach_glib: %s\n", strerror(errno));
                return 1;
        }
        r = ipcbus_call_async(bus, NULL, "org.ipcbus.Bus", "/org/ipcbus/Bus", "org.ipcbus.Bus", "GetId", NULL, 0,
                              on_reply, NULL);
        if (r < 0) {
                fprintf(stderr, "GetId: %s\n", ipcbus_strerror(r));
                return 1;
        }
        g_main_loop_run(loop);
        ipcbus_detach_glib(bus);
        ipcbus_unref(bus);
        g_main_loop_unref(loop);
        return status;
}
EOF
        if flags=$(glib_pkg_config --cflags --libs ipcbus-glib 2>&1); then
                ok
                # shellcheck disable=SC2086 # word splitting of the flags is wanted
                check "compiling a program with \`pkg-config --cflags --libs ipcbus-glib\`" \
                        $CC $CFLAGS -std=c11 -Wall -Wextra -Wno-unused-parameter -Werror -o "$tmp/glib-client" \
                        "$tmp/glib-client.c" $flags $LDFLAGS
                # shellcheck disable=SC2086 # word splitting of the flags is wanted
                check "compiling examples/glib/glib-echo.c with \`pkg-config --cflags --libs ipcbus-glib\`" \
                        $CC $CFLAGS -Wall -Wextra -Wno-unused-parameter -Werror -o "$tmp/glib-echo" \
                        "$(dirname "$0")/../examples/glib/glib-echo.c" $flags $LDFLAGS
        else
                fail "pkg-config --cflags --libs ipcbus-glib: $flags"
        fi
fi

# ---- configs, interface descriptions, and the installed broker serving a bus with one ----
for f in session.json system.json; do
        if [ -f "$DESTDIR$pkgdatadir/$f" ]; then ok; else fail "$DESTDIR$pkgdatadir/$f is not installed"; fi
done
for i in ipcbus.Bus ipcbus.Introspectable ipcbus.Properties ipcbus.ObjectManager ipcbus.Peer example.Notes; do
        f="$DESTDIR$pkgdatadir/interfaces/org.$i.json"
        if [ -f "$f" ]; then ok; else fail "$f is not installed"; fi
done
if [ -x "$bin/ipcbusd" ] && [ -f "$DESTDIR$pkgdatadir/session.json" ]; then
        mkfifo "$tmp/out"
        "$bin/ipcbusd" --config "$DESTDIR$pkgdatadir/session.json" --address "unix:path=$tmp/bus" --print-address \
                >"$tmp/out" 2>"$tmp/ipcbusd.log" &
        daemon_pid=$!
        address=
        exec 3<"$tmp/out"
        read -r -t 30 address <&3
        if [ "$address" = "unix:path=$tmp/bus" ]; then
                ok
                if [ -x "$tmp/client" ]; then
                        check "the program built against the installed library" "$tmp/client" "$address"
                fi
                if [ -x "$tmp/glib-client" ]; then
                        check "the GLib program built against the installed libipcbus-glib" "$tmp/glib-client" "$address"
                fi
                check "installed ipcctl calling the installed ipcbusd" \
                        "$bin/ipcctl" --address "$address" call org.ipcbus.Bus /org/ipcbus/Bus org.ipcbus.Bus GetId
                check "installed ipc-bench against the installed ipcbusd" \
                        "$bin/ipc-bench" --address "$address" --scale 0.001 --scenario call_rtt_small
                # without --address it starts the ipcbusd installed beside it
                check "installed ipc-bench starting the ipcbusd beside it" \
                        env PATH=/nonexistent "$bin/ipc-bench" --scale 0.001 --scenario connect_hello
                # its standard output closes when it exits: end of file, or 30 s
                kill -TERM "$daemon_pid"
                while :; do read -r -t 30 _ <&3 || { rc=$?; break; }; done
                if [ "$rc" -gt 128 ]; then
                        fail "ipcbusd did not exit within 30 s of SIGTERM"
                        kill -KILL "$daemon_pid"
                fi
                wait "$daemon_pid"
                rc=$?
                daemon_pid=
                if [ $rc -eq 0 ]; then ok; else fail "ipcbusd exited with status $rc on SIGTERM"; fi
        else
                fail "installed ipcbusd with the installed session.json did not print its address; its log:"
                sed 's/^/    /' "$tmp/ipcbusd.log" >&2
        fi
        exec 3<&-
fi

# ---- man pages ----
man3_pages="ipcbus ipcbus_open ipcbus_call ipcbus_message_append ipcbus_message_read ipcbus_message_get_fd
        ipcbus_emit ipcbus_request_name ipcbus_add_object_vtable ipcbus_interface_parse ipcbus_process ipcbus_error"
headers=ipcbus/ipcbus.h
if [ "$with_glib" = yes ]; then
        man3_pages="$man3_pages ipcbus_attach_glib"
        headers="$headers ipcbus/ipcbus-glib.h"
fi
for m in man8/ipcbusd.8 man1/ipcctl.1 man1/ipc-monitor.1 man1/ipc-bench.1 man5/ipcbus-config.5 \
        $(for p in $man3_pages; do echo "man3/$p.3"; done); do
        page=$DESTDIR$mandir/$m
        if [ ! -f "$page" ]; then
                fail "$page is not installed"
                continue
        fi
        if out=$(LC_ALL=C.UTF-8 groff -t -man -Tutf8 -ww -z "$page" 2>&1) && [ -z "$out" ]; then
                ok
        else
                fail "$m does not render cleanly (groff -man -ww -z):"
                printf '%s\n' "$out" | sed 's/^/    /' >&2
        fi
done

# Every function of the installed headers has a page of its own or a ".so"
# stub leading to the page of its group, and every stub leads to a page.
for h in $headers; do
        for f in $(grep -oE '\bipcbus_[a-z0-9_]+ *\(' "$DESTDIR$includedir/$h" | tr -d ' (' | sort -u); do
                page=$DESTDIR$mandir/man3/$f.3
                if [ ! -f "$page" ]; then
                        fail "$f, declared in $h, has no man page (add it to a NAME line of man/*.3)"
                elif target=$(sed -n 's/^\.so //p' "$page") && [ -n "$target" ] && [ ! -f "$DESTDIR$mandir/$target" ]; then
                        fail "man3/$f.3 leads to $target, which is not installed"
                else
                        ok
                fi
        done
done

# ---- bash completion ----
completion=$DESTDIR$bashcompletiondir/ipcctl
if [ ! -f "$completion" ]; then
        fail "$completion is not installed"
else
        check "the completion of ipcctl defines _ipcctl" bash -c '. "$1" && declare -F _ipcctl' _ "$completion"
fi

# ---- systemd units ----
# verify_units MODE DIR: the units of DIR as installed, the service's
# ExecStart moved below DESTDIR; systemd-analyze must say nothing.
verify_units() {
        local mode=$1 dir=$2 copy=$tmp/units-$1 out rc want
        mkdir -p "$copy"
        for u in ipcbusd.socket ipcbusd.service; do
                if [ ! -f "$DESTDIR$dir/$u" ]; then
                        fail "$DESTDIR$dir/$u is not installed"
                        return
                fi
        done
        if grep -q '@[a-z]*@' "$DESTDIR$dir/ipcbusd.service"; then
                fail "$DESTDIR$dir/ipcbusd.service has unsubstituted @variables@"
        fi
        want="ExecStart=$bindir/ipcbusd --$([ "$mode" = system ] && echo system || echo session)"
        if grep -qxF "$want" "$DESTDIR$dir/ipcbusd.service"; then ok; else fail "$DESTDIR$dir/ipcbusd.service lacks '$want'"; fi
        cp "$DESTDIR$dir/ipcbusd.socket" "$copy/"
        sed "s|^ExecStart=$bindir/|ExecStart=$bin/|" "$DESTDIR$dir/ipcbusd.service" >"$copy/ipcbusd.service"
        # Documentation=man: is looked up (with man(1)) among the installed pages
        if [ "$mode" = system ]; then
                out=$(MANPATH=$DESTDIR$mandir systemd-analyze verify $man_check \
                        "$copy/ipcbusd.socket" "$copy/ipcbusd.service" 2>&1)
                rc=$?
        else
                mkdir -m 700 "$tmp/runtime"
                out=$(XDG_RUNTIME_DIR=$tmp/runtime MANPATH=$DESTDIR$mandir systemd-analyze --user verify $man_check \
                        "$copy/ipcbusd.socket" "$copy/ipcbusd.service" 2>&1)
                rc=$?
        fi
        if [ $rc -eq 0 ] && [ -z "$out" ]; then
                ok
        else
                fail "systemd-analyze $([ "$mode" = user ] && echo '--user ')verify of the $mode units in $DESTDIR$dir:"
                printf '%s\n' "$out" | sed 's/^/    /' >&2
        fi
}
man_check=
if ! command -v man >/dev/null; then
        echo "installcheck: no man(1) (scripts/deps.sh test installs man-db): the units' Documentation= is not checked"
        man_check=--man=no
fi
if ! command -v systemd-analyze >/dev/null; then
        fail "systemd-analyze is not installed (scripts/deps.sh test installs systemd)"
else
        [ "$systemdsystemunitdir" != no ] && verify_units system "$systemdsystemunitdir"
        [ "$systemduserunitdir" != no ] && verify_units user "$systemduserunitdir"
fi

if [ $failures -gt 0 ]; then
        echo "installcheck: $failures FAILED, $checks passed (install under '${DESTDIR:-/}', programs in $bindir)" >&2
        exit 1
fi
echo "installcheck: all $checks checks passed (install under '${DESTDIR:-/}', programs in $bindir)"
