"""Source strategies, one module each; looked up by the recipe's `strategy`."""

from __future__ import annotations

from ..recipe import Recipe
from ..strategy import Strategy
from .import_debs import ImportStrategy
from .native import NativeStrategy
from .package import PackageStrategy
from .rebuild import RebuildStrategy

_STRATEGIES: dict[str, type] = {
    "import": ImportStrategy,
    "native": NativeStrategy,
    "package": PackageStrategy,
    "rebuild": RebuildStrategy,
}


def for_recipe(recipe: Recipe) -> Strategy:
    try:
        return _STRATEGIES[recipe.strategy]()
    except KeyError:
        raise recipe.error(f"strategy '{recipe.strategy}' is not implemented yet "
                           f"(implemented: {', '.join(sorted(_STRATEGIES))})",
                           "strategy") from None
