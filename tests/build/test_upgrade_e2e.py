"""Every change published is an upgrade (issue 13): a native component built
again from changed inputs gets the next version, and a node that has the old
one upgrades to it with `apt-get upgrade`, from our signed repository."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from builder.base.command import Runner
from builder.base.serve import serve
from builder.cli import main
from builder.stack import profile
from builder.verify import rootfs
from builder.verify.verify import add_repository

ROOT = Path(__file__).parents[2]
pytestmark = [pytest.mark.e2e, pytest.mark.network]
COMPONENT = "openais"
BASE = "1.1.4+cluster13"


def installed(root: rootfs.Root, package: str) -> str:
    return root.run(["dpkg-query", "-W", "-f=${Version}", package]).stdout.strip()


def test_changed_input_is_an_upgrade_on_a_node(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    stack = tmp_path / "stack"
    (stack / "packaging/profiles").mkdir(parents=True)
    (stack / "tasksel").mkdir()
    shutil.copy(ROOT / "packaging/profiles/trixie.yaml", stack / "packaging/profiles/")
    shutil.copytree(ROOT / f"packaging/{COMPONENT}", stack / f"packaging/{COMPONENT}")
    out = tmp_path / "out"
    monkeypatch.setenv("CLUSTERSTACK_GNUPGHOME", str(tmp_path / "signing"))
    argv = ["--stack", str(stack), "--out", str(out)]

    def build_and_publish() -> None:
        assert main([*argv, "build", "--profile", "trixie"]) == 0
        assert main([*argv, "publish", "--profile", "trixie"]) == 0

    build_and_publish()
    repo = out / "public/trixie"
    runner = Runner()
    prof = profile.load(ROOT, "trixie")
    tarball = rootfs.create_tarball(prof, tmp_path / "roots", runner)
    root = rootfs.Root(rootfs.unpack(tarball, tmp_path / "root", runner), runner)
    root.forbid_service_starts()
    with serve(repo) as url:
        add_repository(root, repo, url, "trixie")
        root.run(["apt-get", "update"])
        root.run(["apt-get", "install", "-y", COMPONENT])
        assert installed(root, COMPONENT) == BASE

    # The same inputs again: nothing is rebuilt, the version stays.
    assert main([*argv, "build", "--profile", "trixie"]) == 0
    # One changed input: a line added to the package's long description.
    control = stack / f"packaging/{COMPONENT}/debian/control.j2"
    control.write_text(control.read_text().rstrip("\n")
                       + "\n .\n Rebuilt for the upgrade test.\n")
    build_and_publish()
    log = next((out / f"trixie/work/{COMPONENT}").glob("*/debian/changelog")).read_text()
    assert log.startswith(f"{COMPONENT} ({BASE}.1) trixie;")
    assert "Rebuilt by ClusterStack from changed inputs" in log

    # Served anew: the server holds the release the symlink named when it started.
    with serve(repo) as url:
        add_repository(root, repo, url, "trixie")
        root.run(["apt-get", "update"])
        upgrade = root.run(["apt-get", "upgrade", "-y"]).stdout
        assert f"{COMPONENT}" in upgrade
        assert installed(root, COMPONENT) == f"{BASE}.1"
