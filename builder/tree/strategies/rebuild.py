"""Strategy `rebuild`: a Debian source package plus our delta.

The .dsc and its files are fetched through the signed chain (InRelease ->
Sources -> .dsc -> files).  Our delta is declared in the recipe: a
changelog entry with the profile's version suffix, patches from
patches/<component>/, control edits, and extra files from templates.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from builder.base.errors import VerificationError
from builder.sources import patches
from builder.sources.upstream import SourcePackage
from builder.stack.specs import RebuildSpec

from .. import render
from ..sourcetree import FromSource, finish, render_files, tree_inputs
from ..strategy import Action, Context, Intent

FORMAT = "1"


class RebuildStrategy(FromSource[RebuildSpec]):
    name = "rebuild"
    spec_type = RebuildSpec
    expected_seconds = 60.0
    rebuilds_upstream = True
    own_ci_job = True

    def _source(self, ctx: Context) -> SourcePackage:
        spec = self.spec(ctx)
        src = ctx.upstream.source_package(spec.source, spec.version)
        if src is None:
            have = ", ".join(ctx.upstream.source_versions(spec.source)) or "none"
            raise ctx.recipe.error(f"source {spec.source} {spec.version} is not in "
                                   f"{ctx.upstream.suites_label()} (versions there: {have})",
                                   "rebuild.version")
        pinned = spec.dsc_sha256
        if pinned and src.files[0][1] != pinned:
            raise VerificationError(f"{ctx.recipe.path}: rebuild.dsc_sha256 pins {pinned}, "
                                    f"but the signed Sources index gives {src.files[0][1]} "
                                    f"for {src.dsc}")
        return src

    def intent(self, ctx: Context) -> Intent:
        src = self._source(ctx)
        n = len(patches.read_series(ctx.workspace.patches_dir / ctx.recipe.name))
        return Intent(Action.BUILD, src.package, self.version(ctx),
                      f"Debian {src.version} from {src.suite} + our delta ({n} patches)")

    def inputs(self, ctx: Context) -> dict[str, str]:
        pinned = self.spec(ctx).dsc_sha256
        return {
            **tree_inputs(ctx, FORMAT),
            # Without a pin, the signed Sources index says what the .dsc is.
            "dsc": pinned or self._source(ctx).files[0][1],
        }

    def render(self, ctx: Context, work: Path) -> Path:
        spec, src = self.spec(ctx), self._source(ctx)
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        for name, sha, size in src.files:
            cached = ctx.fetcher.fetch_verified(src.url(name), sha, size)
            try:
                os.link(cached, work / name)
            except OSError:
                shutil.copyfile(cached, work / name)
        upstream = src.version.split(":", 1)[-1].rsplit("-", 1)[0]
        tree = work / f"{src.package}-{upstream}"
        ctx.runner.run(["dpkg-source", "--no-check", "-x", src.dsc, tree.name], cwd=work)
        debian = tree / "debian"
        render.edit_control(
            debian, add_build_depends=list(spec.add_build_depends),
            drop_build_depends=list(spec.drop_build_depends),
            drop_binaries=list(spec.drop_binaries))
        values = {"source": src.package, "version": self.version(ctx),
                  "upstream_version": upstream, "maintainer": render.MAINTAINER,
                  "profile": ctx.profile.template_context()}
        render_files(ctx, tree, values)
        series = patches.read_series(ctx.workspace.patches_dir / ctx.recipe.name)
        render.prepend_changelog(
            debian, self.version(ctx), ctx.profile.suite,
            [f"Rebuilt by ClusterStack for {ctx.profile.name}.",
             *spec.changes, *(f"Patch: {p}" for p in series)])
        return finish(ctx, tree)
