"""Load balancing for real: keepalived as LVS director on both guests (issue 17).

The host's kernel has no ip_vs; the guests' Debian kernel has. Each guest runs
keepalived with a VRRP instance for the load-balancing VIP and a
`virtual_server VIP 80` (lb_kind DR, lb_algo rr) over two real servers with
HTTP_GET health checks. The real servers are network namespaces of the harness
on the guests' switch (veth on the same bridge as the guests' taps), each a
small HTTP server answering its own name, with the VIP on its loopback and
arp_ignore/arp_announce set, as LVS-DR wants. The client is the switch's own
namespace (192.0.2.254 on the bridge), where the VM tier's SQL client runs too.

DR rather than NAT: with NAT the real servers' default route must point at the
director holding the VIP, so a director fail-over would also have to move a
gateway address; with DR the replies go straight to the client and only the
VIP moves. Both directors keep the same IPVS table (keepalived's checker runs
whatever the VRRP state), so the backup has the pool before it takes the VIP.

Pure parts first (configuration, `ipvsadm -Ln` parsing, the client's figures),
then the host side (`LvsLab`), then the steps.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from builder.base.command import Background, CommandError, Runner
from builder.base.errors import ClusterStackError

from .. import config
from ..netns import nsenter_net, wait_own_namespace
from ..scenarios import ScenarioError, wait_for
from .guest import Guest, GuestError
from .lvs_probe import HEALTH_PATH
from .network import VmNetwork

log = logging.getLogger("clusterstack.cluster")

PROBE_SCRIPT = Path(__file__).parent / "lvs_probe.py"
KEEPALIVED_CONF = "/etc/keepalived/keepalived-lvs.conf"
KEEPALIVED_PID = "/run/keepalived-lvs.pid"
KEEPALIVED_LOG = "/var/log/clusterstack/keepalived-lvs.out"
# The VM tier's guests run nothing else of keepalived; 52 differs from the namespace
# tier's VRRP scenario (51) all the same, so a capture of both never mixes them up.
LVS_VRID = 52
PRIORITIES = (150, 100)  # node1 is the master while both run

# Requests of the spread measurement, and the least share of them each real server must
# answer (rr gives each exactly half; 25% leaves room for requests lost to nothing).
SPREAD_REQUESTS = 200
SPREAD_MIN_SHARE = 0.25
# Client of the measurements across a change: a request every 100 ms, each given 1 s.
WATCH_INTERVAL = 0.1
WATCH_TIMEOUT = 1.0
# After the change, the watch goes on until this many requests in a row succeeded.
SETTLED_REQUESTS = 20

# Bounds, from the health check's configuration, not yet from measurements (issue 17,
# first runs pending): keepalived sees a stopped server at its next check (delay_loop
# 2 s), retries once after 1 s (connect_timeout 1 s), then removes it: ~4 s worst case.
# Under TCG on a loaded host checks run late; 15 s is ~4x that. A re-add needs one good
# check (~2 s); a VRRP fail-over on TERM (priority-0 advert) takes ~1 s plus the
# gratuitous ARPs.
REMOVAL_LIMIT = 15.0
READD_LIMIT = 15.0
FAILOVER_LIMIT = 30.0


class LvsError(ScenarioError, ClusterStackError):
    """An LVS step found the load balancing wrong."""


class IpvsadmOutputError(LvsError):
    """`ipvsadm -Ln` printed something this parser does not know."""


# --- the plan and keepalived.conf --------------------------------------------------------


@dataclass(frozen=True)
class RealServer:
    name: str
    address: str

    @property
    def port_name(self) -> str:
        """Its veth on the switch's bridge."""
        return f"veth-{self.name}"


@dataclass(frozen=True)
class LvsPlan:
    """The load-balancing addresses: like every test address, only inside the harness's
    own namespaces (TEST-NET-1, beside the nodes, the MariaDB VIP and the VRRP VIP)."""

    vip: str
    real_servers: tuple[RealServer, ...]
    port: int = 80
    vrid: int = LVS_VRID
    delay_loop: int = 2
    connect_timeout: int = 1
    retry: int = 1
    delay_before_retry: int = 1

    @classmethod
    def on(cls, plan: config.AddressPlan) -> LvsPlan:
        return cls(vip=f"{plan.prefix}.102",
                   real_servers=(RealServer("web1", f"{plan.prefix}.21"),
                                 RealServer("web2", f"{plan.prefix}.22")))

    def by_name(self, name: str) -> RealServer:
        for rs in self.real_servers:
            if rs.name == name:
                return rs
        raise LvsError(f"no real server {name!r}")

    def name_of(self, address: str) -> str | None:
        return next((rs.name for rs in self.real_servers if rs.address == address), None)


def keepalived_lvs_conf(router_id: str, priority: int, lvs: LvsPlan) -> str:
    """keepalived 2.3: a VRRP instance for the VIP and the virtual server behind it.

    Both directors start BACKUP and the priority elects, as in `config.keepalived_conf`.
    No persistence_timeout: with it every request of the one client would go to the same
    real server, and the spread could not be seen.
    """
    lines = [
        "# Generated by clusterstack's VM tier (builder/verify/cluster/vm/lvs.py).",
        "global_defs {",
        f"\trouter_id {router_id}",
        "}",
        "vrrp_instance VI_LVS {",
        "\tstate BACKUP",
        "\tinterface eth0",
        f"\tvirtual_router_id {lvs.vrid}",
        f"\tpriority {priority}",
        "\tadvert_int 1",
        "\tvirtual_ipaddress {",
        f"\t\t{lvs.vip}/24 dev eth0",
        "\t}",
        "}",
        f"virtual_server {lvs.vip} {lvs.port} {{",
        f"\tdelay_loop {lvs.delay_loop}",
        "\tlb_algo rr",
        "\tlb_kind DR",
        "\tprotocol TCP",
    ]
    for rs in lvs.real_servers:
        lines += [
            f"\treal_server {rs.address} {lvs.port} {{",
            "\t\tweight 1",
            "\t\tHTTP_GET {",
            "\t\t\turl {",
            f"\t\t\t\tpath {HEALTH_PATH}",
            "\t\t\t\tstatus_code 200",
            "\t\t\t}",
            f"\t\t\tconnect_timeout {lvs.connect_timeout}",
            f"\t\t\tretry {lvs.retry}",
            f"\t\t\tdelay_before_retry {lvs.delay_before_retry}",
            "\t\t}",
            "\t}",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def keepalived_argv() -> list[str]:
    """keepalived.service's ExecStart (--dont-fork), logging to its output file, with a
    pid file of its own name (the harness stops it by that pid)."""
    return ["keepalived", "--dont-fork", "--log-console", "--log-detail",
            f"--pid={KEEPALIVED_PID}", "--vrrp_pid=/run/keepalived-lvs-vrrp.pid",
            "--checkers_pid=/run/keepalived-lvs-checkers.pid", "-f", KEEPALIVED_CONF]


# --- ipvsadm -Ln -----------------------------------------------------------------------


@dataclass(frozen=True)
class Destination:
    address: str
    port: int
    forward: str  # Route (DR), Masq (NAT), Tunnel, Local
    weight: int
    active: int
    inactive: int


@dataclass(frozen=True)
class VirtualService:
    protocol: str
    address: str
    port: int
    scheduler: str
    destinations: tuple[Destination, ...]


_HEADER = ("IP Virtual Server version", "Prot LocalAddress:Port", "  -> RemoteAddress:Port")
_SERVICE = re.compile(r"^(TCP|UDP|SCTP)\s+(\S+):(\d+)\s+(\S+)(?:\s+.*)?$")
_DEST = re.compile(r"^\s+->\s+(\S+):(\d+)\s+(\S+)\s+(-?\d+)\s+(\d+)\s+(\d+)(?:\s+.*)?$")


def parse_ipvsadm(text: str) -> list[VirtualService]:
    """The virtual services of `ipvsadm -Ln` (ipvsadm 1.31: three header lines, then per
    service `TCP  ADDR:PORT SCHED [flags]` and its `  -> ADDR:PORT Forward Weight
    ActiveConn InActConn` lines). Unknown lines raise IpvsadmOutputError: a format
    change must not read as an empty pool."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 3 or any(not line.startswith(h)
                             for line, h in zip(lines[:3], _HEADER, strict=True)):
        raise IpvsadmOutputError(f"not the output of ipvsadm -Ln: {text[:200]!r}")
    services: list[VirtualService] = []
    current: tuple[str, str, int, str] | None = None
    dests: list[Destination] = []
    for line in lines[3:]:
        if (m := _SERVICE.match(line)) is not None:
            if current is not None:
                services.append(VirtualService(*current, tuple(dests)))
            current, dests = (m[1], m[2], int(m[3]), m[4]), []
        elif (m := _DEST.match(line)) is not None and current is not None:
            dests.append(Destination(m[1], int(m[2]), m[3], int(m[4]), int(m[5]), int(m[6])))
        else:
            raise IpvsadmOutputError(f"unexpected line in ipvsadm -Ln: {line!r}")
    if current is not None:
        services.append(VirtualService(*current, tuple(dests)))
    return services


def pool(text: str, lvs: LvsPlan) -> list[str] | None:
    """Names of the real servers in the VIP's virtual service, in ipvsadm's order; None
    when the virtual service is not there at all (keepalived not running, or stopped)."""
    for service in parse_ipvsadm(text):
        if service.protocol == "TCP" and service.address == lvs.vip \
                and service.port == lvs.port:
            return [lvs.name_of(d.address) or f"{d.address}:{d.port}"
                    for d in service.destinations]
    return None


# --- the client's requests -------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    started: float  # time.monotonic() in the client
    seconds: float
    server: str | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.server is not None

    @property
    def ended(self) -> float:
        return self.started + self.seconds


def parse_requests(text: str) -> list[Request]:
    """The client's JSON lines; a last line cut short (the client stopped by TERM while
    writing) is left out, any other bad line raises."""
    lines = text.splitlines()
    requests = []
    for index, line in enumerate(lines):
        try:
            data = json.loads(line)
        except ValueError:
            if index == len(lines) - 1:
                break
            raise LvsError(f"bad line {index + 1} from the client: {line!r}") from None
        requests.append(Request(float(data["t"]), float(data["dt"]), data.get("server"),
                                data.get("error")))
    return requests


def spread(requests: Sequence[Request]) -> dict[str, int]:
    """Answered requests per real server."""
    counts: dict[str, int] = {}
    for r in requests:
        if r.server is not None:
            counts[r.server] = counts.get(r.server, 0) + 1
    return counts


def check_spread(requests: Sequence[Request], names: Sequence[str],
                 min_share: float = SPREAD_MIN_SHARE) -> dict[str, int]:
    """Every request answered, and each of `names` answered at least `min_share` of
    them; the counts."""
    if not requests:
        raise LvsError("the client made no request")
    failed = [r for r in requests if not r.ok]
    counts = spread(requests)
    if failed:
        raise LvsError(f"{len(failed)} of {len(requests)} requests failed "
                       f"(first: {failed[0].error}); answered: {counts}")
    strangers = sorted(set(counts) - set(names))
    if strangers:
        raise LvsError(f"answers from unknown servers {strangers}: {counts}")
    for name in names:
        if counts.get(name, 0) < min_share * len(requests):
            raise LvsError(f"{name} answered {counts.get(name, 0)} of {len(requests)} "
                           f"requests, less than {min_share:.0%}: {counts}")
    return {name: counts.get(name, 0) for name in names}


@dataclass(frozen=True)
class Outage:
    """What the client saw from an event on: failed requests, and seconds from the event
    until the end of the first answered request after the last failed one (0 when none
    failed)."""

    failed: int
    seconds: float
    requests: int


def outage(requests: Sequence[Request], since: float) -> Outage:
    """The client's outage after `since`: requests still running then count too."""
    seen = [r for r in requests if r.ended >= since]
    failed = [r for r in seen if not r.ok]
    if not failed:
        if not any(r.ok for r in seen):
            raise LvsError("no request was answered after the event")
        return Outage(0, 0.0, len(seen))
    last = max(r.started for r in failed)
    after = [r for r in seen if r.ok and r.started > last]
    if not after:
        raise LvsError(f"no request was answered after the last failed one "
                       f"({len(failed)} failed since the event)")
    first = min(after, key=lambda r: r.started)
    return Outage(len(failed), max(0.0, first.ended - since), len(seen))


def settled(requests: Sequence[Request], since: float, count: int = SETTLED_REQUESTS) -> bool:
    """Did the last `count` requests, all started after `since`, succeed?"""
    tail = [r for r in requests if r.started >= since][-count:]
    return len(tail) == count and all(r.ok for r in tail)


# What a real server's namespace needs for LVS-DR, as (sysctl key, value).
RS_SYSCTLS = (("net.ipv4.conf.all.arp_ignore", "1"), ("net.ipv4.conf.all.arp_announce", "2"),
              ("net.ipv4.conf.eth0.arp_ignore", "1"), ("net.ipv4.conf.eth0.arp_announce", "2"))


def rs_sysctl_script() -> str:
    return " && ".join(f"echo {value} > /proc/sys/{key.replace('.', '/')}"
                       for key, value in RS_SYSCTLS)


# --- the host side: real servers and client ----------------------------------------------


class Watch:
    """The client in the background: a request every WATCH_INTERVAL until stopped."""

    def __init__(self, proc: Background, log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path

    def requests(self) -> list[Request]:
        text = self.log_path.read_text() if self.log_path.exists() else ""
        # Background writes its command line first: that is not a request.
        return parse_requests("\n".join(line for line in text.splitlines()
                                        if line.startswith("{")))

    def stop(self) -> list[Request]:
        # TERM: every finished request is already written (one flushed line each)
        self.proc.stop(signal.SIGTERM, timeout=10)
        return self.requests()


class LvsLab:
    """The real servers' namespaces and HTTP servers, and the client's commands, all on
    the guests' switch. Everything is a `Background` of the harness (killed with it);
    `stop` ends it all, `leftovers` says what still runs."""

    def __init__(self, runner: Runner, network: VmNetwork, lvs: LvsPlan, run_dir: Path,
                 python: str = sys.executable) -> None:
        self.runner = runner
        self.network = network
        self.lvs = lvs
        self.run_dir = run_dir
        self.python = python
        self.holders: dict[str, Background] = {}
        self.servers: dict[str, Background] = {}
        self.watches: list[Watch] = []
        self._watch_ids = 0
        self._unplugged: set[str] = set()  # stop() runs after the steps and in the teardown

    def _probe(self, *args: str) -> list[str]:
        # -I: nothing of the harness's environment or user site in the probe
        return [self.python, "-I", str(PROBE_SCRIPT), *args]

    def start(self) -> None:
        """A namespace per real server, plugged into the bridge, set up for LVS-DR."""
        for rs in self.lvs.real_servers:
            holder = Background(["unshare", "--net", "--", "sleep", "infinity"],
                                self.run_dir / f"{rs.name}-netns.log")
            self.holders[rs.name] = holder
            wait_own_namespace(holder)
            self.network.switch.plug(rs.port_name, holder.pid, rs.address)
            ns = nsenter_net(holder.pid)
            # Before the VIP is on lo: never answer ARP for it (arp_ignore=1: only for
            # addresses of the asking interface) and never use it as an ARP source
            # (arp_announce=2), or the client would send the VIP's traffic here directly.
            # Written by a shell inside the namespace: /proc/sys/net is the writer's
            # namespace's (and the host may lack procps' sysctl).
            self.runner.run([*ns, "sh", "-c", rs_sysctl_script()])
            # DR delivers frames for the VIP unchanged: it must be a local address here.
            self.runner.run([*ns, "ip", "addr", "add", f"{self.lvs.vip}/32", "dev", "lo"])
            self.start_server(rs.name)

    def start_server(self, name: str) -> None:
        rs = self.lvs.by_name(name)
        holder = self.holders[name]
        self.servers[name] = Background(
            [*nsenter_net(holder.pid), *self._probe("serve", rs.name, str(self.lvs.port))],
            self.run_dir / f"{rs.name}-http.log")

    def stop_server(self, name: str) -> None:
        server = self.servers.pop(name, None)
        if server is not None:
            server.stop(signal.SIGTERM, timeout=10)

    def get(self, host: str, count: int, timeout: float = 5.0) -> list[Request]:
        """`count` requests from the client, one after another."""
        result = self.runner.run(
            [*self.network.prefix(), *self._probe(
                "get", host, str(self.lvs.port), "--count", str(count),
                "--timeout", str(timeout))],
            timeout=count * (timeout + 1) + 30)
        return parse_requests(result.stdout)

    def answers(self, name: str) -> bool:
        """Does this real server answer on its own address?"""
        got = self.get(self.lvs.by_name(name).address, 1, timeout=2)
        return bool(got) and got[0].server == name

    def watch(self) -> Watch:
        self._watch_ids += 1
        log_path = self.run_dir / f"lvs-client-{self._watch_ids}.log"
        proc = Background([*self.network.prefix(), *self._probe(
            "get", self.lvs.vip, str(self.lvs.port), "--count", "0",
            "--interval", str(WATCH_INTERVAL), "--timeout", str(WATCH_TIMEOUT))], log_path)
        watch = Watch(proc, log_path)
        self.watches.append(watch)
        return watch

    def stop(self) -> None:
        """End every process of the lab; never raises (it runs in the teardown, before the
        qemu processes are killed), `leftovers` says what it could not end."""
        for watch in self.watches:
            watch.proc.stop(signal.SIGTERM, timeout=10)
        for name in list(self.servers):
            self.stop_server(name)
        for rs in self.lvs.real_servers:
            if rs.name in self.holders and rs.name not in self._unplugged \
                    and self.network.alive():
                # The veth dies with its namespace anyway; deleting it first keeps the
                # bridge clean for the steps after this one.
                with contextlib.suppress(CommandError, OSError):
                    self.network.switch.unplug(rs.port_name)
                self._unplugged.add(rs.name)
        for holder in self.holders.values():
            holder.stop()

    def leftovers(self) -> list[str]:
        left = [f"LVS client (pid {w.proc.pid})" for w in self.watches if w.proc.running()]
        left += [f"HTTP server {n} (pid {p.pid})" for n, p in self.servers.items()
                 if p.running()]
        left += [f"namespace holder of {n} (pid {p.pid})" for n, p in self.holders.items()
                 if p.running()]
        return left

    def copy_logs(self, dest: Path) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        for pattern in ("web*-http.log", "web*-netns.log", "lvs-client-*.log"):
            for path in self.run_dir.glob(pattern):
                (dest / path.name).write_bytes(path.read_bytes())


# --- the steps --------------------------------------------------------------------------


def ipvs_pool(guest: Guest, lvs: LvsPlan) -> list[str] | None:
    result = guest.run(["ipvsadm", "-Ln"], check=False, timeout=20)
    if result.returncode != 0:
        return None
    return pool(result.stdout, lvs)


def holds_vip(guest: Guest, lvs: LvsPlan) -> bool:
    try:
        result = guest.run(["ip", "-o", "-4", "addr", "show", "dev", "eth0"], check=False,
                           timeout=20)
    except GuestError:
        return False
    return f" {lvs.vip}/" in result.stdout


def vip_holders(guests: Sequence[Guest], lvs: LvsPlan) -> list[str]:
    return [g.name for g in guests if g.running() and holds_vip(g, lvs)]


@dataclass(frozen=True)
class Directors:
    master: str
    backup: str


def start_lvs(guests: Sequence[Guest], lab: LvsLab, timeout: float) -> Directors:
    """The real servers answering, keepalived on both guests, the master holding the VIP
    and both directors listing both real servers."""
    lvs = lab.lvs
    if len(guests) != 2:
        raise LvsError(f"LVS needs two guests as directors, not {len(guests)}")
    lab.start()
    for rs in lvs.real_servers:
        wait_for(f"{rs.name} to answer on {rs.address}", lambda n=rs.name: lab.answers(n),
                 60, interval=0.5)
    for guest, priority in zip(guests, PRIORITIES, strict=True):
        # No udev in the guests: the modules by name (keepalived would modprobe ip_vs itself,
        # the scheduler module only the kernel's request_module loads).
        guest.run(["modprobe", "-a", "ip_vs", "ip_vs_rr"], timeout=60)
        guest.put(KEEPALIVED_CONF, keepalived_lvs_conf(guest.name, priority, lvs))
        guest.spawn(keepalived_argv(), KEEPALIVED_LOG)
    names = [rs.name for rs in lvs.real_servers]
    for guest in guests:
        wait_for(f"{guest.name}'s IPVS table to list {', '.join(names)}",
                 lambda g=guest: sorted(ipvs_pool(g, lvs) or []) == names, timeout, interval=1)
    master, backup = guests[0].name, guests[1].name
    wait_for(f"{master} (priority {PRIORITIES[0]}) to hold the LVS VIP {lvs.vip} alone",
             lambda: vip_holders(guests, lvs) == [master], timeout, interval=1)
    return Directors(master, backup)


def measure_spread(lab: LvsLab, count: int = SPREAD_REQUESTS) -> dict[str, int]:
    """`count` requests through the VIP: each real server must answer its share."""
    requests = lab.get(lab.lvs.vip, count)
    return check_spread(requests, [rs.name for rs in lab.lvs.real_servers])


@dataclass(frozen=True)
class PoolChange:
    """A real server's HTTP server stopped (or started again): seconds until the active
    director's IPVS table showed it gone (back), the client's failed requests before
    that, and its requests after it."""

    seconds: float
    failed_before: int
    requests_after: int
    answered_after: dict[str, int]


def _wait_pool(director: Guest, lvs: LvsPlan, want: list[str], started: float,
               limit: float, what: str) -> float:
    """Poll the director's `ipvsadm -Ln` until its pool is `want`; seconds since `started`.
    Each look goes through the guest agent: the figure is good to about one look."""
    deadline = started + limit
    while True:
        seen = ipvs_pool(director, lvs)
        now = time.monotonic()
        if seen is not None and sorted(seen) == sorted(want):
            return now - started
        if now > deadline:
            raise LvsError(f"{what}: {director.name}'s IPVS pool is {seen} after "
                           f"{now - started:.1f} s, not {want} (limit {limit:.0f} s)")
        time.sleep(0.2)


def _watch_until_settled(watch: Watch, since: float, timeout: float) -> list[Request]:
    wait_for(f"{SETTLED_REQUESTS} answered requests in a row",
             lambda: settled(watch.requests(), since), timeout, interval=0.5)
    return watch.stop()


def real_server_removed(guests: Sequence[Guest], lab: LvsLab, directors: Directors,
                        victim: str, timeout: float,
                        limit: float = REMOVAL_LIMIT) -> PoolChange:
    """Stop `victim`'s HTTP server: the active director must drop it from the pool within
    `limit`, and from then on every request must be answered, by the other server."""
    lvs = lab.lvs
    director = next(g for g in guests if g.name == directors.master)
    rest = [rs.name for rs in lvs.real_servers if rs.name != victim]
    watch = lab.watch()
    wait_for("the client's first answers", lambda: settled(watch.requests(), 0, 5), 30,
             interval=0.3)
    started = time.monotonic()
    lab.stop_server(victim)
    seconds = _wait_pool(director, lvs, rest, started, limit, f"{victim} stopped")
    removed_at = started + seconds
    requests = _watch_until_settled(watch, removed_at, timeout)
    before = [r for r in requests if started <= r.ended and r.started < removed_at]
    after = [r for r in requests if r.started >= removed_at]
    failed_after = [r for r in after if not r.ok]
    if failed_after:
        raise LvsError(f"{len(failed_after)} of {len(after)} requests failed after {victim} "
                       f"left the pool (first: {failed_after[0].error})")
    counts = spread(after)
    if victim in counts:
        raise LvsError(f"{victim} answered {counts[victim]} requests after leaving the pool")
    return PoolChange(seconds, sum(1 for r in before if not r.ok), len(after), counts)


def real_server_readded(guests: Sequence[Guest], lab: LvsLab, directors: Directors,
                        victim: str, limit: float = READD_LIMIT) -> PoolChange:
    """Start `victim`'s HTTP server again: back in the pool within `limit`, then both
    real servers answer their share again."""
    lvs = lab.lvs
    director = next(g for g in guests if g.name == directors.master)
    names = [rs.name for rs in lvs.real_servers]
    started = time.monotonic()
    lab.start_server(victim)
    seconds = _wait_pool(director, lvs, names, started, limit, f"{victim} started again")
    requests = lab.get(lvs.vip, SETTLED_REQUESTS * 2)
    counts = check_spread(requests, names)
    return PoolChange(seconds, 0, len(requests), counts)


@dataclass(frozen=True)
class DirectorFailover:
    """The master director's keepalived stopped: seconds until the client's requests were
    answered again, failed requests on the way, and when the backup held the VIP."""

    seconds: float
    failed: int
    requests: int
    vip_moved_s: float
    source: str
    target: str


def director_failover(guests: Sequence[Guest], lab: LvsLab, directors: Directors,
                      timeout: float, limit: float = FAILOVER_LIMIT) -> DirectorFailover:
    """TERM to the master's keepalived (it sends a priority-0 advert and drops the VIP and
    its IPVS table, as `systemctl stop keepalived` does): the backup must hold the VIP
    alone, list both real servers, and the client must be answered again within `limit`."""
    lvs = lab.lvs
    source = next(g for g in guests if g.name == directors.master)
    target = next(g for g in guests if g.name == directors.backup)
    names = [rs.name for rs in lvs.real_servers]
    watch = lab.watch()
    wait_for("the client's first answers", lambda: settled(watch.requests(), 0, 5), 30,
             interval=0.3)
    started = time.monotonic()
    source.sh(f"kill -TERM $(cat {KEEPALIVED_PID})", timeout=20)
    wait_for(f"{target.name} to hold the LVS VIP alone",
             lambda: vip_holders(guests, lvs) == [target.name], limit, interval=0.2)
    vip_moved = time.monotonic() - started
    if sorted(ipvs_pool(target, lvs) or []) != names:
        raise LvsError(f"{target.name} holds the VIP but its IPVS pool is "
                       f"{ipvs_pool(target, lvs)}, not {names}")
    requests = _watch_until_settled(watch, started, timeout)
    seen = outage(requests, started)
    if seen.seconds > limit:
        raise LvsError(f"the client was answered again {seen.seconds:.1f} s after the "
                       f"director fail-over, over the limit of {limit:.0f} s")
    return DirectorFailover(seen.seconds, seen.failed, seen.requests, vip_moved,
                            source.name, target.name)


def stop_keepalived_script() -> str:
    """TERM to the director's keepalived if it still runs: a pid file left by one that is
    gone must not make the harness signal whatever process has that pid now."""
    return (f'p=$(cat {KEEPALIVED_PID} 2>/dev/null) && [ -n "$p" ] && '
            '[ "$(cat /proc/$p/comm 2>/dev/null)" = keepalived ] && kill -TERM "$p"; true')


def stop_directors(guests: Sequence[Guest]) -> None:
    """keepalived off on every live guest (the LVS steps are done)."""
    for guest in guests:
        if guest.running():
            with contextlib.suppress(GuestError):
                guest.sh(stop_keepalived_script(), check=False, timeout=20)
