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
import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..command import Runner
from .parser import JobFile, Process, parse
from .render import EXPECT_FORKS, JobSpec

# Upstart's job environment (init/job_class.c): a fixed PATH and TERM, the job's name.
UPSTART_PATH = "/usr/local/sbin:/usr/local/bin:/usr/bin:/usr/sbin:/sbin:/bin"
# Characters that make Upstart hand an exec line to `sh -e -c "exec ..."`.
SHELL_CHARS = set("~`!$^&*()=|\\{}[];\"'<>?")
WORK = "/tmp/clusterstack-forkcheck"
SYSCALL = re.compile(r"^(\d+)\s+(?:\d[\d:.]*\s+)?(.*)$")


@dataclass(frozen=True)
class Daemon:
    """One job to start in the root: its rendered text and jobs.yaml entry."""

    spec: JobSpec
    conf: str


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


def upstart_argv(proc: Process) -> list[str]:
    """The argv Upstart's job_process_run builds for a process."""
    if proc.kind == "script":
        return ["/bin/sh", "-e", "-c", proc.body]
    if any(c in SHELL_CHARS for c in proc.command):
        return ["/bin/sh", "-e", "-c", f"exec {proc.command}"]
    return shlex.split(proc.command)


def job_env(job: JobFile, name: str, extra: Mapping[str, str]) -> dict[str, str]:
    env = {"PATH": UPSTART_PATH, "TERM": "linux", "UPSTART_JOB": name, "UPSTART_INSTANCE": ""}
    for st in job.find("env"):
        key, _, value = st.args[0].text.partition("=")
        env[key] = value
    env.update(extra)
    return env


def _env_prefix(env: Mapping[str, str]) -> str:
    return "env -i " + " ".join(shlex.quote(f"{k}={v}") for k, v in env.items())


def _probe(spec: JobSpec, env: Mapping[str, str], budget: int) -> str:
    """Shell that waits up to `budget` s for the job's probe; prints the seconds waited."""
    probe = f"{_env_prefix(env)} /bin/sh -c {shlex.quote(spec.ready + ' >/dev/null 2>&1')}"
    return (f"t0=$(date +%s.%N); ok=1; n=0\n"
            f"while [ $n -lt {budget * 5} ]; do\n"
            f"  if timeout 5 {probe}; then ok=0; break; fi\n"
            f"  sleep 0.2; n=$((n + 1))\n"
            f"done\n")


def harness(target: Daemon, deps: Sequence[Daemon], extra_env: Mapping[str, str],
            budget: int, settle: float, setup: Sequence[str] = ()) -> str:
    """The shell run as pid 1 in the namespaces, inside the chroot."""
    out = ["set -u", f"W={WORK}", "ip link set lo up", "cd /", *setup]
    for dep in deps:
        job = parse(dep.conf, dep.spec.name)
        env = job_env(job, dep.spec.name, extra_env)
        name = dep.spec.name
        for proc in job.process("pre-start"):
            out.append(f"{_env_prefix(env)} {shlex.join(upstart_argv(proc))} "
                       f">$W/{name}.pre.log 2>&1 || {{ echo dep-pre-start > $W/failed; exit 1; }}")
        for proc in job.process("main"):
            out.append(f"{_env_prefix(env)} {shlex.join(upstart_argv(proc))} "
                       f">$W/{name}.main.log 2>&1 &")
        if dep.spec.ready:
            out.append(_probe(dep.spec, env, budget))
            out.append(f"[ $ok = 0 ] || {{ echo dep-not-ready:{name} > $W/failed; exit 1; }}")
    job = parse(target.conf, target.spec.name)
    env = job_env(job, target.spec.name, extra_env)
    name = target.spec.name
    for proc in job.process("pre-start"):
        out.append(f"{_env_prefix(env)} {shlex.join(upstart_argv(proc))} "
                   f">$W/pre.log 2>&1 || {{ echo pre-start:$? > $W/failed; exit 1; }}")
    (main,) = job.process("main")
    out.append(f"strace -f -q -o $W/trace -e trace=process "
               f"{_env_prefix(env)} {shlex.join(upstart_argv(main))} >$W/main.log 2>&1 &")
    out.append(_probe(target.spec, env, budget))
    out.append('echo "$ok $t0 $(date +%s.%N)" > $W/ready')
    out.append(f"sleep {settle}")
    out.append("ps -eo pid,ppid,stat,args > $W/ps.txt")
    out.append("sync")
    return "\n".join(out) + "\n"


HOST_SETUP = r"""
set -e
R="$1"
mount -t proc proc "$R/proc"
mount -t tmpfs -o mode=0755 tmpfs "$R/run"
mkdir -p "$R/run/lock"
mount -t tmpfs -o mode=0755 tmpfs "$R/dev"
for d in null zero full random urandom tty; do
    touch "$R/dev/$d"
    mount --bind "/dev/$d" "$R/dev/$d"
done
mkdir -p "$R/dev/shm" "$R/dev/pts"
mount -t tmpfs -o mode=1777 tmpfs "$R/dev/shm"
ln -s /proc/self/fd "$R/dev/fd"
mount -t sysfs -o ro sysfs "$R/sys" 2>/dev/null || true
exec chroot "$R" /bin/sh "$2"
"""


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
    runner = runner or Runner()
    work = root / WORK.lstrip("/")
    if work.exists():
        for p in work.iterdir():
            p.unlink()
    work.mkdir(parents=True, exist_ok=True)
    (work / "harness.sh").write_text(harness(target, deps, extra_env or {}, budget, settle,
                                                    setup))
    (work / "host-setup.sh").write_text(HOST_SETUP)
    started = time.monotonic()
    res = runner.run(
        ["unshare", "--pid", "--fork", "--kill-child", "--mount", "--net", "--ipc", "--uts",
         "--", "/bin/sh", work / "host-setup.sh", root, f"{WORK}/harness.sh"],
        check=False, timeout=budget * (len(deps) + 1) + settle + 60)
    spec = target.spec
    expected = EXPECT_FORKS[spec.expect]

    def read(name: str) -> str:
        p = work / name
        return p.read_text(errors="replace") if p.exists() else ""

    failed = read("failed").strip()
    logs = "".join(f"--- {n}\n{read(n)}" for n in ("pre.log", "main.log", "ps.txt") if read(n))
    if failed:
        return ForkResult(spec.name, spec.expect, expected, None, False, False, None, None, 0,
                          note=f"did not run: {failed}",
                          log_tail=(logs + "".join(
                              f"--- {p.name}\n{p.read_text(errors='replace')}"
                              for p in sorted(work.glob('*.log'))))[-4000:])
    trace = parse_trace(read("trace"))
    hops, tracked = daemonizing_forks(trace)
    ready_words = read("ready").split()
    ready = bool(ready_words) and ready_words[0] == "0"
    try:
        ready_s = float(ready_words[2]) - float(ready_words[1]) if len(ready_words) > 2 \
            else None
    except ValueError:
        ready_s = None
    program = program_of(trace, tracked) if tracked is not None else None
    note = ""
    if tracked is None:
        last = trace.exits.get(trace.root or -1, "?")
        note = f"the daemon exited ({last})"
    elif program != spec.daemon:
        note = f"tracked process runs {program}, not {spec.daemon}"
    elif res.returncode not in (0,):
        note = f"harness exit status {res.returncode}"
    elapsed = time.monotonic() - started
    note = (note + "; " if note else "") + f"{elapsed:.1f}s"
    return ForkResult(spec.name, spec.expect, expected, hops, tracked is not None
                      and program == spec.daemon, ready, ready_s, program,
                      len(trace.forks), note, (logs + res.stderr_tail)[-4000:])
