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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import rootfs, seeds, validity
from .command import CommandError, Runner
from .errors import ClusterStackError
from .progress import Progress
from .publish import KEY_BASENAME
from .serve import serve
from .stack import Stack
from .upstart.lint import ERROR, lint_file, main_exec_paths
from .upstart.parser import parse

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
        except ClusterStackError as exc:
            detail, ok = str(exc).strip().splitlines()[-1][:200], False
        except Exception as exc:  # a broken step still gets its table row
            detail, ok = f"{type(exc).__name__}: {exc}"[:200], False
        checks.append(Check(name, ok, detail, time.monotonic() - started))
        return ok

    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    root = rootfs.Root(work / "root", runner)
    run_cache = work / "apt-archives"
    ours = cached_names(repo)

    def fresh_root() -> str:
        # No tasksel: the installer's pkgsel installs it, from every source
        # the target has by then (ours included).
        tarball = rootfs.create_tarball(prof, work / "root.tar", runner)
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
            add_repository(root, repo, url, prof.suite, prof.components)
            res = root.run(["apt-get", "update"])
            warnings = [ln for ln in (res.stdout + res.stderr_tail).splitlines()
                        if ln.startswith(("W:", "E:")) and "127.0.0.1" in ln]
            require(not warnings, warnings[0] if warnings else "")
            lists = root.path / "var/lib/apt/lists"
            require(any(lists.glob("127.0.0.1*_InRelease")), "apt kept no verified InRelease")
            policy = root.run(["apt-cache", "policy", seed.key]).stdout
            require("127.0.0.1" in policy, f"{seed.key} is not offered by our repository")
            return f"signed-by {KEY_BASENAME}.gpg, InRelease verified"

        def installer_tasks() -> str:
            # What d-i's pkgsel does in the target: install tasksel, then run
            # it in the mode that reads only debian-tasks.desc.
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

        def install_meta() -> str:
            before = installed_sizes(root)
            root.run(["apt-get", "install", "-y", seed.key], timeout=1800)
            version = _installed_version(root, seed.key)
            require(version, f"{seed.key} is not installed")
            for entry in seed.depends:
                alts = [a.strip() for a in entry.split("|")]
                require(any(_installed_version(root, a) for a in alts), f"{entry} not installed")
            weight = weigh(before, installed_sizes(root))
            progress.say("verify", "weight", str(weight))
            require(not weight.cloud_sdks, f"{weight}; cloud SDKs on a default node: "
                    f"{', '.join(weight.cloud_sdks)}")
            require(weight.mib <= NODE_LIMIT_MIB, f"{weight}: above the limit of "
                    f"{NODE_LIMIT_MIB} MiB")
            return f"{seed.key} {version}: {weight} (limit {NODE_LIMIT_MIB} MiB), no cloud SDK"

        def installer_task_install() -> str:
            root.run(["apt-get", "remove", "-y", seed.key])
            require(not _installed_version(root, seed.key), f"{seed.key} still installed")
            root.run(["tasksel", "install", NODE_SEED], env={"DEBIAN_TASKS_ONLY": "1"},
                     timeout=1800)
            version = _installed_version(root, seed.key)
            require(version, f"tasksel did not install {seed.key}")
            return f"DEBIAN_TASKS_ONLY=1 tasksel install {NODE_SEED} -> {seed.key} {version}"

        def upstart_jobs() -> str:
            root.run(["apt-get", "install", "-y", UPSTART_PACKAGE])
            jobs = sorted((root.path / "etc/init").glob("*.conf"))
            require(jobs, f"{UPSTART_PACKAGE} installed no /etc/init/*.conf")
            errors = [str(f) for job in jobs for f in lint_file(job, runner=runner)
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

        try:
            step("expired Release refused (Valid-Until)",
                 lambda: validity.expired_release_refused(repo, runner, suite=prof.suite))
            if step("fresh root", fresh_root) and step("apt-get update (signature)", add_repo):
                tasks_ok = step("installer's tasksel (DEBIAN_TASKS_ONLY)", installer_tasks)
                if step(f"apt-get install {seed.key}", install_meta):
                    step(f"{UPSTART_PACKAGE} installed", upstart_jobs)
                    if tasks_ok:
                        step(f"tasksel install {NODE_SEED} (installer mode)",
                             installer_task_install)
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
