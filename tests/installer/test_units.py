"""The pure parts of `verify --installer`: kernel ABI match, the stall watch on real
debconf output, the initrd member, the preseed values, the qemu command line."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest

from builder.base.errors import ClusterStackError, InputError
from builder.stack import profile
from builder.tree.preseed import render_preseed
from builder.verify.cluster.config import AddressPlan
from builder.verify.installer import checks, initrd, netboot, proxy, qemu
from builder.verify.installer.harness import preseed_values
from builder.verify.installer.watch import DebconfWatch

ROOT = Path(__file__).parents[2]
DATA = Path(__file__).parent / "data"


def bzimage(version: str) -> bytes:
    """A minimal bzImage: the setup header's HdrS and kernel_version pointer."""
    image = bytearray(0x400)
    image[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", image, 0x20E, 0x300 - 0x200)
    text = f"{version} (debian-kernel@lists.debian.org) #1 SMP".encode() + b"\0"
    image[0x300:0x300 + len(text)] = text
    return bytes(image)


def test_kernel_abi_is_read_from_the_bzimage_header() -> None:
    assert netboot.bzimage_release(bzimage("6.12.117+deb13-amd64")) == "6.12.117+deb13-amd64"


def test_not_a_bzimage_is_one_clear_error() -> None:
    with pytest.raises(netboot.InstallerInputError, match="linux: not a Linux bzImage"):
        netboot.bzimage_release(b"\0" * 4096, "linux")


UDEBS = """Package: kernel-image-6.12.107+deb13-amd64-di
Version: 6.12.107-1

Package: ext4-modules-6.12.107+deb13-amd64-di
Version: 6.12.107-1

Package: kernel-image-6.12.94+deb13-amd64-di
Version: 6.12.94-1
"""


def test_the_mirrors_kernel_udebs_are_listed() -> None:
    assert netboot.udeb_kernel_abis(UDEBS) == ["6.12.107+deb13-amd64", "6.12.94+deb13-amd64"]


def candidate(version: str, abi: str = "", pinned: bool = False) -> netboot.Candidate:
    return netboot.Candidate(version, f"http://mirror/{version}.deb", "0" * 64, 1, abi, pinned)


def image(c: netboot.Candidate, abi: str) -> netboot.Netboot:
    return netboot.Netboot(c.version, Path("linux"), Path("initrd.gz"), abi, Path("x.deb"),
                           c.pinned)


def test_the_newest_image_whose_kernel_the_mirror_serves_is_chosen() -> None:
    # this build host's mirror (2026-12-02): the index's u8 runs 6.12.117, no udebs for it;
    # the pinned u7 names 6.12.107 (listed, not in the pool), the pinned u6 6.12.94 (there)
    reasons = {"6.12.117+deb13-amd64": "not listed", "6.12.107+deb13-amd64": "not in the pool"}
    unpacked: list[str] = []

    def unpack(c: netboot.Candidate) -> netboot.Netboot:
        unpacked.append(c.version)
        return image(c, c.abi or "6.12.117+deb13-amd64")

    choice = netboot.choose([candidate("u8"), candidate("u7", "6.12.107+deb13-amd64", True),
                             candidate("u6", "6.12.94+deb13-amd64", True)],
                            unpack, reasons.get)
    assert choice.image.version == "u6" and choice.image.pinned
    assert unpacked == ["u8", "u6"]   # a pin whose kernel cannot match is not downloaded
    text = choice.describe()
    assert "u6 (pinned, kernel 6.12.94+deb13-amd64)" in text
    assert "u8 (kernel 6.12.117+deb13-amd64: not listed)" in text
    assert "u7 (kernel 6.12.107+deb13-amd64: not in the pool)" in text


def test_the_index_image_is_taken_when_its_kernel_matches() -> None:
    choice = netboot.choose([candidate("u8"), candidate("u6", "6.12.94+deb13-amd64", True)],
                            lambda c: image(c, "6.12.117+deb13-amd64"), lambda abi: None)
    assert choice.image.version == "u8" and not choice.skipped
    assert "the signed index's newest" in choice.describe()


def test_no_image_matching_the_mirror_is_one_clear_error() -> None:
    with pytest.raises(netboot.InstallerInputError) as err:
        netboot.choose([candidate("20250803+deb13u8")],
                       lambda c: image(c, "6.12.117+deb13-amd64"),
                       lambda abi: "the installer index lists kernel udebs for 6.12.94")
    assert err.value.exit_code == 2
    assert "20250803+deb13u8 (kernel 6.12.117+deb13-amd64: the installer index lists" in str(
        err.value)
    assert "pins.yaml" in str(err.value)


def test_a_pin_whose_image_has_another_kernel_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "netboot" / ("0" * 16)
    target.mkdir(parents=True)
    (target / "linux").write_bytes(bzimage("6.12.117+deb13-amd64"))
    (target / "initrd.gz").write_bytes(b"")

    class Cached:
        def fetch_verified(self, url: str, sha256: str, size: int | None = None) -> Path:
            return tmp_path / "x.deb"

    with pytest.raises(netboot.InstallerInputError, match=r"the kernel is 6\.12\.117.*pins\.yaml "
                       r"says 6\.12\.94"):
        netboot.unpack(candidate("u6", "6.12.94+deb13-amd64", True), Cached(),  # type: ignore[arg-type]
                       tmp_path)


def test_the_shipped_pins_load(tmp_path: Path) -> None:
    pins = netboot.load_pins()
    assert pins.netboot and all(len(p.sha256) == 64 for p in pins.netboot)
    assert {p.package for p in pins.udebs} >= {"e2fsprogs-udeb"}
    bad = tmp_path / "pins.yaml"
    bad.write_text("netboot:\n  - version: x\n    filename: pool/x.deb\n    sha256: nothex\n"
                   "    size: 1\n    kernel: k\n")
    with pytest.raises(InputError, match=r"pins\.yaml:4"):
        netboot.load_pins(bad)


def test_preseed_in_the_initrd_is_a_newc_member(tmp_path: Path) -> None:
    base = tmp_path / "initrd.gz"
    base.write_bytes(gzip.compress(initrd.newc_archive({"init": b"#!/bin/sh\n"})))
    out = initrd.with_files(base, {"preseed.cfg": b"d-i foo string bar\n"}, tmp_path / "o.gz")
    raw = out.read_bytes()
    assert raw.startswith(base.read_bytes())
    appended = gzip.decompress(raw[len(base.read_bytes()):])
    assert appended.startswith(b"070701")
    assert b"preseed.cfg\0" in appended and b"d-i foo string bar\n" in appended
    assert appended.rstrip(b"\0").endswith(b"TRAILER!!!")
    # each header is 110 bytes, name and data padded to 4
    assert len(appended) % 4 == 0


def test_initrd_member_paths_must_be_relative() -> None:
    with pytest.raises(ValueError, match="relative path"):
        initrd.newc_archive({"/etc/passwd": b""})


def test_preseed_values_use_the_forwards_and_the_bond_nics() -> None:
    values = preseed_values(profile.load(ROOT, "trixie"), AddressPlan())
    values.check()
    text = render_preseed(ROOT / "packaging", profile.load(ROOT, "trixie"), values)
    lines = text.splitlines()
    assert "d-i netcfg/choose_interface select ens3" in lines
    assert "d-i mirror/http/hostname string 10.0.2.100:3142" in lines
    assert "d-i apt-setup/security_host string 10.0.2.100:3142" in lines
    assert "d-i apt-setup/local0/repository string http://10.0.2.101/ trixie main" in lines
    assert ("d-i apt-setup/local0/key string "
            "http://10.0.2.101/clusterstack-archive-keyring.gpg") in lines
    assert "set -- ens4 ens5" in text and "192.0.2.10/24" in text
    assert "d-i netcfg/get_nameservers string " in lines
    assert "(tail -n +1 -f /var/log/syslog > /dev/ttyS1" in text and "3>&-" in text
    assert "--autologin root" in text
    # the late_command stays one debconf value: every continued line ends in a backslash
    late = text[text.index("d-i preseed/late_command"):text.index("d-i finish-install")]
    body = [ln for ln in late.strip().splitlines()]
    assert all(ln.endswith("\\") for ln in body[:-1]) and not body[-1].endswith("\\")


def test_an_installer_command_on_two_lines_is_refused() -> None:
    from dataclasses import replace
    values = preseed_values(profile.load(ROOT, "trixie"), AddressPlan())
    bad = replace(values, install=replace(values.install, early_command="a\nb"))
    with pytest.raises(ClusterStackError, match="more than one line"):
        bad.check()


def test_the_shipped_example_keeps_its_defaults() -> None:
    from builder.tree.preseed import Preseed
    text = render_preseed(ROOT / "packaging", profile.load(ROOT, "trixie"), Preseed())
    assert "d-i netcfg/choose_interface select auto" in text
    assert "security_host" not in text and "early_command" not in text


def test_guest_forwards_have_no_commas_and_the_user_net_is_restricted() -> None:
    argv = qemu.nic_argv([qemu.Forward("10.0.2.100", 3142, 23142)],
                         ("52:54:00:00:00:01", "52:54:00:00:00:02", "52:54:00:00:00:03"),
                         ("tap-g1", "tap-g2"), harness_pid=4242)
    user = argv[1]
    assert user.startswith("user,id=inst,restrict=on,guestfwd=tcp:10.0.2.100:3142-cmd:")
    assert "--net=/proc/4242/ns/net" in user and user.endswith("127.0.0.1 23142")
    assert user.count(",") == 3  # user, id, restrict, the one guestfwd
    assert "ifname=tap-g1" in " ".join(argv) and "addr=0x5" in " ".join(argv)


def test_the_installer_gets_the_vcpus_asked_for_and_no_more_than_the_host_has(
        tmp_path: Path) -> None:
    argv = qemu.base_argv("installer", 1024, tmp_path / "d.qcow2", tmp_path / "m.sock", 2)
    assert argv[argv.index("-smp") + 1] == "2"
    assert "thread=multi" in argv[argv.index("-accel") + 1]
    assert 1 <= qemu.default_cpus() <= 2


def test_installer_command_line() -> None:
    line = qemu.installer_cmdline()
    assert "priority=critical" in line and "DEBIAN_FRONTEND=text" in line
    assert line.split(" --- ")[1] == "console=ttyS0,115200n8"


def test_apt_cacher_ng_download_volume_counts_incoming_lines_only() -> None:
    log = ("1796164458|I|140632|127.0.0.1|debrep/dists/trixie/InRelease\n"
           "1796164458|O|140636|127.0.0.1|debrep/dists/trixie/InRelease\n"
           "1796164458|I|54506|127.0.0.1|debrep/dists/trixie/main/x/Packages.xz\n"
           "1796164420|E|832|127.0.0.1| [HTTP error, code: 200]\n")
    assert proxy.downloaded_bytes(log) == 140632 + 54506


def test_the_warm_replay_asks_for_what_the_cold_run_served_once_each() -> None:
    # Lines of a real cold run's apt-cacher.log (2026-12-02).
    log = ("1796216890|I|149506|127.0.0.1|debrep/dists/oldstable/Release\n"
           "1796216890|O|149483|127.0.0.1|debrep/dists/oldstable/Release\n"
           "1796216895|O|61440|127.0.0.1|secdeb/dists/trixie-security/InRelease\n"
           "1796216899|O|149483|127.0.0.1|debrep/dists/oldstable/Release\n"
           "1796216899|O|12|127.0.0.1|other/x\n")
    assert proxy.served_paths(log) == ["debian/dists/oldstable/Release",
                                       "debian-security/dists/trixie-security/InRelease"]


def test_apt_cacher_ng_gets_a_port_it_can_parse() -> None:
    assert proxy.free_port() < 32768


def test_bonding_status_and_failover_time() -> None:
    text = ("Bonding Mode: fault-tolerance (active-backup)\nPrimary Slave: ens4\n"
            "Currently Active Slave: ens5\nMII Status: up\n\n"
            "Slave Interface: ens4\nMII Status: down\n\nSlave Interface: ens5\nMII Status: up\n")
    assert checks.parse_bonding(text) == {"active": "ens5", "ens4": "down", "ens5": "up"}
    ping = "\n".join(f"[{t:.6f}] 64 bytes from 192.0.2.10: icmp_seq={i} ttl=64 time=1 ms"
                     for i, t in enumerate([100.00, 100.02, 100.04, 100.31, 100.33]))
    assert checks.failover_seconds(ping, 100.05) == pytest.approx(0.26)
    assert checks.failover_seconds(ping, 99.0) is None
    assert checks.lost_replies(ping, 100.05) == 0
    gap = ping.replace("icmp_seq=3 ", "icmp_seq=16 ").replace("icmp_seq=4 ", "icmp_seq=17 ")
    assert checks.lost_replies(gap, 100.05) == 13


def test_no_question_asked_is_no_stall() -> None:
    watch = DebconfWatch(grace_s=30)
    for line in ("debconf (developer): <-- INPUT critical netcfg/get_hostname",
                 "debconf (developer): --> 30 question skipped",
                 "debconf (developer): <-- GO",
                 "debconf (developer): --> 0 ok"):
        watch.feed(line, 0.0)
    assert watch.stall(1000.0) is None


def feed(watch: DebconfWatch, path: Path, now: float) -> None:
    for line in path.read_text().splitlines():
        watch.feed(line, now)


def test_a_question_not_preseeded_is_named_from_the_real_installer_log() -> None:
    # trixie's installer on 2026-12-01: qemu's restricted user network gives DHCP but no
    # name server, and netcfg asked for one at critical priority (the preseed now says "")
    watch = DebconfWatch(grace_s=30)
    feed(watch, DATA / "netcfg-nameservers-stall.syslog", now=100.0)
    assert watch.stall(110.0) is None  # within the grace: a question may still be answered
    stall = watch.stall(131.0)
    assert stall is not None and stall.questions == ["netcfg/get_nameservers"]
    assert "netcfg/get_nameservers (not preseeded" in stall.describe(131.0)
    assert watch.last_input == "netcfg/get_nameservers"


def test_a_question_answered_in_time_is_no_stall() -> None:
    watch = DebconfWatch(grace_s=30)
    feed(watch, DATA / "netcfg-nameservers-stall.syslog", now=100.0)
    watch.feed("Dec  1 22:51:15 debconf: --> GET netcfg/get_nameservers", 120.0)
    assert watch.stall(1000.0) is None


def test_no_published_repository_and_no_key_are_refused_before_anything_starts(
        tmp_path: Path) -> None:
    from builder.verify.installer.harness import InstallerOptions, run_installer

    class NoUpstream:  # the repository is checked before Debian's archive is read
        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"upstream.{name} used")

    prof = profile.load(ROOT, "trixie")
    repo = tmp_path / "public" / "trixie"
    options = InstallerOptions(repo=repo, output_dir=tmp_path / "out",
                               cache_dir=tmp_path / "cache")
    with pytest.raises(netboot.InstallerInputError, match="no published repository at"):
        run_installer(options, prof, NoUpstream(), ROOT / "packaging")  # type: ignore[arg-type]
    (repo / "dists" / "trixie").mkdir(parents=True)
    (repo / "dists" / "trixie" / "InRelease").write_text("signed\n")
    with pytest.raises(netboot.InstallerInputError,
                       match=r"keyring\.gpg: the repository has no public key"):
        run_installer(options, prof, NoUpstream(), ROOT / "packaging")  # type: ignore[arg-type]
    assert not (tmp_path / "cache" / "runs").exists()  # nothing was started


def test_an_install_counts_as_finished_only_after_finish_install_ran(tmp_path: Path) -> None:
    syslog = tmp_path / "syslog"
    syslog.write_text("debconf: Adding [ID] -> [finish-install/reboot_in_progress]\n")
    with pytest.raises(ClusterStackError, match="stopped before finish-install"):
        checks.require_finished(tmp_path / "console", syslog)
    syslog.write_text("main-menu[1702]: INFO: Menu item 'finish-install' selected\n")
    checks.require_finished(tmp_path / "console", syslog)


def test_serial_shell_runs_commands_between_markers(tmp_path: Path) -> None:
    """Against a stand-in for the autologin console: a tty that echoes what it gets,
    runs each line with sh and answers with CRLF line ends and a prompt."""
    import contextlib
    import socket
    import subprocess
    import threading

    from builder.verify.installer.shell import SerialShell

    path = tmp_path / "console.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    prompt = b"root@node1:~# "

    def console() -> None:
        with contextlib.suppress(OSError):  # the test closed its end
            serve_console()

    def serve_console() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"[  OK  ] Started serial-getty@ttyS0.service\r\n\r\n"
                         b"node1 login: root (automatic login)\r\n\r\n" + prompt)
            buf = b""
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    conn.sendall(line + b"\r\n")  # the tty's echo
                    if line.strip():
                        out = subprocess.run(["sh", "-c", line.decode()], capture_output=True,
                                             check=False).stdout
                        conn.sendall(out.replace(b"\n", b"\r\n"))
                    conn.sendall(prompt)

    thread = threading.Thread(target=console, daemon=True)
    thread.start()
    shell = SerialShell(path, tmp_path / "transcript.log")
    try:
        assert shell.wait_prompt(timeout=20) < 20
        assert shell.run("printf 'a\\nb\\n'; false") == (1, "a\nb\n")
        rc, text = shell.run("echo '__E9__ 0'; echo done")
        assert rc == 0 and text == "__E9__ 0\ndone\n"
    finally:
        shell.close()
        server.close()
        thread.join(timeout=5)
    assert "automatic login" in (tmp_path / "transcript.log").read_text()


POLICY = """ubuntu-cluster:
  Installed: 1.0+cs1
  Candidate: 1.0+cs1
  Version table:
 *** 1.0+cs1 500
        500 http://10.0.2.101 trixie/main amd64 Packages
        100 /var/lib/dpkg/status
pacemaker:
  Installed: 3.0.0-2
  Candidate: 3.0.0-2+cs1
  Version table:
     3.0.0-2+cs1 500
        500 http://10.0.2.101 trixie/main amd64 Packages
 *** 3.0.0-2 500
        500 http://10.0.2.100:3142/debian trixie/main amd64 Packages
        100 /var/lib/dpkg/status
corosync:
  Installed: (none)
  Candidate: 3.1.9-2+cs1
  Version table:
     3.1.9-2+cs1 500
        500 http://10.0.2.101 trixie/main amd64 Packages
"""


def test_the_installed_version_must_come_from_our_repository() -> None:
    # pacemaker from Debian although ours is offered, corosync not installed: both not ours
    assert checks.installed_from(POLICY, "10.0.2.101") == {
        "ubuntu-cluster": True, "pacemaker": False, "corosync": False}


def test_the_bond_stanza_the_preseed_writes_is_read_back() -> None:
    text = ("auto lo\niface lo inet loopback\n\nauto bond0\niface bond0 inet static\n"
            "    address 192.0.2.10/24\n    gateway 192.0.2.254\n    bond-slaves ens4 ens5\n"
            "    bond-mode active-backup\n    bond-miimon 100\n    bond-primary ens4\n")
    assert checks.interfaces_bond(text) == {
        "address": "192.0.2.10/24", "gateway": "192.0.2.254", "bond-slaves": "ens4 ens5",
        "bond-mode": "active-backup", "bond-miimon": "100", "bond-primary": "ens4"}
    assert checks.interfaces_bond("auto ens3\niface ens3 inet dhcp\n") == {}


def test_a_kept_disk_that_does_not_exist_is_refused_before_anything_starts(
        tmp_path: Path) -> None:
    from builder.verify.installer.harness import InstallerOptions, run_installer
    options = InstallerOptions(repo=tmp_path, output_dir=tmp_path / "out",
                               cache_dir=tmp_path / "cache",
                               installed_disk=tmp_path / "node1.qcow2")
    with pytest.raises(netboot.InstallerInputError, match=r"node1\.qcow2: no such disk image"):
        run_installer(options, profile.load(ROOT, "trixie"), None,  # type: ignore[arg-type]
                      ROOT / "packaging")
    assert not (tmp_path / "cache" / "runs").exists()


# From the installed node's serial console on 2026-12-02 (installed-shell.log of
# `python -m builder.verify.installer --keep-disk`): what apt-setup wrote, and how
# trixie's ip(8) answers on a terminal.
INSTALLED_SOURCES = (
    "deb [signed-by=/etc/apt/keyrings/ClusterStack.gpg] http://10.0.2.101/ trixie main\n"
    "==\n"
    "{ours}  /etc/apt/keyrings/ClusterStack.gpg\n"
    "4d097bb93f83d731f475c5b92a0c2fcf108cfce1d4932792fca72d00b48d198b  "
    "/etc/apt/trusted.gpg.d/debian-archive-trixie-stable.asc\n")
OUR_KEY = "a" * 64


def expected() -> checks.Expected:
    return checks.Expected(repo_host="10.0.2.101", key_sha256=(OUR_KEY,),
                           bond_address="192.0.2.21/24", bond_mode="active-backup",
                           slaves=("ens4", "ens5"))


def test_our_key_is_the_one_apt_setup_names_in_signed_by() -> None:
    ok, detail = checks.our_source_and_key(INSTALLED_SOURCES.format(ours=OUR_KEY), expected())
    assert ok, detail
    assert "key /etc/apt/keyrings/ClusterStack.gpg" in detail


def test_another_key_in_signed_by_fails_even_if_ours_is_trusted_elsewhere() -> None:
    text = INSTALLED_SOURCES.format(ours="b" * 64) + f"{OUR_KEY}  /etc/apt/trusted.gpg.d/x.gpg\n"
    ok, detail = checks.our_source_and_key(text, expected())
    assert not ok
    assert "no key with our digest in /etc/apt/keyrings/ClusterStack.gpg" in detail


def test_no_apt_line_for_our_repository_fails() -> None:
    ok, detail = checks.our_source_and_key("==\n", expected())
    assert not ok and "no apt line for http://10.0.2.101" in detail


def test_console_colours_are_stripped() -> None:
    from builder.verify.installer.shell import plain
    line = ("\x1b[36mbond0            \x1b[0m\x1b[32mUP             \x1b[0m"
            "\x1b[33m52:54:00:c5:01:04 \x1b[0m<BROADCAST,MULTICAST,MASTER,UP,LOWER_UP> \r\n")
    assert plain(line) == ("bond0            UP             52:54:00:c5:01:04 "
                           "<BROADCAST,MULTICAST,MASTER,UP,LOWER_UP> \n")
    assert " UP " in f" {plain(line)} "
