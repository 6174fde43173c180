#!/bin/sh
# Full cluster benchmark: 3 namespace nodes, MariaDB, every named scenario once
# (kill, standby, VRRP and the fault scenarios of builder/verify/cluster/faults.py).
# Prints formation and fail-over times, fencing events and peak memory; the same
# figures land in $OUT/cluster-report.json. Needs root; the first run builds the
# node root (~3 min), later runs reuse it from the cache.
#   benchmarks/cluster.sh [extra options of python -m builder.verify.cluster, e.g. --nodes 5]
set -eu
cd "$(dirname "$0")/.."
OUT=${OUT:-out/benchmarks/cluster}
PYTHON=${PYTHON:-.venv/bin/python}
start=$(date +%s)
status=0
"$PYTHON" -m builder.verify.cluster --scenario full --nodes 3 --output "$OUT" "$@" || status=$?
echo "wall time: $(( $(date +%s) - start )) s"
exit "$status"
