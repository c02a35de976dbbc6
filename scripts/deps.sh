#!/bin/sh
# Install what building and testing ipcbus needs on Debian 12 (run as root).
set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
        build-essential autoconf automake libtool pkg-config \
        libevent-dev libjson-c-dev check systemd groff-base man-db \
        clang libclang-rt-14-dev python3 valgrind
