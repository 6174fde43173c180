"""Recipes: one per component, `packaging/<component>/recipe.yaml`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from builder.base import datafile
from builder.base.errors import InputError

from . import specs
from .specs import Spec

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
    spec: Spec                 # the strategy's own section, e.g. data["import"], typed
    directory: Path
    add_depends: tuple[str, ...] = ()
    forbid_linkage: tuple[str, ...] = ()
    lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    @property
    def path(self) -> Path:
        return self.directory / RECIPE_FILE

    def error(self, message: str, key: str) -> InputError:
        """An error about this recipe, located at `key` (dotted) or its parent."""
        return located_error(self.path, self.lines, message, key)

    @property
    def source_name(self) -> str:
        """The Debian source package the component comes from."""
        return self.spec.source_name(self.name)

    def applies_to(self, profile_name: str) -> bool:
        return self.profiles is None or profile_name in self.profiles


def located_error(path: Path, lines: dict[str, int], message: str, key: str) -> InputError:
    """An error about `path` at `key` (dotted), on the line of the key or its parent."""
    line, probe = None, key
    while probe and line is None:
        line = lines.get(probe)
        probe = probe.rpartition(".")[0]
    return InputError(path, message, line=line, key=key)


def load(directory: Path, profile: str | None = None,
         checked: datafile.Checked | None = None) -> Recipe:
    path = directory / RECIPE_FILE
    data = datafile.load(path, "recipe", checked)
    override = data.pop("overrides", {}).get(profile, {})
    if override:
        data.update(override)
        if data["strategy"] not in data:
            raise InputError(path, f"strategy {data['strategy']} has no '{data['strategy']}' "
                             "section", line=data["__lines__"].get(f"overrides.{profile}"),
                             key=f"overrides.{profile}")
        prefix = f"overrides.{profile}."
        data["__lines__"].update({k[len(prefix):]: v for k, v in data["__lines__"].items()
                                  if k.startswith(prefix)})
    if data["name"] != directory.name:
        raise InputError(path, f"name '{data['name']}' does not match its folder "
                         f"'{directory.name}'", key="name")
    profiles = data.get("profiles")
    lines = data["__lines__"]
    strategy = data["strategy"]
    if strategy not in data:
        raise located_error(path, lines, f"strategy {strategy} has no '{strategy}' section",
                            "strategy")
    spec = specs.parse(strategy, data[strategy],
                       lambda message, key: located_error(path, lines, message, key))
    return Recipe(
        name=data["name"],
        strategy=data["strategy"],
        description=data["description"],
        reason=data.get("reason", ""),
        profiles=tuple(profiles) if profiles is not None else None,
        spec=spec,
        directory=directory,
        add_depends=tuple(data.get("build", {}).get("add_depends", [])),
        forbid_linkage=tuple(data.get("build", {}).get("forbid_linkage", [])),
        lines=lines,
    )


def load_all(packaging_dir: Path, profile: str | None = None,
             checked: datafile.Checked | None = None) -> list[Recipe]:
    recipes = []
    for directory in sorted(p for p in packaging_dir.iterdir() if p.is_dir()):
        if directory.name in NOT_COMPONENTS or directory.name.startswith("."):
            continue
        if not (directory / RECIPE_FILE).is_file():
            raise InputError(directory / RECIPE_FILE, "component folder has no recipe")
        recipes.append(load(directory, profile, checked))
    return recipes
