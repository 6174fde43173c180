"""Fast tests of the fault scenarios' registry, selection, errors and pure figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from builder.base.command import Runner
from builder.verify.cluster import config, faults, run_cluster
from builder.verify.cluster.fencing import FenceController, FenceTarget, agent_path
from builder.verify.cluster.options import ClusterOptions, ClusterReport, ScenarioResult
from builder.verify.cluster.report import percentile, repeat_table, summarize, table, write_repeat

ROOT = Path(__file__).resolve().parents[2]

# --- registry and selection ---------------------------------------------------------------


def test_registry_has_at_least_ten_distinct_scenarios():
    names = [s.name for s in faults.SCENARIOS]
    titles = [s.title for s in faults.SCENARIOS]
    assert len(names) >= 10
    assert len(set(names)) == len(names) and len(set(titles)) == len(titles)
    assert {"kill", "standby", "vrrp", "resource-failure", "partition",
            "fence-failure"} <= set(names)
    # A step title must not collide with the harness's own steps.
    assert not set(titles) & {"root", "stack shell", "prepare", "boot", "start daemons",
                              "formation", "service", "teardown"}
    assert all(s.min_nodes >= 2 and s.measures for s in faults.SCENARIOS)
    assert not any(n in ("short", "full") or "," in n for n in names)


def test_select_variants():
    short = faults.select("short", 2)
    assert short.workload == "dummy" and [s.name for s in short.scenarios] == ["kill"]
    full = faults.select("full", 3)
    assert full.workload == "mariadb" and full.scenarios == faults.SCENARIOS
    assert full.too_big == ()
    # full on two nodes leaves out what needs three, and says so.
    small = faults.select("full", 2)
    assert {s.name for s in small.too_big} == {s.name for s in faults.SCENARIOS
                                               if s.min_nodes > 2}
    assert set(small.scenarios) | set(small.too_big) == set(faults.SCENARIOS)


def test_select_names_in_order_without_repeats():
    chosen = faults.select(" partition, kill ,partition", 3)
    assert chosen.variant == "named" and chosen.workload == "mariadb"
    assert [s.name for s in chosen.scenarios] == ["partition", "kill"]


@pytest.mark.parametrize("text, nodes, words", [
    ("bogus", 3, ["unknown scenario 'bogus'", "resource-failure"]),
    ("kill,nope", 3, ["'nope'"]),
    ("partition", 2, ["partition needs 3 nodes", "--nodes is 2"]),
    ("kill,,standby", 3, ["comma-separated"]),
    ("", 3, ["expected short, full"]),
    ("short,kill", 3, ["'short'"]),
])
def test_select_errors_name_the_problem(text, nodes, words):
    with pytest.raises(faults.SelectionError) as info:
        faults.select(text, nodes)
    for word in words:
        assert word in str(info.value)


def test_run_cluster_refuses_a_bad_selection_before_anything_starts(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(faults.SelectionError):
        run_cluster(ClusterOptions(nodes=2, scenario="partition", output_dir=out,
                                   cache_dir=tmp_path / "cache"))
    assert not out.exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("argv, message", [
    (["--scenario", "bogus"], "unknown scenario 'bogus'"),
    (["--scenario", "partition", "--nodes", "2"], "partition needs 3 nodes"),
    (["--repeat", "0"], "--repeat must be at least 1"),
    (["--nodes", "1"], "nodes must be between 2 and 16"),
])
def test_cli_exits_2_with_one_error_line(tmp_path, argv, message):
    result = subprocess.run([sys.executable, "-m", "builder.verify.cluster", *argv,
                             "--output", str(tmp_path / "out"),
                             "--cache-dir", str(tmp_path / "cache")],
                            cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0]
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


# --- pure figures -----------------------------------------------------------------------


def test_percentile_interpolates_like_numpy():
    assert percentile([], 50) is None
    assert percentile([4.0], 95) == 4.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)
    assert percentile(list(map(float, range(1, 101))), 95) == pytest.approx(95.05)


def _report(ok: bool, formation: float | None, *results: ScenarioResult) -> ClusterReport:
    return ClusterReport(ok=ok, formation_s=formation, scenarios=list(results))


def test_summarize_counts_failures_and_skips_but_not_too_small_runs(tmp_path):
    reports = [
        _report(True, 6.0, ScenarioResult("kill", "ok", 5.0),
                ScenarioResult("partition", "ok", 7.0)),
        _report(False, 7.0, ScenarioResult("kill", "failed: timed out", None),
                ScenarioResult("partition", "skipped")),
        _report(True, 8.0, ScenarioResult("kill", "ok", 6.0),
                ScenarioResult("partition", "skipped (needs 3 nodes)")),
        _report(False, None),  # the root or the formation failed
    ]
    stats = {s.name: s for s in summarize(reports)}
    assert list(stats) == ["formation", "kill", "partition"]
    assert (stats["formation"].runs, stats["formation"].failures) == (4, 1)
    assert stats["formation"].p50 == 7.0
    assert (stats["kill"].runs, stats["kill"].failures, stats["kill"].seconds) == (3, 1,
                                                                                 [5.0, 6.0])
    assert stats["kill"].p50 == 5.5 and stats["kill"].p95 == pytest.approx(5.95)
    assert (stats["partition"].runs, stats["partition"].failures) == (2, 1)
    text = repeat_table(list(stats.values()), 4, 321.0)
    header, *rows, total = text.splitlines()
    assert header.split() == ["scenario", "runs", "failures", "p50", "p95"]
    assert rows[1].split()[:3] == ["kill", "3", "1"] and "5.5 s" in rows[1]
    assert total == "repeats 4, scenario failures 3, wall time 321 s"
    path = write_repeat(list(stats.values()), 4, 321.0, reports, tmp_path)
    data = json.loads(path.read_text())
    assert data["failures"] == 3 and data["passed_runs"] == 2
    assert data["scenarios"][1] == {"name": "kill", "runs": 3, "failures": 1, "p50_s": 5.5,
                                    "p95_s": pytest.approx(5.95), "seconds": [5.0, 6.0]}


def test_report_table_lists_new_scenarios_with_figure_or_state():
    report = ClusterReport(ok=False, scenarios=[
        ScenarioResult("kill", "ok", 5.0),
        ScenarioResult("partition", "ok", 7.46, detail="minority node2 fenced"),
        ScenarioResult("fence-failure", "failed: timed out"),
    ])
    text = table(report)
    assert "scenario kill" not in text  # shown as "fail-over, node killed"
    rows = dict(line.split("  ", 1) for line in text.splitlines())
    assert rows["scenario partition"].strip() == "7.5 s  (minority node2 fenced)"
    assert rows["scenario fence-failure"].strip() == "failed: timed out"


def test_writer_log_and_row_accounting():
    log = ("1 100.0 node2\n2 100.5 node2\n3 101.0 -\n4 103.0 -\n5 104.0 node3\n"
           "garbage\n6 104.5 node3\n")
    attempted, acks = faults.parse_writer_log(log)
    assert attempted == 6 and [a.row for a in acks] == [1, 2, 5, 6]
    account = faults.account_rows(attempted, acks, stored={1, 2, 3, 5, 6})
    assert account.lost == [] and account.acknowledged == 4 and not account.interleaved
    assert account.servers == [("node2", 100.0, 100.5), ("node3", 104.0, 104.5)]
    # An acknowledged row missing after the heal is lost; an unacknowledged one is not.
    assert faults.account_rows(attempted, acks, stored={1, 5, 6}).lost == [2]
    # node2 answering again after node3 did: two servers at once.
    _, split = faults.parse_writer_log("1 1.0 node2\n2 2.0 node3\n3 3.0 node2\n")
    assert faults.account_rows(3, split, {1, 2, 3}).interleaved


def test_writer_script_is_valid_shell():
    script = faults.writer_script("192.0.2.100")
    assert subprocess.run(["sh", "-n", "-c", script]).returncode == 0
    assert "192.0.2.100" in script and "INSERT INTO writes" in script


@pytest.mark.parametrize("text, value", [
    ("scope=status  name=fail-count-db value=1\n", 1),
    ("scope=status  name=fail-count-db value=0\n", 0),
    ("scope=status  name=fail-count-db value=INFINITY\n", float("inf")),
    ("", 0),
])
def test_parse_failcount(text, value):
    assert faults.parse_failcount(text) == value


# --- the fence device can be broken and repaired -------------------------------------------


def test_broken_fence_device_fails_until_repaired(tmp_path):
    ctl = FenceController(tmp_path / "fence")
    state = {"on": True}
    ctl.add(FenceTarget("node1", lambda: state["on"], lambda: state.update(on=False)))
    ctl.start()
    agent = ["python3", str(agent_path())]
    stdin = f"action=off\nport=node1\nsocket={ctl.socket_path}\n"
    try:
        ctl.break_device()
        broken = Runner().run(agent, check=False, input=stdin, timeout=30)
        assert broken.returncode == 1 and state["on"] is True
        ctl.repair_device()
        fixed = Runner().run(agent, check=False, input=stdin, timeout=30)
        assert fixed.returncode == 0 and state["on"] is False
    finally:
        ctl.stop()
    assert [e.result.split(":")[0] for e in ctl.events] == ["failed", "ok"]


# --- the qnetd pair -----------------------------------------------------------------------


def test_qnetd_root_packages_only_when_selected():
    assert faults.select("kill,partition", 3).packages == ()
    assert faults.select("short", 2).packages == ()
    assert faults.select("qnetd", 2).packages == ("corosync-qdevice", "corosync-qnetd")
    assert faults.select("full", 3).packages == ("corosync-qdevice", "corosync-qnetd")


def test_corosync_conf_with_qdevice_has_no_two_node():
    text = config.corosync_conf([("node1", "198.51.100.1"), ("node2", "198.51.100.2")],
                                qdevice_host="198.51.100.200")
    assert "two_node" not in text
    quorum = text[text.index("quorum {"):text.index("logging {")]
    for line in ("model: net", "votes: 1", "host: 198.51.100.200", "algorithm: ffsplit",
                 "tie_breaker: lowest", "tls: off"):
        assert f"\t{line}\n" in quorum
    assert "two_node: 1" in config.corosync_conf([("a", "192.0.2.1"), ("b", "192.0.2.2")])
