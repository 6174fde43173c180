"""Part 2 of the Upstart issue: the cluster-stack-upstart package."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from builder.base.command import Runner
from builder.tree.upstart.debfiles import DebFiles, read_deb
from builder.tree.upstart.lint import lint_file
from builder.tree.upstart.package import JobLintError, build_jobs_package
from builder.tree.upstart.render import UPSTART_DIR, render_all

TRIXIE = {"name": "trixie", "init": "systemd"}
TRUSTY = {"name": "trusty", "init": "upstart"}


def field(deb: Path, name: str) -> str:
    return Runner().run(["dpkg-deb", "--field", deb, name]).stdout.strip()


@pytest.mark.parametrize("profile", [TRIXIE, TRUSTY], ids=lambda p: p["name"])
def test_package_carries_every_job(tmp_path: Path, profile: dict) -> None:
    deb = build_jobs_package(profile, tmp_path, version="1.0")
    assert deb.name == "cluster-stack-upstart_1.0_all.deb"
    files = read_deb(deb)
    assert files.package == "cluster-stack-upstart"
    rendered = render_all(profile)
    for r in rendered:
        assert files.ships(f"/etc/init/{r.job.name}.conf"), r.job.name
    # never /etc/default/<x>: those are the component packages' conffiles
    assert not any(p.startswith("/etc/default") for p in files.paths)
    assert files.ships("/usr/share/cluster-stack-upstart/default/corosync")
    conffiles = Runner().run(["dpkg-deb", "--info", deb, "conffiles"]).stdout.split()
    assert conffiles == [f"/etc/init/{r.conf_name}" for r in rendered]
    assert field(deb, "Architecture") == "all"
    assert "corosync" in field(deb, "Suggests").split(", ")
    assert f"rendered for {profile['name']}" in field(deb, "Description")


def test_shipped_jobs_are_the_rendered_ones_and_lint_clean(tmp_path: Path) -> None:
    deb = build_jobs_package(TRUSTY, tmp_path, version="1.0")
    Runner().run(["dpkg-deb", "-x", deb, tmp_path / "x"])
    for r in render_all(TRUSTY):
        shipped = tmp_path / "x/etc/init" / r.conf_name
        assert shipped.read_text() == r.conf
        assert lint_file(shipped) == []


@pytest.mark.parametrize(("change", "message"), [
    (("respawn\n", "respwan\n"), "keepalived.conf.j2 [trixie]:"),
    (("start on started corosync", "start on (started corosync"), "pacemaker.conf.j2 [trixie]:"),
])
def test_build_refuses_to_ship_a_job_that_fails_lint(
        tmp_path: Path, change: tuple[str, str], message: str) -> None:
    upstart = tmp_path / "upstart"
    shutil.copytree(UPSTART_DIR, upstart)
    name = message.split(".conf")[0]
    tpl = upstart / f"{name}.conf.j2"
    assert change[0] in tpl.read_text()
    tpl.write_text(tpl.read_text().replace(change[0], change[1], 1))
    with pytest.raises(JobLintError) as exc:
        build_jobs_package(TRIXIE, tmp_path, version="1.0", upstart_dir=upstart)
    assert message in str(exc.value)
    assert ": error: " in str(exc.value)
    assert not list(tmp_path.glob("*.deb"))


@pytest.mark.network
def test_build_refuses_exec_path_the_package_does_not_ship(
        tmp_path: Path, trixie_files: dict[str, DebFiles]) -> None:
    upstart = tmp_path / "upstart"
    shutil.copytree(UPSTART_DIR, upstart)
    yml = upstart / "jobs.yaml"
    yml.write_text(yml.read_text().replace("/usr/sbin/keepalived", "/usr/sbin/keepalivd"))
    with pytest.raises(JobLintError, match=r"keepalived.conf.j2 \[trixie\]:\d+: error: exec path "
                                           r"/usr/sbin/keepalivd is not shipped by keepalived_"):
        build_jobs_package(TRIXIE, tmp_path, version="1.0", upstart_dir=upstart,
                           debs=trixie_files)


@pytest.mark.e2e
def test_installed_in_the_trixie_root(stack_root: Path) -> None:
    status = Runner().run(["chroot", stack_root, "dpkg-query", "-W", "-f=${Status} ${Version}",
                           "cluster-stack-upstart"]).stdout
    assert status == "install ok installed 0.1.0+cluster13"
    conffiles = Runner().run(["chroot", stack_root, "dpkg-query", "-W", "-f=${Conffiles}",
                              "cluster-stack-upstart"]).stdout
    assert "/etc/init/corosync.conf" in conffiles
    for conf in sorted((stack_root / "etc/init").glob("*.conf")):
        assert lint_file(conf) == [], conf
