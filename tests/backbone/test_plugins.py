"""Every extension point is one interface, one registry, implementations in a
sibling package; the recipe schema offers exactly the registered names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.base.plugins import Registry, UnknownPlugin
from builder.buildroot.backend import BACKENDS
from builder.ci.pipeline import FORMATS
from builder.stack import specs
from builder.tree.generator import GENERATORS
from builder.tree.strategy import STRATEGIES

ROOT = Path(__file__).parents[2]
REGISTRIES = {"strategy": STRATEGIES, "build backend": BACKENDS, "generator": GENERATORS,
              "CI format": FORMATS}


@pytest.mark.parametrize("kind", sorted(REGISTRIES))
def test_every_registered_name_loads_its_implementation(kind: str) -> None:
    registry: Registry = REGISTRIES[kind]
    assert registry.kind == kind
    for name, cls in registry.items():
        assert issubclass(cls, registry.interface) and cls.name == name
        assert not getattr(cls, "__abstractmethods__", None), f"{name} is incomplete"


@pytest.mark.parametrize("kind", sorted(REGISTRIES))
def test_an_unknown_name_is_one_error_listing_the_known(kind: str) -> None:
    with pytest.raises(UnknownPlugin) as exc:
        REGISTRIES[kind].load("nonesuch")
    assert str(exc.value) == (f"unknown {kind} 'nonesuch' "
                              f"(known: {', '.join(REGISTRIES[kind])})")


def test_the_recipe_schema_offers_the_registered_names() -> None:
    schema = json.loads((ROOT / "builder/stack/schemas/recipe.json").read_text())
    props = schema["properties"]
    assert set(props["strategy"]["enum"]) == set(STRATEGIES) == set(specs.SPECS)
    assert set(props["native"]["properties"]["generate"]["items"]["enum"]) == set(GENERATORS)
    for name, cls in STRATEGIES.items():
        assert cls.spec_type is specs.SPECS[name]


def test_capabilities_not_names() -> None:
    """What the orchestrator asks of a strategy (see docs/architecture.md)."""
    caps = {n: (c.builds_from_source, c.imports_binaries, c.rebuilds_upstream, c.own_ci_job)
            for n, c in STRATEGIES.items()}
    assert caps == {"import": (False, True, False, False),
                    "native": (True, False, False, False),
                    "package": (True, False, False, True),
                    "rebuild": (True, False, True, True)}


def test_one_loader_for_every_extension_point() -> None:
    """No module but plugins.py imports implementations by name."""
    loaders = []
    for path in sorted((ROOT / "builder").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if path.name != "plugins.py" and ("import_module(" in text or "__import__(" in text):
            loaders.append(str(path.relative_to(ROOT)))
    assert loaders == []
