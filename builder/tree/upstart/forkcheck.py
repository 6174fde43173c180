"""Check a job's `expect` against what its daemon really does when started the job's way.

Upstart's classic pitfall: with `expect fork` it follows the main process's first
fork, with `expect daemon` the second, and without `expect` it keeps the pid it
started.  Declare the wrong one and Upstart tracks a process that is gone (the
job looks stopped while the daemon runs) or waits forever for a fork that never
comes.  So the daemon is run here as Upstart would run it (its environment, the
job's pre-start, then the main process as `sh -e -c`), inside private pid, mount,
network, IPC and UTS namespaces chrooted into a root with the packages installed,
under `strace -f`; the daemonizing forks (fork, then the parent exits) are
counted until the probe of jobs.yaml says the daemon serves.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from builder.base.command import Runner

from .jobrun import WORK, Daemon, Script, logs, probe_lines, read, run_in_root
from .render import EXPECT_FORKS

__all__ = ["Daemon", "ForkResult", "daemonizing_forks", "parse_trace", "run_forkcheck"]

SYSCALL = re.compile(r"^(\d+)\s+(?:\d[\d:.]*\s+)?(.*)$")


@dataclass
class Trace:
    root: int | None = None
    forks: list[tuple[int, int]] = field(default_factory=list)  # (parent, child), in order
    exits: dict[int, str] = field(default_factory=dict)  # pid -> "exited with N" / "killed by"
    programs: dict[int, str] = field(default_factory=dict)  # pid -> last execve'd path
    order: list[tuple[str, int, int]] = field(default_factory=list)  # ("fork"|"exit", pid, child)


@dataclass
class ForkResult:
    job: str
    expect: str
    expected_forks: int
    seen_forks: int | None  # daemonizing forks seen; None if the daemon never ran
    settled: bool  # the tracked process was alive when the probe answered
    ready: bool
    ready_seconds: float | None
    program: str | None  # what the tracked process runs in the end
    total_forks: int  # every fork/clone (not threads) in the traced tree
    note: str = ""
    log_tail: str = ""

    @property
    def ok(self) -> bool:
        return self.settled and self.ready and self.seen_forks == self.expected_forks

    def __str__(self) -> str:
        seen = "-" if self.seen_forks is None else str(self.seen_forks)
        verdict = "ok" if self.ok else "MISMATCH" if self.settled else "NOT SETTLED"
        return (f"{self.job}: expect {self.expect} ({self.expected_forks} fork(s)), seen {seen}; "
                f"{verdict}{'; ' + self.note if self.note else ''}")


def _strip(line: str) -> tuple[int, str] | None:
    m = SYSCALL.match(line)
    return (int(m.group(1)), m.group(2)) if m else None


def parse_trace(text: str) -> Trace:
    """Read `strace -f -e trace=process -o FILE` output."""
    tr = Trace()
    pending: dict[int, str] = {}
    for raw in text.splitlines():
        got = _strip(raw)
        if not got:
            continue
        pid, rest = got
        if tr.root is None:
            tr.root = pid
        if rest.endswith("<unfinished ...>"):
            pending[pid] = rest[: -len("<unfinished ...>")]
            continue
        m = re.match(r"^<\.\.\. (\w+) resumed>(.*)$", rest)
        if m:
            rest = pending.pop(pid, m.group(1) + "(") + m.group(2)
        m = re.match(r"^\+\+\+ (exited with \d+|killed by \S+.*) \+\+\+$", rest)
        if m:
            tr.exits[pid] = m.group(1)
            tr.order.append(("exit", pid, 0))
            continue
        m = re.match(r"^(clone3?|fork|vfork)\((.*)\)\s*=\s*(\d+)", rest, re.S)
        if m and "CLONE_THREAD" not in m.group(2):
            child = int(m.group(3))
            tr.forks.append((pid, child))
            tr.order.append(("fork", pid, child))
            continue
        m = re.match(r'^execve\("([^"]+)".*\)\s*=\s*0', rest)
        if m:
            tr.programs[pid] = m.group(1)
    return tr


def daemonizing_forks(tr: Trace) -> tuple[int, int | None]:
    """Follow the main process through fork-then-parent-exits hops.

    When the tracked process exits, tracking moves to its first live descendant
    (in fork order), and every generation passed counts as one fork: a parent
    may exit before or after its child forked again.  Returns (forks, pid
    tracked at the end, or None if the daemon is gone).
    """
    if tr.root is None:
        return 0, None
    cur, hops = tr.root, 0
    children: dict[int, list[int]] = {}
    exited: set[int] = set()

    def live_descendant(pid: int, depth: int) -> tuple[int, int] | None:
        for child in children.get(pid, []):
            if child not in exited:
                return child, depth
            found = live_descendant(child, depth + 1)
            if found:
                return found
        return None

    for kind, pid, child in tr.order:
        if kind == "fork":
            children.setdefault(pid, []).append(child)
            continue
        exited.add(pid)
        if pid != cur:
            continue
        found = live_descendant(cur, 1)
        if found is None:
            return hops, None
        cur, hops = found[0], hops + found[1]
    return hops, cur


def program_of(tr: Trace, pid: int) -> str | None:
    """The last program execve'd by pid or, failing that, by its nearest ancestor."""
    parent = {c: p for p, c in tr.forks}
    while pid is not None:
        if pid in tr.programs:
            return tr.programs[pid]
        pid = parent.get(pid)  # type: ignore[assignment]
    return None


def run_forkcheck(root: Path, target: Daemon, deps: Sequence[Daemon] = (), *,
                  extra_env: Mapping[str, str] | None = None, budget: int = 30,
                  settle: float = 2.0, setup: Sequence[str] = (),
                  runner: Runner | None = None) -> ForkResult:
    """Start target (after deps) in root as Upstart would and compare forks with `expect`.

    `extra_env` plays the part of an /etc/init/<job>.override's `env` lines;
    `setup` are shell lines run first inside the namespaces (e.g. a veth pair);
    `settle` is how long to keep watching after the probe answers, for daemons
    whose parent exits only once their child has finished starting.
    """
    started = time.monotonic()
    sc = Script.start(setup, extra_env or {}, budget)
    for dep in deps:
        sc.dependency(dep)
    sc.pre_start(target)
    sc.main(target, tracer=["strace", "-f", "-q", "-o", f"{WORK}/trace", "-e", "trace=process"])
    _, env = sc.env(target)
    sc.lines += probe_lines(target.spec, env, budget)
    sc.lines += ['echo "$ok $t0 $(date +%s.%N)" > $W/ready', f"sleep {settle}"]
    res, work = run_in_root(root, sc.text(), budget * (len(deps) + 1) + settle + 60, runner)
    spec = target.spec
    expected = EXPECT_FORKS[spec.expect]
    failed = read(work, "failed").strip()
    tail = (logs(work) + res.stderr_tail)[-4000:]
    if failed:
        return ForkResult(spec.name, spec.expect, expected, None, False, False, None, None, 0,
                          note=f"did not run: {failed}", log_tail=tail)
    trace = parse_trace(read(work, "trace"))
    hops, tracked = daemonizing_forks(trace)
    ready_words = read(work, "ready").split()
    ready = bool(ready_words) and ready_words[0] == "0"
    ready_s = float(ready_words[2]) - float(ready_words[1]) if len(ready_words) > 2 else None
    program = program_of(trace, tracked) if tracked is not None else None
    note = ""
    if tracked is None:
        note = f"the daemon exited ({trace.exits.get(trace.root or -1, '?')})"
    elif program != spec.daemon:
        note = f"tracked process runs {program}, not {spec.daemon}"
    note = (note + "; " if note else "") + f"{time.monotonic() - started:.1f}s"
    return ForkResult(spec.name, spec.expect, expected, hops,
                      tracked is not None and program == spec.daemon, ready, ready_s, program,
                      len(trace.forks), note, tail)
