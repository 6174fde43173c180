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
from .model import Cluster, FenceDevice
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


def convert_fencing(cluster: Cluster, config: Configuration, ids: Ids, report: Report) -> bool:
    """Add stonith primitives and levels to config; return whether any fencing exists."""
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

    # Per device, the buckets of (non-port attributes) -> {node: port}.  A node that uses
    # the same device twice in one method (dual power supplies) needs a second primitive.
    buckets: dict[str, list[_Bucket]] = {name: [] for name in usable}
    # node -> method index -> ordered list of (device, bucket)
    levels: dict[str, list[list[tuple[str, _Bucket]]]] = {}
    for node in cluster.nodes:
        node_levels: list[list[tuple[str, _Bucket]]] = []
        for method in node.methods:
            level: list[tuple[str, _Bucket]] = []
            seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
            for ref in method.devices:
                if ref.device not in usable:
                    continue
                attrs = dict(ref.attrs)
                action = (attrs.pop("action", None) or attrs.pop("option", None) or "").lower()
                if action == "on":
                    report.info("fencing", f"node {node.name}: 'on' step of device "
                                f"{ref.device} dropped: Pacemaker powers a level's devices "
                                f"back on itself after turning them all off", ref.line)
                    continue
                if action in ("off", "disable"):
                    report.info("fencing", f"node {node.name}: action={action} on device "
                                f"{ref.device}: Pacemaker turns off all devices of a level "
                                f"before turning them on, as the off/on pairs did", ref.line)
                port_attrs = FENCE_PORT_ATTRS
                if usable[ref.device].agent in FENCE_DOMAIN_AGENTS:
                    # the guest's libvirt domain is what fence_xvm/fence_virt target
                    port_attrs = ("domain", *FENCE_PORT_ATTRS)
                port = next((attrs.pop(a) for a in port_attrs if attrs.get(a)),
                            None)
                extra = tuple(sorted(attrs.items()))
                key = (ref.device, (*extra, ("port", port or "")))
                if key in seen:
                    continue
                seen.add(key)
                bucket = next((b for b in buckets[ref.device]
                               if b.extra == extra and node.name not in b.ports), None)
                if bucket is None:
                    bucket = _Bucket(extra)
                    buckets[ref.device].append(bucket)
                bucket.ports[node.name] = port
                level.append((ref.device, bucket))
            if level:
                node_levels.append(level)
            elif method.devices and not all(
                    cluster.fence_devices[d.device].agent == FENCE_REDIRECT
                    for d in method.devices):
                report.error("fencing", f"node {node.name}: fence method {method.name} has no "
                             f"usable device left", method.line)
        levels[node.name] = node_levels

    unfence_devices = {ref.device for n in cluster.nodes for ref in n.unfence}
    for name, dev in usable.items():
        if not buckets[name]:
            report.warning("fencing", f"fence device {name} is used by no node's fence "
                           f"method; not carried over", dev.line)
            continue
        for i, bucket in enumerate(buckets[name]):
            base = f"fence-{name}" if i == 0 else f"fence-{name}-{i + 1}"
            if len(buckets[name]) > 1 and len(bucket.ports) == 1:
                # one primitive per node: name it after the node it fences
                base = f"fence-{name}-{next(iter(bucket.ports))}"
            bucket.prim_id = ids.take(base)
            where = f"fence device {name}"
            dev_attrs = dict(dev.attrs)
            if dev.agent in FENCE_DOMAIN_AGENTS and "domain" in dev_attrs:
                # a device-level domain names the one guest it fences: that is its port
                dev_attrs["port"] = dev_attrs.pop("domain")
            params = _rename(dev_attrs, where, dev.line, report if i == 0 else None)
            if dev.agent in FENCE_DOMAIN_AGENTS and "plug" in params:
                # fence_xvm/fence_virt call the guest "port", not "plug"
                params["port"] = params.pop("plug")
            params.update(_rename(dict(bucket.extra), where, dev.line, report))
            nodes = list(bucket.ports)
            if any(p is not None for p in bucket.ports.values()):
                params["pcmk_host_map"] = ";".join(
                    f"{n}:{p if p is not None else n}" for n, p in bucket.ports.items())
                report.info("fencing", f"{bucket.prim_id}: per-node ports turned into "
                            f"pcmk_host_map={params['pcmk_host_map']}", dev.line)
            else:
                params["pcmk_host_list"] = ",".join(nodes)
            prim = Primitive(bucket.prim_id, "stonith", None, dev.agent, params,
                             ops=[Op("monitor", "60s")], is_stonith=True)
            if dev.agent in UNFENCE_AGENTS or name in unfence_devices:
                prim.meta["provides"] = "unfencing"
                report.info("fencing", f"{bucket.prim_id}: storage fencing, marked "
                            f"provides=unfencing (replaces <unfence>)", dev.line)
            config.resources.append(prim)

    # A single device per node needs no topology; several methods or devices do.
    needs_topology = any(len(node_levels) > 1 or any(len(level) > 1 for level in node_levels)
                         for node_levels in levels.values())
    if needs_topology:
        for node in cluster.nodes:
            for index, level in enumerate(levels[node.name], start=1):
                devices: list[str] = []
                for _dev, bucket in level:
                    if bucket.prim_id and bucket.prim_id not in devices:
                        devices.append(bucket.prim_id)
                if devices:
                    config.fencing_levels.append(FencingLevel(
                        ids.take(f"fl-{node.name}-{index}"), node.name, index, devices))
            if levels[node.name]:
                report.info("fencing", f"node {node.name}: {len(levels[node.name])} fence "
                            f"method(s) turned into fencing-topology levels", node.line)

    fenced = [n for n in cluster.nodes if levels[n.name]]
    if not fenced:
        report.critical("fencing", "NO FENCING: this cluster.conf fences no node. The CIB sets "
                        "stonith-enabled=false only so that it validates; a cluster without "
                        "fencing can corrupt shared data. Configure a fence device (or SBD) "
                        "and set stonith-enabled=true before going live.", cluster.line)
        return False
    for node in cluster.nodes:
        if not levels[node.name]:
            report.error("fencing", f"node {node.name} has no fence method: Pacemaker cannot "
                         f"fence it and will block recovery if it fails", node.line)
    return True
