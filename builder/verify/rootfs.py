"""Fresh root file systems of a profile, and running commands inside them.

Roots are made by mmdebstrap in unshare mode as tarballs and unpacked as
root with numeric owners (unpacking into a directory directly would leave
files owned by subordinate ids).  Commands run chrooted in private mount and
PID namespaces, so /proc and bind mounts vanish with the command.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from builder.base.command import Result, Runner
from builder.buildroot.backends.chroot import apt_sources
from builder.stack.profile import Profile

# Mounts /proc and the requested binds inside the new mount namespace, then
# chroots.  Arguments: ROOT, then pairs HOST INSIDE, "--", then the command.
_ENTER = r"""
set -e
root=$1; shift
mount -t proc proc "$root/proc"
while [ "$1" != "--" ]; do
    mkdir -p "$root$2"; mount --bind "$1" "$root$2"; shift 2
done
shift
exec chroot "$root" "$@"
"""

CHROOT_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "DEBIAN_FRONTEND": "noninteractive",
    "LC_ALL": "C.UTF-8",
    "HOME": "/root",
}


def create_tarball(profile: Profile, dest: Path, runner: Runner, *, variant: str = "minbase",
                   include: Sequence[str] = (), extra_args: Sequence[str] = ()) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    argv = ["mmdebstrap", "--mode=unshare", f"--variant={variant}",
            f"--architectures={profile.arch}"]
    if include:
        argv.append("--include=" + ",".join(include))
    runner.run([*argv, *extra_args, profile.suite, dest, *apt_sources(profile)])
    return dest


def unpack(tarball: Path, dest: Path, runner: Runner) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    runner.run(["tar", "--numeric-owner", "-xpf", tarball, "-C", dest])
    return dest


@dataclass
class Root:
    path: Path
    runner: Runner
    binds: list[tuple[Path, str]] = field(default_factory=list)

    def run(self, argv: Sequence[str], *, check: bool = True, input: str | None = None,
            env: dict[str, str] | None = None, timeout: float | None = None) -> Result:
        bind_args = [str(a) for host, inside in self.binds for a in (host, inside)]
        return self.runner.run(
            ["unshare", "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private",
             "sh", "-c", _ENTER, "enter", str(self.path), *bind_args, "--",
             "env", "-i", *(f"{k}={v}" for k, v in {**CHROOT_ENV, **(env or {})}.items()),
             *argv],
            check=check, input=input, timeout=timeout)

    def sh(self, script: str, **kwargs: object) -> Result:
        return self.run(["sh", "-c", script], **kwargs)  # type: ignore[arg-type]

    def write(self, inside: str, content: str | bytes, mode: int = 0o644) -> None:
        target = self.path / inside.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
        target.chmod(mode)

    def forbid_service_starts(self) -> None:
        """As in any Debian chroot: maintainer scripts must not start daemons here."""
        self.write("/usr/sbin/policy-rc.d", "#!/bin/sh\nexit 101\n", 0o755)
