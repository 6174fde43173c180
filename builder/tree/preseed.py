"""The Debian installer preseed for a cluster node.

One template (packaging/ubuntu-cluster/templates/cluster-node.preseed.j2)
serves two readers: ubuntu-cluster ships it with placeholders as an example,
and `clusterstack preseed` fills it in for one repository and one node.
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass, field
from pathlib import Path

from builder.base.errors import ClusterStackError
from builder.stack.profile import Profile

from . import render

TEMPLATE = Path("ubuntu-cluster/templates/cluster-node.preseed.j2")
BOND_MODES = ("active-backup", "802.3ad", "balance-alb", "balance-tlb", "balance-xor",
              "broadcast", "balance-rr")


@dataclass(frozen=True)
class Node:
    hostname: str = "HOSTNAME"
    domain: str = "DOMAIN"
    # "*" locks the password: root logs in by the ssh key only.
    root_password_crypted: str = "*"
    ssh_key: str = "SSH-PUBLIC-KEY"


@dataclass(frozen=True)
class Mirror:
    hostname: str = "deb.debian.org"  # may carry a port: a local apt-cacher-ng as mirror
    directory: str = "/debian"
    proxy: str = ""
    # empty: the installer's default (security.debian.org); else host[:port]
    security_host: str = ""
    security_path: str = "/debian-security"


@dataclass(frozen=True)
class Repository:
    url: str = "REPOSITORY-URL"
    key_url: str = "REPOSITORY-URL/clusterstack-archive-keyring.gpg"


@dataclass(frozen=True)
class Bond:
    address: str = "ADDRESS/PREFIX"
    gateway: str = "GATEWAY"
    mode: str = "active-backup"
    slaves: str = ""                 # empty: the first two NICs the installed system has


class PreseedError(ClusterStackError):
    """A value the preseed cannot work with: bad input, like a bad recipe."""

    exit_code = 2


@dataclass(frozen=True)
class Install:
    """How the installer itself runs; the defaults are those of a real node."""

    interface: str = "auto"          # the NIC netcfg configures while installing
    # None: netcfg asks when DHCP gives none; "" preseeds none (all addresses numeric)
    nameservers: str | None = None
    early_command: str = ""          # preseed/early_command, one shell line
    late_commands: tuple[str, ...] = ()  # appended to preseed/late_command


@dataclass(frozen=True)
class Preseed:
    node: Node = field(default_factory=Node)
    mirror: Mirror = field(default_factory=Mirror)
    repository: Repository = field(default_factory=Repository)
    bond: Bond = field(default_factory=Bond)
    install: Install = field(default_factory=Install)

    def check(self) -> None:
        """The values a preseed cannot work without, checked before it is written."""
        if self.bond.mode not in BOND_MODES:
            raise PreseedError(f"bond mode '{self.bond.mode}' is not one of "
                                    f"{', '.join(BOND_MODES)}")
        try:
            ipaddress.ip_interface(self.bond.address)
            ipaddress.ip_address(self.bond.gateway)
        except ValueError as exc:
            raise PreseedError(f"bond address or gateway: {exc}") from exc
        if not self.repository.key_url:
            raise PreseedError("the repository's key URL is missing: the installer "
                                    "refuses an unsigned local repository")
        for command in (self.install.early_command, *self.install.late_commands):
            if "\n" in command:
                raise PreseedError(f"installer command on more than one line: {command!r}")
        if "'" in self.node.ssh_key or "\n" in self.node.ssh_key:
            raise PreseedError("the ssh key must be one line without quotes")


def render_preseed(packaging_dir: Path, profile: Profile, values: Preseed) -> str:
    context: dict[str, object] = dict(asdict(values))
    context["profile"] = profile.template_context() | {"description": profile.description,
                                                       "components": list(profile.components)}
    return render.render_file(packaging_dir / TEMPLATE, context)
