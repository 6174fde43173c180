"""Part 3 of the Upstart issue: `start` must not succeed for a daemon that does not serve.

Each case runs the rendered job (pre-start, main, post-start) as Upstart would,
in the trixie test root, against the real daemons.  Upstart's own `status`
command is the one stand-in (see builder/tree/upstart/jobrun.py): it reports the
main pid the harness started.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.tree.upstart.jobrun import Daemon, run_post_start
from builder.tree.upstart.render import render_all

from .roots import COROSYNC_CONF

pytestmark = [pytest.mark.e2e, pytest.mark.network]


@pytest.fixture
def corosync_conf(stack_root: Path) -> Iterator[Path]:
    conf = stack_root / "etc/corosync/corosync.conf"
    conf.write_text(COROSYNC_CONF % {"device": ""})
    yield conf
    conf.write_text(COROSYNC_CONF % {"device": ""})


@pytest.fixture
def corosync_default(stack_root: Path) -> Iterator[Path]:
    """Our /etc/default/corosync, as the Upstart profile ships it, restored afterwards."""
    path = stack_root / "etc/default/corosync"
    before = path.read_bytes() if path.exists() else None
    (rendered,) = [r for r in render_all({"name": "trixie", "init": "systemd"})
                   if r.job.name == "corosync"]
    assert rendered.default_text is not None
    path.write_text(rendered.default_text)
    yield path
    if before is None:
        path.unlink()
    else:
        path.write_bytes(before)


def test_corosync_serving_starts(stack_root: Path, stack_jobs: dict[str, Daemon],
                                 corosync_conf: Path) -> None:
    res = run_post_start(stack_root, stack_jobs["corosync"])
    assert (res.failed_before, res.status, res.message) == ("", 0, ""), res.log_tail
    assert res.main_alive


def test_corosync_that_dies_fails_the_job(stack_root: Path, stack_jobs: dict[str, Daemon],
                                          corosync_conf: Path) -> None:
    # parses, but corosync refuses it and exits at once: the classic case where
    # Upstart's `start` would have said "start/running"
    corosync_conf.write_text((COROSYNC_CONF % {"device": ""}).replace(
        "transport: knet", "transport: carrier-pigeon"))
    res = run_post_start(stack_root, stack_jobs["corosync"])
    assert res.failed_before == ""
    assert res.status == 1, res.log_tail
    assert res.message == ("corosync: main process exited (corosync-cfgtool -s failed); "
                           "failing the job")
    assert not res.main_alive


def test_corosync_that_hangs_is_failed_after_the_timeout_from_etc_default(
        stack_root: Path, stack_jobs: dict[str, Daemon], corosync_conf: Path,
        corosync_default: Path) -> None:
    corosync_default.write_text(corosync_default.read_text().replace(
        "COROSYNC_READY_TIMEOUT=30", "COROSYNC_READY_TIMEOUT=2"))
    # Frozen right after exec: the process exists but never answers.  The
    # job's own TERM stays pending while it is stopped; CONT lets it act.
    res = run_post_start(stack_root, stack_jobs["corosync"],
                         after_main=["kill -STOP $(cat $W/main.pid)"])
    assert res.status == 1, res.log_tail
    assert res.message == ("corosync: not serving after 2s (corosync-cfgtool -s failed); "
                           "failing the job")
    assert res.seconds is not None and 2 <= res.seconds < 10


def test_corosync_without_configuration_fails_in_pre_start(
        stack_root: Path, stack_jobs: dict[str, Daemon], corosync_conf: Path) -> None:
    corosync_conf.unlink()
    res = run_post_start(stack_root, stack_jobs["corosync"])
    assert res.failed_before == "pre-start:1"
    assert "corosync: /etc/corosync/corosync.conf is missing; not starting" in res.log_tail


def test_pacemaker_serving_starts(stack_root: Path, stack_jobs: dict[str, Daemon],
                                  corosync_conf: Path) -> None:
    res = run_post_start(stack_root, stack_jobs["pacemaker"], [stack_jobs["corosync"]])
    assert (res.failed_before, res.status, res.message) == ("", 0, ""), res.log_tail
    assert res.main_alive


def test_pacemaker_without_corosync_fails_the_job(
        stack_root: Path, stack_jobs: dict[str, Daemon], corosync_conf: Path) -> None:
    res = run_post_start(stack_root, stack_jobs["pacemaker"],
                         extra_env={"PACEMAKER_READY_TIMEOUT": "5"})
    assert res.status == 1, res.log_tail
    assert res.message.startswith("pacemaker: ")
    assert res.message.endswith("(cibadmin --query --local failed); failing the job")
    assert not res.main_alive
