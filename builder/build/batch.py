"""Small builds together: the stale components whose strategy shares build roots
(the native packages) are built in one build root, set up once.

Each such build is a few KiB and compiles nothing, yet sbuild spent 20-28 s
on each setting up its root (unpack, update, Build-Depends) for a second or
two of dpkg-buildpackage.  So the builder groups them (`groups`), the
scheduler gives the group one slot, and `build_together` asks the backend
for one session: the root is set up once with the union of their
Build-Depends, then each source is built in it in turn, and lintian checks
all their .changes in one run.  Everything else stays per component: each
gets its own staging folder, artifacts, state (its own input key: an
unchanged one is up to date and never joins), log and outcome.

Logs: the shared steps are logged in `logs/_shared-build-root.log`; each
component's log gets a copy of the root's set-up, its own build commands,
and lintian's command line with its own lines of lintian's output.  Times:
what the shared steps took is split evenly over the group, so each
component's time is its own build plus its share, and the times of the
group add up to its wall time (the report lays them end to end; builds that
ran at the same time, up to the run's -j, are scaled down to it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from builder.base import graph
from builder.base.command import Runner
from builder.base.errors import ClusterStackError
from builder.base.progress import Progress
from builder.buildroot import lintian
from builder.buildroot.backend import Backend, BuildRequest, BuildResult
from builder.tree.strategy import Artifacts, Context

from .analysis import Contexts, Entry
from .outcome import Outcome, Status
from .store import Store

SHARED = "shared-root"            # its name in progress lines
SHARED_LOG = "_shared-build-root"  # logs/<this>.log
_GROUP = "\0group"                 # the group as one node of the graph


def groups(stale: Sequence[str], entries: Mapping[str, Entry], deps: Mapping[str, set[str]],
           backend: Backend | None) -> list[tuple[str, ...]]:
    """The stale components to build in one shared root: those whose strategy
    shares build roots, when the backend can share one.

    A component stays out (and builds alone) when it builds against another
    member (the root's packages are installed before any member is built),
    or when taking it in would make the group wait for itself through a
    component outside it.
    """
    if backend is None or not backend.shares_build_root:
        return []
    members: list[str] = []
    for name in sorted(stale):
        e = entries[name]
        if not (e.builds and e.strategy.shares_build_root):
            continue
        if graph.closure(deps, name) & set(members) or any(
                name in graph.closure(deps, m) for m in members):
            continue
        if _acyclic(deps, {*members, name}):
            members.append(name)
    return [tuple(members)] if members else []


def _acyclic(deps: Mapping[str, set[str]], group: set[str]) -> bool:
    """Whether the graph with `group` merged into one node has no cycle."""
    def node(n: str) -> str:
        return _GROUP if n in group else n
    merged: dict[str, set[str]] = {}
    for n, ds in deps.items():
        merged.setdefault(node(n), set()).update(node(d) for d in ds if node(d) != node(n))
    try:
        graph.order(merged)
    except graph.GraphError:
        return False
    return True


@dataclass
class Member:
    """One component of a group as it goes through the shared root."""

    entry: Entry
    ctx: Context
    outcome: Outcome
    request: BuildRequest | None = None
    result: BuildResult | None = None
    arts: Artifacts | None = None
    own: float = 0.0               # seconds of its own steps

    @property
    def name(self) -> str:
        return self.entry.name


def fail(outcome: Outcome, exc: BaseException, progress: Progress, duration: float) -> Outcome:
    """The outcome of a component that failed with `exc`, said and logged."""
    outcome.error = str(exc)
    outcome.exit_code = exc.exit_code if isinstance(exc, ClusterStackError) else 1
    outcome.duration = duration
    progress.say(outcome.component, "FAILED", f"at {outcome.stage}; log: {outcome.log}")
    if outcome.log:
        with open(outcome.log, "a") as fh:
            fh.write(f"# FAILED at stage {outcome.stage}: {exc}\n")
    return outcome


def split_times(own: Sequence[float], wall: float) -> list[float]:
    """Each member's time: its own steps plus an even share of the shared ones,
    so that they add up to the group's wall time (builds that ran at the same
    time are scaled down to it instead)."""
    total = sum(own)
    if own and total >= wall:
        return [o * wall / total for o in own]
    share = (wall - total) / max(len(own), 1)
    return [o + share for o in own]


def lintian_note(command: str, returncode: int, seconds: float, lines: Sequence[str],
                 name: str, together: int) -> str:
    """A member's part of the one lintian run, as its log shows a command (the
    report reads the lines between `$ lintian` and `# exit status`)."""
    body = "".join(f"{line}\n" for line in lines)
    return (f"$ {command}\n# lintian checked the {together} packages of the shared build "
            f"root at once; these are the lines about {name} (all of them in "
            f"{SHARED_LOG}.log)\n{body}# exit status {returncode} ({seconds:.1f} s)\n")


def build_together(entries: Sequence[Entry], contexts: Contexts, store: Store,
                   progress: Progress, backend: Backend, stamp: Callable[[Entry], None],
                   extra: Callable[[str], tuple[Path, ...]], started_at: float,
                   jobs: int = 1) -> dict[str, Outcome]:
    """Build `entries` in one session of `backend`; one outcome each."""
    t0 = time.monotonic()
    ws, prof = contexts.stack.workspace, contexts.stack.profile
    shared_log = ws.log_path(prof.name, SHARED_LOG)
    shared = contexts.runner.for_log(shared_log)
    names = [e.name for e in entries]
    shared_log.write_text(f"# clusterstack build: one build root for {', '.join(names)} "
                          f"({prof.name})\n")
    outcomes: dict[str, Outcome] = {}
    members: list[Member] = []
    for e in entries:
        ctx = contexts.context(e.name, extra(e.name))
        m = Member(e, ctx, Outcome(e.name, Status.FAILED, stage="prepare", log=ctx.log_path,
                                   started=t0 - started_at))
        outcomes[e.name] = m.outcome
        t = time.monotonic()
        try:
            dest = store.staging(e.name)
            m.outcome.stage = "build"
            progress.say(e.name, "build", f"{e.strategy.name}, in one build root with "
                         f"{len(entries) - 1} other(s)")
            if e.tree is None:
                raise ClusterStackError(f"{e.name}: no rendered source tree to build")
            stamp(e)
            m.request = e.strategy.request(ctx, e.tree, dest)
        except (ClusterStackError, OSError) as exc:
            fail(m.outcome, exc, progress, time.monotonic() - t)
            continue
        m.own = time.monotonic() - t
        members.append(m)
    if members:
        _build(members, shared, shared_log, progress, backend, jobs)
        _lintian(members, shared, progress)
    built = [m for m in members if m.arts is not None]
    times = split_times([m.own for m in built], time.monotonic() - t0)
    start = t0 - started_at
    for m, duration in zip(built, times, strict=True):
        m.outcome.started, start = start, start + duration
        _commit(m, store, progress, duration)
    return outcomes


def _build(members: list[Member], runner: Runner, shared_log: Path, progress: Progress,
           backend: Backend, jobs: int) -> None:
    """Set up the root once, then build each member in it; failures stay per member."""
    progress.say(SHARED, "prepare", f"unpack, Build-Depends of {len(members)} package(s)")
    setup = time.monotonic()
    try:
        with backend.session([m.request for m in members if m.request], runner) as session:
            took = time.monotonic() - setup
            progress.say(SHARED, "ready", f"{took:.1f}s")
            setup_text = shared_log.read_text(errors="replace")

            def one(i: int, m: Member) -> None:
                m.ctx.runner.note(
                    f"# built in one build root with {len(members) - 1} other(s): "
                    f"{', '.join(o.name for o in members if o is not m) or 'none'}\n"
                    f"# the root's set-up ({took:.1f} s, also in {shared_log.name}):\n"
                    + setup_text + "# end of the root's set-up\n")
                progress.say(m.name, "build", f"dpkg-buildpackage ({i}/{len(members)}, "
                             "shared root)")
                t = time.monotonic()
                try:
                    if m.request is None:
                        raise ClusterStackError(f"{m.name}: no source package to build")
                    m.result = session.build(m.request)
                    m.arts = m.entry.strategy.complete(m.ctx, m.entry.tree or Path(),
                                                       m.request, m.result)
                except (ClusterStackError, OSError) as exc:
                    m.arts = None
                    fail(m.outcome, exc, progress, m.own + time.monotonic() - t)
                m.own += time.monotonic() - t

            # The builds of a group are small: as many at once as the run's jobs
            # (each in its own directory of the root).
            with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
                for done in [pool.submit(one, i, m) for i, m in enumerate(members, 1)]:
                    done.result()
    except (ClusterStackError, OSError) as exc:
        # The root could not be set up: none of them was built.
        for m in members:
            if m.arts is None and not m.outcome.error:
                fail(m.outcome, exc, progress, m.own + time.monotonic() - setup)
        for m in members:
            m.arts = None if m.outcome.error else m.arts


def _lintian(members: list[Member], shared: Runner, progress: Progress) -> None:
    """One lintian run over every member built; each gets its counts and its lines."""
    built = [m for m in members if m.arts is not None and m.result is not None]
    if not built:
        return
    progress.say(SHARED, "lintian", f"{len(built)} package(s) in one run")
    t = time.monotonic()
    changes = [m.result.changes for m in built if m.result]
    command, returncode, said = lintian.run_together(changes, shared)
    took = time.monotonic() - t
    for m in built:
        if m.result is None or m.arts is None:
            continue
        lines = said[m.result.changes]
        m.ctx.runner.note(lintian_note(command, returncode, took, lines, m.name, len(built)))
        m.arts.lintian = lintian.count_tags("\n".join(lines))


def _commit(m: Member, store: Store, progress: Progress, duration: float) -> None:
    if m.arts is None:
        return
    m.outcome.stage = "store"
    try:
        store.commit(m.entry, m.arts, duration, time.time())
    except (ClusterStackError, OSError) as exc:
        fail(m.outcome, exc, progress, duration)
        return
    arts = m.arts
    m.outcome.status = Status.BUILT
    m.outcome.version, m.outcome.duration, m.outcome.lintian = (arts.version, duration,
                                                                arts.lintian)
    progress.say(m.name, Status.BUILT, f"{arts.source} {arts.version} ({len(arts.debs)} debs, "
                 f"{duration:.1f}s, lintian {arts.lintian.get('error', 0)}E/"
                 f"{arts.lintian.get('warning', 0)}W, shared root)")
