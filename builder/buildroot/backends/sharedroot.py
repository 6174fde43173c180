"""One build root for several small builds: unpacked once, Build-Depends installed once.

sbuild unpacks the build root, updates it and installs the build
dependencies for every source it builds: 20-28 s each for the native
packages, whose own build takes a second or two.  Here the profile's build-root
tarball (the same one sbuild gets) is unpacked once, the union of the
requests' Build-Depends is installed once (nothing at all when the root
already has them: no apt run), and each source is then unpacked and built with
`dpkg-buildpackage` as sbuild runs it: the same options, the same filtered
environment, its own directory, no network for the build step.  Each build
leaves its own .deb, .buildinfo and .changes in its own out_dir, as sbuild does;
builds in different directories of the root may run at the same time.

The build path is fixed (`/build/reproducible-path/<source>-<version>`, as
sbuild does from 0.86 on) instead of sbuild 0.85's random one.

Commands run chrooted, as root, in private mount and PID namespaces (/proc
goes with them); the build step also in a network namespace of its own,
with no interface up.  Unpacking with the tarball's numeric owners needs
root, as verify's fresh roots do.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from builder.base.command import Result, Runner
from builder.base.errors import ClusterStackError

from .. import roots
from ..backend import BuildRequest, BuildResult, BuildSession, build_env, collect_result

log = logging.getLogger("clusterstack.sharedroot")

BUILD_DIR = "/build/reproducible-path"
NEEDS = "/build/clusterstack-needs.control"
EXTRA_REPO = "/build/clusterstack-extra"
# What sbuild adds to every source's Build-Depends.
ALWAYS = ("build-essential", "fakeroot")
# Mounts /proc in the new mount namespace, then chroots.  Arguments: ROOT, the command.
ENTER = 'set -e; root=$1; shift; mount -t proc proc "$root/proc"; exec chroot "$root" "$@"'
# The build's environment as sbuild 0.85 gives it (its filter lets only
# DEB_BUILD_OPTIONS of ours through): it ends up in the .buildinfo.
BUILD_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "MAKEFLAGS": "",
    "SHELL": "/bin/sh",
}
APT_ENV = {**BUILD_ENV, "DEBIAN_FRONTEND": "noninteractive"}
APT = ["apt-get", "-q", "-y", "-o", "APT::Install-Recommends=false"]


class SharedRootError(ClusterStackError):
    """The shared build root could not be set up, or one build in it failed."""


def _dsc(path: Path) -> Mapping[str, str]:
    from debian.deb822 import Dsc
    try:
        return Dsc(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SharedRootError(f"{path}: cannot read the source package: {exc.strerror}") from exc


def needs(request: BuildRequest) -> tuple[list[str], list[str]]:
    """(Build-Depends, Build-Conflicts) of one request, as sbuild merges them:
    the -Indep fields for arch all, the -Arch ones for arch any, its add_depends."""
    info = _dsc(request.dsc)
    kinds = ["", *(["-Indep"] if request.arch_all else []),
             *(["-Arch"] if request.arch_any else [])]
    depends = [d for k in kinds for d in _split(info.get(f"Build-Depends{k}", ""))]
    conflicts = [d for k in kinds for d in _split(info.get(f"Build-Conflicts{k}", ""))]
    return [*depends, *request.add_depends], conflicts


def _split(field_value: str) -> list[str]:
    return [d.strip() for d in " ".join(field_value.split()).split(",") if d.strip()]


def union(requests: Sequence[BuildRequest]) -> tuple[list[str], list[str]]:
    """(Build-Depends, Build-Conflicts) of all the requests, each once, sbuild's own first."""
    depends: list[str] = list(ALWAYS)
    conflicts: list[str] = []
    for req in requests:
        d, c = needs(req)
        depends += [x for x in d if x not in depends]
        conflicts += [x for x in c if x not in conflicts]
    return depends, conflicts


def needs_control(requests: Sequence[BuildRequest]) -> str:
    """A control file naming what all the requests need, for dpkg-checkbuilddeps."""
    depends, conflicts = union(requests)
    lines = ["Source: clusterstack-shared-root", "Build-Depends: " + ", ".join(depends)]
    if conflicts:
        lines.append("Build-Conflicts: " + ", ".join(conflicts))
    return "\n".join(lines) + "\n\nPackage: clusterstack-shared-root\nArchitecture: all\n"


def build_dir_name(dsc: Path) -> str:
    """`<source>-<upstream version>`, the directory sbuild unpacks a source into."""
    info = _dsc(dsc)
    version = info["Version"].split(":", 1)[-1]
    upstream = version.rsplit("-", 1)[0] if "-" in version else version
    return f"{info['Source']}-{upstream}"


def buildpackage_argv(request: BuildRequest) -> list[str]:
    """dpkg-buildpackage as sbuild runs it for the request's architectures."""
    which = ("-b" if request.arch_all and request.arch_any
             else "-A" if request.arch_all else "-B")
    return ["dpkg-buildpackage", "--sanitize-env", "-us", "-uc", which, "-rfakeroot"]


def inside_env(request: BuildRequest) -> dict[str, str]:
    """The build step's environment: sbuild's, with DEB_BUILD_OPTIONS as build_env sets it."""
    ours = build_env(request)
    return {**BUILD_ENV, **{k: v for k, v in ours.items() if k == "DEB_BUILD_OPTIONS"}}


@dataclass
class SharedRoot(BuildSession):
    """An unpacked build root with what its requests need; builds one request per call."""

    path: Path
    runner: Runner                        # the set-up's log
    built: list[str] = field(default_factory=list)

    def run(self, argv: Sequence[str], runner: Runner, *, env: Mapping[str, str],
            network: bool = True, cwd: str = "/", check: bool = True) -> Result:
        """argv chrooted in the root, in namespaces that go with it."""
        isolate = [] if network else ["--net"]
        return runner.run(
            ["unshare", "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private",
             *isolate, "sh", "-c", ENTER, "enter", str(self.path),
             "env", "-i", "-C", cwd, *(f"{k}={v}" for k, v in env.items()), *argv],
            check=check)

    def set_up(self, requests: Sequence[BuildRequest]) -> None:
        """Install what the requests need; no apt run when the root has it all."""
        control = self.path / NEEDS.lstrip("/")
        control.parent.mkdir(parents=True, exist_ok=True)
        control.write_text(needs_control(requests), encoding="utf-8")
        # As in any Debian chroot: maintainer scripts must not start daemons here.
        policy = self.path / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        extra = sorted({d for r in requests for d in r.extra_debs}, key=lambda p: p.name)
        if extra:
            self._offer(extra)
        met = self.run(["dpkg-checkbuilddeps", NEEDS], self.runner, env=APT_ENV, check=False)
        if met.returncode == 0 and not extra:
            return
        # As sbuild does before installing: the root brought up to date first.
        self.run([*APT[:3], "update"], self.runner, env=APT_ENV)
        self.run([*APT, "dist-upgrade"], self.runner, env=APT_ENV)
        self.run([*APT, "satisfy", ", ".join(union(requests)[0])], self.runner, env=APT_ENV)
        again = self.run(["dpkg-checkbuilddeps", NEEDS], self.runner, env=APT_ENV, check=False)
        if again.returncode != 0:
            raise SharedRootError(f"{self.runner.log_path}: the shared build root still lacks "
                                  f"build-dependencies: {again.stderr_tail.strip()}")

    def _offer(self, debs: Sequence[Path]) -> None:
        """Our packages built earlier, offered to apt as sbuild's --extra-package does."""
        repo = self.path / EXTRA_REPO.lstrip("/")
        repo.mkdir(parents=True, exist_ok=True)
        for deb in debs:
            shutil.copyfile(deb, repo / deb.name)
        self.run(["sh", "-c", "dpkg-scanpackages . > Packages"], self.runner, env=APT_ENV,
                 cwd=EXTRA_REPO)
        (self.path / "etc/apt/sources.list.d/clusterstack-extra.list").write_text(
            f"deb [trusted=yes] file:{EXTRA_REPO} ./\n")

    def build(self, request: BuildRequest) -> BuildResult:
        """Build one request; several may build at once (each in its own directory,
        its outputs named by its source and version)."""
        runner = request.runner or self.runner
        request.out_dir.mkdir(parents=True, exist_ok=True)
        work = self.path / BUILD_DIR.lstrip("/")
        work.mkdir(parents=True, exist_ok=True)
        info = _dsc(request.dsc)
        sources = [request.dsc.name, *(f["name"] for f in info["Files"])]
        for name in sources:
            shutil.copyfile(request.dsc.parent / name, work / name)
        tree = build_dir_name(request.dsc)
        stem = request.dsc.stem
        try:
            self.run(["dpkg-source", "--no-check", "-x", request.dsc.name, tree], runner,
                     env=BUILD_ENV, cwd=BUILD_DIR)
            self.run(buildpackage_argv(request), runner, env=inside_env(request),
                     network=False, cwd=f"{BUILD_DIR}/{tree}")
            from debian.deb822 import Changes
            for changes in work.glob(f"{stem}_*.changes"):
                listed = Changes(changes.read_text(encoding="utf-8"))["Files"]
                for name in [changes.name, *(f["name"] for f in listed)]:
                    shutil.copyfile(work / name, request.out_dir / name)
        finally:
            shutil.rmtree(work / tree, ignore_errors=True)
            for path in [*(work / n for n in sources), *work.glob(f"{stem}_*")]:
                path.unlink(missing_ok=True)
        self.built.append(request.dsc.name)
        return collect_result(request.out_dir, request.dsc)


@contextmanager
def open_root(tarball: Path, scratch_dir: Path | None, requests: Sequence[BuildRequest],
              runner: Runner) -> Iterator[SharedRoot]:
    """The tarball unpacked under scratch_dir (None: the system's temporary folder)
    with what `requests` need installed; removed afterwards, also on failure."""
    own = Path(tempfile.mkdtemp(prefix="clusterstack-shared.", dir=scratch_dir))
    try:
        root = SharedRoot(roots.unpack(tarball, own / "root", runner), runner)
        root.set_up(requests)
        yield root
    finally:
        shutil.rmtree(own, ignore_errors=True)
        if own.exists():
            log.warning("could not remove all of %s; remove it by hand", own)
