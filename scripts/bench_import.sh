#!/bin/bash
# Import-heavy overhead benchmark: what web frameworks, test runners and
# CLIs do before anything else (issue 11). See scripts/bench_import.py.
# Usage: scripts/bench_import.sh [--runs N] [--callgrind] [--only fifteen,stdlib-all,big-100k]
set -eu
cd "$(dirname "$0")/.."
exec /usr/bin/python3 scripts/bench_import.py "$@"
