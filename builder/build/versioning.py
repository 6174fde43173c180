"""Versions that follow the inputs: every change published is an upgrade.

A recipe gives a base version (`3.0.0-2` + the profile's suffix, e.g.
`3.0.0-2+cluster13`).  Built again from changed inputs (a patch, a template,
a build-dependency rebuilt), a component gets a counter on top:
`3.0.0-2+cluster13.1`, `.2`, ...  apt never replaces an installed package by
different bytes under the same version, so without the counter a node would
keep the old build forever and two different .debs would share one name.

The counter continues from the last build recorded in the component's state
and from what the published repository already carries, whichever is higher,
so a lost state does not make the next version go backwards.
"""

from __future__ import annotations

import re
from functools import cmp_to_key
from pathlib import Path

from debian.debian_support import version_compare

from builder.base.errors import ClusterStackError

from .state import ComponentState


class VersionWentBackwards(ClusterStackError):
    pass


def _counter(version: str, base: str) -> int | None:
    """0 for the base itself, N for base.N, None for another base."""
    if version == base:
        return 0
    m = re.fullmatch(re.escape(base) + r"\.(\d+)", version)
    return int(m.group(1)) if m else None


def choose(component: str, base: str, key: str, previous: ComponentState | None,
           published: list[str] | None = None) -> str:
    """The version this build of `component` carries.

    Same inputs as the last build: the same version (the same bytes, when
    the build is reproducible).  Changed inputs: the next counter above
    every build of this base seen so far.  A base below what was built or
    published before is refused: apt would never install it.
    """
    seen = [v for v in [*(published or []), *([previous.version] if previous else [])] if v]
    newest = max(seen, key=cmp_to_key(version_compare), default=None)
    if newest and _counter(newest, base) is None and version_compare(newest, base) > 0:
        raise VersionWentBackwards(
            f"{component}: version would go backwards: {newest} was built or published "
            f"before, the recipe now gives {base}; raise the recipe's version above it")
    if previous and previous.key == key and _counter(previous.version, base) is not None:
        return previous.version
    counters = [c for c in (_counter(v, base) for v in seen) if c is not None]
    if not counters:
        return base
    return f"{base}.{max(counters) + 1}"


def published_versions(repo: Path, source: str) -> list[str]:
    """Versions of `source` in a published repository's Sources indexes."""
    versions = []
    for index in repo.glob("dists/*/*/source/Sources"):
        for stanza in index.read_text(encoding="utf-8").split("\n\n"):
            if re.search(rf"^Package: {re.escape(source)}$", stanza, re.M):
                m = re.search(r"^Version: (\S+)$", stanza, re.M)
                if m:
                    versions.append(m.group(1))
    return versions
