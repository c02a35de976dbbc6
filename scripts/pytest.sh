#!/bin/sh
# Run the Python package's tests (python/tests) against a build tree:
#   ./scripts/pytest.sh [BUILD_DIR [PYTEST ARGS...]]      (default: build)
# They start build/daemon/ipcbusd and use the C tools and examples of that
# tree; a missing binary fails them. Exits with pytest's status, after its
# summary line. Debian's /usr/bin/python3 has python3-pytest; a python3
# earlier on PATH (pyenv) may not.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
[ $# -gt 0 ] && shift
case $build in
/*) ;;
*) build=$(pwd)/$build ;;
esac
if [ ! -d "$build" ]; then
        echo "pytest.sh: no build directory $build (./scripts/build.sh build first)" >&2
        exit 2
fi
python=${PYTHON:-/usr/bin/python3}

cd "$top"
# Nothing is written into the source tree (it may be read-only, as under distcheck).
export IPCBUS_BUILD_DIR="$build"
export PYTHONDONTWRITEBYTECODE=1
exec "$python" -m pytest -q -p no:cacheprovider python/tests "$@"
