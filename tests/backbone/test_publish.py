"""`publish`: a signed, by-hash apt repository, switched in atomically."""

from __future__ import annotations

import gzip
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from debian.deb822 import Packages, Release
from support.fakearchive import StackUnderTest

from builder.base.command import Runner
from builder.base.lock import exclusive
from builder.cli import main

RUN = Runner()


def published(stack: StackUnderTest) -> Path:
    return stack.out / "public" / "fake"


def snapshot(repo: Path) -> dict[str, str]:
    return {str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(repo.rglob("*")) if p.is_file()}


@pytest.fixture
def built(stack: StackUnderTest) -> StackUnderTest:
    assert main(stack.argv("build")) == 0
    return stack


def test_repository_is_signed_and_indexed(built: StackUnderTest) -> None:
    assert main(built.argv("publish")) == 0
    repo = published(built)
    assert repo.is_symlink()
    dist = repo / "dists/fakesuite"
    for name in ("InRelease", "Release", "Release.gpg"):
        assert (dist / name).is_file()
    key = repo / "clusterstack-archive-keyring.gpg"
    assert (repo / "clusterstack-archive-keyring.asc").read_text().startswith(
        "-----BEGIN PGP PUBLIC KEY BLOCK-----")
    # Both signatures verify with the exported key, as apt would check them.
    status = RUN.run(["gpgv", "--status-fd", "1", "--keyring", key, dist / "InRelease"]).stdout
    assert "VALIDSIG" in status
    RUN.run(["gpgv", "--keyring", key, dist / "Release.gpg", dist / "Release"])
    release = Release((dist / "Release").read_text())
    assert release["Acquire-By-Hash"] == "yes"
    assert release["Suite"] == "fakesuite" and release["Components"] == "main"
    sums = {e["name"]: e["sha256"] for e in release["SHA256"]}
    assert "Release" not in sums
    for index in ("main/binary-amd64/Packages", "main/binary-amd64/Packages.gz",
                  "main/binary-amd64/Packages.xz"):
        data = (dist / index).read_bytes()
        assert hashlib.sha256(data).hexdigest() == sums[index]
        by_hash = dist / Path(index).parent / "by-hash/SHA256" / sums[index]
        assert by_hash.read_bytes() == data
    pkgs = list(Packages.iter_paragraphs(gzip.decompress(
        (dist / "main/binary-amd64/Packages.gz").read_bytes()).decode(), use_apt_pkg=False))
    assert sorted(p["Package"] for p in pkgs) == ["demo-daemon", "libdemo1"]
    for p in pkgs:
        assert hashlib.sha256((repo / p["Filename"]).read_bytes()).hexdigest() == p["SHA256"]
        assert p["Filename"].startswith("pool/main/d/demo/")


def test_publish_needs_a_build(stack: StackUnderTest, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(stack.argv("publish")) == 1
    assert "not built for fake: demo" in capsys.readouterr().err
    assert not published(stack).exists()


def test_failed_publish_leaves_previous_repository(built: StackUnderTest,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(built.argv("publish")) == 0
    before_target, before = os.readlink(published(built)), snapshot(published(built))
    monkeypatch.setenv("CLUSTERSTACK_SIGNING_KEY", "not a key")
    assert main(built.argv("publish")) == 1
    assert "does not hold an armored OpenPGP secret key" in capsys.readouterr().err
    assert os.readlink(published(built)) == before_target
    assert snapshot(published(built)) == before


def test_killed_publish_leaves_previous_repository(built: StackUnderTest,
                                                   tmp_path: Path) -> None:
    assert main(built.argv("publish")) == 0
    before_target, before = os.readlink(published(built)), snapshot(published(built))
    releases = built.out / "public" / ".releases"
    # An apt-ftparchive that says when it runs and then hangs: the publish is
    # killed while its staging folder is half written, every time.
    fakebin, marker = tmp_path / "bin", tmp_path / "indexing"
    fakebin.mkdir()
    (fakebin / "apt-ftparchive").write_text(f"#!/bin/sh\ntouch {marker}\nexec sleep 60\n")
    (fakebin / "apt-ftparchive").chmod(0o755)
    env = {**os.environ, "PATH": f"{fakebin}:{os.environ['PATH']}"}
    proc = subprocess.Popen([sys.executable, "-m", "builder.cli", *built.argv("publish")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "publish never reached indexing"
    os.killpg(proc.pid, signal.SIGKILL)   # the whole job, as a CI runner kills it
    proc.wait()
    assert list(releases.glob(".staging-*")), "no half-written staging folder"
    assert os.readlink(published(built)) == before_target
    assert snapshot(published(built)) == before
    # The next publish clears the leftover and succeeds.
    assert main(built.argv("publish")) == 0
    assert not list(releases.glob(".staging-*"))


def test_concurrent_run_is_refused(built: StackUnderTest,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(built.argv("publish")) == 0
    before = snapshot(published(built))
    with exclusive(built.out):
        assert main(built.argv("publish")) == 4
        assert main(built.argv("build")) == 4
    err = capsys.readouterr().err
    assert f"another clusterstack run (pid {os.getpid()})" in err
    assert snapshot(published(built)) == before


def test_signing_key_is_kept(built: StackUnderTest) -> None:
    assert main(built.argv("publish")) == 0
    first = (published(built) / "clusterstack-archive-keyring.asc").read_text()
    assert main(built.argv("publish")) == 0
    assert (published(built) / "clusterstack-archive-keyring.asc").read_text() == first


def test_task_fields_for_ubuntu_style_profiles(built: StackUnderTest) -> None:
    profile = built.dir / "packaging/profiles/fake.yaml"
    profile.write_text(profile.read_text().replace("mode: desc-key", "mode: task-fields"))
    (built.dir / "tasksel/demo-node.seed").write_text(
        "Task-Description: Demo node\nTask-Key: demo-daemon\n\n * libdemo1\n")
    assert main(built.argv("build")) == 0
    assert main(built.argv("publish")) == 0
    text = (published(built) / "dists/fakesuite/main/binary-amd64/Packages").read_text()
    tasks = {p["Package"]: p.get("Task") for p in Packages.iter_paragraphs(text, use_apt_pkg=False)}
    assert tasks == {"demo-daemon": "demo-node", "libdemo1": "demo-node"}
