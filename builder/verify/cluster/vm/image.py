"""The guests' disk image and kernel: one mmdebstrap root, made into an ext4 image.

Everything a guest needs is installed here, on the host, from our repository
served on loopback: the guests themselves reach nothing but their private
bridge. Debian 13's kernel comes in the same root (its modules, drbd, dlm and
gfs2 among them, must be in the image anyway); its initramfs is built with
MODULES=list and only what mounts a virtio root, which boots faster than the
default MODULES=most.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from builder.base.command import Runner
from builder.buildroot import roots

from .. import cachekeep
from ..fencing import agent_path
from ..rootfs import RootSpec, mmdebstrap_argv

# Bumped when the way an image is made changes.
IMAGE_FORMAT = 1

VM_PACKAGES = ("linux-image-amd64", "initramfs-tools", "kmod", "drbd-utils", "mariadb-server",
               "e2fsprogs", "util-linux",
               # the optional GFS2 step (VmOptions.gfs2): dlm_controld and mkfs.gfs2
               "dlm-controld", "gfs2-utils",
               # the LVS step (VmOptions.lvs): keepalived (in the namespace tier's root
               # already) directs, ipvsadm shows its IPVS table; HTTP_GET is keepalived's own
               "ipvsadm")
# Just enough for the initramfs to mount /dev/vda; the rest loads from the root later.
INITRAMFS_MODULES = ("virtio_pci", "virtio_blk", "virtio_console", "ext4")

GUEST_INIT_PATH = "/usr/local/sbin/clusterstack-guest-init"
GUEST_AGENT_PATH = "/usr/local/sbin/clusterstack-guest-agent"
# Where pacemaker-fenced looks for fence agents.
FENCE_AGENT_PATH = "/usr/sbin/fence_nsnode"

# PID 1 of a guest. No systemd: it would double the boot under emulation, and the
# harness starts corosync and pacemakerd itself, as the namespace tier's init does.
GUEST_INIT = """#!/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -o remount,rw /
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        cs.name=*) name=${arg#cs.name=} ;;
        cs.addr=*) addr=${arg#cs.addr=} ;;
    esac
done
hostname "$name"
echo "$name" > /etc/hostname
# No udev here to load drivers for the devices found: what the guest has, by name.
modprobe -a virtio_net virtio_console drbd dlm gfs2
# dlm_controld talks to the kernel's DLM through configfs.
mount -t configfs configfs /sys/kernel/config
ip link set lo up
ip addr add "$addr" dev eth0
ip link set eth0 up
# What systemd's tmpfiles and RuntimeDirectory= would create.
mkdir -p /run/crm /run/mysqld /run/lock /run/drbd /var/log/pacemaker /var/log/corosync \\
    /var/log/mysql /var/log/clusterstack /srv/shared
chown hacluster:haclient /run/crm /var/log/pacemaker
chmod 0750 /run/crm
chown mysql:mysql /run/mysqld /var/log/mysql
echo "clusterstack: $name up at $addr, starting the agent"
python3 -u GUEST_AGENT >>/var/log/clusterstack/agent.log 2>&1 &
# Reap what PID 1 inherits; a TERM (there is none from the harness) would just end here.
while true; do wait; sleep 1; done
""".replace("GUEST_AGENT", GUEST_AGENT_PATH)


def guest_agent_source() -> bytes:
    return (Path(__file__).parent / "guest_agent.py").read_bytes()


def guest_files() -> dict[str, bytes]:
    """Files of ours put into the image: the guest's init, its agent, the fence agent."""
    return {GUEST_INIT_PATH: GUEST_INIT.encode(), GUEST_AGENT_PATH: guest_agent_source(),
            FENCE_AGENT_PATH: agent_path().read_bytes()}


def initramfs_hook() -> str:
    """mmdebstrap --essential-hook: configure initramfs-tools before the kernel is installed,
    so that its postinst builds the small initramfs once."""
    modules = "\\n".join(INITRAMFS_MODULES)
    return ('mkdir -p "$1/etc/initramfs-tools/conf.d" && '
            'printf "MODULES=list\\nCOMPRESS=zstd\\n" '
            '> "$1/etc/initramfs-tools/conf.d/clusterstack.conf" && '
            f'printf "{modules}\\n" > "$1/etc/initramfs-tools/modules"')


def image_argv(spec: RootSpec, tarball: Path) -> list[str]:
    """mmdebstrap_argv of the namespace tier's root, with the kernel's initramfs hook
    (`vm_root_spec` puts it in the spec)."""
    return mmdebstrap_argv(spec, tarball)


def mkfs_argv(tree: Path, image: Path, size_mib: int) -> list[str]:
    # No journal: a guest's overlay is thrown away, and writes are cheaper under emulation.
    return ["mkfs.ext4", "-q", "-F", "-O", "^has_journal", "-L", "clusterstack", "-d", str(tree),
            str(image), f"{size_mib}M"]


@dataclass
class Image:
    root_tree: Path  # the unpacked root: also the host-side client's chroot
    disk: Path  # ext4, read-only base of each guest's qcow2 overlay
    kernel: Path
    initrd: Path
    key: str
    built: bool
    seconds: float


def _tree_size_mib(tree: Path) -> int:
    total = 0
    for path in tree.rglob("*"):
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total // (1024 * 1024)


@contextlib.contextmanager
def ensure_image(spec: RootSpec, cache_dir: Path, runner: Runner) -> Iterator[Image]:
    """The root, its kernel and initrd, and its ext4 image: built when not cached,
    held for the block."""
    images = cache_dir / "vm-images"
    images.mkdir(parents=True, exist_ok=True)
    rootfs = replace(spec.rootfs(), name=f"{spec.suite}-root")
    # The root tarball depends on what is installed (the initramfs hook is in its spec);
    # the image also on our files in it, which change far more often and cost only an
    # unpack and a mkfs to redo.
    root_key = roots.current_key(rootfs, runner)
    h = hashlib.sha256(f"{IMAGE_FORMAT}:{root_key}".encode())
    for path, data in sorted(guest_files().items()):
        h.update(path.encode() + b"\0" + data)
    key = h.hexdigest()[:16]
    base = images / f"{spec.suite}-{key}"
    tarball = roots.tarball_path(rootfs, images, root_key)
    done = base / "complete.json"
    tree = base / "root"

    def make() -> None:
        roots.build(rootfs, images, runner, key=root_key, timeout=2400)
        # Images of this root made with older guest files: nobody holds the root now.
        for old in _bases(images, root_key):
            shutil.rmtree(old)
        if base.exists():
            shutil.rmtree(base)
        roots.unpack(tarball, tree, runner)
        for path, data in guest_files().items():
            target = tree / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            target.chmod(0o755)
        kernels = sorted((tree / "boot").glob("vmlinuz-*"))
        initrds = sorted((tree / "boot").glob("initrd.img-*"))
        if not kernels or not initrds:
            raise RuntimeError(f"no kernel or initrd in {tree / 'boot'}")
        shutil.copy(kernels[-1], base / "vmlinuz")
        shutil.copy(initrds[-1], base / "initrd.img")
        # Room for the logs, the DRBD tools' state and MariaDB's files outside DRBD.
        size = _tree_size_mib(tree) * 13 // 10 + 512
        runner.run(mkfs_argv(tree, base / "root.ext4", size), timeout=900)
        done.write_text(json.dumps({"key": key, "root_key": root_key,
                                    "packages": spec.packages}) + "\n")

    start = time.monotonic()
    # Keyed by the root: two runs sharing a cache wait for each other instead of
    # building it twice, and a newer image of the same root replaces the old one.
    with cachekeep.use(images / f"{root_key}.lock", done.exists, make) as made:
        cachekeep.prune(images, root_key, lambda stale: [
            *images.glob(f"*-root-{stale}*"), *_bases(images, stale)])
        yield Image(tree, base / "root.ext4", base / "vmlinuz", base / "initrd.img", key,
                    made, time.monotonic() - start)


def _bases(images: Path, root_key: str) -> list[Path]:
    """The image folders in `images` made from the root `root_key`, complete or not."""
    found = []
    for base in images.iterdir():
        if not base.is_dir():
            continue
        try:
            if json.loads((base / "complete.json").read_text())["root_key"] == root_key:
                found.append(base)
        except (OSError, ValueError, KeyError):
            continue
    return found


def vm_root_spec(suite: str, mirror: str, extra_sources: list[str],
                 extra_keys: list[Path]) -> RootSpec:
    """The namespace tier's root (ubuntu-cluster from our archive and the harness's tools)
    plus the kernel, drbd-utils and MariaDB."""
    return RootSpec(suite, mirror, tuple(extra_sources), tuple(extra_keys),
                    extra_packages=VM_PACKAGES, essential_hooks=(initramfs_hook(),))
