"""A trixie root with the cluster stack installed, for running daemons the Upstart way.

Built once with mmdebstrap (unshare mode, no root privileges inside) and kept as
a tarball under the test cache; each test session unpacks it as root with
numeric ids, which a directory target of mmdebstrap would get wrong.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from builder.command import Runner

from .debcache import CACHE

SUITE = "trixie"
MIRROR = "http://deb.debian.org/debian"
# The daemons of upstart/jobs.yaml plus what their jobs and the harness run:
# strace (the tracer), iproute2 (veth for keepalived), procps (ps), mount (dlm's pre-start).
PACKAGES = [
    "corosync", "pacemaker", "pacemaker-cli-utils", "keepalived", "dlm-controld", "sbd",
    "corosync-qnetd", "corosync-qdevice", "drbd-utils", "ocfs2-tools",
    "strace", "iproute2", "procps", "mount",
]


def root_tarball(packages: list[str] = PACKAGES, suite: str = SUITE) -> Path:
    key = hashlib.sha256(" ".join([suite, *sorted(packages)]).encode()).hexdigest()[:12]
    tarball = CACHE / "upstart" / f"{suite}-forkcheck-{key}.tar.zst"
    if not tarball.exists():
        tarball.parent.mkdir(parents=True, exist_ok=True)
        partial = tarball.with_name(tarball.name + ".partial.tar.zst")
        Runner().run(["mmdebstrap", "--mode=unshare", "--variant=apt", "--quiet",
                      f"--include={','.join(packages)}", suite, partial, MIRROR],
                     timeout=900)
        partial.rename(tarball)
    return tarball


def unpack(tarball: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    Runner().run(["tar", "--numeric-owner", "-xpf", tarball, "-C", dest])
    return dest
