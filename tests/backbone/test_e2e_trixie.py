"""The real thing: build -> publish -> verify of the default profile (trixie).

Native packages are built with sbuild in unshared chroots, imported ones are
fetched through Debian's signed chain, and `verify` installs ubuntu-cluster
and the Cluster node task in a fresh trixie root from our signed repository.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from builder.cli import main

ROOT = Path(__file__).parents[2]
pytestmark = [pytest.mark.e2e, pytest.mark.network]


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e-trixie")


def cs(out: Path, *args: str) -> list[str]:
    return ["--stack", str(ROOT), "--out", str(out), *args, "--profile", "trixie"]


def test_build(out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(cs(out, "build", "-j", "2")) == 0
    summary = capsys.readouterr().out.splitlines()[-1]
    assert "4 built" in summary and "failed" not in summary
    meta = out / "trixie/artifacts/ubuntu-cluster/ubuntu-cluster_1.0+cluster13_all.deb"
    fields = subprocess.run(["dpkg-deb", "-f", str(meta), "Depends", "Recommends"],
                            capture_output=True, text=True, check=True).stdout
    assert "pacemaker, corosync, crmsh | pcs, resource-agents, fence-agents" in fields
    assert "keepalived" in fields.split("Recommends:")[1]
    for name in ("ubuntu-cluster", "cluster-tasks", "cluster-fs-stack", "openais"):
        st = json.loads((out / f"trixie/state/{name}.json").read_text())
        assert st["lintian"]["error"] == 0, f"{name}: lintian errors"
        assert (out / f"trixie/logs/{name}.log").read_text().count("$ sbuild ") == 1


def test_second_build_does_nothing(out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(cs(out, "build")) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1].endswith(" up-to-date")
    assert " built " not in captured.out and "fetch " not in captured.err


def test_publish(out: Path) -> None:
    assert main(cs(out, "publish")) == 0
    assert (out / "public/trixie/dists/trixie/InRelease").is_file()


def test_verify_in_fresh_root(out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(cs(out, "verify"))
    table = capsys.readouterr().out
    assert rc == 0, table
    assert "5 passed, 0 failed" in table
    for check in ("apt-get update (signature)", "apt-get install ubuntu-cluster",
                  "tasksel --list-tasks", "tasksel install cluster-node"):
        assert any(line.startswith(check) and " PASS " in line for line in table.splitlines())
