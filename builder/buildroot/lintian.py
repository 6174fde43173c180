"""Run lintian on a build's .changes and count what it says."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
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


ARGS = ("lintian", "--no-cfg", "--suppress-tags", "bad-distribution-in-changes-file")
# "W: name: tag ..." (a binary package) or "W: name source|changes|buildinfo: tag ..."
_SUBJECT = re.compile(r"[A-Z]: ([^\s:]+)( [a-z]+)?: ")


def run(changes: Path, runner: Runner) -> dict[str, int]:
    # lintian exits 1 when it found errors; the counts carry that, not the exit.
    result = runner.run([*ARGS, str(changes)], check=False)
    return count_tags(result.stdout)


def _owners(changes: Path) -> tuple[str, set[str]]:
    from debian.deb822 import Changes
    info = Changes(changes.read_text(encoding="utf-8"))
    return info.get("Source", "").split()[0], set(info.get("Binary", "").split())


def split(output: str, changes: Sequence[Path]) -> dict[Path, list[str]]:
    """Each .changes' lines of one lintian run over several: a tag line goes to the
    .changes whose source (source, changes, buildinfo tags) or binary package it
    names; a line that names none (a notice) goes to every one."""
    owners = {c: _owners(c) for c in changes}
    out: dict[Path, list[str]] = {c: [] for c in changes}
    for line in output.splitlines():
        m = _SUBJECT.match(line)
        hits = [] if not m else [c for c, (src, bins) in owners.items()
                                 if (m.group(2) and m.group(1) == src)
                                 or (not m.group(2) and m.group(1) in bins)]
        for c in hits or changes:
            out[c].append(line)
    return out


def run_together(changes: Sequence[Path], runner: Runner
                 ) -> tuple[str, int, dict[Path, list[str]]]:
    """One lintian run over several builds' .changes (its start-up, some 2 s, is
    paid once): its command line, its exit status, and what it said of each (split)."""
    argv = [*ARGS, *map(str, changes)]
    result = runner.run(argv, check=False)
    return shlex.join(argv), result.returncode, split(result.stdout, changes)
