"""Part 5 of the Upstart issue: each daemon's forks, seen for real, against its `expect`.

The trixie packages are installed in a test root; every daemon job is started
the way Upstart would start it (job environment, /etc/default, pre-start, then
the main process) in private namespaces under strace.  Needs root and Debian's
archive (the root is built once with mmdebstrap and cached).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from builder.tree.upstart.forkcheck import Daemon, run_forkcheck

from .roots import COROSYNC_CONF, QDEVICE, VETH

pytestmark = [pytest.mark.e2e, pytest.mark.network]

# job -> how to start it: jobs it needs running first, override env, setup, settle time
CASES: dict[str, dict] = {
    "corosync": {},
    "pacemaker": {"deps": ["corosync"]},
    "keepalived": {"setup": VETH},
    "corosync-qnetd": {},
    "corosync-qdevice": {"deps": ["corosync-qnetd", "corosync"], "qdevice": True},
    # sbd's parent exits only once its cluster watcher sees corosync; this
    # machine has no watchdog device, so it is switched off as an
    # /etc/init/sbd.override would (`env SBD_OPTS=-W -W`).
    "sbd": {"deps": ["corosync"], "settle": 10.0,
            "env": {"SBD_OPTS": "-W -W", "SBD_WATCHDOG_DEV": "/dev/null"}},
    "dlm_controld": {"deps": ["corosync"]},
}


def kernel_has_dlm() -> bool:
    """dlm_controld needs the DLM and configfs (its pre-start mounts /sys/kernel/config)."""
    filesystems = Path("/proc/filesystems").read_text()
    misc = Path("/proc/misc").read_text()
    return "configfs" in filesystems and "dlm" in misc


@pytest.mark.parametrize("name", list(CASES))
def test_forks_match_expect(stack_root: Path, stack_jobs: dict[str, Daemon], name: str) -> None:
    case = CASES[name]
    if name == "dlm_controld" and not kernel_has_dlm():
        pytest.skip("this kernel has no DLM/configfs: dlm_controld cannot run")
    device = QDEVICE if case.get("qdevice") else ""
    (stack_root / "etc/corosync/corosync.conf").write_text(COROSYNC_CONF % {"device": device})
    res = run_forkcheck(stack_root, stack_jobs[name], [stack_jobs[d] for d in case.get("deps", [])],
                        extra_env=case.get("env", {}), setup=case.get("setup", ()),
                        settle=case.get("settle", 2.0), budget=30)
    print(f"\nFORKCHECK {res} (ready after {res.ready_seconds or 0:.2f}s, "
          f"{res.total_forks} fork(s) in the tree, tracked: {res.program})")
    assert res.ok, f"{res}\n{res.log_tail}"
    assert res.program == stack_jobs[name].spec.daemon


def test_wrong_expect_is_caught(stack_root: Path, stack_jobs: dict[str, Daemon]) -> None:
    """The check is not a rubber stamp: declare `expect fork` for pacemakerd (which
    forks its subdaemons but stays) and it reports the mismatch."""
    (stack_root / "etc/corosync/corosync.conf").write_text(COROSYNC_CONF % {"device": ""})
    pacemaker = stack_jobs["pacemaker"]
    wrong = Daemon(replace(pacemaker.spec, expect="fork"), pacemaker.conf)
    res = run_forkcheck(stack_root, wrong, [stack_jobs["corosync"]], budget=30)
    assert res.settled and res.seen_forks == 0 and res.expected_forks == 1
    assert not res.ok
    assert "MISMATCH" in str(res)
