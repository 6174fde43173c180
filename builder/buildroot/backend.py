"""The build-backend interface: turn a .dsc into .debs inside a container.

Implementations live in builder/buildroot/backends/, registered in BACKENDS: `unshare`
(sbuild in an unshared user namespace) and `docker` (sbuild inside a
container of the Docker Engine).  Both build from the same mmdebstrap
tarball of the profile.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from builder.base.errors import ClusterStackError
from builder.base.plugins import Plugin, Registry

if TYPE_CHECKING:
    from builder.base.command import Runner
    from builder.base.workspace import Workspace
    from builder.stack.profile import Profile


@dataclass(frozen=True)
class BackendOptions:
    """Host-side choices of a run, the same for every build in it."""
    scratch: str = "auto"   # where build roots are unpacked: auto, none or a path


@dataclass(frozen=True)
class BuildRequest:
    dsc: Path
    out_dir: Path
    arch_all: bool
    arch_any: bool
    extra_debs: tuple[Path, ...] = ()
    add_depends: tuple[str, ...] = ()   # extra packages installed in the build root
    runner: Runner | None = None
    parallel: int = 1                   # make jobs inside the build (DEB_BUILD_OPTIONS)


@dataclass
class BuildResult:
    changes: Path
    debs: list[Path] = field(default_factory=list)


class BuildSession(ABC):
    """Builds the requests it was opened for, one call each; see Backend.session."""

    @abstractmethod
    def build(self, request: BuildRequest) -> BuildResult:
        """Build request.dsc into request.out_dir, as Backend.build does."""


class OneRootEach(BuildSession):
    """The session of a backend that cannot share a root: each build its own, as before."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def build(self, request: BuildRequest) -> BuildResult:
        return self.backend.build(request)


class Backend(Plugin, ABC):
    @property
    def shares_build_root(self) -> bool:
        """Whether session() builds several sources in one build root (set up
        once with what all of them need) instead of one root each."""
        return False

    @contextmanager
    def session(self, requests: Sequence[BuildRequest], runner: Runner
                ) -> Iterator[BuildSession]:
        """A session for building `requests`; `runner` logs what they share.

        Without shares_build_root each build still gets a root of its own."""
        yield OneRootEach(self)

    @classmethod
    @abstractmethod
    def create(cls, workspace: Workspace, profile: Profile, runner: Runner,
               options: BackendOptions) -> Backend:
        """The backend for one run, with the run's host-side options applied."""

    @abstractmethod
    def prepare(self) -> None:
        """Make the build root ready (create or refresh the chroot tarball)."""

    @abstractmethod
    def build(self, request: BuildRequest) -> BuildResult:
        """Build request.dsc into request.out_dir."""


BACKENDS: Registry[Backend] = Registry("build backend", Backend, f"{__package__}.backends", {
    "unshare": "unshare:UnshareBackend",
    "docker": "docker:DockerBackend",
})


def load(name: str, workspace: Workspace, profile: Profile, runner: Runner,
         options: BackendOptions | None = None) -> Backend:
    return BACKENDS.load(name).create(workspace, profile, runner, options or BackendOptions())


def build_env(req: BuildRequest, inherited: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment sbuild passes into the build (its filter lets these through).

    A caller's own DEB_BUILD_OPTIONS (nocheck, noopt...) is kept; only its
    parallel= is ours to set.
    """
    env = {"DEBEMAIL": "builders@clusterstack.invalid", "DEBFULLNAME": "ClusterStack Builders"}
    given = (os.environ if inherited is None else inherited).get("DEB_BUILD_OPTIONS", "")
    opts = [o for o in given.split() if not o.startswith("parallel=")]
    if req.parallel > 1:
        opts.append(f"parallel={req.parallel}")
    if opts:
        env["DEB_BUILD_OPTIONS"] = " ".join(opts)
    return env


def sbuild_options(profile: Profile, req: BuildRequest, build_dir: str,
                   extra: list[str]) -> list[str]:
    """What every backend asks of sbuild; the backend adds its chroot mode and the .dsc."""
    return [
        f"--dist={profile.suite}", f"--arch={profile.arch}",
        "--arch-all" if req.arch_all else "--no-arch-all",
        "--arch-any" if req.arch_any else "--no-arch-any",
        "--no-source", "--no-run-lintian", "--no-run-piuparts", "--no-run-autopkgtest",
        "--nolog", f"--build-dir={build_dir}",
        *(f"--extra-package={e}" for e in extra),
        *(f"--add-depends={dep}" for dep in req.add_depends),
    ]


def collect_result(out_dir: Path, dsc: Path) -> BuildResult:
    """Find what sbuild left for this source in out_dir."""
    stem = dsc.stem  # source_version
    changes = sorted(out_dir.glob(f"{stem}_*.changes"))
    if not changes:
        raise ClusterStackError(f"build of {dsc.name} produced no .changes in {out_dir}")
    from debian.deb822 import Changes
    debs = []
    for ch in changes:
        info = Changes(ch.read_text(encoding="utf-8"))
        debs.extend(out_dir / f["name"] for f in info["Files"] if f["name"].endswith(".deb"))
    return BuildResult(changes=changes[0], debs=sorted(set(debs)))
