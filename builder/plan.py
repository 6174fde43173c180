"""`clusterstack plan`: what each component is, and what a build would do."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from . import strategies
from .build import Builder


@dataclass
class PlanRow:
    component: str
    strategy: str
    action: str        # fetch | build | up-to-date | unavailable
    source: str
    version: str
    detail: str
    reason: str


def make_plan(builder: Builder) -> list[PlanRow]:
    stale = set(builder.analyse()[2]) if builder.stack.profile.reachable else set()
    rows = []
    for recipe in builder.stack.recipes:
        ctx = builder.context(recipe.name)
        strategy = strategies.for_recipe(recipe)
        if not builder.stack.profile.reachable and strategy.name == "import":
            rows.append(PlanRow(recipe.name, strategy.name, "unavailable",
                                recipe.spec.get("source", recipe.name), "",
                                "base archive not reachable: rendered and unit-tested only",
                                recipe.reason))
            continue
        intent = strategy.intent(ctx)
        action = intent.action if recipe.name in stale else "up-to-date"
        rows.append(PlanRow(recipe.name, strategy.name, action, intent.source, intent.version,
                            intent.detail, recipe.reason))
    return rows


def format_plan(rows: list[PlanRow]) -> str:
    cols = ("component", "strategy", "action", "source", "version", "detail")
    data = [[getattr(r, c) for c in cols] for r in rows]
    widths = [max(len(str(x)) for x in [c, *(d[i] for d in data)]) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    lines += ["  ".join(str(x).ljust(w) for x, w in zip(d, widths, strict=True)) for d in data]
    return "\n".join(line.rstrip() for line in lines)


def as_json(rows: list[PlanRow]) -> list[dict[str, str]]:
    return [asdict(r) for r in rows]
