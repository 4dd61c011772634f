#!/bin/bash
# make test's bounded fuzz run (tests/run.sh): fuzz_trace for SECONDS
# (default 45) from tests/fuzz/corpus and tests/fuzz/regress (inputs
# that once broke the reader: each runs first). Any crash, sanitizer
# report, leak, timeout or memory over the limit fails.
cd "$(dirname "$0")/../.." || exit 1
secs=${1:-45}
bin=build-fuzz/fuzz/fuzz_trace
if [ ! -x "$bin" ]; then
	echo "FAIL fuzz_trace: $bin missing (make fuzz: clang, libclang-rt-14-dev)"
	exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p build-fuzz/crashes "$work/corpus"
# the regressions alone first: each must pass on its own
for f in tests/fuzz/regress/*; do
	[ "$f" = tests/fuzz/regress/README ] && continue
	if ! "$bin" -rss_limit_mb=1024 -timeout=20 "$f" >"$work/one.log" 2>&1; then
		echo "FAIL fuzz_trace regress $(basename "$f"): $(grep -m1 -E 'ERROR|SUMMARY|runtime error' "$work/one.log")"
		exit 1
	fi
	echo "ok fuzz_trace regress $(basename "$f")"
done
ASAN_OPTIONS=quarantine_size_mb=64:${ASAN_OPTIONS:-} \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
"$bin" -max_total_time="$secs" -rss_limit_mb=1024 -malloc_limit_mb=512 \
	-timeout=20 -print_final_stats=1 \
	-artifact_prefix=build-fuzz/crashes/ "$work/corpus" tests/fuzz/corpus \
	tests/fuzz/regress >"$work/log" 2>&1
rc=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$work/log")
cov=$(grep -o 'cov: [0-9]*' "$work/log" | tail -n 1)
if [ "$rc" -ne 0 ] || [ -z "$runs" ]; then
	echo "FAIL fuzz_trace: exit $rc after ${runs:-?} runs: $(grep -m1 -E 'ERROR:|SUMMARY|runtime error|out-of-memory|timeout' "$work/log")"
	grep -m1 -E "Test unit written to" "$work/log"
	tail -n 30 "$work/log" | sed 's/^/    /'
	exit 1
fi
echo "ok fuzz_trace: $runs inputs in ${secs} s ($cov), no crash, no sanitizer report, peak RSS ${rss} MB (limit 1024)"
