"""The installer's view of the mirror: the consistent udeb index, the re-signed
Release (real gpg and gpgv), the keyring in the initrd, the HTTP front."""

from __future__ import annotations

import gzip
import http.server
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from builder.base.command import Runner
from builder.base.errors import ClusterStackError
from builder.repo.signing import HOME_PREFIX, scratch_root
from builder.verify.installer import initrd, view
from builder.verify.installer.harness import Prepared, installer_initrd
from builder.verify.installer.netboot import Choice as NetbootChoice
from builder.verify.installer.netboot import InstallerInputError, Netboot, UdebPin

ABI = "6.12.94+deb13-amd64"


def stanza(package: str, version: str = "1", depends: str = "", priority: str = "standard",
           kernel: str = "", provides: str = "") -> str:
    lines = [f"Package: {package}", f"Version: {version}", f"Priority: {priority}"]
    lines += [f"Depends: {depends}"] if depends else []
    lines += [f"Provides: {provides}"] if provides else []
    lines += [f"Kernel-Version: {kernel}"] if kernel else []
    lines += [f"Filename: pool/main/{package}_{version}.udeb", "Size: 100", f"SHA256: {'a' * 64}"]
    return "\n".join(lines)


INDEX = "\n\n".join([
    stanza(f"kernel-image-{ABI}-di", kernel=ABI),
    stanza("kernel-image-6.12.107+deb13-amd64-di", kernel="6.12.107+deb13-amd64"),
    stanza("ext4-modules-6.12.94+deb13-amd64-di", kernel=ABI, provides="ext4-modules"),
    stanza("partman-ext3", depends="e2fsprogs-udeb, ext4-modules"),
    stanza("partman-auto", depends="partman-ext3"),
    stanza("e2fsprogs-udeb", "1.47.2-3+b12", depends="libc6-udeb (>= 2.41)"),
    stanza("libc6-udeb", "2.41-12+deb13u4"),
    stanza("xfsprogs-udeb"),
    stanza("partman-xfs", depends="xfsprogs-udeb | nothing-else"),
]) + "\n"
GONE = {"pool/main/e2fsprogs-udeb_1.47.2-3+b12.udeb", "pool/main/libc6-udeb_2.41-12+deb13u4.udeb",
        "pool/main/xfsprogs-udeb_1.udeb"}
PIN = UdebPin("e2fsprogs-udeb", "1.47.2-3+b11", "pool/main/e2fsprogs-udeb_1.47.2-3+b11.udeb",
              "b" * 64, 200)
NEEDED = ("partman-auto", "e2fsprogs-udeb")


def present(udeb: view.Udeb) -> bool:
    return udeb.filename not in GONE


def test_the_view_lists_only_what_the_pool_holds_closed_under_depends() -> None:
    udebs = view.parse_index(INDEX)
    index = view.consistent_index(udebs, present, {"libc6-udeb"}, ABI, [PIN], NEEDED)
    names = [u.package for u in index.udebs]
    assert names == [f"kernel-image-{ABI}-di", f"ext4-modules-{ABI}-di", "partman-ext3",
                     "partman-auto", "e2fsprogs-udeb"]
    assert index.other_kernels == 1
    assert index.in_initrd == ["libc6-udeb"]          # anna keeps the initrd's own
    assert index.substituted == ["e2fsprogs-udeb 1.47.2-3+b12 -> 1.47.2-3+b11"]
    assert index.dropped == {"xfsprogs-udeb": "pool/main/xfsprogs-udeb_1.udeb is not in the pool",
                             "partman-xfs": "needs xfsprogs-udeb | nothing-else"}
    text = index.text()
    pinned = next(s for s in text.split("\n\n") if s.startswith("Package: e2fsprogs-udeb"))
    assert "Version: 1.47.2-3+b11" in pinned and f"SHA256: {'b' * 64}" in pinned
    assert "Size: 200" in pinned and "Depends: libc6-udeb (>= 2.41)" in pinned
    assert view.parse_index(text) == index.udebs      # what is served parses back the same


def test_a_needed_udeb_the_pool_lacks_is_named_before_booting() -> None:
    udebs = view.parse_index(INDEX)
    with pytest.raises(InstallerInputError) as err:
        view.consistent_index(udebs, present, {"libc6-udeb"}, ABI, [], NEEDED)
    text = str(err.value)
    assert "e2fsprogs-udeb (pool/main/e2fsprogs-udeb_1.47.2-3+b12.udeb is not in the pool)" in text
    assert "partman-auto (needs partman-ext3)" in text and "pins.yaml" in text


def test_a_pinned_file_missing_from_the_pool_too_is_no_substitute() -> None:
    udebs = view.parse_index(INDEX)
    with pytest.raises(InstallerInputError, match="e2fsprogs-udeb"):
        view.consistent_index(udebs, lambda u: present(u) and u.filename != PIN.filename,
                              {"libc6-udeb"}, ABI, [PIN], NEEDED)


def test_kernel_availability_says_why_not() -> None:
    udebs = view.parse_index(INDEX)
    check = view.kernel_available(udebs, lambda u: u.kernel != "6.12.107+deb13-amd64")
    assert check(ABI) is None
    assert "1 of its 1 udebs are not in the pool" in (check("6.12.107+deb13-amd64") or "")
    assert "lists kernel udebs for 6.12.107+deb13-amd64, 6.12.94" in (
        check("6.12.117+deb13-amd64") or "")


RELEASE = """Origin: Debian
Suite: stable
Codename: trixie
Components: main contrib
MD5Sum:
 0123 100 main/binary-amd64/Packages.xz
 4567 53936 main/debian-installer/binary-amd64/Packages.xz
 89ab 65900 main/debian-installer/binary-amd64/Packages.gz
SHA256:
 cdef 100 main/binary-amd64/Packages.xz
 5cbbc5d9 53936 main/debian-installer/binary-amd64/Packages.xz
 2496 65900 main/debian-installer/binary-amd64/Packages.gz
 6b61 264390 main/debian-installer/binary-amd64/Packages
"""


def test_release_keeps_debians_entries_and_lists_the_served_udeb_index() -> None:
    files = {"main/debian-installer/binary-amd64/Packages": b"Package: x\n"}
    text = view.release_view(RELEASE, files)
    assert "Origin: Debian\nSuite: stable\nCodename: trixie\n" in text
    assert " 0123 100 main/binary-amd64/Packages.xz" in text      # the deb index: Debian's
    assert " cdef 100 main/binary-amd64/Packages.xz" in text
    assert "5cbbc5d9" not in text and "Packages.gz" not in text and "6b61" not in text
    import hashlib
    sha = hashlib.sha256(b"Package: x\n").hexdigest()
    assert f" {sha}               11 main/debian-installer/binary-amd64/Packages" in text


def test_the_view_is_signed_by_a_run_local_key_gpgv_accepts(tmp_path: Path) -> None:
    homes = set(scratch_root().glob(f"{HOME_PREFIX}*"))
    signed = view.sign_view(tmp_path / "view", "trixie", RELEASE, INDEX, Runner())
    assert set(scratch_root().glob(f"{HOME_PREFIX}*")) <= homes   # the secret half is gone
    dists = tmp_path / "view" / "dists" / "trixie"
    keyring = tmp_path / "archive.gpg"
    keyring.write_bytes(Path("/usr/share/keyrings/debian-archive-keyring.gpg").read_bytes()
                        + signed.public_key)

    def gpgv(ring: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["gpgv", "--status-fd", "1", "--keyring", ring,
                               dists / "Release.gpg", dists / "Release"],
                              capture_output=True, text=True, check=False)

    ok = gpgv(keyring)
    assert ok.returncode == 0 and "VALIDSIG" in ok.stdout, ok.stderr
    assert gpgv(Path("/usr/share/keyrings/debian-archive-keyring.gpg")).returncode != 0
    (dists / "Release").write_text((dists / "Release").read_text() + "Extra: 1\n")
    assert "BADSIG" in gpgv(keyring).stdout
    import lzma
    assert lzma.decompress((dists / "main/debian-installer/binary-amd64/Packages.xz")
                           .read_bytes()).decode() == INDEX


def fake_initrd(path: Path) -> Path:
    data = initrd.newc_archive({
        "usr/share/keyrings/debian-archive-keyring.pgp": b"DEBIANKEYS",
        "var/lib/dpkg/status": b"Package: libc6-udeb\nStatus: install ok\n\nPackage: anna\n",
    })
    # the real initrd's debian-archive-keyring.gpg is a symlink to the .pgp
    link = initrd.newc_archive({"usr/share/keyrings/debian-archive-keyring.gpg":
                                b"debian-archive-keyring.pgp"}, mode=0o120777)
    path.write_bytes(gzip.compress(data) + gzip.compress(link))
    return path


def test_the_initrd_gets_debians_keyring_plus_the_run_key(tmp_path: Path) -> None:
    base = fake_initrd(tmp_path / "initrd.gz")
    files = initrd.members(base)
    assert view.installed_packages(initrd.read_file(files, "var/lib/dpkg/status", base).decode()
                                   ) == {"libc6-udeb", "anna"}
    image = Netboot("u6", tmp_path / "linux", base, ABI, tmp_path / "x.deb", True)
    prepared = Prepared(NetbootChoice(image, []), "d-i foo string bar\n", None)
    signed = view.SignedView(tmp_path, b"RUNKEY", "F" * 40)
    out = installer_initrd(prepared, signed, False, tmp_path / "out.gz")
    after = initrd.members(out)
    assert initrd.read_file(after, initrd.ARCHIVE_KEYRING, out) == b"DEBIANKEYSRUNKEY"
    assert initrd.read_file(after, "preseed.cfg", out) == b"d-i foo string bar\n"
    plain = installer_initrd(prepared, None, False, tmp_path / "plain.gz")
    assert initrd.ARCHIVE_KEYRING not in initrd.members(plain)  # no view: Debian's keys only
    with pytest.raises(ClusterStackError, match="the initrd has no etc/missing"):
        initrd.read_file(after, "etc/missing", out)


class Upstream(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"upstream {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_the_front_serves_the_view_and_passes_the_rest_through(tmp_path: Path) -> None:
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    thread = threading.Thread(target=upstream.serve_forever, daemon=True)
    thread.start()
    (tmp_path / "dists" / "trixie").mkdir(parents=True)
    (tmp_path / "dists" / "trixie" / "Release").write_text("ours\n")
    front = view.MirrorFront(tmp_path, "/debian", upstream.server_address[1], tmp_path / "log")
    front.start()
    try:
        def get(path: str) -> bytes:
            with urllib.request.urlopen(f"http://127.0.0.1:{front.port}{path}", timeout=10) as r:
                return r.read()

        assert get("/debian/dists/trixie/Release") == b"ours\n"
        assert get("/debian/dists/trixie/InRelease") == b"upstream /debian/dists/trixie/InRelease"
        assert get("/debian/pool/main/a/a.udeb") == b"upstream /debian/pool/main/a/a.udeb"
        with pytest.raises(urllib.error.HTTPError) as err:
            get("/debian/dists/trixie/main/debian-installer/binary-amd64/Packages.gz")
        assert err.value.code == 404
        assert front.local_file("/debian/dists/../../etc/passwd") is None
    finally:
        front.stop()
        upstream.shutdown()
        upstream.server_close()
    assert not front.running()
