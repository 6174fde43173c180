"""The upstream Release is read by our own small parser (python-debian's import
costs more than a no-op plan may take): it must read what python-debian reads."""

from __future__ import annotations

from debian.deb822 import Release
from support.fakearchive import FakeArchive

from builder.sources.upstream import release_fields, release_sha256

DEBIAN_LIKE = """\
Origin: Debian
Label: Debian
Suite: stable
Codename: trixie
Date: Sat, 15 Nov 2025 10:00:00 UTC
Valid-Until: Sat, 22 Nov 2025 10:00:00 UTC
Acquire-By-Hash: yes
Architectures: all amd64
Components: main contrib
Description: Debian x.y Released 15 November 2025
MD5Sum:
 0123456789abcdef0123456789abcdef  1234 main/binary-amd64/Packages
SHA256:
 {a}  1234 main/binary-amd64/Packages
 {b}   567 main/binary-amd64/Packages.xz
 {c}    89 main/source/Sources.xz
"""


def check_same(text: str) -> None:
    theirs = Release(text)
    ours = release_fields(text)
    assert release_sha256(ours) == {e["name"]: (e["sha256"], int(e["size"]))
                                    for e in theirs.get("SHA256", [])}
    for name in ("Valid-Until", "Acquire-By-Hash", "Suite", "Date"):
        assert ours.get(name.lower()) == theirs.get(name)


def test_a_debian_release() -> None:
    text = DEBIAN_LIKE.format(a="a" * 64, b="b" * 64, c="c" * 64)
    check_same(text)
    assert release_fields(text)["acquire-by-hash"] == "yes"
    assert len(release_sha256(release_fields(text))) == 3


def test_what_apt_ftparchive_writes(fake_archive: FakeArchive) -> None:
    release = (fake_archive.root / "dists/fakesuite/Release").read_text()
    check_same(release)
    assert "main/binary-amd64/Packages.xz" in release_sha256(release_fields(release))
