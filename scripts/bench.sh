#!/bin/bash
# Overhead benchmark: an allocation-heavy pure-Python workload, plain and
# under each profiler, RUNS alternating rounds; prints median wall time
# and the ratio to plain. Where the machine exposes the instruction
# counter (perf stat -e instructions), the instructions retired by the
# profiler and its target together are reported as well: unlike wall
# time, they do not move with the noise of a shared machine.
# Usage: scripts/bench.sh [RUNS] [ITERATIONS]
set -u
cd "$(dirname "$0")/.."
RUNS=${1:-5}
N=${2:-1000000}
PY=${PYTHON:-/usr/bin/python3.11}
W=scripts/bench_alloc.py
tmp=$(mktemp -d /tmp/pyprof-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

declare -A CMD
NAMES="plain pyprof sampled heaptrack tracemalloc"
CMD[plain]="$PY $W $N"
CMD[pyprof]="./build/pyprof record -o $tmp/all.pp -- $PY $W $N"
CMD[sampled]="./build/pyprof record --sample 524288 -o $tmp/s.pp -- $PY $W $N"
CMD[heaptrack]="heaptrack -o $tmp/ht $PY $W $N"
CMD[tracemalloc]="$PY -X tracemalloc=25 $W $N"

perf_ok=0
perf stat -x, -e instructions true 2>&1 | grep -q '^[0-9]' && perf_ok=1

for name in $NAMES; do : >"$tmp/$name.t"; : >"$tmp/$name.i"; done
for r in $(seq "$RUNS"); do
	for name in $NAMES; do
		rm -f "$tmp"/ht*
		s=$(date +%s.%N)
		${CMD[$name]} >/dev/null 2>&1
		e=$(date +%s.%N)
		awk -v s="$s" -v e="$e" 'BEGIN { printf "%.4f\n", e - s }' >>"$tmp/$name.t"
		if [ $perf_ok = 1 ]; then
			rm -f "$tmp"/ht*
			perf stat -x, -e instructions -o "$tmp/perf" ${CMD[$name]} \
				>/dev/null 2>&1
			grep instructions "$tmp/perf" | cut -d, -f1 >>"$tmp/$name.i"
		fi
	done
done

median() { sort -g "$1" | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]}'; }
base=$(median "$tmp/plain.t")
ibase=$(median "$tmp/plain.i")
echo "workload: $PY $W $N; $RUNS alternating runs; $(nproc) cores; $(date -u +%F)"
printf '%-12s %10s %8s %14s\n' "" "median s" "ratio" "instr. ratio"
for name in $NAMES; do
	m=$(median "$tmp/$name.t")
	i=$(median "$tmp/$name.i")
	ir="n/a"
	[ -n "$i" ] && [ -n "$ibase" ] && ir=$(awk -v a="$i" -v b="$ibase" 'BEGIN { printf "%.2fx", a / b }')
	printf '%-12s %10.3f %7.2fx %14s\n' "$name" "$m" \
		"$(awk -v a="$m" -v b="$base" 'BEGIN { print a / b }')" "$ir"
done
[ $perf_ok = 1 ] || echo "(perf stat -e instructions is not supported on this machine: no instruction ratios)"
