"""The generator interface: content a native recipe asks to have generated into its tree.

`native.generate: [upstart-jobs]` in a recipe names them; each takes the
component's context and the source tree, and writes under tree/generated/.
Implementations live in builder/tree/generators/, one module each, registered in
GENERATORS.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING

from builder.base.plugins import Plugin, Registry

if TYPE_CHECKING:
    from .strategy import Context


class Generator(Plugin, ABC):
    @abstractmethod
    def generate(self, ctx: Context, tree: Path) -> None:
        """Write the generated files under tree/generated/."""


GENERATORS: Registry[Generator] = Registry("generator", Generator, f"{__package__}.generators", {
    "upstart-jobs": "upstart_jobs:UpstartJobs",
    "cluster-node-preseed": "cluster_node_preseed:ClusterNodePreseed",
})
