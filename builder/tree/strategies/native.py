"""Strategy `native`: a package generated entirely here from templates."""

from __future__ import annotations

import shutil
from pathlib import Path

from builder.base import digest
from builder.base.errors import InputError
from builder.stack import seeds
from builder.stack.specs import NativeSpec

from .. import render
from ..generator import GENERATORS
from ..sourcetree import FromSource, render_files
from ..strategy import Action, Context, Intent

# Bump when the way native packages are rendered changes, so caches refresh.
FORMAT = "2"


class NativeStrategy(FromSource[NativeSpec]):
    name = "native"
    spec_type = NativeSpec
    expected_seconds = 30.0
    # A few KiB of templates, nothing compiled: sbuild's root set-up is most of
    # each build, so the stale ones of a run share one root.
    shares_build_root = True

    def _seeds(self, ctx: Context) -> dict[str, seeds.Seed]:
        out = {}
        for name in self.spec(ctx).seeds:
            path = ctx.workspace.seeds_dir / f"{name}.seed"
            if not path.is_file():
                raise ctx.recipe.error(f"seed '{name}' not found ({path})", "native.seeds")
            out[name] = seeds.load(path)
        return out

    def context(self, ctx: Context) -> dict[str, object]:
        return {
            "source": ctx.recipe.name,
            "version": self.version(ctx),
            "upstream_version": self.spec(ctx).version,
            "maintainer": render.MAINTAINER,
            "profile": ctx.profile.template_context(),
            "recipe": {"name": ctx.recipe.name, "description": ctx.recipe.description},
            "seeds": self._seeds(ctx),
        }

    def intent(self, ctx: Context) -> Intent:
        self._seeds(ctx)  # a missing seed is a planning error, not a build error
        return Intent(Action.BUILD, ctx.recipe.name, self.version(ctx),
                      "generated from packaging/" + ctx.recipe.name)

    def inputs(self, ctx: Context) -> dict[str, str]:
        parts = {
            "format": FORMAT,
            "recipe": digest.of_tree(ctx.recipe.directory),
            "profile": digest.of_file(ctx.profile.path),
        }
        for source in self.spec(ctx).copy:
            path = ctx.workspace.stack_dir / source
            parts[f"copy:{source}"] = (digest.of_tree(path) if path.is_dir()
                                       else digest.of_file(path))
        if "upstart-jobs" in self.spec(ctx).generate:
            parts["upstart"] = digest.of_tree(ctx.workspace.upstart_dir)
        for name in self.spec(ctx).seeds:
            parts[f"seed:{name}"] = digest.of_file(ctx.workspace.seeds_dir / f"{name}.seed")
        # A pinned version names fixed bytes: the signed index's sha256 is
        # checked when they are fetched, so the key needs no network.
        for package, version in sorted(self.spec(ctx).unpack.items()):
            parts[f"unpack:{package}"] = version
        return parts

    def _unpack(self, ctx: Context, tree: Path) -> None:
        """The recipe's `unpack`: base-archive packages a native package builds on
        (tasksel-data adds our tasks to Debian's own task list)."""
        for package, version in self.spec(ctx).unpack.items():
            pkg = ctx.upstream.binary(package, version)
            if pkg is None:
                found = ", ".join(ctx.upstream.binary_versions(package)) or "none"
                raise ctx.recipe.error(
                    f"{package} {version} is in none of the configured archives "
                    f"({ctx.upstream.suites_label()}; versions there: {found})",
                    f"native.unpack.{package}")
            deb = ctx.fetcher.fetch_verified(pkg.url, pkg.sha256, pkg.size)
            (tree / "base").mkdir(exist_ok=True)
            ctx.runner.run(["dpkg-deb", "-x", str(deb), str(tree / "base" / package)])

    def render(self, ctx: Context, work: Path) -> Path:
        """Render the source tree; return its directory."""
        version = self.version(ctx)
        template_dir = ctx.recipe.directory / "debian"
        if not template_dir.is_dir():
            raise ctx.recipe.error("native component has no debian/ templates", "strategy")
        tree = work / f"{ctx.recipe.name}-{version}"
        if work.exists():
            shutil.rmtree(work)
        tree.mkdir(parents=True)
        values = self.context(ctx)
        render.render_tree(template_dir, tree / "debian", values)
        render_files(ctx, tree, values)
        for source, target in self.spec(ctx).copy.items():
            src = ctx.workspace.stack_dir / source
            if not src.exists():
                raise ctx.recipe.error(f"'{source}' does not exist in {ctx.workspace.stack_dir}",
                                       f"native.copy.{source}")
            if src.is_dir():
                shutil.copytree(src, tree / target,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copyfile(src, tree / target)
        for name in self.spec(ctx).generate:
            GENERATORS.load(name)().generate(ctx, tree)
        self._unpack(ctx, tree)
        control = render.read_control(tree / "debian")
        if control.source != ctx.recipe.name:
            raise InputError(ctx.recipe.directory / "debian" / "control.j2",
                             f"Source '{control.source}' differs from the component name",
                             key="Source")
        render.write_changelog(
            tree / "debian", control.source, version, ctx.profile.suite,
            [f"Generated by ClusterStack for {ctx.profile.name}."], when=render.changelog_epoch())
        return tree
