"""A running cluster: the switch, the fence controller, N nodes and a client, and their teardown."""

from __future__ import annotations

import logging
import os
import shutil
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from builder.base.command import Background, CommandError, Runner

from . import config
from .fencing import FenceController, FenceTarget, agent_path
from .memory import MemorySampler, pids_in_namespaces
from .netns import Switch
from .node import Node, NodeError

log = logging.getLogger("clusterstack.cluster")

CLIENT = "client"


@dataclass
class Membership:
    """What `crm_mon` on one node reports."""

    online: set[str]
    standby: set[str]
    dc: str | None
    resources: dict[str, str]  # resource id -> node it is active on


def parse_crm_mon(xml_text: str) -> Membership:
    """Read `crm_mon -1 --output-as=xml` (pacemaker 2.1+)."""
    root = ET.fromstring(xml_text)
    # Only the <nodes> section: resources have <node> children too.
    nodes = root.findall("nodes/node")
    online = {n.get("name", "") for n in nodes if n.get("online") == "true"}
    standby = {n.get("name", "") for n in nodes if n.get("standby") == "true"}
    dc_el = root.find("summary/current_dc")
    dc = dc_el.get("name") if dc_el is not None and dc_el.get("present") == "true" else None
    resources: dict[str, str] = {}
    res_el = root.find("resources")
    if res_el is not None:
        for res in res_el.iter("resource"):
            if res.get("active") == "true" and res.get("role") == "Started":
                node = res.find("node")
                if node is not None:
                    resources[res.get("id", "")] = node.get("name", "")
    return Membership(online, standby, dc, resources)


class Cluster:
    def __init__(self, lower: Path, run_dir: Path, nodes: int, runner: Runner,
                 token_ms: int = 1000, plan: config.AddressPlan | None = None,
                 qdevice_host: str | None = None) -> None:
        self.lower = lower
        self.qdevice_host = qdevice_host  # a corosync-qnetd as tie-breaker (config.py)
        self.run_dir = run_dir
        self.runner = runner
        self.token_ms = token_ms
        self.plan = plan or config.AddressPlan()
        self.start_time = time.monotonic()
        self.shared = run_dir / "shared"
        self.fence_dir = run_dir / "fence"
        self.switch = Switch(runner, self.plan, run_dir / "switch.log")
        self.controller = FenceController(self.fence_dir, self.start_time)
        self.nodes = [self._make_node(config.node_name(i), self.plan.node(i))
                      for i in range(nodes)]
        self.client = self._make_node(CLIENT, self.plan.client)
        self.namespaces: set[str] = set()  # every namespace made, for the leak check
        self.memory = MemorySampler(self._pid_namespaces, str(run_dir.resolve()))
        self.macs: dict[str, str] = {}
        self._power = ThreadPoolExecutor(max_workers=1, thread_name_prefix="power")

    def _make_node(self, name: str, address: str) -> Node:
        return Node(name, address, self.lower, self.run_dir / "nodes" / name, self.shared,
                    self.fence_dir, self.runner)

    def _pid_namespaces(self) -> set[str]:
        return {ns for ns in self.namespaces if ns.startswith("pid:")}

    def _remember_namespaces(self, pid: int, kinds: tuple[str, ...]) -> None:
        for kind in kinds:
            self.namespaces.add(os.readlink(f"/proc/{pid}/ns/{kind}"))

    def node(self, name: str) -> Node:
        for n in [*self.nodes, self.client]:
            if n.name == name:
                return n
        raise KeyError(name)

    def live_nodes(self) -> list[Node]:
        return [n for n in self.nodes if n.alive()]

    # --- start -------------------------------------------------------------------------

    def prepare(self) -> None:
        self.shared.mkdir(parents=True, exist_ok=True)
        authkey = os.urandom(256)  # what corosync-keygen writes; the same on every node
        members = [(n.name, n.address) for n in self.nodes]
        passwd = _ids(self.lower / "etc/passwd")
        groups = _ids(self.lower / "etc/group")
        hacluster = (passwd["hacluster"], groups["haclient"])
        for node in [*self.nodes, self.client]:
            node.prepare()
            node.write("/etc/hosts", config.hosts_file([*members, (CLIENT, self.plan.client)]))
        for node in self.nodes:
            node.write("/etc/corosync/corosync.conf",
                       config.corosync_conf(members, self.token_ms, self.qdevice_host))
            node.write("/etc/corosync/authkey", authkey, 0o400)
            node.write("/etc/default/pacemaker", config.pacemaker_defaults())
            node.write("/usr/sbin/fence_nsnode", agent_path().read_bytes(), 0o755)
            node.write("/var/lib/pacemaker/cib/cib.xml", config.seed_cib(), 0o600, hacluster)

    def boot(self) -> None:
        """Start the switch, the fence controller and every node, and wire them up."""
        self.memory.start()
        self.switch.start()
        self._remember_namespaces(self.switch.pid, ("net",))
        self.controller.start()
        for node in [*self.nodes, self.client]:
            self._boot_node(node)
        for node in self.nodes:
            self.controller.add(FenceTarget(
                node.name, node.alive,
                lambda n=node: self._on_power_thread(self.power_off, n),
                lambda n=node: self._on_power_thread(self.power_on, n)))

    def _boot_node(self, node: Node) -> None:
        node.boot()
        if node.init_pid is None:
            raise NodeError(f"{node.name}: booted, but its init has no pid")
        self._remember_namespaces(node.init_pid, ("pid", "net", "mnt", "uts", "ipc"))
        self.switch.plug(node.port, node.init_pid, node.address)
        self.macs[node.name] = node.root_path("/sys/class/net/eth0/address").read_text().strip()

    def _on_power_thread(self, action: Callable[[Node], None], node: Node) -> None:
        # A node is tied to the thread that started it (PR_SET_PDEATHSIG is per thread),
        # and the fence controller answers each request on a short-lived thread: power
        # actions run on one worker that lives as long as the cluster.
        self._power.submit(action, node).result(timeout=120)

    def start_daemons(self) -> float:
        """Let every node start corosync and pacemaker; returns the monotonic start time."""
        self.client.go("plain")
        started = time.monotonic()
        for node in self.nodes:
            node.go("cluster")
        return started

    def power_off(self, node: Node) -> None:
        """Hard power-off: every process of the node dies, and its cable is pulled."""
        node.kill()
        self.switch.unplug(node.port)

    def power_on(self, node: Node) -> None:
        """Boot a powered-off node again from its own disk (its overlay's upper layer)."""
        if node.alive():
            return
        self.switch.unplug(node.port)  # should a kill have left the cable in
        self._boot_node(node)
        node.go("cluster")

    # --- observe -----------------------------------------------------------------------

    def membership(self, node: Node) -> Membership | None:
        try:
            result = node.run(["crm_mon", "-1", "--output-as=xml"], check=False, timeout=20)
        except (CommandError, RuntimeError):
            return None
        if result.returncode != 0:
            return None
        try:
            return parse_crm_mon(result.stdout)
        except ET.ParseError:
            return None

    def owner_by_mac(self, mac: str) -> str | None:
        for name, known in self.macs.items():
            if known == mac:
                return name
        return None

    # --- teardown ----------------------------------------------------------------------

    def _background(self) -> list[Background]:
        procs = [n.proc for n in [*self.nodes, self.client] if n.proc is not None]
        return procs + ([self.switch.holder] if self.switch.holder is not None else [])

    def collect_logs(self, dest: Path) -> None:
        for node in [*self.nodes, self.client]:
            try:
                node.collect_logs(dest / node.name)
            except OSError as exc:
                log.warning("could not collect the logs of %s: %s", node.name, exc)
        for name in ("switch.log",):
            if (self.run_dir / name).exists():
                shutil.copy(self.run_dir / name, dest / name)

    def teardown(self) -> list[str]:
        """Stop everything; return what was left behind (empty when clean)."""
        try:
            self.controller.stop()  # no fencing request may boot a node from here on
            self._power.shutdown(wait=True)
        finally:
            for node in [*self.nodes, self.client]:
                node.kill()
            self.switch.stop()
            self.memory.stop()
        return self.leftovers()

    def leftovers(self) -> list[str]:
        run_dir = str(self.run_dir.resolve())
        left = [f"background process {p.pid} ({p.argv[0]}) still running"
                for p in self._background() if p.running()]
        for kind in ("pid", "net", "mnt", "uts", "ipc"):
            wanted = {ns for ns in self.namespaces if ns.startswith(kind + ":")}
            deadline = time.monotonic() + 10  # a dying PID namespace takes a moment to reap
            pids = pids_in_namespaces(kind, wanted, run_dir)
            while pids and time.monotonic() < deadline:
                time.sleep(0.2)
                pids = pids_in_namespaces(kind, wanted, run_dir)
            left += [f"process {pid} still in a {kind} namespace of the harness" for pid in pids]
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            mount_point = line.split()[4]
            if mount_point.startswith(run_dir):
                left.append(f"mount left at {mount_point}")
        return left


def _ids(path: Path) -> dict[str, int]:
    """name -> numeric id from a passwd or group file of the root."""
    ids = {}
    for line in path.read_text().splitlines():
        fields = line.split(":")
        if len(fields) > 2:
            ids[fields[0]] = int(fields[2])
    return ids
