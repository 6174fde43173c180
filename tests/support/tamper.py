"""Breaking one thing at a time: a source package in the fake archive,
flipped bytes, an expired upstream Release."""

from __future__ import annotations

import re
import shutil
import tarfile
import textwrap
import time
from pathlib import Path

from support.fakearchive import RUN, FakeArchive

SOURCE = "demosrc"
SOURCE_VERSION = "1.0-1"


def flip_byte(path: Path, offset: int = -1) -> None:
    """Same size, other content (as a bit flip on a disk or a swap would be)."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def make_source_package(directory: Path, name: str = SOURCE,
                        version: str = SOURCE_VERSION) -> list[Path]:
    """A 3.0 (quilt) source package: .dsc, .orig.tar.gz, .debian.tar.xz."""
    upstream = version.rsplit("-", 1)[0]
    tree = directory / f"{name}-{upstream}"
    (tree / "debian/source").mkdir(parents=True)
    (tree / "hello.txt").write_text("hello\n")
    with tarfile.open(directory / f"{name}_{upstream}.orig.tar.gz", "w:gz") as tar:
        tar.add(tree / "hello.txt", arcname=f"{name}-{upstream}/hello.txt")
    (tree / "debian/source/format").write_text("3.0 (quilt)\n")
    (tree / "debian/control").write_text(textwrap.dedent(f"""\
        Source: {name}
        Section: misc
        Priority: optional
        Maintainer: Test <test@example.invalid>
        Build-Depends: debhelper-compat (= 13)
        Standards-Version: 4.7.0

        Package: {name}-bin
        Architecture: all
        Description: test source package
         A test.
        """))
    (tree / "debian/changelog").write_text(
        f"{name} ({version}) unstable; urgency=medium\n\n  * Test.\n\n"
        " -- Test <test@example.invalid>  Mon, 01 Jan 2024 00:00:00 +0000\n")
    (tree / "debian/rules").write_text("#!/usr/bin/make -f\n%:\n\tdh $@\n")
    (tree / "debian/rules").chmod(0o755)
    RUN.run(["dpkg-source", "-b", tree.name], cwd=directory)
    shutil.rmtree(tree)
    return sorted(p for p in directory.iterdir() if p.name.startswith(f"{name}_"))


def publish_with_sources(archive: FakeArchive, suite: str, work: Path) -> dict[str, Path]:
    """Add the source package to the archive, with a signed Sources index;
    return its files by kind (dsc, orig, debian)."""
    work.mkdir(parents=True, exist_ok=True)
    files = make_source_package(work)
    pool = archive.root / "pool/main"
    pool.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy(f, pool / f.name)
    source_dir = archive.root / "dists" / suite / "main/source"
    source_dir.mkdir(parents=True, exist_ok=True)
    RUN.run(["apt-ftparchive", "sources", "pool/main"], cwd=archive.root,
            stdout_to=source_dir / "Sources")
    RUN.run(["xz", "-kf", str(source_dir / "Sources")])
    archive.publish(suite, [])   # Packages as they are; Release and InRelease anew
    kinds = {"dsc": ".dsc", "orig": ".orig.tar.gz", "debian": ".debian.tar.xz"}
    return {k: pool / next(f.name for f in files if f.name.endswith(s))
            for k, s in kinds.items()}


def rebuild_recipe(name: str = SOURCE, version: str = SOURCE_VERSION) -> str:
    return (f"name: {name}\ndescription: test rebuild\nstrategy: rebuild\nreason: test\n"
            f"rebuild:\n  source: {name}\n  version: {version}\n")


def tamper_inrelease_signature(archive: FakeArchive, suite: str) -> Path:
    """Change the signed text, keep the signature: gpgv says BADSIG."""
    path = archive.root / "dists" / suite / "InRelease"
    text = path.read_text()
    path.write_text(re.sub(r"^Suite: .*$", "Suite: elsewhere", text, count=1, flags=re.M))
    return path


def expire_release(archive: FakeArchive, suite: str) -> Path:
    """A validly signed upstream Release whose Valid-Until has passed."""
    dist = archive.root / "dists" / suite
    release = dist / "Release"
    past = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(time.time() - 86400))
    text = release.read_text()
    release.write_text(re.sub(r"^(Date: .*)$", rf"\1\nValid-Until: {past}", text, count=1,
                              flags=re.M))
    key = archive.key
    RUN.run(["gpg", "--homedir", str(key.home), "--batch", "--yes", "--local-user",
             key.fingerprint, "--clearsign", "--output", str(dist / "InRelease"),
             str(release)])
    return dist / "InRelease"
