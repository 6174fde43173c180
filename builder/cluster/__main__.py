"""python -m builder.cluster: run the cluster verification by itself (benchmarks, debugging).

`clusterstack verify --cluster` is the user-facing way; this takes the same options.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .harness import run_cluster
from .options import DEFAULT_CACHE, DEFAULT_MIRROR, ClusterOptions
from .report import table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m builder.cluster", description=__doc__)
    parser.add_argument("--suite", default="trixie")
    parser.add_argument("--mirror", default=DEFAULT_MIRROR)
    parser.add_argument("--source", action="append", default=[], metavar="LINE",
                        help="apt source line of our archive (repeatable); with it the nodes "
                             "install ubuntu-cluster")
    parser.add_argument("--key", action="append", default=[], type=Path, metavar="FILE",
                        help="key file for a signed-by= path of --source (matched by name)")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--scenario", choices=("short", "full"), default="full")
    parser.add_argument("--output", type=Path, default=Path("out/cluster"))
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--token-ms", type=int, default=1000)
    parser.add_argument("--shell", choices=("crmsh", "pcs"), default=None,
                        help="configuration shell to install and drive (default: crmsh; "
                             "pcs with --init systemd, whose bootstrap tool it is)")
    parser.add_argument("--fence-action", choices=("reboot", "off"), default="reboot")
    parser.add_argument("--init", choices=("script", "systemd"), default="script",
                        help="systemd: nodes boot systemd (systemd-nspawn), the packages' "
                             "units start the daemons and the bootstrap tool (--shell pcs) "
                             "creates the cluster")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s: %(message)s")
    options = ClusterOptions(suite=args.suite, mirror=args.mirror, extra_sources=args.source,
                             extra_keys=args.key, nodes=args.nodes, scenario=args.scenario,
                             output_dir=args.output, cache_dir=args.cache_dir,
                             token_ms=args.token_ms, fence_action=args.fence_action,
                             shell=args.shell or ("pcs" if args.init == "systemd" else "crmsh"),
                             init=args.init)
    report = run_cluster(options)
    sys.stdout.write(table(report))
    sys.stdout.write(f"report: {args.output / 'cluster-report.json'}\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
