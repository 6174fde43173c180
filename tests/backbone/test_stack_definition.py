"""The stack definition shipped in packaging/ and tasksel/ is complete and valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.stack import profile, recipe, seeds

ROOT = Path(__file__).parents[2]
STACK = ["pacemaker", "corosync", "cluster-glue", "resource-agents", "fence-agents",
         "drbd-utils", "keepalived", "heartbeat", "libqb", "kronosnet", "crmsh", "pcs", "sbd",
         "dlm", "gfs2-utils", "ocfs2-tools", "lvm2-lockd", "ipvsadm", "ifenslave",
         "corosync-qdevice"]
NATIVE = ["ubuntu-cluster", "cluster-fs-stack", "cluster-tasks", "tasksel-data", "openais"]


@pytest.fixture(scope="module")
def recipes() -> dict[str, recipe.Recipe]:
    return {r.name: r for r in recipe.load_all(ROOT / "packaging")}


def test_every_stack_component_has_a_recipe(recipes: dict[str, recipe.Recipe]) -> None:
    missing = [c for c in [*STACK, *NATIVE] if c not in recipes]
    assert not missing, f"no recipe for {missing}"


def test_native_packages_are_native(recipes: dict[str, recipe.Recipe]) -> None:
    for name in NATIVE:
        assert recipes[name].strategy == "native"
        assert (recipes[name].directory / "debian" / "control.j2").is_file()


def test_every_recipe_gives_a_reason(recipes: dict[str, recipe.Recipe]) -> None:
    assert [n for n, r in recipes.items() if not r.reason] == []


@pytest.mark.parametrize("name", profile.available(ROOT))
def test_profiles_load(name: str) -> None:
    p = profile.load(ROOT, name)
    assert p.name == name and p.archives and p.version_suffix


def test_profiles_cover_debian_and_ubuntu() -> None:
    loaded = [profile.load(ROOT, n) for n in profile.available(ROOT)]
    assert {"trixie", "bookworm", "noble"} <= {p.name for p in loaded}
    assert {p.task_mode for p in loaded if p.vendor == "ubuntu"} == {"task-fields"}
    assert {p.task_mode for p in loaded if p.vendor == "debian"} == {"desc-key"}
    assert "upstart" in {p.init for p in loaded}
    assert len({p.version_suffix for p in loaded}) == len(loaded), "suffixes must differ"


def test_node_seed_splits_depends_and_recommends() -> None:
    seed = seeds.load(ROOT / "tasksel/cluster-node.seed")
    assert seed.key == "ubuntu-cluster"
    assert seed.description == "Cluster node"
    assert seed.depends == ["pacemaker", "corosync", "crmsh | pcs", "resource-agents",
                            "fence-agents"]
    assert {"drbd-utils", "keepalived", "ipvsadm", "ifenslave", "sbd",
            "corosync-qdevice"} <= set(seed.recommends)


def test_fs_seed_is_the_clvm_heir() -> None:
    seed = seeds.load(ROOT / "tasksel/cluster-fs.seed")
    assert set(seed.depends) == {"dlm-controld", "gfs2-utils", "ocfs2-tools", "lvm2-lockd"}


def test_seed_rejects_bad_package_names(tmp_path: Path) -> None:
    bad = tmp_path / "x.seed"
    bad.write_text("Task-Key: x\n * good\n * Bad_Name\n")
    with pytest.raises(Exception, match=r"x.seed:3: 'Bad_Name' is not a package name"):
        seeds.load(bad)
