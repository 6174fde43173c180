#!/usr/bin/env python3
"""Measure the from-source archive build and print the figures.

  1. full archive from source, cold (fresh output folder), with -j 2;
  2. the same sources built by plain sbuild one after the other, and the ratio.
     Plain means sbuild's defaults on this host (build roots in /tmp, one make
     job), lintian off.  Two more baselines separate what the orchestrator's
     parts give: --tmpfs-baseline unpacks the build roots where the cold build
     did (its --scratch choice), --parallel-baseline gives sbuild
     DEB_BUILD_OPTIONS=parallel=N;
  3. a no-op build;
  4. one changed patch: which components rebuilt, and the wall time.

Run: .venv/bin/python benchmarks/archive.py [--profile trixie] [--out DIR] [--skip-sequential]
                                            [--scratch auto|none|DIR] [--tmpfs-baseline]
                                            [--parallel-baseline]
Takes about an hour on 2 cores (the sequential sbuild runs are half of it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from debian.deb822 import Dsc  # noqa: E402

from builder.base import graph  # noqa: E402
from builder.base.command import Runner  # noqa: E402
from builder.base.workspace import Workspace  # noqa: E402
from builder.build import state  # noqa: E402
from builder.build.store import built_debs  # noqa: E402
from builder.buildroot.backend import BuildRequest  # noqa: E402
from builder.buildroot.backends import scratch  # noqa: E402
from builder.buildroot.backends.chroot import tarball_path  # noqa: E402
from builder.buildroot.backends.unshare import run_sbuild  # noqa: E402
from builder.cli import main as clusterstack  # noqa: E402
from builder.stack import profile as profiles  # noqa: E402
from builder.stack import recipe as recipes  # noqa: E402

PATCH = ROOT / "patches/drbd-utils/0002-usage-count-no.patch"
CPUS = os.cpu_count() or 1


@dataclass(frozen=True)
class Baseline:
    label: str
    tag: str                    # names its log: sequential-sbuild-<tag>.log
    parallel: int = 1
    scratch: Path | None = None  # None: sbuild's own /tmp


def timed_build(out: Path, profile: str, where: str, *extra: str) -> tuple[float, dict]:
    started = time.monotonic()
    rc = clusterstack(["--out", str(out), "build", "-j", "2", "--parallel", str(CPUS),
                       "--scratch", where, "--profile", profile, *extra])
    wall = time.monotonic() - started
    if rc != 0:
        sys.exit(f"build failed (exit {rc}); see {out}/{profile}/logs")
    return wall, json.loads((out / profile / "report.json").read_text())


def sequential_sbuild(out: Path, profile_name: str, cold: dict, base: Baseline
                      ) -> tuple[float, list]:
    """Plain sbuild, one source after the other, on the .dsc files the cold run made.

    Each build gets what the orchestrator gave it (our debs of what it builds
    against, the recipe's extra build-root packages) and nothing else: no
    rendering, no lintian, no scheduling.
    """
    prof = profiles.load(ROOT, profile_name)
    ws = Workspace.create(ROOT, out)
    tarball = tarball_path(ws.cache_dir, prof)
    runner = Runner(log_path=out / f"sequential-sbuild-{base.tag}.log")
    built = [c["component"] for c in cold["components"] if c["status"] == "built"]
    states = {n: state.read(ws.state_dir(profile_name), n) for n in built}
    deps = graph.edges({n: set(s.binaries) for n, s in states.items()},
                       {n: s.build_depends for n, s in states.items()})
    rows = []
    for name in graph.order(deps):
        dsc = ws.artifacts_dir(profile_name, name) / next(
            f for f in states[name].source_files if f.endswith(".dsc"))
        extra = built_debs(ws, profile_name, graph.closure(deps, name))
        recipe = recipes.load(ws.packaging_dir / name, profile_name)
        indep = set(Dsc(dsc.read_text())["Architecture"].split()) == {"all"}
        with tempfile.TemporaryDirectory(dir=out) as tmp:
            req = BuildRequest(dsc=dsc, out_dir=Path(tmp), arch_all=True, arch_any=not indep,
                               extra_debs=extra, add_depends=tuple(recipe.add_depends),
                               parallel=base.parallel)
            started = time.monotonic()
            rc = run_sbuild(prof, tarball, base.scratch, req, runner, inherited={},
                            check=False).returncode
            rows.append((name, time.monotonic() - started, rc))
    return sum(t for _, t, _ in rows), rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="trixie")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--skip-sequential", action="store_true")
    ap.add_argument("--scratch", default="auto",
                    help="the cold build's --scratch (default: auto)")
    ap.add_argument("--tmpfs-baseline", action="store_true",
                    help="also time sbuild one after the other unpacking where the cold "
                    "build did")
    ap.add_argument("--parallel-baseline", action="store_true",
                    help="also time sbuild one after the other with parallel=<CPUs>")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="cs-bench-"))
    if out.exists():
        shutil.rmtree(out)
    print(f"output folder: {out}", flush=True)

    where = scratch.choose(args.scratch)
    cold, report = timed_build(out, args.profile, args.scratch)
    built = [c["component"] for c in report["components"] if c["status"] == "built"]
    print(f"\n== cold full build (-j 2, parallel={CPUS}, build roots in "
          f"{where or '/tmp'}): {cold:.0f} s wall, "
          f"{len(built)} built from source "
          f"({', '.join(built)}), sum of component times {report['sum_of_build_seconds']} s",
          flush=True)

    cold_report = report
    noop, report = timed_build(out, args.profile, args.scratch)
    print(f"== no-op build: {noop:.2f} s", flush=True)

    original = PATCH.read_bytes()
    try:
        PATCH.write_bytes(original.replace(b"Description:", b"Description: (bench)", 1))
        one, report = timed_build(out, args.profile, args.scratch)
    finally:
        PATCH.write_bytes(original)
    rebuilt = [c["component"] for c in report["components"] if c["status"] == "built"]
    print(f"== one changed patch ({PATCH.name}): rebuilt {', '.join(rebuilt)} in {one:.0f} s",
          flush=True)

    if args.skip_sequential:
        return
    runs = [Baseline("plain sbuild (its defaults: build roots in /tmp, one make job)", "plain")]
    if args.tmpfs_baseline and where:
        runs.append(Baseline(f"sbuild with build roots in {where}", "tmpfs", scratch=where))
    if args.parallel_baseline:
        runs.append(Baseline(f"sbuild with DEB_BUILD_OPTIONS=parallel={CPUS}",
                             f"parallel{CPUS}", parallel=CPUS))
    for base in runs:
        seq, rows = sequential_sbuild(out, args.profile, cold_report, base)
        print(f"== {base.label}, one after the other: " +
              ", ".join(f"{n} {t:.0f} s" + (f" (FAILED, exit {rc})" if rc else "")
                        for n, t, rc in rows))
        print(f"   sum {seq:.0f} s; ratio cold/sequential = {cold / seq:.2f}"
              + (" (goal <= 0.8)" if base.tag == "plain" else ""), flush=True)
        if any(rc for _, _, rc in rows):
            sys.exit(f"an sbuild failed; see {out}/sequential-sbuild-{base.tag}.log")


if __name__ == "__main__":
    main()
