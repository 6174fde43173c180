"""The `docker` build backend: sbuild inside a container of a Docker engine.

The end-to-end test starts a private dockerd (tests/support/dockerd.py) and
builds the native component openais through `clusterstack build --backend
docker`; it is skipped only where no engine can be started.
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

from builder import profile as profiles
from builder.backend import BuildRequest
from builder.backends import docker as docker_backend
from builder.cli import main

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

    line = docker_backend.docker_run_line("img:tag", argv, binds, workdir="/out")
    assert line[:4] == ["docker", "run", "--rm", "--network=host"]
    assert "--workdir=/out" in line
    assert f"--volume={dsc.parent}:/src:ro" in line
    assert line[line.index("img:tag") + 1:] == argv


@pytest.fixture
def docker_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """DOCKER_HOST of a private dockerd; afterwards nothing of it may remain."""
    base = tmp_path / "dockerd"
    with ExitStack() as stack:
        try:
            url = stack.enter_context(private_dockerd(base))
        except NoEngine as exc:
            pytest.skip(f"no Docker engine could be started: {exc}")
        monkeypatch.setenv("DOCKER_HOST", url)
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
    assert len(runs) == 1 and "--network=host" in runs[0]
    assert " sbuild --chroot-mode=autopkgtest " in runs[0]
    assert "$ sbuild " not in text
    assert "Status: successful" in text
    # A fresh engine: the image was made from the profile's mmdebstrap tarball.
    assert "$ docker import " in (out / "trixie/logs/_build-root.log").read_text()
    print(f"docker backend: openais built in {took:.0f} s")
