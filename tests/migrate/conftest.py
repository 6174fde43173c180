"""Fixtures for the cluster-migrate tests."""

from __future__ import annotations

import pytest

from .migrate_helpers import GOOD_CONFIGS, Converted, convert


@pytest.fixture(scope="session")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Converted]:
    """Every good fixture converted once by the real command line."""
    base = tmp_path_factory.mktemp("converted")
    return {name: convert(name, base) for name in GOOD_CONFIGS}
