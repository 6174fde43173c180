"""The step runner and the signal handling every harness shares (cluster, VM, installer).

A run is named steps in order; after the first failure the rest are skipped,
and the report says which.  SIGTERM/SIGHUP are handled like Ctrl-C, and the
teardown runs with them ignored so that a second one cannot cut it short.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("clusterstack.cluster")


class StepReport(Protocol):
    """What a step runner writes into: any harness's report."""

    steps: dict[str, str]
    error: str | None


class Interrupted(BaseException):
    """SIGTERM/SIGHUP, handled like Ctrl-C: tear down, then stop."""


@contextmanager
def signals_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        raise Interrupted(f"signal {signum}")

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class Steps:
    """Runs named steps in order; after the first failure the rest are skipped."""

    def __init__(self, report: StepReport) -> None:
        self.report = report
        self.failed = False
        self.failures = 0  # also those before a resume()

    def resume(self) -> None:
        """Run the next steps again (a fault scenario failed, the cluster is recovering)."""
        self.failed = False

    def __call__(self, name: str, fn: Callable[[], Any]) -> Any:
        if self.failed:
            self.report.steps[name] = "skipped"
            return None
        log.info("cluster step: %s", name)
        try:
            value = fn()
        except BaseException as exc:
            self.failed = True
            self.failures += 1
            if not isinstance(exc, Exception):  # Ctrl-C, SIGTERM: record, then stop
                self.report.steps[name] = f"interrupted ({type(exc).__name__})"
                self.report.error = f"{name}: interrupted"
                raise
            self.report.steps[name] = f"failed: {exc}"
            self.report.error = self.report.error or f"{name}: {exc}"
            log.error("cluster step %s failed: %s", name, exc)
            return None
        self.report.steps[name] = "ok"
        return value


def new_run_dir(runs: Path) -> Path:
    """A scratch directory for this run's overlays, after removing those of dead runs.

    A harness killed by SIGKILL takes its nodes with it (see process.py) but
    cannot delete its upper layers; the next run does.
    """
    runs.mkdir(parents=True, exist_ok=True)
    for old in runs.glob("cluster-*"):
        try:
            owner = int((old / "owner.pid").read_text())
            os.kill(owner, 0)
            continue  # still running
        except ProcessLookupError:
            pass
        except (OSError, ValueError):
            if time.time() - old.stat().st_mtime < 3600:
                continue  # being created right now, or unknown: leave it a while
        log.info("removing the scratch directory of a dead run: %s", old)
        shutil.rmtree(old, ignore_errors=True)
    run_dir = Path(tempfile.mkdtemp(prefix="cluster-", dir=runs))
    (run_dir / "owner.pid").write_text(f"{os.getpid()}\n")
    return run_dir


@contextmanager
def uninterruptible() -> Iterator[None]:
    """A second Ctrl-C must not cut the teardown short and leave nodes running."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, signal.SIG_IGN)
           for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
