"""Issue 13: dlm_stonith must load the libstonithd that our archive ships, and the fencer
must register its devices again after a CIB with an empty nodes section.

Render only (no build): our pacemaker tree carries upstream's so-name fix and its
headers then name the sonames of the library packages next to them, and the fencer fix;
dlm is packaged from its tarball against that pacemaker-dev; the VM tier's parsers.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from debian.changelog import Changelog
from debian.deb822 import Deb822, PkgRelation
from debian.debian_support import version_compare

from builder.cli import main
from builder.sources import patches
from builder.verify.cluster.vm.scenario import (
    configuration_without_nodes,
    lockspaces_waiting_for_fencing,
    registered_devices,
)

ROOT = Path(__file__).parents[2]
PATCH = "0001-libraries-update-version-numbers-in-so-names.patch"
FENCER_PATCH = "0002-fencer-refresh-cib-devices-on-change-to-nodes-section.patch"
DEBIAN_DLM = "4.3.0-3"  # trixie's dlm, whose dlm_stonith names libstonithd.so.26


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("render-trixie")
    assert main(["--stack", str(ROOT), "--out", str(out), "render",
                 "--profile", "trixie"]) == 0
    return out / "trixie" / "work"


def tree(work: Path, name: str) -> Path:
    (found,) = (work / name).glob(f"{name}-*")
    return found


def packages(source_tree: Path) -> list[str]:
    paragraphs = Deb822.iter_paragraphs((source_tree / "debian/control").read_text())
    return [p["Package"] for p in paragraphs if "Package" in p]


def header_define(source_tree: Path, header: str, name: str) -> str:
    text = (source_tree / "include/crm" / header).read_text()
    (value,) = re.findall(rf'^#\s*define {name} "([^"]+)"', text, re.M)
    return value


def test_patch_is_dep3_and_in_the_series() -> None:
    text = (ROOT / "patches/pacemaker" / PATCH).read_text()
    head = text.split("\n---\n", 1)[0]
    for field in ("Description:", "Author:", "Origin: upstream,", "Applied-Upstream:"):
        assert field in head
    assert "dc802bfe4bebd89448b53e42dcc5d022905a4215" in head
    # Ours first, in this order; others (e.g. the unit's condition) may follow.
    assert patches.read_series(ROOT / "patches/pacemaker")[:2] == [PATCH, FENCER_PATCH]
    fencer = (ROOT / "patches/pacemaker" / FENCER_PATCH).read_text().split("\n---\n", 1)[0]
    for field in ("Description:", "Author:", "Origin: other,", "Bug:", "Forwarded:"):
        assert field in fencer
    assert "757cce1cbaaae60c39a41b728ab4f97f7dc6fa95" in fencer


def test_pacemaker_headers_name_the_shipped_sonames(work: Path) -> None:
    pm = tree(work, "pacemaker")
    series = (pm / "debian/patches/series").read_text().split()
    ours = [p for p in series if p.startswith(patches.PREFIX)]
    assert ours[:2] == [patches.PREFIX + PATCH, patches.PREFIX + FENCER_PATCH]
    assert series.index(ours[0]) > 0      # after Debian's own patches
    names = packages(pm)
    # Debian names each library package after its soname: libstonithd56 ships .so.56
    (stonithd,) = [n for n in names if re.fullmatch(r"libstonithd\d+", n)]
    (cib,) = [n for n in names if re.fullmatch(r"libcib\d+", n)]
    assert header_define(pm, "stonith-ng.h", "STONITH_LIBRARY") == \
        f"libstonithd.so.{stonithd.removeprefix('libstonithd')}" == "libstonithd.so.56"
    assert header_define(pm, "cib.h", "CIB_LIBRARY") == \
        f"libcib.so.{cib.removeprefix('libcib')}"


def test_fencer_refreshes_devices_on_a_nodes_change(work: Path) -> None:
    fenced = tree(work, "pacemaker") / "daemons/fenced"
    cib = (fenced / "fenced_cib.c").read_text()
    body = cib[cib.index("update_cib_stonith_devices(const char *event"):]
    body = body[:body.index("\n}\n")]
    assert 'strstr(xpath, "/" PCMK_XE_NODES)' in body
    # the scheduler's fake local node (created after the resources are unpacked, so in
    # no allowed-nodes table) is no longer asked for: the fencer keeps the name itself
    assert "local_node_name" not in (fenced / "fenced_scheduler.c").read_text()
    assert "static char *local_node_name" in (fenced / "pacemaker-fenced.c").read_text()


def test_dlm_is_packaged_against_our_pacemaker(work: Path) -> None:
    dlm = tree(work, "dlm")
    # Debian's binary split and names, so that gfs2-utils, ocfs2-tools and lvm2 resolve
    assert packages(dlm) == ["dlm-controld", "libdlm3", "libdlm-dev", "libdlmcontrol3",
                             "libdlmcontrol-dev"]
    version = str(Changelog((dlm / "debian/changelog").read_text()).version)
    assert version == "4.3.0-4+cluster13"
    assert version_compare(version, DEBIAN_DLM) > 0  # apt prefers ours
    (source,) = [p for p in Deb822.iter_paragraphs((dlm / "debian/control").read_text())
                 if "Source" in p]
    relations = PkgRelation.parse_relations(source["Build-Depends"])
    (pacemaker_dev,) = [r[0] for r in relations if r[0]["name"] == "pacemaker-dev"]
    # our rebuild (3.0.0-2+cluster13) carries the fixed header; Debian's 3.0.0-2 does not
    assert pacemaker_dev["version"] == (">=", "3.0.0-2+cluster13")
    assert version_compare("3.0.0-2", pacemaker_dev["version"][1]) < 0
    rules = (dlm / "debian/rules").read_text()
    assert "dlm_stonith check" in rules and "SONAME" in rules
    assert (dlm / "debian/dlm-controld.dlm.service").is_file()


LS_RECOVERED = """\
dlm lockspaces
name          gfs0
id            0x7a4a0a3d
flags         0x00000000
change        member 1 joined 0 remove 1 failed 1 seq 2,2
members       2
"""

LS_WAITING = """\
dlm lockspaces
name          gfs0
id            0x7a4a0a3d
flags         0x00000004 kern_stop
change        member 2 joined 1 remove 0 failed 0 seq 1,1
members       1 2
new change    member 1 joined 0 remove 1 failed 1 seq 2,2
new status    wait fencing
new members   2
"""


def test_wait_fencing_parser() -> None:
    assert lockspaces_waiting_for_fencing(LS_RECOVERED) == []
    assert lockspaces_waiting_for_fencing(LS_WAITING) == ["gfs0"]
    other = LS_WAITING.replace("wait fencing", "wait messages 0")
    assert lockspaces_waiting_for_fencing(other) == []
    assert lockspaces_waiting_for_fencing("") == []


CONFIGURATION = """\
<configuration>
  <crm_config/>
  <nodes>
    <node id="1" uname="node1"/>
    <node id="2" uname="node2"/>
  </nodes>
  <resources>
    <primitive id="fence-nsnode" class="stonith" type="fence_nsnode"/>
    <primitive id="vip" class="ocf" provider="heartbeat" type="IPaddr2"/>
  </resources>
  <constraints/>
</configuration>
"""


def test_configuration_without_nodes() -> None:
    import xml.etree.ElementTree as ET

    out = ET.fromstring(configuration_without_nodes(CONFIGURATION, "fence-nsnode", "x"))
    nodes = out.find("nodes")
    assert nodes is not None and len(nodes) == 0
    # a change in the resources section too: what makes 3.0.0's fencer recompute
    assert out.find(".//primitive[@id='fence-nsnode']").get("description") == "x"
    assert out.find(".//primitive[@id='vip']").get("description") is None
    with pytest.raises(Exception, match="no primitive"):
        configuration_without_nodes(CONFIGURATION, "absent", "x")


def test_registered_devices() -> None:
    assert registered_devices("fence-nsnode\n1 fence device found\n") == ["fence-nsnode"]
    assert registered_devices("0 fence devices found\n") == []
    assert registered_devices(" a\n b\n2 fence devices found\n") == ["a", "b"]
