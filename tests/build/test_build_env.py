"""What sbuild is given to pass into the build: parallel make jobs, our identity."""

from __future__ import annotations

from pathlib import Path

from builder.buildroot.backend import BuildRequest, build_env


def request(parallel: int) -> BuildRequest:
    return BuildRequest(dsc=Path("/x/demo_1.dsc"), out_dir=Path("/x/out"), arch_all=True,
                        arch_any=True, parallel=parallel)


def test_parallel_becomes_deb_build_options() -> None:
    env = build_env(request(2), inherited={})
    assert env["DEB_BUILD_OPTIONS"] == "parallel=2"
    assert env["DEBEMAIL"] == "builders@clusterstack.invalid"


def test_one_job_sets_no_parallel() -> None:
    assert "DEB_BUILD_OPTIONS" not in build_env(request(1), inherited={})


def test_callers_options_are_kept_and_their_parallel_replaced() -> None:
    env = build_env(request(4), inherited={"DEB_BUILD_OPTIONS": "nocheck parallel=16 noopt"})
    assert env["DEB_BUILD_OPTIONS"].split() == ["nocheck", "noopt", "parallel=4"]
    env = build_env(request(1), inherited={"DEB_BUILD_OPTIONS": "nocheck parallel=16"})
    assert env["DEB_BUILD_OPTIONS"] == "nocheck"
