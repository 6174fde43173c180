"""What each rule of the issue turns into, read from the generated files."""

from __future__ import annotations

import re

from .migrate_helpers import CONFIGS, Converted, line_of, meta, params, primitive_meta, run_cli


def _corosync_nodes(text: str) -> list[dict[str, str]]:
    nodes = []
    for block in re.findall(r"node \{\n(.*?)\n    \}", text, flags=re.S):
        nodes.append(dict(re.findall(r"(\w+): (\S+)", block)))
    return nodes


def _entries(c: Converted, severity: str | None = None, contains: str = "") -> list[dict]:
    return [e for e in c.report()
            if (severity is None or e["severity"] == severity) and contains in e["message"]]


# ---- corosync.conf ---------------------------------------------------------------------

def test_nodes_ids_and_altname_links(converted: dict[str, Converted]) -> None:
    two = _corosync_nodes(converted["two_node.conf"].text("corosync.conf"))
    assert [(n["name"], n["nodeid"]) for n in two] == [("node1", "1"), ("node2", "2")]
    assert all("ring1_addr" in n for n in two)  # altname -> second knet link
    assert "link_mode: passive" in converted["two_node.conf"].text("corosync.conf")
    vm = _corosync_nodes(converted["vm.conf"].text("corosync.conf"))
    assert [n["nodeid"] for n in vm] == ["10", "20", "30"]
    # no altnames: one link only
    assert all("ring1_addr" not in n for n in vm)
    # node votes carried as quorum_votes (only where not 1)
    assert [n.get("quorum_votes") for n in vm] == ["2", None, None]


def test_node_names_used_as_addresses_without_address_option(tmp_path) -> None:
    out = tmp_path / "out"
    assert run_cli(CONFIGS / "drbd.conf", "-o", out).returncode == 0
    nodes = _corosync_nodes((out / "corosync.conf").read_text())
    assert nodes[0]["ring0_addr"] == "db-a" and nodes[0]["ring1_addr"] == "db-a-repl"


def test_transport_crypto_and_totem_timings(converted: dict[str, Converted]) -> None:
    text = converted["four_node.conf"].text("corosync.conf")
    assert "transport: knet" in text
    assert "token: 15000" in text and "consensus: 18000" in text
    assert "token_retransmits_before_loss_const: 10" in text
    assert "rrp_mode" not in text and "secauth" not in text
    c = converted["four_node.conf"]
    totem_line = line_of(c.conf, "<totem ")
    dropped = _entries(c, contains="secauth")
    assert dropped and dropped[0]["line"] == totem_line
    assert _entries(c, contains="cluster_id")
    # sections with no counterpart are reported at their line, not dropped silently
    fd = _entries(c, contains="post_join_delay")
    assert fd and fd[0]["line"] == line_of(c.conf, "<fence_daemon ")
    assert _entries(converted["two_node.conf"], "warning", "pcmk_delay_max")


def test_quorum_two_node_and_expected_votes(converted: dict[str, Converted]) -> None:
    assert "two_node: 1" in converted["two_node.conf"].text("corosync.conf")
    four = converted["four_node.conf"].text("corosync.conf")
    assert "two_node" not in four
    # expected_votes=4 equals the four nodes' votes: votequorum derives it
    assert "expected_votes" not in four
    assert "provider: corosync_votequorum" in four


def test_quorumd_becomes_qdevice_recommendation(converted: dict[str, Converted]) -> None:
    c = converted["gfs2.conf"]
    text = c.text("corosync.conf")
    assert "#     model: net" in text
    assert "#         exec_check1: ping -c1 -w1 10.20.0.1" in text
    # cman expected_votes=5 counted qdisk's 2 votes: 3 nodes remain, nothing to write
    assert "expected_votes" not in text
    warn = _entries(c, "warning", "corosync-qdevice")
    assert warn and warn[0]["line"] == line_of(c.conf, "<quorumd ")


# ---- fencing ---------------------------------------------------------------------------

def test_shared_power_switch_gets_host_map(converted: dict[str, Converted]) -> None:
    root = converted["four_node.conf"].cib_root()
    p = params(root, "fence-apc")
    assert p["pcmk_host_map"] == "alpha:1;bravo:2;charlie:3;delta:4"
    # old names renamed to today's
    assert p["ip"] == "apc-switch.example.com" and p["username"] == "apc"
    assert p["password"] == "apc" and p["ssh"] == "1"
    assert not {"ipaddr", "login", "passwd", "port", "secure"} & set(p)


def test_per_node_devices_get_host_list(converted: dict[str, Converted]) -> None:
    root = converted["two_node.conf"].cib_root()
    assert params(root, "fence-ipmi1")["pcmk_host_list"] == "node1"
    assert params(root, "fence-ipmi2")["pcmk_host_list"] == "node2"
    assert root.find(".//fencing-topology") is None  # one device per node: no levels
    # per-node attributes on <device> (gfs2.conf) make one primitive per node
    g = converted["gfs2.conf"].cib_root()
    assert params(g, "fence-ipmi-g2")["ip"] == "10.20.9.2"
    assert params(g, "fence-ipmi-g2")["pcmk_host_list"] == "g2"


def test_fencing_topology_levels_refer_to_real_devices(converted: dict[str, Converted]) -> None:
    root = converted["fence_levels.conf"].cib_root()
    stonith = {p.get("id") for p in root.iter("primitive") if p.get("class") == "stonith"}
    levels = {(lv.get("target"), lv.get("index")): lv.get("devices", "").split(",")
              for lv in root.iter("fencing-level")}
    assert levels == {
        ("n1", "1"): ["fence-ipmi-n1"], ("n1", "2"): ["fence-pdu-a", "fence-pdu-b"],
        ("n1", "3"): ["fence-scsi"],
        ("n2", "1"): ["fence-ipmi-n2"], ("n2", "2"): ["fence-pdu-a", "fence-pdu-b"],
        ("n2", "3"): ["fence-scsi"],
        # n3: two ports of the same switch in one method -> two primitives in one level
        ("n3", "1"): ["fence-ipmi-n3"], ("n3", "2"): ["fence-pdu-a", "fence-pdu-a-n3"],
    }
    assert all(set(devs) <= stonith for devs in levels.values())
    assert params(root, "fence-pdu-a")["pcmk_host_map"] == "n1:11;n2:12;n3:13"
    assert params(root, "fence-pdu-a-n3")["pcmk_host_map"] == "n3:14"
    assert primitive_meta(root, "fence-scsi")["provides"] == "unfencing"


def test_removed_fence_agent_reported_not_converted(converted: dict[str, Converted]) -> None:
    c = converted["fence_levels.conf"]
    assert c.cib_root().find(".//primitive[@type='fence_manual']") is None
    err = _entries(c, "error", "fence_manual")
    assert err and err[0]["line"] == line_of(c.conf, 'name="human"')


def test_no_fencing_is_loud(converted: dict[str, Converted]) -> None:
    c = converted["nofence.conf"]
    props = {nv.get("name"): nv.get("value") for nv in c.cib_root().iter("nvpair")}
    assert props["stonith-enabled"] == "false"
    assert _entries(c, "critical", "NO FENCING")
    assert "WARNING" in c.result.stderr_tail and "NO FENCING" in c.result.stderr_tail
    assert "CRITICAL" in c.text("report.txt").splitlines()[3]  # first entry listed
    # a fenced cluster keeps fencing on
    other = {nv.get("name"): nv.get("value")
             for nv in converted["two_node.conf"].cib_root().iter("nvpair")}
    assert other["stonith-enabled"] == "true"


# ---- domains -------------------------------------------------------------------------

def _locations(root, rsc: str) -> dict[str, str]:
    return {c.get("node", ""): c.get("score", "") for c in root.iter("rsc_location")
            if c.get("rsc") == rsc and not c.get("role")}


def test_ordered_restricted_domain_scores(converted: dict[str, Converted]) -> None:
    root = converted["four_node.conf"].cib_root()
    assert _locations(root, "db") == {"alpha": "199", "bravo": "198",
                                      "charlie": "-INFINITY", "delta": "-INFINITY"}
    # unrestricted ordered: no -INFINITY anywhere
    assert _locations(root, "web") == {"charlie": "199", "delta": "198", "alpha": "197"}
    # unordered restricted: equal scores
    assert _locations(root, "batch") == {"bravo": "100", "delta": "100",
                                         "alpha": "-INFINITY", "charlie": "-INFINITY"}
    assert _locations(root, "reports") == {}


def test_failback_and_nofailback_stickiness(converted: dict[str, Converted]) -> None:
    root = converted["four_node.conf"].cib_root()
    assert meta(root, "db")["resource-stickiness"] == "1000"  # nofailback
    assert meta(root, "web")["resource-stickiness"] == "0"  # ordered, fails back
    assert "resource-stickiness" not in meta(root, "batch")
    defaults = root.find(".//rsc_defaults")
    assert defaults is not None
    assert {nv.get("name"): nv.get("value") for nv in defaults.iter("nvpair")} == {
        "resource-stickiness": "100"}


# ---- services and resource trees -----------------------------------------------------

def _members(root, group: str) -> list[str]:
    g = root.find(f".//group[@id='{group}']")
    assert g is not None, group
    return [p.get("id", "") for p in g.findall("primitive")]


def test_implicit_start_order(converted: dict[str, Converted]) -> None:
    # cluster.conf lists script, ip, fs; rgmanager starts fs, ip, script
    assert _members(converted["two_node.conf"].cib_root(), "www") == [
        "fs-webdata", "ip-192.0.2.10", "script-httpd"]
    # nested: lvm, fs, then the exports below fs, then ip
    assert _members(converted["nfs_nested.conf"].cib_root(), "exports") == [
        "lvm-halvm", "fs-data", "exports-nfsclient-lan", "nfsclient-backup", "ip-10.0.0.200"]
    # a child starts after its parent: postgres below fs, before the sibling ip
    assert _members(converted["four_node.conf"].cib_root(), "db") == [
        "fs-pgdata", "postgres-8-pg", "ip-10.10.0.50"]


def test_shared_resources_and_inheritance(converted: dict[str, Converted]) -> None:
    root = converted["nfs_nested.conf"].cib_root()
    # <nfsclient ref="lan"/> used by two services: one exportfs per service
    lan1 = params(root, "exports-nfsclient-lan")
    lan2 = params(root, "homes-nfsclient-lan")
    assert lan1["clientspec"] == lan2["clientspec"] == "10.0.0.0/16"
    # path and fsid inherited from the file system above each reference
    assert (lan1["directory"], lan1["fsid"]) == ("/export/data", "101")
    assert lan2["directory"] == "/export/home" and lan2["fsid"].isdigit()
    assert params(root, "nfsclient-backup")["options"] == "ro"
    # rgmanager's nfsexport is the NFS daemon: a clone the groups start after
    orders = {(o.get("first"), o.get("then")) for o in root.iter("rsc_order")}
    assert ("nfs-daemon-clone", "exports") in orders and ("nfs-daemon-clone", "homes") in orders
    # nfsserver in a service runs the daemons itself
    assert ("nfs-daemon-clone", "nfsv4") not in orders
    assert params(root, "nfsserver-v4server")["nfs_shared_infodir"] == \
        "/export/v4/.clumanager/nfs"


AGENTS = {
    # (config, primitive id): agent
    ("two_node.conf", "ip-192.0.2.10"): "ocf:heartbeat:IPaddr2",
    ("two_node.conf", "fs-webdata"): "ocf:heartbeat:Filesystem",
    ("two_node.conf", "script-httpd"): "systemd::apache2",
    ("four_node.conf", "netfs-batchdata"): "ocf:heartbeat:Filesystem",
    ("four_node.conf", "postgres-8-pg"): "ocf:heartbeat:pgsql",
    ("four_node.conf", "apache-web"): "ocf:heartbeat:apache",
    ("four_node.conf", "script-batchd"): "lsb::/usr/local/sbin/batchd-ctl",
    ("four_node.conf", "script-postfix"): "systemd::postfix",
    ("nfs_nested.conf", "lvm-halvm"): "ocf:heartbeat:LVM-activate",
    ("nfs_nested.conf", "nfsclient-backup"): "ocf:heartbeat:exportfs",
    ("nfs_nested.conf", "nfsserver-v4server"): "ocf:heartbeat:nfsserver",
    ("drbd.conf", "mysql-mysqld"): "ocf:heartbeat:mysql",
    ("drbd.conf", "drbd-mysql"): "ocf:linbit:drbd",
    ("gfs2.conf", "samba-smbsvc"): "systemd::smbd",
    ("gfs2.conf", "clusterfs-shared"): "ocf:heartbeat:Filesystem",
    ("gfs2.conf", "dlm"): "ocf:pacemaker:controld",
    ("gfs2.conf", "lvmlockd"): "ocf:heartbeat:lvmlockd",
    ("vm.conf", "guest1"): "ocf:heartbeat:VirtualDomain",
    ("vm.conf", "tomcat-6-tc"): "ocf:heartbeat:tomcat",
    ("vm.conf", "named-dns"): "ocf:heartbeat:named",
    ("vm.conf", "SAPInstance-ascs"): "ocf:heartbeat:SAPInstance",
    ("vm.conf", "oracledb-ORCL"): "ocf:heartbeat:oracle",
}


def test_agent_table(converted: dict[str, Converted]) -> None:
    for (conf, rid), agent in AGENTS.items():
        p = converted[conf].cib_root().find(f".//primitive[@id='{rid}']")
        assert p is not None, (conf, rid)
        got = f"{p.get('class')}:{p.get('provider') or ''}:{p.get('type')}"
        assert got == agent, (conf, rid, got)


def test_agent_parameters(converted: dict[str, Converted]) -> None:
    four = converted["four_node.conf"].cib_root()
    assert params(four, "ip-10.10.0.50") == {"ip": "10.10.0.50", "cidr_netmask": "24"}
    assert params(four, "netfs-batchdata")["device"] == "filer.example.com:/vol/batch"
    assert params(four, "apache-web")["configfile"] == "/etc/httpd/conf/httpd.conf"
    assert params(four, "postgres-8-pg")["pgdba"] == "postgres"
    assert params(four, "fs-pgdata")["force_unmount"] == "true"
    vm = converted["vm.conf"].cib_root()
    assert params(vm, "SAPInstance-ascs")["InstanceName"] == "HA1_ASCS00_sapascs"
    assert params(vm, "oracledb-ORCL")["sid"] == "ORCL"
    c = converted["vm.conf"]
    assert _entries(c, "warning", "needs 'catalina_home'")


def test_vm_becomes_virtualdomain(converted: dict[str, Converted]) -> None:
    root = converted["vm.conf"].cib_root()
    assert params(root, "guest1")["config"] == "/etc/libvirt/qemu/guest1.xml"
    assert params(root, "guest2")["config"] == "/shared/vms/guest2.xml"
    m = primitive_meta(root, "guest1")
    assert m["allow-migrate"] == "true"
    assert m["migration-threshold"] == "3" and m["failure-timeout"] == "600s"
    assert primitive_meta(root, "guest2")["resource-stickiness"] == "1000"
    assert root.find(".//group[@id='guest1']") is None


def test_drbd_promotable_clone_with_constraints(converted: dict[str, Converted]) -> None:
    root = converted["drbd.conf"].cib_root()
    assert meta(root, "drbd-mysql-clone")["promotable"] == "true"
    assert meta(root, "drbd-mysql-clone")["promoted-max"] == "1"
    assert params(root, "drbd-mysql")["drbd_resource"] == "mysql"
    col = root.find(".//rsc_colocation[@rsc='mysql']")
    assert col is not None and col.get("with-rsc") == "drbd-mysql-clone"
    assert col.get("with-rsc-role") == "Promoted" and col.get("score") == "INFINITY"
    order = root.find(".//rsc_order[@then='mysql']")
    assert order is not None and order.get("first") == "drbd-mysql-clone"
    assert order.get("first-action") == "promote" and order.get("then-action") == "start"
    # the drbd element itself is not a group member; its fs child is, in rgmanager's
    # order (drbd is not in service.sh's typed list, so it starts after ip)
    assert _members(root, "mysql") == ["ip-192.168.50.20", "fs-mysql-fs", "mysql-mysqld"]


def test_gfs2_dlm_lvmlockd_and_cloned_filesystem(converted: dict[str, Converted]) -> None:
    root = converted["gfs2.conf"].cib_root()
    orders = [(o.get("first"), o.get("then")) for o in root.iter("rsc_order")]
    assert ("dlm-clone", "lvmlockd-clone") in orders
    assert ("lvmlockd-clone", "clusterfs-shared-group-clone") in orders
    assert ("clusterfs-shared-group-clone", "smb") in orders
    assert ("clusterfs-shared-group-clone", "nfsgfs") in orders
    assert params(root, "clusterfs-shared")["fstype"] == "gfs2"
    lv = params(root, "lvm-vg_shared-lv_shared")
    assert lv["vg_access_mode"] == "lvmlockd" and lv["activation_mode"] == "shared"
    # the clvmd init script is dropped, not turned into a resource
    assert root.find(".//primitive[@id='script-clvmd']") is None
    # the shared clusterfs is one clone for both services, not a member of either
    assert "clusterfs-shared" not in _members(root, "smb") + _members(root, "nfsgfs")
    assert sum(1 for c in root.iter("clone") if c.get("id") == "clusterfs-shared-group-clone") == 1


def test_unknown_agent_reported_and_stopped(converted: dict[str, Converted]) -> None:
    c = converted["unknown_agent.conf"]
    root = c.cib_root()
    assert primitive_meta(root, "ASEHAagent-sybase")["target-role"] == "Stopped"
    err = _entries(c, "error", "ASEHAagent")
    assert err and err[0]["line"] == line_of(c.conf, "<ASEHAagent")


# ---- recovery policies and operations ------------------------------------------------

def _ops(root, rid: str) -> list[dict[str, str]]:
    p = root.find(f".//primitive[@id='{rid}']")
    assert p is not None
    out = []
    for op in p.iter("op"):
        d = dict(op.attrib)
        for nv in op.iter("nvpair"):
            d[nv.get("name", "")] = nv.get("value", "")
        out.append(d)
    return out


def test_recovery_policies(converted: dict[str, Converted]) -> None:
    root = converted["four_node.conf"].cib_root()
    assert meta(root, "db")["migration-threshold"] == "4"  # max_restarts=3
    assert meta(root, "db")["failure-timeout"] == "300s"
    assert meta(root, "web")["migration-threshold"] == "1"  # relocate
    batch_monitors = [o for o in _ops(root, "script-batchd") if o["name"] == "monitor"]
    assert batch_monitors and all(o["on-fail"] == "stop" for o in batch_monitors)  # disable
    assert meta(root, "reports")["target-role"] == "Stopped"  # autostart=0
    rm_off = converted["rm_disabled.conf"].cib_root()
    assert meta(rm_off, "web")["target-role"] == "Stopped"


def test_independent_subtree_and_per_resource_limits(converted: dict[str, Converted]) -> None:
    c = converted["nfs_nested.conf"]
    root = c.cib_root()
    ip = primitive_meta(root, "ip-10.0.0.200")
    assert ip["migration-threshold"] == "3" and ip["failure-timeout"] == "60s"
    assert all(o.get("on-fail") == "stop" for o in _ops(root, "ip-10.0.0.200")
               if o["name"] == "monitor")  # __independent_subtree=2
    warn = _entries(c, "warning", "__independent_subtree=1")
    assert warn and warn[0]["line"] == line_of(c.conf, '<nfsclient ref="backup"')


def test_actions_become_operations(converted: dict[str, Converted]) -> None:
    root = converted["nfs_nested.conf"].cib_root()
    mons = sorted((o["interval"], o.get("OCF_CHECK_LEVEL"), o.get("timeout"))
                  for o in _ops(root, "fs-data") if o["name"] == "monitor")
    assert mons == [("600s", "20", "120s"), ("60s", None, "40s")]
    start = [o for o in _ops(root, "ip-10.0.0.200") if o["name"] == "start"]
    assert start[0]["timeout"] == "45s"
    drbd = converted["drbd.conf"].cib_root()
    mon = [o for o in _ops(drbd, "mysql-mysqld") if o["name"] == "monitor"]
    assert [(o["interval"], o["timeout"]) for o in mon] == [("45s", "30s")]
    # startup_wait=60 -> the start timeout covers it
    assert [o["timeout"] for o in _ops(drbd, "mysql-mysqld") if o["name"] == "start"] == ["80s"]


def test_depend_modes(converted: dict[str, Converted]) -> None:
    root = converted["four_node.conf"].cib_root()
    orders = {(o.get("first"), o.get("then")): o.get("kind") for o in root.iter("rsc_order")}
    assert orders[("db", "watch")] == "Mandatory"  # hard
    assert orders[("db", "web")] == "Optional"  # soft
    cols = {(c.get("rsc"), c.get("with-rsc")): c.get("score") for c in root.iter("rsc_colocation")}
    assert cols[("watch", "db")] == "INFINITY"
    assert ("web", "db") not in cols


def test_exclusive_service_constraints(converted: dict[str, Converted]) -> None:
    root = converted["four_node.conf"].cib_root()
    cols = {(c.get("rsc"), c.get("with-rsc")): c.get("score") for c in root.iter("rsc_colocation")}
    for other in ("db", "web", "batch", "watch", "reports"):
        assert cols[("mail", other)] == "-INFINITY"


# ---- report ----------------------------------------------------------------------------

def test_report_entries_have_severity_and_source_line(converted: dict[str, Converted]) -> None:
    for c in converted.values():
        lines = len(c.conf.read_text().splitlines())
        entries = c.report()
        assert entries
        for e in entries:
            assert e["severity"] in ("info", "warning", "error", "critical")
            assert e["line"] is None or 1 <= e["line"] <= lines
        text = c.text("report.txt")
        assert len([x for x in text.splitlines() if re.match(r"(INFO|WARNING|ERROR|CRITICAL) ",
                                                            x)]) == len(entries)
    c = converted["two_node.conf"]
    link = _entries(c, "warning", "monitor_link")
    assert link and link[0]["line"] == line_of(c.conf, '<ip address="192.0.2.10/24"')


def test_sloppy_legacy_input_is_reported_not_fatal(converted: dict[str, Converted]) -> None:
    c = converted["legacy_misc.conf"]
    nodes = _corosync_nodes(c.text("corosync.conf"))
    assert [n["nodeid"] for n in nodes] == ["1", "2", "3"]  # numbered by position
    assert _entries(c, "warning", "has no nodeid")
    for tag in ("<dlm ", "<gfs_controld ", "<fence_xvmd"):
        hits = [e for e in c.report() if e["line"] == line_of(c.conf, tag)]
        assert hits and hits[0]["severity"] == "warning", tag
    assert _entries(c, "error", "node l3 has no fence method")
    assert _entries(c, "error", "<events>")
    assert _entries(c, "warning", "'lots' is not a number")
    assert _entries(c, "warning", "frobnicate")
    assert _entries(c, "warning", "ilo-spare is used by no node")
    root = c.cib_root()
    assert root.find(".//primitive[@id='fence-ilo-spare']") is None
    assert root.find(".//group[@id='empty']") is None
    assert "debug: on" in c.text("corosync.conf")
    assert "migration-threshold" not in meta(root, "sloppy")
