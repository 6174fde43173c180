"""A test stack whose components are built from source (strategy `package`).

Upstream tarballs are served from a loopback mirror next to a small signed
archive, so every check before the build stage runs for real.
"""

from __future__ import annotations

import hashlib
import tarfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

from support.fakearchive import PROFILE, FakeArchive, Key, make_deb

CONTROL = """\
Source: {name}
Section: misc
Priority: optional
Maintainer: {{{{ maintainer }}}}
Build-Depends: debhelper-compat (= 13){build_depends}
Standards-Version: 4.7.0

Package: {binary}
Architecture: all
Depends: ${{misc:Depends}}
Description: test component {name}
 A test.
"""


@dataclass
class SourceStack:
    root: Path
    mirror: Path
    url: str
    key: Key

    @property
    def dir(self) -> Path:
        return self.root / "stack"

    @property
    def out(self) -> Path:
        return self.root / "out"

    def argv(self, *args: str) -> list[str]:
        return ["--stack", str(self.dir), "--out", str(self.out), "--cache",
                str(self.root / "cache"), *args, "--profile", "fake"]

    def setup(self) -> None:
        (self.dir / "packaging/profiles").mkdir(parents=True)
        (self.dir / "tasksel").mkdir()
        (self.dir / "packaging/profiles/fake.yaml").write_text(
            PROFILE.format(url=self.url, keyring=self.key.keyring))
        debs = self.root / "debs"
        debs.mkdir()
        # What the fake base archive offers as build-dependencies.
        archive = FakeArchive(self.mirror, self.url, self.key)
        archive.publish("fakesuite", [make_deb(debs, "debhelper-compat", "13", source="dh")])

    def tarball(self, name: str, files: dict[str, str]) -> tuple[str, str]:
        """Serve name-1.0.tar.gz; return (url, sha256)."""
        path = self.mirror / "upstream" / f"{name}-1.0.tar.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        src = self.root / "src" / f"{name}-1.0"
        for rel, text in files.items():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).write_text(text)
        with tarfile.open(path, "w:gz") as tar:
            tar.add(src, arcname=f"{name}-1.0")
        return f"{self.url}/upstream/{path.name}", hashlib.sha256(path.read_bytes()).hexdigest()

    def component(self, name: str, *, build_depends: str = "", binary: str | None = None,
                  patches: dict[str, str] | None = None, sha256: str | None = None) -> Path:
        url, sha = self.tarball(name, {"hello.txt": "hello\nworld\n"})
        comp = self.dir / "packaging" / name
        (comp / "debian/source").mkdir(parents=True)
        (comp / "recipe.yaml").write_text(textwrap.dedent(f"""\
            name: {name}
            description: test component
            strategy: package
            reason: test
            package:
              version: 1.0-1
              upstream:
                url: {url}
                sha256: "{sha256 or sha}"
            """))
        (comp / "debian/control.j2").write_text(CONTROL.format(
            name=name, binary=binary or name,
            build_depends=f", {build_depends}" if build_depends else ""))
        (comp / "debian/rules").write_text("#!/usr/bin/make -f\n%:\n\tdh $@\n")
        (comp / "debian/rules").chmod(0o755)
        (comp / "debian/source/format").write_text("3.0 (quilt)\n")
        if patches:
            pdir = self.dir / "patches" / name
            pdir.mkdir(parents=True)
            for pname, body in patches.items():
                (pdir / pname).write_text(body)
            (pdir / "series").write_text("".join(f"{p}\n" for p in patches))
        return comp


GOOD_PATCH = """\
Description: say hello to the cluster
--- a/hello.txt
+++ b/hello.txt
@@ -1,2 +1,2 @@
 hello
-world
+cluster
"""

BAD_PATCH = """\
Description: expects text that is not there
--- a/hello.txt
+++ b/hello.txt
@@ -1,2 +1,2 @@
 goodbye
-world
+cluster
"""
