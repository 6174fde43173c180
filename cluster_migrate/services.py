"""One rgmanager service (or top-level vm) -> a group of primitives with its policies.

Scores are chosen so that the outcome matches rgmanager's behaviour, not just its
words:
- a domain member scores 100; in an ordered domain priority p scores 200 - p, so
  priority 1 beats 2 (rgmanager: lower number = more preferred);
- restricted domains add -INFINITY for every other node;
- resource-stickiness defaults to 100 (rgmanager never moved a running service
  back on its own); an ordered domain without nofailback gets stickiness 0 so the
  service fails back, one with nofailback gets 1000, more than any score gap.
"""

from __future__ import annotations

from .agents import MAX_ONE_INSTANCE, truthy
from .constraints import INFINITY, domain_scores
from .context import Context, ServiceBuild
from .handlers import handler_for
from .model import Cluster, Resource, Service
from .pcmk import Group
from .report import Report
from .restree import child_order, seconds

NOFAILBACK_STICKINESS = "1000"

# Service attributes _service and _recovery turn into something, or report themselves.
SERVICE_ATTRS = {"name", "domain", "autostart", "recovery", "max_restarts",
                 "restart_expire_time", "exclusive", "depend", "depend_mode", "nfslock",
                 "hardrecovery", "priority", "nfs_client_cache", "central_processing",
                 "__max_failures", "__failure_expire_time", "__independent_subtree",
                 "__enforce_timeouts", "__max_restarts", "__restart_expire_time"}


def rm_disabled(cluster: Cluster) -> bool:
    """<rm disabled="1">: rgmanager was off, so every service is created stopped."""
    return cluster.rm is not None and truthy(cluster.rm.attrs.get("disabled"))


class SingleInstances:
    """The first service to use each resource rgmanager allowed only once.

    rgmanager loaded such a resource (ip, fs, lvm... maxinstances=1) into the first
    service that named it and skipped the later references with their children;
    converting each reference would run the same address or mount on two nodes.
    """

    def __init__(self, report: Report) -> None:
        self._report = report
        self._owner: dict[tuple[str, str], tuple[str, Resource]] = {}

    def admit(self, svc: Service, res: Resource) -> bool:
        """False for a second use of a single-instance resource (reported)."""
        if res.type not in MAX_ONE_INSTANCE or res.type == "drbd":
            # drbd becomes one promotable clone that every service using it follows
            return True
        key = (res.type, res.shared_name or res.key)
        owner, first = self._owner.setdefault(key, (svc.name, res))
        if first is res:
            return True
        self._report.warning("resources", f"{svc.name}/{res.type} {res.key}: already used by "
                             f"service {owner}; rgmanager runs a {res.type} resource in one "
                             f"service only (maxinstances=1) and skipped this reference and "
                             f"the resources below it, so the conversion does too", res.line)
        return False


def convert_services(ctx: Context) -> None:
    """Every service in cluster.conf order (which decides who gets a single instance)."""
    disabled = rm_disabled(ctx.cluster)
    instances = SingleInstances(ctx.report)
    for svc in ctx.cluster.services:
        _service(ctx, instances, svc, disabled)


def _service(ctx: Context, instances: SingleInstances, svc: Service, disabled: bool) -> None:
    report = ctx.report
    build = ServiceBuild()
    _flatten(ctx, instances, svc, svc.kind if svc.kind == "service" else "", svc.children,
             build)
    a = svc.attrs
    meta: dict[str, str] = {}
    if a.get("autostart", "1").strip() in ("0", "no", "false"):
        meta["target-role"] = "Stopped"
        report.info("service", f"{svc.name}: autostart=0 -> target-role=Stopped", svc.line)
    if disabled:
        meta["target-role"] = "Stopped"
    on_fail = _recovery(report, svc, meta)
    if svc.kind == "service":
        _service_attrs(report, svc, meta)
    if on_fail:
        for prim in build.members:
            for op in prim.ops:
                if op.name == "monitor":
                    op.on_fail = on_fail
    for key in ("nfslock", "hardrecovery", "priority", "nfs_client_cache",
                "central_processing"):
        if key in a:
            report.warning("service", f"{svc.name}: {key}={a[key]!r} not carried over (no "
                           f"Pacemaker equivalent)", svc.line)
    if not build.members:
        report.warning("service", f"{svc.name}: no resource left to run; no group is "
                       f"created", svc.line)
        return
    rsc_id = build.members[0].id if svc.kind == "vm" else ctx.ids.take(svc.name)
    # the domain may set stickiness in meta, so it runs before meta is attached
    _domain(ctx, svc, rsc_id, meta)
    _attach(ctx, svc, build, rsc_id, meta)


def _attach(ctx: Context, svc: Service, build: ServiceBuild, rsc_id: str,
            meta: dict[str, str]) -> None:
    """Add the service's resource to the configuration, after the clones it needs."""
    if svc.kind == "vm":
        build.members[0].meta.update(meta)
        ctx.config.resources.extend(build.members)
    else:
        ctx.config.resources.append(Group(rsc_id, build.members, meta))
        ctx.report.info("service", f"service {svc.name} -> group {rsc_id} "
                        f"({', '.join(p.id for p in build.members)}), members start in "
                        f"rgmanager's order", svc.line)
    ctx.config.service_ids[svc.name] = rsc_id
    for clone in build.needs_clones:
        ctx.constraints.order(clone, rsc_id)
        ctx.constraints.colocate(rsc_id, clone, INFINITY)
    for clone in build.drbd_clones:
        ctx.constraints.order(clone, rsc_id, first_action="promote", then_action="start")
        ctx.constraints.colocate(rsc_id, clone, INFINITY, with_role="Promoted")


def _flatten(ctx: Context, instances: SingleInstances, svc: Service, parent_type: str,
             children: list[Resource], build: ServiceBuild) -> None:
    """Walk the tree in rgmanager's start order; each type's handler places its resource."""
    ordered, forbidden = child_order(parent_type, children)
    for res in forbidden:
        ctx.report.warning("resources", f"{svc.name}/{res.type} {res.key}: rgmanager "
                           f"ignored a <{res.type}> below <{parent_type}> (its agent "
                           f"forbids that child); not converted", res.line)
    for res in ordered:
        if not instances.admit(svc, res):
            continue
        handler_for(res.type).place(ctx, svc, res, build, f"{svc.name}/{res.type} {res.key}")
        _flatten(ctx, instances, svc, res.type, res.children, build)


def _recovery(report: Report, svc: Service, meta: dict[str, str]) -> str | None:
    """recovery= and its limits -> meta; returns the monitors' on-fail, if any."""
    a = svc.attrs
    recovery = a.get("recovery", "restart").strip() or "restart"
    line = svc.line
    on_fail = None
    if recovery == "relocate":
        meta["migration-threshold"] = "1"
        report.info("recovery", f"{svc.name}: recovery=relocate -> migration-threshold=1 "
                    f"(move on first failure)", line)
    elif recovery in ("restart", "restart-disable"):
        _restart_limits(report, svc, meta)
        if recovery == "restart-disable":
            report.warning("recovery", f"{svc.name}: recovery=restart-disable is "
                           f"approximated: after the restarts Pacemaker moves the "
                           f"service instead of disabling it", line)
    elif recovery == "disable":
        on_fail = "stop"
        report.info("recovery", f"{svc.name}: recovery=disable -> monitor on-fail=stop",
                    line)
    else:
        report.warning("recovery", f"{svc.name}: unknown recovery={recovery!r}, "
                       f"Pacemaker's default (restart) is used", line)
    return on_fail


def _restart_limits(report: Report, svc: Service, meta: dict[str, str]) -> None:
    max_restarts = svc.attrs.get("max_restarts", "").strip()
    expire = svc.attrs.get("restart_expire_time", "").strip()
    line = svc.line
    if max_restarts and not max_restarts.isdigit():
        report.warning("recovery", f"{svc.name}: max_restarts={max_restarts!r} is not a "
                       f"number; ignored", line)
        max_restarts = ""
    if max_restarts and max_restarts != "0":
        meta["migration-threshold"] = str(int(max_restarts) + 1)
        report.info("recovery", f"{svc.name}: max_restarts={max_restarts} -> "
                    f"migration-threshold={int(max_restarts) + 1} (restart in "
                    f"place {max_restarts} times, then move)", line)
    if expire and expire != "0":
        meta["failure-timeout"] = seconds(expire)
        report.info("recovery", f"{svc.name}: restart_expire_time={expire} -> "
                    f"failure-timeout={seconds(expire)}", line)


def _service_attrs(report: Report, svc: Service, meta: dict[str, str]) -> None:
    """Service attributes beyond recovery: carried over where they mean something,
    reported otherwise, so that none disappears without a word."""
    a = svc.attrs
    where = f"{svc.name}"
    failures = a.get("__max_failures", "").strip()
    if failures:
        if not failures.isdigit():
            report.warning("recovery", f"{where}: __max_failures={failures!r} is not "
                           f"a number; not carried over", svc.line)
        elif "migration-threshold" in meta:
            report.warning("recovery", f"{where}: __max_failures={failures} not "
                           f"carried over: recovery/max_restarts already set "
                           f"migration-threshold={meta['migration-threshold']}", svc.line)
        elif failures != "0":
            meta["migration-threshold"] = failures
            report.info("recovery", f"{where}: __max_failures={failures} -> "
                        f"migration-threshold={failures}", svc.line)
    expire = a.get("__failure_expire_time", "").strip()
    if expire and expire != "0":
        if "failure-timeout" in meta:
            report.warning("recovery", f"{where}: __failure_expire_time={expire} not "
                           f"carried over: restart_expire_time already set "
                           f"failure-timeout={meta['failure-timeout']}", svc.line)
        else:
            meta["failure-timeout"] = seconds(expire)
            report.info("recovery", f"{where}: __failure_expire_time={expire} -> "
                        f"failure-timeout={seconds(expire)}", svc.line)
    for key in ("__independent_subtree", "__max_restarts", "__restart_expire_time"):
        if key in a:
            report.warning("service", f"{where}: {key}={a[key]!r} not carried over: "
                           f"it applies to resources inside a service, not to the "
                           f"service itself", svc.line)
    if truthy(a.get("__enforce_timeouts")):
        report.info("operation", f"{where}: __enforce_timeouts: Pacemaker always "
                    f"enforces operation timeouts", svc.line)
    for key, value in a.items():
        if key not in SERVICE_ATTRS:
            report.warning("service", f"{where}: attribute {key}={value!r} is not a "
                           f"known service attribute; not carried over", svc.line)


def _domain(ctx: Context, svc: Service, rsc_id: str, meta: dict[str, str]) -> None:
    """The failover domain -> location constraints and the stickiness that keeps it."""
    if not svc.domain:
        ctx.report.info("domain", f"{svc.name}: no failover domain, may run on any node",
                        svc.line)
        return
    dom = ctx.cluster.domains[svc.domain]
    members = dict(dom.members)
    for node, score in domain_scores(dom):
        ctx.constraints.location(rsc_id, node, score)
    if dom.restricted:
        for cnode in ctx.cluster.nodes:
            if cnode.name not in members:
                ctx.constraints.location(rsc_id, cnode.name, f"-{INFINITY}")
    if dom.ordered and not dom.nofailback:
        meta["resource-stickiness"] = "0"
    elif dom.nofailback:
        meta["resource-stickiness"] = NOFAILBACK_STICKINESS
    kind = ", ".join(k for k, v in (("ordered", dom.ordered), ("restricted", dom.restricted),
                                    ("nofailback", dom.nofailback)) if v) or "unordered"
    ctx.report.info("domain", f"{svc.name}: failover domain {dom.name} ({kind}) -> "
                    f"location constraints"
                    + (" with -INFINITY on other nodes" if dom.restricted else "")
                    + (f", resource-stickiness={meta['resource-stickiness']}"
                       if "resource-stickiness" in meta else ""), dom.line)
