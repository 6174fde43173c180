"""The systemd tier for real: systemd-nspawn nodes, the packages' units, pcs bootstrap.

Opt-in (CLUSTERSTACK_TEST_SYSTEMD=1): it builds a node root of its own (systemd, pcs,
crmsh, ssh; Debian's stack; ~3 min the first time, under
CLUSTERSTACK_TEST_CACHE), then each test boots two nodes (~1.5 min each).
Needs root, mmdebstrap and systemd-nspawn (package systemd-container).
"""

from __future__ import annotations

import os
import shutil
from contextlib import ExitStack
from pathlib import Path

import pytest

from builder.base.command import Runner
from builder.verify.cluster import ClusterOptions, run_cluster
from builder.verify.cluster.options import DEFAULT_MIRROR
from builder.verify.cluster.rootfs import RootSpec, ensure_root
from builder.verify.cluster.scenarios import ScenarioError
from builder.verify.cluster.systemd import CGROUP_ROOT, SystemdCluster, check_units, pcs_bootstrap
from tests.cluster.test_e2e import harness_leftovers

CACHE = Path(os.environ.get("CLUSTERSTACK_TEST_CACHE", "/var/cache/clusterstack-tests"))
TOOLS = ("mmdebstrap", "unshare", "nsenter", "ip", "systemd-nspawn")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.environ.get("CLUSTERSTACK_TEST_SYSTEMD") != "1",
                       reason="set CLUSTERSTACK_TEST_SYSTEMD=1: boots systemd-nspawn nodes "
                              "from a root of their own"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and cgroups"),
    pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS),
                       reason=f"needs {', '.join(TOOLS)}"),
]


def cgroups_left() -> list[Path]:
    return [p for h in ("systemd", "unified") for p in (CGROUP_ROOT / h).glob("clusterstack/*")]


def test_short_two_nodes_bootstrapped_by_pcs(tmp_path):
    before = set(cgroups_left())
    report = run_cluster(ClusterOptions(nodes=2, scenario="short", init="systemd", shell="pcs",
                                        output_dir=tmp_path / "out", cache_dir=CACHE,
                                        work_dir=tmp_path / "runs", fence_action="reboot"))
    assert report.ok, f"{report.error}: {report.steps}"
    assert set(report.boot_s) == {"node1", "node2"}
    assert report.formation_s is not None and report.nodes_up == 2
    kill = report.failovers["kill"]
    fenced = [e for e in report.fencing_events if e.node == kill["from"] and e.action == "off"]
    assert fenced and fenced[0].result == "ok" and fenced[0].requested_by != kill["from"]
    # The fenced node was booted again and its enabled units brought it back.
    assert report.rejoin_s is not None
    assert set(report.pss_node_mib) == {"node1", "node2"}
    assert report.unit_failures == []
    # Debian's stack has the gaps our archive closes; the report names each workaround.
    assert any(w.startswith("corosync-example-config") for w in report.workarounds)
    assert report.steps["teardown"] == "ok"
    assert harness_leftovers(tmp_path / "runs") == []
    assert set(cgroups_left()) <= before


def test_a_broken_corosync_conf_names_the_unit_and_leaves_nothing(tmp_path):
    """pcs pushes a corosync.conf corosync refuses: the failed unit is named with its
    status and journal lines, and the teardown still leaves nothing behind."""
    runner = Runner(log_path=tmp_path / "commands.log")
    spec = RootSpec("trixie", DEFAULT_MIRROR, shell="pcs", init="systemd")
    with ExitStack() as stack:
        root = stack.enter_context(ensure_root(spec, CACHE, runner))
        run_dir = tmp_path / "runs" / "cluster-broken"
        run_dir.mkdir(parents=True)
        cluster = SystemdCluster(root.path, run_dir, 2, runner)
        try:
            cluster.prepare()
            cluster.boot()
            pcs_bootstrap(cluster, 1000, 120)
            first, second = cluster.nodes
            first.sh("sed -i 's/transport: knet/transport: carrier-pigeon/' "
                     "/etc/corosync/corosync.conf")
            first.run(["pcs", "cluster", "sync"], timeout=60)
            second.run(["pcs", "cluster", "stop"], timeout=120)
            second.run(["pcs", "cluster", "start"], check=False, timeout=120)
            with pytest.raises(ScenarioError, match=r"node2: corosync\.service"):
                check_units(cluster)
            failure = next(f for f in cluster.failures if f.unit == "corosync.service")
            assert any("corosync.service" in line for line in failure.status)
            assert any("transport" in line.lower() or "parse" in line.lower()
                       for line in failure.status), failure.status
        finally:
            left = cluster.teardown()
    assert left == []
    assert harness_leftovers(tmp_path / "runs") == [f"scratch directory {run_dir}"]
