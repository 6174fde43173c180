"""A private Docker engine for tests: its own data root, socket and pid file.

Started with --bridge=none and --iptables=false, so it adds no bridge and no
firewall rule to the host; build containers use the host network.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class NoEngine(Exception):
    pass


@contextmanager
def private_dockerd(base: Path) -> Iterator[str]:
    """Yield a DOCKER_HOST url for a dockerd that lives as long as the context."""
    if not shutil.which("dockerd"):
        raise NoEngine("dockerd is not installed (Debian package docker.io)")
    base.mkdir(parents=True, exist_ok=True)
    # The exec root holds unix sockets: keep its path short.
    exec_root = Path(f"/run/csd-{os.getpid()}")
    sock = exec_root / "docker.sock"
    log = open(base / "dockerd.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        ["dockerd", "--data-root", str(base / "data"), "--exec-root", str(exec_root),
         "--pidfile", str(exec_root / "dockerd.pid"), "-H", f"unix://{sock}",
         "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (base / "dockerd.log").read_text()[-1500:]
                raise NoEngine(f"dockerd did not start:\n{tail}")
            time.sleep(0.2)
        yield f"unix://{sock}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(exec_root, ignore_errors=True)
