"""Fixtures for the backbone tests, besides the shared ones (tests/support/fixtures.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.fakearchive import Key, make_key, stop_agent


@pytest.fixture(scope="session")
def stranger_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Key]:
    key = make_key(tmp_path_factory.mktemp("gpg") / "stranger", "Other <x@example.invalid>")
    yield key
    stop_agent(key.home)
