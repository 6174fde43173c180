"""Where build roots are unpacked: the choice, the file sbuild reads, the clean-up."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from builder.base.errors import ClusterStackError
from builder.buildroot.backends import scratch

SHM = Path("/dev/shm")


def test_none_leaves_sbuild_its_default() -> None:
    assert scratch.choose("none") is None


def test_an_explicit_directory_is_taken_as_it_is(tmp_path: Path) -> None:
    assert scratch.choose(str(tmp_path)) == tmp_path


def test_an_explicit_directory_that_is_not_there_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ClusterStackError, match=f"--scratch {tmp_path}/gone: not a writable"):
        scratch.choose(str(tmp_path / "gone"))


def test_auto_skips_a_disk_directory(tmp_path: Path) -> None:
    assert scratch.fs_type(tmp_path) != "tmpfs"
    assert scratch.choose("auto", candidates=(tmp_path,)) is None


@pytest.mark.skipif(scratch.fs_type(SHM) != "tmpfs", reason="/dev/shm is no tmpfs here")
def test_auto_takes_a_tmpfs_with_room_and_not_one_without() -> None:
    assert scratch.choose("auto", candidates=(SHM,), min_free=1) == SHM
    too_much = scratch.free_bytes(SHM) + 1
    assert scratch.choose("auto", candidates=(SHM,), min_free=too_much) is None


def test_sbuild_reads_the_unpack_template(tmp_path: Path) -> None:
    # sbuild loads its configuration files with Perl's `do`; so does this check.
    template = str(tmp_path / "it's here" / "root.XXXXXXXXXX")
    conf = tmp_path / "sbuild.conf"
    conf.write_text(scratch.sbuild_config(template), encoding="utf-8")
    out = subprocess.run(
        ["perl", "-e", 'our $unshare_tmpdir_template; do $ARGV[0] or die "$@$!"; '
         'print $unshare_tmpdir_template', str(conf)],
        capture_output=True, text=True, check=True).stdout
    assert out == template


def test_each_build_gets_its_own_directory_removed_afterwards(tmp_path: Path) -> None:
    with scratch.build_root_env(tmp_path, "demo_1.0") as env:
        conf = Path(env["SBUILD_CONFIG"])
        own = conf.parent
        assert own.parent == tmp_path and own.name.startswith("clusterstack-demo_1.0.")
        assert f"'{own}/root.XXXXXXXXXX'" in conf.read_text()
        assert own.stat().st_mode & 0o777 == 0o755   # the namespace's root must get in
        (own / "root.abc" / "usr").mkdir(parents=True)
    assert not own.exists()


def test_the_directory_goes_even_when_the_build_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), scratch.build_root_env(tmp_path, "demo") as env:
        own = Path(env["SBUILD_CONFIG"]).parent
        raise RuntimeError("sbuild was killed")
    assert not own.exists()
    with scratch.build_root_env(None, "demo") as env:
        assert env == {}
