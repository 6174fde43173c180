"""Render the Upstart job templates of upstart/ for one profile, and lint them."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import jinja2
import yaml

from builder.base.command import Runner
from builder.base.errors import InputError

from .debfiles import DebFiles
from .lint import Finding, lint_text

UPSTART_DIR = Path(__file__).resolve().parents[3] / "upstart"
EXPECT_FORKS = {"none": 0, "fork": 1, "daemon": 2}
KINDS = {"daemon", "task", "state"}


@dataclass(frozen=True)
class JobSpec:
    name: str
    template: str
    package: str
    daemon: str
    expect: str
    kind: str
    defaults: str
    requires: tuple[str, ...] = ()
    ready: str = ""
    ready_timeout: int = 0
    skip: bool = False

    @property
    def timeout_var(self) -> str:
        return self.name.upper().replace("-", "_") + "_READY_TIMEOUT"

    @property
    def stop_wait_var(self) -> str:
        return self.name.upper().replace("-", "_") + "_STOP_WAIT"

    @property
    def forks(self) -> int:
        """Forks the daemon must make before it settles, for the declared `expect`."""
        return EXPECT_FORKS[self.expect]


@dataclass(frozen=True)
class Rendered:
    job: JobSpec
    conf: str  # text of /etc/init/<name>.conf
    default_text: str | None  # text of /etc/default/<job.defaults>, if we render one
    findings: list[Finding] = field(default_factory=list)

    @property
    def conf_name(self) -> str:
        return f"{self.job.name}.conf"


INIT_SYSTEMS = ("systemd", "upstart", "sysvinit")


@dataclass(frozen=True)
class JobProfile:
    """What the job templates see of a profile."""

    name: str
    init: str
    runlevel_stop: str = "[016]"
    packages: tuple[str, ...] | None = None   # only the jobs of these packages; None: all

    def __post_init__(self) -> None:
        if self.init not in INIT_SYSTEMS:
            raise InputError("<profile>", f"unknown init system {self.init!r}", key="init")

    @classmethod
    def of(cls, profile: JobProfile | Mapping[str, Any]) -> JobProfile:
        """From a mapping of profile fields (the builder's Profile.template_context())."""
        if isinstance(profile, JobProfile):
            return profile
        for key in ("name", "init"):
            if key not in profile:
                raise InputError("<profile>", f"profile needs '{key}'")
        packages = profile.get("packages")
        return cls(profile["name"], profile["init"], profile.get("runlevel_stop", "[016]"),
                   tuple(packages) if packages is not None else None)


def load_jobs(profile: JobProfile | Mapping[str, Any],
              upstart_dir: Path = UPSTART_DIR) -> list[JobSpec]:
    """jobs.yaml with the profile's overrides applied; skipped jobs left out."""
    profile = JobProfile.of(profile)
    path = upstart_dir / "jobs.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    known = {f.name for f in fields(JobSpec)}
    shipped = profile.packages
    jobs: list[JobSpec] = []
    for raw in data.get("jobs", []):
        entry = dict(raw)
        overrides = (entry.pop("by_profile", None) or {}).get(profile.name, {})
        entry.update(overrides)
        unknown = set(entry) - known
        if unknown:
            raise InputError(path, f"unknown field(s) {sorted(unknown)}", key=entry.get("name"))
        entry["requires"] = tuple(entry.get("requires") or ())
        spec = JobSpec(**entry)
        if spec.expect not in EXPECT_FORKS:
            raise InputError(path, f"expect must be one of {sorted(EXPECT_FORKS)}",
                             key=spec.name)
        if spec.kind not in KINDS:
            raise InputError(path, f"kind must be one of {sorted(KINDS)}", key=spec.name)
        if spec.kind == "daemon" and not (spec.ready and spec.ready_timeout > 0):
            raise InputError(path, "a daemon job needs 'ready' and 'ready_timeout'",
                             key=spec.name)
        if spec.skip or (shipped is not None and spec.package not in shipped):
            continue
        jobs.append(spec)
    return jobs


def _env(upstart_dir: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(upstart_dir)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["shquote"] = shlex.quote
    return env


def _tidy(text: str) -> str:
    """Collapse the blank-line runs that optional template blocks leave behind."""
    out: list[str] = []
    for line in text.splitlines():
        if not line.strip() and (not out or not out[-1].strip()):
            continue
        out.append(line.rstrip())
    return "\n".join(out).strip("\n") + "\n"


def render_all(profile: JobProfile | Mapping[str, Any], upstart_dir: Path = UPSTART_DIR, *,
               debs: Mapping[str, DebFiles] | None = None,
               runner: Runner | None = None) -> list[Rendered]:
    """Render every job of the profile and lint it.

    `debs` maps a Debian package name to its file list; when a job's package is
    there, the job's exec path is checked against it.
    """
    ctx = JobProfile.of(profile)
    jobs = load_jobs(ctx, upstart_dir)
    env = _env(upstart_dir)
    out: list[Rendered] = []
    names = {j.name for j in jobs}
    for job in jobs:
        missing = [r for r in job.requires if r not in names]
        if missing:
            raise InputError(upstart_dir / "jobs.yaml",
                             f"requires {missing}, not rendered for {ctx.name}", key=job.name)
        dependents = [j.name for j in jobs if job.name in j.requires]
        tctx = {"job": job, "profile": ctx, "dependents": dependents}
        conf = _tidy(env.get_template(job.template).render(**tctx))
        default_tpl = upstart_dir / "defaults" / f"{job.name}.j2"
        default_text = (_tidy(env.get_template(f"defaults/{job.name}.j2").render(**tctx))
                        if default_tpl.exists() else None)
        job_debs: Sequence[DebFiles] = [debs[job.package]] if debs and job.package in debs \
            else []
        findings = lint_text(conf, f"{job.template} [{ctx.name}]", debs=job_debs,
                             runner=runner)
        out.append(Rendered(job, conf, default_text, findings))
    return out


def write(rendered: Sequence[Rendered], dest: Path) -> list[Path]:
    """Write etc/init/<job>.conf and etc/default/<file> under dest (a package root)."""
    written: list[Path] = []
    for r in rendered:
        conf = dest / "etc" / "init" / r.conf_name
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(r.conf, encoding="utf-8")
        written.append(conf)
        if r.default_text is not None:
            default = dest / "etc" / "default" / r.job.defaults
            default.parent.mkdir(parents=True, exist_ok=True)
            default.write_text(r.default_text, encoding="utf-8")
            written.append(default)
    return written


def jobs_for_package(rendered: Sequence[Rendered], package: str) -> list[Rendered]:
    """The jobs a component package carries on an Upstart profile (its daemon's jobs).

    For debhelper 9 (the Upstart era), a job goes in as debian/<package>.<job>.upstart
    with `dh_installinit --name=<job>`, and its /etc/default text merges into the
    package's own /etc/default file.
    """
    return [r for r in rendered if r.job.package == package]
