"""Fixtures for the backbone tests, besides the shared ones (tests/support/fixtures.py)."""

from __future__ import annotations

import pytest
from support.fakearchive import Key, make_key


@pytest.fixture(scope="session")
def stranger_key(tmp_path_factory: pytest.TempPathFactory) -> Key:
    return make_key(tmp_path_factory.mktemp("gpg") / "stranger", "Other <x@example.invalid>")
