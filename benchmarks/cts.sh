#!/bin/sh
# Repeatability of the fault scenarios (after Pacemaker's CTS): the full set, or the
# scenarios given with --scenario, N times on a fresh 3-node cluster each time.
# Prints each run's verdict, then p50/p95 per scenario and the failure count; the same
# figures land in $OUT/cts-report.json (each run's own report in $OUT/run-K/).
# Needs root; the node root is built once (~3 min) and cached.
#   benchmarks/cts.sh --repeat N [other options of python -m builder.verify.cluster]
set -eu
cd "$(dirname "$0")/.."
OUT=${OUT:-out/benchmarks/cts}
PYTHON=${PYTHON:-.venv/bin/python}
repeat=5
if [ "${1:-}" = --repeat ]; then
    [ $# -ge 2 ] || { echo "cts.sh: --repeat needs a number" >&2; exit 2; }
    repeat=$2
    shift 2
fi
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s)
status=0
"$PYTHON" -m builder.verify.cluster --scenario full --nodes 3 --repeat "$repeat" --output "$OUT" "$@" \
    || status=$?
echo "wall time: $(( $(date +%s) - start )) s, load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$status"
