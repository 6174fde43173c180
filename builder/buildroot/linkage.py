"""Prove that no produced binary links to, or depends on, a forbidden library."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from builder.base.command import Runner
from builder.base.errors import ClusterStackError


class LinkageError(ClusterStackError):
    pass


def check(debs: list[Path], forbidden: tuple[str, ...], runner: Runner) -> int:
    """Raise LinkageError on the first offence; return how many ELF files were read."""
    if not forbidden:
        return 0
    pattern = re.compile("|".join(re.escape(f) for f in forbidden))
    elf_count = 0
    for deb in debs:
        fields = runner.run(["dpkg-deb", "-f", deb, "Depends", "Pre-Depends", "Recommends"]
                            ).stdout
        for line in fields.splitlines():
            if pattern.search(line):
                raise LinkageError(f"{deb.name}: {line.strip()} names a forbidden library "
                                   f"({', '.join(forbidden)})")
        with tempfile.TemporaryDirectory() as tmp:
            runner.run(["dpkg-deb", "-x", deb, tmp])
            for path in Path(tmp).rglob("*"):
                if path.is_symlink() or not path.is_file():
                    continue
                with open(path, "rb") as fh:
                    if fh.read(4) != b"\x7fELF":
                        continue
                elf_count += 1
                dynamic = runner.run(["readelf", "-d", path], check=False).stdout
                for line in dynamic.splitlines():
                    if "(NEEDED)" in line and pattern.search(line):
                        raise LinkageError(f"{deb.name}: /{path.relative_to(tmp)} links "
                                           f"{line.split('[')[-1].rstrip(']')}")
    return elf_count
