"""The monitoring tools on a running cluster: every node's ha_cluster_exporter and check_pacemaker.

What an administrator's Prometheus and Icinga see, looked at from inside each node at
each step of the scenarios: the exporter is scraped over the node's own address (a
TEST-NET address that exists only in the harness's namespaces) and check_pacemaker runs
as its command definition runs it (no arguments).  `Monitor.observe` records one row
per node and raises MonitoringError, a ScenarioError, when a metric or the check's
state is not the cluster's real state: a wrong metric fails the scenario.

On the script tier the nodes' init starts the exporter like corosync and pacemaker;
what it runs is read from ha_cluster_exporter.service and its drop-ins in the root
(`exporter_service`), so that with our archive the drop-in and start wrapper of
prometheus-hacluster-exporter-debian are what runs.
"""

from __future__ import annotations

import json
import logging
import mmap
import re
import secrets
import shlex
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import Enum, IntEnum
from pathlib import Path

from builder.base.command import CommandError

from .cluster import Cluster
from .node import Node, NodeError, script_path
from .options import MonitorRow
from .scenarios import ScenarioError

log = logging.getLogger("clusterstack.cluster")

EXPORTER_PORT = 9664
EXPORTER_UNIT = "ha_cluster_exporter.service"
# systemd's unit directories, lowest precedence first (a unit in /etc replaces one in
# /usr/lib; a drop-in of the same name in /etc replaces the one in /usr/lib).
UNIT_DIRS = ("lib/systemd/system", "usr/lib/systemd/system", "run/systemd/system",
             "etc/systemd/system")
# Where the harness puts its own files into a node (before its first boot).
LAUNCHER = "/usr/local/sbin/clusterstack-exporter"  # started by scripts/clusterstack-init
PROBE = "/usr/local/sbin/clusterstack-probe"
# monitoring-plugins-pacemaker's path, and where the source tree's copy goes in a root
# without the package (Debian's own stack: no package of Debian has the check).
CHECK = "/usr/lib/nagios/plugins/check_pacemaker"
CHECK_LOCAL = "/usr/local/lib/nagios/plugins/check_pacemaker"
CHECK_SOURCE = Path(__file__).resolve().parents[3] / "monitoring" / "check_pacemaker"
EXPORTER_BINARY = "usr/bin/ha_cluster_exporter"
EXPORTER_PACKAGE = "prometheus-hacluster-exporter"
# The metric our patch of the exporter's corosync collector adds
# (patches/prometheus-hacluster-exporter/0003-corosync-3-link-status.patch).  Its name is
# a string in our binary and in no build of Debian's 1.4.0, whose collector reads only
# corosync 2's rings: it tells an exporter that reads corosync 3's links from one that
# does not, whatever the package's version says.
LINK_METRIC = b"link_peer_connected"
# How long after a kill the survivors' exporter and check must show it.  Measured
# 1-3 s (token 1000 ms plus consensus, then the next scrape); the bound leaves room for
# a loaded machine, and a monitor that needs longer than this has missed a fail-over.
DOWN_BOUND_S = 20.0
WATCH_INTERVAL_S = 0.2


class MonitoringError(ScenarioError):
    """The exporter or the check is missing, does not answer, or says something wrong."""


# --- the exporter's unit, as systemd would start it ------------------------------------


@dataclass(frozen=True)
class ServiceCommand:
    """What systemd runs for a simple service: its environment files and ExecStart."""

    unit: str  # the unit file's path in the root
    dropins: tuple[str, ...]  # the drop-ins applied, in order
    environment_files: tuple[str, ...]  # "-/path" when a missing file is fine
    exec_start: str


def _unit_lines(text: str) -> Iterable[tuple[str, str, str]]:
    """(section, key, value) of a unit file; continuation lines joined, comments dropped."""
    section = ""
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        if sep:
            yield section, key.strip(), value.strip()


def exporter_service(root: Path, unit: str = EXPORTER_UNIT) -> ServiceCommand | None:
    """`unit` of the root with its drop-ins applied as systemd does; None if not installed.

    Only what starting it needs: EnvironmentFile= (an empty one resets the list) and
    ExecStart= (an empty one resets it; a simple service has exactly one).
    """
    unit_path = None
    for directory in UNIT_DIRS:
        if (root / directory / unit).is_file():
            unit_path = f"{directory}/{unit}"
    if unit_path is None:
        return None
    dropins: dict[str, str] = {}  # by file name: the later directory wins
    for directory in UNIT_DIRS:
        folder = root / directory / f"{unit}.d"
        if folder.is_dir():
            for conf in folder.glob("*.conf"):
                dropins[conf.name] = f"{directory}/{unit}.d/{conf.name}"
    files = [unit_path, *(dropins[name] for name in sorted(dropins))]
    env: list[str] = []
    exec_start: list[str] = []
    for rel in files:
        for section, key, value in _unit_lines((root / rel).read_text()):
            if section != "Service":
                continue
            if key == "EnvironmentFile":
                env = [*env, value] if value else []
            elif key == "ExecStart":
                exec_start = [*exec_start, value] if value else []
    if len(exec_start) != 1:
        raise MonitoringError(f"{unit} in the node root has {len(exec_start)} ExecStart= "
                              f"lines after its drop-ins ({', '.join(files)}), not one")
    return ServiceCommand("/" + unit_path, tuple("/" + d for d in files[1:]), tuple(env),
                          exec_start[0])


def launcher_script(service: ServiceCommand) -> str:
    """A shell script that starts `service` as systemd would, for the script tier's init.

    systemd splits an unquoted $VAR into words and passes ${VAR} as one word; a shell
    does the first for both, so ${VAR} is quoted here.
    """
    command = service.exec_start.lstrip("-@:+!")  # systemd's ExecStart= prefixes
    command = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", r'"${\1}"', command)
    lines = ["#!/bin/sh",
             f"# {EXPORTER_UNIT} as systemd starts it: {service.unit}"
             + (f" with {', '.join(service.dropins)}" if service.dropins else ""),
             "# (written by the cluster harness from the unit; see builder/cluster/monitoring.py)",
             "set -a"]
    for entry in service.environment_files:
        optional = entry.startswith("-")
        path = shlex.quote(entry.lstrip("-"))
        lines.append(f"[ -r {path} ] && . {path}" if optional else f". {path}")
    lines += ["set +a", f"exec {command}", ""]
    return "\n".join(lines)


# --- Prometheus' text format ------------------------------------------------------------


class MetricsError(ValueError):
    """The exporter's answer is not Prometheus' text exposition format."""


@dataclass(frozen=True)
class Sample:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float

    def label(self, key: str) -> str:
        return dict(self.labels).get(key, "")


@dataclass(frozen=True)
class Metrics:
    samples: tuple[Sample, ...]

    def named(self, name: str, **labels: str) -> list[Sample]:
        return [s for s in self.samples if s.name == name
                and all(s.label(k) == v for k, v in labels.items())]


SAMPLE_LINE = re.compile(r"(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)"
                         r"(?:\{(?P<labels>.*)\})?[ \t]+(?P<value>\S+)(?:[ \t]+-?\d+)?[ \t]*")
LABEL_PAIR = re.compile(r'[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*"((?:[^"\\]|\\.)*)"[ \t]*')
ESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def _labels(text: str, number: int) -> tuple[tuple[str, str], ...]:
    pairs = []
    pos = 0
    while pos < len(text):
        match = LABEL_PAIR.match(text, pos)
        if not match:
            raise MetricsError(f"line {number}: cannot read the labels {{{text}}}")
        value = re.sub(r"\\[\\\"n]", lambda m: ESCAPES[m.group(0)], match.group(2))
        pairs.append((match.group(1), value))
        pos = match.end()
        if pos < len(text):
            if text[pos] != ",":
                raise MetricsError(f"line {number}: expected ',' in the labels {{{text}}}")
            pos += 1
    return tuple(pairs)


def parse_metrics(text: str) -> Metrics:
    """Every sample of an exposition in Prometheus' text format (version 0.0.4)."""
    samples = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = SAMPLE_LINE.fullmatch(line)
        if not match:
            raise MetricsError(f"line {number}: not a sample: {line[:120]!r}")
        try:
            value = float(match.group("value"))  # also +Inf, -Inf, NaN
        except ValueError:
            raise MetricsError(f"line {number}: {match.group('value')!r} is no number") from None
        samples.append(Sample(match.group("name"), _labels(match.group("labels") or "", number),
                              value))
    return Metrics(tuple(samples))


# --- what the exporter says -------------------------------------------------------------


@dataclass(frozen=True)
class Ring:
    number: str
    address: str
    healthy: bool


@dataclass(frozen=True)
class FailCount:
    node: str
    resource: str
    count: float


@dataclass(frozen=True)
class ExporterView:
    """The metrics the scenarios judge, from one scrape."""

    nodes: tuple[str, ...]  # every node of ha_cluster_pacemaker_nodes
    online: tuple[str, ...]  # those with status="online" 1
    unclean: tuple[str, ...]
    nodes_online: int | None  # the sum of ha_cluster_pacemaker_nodes{status="online"}
    quorate: int | None  # None: no corosync metrics (its collector failed)
    ring_errors: int | None
    rings: tuple[Ring, ...]
    fail_counts: tuple[FailCount, ...]
    collectors: tuple[tuple[str, bool], ...]  # ha_cluster_scrape_success{collector}

    def collector_ok(self, name: str) -> bool | None:
        return dict(self.collectors).get(name)

    def fail_count(self, node: str, resource: str) -> float:
        return sum(f.count for f in self.fail_counts if f.node == node and f.resource == resource)

    @property
    def max_fail_count(self) -> float:
        return max((f.count for f in self.fail_counts), default=0.0)


def _single(metrics: Metrics, name: str) -> float | None:
    found = metrics.named(name)
    if len(found) > 1:
        raise MetricsError(f"{name} appears {len(found)} times")
    return found[0].value if found else None


def exporter_view(metrics: Metrics) -> ExporterView:
    nodes = metrics.named("ha_cluster_pacemaker_nodes")
    by_status: dict[str, list[str]] = {}
    for sample in nodes:
        if sample.value == 1:
            by_status.setdefault(sample.label("status"), []).append(sample.label("node"))
    online_samples = [s for s in nodes if s.label("status") == "online"]
    quorate = _single(metrics, "ha_cluster_corosync_quorate")
    ring_errors = _single(metrics, "ha_cluster_corosync_ring_errors")
    return ExporterView(
        nodes=tuple(sorted({s.label("node") for s in nodes})),
        online=tuple(sorted(by_status.get("online", []))),
        unclean=tuple(sorted(by_status.get("unclean", []))),
        nodes_online=int(sum(s.value for s in online_samples)) if online_samples else None,
        quorate=None if quorate is None else int(quorate),
        ring_errors=None if ring_errors is None else int(ring_errors),
        rings=tuple(Ring(s.label("number"), s.label("address"), s.value == 1)
                    for s in metrics.named("ha_cluster_corosync_rings")),
        fail_counts=tuple(FailCount(s.label("node"), s.label("resource"), s.value)
                          for s in metrics.named("ha_cluster_pacemaker_fail_count")),
        collectors=tuple(sorted((s.label("collector"), s.value == 1)
                                for s in metrics.named("ha_cluster_scrape_success"))))


# --- what corosync says of its links -----------------------------------------------------


# Upstream ha_cluster_exporter 1.4.0's regex for `corosync-cfgtool -s`
# (collector/corosync/parser.go, parseRings), as Debian's binary has it: corosync 2's
# `RING ID n` and 2.99's `Link ID n`, then `id|addr = A` and `status = ...`.  Kept here to
# say why that exporter's ring metrics are missing (the report's "exporter gap"); our
# build's patch reads corosync 3's links (LINK_METRIC).
EXPORTER_RING_RE = re.compile(r"(?m)(?P<prefix>RING|Link) ID (?P<number>\d+)\s+"
                              r"(?P<id>id|addr)\s+= (?P<address>.+)\s+status\s+= "
                              r"(?P<status>.+)")
LINK_HEAD = re.compile(r"LINK ID (?P<number>\d+)(?: (?P<transport>\S+))?")
LINK_ADDR = re.compile(r"addr\s*=\s*(?P<address>\S+)")
LINK_PEER = re.compile(r"nodeid:\s*(?P<id>\d+):\s*(?P<state>.+)")


@dataclass(frozen=True)
class Link:
    """One knet link of `corosync-cfgtool -s` (corosync 3)."""

    number: str
    address: str
    peers: tuple[tuple[str, str], ...]  # (node id, "localhost" | "connected" | ...)

    @property
    def down(self) -> tuple[str, ...]:
        return tuple(i for i, state in self.peers if state not in ("localhost", "connected"))


def parse_cfgtool(text: str) -> tuple[Link, ...]:
    """corosync 3's `corosync-cfgtool -s`::

        Local node ID 1, transport knet
        LINK ID 0 udp
                addr    = 192.0.2.1
                status:
                        nodeid:          1:     localhost
                        nodeid:          2:     connected
    """
    links: list[Link] = []
    number = address = None
    peers: list[tuple[str, str]] = []

    def close() -> None:
        if number is not None:
            links.append(Link(number, address or "", tuple(peers)))

    for line in text.splitlines():
        stripped = line.strip()
        head = LINK_HEAD.fullmatch(stripped)
        if head:
            close()
            number, address, peers = head.group("number"), None, []
        elif number is not None and (m := LINK_ADDR.fullmatch(stripped)):
            address = m.group("address")
        elif number is not None and (m := LINK_PEER.fullmatch(stripped)):
            peers.append((m.group("id"), m.group("state").strip()))
    close()
    return tuple(links)


# --- what the check says ----------------------------------------------------------------


class CheckState(IntEnum):
    """The monitoring plugin API's states, by exit status."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


class CheckOutputError(ValueError):
    """check_pacemaker's exit status or output is not what the plugin API says."""


@dataclass(frozen=True)
class CheckResult:
    state: CheckState
    line: str  # the status line without its perfdata
    perfdata: tuple[tuple[str, float], ...]

    def perf(self, label: str) -> float | None:
        return dict(self.perfdata).get(label)


CHECK_LINE = re.compile(r"PACEMAKER (?P<state>OK|WARNING|CRITICAL|UNKNOWN) - (?P<text>.*)")
PERF_ITEM = re.compile(r"'(?P<label>[^']+)'=(?P<value>-?[0-9.]+)\S*")


def parse_check(returncode: int | None, stdout: str) -> CheckResult:
    """The plugin's exit status and first line: `PACEMAKER STATE - text | perfdata`."""
    if returncode not in tuple(CheckState):
        raise CheckOutputError(f"exit status {returncode} is no plugin state (0-3)")
    first = stdout.splitlines()[0] if stdout.strip() else ""
    text, _, perf = first.partition(" | ")
    match = CHECK_LINE.fullmatch(text)
    if not match:
        raise CheckOutputError(f"output is not 'PACEMAKER STATE - ...': {first[:200]!r}")
    state = CheckState[match.group("state")]
    if state != returncode:
        raise CheckOutputError(f"says {state.name} but exited {returncode}: {first[:200]!r}")
    perfdata = []
    for item in perf.split():
        found = PERF_ITEM.fullmatch(item)
        if not found:
            raise CheckOutputError(f"perfdata item {item!r} is not 'label'=value;...")
        perfdata.append((found.group("label"), float(found.group("value"))))
    return CheckResult(state, text, tuple(perfdata))


# --- one look at one node ---------------------------------------------------------------


@dataclass(frozen=True)
class NodeLook:
    """One node's exporter and check at one moment."""

    node: str
    url: str
    scrape_ms: float
    scrape_error: str | None  # None: HTTP 200 with a parseable body
    exporter_rss_kib: int | None  # None: no exporter process runs
    view: ExporterView | None  # None when the scrape failed
    check: CheckResult
    check_ms: float
    metrics_text: str
    links: tuple[Link, ...] | None = None  # corosync-cfgtool -s; None: corosync not running
    cfgtool_text: str = ""
    # When the scrape and the check ended (the host's monotonic clock, which the nodes
    # share); None: the probe did not say.
    scraped_at: float | None = None
    checked_at: float | None = None

    @property
    def exporter_rss_mib(self) -> float | None:
        return None if self.exporter_rss_kib is None else round(self.exporter_rss_kib / 1024, 1)


def parse_probe(node: str, url: str, stdout: str, body: str) -> NodeLook:
    """scripts/monitoring-probe's JSON and the body it saved; ValueError says what is wrong."""
    try:
        data = json.loads(stdout)
        scrape, check = data["scrape"], data["check"]
        exporters = data["exporters"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"the probe's output is not its JSON ({exc}): {stdout[:200]!r}") \
            from None
    if check.get("error"):
        raise CheckOutputError(f"check_pacemaker could not run: {check['error']}")
    try:
        result = parse_check(check.get("returncode"), check.get("stdout", ""))
    except CheckOutputError as exc:
        stderr = (check.get("stderr") or "").strip().splitlines()
        raise CheckOutputError(f"{exc}" + (f" (stderr: {stderr[-1]})" if stderr else "")) \
            from None
    error = scrape.get("error")
    view = None
    if error is None and scrape.get("status") != 200:
        error = f"HTTP status {scrape.get('status')}"
    if error is None:
        try:
            view = exporter_view(parse_metrics(body))
        except MetricsError as exc:
            error = f"the answer is not Prometheus' text format: {exc}"
    if len(exporters) > 1:
        raise ValueError(f"{len(exporters)} ha_cluster_exporter processes run "
                         f"(pids {', '.join(str(e['pid']) for e in exporters)})")
    rss = exporters[0]["rss_kib"] if exporters else None
    cfgtool = data.get("cfgtool") or ""
    links = parse_cfgtool(cfgtool) if "LINK ID" in cfgtool else None
    return NodeLook(node, url, float(scrape.get("ms", 0.0)), error, rss, view, result,
                    float(check.get("ms", 0.0)), body, links, cfgtool,
                    scrape.get("done"), check.get("done"))


# --- what must be seen ------------------------------------------------------------------


class Rings(Enum):
    """What an exporter that reads corosync 3's links must say of them."""

    HEALTHY = "healthy"  # ha_cluster_corosync_rings present, every one 1; ring_errors 0
    PEER_DOWN = "peer down"  # rings present; ring_errors > 0 (a node of the nodelist is down)


@dataclass(frozen=True)
class Expect:
    """What one node's exporter and check must show at one step."""

    # Exactly these nodes online in ha_cluster_pacemaker_nodes; None with pacemaker_down.
    online: frozenset[str] | None
    check: frozenset[CheckState]
    check_says: tuple[str, ...] = ()  # the check's status line names these
    quorate: int | None = 1  # None: not looked at
    fail_counts: tuple[FailCount, ...] = ()  # these counts exactly (0: absent or 0)
    no_fail_counts: bool = False  # every fail_count sample is 0
    # This node's pacemaker is stopped: the exporter must say its pacemaker collector
    # failed (no stale node metrics) and the check UNKNOWN.
    pacemaker_down: bool = False
    # The exporter's rings and ring_errors; None: not looked at.  Monitor.observe drops it
    # for an exporter that does not read corosync 3's links (Debian's: the report's
    # "exporter gap").
    rings: Rings | None = None


def judge(look: NodeLook, expect: Expect) -> list[str]:
    """What is wrong with `look` against `expect`; empty when it is right."""
    problems = []
    if look.exporter_rss_kib is None:
        problems.append("no ha_cluster_exporter process runs")
    if look.scrape_error is not None or look.view is None:
        problems.append(f"the exporter at {look.url} did not answer: {look.scrape_error}")
    if look.check.state not in expect.check:
        wanted = " or ".join(s.name for s in sorted(expect.check))
        problems.append(f"check_pacemaker is {look.check.state.name}, expected {wanted}: "
                        f"{look.check.line!r}")
    problems += [f"check_pacemaker does not say {text!r}: {look.check.line!r}"
                 for text in expect.check_says if text not in look.check.line]
    view = look.view
    if view is None:
        return problems
    if expect.pacemaker_down:
        if view.collector_ok("pacemaker") is not False:
            problems.append("pacemaker is stopped, yet ha_cluster_scrape_success"
                            '{collector="pacemaker"} is not 0')
        if view.nodes:
            problems.append("pacemaker is stopped, yet the exporter lists nodes: "
                            + ", ".join(view.nodes))
        return problems
    if view.collector_ok("pacemaker") is not True:
        problems.append('ha_cluster_scrape_success{collector="pacemaker"} is not 1')
    if expect.online is not None:
        want = sorted(expect.online)
        if list(view.online) != want or view.nodes_online != len(want):
            problems.append(f'ha_cluster_pacemaker_nodes{{status="online"}} sums to '
                            f"{view.nodes_online} ({', '.join(view.online) or 'none'}), "
                            f"expected {len(want)} ({', '.join(want) or 'none'})")
    if expect.quorate is not None and view.quorate != expect.quorate:
        problems.append(f"ha_cluster_corosync_quorate is {view.quorate}, "
                        f"expected {expect.quorate}")
    for wanted in expect.fail_counts:
        got = view.fail_count(wanted.node, wanted.resource)
        if got != wanted.count:
            problems.append(f'ha_cluster_pacemaker_fail_count{{node="{wanted.node}",'
                            f'resource="{wanted.resource}"}} is {got:g}, '
                            f"expected {wanted.count:g}")
    if expect.no_fail_counts and view.max_fail_count:
        counted = [f"{f.resource} on {f.node}={f.count:g}" for f in view.fail_counts if f.count]
        problems.append(f"ha_cluster_pacemaker_fail_count is not 0: {', '.join(counted)}")
    if expect.rings is not None:
        problems += ring_problems(view, expect.rings)
    return problems


def ring_problems(view: ExporterView, want: Rings) -> list[str]:
    """What is wrong with the exporter's rings and ring_errors against `want`."""
    if not view.rings:
        return ["no ha_cluster_corosync_rings sample: the exporter did not read corosync's "
                "links"]
    if view.ring_errors is None:
        return ["no ha_cluster_corosync_ring_errors sample"]
    faulty = [f"{r.number} ({r.address})" for r in view.rings if not r.healthy]
    if want is Rings.HEALTHY and (view.ring_errors or faulty):
        return [f"ha_cluster_corosync_ring_errors is {view.ring_errors}, expected 0 with "
                f"every node up (faulty rings: {', '.join(faulty) or 'none'})"]
    if want is Rings.PEER_DOWN and not view.ring_errors:
        return ["ha_cluster_corosync_ring_errors is 0 while a node of the cluster is down"]
    return []


def settled(cluster: Cluster) -> Callable[[Node], Expect]:
    """Between scenarios: every live node online and quorate, nothing failed.

    A node that stays powered off (stonith-action=off) is offline, which the check
    reports as CRITICAL (its default --offline-critical is 1).
    """
    live = frozenset(n.name for n in cluster.live_nodes())
    down = sorted(n.name for n in cluster.nodes if n.name not in live)
    # The powered-off node stays in corosync's nodelist: its link is disconnected.
    if down:
        expect = Expect(live, frozenset({CheckState.CRITICAL}),
                        (f"nodes offline: {', '.join(down)}",), no_fail_counts=True,
                        rings=Rings.PEER_DOWN)
    else:
        expect = Expect(live, frozenset({CheckState.OK}), no_fail_counts=True,
                        rings=Rings.HEALTHY)
    return lambda node: expect


def reads_links(root: Path) -> bool:
    """Whether the root's exporter reads corosync 3's links (see LINK_METRIC)."""
    binary = root / EXPORTER_BINARY
    try:
        with binary.open("rb") as file:
            if binary.stat().st_size == 0:
                return False  # mmap refuses an empty file
            with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return data.find(LINK_METRIC) >= 0
    except OSError as exc:
        raise MonitoringError(f"cannot read /{EXPORTER_BINARY} of the node root: {exc}") \
            from exc


def installed_version(root: Path, package: str) -> str | None:
    """`package`'s version in the root's dpkg status; None when it is not installed."""
    status = root / "var/lib/dpkg/status"
    if not status.is_file():
        return None
    for paragraph in status.read_text(errors="replace").split("\n\n"):
        fields = dict(line.split(":", 1) for line in paragraph.splitlines()
                      if ":" in line and not line.startswith((" ", "\t")))
        if fields.get("Package", "").strip() == package and \
                "installed" in fields.get("Status", "").split():
            return fields.get("Version", "").strip() or None
    return None


# --- the monitor --------------------------------------------------------------------------


@dataclass
class DownSeen:
    """When one survivor's exporter and check showed a killed node."""

    node: str
    exporter_s: float | None = None  # the victim no longer online in the exporter
    check_s: float | None = None  # the check CRITICAL
    # The last scrape (check) that still showed the victim online (not CRITICAL): the
    # figures above lie between these and themselves (one look's resolution).
    exporter_before_s: float | None = None
    check_before_s: float | None = None
    # ring_errors > 0 (an exporter that reads corosync 3's links), and the last scrape
    # that still said 0.
    ring_s: float | None = None
    ring_before_s: float | None = None
    look: NodeLook | None = None  # the look that completed both (or the last one)
    error: str | None = None


@dataclass
class Monitor:
    """Looks at every node's exporter and check; keeps the report's rows."""

    cluster: Cluster
    out_dir: Path | None = None  # each row's /metrics text is kept here
    check_path: str = CHECK
    rows: list[MonitorRow] = field(default_factory=list)
    # Where the harness stands in for the archive (the report's workarounds).
    notes: list[str] = field(default_factory=list)
    # What runs: the exporter's start command as its unit says, the check's path.
    tools: list[str] = field(default_factory=list)
    # The exporter reads corosync 3's links (ours): the ring metrics are judged (Expect.rings,
    # the kill watch); False for Debian's, where the report names the gap instead.
    ring_metrics: bool = False
    # Wall time the scenarios spent in observe(): what the monitoring adds to a run
    # (the kill watch runs beside the fail-over and adds nothing).
    spent_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def install(self) -> None:
        """Before the first boot: the probe, the exporter's launcher and, if the root has no
        monitoring-plugins-pacemaker, the check from the source tree, into every node."""
        lower = self.cluster.lower
        if not (lower / EXPORTER_BINARY).exists():
            raise MonitoringError("the node root has no /usr/bin/ha_cluster_exporter "
                                  "(prometheus-hacluster-exporter)")
        service = exporter_service(lower)
        if service is None:
            raise MonitoringError(f"the node root has /{EXPORTER_BINARY} but no "
                                  f"{EXPORTER_UNIT}")
        if (lower / CHECK.lstrip("/")).exists():
            self.check_path = CHECK
        else:
            self.check_path = CHECK_LOCAL
            self.notes.append(
                "monitoring-check-from-source: the node root has no "
                "monitoring-plugins-pacemaker (Debian's stack): check_pacemaker is this "
                f"tree's monitoring/check_pacemaker, copied to {CHECK_LOCAL}")
        self.ring_metrics = reads_links(lower)
        version = installed_version(lower, EXPORTER_PACKAGE)
        self.tools = [
            f"exporter: {service.unit}"
            + (f" with {', '.join(service.dropins)}" if service.dropins else "")
            + f": {service.exec_start}",
            f"exporter package: {EXPORTER_PACKAGE} {version or '(version unknown)'}, "
            + ("reads corosync 3's links: ring metrics judged" if self.ring_metrics else
               "reads only corosync 2's rings: ring metrics not judged (exporter gap)"),
            f"check: {self.check_path}"]
        for node in self.cluster.nodes:
            node.write(LAUNCHER, launcher_script(service), 0o755)
            node.write(PROBE, script_path("monitoring-probe").read_bytes(), 0o755)
            if self.check_path == CHECK_LOCAL:
                node.write(CHECK_LOCAL, CHECK_SOURCE.read_bytes(), 0o755)

    def url(self, node: Node) -> str:
        return f"http://{node.address}:{EXPORTER_PORT}/metrics"

    def look(self, node: Node) -> NodeLook:
        """Scrape `node`'s exporter over its own address and run its check, inside it."""
        url = self.url(node)
        body_file = f"/run/clusterstack/metrics-{secrets.token_hex(4)}.prom"
        try:
            result = node.run(["python3", PROBE, url, body_file, self.check_path],
                              check=False, timeout=60)
            body_path = node.root_path(body_file)
            body = body_path.read_text(errors="replace") if body_path.exists() else ""
            body_path.unlink(missing_ok=True)
        except (CommandError, NodeError, OSError) as exc:
            raise MonitoringError(f"{node.name}: the monitoring probe did not run: {exc}") \
                from exc
        if result.returncode != 0:
            raise MonitoringError(f"{node.name}: the monitoring probe exited "
                                  f"{result.returncode}: {result.stderr_tail.strip()[-300:]}")
        try:
            return parse_probe(node.name, url, result.stdout, body)
        except ValueError as exc:
            raise MonitoringError(f"{node.name}: {exc}") from None

    def look_all(self, nodes: Sequence[Node]) -> list[NodeLook]:
        """Every node at once: a round costs one probe's time, not one per node."""
        with ThreadPoolExecutor(max_workers=max(1, len(nodes)),
                                thread_name_prefix="monitor") as pool:
            return list(pool.map(self.look, nodes))

    def observe(self, step: str, expect: Callable[[Node], Expect] | None = None,
                nodes: Sequence[Node] | None = None) -> list[NodeLook]:
        """Look at `nodes` (every live one), record a row each, raise if one is wrong."""
        began = time.monotonic()
        targets = list(nodes if nodes is not None else self.cluster.live_nodes())
        expect = expect or settled(self.cluster)
        if not self.ring_metrics:
            expect = _without_rings(expect)
        try:
            looks = self.look_all(targets)
        finally:
            self.spent_s += time.monotonic() - began
        problems = []
        for node, look in zip(targets, looks, strict=True):
            self.record(step, look)
            problems += [f"{node.name}: {p}" for p in judge(look, expect(node))]
        if problems:
            raise MonitoringError(f"monitoring at {step!r}: " + "; ".join(problems))
        return looks

    def record(self, step: str, look: NodeLook, seen_s: float | None = None,
               check_s: float | None = None, ring_s: float | None = None) -> MonitorRow:
        view = look.view
        row = MonitorRow(
            step=step, node=look.node,
            nodes_online=view.nodes_online if view else None,
            quorate=view.quorate if view else None,
            fail_count=view.max_fail_count if view and view.fail_counts else None,
            ring_errors=view.ring_errors if view else None,
            rings=len(view.rings) if view else 0,
            links=None if look.links is None else len(look.links),
            links_down=None if look.links is None else sum(bool(k.down) for k in look.links),
            check=look.check.state.name, check_line=look.check.line,
            scrape_ms=look.scrape_ms, check_ms=look.check_ms,
            exporter_rss_mib=look.exporter_rss_mib, seen_s=seen_s, check_s=check_s,
            ring_s=ring_s, scrape_error=look.scrape_error)
        with self._lock:
            self.rows.append(row)
            index = len(self.rows)
        if self.out_dir is not None and look.metrics_text:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            slug = re.sub(r"[^A-Za-z0-9]+", "-", step).strip("-").lower()
            (self.out_dir / f"{index:03d}-{slug}-{look.node}.prom").write_text(look.metrics_text)
            if look.cfgtool_text:
                (self.out_dir / f"{index:03d}-{slug}-{look.node}.cfgtool").write_text(
                    look.cfgtool_text)
        return row

    # --- a kill, as the survivors' monitoring sees it -------------------------------------

    def watch_down(self, victim: str, started: float,
                   bound: float = DOWN_BOUND_S) -> DownWatch:
        """Start watching every other live node until it shows `victim` down (see DownWatch)."""
        survivors = [n for n in self.cluster.live_nodes() if n.name != victim]
        watch = DownWatch(self, victim, survivors, started, bound)
        watch.start()
        return watch


def _without_rings(expect: Callable[[Node], Expect]) -> Callable[[Node], Expect]:
    return lambda node: replace(expect(node), rings=None)


class DownWatch:
    """One thread per survivor, looking until its exporter no longer lists the killed node
    online and its check is CRITICAL, and, with an exporter that reads corosync 3's links,
    its ring_errors is above 0; the times are from the kill (`started`)."""

    def __init__(self, monitor: Monitor, victim: str, survivors: Sequence[Node],
                 started: float, bound: float) -> None:
        self.monitor = monitor
        self.victim = victim
        self.started = started
        self.bound = bound
        self.seen = {n.name: DownSeen(n.name) for n in survivors}
        self._threads = [threading.Thread(target=self._watch, args=(n,), daemon=True,
                                          name=f"watch-{n.name}") for n in survivors]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def _watch(self, node: Node) -> None:
        seen = self.seen[node.name]
        while True:
            try:
                look = self.monitor.look(node)
            except MonitoringError as exc:
                seen.error = str(exc)
                look = None
            now = time.monotonic() - self.started
            if look is not None:
                seen.look = look
                # When that scrape (check) ended; the look's end if the probe did not say.
                scraped = now if look.scraped_at is None else look.scraped_at - self.started
                checked = now if look.checked_at is None else look.checked_at - self.started
                if seen.exporter_s is None and look.view is not None and look.view.nodes:
                    if self.victim not in look.view.online:
                        seen.exporter_s = scraped
                    else:
                        seen.exporter_before_s = scraped
                if seen.check_s is None:
                    if look.check.state == CheckState.CRITICAL:
                        seen.check_s = checked
                    else:
                        seen.check_before_s = checked
                if self.monitor.ring_metrics and seen.ring_s is None and look.view is not None:
                    if look.view.ring_errors:
                        seen.ring_s = scraped
                    else:
                        seen.ring_before_s = scraped
            if self._complete(seen) or now > self.bound:
                return
            time.sleep(WATCH_INTERVAL_S)

    def _complete(self, seen: DownSeen) -> bool:
        return seen.exporter_s is not None and seen.check_s is not None and \
            (seen.ring_s is not None or not self.monitor.ring_metrics)

    def finish(self, step: str) -> list[DownSeen]:
        """Wait for the watchers, record a row per survivor, raise if one missed the kill."""
        for thread in self._threads:
            thread.join(timeout=self.bound + 90)
        problems = []
        for seen in self.seen.values():
            if seen.look is not None:
                self.monitor.record(step, seen.look, seen.exporter_s, seen.check_s,
                                    seen.ring_s)
            if seen.exporter_s is None:
                problems.append(f"{seen.node}: the exporter still listed {self.victim} online "
                                f"{self.bound:.0f} s after the kill"
                                + (f" ({seen.error})" if seen.error else ""))
            if seen.check_s is None:
                state = seen.look.check.line if seen.look else seen.error
                problems.append(f"{seen.node}: check_pacemaker was not CRITICAL within "
                                f"{self.bound:.0f} s of the kill ({state})")
            if self.monitor.ring_metrics and seen.ring_s is None:
                view = seen.look.view if seen.look else None
                said = "no scrape" if view is None else (
                    f"{len(view.rings)} ring(s), ring_errors {view.ring_errors}")
                problems.append(f"{seen.node}: ha_cluster_corosync_ring_errors stayed 0 for "
                                f"{self.bound:.0f} s after the kill of {self.victim} ({said})")
        if problems:
            raise MonitoringError(f"monitoring at {step!r}: " + "; ".join(problems))
        return list(self.seen.values())


# --- helpers for the scenarios ------------------------------------------------------------


def expect_for(mapping: Mapping[str, Expect], default: Expect) -> Callable[[Node], Expect]:
    return lambda node: mapping.get(node.name, default)
