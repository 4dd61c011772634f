#!/bin/bash
# Long traces: what a report of a long every-allocation recording costs
# (wall, CPU = user + sys, peak RSS), and what --max-size keeps. Records
# SECONDS (default 60) of tests/workloads/longrun.py (churn, a bounded
# cache, a planted leak) with every allocation, uncapped and with
# --max-size CAP (default 256M), then times `report --format json` on
# each, RUNS (default 3) alternating runs, medians. BEFORE=path/to/pyprof
# times that build's report of the uncapped trace too, alternating (it
# must read the trace: ABI 2 builds read none of ABI 3, so the uncapped
# trace is then recorded by BEFORE).
# Usage: scripts/bench_longtrace.sh [SECONDS] [CAP] [RUNS]
# TMPDIR (default /tmp) must hold about 100 MB per second of recording.
set -u
cd "$(dirname "$0")/.."
SECS=${1:-60}
CAP=${2:-256M}
RUNS=${3:-3}
PY=${PYTHON:-/usr/bin/python3.11}
NEW=./build/pyprof
REC=${BEFORE:-$NEW}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pyprof-longtrace.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

median() { sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]}'; }
size() { du -cb "$@" 2>/dev/null | tail -1 | cut -f1; }

rec() {	# binary, trace, extra options
	/usr/bin/time -f "%e %U %S" -o "$tmp/rec.time" "$1" record -o "$2" \
		${3:+--max-size "$3"} -- "$PY" tests/workloads/longrun.py \
		--seconds "$SECS" >/dev/null 2>"$tmp/rec.err"
	echo "recorded $2 ${3:+(--max-size $3) }in $(cut -d' ' -f1 "$tmp/rec.time") s:" \
	     "$(size "$2" "$2".[0-9]*) bytes in $(ls "$2" "$2".[0-9]* 2>/dev/null | wc -l) file(s)"
}

rec "$REC" "$tmp/full.pp"
rec "$NEW" "$tmp/cap.pp" "$CAP"

declare -A CMD
CMD[new_full]="$NEW report $tmp/full.pp --format json -o /dev/null"
CMD[new_capped]="$NEW report $tmp/cap.pp --format json -o /dev/null"
CONFIGS="new_full new_capped"
if [ -n "${BEFORE:-}" ]; then
	CMD[before_full]="$BEFORE report $tmp/full.pp --format json -o /dev/null"
	CONFIGS="before_full $CONFIGS"
fi
for c in $CONFIGS; do : >"$tmp/$c"; done
for r in $(seq "$RUNS"); do
	for c in $CONFIGS; do
		/usr/bin/time -f "%e %U %S %M" -o "$tmp/t" ${CMD[$c]} 2>/dev/null
		cat "$tmp/t" >>"$tmp/$c"
	done
done
printf '%-12s %10s %10s %12s\n' report "wall s" "cpu s" "peak RSS MiB"
for c in $CONFIGS; do
	printf '%-12s %10s %10s %12s\n' "$c" \
		"$(awk '{print $1}' "$tmp/$c" | median)" \
		"$(awk '{print $2 + $3}' "$tmp/$c" | median)" \
		"$(awk '{printf "%.1f\n", $4 / 1024}' "$tmp/$c" | median)"
done
"$NEW" report "$tmp/cap.pp" | grep '^trace:'
