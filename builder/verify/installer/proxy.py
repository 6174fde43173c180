"""Our own apt-cacher-ng: the installer's only way to Debian's mirror.

Not the system service (the package is installed with it disabled): an
instance with its own configuration, cache and logs under
CACHE/installer/apt-cacher-ng/, listening on 127.0.0.1 only and stopped by
its pid after the run. Its cache survives runs, so a rerun downloads again
only what Debian changed. The guest uses it as a mirror (`/debian`,
`/debian-security` remapped to deb.debian.org), not as an HTTP proxy: that
keeps our repository, also on loopback, off the proxy, which refuses to
forward to its own host.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path

from builder.base.command import Background
from builder.base.errors import ClusterStackError

# apt-cacher-ng 3.7 reads its port as a signed 16-bit number: 32768 and up fail
# with "Error resolving address for binding".
PORTS = range(23142, 32000, 97)


def free_port(candidates: range = PORTS) -> int:
    for port in candidates:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise ClusterStackError("no free port below 32768 on 127.0.0.1 for apt-cacher-ng")


def config(base: Path, port: int, upstream: str, security: str) -> str:
    return "\n".join([
        f"CacheDir: {base / 'cache'}",
        f"LogDir: {base / 'log'}",
        "SupportDir: /usr/lib/apt-cacher-ng",
        f"Port: {port}",
        "BindAddress: 127.0.0.1",
        f"SocketPath: {base / 'acng.socket'}",
        f"PidFile: {base / 'acng.pid'}",
        # The shipped remap lists try ftp.debian.org, which does not resolve here.
        "Remap-debrep: /debian ; file:backends_debian",
        "Remap-secdeb: /debian-security ; file:backends_debsec",
        "ExThreshold: 4",
        "",
    ]) + f"# upstreams: {upstream} {security}\n"


def downloaded_bytes(log_text: str) -> int:
    """What apt-cacher-ng fetched from upstream: the `I` (incoming) lines of its log."""
    total = 0
    for line in log_text.splitlines():
        fields = line.split("|")
        if len(fields) >= 3 and fields[1] == "I" and fields[2].isdigit():
            total += int(fields[2])
    return total


# The remaps of config(): the path a client asked for, by the log's backend name.
BACKENDS = {"debrep": "debian", "secdeb": "debian-security"}


def served_paths(log_text: str) -> list[str]:
    """The client-side paths of every file the proxy served (its `O` lines), once each."""
    seen: dict[str, None] = {}
    for line in log_text.splitlines():
        fields = line.split("|")
        if len(fields) >= 5 and fields[1] == "O":
            backend, _, rest = fields[4].partition("/")
            if backend in BACKENDS and rest:
                seen.setdefault(f"{BACKENDS[backend]}/{rest}", None)
    return list(seen)


@dataclass
class AptCacher:
    base: Path
    upstream: str = "http://deb.debian.org/debian/"
    security: str = "http://deb.debian.org/debian-security/"
    port: int = 0
    proc: Background | None = None
    _log_start: int = 0

    @property
    def log_file(self) -> Path:
        return self.base / "log" / "apt-cacher.log"

    def start(self, timeout: float = 20) -> None:
        conf = self.base / "conf"
        for d in (conf, self.base / "cache", self.base / "log"):
            d.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        (conf / "acng.conf").write_text(config(self.base, self.port, self.upstream,
                                               self.security))
        (conf / "backends_debian").write_text(self.upstream + "\n")
        (conf / "backends_debsec").write_text(self.security + "\n")
        self._log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
        self.proc = Background(["apt-cacher-ng", "-c", conf, "ForeGround=1"],
                               self.base / "log" / "acng.stdout.log")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.proc.running():
                raise ClusterStackError(
                    f"apt-cacher-ng exited at start (see {self.base / 'log'})")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.2)
        raise ClusterStackError(f"apt-cacher-ng does not listen on 127.0.0.1:{self.port}")

    def downloaded(self) -> int:
        """Bytes fetched from Debian during this run."""
        if not self.log_file.exists():
            return 0
        with open(self.log_file, "rb") as f:
            f.seek(self._log_start)
            return downloaded_bytes(f.read().decode("utf-8", "replace"))

    def running(self) -> bool:
        return self.proc is not None and self.proc.running()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(timeout=10)
