"""Are two builds of the same inputs the same bytes?

Two output folders built from the same stack (fresh folders, other build
paths, another time) are compared component by component.  Only components
whose input key is the same in both are comparable: another key means other
inputs, and different bytes would prove nothing.  For a comparable component
every .deb is compared by sha256; for one that differs, diffoscope names what
differs (its summary, not the whole report).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

from builder.base import digest
from builder.base.command import Runner
from builder.base.errors import InputError

from . import state

# Lines of diffoscope's report kept per .deb: the headers name the members
# that differ, which is what a person needs to start.
SUMMARY_LINES = 12


class Verdict(StrEnum):
    IDENTICAL = "identical"
    DIFFERS = "differs"
    MISSING = "missing"            # a .deb the first build made, the second did not


class Skip(StrEnum):
    NOT_IN_SECOND = "not built in the second output"
    OTHER_INPUTS = "other inputs (input keys differ)"
    OTHER_VERSION = "other version (the version counter differs)"
    NOT_BUILT = "taken from the base archive, not built here"
    SAME_BUILD = "the same build in both (a copy: proves nothing)"


@dataclass(frozen=True)
class DebResult:
    component: str
    deb: str
    verdict: Verdict
    summary: str = ""              # diffoscope's headers when it differs


@dataclass(frozen=True)
class Skipped:
    component: str
    why: Skip


@dataclass(frozen=True)
class Comparison:
    first: Path
    second: Path
    debs: tuple[DebResult, ...]
    skipped: tuple[Skipped, ...]

    @property
    def identical(self) -> int:
        return sum(d.verdict is Verdict.IDENTICAL for d in self.debs)

    @property
    def reproducible(self) -> bool:
        return bool(self.debs) and self.identical == len(self.debs)

    def to_json(self) -> str:
        data = {"first": str(self.first), "second": str(self.second),
                "identical": self.identical, "compared": len(self.debs),
                "debs": [asdict(d) for d in self.debs],
                "skipped": [asdict(s) for s in self.skipped]}
        return json.dumps(data, indent=1) + "\n"


def _states(out: Path, profile: str) -> dict[str, state.ComponentState]:
    state_dir = out / profile / "state"
    if not state_dir.is_dir():
        raise InputError(state_dir, "no build state here: build into this output folder "
                         "first (clusterstack --out … build)")
    found = {}
    for path in sorted(state_dir.glob("*.json")):
        st = state.load(state_dir, path.stem)
        if st is not None:
            found[st.component] = st
    if not found:
        raise InputError(state_dir, "no component was built into this output folder")
    return found


def diffoscope_summary(a: Path, b: Path, runner: Runner) -> str:
    """The first lines of diffoscope's text report: the members that differ."""
    if shutil.which("diffoscope") is None:
        return "diffoscope is not installed (Debian package diffoscope-minimal)"
    result = runner.run(["diffoscope", "--no-progress", "--text", "-", str(a), str(b)],
                        check=False)
    heads = [line.rstrip() for line in result.stdout.splitlines()
             if line.lstrip("│ ").startswith("├──")]
    return "\n".join(heads[:SUMMARY_LINES])


def compare(first: Path, second: Path, profile: str, runner: Runner) -> Comparison:
    """Compare every .deb of the components both output folders built from the same inputs."""
    ours, theirs = _states(first, profile), _states(second, profile)
    debs: list[DebResult] = []
    skipped: list[Skipped] = []
    for name, a in sorted(ours.items()):
        b = theirs.get(name)
        why = (Skip.NOT_BUILT if not a.source_files
               else Skip.NOT_IN_SECOND if b is None
               else Skip.OTHER_INPUTS if a.key != b.key
               else Skip.OTHER_VERSION if a.version != b.version
               else Skip.SAME_BUILD if a.finished == b.finished else None)
        if why is not None:
            skipped.append(Skipped(name, why))
            continue
        arts_a = first / profile / "artifacts" / name
        arts_b = second / profile / "artifacts" / name
        for deb in a.debs:
            if deb not in b.debs or not (arts_b / deb).is_file():
                debs.append(DebResult(name, deb, Verdict.MISSING))
            elif digest.of_file(arts_a / deb) == digest.of_file(arts_b / deb):
                debs.append(DebResult(name, deb, Verdict.IDENTICAL))
            else:
                debs.append(DebResult(name, deb, Verdict.DIFFERS,
                                      diffoscope_summary(arts_a / deb, arts_b / deb, runner)))
    return Comparison(first, second, tuple(debs), tuple(skipped))


def table(result: Comparison) -> str:
    """The comparison as a person reads it: one line per component, the differences below."""
    lines = [f"{'component':<38} {'debs':>5} {'identical':>9}"]
    by_component: dict[str, list[DebResult]] = {}
    for d in result.debs:
        by_component.setdefault(d.component, []).append(d)
    for name, debs in by_component.items():
        same = sum(d.verdict is Verdict.IDENTICAL for d in debs)
        lines.append(f"{name:<38} {len(debs):>5} {same:>9}")
        for d in debs:
            if d.verdict is not Verdict.IDENTICAL:
                lines.append(f"    {d.deb}: {d.verdict}")
                lines += [f"      {s}" for s in d.summary.splitlines()]
    for s in result.skipped:
        lines.append(f"{s.component:<38}     -         -  ({s.why})")
    lines.append(f"{result.identical} of {len(result.debs)} .debs bit-for-bit identical")
    return "\n".join(lines)
