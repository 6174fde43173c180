"""Strategy `import`: the signed chain InRelease -> Packages -> .deb, link by link."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from support.fakearchive import FakeArchive, Key, StackUnderTest, make_deb

from builder.cli import main


def run(stack: StackUnderTest, *args: str) -> int:
    return main(stack.argv(*args))


def test_import_fetches_verified_binaries(stack: StackUnderTest, fake_archive: FakeArchive,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert run(stack, "build") == 0
    arts = sorted(p.name for p in (stack.out / "fake/artifacts/demo").iterdir())
    # Only the binaries built from source "demo", not other-tool.
    assert arts == ["demo-daemon_1.0-1_all.deb", "libdemo1_1.0-1_all.deb"]
    for name in arts:
        ours = (stack.out / "fake/artifacts/demo" / name).read_bytes()
        theirs = (fake_archive.root / "pool/main" / name).read_bytes()
        assert hashlib.sha256(ours).digest() == hashlib.sha256(theirs).digest()
    assert "1 fetched" in capsys.readouterr().out


def test_second_build_does_no_work(stack: StackUnderTest,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert run(stack, "build") == 0
    capsys.readouterr()
    assert run(stack, "build") == 0
    captured = capsys.readouterr()
    assert "1 up-to-date" in captured.out
    assert "fetch" not in captured.err


def test_changed_upstream_refetches(stack: StackUnderTest, fake_archive: FakeArchive,
                                    tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(stack, "build") == 0
    newer = make_deb(tmp_path, "libdemo1", "1.1-1", source="demo")
    newer_daemon = make_deb(tmp_path, "demo-daemon", "1.1-1", source="demo")
    fake_archive.publish("fakesuite", [newer, newer_daemon])
    capsys.readouterr()
    assert run(stack, "build") == 0
    assert "1 fetched" in capsys.readouterr().out
    assert (stack.out / "fake/artifacts/demo/libdemo1_1.1-1_all.deb").is_file()


def test_package_in_no_archive(stack: StackUnderTest, capsys: pytest.CaptureFixture[str]) -> None:
    path = stack.recipe("ghost", "name: ghost\ndescription: x\nstrategy: import\n"
                        "import:\n  source: no-such-source\n")
    assert run(stack, "build") == 2
    err = capsys.readouterr().err
    assert f"{path}:5: import.source: source package 'no-such-source' exists in none" in err
    # Checked before anything was fetched: demo was not touched either.
    assert not (stack.out / "fake/artifacts/demo").exists()


def test_missing_binary_named(stack: StackUnderTest, capsys: pytest.CaptureFixture[str]) -> None:
    stack.recipe("demo", "name: demo\ndescription: x\nstrategy: import\nimport:\n"
                 "  source: demo\n  binaries: [demo-daemon, demo-gui]\n")
    assert run(stack, "plan") == 2
    assert "import.binaries: binary package(s) demo-gui not built" in capsys.readouterr().err


def test_tampered_deb_is_refused(stack: StackUnderTest, fake_archive: FakeArchive,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    deb = fake_archive.root / "pool/main/libdemo1_1.0-1_all.deb"
    deb.write_bytes(deb.read_bytes()[:-1] + b"X")   # same size, other content
    assert run(stack, "build") == 3   # a refused input, as a tampered index or Release
    err = capsys.readouterr().err
    assert "checksum mismatch for" in err and "libdemo1_1.0-1_all.deb" in err
    assert "demo (failed at stage fetch)" in err
    assert not (stack.out / "fake/artifacts/demo").exists()
    assert not list((stack.cache / "downloads").rglob("*.part-*"))


def test_unsigned_release_is_refused(stack: StackUnderTest, fake_archive: FakeArchive,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    fake_archive.publish("fakesuite", [], signed=False)
    assert run(stack, "build") == 3
    assert "not signed" in capsys.readouterr().err


def test_wrongly_signed_release_is_refused(stack: StackUnderTest, fake_archive: FakeArchive,
                                           stranger_key: Key,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    fake_archive.publish("fakesuite", [], sign_with=stranger_key)
    assert run(stack, "build") == 3
    assert "signed by a key that is not in the keyring" in capsys.readouterr().err


def test_tampered_packages_index_is_refused(stack: StackUnderTest, fake_archive: FakeArchive,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    index = fake_archive.root / "dists/fakesuite/main/binary-amd64/Packages.xz"
    index.write_bytes(index.read_bytes() + b"\0")
    assert run(stack, "build") == 3
    assert "Packages.xz" in capsys.readouterr().err


def test_missing_file_on_mirror_is_named(stack: StackUnderTest, fake_archive: FakeArchive,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    (fake_archive.root / "pool/main/demo-daemon_1.0-1_all.deb").unlink()
    assert run(stack, "build") == 1
    err = capsys.readouterr().err
    assert "demo-daemon_1.0-1_all.deb: HTTP 404 (not on the mirror)" in err
