"""What a build would do, without building: each component's entry, its cache
key, the dependency edges and what is stale.

`plan`, `key`, `render` and the CI pipeline generator need this and nothing
of the build itself.  A component's cache key is its own inputs plus the keys
of what it builds against, so changing one patch makes that component and its
reverse build-dependencies stale only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.base import digest, graph
from builder.base.command import Runner
from builder.base.fetch import Fetcher
from builder.base.progress import Progress
from builder.buildroot.backend import Backend
from builder.sources.upstream import UpstreamArchive
from builder.stack.stack import Stack
from builder.tree import render
from builder.tree.strategy import Context, Strategy, for_recipe

from . import state


@dataclass(frozen=True)
class Contexts:
    """Makes the Context each strategy gets, for one stack in one run."""

    stack: Stack
    runner: Runner
    fetcher: Fetcher
    upstream: UpstreamArchive
    backend: Backend | None = None
    parallel: int = 1

    @classmethod
    def create(cls, stack: Stack, runner: Runner, fetcher: Fetcher,
               backend: Backend | None = None, parallel: int = 1) -> Contexts:
        ws, prof = stack.workspace, stack.profile
        upstream = UpstreamArchive(prof, fetcher, runner, ws.state_dir(prof.name))
        return cls(stack, runner, fetcher, upstream, backend, parallel)

    @property
    def state_dir(self) -> Path:
        return self.stack.workspace.state_dir(self.stack.profile.name)

    def context(self, component: str, extra_debs: tuple[Path, ...] = ()) -> Context:
        ws, prof = self.stack.workspace, self.stack.profile
        recipe = next(r for r in self.stack.recipes if r.name == component)
        return Context(workspace=ws, profile=prof, recipe=recipe,
                       runner=self.runner.for_log(ws.log_path(prof.name, recipe.name)),
                       fetcher=self.fetcher, upstream=self.upstream, backend=self.backend,
                       extra_debs=extra_debs, parallel=self.parallel)


@dataclass
class Entry:
    """One component in this run."""

    ctx: Context
    strategy: Strategy[Any]
    own: dict[str, str]
    previous: state.ComponentState | None
    tree: Path | None = None
    binaries: set[str] = field(default_factory=set)
    build_depends: list[list[str]] = field(default_factory=list)
    key: str = ""

    @property
    def name(self) -> str:
        return self.ctx.recipe.name

    @property
    def builds(self) -> bool:
        return self.strategy.builds_from_source

    def learn(self, tree: Path) -> None:
        control = render.read_control(tree / "debian")
        self.tree = tree
        self.binaries = set(control.binaries)
        self.build_depends = [list(g) for g in control.build_depends]

    def render(self, progress: Progress) -> None:
        """Render the source tree afresh and learn what it builds and needs."""
        ctx = self.ctx
        if ctx.log_path:
            ctx.log_path.write_text(f"# clusterstack render {self.name} ({ctx.profile.name})\n")
        progress.say(self.name, "render", self.strategy.name)
        self.learn(self.strategy.render(ctx, ctx.workspace.work_dir(ctx.profile.name,
                                                                     self.name)))


@dataclass
class Analysis:
    entries: dict[str, Entry]
    deps: dict[str, set[str]]    # component -> the components it builds against
    stale: list[str]             # components whose artifacts are not up to date


def analyse(contexts: Contexts, progress: Progress) -> Analysis:
    """Entries with their cache keys, the dependency edges, and what is stale."""
    entries: dict[str, Entry] = {}
    for recipe in contexts.stack.recipes:
        ctx = contexts.context(recipe.name)
        strategy = for_recipe(recipe)
        entries[recipe.name] = Entry(ctx, strategy, strategy.inputs(ctx),
                                     state.read(contexts.state_dir, recipe.name))
    # What each source component produces and needs: remembered from its
    # last render while its own inputs are unchanged, else rendered now.
    for e in entries.values():
        if not e.builds:
            continue
        prev = e.previous
        if prev and prev.own_key == digest.of_mapping(e.own) and prev.binaries:
            e.binaries, e.build_depends = set(prev.binaries), prev.build_depends
        else:
            e.render(progress)
    deps = graph.edges({n: e.binaries for n, e in entries.items() if e.builds},
                       {n: e.build_depends for n, e in entries.items()})
    for name in graph.order(deps):
        e = entries[name]
        e.key = digest.of_mapping({**e.own, **{f"dep:{d}": entries[d].key
                                               for d in sorted(deps.get(name, ()))}})
    return Analysis(entries, deps, [name for name, e in entries.items() if not _fresh(e)])


def _fresh(e: Entry) -> bool:
    """Whether the artifacts of the component's last build are its current ones."""
    arts = e.ctx.workspace.artifacts_dir(e.ctx.profile.name, e.name)
    prev = e.previous
    return bool(prev and prev.key == e.key and all((arts / f).is_file() for f in prev.files))


def render_trees(contexts: Contexts, progress: Progress) -> list[Path]:
    """Render every component's source tree without building (any profile)."""
    trees = []
    reachable = contexts.stack.profile.reachable
    for recipe in contexts.stack.recipes:
        strategy = for_recipe(recipe)
        if not strategy.builds_from_source:
            continue
        if strategy.rebuilds_upstream and not reachable:
            # Its source comes from the base archive, which is not reachable.
            progress.say(recipe.name, "skipped", "base archive not reachable")
            continue
        ctx = contexts.context(recipe.name)
        trees.append(strategy.render(ctx, ctx.workspace.work_dir(ctx.profile.name,
                                                                  recipe.name)))
    return trees
