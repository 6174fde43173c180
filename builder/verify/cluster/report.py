"""The figures of a cluster run as a table for people and a JSON file for machines."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .options import ClusterReport, MonitorRow, ScenarioResult


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
        *((("clean reboot, rejoined", _seconds(report.reboot_rejoin_s) + _move(report, "reboot")),)
          if report.reboot_rejoin_s is not None else ()),
        *_scenario_rows(report.scenarios),
        ("fencing events", f"{len(report.fencing_events)} ({events})"),
        ("peak memory", "-" if report.peak_memory_mib is None
         else f"{report.peak_memory_mib:.0f} MiB"),
    ]
    if report.init == "systemd":
        how = f"the how-to {report.howto}, word for word" if report.howto else report.stack_shell
        rows[2:2] = [("init", "systemd (systemd-nspawn), bootstrap by " + how)]
        rows += [(title, f"{seconds:.1f} s") for title, seconds in report.howto_blocks.items()]
        rows += systemd_rows(report)
    else:
        rows += [("workaround", w) for w in report.workarounds]
    rows += monitoring_rows(report)
    text = finish_table(rows, report)
    if report.monitoring:
        text += "\n" + monitoring_table(report.monitoring)
    return text


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    return f"p50 {ordered[len(ordered) // 2]:.0f} ms, max {ordered[-1]:.0f} ms"


def monitoring_rows(report: ClusterReport) -> list[tuple[str, str]]:
    """The monitoring figures: scrape time, exporter memory, how fast a kill showed."""
    rows = [("monitoring", tool) for tool in report.monitoring_tools]
    seen = report.monitoring
    if not seen:
        return rows
    scrapes = [r.scrape_ms for r in seen if r.scrape_error is None]
    checks = [r.check_ms for r in seen]
    if scrapes:
        rows.append(("exporter scrape", f"{_ms(scrapes)} over {len(scrapes)} scrapes"))
    rows.append(("check_pacemaker run", f"{_ms(checks)} over {len(checks)} runs"))
    if report.monitoring_s is not None:
        rounds = len({r.step for r in seen if r.seen_s is None and r.check_s is None})
        rows.append(("monitoring time", f"{report.monitoring_s:.1f} s of the run's wall time "
                     f"({rounds} rounds, every node looked at in parallel)"))
    rss: dict[str, float] = {}
    for r in seen:
        if r.exporter_rss_mib is not None:
            rss[r.node] = max(rss.get(r.node, 0.0), r.exporter_rss_mib)
    if rss:
        rows.append(("exporter RSS (max)",
                     ", ".join(f"{n} {m:.1f} MiB" for n, m in sorted(rss.items()))))
    linked = [r for r in seen if r.links]
    ringed = [r for r in seen if r.rings]
    if ringed:
        # What the exporter said beside corosync-cfgtool in the same look: a link with a
        # peer down and ring_errors > 0 go together (a look mid-change may differ).
        both = [r for r in ringed if r.links is not None and r.ring_errors is not None]
        agree = sum(bool(r.ring_errors) == bool(r.links_down) for r in both)
        errors = sum(bool(r.ring_errors) for r in ringed)
        rows.append(("exporter rings", (
            f"ha_cluster_corosync_rings in {len(ringed)} of {len(seen)} scrapes; "
            f"ring_errors > 0 in {errors}; agrees with corosync-cfgtool's links in "
            f"{agree} of {len(both)} looks")))
    elif linked:
        rows.append(("exporter gap", (
            f"ha_cluster_corosync_rings: none in {len(seen)} scrapes, while corosync-cfgtool "
            f"showed {max(r.links or 0 for r in linked)} link(s)"
            + (f" and a link with a peer down in {sum(bool(r.links_down) for r in linked)} "
               "looks" if any(r.links_down for r in linked) else "")
            + "; ha_cluster_corosync_ring_errors stays 0 (the exporter's regex reads "
            "corosync 2's `RING ID`/`Link ID`, corosync 3 prints `LINK ID n udp`)")))
    down = [r for r in seen if r.seen_s is not None or r.check_s is not None]
    if down:
        rows.append(("kill until exporter shows it", ", ".join(
            f"{r.node} {_seconds(r.seen_s)}" for r in down)))
        rows.append(("kill until check CRITICAL", ", ".join(
            f"{r.node} {_seconds(r.check_s)}" for r in down)))
        if any(r.ring_s is not None for r in down):
            rows.append(("kill until ring_errors > 0", ", ".join(
                f"{r.node} {_seconds(r.ring_s)}" for r in down)))
    return rows


def _count(value: float | None) -> str:
    if value is None:
        return "-"
    return "INF" if math.isinf(value) else f"{value:g}"


def monitoring_table(rows: list[MonitorRow]) -> str:
    """Step by node: what every node's exporter and check_pacemaker said."""
    head = ("step", "node", "online", "quorate", "fail", "rings", "ring_err", "links",
            "check", "scrape", "rss", "seen", "check line")
    lines = [head]
    for r in rows:
        lines.append((
            r.step, r.node, _count(r.nodes_online), _count(r.quorate), _count(r.fail_count),
            str(r.rings), _count(r.ring_errors),
            "-" if r.links is None else f"{r.links}" + (f" ({r.links_down} down)"
                                                         if r.links_down else ""),
            r.check,
            f"{r.scrape_ms:.0f} ms" if r.scrape_error is None else "failed",
            "-" if r.exporter_rss_mib is None else f"{r.exporter_rss_mib:.0f} MiB",
            "-" if r.seen_s is None and r.check_s is None
            else f"{_seconds(r.seen_s)}/{_seconds(r.check_s)}",
            r.check_line if r.scrape_error is None else f"{r.check_line} ({r.scrape_error})"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head) - 1)]
    out = ["monitoring: every node's ha_cluster_exporter (metrics) and check_pacemaker",
           "(rings, ring_err: the exporter's; links: corosync-cfgtool -s; "
           "seen: from the kill until the exporter / the check showed it)"]
    for line in lines:
        out.append("  ".join(c.ljust(w) for c, w in zip(line[:-1], widths, strict=True))
                   + "  " + line[-1])
    return "\n".join(out) + "\n"


LEGACY_ROWS = ("kill", "standby", "vrrp")  # shown above with their own labels


def _scenario_rows(results: list[ScenarioResult]) -> list[tuple[str, str]]:
    rows = []
    for r in results:
        if r.name in LEGACY_ROWS and r.state == "ok":
            continue
        value = _seconds(r.seconds) if r.state == "ok" else r.state
        if r.detail:
            value += f"  ({r.detail})"
        rows.append((f"scenario {r.name}", value))
    return rows


def systemd_rows(report: ClusterReport) -> list[tuple[str, str]]:
    """Boot times, memory per node, workarounds and failed units of the systemd tier."""
    rows = [
        ("boot to multi-user", ", ".join(f"{n} {s:.1f} s" for n, s in report.boot_s.items())
         or "-"),
        *((f"bootstrap: {command}", f"{s:.1f} s") for command, s in report.bootstrap_s.items()),
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


# --- repeated runs (benchmarks/cts.sh --repeat N) ----------------------------------------


def percentile(values: Sequence[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class ScenarioStats:
    name: str
    runs: int = 0
    failures: int = 0
    seconds: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float | None:
        return percentile(self.seconds, 50)

    @property
    def p95(self) -> float | None:
        return percentile(self.seconds, 95)


def summarize(reports: Sequence[ClusterReport]) -> list[ScenarioStats]:
    """Per scenario over repeated runs, formation first, then in the order run.

    A scenario skipped because an earlier one failed counts as a failure (it did
    not pass); one left out for want of nodes does not count at all.
    """
    stats: dict[str, ScenarioStats] = {"formation": ScenarioStats("formation")}
    for report in reports:
        formation = stats["formation"]
        formation.runs += 1
        if report.formation_s is None:
            formation.failures += 1
        else:
            formation.seconds.append(report.formation_s)
        for result in report.scenarios:
            entry = stats.setdefault(result.name, ScenarioStats(result.name))
            if result.state.startswith("skipped (needs"):
                continue
            entry.runs += 1
            if result.state == "ok" and result.seconds is not None:
                entry.seconds.append(result.seconds)
            else:
                entry.failures += 1
    return list(stats.values())


def repeat_table(stats: list[ScenarioStats], runs: int, wall_s: float) -> str:
    """`--repeat N`: one line per scenario with its runs, failures, p50 and p95."""
    head = ("scenario", "runs", "failures", "p50", "p95")
    lines = [head] + [(s.name, str(s.runs), str(s.failures), _seconds(s.p50),
                       _seconds(s.p95)) for s in stats]
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    text = "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in lines)
    failed = sum(s.failures for s in stats)
    return (f"{text}\nrepeats {runs}, scenario failures {failed}, "
            f"wall time {wall_s:.0f} s\n")


def write_repeat(stats: list[ScenarioStats], runs: int, wall_s: float, reports: list[ClusterReport],
                 output_dir: Path) -> Path:
    """cts-report.json/.txt next to the runs' own folders."""
    output_dir.mkdir(parents=True, exist_ok=True)
    data = {"runs": runs, "wall_s": round(wall_s, 1),
            "failures": sum(s.failures for s in stats),
            "passed_runs": sum(1 for r in reports if r.ok),
            "scenarios": [{"name": s.name, "runs": s.runs, "failures": s.failures,
                           "p50_s": s.p50, "p95_s": s.p95, "seconds": s.seconds}
                          for s in stats]}
    path = output_dir / "cts-report.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    (output_dir / "cts-report.txt").write_text(repeat_table(stats, runs, wall_s))
    return path
