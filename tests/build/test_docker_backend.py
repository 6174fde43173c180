"""The `docker` build backend: sbuild inside a container of a Docker engine.

The end-to-end tests start a private dockerd (tests/support/dockerd.py), build
the native component openais through `clusterstack build --backend docker`,
and show that the build step has no network (issue 20: a probe package's
build tries a server on loopback; the same probe from a container on the
engine's host network gets through, so the check can fail).  They are skipped
only where no engine can be started.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from support.dockerd import NoEngine, engine_processes, exec_root_of, private_dockerd
from support.netprobe import REACHED, UNREACHABLE, make_source, probe_command, probe_server

from builder.base.command import Runner
from builder.base.workspace import Workspace
from builder.buildroot.backend import BackendOptions, BuildRequest
from builder.buildroot.backends import docker as docker_backend
from builder.cli import main
from builder.stack import profile as profiles

ROOT = Path(__file__).parents[2]


def test_sbuild_argv_and_container_paths(tmp_path: Path) -> None:
    prof = profiles.load(ROOT, "trixie")
    dsc = tmp_path / "work/demo/demo_1.0+cluster13.dsc"
    extra = (tmp_path / "debs/libfoo1_2.0_amd64.deb", tmp_path / "debs/libfoo-dev_2.0_amd64.deb")
    req = BuildRequest(dsc=dsc, out_dir=tmp_path / "out", arch_all=True, arch_any=False,
                       extra_debs=extra, add_depends=("libfoo-dev (>= 2.0)",))
    binds, inside = docker_backend.container_paths(req)
    assert binds[str(dsc.parent)] == {"bind": "/src", "mode": "ro"}
    assert binds[str(tmp_path / "out")] == {"bind": "/out", "mode": "rw"}
    assert inside == ["/extra/0/libfoo1_2.0_amd64.deb", "/extra/1/libfoo-dev_2.0_amd64.deb"]
    assert binds[str(extra[1])] == {"bind": inside[1], "mode": "ro"}

    argv = docker_backend.sbuild_argv(prof, req, inside)
    assert argv[:3] == ["sbuild", "--chroot-mode=autopkgtest",
                        # the program: sbuild does not expand a bare "null" given here
                        "--autopkgtest-virt-server=autopkgtest-virt-null"]
    assert f"--dist={prof.suite}" in argv and f"--arch={prof.arch}" in argv
    assert "--arch-all" in argv and "--no-arch-any" in argv
    assert "--build-dir=/out" in argv
    assert [a for a in argv if a.startswith("--extra-package=")] == [
        f"--extra-package={p}" for p in inside]
    assert "--add-depends=libfoo-dev (>= 2.0)" in argv
    assert argv[-1] == "/src/demo_1.0+cluster13.dsc"

    line = docker_backend.docker_run_line("img:tag", argv, binds, workdir="/out",
                                          network="none")
    assert line[:4] == ["docker", "run", "--rm", "--network=none"]
    assert "--workdir=/out" in line
    assert f"--volume={dsc.parent}:/src:ro" in line
    assert line[line.index("img:tag") + 1:] == argv


def test_download_phase_and_offline_binds(tmp_path: Path) -> None:
    dsc = tmp_path / "work/demo/demo_1.0+cluster13.dsc"
    req = BuildRequest(dsc=dsc, out_dir=tmp_path / "out", arch_all=False, arch_any=True,
                       add_depends=("libfoo-dev (>= 2.0)",))
    script = docker_backend.download_script(req, ["/extra/0/libfoo1_2.0_amd64.deb"])
    lines = script.splitlines()
    assert lines[0] == "set -e"
    # Our own packages resolve through a flat repository of the bind-mounted debs.
    assert "(cd / && dpkg-scanpackages -m extra > /tmp/extra-repo/Packages)" in lines
    assert any("build-dep /src/demo_1.0+cluster13.dsc" in line for line in lines)
    assert any(line.endswith("satisfy 'libfoo-dev (>= 2.0)'") for line in lines)
    # The index of what was downloaded is written last, after partial/ is gone.
    assert lines[-1] == "(cd /deps && dpkg-scanpackages -m . > Packages)"
    assert "dpkg-scanpackages" not in docker_backend.download_script(req, []).split(
        "\n", 3)[1]

    sources = tmp_path / "phase/sources.list"
    sources.parent.mkdir()
    binds = docker_backend.offline_binds(tmp_path / "phase/repo", sources)
    assert binds[str(tmp_path / "phase/repo")] == {"bind": "/deps", "mode": "ro"}
    assert binds[str(sources)]["bind"] == "/etc/apt/sources.list"
    assert len(binds) == 2
    assert docker_backend.OFFLINE_SOURCES == "deb [trusted=yes] file:/deps ./\n"


@pytest.fixture(scope="module")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """DOCKER_HOST of a private dockerd, shared by this module's builds (its image is
    made once); afterwards nothing of it may remain."""
    base = tmp_path_factory.mktemp("dockerd")
    with ExitStack() as stack:
        try:
            url = stack.enter_context(private_dockerd(base))
        except NoEngine as exc:
            pytest.skip(f"no Docker engine could be started: {exc}")
        stack.enter_context(pytest.MonkeyPatch.context()).setenv("DOCKER_HOST", url)
        yield url
    exec_root = exec_root_of(url)
    assert not exec_root.exists(), f"{exec_root} left behind"
    assert not engine_processes(exec_root), "engine processes left behind"
    shutil.rmtree(base / "data")   # the images: ~600 MB


@pytest.mark.e2e
@pytest.mark.network
def test_build_openais_in_docker(docker_engine: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    started = time.monotonic()
    rc = main(["--stack", str(ROOT), "--out", str(out), "build", "--profile", "trixie",
               "--backend", "docker", "--component", "openais"])
    took = time.monotonic() - started
    log = out / "trixie/logs/openais.log"
    assert rc == 0, capsys.readouterr().err + (log.read_text()[-3000:] if log.exists() else "")

    deb = out / "trixie/artifacts/openais/openais_1.1.4+cluster13_all.deb"
    assert deb.is_file(), sorted(p.name for p in deb.parent.iterdir())
    fields = subprocess.run(["dpkg-deb", "-f", str(deb), "Version", "Depends"],
                            capture_output=True, text=True, check=True).stdout
    assert "Version: 1.1.4+cluster13\n" in fields
    depends = fields.split("Depends:", 1)[1]
    assert "corosync" in [d.strip().split()[0] for d in depends.split(",")]

    text = log.read_text()
    runs = [line for line in text.splitlines() if line.startswith("$ docker run ")]
    # Downloading on the host network, then sbuild with none.
    assert len(runs) == 2, runs
    assert "--network=host" in runs[0] and " build-dep /src/openais_" in text
    assert "--network=none" in runs[1] and " sbuild --chroot-mode=autopkgtest " in runs[1]
    assert "$ sbuild " not in text
    assert "Status: successful" in text
    # A fresh engine: the image was made from the profile's mmdebstrap tarball.
    assert "$ docker import " in (out / "trixie/logs/_build-root.log").read_text()
    print(f"docker backend: openais built in {took:.0f} s")


@pytest.mark.e2e
@pytest.mark.network
def test_docker_build_is_offline(docker_engine: str, tmp_path: Path) -> None:
    import docker

    prof = profiles.load(ROOT, "trixie")
    ws = Workspace.create(stack_dir=ROOT, out_dir=tmp_path / "ws")
    runner = Runner(log_path=tmp_path / "build.log")
    backend = docker_backend.DockerBackend.create(ws, prof, runner, BackendOptions())
    backend.prepare()
    with probe_server() as (port, received):
        dsc = make_source(tmp_path / "src", port)
        out = tmp_path / "out"
        result = backend.build(BuildRequest(dsc=dsc, out_dir=out, arch_all=True,
                                            arch_any=False))
        assert [d.name for d in result.debs] == ["netprobe_1.0_all.deb"]
        assert received == [], "the build step reached a server on loopback"
        # The control: the same probe, same image, on the network the first phase uses.
        client = docker.from_env()
        try:
            client.containers.run(backend.image, ["sh", "-c", probe_command(port, "control")],
                                  network_mode="host", remove=True)
        finally:
            client.close()
        assert received == ["control"]
    lines = [line.strip() for line in (tmp_path / "build.log").read_text().splitlines()]
    assert UNREACHABLE in lines and REACHED not in lines
    assert not list(tmp_path.glob(".deps-*")), "the download phase's repository was left"
