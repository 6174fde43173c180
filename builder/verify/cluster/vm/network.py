"""The guests' private network: the namespace tier's switch, with a tap per guest.

The switch is a network namespace held by a background process (nothing in
/run/netns), with bridge br0 at 192.0.2.254. qemu runs inside it, so the taps,
the bridge and every test address exist only there; the host's own network
namespace is never touched.
"""

from __future__ import annotations

from pathlib import Path

from builder.base.command import Result, Runner

from ..config import AddressPlan
from ..netns import BRIDGE, Switch, nsenter_net


def tap_name(index: int) -> str:
    return f"tap-g{index + 1}"


class VmNetwork:
    def __init__(self, runner: Runner, plan: AddressPlan, log_path: Path) -> None:
        self.plan = plan
        self.switch = Switch(runner, plan, log_path)

    def start(self) -> None:
        self.switch.start()

    @property
    def pid(self) -> int:
        return self.switch.pid

    def prefix(self) -> list[str]:
        """Run a host command (qemu, the SQL client) inside the switch's namespace."""
        return nsenter_net(self.pid)

    def run(self, argv: list[str], check: bool = True, timeout: float = 30) -> Result:
        return self.switch.run(argv, check=check, timeout=timeout)

    def add_tap(self, name: str) -> None:
        """A tap on the bridge, made before qemu opens it (ifname=, script=no)."""
        self.run(["ip", "tuntap", "add", "dev", name, "mode", "tap"])
        self.run(["ip", "link", "set", name, "master", BRIDGE, "up"])

    def unplug(self, name: str) -> None:
        self.run(["ip", "link", "del", name], check=False)

    def stop(self) -> None:
        self.switch.stop()

    def alive(self) -> bool:
        return self.switch.holder is not None and self.switch.holder.running()
