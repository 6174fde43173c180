"""`run_vm_cluster`: two qemu guests, DRBD + MariaDB under Pacemaker, a crash fail-over.

The steps, the signal handling and the teardown-in-`finally` are the namespace
tier's (builder/verify/cluster/harness.py); what differs is what a node is.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from builder.base.command import Runner

from ..config import AddressPlan, node_name
from ..fencing import FenceController, FenceTarget
from ..harness import record_teardown, remove_run_dir
from ..memory import PeakSampler
from ..options import DEFAULT_CACHE, DEFAULT_MIRROR, FenceEvent
from ..report import finish_table
from ..scenarios import ScenarioError
from ..steps import Steps, new_run_dir, signals_interrupt, uninterruptible
from . import lvs, scenario
from .guest import Guest, GuestSpec, mac_address, make_disks
from .image import GUEST_INIT_PATH, Image, ensure_image, vm_root_spec
from .network import VmNetwork, tap_name

log = logging.getLogger("clusterstack.cluster")

GUESTS = 2  # two_node: 1; the kernel tier is about DRBD between two guests

# Seconds from the end of the fail-over (MariaDB answers on the survivor, so the crashed
# guest was fenced) until a GFS2 write there reads back. From the crash it was 38.2 s and
# 57.9 s on 2026-12-01 (fail-over 37.2 s and 56.0 s) and 130.9 s on 2026-12-02 (fail-over
# 129.0 s on a host running three TCG guests): the fail-over varies with the host, the
# GFS2 part stayed at 1-2 s. With Debian's dlm 4.3.0-3 it never comes (dlm_stonith cannot
# load libstonithd), which is what the limit is for.
GFS2_RECOVERY_LIMIT = 120.0


@dataclass
class VmOptions:
    suite: str = "trixie"
    mirror: str = DEFAULT_MIRROR
    extra_sources: list[str] = field(default_factory=list)
    extra_keys: list[Path] = field(default_factory=list)
    output_dir: Path = Path("out/cluster-vm")
    cache_dir: Path = DEFAULT_CACHE
    work_dir: Path | None = None  # each run's overlays and DRBD disks; None: cache_dir/runs
    accel: str = "auto"  # "auto": KVM only if a probe boots the kernel with it, else TCG
    memory_mib: int = 768
    drbd_mib: int = 256
    # DLM + GFS2 on a disk shared by both guests, mounted on both (before the crash)
    gfs2: bool = True
    gfs2_mib: int = 256
    # after the crash of one guest: seconds until GFS2 on the survivor must take a write and
    # read it back (see GFS2_RECOVERY_LIMIT)
    gfs2_recovery_limit: float = 0.0
    # keepalived as LVS director on both guests, two real servers and a client on the
    # switch (lvs.py): spread, health-check removal and re-add, director fail-over
    lvs: bool = True
    token_ms: int = 1000
    boot_timeout: float = 300.0
    step_timeout: float = 300.0

    def __post_init__(self) -> None:
        if self.accel not in ("auto", "tcg", "kvm"):
            raise ValueError("accel must be auto, tcg or kvm")
        self.output_dir = Path(self.output_dir)
        self.cache_dir = Path(self.cache_dir)
        self.extra_keys = [Path(k) for k in self.extra_keys]
        if self.gfs2_recovery_limit <= 0:
            self.gfs2_recovery_limit = GFS2_RECOVERY_LIMIT

    @property
    def runs_dir(self) -> Path:
        """Where each run's overlays and DRBD disks go: work_dir, by default CACHE/runs."""
        return Path(self.work_dir) if self.work_dir else self.cache_dir / "runs"


@dataclass
class VmReport:
    ok: bool = False
    guests: int = GUESTS
    guests_up: int = 0
    accel: str = ""
    image_build_s: float | None = None
    guest_boot_s: dict[str, float] = field(default_factory=dict)
    formation_s: float | None = None
    drbd_failover_s: float | None = None
    gfs2_mount_s: float | None = None  # from its configuration until mounted on both guests
    gfs2_recovery_s: float | None = None  # crash until a GFS2 write on the survivor reads back
    gfs2_after_failover_s: float | None = None  # the part of it after the fail-over
    # after an empty nodes section replaced the survivor's, until its fencer has the device
    fence_reregistration_s: float | None = None
    failover: dict[str, str] = field(default_factory=dict)  # from, to
    # LVS (VmOptions.lvs): answers per real server of lvs.SPREAD_REQUESTS through the VIP
    lvs_spread: dict[str, int] = field(default_factory=dict)
    # a real server's HTTP server stopped until the active director's pool lacks it, and
    # the client's requests that failed meanwhile (none may fail after it)
    lvs_removal_s: float | None = None
    lvs_removal_failed: int | None = None
    lvs_readd_s: float | None = None  # started again until back in the pool
    # the master director's keepalived stopped until the client is answered again, the
    # client's failed requests meanwhile, and until the backup held the VIP
    lvs_failover_s: float | None = None
    lvs_failover_failed: int | None = None
    lvs_vip_moved_s: float | None = None
    lvs_failover: dict[str, str] = field(default_factory=dict)  # from, to
    peak_memory_mib: float | None = None
    fencing_events: list[FenceEvent] = field(default_factory=list)
    steps: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    output_dir: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def table(report: VmReport) -> str:
    """The report for people, laid out as the namespace tier's."""
    events = ", ".join(f"{e.action} {e.node} by {e.requested_by} at {e.at:.1f} s: {e.result}"
                       for e in report.fencing_events) or "none"
    boots = ", ".join(f"{n} {s:.1f} s" for n, s in sorted(report.guest_boot_s.items()))
    move = (f"  ({report.failover['from']} -> {report.failover['to']})"
            if report.failover else "")
    rows = [
        ("guests up", f"{report.guests_up}/{report.guests}"),
        ("accelerator", report.accel or "-"),
        ("image build", _seconds(report.image_build_s)),
        ("guest boot", boots or "-"),
        ("formation time", _seconds(report.formation_s)),
        ("service", "DRBD + Filesystem + VIP + MariaDB"),
        ("DRBD fail-over, guest crashed", _seconds(report.drbd_failover_s) + move),
        ("GFS2 mounted on both", _seconds(report.gfs2_mount_s)),
        ("GFS2 write + read after crash", _seconds(report.gfs2_recovery_s) + (
            "" if report.gfs2_after_failover_s is None
            else f"  ({report.gfs2_after_failover_s:.1f} s after the fail-over)")),
        ("fence device back after <nodes/>", _seconds(report.fence_reregistration_s)),
        *lvs_rows(report),
        ("fencing events", f"{len(report.fencing_events)} ({events})"),
        ("peak memory", "-" if report.peak_memory_mib is None
         else f"{report.peak_memory_mib:.0f} MiB"),
    ]
    return finish_table(rows, report)


def lvs_rows(report: VmReport) -> list[tuple[str, str]]:
    """The LVS figures: spread, pool removal and re-add, director fail-over."""
    spread = ", ".join(f"{name} {n}" for name, n in sorted(report.lvs_spread.items()))
    removal = _seconds(report.lvs_removal_s)
    if report.lvs_removal_failed is not None:
        removal += (f"  ({report.lvs_removal_failed} failed requests before, "
                    "none after)")
    failover = _seconds(report.lvs_failover_s)
    if report.lvs_failover_failed is not None:
        failover += f", {report.lvs_failover_failed} failed requests"
    if report.lvs_vip_moved_s is not None:
        failover += f", VIP moved in {report.lvs_vip_moved_s:.1f} s"
    if report.lvs_failover:
        failover += f"  ({report.lvs_failover['from']} -> {report.lvs_failover['to']})"
    return [
        (f"LVS spread, {lvs.SPREAD_REQUESTS} requests", spread or "-"),
        ("LVS real server out of pool", removal),
        ("LVS real server back in pool", _seconds(report.lvs_readd_s)),
        ("LVS director fail-over", failover),
    ]


def write_report(report: VmReport, output_dir: Path) -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "vm-cluster-report.txt").write_text(table(report))
    path = output_dir / "vm-cluster-report.json"
    path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return path


def probe_kvm(image: Image, runner: Runner, run_dir: Path) -> bool:
    """Can this host's KVM boot the guests' kernel? (PVM's cannot: emulation failure while
    the kernel unpacks.) The probe boots to the root mount and stops at the panic."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    # Up to 20 s each time: the answer is kept next to the image, whose kernel it is about.
    cached = image.disk.parent / "kvm-probe"
    if cached.exists():
        return cached.read_text().strip() == "kvm"
    console = run_dir / "kvm-probe.console.log"
    runner.run(["timeout", "20", "qemu-system-x86_64", "-accel", "kvm", "-cpu", "host",
                "-m", "256", "-smp", "1", "-nodefaults", "-display", "none", "-no-reboot",
                "-kernel", str(image.kernel), "-initrd", str(image.initrd),
                "-append", "console=ttyS0 panic=-1 root=/dev/nonexistent rootdelay=0",
                "-serial", f"file:{console}"], check=False, timeout=40)
    text = console.read_text(errors="replace") if console.exists() else ""
    works = "Linux version" in text and ("Kernel panic" in text or "initramfs" in text)
    cached.write_text("kvm\n" if works else "tcg\n")
    return works


class MemoryWatch(PeakSampler):
    """Peak PSS of the harness plus every qemu process, sampled each second."""

    def __init__(self, guests: list[Guest]) -> None:
        super().__init__()
        self.guests = guests

    def extra_pids(self) -> list[int]:
        return [g.pid for g in self.guests if g.running() and g.pid is not None]


class VmCluster:
    """The running pieces, so that the teardown finds whatever was started."""

    def __init__(self, run_dir: Path, runner: Runner, plan: AddressPlan) -> None:
        self.run_dir = run_dir
        self.runner = runner
        self.plan = plan
        self.network = VmNetwork(runner, plan, run_dir / "switch.log")
        self.guests: list[Guest] = []
        self.controller = FenceController(run_dir / "fence")
        self.memory = MemoryWatch(self.guests)
        self.lvs_lab: lvs.LvsLab | None = None  # the LVS step's real servers and client

    def boot(self, image: Image, options: VmOptions, accel: str) -> dict[str, float]:
        self.network.start()
        self.controller.start()  # its unix socket is unused; its handle() serves the guests
        self.memory.start()
        shared = None
        if options.gfs2:
            shared = self.run_dir / "shared.img"
            with open(shared, "wb") as f:
                f.truncate(options.gfs2_mib * 1024 * 1024)
        for index in range(GUESTS):
            name = node_name(index)
            spec = GuestSpec(
                name=name, address=f"{self.plan.node(index)}/24", mac=mac_address(index),
                tap=tap_name(index), kernel=image.kernel, initrd=image.initrd,
                disk=self.run_dir / f"{name}.qcow2", drbd_disk=self.run_dir / f"{name}.drbd.img",
                run_dir=self.run_dir, memory_mib=options.memory_mib, accel=accel)
            make_disks(self.runner, image.disk, spec.disk, spec.drbd_disk, options.drbd_mib)
            if shared is not None:
                spec = replace(spec, shared_disk=shared)
            self.network.add_tap(spec.tap)
            guest = Guest(spec, self.runner, self.network.prefix())
            self.guests.append(guest)
            self.controller.add(FenceTarget(name, guest.running, guest.kill))
        for guest in self.guests:
            guest.start(GUEST_INIT_PATH)
            guest.serve_fence(self.controller.handle)
        return {g.name: round(g.wait_agent(options.boot_timeout), 1) for g in self.guests}

    def live(self) -> list[Guest]:
        return [g for g in self.guests if g.running()]

    def teardown(self, logs: Path) -> list[str]:
        """Kill every qemu, the switch and the controller; what is left behind, if anything."""
        left: list[str] = []
        if self.lvs_lab is not None:
            self.lvs_lab.stop()  # before the switch: its ports are on the bridge
            left += self.lvs_lab.leftovers()
            with contextlib.suppress(OSError):
                self.lvs_lab.copy_logs(logs / "lvs")
        for guest in self.guests:
            with contextlib.suppress(Exception):  # logs are worth less than the teardown
                scenario.collect_guest_logs(guest, logs / guest.name)
        for guest in self.guests:
            guest.kill()
        self.memory.stop()
        self.network.stop()
        self.controller.stop()
        logs.mkdir(parents=True, exist_ok=True)
        for path in self.run_dir.glob("*.log"):
            shutil.copy(path, logs / path.name)  # consoles, qemu's and the switch's output
        left += [f"qemu of {g.name} (pid {g.pid})" for g in self.guests if g.running()]
        if self.network.alive():
            left.append(f"switch namespace holder (pid {self.network.pid})")
        return left


def run_vm_cluster(options: VmOptions) -> VmReport:
    """Run the kernel tier; the report says whether it passed.

    Nothing is left behind (qemu processes, the namespace, the images of the run),
    also after a failure, Ctrl-C or SIGTERM (which are re-raised once torn down).
    """
    out = options.output_dir
    out.mkdir(parents=True, exist_ok=True)
    runner = Runner(log_path=out / "commands.log")
    report = VmReport(output_dir=str(out))
    step = Steps(report)
    cluster: VmCluster | None = None
    run_dir: Path | None = None
    plan = AddressPlan()
    timeout = options.step_timeout
    with signals_interrupt(), contextlib.ExitStack() as held:
        try:
            spec = vm_root_spec(options.suite, options.mirror, options.extra_sources,
                                options.extra_keys)
            image = step("image", lambda: held.enter_context(
                ensure_image(spec, options.cache_dir, runner)))
            if image is None:
                return report
            report.image_build_s = round(image.seconds, 1)
            run_dir = new_run_dir(options.runs_dir)
            accel = options.accel
            if accel == "auto":
                accel = "kvm" if probe_kvm(image, runner, run_dir) else "tcg"
            report.accel = accel
            cluster = VmCluster(run_dir, runner, plan)
            boots = step("boot", lambda: cluster.boot(image, options, accel))
            if boots is not None:
                report.guest_boot_s = boots
            guests = cluster.guests
            report.guests_up = len(cluster.live())
            authkey = secrets.token_bytes(256)
            step("configure", lambda: scenario.configure(guests, plan, authkey,
                                                          options.token_ms))
            step("drbd", lambda: scenario.prepare_drbd(guests, timeout))
            started = step("start daemons", lambda: scenario.start_daemons(guests, timeout))
            formed = step("formation", lambda: scenario.formation(guests, started, timeout))
            if formed is not None:
                report.formation_s = round(formed, 1)
            client = scenario.SqlClient(runner, cluster.network.prefix(), image.root_tree, plan)
            step("service", lambda: scenario.start_service(guests, client, plan, timeout))
            if options.gfs2:
                mounted = step("gfs2", lambda: scenario.start_gfs2(guests, timeout))
                if mounted is not None:
                    report.gfs2_mount_s = round(mounted, 1)
            if options.lvs:
                _lvs_steps(step, cluster, report, timeout)
            move = step("drbd fail-over", lambda: scenario.kill_failover(
                guests, client, cluster.controller.events, timeout))
            if move is not None:
                report.drbd_failover_s = round(move.seconds, 1)
                report.failover = {"from": move.source, "to": move.target}
            survivor = (next(g for g in guests if g.name == move.target)
                        if move is not None else None)
            if options.gfs2:
                recovered = step("gfs2 after crash", lambda: _gfs2_after_crash(
                    survivor, move, options.gfs2_recovery_limit))
                if recovered is not None:
                    report.gfs2_recovery_s = round(recovered.seconds, 1)
                    report.gfs2_after_failover_s = round(recovered.after_failover, 1)
            # Last: on Pacemaker 3.0.0 it leaves the survivor's fencer without its device.
            again = step("fence device re-registration", lambda: _fence_reregistration(
                survivor, timeout))
            if again is not None:
                report.fence_reregistration_s = round(again, 1)
            # failures, not failed: a failed LVS step lets the others run (see _lvs_steps)
            report.ok = step.failures == 0
        finally:
            with uninterruptible():
                _teardown(cluster, run_dir, report, out)
    return report


def _lvs_steps(step: Steps, cluster: VmCluster, report: VmReport, timeout: float) -> None:
    """keepalived as LVS director on both guests (lvs.py), before the crash (it needs both).

    The load balancing shares nothing with Pacemaker, DRBD or GFS2: when one of its steps
    fails, the steps after this block still run (as the namespace tier's harness goes on
    after a failed fault scenario), and the run fails all the same. Its host side is
    stopped here, and again by the teardown.
    """
    failed_before = step.failed
    guests = cluster.guests
    plan = lvs.LvsPlan.on(cluster.plan)
    cluster.lvs_lab = lab = lvs.LvsLab(cluster.runner, cluster.network, plan, cluster.run_dir)
    victim = plan.real_servers[-1].name
    directors = step("lvs directors", lambda: lvs.start_lvs(guests, lab, timeout))
    counts = step("lvs spread", lambda: lvs.measure_spread(lab))
    if counts is not None:
        report.lvs_spread = counts
    removed = step("lvs real server removed", lambda: lvs.real_server_removed(
        guests, lab, directors, victim, timeout))
    if removed is not None:
        report.lvs_removal_s = round(removed.seconds, 1)
        report.lvs_removal_failed = removed.failed_before
    back = step("lvs real server re-added", lambda: lvs.real_server_readded(
        guests, lab, directors, victim))
    if back is not None:
        report.lvs_readd_s = round(back.seconds, 1)
    moved = step("lvs director fail-over", lambda: lvs.director_failover(
        guests, lab, directors, timeout))
    if moved is not None:
        report.lvs_failover_s = round(moved.seconds, 1)
        report.lvs_failover_failed = moved.failed
        report.lvs_vip_moved_s = round(moved.vip_moved_s, 1)
        report.lvs_failover = {"from": moved.source, "to": moved.target}
    if not failed_before:  # also after a half-done start: keepalived may run on one guest
        lvs.stop_directors(guests)
    lab.stop()
    if step.failed and not failed_before:
        step.resume()


def _gfs2_after_crash(survivor: Guest | None, move: scenario.VmFailover | None,
                      limit: float) -> scenario.Gfs2Recovery:
    """GFS2 on the survivor after the crash and the fencing, as a pass/fail step."""
    if survivor is None or move is None:
        raise ScenarioError("no fail-over to recover GFS2 after")
    return scenario.gfs2_after_crash(survivor, move.crashed_at, limit)


def _fence_reregistration(survivor: Guest | None, timeout: float) -> float:
    if survivor is None:
        raise ScenarioError("no surviving guest")
    return scenario.fence_device_reregistered(survivor, min(timeout, 90))


def _teardown(cluster: VmCluster | None, run_dir: Path | None, report: VmReport,
              out: Path) -> None:
    if cluster is not None:
        cluster.memory.sample()
        leftovers = cluster.teardown(out / "logs")
        record_teardown(report, leftovers, cluster.controller, cluster.memory)
    if run_dir is not None:
        remove_run_dir(run_dir)
    write_report(report, out)
