"""`clusterstack verify --installer`: the installer verification on the published repository."""

from __future__ import annotations

import sys

from builder.base.command import Runner
from builder.base.errors import ClusterStackError
from builder.base.fetch import Fetcher
from builder.base.progress import Progress
from builder.sources.upstream import UpstreamArchive
from builder.stack.stack import Stack

from ..cluster.steps import Interrupted
from ..verify import VerifyFailed
from .harness import InstallerOptions, run_installer, table


def run(stack: Stack, fetcher: Fetcher, progress: Progress) -> int:
    ws, prof = stack.workspace, stack.profile
    if not prof.reachable:
        raise ClusterStackError(f"profile {prof.name}: its archive is not reachable from here")
    if prof.vendor != "debian":
        raise ClusterStackError(f"profile {prof.name}: the installer test boots Debian's "
                                "debian-installer; it is for Debian profiles")
    out = ws.profile_out(prof.name) / "installer"
    progress.say("installer", "start", f"debian-installer in qemu, output in {out}")
    upstream = UpstreamArchive(prof, fetcher, Runner(), ws.state_dir(prof.name))
    options = InstallerOptions(repo=ws.published_repo(prof.name), output_dir=out,
                               cache_dir=ws.cache_dir / "installer")
    try:
        report = run_installer(options, prof, upstream, ws.packaging_dir)
    except Interrupted as exc:  # SIGTERM/SIGHUP, after the teardown: exit as for Ctrl-C
        raise KeyboardInterrupt from exc
    sys.stdout.write(table(report))
    if not report.ok:
        raise VerifyFailed(f"installer verification failed: {report.error}; logs and "
                           f"installer-report.json in {out}")
    return 0
