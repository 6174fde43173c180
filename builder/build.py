"""`clusterstack build`: bring every component's artifacts up to date."""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import digest, state, strategies
from .backend import Backend
from .command import Runner
from .errors import ClusterStackError
from .fetch import Fetcher
from .progress import Progress
from .stack import Stack
from .strategy import Context, Strategy
from .upstream import UpstreamArchive


@dataclass
class Outcome:
    component: str
    status: str           # up-to-date | fetched | built | failed
    version: str = ""
    stage: str = ""
    duration: float = 0.0
    log: Path | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "failed"


class BuildFailed(ClusterStackError):
    def __init__(self, outcomes: list[Outcome]) -> None:
        self.outcomes = outcomes
        failed = [o for o in outcomes if not o.ok]
        lines = [f"{len(failed)} component(s) failed:"]
        lines += [f"  {o.component} (stage {o.stage}): {o.error.splitlines()[0]}\n"
                  f"    log: {o.log}" for o in failed]
        super().__init__("\n".join(lines))


@dataclass
class Builder:
    stack: Stack
    runner: Runner
    fetcher: Fetcher
    progress: Progress
    backend: Backend | None = None
    jobs: int = 1

    def __post_init__(self) -> None:
        ws, prof = self.stack.workspace, self.stack.profile
        self.upstream = UpstreamArchive(prof, self.fetcher, self.runner, ws.state_dir(prof.name))

    def context(self, recipe_name: str) -> Context:
        ws, prof = self.stack.workspace, self.stack.profile
        recipe = next(r for r in self.stack.recipes if r.name == recipe_name)
        return Context(workspace=ws, profile=prof, recipe=recipe,
                       runner=self.runner.for_log(ws.log_path(prof.name, recipe.name)),
                       fetcher=self.fetcher, upstream=self.upstream, backend=self.backend)

    def stale(self) -> list[tuple[Context, Strategy, dict[str, str]]]:
        """Components whose inputs differ from what their artifacts were made of."""
        out = []
        for recipe in self.stack.recipes:
            ctx = self.context(recipe.name)
            strategy = strategies.for_recipe(recipe)
            inputs = strategy.inputs(ctx)
            known = state.read(ctx.workspace.state_dir(ctx.profile.name), recipe.name)
            arts = ctx.workspace.artifacts_dir(ctx.profile.name, recipe.name)
            if (known and known.key == digest.of_mapping(inputs)
                    and all((arts / f).is_file() for f in known.files)):
                continue
            out.append((ctx, strategy, inputs))
        return out

    def _one(self, ctx: Context, strategy: Strategy, inputs: dict[str, str]) -> Outcome:
        name, prof = ctx.recipe.name, ctx.profile.name
        started = time.monotonic()
        outcome = Outcome(name, "failed", stage="prepare", log=ctx.log_path)
        if ctx.log_path:
            ctx.log_path.write_text(f"# clusterstack build {name} ({prof}), strategy "
                                    f"{strategy.name}\n")
        final = ctx.workspace.artifacts_dir(prof, name)
        fresh = final.with_name(final.name + ".new")
        try:
            if fresh.exists():
                shutil.rmtree(fresh)
            fresh.mkdir(parents=True)
            outcome.stage = "fetch" if strategy.name == "import" else "build"
            self.progress.say(name, outcome.stage, strategy.name)
            arts = strategy.produce(ctx, fresh)
            outcome.stage = "store"
            if final.exists():
                shutil.rmtree(final)
            fresh.rename(final)
            duration = time.monotonic() - started
            state.write(ctx.workspace.state_dir(prof), state.ComponentState(
                component=name, key=digest.of_mapping(inputs), inputs=inputs,
                source=arts.source, version=arts.version,
                debs=[p.name for p in arts.debs], source_files=[p.name for p in arts.source_files],
                lintian=arts.lintian, duration=duration, finished=time.time()))
            outcome.status = "fetched" if strategy.name == "import" else "built"
            outcome.version, outcome.duration = arts.version, duration
            self.progress.say(name, outcome.status,
                              f"{arts.source} {arts.version} ({len(arts.debs)} debs, "
                              f"{duration:.1f}s)")
        except ClusterStackError as exc:
            outcome.error = str(exc)
            outcome.duration = time.monotonic() - started
            self.progress.say(name, "FAILED", f"at {outcome.stage}; log: {ctx.log_path}")
            if ctx.log_path:
                with open(ctx.log_path, "a") as fh:
                    fh.write(f"# FAILED at stage {outcome.stage}: {exc}\n")
        return outcome

    def render_all(self) -> list[Path]:
        """Render every component's source tree without building (any profile)."""
        trees = []
        for recipe in self.stack.recipes:
            strategy = strategies.for_recipe(recipe)
            render = getattr(strategy, "render", None)
            if render is None:
                continue
            ctx = self.context(recipe.name)
            trees.append(render(ctx, ctx.workspace.work_dir(ctx.profile.name, recipe.name)))
        return trees

    def run(self) -> list[Outcome]:
        todo = self.stale()
        fresh_names = {ctx.recipe.name for ctx, _, _ in todo}
        outcomes = {r.name: Outcome(r.name, "up-to-date",
                                    version=getattr(state.read(
                                        self.stack.workspace.state_dir(self.stack.profile.name),
                                        r.name), "version", ""))
                    for r in self.stack.recipes if r.name not in fresh_names}
        # Check every stale component before building any: a recipe naming a
        # package no archive has fails here, not halfway through the run.
        for ctx, strategy, _ in todo:
            strategy.intent(ctx)
        if todo and self.backend and any(s.name != "import" for _, s, _ in todo):
            self.progress.say("build-root", "prepare", self.stack.profile.suite)
            self.backend.prepare()
        with ThreadPoolExecutor(max_workers=max(1, self.jobs)) as pool:
            for outcome in pool.map(lambda t: self._one(*t), todo):
                outcomes[outcome.component] = outcome
        result = [outcomes[r.name] for r in self.stack.recipes]
        if any(not o.ok for o in result):
            raise BuildFailed(result)
        return result
