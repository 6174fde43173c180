"""cluster-migrate: convert a Red Hat Cluster Suite cluster.conf (cman + rgmanager)
into a corosync 3 configuration and a Pacemaker CIB."""

__all__ = ["__version__"]
__version__ = "0.1.0"
