"""Generator `upstart-jobs`: every Upstart job of the profile, rendered and linted."""

from __future__ import annotations

from pathlib import Path

from ..generator import Generator
from ..strategy import Context
from ..upstart.package import stage


class UpstartJobs(Generator):
    name = "upstart-jobs"

    def generate(self, ctx: Context, tree: Path) -> None:
        stage(ctx.profile.template_context(), tree / "generated",
              upstart_dir=ctx.workspace.upstart_dir, runner=ctx.runner)
