"""Keeping a cache folder of keyed entries (roots, guest images) to a bounded size.

Each entry is a few files named by its key, with a `<key>.lock` beside them that
every run holds while it uses the entry. A root's key changes whenever our
archive is published again, so without pruning every run of a freshly built
archive left 2.7 GB behind: a day of benchmark runs filled the disk.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

log = logging.getLogger("clusterstack.cluster")

# The entry in use, and the ones before it: one or two other configurations
# (stock and our stack, crmsh and pcs) stay warm.
KEEP = 3


@contextlib.contextmanager
def use(lock_path: Path, ready: Callable[[], bool], make: Callable[[], None]) -> Iterator[bool]:
    """Hold the entry behind `lock_path` for the `with` block, calling `make` first if not `ready`.

    Yields whether `make` ran. Runs using an entry share its lock, so they run side
    by side and pruning leaves the entry alone; making it takes the lock for itself.
    """
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        made = False
        if not ready():
            # Not atomic (flock drops the shared lock first): hence the second look.
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not ready():
                make()
                made = True
            fcntl.flock(lock, fcntl.LOCK_SH)
        # The lock's mtime says when the entry was last used: pruning keeps the newest.
        os.utime(lock_path)
        yield made


def prune(directory: Path, current: str, entries_of: Callable[[str], Iterable[Path]],
          keep: int = KEEP) -> list[str]:
    """Remove the entries of all but the `keep` most recently used keys in `directory`.

    `current` is always kept. An entry whose lock another run holds is in use and
    left alone; its files go the next time it is stale and free.
    """
    used = {}
    for lock_path in directory.glob("*.lock"):
        with contextlib.suppress(FileNotFoundError):  # another run pruning it right now
            used[lock_path] = lock_path.stat().st_mtime
    locks = sorted(used, key=used.__getitem__, reverse=True)
    stale = [p for p in locks if p.stem != current][max(keep - 1, 0):]
    removed = []
    for lock_path in stale:
        # "a": opening must not change the mtime that says when the entry was last used.
        with open(lock_path, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            for path in entries_of(lock_path.stem):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
            # Unlinked while held: a run that opens the name afterwards gets a new
            # lock and finds no files, so it builds the entry again.
            lock_path.unlink()
        removed.append(lock_path.stem)
    if removed:
        log.info("removed %d unused cache entries from %s: %s", len(removed), directory,
                 ", ".join(removed))
    return removed
