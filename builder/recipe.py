"""Recipes: one per component, `packaging/<component>/recipe.yaml`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import datafile
from .errors import InputError

RECIPE_FILE = "recipe.yaml"
# Folders under packaging/ that hold shared data rather than a component.
NOT_COMPONENTS = {"profiles"}


@dataclass(frozen=True)
class Recipe:
    name: str
    strategy: str
    description: str
    reason: str
    profiles: tuple[str, ...] | None
    spec: dict[str, Any]       # the strategy's own section, e.g. data["import"]
    directory: Path

    @property
    def path(self) -> Path:
        return self.directory / RECIPE_FILE

    def applies_to(self, profile_name: str) -> bool:
        return self.profiles is None or profile_name in self.profiles


def load(directory: Path) -> Recipe:
    path = directory / RECIPE_FILE
    data = datafile.load(path, "recipe")
    if data["name"] != directory.name:
        raise InputError(path, f"name '{data['name']}' does not match its folder "
                         f"'{directory.name}'", key="name")
    profiles = data.get("profiles")
    return Recipe(
        name=data["name"],
        strategy=data["strategy"],
        description=data["description"],
        reason=data.get("reason", ""),
        profiles=tuple(profiles) if profiles is not None else None,
        spec=data[data["strategy"]],
        directory=directory,
    )


def load_all(packaging_dir: Path) -> list[Recipe]:
    recipes = []
    for directory in sorted(p for p in packaging_dir.iterdir() if p.is_dir()):
        if directory.name in NOT_COMPONENTS or directory.name.startswith("."):
            continue
        if not (directory / RECIPE_FILE).is_file():
            raise InputError(directory / RECIPE_FILE, "component folder has no recipe")
        recipes.append(load(directory))
    return recipes
