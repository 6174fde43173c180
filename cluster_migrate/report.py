"""The record of every decision: what was converted how, and what was not carried over."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

SEVERITIES = ("info", "warning", "error", "critical")
# info: converted, worth knowing. warning: converted approximately or needs an admin step.
# error: not carried over (the admin must act before go-live). critical: the cluster is
# unsafe as converted (e.g. no fencing).


@dataclass
class Entry:
    severity: str
    topic: str
    message: str
    line: int | None


@dataclass
class Report:
    source: str
    entries: list[Entry] = field(default_factory=list)

    def add(self, severity: str, topic: str, message: str, line: int | None) -> None:
        if severity not in SEVERITIES:
            raise ValueError(severity)
        self.entries.append(Entry(severity, topic, message, line))

    def info(self, topic: str, message: str, line: int | None) -> None:
        self.add("info", topic, message, line)

    def warning(self, topic: str, message: str, line: int | None) -> None:
        self.add("warning", topic, message, line)

    def error(self, topic: str, message: str, line: int | None) -> None:
        self.add("error", topic, message, line)

    def critical(self, topic: str, message: str, line: int | None) -> None:
        self.add("critical", topic, message, line)

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for e in self.entries if e.severity == s) for s in SEVERITIES}

    def to_json(self) -> str:
        return json.dumps({"source": self.source, "counts": self.counts(),
                           "entries": [asdict(e) for e in self.entries]}, indent=2) + "\n"

    def to_text(self) -> str:
        counts = self.counts()
        lines = [f"cluster-migrate report for {self.source}",
                 "summary: " + ", ".join(f"{counts[s]} {s}" for s in reversed(SEVERITIES)),
                 ""]
        # Most severe first, then in source order, so the admin reads the blockers first.
        rank = {s: i for i, s in enumerate(reversed(SEVERITIES))}
        for e in sorted(self.entries, key=lambda e: (rank[e.severity], e.line or 0)):
            where = f"line {e.line}" if e.line else "general"
            lines.append(f"{e.severity.upper():8} {where:10} [{e.topic}] {e.message}")
        return "\n".join(lines) + "\n"
