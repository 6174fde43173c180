"""Render a component's debian/ templates into a real source tree.

Templates are data: `packaging/<component>/debian/**`; a file ending in .j2
is rendered with jinja2, any other file is copied as it is.  debian/changelog
is written here with python-debian, so versions follow the profile.
"""

from __future__ import annotations

import email.utils
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from builder.base.errors import InputError

# jinja2 and python-debian are imported where they are used: a no-op plan or
# build renders nothing and reads no control file, and their imports alone
# were a fifth of its time.
if TYPE_CHECKING:
    from debian.changelog import Changelog

MAINTAINER = "ClusterStack Builders <builders@clusterstack.invalid>"
# The date of changelogs we write from scratch.  Fixed, so that the same
# inputs give the same packages; not 1970, which lintian rightly calls a time
# warp before the Standards-Version.  $SOURCE_DATE_EPOCH overrides it.
CHANGELOG_EPOCH = 1754697600   # 2025-08-09, the release of Debian 13


def changelog_epoch() -> float:
    return float(os.environ.get("SOURCE_DATE_EPOCH", CHANGELOG_EPOCH))


@dataclass(frozen=True)
class ControlInfo:
    source: str
    binaries: tuple[str, ...]
    build_depends: tuple[tuple[str, ...], ...]   # groups of alternatives, by name
    architectures: tuple[str, ...]


def _changelog(text: str | None = None) -> Changelog:
    from debian.changelog import Changelog
    return Changelog(text)


def _template_line(exc: BaseException, template: Path) -> int | None:
    if getattr(exc, "lineno", None):
        return exc.lineno
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == str(template):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def render_file(template: Path, context: dict[str, Any]) -> str:
    import jinja2
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template.parent)),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
        autoescape=False,
    )
    try:
        return env.get_template(template.name).render(context)
    except jinja2.TemplateError as exc:
        raise InputError(template, f"template error: {exc.message or exc}",
                         line=_template_line(exc, template)) from exc
    except (TypeError, KeyError, AttributeError, ValueError) as exc:
        raise InputError(template, f"template error: {exc}",
                         line=_template_line(exc, template)) from exc


def render_tree(template_dir: Path, dest: Path, context: dict[str, Any]) -> None:
    """Copy template_dir to dest, rendering *.j2 files (the suffix is dropped)."""
    for path in sorted(template_dir.rglob("*")):
        rel = path.relative_to(template_dir)
        if path.is_dir() or "__pycache__" in rel.parts:
            continue
        if path.suffix == ".j2":
            target = dest / rel.with_suffix("")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(render_file(path, context), encoding="utf-8")
        else:
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        target.chmod(path.stat().st_mode & 0o777)


def write_changelog(debian_dir: Path, source: str, version: str, distribution: str,
                    changes: list[str], when: float, maintainer: str = MAINTAINER) -> None:
    log = _changelog()
    log.new_block(
        package=source, version=version, distributions=distribution, urgency="medium",
        author=maintainer, date=email.utils.formatdate(when, usegmt=False),
        changes=["", *[f"  * {c}" for c in changes], ""],
    )
    (debian_dir / "changelog").write_text(str(log), encoding="utf-8")


def read_control(debian_dir: Path) -> ControlInfo:
    from debian.deb822 import Deb822, PkgRelation
    path = debian_dir / "control"
    try:
        paras = list(Deb822.iter_paragraphs(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror}") from exc
    if not paras or "Source" not in paras[0]:
        raise InputError(path, "first paragraph has no Source field", line=1)
    binaries = [p for p in paras[1:] if "Package" in p]
    if not binaries:
        raise InputError(path, "no binary package paragraph (Package: ...)")
    deps: list[tuple[str, ...]] = []
    for fieldname in ("Build-Depends", "Build-Depends-Indep", "Build-Depends-Arch"):
        # Empty items (a trailing comma) are dropped before python-debian sees them.
        items = [i.strip() for i in paras[0].get(fieldname, "").split(",") if i.strip()]
        for rel in PkgRelation.parse_relations(", ".join(items)) if items else []:
            deps.append(tuple(alt["name"] for alt in rel))
    return ControlInfo(
        source=paras[0]["Source"],
        binaries=tuple(p["Package"] for p in binaries),
        build_depends=tuple(deps),
        architectures=tuple(sorted({a for p in binaries for a in p["Architecture"].split()})),
    )


def prepend_changelog(debian_dir: Path, version: str, distribution: str,
                      changes: list[str], maintainer: str = MAINTAINER) -> None:
    """Add our entry on top of an existing changelog.

    Dated one day after the entry below it: deterministic (the build is
    reproducible) and never older than what it follows.
    """
    path = debian_dir / "changelog"
    log = _changelog(path.read_text(encoding="utf-8"))
    previous = email.utils.parsedate_to_datetime(log.date).timestamp()
    log.new_block(
        package=log.package, version=version, distributions=distribution, urgency="medium",
        author=maintainer, date=email.utils.formatdate(previous + 86400),
        changes=["", *[f"  * {c}" for c in changes], ""],
    )
    path.write_text(str(log), encoding="utf-8")


def edit_control(debian_dir: Path, *, add_build_depends: list[str],
                 drop_build_depends: list[str], drop_binaries: list[str]) -> None:
    """Our control delta, applied with python-debian rather than by text edits."""
    from debian.deb822 import Deb822, PkgRelation
    path = debian_dir / "control"
    paras = list(Deb822.iter_paragraphs(path.read_text(encoding="utf-8")))
    src = paras[0]
    if add_build_depends or drop_build_depends:
        rels = PkgRelation.parse_relations(src.get("Build-Depends", ""))
        drop = set(drop_build_depends)
        rels = [r for r in rels if not any(alt["name"] in drop for alt in r)]
        rels += PkgRelation.parse_relations(", ".join(add_build_depends))
        src["Build-Depends"] = "\n " + ",\n ".join(PkgRelation.str([r]) for r in rels)
    kept = [p for p in paras[1:] if p.get("Package") not in set(drop_binaries)]
    path.write_text("\n".join(p.dump() for p in [src, *kept]), encoding="utf-8")


def changelog_version(debian_dir: Path) -> str:
    return str(_changelog((debian_dir / "changelog").read_text(encoding="utf-8")).version)


def restamp_changelog(debian_dir: Path, version: str, change: str) -> None:
    """Give the top changelog entry another version, saying why in the entry:
    the tree is rendered before its cache key (and so its version) is known."""
    path = debian_dir / "changelog"
    log = _changelog(path.read_text(encoding="utf-8"))
    log.version = version
    log.add_change(f"  * {change}")
    path.write_text(str(log), encoding="utf-8")
