"""The kernel tier (qemu guests): fast tests of its pure parts, plus one opt-in e2e run.

The e2e test boots two qemu guests under software emulation (several minutes, ~2 GiB of
memory, root): it runs only with CLUSTERSTACK_TEST_VM=1 and `-m e2e`.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
from pathlib import Path

import pytest

from builder.base.command import Runner
from builder.verify.cluster import config
from builder.verify.cluster.options import FenceEvent
from builder.verify.cluster.rootfs import RootSpec
from builder.verify.cluster.vm import guest_agent
from builder.verify.cluster.vm.guest import Guest, GuestSpec, kernel_cmdline, mac_address, qemu_argv
from builder.verify.cluster.vm.harness import (
    GFS2_RECOVERY_LIMIT,
    VmOptions,
    VmReport,
    table,
    write_report,
)
from builder.verify.cluster.vm.image import (
    FENCE_AGENT_PATH,
    GUEST_INIT,
    GUEST_INIT_PATH,
    INITRAMFS_MODULES,
    guest_files,
    image_argv,
    initramfs_hook,
    mkfs_argv,
    vm_root_spec,
)
from builder.verify.cluster.vm.network import tap_name
from builder.verify.cluster.vm.scenario import crm_config, drbd_resource, gfs2_crm_config


def spec(tmp_path: Path, accel: str = "tcg") -> GuestSpec:
    return GuestSpec(name="node1", address="192.0.2.1/24", mac=mac_address(0),
                     tap=tap_name(0), kernel=tmp_path / "vmlinuz", initrd=tmp_path / "initrd",
                     disk=tmp_path / "node1.qcow2", drbd_disk=tmp_path / "node1.drbd.img",
                     run_dir=tmp_path, accel=accel)


def test_qemu_argv_tcg(tmp_path: Path) -> None:
    argv = qemu_argv(spec(tmp_path), GUEST_INIT_PATH)
    assert argv[0] == "qemu-system-x86_64"
    joined = " ".join(argv)
    # tb-size bounds qemu's memory; one vCPU per guest on a shared host
    assert "-accel tcg,thread=multi,tb-size=256 -cpu max" in joined
    assert argv[argv.index("-smp") + 1] == "1"
    assert argv[argv.index("-m") + 1] == "768"
    assert f"-kernel {tmp_path}/vmlinuz" in joined
    assert "ifname=tap-g1,script=no,downscript=no" in joined
    assert "mac=52:54:00:c5:00:01" in joined
    assert f"path={tmp_path}/node1.ctl.sock,server=on,wait=off" in joined
    assert "name=clusterstack.fence" in joined
    assert "-no-reboot" in argv
    drives = [argv[i + 1] for i, a in enumerate(argv) if a == "-drive"]
    assert drives[0].startswith(f"file={tmp_path}/node1.qcow2,format=qcow2,")
    assert drives[1].startswith(f"file={tmp_path}/node1.drbd.img,format=raw,")
    assert len(drives) == 2  # no shared disk unless asked for
    devices = [argv[i + 1] for i, a in enumerate(argv) if a == "-device"]
    disks = [d for d in devices if d.startswith("virtio-blk-pci")]
    # the order makes the names in the guest: vda root, vdb DRBD
    assert [d.split(",")[1] for d in disks] == ["drive=root", "drive=drbd"]


def test_qemu_argv_shared_disk(tmp_path: Path) -> None:
    from dataclasses import replace

    argv = qemu_argv(replace(spec(tmp_path), shared_disk=tmp_path / "shared.img"),
                     GUEST_INIT_PATH)
    devices = [argv[i + 1] for i, a in enumerate(argv) if a == "-device"]
    shared = [d for d in devices if "drive=shared" in d]
    assert shared and "share-rw=on" in shared[0]
    assert f"file={tmp_path}/shared.img,format=raw,cache=none,aio=threads,if=none,id=shared" \
        in argv


def test_qemu_argv_kvm(tmp_path: Path) -> None:
    argv = qemu_argv(spec(tmp_path, accel="kvm"), GUEST_INIT_PATH)
    assert argv[argv.index("-accel") + 1] == "kvm"
    assert "tcg,thread=multi,tb-size=256" not in argv


def test_kernel_cmdline(tmp_path: Path) -> None:
    line = kernel_cmdline(spec(tmp_path), GUEST_INIT_PATH)
    assert "root=/dev/vda" in line and "console=ttyS0" in line
    assert f"init={GUEST_INIT_PATH}" in line
    assert "cs.name=node1 cs.addr=192.0.2.1/24" in line
    assert "panic=0" in line  # a crashed guest must stay down until fenced


def test_guest_init_reads_its_identity_from_the_cmdline() -> None:
    assert GUEST_INIT.startswith("#!/bin/sh\n")
    assert "cs.name=*" in GUEST_INIT and "cs.addr=*" in GUEST_INIT
    assert "modprobe -a virtio_net virtio_console drbd dlm gfs2" in GUEST_INIT
    assert "/usr/local/sbin/clusterstack-guest-agent" in GUEST_INIT


def test_image_files_and_argv(tmp_path: Path) -> None:
    files = guest_files()
    assert set(files) >= {GUEST_INIT_PATH, FENCE_AGENT_PATH}
    assert files[FENCE_AGENT_PATH].startswith(b"#!/usr/bin/python3")
    spec_ = vm_root_spec("trixie", "http://deb.debian.org/debian",
                         ["deb [signed-by=/etc/apt/keyrings/k.gpg] http://127.0.0.1:1/ trixie "
                          "main"], [tmp_path / "k.gpg"])
    assert {"ubuntu-cluster", "drbd-utils", "mariadb-server", "linux-image-amd64"} <= set(
        spec_.packages)
    (tmp_path / "k.gpg").write_bytes(b"key")
    argv = image_argv(spec_, tmp_path / "out.tar.zst")
    assert argv[0] == "mmdebstrap"
    hook = f"--essential-hook={initramfs_hook()}"
    assert hook in argv and "MODULES=list" in hook
    assert all(m in hook for m in INITRAMFS_MODULES)
    assert argv.index("trixie") > argv.index(hook)


def test_mkfs_argv(tmp_path: Path) -> None:
    argv = mkfs_argv(tmp_path / "root", tmp_path / "root.ext4", 2048)
    assert argv[:1] == ["mkfs.ext4"]
    assert argv[argv.index("-d") + 1] == str(tmp_path / "root")
    assert argv[-2:] == [str(tmp_path / "root.ext4"), "2048M"]


def test_drbd_resource_is_84_syntax() -> None:
    text = drbd_resource([("node1", "192.0.2.1"), ("node2", "192.0.2.2")])
    assert text.startswith("resource r0 {\n")
    assert "on node1 {" in text and "on node2 {" in text
    assert "address\t192.0.2.2:7788;" in text
    assert "meta-disk\tinternal;" in text
    # 9-only syntax would fail with drbdadm-84
    assert "connection-mesh" not in text and "node-id" not in text
    assert text.count("{") == text.count("}")


def test_crm_config_promotable_drbd_with_the_service() -> None:
    text = crm_config(config.AddressPlan())
    assert "primitive drbd-r0 ocf:linbit:drbd params drbd_resource=r0" in text
    assert "clone drbd-clone drbd-r0 meta promotable=true promoted-max=1" in text
    assert "primitive fs ocf:heartbeat:Filesystem params device=/dev/drbd0" in text
    assert "group service fs vip db\n" in text
    assert "colocation service-with-drbd inf: service drbd-clone:Promoted" in text
    assert "order drbd-before-service Mandatory: drbd-clone:promote service:start" in text
    assert "stonith-action=off" in text
    assert "primitive fence-nsnode stonith:fence_nsnode" in text


def test_guest_monitors_get_time_for_emulation() -> None:
    """Every monitor in the guests' CIB waits at least 60 s (TCG on a loaded host);
    the other operations keep their own timeouts."""
    text = crm_config(config.AddressPlan()) + gfs2_crm_config()
    monitors = re.findall(r"op monitor (?:\S+=\S+ )*?timeout=(\d+)s", text)
    assert len(monitors) == 8, text
    assert all(int(t) >= 60 for t in monitors), monitors
    assert "op start timeout=240s" in text
    assert "op monitor interval=5s timeout=60s" in text     # the vip, 20 s in the nspawn tier


def test_corosync_two_node() -> None:
    text = config.corosync_conf([("node1", "192.0.2.1"), ("node2", "192.0.2.2")])
    assert "two_node: 1" in text


def test_options_and_report(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        VmOptions(accel="xen")
    options = VmOptions(cache_dir=tmp_path)
    assert options.runs_dir == tmp_path / "runs"
    assert options.gfs2_recovery_limit == GFS2_RECOVERY_LIMIT  # the default when unset
    report = VmReport(ok=True, guests_up=2, accel="tcg", guest_boot_s={"node1": 30.5},
                      drbd_failover_s=12.3, failover={"from": "node1", "to": "node2"},
                      peak_memory_mib=1800.0,
                      fencing_events=[FenceEvent("node1", "off", "node2", 50.0, "ok")],
                      steps={"boot": "ok"})
    text = table(report)
    assert "12.3 s  (node1 -> node2)" in text
    assert "node1 30.5 s" in text and "1800 MiB" in text and "PASS" in text
    path = write_report(report, tmp_path)
    data = json.loads(path.read_text())
    assert data["drbd_failover_s"] == 12.3
    assert data["fencing_events"][0]["action"] == "off"


def test_guest_agent_handle(tmp_path: Path) -> None:
    import base64

    target = tmp_path / "etc" / "x.conf"
    reply = guest_agent.handle({"put": str(target), "data": base64.b64encode(b"hi").decode(),
                                "mode": "600"})
    assert reply["rc"] == 0 and target.read_bytes() == b"hi"
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    reply = guest_agent.handle({"argv": ["sh", "-c", "cat; exit 3"], "input": "in"})
    assert reply == {"rc": 3, "out": "in"}
    assert guest_agent.handle({"argv": ["sleep", "5"], "timeout": 0.2})["rc"] == -9
    assert guest_agent.handle({"argv": ["/nonexistent"]})["rc"] == 127


class _Running:
    pid = os.getpid()

    def running(self) -> bool:
        return True


def test_control_channel_matches_replies_by_id(tmp_path: Path) -> None:
    """The host side against a fake qemu socket that answers like the agent, after first
    sending a stale reply of a request that had timed out."""
    guest = Guest(spec(tmp_path), Runner(log_path=tmp_path / "commands.log"), [])
    guest.proc = _Running()  # type: ignore[assignment]
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(guest.spec.ctl_socket))
    server.listen(1)

    def agent() -> None:
        conn, _ = server.accept()
        with conn, conn.makefile("rwb") as f:
            f.write(b'{"id": 999, "rc": 0, "out": "stale"}\n')
            for line in f:
                request = json.loads(line)
                reply = guest_agent.handle(request)
                reply["id"] = request["id"]
                f.write((json.dumps(reply) + "\n").encode())
                f.flush()

    thread = threading.Thread(target=agent, daemon=True)
    thread.start()
    result = guest.run(["echo", "hello"])
    assert result.stdout == "hello\n"
    failed = guest.run(["false"], check=False)
    assert failed.returncode == 1
    assert "$ node1: echo hello" in (tmp_path / "commands.log").read_text()
    guest.close()
    server.close()


def test_root_spec_is_the_namespace_tiers_plus_the_kernel() -> None:
    base = RootSpec("trixie", "m", ("deb http://127.0.0.1:1/ trixie main",))
    vm = vm_root_spec("trixie", "m", ["deb http://127.0.0.1:1/ trixie main"], [])
    assert set(base.packages) < set(vm.packages)


@pytest.mark.e2e
@pytest.mark.skipif(os.environ.get("CLUSTERSTACK_TEST_VM") != "1",
                    reason="the VM tier runs only with CLUSTERSTACK_TEST_VM=1")
def test_vm_cluster_drbd_failover(tmp_path: Path) -> None:
    """Two guests from our published repository; DRBD + MariaDB fail over after a crash.

    Needs root, qemu, mmdebstrap and a published repository:
    CLUSTERSTACK_TEST_VM_REPO (default /tmp/cs-vmout/public/trixie) with its key.
    """
    from builder.base.serve import serve
    from builder.repo.publish import KEY_BASENAME
    from builder.verify.cluster.vm import run_vm_cluster

    if os.geteuid() != 0:
        pytest.skip("needs root")
    repo = Path(os.environ.get("CLUSTERSTACK_TEST_VM_REPO", "/tmp/cs-vmout/public/trixie"))
    if not (repo / "dists" / "trixie" / "InRelease").is_file():
        pytest.skip(f"no published repository at {repo}")
    cache = Path(os.environ.get("CLUSTERSTACK_TEST_CACHE", "/var/cache/clusterstack-tests"))
    with serve(repo) as url:
        report = run_vm_cluster(VmOptions(
            # the trixie profile's sources, as `clusterstack verify --cluster --vm` passes
            # them (so the image cached by either serves both)
            extra_sources=["deb http://deb.debian.org/debian trixie-updates main",
                           "deb http://deb.debian.org/debian-security trixie-security main",
                           f"deb [signed-by=/etc/apt/keyrings/{KEY_BASENAME}.gpg] {url}/ "
                           "trixie main"],
            extra_keys=[repo / f"{KEY_BASENAME}.gpg"],
            output_dir=tmp_path / "out", cache_dir=cache))
    assert report.ok, table(report)
    assert report.drbd_failover_s is not None and report.drbd_failover_s > 0
    assert any(e.action == "off" and e.result == "ok" for e in report.fencing_events)
    assert report.steps.get("gfs2") == "ok"  # DLM + GFS2 mounted on both guests at once
    assert report.gfs2_mount_s is not None
    # after the crash and the fencing, GFS2 on the survivor takes a write and reads it back
    # within the bound, no lockspace in "wait fencing" (fails with Debian's dlm 4.3.0-3)
    assert report.steps.get("gfs2 after crash") == "ok", table(report)
    assert report.gfs2_recovery_s is not None
    assert report.gfs2_after_failover_s is not None
    assert report.gfs2_after_failover_s <= GFS2_RECOVERY_LIMIT
    # the survivor's fencer registers its device again after a CIB with <nodes/> (fails
    # with Debian's pacemaker 3.0.0-2: ClusterLabs/pacemaker#3852)
    assert report.steps.get("fence device re-registration") == "ok", table(report)
    # LVS: keepalived directs on both guests; spread, pool removal/re-add, director move
    assert report.steps.get("lvs director fail-over") == "ok", table(report)
    assert all(n >= 50 for n in report.lvs_spread.values()) and len(report.lvs_spread) == 2
    assert report.lvs_removal_s is not None and report.lvs_readd_s is not None
    assert report.lvs_failover == {"from": "node1", "to": "node2"}
    assert (tmp_path / "out" / "logs" / "node1.console.log").exists()


def test_gfs2_config() -> None:
    from builder.verify.cluster.vm.scenario import gfs2_crm_config, mkfs_gfs2_argv

    text = gfs2_crm_config()
    assert "primitive dlm ocf:pacemaker:controld" in text
    assert "params device=/dev/vdc directory=/srv/gfs2 fstype=gfs2" in text
    assert "clone gfs2-clone gfs2-group meta interleave=true" in text
    argv = mkfs_gfs2_argv(2)
    # the lock table names corosync's cluster, one journal per guest
    assert argv[argv.index("-t") + 1] == f"{config.CLUSTER_NAME}:gfs0"
    assert argv[argv.index("-j") + 1] == "2"
