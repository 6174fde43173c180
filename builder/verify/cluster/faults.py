"""Named fault scenarios, after Pacemaker's Cluster Test Suite (CTS).

One table, `SCENARIOS`, registers every scenario the harness can run: its
name (what `--scenario NAME[,NAME]` selects), the nodes it needs, the step
title in the report, what its figure measures and the function that runs it.
`select()` turns the user's `--scenario` text into a `Selection` before
anything boots, so that an unknown name or too few nodes is one clear error.

Every scenario starts from a settled cluster (all nodes online, no
transition running) and leaves one behind, so they can run in any order.
"""

from __future__ import annotations

import logging
import math
import re
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from builder.base.command import CommandError

from . import config, scenarios
from .cluster import Cluster
from .monitoring import CheckState, DownWatch, Expect, FailCount, Monitor, expect_for
from .netns import nsenter_net
from .node import Node, NodeError
from .scenarios import ScenarioError, serving_node, settle, wait_for

log = logging.getLogger("clusterstack.cluster")

VARIANTS = ("short", "full")


class SelectionError(ValueError):
    """`--scenario` names something that does not exist or cannot run with these nodes."""


@dataclass
class Context:
    """What a scenario works with."""

    cluster: Cluster
    shell: str  # crmsh | pcs
    workload: str  # dummy | mariadb
    timeout: float
    fence_action: str  # reboot | off
    logs: Path | None = None  # where a scenario's own extra nodes leave their logs
    # Every node's exporter and check, looked at during the scenarios (None: not watched).
    monitor: Monitor | None = None


@dataclass
class Figure:
    """What one scenario measured: its headline figure in seconds and the rest in words."""

    seconds: float
    detail: str = ""
    source: str | None = None  # the node the service (or VIP) left
    target: str | None = None  # the node it went to
    rejoin_s: float | None = None
    rows_written: int | None = None
    rows_lost: int | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str  # the step's name in the report
    min_nodes: int
    measures: str  # what Figure.seconds is, for the README and the table
    run: Callable[[Context], Figure]
    # Runs with the short variant's Dummy service too; the others need MariaDB.
    dummy_ok: bool = False
    # Packages the node root needs beyond the usual ones (rootfs.RootSpec.extra_packages).
    packages: tuple[str, ...] = ()


@dataclass(frozen=True)
class Selection:
    variant: str  # "short", "full" or "named"
    workload: str
    scenarios: tuple[Scenario, ...]
    # Scenarios of `full` left out because they need more nodes than the run has.
    too_big: tuple[Scenario, ...] = ()

    @property
    def packages(self) -> tuple[str, ...]:
        return tuple(sorted({p for s in self.scenarios for p in s.packages}))


# --- the legacy three, as registered scenarios ------------------------------------------


def _kill(ctx: Context) -> Figure:
    watches: list[DownWatch] = []

    def watch(victim: str, started: float) -> None:
        if ctx.monitor is not None:
            watches.append(ctx.monitor.watch_down(victim, started))

    f = scenarios.kill_failover(ctx.cluster, ctx.workload, ctx.timeout, watch)
    detail = "fenced, then taken over"
    for w in watches:
        seen = w.finish(f"kill: {f.source} down, as the survivors see it")
        detail += "; " + ", ".join(
            f"{s.node}'s exporter showed it after {s.exporter_s:.1f} s"
            f"{_before(s.exporter_before_s)}, its check CRITICAL after {s.check_s:.1f} s"
            f"{_before(s.check_before_s)}" for s in seen
            if s.exporter_s is not None and s.check_s is not None)
    return Figure(f.seconds, detail, f.source, f.target, f.rejoin_s)


def _before(seconds: float | None) -> str:
    return "" if seconds is None else f" (not yet at {seconds:.1f} s)"


def _standby(ctx: Context) -> Figure:
    f = scenarios.standby_failover(ctx.cluster, ctx.shell, ctx.workload, ctx.timeout)
    return Figure(f.seconds, "moved by standby", f.source, f.target)


def _vrrp(ctx: Context) -> Figure:
    f = scenarios.vrrp_failover(ctx.cluster, ctx.timeout)
    return Figure(f.seconds, "keepalived master stopped", f.source, f.target)


# --- helpers ------------------------------------------------------------------------------


def restore(ctx: Context) -> None:
    """Every node powered on, its stack running, no partition, all online and settled.

    Cheap when nothing is wrong; after a failed scenario it undoes what that one
    may have left: a node fenced "off", a stack stopped, a cut cable.
    """
    cluster = ctx.cluster
    for node in cluster.nodes:
        if not node.alive():
            cluster.power_on(node)
        else:
            heal(cluster, node)
            if not _stack_running(node):
                start_stack(node, ctx.timeout)
    names = {n.name for n in cluster.nodes}
    wait_for("every node online on every node",
             lambda: scenarios.all_online(cluster, names), ctx.timeout, interval=0.25)
    settle(cluster, ctx.timeout)


def _stack_running(node: Node) -> bool:
    """corosync or pacemakerd runs: a node booted by a fencing is starting them itself
    (its init starts corosync, then pacemakerd once corosync answers)."""
    return node.alive() and node.sh("pidof corosync >/dev/null || pidof pacemakerd >/dev/null",
                                    check=False, timeout=20).returncode == 0


def _owner(ctx: Context) -> str:
    return wait_for("a serving node", lambda: serving_node(ctx.cluster, ctx.workload),
                    ctx.timeout, interval=scenarios.PROBE_INTERVAL)


def _events_since(ctx: Context, count: int) -> list:
    return list(ctx.cluster.controller.events[count:])


def stop_stack(node: Node, timeout: float) -> None:
    """`systemctl stop pacemaker corosync`, as the init would do it on TERM: clean, in order."""
    node.sh(
        "p=$(pidof pacemakerd) && kill -TERM $p; "
        "while pidof pacemakerd >/dev/null; do sleep 0.2; done; "
        "c=$(pidof corosync) && kill -TERM $c; "
        "while pidof corosync >/dev/null; do sleep 0.2; done; true",
        timeout=timeout)


def launch_corosync(node: Node) -> None:
    """corosync.service's ExecStart, detached: the node's init inherits it."""
    node.sh("COROSYNC_OPTIONS=; [ -r /etc/default/corosync ] && . /etc/default/corosync; "
            "setsid corosync -f $COROSYNC_OPTIONS </dev/null "
            ">>/var/log/clusterstack/corosync.out 2>&1 &", timeout=20)


def launch_pacemaker(node: Node, timeout: float) -> None:
    """pacemaker.service (After=corosync): pacemakerd exits if corosync is not ready yet."""
    node.sh(f"t=$(( $(date +%s) + {int(timeout)} )); "
            "until corosync-cfgtool -s >/dev/null 2>&1; do "
            "[ $(date +%s) -gt $t ] && { echo corosync not ready >&2; exit 1; }; sleep 0.2; done; "
            "set -a; [ -r /etc/default/pacemaker ] && . /etc/default/pacemaker; set +a; "
            "setsid pacemakerd </dev/null >>/var/log/clusterstack/pacemakerd.out 2>&1 &",
            timeout=timeout + 10)


def start_stack(node: Node, timeout: float) -> None:
    launch_corosync(node)
    launch_pacemaker(node, timeout)


def db_started_at(cluster: Cluster) -> float | None:
    """The serving mariadbd's start time (epoch seconds): a restart changes it."""
    out = scenarios.sql(cluster, "SELECT UNIX_TIMESTAMP() - VARIABLE_VALUE FROM "
                        "information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'UPTIME'")
    try:
        return float(out) if out else None
    except ValueError:
        return None


def parse_failcount(text: str) -> float:
    """`crm_failcount --query` output: `scope=status  name=fail-count-db value=1`."""
    match = re.search(r"value=(\S+)", text)
    if not match or match.group(1) in ("(null)", ""):
        return 0
    value = match.group(1).upper()
    return math.inf if value in ("INFINITY", "+INFINITY") else float(value)


def failcount(node: Node, resource: str, on: str) -> float:
    result = node.run(["crm_failcount", "--query", "-r", resource, "-N", on], check=False,
                      timeout=20)
    return parse_failcount(result.stdout)


def cleanup(node: Node, shell: str, resource: str) -> None:
    if shell == "crmsh":
        node.run(["crm", "resource", "cleanup", resource], timeout=60)
    else:
        node.run(["pcs", "resource", "cleanup", resource], timeout=60)


def set_meta(node: Node, resource: str, name: str, value: str | None) -> None:
    argv = ["crm_resource", "--resource", resource, "--meta"]
    argv += (["--set-parameter", name, "--parameter-value", value] if value is not None
             else ["--delete-parameter", name])
    node.run(argv, timeout=60)


def set_property(node: Node, name: str, value: str | None) -> None:
    argv = ["crm_attribute", "--type", "crm_config", "--name", name]
    argv += ["--update", value] if value is not None else ["--delete"]
    node.run(argv, timeout=60)


def _other(ctx: Context, *names: str) -> Node:
    for node in ctx.cluster.live_nodes():
        if node.name not in names:
            return node
    raise ScenarioError(f"no live node besides {', '.join(names)}")


def _dc(ctx: Context) -> str:
    def current() -> str | None:
        for node in ctx.cluster.live_nodes():
            seen = ctx.cluster.membership(node)
            if seen is not None and seen.dc:
                return seen.dc
        return None
    return wait_for("a DC", current, ctx.timeout)


def _wait_rejoin(ctx: Context, name: str, started: float) -> float | None:
    """With stonith-action=reboot, until the fenced node is online again.

    Its "on" comes a moment after the "off": a settle() in between would see a
    node booting and ask its pacemaker, not yet running, to wait.
    """
    if ctx.fence_action != "reboot":
        return None
    wait_for(f"{name} to be powered on again by its fencing",
             lambda: any(e.node == name and e.action == "on" and e.result == "ok"
                         for e in ctx.cluster.controller.events), ctx.timeout, interval=0.1)
    wait_for(f"{name} to rejoin after its reboot",
             lambda: scenarios.all_online(ctx.cluster, {name}), ctx.timeout, interval=0.25)
    return time.monotonic() - started


def _fenced(ctx: Context, name: str, since: int) -> bool:
    return any(e.node == name and e.action == "off" and e.result == "ok"
               for e in _events_since(ctx, since))


def _require_fenced(ctx: Context, name: str, since: int) -> None:
    if not _fenced(ctx, name, since):
        raise ScenarioError(f"{name} was not fenced")


def _require_no_fencing(ctx: Context, since: int, what: str) -> None:
    events = _events_since(ctx, since)
    if events:
        raise ScenarioError(f"{what} fenced {', '.join(f'{e.action} {e.node}' for e in events)}")


def observe(ctx: Context, step: str, expect: Callable[[Node], Expect] | None = None) -> None:
    """Every live node's exporter and check at this point of a scenario, if monitored."""
    if ctx.monitor is not None:
        ctx.monitor.observe(step, expect)


def _everyone(ctx: Context) -> frozenset[str]:
    return frozenset(n.name for n in ctx.cluster.nodes)


# --- ResourceRecover: the database dies under Pacemaker ---------------------------------


DB_RESOURCE = "db"
MIGRATION_THRESHOLD = 2


def _kill_db(node: Node) -> None:
    node.sh("kill -KILL $(cat /run/mysqld/mysqld.pid)", timeout=20)


def _resource_failure(ctx: Context) -> Figure:
    """mariadbd killed: restarted in place (fail-count 1); killed again, past the
    migration-threshold: the group moves; `crm resource cleanup` clears the count."""
    cluster = ctx.cluster
    restore(ctx)
    owner = _owner(ctx)
    admin = _other(ctx, owner)
    before = len(cluster.controller.events)
    set_meta(admin, config.SERVICE_GROUP, "migration-threshold", str(MIGRATION_THRESHOLD))
    try:
        settle(cluster, ctx.timeout)
        started = time.monotonic()
        _kill_db(cluster.node(owner))
        wait_for(f"MariaDB back on {owner}",
                 lambda: serving_node(cluster, ctx.workload) == owner and
                 failcount(admin, DB_RESOURCE, owner) >= 1, ctx.timeout,
                 interval=scenarios.PROBE_INTERVAL)
        in_place = time.monotonic() - started
        count = failcount(admin, DB_RESOURCE, owner)
        if count != 1:
            raise ScenarioError(f"fail-count of {DB_RESOURCE} on {owner} is {count}, not 1")
        settle(cluster, ctx.timeout)
        # A failed monitor and a fail-count of 1 are WARNING (the check's defaults).
        observe(ctx, "resource-failure: restarted in place", lambda n: Expect(
            _everyone(ctx), frozenset({CheckState.WARNING}),
            (f"fail-counts: {DB_RESOURCE} on {owner}=1",),
            fail_counts=(FailCount(owner, DB_RESOURCE, 1),)))
        started = time.monotonic()
        _kill_db(cluster.node(owner))
        target = wait_for(f"MariaDB on a node other than {owner}",
                          lambda: (lambda s: s if s and s != owner else None)(
                              serving_node(cluster, ctx.workload)),
                          ctx.timeout, interval=scenarios.PROBE_INTERVAL)
        moved = time.monotonic() - started
        settle(cluster, ctx.timeout)
        count = failcount(admin, DB_RESOURCE, owner)
        if count < MIGRATION_THRESHOLD:
            raise ScenarioError(f"fail-count on {owner} after the move is {count}")
        observe(ctx, "resource-failure: moved", lambda n: Expect(
            _everyone(ctx), frozenset({CheckState.WARNING}),
            (f"fail-counts: {DB_RESOURCE} on {owner}={count:g}",),
            fail_counts=(FailCount(owner, DB_RESOURCE, count),)))
        cleanup(admin, ctx.shell, DB_RESOURCE)
        wait_for(f"the fail-count on {owner} to be cleared",
                 lambda: failcount(admin, DB_RESOURCE, owner) == 0, ctx.timeout)
    finally:
        set_meta(admin, config.SERVICE_GROUP, "migration-threshold", None)
    settle(cluster, ctx.timeout)
    after = serving_node(cluster, ctx.workload)
    if after != target:
        raise ScenarioError(f"after the cleanup the service moved again, {target} -> {after}")
    _require_no_fencing(ctx, before, "a resource failure")
    return Figure(moved, f"restarted in place on {owner} in {in_place:.1f} s "
                  f"(fail-count 1), moved after {MIGRATION_THRESHOLD} failures, "
                  "cleanup cleared the count", owner, target)


# --- Restart: a node leaves and rejoins cleanly, the service does not bounce --------------


def _restart_node(ctx: Context) -> Figure:
    cluster = ctx.cluster
    restore(ctx)
    owner = _owner(ctx)
    db_start = db_started_at(cluster)
    node = _other(ctx, owner)
    before = len(cluster.controller.events)
    stop_stack(node, ctx.timeout)
    wait_for(f"{node.name} offline on {owner}",
             lambda: (lambda s: s is not None and node.name not in s.online)(
                 cluster.membership(cluster.node(owner))), ctx.timeout)
    # Its exporter still answers, without pacemaker metrics, and its check is UNKNOWN;
    # the others see it offline: CRITICAL (--offline-critical 1).
    observe(ctx, f"restart-node: {node.name} stopped", expect_for(
        {node.name: Expect(None, frozenset({CheckState.UNKNOWN}), quorate=None,
                           pacemaker_down=True)},
        Expect(_everyone(ctx) - {node.name}, frozenset({CheckState.CRITICAL}),
               (f"nodes offline: {node.name}",))))
    started = time.monotonic()
    start_stack(node, ctx.timeout)
    wait_for(f"{node.name} online again on every node",
             lambda: scenarios.all_online(cluster, {n.name for n in cluster.nodes}),
             ctx.timeout, interval=0.25)
    rejoin = time.monotonic() - started
    settle(cluster, ctx.timeout)
    after = serving_node(cluster, ctx.workload)
    if after != owner:
        raise ScenarioError(f"the service moved from {owner} to {after} when {node.name} "
                            "rejoined (resource-stickiness)")
    if ctx.workload == "mariadb":
        now = db_started_at(cluster)
        if db_start is None or now is None or abs(now - db_start) > 2:
            raise ScenarioError(f"MariaDB on {owner} was restarted (started at {db_start}, "
                                f"now {now})")
    _require_no_fencing(ctx, before, "a clean stop and start")
    return Figure(rejoin, f"{node.name} stopped cleanly and rejoined; service stayed on "
                  f"{owner}, not restarted", rejoin_s=rejoin)


# --- ComponentFail: corosync dies on the DC ----------------------------------------------


def _dc_corosync(ctx: Context) -> Figure:
    cluster = ctx.cluster
    restore(ctx)
    owner = _owner(ctx)
    dc = _dc(ctx)
    before = len(cluster.controller.events)
    started = time.monotonic()
    cluster.node(dc).sh("kill -KILL $(pidof corosync)", timeout=20)

    def new_dc() -> str | None:
        for node in cluster.live_nodes():
            if node.name == dc:
                continue
            seen = cluster.membership(node)
            if seen is not None and seen.dc and seen.dc != dc:
                return seen.dc
        return None

    elected = wait_for("a new DC", new_dc, ctx.timeout, interval=0.25)
    served = wait_for("the service to answer", lambda: serving_node(cluster, ctx.workload),
                      ctx.timeout, interval=scenarios.PROBE_INTERVAL)
    wait_for(f"{dc} to be fenced", lambda: _fenced(ctx, dc, before), ctx.timeout,
             interval=0.1)
    seconds = time.monotonic() - started
    rejoin = _wait_rejoin(ctx, dc, started)
    settle(cluster, ctx.timeout)
    what = "it served too" if dc == owner else f"service stayed on {served}"
    return Figure(seconds, f"DC {dc} fenced, {elected} elected, {what}", dc, elected, rejoin)


# --- SimulStop/SimulStart, StopOnebyOne --------------------------------------------------


def _start_all(ctx: Context) -> float:
    """Start every node's stack at once; seconds until formed and serving again."""
    cluster = ctx.cluster
    started = time.monotonic()
    for node in cluster.nodes:
        launch_corosync(node)
    for node in cluster.nodes:
        launch_pacemaker(node, ctx.timeout)
    names = {n.name for n in cluster.nodes}
    wait_for("every node online on every node", lambda: scenarios.all_online(cluster, names),
             ctx.timeout, interval=0.25)
    wait_for("the service to answer", lambda: serving_node(cluster, ctx.workload),
             ctx.timeout, interval=scenarios.PROBE_INTERVAL)
    return time.monotonic() - started


def _check_row(ctx: Context, row_id: int, note: str) -> None:
    back = scenarios.read_row(ctx.cluster, ctx.workload, row_id)
    if ctx.workload == "mariadb" and back != note:
        raise ScenarioError(f"row {row_id} reads back as {back!r}, not {note!r}")


def _simul_start(ctx: Context) -> Figure:
    cluster = ctx.cluster
    restore(ctx)
    owner = _owner(ctx)
    note = f"written via {owner} before the whole cluster stopped"
    scenarios.write_row(cluster, ctx.workload, 10, note)
    before = len(cluster.controller.events)
    stopped = time.monotonic()
    # The serving node last, so that its resources stop once, not move twice.
    for node in sorted(cluster.nodes, key=lambda n: n.name == owner):
        stop_stack(node, ctx.timeout)
    stop_s = time.monotonic() - stopped
    seconds = _start_all(ctx)
    settle(cluster, ctx.timeout)
    _check_row(ctx, 10, note)
    _require_no_fencing(ctx, before, "stopping and starting every node")
    return Figure(seconds, f"all {len(cluster.nodes)} nodes stopped in {stop_s:.1f} s, "
                  "started at once: formed and serving", owner, serving_node(cluster,
                                                                             ctx.workload))


def _stop_one_by_one(ctx: Context) -> Figure:
    """Stop the nodes one at a time (the service moves, then stops without quorum),
    then start them all at once."""
    cluster = ctx.cluster
    restore(ctx)
    before = len(cluster.controller.events)
    note = "written before the nodes stopped one by one"
    scenarios.write_row(cluster, ctx.workload, 11, note)
    started = time.monotonic()
    order = [n.name for n in cluster.nodes]
    moves = []
    for index, node in enumerate(cluster.nodes):
        stop_stack(node, ctx.timeout)
        rest = cluster.nodes[index + 1:]
        if not rest:
            break
        quorate = len(rest) > len(cluster.nodes) // 2
        watcher = rest[0]
        wait_for(f"{node.name} offline on {watcher.name}",
                 lambda n=node, w=watcher: (lambda s: s is not None and n.name not in s.online)(
                     cluster.membership(w)), ctx.timeout)
        if quorate:
            served = wait_for(f"the service on one of {[n.name for n in rest]}",
                              lambda r=rest: (lambda s: s if s in {n.name for n in r} else None)(
                                  serving_node(cluster, ctx.workload)), ctx.timeout,
                              interval=scenarios.PROBE_INTERVAL)
            moves.append(served)
        else:
            wait_for("the service to stop without quorum",
                     lambda: serving_node(cluster, ctx.workload) is None, ctx.timeout,
                     interval=scenarios.PROBE_INTERVAL)
            moves.append("stopped")
            # Quorum lost: the last node's exporter says quorate 0 and its check CRITICAL;
            # the stopped nodes' exporters answer without pacemaker metrics.
            alone = {n.name for n in rest}
            observe(ctx, f"stop-one-by-one: {', '.join(sorted(alone))} without quorum",
                    lambda n, alone=alone: Expect(
                        frozenset(alone), frozenset({CheckState.CRITICAL}),
                        ("partition without quorum",), quorate=0) if n.name in alone
                    else Expect(None, frozenset({CheckState.UNKNOWN}), quorate=None,
                                pacemaker_down=True))
    stop_s = time.monotonic() - started
    start_s = _start_all(ctx)
    settle(cluster, ctx.timeout)
    _check_row(ctx, 11, note)
    _require_no_fencing(ctx, before, "stopping the nodes one by one")
    return Figure(stop_s, f"stopped {' '.join(order)} in turn (service: "
                  f"{' -> '.join(moves)}); all started again in {start_s:.1f} s")


def _online_after_fencing(ctx: Context, before: int) -> Callable[[Node], bool]:
    """A check for wait_for: the node is online in its own view; a node fenced while
    it started comes back by itself with reboot, and is powered on here with off."""
    cluster = ctx.cluster

    def up(node: Node) -> bool:
        if not node.alive():
            if ctx.fence_action == "off" and _fenced(ctx, node.name, before):
                cluster.power_on(node)
            return False
        seen = cluster.membership(node)
        return seen is not None and node.name in seen.online

    return up


def _start_one_by_one(ctx: Context) -> Figure:
    """Stop every node, then start them one at a time, each once the one before is up.

    The first pair to have quorum does not know the third node's state (the CIB's
    status does not survive a whole-cluster stop) and, startup-fencing being on,
    fences it at once, before or while it starts (seen: the fence landed 0.1 s
    after the third corosync was started): accepted, and said in the detail. A node
    fenced once it had joined is a failure.
    """
    cluster = ctx.cluster
    restore(ctx)
    owner = _owner(ctx)
    for node in sorted(cluster.nodes, key=lambda n: n.name == owner):
        stop_stack(node, ctx.timeout)
    before = len(cluster.controller.events)
    up = _online_after_fencing(ctx, before)
    started = time.monotonic()
    joined: dict[str, float] = {}  # node -> when it was online, on the fence controller's clock
    steps = []
    for node in cluster.nodes:
        if _stack_running(node):  # fenced and rebooted before its turn
            steps.append(f"{node.name} already up")
            continue
        try:
            if node.alive():
                start_stack(node, ctx.timeout)
            else:
                cluster.power_on(node)  # fenced "off" before its turn: booting starts it
        except (CommandError, NodeError):
            if not _fenced(ctx, node.name, before):
                raise
        wait_for(f"{node.name} online in its own view", lambda n=node: up(n),
                 ctx.timeout, interval=0.25)
        joined[node.name] = time.monotonic() - cluster.start_time
        steps.append(f"{node.name} up at {time.monotonic() - started:.1f} s")
    names = {n.name for n in cluster.nodes}
    wait_for("every node online on every node", lambda: scenarios.all_online(cluster, names),
             ctx.timeout, interval=0.25)
    wait_for("the service to answer", lambda: serving_node(cluster, ctx.workload),
             ctx.timeout, interval=scenarios.PROBE_INTERVAL)
    seconds = time.monotonic() - started
    events = _events_since(ctx, before)
    late = [e for e in events if e.node in joined and e.at >= joined[e.node]]
    if late:
        raise ScenarioError(f"a node was fenced after it had joined: {late[0].action} "
                            f"{late[0].node} at {late[0].at:.1f} s")
    settle(cluster, ctx.timeout)
    early = sorted({e.node for e in events if e.action == "off"})
    fenced = (f"; {', '.join(early)}, never seen since the restart, fenced as it started "
              "(startup-fencing)" if early else "")
    return Figure(seconds, "; ".join(steps) + fenced)


# --- fencing fails: the cluster must wait ------------------------------------------------


FENCE_BLOCK_S = 15.0


def no_survivor_serves(ctx: Context, victim: str) -> str | None:
    """Who serves the group other than `victim`, as the survivors and the client see it."""
    cluster = ctx.cluster
    answer = serving_node(cluster, ctx.workload)
    if answer is not None:
        return f"the client reached the service on {answer}"
    members = scenarios.group_members(cluster, ctx.workload)
    for node in cluster.live_nodes():
        seen = cluster.membership(node)
        if seen is None:
            continue
        started = {seen.resources[m] for m in members if m in seen.resources} - {victim}
        if started:
            return f"{node.name} sees the group started on {', '.join(sorted(started))}"
    return None


def _fence_failure(ctx: Context) -> Figure:
    cluster = ctx.cluster
    restore(ctx)
    owner = _owner(ctx)
    admin = _other(ctx, owner)
    before = len(cluster.controller.events)
    # Pacemaker gives up on a node after stonith-max-attempts (10) failures until
    # something else happens; the device fails in about a second, so allow more.
    set_property(admin, "stonith-max-attempts", "1000")
    cluster.controller.break_device()
    try:
        started = time.monotonic()
        cluster.power_off(cluster.node(owner))
        deadline = started + FENCE_BLOCK_S
        while time.monotonic() < deadline:
            wrong = no_survivor_serves(ctx, owner)
            if wrong:
                raise ScenarioError(f"fencing of {owner} failed, yet {wrong}")
            time.sleep(0.5)
        failed = [e for e in _events_since(ctx, before) if e.result != "ok"]
        if not failed:
            raise ScenarioError(f"no fencing of {owner} was attempted in {FENCE_BLOCK_S:.0f} s")
        ok = [e for e in _events_since(ctx, before) if e.result == "ok"]
        if ok:
            raise ScenarioError(f"fencing succeeded with a broken device: {ok[0]}")
    finally:
        cluster.controller.repair_device()
    repaired = time.monotonic()
    target = wait_for(f"the service on a node other than {owner}",
                      lambda: (lambda s: s if s and s != owner else None)(
                          serving_node(cluster, ctx.workload)),
                      ctx.timeout, interval=scenarios.PROBE_INTERVAL)
    seconds = time.monotonic() - repaired
    _require_fenced(ctx, owner, before)
    rejoin = _wait_rejoin(ctx, owner, started)
    restore(ctx)
    set_property(cluster.live_nodes()[0], "stonith-max-attempts", None)
    settle(cluster, ctx.timeout)
    return Figure(seconds, f"{len(failed)} fencing attempts of {owner} failed over "
                  f"{FENCE_BLOCK_S:.0f} s with no fail-over; after the repair moved to "
                  f"{target}", owner, target, rejoin)


# --- SplitBrain 2|1 with a writer --------------------------------------------------------


@dataclass
class Ack:
    """One insert the writer got an answer for."""

    row: int
    at: float  # epoch seconds, as the client's clock read it
    server: str  # @@hostname of the server that committed it


@dataclass
class RowAccount:
    attempted: int
    acknowledged: int
    lost: list[int]
    servers: list[tuple[str, float, float]]  # (server, first ack, last ack) in order
    interleaved: bool  # a server answered again after another had: two were serving


def parse_writer_log(text: str) -> tuple[int, list[Ack]]:
    """The writer's log: `ROW EPOCH SERVER` per attempt, SERVER `-` when it failed."""
    attempted, acks = 0, []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 3:
            continue
        attempted += 1
        if fields[2] != "-":
            acks.append(Ack(int(fields[0]), float(fields[1]), fields[2]))
    return attempted, acks


def account_rows(attempted: int, acks: Sequence[Ack], stored: set[int]) -> RowAccount:
    """Which acknowledged rows are missing, and who served when."""
    lost = sorted(a.row for a in acks if a.row not in stored)
    servers: list[tuple[str, float, float]] = []
    for ack in sorted(acks, key=lambda a: a.at):
        if servers and servers[-1][0] == ack.server:
            servers[-1] = (ack.server, servers[-1][1], ack.at)
        else:
            servers.append((ack.server, ack.at, ack.at))
    names = [s[0] for s in servers]
    interleaved = len(names) != len(set(names))
    return RowAccount(attempted, len(acks), lost, servers, interleaved)


WRITER_LOG = "/tmp/clusterstack-writer.log"
WRITER_STOP = "/tmp/clusterstack-writer.stop"


def writer_script(vip: str) -> str:
    """A client inserting rows through the VIP, one connection per row, for ever."""
    mariadb = shlex.join(["timeout", "3", "mariadb", "--connect-timeout=1", "-h", vip,
                          "-u", config.DB_USER, f"-p{config.DB_PASSWORD}", "-N", "-B",
                          config.DB_NAME])
    return (
        f"rm -f {WRITER_STOP}; : > {WRITER_LOG}; i=0; "
        f"while [ ! -e {WRITER_STOP} ]; do i=$((i+1)); "
        f"h=$({mariadb} -e \"INSERT INTO writes VALUES ($i, @@hostname); "
        "SELECT @@hostname\" 2>/dev/null) || h=-; "
        f"echo \"$i $(date +%s.%N) ${{h:--}}\" >> {WRITER_LOG}; "
        "[ \"$h\" = - ] && sleep 0.1; done"
    )


PARTITION_RULES = (["-A", "INPUT", "-p", "udp", "-j", "DROP"],
                   ["-A", "OUTPUT", "-p", "udp", "-j", "DROP"])


def cut(cluster: Cluster, node: Node) -> None:
    """Drop the node's cluster traffic (knet is UDP) in its own network namespace; the
    client still reaches it over TCP, so a minority that kept serving would be seen."""
    if node.init_pid is None:
        raise ScenarioError(f"{node.name} is not running")
    for rule in PARTITION_RULES:
        cluster.runner.run([*nsenter_net(node.init_pid), "iptables", "-w", *rule], timeout=30)


def heal(cluster: Cluster, node: Node) -> None:
    if not node.alive() or node.init_pid is None:
        return
    cluster.runner.run([*nsenter_net(node.init_pid), "iptables", "-w", "-F"], check=False,
                       timeout=30)


def _writer_log(cluster: Cluster) -> str:
    try:
        return cluster.client.root_path(WRITER_LOG).read_text()
    except FileNotFoundError:
        return ""


def _partition(ctx: Context) -> Figure:
    cluster = ctx.cluster
    restore(ctx)
    owner = _owner(ctx)
    minority = cluster.node(owner)
    for statement in ("CREATE TABLE IF NOT EXISTS writes (id INT PRIMARY KEY, "
                      "host VARCHAR(64))", "DELETE FROM writes"):
        if scenarios.sql(cluster, statement) is None:
            raise ScenarioError(f"the client could not run {statement!r} through the VIP")
    before = len(cluster.controller.events)
    client = cluster.client
    client.sh(f"setsid sh -c {shlex.quote(writer_script(cluster.plan.db_vip))} "
              "</dev/null >/dev/null 2>&1 &", timeout=20)
    macs: list[str] = []
    try:
        wait_for("the writer's first row", lambda: " " + owner in _writer_log(cluster),
                 ctx.timeout)
        started = time.monotonic()
        cut(cluster, minority)
        cut_at = time.time()

        def moved() -> str | None:
            who = scenarios.vip_owner_by_arp(cluster, cluster.plan.db_vip)
            if who and (not macs or macs[-1] != who):
                macs.append(who)
            served = serving_node(cluster, ctx.workload)
            return served if served and served != owner else None

        target = wait_for(f"the service on the majority, not {owner}", moved, ctx.timeout,
                          interval=scenarios.PROBE_INTERVAL)
        seconds = time.monotonic() - started
        heal(cluster, minority)
        time.sleep(2)  # a few rows on the new server
    finally:
        client.sh(f"touch {WRITER_STOP}", check=False, timeout=20)
    wait_for("the writer to stop", lambda: client.run(
        ["pgrep", "-f", WRITER_STOP], check=False, timeout=20).returncode == 1, 30)
    fences = [e for e in _events_since(ctx, before) if e.node == owner and e.action == "off"
              and e.result == "ok"]
    if minority.alive() and not fences:
        # Not fenced: the minority must have stopped its resources by itself.
        log.info("partition: %s was not fenced", owner)
    rejoin = _wait_rejoin(ctx, owner, started)
    restore(ctx)
    attempted, acks = parse_writer_log(_writer_log(cluster))
    stored_text = scenarios.sql(cluster, "SELECT id FROM writes") or ""
    stored = {int(x) for x in stored_text.split()}
    account = account_rows(attempted, acks, stored)
    if account.lost:
        raise ScenarioError(f"{len(account.lost)} acknowledged rows are missing: "
                            f"{account.lost[:10]}")
    if account.interleaved:
        raise ScenarioError(f"two servers answered the writer in turn: {account.servers}")
    if len(set(macs)) > 2 or (len(macs) > 1 and macs[0] != owner):
        raise ScenarioError(f"the VIP answered with the MACs of {macs}")
    first_new = next((s[1] for s in account.servers if s[0] != owner), None)
    if fences and first_new is not None:
        fenced_at = time.time() - (time.monotonic() - cluster.start_time) + fences[0].at
        if first_new < fenced_at - 0.5:
            raise ScenarioError(f"{target} acknowledged a row {fenced_at - first_new:.1f} s "
                                f"before {owner} was fenced")
    last_old = max((s[2] for s in account.servers if s[0] == owner), default=None)
    outage = (first_new - last_old
              if first_new is not None and last_old is not None else None)
    how = "fenced" if fences else "stopped its resources"
    if last_old is not None:
        how += f" (it acknowledged rows until {max(0.0, last_old - cut_at):.1f} s after the cut)"
    return Figure(seconds, f"minority {owner} {how}; {account.acknowledged}/{attempted} rows "
                  f"acknowledged, {len(account.lost)} lost; servers "
                  f"{' -> '.join(s[0] for s in account.servers)}"
                  + (f"; writer outage {outage:.1f} s" if outage is not None else ""),
                  owner, target, rejoin, account.acknowledged, len(account.lost))


# --- a 2-node cluster with corosync-qnetd as tie-breaker ---------------------------------


QNETD_PACKAGES = ("corosync-qdevice", "corosync-qnetd")
# A second cluster beside the running one, on its own switch: TEST-NET-2.
QNETD_PLAN = config.AddressPlan(prefix="198.51.100")
QNETD_WINNER = "node1"  # ffsplit, tie_breaker lowest: node id 1 gets the vote


def total_votes(node: Node) -> int | None:
    result = node.run(["corosync-quorumtool", "-s"], check=False, timeout=20)
    match = re.search(r"Total votes:\s+(\d+)", result.stdout)
    return int(match.group(1)) if match else None


def _qnetd(ctx: Context) -> Figure:
    """Two nodes and a corosync-qnetd in a third namespace (the pair's client): cut the
    nodes apart; the one qnetd gives its vote keeps quorum, fences the other and keeps
    (or takes) the service."""
    main = ctx.cluster
    plan = QNETD_PLAN
    pair = Cluster(main.lower, main.run_dir / "qnetd", 2, main.runner, main.token_ms,
                   plan=plan, qdevice_host=plan.client)
    leftovers: list[str] = []
    fences = ""
    try:
        pair.prepare()
        pair.boot()
        began = pair.start_daemons()
        scenarios.formation(pair, began, ctx.timeout)
        # corosync-qnetd.service runs it as coroqnetd with RuntimeDirectory=corosync-qnetd.
        pair.client.sh("install -d -o coroqnetd -g coroqnetd /run/corosync-qnetd && "
                       "setsid runuser -u coroqnetd -- corosync-qnetd -f -s off </dev/null "
                       ">>/var/log/clusterstack/qnetd.out 2>&1 &", timeout=20)
        for node in pair.nodes:
            node.sh("mkdir -p /run/corosync-qdevice && setsid corosync-qdevice -f "
                    "</dev/null >>/var/log/clusterstack/qdevice.out 2>&1 &", timeout=20)
        for node in pair.nodes:
            wait_for(f"qnetd's vote on {node.name}", lambda n=node: total_votes(n) == 3,
                     ctx.timeout, interval=0.25)
        owner = scenarios.start_service(pair, ctx.shell, "dummy", ctx.timeout,
                                        ctx.fence_action)
        loser = next(n.name for n in pair.nodes if n.name != QNETD_WINNER)
        started = time.monotonic()
        cut(pair, pair.node(owner))

        def settled() -> bool:
            fenced = any(e.node == loser and e.action == "off" and e.result == "ok"
                         for e in pair.controller.events)
            return fenced and scenarios.vip_owner_by_arp(pair, plan.db_vip) == QNETD_WINNER

        wait_for(f"{loser} fenced and the service on {QNETD_WINNER}", settled, ctx.timeout,
                 interval=scenarios.PROBE_INTERVAL)
        seconds = time.monotonic() - started
        wrong = [e for e in pair.controller.events if e.node == QNETD_WINNER
                 and e.action == "off"]
        if wrong:
            raise ScenarioError(f"{QNETD_WINNER}, which had qnetd's vote, was fenced")
        quorate = pair.node(QNETD_WINNER).run(["corosync-quorumtool", "-s"], check=False,
                                              timeout=20).stdout
        # Alone, node1 has 1 of 3 expected votes: quorate only with qnetd's.
        if not re.search(r"Quorate:\s+Yes", quorate) or total_votes(
                pair.node(QNETD_WINNER)) != 2:
            raise ScenarioError(f"{QNETD_WINNER} is not quorate by qnetd's vote after the "
                                f"split:\n{quorate}")
        fences = ", ".join(f"{e.action} {e.node}" for e in pair.controller.events)
    finally:
        leftovers = pair.teardown()
        if ctx.logs is not None:
            pair.collect_logs(ctx.logs / "qnetd")
    if leftovers:
        raise ScenarioError("the qnetd pair left: " + "; ".join(leftovers))
    how = "kept the service" if owner == QNETD_WINNER else f"took the service from {owner}"
    return Figure(seconds, f"split 1|1: {QNETD_WINNER} quorate with qnetd's vote (2 of 3), "
                  f"{how}; the pair's fencing: {fences}", owner, QNETD_WINNER)


# --- the registry ------------------------------------------------------------------------


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("kill", "kill fail-over", 2,
             "serving node killed until the VIP answers from another node", _kill, True),
    Scenario("standby", "standby fail-over", 2,
             "standby set until the VIP answers from another node", _standby),
    Scenario("vrrp", "vrrp fail-over", 2,
             "keepalived master stopped until the backup's MAC answers", _vrrp),
    Scenario("resource-failure", "resource failure", 2,
             "second mariadbd kill until MariaDB answers from another node",
             _resource_failure),
    Scenario("restart-node", "clean node restart", 2,
             "stack started again until the node is online everywhere", _restart_node),
    Scenario("dc-corosync", "corosync killed on the DC", 3,
             "corosync killed until a new DC is elected and the service answers",
             _dc_corosync),
    Scenario("simul-start", "simultaneous start", 2,
             "all nodes started at once until formed and the service answers", _simul_start),
    Scenario("stop-one-by-one", "stop one by one", 3,
             "first stop until the last node is stopped", _stop_one_by_one),
    Scenario("start-one-by-one", "start one by one", 3,
             "first start until every node is online and the service answers",
             _start_one_by_one),
    Scenario("fence-failure", "fence failure", 2,
             "fence device repaired until the service answers from another node",
             _fence_failure),
    Scenario("partition", "network partition 2|1", 3,
             "cluster traffic cut until the service answers from the majority", _partition),
    Scenario("qnetd", "2-node split with qnetd", 2,
             "cut until the loser is fenced and the VIP answers from qnetd's choice",
             _qnetd, packages=QNETD_PACKAGES),
)


def by_name() -> dict[str, Scenario]:
    return {s.name: s for s in SCENARIOS}


def select(text: str, nodes: int) -> Selection:
    """`short`, `full` or `NAME[,NAME...]`; SelectionError names what is wrong."""
    text = (text or "").strip()
    known = by_name()
    if text == "short":
        return Selection("short", "dummy", (known["kill"],))
    if text == "full":
        fits = tuple(s for s in SCENARIOS if s.min_nodes <= nodes)
        return Selection("full", "mariadb", fits,
                         tuple(s for s in SCENARIOS if s.min_nodes > nodes))
    names = [n.strip() for n in text.split(",")]
    if not text or any(not n for n in names):
        raise SelectionError(f"{text!r}: expected short, full or a comma-separated "
                             f"list of names ({', '.join(known)})")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SelectionError(f"unknown scenario {', '.join(map(repr, unknown))}; "
                             f"known: short, full, {', '.join(known)}")
    chosen: list[Scenario] = []
    for name in names:
        if known[name] not in chosen:
            chosen.append(known[name])
    small = [s for s in chosen if s.min_nodes > nodes]
    if small:
        raise SelectionError("; ".join(
            f"{s.name} needs {s.min_nodes} nodes" for s in small) + f", --nodes is {nodes}")
    return Selection("named", "mariadb", tuple(chosen))
