"""Every test configuration, checked by Pacemaker's and corosync's own tools."""

from __future__ import annotations

from pathlib import Path

import pytest

from .migrate_helpers import (
    GOOD_CONFIGS,
    Converted,
    corosync_test,
    crm_simulate,
    crm_verify,
    expected_placement,
    node_names,
)


def test_there_are_enough_varied_configs() -> None:
    # the list: two-node, four-node, ordered/restricted domains, shared resources,
    # nested NFS, several fence levels, DRBD, GFS2, a VM service
    for name in ("two_node.conf", "four_node.conf", "nfs_nested.conf", "fence_levels.conf",
                 "drbd.conf", "gfs2.conf", "vm.conf"):
        assert name in GOOD_CONFIGS
    assert len(GOOD_CONFIGS) >= 10


@pytest.mark.parametrize("name", GOOD_CONFIGS)
def test_crm_verify_accepts_cib(converted: dict[str, Converted], name: str) -> None:
    result = crm_verify(converted[name].cib)
    assert result.returncode == 0, result.stderr_tail
    assert "error" not in result.stderr_tail.lower(), result.stderr_tail


@pytest.mark.parametrize("name", GOOD_CONFIGS)
def test_crm_simulate_places_services_on_preferred_node(
        converted: dict[str, Converted], name: str, tmp_path: Path) -> None:
    c = converted[name]
    sim = crm_simulate(c.cib, node_names(c.conf), tmp_path / "after.xml")
    stopped_on_purpose = {p.get("id") for p in c.cib_root().iter("primitive")
                          if any(nv.get("name") == "target-role" and nv.get("value") == "Stopped"
                                 for nv in p.iter("nvpair"))}
    for service, preferred in expected_placement(c.conf).items():
        members = sim.groups.get(service, [service])
        if preferred is None:
            assert not sim.nodes_of(service), f"{service} should be stopped"
            continue
        running = [m for m in members if m not in stopped_on_purpose]
        assert running, service
        where = [sim.nodes_of(m) for m in running]
        # one node for the whole group, and it is one the failover domain prefers
        assert all(len(w) == 1 for w in where), (service, where)
        assert len(set().union(*where)) == 1, (service, where)
        assert set().union(*where) <= preferred, (service, where, preferred)


@pytest.mark.parametrize("name", GOOD_CONFIGS)
def test_corosync_accepts_corosync_conf(converted: dict[str, Converted], name: str,
                                        tmp_path: Path) -> None:
    result = corosync_test(converted[name].out / "corosync.conf", tmp_path)
    assert result.returncode == 0, result.stderr_tail


def test_corosync_rejects_a_broken_conf(converted: dict[str, Converted], tmp_path: Path) -> None:
    # the check above can fail: a link missing on one node is refused by corosync -t
    text = (converted["two_node.conf"].out / "corosync.conf").read_text()
    broken = tmp_path / "broken.conf"
    broken.write_text(text.replace("        ring1_addr: 198.51.100.2\n", "", 1))
    (tmp_path / "scratch").mkdir()
    assert corosync_test(broken, tmp_path / "scratch").returncode != 0


def test_crm_verify_rejects_a_broken_cib(converted: dict[str, Converted], tmp_path: Path) -> None:
    text = converted["two_node.conf"].cib.read_text()
    broken = tmp_path / "cib.xml"
    broken.write_text(text.replace('rsc="www"', 'rsc="no-such-resource"', 1))
    assert crm_verify(broken).returncode != 0


def test_ordered_domain_fails_back(converted: dict[str, Converted], tmp_path: Path) -> None:
    # two_node: ordered, restricted, nofailback=0, node2 preferred
    c = converted["two_node.conf"]
    first = crm_simulate(c.cib, ["node1"], tmp_path / "1.xml", down=("node2",))
    assert first.nodes_of("www") == {"node1"}
    second = crm_simulate(first.saved, ["node2"], tmp_path / "2.xml")
    assert second.nodes_of("www") == {"node2"}


def test_nofailback_domain_stays(converted: dict[str, Converted], tmp_path: Path) -> None:
    # four_node db: ordered, restricted, nofailback=1, alpha preferred
    c = converted["four_node.conf"]
    first = crm_simulate(c.cib, ["bravo", "charlie", "delta"], tmp_path / "1.xml",
                         down=("alpha",))
    assert first.nodes_of("db") == {"bravo"}
    second = crm_simulate(first.saved, ["alpha"], tmp_path / "2.xml")
    assert second.nodes_of("db") == {"bravo"}


def test_restricted_domain_never_runs_elsewhere(converted: dict[str, Converted],
                                                tmp_path: Path) -> None:
    c = converted["four_node.conf"]
    sim = crm_simulate(c.cib, ["charlie", "delta"], tmp_path / "1.xml",
                       down=("alpha", "bravo"))
    assert sim.nodes_of("db") == set()  # db_dom = alpha, bravo only
    # web's domain is unrestricted: with charlie up it still runs there
    assert sim.nodes_of("web") == {"charlie"}


def test_unrestricted_domain_falls_back_to_any_node(converted: dict[str, Converted],
                                                    tmp_path: Path) -> None:
    c = converted["four_node.conf"]
    sim = crm_simulate(c.cib, ["bravo"], tmp_path / "1.xml",
                       down=("alpha", "charlie", "delta"))
    assert sim.nodes_of("web") == {"bravo"}  # not a member of web_dom, but allowed


def test_exclusive_service_has_its_node_alone(converted: dict[str, Converted],
                                              tmp_path: Path) -> None:
    c = converted["four_node.conf"]
    sim = crm_simulate(c.cib, node_names(c.conf), tmp_path / "1.xml")
    (mail_node,) = sim.nodes_of("mail")
    for other in ("db", "web", "batch", "watch"):
        assert mail_node not in sim.nodes_of(other)
    # with only two nodes up, mail cannot find an empty node and stays stopped
    sim2 = crm_simulate(c.cib, ["delta", "alpha"], tmp_path / "2.xml",
                        down=("bravo", "charlie"))
    assert sim2.nodes_of("web") and sim2.nodes_of("mail") <= {"delta"}
    assert not (sim2.nodes_of("mail") & (sim2.nodes_of("web") | sim2.nodes_of("db")))


def test_hard_dependency_runs_with_and_after_its_target(converted: dict[str, Converted],
                                                        tmp_path: Path) -> None:
    c = converted["four_node.conf"]
    sim = crm_simulate(c.cib, node_names(c.conf), tmp_path / "1.xml")
    assert sim.nodes_of("watch") == sim.nodes_of("db") == {"alpha"}


def test_drbd_promoted_where_the_domain_prefers(converted: dict[str, Converted],
                                                tmp_path: Path) -> None:
    c = converted["drbd.conf"]
    sim = crm_simulate(c.cib, node_names(c.conf), tmp_path / "1.xml")
    assert sim.role_nodes("drbd-mysql", "Promoted") == {"db-b"}
    assert sim.role_nodes("drbd-mysql", "Unpromoted") == {"db-a"}
    assert sim.nodes_of("mysql") == {"db-b"}
    # db-b gone: DRBD is promoted on db-a and the service follows it
    sim2 = crm_simulate(sim.saved, [], tmp_path / "2.xml", down=("db-b",))
    assert sim2.role_nodes("drbd-mysql", "Promoted") == {"db-a"}
    assert sim2.nodes_of("mysql") == {"db-a"}


def test_gfs2_clones_run_everywhere(converted: dict[str, Converted], tmp_path: Path) -> None:
    c = converted["gfs2.conf"]
    sim = crm_simulate(c.cib, node_names(c.conf), tmp_path / "1.xml")
    everyone = set(node_names(c.conf))
    for rsc in ("dlm", "lvmlockd", "clusterfs-shared", "lvm-vg_shared-lv_shared", "nfs-daemon"):
        assert sim.nodes_of(rsc) == everyone, rsc
    assert len(sim.running["clusterfs-shared"]) == 3


def test_unknown_agent_left_stopped(converted: dict[str, Converted], tmp_path: Path) -> None:
    c = converted["unknown_agent.conf"]
    sim = crm_simulate(c.cib, node_names(c.conf), tmp_path / "1.xml")
    assert sim.nodes_of("ASEHAagent-sybase") == set()
    assert sim.nodes_of("ip-172.16.1.10") == {"o1"}


def test_rm_disabled_and_autostart_0_stay_stopped(converted: dict[str, Converted],
                                                  tmp_path: Path) -> None:
    c = converted["rm_disabled.conf"]
    sim = crm_simulate(c.cib, node_names(c.conf), tmp_path / "1.xml")
    assert sim.nodes_of("web") == set()
    # only the services are stopped, fencing still runs
    assert sim.nodes_of("fence-ipmi-q1") and sim.nodes_of("fence-ipmi-q2")
    c4 = converted["four_node.conf"]
    sim4 = crm_simulate(c4.cib, node_names(c4.conf), tmp_path / "2.xml")
    assert sim4.nodes_of("reports") == set()
