"""The per-type handler registry of cluster_migrate and the package's import layering."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from cluster_migrate import handlers
from cluster_migrate.agents import RESOURCE_AGENTS

PACKAGE = Path(handlers.__file__).parent


def test_every_rule_type_has_a_rule_driven_handler() -> None:
    for rtype in RESOURCE_AGENTS:
        assert handlers.handler_for(rtype).needs_rule, rtype


def test_registered_handlers_are_the_ones_found() -> None:
    for rtype, registered in handlers.HANDLERS.items():
        assert handlers.handler_for(rtype) is registered
        assert not registered.needs_rule or rtype in RESOURCE_AGENTS, rtype


def test_a_type_without_rule_or_handler_gets_the_placeholder() -> None:
    found = handlers.handler_for("no-such-agent")
    assert not found.needs_rule
    assert type(found) is not handlers.TypeHandler


def test_registration_refuses_a_second_handler_and_a_missing_rule() -> None:
    with pytest.raises(ValueError, match="two handlers"):
        handlers.handler("fs")(type("Again", (handlers.TypeHandler,), {}))
    with pytest.raises(ValueError, match="needs an AgentRule"):
        handlers.handler("no-such-agent")(type("NoRule", (handlers.TypeHandler,), {}))
    assert "no-such-agent" not in handlers.HANDLERS


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            out |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
    return out - {path.stem}


def test_no_import_cycles_inside_the_package() -> None:
    graph = {p.stem: _imports(p) for p in PACKAGE.glob("*.py")}
    state: dict[str, str] = {}

    def visit(mod: str, chain: list[str]) -> None:
        if state.get(mod) == "done":
            return
        assert state.get(mod) != "open", " -> ".join([*chain, mod])
        state[mod] = "open"
        for dep in sorted(graph.get(mod, ())):
            visit(dep, [*chain, mod])
        state[mod] = "done"

    for mod in sorted(graph):
        visit(mod, [])
