"""python -m builder.verify.cluster: run the cluster verification by itself (benchmarks, debugging).

`clusterstack verify --cluster` is the user-facing way; this takes the same options.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from pathlib import Path

from .faults import SCENARIOS, SelectionError, select
from .harness import run_cluster
from .options import DEFAULT_CACHE, DEFAULT_MIRROR, ClusterOptions, ClusterReport
from .report import repeat_table, summarize, table, write_repeat
from .steps import Interrupted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m builder.verify.cluster", description=__doc__)
    parser.add_argument("--suite", default="trixie")
    parser.add_argument("--mirror", default=DEFAULT_MIRROR)
    parser.add_argument("--source", action="append", default=[], metavar="LINE",
                        help="apt source line of our archive (repeatable); with it the nodes "
                             "install ubuntu-cluster")
    parser.add_argument("--key", action="append", default=[], type=Path, metavar="FILE",
                        help="key file for a signed-by= path of --source (matched by name)")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--scenario", default="full", metavar="short|full|NAME[,NAME]",
                        help="short, full (every scenario) or a list of: "
                             + ", ".join(s.name for s in SCENARIOS))
    parser.add_argument("--repeat", type=int, metavar="N",
                        help="run N times (a fresh cluster each), print p50/p95 per scenario")
    parser.add_argument("--output", type=Path, default=Path("out/cluster"))
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="parent of the run's scratch directory (default CACHE_DIR/runs)")
    parser.add_argument("--token-ms", type=int, default=1000)
    parser.add_argument("--shell", choices=("crmsh", "pcs"), default=None,
                        help="configuration shell to install and drive (default: crmsh; "
                             "pcs with --init systemd, whose bootstrap tool it is)")
    parser.add_argument("--fence-action", choices=("reboot", "off"), default="reboot")
    parser.add_argument("--init", choices=("script", "systemd"), default="script",
                        help="systemd: nodes boot systemd (systemd-nspawn), the packages' "
                             "units start the daemons and the bootstrap tool (--shell pcs) "
                             "creates the cluster")
    parser.add_argument("--howto", type=Path, metavar="PAGE",
                        help="with --init systemd: the page's commands make the cluster, "
                             "word for word (docs/howto-mariadb-failover.md)")
    parser.add_argument("--howto-repo", type=Path, metavar="DIR",
                        help="the published repository the how-to's nodes install from")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    try:
        select(args.scenario, args.nodes)
    except SelectionError as exc:
        parser.error(f"--scenario: {exc}")  # exit status 2, before anything starts
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s: %(message)s")
    try:
        options = ClusterOptions(suite=args.suite, mirror=args.mirror,
                                 extra_sources=args.source, extra_keys=args.key,
                                 nodes=args.nodes, scenario=args.scenario,
                                 output_dir=args.output, cache_dir=args.cache_dir,
                                 work_dir=args.work_dir, token_ms=args.token_ms,
                                 fence_action=args.fence_action,
                                 shell=args.shell or ("pcs" if args.init == "systemd"
                                                      else "crmsh"),
                                 init=args.init, howto=args.howto,
                                 howto_repo=args.howto_repo)
    except ValueError as exc:  # e.g. --nodes 1
        parser.error(str(exc))
    try:
        if args.repeat is not None:
            return repeat(options, args.repeat)
        report = run_cluster(options)
    except (KeyboardInterrupt, Interrupted):
        # run_cluster has torn everything down and written the report by now.
        sys.stderr.write(f"interrupted (torn down); report: {args.output}\n")
        return 130
    sys.stdout.write(table(report))
    sys.stdout.write(f"report: {args.output / 'cluster-report.json'}\n")
    return 0 if report.ok else 1


def repeat(options: ClusterOptions, runs: int) -> int:
    """The same selection `runs` times, each on a fresh cluster in OUTPUT/run-K."""
    started = time.monotonic()
    reports: list[ClusterReport] = []
    for index in range(1, runs + 1):
        out = options.output_dir / f"run-{index}"
        report = run_cluster(dataclasses.replace(options, output_dir=out))
        reports.append(report)
        sys.stdout.write(f"run {index}/{runs}: {'PASS' if report.ok else 'FAIL'}"
                         f"{'' if report.ok else ': ' + str(report.error)} ({out})\n")
        sys.stdout.flush()
    stats = summarize(reports)
    wall = time.monotonic() - started
    path = write_repeat(stats, runs, wall, reports, options.output_dir)
    sys.stdout.write(repeat_table(stats, runs, wall))
    sys.stdout.write(f"report: {path}\n")
    return 0 if all(r.ok for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
