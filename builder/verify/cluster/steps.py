"""The step runner and the signal handling every harness shares (cluster, VM, installer;
`verify` runs its checks with the same runner).

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


class StepRunner:
    """The one way a named step runs, for every harness and for `verify`: the step's
    start, its time and its outcome go to the hooks `started` and `ended`.

    An exception fails the step and is recorded; Ctrl-C and SIGTERM are recorded,
    then raised.  With `skip_after_failure` (the default) the steps after a failure
    are skipped (`skipped`), until `resume()`.
    """

    skip_after_failure = True

    def __init__(self) -> None:
        self.failed = False
        self.failures = 0  # also those before a resume()
        self.passed = False  # did the last step pass

    def resume(self) -> None:
        """Run the next steps again (a fault scenario failed, the cluster is recovering)."""
        self.failed = False

    def started(self, name: str) -> None:
        """A step starts."""

    def skipped(self, name: str) -> None:
        """A step is not run: one before it failed."""

    def ended(self, name: str, value: Any, exc: BaseException | None, seconds: float) -> None:
        """A step returned `value`, or raised `exc`."""

    def __call__(self, name: str, fn: Callable[[], Any]) -> Any:
        """Run one step; its value, None when it failed or was skipped."""
        self.passed = False
        if self.failed and self.skip_after_failure:
            self.skipped(name)
            return None
        self.started(name)
        began = time.monotonic()
        try:
            value = fn()
        except BaseException as exc:
            self.failed = True
            self.failures += 1
            self.ended(name, None, exc, time.monotonic() - began)
            if not isinstance(exc, Exception):  # Ctrl-C, SIGTERM: record, then stop
                raise
            return None
        self.passed = True
        self.ended(name, value, None, time.monotonic() - began)
        return value

    def ok(self, name: str, fn: Callable[[], Any]) -> bool:
        """Run one step; whether it passed."""
        self(name, fn)
        return self.passed


class Steps(StepRunner):
    """A harness's steps, recorded in its report; after the first failure the rest
    are skipped."""

    def __init__(self, report: StepReport) -> None:
        super().__init__()
        self.report = report

    def started(self, name: str) -> None:
        log.info("cluster step: %s", name)

    def skipped(self, name: str) -> None:
        self.report.steps[name] = "skipped"

    def ended(self, name: str, value: Any, exc: BaseException | None, seconds: float) -> None:
        if exc is None:
            self.report.steps[name] = "ok"
        elif not isinstance(exc, Exception):
            self.report.steps[name] = f"interrupted ({type(exc).__name__})"
            self.report.error = f"{name}: interrupted"
        else:
            self.report.steps[name] = f"failed: {exc}"
            self.report.error = self.report.error or f"{name}: {exc}"
            log.error("cluster step %s failed: %s", name, exc)


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
