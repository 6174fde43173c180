"""`clusterstack verify --cluster`: the cluster harness on the published repository."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from builder.base.command import Runner
from builder.base.errors import ClusterStackError, InputError
from builder.base.progress import Progress
from builder.base.serve import serve
from builder.repo.publish import KEY_BASENAME
from builder.stack.stack import Stack

from ..verify import VerifyFailed
from .faults import SelectionError, select
from .harness import run_cluster
from .options import ClusterOptions
from .report import table
from .steps import Interrupted


def base_source_lines(stack: Stack) -> list[str]:
    """The profile's archives beyond its primary suite (updates, security) as apt lines."""
    prof = stack.profile
    lines = []
    for index, archive in enumerate(prof.archives):
        for suite in archive.suites:
            if index == 0 and suite == prof.suite:
                continue  # mmdebstrap's own mirror argument
            lines.append(f"deb {archive.uri} {suite} {' '.join(archive.components)}")
    return lines


def run(args: argparse.Namespace, stack: Stack, runner: Runner, progress: Progress) -> int:
    """Form a cluster from our repository's ubuntu-cluster; exit non-zero when a step fails."""
    del runner  # the harness keeps its own command log in the output folder
    scenario = getattr(args, "scenario", None) or "full"
    if not getattr(args, "vm", False):
        try:
            select(scenario, args.nodes)
        except SelectionError as exc:
            raise InputError("--scenario", str(exc)) from exc
    ws, prof = stack.workspace, stack.profile
    if not prof.reachable:
        raise ClusterStackError(f"profile {prof.name}: its archive is not reachable from here")
    repo = ws.published_repo(prof.name)
    if not (repo / "dists" / prof.suite / "InRelease").is_file():
        raise ClusterStackError(f"no published repository at {repo} "
                                f"(run `clusterstack publish --profile {prof.name}` first)")
    page = getattr(args, "howto", None)
    if getattr(args, "shell", None) and getattr(args, "init", None) != "systemd":
        raise InputError("--shell", "the bootstrap tool is chosen on the systemd tier: "
                         "add --init systemd")
    if page is not None and getattr(args, "shell", None) == "crmsh":
        raise InputError("--howto", "the how-to page uses pcs; leave out --shell crmsh")
    if page is not None and getattr(args, "init", None) != "systemd":
        raise InputError("--howto", "the how-to runs on the systemd tier: add --init systemd")
    if getattr(args, "vm", False):
        return run_vm(stack, repo, progress, gfs2=not getattr(args, "no_gfs2", False),
                      lvs=not getattr(args, "no_lvs", False))
    out = ws.profile_out(prof.name) / "cluster"
    if getattr(args, "init", None) == "systemd":
        out = ws.profile_out(prof.name) / (
            "cluster-howto" if page is not None
            else f"cluster-systemd-{args.shell}" if getattr(args, "shell", None)
            else "cluster-systemd")
    progress.say("cluster", "start", f"{args.nodes} nodes, output in {out}")
    with serve(repo) as url:
        ours = (f"deb [signed-by=/etc/apt/keyrings/{KEY_BASENAME}.gpg] {url}/ {prof.suite} "
                f"{' '.join(prof.components)}")
        options = ClusterOptions(
            suite=prof.suite, mirror=prof.mirror,
            extra_sources=[*base_source_lines(stack), ours],
            extra_keys=[repo / f"{KEY_BASENAME}.gpg"],
            nodes=args.nodes, scenario=scenario,
            output_dir=out, cache_dir=ws.cache_dir / "cluster",
            init=getattr(args, "init", None) or "script",
            shell=getattr(args, "shell", None)
            or ("pcs" if getattr(args, "init", None) == "systemd" else "crmsh"),
            howto=page, howto_repo=repo if page is not None else None)
        try:
            report = run_cluster(options)
        except Interrupted as exc:  # SIGTERM/SIGHUP, after the teardown: exit as for Ctrl-C
            raise KeyboardInterrupt from exc
    sys.stdout.write(table(report))
    if not report.ok:
        raise VerifyFailed(f"cluster verification failed: {report.error}; logs and "
                           f"cluster-report.json in {out}")
    return 0


def run_vm(stack: Stack, repo: Path, progress: Progress, gfs2: bool = True,
           lvs: bool = True) -> int:
    """The kernel tier: two qemu guests from our repository, DRBD + MariaDB fail-over
    (with GFS2 and LVS unless left out)."""
    from .vm import VmOptions, run_vm_cluster
    from .vm import table as vm_table

    ws, prof = stack.workspace, stack.profile
    out = ws.profile_out(prof.name) / "cluster-vm"
    progress.say("cluster", "start", f"2 qemu guests, output in {out}")
    with serve(repo) as url:
        ours = (f"deb [signed-by=/etc/apt/keyrings/{KEY_BASENAME}.gpg] {url}/ {prof.suite} "
                f"{' '.join(prof.components)}")
        try:
            report = run_vm_cluster(VmOptions(
                suite=prof.suite, mirror=prof.mirror,
                extra_sources=[*base_source_lines(stack), ours],
                extra_keys=[repo / f"{KEY_BASENAME}.gpg"],
                output_dir=out, cache_dir=ws.cache_dir / "cluster", gfs2=gfs2,
                lvs=lvs))
        except Interrupted as exc:
            raise KeyboardInterrupt from exc
    sys.stdout.write(vm_table(report))
    if not report.ok:
        raise VerifyFailed(f"VM cluster verification failed: {report.error}; logs and "
                           f"vm-cluster-report.json in {out}")
    return 0
