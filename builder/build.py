"""`clusterstack build`: bring every component's artifacts up to date.

The order comes from the Build-Depends of the rendered source trees; a
component's cache key is its own inputs plus the keys of what it builds
against, so changing one patch rebuilds that component and its reverse
build-dependencies only.  Independent builds run in parallel; a failure
stops only what depends on it.
"""

from __future__ import annotations

import shutil
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from . import digest, graph, render, report, sourcetree, state, strategies, versioning
from .backend import Backend
from .command import Runner
from .errors import ClusterStackError
from .fetch import Fetcher
from .outcome import Outcome
from .progress import Progress
from .stack import Stack
from .strategy import Context, Strategy
from .upstream import UpstreamArchive
from .workspace import Workspace


class BuildFailed(ClusterStackError):
    def __init__(self, outcomes: list[Outcome]) -> None:
        self.outcomes = outcomes
        bad = [o for o in outcomes if not o.ok]
        lines = [f"{len(bad)} component(s) not built:"]
        for o in bad:
            first = (o.error.splitlines() or [""])[0]
            lines.append(f"  {o.component} ({o.status} at stage {o.stage}): {first}")
            if o.status == "failed":
                lines.append(f"    log: {o.log}")
        super().__init__("\n".join(lines))
        # A download that failed its checksum exits as every other refused
        # input does (3), not as a failed compile.
        self.exit_code = max((o.exit_code for o in bad), default=1) or 1


@dataclass
class Entry:
    """One component in this run."""

    ctx: Context
    strategy: Strategy
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
        return hasattr(self.strategy, "render")

    def learn(self, tree: Path) -> None:
        control = render.read_control(tree / "debian")
        self.tree = tree
        self.binaries = set(control.binaries)
        self.build_depends = [list(g) for g in control.build_depends]


# A first build has no duration to go by; on 2 cores sbuild gets through
# roughly this much compressed source per second (pacemaker: 14.5 MB, 10-14 min).
SOURCE_BYTES_PER_SECOND = 20_000


def estimate(e: Entry) -> float:
    """Seconds this component's build is expected to take, for the scheduler."""
    if e.previous and e.previous.duration:
        return e.previous.duration
    guess = e.strategy.expected_seconds
    if e.tree:
        guess += sourcetree.source_bytes(e.tree) / SOURCE_BYTES_PER_SECOND
    return guess


def built_debs(ws: Workspace, profile: str, names: set[str]) -> tuple[Path, ...]:
    """The .debs last built for `names`: what a build against them is given."""
    out: list[Path] = []
    for name in sorted(names):
        st = state.read(ws.state_dir(profile), name)
        if st:
            out.extend(ws.artifacts_dir(profile, name) / d for d in st.debs)
    return tuple(out)


@dataclass
class Builder:
    stack: Stack
    runner: Runner
    fetcher: Fetcher
    progress: Progress
    backend: Backend | None = None
    jobs: int = 1
    parallel: int = 1

    def __post_init__(self) -> None:
        ws, prof = self.stack.workspace, self.stack.profile
        self.upstream = UpstreamArchive(prof, self.fetcher, self.runner, ws.state_dir(prof.name))

    @property
    def state_dir(self) -> Path:
        return self.stack.workspace.state_dir(self.stack.profile.name)

    def context(self, recipe_name: str, extra_debs: tuple[Path, ...] = ()) -> Context:
        ws, prof = self.stack.workspace, self.stack.profile
        recipe = next(r for r in self.stack.recipes if r.name == recipe_name)
        return Context(workspace=ws, profile=prof, recipe=recipe,
                       runner=self.runner.for_log(ws.log_path(prof.name, recipe.name)),
                       fetcher=self.fetcher, upstream=self.upstream, backend=self.backend,
                       extra_debs=extra_debs, parallel=self.parallel)

    def _render(self, entry: Entry) -> None:
        ctx = entry.ctx
        if ctx.log_path:
            ctx.log_path.write_text(f"# clusterstack render {entry.name} ({ctx.profile.name})\n")
        self.progress.say(entry.name, "render", entry.strategy.name)
        work = ctx.workspace.work_dir(ctx.profile.name, entry.name)
        entry.learn(entry.strategy.render(ctx, work))  # type: ignore[attr-defined]

    def analyse(self) -> tuple[dict[str, Entry], dict[str, set[str]], list[str]]:
        """Entries with their cache keys, the dependency edges, and what is stale."""
        entries: dict[str, Entry] = {}
        for recipe in self.stack.recipes:
            ctx = self.context(recipe.name)
            strategy = strategies.for_recipe(recipe)
            entries[recipe.name] = Entry(ctx, strategy, strategy.inputs(ctx),
                                         state.read(self.state_dir, recipe.name))
        # What each source component produces and needs: remembered from its
        # last render while its own inputs are unchanged, else rendered now.
        for e in entries.values():
            if not e.builds:
                continue
            prev = e.previous
            if prev and prev.own_key == digest.of_mapping(e.own) and prev.binaries:
                e.binaries, e.build_depends = set(prev.binaries), prev.build_depends
            else:
                self._render(e)
        deps = graph.edges({n: e.binaries for n, e in entries.items() if e.builds},
                           {n: e.build_depends for n, e in entries.items()})
        for name in graph.order(deps):
            e = entries[name]
            e.key = digest.of_mapping({**e.own, **{f"dep:{d}": entries[d].key
                                                   for d in sorted(deps.get(name, ()))}})
        stale = []
        for name, e in entries.items():
            arts = e.ctx.workspace.artifacts_dir(e.ctx.profile.name, name)
            prev = e.previous
            if not (prev and prev.key == e.key and all((arts / f).is_file() for f in prev.files)):
                stale.append(name)
        return entries, deps, stale

    def _check_before_building(self, entries: dict[str, Entry], stale: list[str]) -> None:
        """Errors that must stop the run before anything builds."""
        for name in stale:
            e = entries[name]
            e.strategy.intent(e.ctx)   # e.g. a package that no archive has
            if e.builds and e.tree is None:
                self._render(e)        # e.g. a patch that does not apply
        ours = {b for e in entries.values() for b in e.binaries}
        lost = graph.missing({n: entries[n].build_depends for n in stale if entries[n].builds},
                             ours, self.upstream.provided)
        if lost:
            raise ClusterStackError("unknown build-dependencies (in no archive and built by no "
                                    "component):\n" + "\n".join(
                                        f"  {c}: {', '.join(d)}" for c, d in sorted(lost.items())))

    def _one(self, e: Entry, extra: tuple[Path, ...], started_at: float) -> Outcome:
        ctx = self.context(e.name, extra)
        prof = ctx.profile.name
        started = time.monotonic()
        outcome = Outcome(e.name, "failed", stage="prepare", log=ctx.log_path,
                          started=started - started_at)
        if ctx.log_path and not e.builds:
            ctx.log_path.write_text(f"# clusterstack fetch {e.name} ({prof})\n")
        final = ctx.workspace.artifacts_dir(prof, e.name)
        fresh = final.with_name(final.name + ".new")
        try:
            if fresh.exists():
                shutil.rmtree(fresh)
            fresh.mkdir(parents=True)
            outcome.stage = "build" if e.builds else "fetch"
            self.progress.say(e.name, outcome.stage,
                              f"{e.strategy.name}" + (f", with {len(extra)} of our debs"
                                                      if extra else ""))
            if e.builds:
                self._stamp_version(e)
                arts = e.strategy.build(ctx, e.tree, fresh)  # type: ignore[attr-defined]
            else:
                arts = e.strategy.produce(ctx, fresh)
            outcome.stage = "store"
            if final.exists():
                shutil.rmtree(final)
            fresh.rename(final)
            duration = time.monotonic() - started
            state.write(self.state_dir, state.ComponentState(
                component=e.name, key=e.key, inputs=e.own, own_key=digest.of_mapping(e.own),
                source=arts.source, version=arts.version,
                debs=[p.name for p in arts.debs], source_files=[p.name for p in arts.source_files],
                lintian=arts.lintian, binaries=sorted(e.binaries),
                build_depends=e.build_depends, duration=duration, finished=time.time(),
                sha256=state.digests(final, [p.name for p in (*arts.debs, *arts.source_files)])))
            outcome.status = "built" if e.builds else "fetched"
            outcome.version, outcome.duration, outcome.lintian = \
                arts.version, duration, arts.lintian
            lint = (f", lintian {arts.lintian.get('error', 0)}E/"
                    f"{arts.lintian.get('warning', 0)}W" if e.builds else "")
            self.progress.say(e.name, outcome.status, f"{arts.source} {arts.version} "
                              f"({len(arts.debs)} debs, {duration:.1f}s{lint})")
        except ClusterStackError as exc:
            outcome.error = str(exc)
            outcome.exit_code = exc.exit_code
            outcome.duration = time.monotonic() - started
            self.progress.say(e.name, "FAILED", f"at {outcome.stage}; log: {ctx.log_path}")
            if ctx.log_path:
                with open(ctx.log_path, "a") as fh:
                    fh.write(f"# FAILED at stage {outcome.stage}: {exc}\n")
        return outcome

    def _stamp_version(self, e: Entry) -> None:
        """Version the tree by its inputs (see versioning): a rebuild from
        changed inputs gets the next counter, recorded in the changelog."""
        debian = e.tree / "debian"
        base = render.changelog_version(debian)
        published = versioning.published_versions(
            self.stack.workspace.published_repo(self.stack.profile.name),
            render.read_control(debian).source)
        version = versioning.choose(e.name, base, e.key, e.previous, published)
        if version != base:
            render.restamp_changelog(debian, version, "Rebuilt by ClusterStack from changed "
                                     f"inputs (input key {e.key[:16]}).")

    def render_all(self) -> list[Path]:
        """Render every component's source tree without building (any profile)."""
        trees = []
        for recipe in self.stack.recipes:
            strategy = strategies.for_recipe(recipe)
            if not hasattr(strategy, "render"):
                continue
            if strategy.name == "rebuild" and not self.stack.profile.reachable:
                # Its source comes from the base archive, which is not reachable.
                self.progress.say(recipe.name, "skipped", "base archive not reachable")
                continue
            ctx = self.context(recipe.name)
            trees.append(strategy.render(ctx, ctx.workspace.work_dir(ctx.profile.name,
                                                                      recipe.name)))
        return trees

    def run(self) -> list[Outcome]:
        run_started = time.monotonic()
        entries, deps, stale = self.analyse()
        wanted = self.stack.selected or set(entries)
        missing = {n: sorted(graph.closure(deps, n) & (set(stale) - wanted))
                   for n in wanted if n in stale}
        if any(missing.values()):
            raise ClusterStackError("\n".join(
                f"{n} builds against {', '.join(m)}, not built here: build it first (its "
                "own job), or bring its artifacts with --from-artifacts"
                for n, m in sorted(missing.items()) if m))
        stale = [n for n in stale if n in wanted]
        outcomes = {n: Outcome(n, "up-to-date", version=getattr(e.previous, "version", ""),
                               lintian=getattr(e.previous, "lintian", {}))
                    for n, e in entries.items() if n not in stale and n in wanted}
        self._check_before_building(entries, stale)
        if self.backend and any(entries[n].builds for n in stale):
            self.progress.say("build-root", "prepare", self.stack.profile.suite)
            self.backend.prepare()
        rank = graph.critical_path(deps, {n: estimate(e) for n, e in entries.items()})
        pending, done, broken = set(stale), set(entries) - set(stale), set()
        running: dict[Future[Outcome], str] = {}
        with ThreadPoolExecutor(max_workers=max(1, self.jobs)) as pool:
            while pending or running:
                for name in sorted(pending, key=lambda n: (-rank[n], n)):
                    if deps.get(name, set()) & broken:
                        why = sorted(deps[name] & broken)[0]
                        outcomes[name] = Outcome(name, "skipped", stage="waiting",
                                                 error=f"build-dependency {why} failed")
                        self.progress.say(name, "skipped", f"{why} failed")
                        pending.discard(name)
                        broken.add(name)
                    elif deps.get(name, set()) <= done and len(running) < max(1, self.jobs):
                        extra = built_debs(self.stack.workspace, self.stack.profile.name,
                                           graph.closure(deps, name))
                        running[pool.submit(self._one, entries[name], extra, run_started)] = name
                        pending.discard(name)
                if not running:
                    continue
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    name = running.pop(fut)
                    outcomes[name] = fut.result()
                    (done if outcomes[name].ok else broken).add(name)
        result = [outcomes[r.name] for r in self.stack.recipes if r.name in wanted]
        report.write(self.stack.workspace.profile_out(self.stack.profile.name),
                     self.stack.profile.name, result, time.monotonic() - run_started,
                     deps=deps)
        if any(not o.ok for o in result):
            raise BuildFailed(result)
        return result
