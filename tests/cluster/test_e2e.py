"""The cluster harness for real: namespaces, corosync, pacemaker, fencing, fail-over.

Needs root, mmdebstrap, unshare and nsenter, and Debian's archive the first
time (the node root is cached under CLUSTERSTACK_TEST_CACHE, default
/var/cache/clusterstack-tests; about 3 minutes to build, seconds afterwards).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from builder.base.command import Background
from builder.verify.cluster import ClusterOptions, faults, run_cluster

CACHE = Path(os.environ.get("CLUSTERSTACK_TEST_CACHE", "/var/cache/clusterstack-tests"))
TOOLS = ("mmdebstrap", "unshare", "nsenter", "ip")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces and mounts"),
    pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS),
                       reason=f"needs {', '.join(TOOLS)}"),
]


def harness_leftovers(runs: Path) -> list[str]:
    """Anything of a cluster run still alive: processes chrooted into a run, mounts, scratch."""
    left = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            root = os.readlink(f"/proc/{entry}/root")
        except OSError:
            continue
        if root.startswith(str(runs)):
            left.append(f"process {entry} rooted in {root}")
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if str(runs) in line:
            left.append(f"mount {line.split()[4]}")
    left += [f"scratch directory {p}" for p in runs.glob("cluster-*")]
    return left


def terminate_when(harness: Background, marker: str, out: Path, tmp_path: Path) -> dict:
    """SIGTERM the harness once its commands.log shows `marker`; nothing may be left.

    Returns the report it wrote on the way out.
    """
    commands = out / "commands.log"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and harness.running():
        if commands.exists() and marker in commands.read_text():
            break
        time.sleep(0.2)
    assert harness.running(), (tmp_path / "harness.log").read_text()
    status = harness.stop(signal.SIGTERM, timeout=120)
    assert status != 0
    assert harness_leftovers(tmp_path / "runs") == []
    return json.loads((out / "cluster-report.json").read_text())


def assert_passed(report, nodes: int) -> None:
    assert report.ok, f"{report.error}: {report.steps}"
    assert report.nodes_up == nodes
    assert report.formation_s is not None and report.formation_s > 0
    assert report.steps["teardown"] == "ok"
    kill = report.failovers["kill"]
    assert kill["from"] != kill["to"]
    # The service moved only after the killed node was fenced through fence_nsnode.
    fenced = [e for e in report.fencing_events if e.node == kill["from"] and e.action == "off"]
    assert fenced and fenced[0].result == "ok"
    assert fenced[0].requested_by != kill["from"]
    assert report.kill_failover_s is not None and 0 < report.kill_failover_s < 60


def rows(report, step: str) -> dict:
    """The monitoring rows of one step, by node."""
    found = {r.node: r for r in report.monitoring if r.step == step}
    assert found, f"no monitoring rows for {step!r}: {sorted({r.step for r in report.monitoring})}"
    return found


def assert_all_up(report, nodes: int, step: str = "all up") -> None:
    """Every node's exporter runs, counts every node online and quorate; every check OK."""
    seen = rows(report, step)
    assert len(seen) == nodes
    for row in seen.values():
        assert (row.nodes_online, row.quorate, row.check) == (nodes, 1, "OK"), row
        assert row.scrape_error is None and 0 < row.scrape_ms < 10_000
        assert row.exporter_rss_mib is not None and row.exporter_rss_mib > 1


def assert_kill_seen(report, nodes: int) -> None:
    """The survivors' exporters stop counting the killed node online, their checks go
    CRITICAL, both within the monitor's bound, before the node is back."""
    killed = report.failovers["kill"]["from"]
    seen = rows(report, f"kill: {killed} down, as the survivors see it")
    assert sorted(seen) == sorted(f"node{i}" for i in range(1, nodes + 1) if f"node{i}" != killed)
    for row in seen.values():
        assert row.check == "CRITICAL" and row.nodes_online == nodes - 1, row
        assert row.seen_s is not None and 0 < row.seen_s < report.kill_failover_s + 20
        assert row.check_s is not None and 0 < row.check_s < report.kill_failover_s + 20


def test_short_two_nodes_kill_failover_through_fencing(tmp_path):
    out = tmp_path / "out"
    report = run_cluster(ClusterOptions(nodes=2, scenario="short", output_dir=out,
                                        cache_dir=CACHE, work_dir=tmp_path / "runs",
                                        fence_action="off"))
    assert_passed(report, 2)
    assert [e.action for e in report.fencing_events] == ["off"]
    assert report.rejoin_s is None  # powered off, stays off
    assert_all_up(report, 2)
    assert_kill_seen(report, 2)
    # Fenced off for good: the survivor's check stays CRITICAL for the offline node.
    killed = report.failovers["kill"]["from"]
    [after] = rows(report, "after kill").values()
    assert (after.nodes_online, after.check) == (1, "CRITICAL")
    assert f"nodes offline: {killed}" in after.check_line
    assert harness_leftovers(tmp_path / "runs") == []
    data = json.loads((out / "cluster-report.json").read_text())
    assert data["kill_failover_s"] == report.kill_failover_s
    assert "PASS" in (out / "cluster-report.txt").read_text()
    # Every node's logs are kept, the killed one's too.
    for name in ("node1", "node2"):
        assert (out / "logs" / name / "var_log_pacemaker" / "pacemaker.log").stat().st_size > 0


def test_full_three_nodes_mariadb_standby_and_vrrp(tmp_path):
    # The three scenarios `full` had before the fault scenarios; those are tested below.
    report = run_cluster(ClusterOptions(nodes=3, scenario="kill,standby,vrrp",
                                        output_dir=tmp_path / "out",
                                        cache_dir=CACHE, work_dir=tmp_path / "runs"))
    assert_passed(report, 3)
    assert report.workload == "mariadb"
    # stonith-action=reboot: the killed node was powered on again by its fencing.
    killed = report.failovers["kill"]["from"]
    assert [(e.node, e.action, e.result) for e in report.fencing_events] == [
        (killed, "off", "ok"), (killed, "on", "ok")]
    assert report.rejoin_s is not None and report.rejoin_s > report.kill_failover_s
    standby = report.failovers["standby"]
    assert standby["from"] != standby["to"]
    assert report.vrrp_failover_s is not None and report.vrrp_failover_s < 10
    assert report.peak_memory_mib and report.peak_memory_mib > 100
    assert_all_up(report, 3)
    assert_kill_seen(report, 3)
    # Fenced by reboot and back: CRITICAL, then OK again on every node.
    for step in ("after kill", "after standby", "after vrrp"):
        assert_all_up(report, 3, step)
    assert harness_leftovers(tmp_path / "runs") == []


def test_sigterm_mid_run_tears_everything_down(tmp_path):
    out = tmp_path / "out"
    script = (
        "import sys\n"
        "from builder.verify.cluster import ClusterOptions, run_cluster\n"
        f"run_cluster(ClusterOptions(nodes=2, scenario='short', output_dir={str(out)!r}, "
        f"cache_dir={str(CACHE)!r}, work_dir={str(tmp_path / 'runs')!r}))\n"
    )
    harness = Background([sys.executable, "-c", script], tmp_path / "harness.log")
    # Interrupt once the cluster is up and being configured: the worst moment to stop.
    report = terminate_when(harness, "crm configure load", out, tmp_path)
    assert report["ok"] is False
    assert report["steps"]["teardown"] == "ok"
    assert "interrupted" in report["error"]


def scenario_results(report) -> dict:
    return {r.name: r for r in report.scenarios}


def test_resource_failure_and_clean_restart_on_three_nodes(tmp_path):
    """Two fault scenarios that need no fencing (about a minute)."""
    report = run_cluster(ClusterOptions(nodes=3, scenario="resource-failure,restart-node",
                                        output_dir=tmp_path / "out", cache_dir=CACHE,
                                        work_dir=tmp_path / "runs"))
    assert report.ok, f"{report.error}: {report.steps}"
    results = scenario_results(report)
    assert list(results) == ["resource-failure", "restart-node"]
    assert all(r.state == "ok" and r.seconds > 0 for r in results.values())
    moved = report.failovers["resource-failure"]
    assert moved["from"] != moved["to"]
    assert report.fencing_events == []  # neither may fence anybody
    # The monitoring: a failed resource shows in fail_count and the check, and is gone
    # after the cleanup; a cleanly stopped node's check is UNKNOWN, the others CRITICAL.
    assert_all_up(report, 3)
    for step, count in (("resource-failure: restarted in place", 1),
                        ("resource-failure: moved", 2)):
        for row in rows(report, step).values():
            assert (row.nodes_online, row.fail_count, row.check) == (3, count, "WARNING"), row
            assert f"fail-counts: db on {moved['from']}={count}" in row.check_line
    for step in ("after resource-failure", "after restart-node"):
        assert_all_up(report, 3, step)
        assert all(not r.fail_count for r in rows(report, step).values())
    [stopped] = sorted({r.step for r in report.monitoring if r.step.startswith("restart-node: ")})
    node = stopped.split()[1]
    during = rows(report, stopped)
    assert (during[node].check, during[node].nodes_online) == ("UNKNOWN", None)
    assert during[node].exporter_rss_mib is not None  # its exporter still runs
    for name, row in during.items():
        if name != node:
            assert (row.nodes_online, row.check) == (2, "CRITICAL"), row
    assert harness_leftovers(tmp_path / "runs") == []


CTS = pytest.mark.skipif(os.environ.get("CLUSTERSTACK_TEST_CTS") != "1",
                         reason="set CLUSTERSTACK_TEST_CTS=1: every fault scenario, ~5 min")


@CTS
def test_every_fault_scenario_on_three_nodes(tmp_path):
    report = run_cluster(ClusterOptions(nodes=3, scenario="full", output_dir=tmp_path / "out",
                                        cache_dir=CACHE, work_dir=tmp_path / "runs"))
    assert report.ok, f"{report.error}: {report.steps}"
    results = scenario_results(report)
    assert len(results) >= 10 and all(r.state == "ok" for r in results.values())
    partition = results["partition"]
    assert partition.rows_written > 0 and partition.rows_lost == 0
    # Quorum lost: the last node's exporter says quorate 0, its check CRITICAL.
    [alone] = sorted({r.step for r in report.monitoring
                      if r.step.startswith("stop-one-by-one: ")})
    assert [(r.quorate, r.check) for r in rows(report, alone).values()
            if r.check != "UNKNOWN"] == [(0, "CRITICAL")]
    # The fence failure made failed attempts before the one that worked.
    assert any(e.result.startswith("failed") for e in report.fencing_events)
    assert harness_leftovers(tmp_path / "runs") == []


@CTS
def test_a_failed_scenario_does_not_stop_the_next(tmp_path, monkeypatch):
    def broken(ctx):
        raise faults.ScenarioError("broken on purpose")

    monkeypatch.setattr(faults, "SCENARIOS", (
        faults.Scenario("broken", "broken on purpose", 2, "nothing", broken),
        *faults.SCENARIOS))
    report = run_cluster(ClusterOptions(nodes=2, scenario="broken,restart-node",
                                        output_dir=tmp_path / "out", cache_dir=CACHE,
                                        work_dir=tmp_path / "runs"))
    assert not report.ok and report.error == "broken on purpose: broken on purpose"
    assert report.steps["recover before restart-node"] == "ok"
    assert [(r.name, r.state) for r in report.scenarios] == [
        ("broken", "failed: broken on purpose"), ("restart-node", "ok")]
    assert report.steps["teardown"] == "ok"
    assert harness_leftovers(tmp_path / "runs") == []


@CTS
def test_sigterm_mid_partition_tears_everything_down(tmp_path):
    out = tmp_path / "out"
    harness = Background([sys.executable, "-m", "builder.verify.cluster", "--scenario", "partition",
                          "--nodes", "3", "--output", str(out), "--cache-dir", str(CACHE),
                          "--work-dir", str(tmp_path / "runs")],
                         tmp_path / "harness.log")
    report = terminate_when(harness, "iptables -w -A OUTPUT", out, tmp_path)
    assert report["steps"]["teardown"] == "ok"
    assert report["steps"]["network partition 2|1"].startswith("interrupted")


@pytest.mark.skipif(os.environ.get("CLUSTERSTACK_TEST_PCS") != "1",
                    reason="set CLUSTERSTACK_TEST_PCS=1: builds a second node root, with pcs")
def test_short_configured_with_pcs(tmp_path):
    report = run_cluster(ClusterOptions(nodes=2, scenario="short", output_dir=tmp_path / "out",
                                        cache_dir=CACHE, work_dir=tmp_path / "runs",
                                        shell="pcs"))
    assert report.stack_shell == "pcs"
    assert_passed(report, 2)
    assert harness_leftovers(tmp_path / "runs") == []
