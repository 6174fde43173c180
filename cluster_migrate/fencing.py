"""cman fence devices and per-node fence methods -> stonith primitives and fencing levels."""

from __future__ import annotations

from dataclasses import dataclass, field

from .agents import (
    FENCE_DOMAIN_AGENTS,
    FENCE_DROPPED,
    FENCE_GONE,
    FENCE_PARAM_RENAMES,
    FENCE_PORT_ATTRS,
    FENCE_REDIRECT,
    UNFENCE_AGENTS,
)
from .ids import Ids
from .model import Cluster, FenceDevice, FenceDeviceRef
from .pcmk import Configuration, FencingLevel, Op, Primitive
from .report import Report


@dataclass
class _Bucket:
    """One stonith primitive: a device plus one set of per-node attributes."""

    extra: tuple[tuple[str, str], ...]
    ports: dict[str, str | None] = field(default_factory=dict)  # node -> port (None: no port)
    prim_id: str = ""


def _rename(attrs: dict[str, str], where: str, line: int, report: Report | None
            ) -> dict[str, str]:
    """Old fence parameter names -> today's; report=None when already reported once."""
    out: dict[str, str] = {}
    for key, value in attrs.items():
        if not value.strip():
            # pcs refuses an empty parameter, and the agent's default is what cman used
            if report:
                report.info("fencing", f"{where}: {key}=\"\" is empty; left unset (the "
                            f"agent's default applies)", line)
            continue
        if key in FENCE_DROPPED:
            if report:
                report.warning("fencing", f"{where}: {key}={value!r} not carried over: "
                               f"{FENCE_DROPPED[key]}", line)
            continue
        new = FENCE_PARAM_RENAMES.get(key, key)
        if new != key and report:
            report.info("fencing", f"{where}: parameter {key} renamed to {new}", line)
        out[new] = value
    return out


@dataclass
class FencePlan:
    """Which usable device fences which node at which level: the fencing model, decided
    before any stonith primitive or topology level is written."""
    usable: dict[str, FenceDevice]
    # Per device, the buckets of (non-port attributes) -> {node: port}.  A node that uses
    # the same device twice in one method (dual power supplies) needs a second primitive.
    buckets: dict[str, list[_Bucket]]
    # node -> method index -> ordered list of (device, bucket)
    levels: dict[str, list[list[tuple[str, _Bucket]]]] = field(default_factory=dict)


def convert_fencing(cluster: Cluster, config: Configuration, ids: Ids, report: Report) -> bool:
    """Add stonith primitives and levels to config; return whether any fencing exists."""
    plan = plan_fencing(cluster, report)
    _add_stonith(cluster, plan, config, ids, report)
    _add_topology(cluster, plan, config, ids, report)
    return _check_coverage(cluster, plan, report)


def plan_fencing(cluster: Cluster, report: Report) -> FencePlan:
    usable: dict[str, FenceDevice] = {}
    for name, dev in cluster.fence_devices.items():
        if dev.agent == FENCE_REDIRECT:
            report.critical("fencing", f"fence device {name} is fence_pcmk: cman handed "
                            f"fencing to Pacemaker, so the real fence devices are in the old "
                            f"cluster's CIB (cibadmin --query on a node), not in cluster.conf. "
                            f"No fence_pcmk resource is created: copy the stonith resources "
                            f"and fencing topology from the old CIB before going live",
                            dev.line)
        elif dev.agent in FENCE_GONE:
            report.error("fencing", f"fence device {name} ({dev.agent}) not carried over: "
                         f"{FENCE_GONE[dev.agent]}", dev.line)
        else:
            usable[name] = dev
    plan = FencePlan(usable, {name: [] for name in usable})
    for node in cluster.nodes:
        node_levels: list[list[tuple[str, _Bucket]]] = []
        for method in node.methods:
            level = _plan_level(plan, node.name, method.devices, report)
            if level:
                node_levels.append(level)
            elif method.devices and not all(
                    cluster.fence_devices[d.device].agent == FENCE_REDIRECT
                    for d in method.devices):
                report.error("fencing", f"node {node.name}: fence method {method.name} has no "
                             f"usable device left", method.line)
        plan.levels[node.name] = node_levels
    return plan


def _plan_level(plan: FencePlan, node: str, refs: list[FenceDeviceRef],
                report: Report) -> list[tuple[str, _Bucket]]:
    level: list[tuple[str, _Bucket]] = []
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for ref in refs:
        if ref.device not in plan.usable:
            continue
        attrs = dict(ref.attrs)
        action = (attrs.pop("action", None) or attrs.pop("option", None) or "").lower()
        if action == "on":
            report.info("fencing", f"node {node}: 'on' step of device "
                        f"{ref.device} dropped: Pacemaker powers a level's devices "
                        f"back on itself after turning them all off", ref.line)
            continue
        if action in ("off", "disable"):
            report.info("fencing", f"node {node}: action={action} on device "
                        f"{ref.device}: Pacemaker turns off all devices of a level "
                        f"before turning them on, as the off/on pairs did", ref.line)
        port_attrs = FENCE_PORT_ATTRS
        if plan.usable[ref.device].agent in FENCE_DOMAIN_AGENTS:
            # the guest's libvirt domain is what fence_xvm/fence_virt target
            port_attrs = ("domain", *FENCE_PORT_ATTRS)
        port = next((attrs.pop(a) for a in port_attrs if attrs.get(a)), None)
        extra = tuple(sorted(attrs.items()))
        key = (ref.device, (*extra, ("port", port or "")))
        if key in seen:
            continue
        seen.add(key)
        bucket = next((b for b in plan.buckets[ref.device]
                       if b.extra == extra and node not in b.ports), None)
        if bucket is None:
            bucket = _Bucket(extra)
            plan.buckets[ref.device].append(bucket)
        bucket.ports[node] = port
        level.append((ref.device, bucket))
    return level


def _add_stonith(cluster: Cluster, plan: FencePlan, config: Configuration, ids: Ids,
                 report: Report) -> None:
    unfence_devices = {ref.device for n in cluster.nodes for ref in n.unfence}
    for name, dev in plan.usable.items():
        if not plan.buckets[name]:
            report.warning("fencing", f"fence device {name} is used by no node's fence "
                           f"method; not carried over", dev.line)
            continue
        for i, bucket in enumerate(plan.buckets[name]):
            base = f"fence-{name}" if i == 0 else f"fence-{name}-{i + 1}"
            if len(plan.buckets[name]) > 1 and len(bucket.ports) == 1:
                # one primitive per node: name it after the node it fences
                base = f"fence-{name}-{next(iter(bucket.ports))}"
            bucket.prim_id = ids.take(base)
            prim = _stonith_primitive(name, dev, bucket, i == 0, report)
            if dev.agent in UNFENCE_AGENTS or name in unfence_devices:
                prim.meta["provides"] = "unfencing"
                report.info("fencing", f"{bucket.prim_id}: storage fencing, marked "
                            f"provides=unfencing (replaces <unfence>)", dev.line)
            config.resources.append(prim)


def _stonith_primitive(name: str, dev: FenceDevice, bucket: _Bucket, first: bool,
                       report: Report) -> Primitive:
    where = f"fence device {name}"
    dev_attrs = dict(dev.attrs)
    if dev.agent in FENCE_DOMAIN_AGENTS and "domain" in dev_attrs:
        # a device-level domain names the one guest it fences: that is its port
        dev_attrs["port"] = dev_attrs.pop("domain")
    # the device's own attributes are reported once, not once per bucket
    params = _rename(dev_attrs, where, dev.line, report if first else None)
    if dev.agent in FENCE_DOMAIN_AGENTS and "plug" in params:
        # fence_xvm/fence_virt call the guest "port", not "plug"
        params["port"] = params.pop("plug")
    params.update(_rename(dict(bucket.extra), where, dev.line, report))
    if any(p is not None for p in bucket.ports.values()):
        params["pcmk_host_map"] = ";".join(
            f"{n}:{p if p is not None else n}" for n, p in bucket.ports.items())
        report.info("fencing", f"{bucket.prim_id}: per-node ports turned into "
                    f"pcmk_host_map={params['pcmk_host_map']}", dev.line)
    else:
        params["pcmk_host_list"] = ",".join(bucket.ports)
    return Primitive(bucket.prim_id, "stonith", None, dev.agent, params,
                     ops=[Op("monitor", "60s")], is_stonith=True)


def _add_topology(cluster: Cluster, plan: FencePlan, config: Configuration, ids: Ids,
                  report: Report) -> None:
    # A single device per node needs no topology; several methods or devices do.
    if not any(len(node_levels) > 1 or any(len(level) > 1 for level in node_levels)
               for node_levels in plan.levels.values()):
        return
    for node in cluster.nodes:
        for index, level in enumerate(plan.levels[node.name], start=1):
            devices: list[str] = []
            for _dev, bucket in level:
                if bucket.prim_id and bucket.prim_id not in devices:
                    devices.append(bucket.prim_id)
            if devices:
                config.fencing_levels.append(FencingLevel(
                    ids.take(f"fl-{node.name}-{index}"), node.name, index, devices))
        if plan.levels[node.name]:
            report.info("fencing", f"node {node.name}: {len(plan.levels[node.name])} fence "
                        f"method(s) turned into fencing-topology levels", node.line)


def _check_coverage(cluster: Cluster, plan: FencePlan, report: Report) -> bool:
    if not any(plan.levels[n.name] for n in cluster.nodes):
        report.critical("fencing", "NO FENCING: this cluster.conf fences no node. The CIB sets "
                        "stonith-enabled=false only so that it validates; a cluster without "
                        "fencing can corrupt shared data. Configure a fence device (or SBD) "
                        "and set stonith-enabled=true before going live.", cluster.line)
        return False
    for node in cluster.nodes:
        if not plan.levels[node.name]:
            report.error("fencing", f"node {node.name} has no fence method: Pacemaker cannot "
                         f"fence it and will block recovery if it fails", node.line)
    return True
