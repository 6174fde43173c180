"""Strategy `package`: a pinned upstream tarball plus our own debian/ directory.

For components whose Debian packaging is not reachable (partly mirrored
archive): the tarball is fetched by URL and sha256, debian/ is rendered
entirely from packaging/<component>/debian, and patches/<component>/ is
added as a quilt series.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from builder.sources import patches
from builder.stack.specs import PackageSpec

from .. import render
from ..sourcetree import FromSource, finish, tree_inputs
from ..strategy import Action, Context, Intent

FORMAT = "2"


class PackageStrategy(FromSource[PackageSpec]):
    name = "package"
    spec_type = PackageSpec
    expected_seconds = 60.0
    own_ci_job = True

    def intent(self, ctx: Context) -> Intent:
        if not (ctx.recipe.directory / "debian").is_dir():
            raise ctx.recipe.error("strategy package needs packaging/<component>/debian/",
                                   "strategy")
        return Intent(Action.BUILD, ctx.recipe.name, self.version(ctx),
                      f"upstream {self.spec(ctx).upstream.file_name} + our debian/")

    def inputs(self, ctx: Context) -> dict[str, str]:
        return {
            **tree_inputs(ctx, FORMAT),
            "tarball": self.spec(ctx).upstream.sha256,
        }

    def render(self, ctx: Context, work: Path) -> Path:
        spec = self.spec(ctx)
        source, upstream = ctx.recipe.name, spec.upstream_version
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        tarball = ctx.fetcher.fetch_verified(spec.upstream.url, spec.upstream.sha256)
        orig = work / f"{source}_{upstream}.orig{spec.upstream.suffix}"
        try:
            os.link(tarball, orig)
        except OSError:   # the cache is on another file system
            shutil.copyfile(tarball, orig)
        unpack = work / ".unpack"
        unpack.mkdir()
        ctx.runner.run(["tar", "-xf", orig, "-C", unpack])
        tops = list(unpack.iterdir())
        top = unpack / spec.upstream.topdir if spec.upstream.topdir else \
            (tops[0] if len(tops) == 1 and tops[0].is_dir() else unpack)
        tree = work / f"{source}-{upstream}"
        top.rename(tree)
        shutil.rmtree(unpack, ignore_errors=True)
        if (tree / "debian").exists():
            shutil.rmtree(tree / "debian")  # ours replaces any upstream debian/
        values = {
            "source": source, "version": self.version(ctx), "upstream_version": upstream,
            "maintainer": render.MAINTAINER, "profile": ctx.profile.template_context(),
            "recipe": {"name": ctx.recipe.name, "description": ctx.recipe.description},
        }
        render.render_tree(ctx.recipe.directory / "debian", tree / "debian", values)
        render.write_changelog(
            tree / "debian", source, self.version(ctx), ctx.profile.suite,
            [f"Packaged by ClusterStack for {ctx.profile.name} from the upstream tarball.",
             *(f"Patch: {p}" for p in patches.read_series(
                 ctx.workspace.patches_dir / ctx.recipe.name))], when=render.changelog_epoch())
        return finish(ctx, tree)
