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

from .. import patches, render
from ..sourcetree import FromSource, finish, tree_inputs
from ..strategy import Context, Intent

FORMAT = "2"
TARBALL_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst")


class PackageStrategy(FromSource):
    name = "package"
    expected_seconds = 60.0

    def version(self, ctx: Context) -> str:
        return ctx.recipe.spec["version"] + ctx.profile.version_suffix

    def upstream_version(self, ctx: Context) -> str:
        return ctx.recipe.spec["version"].split(":", 1)[-1].rsplit("-", 1)[0]

    def _suffix(self, ctx: Context) -> str:
        url = ctx.recipe.spec["upstream"]["url"]
        suffix = next((s for s in TARBALL_SUFFIXES if url.endswith(s)), None)
        if suffix is None:
            raise ctx.recipe.error(f"upstream url must end in one of {TARBALL_SUFFIXES}",
                                   "package.upstream.url")
        return suffix

    def intent(self, ctx: Context) -> Intent:
        self._suffix(ctx)
        if not (ctx.recipe.directory / "debian").is_dir():
            raise ctx.recipe.error("strategy package needs packaging/<component>/debian/",
                                   "strategy")
        name = ctx.recipe.spec["upstream"]["url"].rsplit("/", 1)[-1]
        return Intent("build", ctx.recipe.name, self.version(ctx),
                      f"upstream {name} + our debian/")

    def inputs(self, ctx: Context) -> dict[str, str]:
        return {
            **tree_inputs(ctx, FORMAT),
            "tarball": ctx.recipe.spec["upstream"]["sha256"],
        }

    def render(self, ctx: Context, work: Path) -> Path:
        spec = ctx.recipe.spec
        source, upstream = ctx.recipe.name, self.upstream_version(ctx)
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        tarball = ctx.fetcher.fetch_verified(spec["upstream"]["url"], spec["upstream"]["sha256"])
        orig = work / f"{source}_{upstream}.orig{self._suffix(ctx)}"
        try:
            os.link(tarball, orig)
        except OSError:   # the cache is on another file system
            shutil.copyfile(tarball, orig)
        unpack = work / ".unpack"
        unpack.mkdir()
        ctx.runner.run(["tar", "-xf", orig, "-C", unpack])
        tops = list(unpack.iterdir())
        top = unpack / spec["upstream"]["topdir"] if "topdir" in spec["upstream"] else \
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
