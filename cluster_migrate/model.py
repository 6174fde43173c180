"""What a cluster.conf says, after parsing and `ref=` resolution.

Every object keeps the line of cluster.conf it came from so that each decision in
the report can point the administrator back to the source.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class XmlNode:
    """A parsed XML element with the line it started on (xml.etree drops lines)."""

    tag: str
    attrs: dict[str, str]
    line: int
    children: list[XmlNode] = field(default_factory=list)

    def find(self, tag: str) -> XmlNode | None:
        return next((c for c in self.children if c.tag == tag), None)

    def findall(self, tag: str) -> list[XmlNode]:
        return [c for c in self.children if c.tag == tag]


@dataclass
class FenceDeviceRef:
    """A `<device>` inside a node's fence method: the device plus per-node attributes."""

    device: str
    attrs: dict[str, str]
    line: int


@dataclass
class FenceMethod:
    name: str
    devices: list[FenceDeviceRef]
    line: int


@dataclass
class Node:
    name: str
    nodeid: int
    votes: int
    altnames: list[str]
    methods: list[FenceMethod]
    unfence: list[FenceDeviceRef]
    line: int
    # False when cluster.conf had no nodeid and the converter numbered the node
    nodeid_given: bool = True
    # every attribute of <clusternode>, so that the unused ones can be reported
    attrs: dict[str, str] = field(default_factory=dict)


@dataclass
class FenceDevice:
    name: str
    agent: str
    attrs: dict[str, str]
    line: int


@dataclass
class Domain:
    name: str
    ordered: bool
    restricted: bool
    nofailback: bool
    # (node name, priority); priority 1 is the most preferred, as in rgmanager.
    members: list[tuple[str, int]]
    line: int


@dataclass
class Action:
    """An rgmanager `<action>` override: name is start, stop, status or monitor."""

    name: str
    interval: str | None
    timeout: str | None
    depth: str | None
    line: int


@dataclass
class Resource:
    """One node of a service's resource tree, with `ref=` already resolved."""

    type: str
    attrs: dict[str, str]
    line: int
    children: list[Resource] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    # Set when this resource came from the shared <resources> section.
    shared_name: str | None = None
    # Where each attribute was written: a ref= resource mixes two elements' attributes.
    attr_lines: dict[str, int] = field(default_factory=dict)

    def line_of(self, attr: str) -> int:
        return self.attr_lines.get(attr, self.line)

    @property
    def key(self) -> str:
        """The attribute rgmanager uses as the resource's name."""
        for attr in ("name", "address", "target", "resource", "file"):
            if self.attrs.get(attr):
                return self.attrs[attr]
        return self.type


@dataclass
class Service:
    """A `<service>` or a top-level `<vm>`; in both cases a unit that fails over."""

    name: str
    kind: str  # "service" or "vm"
    attrs: dict[str, str]
    line: int
    children: list[Resource] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)

    @property
    def domain(self) -> str | None:
        return self.attrs.get("domain") or None


@dataclass
class Cluster:
    name: str
    config_version: str | None
    line: int
    nodes: list[Node]
    fence_devices: dict[str, FenceDevice]
    domains: dict[str, Domain]
    services: list[Service]
    cman: XmlNode | None = None
    totem: XmlNode | None = None
    quorumd: XmlNode | None = None
    logging: XmlNode | None = None
    fence_daemon: XmlNode | None = None
    rm: XmlNode | None = None
    # Top-level elements the converter has no rule for, reported as not carried over.
    other: list[XmlNode] = field(default_factory=list)
    # What the parser tolerated, as rgmanager did, but the report must say:
    # (severity, topic, message, line).
    notes: list[tuple[str, str, str, int | None]] = field(default_factory=list)
    # every attribute of <cluster>, so that the unused ones can be reported
    root_attrs: dict[str, str] = field(default_factory=dict)

    def node(self, name: str) -> Node | None:
        return next((n for n in self.nodes if n.name == name), None)
