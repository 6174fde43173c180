"""Fixtures for the cluster-migrate tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from migrate_helpers import GOOD_CONFIGS, Converted, convert

# An editable install made before cluster_migrate/ existed does not map it; the tests
# import it from the checkout they belong to.
_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)


@pytest.fixture(scope="session")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Converted]:
    """Every good fixture converted once by the real command line."""
    base = tmp_path_factory.mktemp("converted")
    return {name: convert(name, base) for name in GOOD_CONFIGS}
