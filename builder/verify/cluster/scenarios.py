"""What the harness does with a running cluster, and how it measures it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from builder.base.command import CommandError

from . import config
from .cluster import Cluster
from .node import Node, NodeError

log = logging.getLogger("clusterstack.cluster")

T = TypeVar("T")
PROBE_INTERVAL = 0.2


class ScenarioError(RuntimeError):
    pass


def wait_for(what: str, check: Callable[[], T | None], timeout: float,
             interval: float = 0.5) -> T:
    """Poll `check` until it returns something other than None/False."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise ScenarioError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# --- formation --------------------------------------------------------------------------


def formation(cluster: Cluster, started: float, timeout: float) -> float:
    """Seconds from the daemons' start until every node sees every node online."""
    names = {n.name for n in cluster.nodes}

    def all_online() -> bool:
        for node in cluster.nodes:
            seen = cluster.membership(node)
            if seen is None or seen.online != names or seen.dc is None:
                return False
        return True

    wait_for("every node online on every node", all_online, timeout, interval=0.25)
    return time.monotonic() - started


# What the harness itself runs inside the nodes.
NODE_COMMANDS = ("usr/sbin/corosync", "usr/sbin/corosync-cfgtool", "usr/sbin/pacemakerd",
                 "usr/sbin/crm_mon", "usr/sbin/stonith_admin", "usr/sbin/keepalived",
                 "usr/bin/mariadb", "usr/bin/mariadb-install-db", "usr/bin/ping", "usr/sbin/ip",
                 "usr/bin/python3")


def stack_shell(cluster: Cluster) -> str:
    """The configuration shell the installed stack ships (crmsh or pcs), once the root
    is known to have every command the harness runs in a node."""
    missing = [f"/{c}" for c in NODE_COMMANDS if not (cluster.lower / c).exists()
               and not (cluster.lower / c.replace("usr/", "", 1)).exists()]
    if missing:
        raise ScenarioError(f"the node root lacks {', '.join(missing)}")
    if (cluster.lower / "usr/sbin/crm").exists():
        return "crmsh"
    if (cluster.lower / "usr/sbin/pcs").exists():
        return "pcs"
    raise ScenarioError("neither crmsh nor pcs is installed in the node root")


def apply_config(cluster: Cluster, shell: str, fence_action: str, workload: str) -> None:
    """Configure fencing and the service group through the stack's own shell."""
    node = cluster.nodes[0]
    if shell == "crmsh":
        path = "/tmp/clusterstack.crm"
        node.root_path(path).write_text(config.crm_config(fence_action, workload, cluster.plan))
        node.run(["crm", "configure", "load", "update", path], timeout=120)
        return
    # pcs edits a copy of the CIB offline and pushes it back in one go, as its manual says.
    cib = "/tmp/clusterstack-cib.xml"
    node.run(["pcs", "cluster", "cib", cib], timeout=60)
    for argv in config.pcs_commands(cib, fence_action, workload, cluster.plan):
        node.run(argv, timeout=120)
    node.run(["pcs", "cluster", "cib-push", cib, "--config"], timeout=60)


def set_standby(node: Node, shell: str, target: str, standby: bool) -> None:
    if shell == "crmsh":
        node.run(["crm", "node", "standby" if standby else "online", target], timeout=60)
    else:
        node.run(["pcs", "node", "standby" if standby else "unstandby", target], timeout=60)


# --- the service group ------------------------------------------------------------------


def prepare_mariadb(cluster: Cluster) -> None:
    """Create the database on the shared disk once, from one node, as the admin would."""
    node = cluster.nodes[0]
    (cluster.shared / "init.sql").write_text(config.mariadb_init_sql())
    node.run(["mariadb-install-db", "--user=mysql", f"--datadir={config.DB_DATADIR}",
              "--auth-root-authentication-method=socket", "--skip-test-db"], timeout=180)


def service_owner(cluster: Cluster, members: tuple[str, ...]) -> str | None:
    """The node all members of the service group are started on, as the first live node
    that answers sees it."""
    for node in cluster.live_nodes():
        seen = cluster.membership(node)
        if seen is not None:
            owners = {seen.resources.get(m) for m in members}
            return owners.pop() if len(owners) == 1 and None not in owners else None
    return None


def group_members(cluster: Cluster, workload: str) -> tuple[str, ...]:
    return tuple(p.id for p in config.service_group(workload, cluster.plan))


def sql(cluster: Cluster, statement: str, timeout: float = 10) -> str | None:
    """Run SQL through the VIP from the client; None when the VIP does not answer."""
    try:
        result = cluster.client.run(
            ["mariadb", "--connect-timeout=1", "-h", cluster.plan.db_vip,
             "-u", config.DB_USER, f"-p{config.DB_PASSWORD}", "-N", "-B", config.DB_NAME,
             "-e", statement], check=False, timeout=timeout)
    except NodeError:
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def vip_owner_by_arp(cluster: Cluster, vip: str) -> str | None:
    """Which node answers for `vip`: ping it from the client, then read the MAC it learnt."""
    result = cluster.client.sh(
        f"ping -c 1 -W 0.3 -n -q {vip} >/dev/null && ip neigh show {vip}", check=False,
        timeout=10)
    if result.returncode != 0:
        return None
    fields = result.stdout.split()
    if "lladdr" not in fields:
        return None
    return cluster.owner_by_mac(fields[fields.index("lladdr") + 1])


def serving_node(cluster: Cluster, workload: str) -> str | None:
    """The node the client reaches through the service VIP, or None."""
    if workload == "mariadb":
        return sql(cluster, "SELECT @@hostname")
    return vip_owner_by_arp(cluster, cluster.plan.db_vip)


@dataclass
class Failover:
    seconds: float
    source: str
    target: str
    rejoin_s: float | None = None  # until a node fenced by reboot is online again


def all_online(cluster: Cluster, names: set[str]) -> bool:
    """Every live node sees every node of `names` online."""
    for node in cluster.live_nodes():
        seen = cluster.membership(node)
        if seen is None or not names <= seen.online:
            return False
    return True


def settle(cluster: Cluster, timeout: float) -> None:
    """Wait for the cluster to finish recovering before the next measurement.

    A change made while a transition is still running can overlap it: a
    standby set while the DC was still starting MariaDB on the new node made
    the controllers elect a new DC that started MariaDB a second time elsewhere
    (the shared data directory's InnoDB lock refused it, after 30 s).
    """
    names = {n.name for n in cluster.live_nodes()}
    wait_for("every live node online on every node", lambda: all_online(cluster, names),
             timeout)
    cluster.live_nodes()[0].run(["crm_resource", "--wait", f"--timeout={int(timeout)}s"],
                                timeout=timeout + 30)


def write_row(cluster: Cluster, workload: str, row_id: int, note: str) -> None:
    if workload != "mariadb":
        return
    if sql(cluster, f"REPLACE INTO items VALUES ({row_id}, '{note}')") is None:
        raise ScenarioError("the client could not write a row through the VIP")


def read_row(cluster: Cluster, workload: str, row_id: int) -> str | None:
    if workload != "mariadb":
        return None
    return sql(cluster, f"SELECT note FROM items WHERE id = {row_id}")


def start_service(cluster: Cluster, shell: str, workload: str, timeout: float,
                  fence_action: str = "reboot") -> str:
    """Configure fencing and the service group; return the node that serves it."""
    if workload == "mariadb":
        prepare_mariadb(cluster)
    apply_config(cluster, shell, fence_action, workload)
    members = group_members(cluster, workload)
    owner = wait_for("the service group to start",
                     lambda: service_owner(cluster, members), timeout)
    served = wait_for("the VIP to answer", lambda: serving_node(cluster, workload), timeout,
                      interval=PROBE_INTERVAL)
    if served != owner:
        raise ScenarioError(f"the VIP answers from {served}, Pacemaker says {owner}")
    return owner


def _measure_move(cluster: Cluster, workload: str, source: str, started: float,
                  timeout: float) -> tuple[float, str]:
    def moved() -> str | None:
        now = serving_node(cluster, workload)
        return now if now and now != source else None

    target = wait_for(f"the service VIP to answer from a node other than {source}", moved,
                      timeout, interval=PROBE_INTERVAL)
    return time.monotonic() - started, target


def kill_failover(cluster: Cluster, workload: str, timeout: float,
                  on_kill: Callable[[str, float], None] | None = None) -> Failover:
    """Kill the serving node hard; the survivors must fence it before taking over.

    `on_kill(victim, started)` runs right after the kill, before the fail-over is timed
    (the monitoring starts watching the survivors there).
    """
    source = wait_for("a serving node", lambda: serving_node(cluster, workload), timeout)
    write_row(cluster, workload, 1, f"written via {source} before the kill")
    victim = cluster.node(source)
    started = time.monotonic()
    cluster.power_off(victim)
    if on_kill is not None:
        on_kill(source, started)
    seconds, target = _measure_move(cluster, workload, source, started, timeout)
    fenced = [e for e in cluster.controller.events
              if e.node == source and e.action == "off" and e.result == "ok"]
    if not fenced:
        raise ScenarioError(f"the service moved from {source} without {source} being fenced")
    back = read_row(cluster, workload, 1)
    if workload == "mariadb" and back != f"written via {source} before the kill":
        raise ScenarioError(f"the row written before the kill reads back as {back!r}")
    rejoin = None
    if any(e.node == source and e.action == "on" for e in cluster.controller.events):
        wait_for(f"{source} to rejoin after its reboot",
                 lambda: all_online(cluster, {source}), timeout, interval=0.25)
        rejoin = time.monotonic() - started
    settle(cluster, timeout)
    return Failover(seconds, source, target, rejoin)


def standby_failover(cluster: Cluster, shell: str, workload: str, timeout: float) -> Failover:
    """Move the service cleanly by putting its node in standby."""
    source = wait_for("a serving node", lambda: serving_node(cluster, workload), timeout)
    write_row(cluster, workload, 2, f"written via {source} before standby")
    others = [n for n in cluster.live_nodes() if n.name != source]
    if not others:
        raise ScenarioError("no other live node to move the service to")
    started = time.monotonic()
    set_standby(others[0], shell, source, True)
    seconds, target = _measure_move(cluster, workload, source, started, timeout)
    back = read_row(cluster, workload, 2)
    if workload == "mariadb" and back != f"written via {source} before standby":
        raise ScenarioError(f"the row written before standby reads back as {back!r}")
    set_standby(others[0], shell, source, False)
    settle(cluster, timeout)
    return Failover(seconds, source, target)


def vrrp_failover(cluster: Cluster, timeout: float) -> Failover:
    """keepalived on two nodes for a second VIP; stop the master, time the backup's answer."""
    pair = cluster.live_nodes()[:2]
    if len(pair) < 2:
        raise ScenarioError("VRRP needs two live nodes")
    master, backup = pair
    vip = cluster.plan.vrrp_vip
    for node, priority in ((master, 150), (backup, 100)):
        node.root_path("/etc/keepalived/keepalived.conf").write_text(
            config.keepalived_conf(node.name, priority, vip))
        # keepalived.service: ExecStart=/usr/sbin/keepalived --dont-fork $DAEMON_ARGS;
        # its parent is the node's init once this shell is gone.
        node.sh("keepalived --dont-fork --log-console -f /etc/keepalived/keepalived.conf "
                ">>/var/log/clusterstack/keepalived.out 2>&1 &")
    wait_for(f"{master.name} to hold the VRRP VIP",
             lambda: vip_owner_by_arp(cluster, vip) == master.name, timeout,
             interval=PROBE_INTERVAL)
    started = time.monotonic()
    master.sh("kill -TERM $(cat /run/keepalived.pid)")
    wait_for(f"{backup.name} to answer for the VRRP VIP",
             lambda: vip_owner_by_arp(cluster, vip) == backup.name, timeout,
             interval=PROBE_INTERVAL)
    return Failover(time.monotonic() - started, master.name, backup.name)


def fencing_history(node: Node) -> str:
    """Pacemaker's own record of fencing, for the logs."""
    try:
        return node.run(["stonith_admin", "--history", "*"], check=False, timeout=20).stdout
    except (CommandError, NodeError):
        return ""
