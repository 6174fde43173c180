"""Fixtures for the CI tests: the backbone's loopback archive and test stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.fakearchive import PROFILE, FakeArchive, Key, StackUnderTest, make_deb, make_key

from builder.serve import serve


@pytest.fixture(scope="session")
def upstream_key(tmp_path_factory: pytest.TempPathFactory) -> Key:
    return make_key(tmp_path_factory.mktemp("gpg") / "upstream", "Upstream <up@example.invalid>")


@pytest.fixture
def stack(tmp_path: Path, upstream_key: Key, monkeypatch: pytest.MonkeyPatch
          ) -> Iterator[StackUnderTest]:
    root = tmp_path / "mirror"
    root.mkdir()
    debs = tmp_path / "debs"
    debs.mkdir()
    with serve(root) as url:
        FakeArchive(root, url, upstream_key).publish(
            "fakesuite", [make_deb(debs, "demo-daemon", "1.0-1", source="demo")])
        sdir = tmp_path / "stack"
        (sdir / "packaging/profiles").mkdir(parents=True)
        (sdir / "tasksel").mkdir()
        (sdir / "packaging/profiles/fake.yaml").write_text(
            PROFILE.format(url=url, keyring=upstream_key.keyring))
        st = StackUnderTest(sdir, tmp_path / "out", tmp_path / "cache")
        st.recipe("demo", "name: demo\ndescription: demo\nstrategy: import\nimport:\n"
                  "  source: demo\n")
        monkeypatch.setenv("CLUSTERSTACK_GNUPGHOME", str(tmp_path / "signing"))
        yield st
