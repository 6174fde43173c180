"""The administrator's how-to page as the systemd tier runs it: parsed from the page,
each block real bash, and the harness's values under exactly the page's names."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from builder.verify.cluster import bootstrap, config, howto
from builder.verify.cluster.node import Node
from builder.verify.cluster.options import ClusterOptions

PAGE = Path(__file__).resolve().parents[2] / "docs" / "howto-mariadb-failover.md"


@dataclass
class FakeNode:
    """What nodes_for and harness_values read of a node: its name and address."""

    name: str
    address: str


def nodes() -> list[Node]:
    return cast(list[Node], [FakeNode(f"node{i}", f"192.0.2.{i}") for i in (1, 2, 3)])


def values() -> dict[str, str]:
    return howto.harness_values(nodes(), "192.0.2.100", "http://192.0.2.254:8080",
                                config.FENCE_SOCKET, config.SHARED_MOUNT, config.CLUSTER_NAME,
                                bootstrap.HACLUSTER_PASSWORD,
                                (config.DB_NAME, config.DB_USER, config.DB_PASSWORD))


def test_the_shipped_page_parses_and_does_what_the_issue_asks() -> None:
    page = howto.parse(PAGE)
    text = "\n".join(b.script for b in page.blocks)
    # bootstrap by pcs, a real fence test, storage, then VIP + MariaDB as one group
    for command in ("pcs host auth", "pcs cluster setup", "pcs stonith create",
                    "pcs stonith fence", "ocf:heartbeat:Filesystem", "ocf:heartbeat:IPaddr2",
                    "ocf:heartbeat:mysql", "apt-get install -y ubuntu-cluster"):
        assert command in text, command
    places = [b.where for b in page.blocks]
    assert places[0] is howto.Where.EVERY_NODE and howto.Where.RESOURCE_NODE in places
    howto.check_values(page, values())  # the harness answers every setting, no more


def test_every_block_is_valid_bash_and_the_settings_export_their_names() -> None:
    page = howto.parse(PAGE)
    for block in page.blocks:
        result = subprocess.run(["bash", "-n", "-c", block.script], capture_output=True,
                                text=True)
        assert result.returncode == 0, f"{block.title}: {result.stderr}"
    settings = PAGE.read_text().split("# settings\n", 1)[1].split("```", 1)[0]
    env = subprocess.run(["bash", "-e", "-u", "-c", settings + "env"], capture_output=True,
                         text=True, check=True, env={"PATH": "/usr/bin:/bin"}).stdout
    exported = {line.split("=", 1)[0] for line in env.splitlines()}
    assert set(page.settings) <= exported


def write(tmp_path: Path, body: str) -> Path:
    page = tmp_path / "page.md"
    page.write_text("```sh\n# settings\nexport A=1 B='x y'\n```\n\n" + body)
    return page


def test_a_block_that_says_nowhere_is_refused_with_its_line(tmp_path: Path) -> None:
    page = write(tmp_path, "text\n\n```sh\n# somewhere\necho $A\n```\n")
    with pytest.raises(howto.HowtoError, match=r"page\.md:9: .*'# somewhere'"):
        howto.parse(page)


def test_a_name_the_settings_do_not_set_is_refused(tmp_path: Path) -> None:
    page = write(tmp_path, "```sh\n# on every node\necho $A ${C} $B\nx=1; echo $x\n```\n")
    with pytest.raises(howto.HowtoError, match=r"names the settings do not set: C$"):
        howto.parse(page)


def test_an_unclosed_block_and_a_missing_settings_block_are_refused(tmp_path: Path) -> None:
    with pytest.raises(howto.HowtoError, match="not closed"):
        howto.parse(write(tmp_path, "```sh\n# on every node\necho $A\n"))
    bare = tmp_path / "bare.md"
    bare.write_text("```sh\n# on the first node\ntrue\n```\n")
    with pytest.raises(howto.HowtoError, match="no '# settings' block"):
        howto.parse(bare)


def test_other_code_blocks_are_prose(tmp_path: Path) -> None:
    page = howto.parse(write(tmp_path, "```\nnot run\n```\n```ini\n[x]\n```\n"
                                       "```sh\n# on the first node\necho $A\n```\n"))
    assert [(b.where, b.line) for b in page.blocks] == [(howto.Where.FIRST_NODE, 14)]


def test_blocks_go_where_they_say() -> None:
    every, first, owner = (howto.Block(1, howto.Where.EVERY_NODE, "true\n"),
                           howto.Block(2, howto.Where.FIRST_NODE, "true\n"),
                           howto.Block(3, howto.Where.RESOURCE_NODE, "true\n", "db-server"))
    members = nodes()
    assert [n.name for n in howto.nodes_for(every, members, lambda r: None)] == \
        ["node1", "node2", "node3"]
    assert [n.name for n in howto.nodes_for(first, members, lambda r: None)] == ["node1"]
    assert [n.name for n in howto.nodes_for(owner, members, lambda r: "node2")] == ["node2"]
    with pytest.raises(howto.HowtoError, match="no node runs db-server"):
        howto.nodes_for(owner, members, lambda r: None)


def test_the_harness_values_must_match_the_page(tmp_path: Path) -> None:
    page = howto.parse(write(tmp_path, ""))
    howto.check_values(page, {"A": "1", "B": "2"})
    with pytest.raises(howto.HowtoError, match=r"missing \['B'\], not on the page \['C'\]"):
        howto.check_values(page, {"A": "1", "C": "3"})


def test_the_howto_is_a_systemd_pcs_run_with_a_repository() -> None:
    base: dict[str, Any] = {"howto": PAGE, "howto_repo": Path("/srv/repo"), "init": "systemd",
                            "shell": "pcs"}
    ClusterOptions(**base)
    for change in ({"init": "script"}, {"shell": "crmsh"}, {"scenario": "short"}):
        with pytest.raises(ValueError, match="systemd tier with pcs"):
            ClusterOptions(**{**base, **change})
    with pytest.raises(ValueError, match="published repository"):
        ClusterOptions(**{**base, "howto_repo": None})
