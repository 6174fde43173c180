"""python -m builder.verify.installer: the installer verification on any published repository.

`clusterstack verify --installer` is the product command; this entry point
adds what only diagnosis needs: --repo (any published folder) and
--no-mirror-check (no installer view and no image choice: the signed index's
newest netboot image on Debian's mirror as it is, to see where it stops).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from builder.base.command import Runner
from builder.base.errors import ClusterStackError
from builder.base.fetch import Fetcher
from builder.base.workspace import Workspace
from builder.sources.upstream import UpstreamArchive
from builder.stack.profile import load

from ..cluster.steps import Interrupted
from . import qemu
from .harness import InstallerOptions, run_installer, table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m builder.verify.installer")
    p.add_argument("--repo", type=Path, required=True, help="a published repository folder")
    p.add_argument("--profile", default="trixie")
    p.add_argument("--out", type=Path, default=Path("out/installer"))
    p.add_argument("--no-mirror-check", action="store_true",
                   help="no installer view: the newest netboot image on the mirror as it is")
    p.add_argument("--bond-probe", action="store_true",
                   help="when the install stalls: bond ens4+ens5 in the installer and time "
                   "the fail-over there")
    p.add_argument("--stall-grace", type=float, default=60.0)
    p.add_argument("--keep-disk", action="store_true")
    p.add_argument("--cpus", type=int, default=qemu.default_cpus(),
                   help="vCPUs of the installer and the installed system (default %(default)s)")
    p.add_argument("--installed-disk", type=Path,
                   help="no install: boot this kept disk (an overlay over it) and check it")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    ws = Workspace.create(None, args.out, None)
    prof = load(ws.stack_dir, args.profile)
    upstream = UpstreamArchive(prof, Fetcher(ws.cache_dir / "downloads"), Runner(),
                               ws.state_dir(prof.name))
    options = InstallerOptions(repo=args.repo, output_dir=args.out,
                               cache_dir=ws.cache_dir / "installer",
                               check_mirror=not args.no_mirror_check,
                               stall_grace=args.stall_grace, keep_disk=args.keep_disk,
                               bond_probe=args.bond_probe,
                               installed_disk=args.installed_disk, cpus=args.cpus)
    try:
        report = run_installer(options, prof, upstream, ws.packaging_dir)
    except ClusterStackError as exc:
        print(f"clusterstack: {exc}", file=sys.stderr)
        return exc.exit_code
    except (KeyboardInterrupt, Interrupted):
        print("clusterstack: interrupted (torn down)", file=sys.stderr)
        return 130
    sys.stdout.write(table(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
