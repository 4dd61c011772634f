#!/bin/bash
# Fuzz the trace reader (tests/fuzz/fuzz_trace.c: reader, reccheck, the
# model, windows and every report format) with libFuzzer, ASan+UBSan.
#   scripts/fuzz.sh [SECONDS]   fuzz for SECONDS (default 600) on 1 core,
#                               new inputs kept in build-fuzz/corpus;
#                               a crash is saved under build-fuzz/crashes
#                               (add it to tests/fuzz/regress/ once fixed)
#   scripts/fuzz.sh --seeds     remake tests/fuzz/corpus/ from short
#                               recordings of tests/fuzz/seed_workload.py
#                               and test_crafted's hostile traces
# tests/run.sh runs tests/fuzz/check.sh (a bounded run) in make test.
set -e
cd "$(dirname "$0")/.."

if [ "${1:-}" = --seeds ]; then
	make -s build/pyprof build/libpyprof.so build/fuzz/mkseeds
	out=tests/fuzz/corpus tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	mkdir -p "$out"
	py=/usr/bin/python3.11
	wl=tests/fuzz/seed_workload.py
	# name: pyprof record options (sampled: whole runs of a few KiB)
	while read -r name opts; do
		# shellcheck disable=SC2086
		build/pyprof record -o "$tmp/$name.trace" $opts -- \
			"$py" -S -I "$wl" >/dev/null
		build/fuzz/mkseeds "$tmp/$name.trace" "$out" "$name" 100000 50
	done <<-LIST
	sampled --sample 4096
	sampled-nobpf --sample 4096 --no-bpf
	sampled-native --sample 8192 --native
	sampled-futex --sample 4096 --gil futex
	LIST
	# the hostile traces of test_crafted (valid CRCs, bad records)
	make -s build/tests/test_crafted
	PP_CRAFTED_KEEP=$out build/tests/test_crafted >/dev/null
	# every allocation: the first records of the run
	build/pyprof record -o "$tmp/full.trace" -- "$py" -S -I "$wl" >/dev/null
	build/fuzz/mkseeds "$tmp/full.trace" "$out" full 600 100
	ls -l "$out"
	exit 0
fi

secs=${1:-600}
make -s fuzz
mkdir -p build-fuzz/corpus build-fuzz/crashes
exec build-fuzz/fuzz/fuzz_trace -max_total_time="$secs" -rss_limit_mb=2048 \
	-timeout=20 -print_final_stats=1 -artifact_prefix=build-fuzz/crashes/ \
	build-fuzz/corpus tests/fuzz/corpus tests/fuzz/regress
