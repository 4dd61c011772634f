#!/bin/bash
# ns per syscall of an unrelated process while pyprof is attached to
# another (every process pays for syscall tracepoints). See
# scripts/bench_syscall.py.
# Usage: scripts/bench_syscall.sh [--runs N] [--quiet S] [--modes NAME=OPTS,...]
# OPTS as in bench_attach.sh (PYPROF=PATH: another build).
set -eu
cd "$(dirname "$0")/.."
[ -x build/pyprof ] || make -s
exec /usr/bin/python3 scripts/bench_syscall.py "$@"
