"""Real trixie .debs for the tests, fetched once with apt and kept between runs."""

from __future__ import annotations

import os
from pathlib import Path

from builder.base.command import Runner

CACHE = Path(os.environ.get("CLUSTERSTACK_TEST_CACHE", "/var/cache/clusterstack-tests"))
SUITE = "trixie"


def _apt_options(root: Path) -> list[str]:
    # A private apt state: the host's own sources and package lists stay untouched.
    return [
        "-o", f"Dir::Etc::SourceList={root / 'sources.list'}",
        "-o", "Dir::Etc::SourceParts=/dev/null",
        "-o", f"Dir::State::Lists={root / 'lists'}",
        "-o", f"Dir::Cache={root / 'cache'}",
        "-o", "Dir::State::status=/dev/null",
        "-o", "APT::Architecture=amd64",
        "-o", "APT::Sandbox::User=root",
        "-q",
    ]


def fetch_debs(packages: list[str], suite: str = SUITE) -> dict[str, Path]:
    """Download (or reuse) the current .deb of each package of `suite`."""
    root = CACHE / f"apt-{suite}"
    debs = root / "debs"
    for sub in ("lists/partial", "cache/archives/partial"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    debs.mkdir(parents=True, exist_ok=True)
    (root / "sources.list").write_text(f"deb http://deb.debian.org/debian {suite} main\n")
    found = {p: sorted(debs.glob(f"{p}_*.deb")) for p in packages}
    missing = [p for p, paths in found.items() if not paths]
    if missing:
        runner = Runner()
        opts = _apt_options(root)
        if not any((root / "lists").glob("*Packages*")):
            runner.run(["apt-get", *opts, "update"])
        runner.run(["apt-get", *opts, "download", *missing], cwd=debs)
        found = {p: sorted(debs.glob(f"{p}_*.deb")) for p in packages}
    return {p: paths[-1] for p, paths in found.items()}
