"""A CI pipeline generated from the build graph the builder itself uses.

One job per component built from source, one job for the cheap ones
(imports and native packages), `needs` edges following Build-Depends, then
publish, verify, a short cluster verification and a report job.  Every job
runs the same CLI a person runs, so a failed job is rerun by hand with the
command it printed.  Renderers for CI systems live in builder/pipelines/.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import graph, state
from .build import Builder
from .command import Runner
from .errors import ClusterStackError

FORMATS = {"gitlab": ".gitlab-ci.yml", "github": ".github/workflows/clusterstack.yml"}
CHEAP = "cheap"
PROGRAM = ".venv/bin/clusterstack"
# Pushes that touch these paths change what the pipeline builds.
TRIGGER_PATHS = ["packaging/**", "patches/**", "tasksel/**", "upstart/**", "builder/**",
                 "cluster_migrate/**", "pyproject.toml", "Makefile"]
NIGHTLY = "17 2 * * *"


@dataclass
class Job:
    name: str
    stage: str                       # build | publish | verify | report
    commands: list[str]
    needs: list[str] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)   # what a build job builds
    cache_paths: list[str] = field(default_factory=list)
    signing: bool = False            # needs the signing key from the secret store
    always: bool = False             # runs even when what it needs failed


@dataclass
class Pipeline:
    profile: str
    jobs: list[Job]

    def job(self, name: str) -> Job:
        return next(j for j in self.jobs if j.name == name)

    def order(self) -> list[Job]:
        deps = {j.name: set(j.needs) for j in self.jobs}
        return [self.job(n) for n in graph.order(deps)]


def _build_job_name(component: str) -> str:
    return f"build-{component}"


def _component_paths(profile: str, names: list[str]) -> list[str]:
    return ([f"out/{profile}/artifacts/{n}/" for n in names]
            + [f"out/{profile}/state/{n}.json" for n in names])


def make(builder: Builder, imported: list[str] | None = None, program: str = PROGRAM,
         out: str = "out") -> Pipeline:
    """The pipeline; `program` and `out` say how its jobs call the CLI."""
    entries, deps, _ = builder.analyse()
    prof = builder.stack.profile.name
    cli = f"{program} --out {out}"
    extra = "".join(f" --import {c}" for c in imported or [])
    heavy = [n for n, e in entries.items() if e.strategy.name in ("rebuild", "package")]
    cheap = [n for n in entries if n not in heavy]
    jobs: list[Job] = []

    def build_job(name: str, components: list[str], needs: list[str], select: str) -> Job:
        paths = _component_paths(prof, components)
        return Job(
            name=name, stage="build", components=components, needs=needs,
            commands=[f"{cli} build --profile {prof} {select}{extra} --from-artifacts {out}"],
            artifacts=[*paths, *(f"out/{prof}/logs/{c}.log" for c in components)],
            cache_paths=paths)

    cheap_job = build_job(_build_job_name(CHEAP), sorted(cheap), [],
                          "--strategy import --strategy native")
    # Its first job: nothing restored yet, so whole folders stand for its many parts.
    cheap_job.artifacts = [f"out/{prof}/artifacts/", f"out/{prof}/state/", f"out/{prof}/logs/"]
    cheap_job.cache_paths = cheap_job.artifacts[:2]
    jobs.append(cheap_job)
    for name in graph.order({n: deps.get(n, set()) & set(heavy) for n in heavy}):
        needs = sorted(_build_job_name(d) for d in deps.get(name, set()) if d in heavy)
        jobs.append(build_job(_build_job_name(name), [name], needs, f"--component {name}"))
    builds = [j.name for j in jobs]
    jobs += [
        Job("publish", "publish", [f"{cli} publish --profile {prof}"], needs=builds,
            artifacts=["out/public/"], signing=True),
        Job("verify", "verify", [f"{cli} verify --profile {prof}"], needs=["publish"],
            artifacts=[f"out/{prof}/logs/_verify.log"]),
        Job("verify-cluster", "verify",
            [f"{cli} verify --cluster --scenario short --nodes 2 --profile {prof}"],
            needs=["publish"],
            artifacts=[f"out/{prof}/cluster/"]),
        Job("report", "report", [f"{cli} report --profile {prof}"],
            needs=[*builds, "verify", "verify-cluster"],
            artifacts=[f"out/{prof}/report.html", f"out/{prof}/report.json", "out/public/"],
            always=True),
    ]
    return Pipeline(prof, jobs)


def render(pipeline: Pipeline, fmt: str) -> str:
    if fmt not in FORMATS:
        raise ClusterStackError(f"unknown CI format '{fmt}' (known: {', '.join(FORMATS)})")
    module = importlib.import_module(f".pipelines.{fmt}", __package__)
    return module.render(pipeline)


@dataclass
class JobResult:
    name: str
    ok: bool
    seconds: float
    command: str


def dry_run(pipeline: Pipeline, runner: Runner, cwd: Path,
            say: Callable[[str], None] = print) -> list[JobResult]:
    """Run every job's commands on this machine, in graph order; a failed job
    stops what needs it.  Local jobs share one output folder, which stands in
    for the artifacts CI would pass between them."""
    results: dict[str, JobResult] = {}
    for job in pipeline.order():
        blocked = [n for n in job.needs if not results[n].ok]
        if blocked and not job.always:
            say(f"[ci] {job.name}: not run ({blocked[0]} failed)")
            results[job.name] = JobResult(job.name, False, 0.0, "")
            continue
        started = time.monotonic()
        ok = True
        for command in job.commands:
            say(f"[ci] {job.name}: $ {command}")
            res = runner.run(["sh", "-ec", command], cwd=cwd, check=False)
            if res.returncode != 0:
                say(f"[ci] {job.name}: FAILED (exit {res.returncode}); rerun with: {command}")
                ok = False
                break
        results[job.name] = JobResult(job.name, ok, time.monotonic() - started,
                                      "; ".join(job.commands))
        say(f"[ci] {job.name}: {'ok' if ok else 'FAILED'} in {results[job.name].seconds:.0f} s")
    return [results[j.name] for j in pipeline.order()]


def critical_path(pipeline: Pipeline, builder: Builder) -> tuple[float, float, list[str]]:
    """(critical path, sum of all, the path) over measured build times of the jobs."""
    times = {}
    for job in pipeline.jobs:
        if job.stage != "build":
            continue
        times[job.name] = sum(getattr(state.read(builder.state_dir, c), "duration", 0.0)
                              for c in job.components)
    best: dict[str, tuple[float, list[str]]] = {}
    for job in pipeline.order():
        if job.name not in times:
            continue
        before = max((best[n] for n in job.needs if n in best), default=(0.0, []),
                     key=lambda t: t[0])
        best[job.name] = (before[0] + times[job.name], [*before[1], job.name])
    path_time, path = max(best.values(), key=lambda t: t[0])
    return path_time, sum(times.values()), path
