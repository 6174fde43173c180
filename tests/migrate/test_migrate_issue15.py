"""Issue 15: what trying the converter on real cluster.conf files found. Each input is
shaped after a real file (the corpus, rgmanager's own tests, clufter's tests)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from .migrate_helpers import crm_simulate, crm_verify, params, run_cli, run_pcs_script
from .test_migrate_corpus import CORPUS

NODES2 = """
  <clusternodes>
    <clusternode name="node1" nodeid="1"/>
    <clusternode name="node2" nodeid="2"/>
  </clusternodes>"""


class Out:
    def __init__(self, conf: Path, out: Path) -> None:
        self.conf = conf
        self.out = out
        self.root = ET.parse(out / "cib.xml").getroot()
        self.entries = json.loads((out / "report.json").read_text())["entries"]

    def entries_with(self, severity: str, words: str) -> list[dict]:
        return [e for e in self.entries if e["severity"] == severity and words in e["message"]]

    def prims(self, **attrs: str) -> list[ET.Element]:
        return [p for p in self.root.iter("primitive")
                if all(p.get(k) == v for k, v in attrs.items())]

    def members(self, group: str) -> list[str]:
        g = self.root.find(f".//group[@id='{group}']")
        assert g is not None, group
        return [p.get("id", "") for p in g.findall("primitive")]

    def line(self, needle: str) -> int:
        for i, text in enumerate(self.conf.read_text().splitlines(), start=1):
            if needle in text:
                return i
        raise AssertionError(needle)


def convert_text(tmp_path: Path, text: str, name: str = "cluster.conf") -> Out:
    conf = tmp_path / name
    conf.write_text(text)
    out = tmp_path / "out"
    result = run_cli(conf, "-o", out)
    assert result.returncode == 0, result.stderr_tail
    verify = crm_verify(out / "cib.xml")
    assert verify.returncode == 0, verify.stderr_tail
    return Out(conf, out)


# ---- 1: fence_xvm / fence_virt domain --------------------------------------------------

XVM = """<?xml version="1.0"?>
<cluster name="virt" config_version="3">
  <clusternodes>
    <clusternode name="node1" nodeid="1">
      <fence><method name="1"><device name="xvm" domain="vm1"/></method></fence>
    </clusternode>
    <clusternode name="node2" nodeid="2">
      <fence><method name="1"><device name="xvm" domain="vm2"/></method></fence>
    </clusternode>
    <clusternode name="node3" nodeid="3">
      <fence><method name="1"><device name="virt3"/></method></fence>
    </clusternode>
  </clusternodes>
  <fencedevices>
    <fencedevice name="xvm" agent="fence_xvm" key_file="/etc/cluster/fence_xvm.key"/>
    <fencedevice name="virt3" agent="fence_virt" domain="vm3" serial_device="/dev/ttyS1"/>
  </fencedevices>
</cluster>
"""


def test_fence_xvm_domain_becomes_host_map(tmp_path: Path) -> None:
    c = convert_text(tmp_path, XVM)
    p = params(c.root, "fence-xvm")
    # Pacemaker passes the node name as port unless mapped: node -> guest domain
    assert p["pcmk_host_map"] == "node1:vm1;node2:vm2"
    assert "domain" not in p and "pcmk_host_list" not in p
    # a device-level domain is the guest that device fences (clufter: domain -> port)
    p3 = params(c.root, "fence-virt3")
    assert p3["port"] == "vm3" and "domain" not in p3
    assert p3["pcmk_host_list"] == "node3"


# ---- 2: fence_pcmk ---------------------------------------------------------------------

def test_fence_pcmk_is_not_a_device_and_is_critical(tmp_path: Path) -> None:
    conf = CORPUS / "pcs-test-resources.conf"
    result = run_cli(conf, "-o", tmp_path / "out")
    assert result.returncode == 0
    c = Out(conf, tmp_path / "out")
    assert not c.prims(type="fence_pcmk")
    crit = c.entries_with("critical", "fence_pcmk")
    assert crit and crit[0]["line"] == c.line('agent="fence_pcmk"')
    assert "old cluster's CIB" in crit[0]["message"]
    props = {nv.get("name"): nv.get("value") for nv in c.root.iter("nvpair")}
    assert props["stonith-enabled"] == "false"
    assert "fence_pcmk" in result.stderr_tail  # said on the terminal too
    # the redirect is not reported as a broken method on every node
    assert not c.entries_with("error", "no usable device")


# ---- 3: rgmanager's per-parent child order (test017) -----------------------------------

def _rgmanager_test(name: str, nodes: str = NODES2) -> str:
    """An rgmanager test file made whole: cluster name and nodes added, nothing else."""
    text = (CORPUS / name).read_text()
    return text.replace("<cluster>", f'<cluster name="rgtest" config_version="1">{nodes}', 1)


def test_children_keep_written_order_except_under_typed_parents(tmp_path: Path) -> None:
    c = convert_text(tmp_path, _rgmanager_test("rgmanager-test017.conf"))
    # test017.start.expected: under <service>, fs before script (typed); under <script>
    # (no child rules) the written order ip, fs, script, ip; nfsclients as written
    assert c.members("test1") == [
        "fs-mount1", "test1-nfsclient-Admin_group", "test1-nfsclient-User_group",
        "test1-nfsclient-red", "test1-script-initscript"]
    assert c.members("test2") == [
        "test2-script-initscript", "ip-192.168.1.3", "fs-mount2",
        "test2-nfsclient-Admin_group", "test2-nfsclient-User_group", "test2-nfsclient-red",
        "script-script2", "ip-192.168.1.4", "script-script3"]


# ---- 4: a single-instance resource used by two services --------------------------------

SHARED_IP = f"""<?xml version="1.0"?>
<cluster name="shared" config_version="7">{NODES2}
  <rm>
    <failoverdomains>
      <failoverdomain name="pref1" ordered="1"><failoverdomainnode name="node1" priority="1"/>
        <failoverdomainnode name="node2" priority="2"/></failoverdomain>
      <failoverdomain name="pref2" ordered="1"><failoverdomainnode name="node2" priority="1"/>
        <failoverdomainnode name="node1" priority="2"/></failoverdomain>
    </failoverdomains>
    <resources>
      <ip address="10.0.0.1" monitor_link="1"/>
      <script name="web" file="/etc/init.d/httpd"/>
    </resources>
    <service name="a" domain="pref1"><ip ref="10.0.0.1"/><script ref="web"/></service>
    <service name="b" domain="pref2"><ip ref="10.0.0.1"/>
      <script name="mail" file="/etc/init.d/postfix"/></service>
  </rm>
</cluster>
"""


def test_shared_ip_runs_once(tmp_path: Path) -> None:
    c = convert_text(tmp_path, SHARED_IP)
    ips = c.prims(type="IPaddr2")
    assert len(ips) == 1
    assert c.members("a")[0] == ips[0].get("id")
    assert all(m != ips[0].get("id") for m in c.members("b"))
    warn = c.entries_with("warning", "already used by service a")
    assert warn and warn[0]["line"] == c.line('<service name="b"')
    sim = crm_simulate(c.out / "cib.xml", ["node1", "node2"], tmp_path / "sim.xml")
    assert len(sim.running[ips[0].get("id", "")]) == 1
    # a script may run in two services, as rgmanager allowed
    assert len(c.prims(type="httpd")) + len(c.prims(type="apache2")) == 1


# ---- 5: <service ref> takes the shared definition ----------------------------------------

SERVICE_REF = """<?xml version="1.0"?>
<cluster name="refsvc" config_version="2">
  <clusternodes>
    <clusternode name="node1" nodeid="1"/><clusternode name="node2" nodeid="2"/>
    <clusternode name="node3" nodeid="3"/>
  </clusternodes>
  <rm>
    <failoverdomains>
      <failoverdomain name="only3" restricted="1"><failoverdomainnode name="node3"/>
      </failoverdomain>
    </failoverdomains>
    <resources>
      <service name="s1" domain="only3" recovery="relocate"/>
    </resources>
    <service ref="s1"><ip address="10.1.0.9"/></service>
  </rm>
</cluster>
"""


def test_service_ref_keeps_domain_and_recovery(tmp_path: Path) -> None:
    c = convert_text(tmp_path, SERVICE_REF)
    locs = {loc.get("node"): loc.get("score") for loc in c.root.iter("rsc_location")
            if loc.get("rsc") == "s1"}
    assert locs == {"node3": "100", "node1": "-INFINITY", "node2": "-INFINITY"}
    meta = {nv.get("name"): nv.get("value")
            for nv in c.root.findall(".//group[@id='s1']/meta_attributes/nvpair")}
    assert meta["migration-threshold"] == "1"
    sim = crm_simulate(c.out / "cib.xml", ["node1", "node2", "node3"], tmp_path / "s.xml")
    assert sim.nodes_of("s1") == {"node3"}


# ---- 6: <rm><dependencies> (rgmanager's deptest1) ----------------------------------------

def test_dependencies_become_orders_and_colocations(tmp_path: Path) -> None:
    nodes = "".join(f'<clusternode name="node{i}" nodeid="{i}"/>' for i in range(1, 5))
    text = _rgmanager_test("rgmanager-deptest1.conf", f"<clusternodes>{nodes}</clusternodes>")
    # deptest's services are empty; give each one resource so that there is a group
    text = (text.replace('<service name="a" domain="nodes-14" />',
                     '<service name="a" domain="nodes-14"><ip address="10.9.0.1"/></service>')
            .replace('<service name="b" domain="nodes-34" />',
                     '<service name="b" domain="nodes-34"><ip address="10.9.0.2"/></service>')
            .replace('<service name="c" />', '<service name="c"><ip address="10.9.0.3"/>'
                     '</service>'))
    c = convert_text(tmp_path, text)
    orders = {(o.get("first"), o.get("then")): o.get("kind") for o in c.root.iter("rsc_order")}
    assert orders == {("b", "a"): "Mandatory", ("c", "b"): "Mandatory"}
    cols = {(x.get("rsc"), x.get("with-rsc")): x.get("score")
            for x in c.root.iter("rsc_colocation")}
    assert cols == {("a", "b"): "-INFINITY"}
    assert not [e for e in c.entries if "without a name" in e["message"]]
    assert c.entries_with("warning", "<dependency> a -> b")
    sim = crm_simulate(c.out / "cib.xml", [f"node{i}" for i in range(1, 5)], tmp_path / "s.xml")
    assert sim.nodes_of("a") and sim.nodes_of("b")
    assert not sim.nodes_of("a") & sim.nodes_of("b")


# ---- 7: every service attribute is carried over or reported ------------------------------

ATTRS = f"""<?xml version="1.0"?>
<cluster name="attrs" config_version="4" alias="oldname">{NODES2}
  <rm>
    <service name="web" __max_failures="3" __failure_expire_time="600" frobnicate="yes"
             __independent_subtree="1">
      <ip address="10.2.0.1"/>
    </service>
  </rm>
</cluster>
"""


def test_service_failure_limits_and_unknown_attributes(tmp_path: Path) -> None:
    c = convert_text(tmp_path, ATTRS)
    meta = {nv.get("name"): nv.get("value")
            for nv in c.root.findall(".//group[@id='web']/meta_attributes/nvpair")}
    assert meta["migration-threshold"] == "3" and meta["failure-timeout"] == "600s"
    assert c.entries_with("warning", "frobnicate")
    assert c.entries_with("warning", "__independent_subtree='1' not carried over")
    assert c.entries_with("info", "alias")


# ---- 8: fs without fstype (clufter's test1) -----------------------------------------------

def test_fs_without_fstype_is_reported(tmp_path: Path) -> None:
    conf = CORPUS / "clufter-test1.conf"
    assert run_cli(conf, "-o", tmp_path / "out").returncode == 0
    c = Out(conf, tmp_path / "out")
    fs1 = params(c.root, "fs-fs1")
    assert "fstype" not in fs1 and fs1["device"] == "/dev/sda1"
    err = c.entries_with("error", "no fstype")
    assert len(err) == 2 and err[0]["line"] == c.line('<fs name="fs1"')


# ---- 9: empty attributes (the Red Hat 4 how-to's fs options="") ---------------------------

EMPTY = f"""<?xml version="1.0"?>
<cluster config_version="13" name="alpha_cluster">{NODES2}
  <rm>
    <resources>
      <ip address="192.168.0.238" monitor_link="1"/>
      <fs device="/dev/sdb1" force_fsck="0" force_unmount="0" fsid="44028" fstype="ext3"
          mountpoint="/mnt/cluster" name="disk2" options="" self_fence="0"/>
    </resources>
    <service autostart="1" name="clusterdev">
      <ip ref="192.168.0.238"/>
      <fs ref="disk2"/>
    </service>
  </rm>
</cluster>
"""


def test_empty_options_left_unset_and_pcs_accepts(tmp_path: Path) -> None:
    c = convert_text(tmp_path, EMPTY)
    assert "options" not in params(c.root, "fs-disk2")
    assert c.entries_with("info", 'options="" is empty')
    assert "options=''" not in (c.out / "pcs.sh").read_text()
    (tmp_path / "pcs").mkdir()
    result, _cib = run_pcs_script(c.out / "pcs.sh", tmp_path / "pcs")
    assert result.returncode == 0, result.stderr_tail


# ---- 10: totem interface, unknown domain member, LABEL=/UUID= -----------------------------

MINOR = """<?xml version="1.0"?>
<cluster name="minor" config_version="9">
  <totem token="21000">
    <interface ringnumber="0" mcastaddr="239.192.10.1" mcastport="5405"/>
  </totem>
  <clusternodes>
    <clusternode name="red" nodeid="1"/><clusternode name="green" nodeid="2"/>
  </clusternodes>
  <rm>
    <failoverdomains>
      <failoverdomain name="thisdomain" ordered="1">
        <failoverdomainnode name="red" priority="1"/>
        <failoverdomainnode name="blue" priority="2"/>
      </failoverdomain>
    </failoverdomains>
    <service name="data" domain="thisdomain">
      <fs name="bylabel" device="LABEL=clu_data" mountpoint="/data" fstype="ext4"/>
      <fs name="byuuid" device="UUID=0b1c6f3e-5d2a-4c9e-9d51-2f0c8e7a1b44"
          mountpoint="/data/sub" fstype="ext4"/>
    </service>
  </rm>
</cluster>
"""


def test_minor_totem_interface_domain_member_and_labels(tmp_path: Path) -> None:
    c = convert_text(tmp_path, MINOR)
    warn = c.entries_with("warning", "mcastport=5405")
    assert warn and warn[0]["line"] == c.line("<interface ")
    member = c.entries_with("warning", "'blue', which is not in <clusternodes>")
    assert member and member[0]["line"] == c.line('name="blue"')
    assert params(c.root, "fs-bylabel")["device"] == "/dev/disk/by-label/clu_data"
    assert params(c.root, "fs-byuuid")["device"] == \
        "/dev/disk/by-uuid/0b1c6f3e-5d2a-4c9e-9d51-2f0c8e7a1b44"
    sim = crm_simulate(c.out / "cib.xml", ["red", "green"], tmp_path / "s.xml")
    assert sim.nodes_of("data") == {"red"}
