"""The profile's build-root tarball, made by mmdebstrap and shared by backends."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from builder.base import digest
from builder.base.command import Runner
from builder.stack.profile import Profile

log = logging.getLogger("clusterstack.chroot")


def apt_sources(profile: Profile) -> list[str]:
    return [f"deb {a.uri} {suite} {' '.join(a.components)}"
            for a in profile.archives for suite in a.suites]


# Every package we build uses debhelper: with it in the build root, sbuild's
# build-dependency step installs nothing for our native packages (it
# installed ~30 packages, with man-db triggers, for each of them: most of a
# native build's time).  ca-certificates: https sources.
INCLUDE = ("ca-certificates", "debhelper", "fakeroot")


def tarball_path(cache_dir: Path, profile: Profile) -> Path:
    # Named by what it includes, so a change makes a new tarball.
    tag = digest.of_mapping({"include": ",".join(INCLUDE)})[:8]
    return cache_dir / "sbuild" / f"{profile.suite}-{profile.arch}-{tag}.tar.zst"


def ensure_tarball(cache_dir: Path, profile: Profile, runner: Runner) -> Path:
    """Create the buildd tarball, or refresh it when older than the profile allows."""
    path = tarball_path(cache_dir, profile)
    max_age = profile.chroot_max_age_days * 86400
    if path.is_file() and time.time() - path.stat().st_mtime < max_age:
        return path
    log.info("creating build root %s", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tar.zst")
    try:
        runner.run(["mmdebstrap", "--variant=buildd", "--mode=unshare",
                    f"--architectures={profile.arch}", "--include=" + ",".join(INCLUDE),
                    profile.suite, tmp, *apt_sources(profile)])
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
