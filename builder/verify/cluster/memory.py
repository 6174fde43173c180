"""Peak memory of the harness and of every process of its nodes, sampled in the background."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path


def pss_kib(pid: int | str) -> int:
    """Proportional set size: shared pages (the common root's libraries) are counted once."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def pids_in_namespaces(kind: str, inodes: set[str], root_prefix: str) -> list[int]:
    """Every process whose `kind` namespace (e.g. "pid", "net") is one of `inodes`.

    The kernel reuses the inode numbers of freed namespaces, so a colleague's
    build could own one of them minutes later: only processes whose root
    directory lies under `root_prefix` (the nodes are chrooted there) count.
    """
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if (os.readlink(f"/proc/{entry}/ns/{kind}") in inodes
                    and os.readlink(f"/proc/{entry}/root").startswith(root_prefix)):
                found.append(int(entry))
        except OSError:
            continue
    return found


def pids_in_cgroup(directory: Path) -> list[int]:
    """Every process in the cgroup `directory` and its descendants (cgroup v2 layout).

    nspawn's containers pivot_root, so their processes' roots read "/" from here: the
    systemd tier finds them by the cgroup each node was started in instead.
    """
    pids: list[int] = []
    if not directory.is_dir():
        return pids
    for procs in directory.rglob("cgroup.procs"):
        try:
            pids += [int(p) for p in procs.read_text().split()]
        except (OSError, ValueError):
            continue
    return pids


class PeakSampler:
    """Samples a total (KiB) once per interval in a thread and keeps the peak.

    Subclasses say what to add up besides the harness itself (`extra_pids`).
    """

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="memory-sampler", daemon=True)

    def extra_pids(self) -> list[int]:
        return []

    def sample(self) -> int:
        total = pss_kib(os.getpid()) + sum(pss_kib(pid) for pid in self.extra_pids())
        self.peak_kib = max(self.peak_kib, total)
        return total

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


class MemorySampler(PeakSampler):
    """The harness plus the processes of the given PID namespaces."""

    def __init__(self, namespaces: Callable[[], set[str]], root_prefix: str,
                 interval: float = 1.0) -> None:
        super().__init__(interval)
        self.namespaces = namespaces
        self.root_prefix = root_prefix

    def extra_pids(self) -> list[int]:
        return pids_in_namespaces("pid", self.namespaces(), self.root_prefix)


class CgroupMemorySampler(MemorySampler):
    """MemorySampler plus every process in the cgroups that `cgroups` names."""

    def __init__(self, namespaces: Callable[[], set[str]], root_prefix: str,
                 cgroups: Callable[[], list[Path]], interval: float = 1.0) -> None:
        super().__init__(namespaces, root_prefix, interval)
        self.cgroups = cgroups

    def extra_pids(self) -> list[int]:
        pids = set(super().extra_pids())
        for directory in self.cgroups():
            pids.update(pids_in_cgroup(directory))
        return sorted(pids)
