"""The cluster caches stay bounded: old roots and images go, ones in use stay."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from builder.verify.cluster import cachekeep


def _entry(cache: Path, key: str, age: int) -> None:
    """A cached entry as ensure_root leaves it, last used `age` minutes ago."""
    (cache / f"trixie-{key}").mkdir()
    (cache / f"trixie-{key}" / "etc").mkdir()
    (cache / f"trixie-{key}" / "etc" / "hostname").write_text("node\n")
    (cache / f"trixie-{key}.tar.zst").write_bytes(b"tar")
    lock = cache / f"{key}.lock"
    lock.touch()
    when = 1_700_000_000 - 60 * age
    os.utime(lock, (when, when))


def _files(cache: Path, key: str) -> list[Path]:
    return list(cache.glob(f"*-{key}*"))


def test_prune_keeps_the_current_entry_and_the_most_recently_used(tmp_path: Path) -> None:
    for age, key in enumerate(["k0", "k1", "k2", "k3", "k4"]):
        _entry(tmp_path, key, age)
    # k4 is the oldest by use, but it is the one this run uses.
    removed = cachekeep.prune(tmp_path, "k4", lambda k: _files(tmp_path, k), keep=3)
    assert sorted(removed) == ["k2", "k3"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([
        "k0.lock", "trixie-k0", "trixie-k0.tar.zst",
        "k1.lock", "trixie-k1", "trixie-k1.tar.zst",
        "k4.lock", "trixie-k4", "trixie-k4.tar.zst"])


def test_prune_leaves_an_entry_another_run_is_using(tmp_path: Path) -> None:
    for age, key in enumerate(["new", "busy", "idle"]):
        _entry(tmp_path, key, age)
    # Held as a run holds it: the shared lock of cachekeep.use.
    with cachekeep.use(tmp_path / "busy.lock", lambda: True, lambda: None):
        removed = cachekeep.prune(tmp_path, "new", lambda k: _files(tmp_path, k), keep=1)
    assert removed == ["idle"]
    assert _files(tmp_path, "busy") and (tmp_path / "busy.lock").exists()
    assert not _files(tmp_path, "idle") and not (tmp_path / "idle.lock").exists()
    # Free and stale now: the next prune takes it.
    assert cachekeep.prune(tmp_path, "new", lambda k: _files(tmp_path, k), keep=1) == ["busy"]


def test_use_makes_a_missing_entry_once_and_marks_it_used(tmp_path: Path) -> None:
    lock = tmp_path / "k.lock"
    made: list[int] = []
    ready = lambda: bool(made)  # noqa: E731
    with cachekeep.use(lock, ready, lambda: made.append(1)) as first:
        assert first is True
    os.utime(lock, (1, 1))
    with cachekeep.use(lock, ready, lambda: made.append(1)) as second:
        assert second is False
    assert made == [1]
    assert lock.stat().st_mtime > 1


def test_use_releases_the_lock_when_making_fails(tmp_path: Path) -> None:
    lock = tmp_path / "k.lock"

    def broken() -> None:
        raise RuntimeError("mmdebstrap failed")

    with pytest.raises(RuntimeError, match="mmdebstrap failed"), \
            cachekeep.use(lock, lambda: False, broken):
        pass
    with open(lock, "a") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # would raise if still held
