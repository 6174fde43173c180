"""Real Upstart jobs (corpus/SOURCES): the valid ones lint clean, the invalid ones fail.

Validity is Upstart 1.13.2's: what init/parse_job.c and libnih's config parser
accept, plus /bin/sh being able to parse the script blocks (Upstart stores them
unparsed, so a shell syntax error only shows when the process runs).  Warnings
are allowed on valid jobs: Upstart loads them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.base.command import Runner
from builder.tree.upstart.lint import ERROR, lint_file

CORPUS = Path(__file__).parent / "corpus"
RUNNER = Runner()


def _table(name: str) -> list[list[str]]:
    lines = (CORPUS / name).read_text(encoding="utf-8").splitlines()
    return [line.split("\t") for line in lines if line and not line.startswith("#")]


SOURCES = {row[0]: row[1:] for row in _table("SOURCES")}
EXPECTED = {row[0]: (int(row[1]), row[2]) for row in _table("EXPECTED")}
VALID = sorted(n for n in SOURCES if n.startswith("valid/"))
INVALID = sorted(n for n in SOURCES if n.startswith("invalid/"))


def test_sources_lists_every_corpus_file_once() -> None:
    on_disk = {f"{p.parent.name}/{p.name}" for d in ("valid", "invalid")
               for p in (CORPUS / d).iterdir()}
    assert on_disk == set(SOURCES)
    assert all(len(row) == 2 and row[0] and row[1] for row in SOURCES.values())
    assert set(EXPECTED) == set(INVALID)
    assert len(SOURCES) >= 60
    assert len({origin.split(":")[0] for origin, _ in SOURCES.values()}) >= 10


@pytest.mark.parametrize("name", VALID)
def test_valid_job_is_accepted(name: str) -> None:
    path = CORPUS / name
    errors = [str(f) for f in lint_file(path, runner=RUNNER) if f.severity == ERROR]
    assert errors == []


@pytest.mark.parametrize("name", INVALID)
def test_invalid_job_is_rejected_at_its_line(name: str) -> None:
    path = CORPUS / name
    line, message = EXPECTED[name]
    errors = [f for f in lint_file(path, runner=RUNNER) if f.severity == ERROR]
    assert errors, f"{name} was accepted"
    assert str(errors[0]).startswith(f"{path}:{line}: error: {message}")
