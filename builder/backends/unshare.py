"""Backend `unshare`: sbuild --chroot-mode=unshare on the mmdebstrap tarball."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ..backend import (
    BackendOptions,
    BuildRequest,
    BuildResult,
    build_env,
    collect_result,
    sbuild_options,
)
from ..command import Runner
from ..profile import Profile
from ..workspace import Workspace
from . import chroot, scratch

log = logging.getLogger("clusterstack.unshare")


def sbuild_command(profile: Profile, tarball: Path, req: BuildRequest) -> list[str]:
    return ["sbuild", "--chroot-mode=unshare", f"--chroot={tarball}",
            *sbuild_options(profile, req, str(req.out_dir), [str(d) for d in req.extra_debs]),
            str(req.dsc)]


@dataclass
class UnshareBackend:
    workspace: Workspace
    profile: Profile
    runner: Runner
    name: str = "unshare"
    tarball: Path | None = None
    scratch: Path | None = None     # where build roots are unpacked; None: sbuild's /tmp

    def prepare(self) -> None:
        self.tarball = chroot.ensure_tarball(self.workspace.cache_dir, self.profile, self.runner)

    def build(self, request: BuildRequest) -> BuildResult:
        if self.tarball is None:
            self.prepare()
        assert self.tarball is not None
        request.out_dir.mkdir(parents=True, exist_ok=True)
        runner = request.runner or self.runner
        with scratch.build_root_env(self.scratch, request.dsc.stem) as where:
            # sbuild writes its own temporary files into the current directory.
            runner.run(sbuild_command(self.profile, self.tarball, request), cwd=request.out_dir,
                       env={**build_env(request), **where})
        return collect_result(request.out_dir, request.dsc)


def create(workspace: Workspace, profile: Profile, runner: Runner,
           options: BackendOptions) -> UnshareBackend:
    where = scratch.choose(options.scratch)
    log.info("build roots unpacked under %s", where or "/tmp (sbuild's default)")
    return UnshareBackend(workspace, profile, runner, scratch=where)
