"""A small signed upstream archive on loopback, for tests.

It is a real apt archive (dpkg-deb, apt-ftparchive, gpg), so the builder's
signed-chain checks run against the real formats; tests then break one link
of the chain at a time.
"""

from __future__ import annotations

import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

from builder.base.command import Runner

RUN = Runner()


@dataclass
class Key:
    home: Path
    fingerprint: str
    keyring: Path      # public key, binary, for gpgv --keyring


def make_key(home: Path, uid: str) -> Key:
    home.mkdir(parents=True, mode=0o700)
    base = ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback",
            "--passphrase", ""]
    RUN.run([*base, "--quick-generate-key", uid, "ed25519", "sign", "never"])
    out = RUN.run([*base, "--with-colons", "--list-secret-keys"]).stdout
    fpr = next(ln.split(":")[9] for ln in out.splitlines() if ln.startswith("fpr"))
    keyring = home / "public.gpg"
    RUN.run([*base, "--output", str(keyring), "--export", fpr])
    return Key(home, fpr, keyring)


def stop_agent(home: Path) -> None:
    """Stop the gpg-agent that gpg started for `home`: it outlives the test run else."""
    RUN.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)


def make_deb(directory: Path, name: str, version: str, source: str | None = None,
             depends: str = "") -> Path:
    tree = directory / f"{name}_{version}"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "usr/share/doc" / name).mkdir(parents=True)
    (tree / "usr/share/doc" / name / "README").write_text(f"{name} {version}\n")
    control = textwrap.dedent(f"""\
        Package: {name}
        Version: {version}
        Architecture: all
        Maintainer: Test <test@example.invalid>
        Description: test package {name}
        """)
    if source:
        control += f"Source: {source}\n"
    if depends:
        control += f"Depends: {depends}\n"
    (tree / "DEBIAN/control").write_text(control)
    deb = directory / f"{name}_{version}_all.deb"
    RUN.run(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(deb)])
    shutil.rmtree(tree)
    return deb


@dataclass
class FakeArchive:
    root: Path
    url: str
    key: Key

    def publish(self, suite: str, debs: list[Path], sign_with: Key | None = None,
                signed: bool = True) -> None:
        pool = self.root / "pool/main"
        pool.mkdir(parents=True, exist_ok=True)
        for deb in debs:
            shutil.copy(deb, pool / deb.name)
        dist = self.root / "dists" / suite
        binary = dist / "main/binary-amd64"
        binary.mkdir(parents=True, exist_ok=True)
        RUN.run(["apt-ftparchive", "packages", "pool/main"], cwd=self.root,
                stdout_to=binary / "Packages")
        RUN.run(["xz", "-kf", str(binary / "Packages")])
        for old in ("Release", "InRelease"):
            (dist / old).unlink(missing_ok=True)
        RUN.run(["apt-ftparchive", f"-oAPT::FTPArchive::Release::Suite={suite}",
                 "release", f"dists/{suite}"], cwd=self.root, stdout_to=self.root / "Release")
        (self.root / "Release").rename(dist / "Release")
        key = sign_with or self.key
        if signed:
            RUN.run(["gpg", "--homedir", str(key.home), "--batch", "--yes", "--local-user",
                     key.fingerprint, "--clearsign", "--output", str(dist / "InRelease"),
                     str(dist / "Release")])
        else:
            shutil.copy(dist / "Release", dist / "InRelease")


PROFILE = """\
name: fake
vendor: debian
description: test profile on a loopback archive
suite: fakesuite
archives:
  - uri: {url}
    suites: [fakesuite]
    components: [main]
    keyring: {keyring}
components: [main]
architectures: [amd64]
init: systemd
version_suffix: "+test1"
tasks:
  mode: desc-key
"""


@dataclass
class StackUnderTest:
    dir: Path
    out: Path
    cache: Path

    def argv(self, *args: str) -> list[str]:
        return ["--stack", str(self.dir), "--out", str(self.out), "--cache", str(self.cache),
                *args, "--profile", "fake"]

    def recipe(self, name: str, body: str) -> Path:
        path = self.dir / "packaging" / name / "recipe.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
        return path


