#!/usr/bin/env python3
"""Build the same inputs twice and compare every .deb (issue 19, reproducible builds).

The two builds go to fresh output folders at different paths and run at
different times (and sbuild builds each in a build directory of its own
random name), the variations reprotest makes first.  Components that share
their input key in both are compared .deb by .deb; a .deb that differs gets
diffoscope's summary.  Prints the table and writes OUT/reproducible.json;
exits 1 unless every compared .deb is identical.

Run: .venv/bin/python benchmarks/reproducible.py --out DIR [--profile trixie]
         [--component C ...] [--strategy native ...] [--jobs N]
     .venv/bin/python benchmarks/reproducible.py --compare FIRST SECOND   # existing outputs
Without --component/--strategy it builds every component the profile builds
(pacemaker included: hours on 2 cores).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from builder.base.command import Runner  # noqa: E402
from builder.base.errors import ClusterStackError  # noqa: E402
from builder.build import reproducible  # noqa: E402
from builder.cli import main as clusterstack  # noqa: E402


def build(out: Path, args: argparse.Namespace, scratch: str) -> float:
    argv = ["--out", str(out), "build", "--profile", args.profile, "--jobs", str(args.jobs),
            "--scratch", scratch]
    for c in args.component or ():
        argv += ["--component", c]
    for s in args.strategy or ():
        argv += ["--strategy", s]
    started = time.monotonic()
    if clusterstack(argv) != 0:
        raise SystemExit(f"build into {out} failed; its logs: {out / args.profile / 'logs'}")
    return time.monotonic() - started


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, help="folder for the two builds")
    p.add_argument("--profile", default="trixie")
    p.add_argument("--component", action="append")
    p.add_argument("--strategy", action="append")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--compare", nargs=2, type=Path, metavar=("FIRST", "SECOND"),
                   help="compare two existing output folders, build nothing")
    args = p.parse_args()
    if args.compare:
        first, second = args.compare
        result_dir = second
    else:
        if args.out is None:
            p.error("--out DIR or --compare FIRST SECOND")
        first = args.out / "first"
        # Another path, of another length, and build roots unpacked elsewhere.
        second = args.out / "second-build-at-another-path"
        for where in (first, second):
            if where.exists():
                p.error(f"{where} exists: the builds need fresh output folders")
        took = [build(first, args, "auto"), build(second, args, "none")]
        print(f"first build {took[0]:.0f} s, second build {took[1]:.0f} s")
        result_dir = args.out
    try:
        result = reproducible.compare(first, second, args.profile, Runner())
    except ClusterStackError as exc:
        print(f"reproducible: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(reproducible.table(result))
    out = result_dir / "reproducible.json"
    out.write_text(result.to_json())
    print(f"written: {out}")
    return 0 if result.reproducible else 1


if __name__ == "__main__":
    sys.exit(main())
