from __future__ import annotations

from pathlib import Path

import pytest

from builder.upstart.debfiles import DebFiles, read_deb
from builder.upstart.lint import Finding, lint_text

from .debcache import fetch_debs

# Every package whose daemon a job of upstart/jobs.yaml execs (trixie names).
TRIXIE_PACKAGES = [
    "corosync", "pacemaker", "dlm-controld", "corosync-qdevice", "corosync-qnetd",
    "keepalived", "sbd", "drbd-utils", "ocfs2-tools",
]


@pytest.fixture(scope="session")
def trixie_debs() -> dict[str, Path]:
    return fetch_debs(TRIXIE_PACKAGES)


@pytest.fixture(scope="session")
def trixie_files(trixie_debs: dict[str, Path]) -> dict[str, DebFiles]:
    return {name: read_deb(path) for name, path in trixie_debs.items()}


def lint(text: str, path: str = "job.conf", **kw) -> list[Finding]:
    return lint_text(text, path, **kw)


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]
