"""The stack definition for one profile: its recipes, loaded and checked."""

from __future__ import annotations

from dataclasses import dataclass, replace

from builder.base.datafile import Checked
from builder.base.errors import ClusterStackError
from builder.base.workspace import Workspace

from . import profile as profiles
from . import recipe as recipes
from .profile import Profile
from .recipe import Recipe
from .specs import ImportSpec


@dataclass(frozen=True)
class Stack:
    workspace: Workspace
    profile: Profile
    recipes: tuple[Recipe, ...]
    # Components to build in this run; None: all.  The others still take part
    # in the graph: what a selected component builds against must be there.
    selected: frozenset[str] | None = None

    @classmethod
    def load(cls, workspace: Workspace, profile_name: str,
             only: list[str] | None = None, imported: list[str] | None = None,
             strategies: list[str] | None = None) -> Stack:
        """`imported`: components to take as Debian's binaries for this run instead
        of building them (a quick run; their state is kept apart by its own key)."""
        checked = Checked(workspace.cache_dir / "checked")
        profile = profiles.load(workspace.stack_dir, profile_name, checked)
        everything = [r for r in recipes.load_all(workspace.packaging_dir, profile.name, checked)
                      if r.applies_to(profile.name)]
        for name in imported or []:
            match = [r for r in everything if r.name == name]
            if not match:
                raise ClusterStackError(f"--import {name}: no such component")
            r = match[0]
            everything[everything.index(r)] = replace(
                r, strategy=ImportSpec.section, spec=ImportSpec(source=r.source_name),
                reason=f"taken from the base archive for this run (--import {name})")
        if only:
            known = {r.name for r in everything}
            unknown = [c for c in only if c not in known]
            if unknown:
                raise ClusterStackError(f"unknown component(s) for profile {profile.name}: "
                                        f"{', '.join(unknown)}")
        selected = set(only) if only else None
        if strategies:
            of_strategy = {r.name for r in everything if r.strategy in strategies}
            selected = of_strategy if selected is None else selected & of_strategy
        return cls(workspace, profile, tuple(everything),
                   frozenset(selected) if selected is not None else None)
