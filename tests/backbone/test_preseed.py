"""The installer preseed we ship: debconf reads it, it adds our repository
with its key, selects the Cluster node task and bonds two NICs."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.base.command import Runner
from builder.base.errors import ClusterStackError
from builder.stack import profile
from builder.tree.preseed import Bond, Node, Preseed, Repository, render_preseed

ROOT = Path(__file__).parents[2]


def values(**bond: str) -> Preseed:
    return Preseed(node=Node(hostname="node1", domain="cluster.test",
                             ssh_key="ssh-ed25519 AAAAC3Nza test@example"),
                   repository=Repository(url="http://192.0.2.10/trixie",
                                         key_url="http://192.0.2.10/trixie/key.gpg"),
                   bond=Bond(address="192.0.2.21/24", gateway="192.0.2.1", **bond))


def test_preseed_is_valid_debconf_and_says_what_a_node_needs(tmp_path: Path) -> None:
    text = render_preseed(ROOT / "packaging", profile.load(ROOT, "trixie"), values())
    path = tmp_path / "cluster-node.preseed"
    path.write_text(text)
    Runner().run(["debconf-set-selections", "-c", str(path)])
    lines = text.splitlines()
    assert "d-i apt-setup/local0/repository string http://192.0.2.10/trixie trixie main" in lines
    assert "d-i apt-setup/local0/key string http://192.0.2.10/trixie/key.gpg" in lines
    assert "tasksel tasksel/first multiselect standard, ssh-server, cluster-node" in lines
    assert "d-i pkgsel/include string openssh-server chrony ifenslave" in lines
    assert '"    bond-mode active-backup"' in text and "192.0.2.21/24" in text
    assert "REPOSITORY-URL" not in text and "HOSTNAME" not in text


def test_bond_mode_and_slaves_can_be_chosen() -> None:
    text = render_preseed(ROOT / "packaging", profile.load(ROOT, "trixie"),
                          values(mode="802.3ad", slaves="ens3 ens4"))
    assert '"    bond-mode 802.3ad"' in text and "set -- ens3 ens4" in text


@pytest.mark.parametrize(("change", "message"), [
    ({"bond": Bond(address="192.0.2.21/24", gateway="192.0.2.1", mode="lacp")}, "bond mode"),
    ({"bond": Bond(address="not-an-address", gateway="192.0.2.1")}, "bond address"),
    ({"repository": Repository(url="http://x", key_url="")}, "key URL is missing"),
])
def test_bad_values_are_one_clear_error(change: dict[str, object], message: str) -> None:
    from dataclasses import replace
    with pytest.raises(ClusterStackError, match=message):
        replace(values(), **change).check()
