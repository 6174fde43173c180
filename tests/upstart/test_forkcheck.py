"""Part 5 of the Upstart issue: each daemon's forks, seen for real, against its `expect`.

The trixie packages are installed in a test root; every daemon job is started
the way Upstart would start it (job environment, /etc/default, pre-start, then
the main process) in private namespaces under strace.  Needs root and Debian's
archive (the root is built once with mmdebstrap and cached).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builder.upstart.forkcheck import Daemon, ForkResult, run_forkcheck
from builder.upstart.render import render_all

from .roots import root_tarball, unpack

pytestmark = [pytest.mark.e2e, pytest.mark.network]

COROSYNC_CONF = """\
totem {
    version: 2
    cluster_name: forkcheck
    crypto_cipher: none
    crypto_hash: none
    transport: knet
}
nodelist {
    node {
        ring0_addr: 127.0.0.1
        name: node1
        nodeid: 1
    }
}
quorum {
    provider: corosync_votequorum
%(device)s}
logging {
    to_stderr: yes
    to_syslog: no
    to_logfile: no
}
"""
QDEVICE = """\
    device {
        model: net
        votes: 1
        net {
            host: 127.0.0.1
            algorithm: lms
            tls: off
        }
    }
"""
KEEPALIVED_CONF = """\
global_defs {
    router_id forkcheck
}
vrrp_instance VI_1 {
    state BACKUP
    interface cs0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.10/32
    }
}
"""
# keepalived refuses VRRP on loopback: give it a veth pair.  It exists only in
# the test's own network namespace, with a documentation-range address.
VETH = ["ip link add cs0 type veth peer name cs1", "ip link set cs0 up", "ip link set cs1 up",
        "ip addr add 192.0.2.1/24 dev cs0"]

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
RESULTS: list[ForkResult] = []


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.geteuid() != 0:
        pytest.skip("the fork check needs root (namespaces, chroot, strace)")
    root = unpack(root_tarball(), tmp_path_factory.mktemp("forkcheck") / "root")
    (root / "etc/keepalived").mkdir(exist_ok=True)
    (root / "etc/keepalived/keepalived.conf").write_text(KEEPALIVED_CONF)
    return root


@pytest.fixture(scope="module")
def jobs() -> dict[str, Daemon]:
    return {r.job.name: Daemon(r.job, r.conf) for r in render_all(
        {"name": "trixie", "init": "systemd"})}


def kernel_has_dlm() -> bool:
    misc = Path("/proc/misc").read_text()
    return "dlm-control" in misc or Path("/sys/kernel/dlm").exists()


@pytest.mark.parametrize("name", list(CASES))
def test_forks_match_expect(root: Path, jobs: dict[str, Daemon], name: str) -> None:
    case = CASES[name]
    if name == "dlm_controld" and not kernel_has_dlm():
        pytest.skip("this kernel has no DLM: dlm_controld exits at once")
    device = QDEVICE if case.get("qdevice") else ""
    (root / "etc/corosync/corosync.conf").write_text(COROSYNC_CONF % {"device": device})
    res = run_forkcheck(root, jobs[name], [jobs[d] for d in case.get("deps", [])],
                        extra_env=case.get("env", {}), setup=case.get("setup", ()),
                        settle=case.get("settle", 2.0), budget=30)
    RESULTS.append(res)
    print(f"\nFORKCHECK {res} (ready after {res.ready_seconds or 0:.2f}s, "
          f"{res.total_forks} fork(s) in the tree, tracked: {res.program})")
    assert res.ok, f"{res}\n{res.log_tail}"
    assert res.program == jobs[name].spec.daemon


def test_wrong_expect_is_caught(root: Path, jobs: dict[str, Daemon]) -> None:
    """The check is not a rubber stamp: declare `expect fork` for pacemakerd (which
    forks its subdaemons but stays) and it reports the mismatch."""
    (root / "etc/corosync/corosync.conf").write_text(COROSYNC_CONF % {"device": ""})
    wrong = Daemon(jobs["pacemaker"].spec.__class__(**{
        **jobs["pacemaker"].spec.__dict__, "expect": "fork"}), jobs["pacemaker"].conf)
    res = run_forkcheck(root, wrong, [jobs["corosync"]], budget=30)
    assert res.settled and res.seen_forks == 0 and res.expected_forks == 1
    assert not res.ok
    assert "MISMATCH" in str(res)
