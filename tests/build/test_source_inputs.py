"""Source builds: every bad input is refused before anything builds."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.sourcestack import BAD_PATCH, GOOD_PATCH, SourceStack

from builder.cli import main


def test_patch_that_does_not_apply(source_stack: SourceStack,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    source_stack.component("demo", patches={"0001-good.patch": GOOD_PATCH,
                                            "0002-bad.patch": BAD_PATCH})
    assert main(source_stack.argv("build")) == 2
    err = capsys.readouterr().err
    patch = source_stack.dir / "patches/demo/0002-bad.patch"
    assert f"{patch}: does not apply to demo-1.0: file hello.txt: hunk #1 failed at line 1" in err
    assert not (source_stack.out / "fake/artifacts").exists()


def test_patches_apply_in_series(source_stack: SourceStack) -> None:
    source_stack.component("demo", patches={"0001-good.patch": GOOD_PATCH})
    assert main(source_stack.argv("render")) == 0
    (tree,) = (source_stack.out / "fake/work/demo").glob("demo-1.0")
    assert (tree / "hello.txt").read_text() == "hello\ncluster\n"
    series = (tree / "debian/patches/series").read_text().split()
    assert series == ["clusterstack-0001-good.patch"]
    assert "Patch: 0001-good.patch" in (tree / "debian/changelog").read_text()


def test_series_naming_a_missing_patch(source_stack: SourceStack,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    source_stack.component("demo", patches={"0001-good.patch": GOOD_PATCH})
    series = source_stack.dir / "patches/demo/series"
    series.write_text(series.read_text() + "0002-gone.patch\n")
    assert main(source_stack.argv("build")) == 2
    assert f"{series}:2: names '0002-gone.patch', which does not exist" in \
        capsys.readouterr().err


def test_tarball_with_wrong_sha256(source_stack: SourceStack,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    source_stack.component("demo", sha256="0" * 64)
    assert main(source_stack.argv("build")) == 3
    err = capsys.readouterr().err
    assert "checksum mismatch for" in err and "demo-1.0.tar.gz" in err
    assert "expected sha256 " + "0" * 64 in err


def test_template_that_fails_to_render(source_stack: SourceStack,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    comp = source_stack.component("demo")
    control = comp / "debian/control.j2"
    control.write_text(control.read_text() + "X-Broken: {{ profile.nosuchkey }}\n")
    assert main(source_stack.argv("build")) == 2
    lines = control.read_text().count("\n")
    assert f"{control}:{lines}: template error" in capsys.readouterr().err


def test_unknown_build_dependency(source_stack: SourceStack,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    source_stack.component("demo", build_depends="libfoo-dev | libbar-dev, debhelper-compat")
    assert main(source_stack.argv("build")) == 1
    err = capsys.readouterr().err
    assert "unknown build-dependencies" in err
    assert "demo: libfoo-dev | libbar-dev" in err
    assert not (source_stack.out / "fake/artifacts").exists()


def test_cycle_is_reported(source_stack: SourceStack,
                           capsys: pytest.CaptureFixture[str]) -> None:
    source_stack.component("chicken", binary="libchicken", build_depends="libegg")
    source_stack.component("egg", binary="libegg", build_depends="libchicken")
    assert main(source_stack.argv("build")) == 1
    err = capsys.readouterr().err
    assert "build-dependency cycle: chicken -> egg -> chicken" in err


def test_plan_shows_source_builds(source_stack: SourceStack,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    source_stack.component("demo", patches={"0001-good.patch": GOOD_PATCH})
    assert main(source_stack.argv("plan")) == 0
    row = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("demo "))
    assert row.split()[:5] == ["demo", "package", "build", "demo", "1.0-1+test1"]


def test_upstart_profile_ships_jobs_in_component_packages(source_stack: SourceStack) -> None:
    """On an Upstart profile a component package carries its daemon's jobs."""
    profile = source_stack.dir / "packaging/profiles/fake.yaml"
    profile.write_text(profile.read_text().replace("init: systemd", "init: upstart"))
    source_stack.component("corosync", binary="corosync")
    source_stack.component("other", binary="other-tool")
    (source_stack.dir / "upstart").symlink_to(Path(__file__).parents[2] / "upstart")
    assert main(source_stack.argv("render")) == 0
    work = source_stack.out / "fake/work"
    (tree,) = (work / "corosync").glob("corosync-1.0")
    assert (tree / "debian/clusterstack-upstart/corosync.conf").read_text().startswith("#")
    assert "debian/clusterstack-upstart/corosync.conf etc/init/" in \
        (tree / "debian/corosync.install").read_text()
    (other,) = (work / "other").glob("other-1.0")
    assert not (other / "debian/clusterstack-upstart").exists()


def test_systemd_profile_ships_no_jobs(source_stack: SourceStack) -> None:
    source_stack.component("corosync", binary="corosync")
    assert main(source_stack.argv("render")) == 0
    (tree,) = (source_stack.out / "fake/work/corosync").glob("corosync-1.0")
    assert not (tree / "debian/clusterstack-upstart").exists()
