"""Steps shared by strategies that build from source: pack, build, check."""

from __future__ import annotations

import shutil
from pathlib import Path

from . import lintian, render
from .backend import BuildRequest
from .errors import ClusterStackError
from .strategy import Artifacts, Context


def build_tree(ctx: Context, tree: Path, version: str, dest: Path) -> Artifacts:
    """dpkg-source -b the tree, build the .dsc with the backend, lintian the result."""
    if ctx.backend is None:
        raise ClusterStackError(f"{ctx.recipe.name}: building needs a build backend")
    work = tree.parent
    control = render.read_control(tree / "debian")
    ctx.runner.run(["dpkg-source", "-b", tree.name], cwd=work)
    plain = version.split(":", 1)[-1]
    dsc = work / f"{control.source}_{plain}.dsc"
    indep = all(a == "all" for a in control.architectures)
    result = ctx.backend.build(BuildRequest(
        dsc=dsc, out_dir=dest, arch_all=True, arch_any=not indep,
        extra_debs=ctx.extra_debs, add_depends=tuple(ctx.recipe.add_depends),
        runner=ctx.runner))
    arts = Artifacts(control.source, version, debs=result.debs)
    from debian.deb822 import Dsc
    info = Dsc(dsc.read_text(encoding="utf-8"))
    for name in [dsc.name, *(f["name"] for f in info["Files"])]:
        shutil.copyfile(work / name, dest / name)
        arts.source_files.append(dest / name)
    arts.lintian = lintian.run(result.changes, ctx.runner)
    return arts
