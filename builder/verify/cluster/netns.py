"""The private "switch": a network namespace with a bridge that every node plugs into.

The namespace is held by a background `sleep` made by unshare, not by
`ip netns add`, so nothing is left in /run/netns: it disappears with that
process. The host's own network namespace is never touched.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from builder.base.command import Background, Result, Runner

from .config import AddressPlan

BRIDGE = "br0"


def nsenter_net(pid: int) -> list[str]:
    # nsenter --net rather than `ip netns exec`, which remounts /sys.
    return ["nsenter", f"--net=/proc/{pid}/ns/net", "--"]


def wait_own_namespace(holder: Background, timeout: float = 10.0) -> None:
    """Until `holder` has left our network namespace.

    Right after the fork, unshare has not yet called unshare(2): a command entering
    /proc/PID/ns/net then would run in the host's namespace (seen: `ip link set lo
    up` landed there, and the switch's loopback stayed down).
    """
    mine = os.readlink("/proc/self/ns/net")
    deadline = time.monotonic() + timeout
    while True:
        try:
            if os.readlink(f"/proc/{holder.pid}/ns/net") != mine:
                return
        except OSError:
            pass
        if not holder.running() or time.monotonic() > deadline:
            raise RuntimeError(f"the switch's namespace holder (pid {holder.pid}) "
                               "did not enter a network namespace of its own")
        time.sleep(0.01)


class Switch:
    def __init__(self, runner: Runner, plan: AddressPlan, log_path: Path) -> None:
        self.runner = runner
        self.plan = plan
        self.log_path = log_path
        self.holder: Background | None = None

    @property
    def pid(self) -> int:
        if self.holder is None:
            raise RuntimeError("the switch's namespace is not started (Switch.start first)")
        return self.holder.pid

    def run(self, argv: list[str], check: bool = True, timeout: float = 30) -> Result:
        """Run a host command inside the switch's network namespace."""
        return self.runner.run([*nsenter_net(self.pid), *argv], check=check, timeout=timeout)

    def start(self) -> None:
        self.holder = Background(["unshare", "--net", "--", "sleep", "infinity"], self.log_path)
        wait_own_namespace(self.holder)
        self.run(["ip", "link", "set", "lo", "up"])
        self.run(["ip", "link", "add", BRIDGE, "type", "bridge", "stp_state", "0",
                  "forward_delay", "0"])
        self.run(["ip", "addr", "add", f"{self.plan.bridge}/24", "dev", BRIDGE])
        self.run(["ip", "link", "set", BRIDGE, "up"])

    def plug(self, port: str, node_pid: int, address: str) -> None:
        """Connect the node whose init is `node_pid` by a veth pair: `port` here, eth0 there."""
        self.run(["ip", "link", "add", port, "type", "veth", "peer", "name", "eth0",
                  "netns", str(node_pid)])
        self.run(["ip", "link", "set", port, "master", BRIDGE, "up"])
        node = nsenter_net(node_pid)
        self.runner.run([*node, "ip", "link", "set", "lo", "up"])
        self.runner.run([*node, "ip", "addr", "add", f"{address}/24", "dev", "eth0"])
        self.runner.run([*node, "ip", "link", "set", "eth0", "up"])

    def unplug(self, port: str) -> None:
        """Pull the cable: a dead node's namespace must stop answering for its addresses."""
        self.run(["ip", "link", "del", port], check=False)

    def stop(self) -> None:
        if self.holder is not None:
            self.holder.stop()
