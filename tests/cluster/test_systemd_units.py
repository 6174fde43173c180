"""Fast tests of the systemd tier's pure parts: bootstrap command lines, archive gaps,
failed-unit parsing, the root's package set, the report and the overlay whiteout."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from builder.base.command import CommandError, Runner
from builder.verify.cluster import bootstrap
from builder.verify.cluster.memory import pids_in_cgroup
from builder.verify.cluster.options import ClusterOptions, ClusterReport, UnitFailure
from builder.verify.cluster.report import table, write
from builder.verify.cluster.rootfs import RootSpec
from builder.verify.cluster.systemd import SystemdNode, timed

MEMBERS = [("node1", "192.0.2.1"), ("node2", "192.0.2.2")]

# Debian's /etc/corosync/corosync.conf as corosync 3.1.9-2 installs it (abridged).
DEBIAN_EXAMPLE = """totem {
\tversion: 2
\tcluster_name: debian
\tcrypto_cipher: none
\tcrypto_hash: none
}
nodelist {
\tnode {
\t\tname: node1
\t\tnodeid: 1
\t\tring0_addr: 127.0.0.1
\t}
}
"""


def test_pcs_command_lines_are_the_admins():
    assert bootstrap.pcs_auth_argv(MEMBERS, "pw") == [
        "pcs", "host", "auth", "node1", "addr=192.0.2.1", "node2", "addr=192.0.2.2",
        "-u", "hacluster", "-p", "pw"]
    argv = bootstrap.pcs_setup_argv("demo", MEMBERS, 1000, wait_s=90)
    assert argv[:4] == ["pcs", "cluster", "setup", "demo"]
    assert argv[4:8] == ["node1", "addr=192.0.2.1", "node2", "addr=192.0.2.2"]
    assert argv[8:10] == ["totem", "token=1000"]
    # Enabled at boot: a node fenced by reboot comes back into the cluster by itself.
    assert {"--enable", "--start", "--wait=90"} <= set(argv[10:])


def test_crmsh_command_lines_are_the_admins():
    assert bootstrap.crm_init_argv("demo") == ["crm", "cluster", "init", "-y", "-n", "demo",
                                               "-i", "eth0"]
    assert bootstrap.crm_join_argv("node1")[:6] == ["crm", "cluster", "join", "-y", "-c",
                                                    "node1"]


def test_parse_failed_units():
    text = ("corosync.service loaded failed failed Corosync Cluster Engine\n"
            "\u25cf sbd.service      loaded failed failed Shared-storage based fencing daemon\n"
            "\n"
            "var-lib-x.mount loaded failed failed /var/lib/x\n")
    assert bootstrap.parse_failed_units(text) == ["corosync.service", "sbd.service",
                                                  "var-lib-x.mount"]
    assert bootstrap.parse_failed_units("0 loaded units listed.\n") == []


def _root(tmp_path: Path, *, example: bool = True, sbd: bool = True,
          pcsd_default: str = "PCSD_DEBUG=false\n#PCSD_PORT=2224\n") -> Path:
    root = tmp_path / "root"
    (root / "etc/corosync").mkdir(parents=True)
    if example:
        (root / bootstrap.COROSYNC_CONF).write_text(DEBIAN_EXAMPLE)
    if sbd:
        for unit in bootstrap.SBD_REQUIRED_BY:
            wants = root / f"etc/systemd/system/{unit}.requires"
            wants.mkdir(parents=True)
            (wants / "sbd.service").symlink_to("/usr/lib/systemd/system/sbd.service")
        (root / "etc/default").mkdir(parents=True, exist_ok=True)
        (root / "etc/default/sbd").write_text("#SBD_DEVICE=/dev/disk/by-id/x\nSBD_OPTS=\n")
    if pcsd_default:
        (root / "etc/default").mkdir(parents=True, exist_ok=True)
        (root / "etc/default/pcsd").write_text(pcsd_default)
    return root


def test_debians_stack_has_every_gap(tmp_path):
    gaps = {g.name: g for g in bootstrap.archive_gaps(_root(tmp_path))}
    assert set(gaps) == {"corosync-example-config", "sbd-without-watchdog", "pcsd-workers"}
    corosync = gaps["corosync-example-config"]
    assert corosync.remove == (bootstrap.COROSYNC_CONF,)
    written = dict(corosync.write)
    assert all("ConditionPathExists=/etc/corosync/corosync.conf" in text
               for text in written.values())
    assert {Path(p).parent.name for p in written} == {"corosync.service.d",
                                                        "pacemaker.service.d"}
    assert "PCSD_WORKER_COUNT=2" in dict(gaps["pcsd-workers"].write).popitem()[1]
    # Named in the report with what the archive should do and where it is fixed.
    assert "packaging/corosync" in corosync.describe()


def test_a_fixed_archive_has_no_gaps(tmp_path):
    root = _root(tmp_path, example=False)
    for dropin in (bootstrap.PCSD_DROPIN, bootstrap.SBD_DROPIN):
        (root / dropin).parent.mkdir(parents=True, exist_ok=True)
        (root / dropin).write_text("[Unit]\n")
    assert bootstrap.archive_gaps(root) == []


def test_an_edited_corosync_conf_and_a_configured_sbd_are_left_alone(tmp_path):
    root = _root(tmp_path, pcsd_default="PCSD_WORKER_COUNT=4\n")
    (root / bootstrap.COROSYNC_CONF).write_text(
        DEBIAN_EXAMPLE.replace("cluster_name: debian", "cluster_name: prod"))
    (root / "etc/default/sbd").write_text("SBD_DEVICE=/dev/disk/by-id/scsi-1\n")
    assert bootstrap.archive_gaps(root) == []


# Debian's crmsh 5.0.0~rc1-1 (abridged): init writes csync2's files at Debian's paths
# (Debian's 0013-Fix-cluster-bootstrap.patch), join copies SUSE's.
DEBIAN_CRMSH_BOOTSTRAP = (
    'CSYNC2_KEY = "/etc/csync2.key_hagroup"\n'
    'CSYNC2_CFG = "/etc/csync2.cfg"\n'
    'utils.copy_remote_textfile(remote_user, seed_host, "/etc/csync2/csync2.cfg", '
    '"/etc/csync2")\n')
DEBIAN_CRMSH_SSH_KEY = "class KeyFileManager:\n    def ensure_key_pair_exists_for_user(\n"
PATCHES = Path(__file__).resolve().parents[2] / "patches/crmsh"


def _crmsh_root(tmp_path: Path, bootstrap_py: str, ssh_key_py: str) -> Path:
    """A root with crmsh, and hacluster's home owned by root, as pacemaker-common leaves it."""
    root = _root(tmp_path, example=False, sbd=False, pcsd_default="")
    (root / "usr/sbin").mkdir(parents=True)
    (root / "usr/sbin/crm").write_text("#!/usr/bin/python3\n")
    (root / "etc/passwd").write_text(f"root:x:0:0::/root:/bin/sh\n"
                                     f"hacluster:x:{os.getuid() + 4242}:102::"
                                     "/var/lib/pacemaker:/usr/sbin/nologin\n")
    (root / "var/lib/pacemaker").mkdir(parents=True)
    (root / bootstrap.CRMSH_BOOTSTRAP).parent.mkdir(parents=True)
    (root / bootstrap.CRMSH_BOOTSTRAP).write_text(bootstrap_py)
    (root / bootstrap.CRMSH_SSH_KEY).write_text(ssh_key_py)
    return root


def _patched_side(patch: str, path: str) -> str:
    """The lines a patch of patches/crmsh leaves in `path`: its context and what it adds
    (what the rebuilt package installs there, as far as the patch shows it)."""
    lines, current = [], None
    for line in (PATCHES / patch).read_text().splitlines():
        if line.startswith("+++ "):
            current = line[4:].split("/", 1)[1]
        elif current == path and line[:1] in (" ", "+") and not line.startswith("+++"):
            lines.append(line[1:])
    return "\n".join(lines) + "\n"


def test_crmsh_gaps_on_debian(tmp_path):
    """crmsh makes hacluster's ssh key in a home Debian leaves to root, and its join
    copies csync2 files from SUSE's paths while it writes Debian's."""
    root = _crmsh_root(tmp_path, DEBIAN_CRMSH_BOOTSTRAP, DEBIAN_CRMSH_SSH_KEY)
    gaps = {g.name: g for g in bootstrap.archive_gaps(root)}
    assert set(gaps) == {"crmsh-hacluster-ssh", "crmsh-csync2-paths"}
    assert gaps["crmsh-hacluster-ssh"].dirs == (("var/lib/pacemaker/.ssh", "hacluster", 0o700),)
    assert dict(gaps["crmsh-csync2-paths"].links)["etc/csync2/csync2.cfg"] == "/etc/csync2.cfg"
    assert all("packaging/crmsh + patches/crmsh" in g.describe() for g in gaps.values())


def test_our_crmsh_has_no_crmsh_gaps(tmp_path):
    """With patches/crmsh the root's crmsh creates ~hacluster/.ssh itself and its join
    copies Debian's csync2 paths: neither gap, although the home is still root's."""
    root = _crmsh_root(
        tmp_path, _patched_side("0003-csync2-debian-paths-on-join.patch", "crmsh/bootstrap.py"),
        _patched_side("0002-ssh-dir-for-hacluster.patch", "crmsh/ssh_key.py"))
    assert (root / "var/lib/pacemaker").stat().st_uid != os.getuid() + 4242
    assert 'CSYNC2_CFG = "/etc/csync2.cfg"' in (root / bootstrap.CRMSH_BOOTSTRAP).read_text()
    assert bootstrap.archive_gaps(root) == []


def test_crmsh_gaps_each_on_its_own(tmp_path):
    """Each gap is judged from its own file: a crmsh with only one of the fixes keeps the
    other gap."""
    fixed_ssh = _patched_side("0002-ssh-dir-for-hacluster.patch", "crmsh/ssh_key.py")
    root = _crmsh_root(tmp_path, DEBIAN_CRMSH_BOOTSTRAP, fixed_ssh)
    assert [g.name for g in bootstrap.archive_gaps(root)] == ["crmsh-csync2-paths"]
    assert bootstrap.crmsh_makes_ssh_dir(fixed_ssh)
    assert not bootstrap.crmsh_makes_ssh_dir(DEBIAN_CRMSH_SSH_KEY)
    assert bootstrap.crmsh_csync2_paths_differ(DEBIAN_CRMSH_BOOTSTRAP)
    # No crmsh in the root (pcs alone): no csync2 gap either.
    assert not bootstrap.crmsh_csync2_paths_differ("")


def test_systemd_root_has_init_both_tools_and_ssh(tmp_path):
    ours = ("deb [signed-by=/etc/apt/keyrings/k.gpg] http://127.0.0.1:1/ trixie main",)
    key = tmp_path / "k.gpg"
    key.write_bytes(b"k")
    script = RootSpec("trixie", "http://deb.debian.org/debian", ours, (key,))
    systemd = RootSpec("trixie", "http://deb.debian.org/debian", ours, (key,), init="systemd")
    assert {"systemd-sysv", "pcs", "crmsh", "openssh-server", "csync2", "sudo",
            "ubuntu-cluster"} <= set(systemd.packages)
    assert "systemd-sysv" not in script.packages
    assert systemd.key(["d", "r"]) != script.key(["d", "r"])
    with pytest.raises(ValueError, match="init"):
        RootSpec("trixie", "http://deb.debian.org/debian", init="upstart")
    with pytest.raises(ValueError, match="init"):
        ClusterOptions(init="upstart")
    assert ClusterOptions(init="systemd").init == "systemd"


def test_report_names_boot_times_memory_workarounds_and_failed_units(tmp_path):
    report = ClusterReport(
        ok=False, nodes=2, nodes_up=2, stack_shell="pcs", init="systemd",
        boot_s={"node1": 6.41, "node2": 6.3}, pss_node_mib={"node1": 353.4, "node2": 368.0},
        workarounds=["sbd-without-watchdog: ..."],
        unit_failures=[UnitFailure("node2", "corosync.service", [
            "\u00d7 corosync.service - Corosync Cluster Engine",
            "corosync[50]: parse error in config: No valid name found for local host"])],
        error="boot: nodes not running after boot")
    text = table(report)
    assert "systemd (systemd-nspawn), bootstrap by pcs" in text
    assert "node1 6.4 s, node2 6.3 s" in text
    assert "node1 353 MiB, node2 368 MiB" in text
    assert "workaround" in text and "sbd-without-watchdog" in text
    assert "failed unit node2" in text and "corosync.service" in text
    assert "parse error in config" in text
    data = json.loads(write(report, tmp_path)[0].read_text())
    assert data["unit_failures"][0]["unit"] == "corosync.service"
    assert data["boot_s"]["node2"] == 6.3


def test_report_names_each_bootstrap_command_with_its_time(tmp_path):
    report = ClusterReport(ok=True, nodes=2, nodes_up=2, stack_shell="crmsh", init="systemd",
                           bootstrap_s={"crm cluster init (node1)": 31.24,
                                        "crm cluster join (node2)": 40.0})
    lines = table(report).splitlines()
    init = next(i for i, line in enumerate(lines) if "bootstrap: crm cluster init" in line)
    assert lines[init].split()[-2:] == ["31.2", "s"]
    assert "bootstrap: crm cluster join (node2)" in lines[init + 1]
    data = json.loads(write(report, tmp_path)[0].read_text())
    assert list(data["bootstrap_s"]) == ["crm cluster init (node1)", "crm cluster join (node2)"]


def test_timed_keeps_the_time_of_a_failed_command():
    cluster = SimpleNamespace(bootstrap_s={})

    def fails() -> None:
        raise CommandError(["crm", "cluster", "join"], 1, "Syntax error: word unexpected")

    timed(cluster, "crm cluster init (node1)", lambda: None)
    with pytest.raises(CommandError):
        timed(cluster, "crm cluster join (node2)", fails)
    assert list(cluster.bootstrap_s) == ["crm cluster init (node1)", "crm cluster join (node2)"]
    assert all(s >= 0 for s in cluster.bootstrap_s.values())


def test_pids_in_cgroup_walks_the_subtree(tmp_path):
    (tmp_path / "payload/system.slice").mkdir(parents=True)
    (tmp_path / "cgroup.procs").write_text("")
    (tmp_path / "payload/cgroup.procs").write_text("10\n11\n")
    (tmp_path / "payload/system.slice/cgroup.procs").write_text("12\n")
    assert sorted(pids_in_cgroup(tmp_path)) == [10, 11, 12]
    assert pids_in_cgroup(tmp_path / "gone") == []


@pytest.mark.skipif(os.geteuid() != 0, reason="an overlay whiteout is a device node: root")
def test_remove_is_an_overlay_whiteout(tmp_path):
    lower = tmp_path / "lower"
    (lower / "etc/corosync").mkdir(parents=True)
    (lower / "etc/corosync/corosync.conf").write_text(DEBIAN_EXAMPLE)
    node = SystemdNode("node1", "192.0.2.1", lower, tmp_path / "node1", tmp_path / "shared",
                       tmp_path / "fence", Runner(), "clusterstack/test/node1")
    node.prepare()
    node.remove("/etc/corosync/corosync.conf")
    st = (node.upper / "etc/corosync/corosync.conf").lstat()
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert (node.upper / "etc/hostname").read_text() == "node1\n"
