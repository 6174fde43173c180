"""Per-type conversion of rgmanager resources, registered by type with @handler.

A type with an AgentRule (agents.py) and nothing special is converted by TypeHandler
from the rule alone and needs no registration. A type whose conversion needs more
(a computed parameter, a clone instead of a group member, a check) registers a
subclass here under the same type name; handler_for() is the only lookup.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from .agents import RESOURCE_AGENTS, STACK_SCRIPTS, STRUCTURAL, service_for_script
from .context import Context, ServiceBuild
from .model import Resource, Service
from .pcmk import Op, Primitive
from .primitives import (
    apply_actions,
    device_path,
    required_params,
    rule_ops,
    rule_params,
    subtree_policy,
    unused_attrs,
    wait_timeouts,
)
from .report import Report
from .restree import script_base, vg_lv, walk
from .storage import DLM, LVMLOCKD


class TypeHandler:
    """The conversion of one rgmanager type. Unchanged, it is the rule-driven default
    (a primitive of the rule's agent, placed in the service's group); subclasses
    override only the steps their type does differently."""

    # registering for a type without an AgentRule is a mistake unless this is False
    needs_rule = True

    def storage_needs(self, res: Resource) -> frozenset[str]:
        """The cluster-wide clones (storage.DLM, LVMLOCKD) this resource needs."""
        return frozenset()

    def place(self, ctx: Context, svc: Service, res: Resource, build: ServiceBuild,
              where: str) -> None:
        """Add what res becomes to the service being built."""
        build.members.append(self.primitive(ctx, svc, res, where))

    def resource_id(self, ctx: Context, svc: Service, res: Resource) -> str:
        return ctx.names.take(svc, res, res.key)

    def primitive(self, ctx: Context, svc: Service, res: Resource, where: str) -> Primitive:
        rule = RESOURCE_AGENTS[res.type]
        report = ctx.report
        rid = self.resource_id(ctx, svc, res)
        params = rule_params(report, rule, res, where, partial(self.special_param, report))
        prim = Primitive(rid, rule.cls, rule.provider, rule.type, params, ops=rule_ops(rule))
        wait_timeouts(report, rule, prim, res, where)
        self.finish(report, svc, res, prim, where)
        required_params(report, rule, prim, res, where)
        report.info("agent", f"{where} -> {rid} ({prim.agent})", res.line)
        apply_actions(report, prim, res, where)
        subtree_policy(report, prim, res, where)
        return prim

    def special_param(self, report: Report, res: Resource, key: str, value: str,
                      params: dict[str, str], where: str) -> bool:
        """Convert an attribute the rule does not name; False leaves it reported as lost."""
        return False

    def finish(self, report: Report, svc: Service, res: Resource, prim: Primitive,
               where: str) -> None:
        """Type-specific adjustments once the rule's parameters are in place."""


class _Unknown(TypeHandler):
    """No Pacemaker counterpart: a stopped placeholder, so nothing is silently lost."""

    needs_rule = False

    def primitive(self, ctx: Context, svc: Service, res: Resource, where: str) -> Primitive:
        rid = self.resource_id(ctx, svc, res)
        prim = Primitive(rid, "ocf", "rgmanager", res.type,
                         {k: v for k, v in res.attrs.items() if k not in STRUCTURAL},
                         {"target-role": "Stopped"}, [Op("monitor", "30s")])
        ctx.report.error("agent", f"{where}: rgmanager agent '{res.type}' has no "
                         f"Pacemaker counterpart; placeholder {rid} "
                         f"(ocf:rgmanager:{res.type}) is left Stopped; the resources "
                         f"after it in group {svc.name} cannot start, and crmsh/pcs "
                         f"refuse the placeholder, until it is replaced", res.line)
        return prim


HANDLERS: dict[str, TypeHandler] = {}
_RULE_ONLY = TypeHandler()
_UNKNOWN = _Unknown()

H = TypeVar("H", bound=type[TypeHandler])


def handler(*types: str) -> Callable[[H], H]:
    """Class decorator: convert these rgmanager types with the decorated handler."""
    def register(cls: H) -> H:
        # checked before anything is registered, so a refused class leaves no trace
        for rtype in types:
            if rtype in HANDLERS:
                raise ValueError(f"two handlers registered for rgmanager type {rtype!r}")
            if cls.needs_rule and rtype not in RESOURCE_AGENTS:
                raise ValueError(f"{cls.__name__} needs an AgentRule for {rtype!r}")
        instance = cls()
        HANDLERS.update(dict.fromkeys(types, instance))
        return cls
    return register


def handler_for(rtype: str) -> TypeHandler:
    """The handler of an rgmanager type: registered, rule-only, or the placeholder."""
    found = HANDLERS.get(rtype)
    if found is not None:
        return found
    return _RULE_ONLY if rtype in RESOURCE_AGENTS else _UNKNOWN


# ---- the types ----------------------------------------------------------------------------

@handler("script")
class _Script(TypeHandler):
    needs_rule = False

    def storage_needs(self, res: Resource) -> frozenset[str]:
        return frozenset({DLM, LVMLOCKD}) if script_base(res) == "clvmd" else frozenset()

    def place(self, ctx: Context, svc: Service, res: Resource, build: ServiceBuild,
              where: str) -> None:
        if script_base(res) in STACK_SCRIPTS:
            ctx.report.info("resources", f"{where}: init script of the old cluster stack "
                            f"dropped (Pacemaker runs dlm/lvmlockd clones instead)", res.line)
            return
        super().place(ctx, svc, res, build, where)

    def primitive(self, ctx: Context, svc: Service, res: Resource, where: str) -> Primitive:
        report = ctx.report
        rid = self.resource_id(ctx, svc, res)
        unused_attrs(report, res, where, {"file"}, "a script resource has only a file")
        cls, provider, typ = service_for_script(res.attrs.get("file", ""))
        prim = Primitive(rid, cls, provider, typ, ops=[Op("monitor", "30s", "30s")])
        report.info("agent", f"{where}: script {res.attrs.get('file')} -> {prim.agent}",
                    res.line)
        if cls == "lsb":
            report.warning("agent", f"{where}: {res.attrs.get('file')} runs as an LSB "
                           f"script; check it is LSB-compliant (status exit codes) or write "
                           f"a systemd unit for it", res.line)
        apply_actions(report, prim, res, where)
        subtree_policy(report, prim, res, where)
        return prim


@handler("nfsexport")
class _NfsExport(TypeHandler):
    """rgmanager's nfsexport ran the NFS daemons; its nfsclients make the exports."""

    needs_rule = False

    def place(self, ctx: Context, svc: Service, res: Resource, build: ServiceBuild,
              where: str) -> None:
        # device, path and fsid are inherited by the nfsclients below it
        unused_attrs(ctx.report, res, where, {"device", "path", "fsid"},
                     "the exports are made by the nfsclient resources below it")
        if any(r.type == "nfsserver" for r in walk(svc.children)):
            ctx.report.info("nfs", f"{where}: nfsserver in the same service runs the NFS "
                            f"daemons", res.line)
            return
        clone = ctx.clones.nfs_daemon()
        if clone not in build.needs_clones:
            build.needs_clones.append(clone)
        ctx.report.info("nfs", f"{where}: rgmanager's nfsexport started the NFS daemons; a "
                        f"clone {clone} of nfs-server does that now, and each nfsclient "
                        f"below becomes an exportfs", res.line)


@handler("drbd")
class _Drbd(TypeHandler):
    needs_rule = False

    def place(self, ctx: Context, svc: Service, res: Resource, build: ServiceBuild,
              where: str) -> None:
        unused_attrs(ctx.report, res, where, {"resource"},
                     "ocf:linbit:drbd takes its settings from the DRBD resource file")
        cluster = ctx.cluster
        build.drbd_clones.append(ctx.clones.drbd(
            svc, res, cluster.domains.get(svc.domain or ""), [n.name for n in cluster.nodes]))


@handler("clusterfs")
class _ClusterFs(TypeHandler):
    def storage_needs(self, res: Resource) -> frozenset[str]:
        # an LV under GFS2 was clustered (clvmd); lvmlockd takes over its locking
        if vg_lv(res.attrs.get("device", "")):
            return frozenset({DLM, LVMLOCKD})
        return frozenset({DLM})

    def place(self, ctx: Context, svc: Service, res: Resource, build: ServiceBuild,
              where: str) -> None:
        build.needs_clones.append(ctx.clones.clusterfs(svc, res))


@handler("lvm")
class _Lvm(TypeHandler):
    def place(self, ctx: Context, svc: Service, res: Resource, build: ServiceBuild,
              where: str) -> None:
        if ctx.clones.lvmlockd and any(r.type == "clusterfs" for r in walk(svc.children)):
            # an LV holding GFS2 is activated shared by the clusterfs clone
            ctx.report.info("storage", f"{where}: shared LV activation is done by the "
                            f"GFS2 clone, not by the service", res.line)
            return
        super().place(ctx, svc, res, build, where)

    def finish(self, report: Report, svc: Service, res: Resource, prim: Primitive,
               where: str) -> None:
        report.warning("storage", f"{where}: HA-LVM tagging is replaced by LVM-activate "
                       f"vg_access_mode=system_id: set system_id_source=uname in lvm.conf "
                       f"on every node and remove the volume_list tags", res.line)


@handler("ip")
class _Ip(TypeHandler):
    def resource_id(self, ctx: Context, svc: Service, res: Resource) -> str:
        # the prefix length would only clutter the id
        return ctx.names.take(svc, res, res.key.split("/", 1)[0])

    def special_param(self, report: Report, res: Resource, key: str, value: str,
                      params: dict[str, str], where: str) -> bool:
        if key != "address":
            return False
        ip, _, prefix = value.partition("/")
        params["ip"] = ip
        if prefix:
            params["cidr_netmask"] = prefix
        return True

    def finish(self, report: Report, svc: Service, res: Resource, prim: Primitive,
               where: str) -> None:
        if "/" not in res.attrs.get("address", ""):
            report.info("parameter", f"{where}: no prefix length; IPaddr2 takes the one "
                        f"of the interface's existing address", res.line)


@handler("fs")
class _Fs(TypeHandler):
    def finish(self, report: Report, svc: Service, res: Resource, prim: Primitive,
               where: str) -> None:
        if "device" in prim.params:
            prim.params["device"] = device_path(report, prim.params["device"], where,
                                                res.line_of("device"))
        if "fstype" not in prim.params:
            # fs.sh let mount detect the type; Filesystem declares fstype required, so
            # crmsh and pcs refuse the resource until it is set (mount still detects
            # it at run time when it is missing from the CIB)
            report.error("parameter", f"{where}: no fstype: rgmanager let mount detect it, "
                         f"but Filesystem requires it (crm.sh and pcs.sh refuse the "
                         f"resource): find it with 'blkid -o value -s TYPE "
                         f"{prim.params.get('device', 'DEVICE')}' and set fstype", res.line)


@handler("netfs")
class _NetFs(TypeHandler):
    def special_param(self, report: Report, res: Resource, key: str, value: str,
                      params: dict[str, str], where: str) -> bool:
        if key not in ("host", "export"):
            return False
        params["device"] = f"{res.attrs.get('host', '')}:{res.attrs.get('export', '')}"
        return True

    def finish(self, report: Report, svc: Service, res: Resource, prim: Primitive,
               where: str) -> None:
        prim.params.setdefault("fstype", "nfs")


@handler("apache")
class _Apache(TypeHandler):
    def special_param(self, report: Report, res: Resource, key: str, value: str,
                      params: dict[str, str], where: str) -> bool:
        if key != "config_file":
            return False
        root = res.attrs.get("server_root", "/etc/httpd")
        params["configfile"] = value if value.startswith("/") else f"{root}/{value}"
        report.warning("parameter", f"{where}: configfile={params['configfile']}: on Debian "
                       f"Apache's configuration is /etc/apache2/apache2.conf", res.line)
        return True


@handler("oracledb", "orainstance")
class _OracleInstance(TypeHandler):
    def finish(self, report: Report, svc: Service, res: Resource, prim: Primitive,
               where: str) -> None:
        if "name" in res.attrs:
            prim.params["sid"] = res.attrs["name"]


@handler("oralistener")
class _OracleListener(TypeHandler):
    def finish(self, report: Report, svc: Service, res: Resource, prim: Primitive,
               where: str) -> None:
        if "name" in res.attrs:
            prim.params["listener"] = res.attrs["name"]


@handler("nfsclient")
class _NfsClient(TypeHandler):
    def finish(self, report: Report, svc: Service, res: Resource, prim: Primitive,
               where: str) -> None:
        if "directory" not in prim.params:
            report.error("parameter", f"{where}: no path (and no parent file system to "
                         f"inherit one from): set exportfs 'directory'", res.line)
        if "fsid" not in prim.params:
            # rgmanager derived an fsid when none was given; exportfs requires one,
            # and it must be stable across nodes, so derive it from the path.
            path = prim.params.get("directory", res.key)
            prim.params["fsid"] = str(zlib.crc32(path.encode()) % 65535 + 1)
            report.warning("parameter", f"{where}: no fsid given; fsid={prim.params['fsid']} "
                           f"derived from the path (NFS clients may need to remount once)",
                           res.line)
        else:
            report.info("parameter", f"{where}: path and fsid inherited from the file "
                        f"system above it", res.line)


@handler("nfsserver")
class _NfsServer(TypeHandler):
    def finish(self, report: Report, svc: Service, res: Resource, prim: Primitive,
               where: str) -> None:
        path = res.attrs.get("path")
        if path:
            nfspath = res.attrs.get("nfspath", ".clumanager/nfs")
            prim.params["nfs_shared_infodir"] = f"{path.rstrip('/')}/{nfspath}"
        else:
            report.error("parameter", f"{where}: no path to keep NFS state in: set "
                         f"nfs_shared_infodir", res.line)


@handler("vm")
class _Vm(TypeHandler):
    def resource_id(self, ctx: Context, svc: Service, res: Resource) -> str:
        # a top-level <vm> is the service itself: its primitive carries the service's name
        if svc.kind == "vm":
            return ctx.ids.take(svc.name)
        return super().resource_id(ctx, svc, res)

    def finish(self, report: Report, svc: Service, res: Resource, prim: Primitive,
               where: str) -> None:
        a = res.attrs
        xml = a.get("xmlfile")
        if not xml:
            paths = a.get("path", "/etc/libvirt/qemu").split(":")
            xml = f"{paths[0].rstrip('/')}/{a.get('name', svc.name)}.xml"
            if len(paths) > 1:
                report.warning("parameter", f"{where}: path has several folders; "
                               f"config={xml} taken from the first", res.line)
        prim.params["config"] = xml
        if a.get("migrate", "live") in ("live", "pause"):
            prim.meta["allow-migrate"] = "true"
            report.info("vm", f"{where}: migrate={a.get('migrate', 'live')} -> "
                        f"allow-migrate=true", res.line)
        report.info("vm", f"{where}: vm -> VirtualDomain config={xml}; copy the domain XML "
                    f"to every node (or keep it on shared storage)", res.line)
