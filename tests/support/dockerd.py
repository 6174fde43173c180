"""A private Docker engine for tests: its own data root, exec root, socket and pid file.

Started with --bridge=none and --iptables=false, so it adds no bridge and no
firewall rule to the host; build containers use the host network.

Stopping it leaves nothing behind: dockerd is sent SIGTERM (SIGKILL after a
grace period), then any process still running from its exec root (containerd,
shims) is killed, and the mounts dockerd leaves under its exec root (it
bind-mounts the host's network namespace at netns/default and does not undo
that on shutdown) are detached before the exec root is removed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

START_TIMEOUT = 60
STOP_TIMEOUT = 30


class NoEngine(Exception):
    pass


def _ping(sock: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(str(sock))
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = s.recv(4096)
    except OSError:
        return False
    return reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n", 1)[0]


def _mounts_under(path: Path) -> list[str]:
    """Mount points at or below `path`, deepest first."""
    prefix = str(path)
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def _processes_using(path: Path) -> list[int]:
    """Pids whose command line names `path` (containerd and shims of this engine only)."""
    needle = str(path).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with suppress(OSError):
            if needle in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
    return pids


def exec_root_of(docker_host: str) -> Path:
    """The exec root of the engine private_dockerd() yielded `docker_host` for."""
    return Path(docker_host.removeprefix("unix://")).parent


def engine_processes(exec_root: Path) -> list[int]:
    return [p for p in _processes_using(exec_root) if p != os.getpid()]


def _stop(proc: subprocess.Popen[bytes], exec_root: Path) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # containerd runs in its own process group; normally dockerd stops it.
    deadline = time.monotonic() + 10
    while engine_processes(exec_root) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in engine_processes(exec_root):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for point in _mounts_under(exec_root):
        subprocess.run(["umount", "--lazy", point], check=False)
    shutil.rmtree(exec_root, ignore_errors=True)


@contextmanager
def private_dockerd(base: Path) -> Iterator[str]:
    """Yield a DOCKER_HOST url for a dockerd that lives as long as the context.

    Raises NoEngine (before yielding) if no engine can be started here.
    """
    if not shutil.which("dockerd"):
        raise NoEngine("dockerd is not installed (Debian package docker.io)")
    if os.geteuid() != 0:
        raise NoEngine("dockerd needs root")
    base.mkdir(parents=True, exist_ok=True)
    # The exec root holds unix sockets: keep its path short.
    exec_root = Path(tempfile.mkdtemp(prefix="csd-", dir="/run"))
    sock = exec_root / "docker.sock"
    log_path = base / "dockerd.log"
    with open(log_path, "wb") as log:
        try:
            proc = subprocess.Popen(
                ["dockerd", "--data-root", str(base / "data"), "--exec-root", str(exec_root),
                 "--pidfile", str(exec_root / "dockerd.pid"), "-H", f"unix://{sock}",
                 "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        except OSError as exc:
            shutil.rmtree(exec_root, ignore_errors=True)
            raise NoEngine(f"dockerd could not be run: {exc}") from exc
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not _ping(sock):
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-1500:]
                    raise NoEngine(f"dockerd did not start (see {log_path}):\n{tail}")
                time.sleep(0.2)
            yield f"unix://{sock}"
        finally:
            _stop(proc, exec_root)
