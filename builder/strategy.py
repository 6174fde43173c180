"""The source-strategy interface: how a component becomes .debs in our pool.

Implementations live in builder/strategies/, one module each.  A strategy
names its inputs (the cache key), says what it would do (for `plan`), and
produces artifacts into a directory it is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .backend import Backend
    from .command import Runner
    from .fetch import Fetcher
    from .profile import Profile
    from .recipe import Recipe
    from .upstream import UpstreamArchive
    from .workspace import Workspace


@dataclass(frozen=True)
class Context:
    """Everything a strategy may use for one component in one profile."""

    workspace: Workspace
    profile: Profile
    recipe: Recipe
    runner: Runner          # logs into this component's log file
    fetcher: Fetcher
    upstream: UpstreamArchive
    backend: Backend | None
    extra_debs: tuple[Path, ...] = ()   # packages built earlier in the same run
    parallel: int = 1                   # make jobs inside each build

    @property
    def log_path(self) -> Path | None:
        return self.runner.log_path


@dataclass(frozen=True)
class Intent:
    """What `plan` reports for a component."""

    action: str            # "fetch" or "build"
    source: str
    version: str
    detail: str
    binaries: tuple[str, ...] = ()


@dataclass
class Artifacts:
    """What a strategy produced; paths are inside the artifacts directory."""

    source: str
    version: str
    debs: list[Path] = field(default_factory=list)
    source_files: list[Path] = field(default_factory=list)   # .dsc and what it names
    lintian: dict[str, int] = field(default_factory=dict)

    @property
    def files(self) -> list[Path]:
        return [*self.debs, *self.source_files]


class Strategy(Protocol):
    name: str
    # A guess at one run's duration while the component has never run here;
    # the scheduler uses it to start long chains first.
    expected_seconds: float

    def intent(self, ctx: Context) -> Intent: ...

    def inputs(self, ctx: Context) -> dict[str, str]:
        """Name -> digest of everything the result depends on."""
        ...

    def produce(self, ctx: Context, dest: Path) -> Artifacts: ...
