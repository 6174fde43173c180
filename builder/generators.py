"""Generators: content a native recipe asks to have generated into its tree.

`native.generate: [upstart-jobs]` in a recipe names them; each takes the
component's context and the source tree, and writes under tree/generated/.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .strategy import Context


def upstart_jobs(ctx: Context, tree: Path) -> None:
    from .upstart.package import stage
    stage(ctx.profile.template_context(), tree / "generated",
          upstart_dir=ctx.workspace.upstart_dir, runner=ctx.runner)


def cluster_node_preseed(ctx: Context, tree: Path) -> None:
    """The installer preseed with placeholders, for the package's examples."""
    from .preseed import Preseed, render_preseed
    out = tree / "generated" / "cluster-node.preseed"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_preseed(ctx.workspace.packaging_dir, ctx.profile, Preseed()),
                   encoding="utf-8")


GENERATORS: dict[str, Callable[[Context, Path], None]] = {
    "upstart-jobs": upstart_jobs,
    "cluster-node-preseed": cluster_node_preseed,
}
