"""`clusterstack publish`: the signed apt repository, switched in atomically.

The repository is assembled in a staging folder beside the published one,
indexed by apt-ftparchive, signed, then made current by renaming a symlink:
a reader sees the old repository or the new one, never a half-written one.
A publish killed halfway leaves only a stale staging folder, removed by the
next run.
"""

from __future__ import annotations

import os
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


def _task_override(stack: Stack, dest: Path) -> Path | None:
    """Task: fields for profiles whose tasks live in Packages (Ubuntu's way)."""
    if stack.profile.task_mode != "task-fields":
        return None
    lines = []
    for seed_file in sorted(stack.workspace.seeds_dir.glob("*.seed")):
        seed = seeds.load(seed_file)
        for pkg in [seed.key, *seed.packages()]:
            lines.append(f"{pkg} Task {seed.name}")
    dest.write_text("\n".join(lines) + "\n")
    return dest


def _ftparchive_config(stack: Stack, cache: Path, override: Path | None) -> str:
    prof = stack.profile
    archs = " ".join([*prof.architectures, "source"])
    extra = f'  ExtraOverride "{override}";\n' if override else ""
    return (
        # ArchiveDir "." keeps the cache database's keys the same from one
        # staging folder to the next, so unchanged .debs are not re-read.
        f'Dir {{ ArchiveDir "."; CacheDir "{cache}"; }};\n'
        'Default { Packages::Compress ". gzip xz"; Sources::Compress ". gzip xz";'
        ' Contents::Compress "gzip"; };\n'
        'TreeDefault { Directory "pool/$(SECTION)"; SrcDirectory "pool/$(SECTION)"; };\n'
        f'Tree "dists/{prof.suite}" {{\n  Sections "{" ".join(prof.components)}";\n'
        f'  Architectures "{archs}";\n{extra}}};\n'
    )


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
    for component in prof.components:
        for arch in prof.architectures:
            (dist / component / f"binary-{arch}").mkdir(parents=True, exist_ok=True)
        (dist / component / "source").mkdir(parents=True, exist_ok=True)
    cache = ws.profile_out(prof.name) / "ftparchive-cache"
    cache.mkdir(parents=True, exist_ok=True)
    override = _task_override(stack, staging / ".task-override")
    conf = staging / ".ftparchive.conf"
    conf.write_text(_ftparchive_config(stack, cache, override))
    progress.say("repository", "index", "apt-ftparchive")
    runner.run(["apt-ftparchive", "-oAPT::FTPArchive::DoByHash=true", "generate", conf],
               cwd=staging)
    # Written beside dists/, not into it: the Release must not list itself.
    release_tmp = staging / ".Release"
    runner.run(["apt-ftparchive", "-oAPT::FTPArchive::DoByHash=true", *_release_options(stack),
                "release", f"dists/{prof.suite}"], cwd=staging, stdout_to=release_tmp)
    release_tmp.rename(dist / "Release")
    progress.say("repository", "sign", signer.fingerprint[-16:])
    signer.clearsign(dist / "Release", dist / "InRelease")
    signer.detach_sign(dist / "Release", dist / "Release.gpg")
    signer.export_public(staging / f"{KEY_BASENAME}.asc", staging / f"{KEY_BASENAME}.gpg")
    conf.unlink()
    if override:
        override.unlink()
    final = releases / f"{prof.name}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    staging.rename(final)
    link = ws.published_repo(prof.name)
    _switch(link, final)
    _prune(releases, prof.name, final)
    progress.say("repository", "published", str(link))
    return Published(link, final, prof.suite, count, signer.fingerprint)
