"""The profile's build-root tarball: the `buildd` root of `roots`, shared by backends."""

from __future__ import annotations

from pathlib import Path

from builder.base.command import Runner
from builder.stack.profile import Profile

from ..roots import RootfsSpec, Source, build


def apt_sources(profile: Profile) -> tuple[Source, ...]:
    """The profile's archives as the sources of a root, each with its keyring."""
    return tuple(Source(f"deb {a.uri} {suite} {' '.join(a.components)}", a.keyring)
                 for a in profile.archives for suite in a.suites)


# Every package we build uses debhelper: with it in the build root, sbuild's
# build-dependency step installs nothing for our native packages (it
# installed ~30 packages, with man-db triggers, for each of them: most of a
# native build's time).  ca-certificates: https sources.
INCLUDE = ("ca-certificates", "debhelper", "fakeroot")


def build_root_spec(profile: Profile) -> RootfsSpec:
    return RootfsSpec(name=f"{profile.suite}-{profile.arch}", suite=profile.suite,
                      sources=apt_sources(profile), architecture=profile.arch,
                      variant="buildd", packages=INCLUDE)


def ensure_tarball(cache_dir: Path, profile: Profile, runner: Runner) -> Path:
    """The buildd tarball of the profile's archives as they are now: a new one when
    their packages change (the verified Releases are part of its key)."""
    return build(build_root_spec(profile), cache_dir / "sbuild", runner, keep=2).path
