"""Counting daemonizing forks in real strace output of small real programs."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from builder.base.command import Runner
from builder.tree.upstart.forkcheck import daemonizing_forks, parse_trace, program_of
from builder.tree.upstart.jobrun import upstart_argv
from builder.tree.upstart.parser import parse


def trace(tmp_path: Path, script: str) -> str:
    out = tmp_path / "trace"
    # strace -f only returns when every traced process is gone, so the
    # backgrounded sleeps below are short.
    Runner().run(["strace", "-f", "-q", "-o", out, "-e", "trace=process",
                  "sh", "-c", script], timeout=30)
    return out.read_text()


@pytest.mark.parametrize(("script", "forks", "program"), [
    # stays in the foreground, like corosync -f
    ("exec sleep 0.3", 0, "/usr/bin/sleep"),
    # forks helpers but stays, like pacemakerd: still no daemonizing fork
    ("sleep 0.1 & sleep 0.1 & wait; exec sleep 0.3", 0, "/usr/bin/sleep"),
    # forks once, the parent exits: `expect fork`
    ("sleep 0.5 & exit 0", 1, "/usr/bin/sleep"),
    # forks twice, each parent exits: `expect daemon`
    ("(sleep 0.5 &); exit 0", 2, "/usr/bin/sleep"),
])
def test_daemonizing_forks_of_real_processes(
        tmp_path: Path, script: str, forks: int, program: str) -> None:
    tr = parse_trace(trace(tmp_path, script))
    # The trace ends when everything exited; count what happened before that.
    seen, tracked = daemonizing_forks(_until_last_exit(tr))
    assert seen == forks
    assert tracked is not None and program_of(tr, tracked) == program


def _until_last_exit(tr):
    """Drop the final exit so the tracked process counts as still running."""
    last_exit = max(i for i, ev in enumerate(tr.order) if ev[0] == "exit")
    tr.order = tr.order[:last_exit]
    return tr


def test_threads_are_not_forks(tmp_path: Path) -> None:
    # python starts a thread: clone with CLONE_THREAD, which must not count
    text = trace(tmp_path, f"exec {shlex.quote(sys.executable)} -c 'import threading; "
                           "t = threading.Thread(target=lambda: None); t.start(); t.join()'")
    assert "CLONE_THREAD" in text
    tr = parse_trace(text)
    assert tr.forks == []


def test_a_daemon_that_dies_is_not_tracked(tmp_path: Path) -> None:
    tr = parse_trace(trace(tmp_path, "sleep 0.1 & exit 0"))
    assert daemonizing_forks(tr) == (1, None)


def test_upstart_argv_matches_job_process_run() -> None:
    job = parse("exec /usr/sbin/corosync -f\npre-start exec /bin/mkdir -p $D\n"
                "post-start script\n  echo hi\nend script\n")
    main, pre, post = job.processes
    assert upstart_argv(main) == ["/usr/sbin/corosync", "-f"]
    assert upstart_argv(pre) == ["/bin/sh", "-e", "-c", "exec /bin/mkdir -p $D"]
    assert upstart_argv(post) == ["/bin/sh", "-e", "-c", "  echo hi\n"]
