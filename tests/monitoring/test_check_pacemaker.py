"""check_pacemaker against real crm_mon XML of Pacemaker 2.1 and 3.0 (data/SOURCES)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "monitoring" / "check_pacemaker"
DATA = Path(__file__).parent / "data"
VERSIONS = ["pacemaker-2.1", "pacemaker-3.0"]
OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
PERF = re.compile(r"^'[a-z_]+'=\d+;\d*;\d*;0;\d*$")


def run(*args: str, env: dict[str, str] | None = None,
        stdin: str | None = None) -> tuple[int, list[str], str]:
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          env=env, input=stdin, timeout=60, check=False)
    return proc.returncode, proc.stdout.splitlines(), proc.stderr


def check(path: Path, *args: str) -> tuple[int, str]:
    code, lines, stderr = run("--xml-file", str(path), *args)
    assert len(lines) == 1, lines
    assert stderr == ""
    return code, lines[0]


def status(line: str) -> str:
    return line.split(" | ")[0]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("name", "args", "state", "expect"), [
    # OK: every node online, every enabled resource started; a bundle slot
    # and clone slots no node can take, and disabled resources, are fine.
    ("exp-basic", [], OK, "2/2 nodes online, 18/18 resources started (2 disabled)"),
    # WARNING
    ("standby", [], WARNING, "nodes in standby: sapcl02, sapcl03"),
    ("node-maintenance-1", [], WARNING, "maintenance: "),
    ("failcount", [], WARNING, "fail-counts: re-openfire-lsb on dresproddns01=1"),
    ("monitor-onfail-stop", ["--exclude-node", "fc16-builder2"], WARNING,
     "failed actions: A_monitor_20000 on fc16-builder"),
    ("rsc-maintenance", [], WARNING, "rsc1"),
    ("stop-all-resources", [], WARNING, "maintenance: cluster (stop-all-resources)"),
    # CRITICAL
    ("exp-unmanaged-offline", [], CRITICAL, "nodes offline: cluster02"),
    ("stonith-1", [], CRITICAL, "nodes unclean: sles-3"),
    ("quorum-4", [], CRITICAL, "nodes unclean: hadev1, hadev3; partition without quorum"),
    ("no_quorum_demote", ["--offline-warning", "0", "--offline-critical", "0"], CRITICAL,
     "partition without quorum"),
    ("group-fail", [], CRITICAL, "resources stopped: rsc1, rsc3"),
    ("promoted-with-blocked", [], CRITICAL, "resources stopped: rsc1, rsc2-clone"),
    ("unmanaged-block-restart", [], CRITICAL, "resources blocked: rsc4"),
    ("clone-fail-block-colocation", [], CRITICAL, "resources blocked: d_bird6"),
    ("remote-fence-unclean", [], CRITICAL, "nodes unclean: remote1"),
    # UNKNOWN
    ("pacemaker-down", [], UNKNOWN, "pacemaker is not running: "),
])
def test_states(version: str, name: str, args: list[str], state: int, expect: str) -> None:
    code, line = check(DATA / version / f"{name}.xml", *args)
    assert code == state, line
    assert line.startswith(f"PACEMAKER {('OK', 'WARNING', 'CRITICAL', 'UNKNOWN')[state]} - ")
    assert expect in line
    if state != UNKNOWN:
        perfdata = line.split(" | ", 1)[1].split(" ")
        assert all(PERF.match(p) for p in perfdata), perfdata


def test_maintenance_mode_on_pacemaker_3() -> None:
    code, line = check(DATA / "pacemaker-3.0" / "exp-maintenance-mode.xml")
    assert code == WARNING
    # one finding for the cluster, not one per resource it leaves unmanaged
    assert "maintenance: cluster (maintenance-mode) (" in line


def test_node_maintenance_reports_the_node() -> None:
    for version in VERSIONS:
        code, line = check(DATA / version / "node-maintenance-1.xml")
        assert code == WARNING
        assert "node node2" in line
        assert "no DC elected" in line
        assert "'nodes_maintenance'=1;" in line


def test_perfdata_counts() -> None:
    _, line = check(DATA / "pacemaker-3.0" / "no_quorum_demote.xml")
    assert "'nodes_online'=2;;;0;5" in line
    assert "'nodes_offline'=3;1;1;0;5" in line
    code, line = check(DATA / "pacemaker-3.0" / "failcount.xml", "--fail-count-critical", "5")
    assert code == WARNING
    assert "'fail_count_max'=1;1;5;0;" in line


@pytest.mark.parametrize("version", VERSIONS)
def test_thresholds(version: str) -> None:
    d = DATA / version
    assert check(d / "exp-unmanaged-offline.xml", "--offline-critical", "2")[0] == WARNING
    assert check(d / "failcount.xml", "--fail-count-critical", "1")[0] == CRITICAL
    assert check(d / "failcount.xml", "--fail-count-warning", "0")[0] == OK
    failed = d / "monitor-onfail-stop.xml"
    assert check(failed, "--exclude-node", "fc16-*", "--failed-actions-critical", "1",
                 "--fail-count-warning", "0")[0] == CRITICAL
    assert check(d / "standby.xml", "--severity", "standby=ok")[0] == OK
    assert check(d / "standby.xml", "--severity", "standby=critical")[0] == CRITICAL
    assert check(d / "group-fail.xml", "--severity", "no-dc=ok",
                 "--severity", "stopped=warning")[0] == WARNING


@pytest.mark.parametrize("version", VERSIONS)
def test_which_resources_matter(version: str) -> None:
    blocked = DATA / version / "clone-fail-block-colocation.xml"
    code, line = check(blocked, "-x", "d_bird6")
    assert code == OK, line
    # the clone's id covers its members
    assert check(blocked, "-x", "cl_bird6")[0] == OK
    assert check(blocked, "-r", "d_bird6")[0] == CRITICAL
    code, line = check(blocked, "-r", "d_bird")
    assert code == OK, line
    group = DATA / version / "group-fail.xml"
    code, line = check(group, "-r", "rsc3", "--severity", "no-dc=ok")
    assert code == CRITICAL
    assert "resources stopped: rsc3 (" in line
    assert check(group, "-r", "rsc2", "--severity", "no-dc=ok")[0] == OK
    assert check(group, "-x", "rsc[13]", "--severity", "no-dc=ok")[0] == OK


def test_verbose_lists_every_finding() -> None:
    code, lines, _ = run("--xml-file", str(DATA / "pacemaker-3.0" / "quorum-4.xml"), "-v")
    assert code == CRITICAL
    assert lines[1:] == [
        "CRITICAL: nodes unclean: hadev1",
        "CRITICAL: nodes unclean: hadev3",
        "CRITICAL: no-quorum: partition without quorum",
        "CRITICAL: resources stopped: child_DoFencing",
    ]


def test_reads_standard_input() -> None:
    text = (DATA / "pacemaker-3.0" / "standby.xml").read_text()
    code, lines, _ = run("--xml-file", "-", stdin=text)
    assert code == WARNING
    assert len(lines) == 1


def fake_crm_mon(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "crm_mon"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return script


def unknown(*args: str, env: dict[str, str] | None = None) -> str:
    code, lines, stderr = run(*args, env=env)
    assert code == UNKNOWN, lines
    assert len(lines) == 1, lines
    assert "Traceback" not in stderr
    assert stderr == ""
    assert lines[0].startswith("PACEMAKER UNKNOWN - ")
    return lines[0][len("PACEMAKER UNKNOWN - "):]


def test_unknown_crm_mon_missing(tmp_path: Path) -> None:
    reason = unknown("--crm-mon", str(tmp_path / "crm_mon"))
    assert reason == f"{tmp_path / 'crm_mon'} not found (is pacemaker-cli-utils installed?)"


def test_unknown_crm_mon_not_executable(tmp_path: Path) -> None:
    path = tmp_path / "crm_mon"
    path.write_text("")
    assert "permission denied" in unknown("--crm-mon", str(path))


@pytest.mark.parametrize("version", VERSIONS)
def test_unknown_pacemaker_down(tmp_path: Path, version: str) -> None:
    """crm_mon prints its 'Not connected' XML and exits 102, as a node without pacemaker."""
    saved = DATA / version / "pacemaker-down.xml"
    crm_mon = fake_crm_mon(tmp_path, f"cat {saved}\nexit 102")
    reason = unknown("--crm-mon", str(crm_mon))
    assert reason.startswith("pacemaker is not running: ")
    assert "Connection to cluster failed: Connection refused" in reason


@pytest.mark.skipif(shutil.which("crm_mon") is None, reason="crm_mon not installed")
def test_real_crm_mon(tmp_path: Path) -> None:
    """This host's crm_mon: against saved CIBs through CIB_file, and with no cluster."""
    env = dict(os.environ)
    for name, state in (("standby", WARNING), ("quorum-4", CRITICAL)):
        env["CIB_file"] = str(DATA / "cib" / f"{name}.xml")
        code, lines, _ = run(env=env)
        assert code == state, lines
        assert len(lines) == 1
    env.pop("CIB_file")
    if subprocess.run(["pidof", "pacemakerd"], capture_output=True, check=False).returncode:
        assert unknown(env=env).startswith("pacemaker is not running: ")
    env["CIB_file"] = str(tmp_path / "missing.xml")
    # crm_mon says OK here but gives no status: still UNKNOWN
    assert unknown(env=env).startswith("crm_mon gave no cluster status")


def test_unknown_crm_mon_hangs(tmp_path: Path) -> None:
    crm_mon = fake_crm_mon(tmp_path, "exec sleep 30")
    assert unknown("--crm-mon", str(crm_mon), "-t", "0.5") == \
        "crm_mon did not answer within 0.5 s"


def test_unknown_crm_mon_prints_nothing(tmp_path: Path) -> None:
    crm_mon = fake_crm_mon(tmp_path, "echo 'crm_mon: Permission denied' >&2\nexit 4")
    assert unknown("--crm-mon", str(crm_mon)) == "crm_mon exited 4: crm_mon: Permission denied"


def test_unknown_unparseable(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.xml"
    truncated.write_text((DATA / "pacemaker-3.0" / "standby.xml").read_text()[:2000])
    assert unknown("--xml-file", str(truncated)).startswith("cannot parse crm_mon XML: ")
    garbage = tmp_path / "garbage.xml"
    garbage.write_bytes(b"\xff\xfe not xml")
    assert unknown("--xml-file", str(garbage)).startswith("cannot parse")
    text = tmp_path / "text.out"
    text.write_text("Cluster Summary:\n  * Stack: corosync\n")
    assert unknown("--xml-file", str(text)).startswith("cannot parse crm_mon XML: ")
    # a CIB is XML, but not crm_mon's
    assert unknown("--xml-file", str(DATA / "cib" / "standby.xml")) == \
        "not crm_mon XML output (root element <cib>)"
    crm_mon = fake_crm_mon(tmp_path, "echo '<pacemaker-result'\nexit 0")
    assert unknown("--crm-mon", str(crm_mon)).startswith("cannot parse crm_mon XML: ")
    assert unknown("--xml-file", str(tmp_path / "none.xml")) == \
        f"cannot read {tmp_path / 'none.xml'}: No such file or directory"


def test_unknown_bad_options() -> None:
    assert unknown("--frobnicate") == "unrecognized arguments: --frobnicate (see --help)"
    assert "is not a number" in unknown("--fail-count-warning", "many")
    assert "is negative" in unknown("--offline-critical", "-1")
    assert "expected KIND=LEVEL" in unknown("--severity", "standby=loud")
    assert "expected KIND=LEVEL" in unknown("--severity", "nonsense")
    assert "expected one argument" in unknown("--xml-file")


def test_help_exits_unknown() -> None:
    code, lines, _ = run("--help")
    assert code == UNKNOWN
    assert any("--xml-file" in line for line in lines)
    code, lines, _ = run("--version")
    assert (code, lines) == (UNKNOWN, ["check_pacemaker 1.0"])
