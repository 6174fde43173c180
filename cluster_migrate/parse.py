"""cluster.conf text -> model.Cluster, with source lines, refusing bad input early.

expat is used directly because xml.etree does not keep line numbers, and every
report entry and every error must name its line.
"""

from __future__ import annotations

import xml.parsers.expat
from pathlib import Path

from .errors import MigrateError
from .model import (
    Action,
    Cluster,
    Domain,
    FenceDevice,
    FenceDeviceRef,
    FenceMethod,
    Node,
    Resource,
    Service,
    XmlNode,
)

# Attributes rgmanager resolves `ref=` against, by resource type (ip is keyed by address).
REF_KEYS = {"ip": "address"}
# rgmanager's inherit="..." parameters: child attribute <- nearest ancestor attribute.
INHERIT = {
    "nfsexport": {"path": "mountpoint", "fsid": "fsid", "device": "device"},
    "nfsclient": {"path": "mountpoint", "fsid": "fsid"},
    "nfsserver": {"path": "mountpoint"},
}
# Elements under <rm> that are not resource trees.
RM_NON_RESOURCES = {"failoverdomains", "resources", "events", "resource-defaults",
                    "dependencies"}


def parse_xml(text: str | bytes) -> XmlNode:
    """Parse XML into XmlNode objects; a syntax error becomes a MigrateError with its line."""
    parser = xml.parsers.expat.ParserCreate()
    stack: list[XmlNode] = []
    root: list[XmlNode] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        node = XmlNode(tag, dict(attrs), parser.CurrentLineNumber)
        if stack:
            stack[-1].children.append(node)
        else:
            root.append(node)
        stack.append(node)

    def end(_tag: str) -> None:
        stack.pop()

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(text, True)
    except xml.parsers.expat.ExpatError as exc:
        raise MigrateError(
            f"not well-formed XML: {xml.parsers.expat.ErrorString(exc.code)}", exc.lineno
        ) from None
    if not root:
        raise MigrateError("empty document", 1)
    return root[0]


def _int(node: XmlNode, attr: str, default: int | None = None) -> int | None:
    value = node.attrs.get(attr)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise MigrateError(f"<{node.tag}> {attr}={value!r} is not a number", node.line) from None


def _bool(value: str | None) -> bool:
    return (value or "0").strip().lower() in ("1", "yes", "true", "on")


def _actions(node: XmlNode) -> list[Action]:
    return [
        Action(a.attrs.get("name", ""), a.attrs.get("interval"), a.attrs.get("timeout"),
               a.attrs.get("depth"), a.line)
        for a in node.findall("action")
    ]


def _nodes(root: XmlNode) -> list[Node]:
    container = root.find("clusternodes")
    if container is None or not container.findall("clusternode"):
        raise MigrateError("no <clusternodes>/<clusternode> entries", root.line)
    nodes: list[Node] = []
    seen_ids: dict[int, Node] = {}
    seen_names: dict[str, Node] = {}
    for index, cn in enumerate(container.findall("clusternode"), start=1):
        name = cn.attrs.get("name")
        if not name:
            raise MigrateError("<clusternode> without a name", cn.line)
        # cman allowed a missing nodeid (it hashed the name); corosync 3 needs one,
        # so fall back to the position, which is what clufter does too.
        nodeid = _int(cn, "nodeid", index) or 0
        if nodeid < 1:
            raise MigrateError(f"node {name}: nodeid must be a positive number", cn.line)
        if nodeid in seen_ids:
            raise MigrateError(
                f"duplicate nodeid {nodeid}: node {name} and node {seen_ids[nodeid].name} "
                f"(line {seen_ids[nodeid].line})", cn.line)
        if name in seen_names:
            raise MigrateError(f"duplicate node name {name} (first at line "
                               f"{seen_names[name].line})", cn.line)
        methods: list[FenceMethod] = []
        fence = cn.find("fence")
        if fence is not None:
            for m in fence.findall("method"):
                devs = [FenceDeviceRef(d.attrs.get("name", ""), {k: v for k, v in d.attrs.items()
                                                                if k != "name"}, d.line)
                        for d in m.findall("device")]
                methods.append(FenceMethod(m.attrs.get("name", str(len(methods) + 1)), devs,
                                           m.line))
        unfence: list[FenceDeviceRef] = []
        unf = cn.find("unfence")
        if unf is not None:
            unfence = [FenceDeviceRef(d.attrs.get("name", ""),
                                      {k: v for k, v in d.attrs.items() if k != "name"}, d.line)
                       for d in unf.findall("device")]
        votes = _int(cn, "votes", 1)
        votes = 1 if votes is None else votes
        node = Node(name, nodeid, votes,
                    [a.attrs["name"] for a in cn.findall("altname") if a.attrs.get("name")],
                    methods, unfence, cn.line, nodeid_given="nodeid" in cn.attrs,
                    attrs=dict(cn.attrs))
        seen_ids[nodeid] = node
        seen_names[name] = node
        nodes.append(node)
    return nodes


def _fence_devices(root: XmlNode) -> dict[str, FenceDevice]:
    devices: dict[str, FenceDevice] = {}
    container = root.find("fencedevices")
    for fd in container.findall("fencedevice") if container is not None else []:
        name = fd.attrs.get("name")
        agent = fd.attrs.get("agent")
        if not name or not agent:
            raise MigrateError("<fencedevice> needs both name= and agent=", fd.line)
        if name in devices:
            raise MigrateError(f"duplicate fence device {name}", fd.line)
        attrs = {k: v for k, v in fd.attrs.items() if k not in ("name", "agent")}
        devices[name] = FenceDevice(name, agent, attrs, fd.line)
    return devices


def _domains(rm: XmlNode | None, node_names: set[str],
             notes: list[tuple[str, str, str, int | None]]) -> dict[str, Domain]:
    domains: dict[str, Domain] = {}
    container = rm.find("failoverdomains") if rm is not None else None
    for fd in container.findall("failoverdomain") if container is not None else []:
        name = fd.attrs.get("name")
        if not name:
            raise MigrateError("<failoverdomain> without a name", fd.line)
        if name in domains:
            raise MigrateError(f"duplicate failover domain {name}", fd.line)
        members: list[tuple[str, int]] = []
        for m in fd.findall("failoverdomainnode"):
            node = m.attrs.get("name", "")
            if node not in node_names:
                # rgmanager skipped members it had no node for; so does the conversion
                notes.append(("warning", "domain", f"failover domain {name} names node "
                              f"{node!r}, which is not in <clusternodes>: member dropped",
                              m.line))
                continue
            members.append((node, _int(m, "priority", 1) or 1))
        domains[name] = Domain(name, _bool(fd.attrs.get("ordered")),
                               _bool(fd.attrs.get("restricted")),
                               _bool(fd.attrs.get("nofailback")), members, fd.line)
    return domains


def _shared_resources(rm: XmlNode | None) -> dict[tuple[str, str], XmlNode]:
    shared: dict[tuple[str, str], XmlNode] = {}
    container = rm.find("resources") if rm is not None else None
    for r in container.children if container is not None else []:
        key = r.attrs.get(REF_KEYS.get(r.tag, "name")) or r.attrs.get("name")
        if not key:
            raise MigrateError(f"shared <{r.tag}> resource without a name", r.line)
        if (r.tag, key) in shared:
            raise MigrateError(f"duplicate shared resource {r.tag} {key!r}", r.line)
        shared[(r.tag, key)] = r
    return shared


def _resolve(node: XmlNode, shared: dict[tuple[str, str], XmlNode],
             ancestors: list[Resource], owner: str) -> Resource:
    """Turn an XML resource element into a Resource, following ref= and inheritance."""
    attrs = dict(node.attrs)
    shared_name = None
    children = list(node.children)
    if "ref" in attrs:
        ref = attrs.pop("ref")
        target = shared.get((node.tag, ref))
        if target is None:
            raise MigrateError(f"{owner}: <{node.tag} ref={ref!r}> names no resource in "
                               f"<resources>", node.line)
        # Attributes on the referencing element override the shared definition,
        # and children of both are kept (the shared ones first), as rgmanager does.
        attr_lines = {**dict.fromkeys(target.attrs, target.line), **dict.fromkeys(attrs,
                                                                                  node.line)}
        attrs = {**target.attrs, **attrs}
        children = list(target.children) + children
        shared_name = ref
    else:
        attr_lines = dict.fromkeys(attrs, node.line)
    res = Resource(node.tag, attrs, node.line, shared_name=shared_name, attr_lines=attr_lines)
    for child_attr, parent_attr in INHERIT.get(node.tag, {}).items():
        if child_attr not in res.attrs:
            for anc in reversed(ancestors):
                if parent_attr in anc.attrs:
                    res.attrs[child_attr] = anc.attrs[parent_attr]
                    break
    res.actions = [
        Action(a.attrs.get("name", ""), a.attrs.get("interval"), a.attrs.get("timeout"),
               a.attrs.get("depth"), a.line)
        for a in children if a.tag == "action"
    ]
    res.children = [_resolve(c, shared, [*ancestors, res], owner)
                    for c in children if c.tag != "action"]
    return res


def _services(rm: XmlNode | None, domains: dict[str, Domain],
              notes: list[tuple[str, str, str, int | None]]) -> list[Service]:
    if rm is None:
        return []
    shared = _shared_resources(rm)
    services: list[Service] = []
    names: dict[str, Service] = {}
    for el in rm.children:
        if el.tag in RM_NON_RESOURCES:
            continue
        name = el.attrs.get("name") or el.attrs.get("ref")
        if not name:
            raise MigrateError(f"<{el.tag}> under <rm> without a name", el.line)
        label = f"{el.tag} {name}"
        if name in names:
            raise MigrateError(f"duplicate service name {name} (first at line "
                               f"{names[name].line})", el.line)
        if el.tag == "service" and "ref" in el.attrs:
            # <service ref="x"> takes its attributes (domain, recovery...) and children
            # from <resources><service name="x">, its own attributes overriding them.
            target = shared.get(("service", el.attrs["ref"]))
            if target is None:
                raise MigrateError(f"<service ref={el.attrs['ref']!r}> names no service in "
                                   f"<resources>", el.line)
            attrs = {**target.attrs, **{k: v for k, v in el.attrs.items() if k != "ref"}}
            attrs["name"] = name
            children = list(target.children) + list(el.children)
            notes.append(("info", "service", f"service {name}: <service ref> resolved against "
                          f"the shared definition at line {target.line}", el.line))
        else:
            attrs = dict(el.attrs)
            children = list(el.children)
        dom = attrs.get("domain")
        if dom and dom not in domains:
            raise MigrateError(f"{label} names failover domain {dom!r}, which is not defined",
                               el.line)
        if el.tag == "service":
            svc = Service(name, "service", attrs, el.line,
                          actions=_actions(XmlNode(el.tag, attrs, el.line, children)))
            svc.children = [_resolve(c, shared, [], label)
                            for c in children if c.tag != "action"]
        else:
            # A vm (or any other resource rgmanager accepted directly under <rm>) is
            # itself the single resource of its unit.
            res = _resolve(el, shared, [], label)
            svc = Service(name, "vm" if el.tag == "vm" else "service", dict(res.attrs),
                          el.line, children=[res])
        names[name] = svc
        services.append(svc)
    for svc in services:
        dep = svc.attrs.get("depend")
        if dep:
            target = dep.split(":", 1)[1] if ":" in dep else dep
            if target not in names:
                raise MigrateError(f"service {svc.name} depends on {dep!r}, which is not "
                                   f"defined", svc.line)
    return services


KNOWN_TOP = {"clusternodes", "fencedevices", "rm", "cman", "totem", "quorumd", "logging",
             "fence_daemon"}


def parse(text: str | bytes) -> Cluster:
    """Parse and check a cluster.conf; raise MigrateError (with a line) on bad input."""
    root = parse_xml(text)
    if root.tag != "cluster":
        raise MigrateError(f"not a cluster.conf: the root element is <{root.tag}>, "
                           f"expected <cluster>", root.line)
    name = root.attrs.get("name")
    if not name:
        raise MigrateError("<cluster> has no name attribute", root.line)
    nodes = _nodes(root)
    devices = _fence_devices(root)
    for node in nodes:
        for method in node.methods:
            for ref in method.devices:
                if ref.device not in devices:
                    raise MigrateError(f"node {node.name}, fence method {method.name}: device "
                                       f"{ref.device!r} is not in <fencedevices>", ref.line)
        for ref in node.unfence:
            if ref.device not in devices:
                raise MigrateError(f"node {node.name}, unfence: device {ref.device!r} is not "
                                   f"in <fencedevices>", ref.line)
    rm = root.find("rm")
    notes: list[tuple[str, str, str, int | None]] = []
    domains = _domains(rm, {n.name for n in nodes}, notes)
    services = _services(rm, domains, notes)
    return Cluster(
        name=name, config_version=root.attrs.get("config_version"), line=root.line,
        nodes=nodes, fence_devices=devices, domains=domains, services=services,
        cman=root.find("cman"), totem=root.find("totem"), quorumd=root.find("quorumd"),
        logging=root.find("logging"), fence_daemon=root.find("fence_daemon"), rm=rm,
        other=[c for c in root.children if c.tag not in KNOWN_TOP], notes=notes,
        root_attrs=dict(root.attrs),
    )


def parse_file(path: Path) -> Cluster:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MigrateError(f"cannot read {path}: {exc.strerror}") from None
    return parse(data)
