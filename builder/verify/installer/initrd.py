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
from dataclasses import dataclass
from pathlib import Path

from builder.base.errors import ClusterStackError

TRAILER = "TRAILER!!!"
DEBIAN_KEYRING = "usr/share/keyrings/debian-archive-keyring.gpg"
# net-retriever's and base-installer's keyring; made at boot as a link to Debian's
ARCHIVE_KEYRING = "usr/share/keyrings/archive.gpg"


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


@dataclass(frozen=True)
class Member:
    data: bytes          # a symlink's target for a symlink
    symlink: bool = False


def members(initrd: Path) -> dict[str, Member]:
    """The regular files and symlinks of an initrd (every concatenated gzip'd newc
    archive, later ones replacing earlier ones, as the kernel unpacks them)."""
    raw = gzip.decompress(initrd.read_bytes())  # concatenated gzip members decode as one
    found: dict[str, Member] = {}
    pos = 0
    while (pos := raw.find(b"0707", pos)) >= 0 and pos + 110 <= len(raw):
        magic = raw[pos:pos + 6]
        if magic not in (b"070701", b"070702"):
            raise ClusterStackError(f"{initrd}: not a newc cpio archive at offset {pos}")
        fields = [int(raw[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name = raw[pos + 110:pos + 110 + namesize - 1].decode("utf-8", "replace")
        pos += 110 + namesize
        pos += -pos % 4
        data = raw[pos:pos + size]
        pos += size
        pos += -pos % 4
        if name == TRAILER:
            continue
        kind = mode & 0o170000
        if kind in (0o100000, 0o120000):
            found[name.removeprefix("./")] = Member(data, kind == 0o120000)
    return found


def read_file(files: Mapping[str, Member], name: str, what: Path) -> bytes:
    """A regular file of `members()`, following symlinks within the initrd."""
    for _ in range(8):
        member = files.get(name)
        if member is None:
            raise ClusterStackError(f"{what}: the initrd has no {name}")
        if not member.symlink:
            return member.data
        target = member.data.decode()
        name = target.lstrip("/") if target.startswith("/") else \
            "/".join([*name.split("/")[:-1], target])
    raise ClusterStackError(f"{what}: {name}: too many symlinks")
