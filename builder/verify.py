"""`clusterstack verify`: install from the published repository into a fresh root.

Proves what a new user does: add our repository with signed-by, apt-get
update (signature verified), apt-get install ubuntu-cluster, and pick
"Cluster node" in tasksel.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import rootfs, seeds
from .command import CommandError, Runner
from .errors import ClusterStackError
from .progress import Progress
from .publish import KEY_BASENAME
from .serve import serve
from .stack import Stack
from .upstart.lint import ERROR, lint_file, main_exec_paths
from .upstart.parser import parse

NODE_SEED = "cluster-node"
TASKS_PACKAGE = "cluster-tasks"
UPSTART_PACKAGE = "cluster-stack-upstart"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    seconds: float


class VerifyFailed(ClusterStackError):
    pass


def _installed_version(root: rootfs.Root, package: str) -> str | None:
    res = root.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev} ${Version}", package],
                   check=False)
    status, _, version = res.stdout.partition(" ")
    return version.strip() if res.returncode == 0 and status.strip() == "ii" else None


def format_table(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = [f"{'check':<{width}}  result  time    detail"]
    for c in checks:
        lines.append(f"{c.name:<{width}}  {'PASS' if c.ok else 'FAIL':<6}  "
                     f"{c.seconds:5.1f}s  {c.detail}")
    passed = sum(c.ok for c in checks)
    lines.append(f"{passed} passed, {len(checks) - passed} failed")
    return "\n".join(lines)


def verify(stack: Stack, runner: Runner, progress: Progress, work: Path,
           apt_cache: Path | None = None) -> list[Check]:
    ws, prof = stack.workspace, stack.profile
    repo = ws.published_repo(prof.name)
    if not (repo / "dists" / prof.suite / "InRelease").is_file():
        raise ClusterStackError(f"no published repository at {repo} "
                                f"(run `clusterstack publish --profile {prof.name}` first)")
    seed = seeds.load(ws.seeds_dir / f"{NODE_SEED}.seed")
    checks: list[Check] = []

    def step(name: str, fn: Callable[[], str]) -> bool:
        progress.say("verify", "check", name)
        started = time.monotonic()
        try:
            detail, ok = fn(), True
        except (ClusterStackError, AssertionError) as exc:
            detail, ok = str(exc).strip().splitlines()[-1][:200], False
        checks.append(Check(name, ok, detail, time.monotonic() - started))
        return ok

    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    root = rootfs.Root(work / "root", runner)
    run_cache = work / "apt-archives"
    ours = cached_names(repo)

    def fresh_root() -> str:
        tarball = rootfs.create_tarball(prof, work / "root.tar", runner, include=["tasksel"])
        rootfs.unpack(tarball, root.path, runner)
        tarball.unlink()
        root.forbid_service_starts()
        if apt_cache:
            share_cache(apt_cache, run_cache, ours, into_run=True)
            root.binds.append((run_cache, "/var/cache/apt/archives"))
            # The cache folder belongs to the host; let apt write it as root.
            root.write("/etc/apt/apt.conf.d/99clusterstack-cache",
                       'APT::Sandbox::User "root";\nAPT::Keep-Downloaded-Packages "true";\n')
        return f"mmdebstrap {prof.suite} ({prof.arch})"

    with serve(repo) as url:
        def add_repo() -> str:
            root.write(f"/etc/apt/keyrings/{KEY_BASENAME}.gpg",
                       (repo / f"{KEY_BASENAME}.gpg").read_bytes())
            root.write("/etc/apt/sources.list.d/clusterstack.sources",
                       f"Types: deb\nURIs: {url}/\nSuites: {prof.suite}\n"
                       f"Components: {' '.join(prof.components)}\n"
                       f"Signed-By: /etc/apt/keyrings/{KEY_BASENAME}.gpg\n")
            res = root.run(["apt-get", "update"])
            warnings = [ln for ln in (res.stdout + res.stderr_tail).splitlines()
                        if ln.startswith(("W:", "E:")) and "127.0.0.1" in ln]
            assert not warnings, warnings[0]
            lists = root.path / "var/lib/apt/lists"
            assert any(lists.glob("127.0.0.1*_InRelease")), "apt kept no verified InRelease"
            policy = root.run(["apt-cache", "policy", seed.key]).stdout
            assert "127.0.0.1" in policy, f"{seed.key} is not offered by our repository"
            return f"signed-by {KEY_BASENAME}.gpg, InRelease verified"

        def install_meta() -> str:
            root.run(["apt-get", "install", "-y", seed.key], timeout=1800)
            version = _installed_version(root, seed.key)
            assert version, f"{seed.key} is not installed"
            for entry in seed.depends:
                alts = [a.strip() for a in entry.split("|")]
                assert any(_installed_version(root, a) for a in alts), f"{entry} not installed"
            return f"{seed.key} {version} with {len(seed.depends)} core dependencies"

        def task_listed() -> str:
            root.run(["apt-get", "install", "-y", TASKS_PACKAGE])
            out = root.run(["tasksel", "--list-tasks"]).stdout
            wanted = f"{NODE_SEED}\t{seed.description}"
            line = next((ln for ln in out.splitlines() if ln[2:] == wanted), None)
            assert line, f"tasksel --list-tasks has no '{wanted}'"
            return line.replace("\t", "  ")

        def task_install() -> str:
            root.run(["apt-get", "remove", "-y", seed.key])
            assert not _installed_version(root, seed.key), f"{seed.key} still installed"
            root.run(["tasksel", "install", NODE_SEED], timeout=1800)
            version = _installed_version(root, seed.key)
            assert version, f"tasksel did not install {seed.key}"
            return f"tasksel install {NODE_SEED} -> {seed.key} {version}"

        def upstart_jobs() -> str:
            root.run(["apt-get", "install", "-y", UPSTART_PACKAGE])
            jobs = sorted((root.path / "etc/init").glob("*.conf"))
            assert jobs, f"{UPSTART_PACKAGE} installed no /etc/init/*.conf"
            errors = [str(f) for job in jobs for f in lint_file(job, runner=runner)
                      if f.severity == ERROR]
            assert not errors, errors[0]
            # Each installed daemon's job must exec a file that is really there.
            for name in ("corosync", "pacemaker"):
                path = root.path / f"etc/init/{name}.conf"
                job = parse(path.read_text(encoding="utf-8"), str(path))
                for _, program in main_exec_paths(job):
                    assert (root.path / program.lstrip("/")).exists(), \
                        f"{name}.conf execs {program}, not installed"
            return f"{len(jobs)} jobs in /etc/init lint clean; exec paths present"

        try:
            if step("fresh root", fresh_root) and step("apt-get update (signature)", add_repo):
                if step(f"apt-get install {seed.key}", install_meta):
                    step(f"{UPSTART_PACKAGE} installed", upstart_jobs)
                if step("tasksel --list-tasks", task_listed):
                    step(f"tasksel install {NODE_SEED}", task_install)
        except CommandError as exc:  # pragma: no cover - step() catches these
            raise VerifyFailed(str(exc)) from exc
        finally:
            if apt_cache:
                share_cache(run_cache, apt_cache, ours, into_run=False)
    return checks


def cached_names(repo: Path) -> set[str]:
    """The file names apt gives our packages in its cache: PACKAGE_VERSION_ARCH.deb
    with the version's epoch colon escaped (pool names leave the epoch out)."""
    names = set()
    for index in repo.glob("dists/*/*/binary-*/Packages"):
        for stanza in index.read_text(encoding="utf-8").split("\n\n"):
            f = dict(re.findall(r"^(Package|Version|Architecture): (.*)$", stanza, re.M))
            if len(f) == 3:
                names.add(f"{f['Package']}_{f['Version'].replace(':', '%3a')}_"
                          f"{f['Architecture']}.deb")
    return names


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except FileExistsError:
        pass
    except OSError:
        shutil.copyfile(src, dest)


def share_cache(src: Path, dest: Path, ours: set[str], *, into_run: bool) -> None:
    """Hand the base archive's .debs between the shared apt cache and this run's.

    Each run has a cache folder of its own, so that two runs never pull files
    from under each other; our own packages never enter the shared cache: they
    may be rebuilt under an unchanged version, and apt must fetch them from our
    repository.
    """
    (dest / "partial").mkdir(parents=True, exist_ok=True)
    if not src.is_dir():
        return
    for deb in src.glob("*.deb"):
        if deb.name not in ours and (into_run or not (dest / deb.name).exists()):
            _link_or_copy(deb, dest / deb.name)
