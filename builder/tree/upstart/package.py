"""The `cluster-stack-upstart` package: every job of the profile, for hosts that run Upstart.

A binary-only, Architecture: all package made with `dpkg-deb --build`.  It
carries /etc/init/<job>.conf (conffiles) and, as examples, the /etc/default
files the jobs read: the real /etc/default/<name> files belong to the component
packages (corosync ships /etc/default/corosync), and every variable the jobs
read has a default in the job itself.

No job that fails lint is shipped: the build stops with the findings.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from builder.base.command import Runner
from builder.base.errors import ClusterStackError

from .debfiles import DebFiles
from .lint import ERROR
from .render import UPSTART_DIR, JobProfile, Rendered, render_all

PACKAGE = "cluster-stack-upstart"
EXAMPLES = Path("usr/share") / PACKAGE / "default"


class JobLintError(ClusterStackError):
    """A job failed lint; its findings (file:line: severity: message) are the message."""


def _control(version: str, rendered: list[Rendered], profile: JobProfile) -> str:
    packages = sorted({r.job.package for r in rendered})
    jobs = ", ".join(r.job.name for r in rendered)
    return (
        f"Package: {PACKAGE}\n"
        f"Version: {version}\n"
        "Architecture: all\n"
        "Section: admin\n"
        "Priority: optional\n"
        "Maintainer: ClusterStack <clusterstack@localhost>\n"
        f"Suggests: {', '.join(packages)}\n"
        "Description: Upstart jobs for the Pacemaker/Corosync cluster stack\n"
        f" Upstart job files for {jobs}, rendered for {profile.name}.\n"
        " Each daemon job checks in post-start that its daemon really serves\n"
        " (corosync-cfgtool -s, cibadmin --query, ...) and fails the job\n"
        " otherwise, so `start` reports a daemon that does not come up.\n"
    )


def stage(profile: JobProfile | Mapping[str, Any], dest: Path, *,
          debs: Mapping[str, DebFiles] | None = None, upstart_dir: Path = UPSTART_DIR,
          runner: Runner | None = None) -> list[Rendered]:
    """Render and lint every job; write etc/init/*.conf and the example defaults
    under dest (a package root).  A job with a lint error stops it: nothing is
    written."""
    rendered = render_all(profile, upstart_dir, debs=debs, runner=runner or Runner())
    bad = [f for r in rendered for f in r.findings if f.severity == ERROR]
    if bad:
        raise JobLintError(f"{PACKAGE}: not shipping jobs that fail lint:\n"
                           + "\n".join(f"  {f}" for f in bad))
    for r in rendered:
        conf = dest / "etc" / "init" / r.conf_name
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(r.conf, encoding="utf-8")
        if r.default_text is not None:
            example = dest / EXAMPLES / r.job.defaults
            example.parent.mkdir(parents=True, exist_ok=True)
            example.write_text(r.default_text, encoding="utf-8")
    return rendered


def build_jobs_package(profile: JobProfile | Mapping[str, Any], out_dir: Path, *, version: str,
                       debs: Mapping[str, DebFiles] | None = None,
                       upstart_dir: Path = UPSTART_DIR,
                       runner: Runner | None = None) -> Path:
    """Stage the jobs and pack them with dpkg-deb directly (quick, for tests of a
    single job set); the archive's package is built by the `native` strategy."""
    runner = runner or Runner()
    stage_dir = out_dir / f"{PACKAGE}_{version}_all"
    if stage_dir.exists():
        runner.run(["rm", "-rf", stage_dir])
    rendered = stage(profile, stage_dir, debs=debs, upstart_dir=upstart_dir, runner=runner)
    conffiles = [f"/etc/init/{r.conf_name}" for r in rendered]
    debian = stage_dir / "DEBIAN"
    debian.mkdir(parents=True)
    (debian / "control").write_text(_control(version, rendered, JobProfile.of(profile)),
                                    encoding="utf-8")
    (debian / "conffiles").write_text("\n".join(conffiles) + "\n", encoding="utf-8")
    deb = out_dir / f"{PACKAGE}_{version}_all.deb"
    runner.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", stage_dir, deb])
    runner.run(["rm", "-rf", stage_dir])
    return deb


def into_source_tree(profile: JobProfile | Mapping[str, Any], tree: Path, *,
                     upstart_dir: Path = UPSTART_DIR,
                     runner: Runner | None = None) -> list[str]:
    """On an Upstart profile, give each binary package of the tree its daemon's jobs.

    The jobs go to debian/clusterstack-upstart/ and into the package's .install
    file as /etc/init/<job>.conf: dh_install ships them whatever the debhelper
    compat level (dh_installinit stopped handling Upstart jobs at compat 11).
    The jobs read the package's own /etc/default file, with defaults of their
    own for every variable.  Returns the job names added.
    """
    from ..render import read_control
    binaries = set(read_control(tree / "debian").binaries)
    rendered = [r for r in render_all(profile, upstart_dir, runner=runner or Runner())
                if r.job.package in binaries]
    bad = [f for r in rendered for f in r.findings if f.severity == ERROR]
    if bad:
        raise JobLintError(f"{tree.name}: not shipping jobs that fail lint:\n"
                           + "\n".join(f"  {f}" for f in bad))
    jobs_dir = tree / "debian" / "clusterstack-upstart"
    for r in rendered:
        jobs_dir.mkdir(parents=True, exist_ok=True)
        (jobs_dir / r.conf_name).write_text(r.conf, encoding="utf-8")
        install = tree / "debian" / f"{r.job.package}.install"
        lines = install.read_text(encoding="utf-8") if install.exists() else ""
        if lines and not lines.endswith("\n"):
            lines += "\n"
        install.write_text(lines + f"debian/clusterstack-upstart/{r.conf_name} etc/init/\n",
                           encoding="utf-8")
    return [r.job.name for r in rendered]
