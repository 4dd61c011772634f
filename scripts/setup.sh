#!/bin/sh
# Install the Debian packages pyprof needs to build and test, when missing.
set -e
PKGS="gcc make clang llvm libunwind-dev libbpf-dev bpftool libelf-dev \
zlib1g-dev libncurses-dev liblz4-dev pkg-config tmux linux-perf \
heaptrack debootstrap python3 binutils valgrind libpython3.11-dev \
libprotobuf-c-dev protobuf-c-compiler golang-go libclang-rt-14-dev \
chromium python3-flask gunicorn strace"
# the HTML report's JavaScript comes from the npm registry at build time
# (Makefile, package.json): Debian's Node.js and npm unless one is there
command -v npm >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "pyprof setup: installing$missing" >&2
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
