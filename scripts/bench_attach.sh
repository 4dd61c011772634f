#!/bin/bash
# Attach overhead on a real service (issue 9): tests/workloads/webapp.py
# (Flask) under tests/workloads/loadgen.py, plain vs attached in each
# MODE, alternating. See scripts/bench_attach.py.
# Usage: scripts/bench_attach.sh [--runs N] [--seconds S] [--threads N]
#                                [--modes plain,no-inject,default,sample0,NAME=OPTS]
# OPTS: pyprof options, and VAR=VALUE words for its environment
# (PYPROF_TEST_BPF_OFF=locks+kmem+faults; PYPROF=PATH: another build).
# Also prints the ns per getpid() of an unrelated process meanwhile
# (scripts/syscall_cost.c).
set -eu
cd "$(dirname "$0")/.."
[ -x build/pyprof ] || make -s
exec /usr/bin/python3 scripts/bench_attach.py "$@"
