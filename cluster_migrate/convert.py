"""model.Cluster -> pcmk.Configuration: rgmanager services, domains and policies.

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

import re
import zlib
from dataclasses import dataclass, field

from .agents import (
    CHILD_RULES,
    MAX_ONE_INSTANCE,
    RESOURCE_AGENTS,
    STACK_SCRIPTS,
    STRUCTURAL,
    service_for_script,
    truthy,
)
from .fencing import convert_fencing
from .ids import Ids
from .model import Action, Cluster, Domain, Resource, Service
from .pcmk import Clone, Colocation, Configuration, Group, Location, Op, Order, Primitive
from .report import Report

INFINITY = "INFINITY"
MEMBER_SCORE = 100
NOFAILBACK_STICKINESS = "1000"
DEFAULT_STICKINESS = "100"


def _seconds(value: str) -> str:
    """rgmanager wrote bare numbers for seconds; Pacemaker would too, but say it."""
    value = value.strip()
    return f"{value}s" if value.isdigit() else value


# Service attributes _service and _recovery turn into something, or report themselves.
SERVICE_ATTRS = {"name", "domain", "autostart", "recovery", "max_restarts",
                 "restart_expire_time", "exclusive", "depend", "depend_mode", "nfslock",
                 "hardrecovery", "priority", "nfs_client_cache", "central_processing",
                 "__max_failures", "__failure_expire_time", "__independent_subtree",
                 "__enforce_timeouts", "__max_restarts", "__restart_expire_time"}


def child_order(parent_type: str, children: list[Resource]
                ) -> tuple[list[Resource], list[Resource]]:
    """rgmanager's start order of one parent's children, and the children it ignored.

    Children whose type the parent's rules give a start level start first, level by
    level (within a level in rule order, then as written); then the children the
    rules name without a level, then all others, both as written (restree.c's two
    passes). A type the rules forbid was never loaded by rgmanager.
    """
    rules = CHILD_RULES.get(parent_type, {})
    rank = {t: i for i, t in enumerate(rules)}
    forbidden = [c for c in children if c.type in rules and rules[c.type] is None]
    leveled = sorted((c for c in children if rules.get(c.type)),
                     key=lambda c: (rules[c.type], rank[c.type]))
    named = sorted((c for c in children if c.type in rules and rules[c.type] == 0),
                   key=lambda c: rank[c.type])
    untyped = [c for c in children if c.type not in rules]
    return leveled + named + untyped, forbidden


@dataclass
class _ServiceBuild:
    """What one service turned into, collected while walking its tree."""

    members: list[Primitive] = field(default_factory=list)
    # clone ids the service's group must start after and run with
    needs_clones: list[str] = field(default_factory=list)
    drbd_clones: list[str] = field(default_factory=list)


class Converter:
    def __init__(self, cluster: Cluster, report: Report) -> None:
        self.cluster = cluster
        self.report = report
        self.ids = Ids()
        self.config = Configuration(cluster.name)
        # how often each shared resource is referenced: shared ones used twice get
        # service-prefixed ids so that neither reads as "the" resource
        self.ref_counts: dict[tuple[str, str], int] = {}
        self.shared_clones: dict[tuple[str, str], str] = {}
        self.dlm_clone: str | None = None
        self.lvmlockd_clone: str | None = None
        self.nfs_clone: str | None = None
        # (type, name) of single-instance resources -> the service that got it first
        self.instance_owner: dict[tuple[str, str], tuple[str, Resource]] = {}
        self.rm_disabled = cluster.rm is not None and truthy(cluster.rm.attrs.get("disabled"))

    # ---- entry point -----------------------------------------------------------------
    def run(self) -> Configuration:
        cfg = self.config
        for severity, topic, message, line in self.cluster.notes:
            self.report.add(severity, topic, message, line)
        self._cluster_attrs()
        has_fencing = convert_fencing(self.cluster, cfg, self.ids, self.report)
        cfg.properties["stonith-enabled"] = "true" if has_fencing else "false"
        # cluster-name is not set here: Pacemaker takes it from corosync's cluster_name,
        # and pcs refuses to set it by hand.
        cfg.rsc_defaults["resource-stickiness"] = DEFAULT_STICKINESS
        self.report.info("resources", "resource-stickiness=100 by default: like rgmanager, "
                         "a running service is not moved when a node rejoins", None)
        self._rm_options()
        self._other_sections()
        self._detect_shared_storage()
        for svc in self.cluster.services:
            self._count_refs(svc.children)
        for svc in self.cluster.services:
            self._service(svc)
        self._service_relations()
        self._dependencies()
        return cfg

    def _cluster_attrs(self) -> None:
        for key, value in self.cluster.root_attrs.items():
            if key not in ("name", "config_version"):
                self.report.info("cluster", f"<cluster {key}={value!r}> not carried over: "
                                 f"corosync 3 and Pacemaker know only the cluster name",
                                 self.cluster.line)

    # ---- cluster-wide ----------------------------------------------------------------
    def _rm_options(self) -> None:
        rm = self.cluster.rm
        if rm is None:
            self.report.warning("resources", "no <rm> section: no services to convert", None)
            return
        if self.rm_disabled:
            self.report.warning("resources", "<rm disabled=\"1\">: rgmanager was switched off, "
                                "so every service is created with target-role=Stopped", rm.line)
        for key, value in rm.attrs.items():
            if key == "disabled":
                continue
            self.report.info("resources", f"<rm {key}={value!r}> not carried over: Pacemaker "
                             f"has no rgmanager daemon options", rm.line)
        for el in rm.children:
            if el.tag == "events":
                self.report.error("resources", "<events> (central_processing scripts) not "
                                  "carried over: express the rules as constraints", el.line)
            elif el.tag == "resource-defaults":
                attrs = ", ".join(f"{k}={v}" for k, v in el.attrs.items())
                self.report.warning("resources", f"<resource-defaults> ({attrs}) not carried "
                                    f"over: set the matching rsc_defaults by hand", el.line)
        domains = rm.find("failoverdomains")
        for fd in domains.findall("failoverdomain") if domains is not None else []:
            for key, value in fd.attrs.items():
                if key not in ("name", "ordered", "restricted", "nofailback"):
                    self.report.warning("domain", f"failover domain {fd.attrs.get('name')}: "
                                        f"{key}={value!r} not carried over (unknown to the "
                                        f"converter)", fd.line)

    def _other_sections(self) -> None:
        """Top-level sections with no Pacemaker counterpart: say so, with their lines."""
        fd = self.cluster.fence_daemon
        if fd is not None:
            for key, value in fd.attrs.items():
                if key == "post_fail_delay" and value not in ("", "0"):
                    self.report.warning("fencing", f"<fence_daemon post_fail_delay={value}> not "
                                        f"carried over: use pcmk_delay_base on the fence "
                                        f"devices if a delay before fencing is still wanted",
                                        fd.line)
                else:
                    self.report.info("fencing", f"<fence_daemon {key}={value!r}> not carried "
                                     f"over: Pacemaker's fencer has no such option", fd.line)
        for el in self.cluster.other:
            self.report.warning("cluster", f"<{el.tag}> not carried over: no counterpart in "
                                f"corosync 3 or Pacemaker (check whether its settings still "
                                f"matter)", el.line)
        if (len(self.cluster.nodes) == 2 and self.cluster.fence_devices
                and not any("delay" in d.attrs for d in self.cluster.fence_devices.values())):
            self.report.warning("fencing", "two-node cluster: set pcmk_delay_max (e.g. 15s) on "
                                "one fence device so that both nodes cannot fence each other "
                                "at once after a split", None)

    def _detect_shared_storage(self) -> None:
        """GFS2 needs dlm (and lvmlockd where clvmd ran): set them up once, cluster-wide."""
        uses_gfs = False
        uses_clvm = False
        for svc in self.cluster.services:
            for res in _walk(svc.children):
                if res.type == "clusterfs":
                    uses_gfs = True
                    if _vg_lv(res.attrs.get("device", "")):
                        uses_clvm = True
                if res.type == "script" and _script_base(res) == "clvmd":
                    uses_clvm = True
        if not (uses_gfs or uses_clvm):
            return
        dlm = Primitive(self.ids.take("dlm"), "ocf", "pacemaker", "controld",
                        ops=[Op("monitor", "30s", "60s"), Op("start", "0s", "90s"),
                             Op("stop", "0s", "100s")])
        self.dlm_clone = self.ids.take(f"{dlm.id}-clone")
        self.config.resources.append(Clone(self.dlm_clone, dlm, {"interleave": "true"}))
        self.report.info("storage", "GFS2/clvmd in use: dlm runs as a clone "
                         "(ocf:pacemaker:controld) instead of being started by cman", None)
        if uses_clvm:
            lock = Primitive(self.ids.take("lvmlockd"), "ocf", "heartbeat", "lvmlockd",
                             ops=[Op("monitor", "30s", "90s"), Op("start", "0s", "90s"),
                                  Op("stop", "0s", "90s")])
            self.lvmlockd_clone = self.ids.take(f"{lock.id}-clone")
            self.config.resources.append(Clone(self.lvmlockd_clone, lock,
                                               {"interleave": "true"}))
            self._order(self.dlm_clone, self.lvmlockd_clone)
            self._colocate(self.lvmlockd_clone, self.dlm_clone, INFINITY)
            self.report.warning("storage", "clvmd is replaced by lvmlockd: on one node run "
                                "'vgchange --lock-type dlm VG' for each clustered VG after "
                                "lvmlockd is running, and set use_lvmlockd=1 in lvm.conf",
                                None)

    def _count_refs(self, children: list[Resource]) -> None:
        for res in _walk(children):
            if res.shared_name and res.type not in MAX_ONE_INSTANCE:
                key = (res.type, res.shared_name)
                self.ref_counts[key] = self.ref_counts.get(key, 0) + 1

    # ---- one service -----------------------------------------------------------------
    def _service(self, svc: Service) -> None:
        build = _ServiceBuild()
        self._flatten(svc, svc.kind if svc.kind == "service" else "", svc.children, build, [])
        a = svc.attrs
        meta: dict[str, str] = {}
        if a.get("autostart", "1").strip() in ("0", "no", "false"):
            meta["target-role"] = "Stopped"
            self.report.info("service", f"{svc.name}: autostart=0 -> target-role=Stopped",
                             svc.line)
        if self.rm_disabled:
            meta["target-role"] = "Stopped"
        on_fail = self._recovery(svc, meta)
        if svc.kind == "service":
            self._service_attrs(svc, meta)
        if on_fail:
            for prim in build.members:
                for op in prim.ops:
                    if op.name == "monitor":
                        op.on_fail = on_fail
        for key in ("nfslock", "hardrecovery", "priority", "nfs_client_cache",
                    "central_processing"):
            if key in a:
                self.report.warning("service", f"{svc.name}: {key}={a[key]!r} not carried "
                                    f"over (no Pacemaker equivalent)", svc.line)
        if not build.members:
            self.report.warning("service", f"{svc.name}: no resource left to run; no group "
                                f"is created", svc.line)
            return
        rsc_id = build.members[0].id if svc.kind == "vm" else self.ids.take(svc.name)
        # the domain may set stickiness in meta, so it runs before meta is attached
        self._domain(svc, rsc_id, meta)
        if svc.kind == "vm":
            build.members[0].meta.update(meta)
            self.config.resources.extend(build.members)
        else:
            self.config.resources.append(Group(rsc_id, build.members, meta))
            self.report.info("service", f"service {svc.name} -> group {rsc_id} "
                             f"({', '.join(p.id for p in build.members)}), members start in "
                             f"rgmanager's order", svc.line)
        self.config.service_ids[svc.name] = rsc_id
        for clone in build.needs_clones:
            self._order(clone, rsc_id)
            self._colocate(rsc_id, clone, INFINITY)
        for clone in build.drbd_clones:
            self._order(clone, rsc_id, first_action="promote", then_action="start")
            self._colocate(rsc_id, clone, INFINITY, with_role="Promoted")

    def _recovery(self, svc: Service, meta: dict[str, str]) -> str | None:
        a = svc.attrs
        recovery = a.get("recovery", "restart").strip() or "restart"
        max_restarts = a.get("max_restarts", "").strip()
        expire = a.get("restart_expire_time", "").strip()
        line = svc.line
        on_fail = None
        if recovery == "relocate":
            meta["migration-threshold"] = "1"
            self.report.info("recovery", f"{svc.name}: recovery=relocate -> "
                             f"migration-threshold=1 (move on first failure)", line)
        elif recovery in ("restart", "restart-disable"):
            if max_restarts and not max_restarts.isdigit():
                self.report.warning("recovery", f"{svc.name}: max_restarts={max_restarts!r} "
                                    f"is not a number; ignored", line)
                max_restarts = ""
            if max_restarts and max_restarts != "0":
                meta["migration-threshold"] = str(int(max_restarts) + 1)
                self.report.info("recovery", f"{svc.name}: max_restarts={max_restarts} -> "
                                 f"migration-threshold={int(max_restarts) + 1} (restart in "
                                 f"place {max_restarts} times, then move)", line)
            if expire and expire != "0":
                meta["failure-timeout"] = _seconds(expire)
                self.report.info("recovery", f"{svc.name}: restart_expire_time={expire} -> "
                                 f"failure-timeout={_seconds(expire)}", line)
            if recovery == "restart-disable":
                self.report.warning("recovery", f"{svc.name}: recovery=restart-disable is "
                                    f"approximated: after the restarts Pacemaker moves the "
                                    f"service instead of disabling it", line)
        elif recovery == "disable":
            on_fail = "stop"
            self.report.info("recovery", f"{svc.name}: recovery=disable -> monitor "
                             f"on-fail=stop", line)
        else:
            self.report.warning("recovery", f"{svc.name}: unknown recovery={recovery!r}, "
                                f"Pacemaker's default (restart) is used", line)
        return on_fail

    def _service_attrs(self, svc: Service, meta: dict[str, str]) -> None:
        """Service attributes beyond recovery: carried over where they mean something,
        reported otherwise, so that none disappears without a word."""
        a = svc.attrs
        where = f"{svc.name}"
        failures = a.get("__max_failures", "").strip()
        if failures:
            if not failures.isdigit():
                self.report.warning("recovery", f"{where}: __max_failures={failures!r} is not "
                                    f"a number; not carried over", svc.line)
            elif "migration-threshold" in meta:
                self.report.warning("recovery", f"{where}: __max_failures={failures} not "
                                    f"carried over: recovery/max_restarts already set "
                                    f"migration-threshold={meta['migration-threshold']}",
                                    svc.line)
            elif failures != "0":
                meta["migration-threshold"] = failures
                self.report.info("recovery", f"{where}: __max_failures={failures} -> "
                                 f"migration-threshold={failures}", svc.line)
        expire = a.get("__failure_expire_time", "").strip()
        if expire and expire != "0":
            if "failure-timeout" in meta:
                self.report.warning("recovery", f"{where}: __failure_expire_time={expire} not "
                                    f"carried over: restart_expire_time already set "
                                    f"failure-timeout={meta['failure-timeout']}", svc.line)
            else:
                meta["failure-timeout"] = _seconds(expire)
                self.report.info("recovery", f"{where}: __failure_expire_time={expire} -> "
                                 f"failure-timeout={_seconds(expire)}", svc.line)
        for key in ("__independent_subtree", "__max_restarts", "__restart_expire_time"):
            if key in a:
                self.report.warning("service", f"{where}: {key}={a[key]!r} not carried over: "
                                    f"it applies to resources inside a service, not to the "
                                    f"service itself", svc.line)
        if truthy(a.get("__enforce_timeouts")):
            self.report.info("operation", f"{where}: __enforce_timeouts: Pacemaker always "
                             f"enforces operation timeouts", svc.line)
        for key, value in a.items():
            if key not in SERVICE_ATTRS:
                self.report.warning("service", f"{where}: attribute {key}={value!r} is not a "
                                    f"known service attribute; not carried over", svc.line)

    def _flatten(self, svc: Service, parent_type: str, children: list[Resource],
                 build: _ServiceBuild, ancestors: list[Resource]) -> None:
        ordered, forbidden = child_order(parent_type, children)
        for res in forbidden:
            self.report.warning("resources", f"{svc.name}/{res.type} {res.key}: rgmanager "
                                f"ignored a <{res.type}> below <{parent_type}> (its agent "
                                f"forbids that child); not converted", res.line)
        for res in ordered:
            if not self._single_instance(svc, res):
                continue
            self._resource(svc, res, build, ancestors)
            self._flatten(svc, res.type, res.children, build, [*ancestors, res])

    def _single_instance(self, svc: Service, res: Resource) -> bool:
        """False for a second use of a resource rgmanager allowed only once.

        rgmanager loaded such a resource (ip, fs, lvm... maxinstances=1) into the first
        service that named it and skipped the later references with their children;
        converting each reference would run the same address or mount on two nodes.
        """
        if res.type not in MAX_ONE_INSTANCE or res.type == "drbd":
            # drbd becomes one promotable clone that every service using it follows
            return True
        key = (res.type, res.shared_name or res.key)
        owner, first = self.instance_owner.setdefault(key, (svc.name, res))
        if first is res:
            return True
        self.report.warning("resources", f"{svc.name}/{res.type} {res.key}: already used by "
                            f"service {owner}; rgmanager runs a {res.type} resource in one "
                            f"service only (maxinstances=1) and skipped this reference and "
                            f"the resources below it, so the conversion does too", res.line)
        return False

    def _unused_attrs(self, res: Resource, where: str, used: set[str], why: str) -> None:
        """Report every attribute of res outside `used` (and the structural ones)."""
        for key, value in res.attrs.items():
            if key not in used and key not in STRUCTURAL:
                self.report.warning("parameter", f"{where}: {key}={value!r} not carried over: "
                                    f"{why}", res.line_of(key))

    def _rid(self, svc: Service, res: Resource) -> str:
        if svc.kind == "vm" and res.type == "vm":
            return self.ids.take(svc.name)
        key = res.key.split("/", 1)[0] if res.type == "ip" else res.key
        base = f"{res.type}-{key}"
        if res.shared_name and self.ref_counts.get((res.type, res.shared_name), 0) > 1:
            base = f"{svc.name}-{base}"
        return self.ids.take(base)

    def _resource(self, svc: Service, res: Resource, build: _ServiceBuild,
                  ancestors: list[Resource]) -> None:
        where = f"{svc.name}/{res.type} {res.key}"
        if res.type == "nfsexport":
            # device, path and fsid are inherited by the nfsclients below it
            self._unused_attrs(res, where, {"device", "path", "fsid"},
                               "the exports are made by the nfsclient resources below it")
            self._nfs_daemon(svc, res, build)
            return
        if res.type == "drbd":
            self._unused_attrs(res, where, {"resource"},
                               "ocf:linbit:drbd takes its settings from the DRBD resource "
                               "file")
            build.drbd_clones.append(self._drbd(svc, res))
            return
        if res.type == "script" and _script_base(res) in STACK_SCRIPTS:
            self.report.info("resources", f"{where}: init script of the old cluster stack "
                             f"dropped (Pacemaker runs dlm/lvmlockd clones instead)", res.line)
            return
        if res.type == "clusterfs":
            build.needs_clones.append(self._clusterfs(svc, res))
            return
        if (res.type == "lvm" and self.lvmlockd_clone
                and any(r.type == "clusterfs" for r in _walk(svc.children))):
            # an LV holding GFS2 is activated shared by the clusterfs clone
            self.report.info("storage", f"{where}: shared LV activation is done by the "
                             f"GFS2 clone, not by the service", res.line)
            return
        prim = self._primitive(svc, res, where, ancestors)
        build.members.append(prim)

    def _primitive(self, svc: Service, res: Resource, where: str,
                   ancestors: list[Resource]) -> Primitive:
        rule = RESOURCE_AGENTS.get(res.type)
        rid = self._rid(svc, res)
        if res.type == "script":
            self._unused_attrs(res, where, {"file"}, "a script resource has only a file")
            cls, provider, typ = service_for_script(res.attrs.get("file", ""))
            prim = Primitive(rid, cls, provider, typ, ops=[Op("monitor", "30s", "30s")])
            self.report.info("agent", f"{where}: script {res.attrs.get('file')} -> "
                             f"{prim.agent}", res.line)
            if cls == "lsb":
                self.report.warning("agent", f"{where}: {res.attrs.get('file')} runs as an "
                                    f"LSB script; check it is LSB-compliant (status exit "
                                    f"codes) or write a systemd unit for it", res.line)
            self._ops(prim, res, where)
            self._subtree_policy(prim, res, where)
            return prim
        if rule is None:
            prim = Primitive(rid, "ocf", "rgmanager", res.type,
                             {k: v for k, v in res.attrs.items() if k not in STRUCTURAL},
                             {"target-role": "Stopped"}, [Op("monitor", "30s")])
            self.report.error("agent", f"{where}: rgmanager agent '{res.type}' has no "
                              f"Pacemaker counterpart; placeholder {rid} "
                              f"(ocf:rgmanager:{res.type}) is left Stopped; the resources "
                              f"after it in group {svc.name} cannot start, and crmsh/pcs "
                              f"refuse the placeholder, until it is replaced", res.line)
            return prim
        params: dict[str, str] = dict(rule.fixed)
        for key, value in res.attrs.items():
            if key in STRUCTURAL or key in rule.wait_timeouts:
                continue
            if not value.strip():
                # rgmanager read an empty attribute as unset; pcs refuses empty values
                self.report.info("parameter", f"{where}: {key}=\"\" is empty; left unset",
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
                    self.report.warning("parameter", f"{where}: {key}={value!r} not carried "
                                        f"over: {rule.dropped[key]}", res.line_of(key))
            else:
                self._special_param(res, key, value, params, where)
        prim = Primitive(rid, rule.cls, rule.provider, rule.type, params,
                         ops=[Op("monitor", rule.monitor, rule.timeouts.get("monitor", "20s"))]
                         + [Op(name, "0s", t) for name, t in rule.timeouts.items()
                            if name != "monitor"])
        for attr, op_name in rule.wait_timeouts.items():
            if attr in res.attrs:
                seconds = int(re.sub(r"\D", "", res.attrs[attr]) or "0")
                self._set_timeout(prim, op_name, f"{max(seconds + 20, 20)}s")
                self.report.info("operation", f"{where}: {attr}={res.attrs[attr]} -> "
                                 f"{op_name} timeout {max(seconds + 20, 20)}s", res.line)
        self._agent_specific(svc, res, prim, where)
        for req in rule.required:
            if req not in prim.params:
                self.report.warning("parameter", f"{where}: {prim.agent} needs '{req}', which "
                                    f"cluster.conf does not give: set it before starting",
                                    res.line)
        self.report.info("agent", f"{where} -> {rid} ({prim.agent})", res.line)
        self._ops(prim, res, where)
        self._subtree_policy(prim, res, where)
        return prim

    def _special_param(self, res: Resource, key: str, value: str, params: dict[str, str],
                       where: str) -> None:
        """Attributes whose conversion is a computation, not a rename."""
        t = res.type
        if t == "ip" and key == "address":
            ip, _, prefix = value.partition("/")
            params["ip"] = ip
            if prefix:
                params["cidr_netmask"] = prefix
        elif t == "netfs" and key in ("host", "export"):
            params["device"] = f"{res.attrs.get('host', '')}:{res.attrs.get('export', '')}"
        elif t == "apache" and key == "config_file":
            root = res.attrs.get("server_root", "/etc/httpd")
            params["configfile"] = value if value.startswith("/") else f"{root}/{value}"
            self.report.warning("parameter", f"{where}: configfile={params['configfile']}: "
                                f"on Debian Apache's configuration is /etc/apache2/apache2.conf",
                                res.line)
        else:
            self.report.warning("parameter", f"{where}: attribute {key}={value!r} has no "
                                f"counterpart in the Pacemaker agent; not carried over",
                                res.line_of(key))

    def _agent_specific(self, svc: Service, res: Resource, prim: Primitive, where: str) -> None:
        t = res.type
        a = res.attrs
        if t == "netfs":
            prim.params.setdefault("fstype", "nfs")
        if t == "fs":
            if "device" in prim.params:
                prim.params["device"] = self._device_path(prim.params["device"], where,
                                                          res.line_of("device"))
            if "fstype" not in prim.params:
                # fs.sh let mount detect the type; Filesystem declares fstype required, so
                # crmsh and pcs refuse the resource until it is set (mount still detects
                # it at run time when it is missing from the CIB)
                self.report.error("parameter", f"{where}: no fstype: rgmanager let mount "
                                  f"detect it, but Filesystem requires it (crm.sh and pcs.sh "
                                  f"refuse the resource): find it with 'blkid -o value -s "
                                  f"TYPE {prim.params.get('device', 'DEVICE')}' and set "
                                  f"fstype", res.line)
        if t in ("oracledb", "orainstance") and "name" in a:
            prim.params["sid"] = a["name"]
        if t == "oralistener" and "name" in a:
            prim.params["listener"] = a["name"]
        if t == "nfsclient":
            if "directory" not in prim.params:
                self.report.error("parameter", f"{where}: no path (and no parent file system "
                                  f"to inherit one from): set exportfs 'directory'", res.line)
            if "fsid" not in prim.params:
                # rgmanager derived an fsid when none was given; exportfs requires one,
                # and it must be stable across nodes, so derive it from the path.
                path = prim.params.get("directory", res.key)
                prim.params["fsid"] = str(zlib.crc32(path.encode()) % 65535 + 1)
                self.report.warning("parameter", f"{where}: no fsid given; fsid="
                                    f"{prim.params['fsid']} derived from the path (NFS clients "
                                    f"may need to remount once)", res.line)
            else:
                self.report.info("parameter", f"{where}: path and fsid inherited from the file "
                                 f"system above it", res.line)
        if t == "nfsserver":
            path = a.get("path")
            if path:
                nfspath = a.get("nfspath", ".clumanager/nfs")
                prim.params["nfs_shared_infodir"] = f"{path.rstrip('/')}/{nfspath}"
            else:
                self.report.error("parameter", f"{where}: no path to keep NFS state in: set "
                                  f"nfs_shared_infodir", res.line)
        if t == "vm":
            xml = a.get("xmlfile")
            if not xml:
                paths = a.get("path", "/etc/libvirt/qemu").split(":")
                xml = f"{paths[0].rstrip('/')}/{a.get('name', svc.name)}.xml"
                if len(paths) > 1:
                    self.report.warning("parameter", f"{where}: path has several folders; "
                                        f"config={xml} taken from the first", res.line)
            prim.params["config"] = xml
            if a.get("migrate", "live") in ("live", "pause"):
                prim.meta["allow-migrate"] = "true"
                self.report.info("vm", f"{where}: migrate={a.get('migrate', 'live')} -> "
                                 f"allow-migrate=true", res.line)
            self.report.info("vm", f"{where}: vm -> VirtualDomain config={xml}; copy the "
                             f"domain XML to every node (or keep it on shared storage)",
                             res.line)
        if t == "lvm":
            self.report.warning("storage", f"{where}: HA-LVM tagging is replaced by "
                                f"LVM-activate vg_access_mode=system_id: set "
                                f"system_id_source=uname in lvm.conf on every node and remove "
                                f"the volume_list tags", res.line)
            if "lvname" not in prim.params:
                prim.params.pop("lvname", None)
        if t == "ip" and "/" not in a.get("address", ""):
            self.report.info("parameter", f"{where}: no prefix length; IPaddr2 takes the one "
                             f"of the interface's existing address", res.line)

    def _device_path(self, device: str, where: str, line: int) -> str:
        """LABEL=/UUID= (fs.sh resolved them itself) -> the udev path Filesystem wants."""
        for prefix, folder in (("LABEL=", "by-label"), ("UUID=", "by-uuid")):
            if device.upper().startswith(prefix):
                path = f"/dev/disk/{folder}/{device[len(prefix):].strip(chr(34) + chr(39))}"
                self.report.info("parameter", f"{where}: device={device} -> {path} (the "
                                 f"Filesystem agent does not resolve {prefix})", line)
                return path
        return device

    def _set_timeout(self, prim: Primitive, op_name: str, timeout: str) -> None:
        for op in prim.ops:
            if op.name == op_name:
                op.timeout = timeout
                return
        prim.ops.append(Op(op_name, "0s", timeout))

    def _ops(self, prim: Primitive, res: Resource, where: str) -> None:
        """<action> overrides -> operations; status depths become OCF_CHECK_LEVEL."""
        monitors: list[Action] = [a for a in res.actions if a.name in ("status", "monitor")]
        if monitors:
            default_timeout = next((op.timeout for op in prim.ops
                                    if op.name == "monitor" and op.timeout), "20s")
            prim.ops = [op for op in prim.ops if op.name != "monitor"]
            used: set[str] = set()
            for act in monitors:
                interval = _seconds(act.interval or "30")
                while interval in used:
                    # Pacemaker needs a unique interval per monitor; rgmanager did not
                    interval = f"{_num(interval) + 1}s"
                used.add(interval)
                params = {}
                if act.depth and act.depth not in ("*", "0"):
                    params["OCF_CHECK_LEVEL"] = act.depth
                prim.ops.append(Op("monitor", interval, _seconds(act.timeout) if act.timeout
                                   else default_timeout, params=params))
                self.report.info("operation", f"{where}: status action (depth "
                                 f"{act.depth or '*'}) -> monitor interval={interval}",
                                 act.line)
        for act in res.actions:
            if act.name in ("start", "stop", "migrate", "reload") and act.timeout:
                name = "migrate_to" if act.name == "migrate" else act.name
                self._set_timeout(prim, name, _seconds(act.timeout))
                self.report.info("operation", f"{where}: {act.name} timeout={act.timeout} -> "
                                 f"{name} timeout", act.line)
            elif act.name not in ("status", "monitor", "start", "stop", "migrate", "reload"):
                self.report.warning("operation", f"{where}: action {act.name!r} not carried "
                                    f"over", act.line)
        if truthy(res.attrs.get("__enforce_timeouts")):
            self.report.info("operation", f"{where}: __enforce_timeouts: Pacemaker always "
                             f"enforces operation timeouts", res.line)

    def _subtree_policy(self, prim: Primitive, res: Resource, where: str) -> None:
        a = res.attrs
        indep = a.get("__independent_subtree", "0").strip()
        if indep == "1":
            self.report.warning("recovery", f"{where}: __independent_subtree=1 approximated: "
                                f"Pacemaker restarts a failed group member and the members "
                                f"after it, not only this subtree", res.line)
        elif indep == "2":
            for op in prim.ops:
                if op.name == "monitor":
                    op.on_fail = "stop"
            self.report.warning("recovery", f"{where}: __independent_subtree=2 (non-critical) "
                                f"-> monitor on-fail=stop: a failure stops it (and the group "
                                f"members after it) without moving the service", res.line)
        restarts = (a.get("__max_restarts") or a.get("__max_failures") or "").strip()
        expire = a.get("__restart_expire_time") or a.get("__failure_expire_time")
        if restarts and not restarts.isdigit():
            self.report.warning("recovery", f"{where}: failure limit {restarts!r} is not a "
                                f"number; ignored", res.line)
            restarts = ""
        if restarts and restarts != "0":
            extra = 1 if "__max_restarts" in a else 0
            prim.meta["migration-threshold"] = str(int(restarts) + extra)
            self.report.info("recovery", f"{where}: per-resource failure limit -> "
                             f"migration-threshold={prim.meta['migration-threshold']}", res.line)
        if expire and expire.strip() not in ("", "0"):
            prim.meta["failure-timeout"] = _seconds(expire)

    # ---- special resources -------------------------------------------------------------
    def _nfs_daemon(self, svc: Service, res: Resource, build: _ServiceBuild) -> None:
        if any(r.type == "nfsserver" for r in _walk(svc.children)):
            self.report.info("nfs", f"{svc.name}/nfsexport {res.key}: nfsserver in the same "
                             f"service runs the NFS daemons", res.line)
            return
        if self.nfs_clone is None:
            prim = Primitive(self.ids.take("nfs-daemon"), "systemd", None, "nfs-server",
                             ops=[Op("monitor", "30s", "30s")])
            self.nfs_clone = self.ids.take(f"{prim.id}-clone")
            self.config.resources.append(Clone(self.nfs_clone, prim, {"interleave": "true"}))
        if self.nfs_clone not in build.needs_clones:
            build.needs_clones.append(self.nfs_clone)
        self.report.info("nfs", f"{svc.name}/nfsexport {res.key}: rgmanager's nfsexport "
                         f"started the NFS daemons; a clone {self.nfs_clone} of nfs-server "
                         f"does that now, and each nfsclient below becomes an exportfs",
                         res.line)

    def _drbd(self, svc: Service, res: Resource) -> str:
        name = res.attrs.get("resource") or res.key
        key = ("drbd", name)
        if key in self.shared_clones:
            return self.shared_clones[key]
        prim = Primitive(self.ids.take(f"drbd-{name}"), "ocf", "linbit", "drbd",
                         {"drbd_resource": name},
                         ops=[Op("monitor", "29s", "20s", role="Promoted"),
                              Op("monitor", "31s", "20s", role="Unpromoted"),
                              Op("start", "0s", "240s"), Op("stop", "0s", "100s"),
                              Op("promote", "0s", "90s"), Op("demote", "0s", "90s"),
                              Op("notify", "0s", "90s")])
        clone_id = self.ids.take(f"{prim.id}-clone")
        self.config.resources.append(Clone(clone_id, prim, {
            "promotable": "true", "promoted-max": "1", "promoted-node-max": "1",
            "clone-max": "2", "clone-node-max": "1", "notify": "true"}, promotable=True))
        self.shared_clones[key] = clone_id
        dom = self.cluster.domains.get(svc.domain or "")
        if dom is not None:
            # DRBD's backing disks exist only on the domain's nodes, and the domain's
            # preference decides where it is promoted (the service follows the promotion).
            members = {n for n, _ in dom.members}
            for node in self.cluster.nodes:
                if node.name not in members:
                    self._location(clone_id, node.name, f"-{INFINITY}")
            for node, score in _domain_scores(dom):
                self._location(clone_id, node, score, role="Promoted")
        self.report.info("drbd", f"{svc.name}/drbd {name} -> promotable clone {clone_id} "
                         f"(ocf:linbit:drbd); the service runs where it is Promoted", res.line)
        self.report.warning("drbd", f"{svc.name}/drbd {name}: disable the drbd init script "
                            f"and check clone-max=2 matches the nodes holding resource {name}",
                            res.line)
        return clone_id

    def _clusterfs(self, svc: Service, res: Resource) -> str:
        key = ("clusterfs", res.shared_name or f"{svc.name}/{res.key}")
        if key in self.shared_clones:
            return self.shared_clones[key]
        where = f"{svc.name}/clusterfs {res.key}"
        rule = RESOURCE_AGENTS["clusterfs"]
        params: dict[str, str] = {}
        for k, v in res.attrs.items():
            if k in rule.params and v.strip():
                params[rule.params[k]] = ("true" if truthy(v) else "false") \
                    if k in rule.booleans else v
            elif k in rule.dropped:
                if k != "fsid":
                    self.report.warning("parameter", f"{where}: {k}={v!r} not carried over: "
                                        f"{rule.dropped[k]}", res.line_of(k))
            elif k not in STRUCTURAL and v.strip():
                self.report.warning("parameter", f"{where}: {k}={v!r} has no counterpart in "
                                    f"the Filesystem agent; not carried over", res.line_of(k))
        if "device" in params:
            params["device"] = self._device_path(params["device"], where, res.line_of("device"))
        fstype = params.get("fstype", "gfs2")
        if fstype == "gfs":
            self.report.error("storage", f"{where}: GFS (version 1) is not supported by "
                              f"today's kernels: convert the file system with gfs2_convert "
                              f"first", res.line)
        params["fstype"] = "gfs2"
        fs = Primitive(self.ids.take(f"clusterfs-{res.key}"), "ocf", "heartbeat", "Filesystem",
                       params, ops=[Op("monitor", "20s", "40s"), Op("start", "0s", "60s"),
                                    Op("stop", "0s", "60s")])
        self._ops(fs, res, where)
        child: Primitive | Group = fs
        vg_lv = _vg_lv(params.get("device", ""))
        if vg_lv and self.lvmlockd_clone:
            lv = Primitive(self.ids.take(f"lvm-{vg_lv[0]}-{vg_lv[1]}"), "ocf", "heartbeat",
                           "LVM-activate",
                           {"vgname": vg_lv[0], "lvname": vg_lv[1], "vg_access_mode":
                            "lvmlockd", "activation_mode": "shared"},
                           ops=[Op("monitor", "30s", "90s"), Op("start", "0s", "90s"),
                                Op("stop", "0s", "90s")])
            child = Group(self.ids.take(f"{fs.id}-group"), [lv, fs])
        # pcs names a clone <child>-clone; using the same ids keeps pcs.sh and cib.xml alike
        clone_id = self.ids.take(f"{child.id}-clone")
        self.config.resources.append(Clone(clone_id, child, {"interleave": "true"}))
        # _detect_shared_storage creates dlm whenever a clusterfs exists
        first = self.lvmlockd_clone or self.dlm_clone or "dlm-clone"
        self._order(first, clone_id)
        self._colocate(clone_id, first, INFINITY)
        self.shared_clones[key] = clone_id
        self.report.info("storage", f"{where} -> cloned Filesystem {clone_id} (gfs2) mounted "
                         f"on every node after {first}; the service starts after it and "
                         f"runs with it", res.line)
        return clone_id

    # ---- domains and inter-service relations -------------------------------------------
    def _domain(self, svc: Service, rsc_id: str, meta: dict[str, str]) -> None:
        if not svc.domain:
            self.report.info("domain", f"{svc.name}: no failover domain, may run on any node",
                             svc.line)
            return
        dom = self.cluster.domains[svc.domain]
        members = dict(dom.members)
        for node, score in _domain_scores(dom):
            self._location(rsc_id, node, score)
        if dom.restricted:
            for node in self.cluster.nodes:
                if node.name not in members:
                    self._location(rsc_id, node.name, f"-{INFINITY}")
        if dom.ordered and not dom.nofailback:
            meta["resource-stickiness"] = "0"
        elif dom.nofailback:
            meta["resource-stickiness"] = NOFAILBACK_STICKINESS
        kind = ", ".join(k for k, v in (("ordered", dom.ordered), ("restricted", dom.restricted),
                                        ("nofailback", dom.nofailback)) if v) or "unordered"
        self.report.info("domain", f"{svc.name}: failover domain {dom.name} ({kind}) -> "
                         f"location constraints"
                         + (" with -INFINITY on other nodes" if dom.restricted else "")
                         + (f", resource-stickiness={meta['resource-stickiness']}"
                            if "resource-stickiness" in meta else ""), dom.line)

    def _allowed(self, svc: Service) -> set[str]:
        dom = self.cluster.domains.get(svc.domain or "")
        if dom is not None and dom.restricted:
            return {n for n, _ in dom.members}
        return {n.name for n in self.cluster.nodes}

    def _service_relations(self) -> None:
        by_name = {s.name: s for s in self.cluster.services}
        sids = self.config.service_ids
        for svc in self.cluster.services:
            if svc.name not in sids:
                continue
            dep = svc.attrs.get("depend")
            if dep:
                target_name = dep.split(":", 1)[1] if ":" in dep else dep
                mode = svc.attrs.get("depend_mode", "hard").strip() or "hard"
                target = sids.get(target_name)
                if target is None:
                    self.report.error("depend", f"{svc.name}: depends on {target_name}, which "
                                      f"was not converted", svc.line)
                else:
                    hard = mode == "hard"
                    self._order(target, sids[svc.name], kind="Mandatory" if hard else "Optional")
                    if not hard:
                        self.report.info("depend", f"{svc.name}: depend={dep} depend_mode=soft "
                                         f"-> optional order {target} then {sids[svc.name]} "
                                         f"(start after it when both start; no colocation, "
                                         f"no stop when it stops)", svc.line)
                    elif self._allowed(svc) & self._allowed(by_name[target_name]):
                        self._colocate(sids[svc.name], target, INFINITY)
                        self.report.warning("depend", f"{svc.name}: depend={dep} (hard) -> "
                                            f"mandatory order {target} then {sids[svc.name]} "
                                            f"and colocation with it: it stops when {target} "
                                            f"stops, and now also runs on the same node, which "
                                            f"rgmanager did not require (remove the colocation "
                                            f"if they must be able to run apart)", svc.line)
                    else:
                        self.report.warning("depend", f"{svc.name}: depend={dep} (hard) -> "
                                            f"mandatory order only: the two services' "
                                            f"restricted domains share no node, so no "
                                            f"colocation", svc.line)
            if truthy(svc.attrs.get("exclusive")):
                others = [sids[o.name] for o in self.cluster.services
                          if o.name != svc.name and o.name in sids]
                for other in others:
                    # the exclusive service is the dependent: the others are placed first
                    # and it only goes to a node none of them runs on, as in rgmanager
                    self._colocate(sids[svc.name], other, f"-{INFINITY}")
                self.report.warning("exclusive", f"{svc.name}: exclusive=1 -> -INFINITY "
                                    f"colocation with every other service ({len(others)}); "
                                    f"services added later need the same constraint",
                                    svc.line)

    def _dependencies(self) -> None:
        """<rm><dependencies> (rgmanager's dependency engine) -> orders and colocations.

        require="always": the dependent needs its target running, always -> mandatory
        order; require="start": only to start -> optional order (Pacemaker has no
        start-only requirement). colocate="always"/"never" -> +/-INFINITY colocation.
        """
        rm = self.cluster.rm
        deps = rm.find("dependencies") if rm is not None else None
        if deps is None:
            return
        sids = self.config.service_ids

        def service_id(ref: str, line: int) -> str | None:
            name = ref.split(":", 1)[1] if ":" in ref else ref
            if name not in sids:
                self.report.error("depend", f"<dependencies>: {ref!r} is not a converted "
                                  f"service; this dependency is not carried over", line)
                return None
            return sids[name]

        for key, value in deps.attrs.items():
            self.report.info("depend", f"<dependencies {key}={value!r}> not carried over",
                             deps.line)
        for dep in deps.children:
            if dep.tag != "dependency":
                self.report.warning("depend", f"<dependencies><{dep.tag}> is not a "
                                    f"dependency; not carried over", dep.line)
                continue
            who = service_id(dep.attrs.get("name", ""), dep.line)
            if who is None:
                continue
            for target in dep.children:
                if target.tag != "target":
                    self.report.warning("depend", f"<dependency><{target.tag}> is not a "
                                        f"target; not carried over", target.line)
                    continue
                what = service_id(target.attrs.get("name", ""), target.line)
                if what is None:
                    continue
                require = target.attrs.get("require", "unspec").strip() or "unspec"
                colocate = target.attrs.get("colocate", "unspec").strip() or "unspec"
                done: list[str] = []
                if require == "always":
                    self._order(what, who)
                    done.append(f"mandatory order {what} then {who}")
                elif require == "start":
                    self._order(what, who, kind="Optional")
                    done.append(f"optional order {what} then {who} (Pacemaker cannot require "
                                f"a service only for the start)")
                elif require != "unspec":
                    self.report.warning("depend", f"{who}: require={require!r} unknown; not "
                                        f"carried over", target.line)
                if colocate == "always":
                    self._colocate(who, what, INFINITY)
                    done.append(f"colocation of {who} with {what}")
                elif colocate == "never":
                    self._colocate(who, what, f"-{INFINITY}")
                    done.append(f"-INFINITY colocation of {who} with {what}")
                elif colocate != "unspec":
                    self.report.warning("depend", f"{who}: colocate={colocate!r} unknown; not "
                                        f"carried over", target.line)
                if done:
                    self.report.warning("depend", f"<dependency> {who} -> {what}: "
                                        + "; ".join(done), target.line)

    # ---- constraint helpers ------------------------------------------------------------
    def _location(self, rsc: str, node: str, score: str, role: str | None = None) -> None:
        self.config.constraints.append(Location(
            self.ids.take(f"location-{rsc}-{node}"), rsc, node, score, role))

    def _colocate(self, rsc: str, with_rsc: str, score: str, with_role: str | None = None) -> None:
        self.config.constraints.append(Colocation(
            self.ids.take(f"colocation-{rsc}-{with_rsc}"), rsc, with_rsc, score, with_role))

    def _order(self, first: str, then: str, kind: str = "Mandatory",
               first_action: str | None = None, then_action: str | None = None) -> None:
        self.config.constraints.append(Order(
            self.ids.take(f"order-{first}-{then}"), first, then, kind, first_action,
            then_action))


def _domain_scores(dom: Domain) -> list[tuple[str, str]]:
    return [(node, str(max((2 * MEMBER_SCORE - prio) if dom.ordered else MEMBER_SCORE, 1)))
            for node, prio in dom.members]


def _num(text: str) -> int:
    return int(re.sub(r"\D", "", text) or "0")


def _walk(children: list[Resource]) -> list[Resource]:
    out: list[Resource] = []
    for r in children:
        out.append(r)
        out.extend(_walk(r.children))
    return out


def _script_base(res: Resource) -> str:
    return res.attrs.get("file", "").rstrip("/").rsplit("/", 1)[-1]


def _vg_lv(device: str) -> tuple[str, str] | None:
    """/dev/VG/LV or /dev/mapper/VG-LV -> (VG, LV); None for anything else."""
    if device.startswith("/dev/mapper/"):
        name = device[len("/dev/mapper/"):]
        # device-mapper doubles dashes inside names and joins VG and LV with one
        parts = re.split(r"(?<!-)-(?!-)", name, maxsplit=1)
        if len(parts) == 2:
            return parts[0].replace("--", "-"), parts[1].replace("--", "-")
        return None
    m = re.fullmatch(r"/dev/([^/]+)/([^/]+)", device)
    if m and m.group(1) not in ("disk", "md", "mapper", "drbd", "block", "cciss"):
        return m.group(1), m.group(2)
    return None


def convert(cluster: Cluster, report: Report) -> Configuration:
    return Converter(cluster, report).run()
