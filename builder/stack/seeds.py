"""Germinate-style seeds: the package lists behind meta-packages and tasks.

A seed file (`tasksel/<name>.seed`) starts with `Task-*:` header lines, then
lists packages as ` * name` (a dependency of the meta-package) or
` * (name)` (only recommended), as Ubuntu's seeds do.  `a | b` is an
alternative.  Anything else is commentary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from builder.base.errors import InputError

_ENTRY = re.compile(r"^ \* (?P<body>.+?)\s*(?:#.*)?$")
_HEADER = re.compile(r"^(?P<key>Task-[A-Za-z-]+):\s*(?P<value>.*)$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9.+-]+$")


@dataclass(frozen=True)
class Seed:
    name: str
    headers: dict[str, str]
    depends: list[str] = field(default_factory=list)
    recommends: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        return self.headers.get("Task-Description", self.name)

    @property
    def key(self) -> str:
        return self.headers["Task-Key"]

    def packages(self) -> list[str]:
        """Every package named, alternatives included (for Task: fields)."""
        names: list[str] = []
        for entry in self.depends + self.recommends:
            names.extend(alt.strip() for alt in entry.split("|"))
        return names


def load(path: Path) -> Seed:
    headers: dict[str, str] = {}
    depends: list[str] = []
    recommends: list[str] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(path, f"cannot read seed: {exc.strerror}") from exc
    for number, line in enumerate(lines, 1):
        if m := _HEADER.match(line):
            headers[m["key"]] = m["value"]
            continue
        if not (m := _ENTRY.match(line)):
            continue
        body = m["body"]
        target = depends
        if body.startswith("(") and body.endswith(")"):
            body, target = body[1:-1].strip(), recommends
        alternatives = [alt.strip() for alt in body.split("|")]
        for alt in alternatives:
            if not _NAME.match(alt):
                raise InputError(path, f"'{alt}' is not a package name", line=number)
        target.append(" | ".join(alternatives))
    if "Task-Key" not in headers:
        raise InputError(path, "seed has no Task-Key: header naming its meta-package")
    return Seed(path.stem, headers, depends, recommends)
