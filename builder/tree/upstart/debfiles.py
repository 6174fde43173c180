"""File lists of built .deb packages, for checking that a job's `exec` path exists."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from builder.base.command import Runner


@dataclass(frozen=True)
class DebFiles:
    deb: Path
    package: str
    paths: frozenset[str]
    # symlink path -> target as dpkg-deb prints it
    links: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def ships(self, path: str) -> bool:
        return os.path.normpath(path) in self.paths


def _package_name(deb: Path, runner: Runner) -> str:
    return runner.run(["dpkg-deb", "--field", deb, "Package"]).stdout.strip()


def read_deb(deb: Path, runner: Runner | None = None) -> DebFiles:
    """List the paths a .deb installs (`dpkg-deb -c`), normalised to absolute form."""
    runner = runner or Runner()
    listing = runner.run(["dpkg-deb", "-c", deb]).stdout
    paths: set[str] = set()
    links: dict[str, str] = {}
    for line in listing.splitlines():
        # perms owner/group size date time path [-> target]; the path may hold spaces
        parts = line.split(None, 5)
        if len(parts) < 6:
            continue
        name = parts[5]
        target = None
        if parts[0].startswith("l") and " -> " in name:
            name, target = name.split(" -> ", 1)
        name = os.path.normpath("/" + name.lstrip("./").rstrip("/")) if name not in (
            "./", ".") else "/"
        paths.add(name)
        if target is not None:
            links[name] = target
    return DebFiles(Path(deb), _package_name(Path(deb), runner), frozenset(paths), links)


def usr_alternative(path: str) -> str:
    """The same path on the other side of the /usr merge (/sbin/x <-> /usr/sbin/x)."""
    for top in ("/bin/", "/sbin/", "/lib/"):
        if path.startswith(top):
            return "/usr" + path
        if path.startswith("/usr" + top):
            return path[len("/usr"):]
    return path
