"""A CI pipeline generated from the build graph the builder itself uses.

One job per component built from source, one job for the cheap ones
(imports and native packages), `needs` edges following Build-Depends, then
publish, verify, a short cluster verification and a report job.  Every job
runs the same CLI a person runs, so a failed job is rerun by hand with the
command it printed.

The job model here is the one every format (builder/ci/pipelines/, registered
in FORMATS) writes out:
what each job runs, which jobs' artifacts it takes and which of their files
it reads, what it hands on and what it caches.  A job sees nothing but a
fresh clone, its cache (when there is one) and the artifacts of the jobs it
names in `needs` with artifacts; the model says exactly that, so a job that
runs under a real GitLab runner (gitlab-ci-local in the test suite) runs the
same way as a GitHub job generated from it.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from builder.base import graph
from builder.base.errors import ClusterStackError
from builder.base.plugins import Plugin, Registry
from builder.base.workspace import Workspace
from builder.build import state
from builder.build.analysis import Analysis
from builder.stack.recipe import Recipe
from builder.stack.stack import Stack
from builder.tree.strategy import STRATEGIES

CHEAP = "cheap"
PROGRAM = ".venv/bin/clusterstack"
OUT = "out"
# The pipeline variable (GitLab CI/CD variable, GitHub repository variable)
# that takes components as Debian's binaries for a run instead of building
# them, as `build --import` does; the job graph stays the same.
IMPORT_VARIABLE = "CLUSTERSTACK_IMPORT"
# Pushes that touch these paths change what the pipeline builds.
TRIGGER_PATHS = ["packaging/**", "patches/**", "tasksel/**", "upstart/**", "builder/**",
                 "cluster_migrate/**", "pyproject.toml", "Makefile"]
NIGHTLY = "17 2 * * *"


FINAL_JOBS = ("publish", "verify", "verify-cluster", "report")


class JobInputError(ClusterStackError):
    """What a CI job starts from is wrong: an artifact it takes from an earlier
    job is not there (expired, or not passed on), or a pipeline variable names
    an unknown component."""

    exit_code = 2


@dataclass(frozen=True)
class Need:
    """Another job this one waits for; `artifacts`: whether it takes that job's
    artifacts (GitLab passes all of a job's artifacts or none)."""
    job: str
    artifacts: bool = True


@dataclass
class Job:
    name: str
    stage: str                       # build | publish | verify | report
    commands: list[str]
    needs: list[Need] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)   # what it hands on
    components: list[str] = field(default_factory=list)  # what a build job builds
    cache_paths: list[str] = field(default_factory=list)
    signing: bool = False            # needs the signing key from the secret store
    always: bool = False             # runs even when what it needs failed

    @property
    def artifact_root(self) -> str:
        """The folder all its artifacts lie under (GitHub's upload-artifact
        stores paths relative to it, so a download goes back there)."""
        parts = [Path(p.rstrip("/")).parent.parts if not p.endswith("/")
                 else Path(p.rstrip("/")).parts for p in self.artifacts]
        common: list[str] = []
        for column in zip(*parts, strict=False):
            if len(set(column)) != 1:
                break
            common.append(column[0])
        return "/".join(common) or "."


@dataclass
class Pipeline:
    profile: str
    jobs: list[Job]

    def job(self, name: str) -> Job:
        for j in self.jobs:
            if j.name == name:
                return j
        raise JobInputError(f"no job {name} in the pipeline (jobs: {', '.join(self.names)})")

    @property
    def names(self) -> list[str]:
        return [j.name for j in self.jobs]

    def order(self) -> list[Job]:
        deps = {j.name: {n.job for n in j.needs} for j in self.jobs}
        return [self.job(n) for n in graph.order(deps)]


class PipelineFormat(Plugin, ABC):
    """A CI system's file format for the job model."""

    path: ClassVar[str]     # where the project keeps the generated file

    @abstractmethod
    def render(self, pipeline: Pipeline) -> str: ...


FORMATS: Registry[PipelineFormat] = Registry("CI format", PipelineFormat,
                                             f"{__package__}.pipelines", {
    "gitlab": "gitlab:GitLab",
    "github": "github:GitHub",
})


def build_job_name(component: str) -> str:
    return f"build-{component}"


def job_components(recipes: Iterable[Recipe]) -> dict[str, list[str]]:
    """Build job -> the components it builds: from the stack definition alone
    (the strategies as written, whatever a run imports), so the job graph is
    the same for every run of the pipeline."""
    rs = list(recipes)
    own = {r.name for r in rs if STRATEGIES.load(r.strategy).own_ci_job}
    jobs = {build_job_name(CHEAP): sorted(r.name for r in rs if r.name not in own)}
    for name in sorted(own):
        jobs[build_job_name(name)] = [name]
    return jobs


def cheap_selection() -> str:
    """How the cheap job picks its components: by the strategies without a job of their own."""
    return " ".join(f"--strategy {n}" for n, s in STRATEGIES.items() if not s.own_ci_job)


def component_paths(profile: str, names: Sequence[str]) -> list[str]:
    """What a build job hands on: each component's packages, state and log, by
    name (never a whole folder: another job's files lie beside them)."""
    return ([f"{OUT}/{profile}/artifacts/{n}/" for n in names]
            + [f"{OUT}/{profile}/state/{n}.json" for n in names]
            + [f"{OUT}/{profile}/logs/{n}.log" for n in names])


def _check_command(cli: str, prof: str, name: str, needs: Sequence[Need]) -> str:
    taken = "".join(f" --needs {n.job}" for n in needs if n.artifacts)
    return f"{cli} ci --profile {prof} --job {name}{taken}"


def make(stack: Stack, analysis: Analysis, program: str = PROGRAM) -> Pipeline:
    """The pipeline; `program` says how its jobs call the CLI.  `stack` and its
    `analysis` must be the stack as defined (no --import): the graph is the
    same for every run, imports are a pipeline variable."""
    entries, deps = analysis.entries, analysis.deps
    prof = stack.profile.name
    cli = f"{program} --out {OUT}"
    owner = {c: job for job, comps in job_components(stack.recipes).items() for c in comps}
    jobs: list[Job] = []

    for name, comps in job_components(stack.recipes).items():
        # A build needs what its components build against, transitively: a
        # job gets only the artifacts of the jobs it names.
        against = set().union(*(graph.closure(deps, c) for c in comps)) - set(comps)
        needs = [Need(j) for j in sorted({owner[d] for d in against if d in entries})]
        select = (cheap_selection() if name == build_job_name(CHEAP)
                  else f"--component {comps[0]}")
        # What earlier jobs built comes in as artifacts, into the output folder
        # itself; --from-artifacts checks it before the build uses it.  A job
        # that needs none has nothing to check (and on a first run, no folder).
        taken = f" --from-artifacts {OUT}" if needs else ""
        jobs.append(Job(
            name=name, stage="build", components=comps, needs=needs,
            commands=[_check_command(cli, prof, name, needs),
                      f"{cli} build --profile {prof} {select}{taken}"],
            artifacts=component_paths(prof, comps),
            # The log of the build that made the cached packages comes along.
            cache_paths=component_paths(prof, comps)))
    builds = [Need(j.name) for j in jobs]
    public = Need("publish")
    jobs += [
        Job("publish", "publish",
            [_check_command(cli, prof, "publish", builds), f"{cli} publish --profile {prof}"],
            needs=builds, artifacts=[f"{OUT}/public/"], signing=True),
        Job("verify", "verify",
            [_check_command(cli, prof, "verify", [public]), f"{cli} verify --profile {prof}"],
            needs=[public], artifacts=[f"{OUT}/{prof}/logs/_verify.log"]),
        Job("verify-cluster", "verify",
            [_check_command(cli, prof, "verify-cluster", [public]),
             f"{cli} verify --cluster --scenario short --nodes 2 --profile {prof}"],
            needs=[public], artifacts=[f"{OUT}/{prof}/cluster/"]),
        # Reads the build jobs' state files and logs (GitLab passes a job's
        # artifacts whole, packages too); waits for the verifications only to
        # come last.  No input check: it reports a missing build as missing.
        Job("report", "report", [f"{cli} report --profile {prof}"],
            needs=[*builds, Need("verify", False), Need("verify-cluster", False)],
            artifacts=[f"{OUT}/{prof}/report.html", f"{OUT}/{prof}/report.json"],
            always=True),
    ]
    return Pipeline(prof, jobs)


def render(pipeline: Pipeline, fmt: str) -> str:
    return FORMATS.load(fmt)().render(pipeline)


def imports_from_env(environ: os._Environ[str] | dict[str, str] | None = None) -> list[str]:
    """The components the pipeline variable names (space or comma separated)."""
    value = (os.environ if environ is None else environ).get(IMPORT_VARIABLE, "")
    return [c for c in value.replace(",", " ").split() if c]


def check_imports(names: Sequence[str], known: set[str], job: str | None = None) -> None:
    """One error for the components the pipeline variable names that are none."""
    unknown = [c for c in names if c not in known]
    if unknown:
        where = f"job {job}: " if job else ""
        raise JobInputError(f"{where}{IMPORT_VARIABLE} names unknown component(s) "
                            f"{', '.join(unknown)} (known: {', '.join(sorted(known))})")


def _inputs(ws: Workspace, profile: str, suite: str, recipes: Sequence[Recipe],
            need: str) -> tuple[list[str], list[Path]]:
    """(what this job takes from `need`, the files that must be there)."""
    comps = job_components(recipes)
    if need in comps:
        files: list[Path] = []
        for c in comps[need]:
            st_path = state.path_for(ws.state_dir(profile), c)
            st = state.read(ws.state_dir(profile), c)
            if st is None:
                files.append(st_path)
                continue
            arts = ws.artifacts_dir(profile, c)
            files += [arts / f for f in st.files]
        return comps[need], files
    if need == "publish":
        return ["the published repository"], [
            ws.published_repo(profile) / "dists" / suite / "InRelease"]
    return [], []


def _shown(path: Path) -> str:
    """As the job's own command line names it: relative to the project folder."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def check_job(ws: Workspace, profile: str, suite: str, recipes: Sequence[Recipe], job: str,
              needs: Sequence[str], environ: dict[str, str] | None = None) -> list[str]:
    """Fail with one clear error, naming the job, when the pipeline variable
    names an unknown component or when an artifact this job takes from a job it
    needs is not there; else what it found (one line per need)."""
    known = {r.name for r in recipes}
    jobs = [*job_components(recipes), *FINAL_JOBS]
    for name in (job, *needs):
        if name not in jobs:
            raise JobInputError(f"job {job}: no job {name} in the pipeline "
                                f"(jobs: {', '.join(jobs)})")
    check_imports(imports_from_env(environ), known, job)
    found = []
    for need in needs:
        what, files = _inputs(ws, profile, suite, recipes, need)
        lost = [f for f in files if not f.exists()]
        if lost:
            shown = ", ".join(_shown(f) for f in lost[:3])
            more = f" and {len(lost) - 3} more" if len(lost) > 3 else ""
            raise JobInputError(
                f"job {job}: the artifact of job {need} is missing ({shown}{more} is not "
                f"here): it expired, or {need} failed or did not run; rerun {need}, then "
                "this job")
        named = ", ".join(what) if len(what) <= 3 else f"{len(what)} components"
        found.append(f"{need}: {named or 'nothing to check'} ({len(files)} files)")
    return found


def critical_path(pipeline: Pipeline, state_dir: Path) -> tuple[float, float, list[str]]:
    """(critical path, sum of all, the path) over measured build times of the jobs."""
    times = {}
    for job in pipeline.jobs:
        if job.stage != "build":
            continue
        times[job.name] = sum(getattr(state.read(state_dir, c), "duration", 0.0)
                              for c in job.components)
    best: dict[str, tuple[float, list[str]]] = {}
    for job in pipeline.order():
        if job.name not in times:
            continue
        before = max((best[n.job] for n in job.needs if n.job in best), default=(0.0, []),
                     key=lambda t: t[0])
        best[job.name] = (before[0] + times[job.name], [*before[1], job.name])
    path_time, path = max(best.values(), key=lambda t: t[0])
    return path_time, sum(times.values()), path
