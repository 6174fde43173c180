"""The one way a root file system is made: mmdebstrap, from a typed spec, cached.

Every root of the project comes from here: the build root the backends build
in, verify's fresh root, the cluster nodes' and the guests' root, and the
Upstart fork check's.  A `RootfsSpec` says everything that makes a root's
content; its key is a digest of that spec and of what its sources hold now:
the Packages indices each source's InRelease lists, read through the verified
chain (`upstream.verify_inrelease`: gpgv against the source's own keyring).
A root is built in unshare mode to a tarball (a directory would be owned by
subordinate ids), under a lock, as a partial file renamed into place, so two
runs sharing a cache build it once and never see half of it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from builder.base.command import CommandError, Runner
from builder.base.errors import ClusterStackError, VerificationError
from builder.base.fetch import Fetcher, FetchError
from builder.sources.upstream import release_fields, release_sha256, verify_inrelease

log = logging.getLogger("clusterstack.roots")

# Bumped when the way a root is made changes, so old tarballs are not reused.
ROOT_FORMAT = 2
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
LOOPBACK_PORT = re.compile(r"(//(?:127\.\d+\.\d+\.\d+|localhost|\[::1\])):\d+")
SIGNED_BY = re.compile(r"signed-by=([^\s\]]+)")


class RootBuildError(ClusterStackError):
    """A root could not be made: names the root, and the source or step that failed."""


@dataclass(frozen=True)
class Source:
    """One apt source of a root: `deb [options] URI SUITE COMPONENT...`, and the host
    file of the key its InRelease is signed with.  When the line has a
    signed-by=PATH, the root gets the key at PATH (apt reads it from the host
    while the root is built)."""

    line: str
    keyring: Path = DEBIAN_KEYRING

    def __post_init__(self) -> None:
        self.words  # noqa: B018 - checks the line

    @property
    def words(self) -> list[str]:
        words = re.sub(r"\[[^\]]*\]", " ", self.line).split()
        if len(words) < 4 or words[0] != "deb":
            raise ValueError(f"not a one-line apt source: {self.line!r}")
        return words

    @property
    def release_url(self) -> str:
        uri, suite = self.words[1:3]
        return f"{uri.rstrip('/')}/dists/{suite}/InRelease"

    @property
    def signed_by(self) -> str | None:
        found = SIGNED_BY.search(self.line)
        return found.group(1) if found else None


@dataclass(frozen=True)
class RootfsSpec:
    """Everything that makes a root's content.  A caller that needs something of its
    own (a hook, an option) says it here, never in another code path."""

    name: str  # the tarball's name before its key; not part of the key
    suite: str
    sources: tuple[Source, ...]
    architecture: str = "amd64"
    variant: str = "apt"
    packages: tuple[str, ...] = ()
    aptopts: tuple[str, ...] = ()
    dpkgopts: tuple[str, ...] = ()
    setup_hooks: tuple[str, ...] = ()
    essential_hooks: tuple[str, ...] = ()
    customize_hooks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.sources:
            raise ValueError(f"root {self.name}: no apt source")
        if "/" in self.name or not self.name:
            raise ValueError(f"root name must be a file name, not {self.name!r}")

    def inputs(self) -> dict[str, object]:
        """The key's inputs from the spec itself. Our repository is served on a
        loopback port that changes from run to run: the port is left out."""
        return {
            "format": ROOT_FORMAT, "suite": self.suite, "architecture": self.architecture,
            "variant": self.variant,
            "sources": [[LOOPBACK_PORT.sub(r"\1", s.line), _file_digest(s.keyring)]
                        for s in self.sources],
            "packages": sorted(set(self.packages)), "aptopts": list(self.aptopts),
            "dpkgopts": list(self.dpkgopts), "setup_hooks": list(self.setup_hooks),
            "essential_hooks": list(self.essential_hooks),
            "customize_hooks": list(self.customize_hooks),
        }

    def key(self, release_digests: Sequence[str]) -> str:
        """A digest of the spec and of `release_digests`, one per source (`release_digest`)."""
        if len(release_digests) != len(self.sources):
            raise ValueError(f"root {self.name}: {len(self.sources)} sources, "
                             f"{len(release_digests)} release digests")
        inputs = {**self.inputs(), "releases": list(release_digests)}
        return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def _file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as exc:
        raise ValueError(f"cannot read key file {path}: {exc}") from exc


def packages_digest(release_text: str, source: Source, architecture: str) -> str:
    """A digest of what a source's packages are: the checksums its signed Release gives
    for the Packages indices of its components and `architecture`.  Unlike the whole
    Release (its Date changes with every publish) it changes only when they do."""
    components = source.words[3:]
    alternatives = "|".join(map(re.escape, components))
    wanted = re.compile(
        rf"^(?:{alternatives})/binary-(?:{re.escape(architecture)}|all)/Packages(?:\.xz|\.gz)?$")
    sums = release_sha256(release_fields(release_text))
    lines = sorted(f"{sha} {name}" for name, (sha, _) in sums.items() if wanted.match(name))
    if not lines:
        raise RootBuildError(f"{source.release_url}: the Release lists no Packages index "
                             f"of {', '.join(components)} for {architecture}")
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _readable_keyring(keyring: Path, tmp: Path, runner: Runner) -> Path:
    """The key as gpgv reads it: an armored key is dearmored first."""
    if not Path(keyring).read_bytes().lstrip().startswith(b"-----BEGIN PGP"):
        return keyring
    out = tmp / (Path(keyring).stem + ".gpg")
    runner.run(["gpg", "--batch", "--yes", "--dearmor", "--output", out, keyring])
    return out


def release_digest(source: Source, architecture: str, runner: Runner,
                   timeout: float = 30) -> str:
    """The source's InRelease, fetched now and verified by gpgv against its keyring,
    as `packages_digest`."""
    url = source.release_url
    with tempfile.TemporaryDirectory(prefix="clusterstack-release-") as tmp:
        try:
            raw = Fetcher(Path(tmp), attempts=2, timeout=timeout).fetch_fresh(
                url, Path(tmp) / "InRelease")
            keyring = _readable_keyring(source.keyring, Path(tmp), runner)
            text = verify_inrelease(raw, keyring, url, runner)
        except (FetchError, VerificationError, CommandError, OSError) as exc:
            raise RootBuildError(f"cannot read the verified Release of {url}: {exc}") from exc
    return packages_digest(text, source, architecture)


def mmdebstrap_argv(spec: RootfsSpec, tarball: Path) -> list[str]:
    """The mmdebstrap command line that writes the root of `spec` to `tarball`."""
    argv = ["mmdebstrap", "--mode=unshare", f"--variant={spec.variant}",
            f"--architectures={spec.architecture}"]
    argv += [f"--aptopt={o}" for o in spec.aptopts]
    argv += [f"--dpkgopt={o}" for o in spec.dpkgopts]
    if spec.packages:
        argv.append("--include=" + ",".join(sorted(set(spec.packages))))
    argv += [f"--essential-hook={h}" for h in spec.essential_hooks]
    argv += [f"--setup-hook={h}" for h in spec.setup_hooks]
    lines = []
    for source in spec.sources:
        line, root_path = source.line, source.signed_by
        if root_path:
            # apt runs outside the chroot while mmdebstrap builds, so signed-by must name
            # the host file then; the root gets the key at the path its sources.list names.
            host_key = Path(source.keyring).resolve()
            argv += [f"--setup-hook=mkdir -p \"$1{Path(root_path).parent}\"",
                     f"--setup-hook=upload {host_key} {root_path}",
                     f"--customize-hook=sed -i 's#signed-by={host_key}#signed-by={root_path}#' "
                     "\"$1/etc/apt/sources.list\""]
            line = line.replace(f"signed-by={root_path}", f"signed-by={host_key}")
        lines.append(line)
    argv += [f"--customize-hook={h}" for h in spec.customize_hooks]
    return [*argv, spec.suite, str(tarball), *lines]


@contextlib.contextmanager
def _readable_keys(spec: RootfsSpec) -> Iterator[RootfsSpec]:
    """The spec with the keys it uploads copied where mmdebstrap's apt can read them.

    In unshare mode apt runs as a subordinate uid: a key under a folder only
    root may enter (/root, a pytest tmp folder) reads as NO_PUBKEY.
    """
    with tempfile.TemporaryDirectory(prefix="clusterstack-keys-") as tmp:
        os.chmod(tmp, 0o755)
        sources = []
        for i, source in enumerate(spec.sources):
            if source.signed_by:
                copy = Path(tmp) / str(i) / Path(source.keyring).name
                copy.parent.mkdir(mode=0o755)
                shutil.copyfile(source.keyring, copy)
                copy.chmod(0o644)
                source = replace(source, keyring=copy)
            sources.append(source)
        yield replace(spec, sources=tuple(sources))


@dataclass(frozen=True)
class Tarball:
    """A root made by `build`: its tarball, its key, and whether this call made it."""

    path: Path
    key: str
    built: bool


def tarball_path(spec: RootfsSpec, directory: Path, key: str) -> Path:
    # zstd: a sixth of the size for seconds of work.
    return directory / f"{spec.name}-{key}.tar.zst"


def current_key(spec: RootfsSpec, runner: Runner) -> str:
    """The key of `spec` with its sources as they are now (each Release verified)."""
    try:
        digests = [release_digest(s, spec.architecture, runner) for s in spec.sources]
    except RootBuildError as exc:
        raise RootBuildError(f"root {spec.name}: {exc}") from exc
    return spec.key(digests)


def build(spec: RootfsSpec, directory: Path, runner: Runner, *, key: str | None = None,
          timeout: float = 1800, keep: int | None = None) -> Tarball:
    """The tarball of `spec` in `directory`, built when none of its key is there.

    `key`: `current_key(spec)` when the caller has it already.  `keep`: after a
    build, the older tarballs of the same name beyond the `keep` newest go (for
    callers without a cache keeper of their own).
    """
    key = key or current_key(spec, runner)
    path = tarball_path(spec, directory, key)
    directory.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        return Tarball(path, key, False)
    lock_path = directory / f".{spec.name}-{key}.build-lock"
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run building the same root: wait for it
        try:
            if path.is_file():
                return Tarball(path, key, False)
            log.info("building root %s (%s)", path.name, spec.variant)
            partial = path.with_name(f".{path.name}.{os.getpid()}.partial.tar.zst")
            try:
                with _readable_keys(spec) as readable:
                    runner.run(mmdebstrap_argv(readable, partial), timeout=timeout)
                os.replace(partial, path)
            except CommandError as exc:
                raise RootBuildError(f"root {spec.name}: mmdebstrap failed: {exc}") from exc
            finally:
                partial.unlink(missing_ok=True)
        finally:
            # Removed while held: a run that opens the name afterwards takes a new lock.
            # At worst two runs then build the same root, each to its own partial file,
            # and the second rename replaces a tarball by an equal one.
            lock_path.unlink(missing_ok=True)
    if keep is not None:
        older = sorted((p for p in directory.glob(f"{spec.name}-*.tar.zst")
                        if p != path and re.fullmatch(r"[0-9a-f]{16}",
                                                      p.name[len(spec.name) + 1:-8])),
                       key=lambda p: p.stat().st_mtime, reverse=True)
        for old in older[max(keep - 1, 0):]:
            log.info("removing the older root %s", old.name)
            old.unlink(missing_ok=True)
    return Tarball(path, key, True)


def unpack(tarball: Path, dest: Path, runner: Runner, *, timeout: float = 900) -> Path:
    """`tarball` unpacked into `dest` (emptied first) as root, keeping numeric owners."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    runner.run(["tar", "--numeric-owner", "-xpf", tarball, "-C", dest], timeout=timeout)
    return dest
