"""Backend `unshare`: sbuild --chroot-mode=unshare on the mmdebstrap tarball."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from builder.base.command import Result, Runner
from builder.base.errors import ClusterStackError
from builder.base.workspace import Workspace
from builder.stack.profile import Profile

from ..backend import (
    Backend,
    BackendOptions,
    BuildRequest,
    BuildResult,
    BuildSession,
    build_env,
    collect_result,
    sbuild_options,
)
from . import chroot, scratch, sharedroot

log = logging.getLogger("clusterstack.unshare")


def sbuild_command(profile: Profile, tarball: Path, req: BuildRequest) -> list[str]:
    return ["sbuild", "--chroot-mode=unshare", f"--chroot={tarball}",
            *sbuild_options(profile, req, str(req.out_dir), [str(d) for d in req.extra_debs]),
            str(req.dsc)]


def run_sbuild(profile: Profile, tarball: Path, scratch_dir: Path | None, req: BuildRequest,
               runner: Runner, *, inherited: Mapping[str, str] | None = None,
               check: bool = True) -> Result:
    """One sbuild run: its command line, its environment, its build-root directory."""
    with scratch.build_root_env(scratch_dir, req.dsc.stem) as where:
        # sbuild writes its own temporary files into the current directory.
        return runner.run(sbuild_command(profile, tarball, req), cwd=req.out_dir,
                          env={**build_env(req, inherited), **where}, check=check)


@dataclass
class UnshareBackend(Backend):
    name: ClassVar[str] = "unshare"
    workspace: Workspace
    profile: Profile
    runner: Runner
    tarball: Path | None = None
    scratch: Path | None = None     # where build roots are unpacked; None: sbuild's /tmp

    @classmethod
    def create(cls, workspace: Workspace, profile: Profile, runner: Runner,
               options: BackendOptions) -> UnshareBackend:
        where = scratch.choose(options.scratch)
        log.info("build roots unpacked under %s", where or "/tmp (sbuild's default)")
        return cls(workspace, profile, runner, scratch=where)

    def prepare(self) -> None:
        self.tarball = chroot.ensure_tarball(self.workspace.cache_dir, self.profile, self.runner)

    def build(self, request: BuildRequest) -> BuildResult:
        tarball = self.tarball or self._prepared()
        request.out_dir.mkdir(parents=True, exist_ok=True)
        run_sbuild(self.profile, tarball, self.scratch, request, request.runner or self.runner)
        return collect_result(request.out_dir, request.dsc)

    @property
    def shares_build_root(self) -> bool:
        # Unpacking the root with its numeric owners takes root (sbuild's own
        # unpacking does not): as another user each build keeps its sbuild root.
        return os.geteuid() == 0

    @contextmanager
    def session(self, requests: Sequence[BuildRequest], runner: Runner
                ) -> Iterator[BuildSession]:
        if not self.shares_build_root:
            with super().session(requests, runner) as each:
                yield each
            return
        tarball = self.tarball or self._prepared()
        with sharedroot.open_root(tarball, self.scratch, requests, runner) as root:
            yield root

    def _prepared(self) -> Path:
        self.prepare()
        if self.tarball is None:
            raise ClusterStackError(f"no build-root tarball for {self.profile.name} "
                                    "after preparing it")
        return self.tarball
