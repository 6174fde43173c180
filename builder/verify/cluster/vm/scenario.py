"""What the kernel tier does with two running guests, and the configuration it renders.

DRBD replicates MariaDB's data directory between the guests' own disks;
Pacemaker promotes DRBD on one guest, mounts it and starts MariaDB there. The
primary guest is then crashed (kernel panic: its qemu keeps running, so the
survivor's fencing has something to kill) and the clock runs until MariaDB
answers again through the VIP, from the other guest, with the row written
before the crash.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from builder.base.command import Runner

from .. import config
from ..cluster import Membership, parse_crm_mon
from ..options import FenceEvent
from ..scenarios import ScenarioError, wait_for
from .guest import Guest, GuestError

log = logging.getLogger("clusterstack.cluster")

DRBD_RESOURCE = "r0"
DRBD_DEVICE = "/dev/drbd0"
DRBD_DISK = "/dev/vdb"
DRBD_PORT = 7788
# The Filesystem resource mounts DRBD where the namespace tier mounts its shared disk,
# so the MariaDB primitive (data directory, init file) is the same as there.
MOUNT = config.SHARED_MOUNT
PROBE_INTERVAL = 0.3


def drbd_resource(nodes: Sequence[tuple[str, str]]) -> str:
    """/etc/drbd.d/r0.res in DRBD 8.4 syntax: the guests' kernel module is 8.4.11, which
    drbd-utils 9 drives through drbdadm-84."""
    lines = [f"resource {DRBD_RESOURCE} {{", "\tnet {", "\t\tprotocol C;",
             # A crashed peer sends no RST: DRBD notices it by its pings only, and refuses
             # to promote while it still counts the peer as connected. The defaults
             # (ping-int 10 s, timeout 6 s) would add ~10 s to every fail-over.
             "\t\tping-int 3;", "\t\tping-timeout 5;", "\t\ttimeout 15;",
             "\t\tconnect-int 5;",
             # two_node fencing by Pacemaker: no split-brain auto-recovery is wanted
             "\t\tafter-sb-0pri disconnect;", "\t\tafter-sb-1pri disconnect;",
             "\t\tafter-sb-2pri disconnect;", "\t}"]
    for name, address in nodes:
        lines += [f"\ton {name} {{", f"\t\tdevice\t{DRBD_DEVICE} minor 0;",
                  f"\t\tdisk\t{DRBD_DISK};", f"\t\taddress\t{address}:{DRBD_PORT};",
                  "\t\tmeta-disk\tinternal;", "\t}"]
    lines.append("}")
    return "\n".join(lines) + "\n"


# A monitor in a TCG guest on a loaded 2-core host can take well over the 20 s
# the nspawn tier gives it (seen on 2026-12-02: the vip and drbd monitors timed
# out while the other guest ran mkfs.gfs2, and each timeout restarted the whole
# group, so GFS2 was not mounted on both within the step's 300 s).
GUEST_MONITOR_TIMEOUT_S = 60


def for_emulated_guest(p: config.Primitive) -> config.Primitive:
    """`p` with every monitor timeout raised to GUEST_MONITOR_TIMEOUT_S."""
    def slower(name: str, attrs: tuple[tuple[str, str], ...]
               ) -> tuple[str, tuple[tuple[str, str], ...]]:
        if name != "monitor":
            return name, attrs
        return name, tuple(
            (k, f"{max(int(v.removesuffix('s')), GUEST_MONITOR_TIMEOUT_S)}s")
            if k == "timeout" else (k, v) for k, v in attrs)
    return dataclasses.replace(p, ops=tuple(slower(*op) for op in p.ops))


def crm_config(plan: config.AddressPlan) -> str:
    """crmsh configuration: fencing, a promotable DRBD clone, and Filesystem + VIP + MariaDB
    colocated with and ordered after the Promoted role."""
    group = config.service_group("mariadb", plan)
    drbd = config.Primitive(
        "drbd-r0", "ocf:linbit:drbd", (("drbd_resource", DRBD_RESOURCE),),
        (("monitor", (("interval", "15s"), ("role", "Promoted"), ("timeout", "20s"))),
         ("monitor", (("interval", "20s"), ("role", "Unpromoted"), ("timeout", "20s"))),
         ("start", (("timeout", "240s"), ("interval", "0"))),
         ("promote", (("timeout", "90s"), ("interval", "0"))),
         ("stop", (("timeout", "100s"), ("interval", "0")))))
    fs = config.Primitive(
        "fs", "ocf:heartbeat:Filesystem",
        (("device", DRBD_DEVICE), ("directory", MOUNT), ("fstype", "ext4")),
        (("monitor", (("interval", "20s"), ("timeout", "40s"))),
         ("start", (("timeout", "60s"), ("interval", "0"))),
         ("stop", (("timeout", "60s"), ("interval", "0")))))
    drbd, fence = for_emulated_guest(drbd), for_emulated_guest(config.FENCE_DEVICE)
    members = [for_emulated_guest(p) for p in (fs, *group)]
    return (
        "property cib-bootstrap-options: "
        f"{config._crm_pairs(config.cluster_properties('off'))}\n"
        f"rsc_defaults rsc-options: {config._crm_pairs(config.RESOURCE_DEFAULTS)}\n"
        + config._crm_primitive(fence)
        + config._crm_primitive(drbd)
        + "clone drbd-clone drbd-r0 meta promotable=true promoted-max=1 "
          "promoted-node-max=1 clone-max=2 clone-node-max=1 notify=true "
          # drbd.ocf (drbd-utils 9.22) refuses to start unless it sees the pre-2.1 names
          "master-max=1 master-node-max=1\n"
        + "".join(config._crm_primitive(p) for p in members)
        + f"group {config.SERVICE_GROUP} {' '.join(p.id for p in members)}\n"
        + f"colocation service-with-drbd inf: {config.SERVICE_GROUP} drbd-clone:Promoted\n"
        + f"order drbd-before-service Mandatory: drbd-clone:promote "
          f"{config.SERVICE_GROUP}:start\n"
    )


GFS2_DEVICE = "/dev/vdc"
GFS2_MOUNT = "/srv/gfs2"
GFS2_LOCKSPACE = "gfs0"


def gfs2_crm_config() -> str:
    """DLM and a GFS2 file system on the shared disk, cloned: mounted on both guests."""
    dlm = config.Primitive(
        "dlm", "ocf:pacemaker:controld", (),
        (("monitor", (("interval", "60s"), ("timeout", "60s"))),
         ("start", (("timeout", "90s"), ("interval", "0"))),
         ("stop", (("timeout", "100s"), ("interval", "0")))))
    gfs2 = config.Primitive(
        "gfs2", "ocf:heartbeat:Filesystem",
        (("device", GFS2_DEVICE), ("directory", GFS2_MOUNT), ("fstype", "gfs2"),
         ("options", "noatime")),
        (("monitor", (("interval", "20s"), ("timeout", "40s"))),
         ("start", (("timeout", "120s"), ("interval", "0"))),
         ("stop", (("timeout", "120s"), ("interval", "0")))))
    dlm, gfs2 = for_emulated_guest(dlm), for_emulated_guest(gfs2)
    return (config._crm_primitive(dlm) + config._crm_primitive(gfs2)
            + "group gfs2-group dlm gfs2\n"
            + "clone gfs2-clone gfs2-group meta interleave=true\n")


def mkfs_gfs2_argv(guests: int) -> list[str]:
    # lock table CLUSTER:FS must name corosync's cluster; small journals fit a small disk
    return ["mkfs.gfs2", "-O", "-p", "lock_dlm", "-t",
            f"{config.CLUSTER_NAME}:{GFS2_LOCKSPACE}", "-j", str(guests), "-J", "16",
            GFS2_DEVICE]


# --- steps ------------------------------------------------------------------------------


def configure(guests: list[Guest], plan: config.AddressPlan, authkey: bytes,
              token_ms: int) -> None:
    """The files every guest needs before corosync, pacemaker and DRBD start."""
    pairs = [(g.name, g.spec.address.split("/")[0]) for g in guests]
    for guest in guests:
        guest.put("/etc/corosync/corosync.conf", config.corosync_conf(pairs, token_ms))
        guest.put("/etc/corosync/authkey", authkey, 0o400)
        guest.put("/etc/hosts", config.hosts_file(pairs))
        guest.put("/etc/default/pacemaker", config.pacemaker_defaults())
        guest.put(f"/etc/drbd.d/{DRBD_RESOURCE}.res", drbd_resource(pairs))
        guest.put("/var/lib/pacemaker/cib/cib.xml", config.seed_cib(), 0o600)
        guest.sh("chown -R hacluster:haclient /var/lib/pacemaker/cib "
                 "&& rm -f /var/lib/pacemaker/cib/cib.xml.sig")


def prepare_drbd(guests: list[Guest], timeout: float) -> None:
    """Metadata on both disks, the first connect, the file system and MariaDB's data directory.

    The backing disks are sparse and all zeros on both sides, so they are already
    identical: new-current-uuid --clear-bitmap skips the initial sync. Pacemaker takes
    DRBD over from the state this leaves: down on both.
    """
    for guest in guests:
        guest.sh(f"yes yes | drbdadm create-md --force {DRBD_RESOURCE}", timeout=60)
        guest.run(["drbdadm", "up", DRBD_RESOURCE], timeout=60)
    first = guests[0]
    wait_for("DRBD to connect",
             lambda: all("Connected" in g.run(["drbdadm", "cstate", DRBD_RESOURCE],
                                              check=False, timeout=20).stdout
                         for g in guests), timeout, interval=1)
    first.run(["drbdadm", "--", "--clear-bitmap", "new-current-uuid", DRBD_RESOURCE],
              timeout=60)
    wait_for("both DRBD disks UpToDate",
             lambda: all(g.run(["drbdadm", "dstate", DRBD_RESOURCE], check=False,
                               timeout=20).stdout.strip() == "UpToDate/UpToDate"
                         for g in guests), timeout, interval=1)
    first.run(["drbdadm", "primary", DRBD_RESOURCE], timeout=60)
    first.run(["mkfs.ext4", "-q", "-F", DRBD_DEVICE], timeout=120)
    first.run(["mount", DRBD_DEVICE, MOUNT], timeout=60)
    first.put(f"{MOUNT}/init.sql", config.mariadb_init_sql())
    first.run(["mariadb-install-db", "--user=mysql", f"--datadir={config.DB_DATADIR}",
               "--auth-root-authentication-method=socket", "--skip-test-db"], timeout=300)
    first.run(["umount", MOUNT], timeout=60)
    first.run(["drbdadm", "secondary", DRBD_RESOURCE], timeout=60)
    for guest in guests:
        guest.run(["drbdadm", "down", DRBD_RESOURCE], timeout=60)


def start_daemons(guests: list[Guest], timeout: float) -> float:
    """corosync, then pacemakerd once corosync answers (pacemaker.service's order)."""
    started = time.monotonic()
    for guest in guests:
        guest.spawn(["corosync", "-f"], "/var/log/clusterstack/corosync.out")
    for guest in guests:
        wait_for(f"corosync on {guest.name}",
                 lambda g=guest: g.run(["corosync-cfgtool", "-s"], check=False,
                                       timeout=20).returncode == 0, timeout, interval=0.5)
    for guest in guests:
        guest.sh("set -a; . /etc/default/pacemaker; set +a; "
                 "exec pacemakerd >>/var/log/clusterstack/pacemakerd.out 2>&1 </dev/null &",
                 timeout=30)
    return started


def membership(guest: Guest) -> Membership | None:
    try:
        result = guest.run(["crm_mon", "-1", "--output-as=xml"], check=False, timeout=30)
    except GuestError:
        return None
    if result.returncode != 0:
        return None
    try:
        return parse_crm_mon(result.stdout)
    except Exception:  # half-written XML while pacemaker starts: ask again
        return None


def formation(guests: list[Guest], started: float, timeout: float) -> float:
    names = {g.name for g in guests}

    def formed() -> bool:
        for guest in guests:
            seen = membership(guest)
            if seen is None or seen.online != names or seen.dc is None:
                return False
        return True

    wait_for("both guests online on both guests", formed, timeout, interval=1)
    return time.monotonic() - started


def apply_config(guest: Guest, plan: config.AddressPlan) -> None:
    path = "/tmp/clusterstack-vm.crm"
    guest.put(path, crm_config(plan))
    guest.run(["crm", "configure", "load", "update", path], timeout=180)


class SqlClient:
    """The MariaDB client of the image's root, run on the host in the switch's namespace:
    it reaches the guests only through the bridge, as any client would."""

    def __init__(self, runner: Runner, netns_prefix: list[str], root_tree: Path,
                 plan: config.AddressPlan) -> None:
        self.runner = runner
        self.prefix = netns_prefix
        self.root = root_tree
        self.plan = plan

    def query(self, statement: str, timeout: float = 10) -> str | None:
        argv = [*self.prefix, "chroot", str(self.root), "/usr/bin/mariadb",
                "--connect-timeout=2", "-h", self.plan.db_vip, "-u", config.DB_USER,
                f"-p{config.DB_PASSWORD}", "-N", "-B", config.DB_NAME, "-e", statement]
        result = self.runner.run(argv, check=False, timeout=timeout)
        return result.stdout.strip() if result.returncode == 0 else None


@dataclass
class VmFailover:
    seconds: float
    source: str
    target: str
    fenced: bool
    crashed_at: float = 0.0  # time.monotonic() of the crash: what later steps time from


def start_service(guests: list[Guest], client: SqlClient, plan: config.AddressPlan,
                  timeout: float) -> str:
    apply_config(guests[0], plan)
    return wait_for("MariaDB to answer through the VIP",
                    lambda: client.query("SELECT @@hostname"), timeout, interval=1)


def kill_failover(guests: list[Guest], client: SqlClient, fence_events: list[FenceEvent],
                  timeout: float) -> VmFailover:
    """Crash the serving guest's kernel; time until the other guest serves the same row."""
    source = wait_for("a serving guest", lambda: client.query("SELECT @@hostname"), timeout)
    note = f"written via {source} before the crash"
    if client.query(f"REPLACE INTO items VALUES (1, '{note}')") is None:
        raise ScenarioError("could not write the row through the VIP")
    if client.query("SELECT note FROM items WHERE id = 1") != note:
        raise ScenarioError("the row does not read back before the crash")
    victim = next(g for g in guests if g.name == source)
    started = time.monotonic()
    # A kernel panic, not a kill of qemu: the guest is as dead as a pulled plug to its peer,
    # but its qemu stays, so the survivor's fencing has a real guest to power off.
    with contextlib.suppress(GuestError):  # the channel may die with the kernel
        victim.request({"argv": ["sh", "-c", "echo c > /proc/sysrq-trigger"], "timeout": 5},
                       timeout=2)
    victim.close()

    def moved() -> str | None:
        now = client.query("SELECT @@hostname", timeout=5)
        return now if now and now != source else None

    target = wait_for(f"MariaDB to answer from a guest other than {source}", moved, timeout,
                      interval=PROBE_INTERVAL)
    seconds = time.monotonic() - started
    fenced = any(e.node == source and e.action == "off" and e.result == "ok"
                 for e in fence_events)
    if not fenced:
        raise ScenarioError(f"MariaDB moved from {source} without {source} being fenced")
    if victim.running():
        raise ScenarioError(f"{source} was fenced but its qemu still runs")
    back = client.query("SELECT note FROM items WHERE id = 1")
    if back != note:
        raise ScenarioError(f"the row written before the crash reads back as {back!r}")
    return VmFailover(seconds, source, target, fenced, started)


def collect_guest_logs(guest: Guest, dest: Path) -> None:
    """Pacemaker's, corosync's and the agent's logs of a live guest (a dead one has its
    console log only)."""
    if not guest.running():
        return
    dest.mkdir(parents=True, exist_ok=True)
    # The state at the end first: what a failed run is diagnosed from.
    for name, argv in (("crm_mon.txt", ["crm_mon", "-1", "-r", "-A", "-f"]),
                       ("proc-drbd.txt", ["cat", "/proc/drbd"]),
                       ("fencing-history.txt", ["stonith_admin", "--history", "*"]),
                       ("dlm.txt", ["sh", "-c", "dlm_tool status; dlm_tool ls"]),
                       ("ipvsadm.txt", ["sh", "-c", "ipvsadm -Ln; ipvsadm -Ln --stats"])):
        try:
            reply = guest.request({"argv": argv, "timeout": 20}, timeout=25)
        except GuestError:
            return
        if reply is None:
            return  # the agent is stuck behind a blocked command: the rest would be too
        (dest / name).write_text(reply.get("out", ""))
    for path in ("/var/log/pacemaker/pacemaker.log", "/var/log/corosync/corosync.log",
                 "/var/log/clusterstack/corosync.out", "/var/log/clusterstack/pacemakerd.out",
                 "/var/log/clusterstack/agent.log", "/var/log/mysql/error.log",
                 "/var/log/clusterstack/keepalived-lvs.out"):
        try:
            reply = guest.request({"argv": ["tail", "-n", "3000", path], "timeout": 10},
                                  timeout=15)
        except GuestError:
            return
        if reply is None:
            return
        if reply.get("rc") == 0:
            (dest / path.strip("/").replace("/", "_")).write_text(reply.get("out", ""))


def gfs2_mounted(guest: Guest) -> bool:
    return guest.run(["findmnt", "-n", "-t", "gfs2", GFS2_MOUNT], check=False,
                     timeout=20).returncode == 0


def start_gfs2(guests: list[Guest], timeout: float) -> float:
    """mkfs.gfs2 from one guest, DLM + GFS2 cloned by Pacemaker; seconds until it is mounted
    on both, and a file written on one reads back on the other."""
    first, second = guests[0], guests[1]
    for guest in guests:
        # dlm_controld waits for /dev/misc/dlm-control, a name udev gives; without udev,
        # devtmpfs has it as /dev/dlm-control.
        guest.sh("mkdir -p /dev/misc && for d in dlm-control dlm-monitor dlm_plock; do "
                 "ln -sf ../$d /dev/misc/$d; done", timeout=30)
    first.run(mkfs_gfs2_argv(len(guests)), timeout=180)
    path = "/tmp/clusterstack-gfs2.crm"
    first.put(path, gfs2_crm_config())
    started = time.monotonic()
    first.run(["crm", "configure", "load", "update", path], timeout=180)
    # Not capped below the step timeout: under TCG on a loaded host, monitors that time out
    # while mkfs.gfs2 runs make Pacemaker recover the service first (seen: >120 s).
    wait_for("GFS2 mounted on both guests", lambda: all(gfs2_mounted(g) for g in guests),
             timeout, interval=2)
    seconds = time.monotonic() - started
    first.sh(f"echo written-on-{first.name} > {GFS2_MOUNT}/hello && sync", timeout=60)
    back = second.run(["cat", f"{GFS2_MOUNT}/hello"], timeout=60).stdout.strip()
    if back != f"written-on-{first.name}":
        raise ScenarioError(f"{second.name} reads {back!r} from GFS2")
    return seconds


@dataclass
class Gfs2Recovery:
    """GFS2 on the survivor after the crash: seconds from the crash, and from the end of
    the fail-over, until a file written there read back, and the survivor's
    `dlm_tool ls` at that time."""

    seconds: float
    after_failover: float
    dlm_ls: str


def lockspaces_waiting_for_fencing(dlm_ls: str) -> list[str]:
    """Names of the lockspaces `dlm_tool ls` shows as "wait fencing": dlm_controld holds
    their recovery until it learns that the failed node was fenced."""
    waiting: list[str] = []
    name = "?"
    for line in dlm_ls.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "name":
            name = words[1]
        elif words[:4] == ["new", "status", "wait", "fencing"] and name not in waiting:
            waiting.append(name)
    return waiting


def _dlm_ls(guest: Guest) -> str:
    try:
        return guest.run(["dlm_tool", "ls"], check=False, timeout=20).stdout
    except GuestError as exc:
        return f"(dlm_tool ls: {exc})"


def gfs2_after_crash(survivor: Guest, crashed_at: float, limit: float) -> Gfs2Recovery:
    """Within `limit` seconds of the fail-over, a file written to GFS2 on the survivor must
    read back, and no lockspace may still wait for fencing.

    The limit counts from this step, which starts once the service runs on the
    survivor (so the crashed guest has been fenced), not from the crash: the DRBD
    fail-over before it takes 40-130 s under TCG depending on the host's load (129 s
    on 2026-12-02, and GFS2 then 2 s), and a limit from the crash would measure that.

    DLM recovery of the crashed guest's locks needs dlm_controld to see that the guest was
    fenced (through dlm_stonith and Pacemaker's fencer); until then every GFS2 operation
    that needs a lock blocks. The write runs detached: one blocked in GFS2 cannot be
    killed, and the agent, which answers one request at a time, would be stuck behind it.
    """
    started = time.monotonic()
    token = f"after-crash-{survivor.name}-{int(crashed_at * 1000)}"
    target, readback = f"{GFS2_MOUNT}/after-crash", "/run/clusterstack-gfs2-readback"
    survivor.run(["rm", "-f", readback], timeout=20)
    survivor.spawn(["sh", "-c", f"echo {token} > {target} && sync && "
                    f"cat {target} > {readback}.tmp && mv {readback}.tmp {readback}"],
                   "/var/log/clusterstack/gfs2-write.out")

    def read_back() -> bool:
        result = survivor.run(["cat", readback], check=False, timeout=20)
        return result.returncode == 0 and result.stdout.strip() == token

    try:
        wait_for(f"{survivor.name} to write to GFS2 and read it back after the crash",
                 read_back, limit, interval=0.5)
    except ScenarioError as exc:
        waiting = lockspaces_waiting_for_fencing(_dlm_ls(survivor))
        detail = f"; dlm lockspaces in wait fencing: {', '.join(waiting)}" if waiting else ""
        raise ScenarioError(f"{exc} (limit {limit:.0f} s after the fail-over){detail}") from exc
    now = time.monotonic()
    listing = _dlm_ls(survivor)
    waiting = lockspaces_waiting_for_fencing(listing)
    if waiting:
        raise ScenarioError(f"GFS2 was written, but dlm lockspaces still wait for fencing: "
                            f"{', '.join(waiting)}")
    return Gfs2Recovery(now - crashed_at, now - started, listing)


NODES_EMPTIED_CIB = "/tmp/clusterstack-nodes-emptied.xml"


def configuration_without_nodes(configuration: str, device: str, note: str) -> str:
    """The CIB's configuration section with an empty nodes section, as a cib.xml written
    by hand or by `pcs -f` has, and the fence device's description set to `note`.

    The description is a change to the resources section: Pacemaker 3.0.0's fencer
    recomputes its devices only for such changes, so the recomputation sees no local node.
    """
    root = ET.fromstring(configuration)
    nodes = root.find("nodes")
    if nodes is None:
        raise ScenarioError("the CIB's configuration has no nodes section")
    for node in list(nodes):
        nodes.remove(node)
    primitive = root.find(f".//primitive[@id='{device}']")
    if primitive is None:
        raise ScenarioError(f"the CIB's configuration has no primitive {device}")
    primitive.set("description", note)
    return ET.tostring(root, encoding="unicode")


def registered_devices(listing: str) -> list[str]:
    """The device ids `stonith_admin --list-registered` prints (its last line counts them)."""
    return [line.strip() for line in listing.splitlines()
            if line.strip() and not re.fullmatch(r"\d+ fence devices? found", line.strip())]


def fence_device_reregistered(guest: Guest, timeout: float) -> float:
    """Replace the CIB's configuration with an empty nodes section; the controller puts the
    nodes back, and the local fencer must then register the fence device again.

    Pacemaker 3.0.0 leaves it unregistered (ClusterLabs/pacemaker#3849, #3852): the
    fencer's scheduler no longer finds the local node among a device's allowed nodes, and
    the controller's repopulated nodes section does not make it look again. Unfencing
    (fence_scsi) runs on that node's own fencer, so there it fails. Seconds from the
    replace until the device is registered again.
    """
    device = config.FENCE_DEVICE.id

    def registered() -> bool:
        listing = guest.run(["stonith_admin", "--list-registered"], check=False,
                            timeout=30).stdout
        return device in registered_devices(listing)

    wait_for(f"{device} registered with {guest.name}'s fencer", registered, 60, interval=1)
    current = guest.run(["cibadmin", "--query", "--scope", "configuration"], timeout=60)
    guest.put(NODES_EMPTIED_CIB, configuration_without_nodes(
        current.stdout, device, "configuration replaced with an empty nodes section"))
    started = time.monotonic()
    guest.run(["cibadmin", "--replace", "--scope", "configuration", "--xml-file",
               NODES_EMPTIED_CIB], timeout=60)

    def nodes_back() -> bool:
        nodes = guest.run(["cibadmin", "--query", "--scope", "nodes"], check=False,
                          timeout=30).stdout
        return f'uname="{guest.name}"' in nodes

    wait_for(f"the controller to put {guest.name} back into the nodes section", nodes_back,
             timeout, interval=1)
    wait_for(f"{device} registered again with {guest.name}'s fencer", registered, timeout,
             interval=1)
    return time.monotonic() - started
