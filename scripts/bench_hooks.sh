#!/bin/bash
# Instructions per iteration of scripts/bench_alloc.py's loop, plain and
# under pyprof (callgrind, pyprof and its target together, --no-bpf: eBPF
# cannot attach to a process valgrind runs). Each mode runs at two
# lengths and the difference is divided by the iterations between them,
# so start-up and shutdown drop out. Steady on a noisy machine, unlike
# wall time; a build's hot-path change shows in a few minutes. The
# target's own count is steadier still: the collector's follows the
# wall time (it polls).
# Usage: scripts/bench_hooks.sh [PYTHON...]   (default /usr/bin/python3.11)
# MODES="sampled all" (default "sampled"; plain always runs);
# BEFORE=/other/build/pyprof adds rows "sampled-b" / "all-b" with that
# build (its libpyprof.so beside it);
# N1/N2 the two lengths (20000, 120000); W another loop taking the
# iterations as its argument (scripts/bench_calls.py).
set -u
cd "$(dirname "$0")/.."
N1=${N1:-20000}
N2=${N2:-120000}
MODES=${MODES:-sampled}
BEFORE=${BEFORE:-}
W=${W:-scripts/bench_alloc.py}
tmp=$(mktemp -d /tmp/pyprof-hooks.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

total() {	# BUILD-DIR PYTHON MODE N -> "all target": instructions of
		# every process, of the largest (the target) alone
	local pp=$1/pyprof cmd
	case $3 in
	plain) cmd="$2 $W $4" ;;
	sampled) cmd="$pp record --no-bpf --sample 524288 -o $tmp/t.pp -- $2 $W $4" ;;
	all) cmd="$pp record --no-bpf -o $tmp/t.pp -- $2 $W $4" ;;
	esac
	rm -f "$tmp"/cg.*
	valgrind --tool=callgrind --trace-children=yes \
		--callgrind-out-file="$tmp/cg.%p" $cmd >/dev/null 2>&1
	cat "$tmp"/cg.* 2>/dev/null | awk '/^summary:/ { s += $2; if ($2 > m) m = $2 }
		END { print s + 0, m + 0 }'
}

per_iter() {	# BUILD-DIR PYTHON MODE
	local a b
	a=$(total "$1" "$2" "$3" "$N1")
	b=$(total "$1" "$2" "$3" "$N2")
	echo "$a $b" | awk -v n=$((N2 - N1)) '{ printf "%.0f %.0f\n", ($3 - $1) / n, ($4 - $2) / n }'
}

[ $# -eq 0 ] && set -- /usr/bin/python3.11
for py in "$@"; do
	echo "$py: instructions per iteration (callgrind, $N1 -> $N2 iterations)"
	echo "             pyprof + target        target alone"
	read -r base tbase < <(per_iter build "$py" plain)
	printf '  %-10s %8s           %8s\n' plain "$base" "$tbase"
	for m in $MODES; do
		[ "$m" = plain ] && continue
		rows=$m
		[ -n "$BEFORE" ] && rows="$m-b $m"
		for row in $rows; do
			build=build
			case $row in *-b) build=$(dirname "$BEFORE") ;; esac
			read -r v t < <(per_iter "$build" "$py" "${row%-b}")
			printf '  %-10s %8s  %6.3fx  %8s  %6.3fx\n' "$row" "$v" \
				"$(awk -v a="$v" -v b="$base" 'BEGIN { print b ? a / b : 0 }')" \
				"$t" "$(awk -v a="$t" -v b="$tbase" 'BEGIN { print b ? a / b : 0 }')"
		done
	done
done
