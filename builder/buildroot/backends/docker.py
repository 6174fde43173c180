"""Backend `docker`: sbuild inside a container of the Docker Engine.

The image is the profile's mmdebstrap build-root tarball (the same one the
unshare backend uses) brought in with `docker import`, since no image
registry is reachable, plus sbuild and autopkgtest.  In the container sbuild
builds with autopkgtest's `null` virtualisation server: the container itself
is the throw-away build root, and it is removed after every build.

sbuild expands a bare server name such as `null` to `autopkgtest-virt-null`
only for values read from its configuration files, not for the command-line
option, so the full program name is passed (a bare `null` makes sbuild try to
exec a program called "null": "Error creating chroot session").

The build itself has no network, as on Debian's buildds and in the unshare
backend (where sbuild gives dpkg-buildpackage a namespace with only `lo`).
sbuild's autopkgtest mode cannot take the network away from one command, so
a build is two containers: the first, on the engine's host network, lets apt
download (and so verify against the signed indexes) what the build root
lacks into a local flat repository; the second runs sbuild with no network
at all (`network_mode=none`) and apt's sources pointing only at that
repository.  The engine can therefore run with `--bridge=none
--iptables=false` and add no bridge or firewall rule.

The engine is the one at $DOCKER_HOST (default: the system socket).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from builder.base.command import Runner
from builder.base.errors import ClusterStackError
from builder.base.workspace import Workspace
from builder.stack.profile import Profile

from ..backend import (
    Backend,
    BackendOptions,
    BuildRequest,
    BuildResult,
    build_env,
    collect_result,
    sbuild_options,
)
from . import chroot

log = logging.getLogger("clusterstack.docker")

IMAGE = "clusterstack-sbuild"
TOOLS = ["sbuild", "autopkgtest", "fakeroot"]
# sbuild's --autopkgtest-virt-server takes the program, not the short name.
VIRT_SERVER = "autopkgtest-virt-null"
# Where the container sees the source, the outputs, the extra packages and
# the downloaded build dependencies.
SRC, OUT, EXTRA, DEPS = "/src", "/out", "/extra", "/deps"
# The offline build's only apt source: the flat repository of the first phase
# (its files were checked by apt against the signed indexes when downloaded).
OFFLINE_SOURCES = f"deb [trusted=yes] file:{DEPS} ./\n"
HOST_NETWORK, NO_NETWORK = "host", "none"
ENV = {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8"}
PING_TIMEOUT = 30
# Longest wait for one answer of the engine: a build's output can stay silent for long.
STREAM_TIMEOUT = 3 * 3600


class EngineUnavailable(ClusterStackError):
    pass


def container_paths(req: BuildRequest) -> tuple[dict[str, dict[str, str]], list[str]]:
    """The bind mounts of a build container, and the extra packages as it sees them."""
    binds = {str(req.dsc.parent.resolve()): {"bind": SRC, "mode": "ro"},
             str(req.out_dir.resolve()): {"bind": OUT, "mode": "rw"}}
    extra = []
    for i, deb in enumerate(req.extra_debs):
        inside = f"{EXTRA}/{i}/{deb.name}"
        binds[str(deb.resolve())] = {"bind": inside, "mode": "ro"}
        extra.append(inside)
    return binds, extra


def download_script(req: BuildRequest, extra: list[str]) -> str:
    """The first phase: what the build root lacks, downloaded into DEPS with an index.

    Our own extra packages are offered through a flat repository so that apt
    resolves build dependencies on them; they reach the build through
    sbuild's --extra-package, not through DEPS.
    """
    steps = ["set -e", f"mkdir -p {DEPS}/partial"]
    if extra:
        steps += ["mkdir -p /tmp/extra-repo",
                  f"(cd / && dpkg-scanpackages -m {EXTRA.lstrip('/')} > /tmp/extra-repo/Packages)",
                  "echo 'deb [trusted=yes] file:/ tmp/extra-repo/' "
                  "> /etc/apt/sources.list.d/clusterstack-extra.list"]
    apt = f"apt-get -q -y --download-only -o Dir::Cache::Archives={DEPS}"
    steps += ["apt-get -q update",
              # sbuild upgrades the build root first: offer it the same upgrades.
              f"{apt} dist-upgrade",
              f"{apt} build-dep {shlex.quote(SRC + '/' + req.dsc.name)}"]
    if req.add_depends:
        steps.append(f"{apt} satisfy " + " ".join(shlex.quote(d) for d in req.add_depends))
    steps += [f"rm -rf {DEPS}/partial {DEPS}/lock",
              f"(cd {DEPS} && dpkg-scanpackages -m . > Packages)"]
    return "\n".join(steps) + "\n"


def offline_binds(deps: Path, sources: Path) -> dict[str, dict[str, str]]:
    """What the offline build container sees of the first phase, read-only.

    Its sources.list is replaced by one naming only DEPS.  sources.list.d
    stays writable (sbuild adds its own archive there); mmdebstrap leaves it
    empty in the image.
    """
    return {str(deps): {"bind": DEPS, "mode": "ro"},
            str(sources): {"bind": "/etc/apt/sources.list", "mode": "ro"}}


def sbuild_argv(profile: Profile, req: BuildRequest, extra: list[str]) -> list[str]:
    return ["sbuild", "--chroot-mode=autopkgtest", f"--autopkgtest-virt-server={VIRT_SERVER}",
            *sbuild_options(profile, req, OUT, extra), f"{SRC}/{req.dsc.name}"]


def docker_run_line(image: str, command: list[str], binds: dict[str, dict[str, str]],
                    workdir: str | None = None, env: dict[str, str] | None = None,
                    network: str = HOST_NETWORK) -> list[str]:
    """The `docker run` equivalent of a container started through the API (for the log)."""
    line = ["docker", "run", "--rm", f"--network={network}"]
    if workdir:
        line.append(f"--workdir={workdir}")
    line += [f"--env={k}={v}" for k, v in (env or ENV).items()]
    line += [f"--volume={h}:{b['bind']}:{b['mode']}" for h, b in binds.items()]
    return [*line, image, *command]


def image_tag(profile: Profile, tarball: Path) -> str:
    stamp = hashlib.sha256(
        f"{tarball}:{tarball.stat().st_mtime_ns}:{' '.join(TOOLS)}".encode()).hexdigest()
    return f"{profile.suite}-{profile.arch}-{stamp[:12]}"


@dataclass
class DockerBackend(Backend):
    name: ClassVar[str] = "docker"
    workspace: Workspace
    profile: Profile
    runner: Runner
    image: str | None = None

    @classmethod
    def create(cls, workspace: Workspace, profile: Profile, runner: Runner,
               options: BackendOptions) -> DockerBackend:
        # options.scratch is not ours to apply: a container's files live wherever
        # the engine keeps its data root.
        return cls(workspace, profile, runner)

    def client(self):
        """A client of the engine at $DOCKER_HOST, once it has answered a ping."""
        try:
            import docker
        except ImportError as exc:
            raise EngineUnavailable("the docker backend needs the Python package 'docker'"
                                    ) from exc
        try:
            probe = docker.from_env(timeout=PING_TIMEOUT)
            try:
                probe.ping()
            finally:
                probe.close()
            # Imports and builds can take long, and stay silent for a while.
            return docker.from_env(timeout=STREAM_TIMEOUT)
        except docker.errors.DockerException as exc:
            raise EngineUnavailable(f"no Docker engine answers ({exc}); start dockerd or set "
                                    "DOCKER_HOST, or use --backend unshare") from exc

    def _run(self, client, runner: Runner, image: str, command: list[str],
             binds: dict[str, dict[str, str]], workdir: str | None = None,
             commit_as: str | None = None, env: dict[str, str] | None = None,
             network: str = HOST_NETWORK) -> None:
        env = {**ENV, **(env or {})}
        container = client.containers.create(
            image, command, network_mode=network, volumes=binds, working_dir=workdir,
            environment=env)
        try:
            container.start()
            runner.external(docker_run_line(image, command, binds, workdir, env, network),
                            container.logs(stream=True, follow=True),
                            lambda: container.wait()["StatusCode"])
            if commit_as:
                repo, tag = commit_as.rsplit(":", 1)
                container.commit(repository=repo, tag=tag)
        finally:
            container.remove(force=True)

    def prepare(self) -> None:
        client = self.client()
        try:
            tarball = chroot.ensure_tarball(self.workspace.cache_dir, self.profile, self.runner)
            tag = image_tag(self.profile, tarball)
            image = f"{IMAGE}:{tag}"
            if not client.images.list(name=image):
                self._make_image(client, tarball, tag)
            self.image = image
            self._drop_stale_images(client, tag)
        finally:
            client.close()

    def _make_image(self, client, tarball: Path, tag: str) -> None:
        base = f"{IMAGE}:{tag}-base"
        # The engine's import does not read zstd: give it the plain tar.
        plain = tarball.with_name(f".{tag}.{os.getpid()}.tar")
        try:
            self.runner.run(["zstd", "-d", "-q", "-f", tarball, "-o", plain])
            self.runner.external(["docker", "import", str(plain), base], [],
                                 lambda: self._import(client, plain, f"{tag}-base"))
        finally:
            plain.unlink(missing_ok=True)
        try:
            self._run(client, self.runner, base,
                      ["sh", "-c", "apt-get update && apt-get install -y "
                       "--no-install-recommends " + " ".join(TOOLS) + " && apt-get clean"],
                      {}, commit_as=f"{IMAGE}:{tag}")
        finally:
            client.images.remove(base, noprune=False)

    @staticmethod
    def _import(client, plain: Path, tag: str) -> int:
        client.api.import_image_from_file(str(plain), repository=IMAGE, tag=tag)
        return 0 if client.images.list(name=f"{IMAGE}:{tag}") else 1

    def _drop_stale_images(self, client, current: str) -> None:
        """Remove images of this suite and arch made from older tarballs."""
        import docker
        prefix = f"{IMAGE}:{self.profile.suite}-{self.profile.arch}-"
        for img in client.images.list(name=IMAGE):
            for t in img.tags:
                if t.startswith(prefix) and t != f"{IMAGE}:{current}":
                    log.info("removing stale image %s", t)
                    try:
                        client.images.remove(t)
                    except docker.errors.APIError as exc:  # e.g. still used elsewhere
                        log.warning("could not remove stale image %s: %s", t, exc)

    def build(self, request: BuildRequest) -> BuildResult:
        image = self.image or self.prepare_image()
        request.out_dir.mkdir(parents=True, exist_ok=True)
        binds, extra = container_paths(request)
        runner = request.runner or self.runner
        client = self.client()
        # Next to out_dir, not in it: the result holds only what sbuild made.
        with tempfile.TemporaryDirectory(prefix=".deps-", dir=request.out_dir.parent) as tmp:
            deps = Path(tmp) / "repo"
            sources = Path(tmp) / "sources.list"
            sources.write_text(OFFLINE_SOURCES)
            try:
                self._run(client, runner, image, ["sh", "-c", download_script(request, extra)],
                          {**binds, str(deps): {"bind": DEPS, "mode": "rw"}})
                # sbuild writes its own temporary files into the current directory.
                self._run(client, runner, image, sbuild_argv(self.profile, request, extra),
                          {**binds, **offline_binds(deps, sources)}, workdir=OUT,
                          env=build_env(request), network=NO_NETWORK)
            finally:
                client.close()
        return collect_result(request.out_dir, request.dsc)

    def prepare_image(self) -> str:
        self.prepare()
        if self.image is None:
            raise EngineUnavailable(f"the engine at $DOCKER_HOST made no image {IMAGE}")
        return self.image
