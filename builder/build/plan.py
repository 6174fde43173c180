"""`clusterstack plan`: what each component is, and what a build would do."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from builder.base.progress import Progress
from builder.tree.strategy import Action, for_recipe

from .analysis import Contexts, analyse


@dataclass
class PlanRow:
    component: str
    strategy: str
    action: Action
    source: str
    version: str
    detail: str
    reason: str


def make_plan(contexts: Contexts, progress: Progress) -> list[PlanRow]:
    reachable = contexts.stack.profile.reachable
    stale = set(analyse(contexts, progress).stale) if reachable else set()
    rows = []
    for recipe in contexts.stack.recipes:
        strategy = for_recipe(recipe)
        if not reachable and strategy.imports_binaries:
            rows.append(PlanRow(recipe.name, strategy.name, Action.UNAVAILABLE,
                                recipe.source_name, "",
                                "base archive not reachable: rendered and unit-tested only",
                                recipe.reason))
            continue
        intent = strategy.intent(contexts.context(recipe.name))
        action = intent.action if recipe.name in stale else Action.UP_TO_DATE
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
