"""`clusterstack verify`: install from the published repository into a fresh root.

Proves what a new user does: add our repository with signed-by, apt-get
update (signature verified), apt-get install ubuntu-cluster, and pick
"Cluster node" in tasksel.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.base.command import Runner
from builder.base.errors import ClusterStackError
from builder.base.progress import Progress
from builder.base.serve import serve
from builder.repo import validity
from builder.repo.publish import KEY_BASENAME
from builder.stack import seeds
from builder.stack.stack import Stack
from builder.tree.upstart.lint import ERROR, lint_file, main_exec_paths
from builder.tree.upstart.parser import parse

from . import rootfs
from .cluster.steps import StepRunner

NODE_SEED = "cluster-node"
UPSTART_PACKAGE = "cluster-stack-upstart"
# What a default node (apt's defaults, Recommends on) may weigh: Debian's own
# stack installs 774 packages, 2.7 GiB, mostly cloud SDKs pulled in through
# fence-agents-all; ours stays well below this.
NODE_LIMIT_MIB = 450
# Pulled in only by cloud fence or resource agents; none belongs on a default node.
CLOUD_SDK = re.compile(r"^python3-(azure|boto3|botocore|googleapi|google-auth|kubernetes|"
                       r"openstacksdk|novaclient|keystoneauth1|aliyun|oci)\b")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    seconds: float


class VerifyFailed(ClusterStackError):
    pass


class CheckFailed(ClusterStackError):
    """A product check that did not hold (never an assert: those vanish under -O)."""


def require(condition: object, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def _installed_version(root: rootfs.Root, package: str) -> str | None:
    res = root.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev} ${Version}", package],
                   check=False)
    status, _, version = res.stdout.partition(" ")
    return version.strip() if res.returncode == 0 and status.strip() == "ii" else None


def installed_sizes(root: rootfs.Root) -> dict[str, int]:
    """Installed package -> Installed-Size in KiB."""
    out = root.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}\t${Package}\t"
                    "${Installed-Size}\n"]).stdout
    sizes = {}
    for line in out.splitlines():
        status, name, size = [*line.split("\t"), "", ""][:3]
        if status.strip() == "ii":
            sizes[name] = int(size or 0)
    return sizes


@dataclass(frozen=True)
class Weight:
    packages: int
    mib: float
    cloud_sdks: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.packages} packages, {self.mib:.0f} MiB installed"


def weigh(before: dict[str, int], after: dict[str, int]) -> Weight:
    added = {n: k for n, k in after.items() if n not in before}
    return Weight(len(added), sum(added.values()) / 1024,
                  tuple(sorted(n for n in added if CLOUD_SDK.match(n))))


def add_repository(root: rootfs.Root, repo: Path, url: str, suite: str,
                   components: Sequence[str] = ("main",)) -> None:
    """Our published repository as a node adds it: its key, a deb822 source
    with Signed-By (the README's instructions)."""
    root.write(f"/etc/apt/keyrings/{KEY_BASENAME}.gpg",
               (repo / f"{KEY_BASENAME}.gpg").read_bytes())
    root.write("/etc/apt/sources.list.d/clusterstack.sources",
               f"Types: deb\nURIs: {url}/\nSuites: {suite}\n"
               f"Components: {' '.join(components)}\n"
               f"Signed-By: /etc/apt/keyrings/{KEY_BASENAME}.gpg\n")


def format_table(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = [f"{'check':<{width}}  result  time    detail"]
    for c in checks:
        lines.append(f"{c.name:<{width}}  {'PASS' if c.ok else 'FAIL':<6}  "
                     f"{c.seconds:5.1f}s  {c.detail}")
    passed = sum(c.ok for c in checks)
    lines.append(f"{passed} passed, {len(checks) - passed} failed")
    return "\n".join(lines)


class Checks(StepRunner):
    """verify's steps (cluster.steps' runner): each one a row of the table, as it ran.

    None is skipped by the runner: `verify` says which run after a failure, and a
    check not run has no row.
    """

    skip_after_failure = False

    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress
        self.rows: list[Check] = []

    def started(self, name: str) -> None:
        self.progress.say("verify", "check", name)

    def ended(self, name: str, value: Any, exc: BaseException | None, seconds: float) -> None:
        if exc is None:
            detail = value
        elif isinstance(exc, ClusterStackError):
            detail = (str(exc).strip().splitlines() or [""])[-1][:200]
        else:  # a broken step still gets its table row
            detail = f"{type(exc).__name__}: {exc}"[:200]
        self.rows.append(Check(name, exc is None, detail, seconds))


@dataclass
class Target:
    """The fresh root verify installs into, and what its checks need."""

    stack: Stack
    runner: Runner
    progress: Progress
    work: Path
    apt_cache: Path | None
    repo: Path
    seed: seeds.Seed
    url: str = ""  # our repository, served while the checks run

    def __post_init__(self) -> None:
        self.root = rootfs.Root(self.work / "root", self.runner)
        self.run_cache = self.work / "apt-archives"
        self.ours = cached_names(self.repo)

    def fresh_root(self) -> str:
        # No tasksel: the installer's pkgsel installs it, from every source
        # the target has by then (ours included).
        prof, root = self.stack.profile, self.root
        tarball = rootfs.create_tarball(prof, self.stack.workspace.cache_dir / "fresh-roots",
                                        self.runner)
        rootfs.unpack(tarball, root.path, self.runner)
        root.forbid_service_starts()
        if self.apt_cache:
            share_cache(self.apt_cache, self.run_cache, self.ours, into_run=True)
            root.binds.append((self.run_cache, "/var/cache/apt/archives"))
            # The cache folder belongs to the host; let apt write it as root.
            root.write("/etc/apt/apt.conf.d/99clusterstack-cache",
                       'APT::Sandbox::User "root";\nAPT::Keep-Downloaded-Packages "true";\n')
        return f"mmdebstrap {prof.suite} ({prof.arch})"

    def add_repo(self) -> str:
        prof, root, seed = self.stack.profile, self.root, self.seed
        add_repository(root, self.repo, self.url, prof.suite, prof.components)
        res = root.run(["apt-get", "update"])
        warnings = [ln for ln in (res.stdout + res.stderr_tail).splitlines()
                    if ln.startswith(("W:", "E:")) and "127.0.0.1" in ln]
        require(not warnings, warnings[0] if warnings else "")
        lists = root.path / "var/lib/apt/lists"
        require(any(lists.glob("127.0.0.1*_InRelease")), "apt kept no verified InRelease")
        policy = root.run(["apt-cache", "policy", seed.key]).stdout
        require("127.0.0.1" in policy, f"{seed.key} is not offered by our repository")
        return f"signed-by {KEY_BASENAME}.gpg, InRelease verified"

    def installer_tasks(self) -> str:
        # What d-i's pkgsel does in the target: install tasksel, then run
        # it in the mode that reads only debian-tasks.desc.
        root, seed = self.root, self.seed
        root.run(["apt-get", "install", "-y", "tasksel"])
        data = _installed_version(root, "tasksel-data") or "none"
        listed = root.run(["tasksel", "--list-tasks"], env={"DEBIAN_TASKS_ONLY": "1"})
        out = listed.stdout
        # tasksel skips a line it cannot parse with only a warning; the
        # installer's task list must parse cleanly.
        warnings = [ln for ln in (listed.stdout + listed.stderr_tail).splitlines()
                    if "parse error" in ln]
        require(not warnings, f"tasksel warns about debian-tasks.desc: {warnings[0]}"
                if warnings else "")
        wanted = f"{NODE_SEED}\t{seed.description}"
        line = next((ln for ln in out.splitlines() if ln[2:] == wanted), None)
        require(line, f"DEBIAN_TASKS_ONLY=1 tasksel --list-tasks has no '{wanted}' "
                f"(tasksel-data {data})")
        return f"{line.replace(chr(9), '  ')} (tasksel-data {data})"

    def install_meta(self) -> str:
        root, seed = self.root, self.seed
        before = installed_sizes(root)
        root.run(["apt-get", "install", "-y", seed.key], timeout=1800)
        version = _installed_version(root, seed.key)
        require(version, f"{seed.key} is not installed")
        for entry in seed.depends:
            alts = [a.strip() for a in entry.split("|")]
            require(any(_installed_version(root, a) for a in alts), f"{entry} not installed")
        weight = weigh(before, installed_sizes(root))
        self.progress.say("verify", "weight", str(weight))
        require(not weight.cloud_sdks, f"{weight}; cloud SDKs on a default node: "
                f"{', '.join(weight.cloud_sdks)}")
        require(weight.mib <= NODE_LIMIT_MIB, f"{weight}: above the limit of "
                f"{NODE_LIMIT_MIB} MiB")
        return f"{seed.key} {version}: {weight} (limit {NODE_LIMIT_MIB} MiB), no cloud SDK"

    def installer_task_install(self) -> str:
        root, seed = self.root, self.seed
        root.run(["apt-get", "remove", "-y", seed.key])
        require(not _installed_version(root, seed.key), f"{seed.key} still installed")
        root.run(["tasksel", "install", NODE_SEED], env={"DEBIAN_TASKS_ONLY": "1"},
                 timeout=1800)
        version = _installed_version(root, seed.key)
        require(version, f"tasksel did not install {seed.key}")
        return f"DEBIAN_TASKS_ONLY=1 tasksel install {NODE_SEED} -> {seed.key} {version}"

    def upstart_jobs(self) -> str:
        root = self.root
        root.run(["apt-get", "install", "-y", UPSTART_PACKAGE])
        jobs = sorted((root.path / "etc/init").glob("*.conf"))
        require(jobs, f"{UPSTART_PACKAGE} installed no /etc/init/*.conf")
        errors = [str(f) for job in jobs for f in lint_file(job, runner=self.runner)
                  if f.severity == ERROR]
        require(not errors, errors[0] if errors else "")
        # Each installed daemon's job must exec a file that is really there.
        for name in ("corosync", "pacemaker"):
            path = root.path / f"etc/init/{name}.conf"
            job = parse(path.read_text(encoding="utf-8"), str(path))
            for _, program in main_exec_paths(job):
                require((root.path / program.lstrip("/")).exists(),
                        f"{name}.conf execs {program}, not installed")
        return f"{len(jobs)} jobs in /etc/init lint clean; exec paths present"


def verify(stack: Stack, runner: Runner, progress: Progress, work: Path,
           apt_cache: Path | None = None) -> list[Check]:
    ws, prof = stack.workspace, stack.profile
    repo = ws.published_repo(prof.name)
    if not (repo / "dists" / prof.suite / "InRelease").is_file():
        raise ClusterStackError(f"no published repository at {repo} "
                                f"(run `clusterstack publish --profile {prof.name}` first)")
    seed = seeds.load(ws.seeds_dir / f"{NODE_SEED}.seed")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    target = Target(stack, runner, progress, work, apt_cache, repo, seed)
    check = Checks(progress)
    with serve(repo) as url:
        target.url = url
        try:
            check("expired Release refused (Valid-Until)",
                  lambda: validity.expired_release_refused(repo, runner, suite=prof.suite))
            if (check.ok("fresh root", target.fresh_root)
                    and check.ok("apt-get update (signature)", target.add_repo)):
                tasks_ok = check.ok("installer's tasksel (DEBIAN_TASKS_ONLY)",
                                    target.installer_tasks)
                if check.ok(f"apt-get install {seed.key}", target.install_meta):
                    check(f"{UPSTART_PACKAGE} installed", target.upstart_jobs)
                    if tasks_ok:
                        check(f"tasksel install {NODE_SEED} (installer mode)",
                              target.installer_task_install)
        finally:
            if apt_cache:
                share_cache(target.run_cache, apt_cache, target.ours, into_run=False)
    return check.rows


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
