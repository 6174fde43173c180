"""`verify`'s checks run on the one step runner (cluster.steps): which checks run
after a failure, and what their rows say, without a root or a network."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from builder.base.progress import Progress
from builder.stack.seeds import Seed
from builder.verify import verify as verify_mod

SEED = Seed("cluster-node", {"Task-Key": "ubuntu-cluster", "Task-Description": "Cluster node"})
STEPS = ("fresh_root", "add_repo", "installer_tasks", "install_meta", "upstart_jobs",
         "installer_task_install")


def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        broken: dict[str, BaseException]) -> list[verify_mod.Check]:
    repo = tmp_path / "public"
    (repo / "dists" / "trixie").mkdir(parents=True)
    (repo / "dists" / "trixie" / "InRelease").write_text("")
    workspace = SimpleNamespace(published_repo=lambda name: repo, seeds_dir=tmp_path)
    stack = SimpleNamespace(workspace=workspace,
                            profile=SimpleNamespace(name="trixie", suite="trixie"))
    monkeypatch.setattr("builder.verify.verify.seeds.load", lambda path: SEED)
    monkeypatch.setattr("builder.verify.verify.validity.expired_release_refused",
                        lambda repo, runner, suite: "refused")

    def step(name: str) -> Callable[[verify_mod.Target], str]:
        def fn(self: verify_mod.Target) -> str:
            if name in broken:
                raise broken[name]
            return f"{name} done"
        return fn

    for name in STEPS:
        monkeypatch.setattr(verify_mod.Target, name, step(name))
    return verify_mod.verify(stack, None, Progress(), tmp_path / "work")  # type: ignore[arg-type]


def test_all_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checks = run(tmp_path, monkeypatch, {})
    assert [c.name for c in checks] == [
        "expired Release refused (Valid-Until)", "fresh root", "apt-get update (signature)",
        "installer's tasksel (DEBIAN_TASKS_ONLY)", "apt-get install ubuntu-cluster",
        "cluster-stack-upstart installed", "tasksel install cluster-node (installer mode)"]
    assert all(c.ok for c in checks)
    assert checks[1].detail == "fresh_root done"
    table = verify_mod.format_table(checks).splitlines()
    assert table[0].split() == ["check", "result", "time", "detail"]
    assert table[-1] == "7 passed, 0 failed"


def test_a_failed_check_stops_what_depends_on_it(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    checks = run(tmp_path, monkeypatch, {"add_repo": verify_mod.CheckFailed("W: one\nE: last")})
    assert [(c.name, c.ok, c.detail) for c in checks[1:]] == [
        ("fresh root", True, "fresh_root done"),
        ("apt-get update (signature)", False, "E: last")]


def test_a_broken_check_gets_its_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checks = run(tmp_path, monkeypatch, {"installer_tasks": ValueError("bad")})
    rows = {c.name: (c.ok, c.detail) for c in checks}
    assert rows["installer's tasksel (DEBIAN_TASKS_ONLY)"] == (False, "ValueError: bad")
    assert rows["cluster-stack-upstart installed"] == (True, "upstart_jobs done")
    assert "tasksel install cluster-node (installer mode)" not in rows


def test_ctrl_c_is_not_a_failed_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, monkeypatch, {"fresh_root": KeyboardInterrupt()})
