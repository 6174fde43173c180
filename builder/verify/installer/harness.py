"""`run_installer`: trixie's real debian-installer, unattended, with our preseed; then the
installed disk booted and checked.

The pieces (switch namespace and taps, qemu's TCG flags, the step runner,
signal handling, teardown in `finally`, memory sampling) are the vm tier's
and the namespace tier's; what is new is the installer: its netboot image
and kernel check (netboot.py), our apt-cacher-ng (proxy.py), the preseed in
the initrd (initrd.py), debconf's stream watched for a stalled question
(watch.py) and the checks on the installed system (checks.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import lzma
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from builder.base.command import Background, Runner
from builder.base.errors import ClusterStackError
from builder.base.serve import serve
from builder.repo.publish import KEY_BASENAME
from builder.sources.upstream import UpstreamArchive
from builder.stack.profile import Profile
from builder.tree.preseed import Bond, Install, Mirror, Node, Preseed, Repository, render_preseed

from ..cluster.config import AddressPlan
from ..cluster.memory import PeakSampler
from ..cluster.report import finish_table
from ..cluster.steps import Steps, new_run_dir, signals_interrupt, uninterruptible
from ..cluster.vm.network import VmNetwork, tap_name
from . import checks, initrd, netboot, probe, qemu, view
from .proxy import AptCacher
from .shell import SerialShell
from .watch import DebconfWatch

log = logging.getLogger("clusterstack.installer")

GUEST_BOND_HOST = 10           # the installed node's bond0: 192.0.2.10/24
MACS = ("52:54:00:c5:01:03", "52:54:00:c5:01:04", "52:54:00:c5:01:05")
# The test's own login: root on ttyS0 without a password, for the checks only.
AUTOLOGIN = ("in-target sh -c 'mkdir -p /etc/systemd/system/serial-getty@ttyS0.service.d; "
             "printf \"%s\\n\" \"[Service]\" \"ExecStart=\" "
             "\"ExecStart=-/sbin/agetty --autologin root --noclear --keep-baud 115200 %I linux\" "
             "> /etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf'")
# The installer's syslog, live, on the second serial port: the stall watch reads
# debconf's lines in it, and a stalled install never reaches the disk, where its
# log would be kept. fd 3 is debconf's: a background child holding it open
# hangs the installer.
# The installer runs early_command once per preseed file it loads (the initrd's, then
# file-preseed's), hence the marker.
def early_command(bond_probe: bool = False) -> str:
    return ("sh -c '[ -e /tmp/cs-syslog-tail ] || { : > /tmp/cs-syslog-tail; "
            "(tail -n +1 -f /var/log/syslog > /dev/ttyS1 2>/dev/null < /dev/null 3>&- &);"
            f"{probe.START if bond_probe else ''} }}'")


class InstallerStalled(ClusterStackError):
    pass


@dataclass
class InstallerOptions:
    repo: Path
    output_dir: Path
    cache_dir: Path
    memory_mib: int = 1024
    cpus: int = field(default_factory=qemu.default_cpus)
    disk_gib: int = 20
    install_timeout: float = 4 * 3600.0
    stall_grace: float = 60.0
    boot_timeout: float = 900.0
    check_mirror: bool = True     # False only to diagnose (python -m builder.verify.installer)
    bond_probe: bool = False      # diagnosis: time the bond fail-over in the installer itself
    keep_disk: bool = False
    # diagnosis: skip the install, boot this kept disk (through an overlay) and check it
    installed_disk: Path | None = None


@dataclass
class InstallerReport:
    ok: bool = False
    netboot: str = ""
    kernel: str = ""
    installer_view: str = ""
    cpus: int | None = None
    install_s: float | None = None     # boot to power-off of a finished install
    installer_ran_s: float | None = None  # boot until it finished, stalled or was stopped
    downloaded_mib: float | None = None
    reached: str = ""
    stalled_question: str = ""
    boot_s: float | None = None
    checks: dict[str, str] = field(default_factory=dict)
    installed_packages: int | None = None
    installed_mib: int | None = None
    bond_failover_s: float | None = None
    bond_lost_pings: int | None = None  # of the 20 ms pings across the cut
    peak_memory_mib: float | None = None
    steps: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    syslog: str = ""
    output_dir: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def table(report: InstallerReport) -> str:
    rows = [
        ("netboot image", report.netboot or "-"),
        ("installer kernel", report.kernel or "-"),
        ("installer's udeb index", report.installer_view or "Debian's mirror as it is"),
        ("vCPUs (TCG threads)", "-" if report.cpus is None else str(report.cpus)),
        ("install wall time", _seconds(report.install_s)),
        ("installer ran", _seconds(report.installer_ran_s)),
        ("downloaded from Debian", "-" if report.downloaded_mib is None
         else f"{report.downloaded_mib:.1f} MiB"),
        ("installer reached", report.reached or "-"),
        *((("stalled on", report.stalled_question),) if report.stalled_question else ()),
        ("installed system boot", _seconds(report.boot_s)),
        ("installed system", "-" if report.installed_packages is None else
         f"{report.installed_packages} packages, {report.installed_mib} MiB used on /"),
        *((f"check {name}", state) for name, state in report.checks.items()),
        ("bond fail-over", "-" if report.bond_failover_s is None else
         f"{report.bond_failover_s:.3f} s ({report.bond_lost_pings} of the 20 ms pings lost)"),
        ("peak memory", "-" if report.peak_memory_mib is None
         else f"{report.peak_memory_mib:.0f} MiB"),
        ("installer syslog", report.syslog or "-"),
    ]
    return finish_table(rows, report)


def write_report(report: InstallerReport, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "installer-report.txt").write_text(table(report))
    (out / "installer-report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")


class Memory(PeakSampler):
    """PSS of the harness, qemu and our apt-cacher-ng."""

    def __init__(self, procs: list[Background]) -> None:
        super().__init__()
        self.procs = procs

    def extra_pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.running()]


def preseed_values(profile: Profile, plan: AddressPlan, bond_probe: bool = False) -> Preseed:
    del profile  # the template takes the suite and components from it
    repo = f"http://{qemu.REPO_ADDRESS}"
    return Preseed(
        node=Node(hostname="node1", domain="cluster.test", ssh_key=""),
        mirror=Mirror(hostname=f"{qemu.MIRROR_ADDRESS}:3142", directory="/debian",
                      security_host=f"{qemu.MIRROR_ADDRESS}:3142"),
        repository=Repository(url=f"{repo}/", key_url=f"{repo}/{KEY_BASENAME}.gpg"),
        bond=Bond(address=f"{plan.prefix}.{GUEST_BOND_HOST}/24", gateway=plan.bridge,
                  slaves=" ".join(qemu.BOND_NICS)),
        # qemu's restricted user network hands out no name server; none is needed
        install=Install(interface=qemu.INSTALL_NIC, nameservers="",
                        early_command=early_command(bond_probe),
                        late_commands=(AUTOLOGIN,)))


@dataclass
class Prepared:
    """What preflight found good: the image to boot and the installer's view."""

    choice: netboot.Choice
    preseed: str
    index: view.IndexView | None      # None: Debian's mirror as it is (diagnosis)
    release_text: str = ""


def preflight(options: InstallerOptions, profile: Profile, upstream: UpstreamArchive,
              packaging_dir: Path) -> Prepared:
    """Every bad input, before anything is started: one clear error each."""
    repo = options.repo
    release = repo / "dists" / profile.suite / "InRelease"
    if not release.is_file():
        raise netboot.InstallerInputError(
            f"no published repository at {repo} ({release} is missing; run "
            f"`clusterstack publish --profile {profile.name}` first)")
    key = repo / f"{KEY_BASENAME}.gpg"
    if not key.is_file():
        raise netboot.InstallerInputError(
            f"{key}: the repository has no public key, so the preseed would have none "
            "(apt-setup refuses an unsigned local repository)")
    values = preseed_values(profile, AddressPlan(), options.bond_probe)
    values.check()
    text = render_preseed(packaging_dir, profile, values)
    pins = netboot.load_pins()
    fetcher = upstream.fetcher
    options_ = netboot.candidates(upstream, pins.netboot)

    def unpack(candidate: netboot.Candidate) -> netboot.Netboot:
        return netboot.unpack(candidate, fetcher, options.cache_dir)

    if not options.check_mirror:   # diagnosis: the newest image, the mirror unchanged
        return Prepared(netboot.Choice(unpack(options_[0]), []), text, None)
    signed = upstream.releases[0]
    base = f"{signed.archive.uri}/dists/{signed.suite}"
    served = fetcher.fetch_fresh(f"{base}/{netboot.UDEB_INDEX}.xz",
                                 options.cache_dir / "view" / "mirror-Packages.xz")
    try:
        index_text = lzma.decompress(served.read_bytes()).decode("utf-8", "replace")
    except lzma.LZMAError as exc:
        raise netboot.InstallerInputError(
            f"{base}/{netboot.UDEB_INDEX}.xz: not xz ({exc})") from exc
    udebs = view.parse_index(index_text)
    digest = hashlib.sha256(served.read_bytes()).hexdigest()[:16]
    pool = view.PoolCheck(signed.archive.uri, options.cache_dir / "view" / f"pool-{digest}.json")
    pinned = {p.package: p for p in pins.udebs}
    log.info("installer view: checking %d udebs of %s in the pool", len(udebs), base)
    pool.check([*udebs, *(view.substitute(u, pinned[u.package]) for u in udebs
                          if u.package in pinned)])
    choice = netboot.choose(options_, unpack, view.kernel_available(udebs, pool.present))
    status = initrd.read_file(initrd.members(choice.image.initrd), "var/lib/dpkg/status",
                              choice.image.initrd).decode("utf-8", "replace")
    index = view.consistent_index(udebs, pool.present, view.installed_packages(status),
                                  choice.image.abi, pins.udebs)
    return Prepared(choice, text, index, signed.text)


def installer_initrd(prepared: Prepared, signed: view.SignedView | None, bond_probe: bool,
                     dest: Path) -> Path:
    """The image's initrd plus the preseed and, with a view, the keyring that trusts it."""
    image = prepared.choice.image
    files = {"preseed.cfg": prepared.preseed.encode()}
    if bond_probe:
        files[probe.SCRIPT_PATH] = probe.SCRIPT.encode()
    if signed is not None:
        debian = initrd.read_file(initrd.members(image.initrd), initrd.DEBIAN_KEYRING,
                                  image.initrd)
        # debian-archive-keyring-udeb's postinst links archive.gpg to Debian's keyring
        # only when there is none: this one is kept, and net-retriever and
        # debootstrap check with it.
        files[initrd.ARCHIVE_KEYRING] = debian + signed.public_key
    return initrd.with_files(image.initrd, files, dest)


class Run:
    """What is running, so that the teardown finds it whatever happened."""

    def __init__(self, run_dir: Path, runner: Runner, cache: Path) -> None:
        self.run_dir = run_dir
        self.runner = runner
        self.plan = AddressPlan()
        self.network = VmNetwork(runner, self.plan, run_dir / "switch.log")
        self.proxy = AptCacher(cache / "apt-cacher-ng")
        self.procs: list[Background] = []
        self.memory = Memory(self.procs)
        self.qemu: Background | None = None
        self.front: view.MirrorFront | None = None

    def start_view(self, prepared: Prepared, suite: str) -> view.SignedView | None:
        """The installer's view of the mirror, signed for this run, served in front of
        apt-cacher-ng; None (diagnosis) serves the mirror as it is."""
        if prepared.index is None:
            return None
        signed = view.sign_view(self.run_dir / "view", suite, prepared.release_text,
                                prepared.index.text(), self.runner)
        self.front = view.MirrorFront(signed.directory, "/debian", self.proxy.port,
                                      self.run_dir / "mirror-front.log")
        self.front.start()
        return signed

    def start_network(self) -> None:
        self.network.start()
        for index in range(2):
            self.network.add_tap(tap_name(index))

    def start_qemu(self, argv: list[str], name: str) -> Background:
        self.qemu = Background([*self.network.prefix(), *argv], self.run_dir / f"{name}.qemu.log")
        self.procs.append(self.qemu)
        return self.qemu

    def stop_qemu(self) -> None:
        if self.qemu is not None:
            self.qemu.stop(signal.SIGKILL, timeout=10)

    def teardown(self) -> list[str]:
        for proc in self.procs:
            proc.stop(signal.SIGKILL, timeout=10)
        self.memory.stop()
        if self.front is not None:
            self.front.stop()
        self.proxy.stop()
        self.network.stop()
        left = [f"qemu (pid {p.pid})" for p in self.procs if p.running()]
        if self.proxy.running():
            left.append("apt-cacher-ng")
        if self.front is not None and self.front.running():
            left.append("the mirror front's thread")
        if self.network.alive():
            left.append(f"switch namespace holder (pid {self.network.pid})")
        return left


def run_installer(options: InstallerOptions, profile: Profile, upstream: UpstreamArchive,
                  packaging_dir: Path) -> InstallerReport:
    """Install, boot, check. Bad input raises before anything starts; the rest is steps."""
    out = options.output_dir
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("installer-report.*"):
        stale.unlink()  # a bad input must not leave the last run's figures looking current
    report = InstallerReport(output_dir=str(out), cpus=options.cpus)
    if options.installed_disk is not None:
        if not options.installed_disk.is_file():
            raise netboot.InstallerInputError(f"{options.installed_disk}: no such disk image")
        return _check_kept_disk(options, report)
    prepared = preflight(options, profile, upstream, packaging_dir)
    image = prepared.choice.image
    report.netboot = prepared.choice.describe()
    report.kernel = image.abi
    if prepared.index is not None:
        report.installer_view = prepared.index.short()
        (out / "installer-view.txt").write_text(
            prepared.index.summary().replace("; ", "\n") + "\n")
    runner = Runner(log_path=out / "commands.log")
    step = Steps(report)
    run: Run | None = None
    with signals_interrupt(), contextlib.ExitStack() as held:
        try:
            run_dir = new_run_dir(options.cache_dir / "runs")
            run = Run(run_dir, runner, options.cache_dir)
            step("network", run.start_network)
            step("apt-cacher-ng", run.proxy.start)
            run.memory.start()
            if run.proxy.proc is not None:
                run.procs.append(run.proxy.proc)
            repo_url = held.enter_context(serve(options.repo))
            repo_port = int(repo_url.rsplit(":", 1)[1])
            (out / "cluster-node.preseed").write_text(prepared.preseed)
            signed = step("installer view", lambda: run.start_view(prepared, profile.suite))
            disk = run_dir / "node1.qcow2"
            started = step("install", lambda: _install(
                run, options, prepared, signed, repo_port, disk, report, out))
            if started is not None:
                report.install_s = round(started, 1)
            if not step.failed:
                step("boot installed", lambda: _boot_installed(run, options, disk, report, out))
            report.ok = not step.failed
        finally:
            _finish(run, report, out, keep_disk=options.keep_disk)
    return report


def _check_kept_disk(options: InstallerOptions, report: InstallerReport) -> InstallerReport:
    """Boot a disk an earlier run kept (an overlay over it, so it stays as installed)
    and run the installed-system checks."""
    out = options.output_dir
    runner = Runner(log_path=out / "commands.log")
    step = Steps(report)
    run: Run | None = None
    with signals_interrupt():
        try:
            run = Run(new_run_dir(options.cache_dir / "runs"), runner, options.cache_dir)
            step("network", run.start_network)
            run.memory.start()
            disk = run.run_dir / "node1.qcow2"
            kept = options.installed_disk
            step("overlay", lambda: runner.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b",
                                                 kept, "-F", "qcow2", disk]))
            step("boot installed", lambda: _boot_installed(run, options, disk, report, out))
            report.ok = not step.failed
        finally:
            # the disk here is an overlay over the kept one: never kept in its turn
            _finish(run, report, out, keep_disk=False)
    return report


def _finish(run: Run | None, report: InstallerReport, out: Path, *, keep_disk: bool) -> None:
    """The teardown of both runs, whatever happened; the report is written last."""
    with uninterruptible():
        if run is not None:
            run.memory.sample()
            if run.proxy.proc is not None:
                report.downloaded_mib = round(run.proxy.downloaded() / 2**20, 1)
            left = run.teardown()
            report.peak_memory_mib = round(run.memory.peak_kib / 1024, 1)
            for log_file in run.run_dir.glob("*.log"):
                shutil.copy(log_file, out / log_file.name)
            if keep_disk and (run.run_dir / "node1.qcow2").exists():
                shutil.move(run.run_dir / "node1.qcow2", out / "node1.qcow2")
            shutil.rmtree(run.run_dir, ignore_errors=True)
            report.steps["teardown"] = "failed: " + "; ".join(left) if left else "ok"
            report.ok = report.ok and not left
        write_report(report, out)


def _install(run: Run, options: InstallerOptions, prepared: Prepared,
             signed: view.SignedView | None, repo_port: int, disk: Path, report: InstallerReport,
             out: Path) -> float:
    """The installer from boot to its power-off; seconds. A stall raises, naming the question."""
    image = prepared.choice.image
    ird = installer_initrd(prepared, signed, options.bond_probe,
                           run.run_dir / "initrd-preseed.gz")
    run.runner.run(["qemu-img", "create", "-q", "-f", "qcow2", disk, f"{options.disk_gib}G"])
    console, syslog = run.run_dir / "installer-console.log", run.run_dir / "installer-syslog.log"
    mirror_port = run.front.port if run.front is not None else run.proxy.port
    forwards = [qemu.Forward(qemu.MIRROR_ADDRESS, 3142, mirror_port),
                qemu.Forward(qemu.REPO_ADDRESS, 80, repo_port)]
    argv = [*qemu.base_argv("installer", options.memory_mib, disk, run.run_dir / "monitor.sock",
                            options.cpus),
            "-kernel", str(image.kernel), "-initrd", str(ird),
            "-append", qemu.installer_cmdline(),
            *qemu.nic_argv(forwards, MACS, (tap_name(0), tap_name(1))),
            "-serial", f"file:{console}", "-serial", f"file:{syslog}"]
    started = time.monotonic()
    proc = run.start_qemu(argv, "installer")
    watch = DebconfWatch(grace_s=options.stall_grace)
    offset = 0
    report.syslog = str(out / "installer-syslog.log")
    try:
        while proc.running():
            now = time.monotonic()
            if syslog.exists():
                with open(syslog, "rb") as f:
                    f.seek(offset)
                    chunk = f.read()
                # only whole lines; a partial one is read again next time
                complete = chunk[:chunk.rfind(b"\n") + 1]
                offset += len(complete)
                for line in complete.decode("utf-8", "replace").splitlines():
                    watch.feed(line, now)
            report.reached = watch.position()
            if (stall := watch.stall(now)) is not None:
                report.stalled_question = ", ".join(stall.questions)
                if options.bond_probe:
                    try:
                        probe.measure(run, syslog, report, out)
                    except ClusterStackError as exc:
                        report.checks["bond fail-over in the installer"] = f"failed: {exc}"
                raise InstallerStalled(stall.describe(now) + f"; console: {out / console.name}")
            if now - started > options.install_timeout:
                raise InstallerStalled(f"the install did not finish in "
                                       f"{options.install_timeout:.0f} s ({watch.position()})")
            time.sleep(2)
    finally:
        report.installer_ran_s = round(time.monotonic() - started, 1)
        run.stop_qemu()
        for path in (console, syslog):
            if path.exists():
                shutil.copy(path, out / path.name)
    seconds = time.monotonic() - started
    if watch.commands == 0:
        raise ClusterStackError(f"the installer never started debconf (console: "
                                f"{out / console.name})")
    checks.require_finished(out / console.name, out / syslog.name)
    return seconds


def expected(options: InstallerOptions, run: Run) -> checks.Expected:
    keys = tuple(hashlib.sha256(path.read_bytes()).hexdigest()
                 for path in (options.repo / f"{KEY_BASENAME}.gpg",
                              options.repo / f"{KEY_BASENAME}.asc") if path.is_file())
    return checks.Expected(repo_host=qemu.REPO_ADDRESS, key_sha256=keys,
                           bond_address=f"{run.plan.prefix}.{GUEST_BOND_HOST}/24",
                           bond_mode="active-backup", slaves=qemu.BOND_NICS)


def _boot_installed(run: Run, options: InstallerOptions, disk: Path, report: InstallerReport,
                    out: Path) -> None:
    console_sock = run.run_dir / "console.sock"
    monitor = qemu.Monitor(run.run_dir / "monitor-installed.sock")
    argv = [*qemu.base_argv("node1", options.memory_mib, disk, monitor.path, options.cpus),
            *qemu.nic_argv([], MACS, (tap_name(0), tap_name(1))),
            "-chardev", f"socket,id=s0,path={console_sock},server=on,wait=off,"
            f"logfile={run.run_dir / 'installed-console.log'}",
            "-serial", "chardev:s0"]
    run.start_qemu(argv, "installed")
    shell = SerialShell(console_sock, out / "installed-shell.log")
    try:
        report.boot_s = round(shell.wait_prompt(options.boot_timeout), 1)
        found = checks.run_checks(shell, run, monitor, report, out, expected(options, run))
        if not found:
            raise ClusterStackError("failed checks: " + ", ".join(
                k for k, v in report.checks.items() if v != "ok"))
    finally:
        shell.close()
