"""Artifacts are the bytes their build produced, or they are not published."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from support.fakearchive import StackUnderTest
from support.tamper import flip_byte

from builder.cli import main


@pytest.fixture
def built(stack: StackUnderTest) -> StackUnderTest:
    assert main(stack.argv("build")) == 0
    return stack


def state_of(stack: StackUnderTest) -> Path:
    return stack.out / "fake/state/demo.json"


def test_build_records_each_artifacts_sha256(built: StackUnderTest) -> None:
    recorded = json.loads(state_of(built).read_text())["sha256"]
    arts = built.out / "fake/artifacts/demo"
    assert recorded == {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                        for p in arts.iterdir()}
    assert len(recorded) == 2


def test_flipped_byte_in_a_deb_is_refused(built: StackUnderTest,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    deb = built.out / "fake/artifacts/demo/libdemo1_1.0-1_all.deb"
    flip_byte(deb, 500)
    assert main(built.argv("publish")) == 3
    err = capsys.readouterr().err
    assert f"{deb}: sha256 " in err and f"recorded in {state_of(built)}" in err
    assert not (built.out / "public/fake").exists()
    assert not list((built.out / "public/.releases").glob("*"))


def test_flipped_byte_in_a_state_file_is_refused(built: StackUnderTest,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    text = state_of(built).read_text()
    digest = json.loads(text)["sha256"]["demo-daemon_1.0-1_all.deb"]
    flipped = digest[:10] + ("a" if digest[10] != "a" else "b") + digest[11:]
    state_of(built).write_text(text.replace(digest, flipped))
    assert main(built.argv("publish")) == 3
    err = capsys.readouterr().err
    assert "artifacts/demo/demo-daemon_1.0-1_all.deb: sha256 " in err
    assert f"is not the {flipped} its build recorded in {state_of(built)}" in err


def test_damaged_state_file_is_named(built: StackUnderTest,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    flip_byte(state_of(built), 0)
    assert main(built.argv("publish")) == 2
    assert f"{state_of(built)}: not a valid build state" in capsys.readouterr().err


def test_state_without_a_digest_is_refused(built: StackUnderTest,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(state_of(built).read_text())
    del data["sha256"]["libdemo1_1.0-1_all.deb"]
    state_of(built).write_text(json.dumps(data))
    assert main(built.argv("publish")) == 3
    err = capsys.readouterr().err
    assert f"{state_of(built)}: records no sha256 for libdemo1_1.0-1_all.deb" in err


def test_state_from_before_digests_is_rebuilt(built: StackUnderTest,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(state_of(built).read_text())
    del data["sha256"]
    state_of(built).write_text(json.dumps(data))
    capsys.readouterr()
    assert main(built.argv("build")) == 0
    assert "1 fetched" in capsys.readouterr().out
    assert json.loads(state_of(built).read_text())["sha256"]
    assert main(built.argv("publish")) == 0


def test_from_artifacts_checks_what_it_takes(built: StackUnderTest, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    job = tmp_path / "job-out"
    shutil.copytree(built.out / "fake", job / "fake", ignore=shutil.ignore_patterns("logs"))
    (built.out / "fake/state/demo.json").unlink()       # this workspace wants it
    shutil.rmtree(built.out / "fake/artifacts/demo")
    deb = job / "fake/artifacts/demo/demo-daemon_1.0-1_all.deb"
    flip_byte(deb, 300)
    assert main(built.argv("build", "--from-artifacts", str(job))) == 3
    err = capsys.readouterr().err
    assert f"{deb}: sha256 " in err and "refusing to take it" in err
    assert not (built.out / "fake/artifacts/demo").exists()
    flip_byte(deb, 300)                                 # the good bytes again
    assert main(built.argv("build", "--from-artifacts", str(job))) == 0
    assert "1 up-to-date" in capsys.readouterr().out


def test_published_pool_is_not_the_artifacts_folder(built: StackUnderTest) -> None:
    """A later change to an artifact cannot reach a published release, and an
    unchanged file is shared between releases rather than copied again."""
    assert main(built.argv("publish")) == 0
    first = (built.out / "public/fake").resolve()
    deb = "pool/main/d/demo/libdemo1_1.0-1_all.deb"
    art = built.out / "fake/artifacts/demo/libdemo1_1.0-1_all.deb"
    assert os.stat(first / deb).st_ino != art.stat().st_ino
    assert main(built.argv("publish")) == 0
    second = (built.out / "public/fake").resolve()
    assert second != first
    assert os.stat(first / deb).st_ino == os.stat(second / deb).st_ino
    before = (second / deb).read_bytes()
    flip_byte(art, 300)
    assert (second / deb).read_bytes() == before
