"""Diagnosis only: the bond fail-over measured inside the running installer.

When the install cannot complete (see the README: this host's mirror), the
installer's own kernel, Debian 13's 6.12 with its bonding module in the
initrd, still runs on the same three NICs. A script in the initrd (started
by the early_command) waits until netcfg is done with the NICs, bonds ens4
and ens5 as the preseed bonds them on the installed system (active-backup,
miimon 100, primary ens4, 192.0.2.10/24), and logs the active slave to
syslog, which reaches the host on the second serial port. The harness then
times the fail-over from outside, as on the installed system (checks.py).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from builder.base.errors import ClusterStackError

from . import checks, qemu

if TYPE_CHECKING:
    from .harness import InstallerReport, Run

SCRIPT_PATH = "cs-bond-probe.sh"
# netcfg takes every NIC down while it probes; after the mirror is chosen it is done.
SCRIPT = """#!/bin/sh
while ! grep -q "Menu item 'choose-mirror' selected" /var/log/syslog; do sleep 2; done
modprobe bonding max_bonds=0
echo +bond0 > /sys/class/net/bonding_masters
echo active-backup > /sys/class/net/bond0/bonding/mode
echo 100 > /sys/class/net/bond0/bonding/miimon
for nic in ens4 ens5; do
    ip link set "$nic" down
    echo "+$nic" > /sys/class/net/bond0/bonding/slaves
done
echo ens4 > /sys/class/net/bond0/bonding/primary
ip link set bond0 up
ip addr add 192.0.2.10/24 dev bond0
logger -t cs-bond "bond0 up, slaves $(cat /sys/class/net/bond0/bonding/slaves)"
last=
while :; do
    now=$(cat /sys/class/net/bond0/bonding/active_slave)
    [ "$now" = "$last" ] || logger -t cs-bond "active slave ${now:-none}"
    last=$now
    sleep 0.1
done
"""
START = (f" [ ! -e /{SCRIPT_PATH} ] || (sh /{SCRIPT_PATH} > /dev/null 2>&1 < /dev/null "
         "3>&- &);")
ACTIVE = re.compile(r"cs-bond: active slave (\S+)")


def active_slave(syslog_text: str) -> str:
    found = ACTIVE.findall(syslog_text)
    return found[-1] if found else ""


def measure(run: Run, syslog: Path, report: InstallerReport, out: Path,
            timeout: float = 300) -> None:
    """Cut the active slave's link; the fail-over time goes into the report."""
    deadline = time.monotonic() + timeout
    while "cs-bond: bond0 up" not in syslog.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise ClusterStackError(f"the bond probe did not start in the installer "
                                    f"({syslog})")
        time.sleep(2)
    time.sleep(3)  # the first slave's link and the bridge's MAC learning settle
    active = active_slave(syslog.read_text(errors="replace"))
    if active not in qemu.BOND_NICS:
        raise ClusterStackError(f"bond probe: no active slave ({active!r})")
    monitor = qemu.Monitor(run.run_dir / "monitor.sock")
    seconds, report.bond_lost_pings = checks.cut_active_link(run, monitor, active, out,
                                                             before=5, after=10)
    after = active_slave(syslog.read_text(errors="replace"))
    ok = seconds is not None and after not in ("", active)
    report.checks["bond fail-over in the installer"] = (
        "ok" if ok else f"failed: active {active} -> {after or 'none'}, "
        f"{'no reply after the cut' if seconds is None else f'{seconds:.3f} s'}")
    if seconds is not None:
        report.bond_failover_s = round(seconds, 3)
