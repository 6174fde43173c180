"""Issue 19: comparing two builds of the same inputs, .deb by .deb (real dpkg-deb, diffoscope)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from builder.base.command import Runner
from builder.base.errors import InputError
from builder.build import reproducible, state

PROFILE = "trixie"


def make_deb(where: Path, name: str, content: str) -> Path:
    root = where / f"root-{name}-{abs(hash(content))}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text(
        f"Package: {name}\nVersion: 1.0\nArchitecture: all\n"
        "Maintainer: Tests <tests@clusterstack.invalid>\nDescription: test\n")
    doc = root / f"usr/share/doc/{name}"
    doc.mkdir(parents=True)
    (doc / "README").write_text(content)
    deb = where / f"{name}_1.0_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root), str(deb)], check=True,
                   capture_output=True, env={"SOURCE_DATE_EPOCH": "1", "PATH": "/usr/bin:/bin"})
    shutil.rmtree(root)
    return deb


def built(out: Path, component: str, key: str, debs: dict[str, str],
          source_files: tuple[str, ...] = ("x.dsc",), finished: float | None = None) -> None:
    arts = out / PROFILE / "artifacts" / component
    arts.mkdir(parents=True)
    names = [make_deb(arts, name, content).name for name, content in debs.items()]
    state_dir = out / PROFILE / "state"
    state_dir.mkdir(parents=True, exist_ok=True)
    state.write(state_dir, state.ComponentState(
        component=component, key=key, inputs={}, source=component, version="1.0",
        debs=names, source_files=list(source_files), sha256=state.digests(arts, names),
        finished=time.time() if finished is None else finished))


def test_identical_differing_and_skipped(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second-elsewhere"
    for out, readme in ((first, "same"), (second, "same")):
        built(out, "native-one", "k1", {"native-one": readme})
    built(first, "compiled", "k2", {"libcompiled1": "same", "compiled-bin": "built at 10:00"})
    built(second, "compiled", "k2", {"libcompiled1": "same", "compiled-bin": "built at 11:00"})
    built(first, "changed", "k3", {"changed": "a"})
    built(second, "changed", "k3-other", {"changed": "b"})
    built(first, "copied", "k5", {"copied": "c"}, finished=1.0)
    built(second, "copied", "k5", {"copied": "c"}, finished=1.0)
    built(first, "imported", "k4", {"imported": "x"}, source_files=())
    built(second, "imported", "k4", {"imported": "x"}, source_files=())

    result = reproducible.compare(first, second, PROFILE, Runner())

    verdicts = {(d.component, d.deb): d.verdict for d in result.debs}
    assert verdicts == {
        ("compiled", "compiled-bin_1.0_all.deb"): reproducible.Verdict.DIFFERS,
        ("compiled", "libcompiled1_1.0_all.deb"): reproducible.Verdict.IDENTICAL,
        ("native-one", "native-one_1.0_all.deb"): reproducible.Verdict.IDENTICAL,
    }
    assert result.identical == 2 and not result.reproducible
    assert {s.component: s.why for s in result.skipped} == {
        "changed": reproducible.Skip.OTHER_INPUTS, "imported": reproducible.Skip.NOT_BUILT,
        "copied": reproducible.Skip.SAME_BUILD}
    differs = next(d for d in result.debs if d.verdict is reproducible.Verdict.DIFFERS)
    if shutil.which("diffoscope"):
        # diffoscope names the member that differs, inside data.tar.
        assert "./usr/share/doc/compiled-bin/README" in differs.summary
        assert "data.tar" in differs.summary
    text = reproducible.table(result)
    assert "2 of 3 .debs bit-for-bit identical" in text
    assert "compiled-bin_1.0_all.deb: differs" in text
    assert '"identical": 2' in result.to_json()


def test_second_build_missing_a_deb(tmp_path: Path) -> None:
    built(tmp_path / "a", "c", "k", {"one": "x", "two": "y"})
    built(tmp_path / "b", "c", "k", {"one": "x"})
    result = reproducible.compare(tmp_path / "a", tmp_path / "b", PROFILE, Runner())
    assert [d.verdict for d in result.debs] == [reproducible.Verdict.IDENTICAL,
                                               reproducible.Verdict.MISSING]


def test_first_build_missing_is_one_clear_error(tmp_path: Path) -> None:
    built(tmp_path / "second", "c", "k", {"one": "x"})
    with pytest.raises(InputError) as err:
        reproducible.compare(tmp_path / "first", tmp_path / "second", PROFILE, Runner())
    assert str(tmp_path / "first" / PROFILE / "state") in str(err.value)
    assert "build into this output folder first" in str(err.value)
    assert err.value.exit_code == 2
