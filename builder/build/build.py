"""`clusterstack build`: bring every component's artifacts up to date.

The analysis (analysis.py) says what is stale; the scheduler (scheduler.py)
runs the stale builds, independent ones in parallel; each build goes into the
store (store.py); the report (report.py) is written whatever became of them.
The order comes from the Build-Depends of the rendered source trees, and a
failure stops only what depends on it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from builder.base import graph
from builder.base.command import Runner
from builder.base.errors import ClusterStackError
from builder.base.fetch import Fetcher
from builder.base.progress import Progress
from builder.buildroot.backend import Backend
from builder.stack.stack import Stack
from builder.tree import render
from builder.tree.strategy import Artifacts, Context

from . import batch, report, scheduler, versioning
from .analysis import Analysis, Contexts, Entry, analyse
from .outcome import Outcome, Status
from .store import Store


class BuildFailed(ClusterStackError):
    def __init__(self, outcomes: list[Outcome]) -> None:
        self.outcomes = outcomes
        bad = [o for o in outcomes if not o.ok]
        lines = [f"{len(bad)} component(s) not built:"]
        for o in bad:
            first = (o.error.splitlines() or [""])[0]
            lines.append(f"  {o.component} ({o.status} at stage {o.stage}): {first}")
            if o.status == Status.FAILED:
                lines.append(f"    log: {o.log}")
        super().__init__("\n".join(lines))
        # A download that failed its checksum exits as every other refused
        # input does (3), not as a failed compile.
        self.exit_code = max((o.exit_code for o in bad), default=1) or 1


@dataclass
class Builder:
    stack: Stack
    runner: Runner
    fetcher: Fetcher
    progress: Progress
    backend: Backend | None = None
    jobs: int = 1
    parallel: int = 1
    contexts: Contexts = field(init=False)
    store: Store = field(init=False)

    def __post_init__(self) -> None:
        self.contexts = Contexts.create(self.stack, self.runner, self.fetcher, self.backend,
                                        self.parallel)
        self.store = Store(self.stack.workspace, self.stack.profile.name)

    def run(self) -> list[Outcome]:
        run_started = time.monotonic()
        found = analyse(self.contexts, self.progress)
        wanted = self.stack.selected or set(found.entries)
        self._check_selection(found, wanted)
        stale = [n for n in found.stale if n in wanted]
        outcomes = {n: Outcome(n, Status.UP_TO_DATE, version=getattr(e.previous, "version", ""),
                               lintian=getattr(e.previous, "lintian", {}))
                    for n, e in found.entries.items() if n not in stale and n in wanted}
        self._check_before_building(found, stale)
        if self.backend and any(found.entries[n].builds for n in stale):
            self.progress.say("build-root", "prepare", self.stack.profile.suite)
            self.backend.prepare()

        def extra(name: str) -> tuple[Path, ...]:
            return self.store.built_debs(graph.closure(found.deps, name))

        def start(name: str) -> Outcome:
            return self._one(found.entries[name], extra(name), run_started)

        def start_together(names: tuple[str, ...]) -> dict[str, Outcome]:
            if self.backend is None:
                raise ClusterStackError(f"{', '.join(names)}: building needs a build backend")
            return batch.build_together(
                [found.entries[n] for n in names], self.contexts, self.store, self.progress,
                self.backend, lambda e: self._stamp_version(e, e.tree) if e.tree else None,
                extra, run_started, self.jobs)

        try:
            outcomes |= scheduler.run(
                set(stale), found.deps, set(found.entries) - set(stale),
                scheduler.rank(found.deps, found.entries), self.jobs, start,
                lambda name, why: self.progress.say(name, "skipped", f"{why} failed"),
                together=batch.groups(stale, found.entries, found.deps, self.backend),
                start_together=start_together)
        finally:
            # Also when the run breaks off: the report shows how far it got.
            result = [outcomes[r.name] for r in self.stack.recipes if r.name in outcomes]
            report.write(self.stack.workspace.profile_out(self.stack.profile.name),
                         self.stack.profile.name, result, time.monotonic() - run_started,
                         deps=found.deps)
        if any(not o.ok for o in result):
            raise BuildFailed(result)
        return result

    def _check_selection(self, found: Analysis, wanted: set[str]) -> None:
        """A selected component must not build against a stale one left out."""
        stale = set(found.stale)
        missing = {n: sorted(graph.closure(found.deps, n) & (stale - wanted))
                   for n in wanted if n in stale}
        if any(missing.values()):
            raise ClusterStackError("\n".join(
                f"{n} builds against {', '.join(m)}, not built here: build it first (its "
                "own job), or bring its artifacts with --from-artifacts"
                for n, m in sorted(missing.items()) if m))

    def _check_before_building(self, found: Analysis, stale: list[str]) -> None:
        """Errors that must stop the run before anything builds."""
        entries = found.entries
        for name in stale:
            e = entries[name]
            e.strategy.intent(e.ctx)   # e.g. a package that no archive has
            if e.builds and e.tree is None:
                e.render(self.progress)   # e.g. a patch that does not apply
        needs = {n: entries[n].build_depends for n in stale if entries[n].builds}
        if not needs:
            # Nothing to build: the base archive's names (all of Packages) are
            # not read, which a no-op build would otherwise spend most of its time on.
            return
        ours = {b for e in entries.values() for b in e.binaries}
        lost = graph.missing(needs, ours, self.contexts.upstream.provided)
        if lost:
            raise ClusterStackError("unknown build-dependencies (in no archive and built by no "
                                    "component):\n" + "\n".join(
                                        f"  {c}: {', '.join(d)}" for c, d in sorted(lost.items())))

    def _one(self, e: Entry, extra: tuple[Path, ...], started_at: float) -> Outcome:
        """Build or fetch one component into the store; a failure becomes its outcome."""
        ctx = self.contexts.context(e.name, extra)
        started = time.monotonic()
        outcome = Outcome(e.name, Status.FAILED, stage="prepare", log=ctx.log_path,
                          started=started - started_at)
        if ctx.log_path and not e.builds:
            ctx.log_path.write_text(f"# clusterstack fetch {e.name} ({ctx.profile.name})\n")
        try:
            fresh = self.store.staging(e.name)
            outcome.stage = "build" if e.builds else "fetch"
            self.progress.say(e.name, outcome.stage,
                              f"{e.strategy.name}" + (f", with {len(extra)} of our debs"
                                                      if extra else ""))
            arts = self._make(e, ctx, fresh)
            outcome.stage = "store"
            duration = time.monotonic() - started
            self.store.commit(e, arts, duration, time.time())
        # An OSError (a full disk, a permission) is a failure of this component
        # like any other: it gets its outcome and the run its report.
        except (ClusterStackError, OSError) as exc:
            outcome.error = str(exc)
            outcome.exit_code = exc.exit_code if isinstance(exc, ClusterStackError) else 1
            outcome.duration = time.monotonic() - started
            self.progress.say(e.name, "FAILED", f"at {outcome.stage}; log: {ctx.log_path}")
            if ctx.log_path:
                with open(ctx.log_path, "a") as fh:
                    fh.write(f"# FAILED at stage {outcome.stage}: {exc}\n")
            return outcome
        outcome.status = Status.BUILT if e.builds else Status.FETCHED
        outcome.version, outcome.duration, outcome.lintian = arts.version, duration, arts.lintian
        lint = (f", lintian {arts.lintian.get('error', 0)}E/"
                f"{arts.lintian.get('warning', 0)}W" if e.builds else "")
        self.progress.say(e.name, outcome.status, f"{arts.source} {arts.version} "
                          f"({len(arts.debs)} debs, {duration:.1f}s{lint})")
        return outcome

    def _make(self, e: Entry, ctx: Context, dest: Path) -> Artifacts:
        if not e.builds:
            return e.strategy.produce(ctx, dest)
        if e.tree is None:
            raise ClusterStackError(f"{e.name}: no rendered source tree to build")
        self._stamp_version(e, e.tree)
        return e.strategy.build(ctx, e.tree, dest)

    def _stamp_version(self, e: Entry, tree: Path) -> None:
        """Version the tree by its inputs (see versioning): a rebuild from
        changed inputs gets the next counter, recorded in the changelog."""
        debian = tree / "debian"
        base = render.changelog_version(debian)
        published = versioning.published_versions(
            self.stack.workspace.published_repo(self.stack.profile.name),
            render.read_control(debian).source)
        version = versioning.choose(e.name, base, e.key, e.previous, published)
        if version != base:
            render.restamp_changelog(debian, version, "Rebuilt by ClusterStack from changed "
                                     f"inputs (input key {e.key[:16]}).")
