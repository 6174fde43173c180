"""ClusterStack: build, publish and verify an apt archive of the cluster stack."""

__version__ = "0.1.0"
