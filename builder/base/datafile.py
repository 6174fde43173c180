"""Load YAML data files and validate them against a JSON schema.

Errors name the file, the line and the key, so a broken recipe or profile is
found without reading a traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .errors import InputError

# libyaml when PyYAML has it: every run reads every recipe, and the pure-Python
# parser took a tenth of a second for them.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class Checked:
    """Which data files have passed their schema already, remembered across runs.

    A file's check depends on nothing but its text and the schema's, so an
    empty marker named by the digest of both stands for a passed check: a run
    that finds every marker neither imports jsonschema nor validates (a fifth
    of a no-op plan's time).  A file that fails is never marked, and a changed
    file or schema has another digest.  One per run.
    """

    directory: Path
    schemas: dict[str, str] = field(default_factory=dict)   # name -> text, this run

    def _marker(self, schema: str, text: str) -> Path:
        if schema not in self.schemas:
            self.schemas[schema] = _schema_text(schema)
        key = hashlib.sha256(f"{schema}\0{self.schemas[schema]}\0{text}".encode())
        return self.directory / key.hexdigest()

    def passed(self, schema: str, text: str) -> bool:
        return self._marker(schema, text).is_file()

    def remember(self, schema: str, text: str) -> None:
        marker = self._marker(schema, text)
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            tmp = marker.with_name(f".{marker.name}.{os.getpid()}")
            tmp.touch()
            os.replace(tmp, marker)
        except OSError:
            pass   # a read-only cache: the next run validates again, nothing worse


def _schema_text(name: str) -> str:
    return resources.files("builder.stack.schemas").joinpath(f"{name}.json").read_text()


@cache
def _schema(name: str) -> dict[str, Any]:
    return json.loads(_schema_text(name))


def _line_of(node: yaml.Node | None, path: list[str | int]) -> int | None:
    """Walk the composed YAML node tree along `path`; return the 1-based line."""
    line = node.start_mark.line + 1 if node is not None else None
    for step in path:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == step:
                    line = key_node.start_mark.line + 1
                    node = value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            if step >= len(node.value):
                return line
            node = node.value[step]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def key_lines(node: yaml.Node | None, prefix: str = "") -> dict[str, int]:
    """Every dotted key path in a mapping tree -> the line where it stands."""
    out: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            dotted = f"{prefix}{key_node.value}"
            out[dotted] = key_node.start_mark.line + 1
            out.update(key_lines(value_node, dotted + "."))
    return out


def _parse(text: str) -> tuple[yaml.Node | None, Any]:
    """The composed node tree (for line numbers) and the data, from one parse."""
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    finally:
        loader.dispose()


def _validate(path: Path, schema: str, data: dict[str, Any], node: yaml.Node | None) -> None:
    import jsonschema  # only when a file is not known to pass (see Checked)
    validator = jsonschema.Draft202012Validator(_schema(schema))
    err = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if err is not None:
        where = list(err.absolute_path)
        key = ".".join(str(p) for p in where) or None
        message = err.message
        if err.validator == "additionalProperties":
            # Point at the unknown key itself, not at its parent mapping.
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            if extra:
                where = [*where, extra[0]]
                key = ".".join(str(p) for p in where)
                message = "unknown key"
        raise InputError(path, message, line=_line_of(node, where), key=key)


def load(path: Path, schema: str, checked: Checked | None = None) -> dict[str, Any]:
    """Read `path`, check it against builder/stack/schemas/<schema>.json, return the data.

    The data carries `__lines__`: dotted key -> line, for errors found later.
    `checked`: the files known to pass, whose check is skipped (see Checked).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror}") from exc
    try:
        node, data = _parse(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise InputError(path, f"not valid YAML: {exc.problem}",
                         line=mark.line + 1 if mark else None) from exc
    if not isinstance(data, dict):
        raise InputError(path, f"expected a mapping of keys, found {type(data).__name__}",
                         line=1)
    if checked is None or not checked.passed(schema, text):
        _validate(path, schema, data, node)
        if checked is not None:
            checked.remember(schema, text)
    data["__lines__"] = key_lines(node)
    return data
