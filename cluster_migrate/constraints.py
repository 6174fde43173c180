"""Constraints and the scores that make Pacemaker place services as rgmanager did."""

from __future__ import annotations

from .ids import Ids
from .model import Domain
from .pcmk import Colocation, Constraint, Location, Order

INFINITY = "INFINITY"
MEMBER_SCORE = 100


def domain_scores(dom: Domain) -> list[tuple[str, str]]:
    """(node, score) per member: in an ordered domain priority 1 beats 2."""
    return [(node, str(max((2 * MEMBER_SCORE - prio) if dom.ordered else MEMBER_SCORE, 1)))
            for node, prio in dom.members]


class Constraints:
    """Appends constraints to one configuration, with ids from its allocator."""

    def __init__(self, ids: Ids, out: list[Constraint]) -> None:
        self._ids = ids
        self._out = out

    def location(self, rsc: str, node: str, score: str, role: str | None = None) -> None:
        self._out.append(Location(self._ids.take(f"location-{rsc}-{node}"), rsc, node, score,
                                  role))

    def colocate(self, rsc: str, with_rsc: str, score: str,
                 with_role: str | None = None) -> None:
        self._out.append(Colocation(self._ids.take(f"colocation-{rsc}-{with_rsc}"), rsc,
                                    with_rsc, score, with_role))

    def order(self, first: str, then: str, kind: str = "Mandatory",
              first_action: str | None = None, then_action: str | None = None) -> None:
        self._out.append(Order(self._ids.take(f"order-{first}-{then}"), first, then, kind,
                               first_action, then_action))
