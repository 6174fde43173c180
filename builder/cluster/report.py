"""The figures of a cluster run as a table for people and a JSON file for machines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .options import ClusterReport


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _move(report: ClusterReport, kind: str) -> str:
    move = report.failovers.get(kind)
    return f"  ({move['from']} -> {move['to']})" if move else ""


def table(report: ClusterReport) -> str:
    events = ", ".join(f"{e.action} {e.node} by {e.requested_by} at {e.at:.1f} s: {e.result}"
                       for e in report.fencing_events) or "none"
    rows = [
        ("nodes up", f"{report.nodes_up}/{report.nodes}"),
        ("configured with", report.stack_shell or "-"),
        ("root build", _seconds(report.root_build_s)),
        ("formation time", _seconds(report.formation_s)),
        ("service", report.workload or "-"),
        ("fail-over, node killed", _seconds(report.kill_failover_s) + _move(report, "kill")),
        ("fenced node back", _seconds(report.rejoin_s)),
        ("fail-over, standby", _seconds(report.standby_failover_s) + _move(report, "standby")),
        ("VRRP fail-over", _seconds(report.vrrp_failover_s) + _move(report, "vrrp")),
        ("fencing events", f"{len(report.fencing_events)} ({events})"),
        ("peak memory", "-" if report.peak_memory_mib is None
         else f"{report.peak_memory_mib:.0f} MiB"),
    ]
    if report.init == "systemd":
        rows[2:2] = [("init", "systemd (systemd-nspawn), bootstrap by " + report.stack_shell)]
        rows += systemd_rows(report)
    return finish_table(rows, report)


def systemd_rows(report: ClusterReport) -> list[tuple[str, str]]:
    """Boot times, memory per node, workarounds and failed units of the systemd tier."""
    rows = [
        ("boot to multi-user", ", ".join(f"{n} {s:.1f} s" for n, s in report.boot_s.items())
         or "-"),
        ("PSS per node", ", ".join(f"{n} {m:.0f} MiB" for n, m in report.pss_node_mib.items())
         or "-"),
    ]
    rows += [("workaround", w) for w in report.workarounds]
    for failure in report.unit_failures:
        rows.append((f"failed unit {failure.node}", failure.unit))
        rows += [("", line) for line in failure.status]
    return rows


def finish_table(rows: list[tuple[str, str]], report: Any) -> str:
    """Every tier's table ends alike: its steps, the verdict, aligned columns."""
    rows = [*rows, *((f"step {name}", state) for name, state in report.steps.items())]
    rows.append(("result", "PASS" if report.ok else f"FAIL: {report.error or 'see steps'}"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows) + "\n"


def write(report: ClusterReport, output_dir: Path) -> tuple[Path, Path]:
    output_dir.mkdir(parents=True, exist_ok=True)
    json_path = output_dir / "cluster-report.json"
    text_path = output_dir / "cluster-report.txt"
    json_path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    text_path.write_text(table(report))
    return json_path, text_path
