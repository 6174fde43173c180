#!/bin/sh
# Installer benchmark: `clusterstack verify --installer` twice, first with an empty
# apt-cacher-ng cache (cold: everything the install needs comes from Debian's mirror),
# then again with the cache of the first run (warm). Prints, per run: wall time, the
# install's wall time, MiB apt-cacher-ng fetched from Debian, peak memory (PSS of the
# harness, qemu and apt-cacher-ng), the bond fail-over time, the installed system's
# package count and size, and the result; the same
# figures are in $CLUSTERSTACK_OUT/PROFILE/installer/installer-report.json.
# Needs root and a published repository (make archive); CLI and PYTHON may name another
# checkout's entry points. Its own cache folder, so the
# user's cache is neither emptied nor used:
#   CLUSTERSTACK_OUT=/var/tmp/cs-out benchmarks/installer.sh [--profile NAME]
#   BENCH_CACHE=/var/tmp/cs-installer-bench   (default)
set -eu
cd "$(dirname "$0")/.."
CLI=${CLI:-.venv/bin/clusterstack}
PYTHON=${PYTHON:-.venv/bin/python}
BENCH_CACHE=${BENCH_CACHE:-/var/tmp/cs-installer-bench}
rm -rf "$BENCH_CACHE/installer/apt-cacher-ng"
mkdir -p "$BENCH_CACHE"
status=0
for run in cold warm; do
    start=$(date +%s)
    rc=0
    CLUSTERSTACK_CACHE=$BENCH_CACHE "$CLI" verify --installer "$@" || rc=$?
    [ "$rc" = 0 ] || status=$rc
    echo "$run run: wall time $(( $(date +%s) - start )) s, exit status $rc"
    for report in "${CLUSTERSTACK_OUT:-out}"/*/installer/installer-report.json; do
        [ -f "$report" ] || continue
        "$PYTHON" - "$report" "$run" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"  [{sys.argv[2]}] netboot image       {r['netboot']}")
print(f"  [{sys.argv[2]}] install wall time   {r['install_s']} s")
print(f"  [{sys.argv[2]}] downloaded          {r['downloaded_mib']} MiB")
print(f"  [{sys.argv[2]}] peak memory         {r['peak_memory_mib']} MiB")
print(f"  [{sys.argv[2]}] bond fail-over      {r['bond_failover_s']} s")
print(f"  [{sys.argv[2]}] installed system    {r['installed_packages']} packages, "
      f"{r['installed_mib']} MiB on /")
print(f"  [{sys.argv[2]}] reached             {r['reached']}")
print(f"  [{sys.argv[2]}] result              {'PASS' if r['ok'] else 'FAIL: ' + str(r['error'])}")
PY
    done
done
exit "$status"
