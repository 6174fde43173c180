#!/usr/bin/env python3
"""What a cluster node weighs: our archive against Debian's own stack.

In one fresh trixie root (mmdebstrap minbase), with apt's defaults
(Recommends on), install
  - Debian's stack: pacemaker corosync crmsh resource-agents fence-agents,
    from Debian alone;
  - ours: ubuntu-cluster, from Debian plus our published repository
    (served on 127.0.0.1);
each from the same starting point, and print packages, installed MiB, cloud
SDKs and the install's wall time.

    .venv/bin/python benchmarks/node_weight.py [--out OUT] [--profile trixie]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from builder.base.command import Runner  # noqa: E402
from builder.base.serve import serve  # noqa: E402
from builder.stack import profile as profiles  # noqa: E402
from builder.verify import rootfs  # noqa: E402
from builder.verify.verify import add_repository, installed_sizes, weigh  # noqa: E402

DEBIAN_STACK = ["pacemaker", "corosync", "crmsh", "resource-agents", "fence-agents"]


def measure(tarball: Path, work: Path, runner: Runner, packages: list[str],
            repo: Path | None, suite: str) -> tuple[str, float]:
    root = rootfs.Root(rootfs.unpack(tarball, work, runner), runner)
    root.forbid_service_starts()
    with serve(repo or work) as url:
        if repo:
            add_repository(root, repo, url, suite)
        root.run(["apt-get", "update"])
        before = installed_sizes(root)
        started = time.monotonic()
        root.run(["apt-get", "install", "-y", *packages], timeout=3600)
        seconds = time.monotonic() - started
        weight = weigh(before, installed_sizes(root))
    shutil.rmtree(work)
    sdks = f", cloud SDKs: {', '.join(weight.cloud_sdks)}" if weight.cloud_sdks else ""
    return f"{weight}{sdks}", seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "out")
    ap.add_argument("--profile", default="trixie")
    args = ap.parse_args()
    prof = profiles.load(ROOT, args.profile)
    repo = args.out / "public" / prof.name
    if not (repo / "dists" / prof.suite / "InRelease").is_file():
        print(f"no published repository at {repo}: run `make archive` first", file=sys.stderr)
        return 2
    runner = Runner()
    with tempfile.TemporaryDirectory(prefix="node-weight-") as tmp:
        tarball = rootfs.create_tarball(prof, Path(tmp) / "root.tar", runner)
        rows = [("Debian's stack (" + " ".join(DEBIAN_STACK) + ")",
                 *measure(tarball, Path(tmp) / "debian", runner, DEBIAN_STACK, None,
                          prof.suite)),
                ("ours (ubuntu-cluster)",
                 *measure(tarball, Path(tmp) / "ours", runner, ["ubuntu-cluster"], repo,
                          prof.suite))]
    width = max(len(r[0]) for r in rows)
    print(f"{'node':<{width}}  {'apt-get install':>15}  weight")
    for name, weight, seconds in rows:
        print(f"{name:<{width}}  {seconds:>13.0f} s  {weight}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
