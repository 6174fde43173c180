"""Which build runs when: a component starts once everything it builds against
is built, the one heading the heaviest chain of reverse build-dependencies
first; a failure stops only what depends on it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from builder.base import graph
from builder.tree import sourcetree

from .analysis import Entry
from .outcome import Outcome, Status

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


def run(pending: set[str], deps: Mapping[str, set[str]], done: set[str],
        rank: Mapping[str, float], jobs: int, start: Callable[[str], Outcome],
        skipped: Callable[[str, str], None] = lambda name, why: None, *,
        together: Sequence[Sequence[str]] = (),
        start_together: Callable[[tuple[str, ...]], Mapping[str, Outcome]] | None = None,
        ) -> dict[str, Outcome]:
    """Run `start(name)` for every pending component, at most `jobs` at a time.

    `done`: what is already up to date.  A component whose build-dependency
    failed is not started: its outcome is `skipped`, and `skipped(name, why)`
    is told.  The components of each group in `together` take one slot and one
    call of `start_together(names)`, once all of them can start (a member whose
    build-dependency failed is left out of it); a group ranks as its heaviest member.
    """
    outcomes: dict[str, Outcome] = {}
    pending, done, broken = set(pending), set(done), set()
    groups = [tuple(g) for g in together if g]
    grouped = {m for g in groups for m in g}
    units: list[tuple[str, ...]] = [*groups, *((n,) for n in sorted(pending - grouped))]
    units = [tuple(m for m in u if m in pending) for u in units]
    slots = max(1, jobs)
    running: dict[Future[Mapping[str, Outcome]], tuple[str, ...]] = {}

    def one(name: str) -> Mapping[str, Outcome]:
        return {name: start(name)}

    with ThreadPoolExecutor(max_workers=slots) as pool:
        while units or running:
            for unit in sorted(units, key=lambda u: (-max(rank[n] for n in u), u)):
                for name in unit:
                    if deps.get(name, set()) & broken:
                        why = sorted(deps[name] & broken)[0]
                        outcomes[name] = Outcome(name, Status.SKIPPED, stage="waiting",
                                                 error=f"build-dependency {why} failed")
                        skipped(name, why)
                        broken.add(name)
                left = tuple(n for n in unit if n not in broken)
                units.remove(unit)
                if not left:
                    continue
                if all(deps.get(n, set()) - set(left) <= done for n in left) \
                        and len(running) < slots:
                    if left[0] in grouped and start_together is not None:
                        running[pool.submit(start_together, left)] = left
                    else:
                        running[pool.submit(one, left[0])] = left
                else:
                    units.append(left)
            if not running:
                continue
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                names = running.pop(fut)
                result = fut.result()
                for name in names:
                    outcomes[name] = result[name]
                    (done if outcomes[name].ok else broken).add(name)
    return outcomes


def rank(deps: Mapping[str, set[str]], entries: Mapping[str, Entry]) -> dict[str, float]:
    """Each component's weight: the expected time of the heaviest chain it heads."""
    return graph.critical_path(dict(deps), {n: estimate(e) for n, e in entries.items()})
