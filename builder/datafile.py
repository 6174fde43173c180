"""Load YAML data files and validate them against a JSON schema.

Errors name the file, the line and the key, so a broken recipe or profile is
found without reading a traceback.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .errors import InputError


@cache
def _schema(name: str) -> dict[str, Any]:
    text = resources.files("builder.schemas").joinpath(f"{name}.json").read_text()
    return json.loads(text)


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


def load(path: Path, schema: str) -> dict[str, Any]:
    """Read `path`, check it against builder/schemas/<schema>.json, return the data.

    The data carries `__lines__`: dotted key -> line, for errors found later.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror}") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise InputError(path, f"not valid YAML: {exc.problem}",
                         line=mark.line + 1 if mark else None) from exc
    if not isinstance(data, dict):
        raise InputError(path, f"expected a mapping of keys, found {type(data).__name__}",
                         line=1)
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
    data["__lines__"] = key_lines(node)
    return data
