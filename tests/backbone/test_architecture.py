"""The import rules of docs/architecture.md hold: its table of groups and what
each may import, no `_private` names across packages, no import cycles.

The imports are read with `ast`, without importing anything; the table is
read from the document itself, so the rules and the test cannot drift apart.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
DOC = ROOT / "docs" / "architecture.md"
PACKAGES = ("builder", "cluster_migrate")

# Private names imported across packages that other work of issue 14 removes
# (finding 4: one step runner for verify, the cluster and the VM harness).
# The list can only shrink: an entry that no longer occurs fails the test.
KNOWN_PRIVATE: set[tuple[str, str, str]] = set()


@dataclass(frozen=True)
class Import:
    module: str          # the importing module
    target: str          # the module imported (or the one a name is imported from)
    name: str | None     # the name imported from it, for `from x import name`
    line: int
    runtime: bool        # False inside `if TYPE_CHECKING:`


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    return {module_name(p, root): p for pkg in packages for p in sorted((root / pkg).rglob("*.py"))}


def imports_of(module: str, path: Path, known: set[str]) -> list[Import]:
    """Every import of our own modules in `path`, resolved to absolute names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    out = []
    for node in ast.walk(tree):
        runtime = id(node) not in typing_only
        if isinstance(node, ast.Import):
            out += [Import(module, a.name, None, node.lineno, runtime) for a in node.names
                    if a.name.split(".")[0] in PACKAGES]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.split(".")[0] not in PACKAGES:
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                # `from . import render` imports the module builder.tree.render.
                out.append(Import(module, sub, None, node.lineno, runtime) if sub in known
                           else Import(module, target, a.name, node.lineno, runtime))
    return out


@dataclass(frozen=True)
class Rules:
    groups: dict[str, list[str]]        # group -> module patterns (relative to builder)
    allowed: dict[str, set[str]]        # group -> the groups it may import

    def group_of(self, module: str) -> str | None:
        rel = module.removeprefix("builder").removeprefix(".") or "__init__"
        for group, patterns in self.groups.items():
            for p in patterns:
                if rel == p or (p.endswith(".*") and (rel == p[:-2] or
                                                      rel.startswith(p[:-1]))):
                    return group
        return None


def read_rules(doc: Path = DOC) -> Rules:
    text = doc.read_text(encoding="utf-8")
    table = re.search(r"<!-- import-rules: begin -->\n(.*?)<!-- import-rules: end -->", text,
                      re.S)
    assert table, f"{doc}: no import-rules table"
    groups: dict[str, list[str]] = {}
    allowed: dict[str, set[str]] = {}
    for row in table.group(1).splitlines()[2:]:
        group, modules, may = (c.strip() for c in row.strip("|").split("|"))
        groups[group] = re.findall(r"`([^`]+)`", modules)
        allowed[group] = {g.strip() for g in may.split(",") if g.strip() not in ("", "—")}
    unknown = {g for gs in allowed.values() for g in gs} - set(groups)
    assert not unknown, f"{doc}: rows name unknown groups {sorted(unknown)}"
    return Rules(groups, allowed)


def layer_violations(rules: Rules, imports: list[Import]) -> list[str]:
    out = []
    for imp in imports:
        if not (imp.module.startswith("builder") and imp.target.startswith("builder")):
            continue
        src, dst = rules.group_of(imp.module), rules.group_of(imp.target)
        if src is None or dst is None:
            continue   # reported by test_every_module_has_a_group
        if dst != src and dst not in rules.allowed[src]:
            out.append(f"{imp.module}:{imp.line} imports {imp.target} "
                       f"({src} may not import {dst})")
    return out


def private_imports(imports: list[Import], files: dict[str, Path]) -> set[tuple[str, str, str]]:
    """(module, from, name) of `_private` names imported from another package."""
    def package(module: str) -> str:
        return module if files[module].name == "__init__.py" else module.rpartition(".")[0]

    out = set()
    for imp in imports:
        if imp.name is None or not imp.name.startswith("_") or imp.name.startswith("__"):
            continue
        if imp.target in files and package(imp.target) != package(imp.module):
            out.add((imp.module, imp.target, imp.name))
    return out


def cycles(imports: list[Import], modules: set[str]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's)."""
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for imp in imports:
        if imp.runtime and imp.target in modules and imp.target != imp.module:
            edges[imp.module].add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for m in sorted(modules):
        if m not in index:
            visit(m)
    return found


def all_imports(root: Path = ROOT) -> tuple[dict[str, Path], list[Import]]:
    files = source_files(root)
    known = set(files)
    return files, [i for m, p in files.items() for i in imports_of(m, p, known)]


@pytest.fixture(scope="module")
def tree() -> tuple[dict[str, Path], list[Import]]:
    return all_imports()


def test_every_module_has_a_group(tree: tuple[dict[str, Path], list[Import]]) -> None:
    rules = read_rules()
    homeless = [m for m in tree[0] if m.startswith("builder") and rules.group_of(m) is None]
    assert homeless == [], f"add these modules to a group in {DOC.relative_to(ROOT)}"


def test_every_group_is_a_package() -> None:
    """Finding 6 of issue 14: a group is the package of its name (the entry point
    and builder/__init__.py aside)."""
    for group, patterns in read_rules().groups.items():
        packages = [p for p in patterns if p not in ("cli", "__init__")]
        assert packages == ([] if group == "entry" else [f"{group}.*"]), group
        assert group == "entry" or (ROOT / "builder" / group / "__init__.py").is_file()


def test_groups_import_only_what_the_document_allows(
        tree: tuple[dict[str, Path], list[Import]]) -> None:
    assert layer_violations(read_rules(), tree[1]) == []


def test_builder_and_cluster_migrate_are_independent(
        tree: tuple[dict[str, Path], list[Import]]) -> None:
    crossing = [f"{i.module}:{i.line} imports {i.target}" for i in tree[1]
                if i.module.split(".")[0] != i.target.split(".")[0]]
    assert crossing == []


def test_no_private_names_across_packages(tree: tuple[dict[str, Path], list[Import]]) -> None:
    found = private_imports(tree[1], tree[0])
    assert found - KNOWN_PRIVATE == set()
    assert KNOWN_PRIVATE - found == set(), "fixed: remove these from KNOWN_PRIVATE"


def test_no_import_cycles(tree: tuple[dict[str, Path], list[Import]]) -> None:
    assert cycles(tree[1], set(tree[0])) == []


def test_the_checks_catch_violations(tmp_path: Path) -> None:
    """Each rule fails on a tree that breaks it (a copy with one bad module)."""
    pkg = tmp_path / "builder"
    for sub in ("", "base", "build", "verify", "verify/cluster"):
        (pkg / sub).mkdir(parents=True, exist_ok=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "verify" / "cluster" / "harness.py").write_text("def _steps(): ...\n")
    (pkg / "base" / "errors.py").write_text("from . import workspace\n")
    (pkg / "base" / "workspace.py").write_text("from .errors import X\n")
    (pkg / "build" / "build.py").write_text(
        "from ..verify.cluster.harness import _steps\nfrom ..verify import verify\n")
    (pkg / "verify" / "verify.py").write_text("")
    (tmp_path / "cluster_migrate").mkdir()
    files, imports = all_imports(tmp_path)
    rules = read_rules()
    assert sorted(layer_violations(rules, imports)) == [
        "builder.build.build:1 imports builder.verify.cluster.harness "
        "(build may not import verify)",
        "builder.build.build:2 imports builder.verify.verify (build may not import verify)"]
    assert private_imports(imports, files) == {
        ("builder.build.build", "builder.verify.cluster.harness", "_steps")}
    assert cycles(imports, set(files)) == [["builder.base.errors", "builder.base.workspace"]]
