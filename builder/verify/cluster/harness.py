"""`run_cluster`: build the root, start the cluster, run the scenarios, always tear down."""

from __future__ import annotations

import logging
import shutil
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from builder.base.command import Runner

from . import faults, howto, scenarios
from . import report as report_mod
from .cluster import Cluster
from .monitoring import Monitor
from .options import ClusterOptions, ClusterReport, ScenarioResult
from .rootfs import RootSpec, ensure_root
from .steps import Steps, new_run_dir, signals_interrupt, uninterruptible
from .systemd import SystemdCluster, run_systemd_scenarios

log = logging.getLogger("clusterstack.cluster")


def record_teardown(report: Any, leftovers: list[str], controller: Any, memory: Any) -> None:
    """What every tier's report says about its teardown, fencing and memory."""
    report.fencing_events = list(controller.events)
    report.peak_memory_mib = round(memory.peak_kib / 1024, 1)
    if leftovers:
        report.ok = False
        report.steps["teardown"] = "failed: " + "; ".join(leftovers)
        report.error = report.error or "teardown left things behind"
    else:
        report.steps["teardown"] = "ok"


def remove_run_dir(run_dir: Path) -> None:
    for _ in range(3):  # an overlay work dir may still be busy for a moment
        shutil.rmtree(run_dir, ignore_errors=True)
        if not run_dir.exists():
            break
        time.sleep(0.5)


def run_cluster(options: ClusterOptions) -> ClusterReport:
    """Run the cluster verification of `options`; the report says whether it passed.

    Nothing is left behind: no process, namespace or mount, also after a
    failure, Ctrl-C or SIGTERM (which are re-raised once torn down).
    An unknown scenario or one needing more nodes raises faults.SelectionError
    before anything is made.
    """
    selection = faults.select(options.scenario, options.nodes)
    # A page that cannot run is bad input: refused before anything is built or started.
    page = howto.parse(options.howto) if options.howto is not None else None
    if page is not None and options.nodes != 3:
        raise howto.HowtoError(page.path, 0, f"the page is written for 3 machines, "
                               f"not {options.nodes}")
    out = options.output_dir
    out.mkdir(parents=True, exist_ok=True)
    runner = Runner(log_path=out / "commands.log")
    workload = selection.workload
    report = ClusterReport(nodes=options.nodes, output_dir=str(out), workload=workload)
    step = Steps(report)
    cluster: Cluster | None = None
    run_dir: Path | None = None
    with signals_interrupt(), ExitStack() as held:
        try:
            spec = RootSpec(options.suite, options.mirror, tuple(options.extra_sources),
                            tuple(options.extra_keys), selection.packages,
                            shell=options.shell, init=options.init)
            root = step("root", lambda: held.enter_context(
                ensure_root(spec, options.cache_dir, runner)))
            if root is None:
                return report
            report.root_build_s = round(root.seconds, 1)
            run_dir = new_run_dir(options.runs_dir)
            if options.init == "systemd":
                cluster = SystemdCluster(root.path, run_dir, options.nodes, runner,
                                         options.token_ms)
                run_systemd_scenarios(cluster, options, selection.workload, report, step, page)
            else:
                cluster = Cluster(root.path, run_dir, options.nodes, runner, options.token_ms)
                _run_scenarios(cluster, options, selection, report, step)
            report.ok = step.failures == 0
        finally:
            _finish(cluster, run_dir, report, out)
    return report


def _run_scenarios(cluster: Cluster, options: ClusterOptions, selection: faults.Selection,
                   report: ClusterReport, step: Steps) -> None:
    timeout = options.step_timeout
    workload = selection.workload
    report.stack_shell = step("stack shell", lambda: scenarios.stack_shell(cluster)) or ""
    # Rows are recorded as they are seen, so a failed step keeps what led up to it.
    monitor = Monitor(cluster, options.output_dir / "monitoring", rows=report.monitoring)
    step("prepare", cluster.prepare)
    step("monitoring tools", monitor.install)
    report.workarounds += monitor.notes
    report.monitoring_tools = monitor.tools
    step("boot", cluster.boot)
    started = step("start daemons", cluster.start_daemons)
    formed = step("formation", lambda: scenarios.formation(cluster, started, timeout))
    if formed is not None:
        report.formation_s = round(formed, 2)
        report.nodes_up = len(cluster.live_nodes())
    step("service", lambda: scenarios.start_service(cluster, report.stack_shell, workload,
                                                     timeout, options.fence_action))
    context = faults.Context(cluster, report.stack_shell, workload, timeout,
                             options.fence_action, options.output_dir / "logs", monitor)
    serving = not step.failed
    # All up: every exporter counts every node online, quorate, and every check is OK
    # (once the service's start has settled: a pending probe is no failure yet).
    step("monitoring, all up", lambda: (scenarios.settle(cluster, timeout),
                                        monitor.observe("all up")))
    for scenario in selection.scenarios:
        if serving and step.failed:
            # As CTS does: after a failed scenario, the next one runs if the cluster
            # recovers (every node on and online, nothing pending).
            step.resume()
            step(f"recover before {scenario.name}", lambda: faults.restore(context))
        figure = step(scenario.title, lambda s=scenario: _observed(s, context, monitor))
        _record(report, scenario, figure)
    if report.monitoring:
        report.monitoring_s = round(monitor.spent_s, 1)
    for scenario in selection.too_big:
        report.scenarios.append(ScenarioResult(
            scenario.name, f"skipped (needs {scenario.min_nodes} nodes)",
            measures=scenario.measures))


def _observed(scenario: faults.Scenario, context: faults.Context,
              monitor: Monitor) -> faults.Figure:
    """The scenario, then every node's exporter and check once it has settled: a wrong
    metric or check state fails the scenario."""
    figure = scenario.run(context)
    monitor.observe(f"after {scenario.name}")
    return figure


def _record(report: ClusterReport, scenario: faults.Scenario,
            figure: faults.Figure | None) -> None:
    """The scenario's row in the report, and the fields the first three always had."""
    state = report.steps.get(scenario.title, "skipped")
    if figure is None:
        report.scenarios.append(ScenarioResult(scenario.name, state,
                                               measures=scenario.measures))
        return
    seconds = round(figure.seconds, 2)
    report.scenarios.append(ScenarioResult(
        scenario.name, state, seconds, scenario.measures, figure.detail,
        figure.rows_written, figure.rows_lost))
    if figure.source and figure.target:
        report.failovers[scenario.name] = {"from": figure.source, "to": figure.target}
    if scenario.name == "kill":
        report.kill_failover_s = seconds
        report.rejoin_s = None if figure.rejoin_s is None else round(figure.rejoin_s, 2)
    elif scenario.name == "standby":
        report.standby_failover_s = seconds
    elif scenario.name == "vrrp":
        report.vrrp_failover_s = seconds


def _finish(cluster: Cluster | None, run_dir: Path | None, report: ClusterReport,
            out: Path) -> None:
    with uninterruptible():
        _teardown(cluster, run_dir, report, out)


def _teardown(cluster: Cluster | None, run_dir: Path | None, report: ClusterReport,
              out: Path) -> None:
    """Collect logs, tear everything down and write the report, whatever happened before."""
    if cluster is not None:
        try:
            live = cluster.live_nodes()
            if live:
                (out / "fencing-history.txt").write_text(scenarios.fencing_history(live[0]))
            cluster.memory.sample()
        except Exception as exc:  # a last look is worth less than the teardown after it
            log.warning("could not record the cluster's final state: %s", exc)
        leftovers = cluster.teardown()
        cluster.collect_logs(out / "logs")
        record_teardown(report, leftovers, cluster.controller, cluster.memory)
    if run_dir is not None:
        remove_run_dir(run_dir)
    report_mod.write(report, out)
