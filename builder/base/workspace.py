"""Where things live: the stack definition in, build outputs and caches out."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def find_stack_dir(start: Path) -> Path:
    """The nearest folder at or above `start` that holds packaging/profiles."""
    for candidate in (start, *start.parents):
        if (candidate / "packaging" / "profiles").is_dir():
            return candidate
    # An installed (editable) builder sits next to its stack definition.
    return Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Workspace:
    stack_dir: Path
    out_dir: Path
    cache_dir: Path

    @classmethod
    def create(cls, stack_dir: Path | None = None, out_dir: Path | None = None,
               cache_dir: Path | None = None) -> Workspace:
        stack = (stack_dir or find_stack_dir(Path.cwd())).resolve()
        out = out_dir or Path(os.environ.get("CLUSTERSTACK_OUT", stack / "out"))
        cache = cache_dir or Path(os.environ.get(
            "CLUSTERSTACK_CACHE", Path.home() / ".cache" / "clusterstack"))
        return cls(stack, out.resolve(), cache.resolve())

    @property
    def packaging_dir(self) -> Path:
        return self.stack_dir / "packaging"

    @property
    def seeds_dir(self) -> Path:
        return self.stack_dir / "tasksel"

    @property
    def patches_dir(self) -> Path:
        return self.stack_dir / "patches"

    @property
    def upstart_dir(self) -> Path:
        return self.stack_dir / "upstart"

    def profile_out(self, profile: str) -> Path:
        return self.out_dir / profile

    def artifacts_dir(self, profile: str, component: str) -> Path:
        return self.profile_out(profile) / "artifacts" / component

    def work_dir(self, profile: str, component: str) -> Path:
        return self.profile_out(profile) / "work" / component

    def log_path(self, profile: str, component: str) -> Path:
        return self.profile_out(profile) / "logs" / f"{component}.log"

    def state_dir(self, profile: str) -> Path:
        return self.profile_out(profile) / "state"

    @property
    def public_dir(self) -> Path:
        return self.out_dir / "public"

    def published_repo(self, profile: str) -> Path:
        return self.public_dir / profile

    @property
    def keyring_dir(self) -> Path:
        return Path(os.environ.get("CLUSTERSTACK_GNUPGHOME", self.out_dir / "keyring"))
