"""What a cluster run is asked to do, and what it found."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CACHE = Path("/var/cache/clusterstack-tests")
DEFAULT_MIRROR = "http://deb.debian.org/debian"


@dataclass
class ClusterOptions:
    suite: str = "trixie"
    mirror: str = DEFAULT_MIRROR
    # Full one-line apt sources for *our* archive, e.g.
    # "deb [signed-by=/etc/apt/keyrings/clusterstack.gpg] http://127.0.0.1:8080/ trixie main".
    extra_sources: list[str] = field(default_factory=list)
    # Key files named by the signed-by= of extra_sources; copied to that path inside the root.
    extra_keys: list[Path] = field(default_factory=list)
    nodes: int = 3
    # "short": formation + one kill fail-over (Dummy service); "full": every scenario of
    # faults.SCENARIOS the node count allows; or "NAME[,NAME]" of faults.SCENARIOS
    # (checked by faults.select, which run_cluster calls before anything starts).
    scenario: str = "full"
    output_dir: Path = Path("out/cluster")
    cache_dir: Path = DEFAULT_CACHE
    # Parent of each run's scratch directory (node overlays, shared disk); on a disk, not
    # tmpfs. None: cache_dir/runs.
    work_dir: Path | None = None
    # Corosync token in ms: the default (3000) makes a kill fail-over ~8 s; 1000 halves it.
    token_ms: int = 1000
    step_timeout: float = 120.0
    # Configuration shell to install and drive: "crmsh" or "pcs" (ubuntu-cluster: crmsh | pcs).
    shell: str = "crmsh"
    # Pacemaker's stonith-action: "reboot" (its default) boots a fenced node again.
    fence_action: str = "reboot"
    # "script": the harness's own PID 1 starts corosync and pacemaker from a config it
    # writes; "systemd": each node boots systemd (systemd-nspawn), the packages' units
    # start the daemons, and the bootstrap tool (`shell`) creates the cluster.
    init: str = "script"
    # An administrator's how-to page (docs/howto-mariadb-failover.md) run word for word
    # on the systemd tier instead of the harness's own bootstrap, with `howto_repo` (a
    # published repository folder) served on the nodes' network for its apt steps.
    howto: Path | None = None
    howto_repo: Path | None = None

    def __post_init__(self) -> None:
        if not self.scenario.strip():
            raise ValueError("scenario must be short, full or NAME[,NAME]")
        if self.shell not in ("crmsh", "pcs"):
            raise ValueError("shell must be 'crmsh' or 'pcs'")
        if self.init not in ("script", "systemd"):
            raise ValueError(f"init must be 'script' or 'systemd', not {self.init!r}")
        if self.init == "systemd" and self.scenario not in ("short", "full"):
            # The named fault scenarios drive the script tier's nodes (faults.py).
            raise ValueError("the systemd tier runs the short or full scenario only, "
                             f"not {self.scenario!r}")
        if self.howto is not None:
            if self.init != "systemd" or self.shell != "pcs" or self.scenario != "full":
                raise ValueError("the how-to runs on the systemd tier with pcs and the "
                                 "full scenario (its MariaDB service)")
            if self.howto_repo is None:
                raise ValueError("the how-to needs the published repository its nodes "
                                 "install from (howto_repo)")
            self.howto, self.howto_repo = Path(self.howto), Path(self.howto_repo)
        if self.fence_action not in ("reboot", "off"):
            raise ValueError("fence_action must be 'reboot' or 'off'")
        if not 2 <= self.nodes <= 16:
            raise ValueError("nodes must be between 2 and 16")
        self.output_dir = Path(self.output_dir)
        self.cache_dir = Path(self.cache_dir)
        self.extra_keys = [Path(k) for k in self.extra_keys]

    @property
    def runs_dir(self) -> Path:
        """Where each run's overlays and disks go: work_dir, by default CACHE/runs."""
        return Path(self.work_dir) if self.work_dir else self.cache_dir / "runs"


@dataclass
class FenceEvent:
    node: str
    action: str
    requested_by: str
    at: float  # seconds since the cluster was set up
    result: str


@dataclass
class ScenarioResult:
    """One named scenario's outcome and figure (see faults.SCENARIOS)."""

    name: str
    state: str  # "ok" | "failed: why" | "skipped" | "skipped (needs N nodes)"
    seconds: float | None = None
    measures: str = ""
    detail: str = ""
    rows_written: int | None = None
    rows_lost: int | None = None


@dataclass
class UnitFailure:
    """A systemd unit that failed on a node, with what `systemctl status` and the journal said."""

    node: str
    unit: str
    status: list[str] = field(default_factory=list)


@dataclass
class MonitorRow:
    """One node's ha_cluster_exporter and check_pacemaker at one step (monitoring.py)."""

    step: str
    node: str
    nodes_online: int | None  # sum of ha_cluster_pacemaker_nodes{status="online"}
    quorate: int | None  # ha_cluster_corosync_quorate; None: no corosync metrics
    fail_count: float | None  # the highest ha_cluster_pacemaker_fail_count; None: none
    ring_errors: int | None  # ha_cluster_corosync_ring_errors
    rings: int  # how many ha_cluster_corosync_rings samples there were
    check: str  # OK | WARNING | CRITICAL | UNKNOWN
    check_line: str
    scrape_ms: float
    check_ms: float
    exporter_rss_mib: float | None  # None: no exporter process
    # From the fault until this node's exporter (seen_s) and check (check_s) showed it.
    seen_s: float | None = None
    check_s: float | None = None
    # From the kill until this node's ring_errors was above 0 (an exporter that reads
    # corosync 3's links).
    ring_s: float | None = None
    scrape_error: str | None = None
    # What corosync-cfgtool -s says beside it: links, and links with a peer not connected.
    links: int | None = None
    links_down: int | None = None


@dataclass
class ClusterReport:
    ok: bool = False
    nodes: int = 0
    nodes_up: int = 0
    stack_shell: str = ""
    root_build_s: float | None = None
    formation_s: float | None = None
    kill_failover_s: float | None = None
    # From the kill until the node, fenced by reboot, is online on every node again.
    rejoin_s: float | None = None
    standby_failover_s: float | None = None
    # A clean `systemctl reboot` of a node that does not serve: until it is online again.
    reboot_rejoin_s: float | None = None
    vrrp_failover_s: float | None = None
    peak_memory_mib: float | None = None
    fencing_events: list[FenceEvent] = field(default_factory=list)
    failovers: dict[str, dict[str, str]] = field(default_factory=dict)  # kind -> from, to
    workload: str = ""
    steps: dict[str, str] = field(default_factory=dict)  # step -> "ok" | "failed: why" | "skipped"
    scenarios: list[ScenarioResult] = field(default_factory=list)  # in the order run
    error: str | None = None
    output_dir: str = ""
    # The systemd tier (init="systemd"); empty or None on the script tier.
    init: str = "script"
    boot_s: dict[str, float] = field(default_factory=dict)  # node -> to multi-user
    # The bootstrap tool's commands ("crm cluster join (node2)") -> wall time, in order.
    bootstrap_s: dict[str, float] = field(default_factory=dict)
    pss_node_mib: dict[str, float] = field(default_factory=dict)  # node -> PSS, service up
    # Where the harness did for the archive what it should do itself (named, never silent).
    workarounds: list[str] = field(default_factory=list)
    unit_failures: list[UnitFailure] = field(default_factory=list)
    howto: str = ""  # the page run word for word, if any
    howto_blocks: dict[str, float] = field(default_factory=dict)  # block title -> seconds
    # Every node's exporter and check at each step (script tier), in the order seen.
    monitoring: list[MonitorRow] = field(default_factory=list)
    monitoring_tools: list[str] = field(default_factory=list)  # what ran, from the units
    monitoring_s: float | None = None  # the run's wall time spent looking (Monitor.spent_s)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
