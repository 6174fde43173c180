"""trixie's netboot installer, fetched through the signed chain, and its kernel check.

The netboot initrd carries only the modules it needs to reach the network; the
rest (ext4, virtio-blk, ...) anna downloads as kernel-module udebs from the
mirror, and only those built for the very kernel it runs. A netboot image one
kernel upload ahead of (or behind) the mirror's udebs fails after the first
questions, so the match is checked before anything is booted.
"""

from __future__ import annotations

import re
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from ..command import Runner
from ..errors import ClusterStackError, VerificationError
from ..upstream import UpstreamArchive, VerifiedRelease

NETBOOT_PACKAGE = "debian-installer-13-netboot-amd64"
IMAGE_DIR = "usr/lib/debian-installer/images/13/amd64/text/debian-installer/amd64"
UDEB_INDEX = "main/debian-installer/binary-amd64/Packages"
KERNEL_UDEB = re.compile(r"^Package: kernel-image-(\S+)-di$", re.M)


class InstallerInputError(ClusterStackError):
    """Bad input to the installer verification; one message, exit status 2."""

    exit_code = 2


def bzimage_release(data: bytes, what: str = "kernel") -> str:
    """The `uname -r` of a bzImage, read from its setup header (Documentation/x86/boot)."""
    if len(data) < 0x210 or data[0x202:0x206] != b"HdrS":
        raise InstallerInputError(f"{what}: not a Linux bzImage (no HdrS setup header)")
    offset = int.from_bytes(data[0x20E:0x210], "little") + 0x200
    end = data.find(b"\0", offset, offset + 256)
    if offset <= 0x200 or end < 0:
        raise InstallerInputError(f"{what}: the setup header has no kernel version string")
    return data[offset:end].decode("ascii", "replace").split()[0]


def udeb_kernel_abis(packages_text: str) -> list[str]:
    """The kernel ABIs (e.g. 6.12.94+deb13-amd64) the mirror has kernel-image udebs for."""
    return sorted(set(KERNEL_UDEB.findall(packages_text)))


def check_kernel_match(netboot_abi: str, mirror_abis: list[str], netboot: str,
                       index: str) -> None:
    if netboot_abi in mirror_abis:
        return
    have = ", ".join(mirror_abis) or "none"
    raise InstallerInputError(
        f"{netboot}: the netboot kernel is {netboot_abi}, but the mirror's {index} has "
        f"kernel udebs for {have} only; the installer would find no kernel modules "
        "(ext4, virtio-blk) for its kernel")


@dataclass(frozen=True)
class Netboot:
    version: str
    kernel: Path
    initrd: Path
    abi: str
    deb: Path


def fetch_netboot(upstream: UpstreamArchive, cache_dir: Path) -> Netboot:
    """The newest netboot package of the profile's suites, unpacked once per checksum."""
    versions = upstream.binary_versions(NETBOOT_PACKAGE)
    if not versions:
        raise InstallerInputError(f"{upstream.suites_label()}: no {NETBOOT_PACKAGE} package")
    pkg = upstream.binary(NETBOOT_PACKAGE, versions[-1])
    if pkg is None:  # binary_versions() listed it
        raise InstallerInputError(f"{NETBOOT_PACKAGE} {versions[-1]}: not in the index")
    deb = upstream.fetcher.fetch_verified(pkg.url, pkg.sha256, pkg.size)
    target = cache_dir / "netboot" / pkg.sha256[:16]
    kernel, initrd = target / "linux", target / "initrd.gz"
    if not (kernel.is_file() and initrd.is_file()):
        _unpack(deb, target, Runner())
    abi = bzimage_release(kernel.read_bytes(), f"{pkg.deb_name}: {IMAGE_DIR}/linux")
    return Netboot(pkg.version, kernel, initrd, abi, deb)


def _unpack(deb: Path, target: Path, runner: Runner) -> None:
    """linux and initrd.gz out of the .deb (dpkg-deb streams its data member)."""
    tmp = target.with_name(target.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tar = tmp / "data.tar"
    runner.run(["dpkg-deb", "--fsys-tarfile", deb], stdout_to=tar)
    with tarfile.open(tar) as tf:
        for name in ("linux", "initrd.gz"):
            member = tf.getmember(f"./{IMAGE_DIR}/{name}")
            source = tf.extractfile(member)
            if source is None:
                raise InstallerInputError(f"{deb}: {IMAGE_DIR}/{name} is not a file")
            with source, open(tmp / name, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
    tar.unlink()
    shutil.rmtree(target, ignore_errors=True)
    tmp.replace(target)


def mirror_kernel_abis(upstream: UpstreamArchive) -> tuple[list[str], str]:
    """The mirror's kernel udeb ABIs from its debian-installer index, through the chain."""
    release: VerifiedRelease = upstream.releases[0]
    where = f"{release.archive.uri}/dists/{release.suite}/{UDEB_INDEX}"
    try:
        text = upstream.index_text(release, UDEB_INDEX)
    except VerificationError as exc:
        raise VerificationError(
            f"{where}: the mirror's installer index does not match its signed Release, "
            f"so the installer itself would refuse it ({exc})") from exc
    return udeb_kernel_abis(text), where
