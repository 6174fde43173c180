"""The source-strategy interface: how a component becomes .debs in our pool.

Implementations live in builder/tree/strategies/, one module each, registered in
STRATEGIES.  A strategy names its inputs (the cache key), says what it would
do (for `plan`), and produces artifacts into a directory it is given; one
that builds from source also renders its source tree (`render`) and builds
a rendered tree (`build`), which the builder calls apart so that it can read
the tree's Build-Depends and version it in between.  What the orchestrator
needs to know of a strategy is said by its capability attributes, never by
its name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

from builder.base.errors import ClusterStackError
from builder.base.plugins import Plugin, Registry
from builder.stack.specs import Spec

if TYPE_CHECKING:
    from builder.base.command import Runner
    from builder.base.fetch import Fetcher
    from builder.base.workspace import Workspace
    from builder.buildroot.backend import Backend, BuildRequest, BuildResult
    from builder.sources.upstream import UpstreamArchive
    from builder.stack.profile import Profile
    from builder.stack.recipe import Recipe


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


class Action(StrEnum):
    """What a build does with a component (`plan`'s action column)."""

    FETCH = "fetch"
    BUILD = "build"
    UP_TO_DATE = "up-to-date"
    UNAVAILABLE = "unavailable"   # the base archive is not reachable


@dataclass(frozen=True)
class Intent:
    """What `plan` reports for a component."""

    action: Action         # FETCH or BUILD: what it does when it is stale
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


S = TypeVar("S", bound=Spec)


class Strategy(Plugin, ABC, Generic[S]):
    """How one recipe's strategy turns it into artifacts."""

    # The type of the recipe's section this strategy reads (see specs.py).
    spec_type: ClassVar[type[Spec]]
    # A guess at one run's duration while the component has never run here;
    # the scheduler uses it to start long chains first.
    expected_seconds: ClassVar[float] = 30.0
    # render() and build() make its artifacts, so its Build-Depends take part
    # in the graph; otherwise produce() alone does.
    builds_from_source: ClassVar[bool] = False
    # It takes binaries unchanged from the base archive: without the archive
    # (a profile rendered and unit-tested only) it has nothing to show.
    imports_binaries: ClassVar[bool] = False
    # Its source tree starts from a source package of the base archive, so
    # without the archive there is nothing to render.
    rebuilds_upstream: ClassVar[bool] = False
    # A build long enough for its own CI job (the others share one).
    own_ci_job: ClassVar[bool] = False
    # Its builds are small and compile nothing: the stale ones of a run are built
    # in one build root, set up once (when the backend can share one), through
    # request() and complete() instead of build().
    shares_build_root: ClassVar[bool] = False

    def spec(self, ctx: Context) -> S:
        """The recipe's section, as this strategy's type."""
        spec = ctx.recipe.spec
        if not isinstance(spec, self.spec_type):
            raise TypeError(f"{ctx.recipe.name}: strategy {self.name} given a "
                            f"{type(spec).__name__}")
        return cast(S, spec)

    @abstractmethod
    def intent(self, ctx: Context) -> Intent:
        """What a build would do, for `plan`; fails on what would stop it."""

    @abstractmethod
    def inputs(self, ctx: Context) -> dict[str, str]:
        """Name -> digest of everything the result depends on."""

    @abstractmethod
    def produce(self, ctx: Context, dest: Path) -> Artifacts:
        """Make the component's artifacts in `dest`, from nothing."""

    def render(self, ctx: Context, work: Path) -> Path:
        """Render the source tree under `work`; return its directory."""
        raise ClusterStackError(f"{ctx.recipe.name}: strategy {self.name} has no source tree")

    def build(self, ctx: Context, tree: Path, dest: Path) -> Artifacts:
        """Build a tree render() made into artifacts in `dest`."""
        raise ClusterStackError(f"{ctx.recipe.name}: strategy {self.name} builds nothing")

    def request(self, ctx: Context, tree: Path, dest: Path) -> BuildRequest:
        """build()'s first half: the source package of a rendered tree, as a request
        for the backend to build into `dest`."""
        raise ClusterStackError(f"{ctx.recipe.name}: strategy {self.name} builds nothing")

    def complete(self, ctx: Context, tree: Path, request: BuildRequest,
                 result: BuildResult) -> Artifacts:
        """build()'s second half: the artifacts of a built request, checked
        (lintian is the caller's: it runs once for all that were built together)."""
        raise ClusterStackError(f"{ctx.recipe.name}: strategy {self.name} builds nothing")


STRATEGIES: Registry[Strategy[Any]] = Registry("strategy", Strategy, f"{__package__}.strategies", {
    "import": "import_debs:ImportStrategy",
    "native": "native:NativeStrategy",
    "package": "package:PackageStrategy",
    "rebuild": "rebuild:RebuildStrategy",
})


def for_recipe(recipe: Recipe) -> Strategy[Any]:
    """A fresh instance of the recipe's strategy."""
    return STRATEGIES.load(recipe.strategy)()
