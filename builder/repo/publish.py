"""`clusterstack publish`: the signed apt repository, switched in atomically.

The repository is assembled in a staging folder beside the published one,
indexed by apt-ftparchive, signed, synced to disk, then made current by
renaming a symlink: a reader sees the old repository or the new one, never a
half-written one.  A publish killed at any step leaves only a stale staging
folder (or an unlinked release), removed by the next run.

Every artifact is checked against the sha256 its build recorded before it
enters the pool, and copied there (not linked), so later changes to the
artifacts folder cannot reach a published release.  A client that read an
earlier InRelease can still fetch what it lists: each release carries the
by-hash indexes and pool files of the releases before it (KEEP_GENERATIONS,
and all of the last KEEP_SECONDS), hard-linked from its predecessor.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import lzma
import os
import re
import shutil
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from builder.base import digest
from builder.base.command import Runner
from builder.base.errors import ClusterStackError, VerificationError
from builder.base.progress import Progress
from builder.build import state
from builder.stack import seeds
from builder.stack.stack import Stack

from .signing import Signer

KEY_BASENAME = "clusterstack-archive-keyring"
KEEP_RELEASES = 2
# A client between reading InRelease and fetching what it lists must find
# those files even when publishes follow each other quickly.
KEEP_GENERATIONS = 3
KEEP_SECONDS = 24 * 3600
MAX_GENERATIONS = 50
MANIFEST = ".clusterstack-release.json"

# Lets the crash tests stop a real publish at an exact step and SIGKILL it
# there, without editing this code: publish pauses at the named step, after
# writing its pid and the step to the file named by PAUSE_FILE_ENV.
PAUSE_ENV = "CLUSTERSTACK_PUBLISH_PAUSE_AT"
PAUSE_FILE_ENV = "CLUSTERSTACK_PUBLISH_PAUSE_FILE"
STEPS = ("pool", "index", "release", "inrelease", "signed", "staged", "switched")


def _pause(step: str) -> None:
    if os.environ.get(PAUSE_ENV) != step:
        return
    if marker := os.environ.get(PAUSE_FILE_ENV):
        Path(marker).write_text(f"{os.getpid()} {step}\n")
    print(f"clusterstack: publish paused at step {step}", file=sys.stderr, flush=True)
    time.sleep(3600)


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


@dataclass(frozen=True)
class Component:
    """A built component as publish takes it: its state, checked."""

    st: state.ComponentState
    arts: Path
    state_path: Path


def pool_dir(source: str) -> str:
    prefix = source[:4] if source.startswith("lib") else source[0]
    return f"pool/main/{prefix}/{source}"


def _collect(stack: Stack) -> list[Component]:
    ws, prof = stack.workspace, stack.profile
    state_dir = ws.state_dir(prof.name)
    missing, found = [], []
    for recipe in stack.recipes:
        st = state.load(state_dir, recipe.name)
        arts = ws.artifacts_dir(prof.name, recipe.name)
        if st is None or not all((arts / f).is_file() for f in st.files):
            missing.append(recipe.name)
            continue
        path = state.path_for(state_dir, recipe.name)
        unrecorded = [f for f in st.files if f not in st.sha256]
        if unrecorded:
            raise VerificationError(
                f"{path}: records no sha256 for {', '.join(unrecorded)} (written before "
                f"clusterstack recorded them); rebuild it: clusterstack build --profile "
                f"{prof.name} --component {recipe.name}")
        found.append(Component(st, arts, path))
    if missing:
        raise ClusterStackError(f"not built for {prof.name}: {', '.join(missing)} "
                                f"(run `clusterstack build --profile {prof.name}` first)")
    return found


def _mismatch(src: Path, actual: str, expected: str, state_path: Path) -> VerificationError:
    return VerificationError(
        f"{src}: sha256 {actual} is not the {expected} its build recorded in {state_path}; "
        "refusing to publish it (rebuild the component, or bring its artifacts again)")


def _copy_checked(src: Path, dest: Path, expected: str, state_path: Path) -> None:
    """Copy src to dest, hashing the very bytes written; refuse a mismatch."""
    written = hashlib.sha256()
    with open(src, "rb") as fin, open(dest, "wb") as fout:
        for block in iter(lambda: fin.read(1 << 20), b""):
            written.update(block)
            fout.write(block)
    if written.hexdigest() != expected:
        dest.unlink()
        raise _mismatch(src, written.hexdigest(), expected, state_path)


def _assemble_pool(found: list[Component], staging: Path, previous: Path | None,
                   prev_pool: dict[str, str]) -> tuple[int, dict[str, str]]:
    """The pool in staging: every artifact checked against its recorded sha256;
    a file the previous release already holds with that digest is linked from
    there (its bytes are checked first all the same)."""
    count, pool = 0, {}
    for c in found:
        dest = staging / pool_dir(c.st.source)
        dest.mkdir(parents=True, exist_ok=True)
        for name in c.st.files:
            rel = f"{pool_dir(c.st.source)}/{name}"
            expected = c.st.sha256[name]
            target = dest / name
            count += name.endswith(".deb")
            if target.exists():
                continue
            if previous and prev_pool.get(rel) == expected and (previous / rel).is_file():
                actual = digest.of_file(c.arts / name)
                if actual != expected:
                    raise _mismatch(c.arts / name, actual, expected, c.state_path)
                os.link(previous / rel, target)
            else:
                _copy_checked(c.arts / name, target, expected, c.state_path)
            pool[rel] = expected
    return count, pool


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


def _index(stack: Stack, staging: Path, found: list[Component], cache: Path,
           runner: Runner) -> None:
    """Packages and Sources, one apt-ftparchive call per component.

    Each call gets a cache database named after the component's build key: an
    unchanged component is not read again, and a rebuilt one (even under the
    same version and file names) is never described from a stale cache.
    """
    prof = stack.profile
    tasks = _tasks(stack)
    keep = {f"{c.st.component}-{c.st.key[:20]}.db" for c in found}
    for stale in cache.glob("*.db"):
        if stale.name not in keep:
            stale.unlink()
    binaries: list[str] = []
    sources: list[str] = []
    for c in found:
        db = cache / f"{c.st.component}-{c.st.key[:20]}.db"
        path = pool_dir(c.st.source)
        out = runner.run(["apt-ftparchive", "-d", db, "packages", path], cwd=staging).stdout
        for stanza in _stanzas(out):
            for task in tasks.get(_field(stanza, "Package"), []):
                stanza += f"\nTask: {task}"
            binaries.append(stanza)
        if any(f.endswith(".dsc") for f in c.st.source_files):
            sources += _stanzas(runner.run(["apt-ftparchive", "-d", db, "sources", path],
                                           cwd=staging).stdout)
    dist = staging / "dists" / prof.suite
    for component in prof.components:
        for arch in prof.architectures:
            _write_index(dist / component / f"binary-{arch}", "Packages",
                         [b for b in binaries if _field(b, "Architecture") in (arch, "all")])
    _pause("index")
    for component in prof.components:
        _write_index(dist / component / "source", "Sources", sources)


def _release_options(stack: Stack) -> list[str]:
    prof = stack.profile
    fields = {
        "Origin": prof.origin, "Label": prof.label, "Suite": prof.suite,
        "Codename": prof.suite, "Architectures": " ".join(prof.architectures),
        "Components": " ".join(prof.components), "Acquire-By-Hash": "yes",
        "Description": f"ClusterStack cluster stack for {prof.description}",
    }
    options = [f"-oAPT::FTPArchive::Release::{k}={v}" for k, v in fields.items()]
    if prof.valid_until_days > 0:
        # Valid-Until = Date + this: apt refuses the Release once it has passed,
        # so a mirror cannot keep serving a stale repository as current.
        seconds = round(prof.valid_until_days * 86400)
        options.append(f"-oAPT::FTPArchive::Release::ValidTime={seconds}")
    return options


def _read_manifest(release: Path | None) -> list[dict]:
    if release is None:
        return []
    try:
        data = json.loads((release / MANIFEST).read_text())
        generations = data["generations"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [g for g in generations if isinstance(g, dict)]


def _by_hash_files(staging: Path) -> list[str]:
    return sorted(str(p.relative_to(staging)) for p in (staging / "dists").rglob("by-hash/*/*")
                  if p.is_file())


def _carry(staging: Path, previous: Path | None, generations: list[dict],
           now: float) -> list[dict]:
    """Link the files of recent earlier releases into staging; return the
    generations kept (a predecessor holds all of its own kept ones)."""
    kept = []
    for i, gen in enumerate(generations):
        recent = now - float(gen.get("published", 0)) < KEEP_SECONDS
        if not (i < KEEP_GENERATIONS - 1 or (recent and i < MAX_GENERATIONS - 1)):
            break
        kept.append(gen)
        if previous is None:
            continue
        for rel in [*gen.get("pool", {}), *gen.get("by_hash", [])]:
            src, dest = previous / rel, staging / rel
            if dest.exists() or not src.is_file() or ".." in Path(rel).parts:
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(src, dest)
    return kept


def _sync_tree(root: Path) -> None:
    """fsync every file and folder: a release is durable before it is linked."""
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                continue
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _sync_dir(Path(dirpath))


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _switch(link: Path, target: Path) -> None:
    tmp = link.with_name(f".{link.name}.{os.getpid()}.link")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(os.path.relpath(target, link.parent))
    os.replace(tmp, link)   # rename(2) is atomic: readers see old or new
    _sync_dir(link.parent)


def _current(link: Path) -> Path | None:
    try:
        target = link.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    return target if target.is_dir() and link.is_symlink() else None


def _prune(releases: Path, profile: str, keep: set[Path]) -> None:
    """Remove every release but the current and the previous one, and leftovers."""
    for stale in releases.glob(f"{profile}-*"):
        if stale not in keep:
            shutil.rmtree(stale, ignore_errors=True)
    for staging in releases.glob(f".staging-{profile}-*"):
        shutil.rmtree(staging, ignore_errors=True)


def _clear_leftovers(releases: Path, link: Path) -> None:
    """What a killed earlier publish left: its staging folder, its link."""
    for leftover in releases.glob(f".staging-{link.name}-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    for tmp_link in link.parent.glob(f".{link.name}.*.link"):
        tmp_link.unlink(missing_ok=True)


def publish(stack: Stack, signer: Signer, runner: Runner, progress: Progress) -> Published:
    """Publish the built components; the signer is closed afterwards (its
    temporary GNUPGHOME removed), whether publishing succeeded or not."""
    try:
        return _publish(stack, signer, runner, progress)
    finally:
        signer.close()


def _publish(stack: Stack, signer: Signer, runner: Runner, progress: Progress) -> Published:
    ws, prof = stack.workspace, stack.profile
    found = _collect(stack)
    releases = ws.public_dir / ".releases"
    releases.mkdir(parents=True, exist_ok=True)
    link = ws.published_repo(prof.name)
    _clear_leftovers(releases, link)
    previous = _current(link)
    generations = _read_manifest(previous)
    staging = releases / f".staging-{prof.name}-{os.getpid()}"
    staging.mkdir()
    try:
        progress.say("repository", "pool", f"{len(found)} components")
        prev_pool = generations[0].get("pool", {}) if generations else {}
        count, pool = _assemble_pool(found, staging, previous, prev_pool)
        _pause("pool")
        dist = staging / "dists" / prof.suite
        cache = ws.profile_out(prof.name) / "ftparchive-cache"
        cache.mkdir(parents=True, exist_ok=True)
        progress.say("repository", "index", "apt-ftparchive")
        _index(stack, staging, found, cache, runner)
        # Written beside dists/, not into it: the Release must not list itself.
        release_tmp = staging / ".Release"
        runner.run(["apt-ftparchive", "-oAPT::FTPArchive::DoByHash=true",
                    *_release_options(stack), "release", f"dists/{prof.suite}"],
                   cwd=staging, stdout_to=release_tmp)
        release_tmp.rename(dist / "Release")
        _pause("release")
        now = time.time()
        own = {"release": "", "published": now, "pool": pool,
               "by_hash": _by_hash_files(staging)}
        kept = _carry(staging, previous, generations, now)
        progress.say("repository", "sign", signer.fingerprint[-16:])
        signer.clearsign(dist / "Release", dist / "InRelease")
        _pause("inrelease")
        signer.detach_sign(dist / "Release", dist / "Release.gpg")
        signer.export_public(staging / f"{KEY_BASENAME}.asc", staging / f"{KEY_BASENAME}.gpg")
        _pause("signed")
        final = releases / (f"{prof.name}-{time.strftime('%Y%m%dT%H%M%S')}-"
                            f"{uuid.uuid4().hex[:8]}")
        own["release"] = final.name
        (staging / MANIFEST).write_text(json.dumps({"format": 1, "generations": [own, *kept]},
                                                   indent=1, sort_keys=True))
        _sync_tree(staging)
        staging.rename(final)
        _sync_dir(releases)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _pause("staged")
    _switch(link, final)
    _pause("switched")
    _prune(releases, prof.name, {final, *([previous] if previous else [])})
    progress.say("repository", "published", str(link))
    return Published(link, final, prof.suite, count, signer.fingerprint)
