"""Bring built components from another output folder (CI jobs pass them on)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from builder.base import digest
from builder.base.errors import ClusterStackError, VerificationError
from builder.base.workspace import Workspace

from . import state


def bring(source: Path, workspace: Workspace, profile: str) -> list[str]:
    """Copy each component's state and artifacts from source/<profile> into the
    workspace, unless the workspace already has that very build."""
    src_state = source / profile / "state"
    if not src_state.is_dir():
        raise ClusterStackError(f"--from-artifacts {source}: no {profile}/state folder there")
    # CI restores earlier jobs' artifacts into the output folder itself: they
    # are checked all the same, since later builds use them as they are.
    same = source.resolve() == workspace.out_dir.resolve()
    brought = []
    for path in sorted(src_state.glob("*.json")):
        st = state.read(src_state, path.stem)
        if st is None or not st.key:   # unreadable, or from before digests: rebuilt
            continue
        src_arts = source / profile / "artifacts" / st.component
        check_digests(src_arts, st, path)
        if same:
            continue
        mine = state.read(workspace.state_dir(profile), st.component)
        if mine and mine.key == st.key:
            continue
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


def check_digests(src_arts: Path, st: state.ComponentState, state_path: Path) -> None:
    """Refuse artifacts that are not the bytes their build recorded (a
    tampered or damaged transfer between CI jobs), before taking any."""
    for name in st.files:
        expected = st.sha256.get(name)
        if expected is None:
            raise VerificationError(f"{state_path}: records no sha256 for {name}; refusing "
                                    "to take its artifacts")
        try:
            actual = digest.of_file(src_arts / name)
        except FileNotFoundError:
            continue   # a missing artifact is reported where it is needed
        if actual != expected:
            raise VerificationError(f"{src_arts / name}: sha256 {actual} is not the {expected} "
                                    f"its build recorded in {state_path}; refusing to take it")
