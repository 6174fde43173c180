"""Long-running background processes (node inits, the switch namespace holder).

builder.command.Runner waits for what it runs; these must keep running while
the harness works, so they get this small helper instead. Command lines are
logged to "clusterstack.command" exactly as Runner logs its own. Each child
is tied to the harness with PR_SET_PDEATHSIG: if the harness dies, even by
SIGKILL, the child is killed too and takes its namespaces with it.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shlex
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger("clusterstack.command")

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
