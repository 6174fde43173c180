"""Relations between converted services: depend=, exclusive= and <rm><dependencies>."""

from __future__ import annotations

from .agents import truthy
from .constraints import INFINITY
from .context import Context
from .model import Service, XmlNode


def _allowed(ctx: Context, svc: Service) -> set[str]:
    """The nodes a service may run on: its restricted domain's, or all."""
    dom = ctx.cluster.domains.get(svc.domain or "")
    if dom is not None and dom.restricted:
        return {n for n, _ in dom.members}
    return {n.name for n in ctx.cluster.nodes}


def service_relations(ctx: Context) -> None:
    """depend= and exclusive= of every converted service."""
    for svc in ctx.cluster.services:
        if svc.name not in ctx.config.service_ids:
            continue
        if svc.attrs.get("depend"):
            _depend(ctx, svc)
        if truthy(svc.attrs.get("exclusive")):
            _exclusive(ctx, svc)


def _depend(ctx: Context, svc: Service) -> None:
    sids = ctx.config.service_ids
    dep = svc.attrs["depend"]
    target_name = dep.split(":", 1)[1] if ":" in dep else dep
    mode = svc.attrs.get("depend_mode", "hard").strip() or "hard"
    target = sids.get(target_name)
    me = sids[svc.name]
    if target is None:
        ctx.report.error("depend", f"{svc.name}: depends on {target_name}, which was not "
                         f"converted", svc.line)
        return
    hard = mode == "hard"
    ctx.constraints.order(target, me, kind="Mandatory" if hard else "Optional")
    by_name = {s.name: s for s in ctx.cluster.services}
    if not hard:
        ctx.report.info("depend", f"{svc.name}: depend={dep} depend_mode=soft -> optional "
                        f"order {target} then {me} (start after it when both start; no "
                        f"colocation, no stop when it stops)", svc.line)
    elif _allowed(ctx, svc) & _allowed(ctx, by_name[target_name]):
        ctx.constraints.colocate(me, target, INFINITY)
        ctx.report.warning("depend", f"{svc.name}: depend={dep} (hard) -> mandatory order "
                           f"{target} then {me} and colocation with it: it stops when "
                           f"{target} stops, and now also runs on the same node, which "
                           f"rgmanager did not require (remove the colocation if they must "
                           f"be able to run apart)", svc.line)
    else:
        ctx.report.warning("depend", f"{svc.name}: depend={dep} (hard) -> mandatory order "
                           f"only: the two services' restricted domains share no node, so "
                           f"no colocation", svc.line)


def _exclusive(ctx: Context, svc: Service) -> None:
    sids = ctx.config.service_ids
    others = [sids[o.name] for o in ctx.cluster.services
              if o.name != svc.name and o.name in sids]
    for other in others:
        # the exclusive service is the dependent: the others are placed first
        # and it only goes to a node none of them runs on, as in rgmanager
        ctx.constraints.colocate(sids[svc.name], other, f"-{INFINITY}")
    ctx.report.warning("exclusive", f"{svc.name}: exclusive=1 -> -INFINITY colocation with "
                       f"every other service ({len(others)}); services added later need "
                       f"the same constraint", svc.line)


def dependencies(ctx: Context) -> None:
    """<rm><dependencies> (rgmanager's dependency engine) -> orders and colocations."""
    rm = ctx.cluster.rm
    deps = rm.find("dependencies") if rm is not None else None
    if deps is None:
        return
    for key, value in deps.attrs.items():
        ctx.report.info("depend", f"<dependencies {key}={value!r}> not carried over",
                        deps.line)
    for dep in deps.children:
        if dep.tag != "dependency":
            ctx.report.warning("depend", f"<dependencies><{dep.tag}> is not a dependency; "
                               f"not carried over", dep.line)
            continue
        who = _service_id(ctx, dep.attrs.get("name", ""), dep.line)
        if who is None:
            continue
        for target in dep.children:
            if target.tag != "target":
                ctx.report.warning("depend", f"<dependency><{target.tag}> is not a target; "
                                   f"not carried over", target.line)
                continue
            what = _service_id(ctx, target.attrs.get("name", ""), target.line)
            if what is not None:
                _dependency_target(ctx, who, what, target)


def _service_id(ctx: Context, ref: str, line: int) -> str | None:
    name = ref.split(":", 1)[1] if ":" in ref else ref
    if name not in ctx.config.service_ids:
        ctx.report.error("depend", f"<dependencies>: {ref!r} is not a converted service; "
                         f"this dependency is not carried over", line)
        return None
    return ctx.config.service_ids[name]


def _dependency_target(ctx: Context, who: str, what: str, target: XmlNode) -> None:
    """require="always": the dependent needs its target running, always -> mandatory
    order; require="start": only to start -> optional order (Pacemaker has no
    start-only requirement). colocate="always"/"never" -> +/-INFINITY colocation.
    """
    require = target.attrs.get("require", "unspec").strip() or "unspec"
    colocate = target.attrs.get("colocate", "unspec").strip() or "unspec"
    done: list[str] = []
    if require == "always":
        ctx.constraints.order(what, who)
        done.append(f"mandatory order {what} then {who}")
    elif require == "start":
        ctx.constraints.order(what, who, kind="Optional")
        done.append(f"optional order {what} then {who} (Pacemaker cannot require a service "
                    f"only for the start)")
    elif require != "unspec":
        ctx.report.warning("depend", f"{who}: require={require!r} unknown; not carried over",
                           target.line)
    if colocate == "always":
        ctx.constraints.colocate(who, what, INFINITY)
        done.append(f"colocation of {who} with {what}")
    elif colocate == "never":
        ctx.constraints.colocate(who, what, f"-{INFINITY}")
        done.append(f"-INFINITY colocation of {who} with {what}")
    elif colocate != "unspec":
        ctx.report.warning("depend", f"{who}: colocate={colocate!r} unknown; not carried "
                           f"over", target.line)
    if done:
        ctx.report.warning("depend", f"<dependency> {who} -> {what}: " + "; ".join(done),
                           target.line)
