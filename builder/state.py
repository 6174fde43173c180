"""What was built from which inputs: the incremental-build memory."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path


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

    @property
    def files(self) -> list[str]:
        return [*self.debs, *self.source_files]


def path_for(state_dir: Path, component: str) -> Path:
    return state_dir / f"{component}.json"


def read(state_dir: Path, component: str) -> ComponentState | None:
    path = path_for(state_dir, component)
    try:
        return ComponentState(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def write(state_dir: Path, st: ComponentState) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = path_for(state_dir, st.component)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(st), indent=1, sort_keys=True))
    os.replace(tmp, path)
