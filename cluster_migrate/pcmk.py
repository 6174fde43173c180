"""The Pacemaker side as plain data: what cib.py and shells.py both render.

Keeping one model for the CIB and the crm/pcs scripts is what makes the three
outputs describe the same configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Op:
    name: str
    interval: str
    timeout: str | None = None
    role: str | None = None
    on_fail: str | None = None
    params: dict[str, str] = field(default_factory=dict)

    def attributes(self) -> dict[str, str]:
        """interval, timeout, role, on-fail and the op's own parameters, as the
        shells take them (name=value)."""
        attrs = {"interval": self.interval}
        if self.timeout:
            attrs["timeout"] = self.timeout
        if self.role:
            attrs["role"] = self.role
        if self.on_fail:
            attrs["on-fail"] = self.on_fail
        attrs.update(self.params)
        return attrs


@dataclass
class Primitive:
    id: str
    cls: str
    provider: str | None
    type: str
    params: dict[str, str] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    ops: list[Op] = field(default_factory=list)
    is_stonith: bool = False

    @property
    def agent(self) -> str:
        return ":".join(p for p in (self.cls, self.provider, self.type) if p)


@dataclass
class Group:
    id: str
    members: list[Primitive]
    meta: dict[str, str] = field(default_factory=dict)


@dataclass
class Clone:
    id: str
    child: Primitive | Group
    meta: dict[str, str] = field(default_factory=dict)
    promotable: bool = False


Resource = Primitive | Group | Clone


@dataclass
class Location:
    id: str
    rsc: str
    node: str
    score: str
    role: str | None = None


@dataclass
class Colocation:
    id: str
    rsc: str
    with_rsc: str
    score: str
    with_rsc_role: str | None = None


@dataclass
class Order:
    id: str
    first: str
    then: str
    kind: str = "Mandatory"
    first_action: str | None = None
    then_action: str | None = None


Constraint = Location | Colocation | Order


@dataclass
class FencingLevel:
    id: str
    target: str
    index: int
    devices: list[str]


@dataclass
class Configuration:
    cluster_name: str
    properties: dict[str, str] = field(default_factory=dict)
    rsc_defaults: dict[str, str] = field(default_factory=dict)
    op_defaults: dict[str, str] = field(default_factory=dict)
    resources: list[Resource] = field(default_factory=list)
    constraints: list[Constraint] = field(default_factory=list)
    fencing_levels: list[FencingLevel] = field(default_factory=list)
    # service name -> the id of the resource that carries it (group, primitive or clone)
    service_ids: dict[str, str] = field(default_factory=dict)
