"""Building blocks of a primitive shared by the type handlers and the storage clones:
rule-driven parameters and operations, <action> overrides, per-resource recovery."""

from __future__ import annotations

from collections.abc import Callable

from .agents import STRUCTURAL, AgentRule, truthy
from .model import Action, Resource
from .pcmk import Op, Primitive
from .report import Report
from .restree import num, seconds

# (res, attribute, value, params, where) -> whether it was converted; the handler's
# hook for attributes whose conversion is a computation, not a rename
SpecialParam = Callable[[Resource, str, str, dict[str, str], str], bool]


def unused_attrs(report: Report, res: Resource, where: str, used: set[str], why: str) -> None:
    """Report every attribute of res outside `used` (and the structural ones)."""
    for key, value in res.attrs.items():
        if key not in used and key not in STRUCTURAL:
            report.warning("parameter", f"{where}: {key}={value!r} not carried over: {why}",
                           res.line_of(key))


def rule_params(report: Report, rule: AgentRule, res: Resource, where: str,
                special: SpecialParam) -> dict[str, str]:
    """The agent's parameters from res's attributes; every attribute left out is reported."""
    params: dict[str, str] = dict(rule.fixed)
    for key, value in res.attrs.items():
        if key in STRUCTURAL or key in rule.wait_timeouts:
            continue
        if not value.strip():
            # rgmanager read an empty attribute as unset; pcs refuses empty values
            report.info("parameter", f"{where}: {key}=\"\" is empty; left unset",
                        res.line_of(key))
            continue
        if key in rule.params:
            if key in rule.booleans:
                value = "true" if truthy(value) else "false"
            params[rule.params[key]] = value
        elif key in rule.passthrough:
            params[key] = value
        elif key in rule.dropped:
            if key not in ("path", "fsid"):
                report.warning("parameter", f"{where}: {key}={value!r} not carried over: "
                               f"{rule.dropped[key]}", res.line_of(key))
        elif not special(res, key, value, params, where):
            report.warning("parameter", f"{where}: attribute {key}={value!r} has no "
                           f"counterpart in the Pacemaker agent; not carried over",
                           res.line_of(key))
    return params


def rule_ops(rule: AgentRule) -> list[Op]:
    """The rule's monitor first, then its other operations' timeouts."""
    return ([Op("monitor", rule.monitor, rule.timeouts.get("monitor", "20s"))]
            + [Op(name, "0s", t) for name, t in rule.timeouts.items() if name != "monitor"])


def wait_timeouts(report: Report, rule: AgentRule, prim: Primitive, res: Resource,
                  where: str) -> None:
    """startup_wait/shutdown_wait bounded how long rgmanager waited: operation timeouts."""
    for attr, op_name in rule.wait_timeouts.items():
        if attr in res.attrs:
            timeout = f"{max(num(res.attrs[attr]) + 20, 20)}s"
            set_timeout(prim, op_name, timeout)
            report.info("operation", f"{where}: {attr}={res.attrs[attr]} -> {op_name} "
                        f"timeout {timeout}", res.line)


def required_params(report: Report, rule: AgentRule, prim: Primitive, res: Resource,
                    where: str) -> None:
    for req in rule.required:
        if req not in prim.params:
            report.warning("parameter", f"{where}: {prim.agent} needs '{req}', which "
                           f"cluster.conf does not give: set it before starting", res.line)


def device_path(report: Report, device: str, where: str, line: int) -> str:
    """LABEL=/UUID= (fs.sh resolved them itself) -> the udev path Filesystem wants."""
    for prefix, folder in (("LABEL=", "by-label"), ("UUID=", "by-uuid")):
        if device.upper().startswith(prefix):
            path = f"/dev/disk/{folder}/{device[len(prefix):].strip(chr(34) + chr(39))}"
            report.info("parameter", f"{where}: device={device} -> {path} (the "
                        f"Filesystem agent does not resolve {prefix})", line)
            return path
    return device


def set_timeout(prim: Primitive, op_name: str, timeout: str) -> None:
    for op in prim.ops:
        if op.name == op_name:
            op.timeout = timeout
            return
    prim.ops.append(Op(op_name, "0s", timeout))


def apply_actions(report: Report, prim: Primitive, res: Resource, where: str) -> None:
    """<action> overrides -> operations; status depths become OCF_CHECK_LEVEL."""
    monitors: list[Action] = [a for a in res.actions if a.name in ("status", "monitor")]
    if monitors:
        _monitors(report, prim, monitors, where)
    for act in res.actions:
        if act.name in ("start", "stop", "migrate", "reload") and act.timeout:
            name = "migrate_to" if act.name == "migrate" else act.name
            set_timeout(prim, name, seconds(act.timeout))
            report.info("operation", f"{where}: {act.name} timeout={act.timeout} -> "
                        f"{name} timeout", act.line)
        elif act.name not in ("status", "monitor", "start", "stop", "migrate", "reload"):
            report.warning("operation", f"{where}: action {act.name!r} not carried over",
                           act.line)
    if truthy(res.attrs.get("__enforce_timeouts")):
        report.info("operation", f"{where}: __enforce_timeouts: Pacemaker always "
                    f"enforces operation timeouts", res.line)


def _monitors(report: Report, prim: Primitive, monitors: list[Action], where: str) -> None:
    """The status actions replace the rule's monitor."""
    default_timeout = next((op.timeout for op in prim.ops
                            if op.name == "monitor" and op.timeout), "20s")
    prim.ops = [op for op in prim.ops if op.name != "monitor"]
    used: set[str] = set()
    for act in monitors:
        interval = seconds(act.interval or "30")
        while interval in used:
            # Pacemaker needs a unique interval per monitor; rgmanager did not
            interval = f"{num(interval) + 1}s"
        used.add(interval)
        params = {}
        if act.depth and act.depth not in ("*", "0"):
            params["OCF_CHECK_LEVEL"] = act.depth
        prim.ops.append(Op("monitor", interval, seconds(act.timeout) if act.timeout
                           else default_timeout, params=params))
        report.info("operation", f"{where}: status action (depth {act.depth or '*'}) -> "
                    f"monitor interval={interval}", act.line)


def subtree_policy(report: Report, prim: Primitive, res: Resource, where: str) -> None:
    """__independent_subtree and the per-resource failure limits -> the primitive's meta."""
    a = res.attrs
    indep = a.get("__independent_subtree", "0").strip()
    if indep == "1":
        report.warning("recovery", f"{where}: __independent_subtree=1 approximated: "
                       f"Pacemaker restarts a failed group member and the members "
                       f"after it, not only this subtree", res.line)
    elif indep == "2":
        for op in prim.ops:
            if op.name == "monitor":
                op.on_fail = "stop"
        report.warning("recovery", f"{where}: __independent_subtree=2 (non-critical) "
                       f"-> monitor on-fail=stop: a failure stops it (and the group "
                       f"members after it) without moving the service", res.line)
    restarts = (a.get("__max_restarts") or a.get("__max_failures") or "").strip()
    expire = a.get("__restart_expire_time") or a.get("__failure_expire_time")
    if restarts and not restarts.isdigit():
        report.warning("recovery", f"{where}: failure limit {restarts!r} is not a "
                       f"number; ignored", res.line)
        restarts = ""
    if restarts and restarts != "0":
        extra = 1 if "__max_restarts" in a else 0
        prim.meta["migration-threshold"] = str(int(restarts) + extra)
        report.info("recovery", f"{where}: per-resource failure limit -> "
                    f"migration-threshold={prim.meta['migration-threshold']}", res.line)
    if expire and expire.strip() not in ("", "0"):
        prim.meta["failure-timeout"] = seconds(expire)
