"""rgmanager's resource trees: walking them, their start order, reading their values."""

from __future__ import annotations

import re

from .agents import CHILD_RULES
from .model import Resource


def walk(children: list[Resource]) -> list[Resource]:
    """Every resource of the trees, each before its children."""
    out: list[Resource] = []
    for r in children:
        out.append(r)
        out.extend(walk(r.children))
    return out


def child_order(parent_type: str, children: list[Resource]
                ) -> tuple[list[Resource], list[Resource]]:
    """rgmanager's start order of one parent's children, and the children it ignored.

    Children whose type the parent's rules give a start level start first, level by
    level (within a level in rule order, then as written); then the children the
    rules name without a level, then all others, both as written (restree.c's two
    passes). A type the rules forbid was never loaded by rgmanager.
    """
    rules = CHILD_RULES.get(parent_type, {})
    rank = {t: i for i, t in enumerate(rules)}
    forbidden = [c for c in children if c.type in rules and rules[c.type] is None]
    leveled = sorted((c for c in children if rules.get(c.type)),
                     key=lambda c: (rules[c.type], rank[c.type]))
    named = sorted((c for c in children if c.type in rules and rules[c.type] == 0),
                   key=lambda c: rank[c.type])
    untyped = [c for c in children if c.type not in rules]
    return leveled + named + untyped, forbidden


def seconds(value: str) -> str:
    """rgmanager wrote bare numbers for seconds; Pacemaker would too, but say it."""
    value = value.strip()
    return f"{value}s" if value.isdigit() else value


def num(text: str) -> int:
    """The digits of text as a number ("30s" -> 30), 0 when there are none."""
    return int(re.sub(r"\D", "", text) or "0")


def script_base(res: Resource) -> str:
    """The file name of a <script file=...> (the init script's name)."""
    return res.attrs.get("file", "").rstrip("/").rsplit("/", 1)[-1]


def vg_lv(device: str) -> tuple[str, str] | None:
    """/dev/VG/LV or /dev/mapper/VG-LV -> (VG, LV); None for anything else."""
    if device.startswith("/dev/mapper/"):
        name = device[len("/dev/mapper/"):]
        # device-mapper doubles dashes inside names and joins VG and LV with one
        parts = re.split(r"(?<!-)-(?!-)", name, maxsplit=1)
        if len(parts) == 2:
            return parts[0].replace("--", "-"), parts[1].replace("--", "-")
        return None
    m = re.fullmatch(r"/dev/([^/]+)/([^/]+)", device)
    if m and m.group(1) not in ("disk", "md", "mapper", "drbd", "block", "cciss"):
        return m.group(1), m.group(2)
    return None
