"""The monitoring observation of the cluster harness, without a cluster (monitoring.py).

Real inputs: /metrics texts of ha_cluster_exporter 1.4.0 scraped in a harness run, the
ring metrics our patched build exports for the real corosync-cfgtool captures, Debian's
ha_cluster_exporter.service and our drop-in, check_pacemaker itself on Pacemaker's
crm_mon XML (tests/cluster/data/SOURCES, tests/monitoring/data/SOURCES).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from builder.base.serve import serve
from builder.verify.cluster import monitoring
from builder.verify.cluster.monitoring import (
    CheckOutputError,
    CheckState,
    Expect,
    FailCount,
    MetricsError,
    Monitor,
    MonitoringError,
    NodeLook,
    Ring,
    Rings,
    exporter_service,
    exporter_view,
    judge,
    launcher_script,
    parse_check,
    parse_metrics,
    parse_probe,
)
from builder.verify.cluster.node import script_path
from builder.verify.cluster.options import ClusterReport, MonitorRow
from builder.verify.cluster.report import table
from builder.verify.cluster.rootfs import RootSpec

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
CRM_MON = ROOT / "tests" / "monitoring" / "data" / "pacemaker-3.0"
CHECK = ROOT / "monitoring" / "check_pacemaker"
DROPIN = ROOT / "monitoring" / "prometheus-hacluster-exporter" / "debian.conf"
THREE = frozenset({"node1", "node2", "node3"})


def metrics(name: str, rings: str | None = None) -> monitoring.ExporterView:
    return exporter_view(parse_metrics(scrape_text(name, rings)))


RING_ERRORS = re.compile(r"(?m)^(# (HELP|TYPE) )?ha_cluster_corosync_ring_errors\b.*\n")


def scrape_text(name: str, rings: str | None = None) -> str:
    """A harness scrape of Debian's exporter; with `rings`, its corosync ring metrics
    replaced by what our build exports for the same moment's corosync-cfgtool -s."""
    text = (DATA / name).read_text()
    if rings is None:
        return text
    return RING_ERRORS.sub("", text) + (DATA / rings).read_text()


OURS_UP = "exporter-ours-rings-all-up.prom"
OURS_DOWN = "exporter-ours-rings-peer-down.prom"


# --- Prometheus' text format ------------------------------------------------------------


def test_parse_metrics_reads_labels_escapes_and_special_values():
    text = ('# HELP x help text\n# TYPE x gauge\n'
            'x{a="1",b="with \\"quotes\\" and \\\\ and \\n"} 2.5\n'
            'y +Inf\nz{a="",} NaN 1700000000000\nw -1e3\n')
    samples = parse_metrics(text).samples
    assert [s.name for s in samples] == ["x", "y", "z", "w"]
    assert samples[0].labels == (("a", "1"), ("b", 'with "quotes" and \\ and \n'))
    assert samples[0].value == 2.5
    assert math.isinf(samples[1].value) and math.isnan(samples[2].value)
    assert samples[3].value == -1000


@pytest.mark.parametrize(("text", "why"), [
    ("x{a=1} 2\n", r"line 1: cannot read the labels"),
    ("ok 1\nx 1 2 3\n", r"line 2: not a sample"),
    ("x{a=\"1\" b=\"2\"} 1\n", r"expected ','"),
    ("x one\n", r"'one' is no number"),
    ("<html>404</html>\n", r"line 1: not a sample"),
])
def test_parse_metrics_names_the_bad_line(text, why):
    with pytest.raises(MetricsError, match=why):
        parse_metrics(text)


# --- the exporter's metrics, as scraped on the cluster ----------------------------------


def test_all_up_three_nodes_online_and_quorate():
    view = metrics("exporter-all-up.prom")
    assert view.nodes == ("node1", "node2", "node3")
    assert view.online == ("node1", "node2", "node3") and view.nodes_online == 3
    assert view.unclean == ()
    assert view.quorate == 1
    assert view.collector_ok("pacemaker") is True and view.collector_ok("corosync") is True
    assert view.max_fail_count == 0


def test_killed_node_seen_down_by_a_survivor():
    view = metrics("exporter-kill.prom")
    assert view.nodes_online == 2 and len(view.online) == 2
    down = set(view.nodes) - set(view.online)
    assert len(down) == 1
    assert view.quorate == 1


def test_fail_count_of_the_database():
    view = metrics("exporter-fail-count.prom")
    counted = [f for f in view.fail_counts if f.count]
    assert [(f.resource, f.count) for f in counted] == [("db", 1)]
    assert view.fail_count(counted[0].node, "db") == 1
    assert view.max_fail_count == 1


def test_pacemaker_stopped_no_node_metrics_and_collector_failed():
    view = metrics("exporter-pacemaker-down.prom")
    assert view.nodes == () and view.nodes_online is None
    assert view.collector_ok("pacemaker") is False
    assert view.collector_ok("corosync") is False and view.quorate is None


def test_quorum_lost_quorate_zero():
    view = metrics("exporter-no-quorum.prom")
    assert view.quorate == 0
    assert view.nodes_online == 1


def test_parse_cfgtool_reads_corosync_3_links():
    [link] = monitoring.parse_cfgtool((DATA / "corosync-cfgtool-s.txt").read_text())
    assert (link.number, link.address, link.down) == ("0", "192.0.2.1", ())
    assert link.peers == (("1", "localhost"), ("2", "connected"), ("3", "connected"))
    [cut] = monitoring.parse_cfgtool((DATA / "corosync-cfgtool-s-peer-down.txt").read_text())
    assert cut.down == ("2",)
    assert monitoring.parse_cfgtool("Could not initialize corosync configuration API\n") == ()


def test_corosync_3_links_are_not_seen_by_the_exporter():
    """The finding of issue 18: ha_cluster_exporter 1.4.0's ring regex expects
    `RING ID n`/`Link ID n` followed by `status = ...`; corosync 3.1 prints `LINK ID n
    udp` and a `status:` block per node, so no ring is ever exported and
    ring_errors is always 0, also with a peer's link down."""
    view = metrics("exporter-kill.prom")
    assert view.rings == () and view.ring_errors == 0
    cfgtool = (DATA / "corosync-cfgtool-s-peer-down.txt").read_text()
    assert "disconnected" in cfgtool
    assert monitoring.EXPORTER_RING_RE.search(cfgtool) is None
    # What it was written for (corosync 2.99, from the exporter's own comment) it reads.
    old = "Link ID 0\n\taddr\t= 192.168.125.15\n\tstatus\t= ring 0 active with no faults\n"
    assert monitoring.EXPORTER_RING_RE.search(old).group("address") == "192.168.125.15"


# --- check_pacemaker's output -----------------------------------------------------------


def run_check(xml: Path) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, str(CHECK), "--xml-file", str(xml)],
                          capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout


@pytest.mark.parametrize(("xml", "state"), [
    ("exp-basic.xml", CheckState.OK),
    ("quorum-4.xml", CheckState.CRITICAL),
    ("standby.xml", CheckState.WARNING),
    ("failcount.xml", CheckState.WARNING),
    ("pacemaker-down.xml", CheckState.UNKNOWN),
])
def test_parse_check_on_the_real_plugin(xml, state):
    returncode, stdout = run_check(CRM_MON / xml)
    result = parse_check(returncode, stdout)
    assert result.state == state
    assert result.line.startswith(f"PACEMAKER {state.name} - ")
    if state != CheckState.UNKNOWN:
        assert result.perf("nodes_online") is not None
        assert "|" not in result.line


@pytest.mark.parametrize(("returncode", "stdout", "why"), [
    (4, "PACEMAKER OK - fine\n", r"exit status 4 is no plugin state"),
    (None, "", r"exit status None"),
    (0, "", r"not 'PACEMAKER STATE"),
    (2, "Traceback (most recent call last):\n", r"not 'PACEMAKER STATE"),
    (1, "PACEMAKER OK - 3/3 nodes online\n", r"says OK but exited 1"),
    (0, "PACEMAKER OK - x | 'nodes_online'=three\n", r"perfdata item"),
])
def test_parse_check_rejects_what_the_plugin_api_forbids(returncode, stdout, why):
    with pytest.raises(CheckOutputError, match=why):
        parse_check(returncode, stdout)


# --- judging one look -------------------------------------------------------------------


def look(view_file: str | None, state: CheckState, line: str = "", rss: int | None = 20480,
         error: str | None = None, rings: str | None = None) -> NodeLook:
    text = scrape_text(view_file, rings) if view_file else ""
    view = exporter_view(parse_metrics(text)) if view_file and error is None else None
    return NodeLook("node1", "http://192.0.2.1:9664/metrics", 80.0, error, rss, view,
                    monitoring.CheckResult(state, f"PACEMAKER {state.name} - {line}", ()),
                    120.0, text)


ALL_OK = Expect(THREE, frozenset({CheckState.OK}), no_fail_counts=True)


def test_judge_all_up_is_right():
    assert judge(look("exporter-all-up.prom", CheckState.OK, "3/3 nodes online"), ALL_OK) == []


def test_judge_names_each_wrong_thing():
    problems = judge(look("exporter-kill.prom", CheckState.OK, "3/3 nodes online"),
                     Expect(THREE, frozenset({CheckState.CRITICAL}), ("nodes offline",)))
    text = "; ".join(problems)
    assert 'ha_cluster_pacemaker_nodes{status="online"} sums to 2' in text
    assert "expected 3 (node1, node2, node3)" in text
    assert "check_pacemaker is OK, expected CRITICAL" in text
    assert "does not say 'nodes offline'" in text


def test_judge_quorum_and_fail_counts():
    wrong = judge(look("exporter-all-up.prom", CheckState.WARNING, "x"), Expect(
        THREE, frozenset({CheckState.WARNING}), quorate=0,
        fail_counts=(FailCount("node2", "db", 1),)))
    assert any("ha_cluster_corosync_quorate is 1, expected 0" in p for p in wrong)
    assert any('fail_count{node="node2",resource="db"} is 0, expected 1' in p for p in wrong)
    view = metrics("exporter-fail-count.prom")
    owner = next(f.node for f in view.fail_counts if f.count)
    assert judge(look("exporter-fail-count.prom", CheckState.OK), ALL_OK) == [
        f"ha_cluster_pacemaker_fail_count is not 0: db on {owner}=1"]


def test_judge_a_stopped_pacemaker_must_not_leave_stale_nodes():
    down = Expect(None, frozenset({CheckState.UNKNOWN}), quorate=None, pacemaker_down=True)
    assert judge(look("exporter-pacemaker-down.prom", CheckState.UNKNOWN), down) == []
    stale = judge(look("exporter-all-up.prom", CheckState.UNKNOWN), down)
    assert any("pacemaker is stopped, yet the exporter lists nodes" in p for p in stale)


def test_judge_an_exporter_that_does_not_answer_or_run():
    problems = judge(look("exporter-all-up.prom", CheckState.OK, rss=None,
                          error="URLError: [Errno 111] Connection refused"), ALL_OK)
    assert problems == [
        "no ha_cluster_exporter process runs",
        "the exporter at http://192.0.2.1:9664/metrics did not answer: "
        "URLError: [Errno 111] Connection refused"]


# --- the probe ----------------------------------------------------------------------------


def test_parse_probe_errors_name_the_problem():
    good_check = {"returncode": 0, "stdout": "PACEMAKER OK - fine\n", "ms": 3.0, "error": None}
    with pytest.raises(ValueError, match="not its JSON"):
        parse_probe("node1", "u", "Traceback ...", "")
    with pytest.raises(CheckOutputError, match="could not run: FileNotFoundError"):
        parse_probe("node1", "u", json.dumps({
            "scrape": {}, "exporters": [],
            "check": {"error": "FileNotFoundError: check_pacemaker"}}), "")
    with pytest.raises(ValueError, match="2 ha_cluster_exporter processes"):
        parse_probe("node1", "u", json.dumps({
            "scrape": {"status": 200, "error": None, "ms": 1},
            "exporters": [{"pid": 5, "rss_kib": 1}, {"pid": 6, "rss_kib": 1}],
            "check": good_check}), "")
    seen = parse_probe("node1", "u", json.dumps({
        "scrape": {"status": 200, "error": None, "ms": 1}, "exporters": [],
        "check": good_check}), "<html>not metrics</html>\n")
    assert seen.scrape_error and "not Prometheus' text format" in seen.scrape_error
    assert seen.view is None and seen.exporter_rss_kib is None


def fake_check(tmp_path: Path, body: str, status: int) -> Path:
    check = tmp_path / "check"
    check.write_text(f"#!/bin/sh\nprintf '%s\\n' {body!r}\nexit {status}\n")
    check.chmod(0o755)
    return check


def run_probe(url: str, body_file: Path, check: Path) -> NodeLook:
    proc = subprocess.run([sys.executable, str(script_path("monitoring-probe")), url,
                           str(body_file), str(check)], capture_output=True, text=True,
                          check=True, timeout=60)
    return parse_probe("node1", url, proc.stdout, body_file.read_text())


def test_the_probe_scrapes_and_checks(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "metrics").write_text((DATA / "exporter-all-up.prom").read_text())
    check = fake_check(tmp_path, "PACEMAKER OK - 3/3 nodes online | 'nodes_online'=3;;;0;3", 0)
    with serve(site) as url:
        seen = run_probe(f"{url}/metrics", tmp_path / "body", check)
        missing = run_probe(f"{url}/nothing", tmp_path / "body", check)
    assert seen.scrape_error is None and seen.view is not None
    assert seen.view.nodes_online == 3 and seen.scrape_ms > 0
    assert seen.check.state == CheckState.OK and seen.check.perf("nodes_online") == 3
    assert seen.exporter_rss_kib is None  # no exporter runs on this host
    assert missing.scrape_error is not None and "404" in missing.scrape_error


def test_the_probe_reports_a_refused_connection(tmp_path):
    check = fake_check(tmp_path, "PACEMAKER CRITICAL - nodes offline: node2", 2)
    with serve(tmp_path) as url:
        port = url.rsplit(":", 1)[1]
    seen = run_probe(f"http://127.0.0.1:{port}/metrics", tmp_path / "body", check)
    assert seen.view is None and "Connection refused" in (seen.scrape_error or "")
    assert seen.check.state == CheckState.CRITICAL


# --- the exporter's unit, as the script tier's init starts it ----------------------------


def root_with_units(tmp_path: Path, dropin: bool) -> Path:
    units = tmp_path / "usr/lib/systemd/system"
    units.mkdir(parents=True)
    (units / "ha_cluster_exporter.service").write_text(
        (DATA / "ha_cluster_exporter.service").read_text())
    if dropin:
        (units / "ha_cluster_exporter.service.d").mkdir()
        (units / "ha_cluster_exporter.service.d/debian.conf").write_text(DROPIN.read_text())
    return tmp_path


def test_debian_unit_alone_reads_the_suse_path(tmp_path):
    service = exporter_service(root_with_units(tmp_path, dropin=False))
    assert service is not None
    assert service.environment_files == ("-/etc/sysconfig/prometheus-ha_cluster_exporter",)
    assert service.exec_start == "/usr/bin/ha_cluster_exporter $ARGS"


def test_our_dropin_replaces_the_start_command(tmp_path):
    root = root_with_units(tmp_path, dropin=True)
    service = exporter_service(root)
    assert service is not None
    assert service.dropins == ("/usr/lib/systemd/system/ha_cluster_exporter.service.d/debian.conf",)
    assert service.environment_files == ("-/etc/sysconfig/prometheus-ha_cluster_exporter",
                                         "-/etc/default/prometheus-hacluster-exporter")
    assert service.exec_start == ("/usr/libexec/prometheus-hacluster-exporter-debian/"
                                  "ha_cluster_exporter-start $ARGS")
    # An administrator's drop-in of the same name in /etc wins over the package's.
    local = root / "etc/systemd/system/ha_cluster_exporter.service.d"
    local.mkdir(parents=True)
    (local / "debian.conf").write_text("[Service]\nExecStart=\nExecStart=/bin/true\n")
    assert exporter_service(root).exec_start == "/bin/true"


def test_no_unit_is_none_and_two_starts_an_error(tmp_path):
    assert exporter_service(tmp_path) is None
    root = root_with_units(tmp_path, dropin=False)
    extra = root / "usr/lib/systemd/system/ha_cluster_exporter.service.d"
    extra.mkdir()
    (extra / "x.conf").write_text("[Service]\nExecStart=/bin/false\n")
    with pytest.raises(MonitoringError, match="2 ExecStart= lines"):
        exporter_service(root)


def test_launcher_sources_the_environment_and_splits_args(tmp_path):
    env = tmp_path / "default"
    env.write_text('# comment\nARGS="--web.listen-address=:9 --log.level=warn"\n')
    printer = tmp_path / "printargs"
    printer.write_text('#!/bin/sh\nfor a in "$@"; do echo "[$a]"; done\n')
    printer.chmod(0o755)
    service = monitoring.ServiceCommand("/u", (), (f"-{tmp_path}/missing", str(env)),
                                        f"-{printer} $ARGS ${{ARGS}}")
    script = tmp_path / "launcher"
    script.write_text(launcher_script(service))
    out = subprocess.run(["sh", str(script)], capture_output=True, text=True, check=True).stdout
    # $ARGS split into words, ${ARGS} one word: systemd's rules.
    assert out.splitlines() == ["[--web.listen-address=:9]", "[--log.level=warn]",
                                "[--web.listen-address=:9 --log.level=warn]"]
    required = monitoring.ServiceCommand("/u", (), (f"{tmp_path}/missing",), "/bin/true")
    script.write_text(launcher_script(required))
    assert subprocess.run(["sh", str(script)], capture_output=True, check=False).returncode != 0


class RecordingNode:
    def __init__(self, name: str) -> None:
        self.name = name
        self.files: dict[str, tuple[bytes, int]] = {}

    def write(self, path: str, text: str | bytes, mode: int = 0o644) -> None:
        self.files[path] = (text.encode() if isinstance(text, str) else text, mode)


class RootOnly:
    """What install() needs of a cluster: its root and its nodes."""

    def __init__(self, lower: Path) -> None:
        self.lower = lower
        self.nodes = [RecordingNode("node1"), RecordingNode("node2")]


def test_install_writes_launcher_probe_and_the_check_from_source(tmp_path):
    root = root_with_units(tmp_path, dropin=True)
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/ha_cluster_exporter").write_bytes(b"")
    cluster = RootOnly(root)
    monitor = Monitor(cluster)  # type: ignore[arg-type]
    monitor.install()
    assert monitor.check_path == monitoring.CHECK_LOCAL
    assert monitor.notes and monitor.notes[0].startswith("monitoring-check-from-source")
    assert monitor.tools[0].endswith("ha_cluster_exporter-start $ARGS")
    for node in cluster.nodes:
        launcher, mode = node.files[monitoring.LAUNCHER]
        assert mode == 0o755 and b"exec /usr/libexec/prometheus-hacluster-exporter-debian/" \
            b"ha_cluster_exporter-start $ARGS" in launcher
        assert node.files[monitoring.CHECK_LOCAL][0] == CHECK.read_bytes()
        assert monitoring.PROBE in node.files
    # With the package the packaged check runs, and nothing is copied.
    (root / "usr/lib/nagios/plugins").mkdir(parents=True)
    (root / "usr/lib/nagios/plugins/check_pacemaker").write_bytes(b"")
    packaged = Monitor(RootOnly(root))  # type: ignore[arg-type]
    packaged.install()
    assert packaged.check_path == monitoring.CHECK and packaged.notes == []
    assert monitoring.CHECK_LOCAL not in packaged.cluster.nodes[0].files


def test_install_without_the_exporter_is_one_error(tmp_path):
    with pytest.raises(MonitoringError, match="no /usr/bin/ha_cluster_exporter"):
        Monitor(RootOnly(tmp_path)).install()  # type: ignore[arg-type]


def test_the_script_tier_root_has_the_monitoring_packages():
    stock = RootSpec("trixie", "http://deb.debian.org/debian").packages
    assert "prometheus-hacluster-exporter" in stock
    ours = RootSpec("trixie", "http://deb.debian.org/debian",
                    ("deb [signed-by=/k.gpg] http://127.0.0.1:1/ trixie main",)).packages
    assert {"prometheus-hacluster-exporter-debian", "monitoring-plugins-pacemaker"} <= set(ours)


# --- the kill watch and the report --------------------------------------------------------


class FakeNode:
    def __init__(self, name: str) -> None:
        self.name = name
        self.address = "192.0.2.9"


class ScriptedMonitor(Monitor):
    """look() replays a script of views per node, as the survivors would see a kill;
    the n-th look's scrape ends n seconds, its check n + 0.5 s, after `started`."""

    def __init__(self, script: dict[str, list[tuple]], started: float) -> None:
        super().__init__(cluster=None)  # type: ignore[arg-type]
        self.script = script
        self.started = started
        self.count = 0
        self.lock = threading.Lock()

    def look(self, node):
        with self.lock:
            steps = self.script[node.name]
            view_file, state, *rings = steps.pop(0) if len(steps) > 1 else steps[0]
            self.count += 1
            at = self.started + self.count
        return dataclasses.replace(look(view_file, state, rings=rings[0] if rings else None),
                                   scraped_at=at, checked_at=at + 0.5)


VICTIM = "node2"  # the node killed in exporter-kill.prom


def test_down_watch_times_the_exporter_and_the_check():
    started = time.monotonic()
    monitor = ScriptedMonitor({
        "node1": [("exporter-all-up.prom", CheckState.OK),
                  ("exporter-kill.prom", CheckState.OK),
                  ("exporter-kill.prom", CheckState.CRITICAL)]}, started)
    assert VICTIM not in metrics("exporter-kill.prom").online
    watch = monitoring.DownWatch(monitor, VICTIM, [FakeNode("node1")], started, 10)
    watch.start()
    [seen] = watch.finish("kill")
    # The second scrape no longer counted it online, the third check was CRITICAL.
    assert (seen.exporter_s, seen.check_s) == (2, 3.5)
    assert (seen.exporter_before_s, seen.check_before_s) == (1, 2.5)
    [row] = monitor.rows
    assert (row.step, row.check, row.seen_s, row.check_s) == ("kill", "CRITICAL", 2, 3.5)


def test_down_watch_fails_when_the_check_never_goes_critical():
    started = time.monotonic()
    monitor = ScriptedMonitor({"node1": [("exporter-kill.prom", CheckState.WARNING)]},
                              started)
    watch = monitoring.DownWatch(monitor, VICTIM, [FakeNode("node1")], started, 0.5)
    watch.start()
    with pytest.raises(MonitoringError, match="not CRITICAL within 0 s of the kill"):
        watch.finish("kill")


def test_report_has_the_monitoring_table(tmp_path):
    rows = [MonitorRow("all up", "node1", 3, 1, None, 0, 0, "OK",
                       "PACEMAKER OK - 3/3 nodes online", 85.0, 120.0, 21.5),
            MonitorRow("kill: node2 down", "node1", 2, 1, None, 0, 0, "CRITICAL",
                       "PACEMAKER CRITICAL - nodes unclean: node2", 95.0, 130.0, 22.0,
                       seen_s=2.1, check_s=2.3),
            MonitorRow("restart", "node3", None, None, None, None, 0, "UNKNOWN",
                       "PACEMAKER UNKNOWN - pacemaker is not running", 40.0, 90.0, 21.0)]
    report = ClusterReport(ok=True, monitoring=rows,
                           monitoring_tools=["exporter: /usr/lib/...", "check: /usr/lib/x"])
    text = table(report)
    assert "exporter scrape" in text and "over 3 scrapes" in text
    assert "node1 22.0 MiB, node3 21.0 MiB" in text
    assert "kill until exporter shows it  node1 2.1 s" in text
    assert "kill until check CRITICAL     node1 2.3 s" in text
    grid = text.split("monitoring: every node's", 1)[1]
    assert "2.1 s/2.3 s" in grid and "PACEMAKER UNKNOWN - pacemaker is not running" in grid


# --- the ring metrics of our exporter (corosync 3's links) --------------------------------


def test_our_exporter_exports_corosync_3_links():
    up = metrics("exporter-all-up.prom", OURS_UP)
    assert up.rings == (Ring("0", "192.0.2.1", True),) and up.ring_errors == 0
    down = metrics("exporter-kill.prom", OURS_DOWN)
    assert down.rings == (Ring("0", "192.0.2.1", False),) and down.ring_errors == 1
    # The rest of the scrape is the harness's own, unchanged.
    assert down.online == ("node1", "node3") and down.quorate == 1


def test_our_exporter_in_a_harness_run_reads_the_links():
    """Real scrapes of our build in the namespace tier: all up, and node1 while node2 is
    killed (corosync-cfgtool showed node2 disconnected)."""
    up = metrics("exporter-ours-all-up.prom")
    assert up.rings == (Ring("0", "192.0.2.1", True),) and up.ring_errors == 0
    assert up.online == tuple(sorted(THREE))
    down = metrics("exporter-ours-kill.prom")
    assert down.rings == (Ring("0", "192.0.2.1", False),) and down.ring_errors == 1
    assert down.online == ("node1", "node3")
    peers = parse_metrics((DATA / "exporter-ours-kill.prom").read_text()).named(
        "ha_cluster_corosync_link_peer_connected")
    assert [(p.label("peer_node_id"), p.value) for p in peers] == [("2", 0.0), ("3", 1.0)]
    kill = dataclasses.replace(ALL_OK, online=frozenset({"node1", "node3"}),
                               check=frozenset({CheckState.CRITICAL}), rings=Rings.PEER_DOWN)
    assert judge(look("exporter-ours-kill.prom", CheckState.CRITICAL), kill) == []


def test_judge_requires_the_rings_when_asked():
    healthy = dataclasses.replace(ALL_OK, rings=Rings.HEALTHY)
    assert judge(look("exporter-all-up.prom", CheckState.OK, rings=OURS_UP), healthy) == []
    # Debian's exporter: no ring at all.
    assert judge(look("exporter-all-up.prom", CheckState.OK), healthy) == [
        "no ha_cluster_corosync_rings sample: the exporter did not read corosync's links"]
    # All up, yet a link is down.
    assert judge(look("exporter-all-up.prom", CheckState.OK, rings=OURS_DOWN), healthy) == [
        "ha_cluster_corosync_ring_errors is 1, expected 0 with every node up "
        "(faulty rings: 0 (192.0.2.1))"]


def test_judge_a_peer_down_needs_ring_errors():
    down = Expect(frozenset({"node1", "node3"}), frozenset({CheckState.CRITICAL}),
                  rings=Rings.PEER_DOWN)
    assert judge(look("exporter-kill.prom", CheckState.CRITICAL, rings=OURS_DOWN), down) == []
    assert judge(look("exporter-kill.prom", CheckState.CRITICAL, rings=OURS_UP), down) == [
        "ha_cluster_corosync_ring_errors is 0 while a node of the cluster is down"]


class Nodes:
    """What settled() needs of a cluster: its nodes and which of them are live."""

    def __init__(self, live: list[str], down: list[str]) -> None:
        self.nodes = [FakeNode(n) for n in live + down]
        self._live = [n for n in self.nodes if n.name in live]

    def live_nodes(self) -> list[FakeNode]:
        return self._live


def test_settled_wants_healthy_rings_or_a_peer_down():
    node = FakeNode("node1")
    assert monitoring.settled(Nodes(["node1", "node2"], []))(node).rings is Rings.HEALTHY
    off = monitoring.settled(Nodes(["node1"], ["node2"]))(node)  # fenced off for good
    assert off.rings is Rings.PEER_DOWN and off.check_says == ("nodes offline: node2",)


class ObservedMonitor(Monitor):
    """observe() on one canned look per node."""

    def __init__(self, cluster: Nodes, looks: dict[str, NodeLook], ring_metrics: bool) -> None:
        super().__init__(cluster=cluster, ring_metrics=ring_metrics)  # type: ignore[arg-type]
        self.looks = looks

    def look(self, node):
        return self.looks[node.name]


def test_observe_judges_the_rings_only_of_an_exporter_that_reads_links():
    cluster = Nodes(["node1"], [])
    debian = {"node1": look("exporter-all-up.prom", CheckState.OK)}
    ours = {"node1": look("exporter-all-up.prom", CheckState.OK, rings=OURS_UP)}
    three = lambda node: dataclasses.replace(ALL_OK, rings=Rings.HEALTHY)  # noqa: E731
    ObservedMonitor(cluster, debian, ring_metrics=False).observe("all up", three)
    ObservedMonitor(cluster, ours, ring_metrics=True).observe("all up", three)
    with pytest.raises(MonitoringError, match="node1: no ha_cluster_corosync_rings sample"):
        ObservedMonitor(cluster, debian, ring_metrics=True).observe("all up", three)


DPKG_STATUS = """Package: libc6
Status: install ok installed
Version: 2.41-12

Package: prometheus-hacluster-exporter
Status: install ok installed
Architecture: amd64
Version: {version}
Description: Prometheus exporter for HA cluster services
 Version: not this one
"""


def test_install_tells_our_exporter_from_debians(tmp_path):
    root = root_with_units(tmp_path, dropin=True)
    (root / "usr/bin").mkdir(parents=True)
    (root / "var/lib/dpkg").mkdir(parents=True)
    binary = root / "usr/bin/ha_cluster_exporter"
    (root / "var/lib/dpkg/status").write_text(DPKG_STATUS.format(version="1.4.0-1+b5"))
    binary.write_bytes(b"\x7fELF...ring_errorsThe total number of faulty corosync rings...")
    debian = Monitor(RootOnly(root))  # type: ignore[arg-type]
    debian.install()
    assert not debian.ring_metrics
    assert "prometheus-hacluster-exporter 1.4.0-1+b5, reads only corosync 2's rings" \
        in debian.tools[1]
    (root / "var/lib/dpkg/status").write_text(DPKG_STATUS.format(version="1.4.0-2+cluster13"))
    binary.write_bytes(b"\x7fELF...ring_errors...link_peer_connectedWhether each other...")
    ours = Monitor(RootOnly(root))  # type: ignore[arg-type]
    ours.install()
    assert ours.ring_metrics
    assert "prometheus-hacluster-exporter 1.4.0-2+cluster13, reads corosync 3's links" \
        in ours.tools[1]


def test_down_watch_waits_for_ring_errors_with_our_exporter():
    started = time.monotonic()
    monitor = ScriptedMonitor({
        "node1": [("exporter-all-up.prom", CheckState.OK, OURS_UP),
                  ("exporter-kill.prom", CheckState.CRITICAL, OURS_UP),
                  ("exporter-kill.prom", CheckState.CRITICAL, OURS_DOWN)]}, started)
    monitor.ring_metrics = True
    watch = monitoring.DownWatch(monitor, VICTIM, [FakeNode("node1")], started, 10)
    watch.start()
    [seen] = watch.finish("kill")
    assert (seen.exporter_s, seen.check_s, seen.ring_s, seen.ring_before_s) == (2, 2.5, 3, 2)
    [row] = monitor.rows
    assert (row.ring_errors, row.rings, row.ring_s) == (1, 1, 3)


def test_down_watch_fails_when_ring_errors_stay_zero():
    started = time.monotonic()
    monitor = ScriptedMonitor({"node1": [("exporter-kill.prom", CheckState.CRITICAL,
                                          OURS_UP)]}, started)
    monitor.ring_metrics = True
    watch = monitoring.DownWatch(monitor, VICTIM, [FakeNode("node1")], started, 0.5)
    watch.start()
    with pytest.raises(MonitoringError, match=r"ring_errors stayed 0 for 0 s after the kill "
                       r"of node2 \(1 ring\(s\), ring_errors 0\)"):
        watch.finish("kill")


def row(step: str, rings: int, ring_errors: int, links_down: int, **extra) -> MonitorRow:
    return MonitorRow(step, "node1", 3, 1, None, ring_errors, rings, "OK", "PACEMAKER OK - x",
                      80.0, 100.0, 20.0, links=1, links_down=links_down, **extra)


def test_report_names_the_gap_of_debians_exporter_only():
    gap = table(ClusterReport(ok=True, monitoring=[row("all up", 0, 0, 0),
                                                   row("kill", 0, 0, 1)]))
    assert "exporter gap" in gap and "a link with a peer down in 1 looks" in gap
    ours = table(ClusterReport(ok=True, monitoring=[
        row("all up", 1, 0, 0), row("kill", 1, 1, 1, seen_s=2.0, check_s=2.5, ring_s=1.5),
        row("after kill", 1, 0, 0)]))
    assert "exporter gap" not in ours
    assert "ha_cluster_corosync_rings in 3 of 3 scrapes; ring_errors > 0 in 1; agrees " \
        "with corosync-cfgtool's links in 3 of 3 looks" in ours
    assert re.search(r"kill until ring_errors > 0 +node1 1\.5 s", ours)
