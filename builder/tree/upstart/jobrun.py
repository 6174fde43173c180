"""Run a rendered job's processes the way Upstart would, in a root, in private namespaces.

Upstart is in no archive reachable here, so this is the project's stand-in for
`start JOB`: the job environment Upstart builds (fixed PATH and TERM,
UPSTART_JOB, the `env` stanzas), each process as Upstart's job_process_run
execs it, pre-start before main, post-start after.  Everything runs in new pid,
mount, network, IPC and UTS namespaces chrooted into `root`, so daemons never
see the host's network or processes and all die with the namespace.

The harness is a shell script run as pid 1 inside the chroot; it leaves its
findings as files under WORK for the Python side to read.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from builder.base.command import Result, Runner

from .parser import JobFile, Process, parse
from .render import JobSpec

# Upstart's job environment (init/job_class.c): a fixed PATH and TERM, the job's name.
UPSTART_PATH = "/usr/local/sbin:/usr/local/bin:/usr/bin:/usr/sbin:/sbin:/bin"
# Characters that make Upstart hand an exec line to `sh -e -c "exec ..."`.
SHELL_CHARS = set("~`!$^&*()=|\\{}[];\"'<>?")
WORK = "/tmp/clusterstack-jobrun"

# Upstart's `status` (initctl) as the post-start scripts use it: the job's state
# and main pid.  A stand-in, since Upstart itself cannot be installed here; the
# main pid comes from the harness, and a zombie counts as gone.
STATUS_STANDIN = f"""#!/bin/sh
pid=$(cat {WORK}/main.pid 2>/dev/null)
# Read once: the process may vanish between two looks at /proc.
state=$([ -n "$pid" ] && grep -s '^State:' "/proc/$pid/status")
if [ -n "$state" ] && [ "${{state#*Z}}" = "$state" ]; then
    echo "$UPSTART_JOB start/post-start, process $pid"
else
    echo "$UPSTART_JOB stop/post-start"
fi
"""

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


@dataclass(frozen=True)
class Daemon:
    """One job to start in the root: its jobs.yaml entry and rendered text."""

    spec: JobSpec
    conf: str


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


def _cmd(env: Mapping[str, str], argv: Sequence[str]) -> str:
    return "env -i " + " ".join(shlex.quote(f"{k}={v}") for k, v in env.items()) + \
        " " + shlex.join(argv)


def probe_lines(spec: JobSpec, env: Mapping[str, str], budget: int) -> list[str]:
    """Wait up to `budget` s for the job's probe; leaves ok=0 when it answered."""
    probe = _cmd(env, ["/bin/sh", "-c", spec.ready + " >/dev/null 2>&1"])
    return ["t0=$(date +%s.%N); ok=1; n=0",
            f"while [ $n -lt {budget * 5} ]; do",
            f"  if timeout 5 {probe}; then ok=0; break; fi",
            "  sleep 0.2; n=$((n + 1))",
            "done"]


@dataclass
class Script:
    """Builds the harness: dependencies up, then the target's processes."""

    extra_env: Mapping[str, str]
    budget: int
    lines: list[str]

    @classmethod
    def start(cls, setup: Sequence[str], extra_env: Mapping[str, str], budget: int) -> Script:
        return cls(extra_env, budget, ["set -u", f"W={WORK}", "ip link set lo up", "cd /",
                                       "mkdir -p /usr/local/sbin",
                                       f"cat > /usr/local/sbin/status <<'EOF'\n"
                                       f"{STATUS_STANDIN}EOF",
                                       "chmod 0755 /usr/local/sbin/status", *setup])

    def env(self, d: Daemon) -> tuple[JobFile, dict[str, str]]:
        job = parse(d.conf, d.spec.name)
        return job, job_env(job, d.spec.name, self.extra_env)

    def dependency(self, d: Daemon) -> None:
        """Start a job the target needs and wait until its probe answers."""
        job, env = self.env(d)
        name = d.spec.name
        for proc in job.process("pre-start"):
            self.lines.append(f"{_cmd(env, upstart_argv(proc))} >$W/{name}.pre.log 2>&1 "
                              f"|| {{ echo dependency-pre-start:{name} > $W/failed; exit 1; }}")
        for proc in job.process("main"):
            self.lines.append(f"{_cmd(env, upstart_argv(proc))} >$W/{name}.main.log 2>&1 &")
        if d.spec.ready:
            self.lines += probe_lines(d.spec, env, self.budget)
            self.lines.append(f"[ $ok = 0 ] || {{ echo dependency-not-ready:{name} "
                              "> $W/failed; exit 1; }")

    def pre_start(self, d: Daemon) -> None:
        job, env = self.env(d)
        for proc in job.process("pre-start"):
            self.lines.append(f"{_cmd(env, upstart_argv(proc))} >$W/pre.log 2>&1 "
                              "|| { echo pre-start:$? > $W/failed; exit 1; }")

    def main(self, d: Daemon, tracer: Sequence[str] = ()) -> None:
        job, env = self.env(d)
        (main,) = job.process("main")
        prefix = shlex.join(tracer) + " " if tracer else ""
        self.lines.append(f"{prefix}{_cmd(env, upstart_argv(main))} >$W/main.log 2>&1 &")
        self.lines.append("echo $! > $W/main.pid")

    def post_start(self, d: Daemon) -> None:
        job, env = self.env(d)
        for proc in job.process("post-start"):
            self.lines += ["t0=$(date +%s.%N)",
                           f"{_cmd(env, upstart_argv(proc))} >$W/post.log 2>&1",
                           'echo "$? $t0 $(date +%s.%N)" > $W/post-start']

    def text(self) -> str:
        return "\n".join([*self.lines, "ps -eo pid,ppid,stat,args > $W/ps.txt", "sync"]) + "\n"


def run_in_root(root: Path, script: str, timeout: float,
                runner: Runner | None = None) -> tuple[Result, Path]:
    """Run the harness as pid 1 of fresh namespaces chrooted into root."""
    runner = runner or Runner()
    work = root / WORK.lstrip("/")
    if work.exists():
        for p in work.iterdir():
            p.unlink()
    work.mkdir(parents=True, exist_ok=True)
    (work / "harness.sh").write_text(script)
    (work / "host-setup.sh").write_text(HOST_SETUP)
    res = runner.run(
        ["unshare", "--pid", "--fork", "--kill-child", "--mount", "--net", "--ipc", "--uts",
         "--", "/bin/sh", work / "host-setup.sh", root, f"{WORK}/harness.sh"],
        check=False, timeout=timeout)
    return res, work


def read(work: Path, name: str) -> str:
    p = work / name
    return p.read_text(errors="replace") if p.exists() else ""


def logs(work: Path) -> str:
    return "".join(f"--- {p.name}\n{p.read_text(errors='replace')}"
                   for p in [*sorted(work.glob("*.log")), work / "ps.txt"] if p.exists())


@dataclass
class PostStartResult:
    job: str
    failed_before: str  # set when a dependency or the pre-start failed
    status: int | None  # post-start exit status
    seconds: float | None
    message: str  # what post-start wrote (the job log under `console log`)
    main_alive: bool  # main process still running after post-start
    log_tail: str = ""


def run_post_start(root: Path, target: Daemon, deps: Sequence[Daemon] = (), *,
                   extra_env: Mapping[str, str] | None = None, setup: Sequence[str] = (),
                   after_main: Sequence[str] = (), budget: int = 30,
                   runner: Runner | None = None) -> PostStartResult:
    """`start JOB` without Upstart: deps, pre-start, main, then the job's post-start.

    `after_main` are shell lines run right after the main process started
    (`$W/main.pid` holds its pid), e.g. to freeze it.
    """
    sc = Script.start(setup, extra_env or {}, budget)
    for dep in deps:
        sc.dependency(dep)
    sc.pre_start(target)
    sc.main(target)
    sc.lines += list(after_main)
    sc.post_start(target)
    sc.lines += ["sleep 0.5",
                 'if status | grep -q process; then echo alive; else echo gone; fi > $W/main']
    res, work = run_in_root(root, sc.text(), budget * (len(deps) + 2) + 60, runner)
    words = read(work, "post-start").split()
    status = int(words[0]) if words else None
    seconds = float(words[2]) - float(words[1]) if len(words) > 2 else None
    return PostStartResult(target.spec.name, read(work, "failed").strip(), status, seconds,
                           read(work, "post.log").strip(), read(work, "main").strip() == "alive",
                           (logs(work) + res.stderr_tail)[-4000:])
