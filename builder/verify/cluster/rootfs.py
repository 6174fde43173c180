"""The one root file system every node of the cluster is an overlay of.

`RootSpec` says what the nodes need (the stack, its shell, the init); it is
built as a `builder.buildroot.roots.RootfsSpec`, whose tarball `roots` makes
and keys (the spec and the verified Releases of its sources).  The tarball is
unpacked once as root with numeric owners and kept, read-only by convention,
as the overlay lower layer; both are cached under the root's key.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from builder.base.command import Runner
from builder.buildroot import roots
from builder.buildroot.roots import DEBIAN_KEYRING, SIGNED_BY, RootfsSpec, Source

from . import cachekeep

log = logging.getLogger("clusterstack.cluster")

# Stock Debian packages that stand in for ubuntu-cluster until our archive has it.
STOCK_STACK = ["pacemaker", "corosync", "resource-agents", "fence-agents"]
OUR_STACK = ["ubuntu-cluster"]
SHELLS = ("crmsh", "pcs")
# Wanted in both cases: the workload, VRRP, and what the harness itself calls in a node.
WORKLOAD = ["mariadb-server", "mariadb-client", "keepalived"]
# pacemaker-cli-utils (crm_mon, stonith_admin) comes with crmsh but not with pcs.
NODE_TOOLS = ["iproute2", "iputils-ping", "procps", "python3", "psmisc", "pacemaker-cli-utils"]
# The monitoring the script tier proves (monitoring.py): ubuntu-cluster recommends our
# packages, and roots take no Recommends; Debian has the exporter but no check (the
# harness copies the source tree's check_pacemaker into such a root).
MONITORING_OURS = ["prometheus-hacluster-exporter-debian", "monitoring-plugins-pacemaker"]
MONITORING_STOCK = ["prometheus-hacluster-exporter"]
INITS = ("script", "systemd")
# The systemd tier boots the root as an administrator's machine: systemd as PID 1, both
# bootstrap tools (pcs and crmsh: one root serves both), and ssh, which crmsh's
# `crm cluster join` needs between the nodes.
# csync2: `crm cluster init` fails without it ("Can't create csync2 key"); sudo: crmsh runs
# its commands on the other nodes as `ssh root@NODE sudo -H -u root /bin/sh`. Neither is
# a dependency of crmsh (ubuntu-cluster recommends them, but roots take no Recommends).
# curl: the how-to (docs/howto-mariadb-failover.md) fetches our signing key with it.
SYSTEMD_NODE = ["systemd-sysv", "dbus", "openssh-server", "openssh-client", "crmsh", "pcs",
                "csync2", "sudo", "curl"]


@dataclass(frozen=True)
class RootSpec:
    suite: str
    mirror: str
    extra_sources: Sequence[str] = ()
    extra_keys: Sequence[Path] = ()
    extra_packages: Sequence[str] = field(default_factory=tuple)
    # The configuration shell. ubuntu-cluster depends on "crmsh | pcs": apt takes crmsh
    # unless pcs is asked for by name.
    shell: str = "crmsh"
    # "script": the harness's own PID 1 (scripts/clusterstack-init); "systemd": the
    # packages' units under systemd, booted by systemd-nspawn.
    init: str = "script"
    # mmdebstrap --essential-hook commands (the VM tier's initramfs configuration).
    essential_hooks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.shell not in SHELLS:
            raise ValueError(f"shell must be one of {', '.join(SHELLS)}, not {self.shell!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, not {self.init!r}")

    @property
    def packages(self) -> list[str]:
        if self.extra_sources:
            stack = [*OUR_STACK, *(["pcs"] if self.shell == "pcs" else [])]
        else:
            stack = [*STOCK_STACK, self.shell]
        if self.init == "systemd":
            stack += SYSTEMD_NODE
        else:
            stack += MONITORING_OURS if self.extra_sources else MONITORING_STOCK
        return sorted({*stack, *WORKLOAD, *NODE_TOOLS, *self.extra_packages})

    def rootfs(self) -> RootfsSpec:
        """The root as `roots` builds it: the mirror's suite, then the extra sources,
        each with the key its InRelease is verified with (and apt reads)."""
        keys = keys_by_root_path(self)
        extra = []
        for line in self.extra_sources:
            signed_by = SIGNED_BY.findall(line)
            extra.append(Source(line, keys[signed_by[0]] if signed_by else DEBIAN_KEYRING))
        return RootfsSpec(
            name=self.suite, suite=self.suite,
            sources=(Source(f"deb {self.mirror} {self.suite} main"), *extra),
            variant="apt", packages=tuple(self.packages),
            aptopts=('APT::Install-Recommends "false"',),
            # The nodes never read documentation; leaving it out saves a third of the root.
            dpkgopts=("path-exclude=/usr/share/doc/*", "path-exclude=/usr/share/man/*",
                      "path-exclude=/usr/share/locale/*"),
            essential_hooks=self.essential_hooks)

    def key(self, release_digests: Sequence[str]) -> str:
        """The root's key: see `roots.RootfsSpec.key`, one digest per source."""
        return self.rootfs().key(release_digests)


def keys_by_root_path(spec: RootSpec) -> dict[str, Path]:
    """Map each signed-by path named in the extra sources to the host key file for it.

    A key is matched by file name; a lone key serves a lone signed-by path.
    """
    wanted = [m for line in spec.extra_sources for m in SIGNED_BY.findall(line)]
    keys = [Path(k) for k in spec.extra_keys]
    by_name = {k.name: k for k in keys}
    out: dict[str, Path] = {}
    for root_path in wanted:
        name = Path(root_path).name
        if name in by_name:
            out[root_path] = by_name[name]
        elif len(keys) == 1 and len(set(wanted)) == 1:
            out[root_path] = keys[0]
        else:
            raise ValueError(f"no key file given for signed-by={root_path}")
    return out


def mmdebstrap_argv(spec: RootSpec, tarball: Path) -> list[str]:
    """The mmdebstrap command line that writes the root of `spec` to `tarball`."""
    return roots.mmdebstrap_argv(spec.rootfs(), tarball)


@dataclass
class NodeRoot:
    """The unpacked root the nodes are overlays of."""

    path: Path
    key: str
    built: bool  # True: made by this run, not taken from the cache
    seconds: float


@contextlib.contextmanager
def ensure_root(spec: RootSpec, cache_dir: Path, runner: Runner) -> Iterator[NodeRoot]:
    """The unpacked root for `spec`, built and unpacked when not cached, held for the block."""
    cache = cache_dir / "roots"
    cache.mkdir(parents=True, exist_ok=True)
    rootfs = spec.rootfs()
    key = roots.current_key(rootfs, runner)
    tree = cache / f"{spec.suite}-{key}"
    done = tree / ".clusterstack-complete"

    def make() -> None:
        tarball = roots.build(rootfs, cache, runner, key=key, timeout=1800).path
        roots.unpack(tarball, tree, runner)
        done.write_text(json.dumps({"key": key, "packages": spec.packages}) + "\n")

    start = time.monotonic()
    # Two runs sharing a cache wait for each other instead of unpacking twice.
    with cachekeep.use(cache / f"{key}.lock", done.exists, make) as made:
        cachekeep.prune(cache, key, lambda stale: cache.glob(f"*-{stale}*"))
        yield NodeRoot(tree, key, made, time.monotonic() - start)
