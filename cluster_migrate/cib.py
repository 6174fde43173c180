"""pcmk.Configuration -> cib.xml text."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from .pcmk import (
    Clone,
    Colocation,
    Configuration,
    Group,
    Location,
    Op,
    Order,
    Primitive,
)

# The first schema that knows the Promoted/Unpromoted role names; Pacemaker 2.1 and
# 3.0 both accept it (3.0 upgrades it on load).
SCHEMA = "pacemaker-3.7"


def _nvset(parent: ET.Element, tag: str, owner: str, values: dict[str, str]) -> None:
    if not values:
        return
    suffix = {"instance_attributes": "instance_attributes", "meta_attributes": "meta_attributes",
              "cluster_property_set": "options"}[tag]
    el = ET.SubElement(parent, tag, id=f"{owner}-{suffix}")
    for name, value in values.items():
        ET.SubElement(el, "nvpair", id=f"{owner}-{suffix}-{name}", name=name, value=value)


def _op(parent: ET.Element, owner: str, op: Op) -> None:
    attrs = {"id": f"{owner}-{op.name}-interval-{op.interval}" + (f"-{op.role}" if op.role
                                                                  else ""),
             "name": op.name, "interval": op.interval}
    if op.timeout:
        attrs["timeout"] = op.timeout
    if op.role:
        attrs["role"] = op.role
    if op.on_fail:
        attrs["on-fail"] = op.on_fail
    el = ET.SubElement(parent, "op", attrs)
    _nvset(el, "instance_attributes", attrs["id"], op.params)


def _primitive(parent: ET.Element, p: Primitive) -> None:
    attrs = {"id": p.id, "class": p.cls, "type": p.type}
    if p.provider:
        attrs["provider"] = p.provider
    el = ET.SubElement(parent, "primitive", attrs)
    _nvset(el, "instance_attributes", p.id, p.params)
    _nvset(el, "meta_attributes", p.id, p.meta)
    if p.ops:
        ops = ET.SubElement(el, "operations")
        for op in p.ops:
            _op(ops, p.id, op)


def _group(parent: ET.Element, g: Group) -> None:
    el = ET.SubElement(parent, "group", id=g.id)
    _nvset(el, "meta_attributes", g.id, g.meta)
    for m in g.members:
        _primitive(el, m)


def render_cib(config: Configuration) -> str:
    # No crm_feature_set and no node entries: Pacemaker fills both in when the nodes
    # join, and node entries without status would read as unclean nodes to crm_verify.
    cib = ET.Element("cib", {"validate-with": SCHEMA, "admin_epoch": "0", "epoch": "1",
                             "num_updates": "0"})
    conf = ET.SubElement(cib, "configuration")
    crm = ET.SubElement(conf, "crm_config")
    _nvset(crm, "cluster_property_set", "cib-bootstrap", config.properties)
    ET.SubElement(conf, "nodes")
    resources = ET.SubElement(conf, "resources")
    for r in config.resources:
        if isinstance(r, Primitive):
            _primitive(resources, r)
        elif isinstance(r, Group):
            _group(resources, r)
        elif isinstance(r, Clone):
            el = ET.SubElement(resources, "clone", id=r.id)
            _nvset(el, "meta_attributes", r.id, r.meta)
            if isinstance(r.child, Group):
                _group(el, r.child)
            else:
                _primitive(el, r.child)
    constraints = ET.SubElement(conf, "constraints")
    for c in config.constraints:
        if isinstance(c, Location):
            attrs = {"id": c.id, "rsc": c.rsc, "node": c.node, "score": c.score}
            if c.role:
                attrs["role"] = c.role
            ET.SubElement(constraints, "rsc_location", attrs)
        elif isinstance(c, Colocation):
            attrs = {"id": c.id, "rsc": c.rsc, "with-rsc": c.with_rsc, "score": c.score}
            if c.with_rsc_role:
                attrs["with-rsc-role"] = c.with_rsc_role
            ET.SubElement(constraints, "rsc_colocation", attrs)
        elif isinstance(c, Order):
            attrs = {"id": c.id, "first": c.first, "then": c.then, "kind": c.kind}
            if c.first_action:
                attrs["first-action"] = c.first_action
            if c.then_action:
                attrs["then-action"] = c.then_action
            ET.SubElement(constraints, "rsc_order", attrs)
    if config.fencing_levels:
        topo = ET.SubElement(conf, "fencing-topology")
        for lv in config.fencing_levels:
            ET.SubElement(topo, "fencing-level", id=lv.id, target=lv.target,
                          index=str(lv.index), devices=",".join(lv.devices))
    if config.rsc_defaults:
        rd = ET.SubElement(conf, "rsc_defaults")
        _nvset(rd, "meta_attributes", "rsc-options", config.rsc_defaults)
    if config.op_defaults:
        od = ET.SubElement(conf, "op_defaults")
        _nvset(od, "meta_attributes", "op-options", config.op_defaults)
    ET.SubElement(cib, "status")
    ET.indent(cib, "  ")
    return ET.tostring(cib, encoding="unicode") + "\n"
