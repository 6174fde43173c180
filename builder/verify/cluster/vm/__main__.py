"""python -m builder.verify.cluster.vm: run the kernel tier by itself (benchmarks, debugging).

`clusterstack verify --cluster --vm` is the user-facing way; it serves our published
repository and passes it here as --source/--key.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..options import DEFAULT_CACHE, DEFAULT_MIRROR
from .harness import VmOptions, run_vm_cluster, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m builder.verify.cluster.vm",
                                     description=__doc__)
    parser.add_argument("--suite", default="trixie")
    parser.add_argument("--mirror", default=DEFAULT_MIRROR)
    parser.add_argument("--source", action="append", default=[],
                        help="one-line apt source of our archive (repeatable)")
    parser.add_argument("--key", action="append", default=[], type=Path,
                        help="key file named by a source's signed-by= (repeatable)")
    parser.add_argument("--output", type=Path, default=Path("out/cluster-vm"))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--accel", choices=("auto", "tcg", "kvm"), default="auto")
    parser.add_argument("--token-ms", type=int, default=1000)
    parser.add_argument("--no-gfs2", action="store_true", help="leave out DLM + GFS2")
    parser.add_argument("--no-lvs", action="store_true",
                        help="leave out keepalived's LVS load balancing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    report = run_vm_cluster(VmOptions(
        suite=args.suite, mirror=args.mirror, extra_sources=args.source, extra_keys=args.key,
        output_dir=args.output, cache_dir=args.cache, accel=args.accel,
        token_ms=args.token_ms, gfs2=not args.no_gfs2,
        lvs=not args.no_lvs))
    sys.stdout.write(table(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
