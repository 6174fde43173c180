from __future__ import annotations

import os
from pathlib import Path

import pytest

from builder.base.command import Runner
from builder.tree.upstart.debfiles import DebFiles, read_deb
from builder.tree.upstart.jobrun import Daemon
from builder.tree.upstart.lint import Finding, lint_text
from builder.tree.upstart.package import build_jobs_package
from builder.tree.upstart.render import render_all

from .debcache import fetch_debs
from .roots import KEEPALIVED_CONF, root_tarball, unpack

# Every package whose daemon a job of upstart/jobs.yaml execs (trixie names).
TRIXIE_PACKAGES = [
    "corosync", "pacemaker", "dlm-controld", "corosync-qdevice", "corosync-qnetd",
    "keepalived", "sbd", "drbd-utils", "ocfs2-tools", "heartbeat",
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


@pytest.fixture(scope="session")
def stack_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trixie root with the cluster stack and our cluster-stack-upstart installed."""
    if os.geteuid() != 0:
        pytest.skip("running jobs in a root needs root (namespaces, chroot, strace)")
    base = tmp_path_factory.mktemp("stack")
    root = unpack(root_tarball(), base / "root")
    (root / "etc/keepalived").mkdir(exist_ok=True)
    (root / "etc/keepalived/keepalived.conf").write_text(KEEPALIVED_CONF)
    deb = build_jobs_package({"name": "trixie", "init": "systemd"}, root / "tmp",
                             version="0.1.0+cluster13")
    Runner().run(["chroot", root, "dpkg", "-i", f"/tmp/{deb.name}"])
    return root


@pytest.fixture(scope="session")
def stack_jobs(stack_root: Path) -> dict[str, Daemon]:
    """The daemon jobs as installed in the root by cluster-stack-upstart."""
    return {r.job.name: Daemon(r.job, (stack_root / "etc/init" / r.conf_name).read_text())
            for r in render_all({"name": "trixie", "init": "systemd"})}
