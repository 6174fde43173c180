"""The checks on the installed system, and the bond's fail-over time.

The shell is the autologin root shell on ttyS0 (shell.py); the fail-over is
timed from outside: a 20 ms ping from the switch's namespace to bond0 while
the monitor takes the active slave's link down.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from builder.base.command import Background
from builder.base.errors import ClusterStackError
from builder.buildroot.roots import SIGNED_BY

from . import qemu
from .shell import SerialShell

if TYPE_CHECKING:
    from .harness import InstallerReport, Run

# main-menu's own line: the template names (finish-install/...) are in the log from the
# moment the preseed is loaded, so they prove nothing.
FINISHED = "Menu item 'finish-install' selected"


def require_finished(console: Path, syslog: Path) -> None:
    """qemu also exits when the guest crashes or powers off: only a finished install counts."""
    text = syslog.read_text(errors="replace") if syslog.exists() else ""
    if FINISHED not in text:
        raise ClusterStackError(f"the installer stopped before finish-install "
                                f"(console: {console}, syslog: {syslog})")


def parse_bonding(text: str) -> dict[str, str]:
    """/proc/net/bonding/bond0: the active slave and each slave's MII status."""
    found: dict[str, str] = {}
    if m := re.search(r"^Currently Active Slave: (\S+)", text, re.M):
        found["active"] = m.group(1)
    for m in re.finditer(r"^Slave Interface: (\S+)\nMII Status: (\S+)", text, re.M):
        found[m.group(1)] = m.group(2)
    return found


def failover_seconds(ping_output: str, cut_at: float) -> float | None:
    """Seconds from the link cut until the first reply after the gap (ping -D lines)."""
    stamps = [float(m.group(1)) for m in re.finditer(r"^\[(\d+\.\d+)\] \d+ bytes from",
                                                    ping_output, re.M)]
    before = [t for t in stamps if t <= cut_at]
    after = [t for t in stamps if t > cut_at]
    if not before or not after:
        return None
    # a reply within one interval of the cut was in flight before it
    return max(0.0, after[0] - cut_at)


def lost_replies(ping_output: str, cut_at: float) -> int | None:
    """Echo requests lost across the cut: the icmp_seq numbers missing around it."""
    seqs = [(float(m.group(1)), int(m.group(2))) for m in re.finditer(
        r"^\[(\d+\.\d+)\] \d+ bytes from \S+ icmp_seq=(\d+)", ping_output, re.M)]
    before = [seq for t, seq in seqs if t <= cut_at]
    after = [seq for t, seq in seqs if t > cut_at]
    if not before or not after:
        return None
    return max(0, after[0] - before[-1] - 1)


@dataclass(frozen=True)
class Expected:
    """What the preseed asked for, to compare the installed system with."""

    repo_host: str                 # our repository as the installed system's apt sees it
    key_sha256: tuple[str, ...]    # the repository's public key files (.gpg, .asc)
    bond_address: str              # e.g. 192.0.2.10/24
    bond_mode: str
    slaves: tuple[str, ...]


def installed_from(policy: str, host: str) -> dict[str, bool]:
    """`apt-cache policy P...`: for each package, is its installed version one that
    `host` offers? (the `***` line's version table entries name their sources)"""
    found: dict[str, bool] = {}
    for block in re.split(r"^(?=\S+:$)", policy, flags=re.M):
        if not block.strip():
            continue
        name = block.split(":", 1)[0]
        table = block.split("Version table:", 1)[-1]
        mine = re.search(r"^ \*\*\* \S+ .*\n((?:        .*\n?)*)", table, re.M)
        found[name] = mine is not None and host in mine.group(1)
    return found


def interfaces_bond(text: str) -> dict[str, str]:
    """bond0's stanza of /etc/network/interfaces: option -> value."""
    stanza = re.search(r"^iface bond0 inet static\n((?:[ \t]+\S.*\n?)*)", text, re.M)
    if stanza is None:
        return {}
    return {k: v.strip() for k, _, v in (line.strip().partition(" ")
                                         for line in stanza.group(1).splitlines())}


def our_source_and_key(text: str, expected: Expected) -> tuple[bool, str]:
    """Our repository's apt line and the key apt trusts for it, from the sources lines
    naming our host, `==`, and `sha256sum` of the keyrings.  apt-setup writes
    `signed-by=/etc/apt/keyrings/<comment>.gpg` (trixie), so that file must be our key;
    a line without signed-by may use any key in trusted.gpg.d."""
    sources, _, keys = text.partition("==")
    digests = {ln.split()[-1]: ln.split()[0] for ln in keys.splitlines() if len(ln.split()) == 2}
    lines = [ln.strip() for ln in sources.splitlines()
             if f"http://{expected.repo_host}" in ln and not ln.lstrip().startswith("#")]
    if not lines:
        return False, f"no apt line for http://{expected.repo_host}"
    signed_by = SIGNED_BY.findall(" ".join(lines))
    candidates = signed_by or [p for p in digests if p.startswith("/etc/apt/trusted.gpg.d/")]
    ours = [p for p in candidates if digests.get(p) in expected.key_sha256]
    if not ours:
        return False, (f"{lines[0][:70]}; no key with our digest in "
                       f"{', '.join(candidates) or 'the keyrings'}")
    return True, f"{lines[0][:70]}; key {ours[0]}"


def _check(report: InstallerReport, name: str, ok: bool, detail: str = "") -> bool:
    report.checks[name] = "ok" if ok else f"failed{': ' + detail if detail else ''}"
    return ok


OURS = ("ubuntu-cluster", "pacemaker", "corosync", "crmsh", "resource-agents", "tasksel-data")


def run_checks(shell: SerialShell, run: Run, monitor: qemu.Monitor, report: InstallerReport,
               out: Path, expected: Expected) -> bool:
    rc, text = shell.run("dpkg-query -W -f='${Status} ${Version}' ubuntu-cluster")
    good = _check(report, "ubuntu-cluster installed", rc == 0 and "install ok installed" in text,
                  text.strip()[:80])
    rc, text = shell.run("tasksel --list-tasks")
    good &= _check(report, "tasksel: i cluster-node",
                   re.search(r"^i cluster-node\b", text, re.M) is not None,
                   next((ln for ln in text.splitlines() if "cluster-node" in ln), "not listed"))
    rc, text = shell.run("apt-cache policy " + " ".join(OURS))
    origin = installed_from(text, expected.repo_host)
    good &= _check(report, "our packages from our repository",
                   all(origin.get(p) for p in OURS),
                   "not ours: " + ", ".join(p for p in OURS if not origin.get(p)))
    rc, text = shell.run(f"grep -rh '{expected.repo_host}' /etc/apt/sources.list "
                         "/etc/apt/sources.list.d/ 2>/dev/null; echo ==; "
                         "sha256sum /etc/apt/keyrings/* /etc/apt/trusted.gpg.d/* 2>/dev/null")
    ok, detail = our_source_and_key(text, expected)
    good &= _check(report, "our apt source and key", ok, detail)
    rc, text = shell.run("systemctl list-unit-files corosync.service pacemaker.service "
                         "--no-legend --no-pager")
    good &= _check(report, "corosync/pacemaker units",
                   "corosync.service" in text and "pacemaker.service" in text, text.strip()[:80])
    rc, text = shell.run("systemctl is-active ssh chrony; systemctl is-enabled corosync pacemaker")
    states = text.split()
    good &= _check(report, "ssh, chrony active; corosync, pacemaker enabled",
                   states == ["active", "active", "enabled", "enabled"], " ".join(states))
    rc, text = shell.run("test -s /var/log/installer/syslog && echo kept")
    good &= _check(report, "installer syslog on disk", "kept" in text)
    rc, text = shell.run("cat /etc/network/interfaces")
    conf = interfaces_bond(text)
    want = {"address": expected.bond_address, "bond-mode": expected.bond_mode,
            "bond-slaves": " ".join(expected.slaves), "bond-primary": expected.slaves[0]}
    good &= _check(report, "bond0 configured as preseeded",
                   all(conf.get(k) == v for k, v in want.items()),
                   ", ".join(f"{k}={conf.get(k)!r}" for k, v in want.items() if conf.get(k) != v))
    rc, text = shell.run("dpkg-query -W -f='${db:Status-Abbrev}\\n' | grep -c '^ii'; "
                         "df -B1M --output=used / | tail -n 1")
    numbers = text.split()
    if len(numbers) == 2 and all(n.isdigit() for n in numbers):
        report.installed_packages, report.installed_mib = int(numbers[0]), int(numbers[1])
    bond = _wait_bond(shell, 60)
    slaves = [n for n in expected.slaves if bond.get(n) == "up"]
    rc, text = shell.run("ip -br link show bond0")
    good &= _check(report, "bond0 up, both slaves", " UP " in f" {text} " and len(slaves) == 2,
                   f"{text.strip()} slaves up: {slaves}")
    if not good:
        return False
    good &= _failover(shell, run, monitor, report, out, bond.get("active", ""))
    return good


def _wait_bond(shell: SerialShell, timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    bond: dict[str, str] = {}
    while time.monotonic() < deadline:
        _, text = shell.run("cat /proc/net/bonding/bond0 2>&1")
        bond = parse_bonding(text)
        if all(bond.get(n) == "up" for n in qemu.BOND_NICS):
            break
        time.sleep(2)
    return bond


def cut_active_link(run: Run, monitor: qemu.Monitor, active: str, out: Path, *,
                    before: float, after: float) -> tuple[float | None, int]:
    """Ping the bond from the switch every 20 ms while the active slave's link
    is cut: (seconds until replies resume, or None; replies lost)."""
    ping_log = out / "failover-ping.log"
    ping = Background([*run.network.prefix(), "ping", "-D", "-n", "-i", "0.02",
                       f"{run.plan.prefix}.10"], ping_log)
    try:
        time.sleep(before)
        cut = time.time()
        monitor.set_link(qemu.BOND_NETDEVS[qemu.BOND_NICS.index(active)], up=False)
        time.sleep(after)
    finally:
        ping.stop()
    pings = ping_log.read_text(errors="replace")
    return failover_seconds(pings, cut), lost_replies(pings, cut)


def _failover(shell: SerialShell, run: Run, monitor: qemu.Monitor, report: InstallerReport,
              out: Path, active: str) -> bool:
    if active not in qemu.BOND_NICS:
        return _check(report, "bond fail-over", False, f"active slave {active!r}")
    seconds, report.bond_lost_pings = cut_active_link(run, monitor, active, out,
                                                      before=3, after=8)
    _, text = shell.run("cat /proc/net/bonding/bond0")
    now_active = parse_bonding(text).get("active", "")
    if seconds is not None:
        report.bond_failover_s = round(seconds, 3)
    return _check(report, "bond fail-over", seconds is not None and now_active not in ("", active),
                  f"active {active} -> {now_active or 'none'}")
