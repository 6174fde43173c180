"""A multi-node Pacemaker/Corosync cluster of namespaces, for `clusterstack verify --cluster`.

Entry point: `run_cluster(ClusterOptions) -> ClusterReport`.
"""

from .harness import run_cluster
from .options import ClusterOptions, ClusterReport, FenceEvent

__all__ = ["ClusterOptions", "ClusterReport", "FenceEvent", "run_cluster"]
