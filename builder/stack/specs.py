"""The strategy sections of a recipe (`import:`, `native:`, ...) as typed values.

builder/stack/schemas/recipe.json has already checked the shape when a section is
parsed here; what the schema cannot say (a tarball URL's suffix) is checked
here, so a recipe that loads is one its strategy can use.  Errors name the
recipe file, the line and the dotted key, as the schema's do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from builder.base.errors import InputError

# Builds the error for a message at a dotted key of the recipe.
Locate = Callable[[str, str], InputError]

TARBALL_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst")


def _strings(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    return tuple(data.get(key) or ())


def _mapping(data: Mapping[str, Any], key: str) -> dict[str, str]:
    return dict(data.get(key) or {})


@dataclass(frozen=True, kw_only=True)
class Spec:
    """A strategy's own section of a recipe."""

    section: ClassVar[str]

    def source_name(self, component: str) -> str:
        """The Debian source package the component comes from."""
        return component

    @classmethod
    def parse(cls, data: Mapping[str, Any], locate: Locate) -> Spec:
        """The section from its schema-checked mapping; `locate` makes its errors."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class ImportSpec(Spec):
    section: ClassVar[str] = "import"
    source: str
    binaries: tuple[str, ...] = ()        # empty: every binary of the source
    exclude: tuple[str, ...] = ()
    versions: dict[str, str] = field(default_factory=dict)   # profile -> pinned version

    def source_name(self, component: str) -> str:
        return self.source

    @classmethod
    def parse(cls, data: Mapping[str, Any], locate: Locate) -> ImportSpec:
        return cls(source=data["source"], binaries=_strings(data, "binaries"),
                   exclude=_strings(data, "exclude"), versions=_mapping(data, "versions"))


@dataclass(frozen=True, kw_only=True)
class SourceSpec(Spec):
    """What every strategy that renders a source tree has: its version."""

    version: str
    files: dict[str, str] = field(default_factory=dict)   # template -> path in the tree


@dataclass(frozen=True, kw_only=True)
class NativeSpec(SourceSpec):
    section: ClassVar[str] = "native"
    seeds: tuple[str, ...] = ()
    generate: tuple[str, ...] = ()
    copy: dict[str, str] = field(default_factory=dict)     # project path -> path in the tree
    unpack: dict[str, str] = field(default_factory=dict)   # base-archive package -> version

    @classmethod
    def parse(cls, data: Mapping[str, Any], locate: Locate) -> NativeSpec:
        return cls(version=data["version"], files=_mapping(data, "files"),
                   seeds=_strings(data, "seeds"), generate=_strings(data, "generate"),
                   copy=_mapping(data, "copy"), unpack=_mapping(data, "unpack"))


@dataclass(frozen=True)
class Upstream:
    url: str
    sha256: str
    topdir: str = ""      # the tarball's top folder, when it is not its only entry

    @property
    def suffix(self) -> str:
        return next(s for s in TARBALL_SUFFIXES if self.url.endswith(s))

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True, kw_only=True)
class PackageSpec(SourceSpec):
    section: ClassVar[str] = "package"
    upstream: Upstream

    @property
    def upstream_version(self) -> str:
        return self.version.split(":", 1)[-1].rsplit("-", 1)[0]

    @classmethod
    def parse(cls, data: Mapping[str, Any], locate: Locate) -> PackageSpec:
        up = data["upstream"]
        if not up["url"].endswith(TARBALL_SUFFIXES):
            raise locate(f"upstream url must end in one of {TARBALL_SUFFIXES}",
                         "package.upstream.url")
        return cls(version=data["version"],
                   upstream=Upstream(up["url"], up["sha256"], up.get("topdir", "")))


@dataclass(frozen=True, kw_only=True)
class RebuildSpec(SourceSpec):
    section: ClassVar[str] = "rebuild"
    source: str
    dsc_sha256: str = ""          # empty: the signed Sources index says what the .dsc is
    suite: str = ""
    add_build_depends: tuple[str, ...] = ()
    drop_build_depends: tuple[str, ...] = ()
    drop_binaries: tuple[str, ...] = ()
    changes: tuple[str, ...] = ()  # changelog lines for our delta

    def source_name(self, component: str) -> str:
        return self.source

    @classmethod
    def parse(cls, data: Mapping[str, Any], locate: Locate) -> RebuildSpec:
        return cls(source=data["source"], version=data["version"], files=_mapping(data, "files"),
                   dsc_sha256=data.get("dsc_sha256", ""), suite=data.get("suite", ""),
                   add_build_depends=_strings(data, "add_build_depends"),
                   drop_build_depends=_strings(data, "drop_build_depends"),
                   drop_binaries=_strings(data, "drop_binaries"),
                   changes=_strings(data, "changes"))


# The recipe's section name -> its type; the same names as the strategies.
SPECS: dict[str, type[Spec]] = {s.section: s for s in (ImportSpec, NativeSpec, PackageSpec,
                                                 RebuildSpec)}


def parse(strategy: str, data: Mapping[str, Any], locate: Locate) -> Spec:
    """The recipe's section for `strategy`, typed and checked."""
    if strategy not in SPECS:
        raise locate(f"strategy '{strategy}' is not implemented yet "
                     f"(implemented: {', '.join(sorted(SPECS))})", "strategy")
    return SPECS[strategy].parse(data, locate)
