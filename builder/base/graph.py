"""The build graph: which component builds against which, from Build-Depends."""

from __future__ import annotations

from collections.abc import Mapping

from .errors import ClusterStackError


class GraphError(ClusterStackError):
    pass


Groups = list[list[str]]   # Build-Depends: groups of alternatives


def edges(binaries: Mapping[str, set[str]], build_depends: Mapping[str, Groups]
          ) -> dict[str, set[str]]:
    """component -> the components whose binaries it build-depends on."""
    provider = {b: comp for comp, bins in binaries.items() for b in bins}
    return {comp: {provider[alt] for group in groups for alt in group
                   if alt in provider and provider[alt] != comp}
            for comp, groups in build_depends.items()}


def order(deps: Mapping[str, set[str]]) -> list[str]:
    """A topological order; a cycle is an error that names it."""
    done: list[str] = []
    state: dict[str, int] = {}   # 1 = on the current path, 2 = finished

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            cycle = [*path[path.index(node):], node]
            raise GraphError("build-dependency cycle: " + " -> ".join(cycle))
        state[node] = 1
        for dep in sorted(deps.get(node, ())):
            visit(dep, [*path, node])
        state[node] = 2
        done.append(node)

    for node in sorted(deps):
        visit(node, [])
    return done


def closure(deps: Mapping[str, set[str]], node: str) -> set[str]:
    """Everything `node` builds against, transitively."""
    seen: set[str] = set()
    todo = list(deps.get(node, ()))
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(deps.get(n, ()))
    return seen


def missing(build_depends: Mapping[str, Groups], ours: set[str], archive: set[str]
            ) -> dict[str, list[str]]:
    """component -> build-dependencies (as 'a | b') that nothing provides."""
    out = {}
    for comp, groups in build_depends.items():
        lost = [" | ".join(g) for g in groups
                if not any(alt in ours or alt in archive for alt in g)]
        if lost:
            out[comp] = lost
    return out


def critical_path(deps: Mapping[str, set[str]], weight: Mapping[str, float]
                  ) -> dict[str, float]:
    """node -> its weight plus the heaviest chain of what builds against it.

    Starting the node with the largest value first keeps the longest chain
    (e.g. corosync -> pacemaker) from waiting behind short independent builds.
    """
    rdeps: dict[str, set[str]] = {n: set() for n in [*weight, *deps]}
    for node, ds in deps.items():
        for d in ds:
            rdeps.setdefault(d, set()).add(node)
    rank: dict[str, float] = {}
    for node in reversed(order({n: set(deps.get(n, ())) for n in rdeps})):
        rank[node] = weight.get(node, 0.0) + max((rank[r] for r in rdeps[node]), default=0.0)
    return rank
