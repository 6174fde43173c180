"""Fixtures for the source-build tests: a test stack with `package` components."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.fakearchive import Key
from support.sourcestack import SourceStack

from builder.base.serve import serve


@pytest.fixture
def source_stack(tmp_path: Path, upstream_key: Key, monkeypatch: pytest.MonkeyPatch
                 ) -> Iterator[SourceStack]:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with serve(mirror) as url:
        st = SourceStack(tmp_path, mirror, url, upstream_key)
        st.setup()
        monkeypatch.setenv("CLUSTERSTACK_GNUPGHOME", str(tmp_path / "signing"))
        yield st
