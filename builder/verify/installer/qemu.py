"""The installer guest's qemu command lines and its monitor (pure argv builders + a socket).

One guest, three NICs: the first on qemu's user network with `restrict=on`,
whose only ways out are the guestfwd addresses (apt-cacher-ng and our
repository, relayed to the host's loopback); the other two on taps of the
private switch, bonded on the installed system.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import relay

MIRROR_ADDRESS = "10.0.2.100"   # guest side of the apt-cacher-ng forward
REPO_ADDRESS = "10.0.2.101"     # guest side of our repository's forward
INSTALL_NIC = "ens3"            # PCI slot 3 (user network); 4 and 5 are the bond's
BOND_NICS = ("ens4", "ens5")
BOND_NETDEVS = ("bond1", "bond2")


@dataclass(frozen=True)
class Forward:
    guest_address: str
    guest_port: int
    host_port: int          # on 127.0.0.1 of the harness's network namespace


def relay_command(host_port: int, harness_pid: int | None = None) -> str:
    """The guestfwd `cmd:` that reaches 127.0.0.1:port of the harness's namespace.

    qemu splits -netdev options at commas, so the command has none.
    """
    pid = harness_pid or os.getpid()
    command = (f"nsenter --net=/proc/{pid}/ns/net -- {sys.executable} {relay.__file__} "
               f"127.0.0.1 {host_port}")
    if "," in command:
        raise ValueError(f"a comma in the relay command line: {command}")
    return command


def accel() -> list[str]:
    # tb-size bounds the translation cache (see the vm tier); KVM here cannot boot Debian's
    # kernels (PVM), so always TCG.
    return ["-accel", "tcg,thread=multi,tb-size=256", "-cpu", "max"]


def default_cpus() -> int:
    # With thread=multi each vCPU is a host thread: in the installer dpkg-deb's
    # decompression and dpkg's unpacking run side by side, so a second vCPU shortens
    # the emulated install on a 2-core host; more vCPUs than host cores only contend.
    return max(1, min(2, os.cpu_count() or 1))


def base_argv(name: str, memory_mib: int, disk: Path, monitor: Path, cpus: int = 1) -> list[str]:
    return [
        "qemu-system-x86_64", "-name", name, *accel(), "-m", str(memory_mib),
        "-smp", str(cpus),
        "-nodefaults", "-no-user-config", "-display", "none", "-vga", "none", "-no-reboot",
        "-drive", f"file={disk},format=qcow2,if=none,id=root,cache=unsafe,discard=unmap",
        "-device", "virtio-blk-pci,drive=root,serial=cs-root,addr=0x6",
        "-monitor", f"unix:{monitor},server=on,wait=off",
    ]


def nic_argv(forwards: list[Forward], macs: tuple[str, str, str], taps: tuple[str, str],
             harness_pid: int | None = None) -> list[str]:
    fwd = ",".join(f"guestfwd=tcp:{f.guest_address}:{f.guest_port}-cmd:"
                   f"{relay_command(f.host_port, harness_pid)}" for f in forwards)
    argv = ["-netdev", f"user,id=inst,restrict=on,{fwd}" if fwd else "user,id=inst,restrict=on",
            "-device", f"virtio-net-pci,netdev=inst,mac={macs[0]},addr=0x3"]
    for index, (netdev, tap) in enumerate(zip(BOND_NETDEVS, taps, strict=True)):
        argv += ["-netdev", f"tap,id={netdev},ifname={tap},script=no,downscript=no",
                 "-device", f"virtio-net-pci,netdev={netdev},mac={macs[index + 1]},"
                 f"addr=0x{4 + index:x}"]
    return argv


def installer_cmdline(install_nic: str = INSTALL_NIC) -> str:
    """The installer's kernel command line.

    DEBIAN_FRONTEND=text makes a question plain text on the console;
    DEBCONF_DEBUG=5 logs debconf's protocol to syslog for the stall watch
    (watch.py). After `---`: what the installed system's boot loader keeps.
    """
    return ("auto=true priority=critical preseed/file=/preseed.cfg "
            "locale=en_US.UTF-8 keymap=us "
            f"netcfg/choose_interface={install_nic} "
            "DEBIAN_FRONTEND=text DEBCONF_DEBUG=5 console=ttyS0,115200n8 "
            "--- console=ttyS0,115200n8")


class Monitor:
    """qemu's human monitor on a unix socket (set_link, quit)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def command(self, line: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(str(self.path))
                break
            except OSError:
                sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with sock:
            sock.settimeout(timeout)
            out = b""
            while b"(qemu)" not in out:  # the banner and first prompt
                chunk = sock.recv(4096)
                if not chunk:
                    break
                out += chunk
            sock.sendall(line.encode() + b"\n")
            reply = b""
            while reply.count(b"(qemu)") < 1:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
        return reply.decode("utf-8", "replace")

    def set_link(self, netdev: str, up: bool) -> None:
        self.command(f"set_link {netdev} {'on' if up else 'off'}")
