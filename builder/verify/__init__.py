"""The fresh-root verification, the cluster and the installer harnesses."""
