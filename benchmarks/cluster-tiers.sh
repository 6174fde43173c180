#!/bin/sh
# The same 3-node MariaDB scenario on both node tiers, side by side:
#   script  - the harness's own PID 1 starts corosync/pacemaker from a config it writes;
#   systemd - nodes boot systemd (systemd-nspawn), the packages' units start the
#             daemons, `pcs host auth` + `pcs cluster setup` create the cluster;
#   howto   - (with HOWTO_REPO=a published repository folder) the systemd tier made by
#             docs/howto-mariadb-failover.md, its commands run word for word.
# Prints boot to multi-user, formation (systemd: `pcs cluster setup` until all
# online), kill and standby fail-over, PSS per node, peak memory, the workarounds
# the systemd tier needed, a clean reboot's rejoin (systemd tiers), and the load average. Needs root and systemd-nspawn;
# each tier builds its node root once (~3 min), later runs reuse it.
#   benchmarks/cluster-tiers.sh [extra options of python -m builder.verify.cluster,
#                                e.g. --source LINE --key FILE for our archive]
set -eu
cd "$(dirname "$0")/.."
OUT=${OUT:-out/benchmarks/cluster-tiers}
PYTHON=${PYTHON:-.venv/bin/python}
mkdir -p "$OUT"
status=0
tiers="script systemd"
[ -z "${HOWTO_REPO:-}" ] || tiers="$tiers howto"
for tier in $tiers; do
    start=$(date +%s)
    init=$tier shell=crmsh howto=
    [ "$tier" = script ] || shell=pcs
    [ "$tier" = howto ] && init=systemd && \
        howto="--howto docs/howto-mariadb-failover.md --howto-repo $HOWTO_REPO"
    # shellcheck disable=SC2086 # $howto: two options or none
    "$PYTHON" -m builder.verify.cluster --scenario full --nodes 3 --init "$init" --shell "$shell" \
        $howto --output "$OUT/$tier" "$@" >"$OUT.$tier.txt" 2>&1 || status=$?
    echo "$tier tier: wall time $(( $(date +%s) - start )) s, load average $(cut -d' ' -f1-3 /proc/loadavg)"
done
"$PYTHON" - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
tiers = {t: json.loads((out / t / "cluster-report.json").read_text())
         for t in ("script", "systemd", "howto") if (out / t / "cluster-report.json").exists()}
def s(v): return "-" if v is None else f"{v:.1f} s"
def per_node(d, unit): return ", ".join(f"{n} {v:.0f}{unit}" for n, v in d.items()) or "-"
rows = [
    ("result", lambda r: "PASS" if r["ok"] else f"FAIL: {r['error']}"),
    ("boot to multi-user", lambda r: per_node(r.get("boot_s", {}), " s")),
    ("formation / pcs setup to all online", lambda r: s(r["formation_s"])),
    ("fail-over, node killed", lambda r: s(r["kill_failover_s"])),
    ("fenced node back", lambda r: s(r["rejoin_s"])),
    ("fail-over, standby", lambda r: s(r["standby_failover_s"])),
    ("clean reboot, rejoined", lambda r: s(r.get("reboot_rejoin_s"))),
    ("PSS per node (service up)", lambda r: per_node(r.get("pss_node_mib", {}), " MiB")),
    ("peak memory, all nodes + harness", lambda r: f"{r['peak_memory_mib']:.0f} MiB"),
]
width = max(len(k) for k, _ in rows)
print(f"{'':<{width}}  " + "  |  ".join(tiers))
for label, fn in rows:
    print(f"{label:<{width}}  " + "  |  ".join(fn(r) for r in tiers.values()))
for w in tiers.get("systemd", {}).get("workarounds", []):
    print(f"systemd tier workaround: {w}")
PY
exit "$status"
