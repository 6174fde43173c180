"""Generator `cluster-node-preseed`: the installer preseed with placeholders,
for the examples of the package that ships it."""

from __future__ import annotations

from pathlib import Path

from ..generator import Generator
from ..preseed import Preseed, render_preseed
from ..strategy import Context


class ClusterNodePreseed(Generator):
    name = "cluster-node-preseed"

    def generate(self, ctx: Context, tree: Path) -> None:
        out = tree / "generated" / "cluster-node.preseed"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_preseed(ctx.workspace.packaging_dir, ctx.profile, Preseed()),
                       encoding="utf-8")
