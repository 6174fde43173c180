#!/usr/bin/env python3
"""What an installer rerun downloads from Debian once the proxy is warm, in a minute.

A second `clusterstack verify --installer` takes as long as the first (emulated
CPU, about 80 min here). The proxy's answer does not depend on that time, only on
the requests. This script asks the warm apt-cacher-ng for every file that the
cold install fetched, in the same order and under the same path (its log's `O`
lines). It then prints how much the proxy fetched from Debian's mirror for that
(`I` lines): index files it revalidates, and whatever it did not keep.

    .venv/bin/python benchmarks/installer_warm_replay.py [--cache CACHE/installer]

CACHE: the installer cache of the cold run (benchmarks/installer.sh uses
/var/tmp/cs-installer-bench). Nothing in the cache is removed; the proxy is
stopped again at the end.
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from builder.verify.installer.proxy import AptCacher, served_paths


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cache", type=Path,
                   default=Path("/var/tmp/cs-installer-bench/installer"),
                   help="the installer cache folder of the cold run")
    args = p.parse_args()
    base = args.cache / "apt-cacher-ng"
    log = base / "log" / "apt-cacher.log"
    if not log.is_file():
        print(f"{log}: no apt-cacher-ng log; run benchmarks/installer.sh first",
              file=sys.stderr)
        return 2
    paths = served_paths(log.read_text(errors="replace"))
    if not paths:
        print(f"{log}: the cold run served nothing", file=sys.stderr)
        return 2
    cacher = AptCacher(base)
    cacher.start()
    started, served, failed = time.monotonic(), 0, []
    try:
        for path in paths:
            url = f"http://127.0.0.1:{cacher.port}/{path}"
            try:
                with urllib.request.urlopen(url, timeout=120) as answer:
                    served += len(answer.read())
            except (urllib.error.URLError, OSError) as exc:
                failed.append(f"{path}: {exc}")
        fetched = cacher.downloaded()
    finally:
        cacher.stop()
    print(f"requests replayed        {len(paths)} (the cold install's files, in order)")
    print(f"served by the proxy      {served / 2**20:.1f} MiB")
    print(f"fetched from Debian      {fetched / 2**20:.1f} MiB (warm)")
    print(f"failed requests          {len(failed)}")
    for line in failed[:10]:
        print(f"  {line}")
    print(f"wall time                {time.monotonic() - started:.1f} s")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
