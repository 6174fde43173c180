"""Fast tests of the cluster harness's pure parts and of the fence agent against its controller."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import re
import socket
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from builder.base.command import Runner
from builder.verify.cluster import config
from builder.verify.cluster.cluster import parse_crm_mon
from builder.verify.cluster.fencing import FenceController, FenceTarget, agent_path
from builder.verify.cluster.node import Node
from builder.verify.cluster.options import ClusterOptions, ClusterReport, FenceEvent
from builder.verify.cluster.report import table, write
from builder.verify.cluster.rootfs import RootSpec, keys_by_root_path, mmdebstrap_argv

DATA = Path(__file__).parent / "data"
REQUIRED_ACTIONS = {"on", "off", "reboot", "status", "list", "monitor", "metadata",
                    "validate-all"}


def load_agent():
    loader = importlib.machinery.SourceFileLoader("fence_nsnode", str(agent_path()))
    spec = importlib.util.spec_from_loader("fence_nsnode", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


# --- fence agent ------------------------------------------------------------------------


def test_agent_metadata_is_valid_xml_with_required_actions():
    result = Runner().run(["python3", agent_path(), "-o", "metadata"])
    root = ET.fromstring(result.stdout)
    assert root.tag == "resource-agent"
    assert root.get("name") == "fence_nsnode"
    actions = {a.get("name") for a in root.findall("actions/action")}
    assert actions >= REQUIRED_ACTIONS
    params = {p.get("name"): p for p in root.findall("parameters/parameter")}
    assert {"action", "plug", "port", "socket"} <= set(params)
    # Pacemaker passes the target itself: a required plug would make shells reject the device.
    assert params["plug"].get("required") == "0"
    assert params["port"].get("deprecated") == "1"


def test_agent_metadata_from_stdin_like_pacemaker():
    result = Runner().run(["python3", agent_path()], input="action=metadata\n")
    assert ET.fromstring(result.stdout).get("name") == "fence_nsnode"


def test_agent_parses_stdin_options():
    agent = load_agent()
    opts = agent.parse_stdin("# from the fencer\naction=off\nport=node2\n\nnodename=node9\n"
                             "socket=/tmp/x.sock\n")
    assert opts == {"action": "off", "plug": "node2", "socket": "/tmp/x.sock"}
    assert agent.parse_stdin("option=status\nplug=node1\n") == {"action": "status",
                                                                 "plug": "node1"}
    with pytest.raises(agent.UsageError):
        agent.parse_stdin("garbage\n")


def test_agent_parses_command_line_options():
    agent = load_agent()
    assert agent.parse_argv(["-o", "off", "-n", "node2"]) == {"action": "off", "plug": "node2"}
    assert agent.parse_argv(["--action=status", "--plug=node1", "-s", "/s"]) == {
        "action": "status", "plug": "node1", "socket": "/s"}
    with pytest.raises(agent.UsageError):
        agent.parse_argv(["--bogus"])
    with pytest.raises(agent.UsageError):
        agent.parse_argv(["-o"])


def test_agent_rejects_unknown_action_and_missing_node(tmp_path):
    agent = load_agent()
    with pytest.raises(agent.UsageError, match="unknown action"):
        agent.parse_options(["-o", "explode"], None)
    with pytest.raises(agent.UsageError, match="needs a node"):
        agent.parse_options(["-o", "off"], None)
    result = Runner().run(["python3", agent_path(), "-o", "off"], check=False)
    assert result.returncode == 1


class Machine:
    """A stand-in for a node's power: the controller only needs its state and switch."""

    def __init__(self) -> None:
        self.on = True

    def off(self) -> None:
        self.on = False


@pytest.fixture
def controller(tmp_path):
    ctl = FenceController(tmp_path / "fence")
    machines = {name: Machine() for name in ("node1", "node2")}
    for name, machine in machines.items():
        ctl.add(FenceTarget(name, lambda m=machine: m.on, machine.off))
    ctl.start()
    yield ctl, machines
    ctl.stop()


def run_agent(ctl: FenceController, stdin: str):
    return Runner().run(["python3", agent_path()], check=False,
                        input=stdin + f"socket={ctl.socket_path}\n", timeout=30)


def test_agent_fences_through_the_controller(controller):
    ctl, machines = controller
    listed = run_agent(ctl, "action=list\n")
    assert listed.returncode == 0
    assert listed.stdout.split() == ["node1,", "node2,"]
    assert run_agent(ctl, "action=monitor\n").returncode == 0
    assert run_agent(ctl, "action=status\nport=node2\n").returncode == 0

    off = run_agent(ctl, "action=off\nport=node2\n")
    assert off.returncode == 0, off.stderr_tail
    assert machines["node2"].on is False and machines["node1"].on is True
    assert run_agent(ctl, "action=status\nport=node2\n").returncode == 2  # 2: off
    [event] = ctl.events
    assert (event.node, event.action, event.result) == ("node2", "off", "ok")
    assert event.requested_by == socket.gethostname()


def test_agent_reboot_is_off_then_on(tmp_path):
    ctl = FenceController(tmp_path / "fence")
    machine = Machine()
    powered_on = []

    def power_on() -> None:
        powered_on.append(machine.on)  # must come after the power-off
        machine.on = True

    ctl.add(FenceTarget("node1", lambda: machine.on, machine.off, power_on))
    ctl.start()
    try:
        result = run_agent(ctl, "action=reboot\nnodename=node1\n")
    finally:
        ctl.stop()
    assert result.returncode == 0, result.stderr_tail
    assert powered_on == [False] and machine.on is True
    assert [(e.action, e.result) for e in ctl.events] == [("off", "ok"), ("on", "ok")]
    assert not ctl.socket_path.exists()


def test_agent_fails_when_fencing_cannot_be_done(controller):
    ctl, machines = controller
    assert run_agent(ctl, "action=off\nport=node7\n").returncode == 1
    # "on" is refused by a controller that cannot boot nodes: reboot must not claim success.
    assert run_agent(ctl, "action=reboot\nport=node1\n").returncode == 1
    assert machines["node1"].on is False
    assert [e.result for e in ctl.events] == ["ok", "failed: this harness cannot power nodes on"]


def test_agent_fails_without_controller(tmp_path):
    result = Runner().run(["python3", agent_path()], check=False,
                          input=f"action=off\nport=node1\nsocket={tmp_path}/none.sock\n")
    assert result.returncode == 1
    assert "failed" in result.stderr_tail


# --- configuration ----------------------------------------------------------------------


def test_corosync_conf_one_key_per_line_with_knet_and_crypto():
    nodes = [("node1", "192.0.2.1"), ("node2", "192.0.2.2"), ("node3", "192.0.2.3")]
    text = config.corosync_conf(nodes, token_ms=1000)
    lines = [line.strip() for line in text.splitlines() if line.strip()
             and not line.startswith("#")]
    for line in lines:
        # corosync rejects "node { ring0_addr: ..." on one line
        assert re.fullmatch(r"\}|\w+ \{|\w+: [^{}:\s]+", line), line
    assert text.count("{") == text.count("}")
    assert "\ttransport: knet" in text
    assert "\tcrypto_cipher: aes256" in text and "\tcrypto_hash: sha256" in text
    assert "\ttoken: 1000" in text
    assert text.count("\tnode {") == 3
    assert "\t\tring0_addr: 192.0.2.3\n\t\tname: node3\n\t\tnodeid: 3\n" in text
    assert "two_node" not in text
    assert "two_node: 1" in config.corosync_conf(nodes[:2])


def test_addresses_are_test_net_only():
    plan = config.AddressPlan()
    for address in [plan.node(0), plan.node(15), plan.bridge, plan.client, plan.db_vip,
                    plan.vrrp_vip]:
        assert address.startswith("192.0.2.")
    assert len({plan.node(i) for i in range(16)} | {plan.bridge, plan.client, plan.db_vip,
                                                   plan.vrrp_vip}) == 20


def test_crm_config_enables_fencing_and_groups_vip_with_service():
    plan = config.AddressPlan()
    db = config.crm_config("reboot", "mariadb", plan)
    lines = db.splitlines()
    assert lines[0].startswith("property cib-bootstrap-options: stonith-enabled=true ")
    assert "stonith-action=reboot" in lines[0]
    assert "stonith-action=off" in config.crm_config("off", "dummy", plan)
    with pytest.raises(ValueError):
        config.crm_config("poweroff", "dummy", plan)
    assert (f"primitive fence-nsnode stonith:fence_nsnode params socket={config.FENCE_SOCKET} "
            "op monitor interval=60s timeout=20s") in lines
    assert f"primitive vip ocf:heartbeat:IPaddr2 params ip={plan.db_vip} " in db
    assert "ocf:heartbeat:mysql" in db and f"datadir={config.DB_DATADIR}" in db
    assert "log=/var/log/mysql/error.log" in db  # the agent fails without an existing log path
    # a value with spaces is quoted, or crmsh would split it into parameters
    assert 'additional_parameters="--bind-address=0.0.0.0 --init-file=' in db
    assert lines[-1] == "group service vip db"
    assert config.crm_config("off", "dummy", plan).splitlines()[-1] == "group service vip app"
    with pytest.raises(ValueError):
        config.crm_config("off", "oracle", plan)


def test_pcs_commands_build_the_same_configuration_on_a_cib_file():
    plan = config.AddressPlan()
    commands = config.pcs_commands("/tmp/cib.xml", "off", "mariadb", plan)
    assert all(c[:3] == ["pcs", "-f", "/tmp/cib.xml"] for c in commands)
    assert commands[0][3:6] == ["property", "set", "stonith-enabled=true"]
    assert "stonith-action=off" in commands[0]
    [stonith] = [c for c in commands if c[3:5] == ["stonith", "create"]]
    assert stonith[5:8] == ["fence-nsnode", "fence_nsnode",
                            f"socket={config.FENCE_SOCKET}"]
    creates = [c for c in commands if c[3:5] == ["resource", "create"]]
    assert [c[5] for c in creates] == ["vip", "db"]
    assert all(c[-2:] == ["--group", "service"] for c in creates)
    db = creates[1]
    # one argv word per parameter: no shell quoting involved
    assert ("additional_parameters=--bind-address=0.0.0.0 "
            f"--init-file={config.SHARED_MOUNT}/init.sql") in db
    assert db[db.index("op"):db.index("op") + 4] == ["op", "start", "timeout=120s", "interval=0"]


def test_seed_cib_is_xml_with_short_dc_deadtime():
    cib = ET.fromstring(config.seed_cib())
    [nvpair] = cib.findall("configuration/crm_config/cluster_property_set/nvpair")
    assert (nvpair.get("name"), nvpair.get("value")) == ("dc-deadtime", "2s")
    assert cib.find("status") is not None


def test_keepalived_conf():
    text = config.keepalived_conf("node1", 150, "192.0.2.101")
    assert "priority 150" in text and "192.0.2.101/24 dev eth0" in text
    assert text.count("{") == text.count("}")


def test_parse_crm_mon_reads_members_dc_and_resources():
    seen = parse_crm_mon((DATA / "crm_mon-service.xml").read_text())
    assert seen.online == {"node1", "node2", "node3"}
    assert seen.standby == set()
    assert seen.dc == "node3"
    assert seen.resources == {"fence-nsnode": "node1", "vip": "node2", "db": "node2"}


def test_parse_crm_mon_offline_and_standby_nodes():
    text = (DATA / "crm_mon-service.xml").read_text()
    text = text.replace('name="node1" id="1" online="true"', 'name="node1" id="1" online="false"')
    text = text.replace('name="node2" id="2" online="true" standby="false"',
                        'name="node2" id="2" online="true" standby="true"')
    seen = parse_crm_mon(text)
    assert seen.online == {"node2", "node3"}
    assert seen.standby == {"node2"}


# --- root ---------------------------------------------------------------------------------


def test_stock_root_installs_debian_packages(tmp_path):
    spec = RootSpec("trixie", "http://deb.debian.org/debian")
    argv = mmdebstrap_argv(spec, tmp_path / "root.tar")
    include = next(a for a in argv if a.startswith("--include=")).split("=", 1)[1].split(",")
    assert {"pacemaker", "corosync", "crmsh", "mariadb-server", "keepalived"} <= set(include)
    assert "ubuntu-cluster" not in include
    assert argv[-3:] == ["trixie", str(tmp_path / "root.tar"),
                         "deb http://deb.debian.org/debian trixie main"]


def test_our_repository_root_installs_ubuntu_cluster_with_its_key(tmp_path):
    key = tmp_path / "clusterstack.gpg"
    key.write_bytes(b"key one")
    line = ("deb [signed-by=/etc/apt/keyrings/clusterstack.gpg] http://127.0.0.1:8080/ "
            "trixie main")
    spec = RootSpec("trixie", "http://deb.debian.org/debian", (line,), (key,))
    argv = mmdebstrap_argv(spec, tmp_path / "root.tar")
    include = next(a for a in argv if a.startswith("--include=")).split("=", 1)[1].split(",")
    assert "ubuntu-cluster" in include and "mariadb-server" in include
    assert "pacemaker" not in include  # comes from ubuntu-cluster's Depends
    # apt reads the key from the host while building; the root keeps its own path.
    assert argv[-1] == line.replace("/etc/apt/keyrings/clusterstack.gpg", str(key))
    assert f"--setup-hook=upload {key} /etc/apt/keyrings/clusterstack.gpg" in argv
    assert any(a.startswith("--customize-hook=sed") and "/etc/apt/keyrings/clusterstack.gpg"
               in a for a in argv)
    before = spec.key(["debian", "ours"])
    key.write_bytes(b"key two")
    assert spec.key(["debian", "ours"]) != before  # a new key means a new root


def test_missing_key_for_signed_by_is_an_error(tmp_path):
    line = "deb [signed-by=/etc/apt/keyrings/a.gpg] http://127.0.0.1:1/ trixie main"
    other = "deb [signed-by=/etc/apt/keyrings/b.gpg] http://127.0.0.1:2/ trixie main"
    key = tmp_path / "a.gpg"
    key.write_bytes(b"k")
    spec = RootSpec("trixie", "http://deb.debian.org/debian", (line, other), (key,))
    with pytest.raises(ValueError, match=r"b\.gpg"):
        keys_by_root_path(spec)


# --- options and report -------------------------------------------------------------------


def test_options_validate():
    with pytest.raises(ValueError):
        ClusterOptions(nodes=1)
    with pytest.raises(ValueError):
        ClusterOptions(scenario=" ")  # names are checked by faults.select (test_faults.py)
    with pytest.raises(ValueError):
        ClusterOptions(fence_action="shutdown")
    assert ClusterOptions(output_dir="x").output_dir == Path("x")


def test_report_table_and_json(tmp_path):
    report = ClusterReport(ok=True, nodes=3, nodes_up=3, stack_shell="crmsh", formation_s=6.3,
                           kill_failover_s=5.04, rejoin_s=7.6, standby_failover_s=6.4,
                           vrrp_failover_s=1.2,
                           peak_memory_mib=598.2, workload="mariadb",
                           failovers={"kill": {"from": "node2", "to": "node3"}},
                           fencing_events=[FenceEvent("node2", "off", "node1", 17.6, "ok")])
    text = table(report)
    assert "formation time" in text and "6.3 s" in text
    assert "5.0 s  (node2 -> node3)" in text
    assert "fenced node back        7.6 s" in text
    assert "off node2 by node1" in text and "598 MiB" in text
    assert text.rstrip().endswith("PASS")
    json_path, _ = write(report, tmp_path)
    data = json.loads(json_path.read_text())
    assert data["kill_failover_s"] == 5.04 and data["fencing_events"][0]["node"] == "node2"


def test_a_lone_key_of_another_name_lands_at_the_signed_by_path(tmp_path):
    key = tmp_path / "archive-signing.asc"
    key.write_bytes(b"k")
    line = "deb [signed-by=/etc/apt/keyrings/clusterstack.gpg] http://127.0.0.1:1/ trixie main"
    spec = RootSpec("trixie", "http://deb.debian.org/debian", (line,), (key,))
    assert keys_by_root_path(spec) == {"/etc/apt/keyrings/clusterstack.gpg": key}
    argv = mmdebstrap_argv(spec, tmp_path / "root.tar")
    assert f"--setup-hook=upload {key} /etc/apt/keyrings/clusterstack.gpg" in argv


def test_root_key_follows_the_repository_not_its_loopback_port(tmp_path):
    key = tmp_path / "k.gpg"
    key.write_bytes(b"k")

    def spec(port: int) -> RootSpec:
        line = f"deb [signed-by=/etc/apt/keyrings/k.gpg] http://127.0.0.1:{port}/ trixie main"
        return RootSpec("trixie", "http://deb.debian.org/debian", (line,), (key,))

    assert spec(8080).key(["d", "aaa"]) == spec(41234).key(["d", "aaa"])
    assert spec(8080).key(["d", "aaa"]) != spec(8080).key(["d", "bbb"])  # published anew
    # Our repository is verified with its own key, the mirror with Debian's.
    assert [s.keyring for s in spec(1).rootfs().sources] == [
        Path("/usr/share/keyrings/debian-archive-keyring.gpg"), key]


def test_node_files_keep_the_lower_layers_directory_owners(tmp_path):
    lower = tmp_path / "lower"
    (lower / "var/lib/pacemaker/cib").mkdir(parents=True)
    os.chown(lower / "var/lib/pacemaker/cib", 123, 456)
    os.chmod(lower / "var/lib/pacemaker/cib", 0o750)
    (lower / "usr/lib").mkdir(parents=True)
    (lower / "lib").symlink_to("usr/lib")
    node = Node("node1", "192.0.2.1", lower, tmp_path / "node1", tmp_path / "shared",
                tmp_path / "fence", Runner())
    node.write("/var/lib/pacemaker/cib/cib.xml", "<cib/>", 0o600, (123, 456))
    made = (node.upper / "var/lib/pacemaker/cib").stat()
    assert (made.st_uid, made.st_gid, made.st_mode & 0o7777) == (123, 456, 0o750)
    written = (node.upper / "var/lib/pacemaker/cib/cib.xml").stat()
    assert (written.st_uid, written.st_mode & 0o7777) == (123, 0o600)
    with pytest.raises(ValueError, match="symbolic link"):
        node.write("/lib/x", "x")
