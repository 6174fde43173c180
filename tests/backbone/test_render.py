"""Native packages render into real debian/ trees for every profile."""

from __future__ import annotations

from pathlib import Path

import pytest
from debian.changelog import Changelog
from debian.deb822 import Deb822, PkgRelation

from builder.base.command import Runner
from builder.cli import main
from builder.stack import profile, seeds

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module", params=profile.available(ROOT))
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[str, Path]:
    out = tmp_path_factory.mktemp(f"render-{request.param}")
    assert main(["--stack", str(ROOT), "--out", str(out), "render",
                 "--profile", request.param]) == 0
    return request.param, out / request.param / "work"


def tree(work: Path, name: str) -> Path:
    (found,) = (work / name).glob(f"{name}-*")
    return found


def control(work: Path, name: str) -> list[Deb822]:
    return list(Deb822.iter_paragraphs((tree(work, name) / "debian/control").read_text()))


def relation_names(value: str) -> list[list[str]]:
    return [[alt["name"] for alt in rel] for rel in PkgRelation.parse_relations(value)]


def test_meta_package_follows_the_seed(rendered: tuple[str, Path]) -> None:
    _, work = rendered
    seed = seeds.load(ROOT / "tasksel/cluster-node.seed")
    src, binary = control(work, "ubuntu-cluster")
    assert src["Source"] == "ubuntu-cluster" and binary["Architecture"] == "all"
    depends = relation_names(binary["Depends"])
    assert depends[0] == ["${misc:Depends}"]
    assert depends[1:] == [[a.strip() for a in e.split("|")] for e in seed.depends]
    assert ["crmsh", "pcs"] in depends
    assert [r[0] for r in relation_names(binary["Recommends"])] == seed.recommends


def test_changelog_carries_profile_suffix(rendered: tuple[str, Path]) -> None:
    name, work = rendered
    prof = profile.load(ROOT, name)
    log = Changelog((tree(work, "ubuntu-cluster") / "debian/changelog").read_text())
    assert str(log.version) == "1.0" + prof.version_suffix
    assert log.distributions == prof.suite


def task_desc(work: Path) -> str:
    """Our task stanzas: in tasksel-data where it is built (the installer reads
    only debian-tasks.desc), else in cluster-tasks' own .desc."""
    if (work / "tasksel-data").is_dir():
        return (tree(work, "tasksel-data") / "cluster-tasks.desc").read_text()
    return (tree(work, "cluster-tasks") / "cluster-stack.desc").read_text()


def test_task_desc_matches_profile_style(rendered: tuple[str, Path]) -> None:
    name, work = rendered
    prof = profile.load(ROOT, name)
    stanzas = {p["Task"]: p for p in Deb822.iter_paragraphs(task_desc(work))}
    node = stanzas["cluster-node"]
    # As Debian's server tasks (web-server) are ranked.
    assert node["Section"] == "server" and node["Relevance"] == "3"
    assert node["Description"].splitlines()[0] == "Cluster node"
    assert node["Key"].split() == ["ubuntu-cluster"]
    assert stanzas["cluster-fs"]["Key"].split() == ["cluster-fs-stack"]
    if prof.task_mode == "task-fields":
        assert node["Packages"].strip() == "task-fields"
    else:
        assert node["Packages"].split() == ["list", "ubuntu-cluster"]


def test_openais_is_transitional(rendered: tuple[str, Path]) -> None:
    _, work = rendered
    src, binary = control(work, "openais")
    assert src["Section"] == "oldlibs"
    assert relation_names(binary["Depends"])[1:] == [["corosync"]]
    assert "transitional" in binary["Description"]


def test_rendered_tree_is_a_valid_source_package(rendered: tuple[str, Path]) -> None:
    _, work = rendered
    src = tree(work, "ubuntu-cluster")
    Runner().run(["dpkg-source", "-b", src.name], cwd=src.parent)
    assert list(src.parent.glob("ubuntu-cluster_*.dsc"))


def test_trixie_tasksel_data_is_debians_plus_our_stanzas(tmp_path: Path) -> None:
    """On trixie the tasks go where d-i's tasksel looks: Debian's tasksel-data
    (unpacked from the pinned, verified .deb) with our stanzas appended."""
    out = tmp_path / "out"
    assert main(["--stack", str(ROOT), "--out", str(out), "render", "--profile", "trixie"]) == 0
    work = out / "trixie/work"
    assert not (work / "cluster-tasks").exists()
    src = tree(work, "tasksel-data")
    assert src.name == "tasksel-data-3.81+cluster13"
    debians = (src / "base/tasksel-data/usr/share/tasksel/descs/debian-tasks.desc").read_text()
    assert "Task: web-server" in debians and "cluster-node" not in debians
    assert "Task: cluster-node" in (src / "cluster-tasks.desc").read_text()
    binary = control(work, "tasksel-data")[1]
    assert binary["Package"] == "tasksel-data"
    assert relation_names(binary["Depends"])[0] == ["tasksel"]
    assert "(= 3.81)" in binary["Depends"]
    Runner().run(["dpkg-source", "-b", src.name], cwd=src.parent)
    assert list(src.parent.glob("tasksel-data_3.81+cluster13.dsc"))


def test_template_error_names_file_and_line(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    stack = tmp_path / "stack"
    (stack / "packaging/profiles").mkdir(parents=True)
    (stack / "tasksel").mkdir()
    (stack / "packaging/profiles/trixie.yaml").write_text(
        (ROOT / "packaging/profiles/trixie.yaml").read_text())
    comp = stack / "packaging/broken"
    (comp / "debian").mkdir(parents=True)
    (comp / "recipe.yaml").write_text("name: broken\ndescription: x\nstrategy: native\n"
                                      "reason: test\nnative:\n  version: '1'\n")
    (comp / "debian/control.j2").write_text("Source: broken\n\nPackage: broken\n"
                                            "Description: {{ no_such_variable }}\n")
    rc = main(["--stack", str(stack), "--out", str(tmp_path / "out"), "render"])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"{comp / 'debian/control.j2'}:4: template error" in err
    assert "no_such_variable" in err


def test_trixie_nodes_start_no_cluster_before_the_bootstrap_tool(
        rendered: tuple[str, Path]) -> None:
    """A fresh node must not start Debian's example as a one-node cluster (pcs host
    auth then writes no known-hosts), nor hang on sbd without a watchdog; pcsd runs
    two workers.  What the systemd cluster tier would otherwise work around."""
    name, work = rendered
    if name != "trixie":
        pytest.skip("corosync and pacemaker are rebuilt on trixie only")
    corosync = tree(work, "corosync")
    install = (corosync / "debian/corosync.install").read_text().split()
    assert "etc/corosync/corosync.conf.example" in install
    assert "etc/corosync/corosync.conf" not in install
    assert "mv -v $(CONF).example $(CONF)" not in (corosync / "debian/rules").read_text()
    unit = (corosync / "init/corosync.service.in").read_text()  # our patch, applied
    assert "ConditionPathExists=@SYSCONFDIR@/corosync/corosync.conf" in unit
    assert "No live corosync.conf" in (corosync / "debian/changelog").read_text()
    pacemaker = tree(work, "pacemaker")
    unit = (pacemaker / "daemons/pacemakerd/pacemaker.service.in").read_text()
    assert "ConditionPathExists=/etc/corosync/corosync.conf" in unit
    meta = tree(work, "ubuntu-cluster")
    lines = (meta / "debian/ubuntu-cluster.install").read_text().splitlines()
    for unit_name, setting in (("pcsd", "Environment=PCSD_WORKER_COUNT=2"),
                               ("sbd", "ConditionPathExists=/dev/watchdog")):
        dropin = f"{unit_name}.service.d/clusterstack.conf"
        assert f"{dropin} usr/lib/systemd/system/{unit_name}.service.d/" in lines
        assert setting in (meta / dropin).read_text().splitlines()
