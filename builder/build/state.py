"""What was built from which inputs: the incremental-build memory."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from builder.base import digest
from builder.base.errors import InputError


@dataclass
class ComponentState:
    component: str
    key: str                      # digest of the inputs
    inputs: dict[str, str]
    source: str
    version: str
    debs: list[str] = field(default_factory=list)          # file names in artifacts dir
    source_files: list[str] = field(default_factory=list)
    lintian: dict[str, int] = field(default_factory=dict)
    own_key: str = ""             # digest of the component's own inputs only
    binaries: list[str] = field(default_factory=list)           # from debian/control
    build_depends: list[list[str]] = field(default_factory=list)
    duration: float = 0.0
    finished: float = 0.0
    # file name -> sha256 of the bytes the build produced; publish and
    # --from-artifacts refuse an artifact that no longer has them.
    sha256: dict[str, str] = field(default_factory=dict)

    @property
    def files(self) -> list[str]:
        return [*self.debs, *self.source_files]


def path_for(state_dir: Path, component: str) -> Path:
    return state_dir / f"{component}.json"


def digests(directory: Path, names: Iterable[str]) -> dict[str, str]:
    """The sha256 of each named file in `directory`, for ComponentState.sha256."""
    return {name: digest.of_file(directory / name) for name in names}


def _parse(text: str) -> ComponentState:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise TypeError("not a JSON object")
    if "sha256" not in data:
        # Written before digests were recorded: it cannot vouch for its
        # artifacts, so it reads as built from unknown inputs and the next
        # build redoes it.
        data["key"] = ""
    return ComponentState(**data)


def read(state_dir: Path, component: str) -> ComponentState | None:
    path = path_for(state_dir, component)
    try:
        return _parse(path.read_text())
    except (OSError, ValueError, TypeError):
        return None


def load(state_dir: Path, component: str) -> ComponentState | None:
    """Like read(), for those who must not take a damaged state for a missing
    one (publish): None only when there is no state file; a file that does
    not parse is an error naming it."""
    path = path_for(state_dir, component)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InputError(path, f"cannot read the build state: {exc.strerror}") from exc
    try:
        return _parse(text)
    except (ValueError, TypeError) as exc:
        raise InputError(path, f"not a valid build state ({exc}); rebuild the component "
                         "or bring its artifacts again") from exc


def write(state_dir: Path, st: ComponentState) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = path_for(state_dir, st.component)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(st), indent=1, sort_keys=True))
    os.replace(tmp, path)
