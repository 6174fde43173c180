"""A multi-node Pacemaker/Corosync cluster of namespaces, for `clusterstack verify --cluster`.

Entry point: `run_cluster(ClusterOptions) -> ClusterReport` in `harness`.
"""

from .options import ClusterOptions, ClusterReport

__all__ = ["ClusterOptions", "ClusterReport", "run_cluster"]


def __getattr__(name: str):  # pragma: no cover - thin lazy import
    # harness pulls in every module; importing the package for the dataclasses stays cheap.
    if name == "run_cluster":
        from .harness import run_cluster

        return run_cluster
    raise AttributeError(name)
