"""Issue 20: a package's build has no network in the unshare backend.

The probe package's build step tries a server on the host's loopback.  In the
same sbuild session, a command sbuild runs in the build root just before the
build (--starting-build-commands) tries it too: that one has the host's
network and must get through, so the check can fail.  The build step must not.
The Docker backend's half of this is in test_docker_backend.py.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from support.netprobe import REACHED, UNREACHABLE, make_source, probe_command, probe_server

from builder.base.command import Runner
from builder.buildroot.backend import BuildRequest, build_env
from builder.buildroot.backends import chroot
from builder.buildroot.backends.unshare import sbuild_command
from builder.stack import profile as profiles

ROOT = Path(__file__).parents[2]
CACHE = Path(os.environ.get("CLUSTERSTACK_CACHE", Path.home() / ".cache" / "clusterstack"))

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.network,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("sbuild") is None,
                       reason="needs root and sbuild"),
]


def assert_built_offline(log_path: Path, out: Path, received: list[str]) -> None:
    """The probe package was built; the root had the network before the build (the
    `control` probe got through), the build step had none."""
    log = log_path.read_text()
    assert sorted(out.glob("netprobe_1.0_all.deb")), log[-2000:]
    assert received == ["control"], log[-2000:]
    lines = [line.strip() for line in log.splitlines()]
    assert UNREACHABLE in lines and REACHED not in lines


def test_unshare_build_is_offline(tmp_path: Path) -> None:
    prof = profiles.load(ROOT, "trixie")
    runner = Runner(log_path=tmp_path / "build.log")
    tarball = chroot.ensure_tarball(CACHE, prof, runner)
    with probe_server() as (port, received):
        dsc = make_source(tmp_path / "src", port)
        out = tmp_path / "out"
        out.mkdir()
        req = BuildRequest(dsc=dsc, out_dir=out, arch_all=True, arch_any=False)
        argv = sbuild_command(prof, tarball, req)
        control = f"--starting-build-commands={probe_command(port, 'control')}"
        runner.run([*argv[:-1], control, argv[-1]], cwd=out, env=build_env(req))
    assert_built_offline(tmp_path / "build.log", out, received)


def test_shared_root_build_is_offline(tmp_path: Path) -> None:
    """The same check for the root the native packages share (backends/sharedroot)."""
    from builder.buildroot.backends import sharedroot
    prof = profiles.load(ROOT, "trixie")
    runner = Runner(log_path=tmp_path / "build.log")
    tarball = chroot.ensure_tarball(CACHE, prof, runner)
    with probe_server() as (port, received):
        dsc = make_source(tmp_path / "src", port)
        out = tmp_path / "out"
        req = BuildRequest(dsc=dsc, out_dir=out, arch_all=True, arch_any=False, runner=runner)
        with sharedroot.open_root(tarball, None, [req], runner) as root:
            # The root's own steps (apt) have the host's network: this gets through.
            root.run(["bash", "-c", probe_command(port, "control")], runner,
                     env=sharedroot.BUILD_ENV)
            root.build(req)
    assert_built_offline(tmp_path / "build.log", out, received)
