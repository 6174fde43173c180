"""Checks for the whole run: enough disk for the end-to-end tests, said once, up front."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

# The fixtures more than one test folder uses (support/fixtures.py), once.
pytest_plugins = ["support.fixtures"]

# Measured: a default run with warm caches peaks 7.8 GB above where it starts
# (archives and build results under tmp_path, a cluster root unpacked after a
# new publish); a first run also fills the caches with a few GB of roots.
E2E_FREE_GB = 8


def _places() -> dict[str, Path]:
    """What the end-to-end tests write to, by what it is for."""
    return {
        "temporary files": Path(tempfile.gettempdir()),
        "build cache": Path(os.environ.get("CLUSTERSTACK_CACHE",
                                           Path.home() / ".cache" / "clusterstack")),
        "test cache": Path(os.environ.get("CLUSTERSTACK_TEST_CACHE",
                                          "/var/cache/clusterstack-tests")),
    }


def _existing(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path


def pytest_collection_finish(session: pytest.Session) -> None:
    """Stop before the first test when the end-to-end tests cannot fit on the disk.

    A full disk otherwise shows up as dozens of unrelated errors (tar, sbuild,
    gpg, sqlite each failing in its own words) instead of one line saying why.
    """
    if not any(item.get_closest_marker("e2e") for item in session.items):
        return
    by_device: dict[int, list[str]] = {}
    paths: dict[int, Path] = {}
    for what, path in _places().items():
        path = _existing(path)
        device = path.stat().st_dev
        by_device.setdefault(device, []).append(f"{what} ({path})")
        paths[device] = path
    for device, whats in by_device.items():
        free_gb = shutil.disk_usage(paths[device]).free / 1e9
        if free_gb < E2E_FREE_GB:
            pytest.exit(
                f"only {free_gb:.1f} GB free on the file system holding {', '.join(whats)}; "
                f"the end-to-end tests need about {E2E_FREE_GB} GB. Free some space (old "
                f"roots under the caches, /tmp/pytest-of-*) or run without them: -m 'not e2e'",
                returncode=1)
