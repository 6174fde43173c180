"""The systemd tier: nodes that boot systemd as PID 1, as an administrator runs them.

Each node is systemd-nspawn booting the packages' own units from an overlay of the
shared root, in a network namespace of the harness plugged into its switch. No
daemon is started except by its unit, and the harness writes no corosync.conf and
no authkey: the cluster is made by the bootstrap tool (`pcs cluster setup`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import stat
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from builder.base.command import Background, CommandError, Runner

from . import bootstrap, config, howto, scenarios
from .cluster import Cluster
from .fencing import FenceTarget, agent_path
from .memory import CgroupMemorySampler, pids_in_cgroup, pss_kib
from .netns import wait_own_namespace
from .node import NODE_PATH, Node, NodeError, script_path
from .options import ClusterOptions, ClusterReport, UnitFailure

log = logging.getLogger("clusterstack.cluster")

CGROUP_HIERARCHIES = ("systemd", "unified")
CGROUP_ROOT = Path("/sys/fs/cgroup")
BOOT_TIMEOUT = 180.0
# From the fence device's "on" until the node starts to boot (_power_on_after_firmware).
FIRMWARE_S = 5.0
HOWTO_REPO_PORT = 8080  # on the switch's bridge address, for the how-to's REPO_URL
STATUS_LINES = 15
# steps.Steps: runs a named step, None once one has failed.
Step = Callable[[str, Callable[[], Any]], Any]


class SystemdNode(Node):
    """A node whose PID 1 is systemd, started by systemd-nspawn."""

    def __init__(self, name: str, address: str, lower: Path, base: Path, shared: Path,
                 fence_dir: Path, runner: Runner, cgroup: str) -> None:
        super().__init__(name, address, lower, base, shared, fence_dir, runner)
        self.cgroup_base = cgroup  # relative to each hierarchy's root
        self.boots = 0
        self.netns: Background | None = None
        self.booted_at: float | None = None

    def prepare(self) -> None:
        for sub in ("upper", "work", "merged"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        self.write("/etc/hostname", self.name + "\n")

    def make_parents(self, path: str) -> None:
        """The parents of `path` in the upper layer, as the lower layer has them."""
        self._make_parents(Path(path))

    def remove(self, path: str) -> None:
        """Delete a file of the lower layer from this node's view: an overlay whiteout."""
        self._make_parents(Path(path))
        target = self.upper / path.lstrip("/")
        if target.exists() or target.is_symlink():
            target.unlink()
        os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0))

    def start_netns(self) -> int:
        """A fresh network namespace for this boot; returns the pid that holds it."""
        self.netns = Background(["unshare", "--net", "--", "sleep", "infinity"],
                                self.base / "netns.log")
        wait_own_namespace(self.netns)
        return self.netns.pid

    def boot(self) -> None:
        """Start systemd-nspawn; `init_pid` is set once the container's systemd runs."""
        if self.netns is None or not self.netns.running():
            raise NodeError(f"{self.name}: no network namespace to boot into")
        # A cgroup of its own per boot: a fenced node rebooted into the cgroup its killed
        # predecessor ran in saw its first units die of SIGKILL.
        self.boots += 1
        argv = [
            "unshare", "--mount", "--propagation", "private", "--fork", "--kill-child", "--",
            "sh", script_path("nspawn-boot"), self.name, self.lower, self.upper,
            self.base / "work", self.base / "merged", self.shared, self.fence_dir,
            f"/proc/{self.netns.pid}/ns/net", self.cgroup,
        ]
        self.booted_at = time.monotonic()
        self.proc = Background(argv, self.base / "boot.log")
        self.init_pid = self._wait_for_systemd()

    def _wait_for_systemd(self, timeout: float = 30) -> int:
        """The host pid of the container's PID 1: a descendant whose pid there is 1."""
        if self.proc is None:
            raise NodeError(f"{self.name}: systemd-nspawn was not started")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.proc.running():
                raise NodeError(f"{self.name}: systemd-nspawn exited, see "
                                f"{self.base / 'boot.log'}")
            for pid in _descendants(self.proc.pid):
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                    nspid = next(ln.split()[1:] for ln in status.splitlines()
                                 if ln.startswith("NSpid:"))
                    # nspawn pivot_roots: the container's root reads "/" from here.
                    if (len(nspid) > 1 and nspid[-1] == "1"
                            and Path(f"/proc/{pid}/comm").read_text().strip() == "systemd"):
                        return pid
                except (OSError, StopIteration):
                    continue
            time.sleep(0.05)
        raise NodeError(f"{self.name}: systemd did not start in {timeout:.0f} s")

    def go(self, mode: str) -> None:
        del mode  # systemd starts what is enabled; nothing to release

    def nsenter(self) -> list[str]:
        return ["nsenter", "-t", str(self.init_pid), "-a", "--", "env", "-i",
                f"PATH={NODE_PATH}", "HOME=/root", "LANG=C.UTF-8", "SYSTEMD_PAGER=",
                "SYSTEMD_COLORS=0"]

    def wait_running(self, timeout: float = BOOT_TIMEOUT) -> str:
        """`systemctl is-system-running --wait`: "running", or "degraded" when a unit failed."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.run(["systemctl", "is-system-running", "--wait"], check=False,
                              timeout=timeout)
            state = result.stdout.strip()
            # Right after the start systemd has no private socket yet: "offline" or nothing.
            if state not in ("", "offline", "initializing", "starting") \
                    or time.monotonic() > deadline:
                return state or f"exit {result.returncode}: {result.stderr_tail.strip()}"
            time.sleep(0.2)

    def unit_failures(self) -> list[UnitFailure]:
        """Every failed unit, with `systemctl status` and its journal lines."""
        listed = self.run(["systemctl", "--failed", "--plain", "--no-legend"], check=False)
        failures = []
        for unit in bootstrap.parse_failed_units(listed.stdout):
            status = self.run(["systemctl", "status", "--no-pager", "--lines=0", unit],
                              check=False).stdout.splitlines()
            journal = self.run(["journalctl", "--no-pager", "-o", "short", "-b", "-u", unit,
                                "-n", str(STATUS_LINES)], check=False).stdout.splitlines()
            failures.append(UnitFailure(self.name, unit, [*status, *journal]))
        return failures

    @property
    def cgroup(self) -> str:
        return f"{self.cgroup_base}/boot{self.boots}"

    @property
    def cgroup_dir(self) -> Path:
        return CGROUP_ROOT / "unified" / self.cgroup

    def kill(self) -> None:
        """Power off: every process of the node's cgroup, nspawn's and the container's,
        gets SIGKILL at once (cgroup.kill); its network namespace goes with its holder."""
        kill_file = self.cgroup_dir / "cgroup.kill"
        if kill_file.exists():
            with contextlib.suppress(OSError):
                kill_file.write_text("1\n")
            deadline = time.monotonic() + 10
            while pids_in_cgroup(self.cgroup_dir) and time.monotonic() < deadline:
                time.sleep(0.05)
        super().kill()
        if self.netns is not None:
            self.netns.stop(signal.SIGKILL, timeout=10)

    def pss_kib(self) -> int:
        return sum(pss_kib(pid) for pid in pids_in_cgroup(self.cgroup_dir))

    def collect_logs(self, dest: Path) -> None:
        super().collect_logs(dest)
        journal = self.upper / "var/log/journal"
        if journal.is_dir():
            # Read with `journalctl --directory=...`; kept also for a killed node.
            shutil.copytree(journal, dest / "journal", dirs_exist_ok=True)
        for name in ("netns.log",):
            if (self.base / name).exists():
                (dest / name).write_bytes((self.base / name).read_bytes())


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        try:
            kids = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        out += [int(k) for k in kids]
        todo += [int(k) for k in kids]
    return out


class SystemdCluster(Cluster):
    """The cluster of the systemd tier; the client stays a plain script-init node."""

    def __init__(self, lower: Path, run_dir: Path, nodes: int, runner: Runner,
                 token_ms: int = 1000) -> None:
        super().__init__(lower, run_dir, nodes, runner, token_ms)
        self.cgroup = f"clusterstack/{run_dir.name}"
        self.nodes = [SystemdNode(n.name, n.address, lower, n.base, self.shared,
                                  self.fence_dir, runner, f"{self.cgroup}/{n.name}")
                      for n in self.nodes]
        self.memory = CgroupMemorySampler(
            self._pid_namespaces, str(run_dir.resolve()),
            lambda: [CGROUP_ROOT / "unified" / self.cgroup])
        self.gaps: list[bootstrap.Gap] = []
        self.boot_s: dict[str, float] = {}
        # The bootstrap tool's commands, each with its wall time, in the order run.
        self.bootstrap_s: dict[str, float] = {}
        self.failures: list[UnitFailure] = []

    def prepare(self) -> None:
        self.shared.mkdir(parents=True, exist_ok=True)
        members = [(n.name, n.address) for n in self.nodes]
        hosts = config.hosts_file([*members, ("client", self.plan.client)])
        self.client.prepare()
        self.client.write("/etc/hosts", hosts)
        self.gaps = bootstrap.archive_gaps(self.lower)
        passwd, groups_of = _user_ids(self.lower)
        for node in self.nodes:
            node.prepare()
            node.write("/etc/hosts", hosts)
            # The harness's own fence agent, as a vendor's agent package would install it.
            node.write("/usr/sbin/fence_nsnode", _agent_bytes(), 0o755)
            # What an installer gives every machine: its own machine-id and ssh host keys
            # (the root's, made once by mmdebstrap, would be shared by all nodes).
            node.write("/etc/machine-id", uuid.uuid4().hex + "\n", 0o444)
            if shutil.which("ssh-keygen"):
                node.make_parents("/etc/ssh/ssh_host_ed25519_key")
                self.runner.run(["ssh-keygen", "-A", "-f", node.upper])
            for gap in self.gaps:
                for path in gap.remove:
                    node.remove(path)
                for path, text in gap.write:
                    node.write(path, text)
                for path, target in gap.links:
                    node.make_parents(path)
                    (node.upper / path).symlink_to(target)
                for path, user, mode in gap.dirs:
                    node.make_parents(path + "/x")
                    target = node.upper / path
                    target.mkdir(exist_ok=True)
                    os.chown(target, passwd[user], groups_of[user])
                    target.chmod(mode)

    def boot(self) -> None:
        """Start the switch, the fence controller and every node; wait for multi-user."""
        self.memory.start()
        self.switch.start()
        self._remember_namespaces(self.switch.pid, ("net",))
        self.controller.start()
        self._boot_node(self.client)
        self.client.go("plain")
        for node in self.nodes:
            self._boot_systemd(node)
        states = self._wait_all_running(self.nodes)
        for node in self.nodes:
            self.controller.add(FenceTarget(
                node.name, node.alive,
                lambda n=node: self._on_power_thread(self.power_off, n),
                lambda n=node: self._power_on_after_firmware(n)))
        degraded = {name: state for name, state in states.items() if state != "running"}
        if degraded:
            for node in self.nodes:
                if node.name in degraded and node.alive():
                    self.failures += node.unit_failures()
            units = ", ".join(f"{f.node}: {f.unit}" for f in self.failures) or "none listed"
            raise NodeError(f"nodes not running after boot ({degraded}); failed units: {units}")

    def _power_on_after_firmware(self, node: SystemdNode) -> None:
        """The fence device's "on": the power is on at once, the system boots a moment
        later, as a machine's firmware and boot loader make it.

        A container booted at once is up in 2 s, before Pacemaker has told the cluster
        that its reboot is done: the node's new controller then hears of its own fencing
        and stays down ("We were allegedly just fenced", exit status 100), which no
        machine that takes a few seconds to boot would see.
        """
        def boot_later() -> None:
            time.sleep(FIRMWARE_S)
            self.power_on(node)

        future = self._power.submit(boot_later)
        # Nobody waits for it: a boot that fails is logged, and the rejoin wait names it.
        future.add_done_callback(lambda f: f.exception() and log.error(
            "%s: boot after fencing failed: %s", node.name, f.exception()))

    def _boot_systemd(self, node: SystemdNode) -> None:
        holder = node.start_netns()
        self.namespaces.add(os.readlink(f"/proc/{holder}/ns/net"))
        self.switch.plug(node.port, holder, node.address)
        self.macs[node.name] = _read_mac(self, holder)
        node.boot()
        if node.init_pid is None:
            raise NodeError(f"{node.name}: booted, but its init has no pid")
        self._remember_namespaces(node.init_pid, ("pid", "mnt", "uts", "ipc"))

    def _wait_all_running(self, nodes: list[SystemdNode]) -> dict[str, str]:
        """Wait for every node in parallel, each timed from its own start."""
        states: dict[str, str] = {}

        def wait(node: SystemdNode) -> None:
            try:
                states[node.name] = node.wait_running()
            except (CommandError, NodeError) as exc:
                states[node.name] = f"error: {exc}"
            if node.booted_at is not None:
                self.boot_s[node.name] = round(time.monotonic() - node.booted_at, 2)

        threads = [threading.Thread(target=wait, args=(n,)) for n in nodes]
        for t in threads:
            t.start()
        for t in threads:
            t.join(BOOT_TIMEOUT + 30)
        return states

    def start_daemons(self) -> float:
        return time.monotonic()  # the units start them; the bootstrap tool starts the cluster

    def power_on(self, node: Node) -> None:
        """Boot a powered-off node again from its own disk; its enabled units start."""
        if node.alive():
            return
        self.switch.unplug(node.port)
        if not isinstance(node, SystemdNode):
            raise TypeError(f"{node.name}: not a node of the systemd tier")
        self._boot_systemd(node)

    def node_pss_mib(self) -> dict[str, float]:
        return {n.name: round(n.pss_kib() / 1024, 1) for n in self.nodes
                if isinstance(n, SystemdNode) and n.alive()}

    def _background(self) -> list[Background]:
        procs = super()._background()
        return procs + [n.netns for n in self.nodes
                        if isinstance(n, SystemdNode) and n.netns is not None]

    def teardown(self) -> list[str]:
        left = super().teardown()
        return left + self._remove_cgroups()

    def _remove_cgroups(self) -> list[str]:
        """rmdir this run's cgroups, deepest first; one that will not go is a leftover."""
        left = []
        for hierarchy in CGROUP_HIERARCHIES:
            top = CGROUP_ROOT / hierarchy / self.cgroup
            if not top.exists():
                continue
            dirs = sorted((p for p in top.rglob("*") if p.is_dir()),
                          key=lambda p: len(p.parts), reverse=True)
            for path in [*dirs, top]:
                for _ in range(20):  # a dying container's last processes take a moment
                    try:
                        path.rmdir()
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        time.sleep(0.25)
                else:
                    pids = pids_in_cgroup(path)
                    left.append(f"cgroup left at {path}"
                                + (f" with processes {pids}" if pids else ""))
            with contextlib.suppress(OSError):
                (CGROUP_ROOT / hierarchy / "clusterstack").rmdir()  # only when empty
        return left


def _user_ids(root: Path) -> tuple[dict[str, int], dict[str, int]]:
    """user -> uid and user -> primary gid, from the root's /etc/passwd."""
    uids, gids = {}, {}
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if len(fields) > 3:
            uids[fields[0]], gids[fields[0]] = int(fields[2]), int(fields[3])
    return uids, gids


def _agent_bytes() -> bytes:
    return agent_path().read_bytes()


def _read_mac(cluster: Cluster, holder: int) -> str:
    # Not /sys/class/net: nsenter --net keeps the host's /sys, which shows the host's eth0.
    result = cluster.runner.run(["nsenter", f"--net=/proc/{holder}/ns/net", "--",
                                 "ip", "-o", "link", "show", "eth0"])
    fields = result.stdout.split()
    return fields[fields.index("link/ether") + 1]


# --- the scenario ---------------------------------------------------------------------


def pcs_bootstrap(cluster: SystemdCluster, token_ms: int, timeout: float) -> float:
    """The cluster made with pcs, as Debian's README.Debian says; seconds from
    `pcs cluster setup` until every node sees every node online with a DC."""
    members = [(n.name, n.address) for n in cluster.nodes]
    for node in cluster.nodes:
        # What an administrator does once per node before `pcs host auth`.
        node.run(["chpasswd"], input=f"hacluster:{bootstrap.HACLUSTER_PASSWORD}\n")
    first = cluster.nodes[0]
    timed(cluster, f"pcs host auth ({first.name})",
          lambda: first.run(bootstrap.pcs_auth_argv(members), timeout=120))
    started = time.monotonic()
    timed(cluster, f"pcs cluster setup ({first.name})",
          lambda: first.run(bootstrap.pcs_setup_argv(config.CLUSTER_NAME, members, token_ms),
                            timeout=timeout + 60))
    scenarios.formation(cluster, started, timeout)
    return time.monotonic() - started


def timed(cluster: SystemdCluster, label: str, command: Callable[[], object]) -> None:
    """Run one bootstrap command; its wall time is kept under `label`, also when it fails
    (the report then shows how long it took to fail)."""
    started = time.monotonic()
    try:
        command()
    finally:
        cluster.bootstrap_s[label] = round(time.monotonic() - started, 2)


def ssh_between_nodes(cluster: SystemdCluster) -> None:
    """root's ssh keys on every node, each authorized and known on every other one, as
    an administrator sets them up (ssh-keygen, ssh-copy-id, ssh-keyscan) for crmsh."""
    keys, hosts = [], []
    for node in cluster.nodes:
        node.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                  "/root/.ssh/id_ed25519"])
        keys.append(node.run(["cat", "/root/.ssh/id_ed25519.pub"]).stdout.strip())
    for node in cluster.nodes:
        scan = node.run(["ssh-keyscan", "-T", "5", *[n.name for n in cluster.nodes]],
                        check=False, timeout=60)
        hosts.append(scan.stdout)
    for node, known in zip(cluster.nodes, hosts, strict=True):
        node.run(["sh", "-c", "umask 077; cat >> /root/.ssh/authorized_keys"],
                 input="\n".join(keys) + "\n")
        node.run(["sh", "-c", "umask 077; cat >> /root/.ssh/known_hosts"], input=known)


def crmsh_bootstrap(cluster: SystemdCluster, timeout: float) -> float:
    """The cluster made with crmsh: `crm cluster init` on the first node, `crm cluster
    join -c` on the others; seconds from init until every node sees every node online."""
    ssh_between_nodes(cluster)
    first, *others = cluster.nodes
    started = time.monotonic()
    timed(cluster, f"crm cluster init ({first.name})",
          lambda: first.run(bootstrap.crm_init_argv(config.CLUSTER_NAME), timeout=timeout + 60))
    for node in others:
        timed(cluster, f"crm cluster join ({node.name})",
              lambda node=node: node.run(bootstrap.crm_join_argv(first.name),
                                         timeout=timeout + 60))
    scenarios.formation(cluster, started, timeout)
    return time.monotonic() - started


def check_units(cluster: SystemdCluster) -> None:
    """No unit may have failed on a live node; a failed one is named with its status."""
    found = [f for node in cluster.live_nodes() if isinstance(node, SystemdNode)
             for f in node.unit_failures()]
    cluster.failures += found
    if found:
        raise scenarios.ScenarioError("failed units: " + ", ".join(
            f"{f.node}: {f.unit}" for f in found))


def disable_unit_everywhere(cluster: SystemdCluster, unit: str) -> None:
    """`systemctl disable --now UNIT`: Pacemaker, not systemd, runs the service from now on."""
    for node in cluster.live_nodes():
        node.run(["systemctl", "disable", "--now", unit], timeout=120)


def prepare_for_howto(cluster: SystemdCluster) -> None:
    """A node as the page's reader has it: apt knows only the sources the page adds (the
    root's build-time ones, the host's loopback and the mirror, mean nothing in a node),
    and the shared disk has the folder the page mounts."""
    for node in cluster.nodes:
        for rel in ("etc/apt/sources.list", "etc/apt/sources.list.d"):
            if (cluster.lower / rel).is_file():
                node.remove("/" + rel)
            elif (cluster.lower / rel).is_dir():
                for entry in (cluster.lower / rel).iterdir():
                    node.remove(f"/{rel}/{entry.name}")
    (cluster.shared / "db").mkdir(parents=True, exist_ok=True)


def run_howto(cluster: SystemdCluster, page: howto.Page, repo: Path, step: Step,
              timeout: float, report: ClusterReport) -> None:
    """Every block of the page in order, each its own step, with the harness's values;
    the repository is served on the nodes' network while the page runs. Each block's
    wall time goes to the report; the one that runs `pcs cluster setup` is the
    formation time."""
    server = howto.RepositoryServer(repo, cluster.switch.pid, cluster.plan.bridge,
                                    HOWTO_REPO_PORT, cluster.run_dir / "howto-repo.log")
    try:
        step("repository on the nodes' network", server.wait)
        values = howto.harness_values(
            cluster.nodes, cluster.plan.db_vip, server.url, config.FENCE_SOCKET,
            config.SHARED_MOUNT, config.CLUSTER_NAME, bootstrap.HACLUSTER_PASSWORD,
            (config.DB_NAME, config.DB_USER, config.DB_PASSWORD))
        step("the page's settings, the harness's values",
             lambda: howto.check_values(page, values))

        def locate(resource: str) -> str | None:
            return howto.locate_resource(cluster.nodes[0], resource)

        for block in page.blocks:
            def run(b: howto.Block = block) -> float:
                started = time.monotonic()
                for node in howto.nodes_for(b, cluster.live_nodes(), locate):
                    howto.run_block(b, node, values, timeout=max(timeout, 600))
                return time.monotonic() - started
            seconds = step(block.title, run)
            if seconds is None:
                break
            report.howto_blocks[block.title] = round(seconds, 1)
            if "pcs cluster setup" in block.script:
                report.formation_s = round(seconds, 2)
    finally:
        server.stop()
    # The client's own table, through the VIP as the page's database user: the rows the
    # fail-overs write and read back.
    step("client table through the VIP", lambda: _client_table(cluster))


def _client_table(cluster: SystemdCluster) -> None:
    if scenarios.sql(cluster, "CREATE TABLE IF NOT EXISTS items "
                     "(id INT PRIMARY KEY, note VARCHAR(64))", timeout=30) is None:
        raise scenarios.ScenarioError("the client cannot reach the database through the VIP "
                                      "as the page's user")


def reboot_rejoin(cluster: SystemdCluster, workload: str, timeout: float) -> scenarios.Failover:
    """`systemctl reboot` of a node that does not serve: it must shut down cleanly (no
    fencing), boot, and rejoin, and the service must not restart meanwhile."""
    source = scenarios.wait_for("a serving node",
                                lambda: scenarios.serving_node(cluster, workload), timeout)
    scenarios.write_row(cluster, workload, 3, f"written via {source} before the reboot")
    before = _db_uptime(cluster) if workload == "mariadb" else None
    others = [n for n in cluster.live_nodes() if n.name != source and isinstance(n, SystemdNode)]
    if not others:
        raise scenarios.ScenarioError("no node but the serving one to reboot")
    node = others[-1]
    fenced_before = len(cluster.controller.events)
    started = time.monotonic()
    # The shell that asked may die with the container: its exit status says nothing.
    node.run(["systemctl", "reboot"], check=False, timeout=60)
    scenarios.wait_for(f"{node.name} to finish its shutdown",
                       lambda: True if not node.alive() else None, timeout)
    # systemd-nspawn exits on a reboot (status 133), as a machine resets: start it again.
    node.kill()
    cluster.power_on(node)
    state = node.wait_running()
    if state != "running":
        cluster.failures += node.unit_failures()
        raise scenarios.ScenarioError(f"{node.name} rebooted {state}")
    scenarios.wait_for(f"{node.name} online after its reboot",
                       lambda: scenarios.all_online(cluster, {node.name}), timeout,
                       interval=0.25)
    seconds = time.monotonic() - started
    fenced = cluster.controller.events[fenced_before:]
    if fenced:
        raise scenarios.ScenarioError(f"a clean reboot of {node.name} was fenced: {fenced}")
    now = scenarios.serving_node(cluster, workload)
    after = _db_uptime(cluster)
    # Uptime counts from mariadbd's start: smaller after means the database restarted.
    bounced = workload == "mariadb" and (after is None or before is None or after < before)
    if now != source or bounced:
        raise scenarios.ScenarioError(
            f"the service bounced while {node.name} rebooted: served by {source}, now by "
            f"{now}; server uptime {before} s before, {after} s after")
    back = scenarios.read_row(cluster, workload, 3)
    if workload == "mariadb" and back != f"written via {source} before the reboot":
        raise scenarios.ScenarioError(f"the row written before the reboot reads back as {back!r}")
    scenarios.settle(cluster, timeout)
    return scenarios.Failover(seconds, node.name, node.name)


def _db_uptime(cluster: SystemdCluster) -> int | None:
    answer = scenarios.sql(cluster, "SHOW GLOBAL STATUS LIKE 'Uptime'")
    fields = (answer or "").split()
    return int(fields[1]) if len(fields) == 2 and fields[1].isdigit() else None


def run_systemd_scenarios(cluster: SystemdCluster, options: ClusterOptions, workload: str,
                          report: ClusterReport, step: Step,
                          page: howto.Page | None = None) -> None:
    """The systemd tier's steps, in order; `step` runs each (steps.Steps).

    With `page` (options.howto, parsed), the page makes the cluster and its service
    instead of the harness's pcs or crmsh bootstrap.
    """
    timeout = options.step_timeout
    report.init = "systemd"
    report.stack_shell = options.shell
    try:
        step("prepare", cluster.prepare)
        report.workarounds = [g.describe() for g in cluster.gaps]
        if page is not None:
            report.howto = str(page.path)
            step("prepare for the how-to", lambda: prepare_for_howto(cluster))
        step("boot", cluster.boot)
    finally:
        report.boot_s = dict(cluster.boot_s)
        report.unit_failures = list(cluster.failures)
    if page is not None and options.howto_repo is not None:
        run_howto(cluster, page, options.howto_repo, step, timeout, report)
        report.nodes_up = len(cluster.live_nodes())
        if report.steps.get("client table through the VIP") == "ok":
            report.pss_node_mib = cluster.node_pss_mib()
    else:
        try:
            if options.shell == "pcs":
                formed = step("bootstrap", lambda: pcs_bootstrap(cluster, options.token_ms,
                                                                 timeout))
            else:
                formed = step("bootstrap", lambda: crmsh_bootstrap(cluster, timeout))
        finally:
            report.bootstrap_s = dict(cluster.bootstrap_s)
        if formed is not None:
            report.formation_s = round(formed, 2)
            report.nodes_up = len(cluster.live_nodes())
        # mariadb-server's unit starts a database of its own at boot; Pacemaker runs it.
        step("mariadb unit off", lambda: disable_unit_everywhere(cluster, "mariadb.service"))
        step("service", lambda: scenarios.start_service(cluster, options.shell, workload,
                                                         timeout, options.fence_action))
    if report.steps.get("service") == "ok":
        report.pss_node_mib = cluster.node_pss_mib()
    kill = step("kill fail-over", lambda: scenarios.kill_failover(cluster, workload, timeout))
    if kill is not None:
        report.kill_failover_s = round(kill.seconds, 2)
        report.rejoin_s = None if kill.rejoin_s is None else round(kill.rejoin_s, 2)
        report.failovers["kill"] = {"from": kill.source, "to": kill.target}
    if options.scenario == "full":
        standby = step("standby fail-over", lambda: scenarios.standby_failover(
            cluster, options.shell, workload, timeout))
        if standby is not None:
            report.standby_failover_s = round(standby.seconds, 2)
            report.failovers["standby"] = {"from": standby.source, "to": standby.target}
        reboot = step("clean reboot", lambda: reboot_rejoin(cluster, workload, timeout))
        if reboot is not None:
            report.reboot_rejoin_s = round(reboot.seconds, 2)
    try:
        step("units", lambda: check_units(cluster))
    finally:
        report.unit_failures = list(cluster.failures)
