"""The one root builder (builder/buildroot/roots.py): its key, the verified Release
read, and the cache; one real small root when CLUSTERSTACK_TEST_ROOT=1."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.base.command import CommandError, Result, Runner
from builder.base.serve import serve
from builder.buildroot import roots
from builder.buildroot.roots import RootBuildError, RootfsSpec, Source
from builder.repo import signing

DEBIAN = "deb http://deb.debian.org/debian trixie main"
RELEASE = ("Origin: test\nSuite: trixie\nDate: {date}\nSHA256:\n"
           " {sha} 100 main/binary-amd64/Packages\n"
           " {sha} 90 main/binary-amd64/Packages.xz\n"
           " {other} 80 main/binary-arm64/Packages\n"
           " 1234 10 main/Contents-amd64.gz\n")


def base_spec(tmp_path: Path) -> RootfsSpec:
    key = tmp_path / "k.gpg"
    if not key.exists():
        key.write_bytes(b"key one")
    return RootfsSpec(name="t", suite="trixie", sources=(Source(DEBIAN, key),))


# Each field of the spec with another value: the key must follow every one.
CHANGES = {
    "suite": "forky",
    "sources": (Source("deb http://deb.debian.org/debian trixie main contrib"),),
    "architecture": "arm64",
    "variant": "buildd",
    "packages": ("debhelper",),
    "aptopts": ('APT::Install-Recommends "false"',),
    "dpkgopts": ("path-exclude=/usr/share/doc/*",),
    "setup_hooks": ("true",),
    "essential_hooks": ("true",),
    "customize_hooks": ("true",),
}


def test_every_field_but_the_name_is_in_the_key(tmp_path: Path) -> None:
    spec = base_spec(tmp_path)
    fields = {f.name for f in dataclasses.fields(RootfsSpec)}
    assert fields == {*CHANGES, "name"}   # a new field needs a line in CHANGES
    key = spec.key(["r"])
    assert spec.key(["r"]) == key                                   # stable
    assert dataclasses.replace(spec, name="other").key(["r"]) == key
    for name, value in CHANGES.items():
        assert dataclasses.replace(spec, **{name: value}).key(["r"]) != key, name
    assert spec.key(["s"]) != key                                   # the source's packages
    (tmp_path / "k.gpg").write_bytes(b"key two")
    assert spec.key(["r"]) != key                                   # the key file's content
    with pytest.raises(ValueError, match="1 sources, 2 release digests"):
        spec.key(["r", "s"])


def test_the_key_leaves_out_the_loopback_port_and_the_package_order(tmp_path: Path) -> None:
    spec = base_spec(tmp_path)

    def at(port: int) -> RootfsSpec:
        return dataclasses.replace(spec, sources=(
            Source(f"deb [signed-by=/etc/apt/keyrings/k.gpg] http://127.0.0.1:{port}/ trixie main",
                   tmp_path / "k.gpg"),))

    assert at(8080).key(["r"]) == at(41234).key(["r"])
    assert (dataclasses.replace(spec, packages=("a", "b")).key(["r"])
            == dataclasses.replace(spec, packages=("b", "a", "a")).key(["r"]))


def test_a_source_must_be_a_one_line_deb_source() -> None:
    assert Source("deb [arch=amd64] http://x/ trixie main").release_url == (
        "http://x/dists/trixie/InRelease")
    with pytest.raises(ValueError, match="one-line apt source"):
        Source("deb-src http://x/ trixie main")
    with pytest.raises(ValueError, match="one-line apt source"):
        Source("http://deb.debian.org/debian")
    with pytest.raises(ValueError, match="no apt source"):
        RootfsSpec(name="t", suite="trixie", sources=())


def test_argv_carries_every_field_and_uploads_a_signed_by_key(tmp_path: Path) -> None:
    key = tmp_path / "k.gpg"
    key.write_bytes(b"k")
    ours = "deb [signed-by=/etc/apt/keyrings/k.gpg] http://127.0.0.1:1/ trixie main"
    spec = RootfsSpec(name="t", suite="trixie", sources=(Source(DEBIAN), Source(ours, key)),
                      variant="buildd", packages=("b", "a"), aptopts=("A",), dpkgopts=("D",),
                      essential_hooks=("E",), customize_hooks=("C",))
    argv = roots.mmdebstrap_argv(spec, tmp_path / "r.tar.zst")
    assert argv[:4] == ["mmdebstrap", "--mode=unshare", "--variant=buildd",
                        "--architectures=amd64"]
    assert {"--aptopt=A", "--dpkgopt=D", "--include=a,b", "--essential-hook=E",
            "--customize-hook=C", f"--setup-hook=upload {key} /etc/apt/keyrings/k.gpg"} <= set(argv)
    assert argv[-4:] == ["trixie", str(tmp_path / "r.tar.zst"), DEBIAN,
                         ours.replace("/etc/apt/keyrings/k.gpg", str(key))]


# --- the verified Release -------------------------------------------------------------------


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[signing.Signer, Path]]:
    if shutil.which("gpg") is None or shutil.which("gpgv") is None:
        pytest.skip("needs gpg and gpgv")
    home = tmp_path_factory.mktemp("keys")
    with signing.load(home / "keyring", Runner()) as signer:
        signer.export_public(home / "repo.asc", home / "repo.gpg")
        yield signer, home


def publish(repo: Path, signer: signing.Signer, text: str) -> None:
    dists = repo / "dists" / "trixie"
    dists.mkdir(parents=True, exist_ok=True)
    (dists / "Release").write_text(text)
    (dists / "InRelease").unlink(missing_ok=True)
    signer.clearsign(dists / "Release", dists / "InRelease")


def test_release_digest_verifies_and_follows_the_packages_not_the_date(
        tmp_path: Path, signer: tuple[signing.Signer, Path]) -> None:
    sign, home = signer
    runner = Runner()
    publish(tmp_path, sign, RELEASE.format(date="Mon", sha="a" * 64, other="c" * 64))
    with serve(tmp_path) as url:
        source = Source(f"deb {url}/ trixie main", home / "repo.gpg")
        first = roots.release_digest(source, "amd64", runner)
        # the armored key verifies as well as the binary one
        assert roots.release_digest(Source(source.line, home / "repo.asc"), "amd64",
                                    runner) == first
        publish(tmp_path, sign, RELEASE.format(date="Tue", sha="a" * 64, other="c" * 64))
        assert roots.release_digest(source, "amd64", runner) == first     # same packages
        publish(tmp_path, sign, RELEASE.format(date="Tue", sha="a" * 64, other="d" * 64))
        assert roots.release_digest(source, "amd64", runner) == first     # another arch's
        publish(tmp_path, sign, RELEASE.format(date="Tue", sha="b" * 64, other="d" * 64))
        assert roots.release_digest(source, "amd64", runner) != first     # other packages
        # Signed by a key that is not the repository's: refused, naming the URL.
        debian = Source(source.line)
        with pytest.raises(RootBuildError, match=rf"{url}/dists/trixie/InRelease.*not in"):
            roots.release_digest(debian, "amd64", runner)
        # Changed after signing.
        inrelease = tmp_path / "dists/trixie/InRelease"
        inrelease.write_text(inrelease.read_text().replace("Date: Tue", "Date: Wed"))
        with pytest.raises(RootBuildError, match="BADSIG"):
            roots.release_digest(source, "amd64", runner)
        with pytest.raises(RootBuildError, match="cannot read the verified Release"):
            roots.release_digest(Source(f"deb {url}/ forky main", home / "repo.gpg"),
                                 "amd64", runner)


class FakeMmdebstrap:
    """Runs everything but mmdebstrap; mmdebstrap writes a tarball (or fails)."""

    def __init__(self, fail: bool = False) -> None:
        self.runner = Runner()
        self.fail = fail
        self.calls: list[list[str]] = []

    def run(self, argv, **kwargs):  # type: ignore[no-untyped-def]
        argv = [str(a) for a in argv]
        if argv[0] != "mmdebstrap":
            return self.runner.run(argv, **kwargs)
        self.calls.append(argv)
        if self.fail:
            raise CommandError(argv[:1], 1, "E: cannot resolve dependencies")
        target = Path(next(a for a in argv if a.endswith(".partial.tar.zst")))
        with tarfile.open(target, "w"):
            pass
        return Result(argv, 0, "", "")


def test_build_caches_by_key_renames_into_place_and_names_a_failure(
        tmp_path: Path, signer: tuple[signing.Signer, Path]) -> None:
    sign, home = signer
    repo, cache = tmp_path / "repo", tmp_path / "cache"
    publish(repo, sign, RELEASE.format(date="Mon", sha="a" * 64, other="c" * 64))
    with serve(repo) as url:
        spec = RootfsSpec(name="t", suite="trixie",
                          sources=(Source(f"deb {url}/ trixie main", home / "repo.gpg"),))
        fake = FakeMmdebstrap()
        first = roots.build(spec, cache, fake, keep=1)  # type: ignore[arg-type]
        assert first.built and first.path.is_file() and first.path.name == f"t-{first.key}.tar.zst"
        again = roots.build(spec, cache, fake, keep=1)  # type: ignore[arg-type]
        assert again == dataclasses.replace(first, built=False) and len(fake.calls) == 1
        # The repository publishes other packages: a new root, the older one goes (keep=1).
        publish(repo, sign, RELEASE.format(date="Tue", sha="b" * 64, other="c" * 64))
        newer = roots.build(spec, cache, fake, keep=1)  # type: ignore[arg-type]
        assert newer.built and newer.key != first.key and not first.path.exists()
        publish(repo, sign, RELEASE.format(date="Wed", sha="e" * 64, other="c" * 64))
        with pytest.raises(RootBuildError, match=r"(?s)root t: mmdebstrap failed.*dependencies"):
            roots.build(spec, cache, FakeMmdebstrap(fail=True))  # type: ignore[arg-type]
    assert sorted(p.name for p in cache.iterdir()) == [newer.path.name]   # no partial left


# --- one real root ----------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.network
@pytest.mark.skipif(os.environ.get("CLUSTERSTACK_TEST_ROOT") != "1" or os.geteuid() != 0
                    or shutil.which("mmdebstrap") is None,
                    reason="builds a real root only with CLUSTERSTACK_TEST_ROOT=1, as root")
def test_a_real_essential_root(tmp_path: Path) -> None:
    spec = RootfsSpec(name="trixie-essential", suite="trixie", sources=(Source(DEBIAN),),
                      variant="essential")
    runner = Runner(log_path=tmp_path / "commands.log")
    made = roots.build(spec, tmp_path / "cache", runner, timeout=900)
    assert made.built
    tree = roots.unpack(made.path, tmp_path / "root", runner)
    assert (tree / "usr/bin/dpkg").is_file() and (tree / "var/lib/dpkg/status").is_file()
    assert roots.build(spec, tmp_path / "cache", runner) == dataclasses.replace(made, built=False)
