"""Fixtures for the CI tests: the shared test stack (tests/support/fixtures.py),
its upstream archive with one package."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.fakearchive import make_deb


@pytest.fixture
def upstream_debs(tmp_path: Path) -> list[Path]:
    debs = tmp_path / "debs"
    debs.mkdir()
    return [make_deb(debs, "demo-daemon", "1.0-1", source="demo")]
