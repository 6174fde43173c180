"""Cluster-wide clones several services share: dlm, lvmlockd, NFS daemons, DRBD, GFS2.

One SharedClones exists per conversion. dlm and lvmlockd are created when it is, from
what the whole cluster needs, so a service can never look for them too early; the
others are created by the first service that needs them and found again by the rest.
"""

from __future__ import annotations

from collections.abc import Iterable

from .agents import RESOURCE_AGENTS, STRUCTURAL, truthy
from .constraints import INFINITY, Constraints, domain_scores
from .ids import Ids
from .model import Domain, Resource, Service
from .pcmk import Clone, Group, Op, Primitive
from .pcmk import Resource as PcmkResource
from .primitives import apply_actions, device_path
from .report import Report
from .restree import vg_lv

# What a resource can need cluster-wide (see handlers.TypeHandler.storage_needs).
DLM = "dlm"
LVMLOCKD = "lvmlockd"

_INTERLEAVE = {"interleave": "true"}


class SharedClones:
    def __init__(self, needs: Iterable[str], ids: Ids, resources: list[PcmkResource],
                 constraints: Constraints, report: Report) -> None:
        self._ids = ids
        self._resources = resources
        self._constraints = constraints
        self._report = report
        # (type, name) -> clone id, for the clones made from a resource (drbd, clusterfs)
        self._by_resource: dict[tuple[str, str], str] = {}
        self._nfs: str | None = None
        wanted = set(needs)
        self.dlm: str | None = self._dlm() if wanted & {DLM, LVMLOCKD} else None
        self.lvmlockd: str | None = (self._lvmlockd(self.dlm)
                                     if self.dlm and LVMLOCKD in wanted else None)

    def _dlm(self) -> str:
        """GFS2 and lvmlockd need dlm, which cman used to start."""
        dlm = Primitive(self._ids.take("dlm"), "ocf", "pacemaker", "controld",
                        ops=[Op("monitor", "30s", "60s"), Op("start", "0s", "90s"),
                             Op("stop", "0s", "100s")])
        clone_id = self._ids.take(f"{dlm.id}-clone")
        self._resources.append(Clone(clone_id, dlm, dict(_INTERLEAVE)))
        self._report.info("storage", "GFS2/clvmd in use: dlm runs as a clone "
                          "(ocf:pacemaker:controld) instead of being started by cman", None)
        return clone_id

    def _lvmlockd(self, dlm: str) -> str:
        """clvmd's successor; it takes its locks from dlm."""
        lock = Primitive(self._ids.take("lvmlockd"), "ocf", "heartbeat", "lvmlockd",
                         ops=[Op("monitor", "30s", "90s"), Op("start", "0s", "90s"),
                              Op("stop", "0s", "90s")])
        clone_id = self._ids.take(f"{lock.id}-clone")
        self._resources.append(Clone(clone_id, lock, dict(_INTERLEAVE)))
        self._constraints.order(dlm, clone_id)
        self._constraints.colocate(clone_id, dlm, INFINITY)
        self._report.warning("storage", "clvmd is replaced by lvmlockd: on one node run "
                             "'vgchange --lock-type dlm VG' for each clustered VG after "
                             "lvmlockd is running, and set use_lvmlockd=1 in lvm.conf", None)
        return clone_id

    def nfs_daemon(self) -> str:
        """The clone of nfs-server that replaces the daemons nfsexport started."""
        if self._nfs is None:
            prim = Primitive(self._ids.take("nfs-daemon"), "systemd", None, "nfs-server",
                             ops=[Op("monitor", "30s", "30s")])
            self._nfs = self._ids.take(f"{prim.id}-clone")
            self._resources.append(Clone(self._nfs, prim, dict(_INTERLEAVE)))
        return self._nfs

    def drbd(self, svc: Service, res: Resource, dom: Domain | None,
             nodes: list[str]) -> str:
        """One promotable clone per DRBD resource, whichever services use it."""
        name = res.attrs.get("resource") or res.key
        key = ("drbd", name)
        if key in self._by_resource:
            return self._by_resource[key]
        prim = Primitive(self._ids.take(f"drbd-{name}"), "ocf", "linbit", "drbd",
                         {"drbd_resource": name},
                         ops=[Op("monitor", "29s", "20s", role="Promoted"),
                              Op("monitor", "31s", "20s", role="Unpromoted"),
                              Op("start", "0s", "240s"), Op("stop", "0s", "100s"),
                              Op("promote", "0s", "90s"), Op("demote", "0s", "90s"),
                              Op("notify", "0s", "90s")])
        clone_id = self._ids.take(f"{prim.id}-clone")
        self._resources.append(Clone(clone_id, prim, {
            "promotable": "true", "promoted-max": "1", "promoted-node-max": "1",
            "clone-max": "2", "clone-node-max": "1", "notify": "true"}, promotable=True))
        self._by_resource[key] = clone_id
        if dom is not None:
            # DRBD's backing disks exist only on the domain's nodes, and the domain's
            # preference decides where it is promoted (the service follows the promotion).
            members = {n for n, _ in dom.members}
            for node in nodes:
                if node not in members:
                    self._constraints.location(clone_id, node, f"-{INFINITY}")
            for node, score in domain_scores(dom):
                self._constraints.location(clone_id, node, score, role="Promoted")
        self._report.info("drbd", f"{svc.name}/drbd {name} -> promotable clone {clone_id} "
                          f"(ocf:linbit:drbd); the service runs where it is Promoted", res.line)
        self._report.warning("drbd", f"{svc.name}/drbd {name}: disable the drbd init script "
                             f"and check clone-max=2 matches the nodes holding resource "
                             f"{name}", res.line)
        return clone_id

    def clusterfs(self, svc: Service, res: Resource) -> str:
        """A GFS2 mount becomes a clone on every node (with its LV where lvmlockd runs)."""
        key = ("clusterfs", res.shared_name or f"{svc.name}/{res.key}")
        if key in self._by_resource:
            return self._by_resource[key]
        where = f"{svc.name}/clusterfs {res.key}"
        params = self._clusterfs_params(res, where)
        fs = Primitive(self._ids.take(f"clusterfs-{res.key}"), "ocf", "heartbeat",
                       "Filesystem", params,
                       ops=[Op("monitor", "20s", "40s"), Op("start", "0s", "60s"),
                            Op("stop", "0s", "60s")])
        apply_actions(self._report, fs, res, where)
        child = self._with_lv(fs, params.get("device", ""))
        # pcs names a clone <child>-clone; using the same ids keeps pcs.sh and cib.xml alike
        clone_id = self._ids.take(f"{child.id}-clone")
        self._resources.append(Clone(clone_id, child, dict(_INTERLEAVE)))
        # needs include dlm whenever a clusterfs exists; the fallback keeps the id stable
        first = self.lvmlockd or self.dlm or "dlm-clone"
        self._constraints.order(first, clone_id)
        self._constraints.colocate(clone_id, first, INFINITY)
        self._by_resource[key] = clone_id
        self._report.info("storage", f"{where} -> cloned Filesystem {clone_id} (gfs2) "
                          f"mounted on every node after {first}; the service starts after "
                          f"it and runs with it", res.line)
        return clone_id

    def _clusterfs_params(self, res: Resource, where: str) -> dict[str, str]:
        rule = RESOURCE_AGENTS["clusterfs"]
        params: dict[str, str] = {}
        for k, v in res.attrs.items():
            if k in rule.params and v.strip():
                params[rule.params[k]] = ("true" if truthy(v) else "false") \
                    if k in rule.booleans else v
            elif k in rule.dropped:
                if k != "fsid":
                    self._report.warning("parameter", f"{where}: {k}={v!r} not carried "
                                         f"over: {rule.dropped[k]}", res.line_of(k))
            elif k not in STRUCTURAL and v.strip():
                self._report.warning("parameter", f"{where}: {k}={v!r} has no counterpart "
                                     f"in the Filesystem agent; not carried over",
                                     res.line_of(k))
        if "device" in params:
            params["device"] = device_path(self._report, params["device"], where,
                                           res.line_of("device"))
        if params.get("fstype", "gfs2") == "gfs":
            self._report.error("storage", f"{where}: GFS (version 1) is not supported by "
                               f"today's kernels: convert the file system with gfs2_convert "
                               f"first", res.line)
        params["fstype"] = "gfs2"
        return params

    def _with_lv(self, fs: Primitive, device: str) -> Primitive | Group:
        """Under lvmlockd the clone activates the LV (shared) before mounting it."""
        vg_lv_names = vg_lv(device)
        if not (vg_lv_names and self.lvmlockd):
            return fs
        vg, lv_name = vg_lv_names
        lv = Primitive(self._ids.take(f"lvm-{vg}-{lv_name}"), "ocf", "heartbeat",
                       "LVM-activate",
                       {"vgname": vg, "lvname": lv_name, "vg_access_mode": "lvmlockd",
                        "activation_mode": "shared"},
                       ops=[Op("monitor", "30s", "90s"), Op("start", "0s", "90s"),
                            Op("stop", "0s", "90s")])
        return Group(self._ids.take(f"{fs.id}-group"), [lv, fs])
