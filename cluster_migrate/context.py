"""What one conversion shares between its steps, each part with a single owner."""

from __future__ import annotations

from dataclasses import dataclass, field

from .agents import MAX_ONE_INSTANCE
from .constraints import Constraints
from .ids import Ids
from .model import Cluster, Resource, Service
from .pcmk import Configuration, Primitive
from .report import Report
from .restree import walk
from .storage import SharedClones


class ResourceNames:
    """Ids for the primitives made from rgmanager resources.

    A shared resource referenced more than once gets service-prefixed ids so that
    neither copy reads as "the" resource; the counts are taken from the whole
    cluster when this is created, before any id is handed out.
    """

    def __init__(self, ids: Ids, services: list[Service]) -> None:
        self._ids = ids
        self._refs: dict[tuple[str, str], int] = {}
        for svc in services:
            for res in walk(svc.children):
                if res.shared_name and res.type not in MAX_ONE_INSTANCE:
                    key = (res.type, res.shared_name)
                    self._refs[key] = self._refs.get(key, 0) + 1

    def take(self, svc: Service, res: Resource, key: str) -> str:
        base = f"{res.type}-{key}"
        if res.shared_name and self._refs.get((res.type, res.shared_name), 0) > 1:
            base = f"{svc.name}-{base}"
        return self._ids.take(base)


@dataclass(frozen=True)
class Context:
    """The inputs, the output and the allocators of one conversion; fixed once made."""

    cluster: Cluster
    report: Report
    config: Configuration
    ids: Ids
    constraints: Constraints
    clones: SharedClones
    names: ResourceNames


@dataclass
class ServiceBuild:
    """What one service turned into, collected while walking its tree."""

    members: list[Primitive] = field(default_factory=list)
    # clone ids the service's group must start after and run with
    needs_clones: list[str] = field(default_factory=list)
    drbd_clones: list[str] = field(default_factory=list)
