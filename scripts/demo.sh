#!/bin/sh
# The README's first command ends here: run pyprof on the bundled demo.
# On a terminal: the live viewer (q quits). Otherwise (CI, pipes): a
# recording and its report.
set -e
cd "$(dirname "$0")/.."
PY=${PYTHON:-/usr/bin/python3}
if [ -t 1 ] && [ -t 0 ]; then
	exec ./build/pyprof -- "$PY" demo/leaky_service.py --seconds 30
fi
trace=$(mktemp /tmp/pyprof-demo.XXXXXX)
trap 'rm -f "$trace"' EXIT
./build/pyprof record -o "$trace" -- "$PY" demo/leaky_service.py --seconds 8
./build/pyprof report "$trace"
