"""Extension points: one abstract interface each, implementations in a sibling package.

The same way for every extension point (as dput-ng does for its uploaders
and hooks): the interface module (`strategy.py`, `backend.py`,
`generator.py`, `pipeline.py`) declares a `Registry` naming each
implementation by module and class inside its package (`strategies/`,
`backends/`, `generators/`, `pipelines/`).  A module is imported only when
its implementation is asked for, so an optional dependency (the docker
backend's `docker` package) costs nothing until it is used, and an
implementation may import its interface module without a cycle.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import ClassVar, Generic, TypeVar

from .errors import ClusterStackError


class Plugin:
    """What every implementation has: the name it is registered under."""

    name: ClassVar[str]


P = TypeVar("P", bound=Plugin)


class UnknownPlugin(ClusterStackError):
    """A name that no implementation of an extension point has."""

    exit_code = 2

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind, self.name, self.known = kind, name, known
        super().__init__(f"unknown {kind} '{name}' (known: {', '.join(known)})")


class Registry(Mapping[str, type[P]], Generic[P]):
    """name -> implementation class, imported on first use.

    `entries` maps each name to "module:Class" inside `package`; the order
    given is the order names are listed in (help texts, error messages).
    """

    def __init__(self, kind: str, interface: type[P], package: str,
                 entries: Mapping[str, str]) -> None:
        self.kind, self.interface, self.package = kind, interface, package
        self._entries = dict(entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, name: str) -> type[P]:
        module_name, _, class_name = self._entries[name].partition(":")
        module = importlib.import_module(f"{self.package}.{module_name}")
        cls = getattr(module, class_name)
        if not (isinstance(cls, type) and issubclass(cls, self.interface)):
            raise TypeError(f"{self.package}.{module_name}:{class_name} does not implement "
                            f"{self.interface.__name__}")
        if cls.name != name:
            raise TypeError(f"{cls.__qualname__} is registered as {self.kind} '{name}' but "
                            f"names itself '{cls.name}'")
        return cls

    def load(self, name: str) -> type[P]:
        """The implementation named `name`, or one error listing the known ones."""
        if name not in self._entries:
            raise UnknownPlugin(self.kind, name, list(self._entries))
        return self[name]
