"""The report of a build run: report.json for machines, report.html for people."""

from __future__ import annotations

import html
import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .build import Outcome

STATUS_COLOURS = {"built": "#2e7d32", "fetched": "#1565c0", "up-to-date": "#9e9e9e",
                  "failed": "#c62828", "skipped": "#ef6c00"}


def write(directory: Path, profile: str, outcomes: list[Outcome], wall: float) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    data = {
        "profile": profile,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_seconds": round(wall, 1),
        "sum_of_build_seconds": round(sum(o.duration for o in outcomes), 1),
        "components": [
            {**{k: v for k, v in asdict(o).items() if k != "log"},
             "log": os.path.relpath(o.log, directory) if o.log else None}
            for o in outcomes
        ],
    }
    (directory / "report.json").write_text(json.dumps(data, indent=1, default=str))
    (directory / "report.html").write_text(_html(data))
    return directory / "report.json"


def from_state(directory: Path, profile: str, components: list[str]) -> Path:
    """The report of the last build of every component, from its recorded state
    (CI: the build jobs ran apart; this puts their results on one page)."""
    from .build import Outcome
    from .state import read
    outcomes = []
    for name in components:
        st = read(directory / "state", name)
        outcomes.append(Outcome(name, "built" if st and st.source_files else
                                "fetched" if st else "missing",
                                version=st.version if st else "",
                                duration=st.duration if st else 0.0,
                                log=directory / "logs" / f"{name}.log",
                                lintian=st.lintian if st else {}))
    t = 0.0
    for o in outcomes:   # no common clock across jobs: lay them end to end
        o.started, t = t, t + o.duration
    return write(directory, profile, outcomes, t)


def _html(data: dict) -> str:
    total = max(data["wall_seconds"], 1e-6)
    rows = []
    for c in data["components"]:
        colour = STATUS_COLOURS.get(c["status"], "#000")
        lint = c.get("lintian") or {}
        left = 100 * c["started"] / total
        width = max(100 * c["duration"] / total, 0.3) if c["duration"] else 0
        log = (f'<a href="{html.escape(c["log"])}">log</a>' if c["log"] else "")
        rows.append(
            f"<tr><td>{html.escape(c['component'])}</td>"
            f"<td style='color:{colour}'>{c['status']}</td>"
            f"<td>{html.escape(c['version'])}</td><td>{c['duration']:.1f}s</td>"
            f"<td>{lint.get('error', '')}</td><td>{lint.get('warning', '')}</td><td>{log}</td>"
            f"<td class='tl'><div style='margin-left:{left:.2f}%;width:{width:.2f}%;"
            f"background:{colour}'>&nbsp;</div></td>"
            f"<td>{html.escape((c['error'] or '').splitlines()[0] if c['error'] else '')}"
            f"</td></tr>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>ClusterStack build: {html.escape(data['profile'])}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left; }}
td.tl {{ width: 35%; }} td.tl div {{ height: 12px; }}
</style></head><body>
<h1>ClusterStack build &mdash; profile {html.escape(data['profile'])}</h1>
<p>Finished {data['finished']}; wall time {data['wall_seconds']} s; sum of component times
{data['sum_of_build_seconds']} s.</p>
<table><tr><th>component</th><th>status</th><th>version</th><th>time</th>
<th>lintian E</th><th>lintian W</th><th>log</th><th>timeline</th><th>error</th></tr>
{chr(10).join(rows)}
</table></body></html>
"""
