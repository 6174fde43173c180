"""Bring built components from another output folder (CI jobs pass them on)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from . import state
from .errors import ClusterStackError
from .workspace import Workspace


def bring(source: Path, workspace: Workspace, profile: str) -> list[str]:
    """Copy each component's state and artifacts from source/<profile> into the
    workspace, unless the workspace already has that very build."""
    src_state = source / profile / "state"
    if not src_state.is_dir():
        raise ClusterStackError(f"--from-artifacts {source}: no {profile}/state folder there")
    if source.resolve() == workspace.out_dir.resolve():
        return []
    brought = []
    for path in sorted(src_state.glob("*.json")):
        st = state.read(src_state, path.stem)
        if st is None:
            continue
        mine = state.read(workspace.state_dir(profile), st.component)
        if mine and mine.key == st.key:
            continue
        src_arts = source / profile / "artifacts" / st.component
        dest = workspace.artifacts_dir(profile, st.component)
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        for name in st.files:
            try:
                os.link(src_arts / name, dest / name)
            except OSError:
                shutil.copyfile(src_arts / name, dest / name)
        state.write(workspace.state_dir(profile), st)
        brought.append(st.component)
    return brought
