#!/bin/bash
# Start-up cost: `python -c pass` plain, under `pyprof record` and under
# `pyprof record --no-bpf`, RUNS alternating rounds per interpreter;
# prints the medians of wall time and of CPU time (user + sys of pyprof
# and its target together, as wait4 reports them) and the difference to
# plain. The eBPF helper that removes the uprobes after the target has
# exited (collector/bpf.c) is not waited for and not counted, but while
# it runs the next run registers its uprobes slower: PAUSE seconds
# (default 1) between runs keep one run's removal out of the next run's
# registration; PAUSE=0 measures runs back to back.
# Usage: scripts/bench_startup.sh [RUNS] [PYTHON...]
# Default interpreters: /usr/bin/python3.11 and Debian trixie's 3.13 in
# its root (tests/cache/python3.13-trixie, after tests/setup_chroot.sh
# has copied this build's shim in), when there. BEFORE=/other/pyprof
# adds a row for that build (not for a chroot interpreter: that
# build's shim is not in the root).
set -u
cd "$(dirname "$0")/.."
RUNS=${1:-11}
shift $(( $# > 0 ? 1 : 0 ))
PYS=("$@")
if [ ${#PYS[@]} = 0 ]; then
	PYS=(/usr/bin/python3.11)
	[ -x tests/cache/python3.13-trixie ] &&
		PYS+=("$PWD/tests/cache/python3.13-trixie")
fi
BEFORE=${BEFORE:-}
PP=$PWD/build/pyprof
tmp=$(mktemp -d /tmp/pyprof-bench-startup.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# one timed run: "wall cpu" on stdout (wait4's rusage: microseconds,
# where /usr/bin/time rounds to 10 ms)
timed() {
	python3 - "$@" <<'PY'
import os, sys, time
t = time.monotonic()
pid = os.fork()
if pid == 0:
    fd = os.open(os.devnull, os.O_RDWR)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.execvp(sys.argv[1], sys.argv[1:])
_, st, ru = os.wait4(pid, 0)
print("%.4f %.4f" % (time.monotonic() - t, ru.ru_utime + ru.ru_stime))
PY
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]}'; }

one_python() {
	local py=$1 names="plain pyprof no-bpf"
	# another build's shim is not in the roots: no before row there
	[ -n "$BEFORE" ] && [[ $py != */tests/cache/* ]] && names="$names before"
	for n in $names; do : >"$tmp/$n"; done
	for r in $(seq "$RUNS"); do
		for n in $names; do
			case $n in
			plain) c=("$py" -c pass) ;;
			pyprof) c=("$PP" record -o "$tmp/t.pp" -- "$py" -c pass) ;;
			no-bpf) c=("$PP" record --no-bpf -o "$tmp/t.pp" -- "$py" -c pass) ;;
			before) c=("$BEFORE" record -o "$tmp/t.pp" -- "$py" -c pass) ;;
			esac
			timed "${c[@]}" >>"$tmp/$n"
			sleep "${PAUSE:-1}"
		done
	done
	rm -f "$tmp/t.pp"
	echo "$py: $RUNS alternating runs, medians"
	printf '%-8s %8s %8s %10s %10s\n' "" "wall s" "cpu s" "wall-plain" "cpu-plain"
	local bw bc w c
	bw=$(cut -d' ' -f1 "$tmp/plain" | median)
	bc=$(cut -d' ' -f2 "$tmp/plain" | median)
	for n in $names; do
		w=$(cut -d' ' -f1 "$tmp/$n" | median)
		c=$(cut -d' ' -f2 "$tmp/$n" | median)
		awk -v n="$n" -v w="$w" -v c="$c" -v bw="$bw" -v bc="$bc" \
			'BEGIN { printf "%-8s %8.3f %8.3f %+10.3f %+10.3f\n", n, w, c, w - bw, c - bc }'
	done
}

echo "$(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%F)"
for p in "${PYS[@]}"; do one_python "$p"; done
