"""What became of one component in a build run: shared by the builder and the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


class Status(StrEnum):
    # A StrEnum compares equal to its value and serialises as it, so
    # report.json and anything that compares with "built" keep working.
    UP_TO_DATE = "up-to-date"
    FETCHED = "fetched"
    BUILT = "built"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def ok(self) -> bool:
        return self not in (Status.FAILED, Status.SKIPPED)


@dataclass
class Outcome:
    component: str
    status: Status
    version: str = ""
    stage: str = ""
    duration: float = 0.0
    started: float = 0.0  # seconds since the run started
    log: Path | None = None
    error: str = ""
    exit_code: int = 0    # of the error that failed it: 3 for a failed integrity check
    lintian: dict[str, int] = field(default_factory=dict)

    def __setattr__(self, name: str, value: object) -> None:
        # The builder sets the status as it goes, also from plain strings;
        # converting here makes a misspelt status fail where it is set
        # instead of reading as ok in the report.
        if name == "status":
            value = Status(value)
        super().__setattr__(name, value)

    @property
    def ok(self) -> bool:
        return self.status.ok
