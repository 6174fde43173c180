"""Our quilt series (patches/<component>/) added on top of a source tree.

The patches are copied into debian/patches, appended to its series and
applied with quilt, so that a patch that does not apply is found before
anything builds, and named with the file it fails on.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from builder.base.command import Runner
from builder.base.errors import InputError

PREFIX = "clusterstack-"


def read_series(patch_dir: Path) -> list[str]:
    series = patch_dir / "series"
    if not series.is_file():
        return []
    names = []
    for number, line in enumerate(series.read_text().splitlines(), 1):
        name = line.split("#", 1)[0].strip()
        if not name:
            continue
        if not (patch_dir / name.split()[0]).is_file():
            raise InputError(series, f"names '{name}', which does not exist", line=number)
        names.append(name.split()[0])
    return names


def _failure(output: str) -> tuple[str, str]:
    """(file, detail) of the first hunk that failed, from quilt/patch output."""
    current, detail = "?", "does not apply"
    for line in output.splitlines():
        if m := re.match(r"patching file (.+)", line):
            current = m.group(1).strip()
        elif m := re.match(r"Hunk #(\d+) FAILED at (\d+)", line):
            return current, f"hunk #{m.group(1)} failed at line {m.group(2)}"
        elif "can't find file to patch" in line:
            detail = "the file to patch does not exist"
        elif m := re.match(r"The next patch would (create|delete) the file (.+),", line):
            return m.group(2), f"would {m.group(1)} a file that already does / does not exist"
    return current, detail


def apply(tree: Path, patch_dir: Path, runner: Runner) -> list[str]:
    """Add and apply the series in patch_dir; return the patch names added."""
    names = read_series(patch_dir)
    if not names:
        return []
    target = tree / "debian" / "patches"
    target.mkdir(parents=True, exist_ok=True)
    series = target / "series"
    existing = series.read_text() if series.is_file() else ""
    added = [PREFIX + n for n in names]
    for name, ours in zip(names, added, strict=True):
        shutil.copyfile(patch_dir / name, target / ours)
    series.write_text(existing + ("" if not existing or existing.endswith("\n") else "\n")
                      + "".join(f"{n}\n" for n in added))
    env = {"QUILT_PATCHES": "debian/patches", "QUILT_PC": ".pc", "QUILTRC": "/dev/null"}
    for name, ours in zip(names, added, strict=True):
        result = runner.run(["quilt", "push", "--fuzz=0", ours], cwd=tree, env=env,
                            check=False)
        if result.returncode != 0:
            path, detail = _failure(result.stdout + result.stderr_tail)
            raise InputError(patch_dir / name, f"does not apply to {tree.name}: "
                             f"file {path}: {detail}")
    return added
