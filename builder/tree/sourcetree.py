"""Steps shared by strategies that build from source: finish, pack, build, check."""

from __future__ import annotations

import shutil
from abc import abstractmethod
from pathlib import Path
from typing import ClassVar, TypeVar

from builder.base import digest
from builder.base.errors import ClusterStackError
from builder.buildroot import linkage, lintian
from builder.buildroot.backend import BuildRequest, BuildResult
from builder.sources import patches
from builder.stack.specs import SourceSpec

from . import render
from .strategy import Artifacts, Context, Strategy

T = TypeVar("T", bound=SourceSpec)


def pack(ctx: Context, tree: Path, dest: Path) -> BuildRequest:
    """dpkg-source -b the tree: the request that builds its .dsc into `dest`.

    The version is the changelog's: the builder may have restamped it."""
    work = tree.parent
    control = render.read_control(tree / "debian")
    version = render.changelog_version(tree / "debian")
    ctx.runner.run(["dpkg-source", "-b", tree.name], cwd=work)
    plain = version.split(":", 1)[-1]
    dsc = work / f"{control.source}_{plain}.dsc"
    indep = all(a == "all" for a in control.architectures)
    return BuildRequest(
        dsc=dsc, out_dir=dest, arch_all=True, arch_any=not indep,
        extra_debs=ctx.extra_debs, add_depends=tuple(ctx.recipe.add_depends),
        runner=ctx.runner, parallel=ctx.parallel)


def collect(tree: Path, request: BuildRequest, result: BuildResult) -> Artifacts:
    """What a built request made, with the source package copied beside it (no lintian)."""
    control = render.read_control(tree / "debian")
    arts = Artifacts(control.source, render.changelog_version(tree / "debian"),
                     debs=result.debs)
    from debian.deb822 import Dsc
    dsc = request.dsc
    info = Dsc(dsc.read_text(encoding="utf-8"))
    for name in [dsc.name, *(f["name"] for f in info["Files"])]:
        shutil.copyfile(dsc.parent / name, request.out_dir / name)
        arts.source_files.append(request.out_dir / name)
    return arts


def build_tree(ctx: Context, tree: Path, dest: Path) -> Artifacts:
    """dpkg-source -b the tree, build the .dsc with the backend, lintian the result."""
    if ctx.backend is None:
        raise ClusterStackError(f"{ctx.recipe.name}: building needs a build backend")
    request = pack(ctx, tree, dest)
    result = ctx.backend.build(request)
    arts = collect(tree, request, result)
    arts.lintian = lintian.run(result.changes, ctx.runner)
    return arts


def tree_inputs(ctx: Context, fmt: str) -> dict[str, str]:
    """What every source tree we make depends on, besides the upstream source."""
    return {
        "format": fmt,
        "recipe": digest.of_tree(ctx.recipe.directory),
        "patches": digest.of_tree(ctx.workspace.patches_dir / ctx.recipe.name),
        "profile": digest.of_file(ctx.profile.path),
        **({"upstart": digest.of_tree(ctx.workspace.upstart_dir)}
           if ctx.profile.init == "upstart" else {}),
    }


def render_files(ctx: Context, tree: Path, values: dict[str, object]) -> None:
    """The recipe's `files`: extra templates rendered to paths in the tree."""
    section = ctx.recipe.strategy
    spec = ctx.recipe.spec
    files = spec.files if isinstance(spec, SourceSpec) else {}
    for template, target in files.items():
        src = ctx.recipe.directory / template
        if not src.is_file():
            raise ctx.recipe.error(f"template '{template}' does not exist",
                                   f"{section}.files.{template}")
        out = tree / target
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render.render_file(src, values), encoding="utf-8")
        out.chmod(src.stat().st_mode & 0o777)


def source_bytes(tree: Path) -> int:
    """Bytes of the source archives beside a rendered tree."""
    return sum(p.stat().st_size for p in tree.parent.iterdir() if p.is_file())


def finish(ctx: Context, tree: Path) -> Path:
    """Our patches on top, and on an Upstart profile the daemons' jobs."""
    patches.apply(tree, ctx.workspace.patches_dir / ctx.recipe.name, ctx.runner)
    if ctx.profile.init == "upstart":
        from .upstart import package as upstart_jobs
        upstart_jobs.into_source_tree(ctx.profile.template_context(), tree,
                                      upstart_dir=ctx.workspace.upstart_dir, runner=ctx.runner)
    return tree


class FromSource(Strategy[T]):
    """The base of strategies whose render() makes a source tree that is then built."""

    builds_from_source: ClassVar[bool] = True
    expected_seconds: ClassVar[float] = 60.0

    def version(self, ctx: Context) -> str:
        """The Debian version of our package: the recipe's plus the profile's suffix."""
        return self.spec(ctx).version + ctx.profile.version_suffix

    @abstractmethod
    def render(self, ctx: Context, work: Path) -> Path: ...

    def build(self, ctx: Context, tree: Path, dest: Path) -> Artifacts:
        arts = build_tree(ctx, tree, dest)
        linkage.check(arts.debs, ctx.recipe.forbid_linkage, ctx.runner)
        return arts

    def request(self, ctx: Context, tree: Path, dest: Path) -> BuildRequest:
        return pack(ctx, tree, dest)

    def complete(self, ctx: Context, tree: Path, request: BuildRequest,
                 result: BuildResult) -> Artifacts:
        arts = collect(tree, request, result)
        linkage.check(arts.debs, ctx.recipe.forbid_linkage, ctx.runner)
        return arts

    def produce(self, ctx: Context, dest: Path) -> Artifacts:
        work = ctx.workspace.work_dir(ctx.profile.name, ctx.recipe.name)
        return self.build(ctx, self.render(ctx, work), dest)
