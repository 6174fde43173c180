"""Where a build's results go: the artifacts folder of each component and its state.

A build writes into a staging folder beside the component's artifacts
folder; only a complete result is renamed into place, and its state (input
key, files and their sha256) is written after it, so a state file never
names artifacts that are not there.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from builder.base import digest
from builder.base.workspace import Workspace
from builder.tree.strategy import Artifacts

from . import state
from .analysis import Entry


@dataclass(frozen=True)
class Store:
    workspace: Workspace
    profile: str

    @property
    def state_dir(self) -> Path:
        return self.workspace.state_dir(self.profile)

    def staging(self, component: str) -> Path:
        """An empty folder for the component's new artifacts."""
        final = self.workspace.artifacts_dir(self.profile, component)
        fresh = final.with_name(final.name + ".new")
        if fresh.exists():
            shutil.rmtree(fresh)
        fresh.mkdir(parents=True)
        return fresh

    def commit(self, e: Entry, arts: Artifacts, duration: float, finished: float) -> None:
        """Put the staged artifacts in place, then record how they were made."""
        final = self.workspace.artifacts_dir(self.profile, e.name)
        if final.exists():
            shutil.rmtree(final)
        final.with_name(final.name + ".new").rename(final)
        files = [p.name for p in arts.files]
        state.write(self.state_dir, state.ComponentState(
            component=e.name, key=e.key, inputs=e.own, own_key=digest.of_mapping(e.own),
            source=arts.source, version=arts.version,
            debs=[p.name for p in arts.debs], source_files=[p.name for p in arts.source_files],
            lintian=arts.lintian, binaries=sorted(e.binaries),
            build_depends=e.build_depends, duration=duration, finished=finished,
            sha256=state.digests(final, files)))

    def built_debs(self, names: Iterable[str]) -> tuple[Path, ...]:
        return built_debs(self.workspace, self.profile, names)


def built_debs(ws: Workspace, profile: str, names: Iterable[str]) -> tuple[Path, ...]:
    """The .debs last built for `names`: what a build against them is given."""
    out: list[Path] = []
    for name in sorted(names):
        st = state.read(ws.state_dir(profile), name)
        if st:
            out.extend(ws.artifacts_dir(profile, name) / d for d in st.debs)
    return tuple(out)
