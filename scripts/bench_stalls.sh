#!/bin/bash
# The cost of GC/GIL/lock tracking, as ratios to plain, on two workloads:
# four CPU-bound threads contending for the GIL, and an I/O ping-pong
# (two threads bouncing a byte through pipes: four GIL hand-offs per
# round trip). Allocation recording is kept out of the way (one sample
# per GiB), so what is measured is the stall tracking. Each workload
# times its own threaded part ("elapsed S") and the CPU all its threads
# used meanwhile, kernel included ("cpu S": uprobes and tracepoints run
# in the target's context, so their cost is there). Wall time of the
# ping-pong is mostly wake-up latency, which anything else running on
# the machine changes; the CPU ratio is the steadier figure. Medians of
# RUNS alternating runs. Usage: scripts/bench_stalls.sh [RUNS]
set -u
cd "$(dirname "$0")/.."
RUNS=${1:-5}
PY=${PYTHON:-/usr/bin/python3.11}
tmp=$(mktemp -d /tmp/pyprof-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
P="./build/pyprof record --sample 1073741824 -o $tmp/t.pp"

CONFIGS="plain precise futex gc+locks fallback"
declare -A PRE
PRE[plain]=""
PRE[precise]="$P --gil precise --"
PRE[futex]="$P --gil futex --"
PRE[gc+locks]="$P --gil off --"
PRE[fallback]="$P --no-bpf --"

median() { sort -g "$1" | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]}'; }

bench() {
	local w=$1 arg=$2 c r
	for c in $CONFIGS; do : >"$tmp/$c.t"; : >"$tmp/$c.c"; done
	for r in $(seq "$RUNS"); do
		for c in $CONFIGS; do
			${PRE[$c]} $PY "tests/workloads/$w" "$arg" 2>/dev/null >"$tmp/out"
			awk '/^elapsed/ { print $2 }' "$tmp/out" >>"$tmp/$c.t"
			awk '/^cpu/ { print $2 }' "$tmp/out" >>"$tmp/$c.c"
		done
	done
	local base cbase
	base=$(median "$tmp/plain.t")
	cbase=$(median "$tmp/plain.c")
	printf '%s (%s)        wall    ratio   target cpu   ratio\n' "$w" "$arg"
	for c in $CONFIGS; do
		m=$(median "$tmp/$c.t")
		cm=$(median "$tmp/$c.c")
		printf '  %-10s %8.3f s %6.2fx %10.3f s %6.2fx\n' "$c" "$m" \
			"$(awk -v a="$m" -v b="$base" 'BEGIN { print b ? a / b : 0 }')" \
			"$cm" "$(awk -v a="$cm" -v b="$cbase" 'BEGIN { print b ? a / b : 0 }')"
	done
}

echo "$PY; $RUNS alternating runs; $(nproc) cores; $(date -u +%F)"
echo "precise: take_gil/drop_gil or libc condvar uprobes; futex: waits only;"
echo "gc+locks: GIL off; fallback: in-process (--no-bpf)"
bench bench_gil_cpu.py 100000
bench bench_gil_pingpong.py 50000
