"""`clusterstack publish`: the signed apt repository, switched in atomically.

The repository is assembled in a staging folder beside the published one,
indexed by apt-ftparchive, signed, then made current by renaming a symlink:
a reader sees the old repository or the new one, never a half-written one.
A publish killed halfway leaves only a stale staging folder, removed by the
next run.
"""

from __future__ import annotations

import gzip
import lzma
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from . import seeds, state
from .command import Runner
from .errors import ClusterStackError
from .progress import Progress
from .signing import Signer
from .stack import Stack

KEY_BASENAME = "clusterstack-archive-keyring"
KEEP_RELEASES = 2


@dataclass(frozen=True)
class Published:
    path: Path          # the stable path (a symlink to the current release)
    release_dir: Path
    suite: str
    packages: int
    fingerprint: str

    @property
    def key_file(self) -> Path:
        return self.path / f"{KEY_BASENAME}.gpg"


def pool_dir(source: str) -> str:
    prefix = source[:4] if source.startswith("lib") else source[0]
    return f"pool/main/{prefix}/{source}"


def _collect(stack: Stack) -> list[tuple[state.ComponentState, Path]]:
    ws, prof = stack.workspace, stack.profile
    missing, found = [], []
    for recipe in stack.recipes:
        st = state.read(ws.state_dir(prof.name), recipe.name)
        arts = ws.artifacts_dir(prof.name, recipe.name)
        if st is None or not all((arts / f).is_file() for f in st.files):
            missing.append(recipe.name)
        else:
            found.append((st, arts))
    if missing:
        raise ClusterStackError(f"not built for {prof.name}: {', '.join(missing)} "
                                f"(run `clusterstack build --profile {prof.name}` first)")
    return found


def _tasks(stack: Stack) -> dict[str, list[str]]:
    """package -> its Task: values, for profiles whose tasks live in Packages
    (Ubuntu's way); empty for Debian profiles (a desc file and a Key: package)."""
    if stack.profile.task_mode != "task-fields":
        return {}
    tasks: dict[str, list[str]] = {}
    for seed_file in sorted(stack.workspace.seeds_dir.glob("*.seed")):
        seed = seeds.load(seed_file)
        for pkg in [seed.key, *seed.packages()]:
            tasks.setdefault(pkg, []).append(seed.name)
    return tasks


def _stanzas(text: str) -> list[str]:
    return [p.strip("\n") for p in text.split("\n\n") if p.strip()]


def _field(stanza: str, name: str) -> str:
    match = re.search(rf"^{name}: (.*)$", stanza, re.M)
    return match.group(1).strip() if match else ""


def _write_index(directory: Path, name: str, stanzas: list[str]) -> None:
    """The index plain, .gz and .xz, reproducibly (no timestamps in the gzip)."""
    directory.mkdir(parents=True, exist_ok=True)
    data = "".join(f"{s}\n\n" for s in stanzas).encode()
    (directory / name).write_bytes(data)
    (directory / f"{name}.gz").write_bytes(gzip.compress(data, mtime=0))
    (directory / f"{name}.xz").write_bytes(lzma.compress(data))


def _index(stack: Stack, staging: Path, found: list[tuple[state.ComponentState, Path]],
           cache: Path, runner: Runner) -> None:
    """Packages and Sources, one apt-ftparchive call per component.

    Each call gets a cache database named after the component's build key: an
    unchanged component is not read again, and a rebuilt one (even under the
    same version and file names) is never described from a stale cache.
    """
    prof = stack.profile
    tasks = _tasks(stack)
    keep = {f"{st.component}-{st.key[:20]}.db" for st, _ in found}
    for stale in cache.glob("*.db"):
        if stale.name not in keep:
            stale.unlink()
    binaries: list[str] = []
    sources: list[str] = []
    for st, _ in found:
        db = cache / f"{st.component}-{st.key[:20]}.db"
        path = pool_dir(st.source)
        out = runner.run(["apt-ftparchive", "-d", db, "packages", path], cwd=staging).stdout
        for stanza in _stanzas(out):
            for task in tasks.get(_field(stanza, "Package"), []):
                stanza += f"\nTask: {task}"
            binaries.append(stanza)
        if any(f.endswith(".dsc") for f in st.source_files):
            sources += _stanzas(runner.run(["apt-ftparchive", "-d", db, "sources", path],
                                           cwd=staging).stdout)
    dist = staging / "dists" / prof.suite
    for component in prof.components:
        for arch in prof.architectures:
            _write_index(dist / component / f"binary-{arch}", "Packages",
                         [b for b in binaries if _field(b, "Architecture") in (arch, "all")])
        _write_index(dist / component / "source", "Sources", sources)


def _release_options(stack: Stack) -> list[str]:
    prof = stack.profile
    fields = {
        "Origin": prof.origin, "Label": prof.label, "Suite": prof.suite,
        "Codename": prof.suite, "Architectures": " ".join(prof.architectures),
        "Components": " ".join(prof.components), "Acquire-By-Hash": "yes",
        "Description": f"ClusterStack cluster stack for {prof.description}",
    }
    return [f"-oAPT::FTPArchive::Release::{k}={v}" for k, v in fields.items()]


def _switch(link: Path, target: Path) -> None:
    tmp = link.with_name(f".{link.name}.{os.getpid()}.link")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(os.path.relpath(target, link.parent))
    os.replace(tmp, link)   # rename(2) is atomic: readers see old or new


def _prune(releases: Path, profile: str, keep: Path) -> None:
    old = sorted((p for p in releases.glob(f"{profile}-*") if p != keep),
                 key=lambda p: p.stat().st_mtime)
    for stale in old[:-(KEEP_RELEASES - 1) or None]:
        shutil.rmtree(stale, ignore_errors=True)
    for staging in releases.glob(f".staging-{profile}-*"):
        shutil.rmtree(staging, ignore_errors=True)


def publish(stack: Stack, signer: Signer, runner: Runner, progress: Progress) -> Published:
    ws, prof = stack.workspace, stack.profile
    found = _collect(stack)
    releases = ws.public_dir / ".releases"
    releases.mkdir(parents=True, exist_ok=True)
    for leftover in releases.glob(f".staging-{prof.name}-*"):
        shutil.rmtree(leftover, ignore_errors=True)   # from a killed earlier publish
    staging = releases / f".staging-{prof.name}-{os.getpid()}"
    staging.mkdir()
    progress.say("repository", "pool", f"{len(found)} components")
    count = 0
    for st, arts in found:
        dest = staging / pool_dir(st.source)
        dest.mkdir(parents=True, exist_ok=True)
        for name in st.files:
            target = dest / name
            if not target.exists():
                os.link(arts / name, target)
            count += name.endswith(".deb")
    dist = staging / "dists" / prof.suite
    cache = ws.profile_out(prof.name) / "ftparchive-cache"
    cache.mkdir(parents=True, exist_ok=True)
    progress.say("repository", "index", "apt-ftparchive")
    _index(stack, staging, found, cache, runner)
    # Written beside dists/, not into it: the Release must not list itself.
    release_tmp = staging / ".Release"
    runner.run(["apt-ftparchive", "-oAPT::FTPArchive::DoByHash=true", *_release_options(stack),
                "release", f"dists/{prof.suite}"], cwd=staging, stdout_to=release_tmp)
    release_tmp.rename(dist / "Release")
    progress.say("repository", "sign", signer.fingerprint[-16:])
    signer.clearsign(dist / "Release", dist / "InRelease")
    signer.detach_sign(dist / "Release", dist / "Release.gpg")
    signer.export_public(staging / f"{KEY_BASENAME}.asc", staging / f"{KEY_BASENAME}.gpg")
    final = releases / f"{prof.name}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    staging.rename(final)
    link = ws.published_repo(prof.name)
    _switch(link, final)
    _prune(releases, prof.name, final)
    progress.say("repository", "published", str(link))
    return Published(link, final, prof.suite, count, signer.fingerprint)
