"""Backend `unshare`: sbuild --chroot-mode=unshare on the mmdebstrap tarball."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..backend import BuildRequest, BuildResult, collect_result
from ..command import Runner
from ..profile import Profile
from ..workspace import Workspace
from . import chroot


def sbuild_command(profile: Profile, tarball: Path, req: BuildRequest) -> list[str]:
    argv = [
        "sbuild", "--chroot-mode=unshare", f"--chroot={tarball}",
        f"--dist={profile.suite}", f"--arch={profile.arch}",
        "--arch-all" if req.arch_all else "--no-arch-all",
        "--arch-any" if req.arch_any else "--no-arch-any",
        "--no-source", "--no-run-lintian", "--no-run-piuparts", "--no-run-autopkgtest",
        "--nolog", f"--build-dir={req.out_dir}",
    ]
    argv += [f"--extra-package={deb}" for deb in req.extra_debs]
    argv += [f"--add-depends={dep}" for dep in req.add_depends]
    return [*argv, str(req.dsc)]


@dataclass
class UnshareBackend:
    workspace: Workspace
    profile: Profile
    runner: Runner
    name: str = "unshare"
    tarball: Path | None = None

    def prepare(self) -> None:
        self.tarball = chroot.ensure_tarball(self.workspace.cache_dir, self.profile, self.runner)

    def build(self, request: BuildRequest) -> BuildResult:
        if self.tarball is None:
            self.prepare()
        assert self.tarball is not None
        request.out_dir.mkdir(parents=True, exist_ok=True)
        runner = request.runner or self.runner
        # sbuild writes its own temporary files into the current directory.
        runner.run(sbuild_command(self.profile, self.tarball, request), cwd=request.out_dir,
                   env={"DEBEMAIL": "builders@clusterstack.invalid",
                        "DEBFULLNAME": "ClusterStack Builders"})
        return collect_result(request.out_dir, request.dsc)


def create(workspace: Workspace, profile: Profile, runner: Runner) -> UnshareBackend:
    return UnshareBackend(workspace, profile, runner)
