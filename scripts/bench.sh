#!/bin/bash
# Overhead benchmark: an allocation-heavy pure-Python workload, plain and
# under each profiler, RUNS alternating rounds; prints median wall time,
# median CPU time (user + sys of the profiler and its target together:
# /usr/bin/time of pyprof counts the child it waits for) and their
# ratios to plain, and the trace bytes per million events of each pyprof
# row. Where the machine exposes the instruction
# counter (perf stat -e instructions), the instructions retired by the
# profiler and its target together are reported as well: unlike wall
# time, they do not move with the noise of a shared machine.
# Usage: scripts/bench.sh [RUNS] [ITERATIONS]   (CALLGRIND=0: no instruction count)
# PROFILERS="plain pyprof sampled" runs only those rows (plain is the
# base and always runs); BEFORE=/other/build/pyprof adds rows "before"
# and "sampled-b" with that build, for a before/after comparison.
# heaptrack sees malloc only: pymalloc's objects (most of a Python
# program's allocations) never reach it, so it records far fewer events.
set -u
cd "$(dirname "$0")/.."
RUNS=${1:-5}
N=${2:-10000000}
PY=${PYTHON:-/usr/bin/python3.11}
W=scripts/bench_alloc.py
tmp=$(mktemp -d /tmp/pyprof-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

declare -A CMD
NAMES="plain ${PROFILERS:-pyprof sampled heaptrack tracemalloc}"
NAMES="plain $(echo "$NAMES" | tr ' ' '\n' | grep -vx plain | tr '\n' ' ')"
BEFORE=${BEFORE:-}
[ -n "$BEFORE" ] && NAMES="$NAMES before sampled-b"
CG_NAMES="plain pyprof sampled"
[ -n "$BEFORE" ] && CG_NAMES="$CG_NAMES before sampled-b"
CMD[plain]="$PY $W $N"
CMD[pyprof]="./build/pyprof record -o $tmp/all.pp -- $PY $W $N"
CMD[sampled]="./build/pyprof record --sample 524288 -o $tmp/s.pp -- $PY $W $N"
CMD[heaptrack]="heaptrack -o $tmp/ht $PY $W $N"
CMD[tracemalloc]="$PY -X tracemalloc=25 $W $N"
CMD[before]="$BEFORE record -o $tmp/b.pp -- $PY $W $N"
CMD[sampled-b]="$BEFORE record --sample 524288 -o $tmp/sb.pp -- $PY $W $N"

perf_ok=0
perf stat -x, -e instructions true 2>&1 | grep -q '^[0-9]' && perf_ok=1

for name in $NAMES; do : >"$tmp/$name.t"; : >"$tmp/$name.c"; : >"$tmp/$name.i"; done
for r in $(seq "$RUNS"); do
	for name in $NAMES; do
		rm -f "$tmp"/ht*
		/usr/bin/time -f "%e %U %S" -o "$tmp/tm" ${CMD[$name]} >/dev/null 2>&1
		awk '{ print $1 }' "$tmp/tm" >>"$tmp/$name.t"
		awk '{ printf "%.2f\n", $2 + $3 }' "$tmp/tm" >>"$tmp/$name.c"
		if [ $perf_ok = 1 ]; then
			rm -f "$tmp"/ht*
			perf stat -x, -e instructions -o "$tmp/perf" ${CMD[$name]} \
				>/dev/null 2>&1
			grep instructions "$tmp/perf" | cut -d, -f1 >>"$tmp/$name.i"
		fi
	done
done

# pyprof's fixed cost: start-up (probes attached before Python runs
# user code) and shutdown, on an empty program
start_cost() {
	local f=$tmp/st.t
	: >"$f"
	for r in $(seq "$RUNS"); do
		s=$(date +%s.%N)
		"$@" >/dev/null 2>&1
		e=$(date +%s.%N)
		awk -v s="$s" -v e="$e" 'BEGIN { printf "%.4f\n", e - s }' >>"$f"
	done
	median "$f"
}

median() { sort -g "$1" | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]}'; }
base=$(median "$tmp/plain.t")
cbase=$(median "$tmp/plain.c")
ibase=$(median "$tmp/plain.i")
# the last run's trace: bytes per million events (what `report` counts)
per_m() {
	local pp=$1 bin=$2 ev
	[ -f "$pp" ] || { echo; return; }
	ev=$("$bin" report "$pp" --format json 2>/dev/null |
		sed -n 's/.*"total": \([0-9]*\).*/\1/p' | head -1)
	[ -n "$ev" ] && [ "$ev" -gt 0 ] &&
		awk -v b="$(stat -c %s "$pp")" -v e="$ev" \
			'BEGIN { printf "%.0f", b / e * 1e6 }'
}
declare -A PERM
PERM[pyprof]=$(per_m "$tmp/all.pp" ./build/pyprof)
PERM[sampled]=$(per_m "$tmp/s.pp" ./build/pyprof)
[ -n "$BEFORE" ] && PERM[before]=$(per_m "$tmp/b.pp" "$BEFORE")
[ -n "$BEFORE" ] && PERM[sampled-b]=$(per_m "$tmp/sb.pp" "$BEFORE")
echo "workload: $PY $W $N; $RUNS alternating runs; $(nproc) cores; $(date -u +%F)"
printf '%-12s %10s %8s %10s %8s %14s %16s\n' "" "wall s" "ratio" "CPU s" \
	"ratio" "instr. ratio" "trace B/M events"
for name in $NAMES; do
	m=$(median "$tmp/$name.t")
	c=$(median "$tmp/$name.c")
	i=$(median "$tmp/$name.i")
	ir="n/a"
	[ -n "$i" ] && [ -n "$ibase" ] && ir=$(awk -v a="$i" -v b="$ibase" 'BEGIN { printf "%.2fx", a / b }')
	printf '%-12s %10.3f %7.2fx %10.2f %7.2fx %14s %16s\n' "$name" "$m" \
		"$(awk -v a="$m" -v b="$base" 'BEGIN { print a / b }')" "$c" \
		"$(awk -v a="$c" -v b="$cbase" 'BEGIN { print b ? a / b : 0 }')" \
		"$ir" "${PERM[$name]:-}"
done
echo
echo "fixed cost on an empty program (python -c pass), median s:"
echo "  plain $(start_cost $PY -c pass)  pyprof $(start_cost ./build/pyprof record -o $tmp/e.pp -- $PY -c pass)  pyprof --no-bpf $(start_cost ./build/pyprof record --no-bpf -o $tmp/e.pp -- $PY -c pass)"
[ $perf_ok = 1 ] && exit 0
# CALLGRIND=0: timed rows only (a long run whose tenth would take
# callgrind too long; count instructions on a shorter run)
[ "${CALLGRIND:-1}" = 0 ] && exit 0

# No hardware counter here: count instructions with callgrind instead
# (every process, children included; deterministic, ~50x slower, so on
# a tenth of the iterations).
echo
echo "perf stat -e instructions is not supported on this machine;"
echo "instructions retired by each profiler and its target together,"
echo "counted by valgrind --tool=callgrind on $((N / 10)) iterations"
echo "(heaptrack and tracemalloc left out: too slow under callgrind; pyprof"
echo "with --no-bpf: eBPF cannot attach under valgrind, so GC/GIL tracking"
echo "is the in-process fallback's and counted here):"
n10=$((N / 10))
CMD[plain]="$PY $W $n10"
# eBPF cannot attach to a process valgrind runs: say --no-bpf outright
CMD[pyprof]="./build/pyprof record --no-bpf -o $tmp/all.pp -- $PY $W $n10"
CMD[sampled]="./build/pyprof record --no-bpf --sample 524288 -o $tmp/s.pp -- $PY $W $n10"
CMD[before]="$BEFORE record --no-bpf -o $tmp/b.pp -- $PY $W $n10"
CMD[sampled-b]="$BEFORE record --no-bpf --sample 524288 -o $tmp/sb.pp -- $PY $W $n10"
printf '%-12s %16s %8s\n' "" "instructions" "ratio"
for name in $CG_NAMES; do
	rm -f "$tmp"/cg.* "$tmp"/ht*
	valgrind --tool=callgrind --trace-children=yes \
		--callgrind-out-file="$tmp/cg.%p" ${CMD[$name]} >/dev/null 2>&1
	tot=$(cat "$tmp"/cg.* 2>/dev/null | awk '/^summary:/ { s += $2 } END { print s + 0 }')
	[ "$name" = plain ] && ibase=$tot
	printf '%-12s %16s %7.2fx\n' "$name" "$tot" \
		"$(awk -v a="$tot" -v b="$ibase" 'BEGIN { print b ? a / b : 0 }')"
done
