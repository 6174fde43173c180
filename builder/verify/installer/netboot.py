"""trixie's netboot installer: which image, fetched and checked, and its kernel.

The netboot initrd carries only the modules it needs to reach the network; the
rest (ext4, virtio-blk, ...) anna downloads as kernel-module udebs from the
mirror, and only those built for the very kernel it runs. An image one kernel
upload ahead of (or behind) the mirror's udebs fails after the first
questions, so the image is chosen before anything boots: the signed index's
newest first, then the images pinned in data/pins.yaml (older uploads still
in the pool, no longer in any signed index, so their sha256 is pinned here and
verified on download), the first whose kernel's udebs the mirror really holds.
"""

from __future__ import annotations

import re
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from builder.base import datafile
from builder.base.command import Runner
from builder.base.errors import ClusterStackError
from builder.base.fetch import Fetcher
from builder.sources.upstream import UpstreamArchive

NETBOOT_PACKAGE = "debian-installer-13-netboot-amd64"
IMAGE_DIR = "usr/lib/debian-installer/images/13/amd64/text/debian-installer/amd64"
UDEB_INDEX = "main/debian-installer/binary-amd64/Packages"
KERNEL_UDEB = re.compile(r"^Package: kernel-image-(\S+)-di$", re.M)
PINS_FILE = Path(__file__).parent / "data" / "pins.yaml"


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


@dataclass(frozen=True)
class NetbootPin:
    version: str
    filename: str
    sha256: str
    size: int
    kernel: str


@dataclass(frozen=True)
class UdebPin:
    package: str
    version: str
    filename: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Pins:
    netboot: list[NetbootPin]
    udebs: list[UdebPin]


def load_pins(path: Path = PINS_FILE) -> Pins:
    data = datafile.load(path, "installer-pins")
    return Pins(netboot=[NetbootPin(**e) for e in data.get("netboot", [])],
                udebs=[UdebPin(**e) for e in data.get("udebs", [])])


@dataclass(frozen=True)
class Netboot:
    version: str
    kernel: Path
    initrd: Path
    abi: str
    deb: Path
    pinned: bool = False        # from pins.yaml, not from the signed index


@dataclass(frozen=True)
class Candidate:
    """One netboot image that could be booted: from the signed index, or pinned."""

    version: str
    url: str
    sha256: str
    size: int
    abi: str = ""               # known in advance for a pin; read from the image otherwise
    pinned: bool = False


def candidates(upstream: UpstreamArchive, pins: list[NetbootPin]) -> list[Candidate]:
    """The signed index's newest image first, then the pinned ones in their order."""
    found: list[Candidate] = []
    versions = upstream.binary_versions(NETBOOT_PACKAGE)
    if versions and (pkg := upstream.binary(NETBOOT_PACKAGE, versions[-1])) is not None:
        found.append(Candidate(pkg.version, pkg.url, pkg.sha256, pkg.size))
    base = upstream.releases[0].archive.uri
    found += [Candidate(p.version, f"{base}/{p.filename}", p.sha256, p.size, p.kernel, True)
              for p in pins if all(c.version != p.version for c in found)]
    if not found:
        raise InstallerInputError(f"{upstream.suites_label()}: no {NETBOOT_PACKAGE} package, "
                                  f"and none pinned in {PINS_FILE}")
    return found


def unpack(candidate: Candidate, fetcher: Fetcher, cache_dir: Path) -> Netboot:
    """One candidate's kernel and initrd, unpacked once per checksum (the .deb is
    checked against the index's or the pin's sha256 on download)."""
    deb = fetcher.fetch_verified(candidate.url, candidate.sha256, candidate.size)
    target = cache_dir / "netboot" / candidate.sha256[:16]
    kernel, initrd = target / "linux", target / "initrd.gz"
    if not (kernel.is_file() and initrd.is_file()):
        _unpack(deb, target, Runner())
    what = f"{NETBOOT_PACKAGE} {candidate.version}: {IMAGE_DIR}/linux"
    abi = bzimage_release(kernel.read_bytes(), what)
    if candidate.abi and abi != candidate.abi:
        raise InstallerInputError(f"{what}: the kernel is {abi}, but {PINS_FILE} says "
                                  f"{candidate.abi}")
    return Netboot(candidate.version, kernel, initrd, abi, deb, candidate.pinned)


@dataclass(frozen=True)
class Choice:
    image: Netboot
    skipped: list[str]          # why each image tried before it was not taken

    def describe(self) -> str:
        how = "pinned" if self.image.pinned else "the signed index's newest"
        text = f"{NETBOOT_PACKAGE} {self.image.version} ({how}, kernel {self.image.abi})"
        return text + ("; skipped " + "; ".join(self.skipped) if self.skipped else "")


def choose(options: list[Candidate], unpacker: Callable[[Candidate], Netboot],
           has_kernel: Callable[[str], str | None]) -> Choice:
    """The first image whose kernel the mirror has udebs for.

    `has_kernel(abi)` is None when the mirror's installer index lists that
    kernel's udebs and its pool holds them, else why not. A pin names its
    kernel, so an image that cannot match is not even downloaded.
    """
    skipped: list[str] = []
    for candidate in options:
        if candidate.abi and (why := has_kernel(candidate.abi)) is not None:
            skipped.append(f"{candidate.version} (kernel {candidate.abi}: {why})")
            continue
        image = unpacker(candidate)
        if (why := has_kernel(image.abi)) is not None:
            skipped.append(f"{candidate.version} (kernel {image.abi}: {why})")
            continue
        return Choice(image, skipped)
    raise InstallerInputError(
        f"no {NETBOOT_PACKAGE} image whose kernel the mirror has udebs for: "
        + "; ".join(skipped) + " (the installer would find no kernel modules, e.g. ext4 "
        f"or virtio-blk, for its kernel; pin a matching image in {PINS_FILE})")


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
