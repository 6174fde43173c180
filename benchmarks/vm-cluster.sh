#!/bin/sh
# Kernel-tier benchmark: two qemu guests (TCG unless KVM can boot Debian's kernel) from
# our published repository; DRBD + Filesystem + VIP + MariaDB under Pacemaker; the
# primary guest's kernel is crashed and fenced (its qemu killed by the harness); before
# that, keepalived load-balances two real servers as LVS director on both guests.
# Prints guest boot, formation and DRBD fail-over times, fencing events and peak memory
# (PSS of the harness and both qemu processes); the same figures land in
# $CLUSTERSTACK_OUT/PROFILE/cluster-vm/vm-cluster-report.json. Needs root and a published
# repository (clusterstack publish); the first run builds the image (~5-10 min).
#   CLUSTERSTACK_OUT=/tmp/cs-vmout benchmarks/vm-cluster.sh [--profile NAME]
set -eu
cd "$(dirname "$0")/.."
CLI=${CLI:-.venv/bin/clusterstack}
start=$(date +%s)
status=0
"$CLI" verify --cluster --vm "$@" || status=$?
echo "wall time: $(( $(date +%s) - start )) s"
for report in "${CLUSTERSTACK_OUT:-out}"/*/cluster-vm/vm-cluster-report.json; do
    [ -f "$report" ] || continue
    echo "figures ($report):"
    .venv/bin/python - "$report" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"  accelerator       {r['accel']}")
print(f"  guest boot        {r['guest_boot_s']}")
print(f"  formation         {r['formation_s']} s")
print(f"  DRBD fail-over    {r['drbd_failover_s']} s  {r['failover']}")
if r.get("lvs_spread") or r.get("steps", {}).get("lvs directors"):
    print(f"  LVS spread        {r['lvs_spread']}")
    print(f"  LVS out of pool   {r['lvs_removal_s']} s  ({r['lvs_removal_failed']} failed before)")
    print(f"  LVS back in pool  {r['lvs_readd_s']} s")
    print(f"  LVS director move {r['lvs_failover_s']} s  ({r['lvs_failover_failed']} failed "
          f"requests, VIP moved in {r['lvs_vip_moved_s']} s)  {r['lvs_failover']}")
print(f"  peak memory       {r['peak_memory_mib']} MiB")
print(f"  result            {'PASS' if r['ok'] else 'FAIL: ' + str(r['error'])}")
PY
done
exit "$status"
