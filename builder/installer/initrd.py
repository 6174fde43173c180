"""The installer's initrd with our files added: a second cpio member appended.

The kernel unpacks every concatenated (compressed) cpio archive of an initrd in
order, later files replacing earlier ones; d-i documents this as the way to
put a preseed file in the initrd (`preseed/file=/preseed.cfg`). The archive is
written here (newc format) because cpio is not among the host tools.
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Mapping
from pathlib import Path

TRAILER = "TRAILER!!!"


def _member(name: str, data: bytes, mode: int, ino: int) -> bytes:
    encoded = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0]
    header = b"070701" + b"".join(f"{v:08X}".encode() for v in fields)
    out = header + encoded
    out += b"\0" * (-len(out) % 4)
    out += data
    out += b"\0" * (-len(out) % 4)
    return out


def newc_archive(files: Mapping[str, bytes], mode: int = 0o100644) -> bytes:
    """A cpio (newc) archive of regular files, with the directories they need."""
    members: list[bytes] = []
    seen: set[str] = set()
    ino = 1
    for name in sorted(files):
        if name.startswith("/") or ".." in name.split("/"):
            raise ValueError(f"initrd member {name!r}: a relative path without '..' is needed")
        parts = name.split("/")
        for depth in range(1, len(parts)):
            directory = "/".join(parts[:depth])
            if directory not in seen:
                seen.add(directory)
                members.append(_member(directory, b"", 0o40755, ino))
                ino += 1
        members.append(_member(name, files[name], mode, ino))
        ino += 1
    members.append(_member(TRAILER, b"", 0, 0))
    return b"".join(members)


def with_files(initrd: Path, files: Mapping[str, bytes], dest: Path) -> Path:
    """Copy `initrd` to `dest` and append `files` as a gzip-compressed cpio member."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    shutil.copyfile(initrd, tmp)
    with open(tmp, "ab") as out:
        out.write(gzip.compress(newc_archive(files), compresslevel=6, mtime=0))
    tmp.replace(dest)
    return dest
