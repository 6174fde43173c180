"""cman's view of membership and quorum -> corosync.conf for corosync 3 (knet)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .model import Cluster, Node, XmlNode
from .report import Report

# totem options whose meaning did not change between corosync 1 (cman) and 3.
TOTEM_CARRIED = ("token", "token_retransmits_before_loss_const", "join", "consensus",
                 "fail_recv_const", "seqno_unchanged_const", "send_join", "merge", "downcheck",
                 "hold", "max_messages", "window_size", "miss_count_const", "token_retransmit",
                 "max_network_delay")
TOTEM_DROPPED = {
    "rrp_mode": "knet has its own link_mode",
    "secauth": "replaced by knet crypto (crypto_cipher/crypto_hash)",
    "keyfile": "corosync 3 reads /etc/corosync/authkey (create it with corosync-keygen)",
    "netmtu": "knet discovers the path MTU itself",
    "threads": "not used by corosync 3",
    "vsftype": "not used by corosync 3",
    "clear_node_high_bit": "node ids come from the nodelist",
}
CMAN_DROPPED = {
    "cluster_id": "corosync 3 has no cluster id; cluster_name identifies the cluster",
    "port": "knet uses port 5405 for link 0 (set knet_port in an interface section to change "
            "it)",
    "transport": "corosync 3 uses knet (unicast, no multicast needed)",
    "broadcast": "knet is unicast",
    "keyfile": "corosync 3 reads /etc/corosync/authkey (create it with corosync-keygen)",
    "upgrading": "not needed",
    "disallowed": "not needed",
    "quorum_dev_poll": "see the corosync-qdevice recommendation",
    "expected_votes": "",  # handled below
    "two_node": "",  # handled below
    "cluster_name": "",
}


def _cman_keys(cman: XmlNode | None, report: Report) -> tuple[bool, int | None]:
    if cman is None:
        return False, None
    two_node = cman.attrs.get("two_node", "0").strip() == "1"
    expected = cman.attrs.get("expected_votes")
    for key, value in cman.attrs.items():
        reason = CMAN_DROPPED.get(key)
        if reason:
            report.info("corosync", f"<cman {key}={value!r}> not carried over: {reason}",
                        cman.line)
        elif reason is None:
            report.warning("corosync", f"<cman {key}={value!r}> not carried over: unknown to "
                           f"the converter", cman.line)
    for child in cman.children:
        attrs = ", ".join(f"{k}={v}" for k, v in child.attrs.items())
        report.info("corosync", f"<cman><{child.tag}> ({attrs}) not carried over: knet is "
                    f"unicast", child.line)
    return two_node, int(expected) if expected and expected.isdigit() else None


@dataclass
class Totem:
    cluster_name: str
    options: list[tuple[str, str]] = field(default_factory=list)
    link_mode: str | None = None


@dataclass
class CorosyncNode:
    name: str
    nodeid: int
    addrs: list[str]
    votes: int = 1


@dataclass
class QDevice:
    """The commented-out corosync-qdevice section suggested in place of qdiskd."""
    votes: str
    heuristics: list[str] = field(default_factory=list)


@dataclass
class Quorum:
    two_node: bool = False
    expected_votes: int | None = None
    qdevice: QDevice | None = None


@dataclass
class CorosyncConfig:
    """What corosync.conf will say, decided from cluster.conf before any text is written."""
    config_version: str
    totem: Totem
    nodes: list[CorosyncNode]
    quorum: Quorum
    debug: bool = False


def render_corosync(cluster: Cluster, addresses: dict[str, list[str]],
                    report: Report) -> str:
    """corosync.conf text. `addresses` maps node name -> link addresses, overriding names."""
    return render_corosync_conf(build_corosync(cluster, addresses, report))


def build_corosync(cluster: Cluster, addresses: dict[str, list[str]],
                   report: Report) -> CorosyncConfig:
    report.warning("corosync", "knet traffic is encrypted: run corosync-keygen on one node "
                   "and copy /etc/corosync/authkey (mode 0400) to every node", None)
    totem = _totem(cluster, report)
    links = _link_count(cluster, addresses, report)
    if links > 1:
        totem.link_mode = "passive"
        report.info("corosync", f"altname -> knet link 1 ({links} links, link_mode passive, "
                    f"as rrp_mode passive did)", cluster.nodes[0].line)
    nodes = [_node(node, addresses, links, report) for node in cluster.nodes]
    quorum = _quorum(cluster, report)
    if cluster.quorumd is not None:
        quorum.qdevice = _qdevice(cluster.quorumd, report)
    return CorosyncConfig(cluster.config_version or "?", totem, nodes, quorum,
                          _logging_debug(cluster, report))


def _totem(cluster: Cluster, report: Report) -> Totem:
    out = Totem(cluster.name)
    totem = cluster.totem
    if totem is None:
        report.info("corosync", "no <totem> settings: cman's default token was 10000 ms, "
                    "corosync 3 uses 3000 ms (+650 ms per node above two); set token: 10000 "
                    "in totem to keep the old failure-detection time", cluster.line)
        return out
    for key, value in totem.attrs.items():
        if key in TOTEM_CARRIED:
            out.options.append((key, value))
            report.info("corosync", f"totem {key}={value} carried over", totem.line)
        elif key in TOTEM_DROPPED:
            report.info("corosync", f"totem {key}={value!r} not carried over: "
                        f"{TOTEM_DROPPED[key]}", totem.line)
        else:
            report.warning("corosync", f"totem {key}={value!r} not carried over: unknown "
                           f"to corosync 3", totem.line)
    for child in totem.children:
        attrs = " ".join(f"{k}={v}" for k, v in child.attrs.items())
        # mcastaddr/mcastport/bindnetaddr/ttl are udp-only in corosync 3; knet links
        # take their addresses from the nodelist and use UDP port 5405 (+ link number)
        report.warning("corosync", f"<totem><{child.tag} {attrs}> not carried over: "
                       f"knet is unicast and takes its addresses from the nodelist; open "
                       f"UDP 5405 (link 0) instead of the old multicast port", child.line)
    if "token" in totem.attrs and "consensus" not in totem.attrs:
        report.info("corosync", "consensus not set: corosync 3 derives it as 1.2 x token",
                    totem.line)
    return out


def _link_count(cluster: Cluster, addresses: dict[str, list[str]], report: Report) -> int:
    # knet needs the same number of links on every node.
    link_counts = {len(addresses.get(n.name) or [n.name, *n.altnames]) for n in cluster.nodes}
    links = min(link_counts)
    if len(link_counts) > 1:
        report.warning("corosync", f"nodes have different numbers of altnames; knet needs the "
                       f"same links on every node, so only {links} link(s) are configured",
                       cluster.nodes[0].line)
    return links


def _node(node: Node, addresses: dict[str, list[str]], links: int,
          report: Report) -> CorosyncNode:
    addrs = (addresses.get(node.name) or [node.name, *node.altnames])[:links]
    if not node.nodeid_given:
        report.warning("corosync", f"node {node.name} has no nodeid in cluster.conf; "
                       f"nodeid {node.nodeid} (its position) is used, as corosync 3 "
                       f"needs one", node.line)
    if node.name not in addresses:
        report.info("corosync", f"node {node.name}: ring addresses are host names; "
                    f"corosync resolves them at start (or pass --address "
                    f"{node.name}=IP[,IP])", node.line)
    for key, value in node.attrs.items():
        if key not in ("name", "nodeid", "votes"):
            report.info("corosync", f"node {node.name}: {key}={value!r} not carried over: "
                        f"corosync 3's nodelist has no such setting", node.line)
    return CorosyncNode(node.name, node.nodeid, addrs, node.votes)


def _quorum(cluster: Cluster, report: Report) -> Quorum:
    two_node, expected = _cman_keys(cluster.cman, report)
    line = cluster.cman.line if cluster.cman else None
    out = Quorum()
    if two_node:
        if len(cluster.nodes) != 2:
            report.error("quorum", f"two_node=1 with {len(cluster.nodes)} nodes: not carried "
                         f"over", line)
            return out
        out.two_node = True
        report.info("quorum", "cman two_node=1 -> votequorum two_node: 1 (which implies "
                    "wait_for_all: the first start needs both nodes)", line)
        if expected not in (None, 1, 2):
            report.warning("quorum", f"expected_votes={expected} ignored with two_node", line)
        return out
    if expected is None:
        return out
    total = sum(n.votes for n in cluster.nodes)
    qd_votes = 0
    if cluster.quorumd is not None:
        # qdiskd's default was (number of nodes - 1) votes
        votes = cluster.quorumd.attrs.get("votes", "")
        qd_votes = int(votes) if votes.isdigit() else len(cluster.nodes) - 1
    if expected - qd_votes != total:
        out.expected_votes = expected - qd_votes
        report.warning("quorum", f"expected_votes={expected} (minus {qd_votes} quorum-disk "
                       f"votes) differs from the nodes' {total} votes; kept as "
                       f"expected_votes: {expected - qd_votes}", line)
    else:
        report.info("quorum", f"expected_votes={expected} equals the node votes (plus "
                    f"quorum disk); votequorum computes it from the nodelist", line)
    return out


def _logging_debug(cluster: Cluster, report: Report) -> bool:
    logging = cluster.logging
    if logging is None:
        return False
    for key, value in logging.attrs.items():
        if key not in ("debug", "to_syslog", "to_logfile"):
            report.info("logging", f"<logging {key}={value!r}> not carried over", logging.line)
    for child in logging.children:
        report.info("logging", f"<logging_daemon name={child.attrs.get('name')!r}> not "
                    f"carried over: corosync 3 logs per subsystem with logger_subsys",
                    child.line)
    return logging.attrs.get("debug", "off") == "on"


def render_corosync_conf(conf: CorosyncConfig) -> str:
    """The text of corosync.conf; decides nothing, reports nothing."""
    out = [f"# Converted from cluster.conf (config_version {conf.config_version}) "
           "by cluster-migrate."]
    out += [*_render_totem(conf.totem), ""]
    out += [*_render_nodes(conf.nodes), ""]
    out += [*_render_quorum(conf.quorum), ""]
    out += ["logging {", "    to_syslog: yes", "    to_logfile: yes",
            "    logfile: /var/log/corosync/corosync.log", "    timestamp: on",
            f"    debug: {'on' if conf.debug else 'off'}", "}"]
    return "\n".join(out) + "\n"


def _render_totem(totem: Totem) -> list[str]:
    out = ["totem {", "    version: 2", f"    cluster_name: {totem.cluster_name}",
           "    transport: knet",
           # cman encrypted by default (with a key derived from the cluster name); keep the
           # traffic encrypted, with a real key this time.
           "    crypto_cipher: aes256", "    crypto_hash: sha256"]
    out += [f"    {key}: {value}" for key, value in totem.options]
    if totem.link_mode:
        out.append(f"    link_mode: {totem.link_mode}")
    return [*out, "}"]


def _render_nodes(nodes: list[CorosyncNode]) -> list[str]:
    out = ["nodelist {"]
    for node in nodes:
        out.append("    node {")
        out += [f"        ring{i}_addr: {addr}" for i, addr in enumerate(node.addrs)]
        out += [f"        name: {node.name}", f"        nodeid: {node.nodeid}"]
        if node.votes != 1:
            out.append(f"        quorum_votes: {node.votes}")
        out.append("    }")
    return [*out, "}"]


def _render_quorum(quorum: Quorum) -> list[str]:
    out = ["quorum {", "    provider: corosync_votequorum"]
    if quorum.two_node:
        out.append("    two_node: 1")
    if quorum.expected_votes is not None:
        out.append(f"    expected_votes: {quorum.expected_votes}")
    if quorum.qdevice is not None:
        out += _render_qdevice(quorum.qdevice)
    return [*out, "}"]


def _render_qdevice(qdevice: QDevice) -> list[str]:
    lines = ["    # quorumd (qdiskd) was configured in cluster.conf. Its replacement is",
             "    # corosync-qdevice with a corosync-qnetd arbiter outside the cluster.",
             "    # Fill in the qnetd host, then uncomment:",
             "    # device {",
             f"    #     votes: {qdevice.votes}",
             "    #     model: net",
             "    #     net {",
             "    #         host: QNETD-HOST",
             "    #         algorithm: ffsplit",
             "    #     }"]
    if qdevice.heuristics:
        lines += ["    #     heuristics {", "    #         mode: sync"]
        lines += [f"    #         exec_check{i}: {program}"
                  for i, program in enumerate(qdevice.heuristics, start=1)]
        lines.append("    #     }")
    return [*lines, "    # }"]


def _qdevice(quorumd: XmlNode, report: Report) -> QDevice:
    """quorumd (a quorum disk) has no corosync 3 counterpart: recommend corosync-qdevice."""
    report.warning("quorum", "quorumd (qdiskd quorum disk) has no counterpart in corosync 3: "
                   "set up corosync-qnetd on a host outside the cluster and corosync-qdevice on "
                   "every node; a commented device section is in corosync.conf", quorumd.line)
    out = QDevice(quorumd.attrs.get("votes", "1"))
    for i, h in enumerate(quorumd.findall("heuristic"), start=1):
        program = h.attrs.get("program", "")
        out.heuristics.append(program)
        report.info("quorum", f"qdisk heuristic {program!r} -> qdevice heuristics "
                    f"exec_check{i} (scores are not used by qdevice: every check must "
                    f"pass)", h.line)
    for key, value in quorumd.attrs.items():
        if key not in ("label", "device", "votes"):
            report.info("quorum", f"quorumd {key}={value!r} not carried over: qdevice has its "
                        f"own timers", quorumd.line)
    for key in ("label", "device"):
        if key in quorumd.attrs:
            report.info("quorum", f"quorum disk {key}={quorumd.attrs[key]!r}: the disk is no "
                        f"longer needed after the migration", quorumd.line)
    return out
