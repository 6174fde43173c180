"""The report of a build run: report.json for machines, report.html for people."""

from __future__ import annotations

import html
import itertools
import json
import os
import re
import time
import urllib.parse
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path

from builder.base import graph
from builder.buildroot import lintian

from . import state
from .outcome import Outcome, Status

STATUS_COLOURS = {Status.BUILT: "#2e7d32", Status.FETCHED: "#1565c0",
                  Status.UP_TO_DATE: "#9e9e9e", Status.FAILED: "#c62828",
                  Status.SKIPPED: "#ef6c00"}
LINTIAN_TAG_URL = "https://udd.debian.org/lintian-tag/"
NOT_RECORDED = ("no recorded build: its build job did not run here, or its state and "
                "artifacts were not brought along")

# "E: pacemaker source: tag-name detail" or "W: libcrmcommon34: tag-name detail"
_LINTIAN_LINE = re.compile(r"([EWIPXO]): [^\s:]+(?: [a-z]+)?: ([A-Za-z0-9][\w.+-]*)")
_SEVERITY_ORDER = list(lintian.SEVERITIES.values())


def write(directory: Path, profile: str, outcomes: list[Outcome], wall: float,
          deps: Mapping[str, set[str]] | None = None) -> Path:
    """report.json and report.html in `directory`; `deps` (component -> what it
    builds against) lets the report name the critical path."""
    directory.mkdir(parents=True, exist_ok=True)
    chain = critical_path(outcomes, deps or {})
    data = {
        "profile": profile,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_seconds": round(wall, 1),
        "sum_of_build_seconds": round(sum(o.duration for o in outcomes), 1),
        "ok": all(o.ok for o in outcomes),
        "critical_path": chain,
        "critical_path_seconds": round(sum(o.duration for o in outcomes
                                           if o.component in chain), 1),
        "components": [_component(o, directory) for o in outcomes],
    }
    (directory / "report.json").write_text(json.dumps(data, indent=1, default=str))
    (directory / "report.html").write_text(_html(data))
    return directory / "report.json"


def from_state(directory: Path, profile: str, components: list[str]) -> Path:
    """The report of the last build of every component, from its recorded state
    (CI: the build jobs ran apart; this puts their results on one page)."""
    outcomes: list[Outcome] = []
    binaries: dict[str, set[str]] = {}
    build_depends: dict[str, list[list[str]]] = {}
    for name in components:
        log = directory / "logs" / f"{name}.log"
        st = state.read(directory / "state", name)
        if st is None:
            outcomes.append(Outcome(name, Status.SKIPPED, error=NOT_RECORDED, log=log))
            continue
        outcomes.append(Outcome(name, Status.BUILT if st.source_files else Status.FETCHED,
                                version=st.version, duration=st.duration, log=log,
                                lintian=st.lintian))
        binaries[name], build_depends[name] = set(st.binaries), st.build_depends
    t = 0.0
    for o in outcomes:   # no common clock across jobs: lay them end to end
        o.started, t = t, t + o.duration
    return write(directory, profile, outcomes, t, graph.edges(binaries, build_depends))


def critical_path(outcomes: list[Outcome], deps: Mapping[str, set[str]]) -> list[str]:
    """The components of the heaviest dependency chain, by this run's durations,
    first built first; components that took no time (cache hits) are left out."""
    weight = {o.component: o.duration for o in outcomes}
    sub = {n: {d for d in deps.get(n, ()) if d in weight} for n in weight}
    rank = graph.critical_path(sub, weight)
    if not rank or max(rank.values()) <= 0:
        return []
    rdeps: dict[str, set[str]] = {n: set() for n in weight}
    for n, ds in sub.items():
        for d in ds:
            rdeps[d].add(n)
    node = min(weight, key=lambda n: (-rank[n], n))
    chain = [node]
    while rdeps[node]:
        node = min(rdeps[node], key=lambda n: (-rank[n], n))
        chain.append(node)
    return [n for n in chain if weight[n] > 0]


def lintian_tags(log: Path) -> list[dict[str, object]]:
    """What the last lintian run in `log` said: severity, tag and how often,
    most severe first (the state keeps only the counts)."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return []
    start = text.rfind("\n$ lintian ")
    if start < 0:
        return []
    counts: Counter[tuple[str, str]] = Counter()
    for line in text[start + 1:].splitlines()[1:]:
        if line.startswith("# exit status"):
            break
        m = _LINTIAN_LINE.match(line)
        if m:
            counts[lintian.SEVERITIES[m.group(1)], m.group(2)] += 1
    return [{"severity": sev, "tag": tag, "count": n} for (sev, tag), n in
            sorted(counts.items(), key=lambda kv: (_SEVERITY_ORDER.index(kv[0][0]),
                                                   -kv[1], kv[0][1]))]


def _component(o: Outcome, directory: Path) -> dict[str, object]:
    log = o.log
    if log is None and o.status is Status.UP_TO_DATE:
        # Nothing ran, so the log there is the one of the build that made
        # what is up to date (a changed input would have made it stale).
        log = directory / "logs" / f"{o.component}.log"
    # A link to a log that is not there helps nobody: null instead.
    has_log = log is not None and log.is_file()
    return {**{k: v for k, v in asdict(o).items() if k != "log"},
            "ok": o.ok,
            "log": os.path.relpath(log, directory) if log and has_log else None,
            "lintian_tags": lintian_tags(log) if log and has_log else []}


def _seconds(s: float) -> str:
    if s < 60:
        return f"{s:.1f} s"
    m, s = divmod(round(s), 60)
    return f"{m} min {s:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def _tick(t: float) -> str:
    if t < 60:
        return f"{t:g} s"
    m, s = divmod(round(t), 60)
    return f"{m} min" + (f" {s} s" if s else "")


def _tick_step(total: float) -> float:
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200):
        if total / step <= 8:
            return step
    return 14400


def _anchor(component: str) -> str:
    return "lintian-" + re.sub(r"[^A-Za-z0-9_-]", "-", component)


def _href(path: str) -> str:
    return html.escape(urllib.parse.quote(path))


# Timeline geometry, in SVG user units (the SVG scales to the page width).
LABEL_W, CHART_W, ROW_H, AXIS_H = 190, 760, 22, 26


def _timeline(data: dict) -> str:
    comps = data["components"]
    total = max(data["wall_seconds"], max((c["started"] + c["duration"] for c in comps),
                                          default=0.0), 1e-6)
    scale = CHART_W / total
    chain = data["critical_path"]
    height = AXIS_H + ROW_H * len(comps) + 6
    out = [f'<svg class="timeline" viewBox="0 0 {LABEL_W + CHART_W + 50} {height}" '
           f'role="img" aria-label="timeline of the builds">']
    step = _tick_step(total)
    t = 0.0
    while t <= total + 1e-9:
        x = LABEL_W + t * scale
        out.append(f'<line class="tick" x1="{x:.1f}" y1="{AXIS_H - 6}" x2="{x:.1f}" '
                   f'y2="{height}"/><text class="axis" x="{x:.1f}" y="{AXIS_H - 10}">'
                   f'{_tick(t)}</text>')
        t += step
    ends: dict[str, tuple[float, float, float]] = {}
    for i, c in enumerate(comps):
        y = AXIS_H + i * ROW_H
        name = html.escape(c["component"])
        out.append(f'<text class="label" x="{LABEL_W - 8}" y="{y + 15}">{name}</text>')
        x0 = LABEL_W + c["started"] * scale
        if not c["duration"]:
            what = "cache hit" if c["status"] == Status.UP_TO_DATE else c["status"]
            out.append(f'<text class="idle" x="{x0 + 2:.1f}" y="{y + 15}">{what}</text>')
            continue
        w = max(c["duration"] * scale, 2.0)
        critical = c["component"] in chain
        out.append(f'<rect class="bar{" critical" if critical else ""}" '
                   f'data-component="{name}" x="{x0:.1f}" y="{y + 4}" width="{w:.1f}" '
                   f'height="{ROW_H - 8}" fill="{STATUS_COLOURS[Status(c["status"])]}">'
                   f'<title>{name}: {c["status"]}, {_seconds(c["duration"])}'
                   f'{" (critical path)" if critical else ""}</title></rect>'
                   f'<text class="dur" x="{x0 + w + 4:.1f}" y="{y + 15}">'
                   f'{_seconds(c["duration"])}</text>')
        ends[c["component"]] = (x0, x0 + w, y + ROW_H / 2)
    # The chain is drawn as one line from each build's end to the start of
    # the next one on it: a gap in that line is time the chain waited.
    for a, b in itertools.pairwise(chain):
        _, ax, ay = ends[a]
        bx, _, by = ends[b]
        out.append(f'<path class="critical-link" d="M{ax:.1f},{ay:.1f} H{max(ax, bx):.1f} '
                   f'V{by:.1f} H{bx:.1f}"/>')
    out.append("</svg>")
    return "".join(out)


def _lintian_cell(c: dict) -> str:
    lint = c.get("lintian") or {}
    parts = []
    for sev, letter in (("error", "E"), ("warning", "W"), ("info", "I")):
        n = lint.get(sev, 0)
        parts.append(f'<a class="lint-{letter}" href="#{_anchor(c["component"])}">{n} {letter}</a>'
                     if n else f'<span class="zero">0 {letter}</span>')
    return " ".join(parts) if lint else ""


def _lintian_section(c: dict) -> str:
    lint = {k: v for k, v in (c.get("lintian") or {}).items() if v}
    tags = c.get("lintian_tags") or []
    if not lint and not tags:
        return ""
    log = (f' &mdash; <a href="{_href(c["log"])}">full log</a>' if c["log"] else "")
    counts = ", ".join(f"{n} {sev}{'s' if n > 1 and sev in ('error', 'warning') else ''}"
                       for sev, n in lint.items())
    items = "".join(
        f'<li><span class="sev sev-{t["severity"]}">{t["severity"]}</span> '
        f'<a href="{LINTIAN_TAG_URL}{urllib.parse.quote(t["tag"])}">{html.escape(t["tag"])}</a>'
        f'{" &times;" + str(t["count"]) if t["count"] > 1 else ""}</li>' for t in tags)
    body = (f"<ul>{items}</ul>" if items else
            "<p>The log has lintian's output.</p>" if c["log"] else
            "<p>Only the counts were recorded: there is no log of its build here.</p>")
    return (f'<section id="{_anchor(c["component"])}"><h3>{html.escape(c["component"])}</h3>'
            f"<p>{counts}{log}</p>{body}</section>")


def _html(data: dict) -> str:
    comps = data["components"]
    rows = []
    for c in comps:
        colour = STATUS_COLOURS[Status(c["status"])]
        log = f'<a href="{_href(c["log"])}">log</a>' if c["log"] else ""
        cache = {Status.UP_TO_DATE: "hit", Status.SKIPPED: ""}.get(c["status"], "miss")
        # on the cell, not the row: tests and scripts count the report's "<tr>"
        critical = " class='critical'" if c["component"] in data["critical_path"] else ""
        error = (c["error"] or "").splitlines()
        rows.append(
            f"<tr><td{critical}>{html.escape(c['component'])}</td>"
            f"<td style='color:{colour}'>{c['status']}</td><td>{cache}</td>"
            f"<td>{html.escape(c['version'])}</td>"
            f"<td class='num'>{_seconds(c['duration']) if c['duration'] else ''}</td>"
            f"<td>{_lintian_cell(c)}</td><td>{log}</td>"
            f"<td>{html.escape(error[0] if error else '')}</td></tr>")
    statuses = Counter(c["status"] for c in comps)
    summary = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
    chain = data["critical_path"]
    chain_text = (f"{' &rarr; '.join(html.escape(n) for n in chain)} "
                  f"({_seconds(data['critical_path_seconds'])})" if chain else "none (nothing "
                  "was built)")
    lint = "".join(_lintian_section(c) for c in comps)
    verdict = "ok" if data["ok"] else "FAILED"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>ClusterStack build: {html.escape(data['profile'])} ({verdict})</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left; }}
td.num {{ text-align: right; white-space: nowrap; }}
td.critical {{ font-weight: bold; }}
.verdict-ok {{ color: #2e7d32; }} .verdict-FAILED {{ color: #c62828; }}
svg.timeline {{ width: 100%; max-width: 1400px; margin: 1em 0; }}
svg.timeline text {{ font-size: 12px; }}
svg.timeline .label {{ text-anchor: end; }}
svg.timeline .axis {{ fill: #666; text-anchor: middle; font-size: 11px; }}
svg.timeline .tick {{ stroke: #eee; }}
svg.timeline .idle {{ fill: #999; font-style: italic; }}
svg.timeline .dur {{ fill: #444; font-size: 11px; }}
svg.timeline .bar.critical {{ stroke: #000; stroke-width: 2.5; }}
svg.timeline .critical-link {{ fill: none; stroke: #000; stroke-width: 1.5;
  stroke-dasharray: 4 3; }}
.legend span {{ display: inline-block; margin-right: 1.2em; }}
.legend i {{ display: inline-block; width: 1em; height: .8em; margin-right: .3em; }}
.zero {{ color: #bbb; }} .lint-E {{ color: #c62828; }} .lint-W {{ color: #ef6c00; }}
.sev {{ display: inline-block; width: 6em; color: #666; }}
.sev-error {{ color: #c62828; }} .sev-warning {{ color: #ef6c00; }}
section h3 {{ margin-bottom: .2em; }}
</style></head><body>
<h1>ClusterStack build &mdash; profile {html.escape(data['profile'])}:
<span class="verdict-{verdict}">{verdict}</span></h1>
<p>Finished {data['finished']}; wall time {_seconds(data['wall_seconds'])}; sum of
component times {_seconds(data['sum_of_build_seconds'])}; {summary}.</p>
<p>Critical path (longest chain of builds that wait for each other): {chain_text}.</p>
<h2>Timeline</h2>
<p class="legend">{''.join(f'<span><i style="background:{col}"></i>{s}</span>'
                          for s, col in STATUS_COLOURS.items())}
<span><i style="border:2px solid #000;box-sizing:border-box"></i>critical path</span></p>
{_timeline(data)}
<h2>Components</h2>
<table><tr><th>component</th><th>status</th><th>cache</th><th>version</th>
<th>wall time</th><th>lintian</th><th>log</th><th>error</th></tr>
{chr(10).join(rows)}
</table>
{f"<h2>Lintian</h2>{lint}" if lint else ""}
</body></html>
"""
