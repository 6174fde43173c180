"""The tamper matrix: one thing tampered with at a time, each refused.

Every case starts from a good build and a published repository, tampers
with one input, and runs the command that meets it.  Each must end in one
error naming the file, a non-zero exit, and the published repository as it
was.  The README's "Tamper matrix" table is this test's output (run with -s).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.fakearchive import FakeArchive, StackUnderTest, make_deb
from support.tamper import (
    expire_release,
    flip_byte,
    publish_with_sources,
    rebuild_recipe,
    tamper_inrelease_signature,
)

from builder.base.command import Runner
from builder.cli import main
from builder.repo.validity import expired_release_refused

RUN = Runner()
SUITE = "fakesuite"


@dataclass
class Case:
    command: list[str]     # clusterstack arguments (before --profile)
    exit_code: int
    names: list[str]       # what the error must name: the file, and what was wrong


@dataclass
class World:
    stack: StackUnderTest
    archive: FakeArchive
    tmp: Path

    @property
    def arts(self) -> Path:
        return self.stack.out / "fake/artifacts/demo"

    @property
    def state_file(self) -> Path:
        return self.stack.out / "fake/state/demo.json"

    def newer_upstream(self) -> None:
        """An update upstream (so that the build must fetch something new)."""
        debs = self.tmp / "newer"
        debs.mkdir(exist_ok=True)
        self.archive.publish(SUITE, [make_deb(debs, "demo-daemon", "1.1-1", source="demo"),
                                     make_deb(debs, "libdemo1", "1.1-1", source="demo")])


def _inrelease(w: World) -> Case:
    tamper_inrelease_signature(w.archive, SUITE)
    return Case(["build"], 3, [f"{w.archive.url}/dists/{SUITE}/InRelease", "BADSIG"])


def _packages(w: World) -> Case:
    w.newer_upstream()
    flip_byte(w.archive.root / f"dists/{SUITE}/main/binary-amd64/Packages.xz", 100)
    return Case(["build"], 3, [f"dists/{SUITE}/main/binary-amd64/Packages.xz",
                               "checksum mismatch"])


def _deb(w: World) -> Case:
    w.newer_upstream()
    flip_byte(w.archive.root / "pool/main/libdemo1_1.1-1_all.deb")
    return Case(["build"], 3, ["pool/main/libdemo1_1.1-1_all.deb", "checksum mismatch"])


def _source_file(kind: str) -> Callable[[World], Case]:
    def case(w: World) -> Case:
        files = publish_with_sources(w.archive, SUITE, w.tmp / "srcpkg")
        flip_byte(files[kind], 200 if kind != "dsc" else -2)
        w.stack.recipe("demosrc", rebuild_recipe())
        return Case(["build"], 3, [f"pool/main/{files[kind].name}", "checksum mismatch"])
    return case


def _our_deb(w: World) -> Case:
    deb = w.arts / "libdemo1_1.0-1_all.deb"
    flip_byte(deb, 300)
    return Case(["publish"], 3, [str(deb), str(w.state_file), "sha256"])


def _our_state_digest(w: World) -> Case:
    data = json.loads(w.state_file.read_text())
    name = "demo-daemon_1.0-1_all.deb"
    digest = data["sha256"][name]
    data["sha256"][name] = ("1" if digest[0] == "0" else "0") + digest[1:]
    w.state_file.write_text(json.dumps(data, indent=1, sort_keys=True))
    return Case(["publish"], 3, [str(w.arts / name), str(w.state_file), "sha256"])


def _our_state_corrupt(w: World) -> Case:
    flip_byte(w.state_file, 0)        # "{" -> "z": no longer JSON
    return Case(["publish"], 2, [str(w.state_file), "not a valid build state"])


def _from_artifacts(w: World) -> Case:
    ci = w.tmp / "ci-job-out"
    shutil.copytree(w.stack.out / "fake", ci / "fake",
                    ignore=shutil.ignore_patterns("logs", "work", "ftparchive-cache"))
    deb = ci / "fake/artifacts/demo/demo-daemon_1.0-1_all.deb"
    flip_byte(deb, 300)
    return Case(["build", "--from-artifacts", str(ci)], 3, [str(deb), "sha256"])


def _upstream_expired(w: World) -> Case:
    expire_release(w.archive, SUITE)
    return Case(["build"], 3, [f"{w.archive.url}/dists/{SUITE}/InRelease", "Release expired on"])


CASES: dict[str, Callable[[World], Case]] = {
    "upstream InRelease signature": _inrelease,
    "upstream Packages index": _packages,
    "upstream .deb": _deb,
    "upstream .dsc": _source_file("dsc"),
    "upstream .debian.tar": _source_file("debian"),
    "upstream .orig tarball": _source_file("orig"),
    "upstream Release expired": _upstream_expired,
    "our .deb (artifacts folder)": _our_deb,
    "our state file (a digest)": _our_state_digest,
    "our state file (damaged)": _our_state_corrupt,
    "our artifact via --from-artifacts": _from_artifacts,
}


def snapshot(repo: Path) -> dict[str, str]:
    return {str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(repo.rglob("*")) if p.is_file()}


@pytest.fixture
def world(stack: StackUnderTest, fake_archive: FakeArchive, tmp_path: Path) -> World:
    assert main(stack.argv("build")) == 0
    assert main(stack.argv("publish")) == 0
    return World(stack, fake_archive, tmp_path)


@pytest.mark.parametrize("what", list(CASES))
def test_tampered_input_is_refused(world: World, what: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    repo = world.stack.out / "public/fake"
    target, before = os.readlink(repo), snapshot(repo)
    case = CASES[what](world)
    capsys.readouterr()
    code = main(world.stack.argv(*case.command))
    err = capsys.readouterr().err
    assert code == case.exit_code, err
    assert err.count("clusterstack: error:") == 1, err
    for name in case.names:
        assert name in err, f"{name!r} not in: {err}"
    assert os.readlink(repo) == target and snapshot(repo) == before
    line = next(ln for ln in err.splitlines() if any(n in ln for n in case.names[:1]))
    print(f"\n| {what} | `{case.command[0]}` | {code} | {line.strip()[:160]} |")


def test_our_expired_release_is_refused_by_apt(world: World) -> None:
    repo = world.stack.out / "public/fake"
    target, before = os.readlink(repo), snapshot(repo)
    detail = expired_release_refused(repo, RUN)
    assert "is expired" in detail and "Release file for file:" in detail
    assert os.readlink(repo) == target and snapshot(repo) == before
    print(f"\n| our Release expired | apt-get update | 100 | {detail} |")
