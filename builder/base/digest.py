"""Content digests for cache keys."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path


def of_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def of_file(path: Path) -> str:
    """sha256 of a file, read in blocks (artifacts and downloads are large)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def of_tree(root: Path) -> str:
    """Digest of every file's relative path, mode and content below root."""
    h = hashlib.sha256()
    if not root.exists():
        return of_bytes(b"")
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if "__pycache__" in rel:
            continue
        h.update(f"{rel}\0{path.stat().st_mode & 0o111:o}\0".encode())
        h.update(of_file(path).encode())
    return h.hexdigest()


def of_mapping(parts: Mapping[str, str]) -> str:
    return of_bytes("\n".join(f"{k}={parts[k]}" for k in sorted(parts)).encode())
