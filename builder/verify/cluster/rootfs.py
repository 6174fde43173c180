"""The one root file system every node of the cluster is an overlay of.

mmdebstrap builds it in unshare mode to a tarball (a directory would be owned
by subordinate ids); the tarball is unpacked once as root with numeric owners
and kept, read-only by convention, as the overlay lower layer. Both are cached
under a key made of everything that changes their content.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from builder.base.command import Runner

from . import cachekeep

log = logging.getLogger("clusterstack.cluster")

# Bumped when the way a root is made changes, so old caches are not reused.
ROOT_FORMAT = 1

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
SYSTEMD_NODE = ["systemd-sysv", "dbus", "openssh-server", "openssh-client", "crmsh", "pcs",
                "csync2", "sudo"]

SIGNED_BY = re.compile(r"signed-by=([^\s\]]+)")
LOOPBACK_PORT = re.compile(r"(//(?:127\.\d+\.\d+\.\d+|localhost|\[::1\])):\d+")


def source_release_url(line: str) -> str:
    """The InRelease URL of a one-line apt source: `deb [options] URI SUITE COMPONENT...`."""
    words = re.sub(r"\[[^\]]*\]", " ", line).split()
    if len(words) < 3 or words[0] != "deb":
        raise ValueError(f"not a one-line apt source: {line!r}")
    uri, suite = words[1], words[2]
    return f"{uri.rstrip('/')}/dists/{suite}/InRelease"


def release_digest(line: str, timeout: float = 30) -> str:
    """A digest of what the source's packages are: the Packages indices' checksums
    from its InRelease.  Unlike the whole InRelease (its Date changes with every
    publish) it changes only when the packages do."""
    url = source_release_url(line)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            text = response.read().decode("utf-8", "replace")
    except OSError as exc:
        raise ValueError(f"cannot read {url}: {exc}") from exc
    indices = sorted(ln.strip() for ln in text.split("\nSHA256:\n", 1)[-1].splitlines()
                     if ln.startswith(" ") and re.search(r"/Packages(\.xz)?$", ln))
    return hashlib.sha256(("\n".join(indices) or text).encode()).hexdigest()


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

    def key(self, release_digests: Sequence[str] = ()) -> str:
        """A digest of every input that changes the root's content.

        Our repository is served on a loopback port that changes from run to run:
        the port is left out, and `release_digests` (of each extra source's
        InRelease, see `release_digest`) stand for what the repository holds.
        """
        inputs: dict[str, object] = {
            "format": ROOT_FORMAT, "suite": self.suite, "mirror": self.mirror,
            "sources": [LOOPBACK_PORT.sub(r"\1", s) for s in self.extra_sources],
            "packages": self.packages,
        }
        if release_digests:  # only with extra sources: a stock root's key stays as it was
            inputs["releases"] = list(release_digests)
        h = hashlib.sha256()
        h.update(json.dumps(inputs, sort_keys=True).encode())
        for key in self.extra_keys:
            h.update(Path(key).read_bytes())
        return h.hexdigest()[:16]


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


@contextlib.contextmanager
def readable_keys(spec: RootSpec) -> Iterator[RootSpec]:
    """The spec with its key files copied where mmdebstrap's apt can read them.

    In unshare mode apt runs as a subordinate uid: a key under a folder only
    root may enter (/root, a pytest tmp folder) reads as NO_PUBKEY.
    """
    with tempfile.TemporaryDirectory(prefix="clusterstack-keys-") as tmp:
        os.chmod(tmp, 0o755)
        copies = []
        for key in spec.extra_keys:
            copy = Path(tmp) / Path(key).name
            shutil.copyfile(key, copy)
            copy.chmod(0o644)
            copies.append(copy)
        yield replace(spec, extra_keys=tuple(copies))


def mmdebstrap_argv(spec: RootSpec, tarball: Path) -> list[str]:
    """The mmdebstrap command line that writes the root of `spec` to `tarball`."""
    keys = keys_by_root_path(spec)
    argv = [
        "mmdebstrap", "--mode=unshare", "--variant=apt",
        "--aptopt=APT::Install-Recommends \"false\"",
        # The nodes never read documentation; leaving it out saves a third of the root.
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        "--include=" + ",".join(spec.packages),
    ]
    for root_path, host_key in keys.items():
        # apt runs outside the chroot while mmdebstrap builds, so signed-by must name
        # the host file then; the root gets the key at the path its sources.list names.
        argv += [
            f"--setup-hook=mkdir -p \"$1{Path(root_path).parent}\"",
            f"--setup-hook=upload {host_key.resolve()} {root_path}",
            f"--customize-hook=sed -i 's#signed-by={host_key.resolve()}#signed-by={root_path}#' "
            "\"$1/etc/apt/sources.list\"",
        ]
    argv += [spec.suite, str(tarball), spec.mirror]
    for line in spec.extra_sources:
        for root_path, host_key in keys.items():
            line = line.replace(f"signed-by={root_path}", f"signed-by={host_key.resolve()}")
        argv.append(line)
    return argv


@dataclass
class Root:
    path: Path
    key: str
    built: bool  # True: made by this run, not taken from the cache
    seconds: float


@contextlib.contextmanager
def ensure_root(spec: RootSpec, cache_dir: Path, runner: Runner) -> Iterator[Root]:
    """The unpacked root for `spec`, built and unpacked when not cached, held for the block."""
    roots = cache_dir / "roots"
    roots.mkdir(parents=True, exist_ok=True)
    key = spec.key([release_digest(line) for line in spec.extra_sources])
    # zstd: a sixth of the size for seconds of work; the unpacked tree is what runs use.
    tarball = roots / f"{spec.suite}-{key}.tar.zst"
    tree = roots / f"{spec.suite}-{key}"
    done = tree / ".clusterstack-complete"

    def make() -> None:
        if not tarball.exists():
            partial = roots / f"{spec.suite}-{key}.partial.tar.zst"
            partial.unlink(missing_ok=True)
            with readable_keys(spec) as readable:
                runner.run(mmdebstrap_argv(readable, partial), timeout=1800)
            partial.rename(tarball)
        if tree.exists():
            shutil.rmtree(tree)
        tree.mkdir()
        runner.run(["tar", "--zstd", "--numeric-owner", "-xpf", tarball, "-C", tree],
                   timeout=900)
        done.write_text(json.dumps({"key": key, "packages": spec.packages}) + "\n")

    start = time.monotonic()
    # Two runs sharing a cache wait for each other instead of unpacking twice.
    with cachekeep.use(roots / f"{key}.lock", done.exists, make) as made:
        cachekeep.prune(roots, key, lambda stale: roots.glob(f"*-{stale}*"))
        yield Root(tree, key, made, time.monotonic() - start)
