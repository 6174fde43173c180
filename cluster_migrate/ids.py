"""Pacemaker ids: XML NCNames, unique across the whole CIB."""

from __future__ import annotations

import re

_BAD = re.compile(r"[^A-Za-z0-9_.-]+")


def sanitize(text: str) -> str:
    out = _BAD.sub("_", text).strip("_") or "rsc"
    # An XML id cannot start with a digit, dot or dash; rgmanager names (and IP
    # addresses used as names) often do.
    if not (out[0].isalpha() or out[0] == "_"):
        out = "r" + out
    return out


class Ids:
    """Hands out unique ids; the same base asked twice gets -2, -3... appended."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def take(self, base: str) -> str:
        candidate = sanitize(base)
        if candidate in self._taken:
            n = 2
            while f"{candidate}-{n}" in self._taken:
                n += 1
            candidate = f"{candidate}-{n}"
        self._taken.add(candidate)
        return candidate

    def __contains__(self, item: str) -> bool:
        return item in self._taken
