"""Run lintian on a build's .changes and count what it says."""

from __future__ import annotations

from pathlib import Path

from builder.base.command import Runner

SEVERITIES = {"E": "error", "W": "warning", "I": "info", "P": "pedantic", "X": "experimental",
              "O": "overridden"}


def count_tags(output: str) -> dict[str, int]:
    counts = dict.fromkeys(SEVERITIES.values(), 0)
    for line in output.splitlines():
        code = line[:2]
        if len(code) == 2 and code[1] == ":" and code[0] in SEVERITIES:
            counts[SEVERITIES[code[0]]] += 1
    return counts


def run(changes: Path, runner: Runner) -> dict[str, int]:
    # lintian exits 1 when it found errors; the counts carry that, not the exit.
    result = runner.run(["lintian", "--no-cfg", "--suppress-tags",
                         "bad-distribution-in-changes-file", str(changes)], check=False)
    return count_tags(result.stdout)
