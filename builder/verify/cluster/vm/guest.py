"""One qemu guest: its qemu command line, its lifecycle and its control channel.

qemu runs inside the private switch's network namespace (its tap is there),
as a `Background` so that it dies with the harness. The harness talks to the
guest's agent over a virtio-serial port bound to a unix socket on the host
(see guest_agent.py); commands run there are logged through `Runner.external`.
The serial console is only a log file here; the installer harness, whose
installed system has no agent of ours, talks to a console (installer/shell.py).
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import os
import select
import shlex
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from builder.base.command import Background, CommandError, Result, Runner

log = logging.getLogger("clusterstack.cluster")

CTL_PORT = "clusterstack.ctl"
FENCE_PORT = "clusterstack.fence"


class GuestError(RuntimeError):
    pass


@dataclass(frozen=True)
class GuestSpec:
    name: str
    address: str  # with its prefix length, e.g. 192.0.2.1/24
    mac: str
    tap: str
    kernel: Path
    initrd: Path
    disk: Path  # qcow2 overlay of the shared ext4 image
    drbd_disk: Path  # raw, this guest's own DRBD backing device
    run_dir: Path  # sockets and console log
    memory_mib: int = 768
    accel: str = "tcg"  # "tcg" or "kvm"
    shared_disk: Path | None = None  # raw, the same file in both guests (GFS2)

    @property
    def ctl_socket(self) -> Path:
        return self.run_dir / f"{self.name}.ctl.sock"

    @property
    def fence_socket(self) -> Path:
        return self.run_dir / f"{self.name}.fence.sock"

    @property
    def console_log(self) -> Path:
        return self.run_dir / f"{self.name}.console.log"


def kernel_cmdline(spec: GuestSpec, init: str) -> str:
    return (f"root=/dev/vda rw rootfstype=ext4 console=ttyS0 init={init} "
            f"cs.name={spec.name} cs.addr={spec.address} "
            # no reboot loop after a panic: a crashed guest stays down until fenced
            "panic=0 loglevel=4 quiet tsc=reliable")


def qemu_argv(spec: GuestSpec, init: str) -> list[str]:
    """The qemu command line of one guest (pure: no files are touched)."""
    if spec.accel == "kvm":
        accel = ["-accel", "kvm", "-cpu", "host"]
    else:
        # tb-size bounds the translation cache: without it a guest's qemu took ~1.5 GiB.
        accel = ["-accel", "tcg,thread=multi,tb-size=256", "-cpu", "max"]
    return [
        "qemu-system-x86_64", "-name", spec.name, *accel,
        "-m", str(spec.memory_mib), "-smp", "1", "-nodefaults", "-no-user-config",
        "-display", "none", "-vga", "none", "-no-reboot",
        "-kernel", str(spec.kernel), "-initrd", str(spec.initrd),
        "-append", kernel_cmdline(spec, init),
        # One -device per disk, in this order: the guest sees vda (root), vdb (DRBD), vdc
        # (shared), which the configuration names.
        *_disk("root", f"file={spec.disk},format=qcow2,cache=unsafe,discard=unmap"),
        *_disk("drbd", f"file={spec.drbd_disk},format=raw,cache=none,aio=threads"),
        *(_disk("shared", f"file={spec.shared_disk},format=raw,cache=none,aio=threads",
                "share-rw=on") if spec.shared_disk is not None else []),
        "-netdev", f"tap,id=net0,ifname={spec.tap},script=no,downscript=no",
        "-device", f"virtio-net-pci,netdev=net0,mac={spec.mac}",
        "-serial", f"file:{spec.console_log}",
        "-device", "virtio-serial-pci",
        "-chardev", f"socket,id=ctl,path={spec.ctl_socket},server=on,wait=off",
        "-device", f"virtserialport,chardev=ctl,name={CTL_PORT}",
        "-chardev", f"socket,id=fence,path={spec.fence_socket},server=on,wait=off",
        "-device", f"virtserialport,chardev=fence,name={FENCE_PORT}",
        "-monitor", "none",
    ]


def _disk(name: str, drive: str, *device: str) -> list[str]:
    return ["-drive", f"{drive},if=none,id={name}",
            "-device", ",".join(["virtio-blk-pci", f"drive={name}", f"serial=cs-{name}",
                                 *device])]


def mac_address(index: int) -> str:
    return f"52:54:00:c5:00:{index + 1:02x}"


class Guest:
    def __init__(self, spec: GuestSpec, runner: Runner, netns_prefix: list[str]) -> None:
        self.spec = spec
        self.runner = runner
        self.netns_prefix = netns_prefix
        self.proc: Background | None = None
        self.started_at: float | None = None
        self.boot_s: float | None = None
        self._sock: socket.socket | None = None
        self._buf = b""
        self._ids = itertools.count(1)
        self._lock = threading.Lock()  # one request on the wire at a time
        self._fence_thread: threading.Thread | None = None
        self.killed_by_fence = False

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self, init: str) -> None:
        self.spec.run_dir.mkdir(parents=True, exist_ok=True)
        self.started_at = time.monotonic()
        self.proc = Background([*self.netns_prefix, *qemu_argv(self.spec, init)],
                               self.spec.run_dir / f"{self.name}.qemu.log")

    def running(self) -> bool:
        return self.proc is not None and self.proc.running()

    def kill(self) -> None:
        """Power off: SIGKILL to qemu, as pulling the plug."""
        self.close()
        if self.proc is not None:
            self.proc.stop(signal.SIGKILL, timeout=10)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    # --- the control channel ----------------------------------------------------------

    def _connect(self, timeout: float) -> socket.socket:
        if self._sock is not None:
            return self._sock
        deadline = time.monotonic() + timeout
        while True:
            if not self.running():
                raise GuestError(f"{self.name}: qemu is not running "
                                 f"(see {self.spec.run_dir / (self.name + '.qemu.log')})")
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(str(self.spec.ctl_socket))
                self._sock = sock
                self._buf = b""
                return sock
            except OSError:
                sock.close()
                if time.monotonic() > deadline:
                    raise GuestError(f"{self.name}: no control socket") from None
                time.sleep(0.1)

    def _readline(self, sock: socket.socket, deadline: float) -> bytes | None:
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([sock], [], [], min(left, 1.0))
            if not ready:
                if not self.running():
                    raise GuestError(f"{self.name} went down")
                continue
            chunk = sock.recv(65536)
            if not chunk:
                self.close()
                raise GuestError(f"{self.name}: control channel closed")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line

    def request(self, request: dict, timeout: float) -> dict | None:
        """Send one request; its reply, or None when none came within `timeout`."""
        with self._lock:
            sock = self._connect(timeout=10)
            rid = next(self._ids)
            sock.sendall((json.dumps({**request, "id": rid}) + "\n").encode())
            deadline = time.monotonic() + timeout
            while True:
                line = self._readline(sock, deadline)
                if line is None:
                    return None
                try:
                    reply = json.loads(line)
                except ValueError:
                    continue
                if reply.get("id") == rid:  # older replies are of requests timed out
                    return reply

    def wait_agent(self, timeout: float) -> float:
        """Seconds from qemu's start until the agent answers; that is the boot time."""
        if self.started_at is None:
            raise GuestError(f"{self.name}: wait_agent before qemu was started")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.request({"argv": ["true"], "timeout": 5}, timeout=2) is not None:
                self.boot_s = time.monotonic() - self.started_at
                return self.boot_s
        raise GuestError(f"{self.name}: no answer from the guest agent in {timeout:.0f} s "
                         f"(console: {self.spec.console_log})")

    def run(self, argv: list[str], check: bool = True, timeout: float = 60,
            input: str | None = None) -> Result:
        """Run a command in the guest; logged by the runner as `name: argv`."""
        request = {"argv": argv, "timeout": timeout, "input": input or ""}
        reply: dict = {}

        def output() -> list[bytes]:
            got = self.request(request, timeout=timeout + 15)
            if got is None:
                got = {"rc": -9, "out": f"(no reply from {self.name} in {timeout + 15} s)"}
            reply.update(got)
            return [got.get("out", "").encode()]

        try:
            self.runner.external([f"{self.name}:", *argv], output(), lambda: reply["rc"])
        except CommandError as exc:
            if check:
                raise
            return Result(argv, exc.returncode, reply.get("out", ""), exc.stderr_tail)
        return Result(argv, 0, reply.get("out", ""), "")

    def sh(self, script: str, check: bool = True, timeout: float = 60) -> Result:
        return self.run(["sh", "-c", script], check=check, timeout=timeout)

    def spawn(self, argv: list[str], log_path: str) -> None:
        """Start a daemon in the guest and return at once."""
        log.info("[%s] %s &  (output: %s)", self.name, shlex.join(argv), log_path)
        reply = self.request({"argv": argv, "detach": True, "log": log_path}, timeout=30)
        if reply is None or reply.get("rc") != 0:
            raise GuestError(f"{self.name}: could not start {argv[0]}: {reply}")

    def put(self, path: str, data: str | bytes, mode: int = 0o644) -> None:
        if isinstance(data, str):
            data = data.encode()
        log.info("[%s] write %s (%d bytes)", self.name, path, len(data))
        reply = self.request({"put": path, "data": base64.b64encode(data).decode(),
                              "mode": f"{mode:o}"}, timeout=30)
        if reply is None or reply.get("rc") != 0:
            raise GuestError(f"{self.name}: could not write {path}: {reply}")

    # --- the fence channel ------------------------------------------------------------

    def serve_fence(self, handle: Callable[[dict], dict]) -> None:
        """Answer this guest's fence requests with `handle` (the FenceController's)."""
        def loop() -> None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            for _ in range(100):
                try:
                    sock.connect(str(self.spec.fence_socket))
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                log.warning("%s: no fence socket", self.name)
                return
            buf = b""
            with sock:
                while True:
                    try:
                        chunk = sock.recv(65536)
                    except OSError:
                        return
                    if not chunk:
                        return  # qemu is gone
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        try:
                            reply = handle(json.loads(line))
                        except ValueError as exc:
                            reply = {"ok": False, "error": f"bad request: {exc}"}
                        try:
                            sock.sendall((json.dumps(reply) + "\n").encode())
                        except OSError:
                            return

        self._fence_thread = threading.Thread(target=loop, name=f"fence-{self.name}",
                                              daemon=True)
        self._fence_thread.start()


def make_disks(runner: Runner, base_image: Path, overlay: Path, drbd_disk: Path,
               drbd_mib: int) -> None:
    """A qcow2 overlay of the shared ext4 image and a raw, zeroed DRBD backing disk."""
    runner.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                str(base_image), str(overlay)])
    with open(drbd_disk, "wb") as f:
        f.truncate(drbd_mib * 1024 * 1024)  # sparse: both sides read zeros, so no sync needed
    os.chmod(drbd_disk, 0o600)
