"""The kernel tier of `clusterstack verify --cluster`: two qemu guests with DRBD, MariaDB
and real fencing (`--vm`). Entry point: `run_vm_cluster(VmOptions) -> VmReport`."""

from .harness import VmOptions, VmReport, run_vm_cluster, table

__all__ = ["VmOptions", "VmReport", "run_vm_cluster", "table"]
