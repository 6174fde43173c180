"""Lint rules for Upstart job files: syntax, process structure, shell, exec paths."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from builder.base.command import Runner

from .debfiles import DebFiles, usr_alternative
from .grammar import STANZAS, ArgError, check_stanza
from .parser import JobFile, Process, Stanza, parse
from .scriptforks import script_forks

ERROR = "error"
WARNING = "warning"
SH_ERROR = re.compile(r"^[^:]*: (?:line )?(\d+): (.*)$")
SCRIPT_EXEC = re.compile(r"^\s*exec\s+(\S+)")


@dataclass(frozen=True, order=True)
class Finding:
    path: str
    line: int
    severity: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.severity}: {self.message}"


def _syntax(job: JobFile) -> list[Finding]:
    out = [Finding(job.path, e.line, ERROR, e.message) for e in job.errors]
    first_seen: dict[str, int] = {}
    for st in job.stanzas:
        try:
            warnings = check_stanza(st)
        except ArgError as exc:
            out.append(Finding(job.path, exc.line, ERROR, exc.message))
            continue
        out += [Finding(job.path, w.line, WARNING, w.message) for w in warnings]
        spec = STANZAS[st.keyword]
        if spec.deprecated:
            out.append(Finding(job.path, st.line, WARNING,
                               f"'{st.keyword}' is deprecated: {spec.deprecated}"))
        # Process stanzas are counted by _processes, which names both lines.
        if spec.repeatable or st.keyword.endswith(("exec", "script")):
            continue
        if st.keyword in first_seen:
            # Valid: each handler in init/parse_job.c (stanza_start, stanza_kill,
            # ...) frees the previous value, so only the last one counts.
            out.append(Finding(job.path, st.line, WARNING,
                               f"'{st.keyword}' given twice (first at line "
                               f"{first_seen[st.keyword]}); Upstart silently keeps the last"))
        else:
            first_seen[st.keyword] = st.line
    return out


def _processes(job: JobFile) -> list[Finding]:
    out: list[Finding] = []
    by_phase: dict[str, list[Process]] = {}
    for proc in job.processes:
        by_phase.setdefault(proc.phase, []).append(proc)
    for phase, procs in by_phase.items():
        if len(procs) > 1:
            what = "two main processes" if phase == "main" else f"two {phase} processes"
            lines = " and ".join(f"'{p.kind}' at line {p.line}" for p in procs)
            # Valid for Upstart: parse_exec / parse_script replace the command
            # already there, so the earlier definition is silently dropped.
            out.append(Finding(job.path, procs[-1].line, WARNING,
                               f"{what}: {lines}; Upstart silently keeps the last"))
    expect = job.find("expect")
    main = by_phase.get("main", [])
    if expect:
        if not main:
            out.append(Finding(job.path, expect[0].line, ERROR,
                               "'expect' without a main process (exec or script)"))
        else:
            out += _expect_script(job, expect[-1], main[-1])
    respawn = job.find("respawn")
    if respawn and not job.find("respawn limit"):
        out.append(Finding(job.path, respawn[0].line, WARNING,
                           "'respawn' without 'respawn limit': Upstart's default of 10 in 5 s "
                           "gives up silently; state the limit"))
    if not job.find("stop on") and not job.find("task"):
        out.append(Finding(job.path, 1, WARNING, "no 'stop on': the job runs through shutdown"))
    return out


def _expect_script(job: JobFile, expect: Stanza, main: Process) -> list[Finding]:
    """`expect fork|daemon` with a main script: fine while the shell forks nothing first.

    job_process_run (init/job_process.c) ptraces the main process only for these
    two; the shell is that process, and its first fork is the one followed.
    """
    kind = expect.args[0].text if expect.args else ""
    if main.kind != "script" or kind not in ("fork", "daemon"):
        return []
    found = script_forks(main.body)
    if found.fork is not None:
        line = main.body_line + found.fork.line - 1
        return [Finding(job.path, line, ERROR,
                        f"'expect {kind}' (line {expect.line}) with a main 'script' that "
                        f"forks before it execs the daemon ({found.fork.what}): Upstart "
                        "would follow that fork, not the daemon's; run only shell builtins "
                        "before 'exec', or drop 'expect'")]
    if not found.execs:
        return [Finding(job.path, expect.line, ERROR,
                        f"'expect {kind}' with a main 'script' that never execs a program: "
                        "Upstart would wait for a fork of the shell")]
    return []


def _sh_check(job: JobFile, runner: Runner) -> list[Finding]:
    """Run `sh -n` on every script block and every exec command line."""
    out: list[Finding] = []
    for proc in job.processes:
        if proc.kind == "script":
            res = runner.run(["sh", "-n"], input=proc.body, check=False)
            base, last = proc.body_line, proc.body_line + proc.body.count("\n")
        else:
            # Upstart hands exec lines with shell characters to `sh -e -c "exec ..."`.
            res = runner.run(["sh", "-n", "-c", f"exec {proc.command}"], check=False)
            base, last = proc.line, proc.line + proc.command.count("\n")
        if res.returncode == 0:
            continue
        for raw in res.stderr_tail.splitlines() or ["(no message)"]:
            m = SH_ERROR.match(raw.strip())
            line = min(base + int(m.group(1)) - 1, last) if m else proc.line
            msg = m.group(2) if m else raw.strip()
            label = "script" if proc.phase == "main" else f"{proc.phase} {proc.kind}"
            out.append(Finding(job.path, line, ERROR, f"shell syntax in '{label}': {msg}"))
    return out


# Programs that only set up the process and exec the real one (no fork): the
# exec check looks through them to the daemon.
EXEC_WRAPPERS = {"setpriv", "/usr/bin/setpriv", "nice", "/usr/bin/nice", "env", "/usr/bin/env"}


def _program(words: list[str]) -> str | None:
    while words and words[0] in EXEC_WRAPPERS:
        words = words[1:]
        while words and (words[0].startswith("-") or "=" in words[0]):
            words = words[1:]
    return words[0] if words else None


def main_exec_paths(job: JobFile) -> list[tuple[int, str]]:
    """The executables the main process runs: the exec word, or a script's `exec` lines.

    A job without a main process (a "state" job) is checked on its pre-start.
    """
    procs = job.process("main") or job.process("pre-start")
    found: list[tuple[int, str]] = []
    for proc in procs:
        if proc.kind == "exec":
            commands = [(proc.line, proc.command)]
        else:
            commands = []
            pending, first = "", 0
            for offset, text in enumerate(proc.body.splitlines()):
                if not pending:
                    first = proc.body_line + offset
                if text.rstrip().endswith("\\"):
                    pending += text.rstrip()[:-1] + " "
                    continue
                line, pending = pending + text, ""
                m = SCRIPT_EXEC.match(line)
                if m:
                    commands.append((first, line.split(None, 1)[1]))
        for line, command in commands:
            try:
                words = shlex.split(command, comments=True)
            except ValueError:
                continue  # sh -n reports the quoting problem
            program = _program(words)
            if program:
                found.append((line, program))
    return found


def _exec_paths(job: JobFile, debs: Sequence[DebFiles]) -> list[Finding]:
    out: list[Finding] = []
    names = ", ".join(d.deb.name for d in debs)
    for line, path in main_exec_paths(job):
        if not path.startswith("/"):
            out.append(Finding(job.path, line, ERROR,
                               f"exec of {path!r}: use an absolute path so it can be checked "
                               "against the package"))
            continue
        if any(d.ships(path) for d in debs):
            continue
        alt = usr_alternative(path)
        hint = f" (it ships {alt})" if alt != path and any(d.ships(alt) for d in debs) else ""
        out.append(Finding(job.path, line, ERROR,
                           f"exec path {path} is not shipped by {names}{hint}"))
    return out


def lint_text(text: str, path: str = "<job>", *, debs: Sequence[DebFiles] = (),
              runner: Runner | None = None) -> list[Finding]:
    runner = runner or Runner()
    job = parse(text, path)
    findings = _syntax(job) + _processes(job) + _sh_check(job, runner)
    if debs:
        findings += _exec_paths(job, debs)
    return sorted(set(findings))


def lint_file(path: Path, *, debs: Sequence[DebFiles] = (),
              runner: Runner | None = None) -> list[Finding]:
    return lint_text(Path(path).read_text(encoding="utf-8"), str(path), debs=debs, runner=runner)
