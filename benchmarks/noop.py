#!/usr/bin/env python3
"""Time `clusterstack plan` and a no-op `clusterstack build` on an up-to-date output.

Issue 19: both take at most a second when nothing changed.  Each command runs
as its own process (interpreter start and imports are part of what a user
waits for), RUNS times; the median and the spread are printed.

The output folder must be up to date: `plan --json` is asked first, and the
script stops if it would fetch or build anything, so that it never starts a
real build.

Run: .venv/bin/python benchmarks/noop.py --out DIR [--profile trixie] [--cache DIR]
                                         [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def clusterstack(args: argparse.Namespace, *command: str) -> list[str]:
    return [sys.executable, "-m", "builder.cli", "--stack", str(ROOT), "--out", str(args.out),
            *(["--cache", str(args.cache)] if args.cache else []),
            *command, "--profile", args.profile]


def run(argv: list[str]) -> float:
    """Wall seconds of one run; its output is discarded, a failure stops the script."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="an up-to-date output folder")
    p.add_argument("--cache", type=Path, help="download cache (default: the builder's)")
    p.add_argument("--profile", default="trixie")
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    plan = subprocess.run(clusterstack(args, "plan", "--json"), cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if plan.returncode != 0:
        sys.exit(f"plan failed:\n{plan.stderr}")
    pending = [r["component"] for r in json.loads(plan.stdout) if r["action"] != "up-to-date"]
    if pending:
        sys.exit(f"{args.out} is not up to date (would fetch or build {', '.join(pending)}); "
                 "build it first: this benchmark times only the no-op")

    for label, command in (("plan", ("plan",)), ("no-op build", ("build",))):
        times = sorted(run(clusterstack(args, *command)) for _ in range(args.runs))
        print(f"{label:<12} median {statistics.median(times):.2f} s wall over {args.runs} runs "
              f"(min {times[0]:.2f}, max {times[-1]:.2f})", flush=True)


if __name__ == "__main__":
    main()
