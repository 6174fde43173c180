"""model.Cluster -> pcmk.Configuration: the order of the conversion's steps.

Each step gets what it works on explicitly: the allocators and the shared clones
are made once here and handed down, so a step cannot run before what it needs
exists. How each rgmanager type is converted is in handlers.py, the clones several
services share in storage.py, services and their policies in services.py.
"""

from __future__ import annotations

from .constraints import Constraints
from .context import Context, ResourceNames
from .fencing import convert_fencing
from .handlers import handler_for
from .ids import Ids
from .model import Cluster
from .pcmk import Configuration
from .relations import dependencies, service_relations
from .report import Report
from .restree import walk
from .services import convert_services, rm_disabled
from .storage import SharedClones

DEFAULT_STICKINESS = "100"


def convert(cluster: Cluster, report: Report) -> Configuration:
    config = Configuration(cluster.name)
    ids = Ids()
    for severity, topic, message, line in cluster.notes:
        report.add(severity, topic, message, line)
    _cluster_attrs(cluster, report)
    has_fencing = convert_fencing(cluster, config, ids, report)
    config.properties["stonith-enabled"] = "true" if has_fencing else "false"
    # cluster-name is not set here: Pacemaker takes it from corosync's cluster_name,
    # and pcs refuses to set it by hand.
    config.rsc_defaults["resource-stickiness"] = DEFAULT_STICKINESS
    report.info("resources", "resource-stickiness=100 by default: like rgmanager, "
                "a running service is not moved when a node rejoins", None)
    _rm_options(cluster, report)
    _other_sections(cluster, report)
    constraints = Constraints(ids, config.constraints)
    clones = SharedClones(storage_needs(cluster), ids, config.resources, constraints, report)
    ctx = Context(cluster, report, config, ids, constraints, clones,
                  ResourceNames(ids, cluster.services))
    convert_services(ctx)
    service_relations(ctx)
    dependencies(ctx)
    return config


def storage_needs(cluster: Cluster) -> set[str]:
    """The cluster-wide clones any resource of any service needs (GFS2 -> dlm...)."""
    needs: set[str] = set()
    for svc in cluster.services:
        for res in walk(svc.children):
            needs |= handler_for(res.type).storage_needs(res)
    return needs


def _cluster_attrs(cluster: Cluster, report: Report) -> None:
    for key, value in cluster.root_attrs.items():
        if key not in ("name", "config_version"):
            report.info("cluster", f"<cluster {key}={value!r}> not carried over: "
                        f"corosync 3 and Pacemaker know only the cluster name", cluster.line)


def _rm_options(cluster: Cluster, report: Report) -> None:
    rm = cluster.rm
    if rm is None:
        report.warning("resources", "no <rm> section: no services to convert", None)
        return
    if rm_disabled(cluster):
        report.warning("resources", "<rm disabled=\"1\">: rgmanager was switched off, "
                       "so every service is created with target-role=Stopped", rm.line)
    for key, value in rm.attrs.items():
        if key == "disabled":
            continue
        report.info("resources", f"<rm {key}={value!r}> not carried over: Pacemaker "
                    f"has no rgmanager daemon options", rm.line)
    for el in rm.children:
        if el.tag == "events":
            report.error("resources", "<events> (central_processing scripts) not "
                         "carried over: express the rules as constraints", el.line)
        elif el.tag == "resource-defaults":
            attrs = ", ".join(f"{k}={v}" for k, v in el.attrs.items())
            report.warning("resources", f"<resource-defaults> ({attrs}) not carried "
                           f"over: set the matching rsc_defaults by hand", el.line)
    domains = rm.find("failoverdomains")
    for fd in domains.findall("failoverdomain") if domains is not None else []:
        for key, value in fd.attrs.items():
            if key not in ("name", "ordered", "restricted", "nofailback"):
                report.warning("domain", f"failover domain {fd.attrs.get('name')}: "
                               f"{key}={value!r} not carried over (unknown to the "
                               f"converter)", fd.line)


def _other_sections(cluster: Cluster, report: Report) -> None:
    """Top-level sections with no Pacemaker counterpart: say so, with their lines."""
    fd = cluster.fence_daemon
    if fd is not None:
        for key, value in fd.attrs.items():
            if key == "post_fail_delay" and value not in ("", "0"):
                report.warning("fencing", f"<fence_daemon post_fail_delay={value}> not "
                               f"carried over: use pcmk_delay_base on the fence "
                               f"devices if a delay before fencing is still wanted", fd.line)
            else:
                report.info("fencing", f"<fence_daemon {key}={value!r}> not carried "
                            f"over: Pacemaker's fencer has no such option", fd.line)
    for el in cluster.other:
        report.warning("cluster", f"<{el.tag}> not carried over: no counterpart in "
                       f"corosync 3 or Pacemaker (check whether its settings still "
                       f"matter)", el.line)
    if (len(cluster.nodes) == 2 and cluster.fence_devices
            and not any("delay" in d.attrs for d in cluster.fence_devices.values())):
        report.warning("fencing", "two-node cluster: set pcmk_delay_max (e.g. 15s) on "
                       "one fence device so that both nodes cannot fence each other "
                       "at once after a split", None)
