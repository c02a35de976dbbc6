#!/bin/sh
# SPDX-License-Identifier: MIT
# man-links.sh install|uninstall DIR SRCDIR PAGE...: for every name in the
# NAME section of each man3 PAGE (the line after ".SH NAME": "a, b, c \- what")
# other than the page's own, a stub DIR/NAME.3 holding ".so man3/PAGE.3", as
# man(1) follows it; or remove those stubs. The NAME line is the one list.
set -e
action=$1 dir=$2 srcdir=$3
shift 3
for page in "$@"; do
        base=$(basename "$page" .3)
        names=$(sed -n '/^\.SH NAME/{n;s/ *\\-.*//;s/,/ /g;p;q;}' "$srcdir/$page")
        for name in $names; do
                [ "$name" = "$base" ] && continue
                case $action in
                install) printf '.so man3/%s.3\n' "$base" >"$dir/$name.3" ;;
                uninstall) rm -f "$dir/$name.3" ;;
                *) echo "man-links.sh: unknown action $action" >&2; exit 2 ;;
                esac
        done
done
