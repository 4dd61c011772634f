#!/bin/bash
# Run every test: unit binaries in build/tests, then the end-to-end
# scripts in tests/e2e. Each prints "ok NAME" / "FAIL NAME: why" lines;
# a test that crashes or prints nothing counts as one failure.
# Usage: tests/run.sh [PATTERN]   (substring of the test file name)
cd "$(dirname "$0")/.." || exit 1
pat=${1:-}
passed=0 failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

run_one() {
	local name=$1; shift
	local start=$SECONDS
	"$@" >"$log" 2>&1
	local rc=$? p f
	p=$(grep -c '^ok ' "$log")
	f=$(grep -c '^FAIL ' "$log")
	grep -E '^(FAIL|SKIP) ' "$log"
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "FAIL $name: exit $rc"; tail -n 15 "$log" | sed 's/^/    /'
		f=1
	elif [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
		echo "FAIL $name: no checks ran"; tail -n 15 "$log" | sed 's/^/    /'
		f=1
	fi
	printf '%-40s %3d ok %3d failed %4ds\n' "$name" "$p" "$f" $((SECONDS - start))
	passed=$((passed + p)); failed=$((failed + f))
}

# Debian's 3.9, 3.13, 3.14 and 3.15 in debootstrap roots, among the
# interpreters under test (cached in tests/cache; a failure here shows as
# FAILs in the tests)
./tests/setup_chroot.sh >/dev/null || echo "setup_chroot failed: chroot interpreters will be missing"

# Which interpreters run (tests/interpreters): required ones missing are
# FAILs in every test; extra ones run only when present
ran="" missing=""
while read -r label need build path; do
	case $label in ''|'#'*) continue ;; esac
	case $path in /*) ;; *) path=$PWD/$path ;; esac
	# shellcheck disable=SC2086
	set -- $path
	if [ -x "$1" ]; then
		ran="$ran $label"
	elif [ "$need" = required ]; then
		missing="$missing $label"
	fi
done <tests/interpreters
echo "interpreters:$ran${missing:+ (required, missing:$missing)}"

for t in build/tests/test_*; do
	[ -x "$t" ] || continue
	case "$t" in *"$pat"*) ;; *) continue ;; esac
	run_one "$(basename "$t")" "$t"
done
# the trace reader's tests again under ASan+UBSan (make sanitize): any
# report is a failure
for t in build-san/tests/test_*; do
	[ -x "$t" ] || continue
	case "$t" in *"$pat"*) ;; *) continue ;; esac
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		run_one "san/$(basename "$t")" "$t"
done
# the trace reader under libFuzzer (make fuzz), a bounded run
case fuzz_trace in *"$pat"*)
	run_one fuzz_trace tests/fuzz/check.sh "${PYPROF_FUZZ_SECONDS:-45}" ;;
esac
for t in tests/e2e/test_*; do
	[ -f "$t" ] || continue
	case "$t" in *"$pat"*) ;; *) continue ;; esac
	run_one "$(basename "$t")" /usr/bin/python3 "$t"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
