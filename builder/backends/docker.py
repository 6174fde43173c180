"""Backend `docker`: sbuild inside a container of the Docker Engine.

The image is the profile's mmdebstrap build-root tarball (the same one the
unshare backend uses) brought in with `docker import`, since no image
registry is reachable, plus sbuild and autopkgtest.  In the container sbuild
builds with autopkgtest's `null` virtualisation server: the container itself
is the throw-away build root.

The engine is the one at $DOCKER_HOST (default: the system socket).  Build
containers use the engine's host network, so the engine can run with
`--bridge=none --iptables=false` and add no bridge or firewall rule.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ..backend import BuildRequest, BuildResult, collect_result
from ..command import Runner
from ..errors import ClusterStackError
from ..profile import Profile
from ..workspace import Workspace
from . import chroot

IMAGE = "clusterstack-sbuild"
TOOLS = ["sbuild", "autopkgtest", "fakeroot"]


class EngineUnavailable(ClusterStackError):
    pass


def sbuild_argv(profile: Profile, req: BuildRequest, extra: list[str]) -> list[str]:
    argv = [
        "sbuild", "--chroot-mode=autopkgtest", "--autopkgtest-virt-server=null",
        f"--dist={profile.suite}", f"--arch={profile.arch}",
        "--arch-all" if req.arch_all else "--no-arch-all",
        "--arch-any" if req.arch_any else "--no-arch-any",
        "--no-source", "--no-run-lintian", "--no-run-piuparts", "--no-run-autopkgtest",
        "--nolog", "--build-dir=/out",
    ]
    argv += [f"--extra-package={e}" for e in extra]
    argv += [f"--add-depends={dep}" for dep in req.add_depends]
    return [*argv, f"/src/{req.dsc.name}"]


@dataclass
class DockerBackend:
    workspace: Workspace
    profile: Profile
    runner: Runner
    name: str = "docker"
    image: str | None = None

    def client(self):
        import docker
        try:
            client = docker.from_env(timeout=600)
            client.ping()
        except docker.errors.DockerException as exc:
            raise EngineUnavailable(f"no Docker engine answers ({exc}); start dockerd or set "
                                    "DOCKER_HOST, or use --backend unshare") from exc
        return client

    def _run(self, client, runner: Runner, image: str, command: list[str],
             binds: dict[str, dict[str, str]], commit_as: str | None = None) -> None:
        container = client.containers.create(
            image, command, network_mode="host", volumes=binds,
            environment={"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8",
                         "DEBEMAIL": "builders@clusterstack.invalid"})
        try:
            container.start()
            shown = ["docker", "run", "--network=host",
                     *(f"-v{h}:{b['bind']}:{b['mode']}" for h, b in binds.items()),
                     image, *command]
            runner.external(shown, container.logs(stream=True, follow=True),
                            lambda: container.wait()["StatusCode"])
            if commit_as:
                repo, tag = commit_as.split(":")
                container.commit(repository=repo, tag=tag)
        finally:
            container.remove(force=True)

    def prepare(self) -> None:
        client = self.client()
        tarball = chroot.ensure_tarball(self.workspace.cache_dir, self.profile, self.runner)
        stamp = hashlib.sha256(f"{tarball}:{tarball.stat().st_mtime_ns}".encode()).hexdigest()
        tag = f"{self.profile.suite}-{self.profile.arch}-{stamp[:12]}"
        self.image = f"{IMAGE}:{tag}"
        if client.images.list(name=self.image):
            return
        # The engine imports plain tar most reliably.
        plain = tarball.with_name(f".{tarball.stem}.{stamp[:12]}")
        try:
            self.runner.run(["zstd", "-d", "-q", "-f", tarball, "-o", plain])
            self.runner.external(["docker", "import", str(plain), f"{IMAGE}:{tag}-base"],
                                 [], lambda: self._import(client, plain, f"{tag}-base"))
        finally:
            plain.unlink(missing_ok=True)
        self._run(client, self.runner, f"{IMAGE}:{tag}-base",
                  ["sh", "-c", "apt-get update && apt-get install -y --no-install-recommends "
                   + " ".join(TOOLS) + " && apt-get clean"], {}, commit_as=self.image)

    @staticmethod
    def _import(client, plain: Path, tag: str) -> int:
        client.api.import_image_from_file(str(plain), repository=IMAGE, tag=tag)
        return 0 if client.images.list(name=f"{IMAGE}:{tag}") else 1

    def build(self, request: BuildRequest) -> BuildResult:
        if self.image is None:
            self.prepare()
        assert self.image is not None
        client = self.client()
        request.out_dir.mkdir(parents=True, exist_ok=True)
        binds = {str(request.dsc.parent): {"bind": "/src", "mode": "ro"},
                 str(request.out_dir): {"bind": "/out", "mode": "rw"}}
        extra = []
        for i, deb in enumerate(request.extra_debs):
            binds[str(deb)] = {"bind": f"/extra/{i}/{deb.name}", "mode": "ro"}
            extra.append(f"/extra/{i}/{deb.name}")
        self._run(client, request.runner or self.runner, self.image,
                  sbuild_argv(self.profile, request, extra), binds)
        return collect_result(request.out_dir, request.dsc)


def create(workspace: Workspace, profile: Profile, runner: Runner) -> DockerBackend:
    return DockerBackend(workspace, profile, runner)
