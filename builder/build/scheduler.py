"""Which build runs when: a component starts once everything it builds against
is built, the one heading the heaviest chain of reverse build-dependencies
first; a failure stops only what depends on it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
        skipped: Callable[[str, str], None] = lambda name, why: None) -> dict[str, Outcome]:
    """Run `start(name)` for every pending component, at most `jobs` at a time.

    `done`: what is already up to date.  A component whose build-dependency
    failed is not started: its outcome is `skipped`, and `skipped(name, why)`
    is told.
    """
    outcomes: dict[str, Outcome] = {}
    pending, done, broken = set(pending), set(done), set()
    slots = max(1, jobs)
    running: dict[Future[Outcome], str] = {}
    with ThreadPoolExecutor(max_workers=slots) as pool:
        while pending or running:
            for name in sorted(pending, key=lambda n: (-rank[n], n)):
                if deps.get(name, set()) & broken:
                    why = sorted(deps[name] & broken)[0]
                    outcomes[name] = Outcome(name, Status.SKIPPED, stage="waiting",
                                             error=f"build-dependency {why} failed")
                    skipped(name, why)
                    pending.discard(name)
                    broken.add(name)
                elif deps.get(name, set()) <= done and len(running) < slots:
                    running[pool.submit(start, name)] = name
                    pending.discard(name)
            if not running:
                continue
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                name = running.pop(fut)
                outcomes[name] = fut.result()
                (done if outcomes[name].ok else broken).add(name)
    return outcomes


def rank(deps: Mapping[str, set[str]], entries: Mapping[str, Entry]) -> dict[str, float]:
    """Each component's weight: the expected time of the heaviest chain it heads."""
    return graph.critical_path(dict(deps), {n: estimate(e) for n, e in entries.items()})
