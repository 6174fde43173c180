"""One node: an overlay of the shared root, in its own mount, UTS, IPC, PID and net namespaces.

The node's PID 1 is `scripts/node-boot`, which mounts the overlay and the
node's private /run, /tmp, /dev and /dev/shm inside the node's own mount
namespace and then chroots into `clusterstack-init`. Killing that PID 1
kills every process of the node, which frees all of its namespaces and
mounts: that is both "fence" and "tear down".
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from importlib import resources
from pathlib import Path

from builder.base.command import Background, Result, Runner

NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def script_path(name: str) -> Path:
    return Path(str(resources.files(__package__) / "scripts" / name))


class NodeError(RuntimeError):
    pass


class Node:
    def __init__(self, name: str, address: str, lower: Path, base: Path, shared: Path,
                 fence_dir: Path, runner: Runner) -> None:
        self.name = name
        self.address = address
        self.lower = lower
        self.base = base  # this node's directory on the host: upper, work, merged
        self.shared = shared
        self.fence_dir = fence_dir
        self.runner = runner
        self.proc: Background | None = None
        self.init_pid: int | None = None

    @property
    def upper(self) -> Path:
        return self.base / "upper"

    @property
    def port(self) -> str:
        """Name of this node's veth end on the switch."""
        return f"v-{self.name}"[:15]

    def write(self, path: str, text: str | bytes, mode: int = 0o644,
              owner: tuple[int, int] = (0, 0)) -> None:
        """Put a file into the node's root (before boot: its upper layer)."""
        target = self.upper / path.lstrip("/")
        self.upper.mkdir(parents=True, exist_ok=True)
        self._make_parents(Path(path))
        if isinstance(text, str):
            text = text.encode()
        target.write_bytes(text)
        os.chown(target, *owner)
        os.chmod(target, mode)

    def _make_parents(self, path: Path) -> None:
        """Create the parents of `path` in the upper layer with the lower layer's owner and mode.

        An upper directory hides the attributes of the lower one: /var/lib/pacemaker/cib
        made here as root 0755 would no longer be hacluster's.
        """
        for parent in reversed(path.parents):
            rel = str(parent).lstrip("/")
            if not rel:
                continue
            upper = self.upper / rel
            lower = self.lower / rel
            if lower.is_symlink():
                # A real directory here would hide the link (/lib -> usr/lib) from the node.
                raise ValueError(f"{path}: /{rel} is a symbolic link in the root")
            if upper.is_dir():
                continue
            upper.mkdir()
            if lower.is_dir():
                st = lower.stat()
                os.chown(upper, st.st_uid, st.st_gid)
                os.chmod(upper, st.st_mode & 0o7777)

    def prepare(self) -> None:
        for sub in ("upper", "work", "merged"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        self.write("/usr/local/sbin/clusterstack-init",
                   script_path("clusterstack-init").read_bytes(), 0o755)
        self.write("/etc/hostname", self.name + "\n")

    def boot(self) -> None:
        """Start the node's namespaces; it waits in its init until `go()`."""
        argv = [
            "unshare", "--mount", "--uts", "--ipc", "--pid", "--net", "--fork",
            "--kill-child", "--propagation", "private", "--",
            "sh", script_path("node-boot"), self.name, self.lower, self.upper,
            self.base / "work", self.base / "merged", self.shared, self.fence_dir,
        ]
        self.proc = Background(argv, self.base / "boot.log")
        self.init_pid = self._wait_for_init()

    def _wait_for_init(self, timeout: float = 20) -> int:
        """PID (seen from the host) of the node's PID 1, once it has chrooted."""
        if self.proc is None:
            raise NodeError(f"{self.name}: no boot process to wait for")
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.proc.running():
                raise NodeError(f"{self.name} failed to boot, see {self.base / 'boot.log'}")
            try:
                pids = children.read_text().split()
                if pids and os.readlink(f"/proc/{pids[0]}/root") != "/":
                    ready = Path(f"/proc/{pids[0]}/root/run/clusterstack")
                    if ready.is_dir():
                        return int(pids[0])
            except OSError:
                pass
            time.sleep(0.05)
        raise NodeError(f"{self.name}: init did not come up in {timeout} s")

    def go(self, mode: str) -> None:
        """Tell the init to start the cluster daemons ("cluster") or nothing ("plain")."""
        Path(f"/proc/{self.init_pid}/root/run/clusterstack/go").write_text(mode + "\n")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.running()

    def nsenter(self) -> list[str]:
        return ["nsenter", "-t", str(self.init_pid), "-m", "-u", "-i", "-n", "-p", "-r", "-w",
                "--", "env", "-i", f"PATH={NODE_PATH}", "HOME=/root", "LANG=C.UTF-8"]

    def run(self, argv: list[str], check: bool = True, timeout: float = 60,
            input: str | None = None) -> Result:
        """Run a command inside the node, with the node's own binaries."""
        if not self.alive():
            raise NodeError(f"{self.name} is not running")
        return self.runner.run([*self.nsenter(), *argv], check=check, timeout=timeout,
                               input=input)

    def sh(self, script: str, check: bool = True, timeout: float = 60) -> Result:
        return self.run(["sh", "-c", script], check=check, timeout=timeout)

    def root_path(self, path: str) -> Path:
        """A path in the running node's file system, seen from the host."""
        return Path(f"/proc/{self.init_pid}/root") / path.lstrip("/")

    def kill(self) -> None:
        """Power off: SIGKILL to PID 1 ends every process and so every namespace of the node."""
        if self.proc is None:
            return
        if self.init_pid and self.proc.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.init_pid, signal.SIGKILL)
        self.proc.stop(signal.SIGKILL, timeout=10)

    def collect_logs(self, dest: Path) -> None:
        """Copy the node's logs (kept in its upper layer, so also after a kill) to `dest`."""
        dest.mkdir(parents=True, exist_ok=True)
        for sub in ("var/log/pacemaker", "var/log/corosync", "var/log/clusterstack",
                    "var/log/mysql"):
            src = self.upper / sub
            if src.is_dir():
                shutil.copytree(src, dest / sub.replace("/", "_"), dirs_exist_ok=True)
        boot_log = self.base / "boot.log"
        if boot_log.exists():
            shutil.copy(boot_log, dest / "boot.log")
