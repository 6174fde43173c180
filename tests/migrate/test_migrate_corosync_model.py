"""The corosync model: cluster.conf decides a CorosyncConfig, which is rendered to text
separately, so what corosync.conf says can be checked without parsing text."""

from __future__ import annotations

from cluster_migrate.corosync import (
    CorosyncConfig,
    build_corosync,
    render_corosync,
    render_corosync_conf,
)
from cluster_migrate.parse import parse_file
from cluster_migrate.report import Report

from .migrate_helpers import CONFIGS


def _model(name: str, addresses: dict[str, list[str]] | None = None) -> CorosyncConfig:
    return build_corosync(parse_file(CONFIGS / name), addresses or {}, Report(name))


def test_two_node_model() -> None:
    conf = _model("two_node.conf")
    assert conf.quorum.two_node and conf.quorum.expected_votes is None
    assert conf.quorum.qdevice is None
    assert [n.nodeid for n in conf.nodes] == [1, 2]
    assert all(n.addrs[0] == n.name for n in conf.nodes)


def test_quorum_disk_becomes_a_suggested_qdevice() -> None:
    conf = _model("gfs2.conf")
    assert conf.quorum.qdevice is not None
    assert conf.quorum.qdevice.votes == "2"
    text = render_corosync_conf(conf)
    assert "    # device {" in text and "    #     votes: 2" in text


def test_addresses_override_names_and_rendering_reports_nothing() -> None:
    cluster = parse_file(CONFIGS / "four_node.conf")
    addresses = {n.name: [f"192.0.2.{i}"] for i, n in enumerate(cluster.nodes, start=1)}
    report = Report("four_node.conf")
    conf = build_corosync(cluster, addresses, report)
    assert [n.addrs for n in conf.nodes] == [[f"192.0.2.{i}"] for i in range(1, 5)]
    before = list(report.entries)
    text = render_corosync_conf(conf)
    assert report.entries == before
    assert text == render_corosync(cluster, addresses, Report("again"))
