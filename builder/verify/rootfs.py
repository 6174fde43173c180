"""Fresh root file systems of a profile, and running commands inside them.

Roots are made by `builder.buildroot.roots` (mmdebstrap in unshare mode, to a
cached tarball) and unpacked as root with numeric owners (unpacking into a
directory directly would leave files owned by subordinate ids).  Commands
run chrooted in private mount and PID namespaces, so /proc and bind mounts
vanish with the command.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from builder.base.command import Result, Runner
from builder.buildroot import roots
from builder.buildroot.backends.chroot import apt_sources
from builder.buildroot.roots import RootfsSpec
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


def fresh_root_spec(profile: Profile, *, variant: str = "minbase",
                    packages: Sequence[str] = ()) -> RootfsSpec:
    """The profile's fresh root: its archives, nothing of ours."""
    return RootfsSpec(name=f"{profile.suite}-{profile.arch}-{variant}", suite=profile.suite,
                      sources=apt_sources(profile), architecture=profile.arch,
                      variant=variant, packages=tuple(packages))


def create_tarball(profile: Profile, cache_dir: Path, runner: Runner, *,
                   variant: str = "minbase", packages: Sequence[str] = ()) -> Path:
    """The fresh root's tarball, built by `roots` (cached under `cache_dir`)."""
    spec = fresh_root_spec(profile, variant=variant, packages=packages)
    return roots.build(spec, cache_dir, runner, keep=2).path


def unpack(tarball: Path, dest: Path, runner: Runner) -> Path:
    return roots.unpack(tarball, dest, runner)


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
