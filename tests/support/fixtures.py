"""Fixtures shared by the test folders: the upstream signing key, a signed
upstream archive on loopback, and a one-component test stack importing from it.

tests/conftest.py loads this module as a plugin: every folder has them, and
each is written once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.base.serve import serve
from support.fakearchive import (
    PROFILE,
    FakeArchive,
    Key,
    StackUnderTest,
    make_deb,
    make_key,
    stop_agent,
)


@pytest.fixture(scope="session")
def upstream_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Key]:
    key = make_key(tmp_path_factory.mktemp("gpg") / "upstream", "Upstream <up@example.invalid>")
    yield key
    stop_agent(key.home)


@pytest.fixture
def upstream_debs(tmp_path: Path) -> list[Path]:
    """What the fake upstream archive publishes (a folder may override it)."""
    debs_dir = tmp_path / "debs"
    debs_dir.mkdir()
    return [make_deb(debs_dir, "demo-daemon", "1.0-1", source="demo"),
            make_deb(debs_dir, "libdemo1", "1.0-1", source="demo"),
            make_deb(debs_dir, "other-tool", "2.0-1")]


@pytest.fixture
def fake_archive(tmp_path: Path, upstream_key: Key, upstream_debs: list[Path]
                 ) -> Iterator[FakeArchive]:
    root = tmp_path / "mirror"
    root.mkdir()
    with serve(root) as url:
        archive = FakeArchive(root, url, upstream_key)
        archive.publish("fakesuite", upstream_debs)
        yield archive


@pytest.fixture
def stack(tmp_path: Path, fake_archive: FakeArchive, monkeypatch: pytest.MonkeyPatch
          ) -> StackUnderTest:
    sdir = tmp_path / "stack"
    (sdir / "packaging/profiles").mkdir(parents=True)
    (sdir / "tasksel").mkdir()
    (sdir / "packaging/profiles/fake.yaml").write_text(
        PROFILE.format(url=fake_archive.url, keyring=fake_archive.key.keyring))
    ts = StackUnderTest(sdir, tmp_path / "out", tmp_path / "cache")
    ts.recipe("demo", "name: demo\ndescription: demo\nstrategy: import\nimport:\n"
              "  source: demo\n")
    monkeypatch.setenv("CLUSTERSTACK_GNUPGHOME", str(tmp_path / "signing"))
    return ts
