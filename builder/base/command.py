"""The one place where clusterstack runs other programs.

Every command line is logged; its output is teed into the log file of the
package being worked on; a failure raises CommandError carrying the command,
its exit status and the tail of what it wrote to stderr.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

from .errors import ClusterStackError

log = logging.getLogger("clusterstack.command")

TAIL_LINES = 25


class CommandError(ClusterStackError):
    def __init__(self, argv: Sequence[str], returncode: int, stderr_tail: str,
                 log_path: Path | None = None) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        self.log_path = log_path
        text = f"command failed with exit status {returncode}: {shlex.join(self.argv)}"
        if stderr_tail.strip():
            text += "\n" + "\n".join("  " + line for line in stderr_tail.rstrip().splitlines())
        if log_path:
            text += f"\n  (full log: {log_path})"
        super().__init__(text)


@dataclass
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr_tail: str


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _exit_line(returncode: int | None, started: float) -> str:
    return f"# exit status {returncode} ({time.monotonic() - started:.1f} s)\n"


@dataclass(frozen=True)
class Runner:
    """Runs commands; `log_path` is the per-package log that output is teed to."""

    log_path: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)

    def for_log(self, log_path: Path) -> Runner:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        return replace(self, log_path=log_path)

    def note(self, text: str) -> None:
        """Append lines to the log that no command of this runner wrote: what a
        command run for several packages at once said of this one."""
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "a", encoding="utf-8", errors="replace") as fh:
                fh.write(text if text.endswith("\n") or not text else text + "\n")

    def external(self, argv: Sequence[str], output: Iterable[bytes],
                 wait: Callable[[], int]) -> Result:
        """Log and tee a command that runs elsewhere (e.g. in a container via an API).

        `output` yields its combined output; `wait` returns its exit status.
        Failure raises the same CommandError as run().
        """
        args = list(argv)
        cmdline = shlex.join(args)
        log.info("$ %s", cmdline)
        tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        logfile = open(self.log_path, "a", encoding="utf-8") if self.log_path else None  # noqa: SIM115
        started = time.monotonic()
        try:
            if logfile:
                logfile.write(f"$ {cmdline}\n")
            pending = ""
            for chunk in output:
                pending += chunk.decode("utf-8", errors="replace")
                *lines, pending = pending.split("\n")
                for line in lines:
                    tail.append(line + "\n")
                    if logfile:
                        logfile.write(line + "\n")
            if pending:
                tail.append(pending)
                if logfile:
                    logfile.write(pending + "\n")
            returncode = wait()
            if logfile:
                logfile.write(_exit_line(returncode, started))
        finally:
            if logfile:
                logfile.close()
        result = Result(args, returncode, "", "".join(tail))
        if returncode != 0:
            raise CommandError(args, returncode, result.stderr_tail, self.log_path)
        return result

    def run(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        input: str | bytes | None = None,
        check: bool = True,
        timeout: float | None = None,
        stdout_to: Path | None = None,
    ) -> Result:
        """Run argv; return its stdout (text) unless `stdout_to` names a file for it."""
        args = [os.fspath(a) for a in argv]
        cmdline = shlex.join(args)
        log.info("$ %s%s", cmdline, f"  (in {cwd})" if cwd else "")
        full_env = {**os.environ, **self.env, **(env or {})}
        logfile: IO[str] | None = None
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            logfile = open(self.log_path, "a", encoding="utf-8", errors="replace")  # noqa: SIM115
            logfile.write(f"$ {cmdline}\n")
            logfile.flush()
        out_file = open(stdout_to, "wb") if stdout_to else None  # noqa: SIM115
        started = time.monotonic()
        try:
            # A process group of its own: when we give up on a command, its
            # children (sbuild's, mmdebstrap's) go with it.
            proc = subprocess.Popen(
                args, cwd=cwd, env=full_env,
                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                stdout=out_file or subprocess.PIPE, stderr=subprocess.PIPE,
                process_group=0,
            )
        except FileNotFoundError as exc:
            if logfile:
                logfile.close()
            if out_file:
                out_file.close()
            raise CommandError(args, 127, f"{args[0]}: not found", self.log_path) from exc
        lock = threading.Lock()
        stdout_chunks: list[str] = []
        tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)

        def pump(stream: IO[bytes], sink: list[str] | collections.deque[str]) -> None:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", errors="replace")
                sink.append(line)
                if logfile:
                    with lock:
                        logfile.write(line)
            stream.close()

        threads = [threading.Thread(target=pump, args=(proc.stderr, tail), daemon=True)]
        if proc.stdout is not None:
            threads.append(threading.Thread(target=pump, args=(proc.stdout, stdout_chunks),
                                            daemon=True))
        for t in threads:
            t.start()
        try:
            if input is not None and proc.stdin:
                data = input.encode() if isinstance(input, str) else input
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.write(data)
                proc.stdin.close()
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            returncode = -9
            tail.append(f"(killed after {timeout} s)\n")
        except BaseException:
            _kill_group(proc)
            raise
        finally:
            for t in threads:
                t.join()
            if logfile:
                logfile.write(_exit_line(proc.returncode, started))
                logfile.close()
            if out_file:
                out_file.close()
        result = Result(args, returncode, "".join(stdout_chunks), "".join(tail))
        if check and returncode != 0:
            raise CommandError(args, returncode, result.stderr_tail, self.log_path)
        return result


# Background processes (node inits, a namespace holder) must keep running while
# their caller works, so Runner.run, which waits, does not fit them.  They are
# logged the same way, and tied to the caller with PR_SET_PDEATHSIG: if it dies,
# even by SIGKILL, the child is killed too and takes its namespaces with it.
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Background:
    """One background process whose output goes to `log_path`."""

    def __init__(self, argv: Sequence[str | os.PathLike[str]], log_path: Path) -> None:
        self.argv = [os.fspath(a) for a in argv]
        self.log_path = log_path
        log.info("$ %s &  (output: %s)", shlex.join(self.argv), log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as out:
            out.write(f"$ {shlex.join(self.argv)}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent, start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGKILL, timeout: float = 10.0) -> int:
        """Send `sig`, wait up to `timeout` s, then SIGKILL; return the exit status."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()
