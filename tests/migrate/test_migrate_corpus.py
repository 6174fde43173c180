"""Real cluster.conf files collected from public repositories (corpus/SOURCES): each is
converted by the real command line, its CIB checked by crm_verify, and crm_simulate
must start every service on a node its failover domain prefers.

The preference is read here from cluster.conf itself, not from the converter, so that
a converter bug cannot agree with itself.
"""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from .migrate_helpers import HERE, crm_simulate, crm_verify, run_cli

CORPUS = HERE / "corpus"
FILES = sorted(p.name for p in CORPUS.glob("*.conf"))

_NOT_VALID = ("no cluster name and no <clusternodes>: cluster.rng (ccs_config_validate) and "
              "cman reject it; only rgmanager's offline rg_test reads such a file")
# file: (why the cluster stack itself would not take it, words the error must contain)
EXPECTED_REJECTIONS: dict[str, tuple[str, str]] = {
    "clufter-empty.conf": ("no <clusternodes>: cman cannot form a cluster of no node",
                           "no <clusternodes>"),
    "clufter-test6.conf": ("two nodes with nodeid 1: cman refuses duplicate node ids",
                           "duplicate nodeid 1"),
    "clufter-try_edit.conf": ("a <fencedevice> without agent=: cluster.rng requires it and "
                              "fenced cannot run it", "needs both name= and agent="),
    "rgmanager-cluster.conf": ("<service ref=\"oracle\"> names a <group>, not a <service>: "
                               "rgmanager logs 'Reference to nonexistent resource' and does "
                               "not load it", "names no service in <resources>"),
    "rgmanager-deptest1.conf": (_NOT_VALID, "<cluster> has no name"),
    "rgmanager-deptest2.conf": (_NOT_VALID, "<cluster> has no name"),
    **{f"rgmanager-test{n}.conf": (_NOT_VALID, "<cluster> has no name")
       for n in ("001", "005", "009", "011", "014", "016", "017", "018")},
    # Not a file rgmanager rejects: it logs "#66: Domain 'cluster' specified for resource
    # group clusterdev nonexistent!" and places the service as if it had no domain
    # (fo_domain.c, node_should_start).  The converter refuses a dangling domain on
    # purpose (configs/bad/missing_domain.conf), so the typo is fixed before migrating.
    "deimosfr-rhel4-cluster.conf": ("service clusterdev names domain 'cluster'; only "
                                    "'myfailoverdomain' is defined",
                                    "failover domain 'cluster', which is not defined"),
}
CONVERTED = [f for f in FILES if f not in EXPECTED_REJECTIONS]


def test_corpus_is_documented_and_big_enough() -> None:
    sources = {line.split(" | ", 1)[0]: line for line in
               (CORPUS / "SOURCES").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert sorted(sources) == FILES
    for line in sources.values():
        _name, origin, licence = line.split(" | ")
        assert origin.startswith("github.com/") and licence.strip(), line
    assert len(FILES) >= 35
    assert set(EXPECTED_REJECTIONS) <= set(FILES)
    assert len(CONVERTED) >= 22
    # The placement check below is only as strong as the services it can place.
    assert len([f for f in CONVERTED if _has_domain_bound_service(CORPUS / f)]) >= 7


def _has_domain_bound_service(conf: Path) -> bool:
    rm = ET.parse(conf).getroot().find("rm")
    if rm is None:
        return False
    domains = {fd.get("name") for fd in rm.iter("failoverdomain")}
    return any(el.get("domain") in domains for el in rm if el.tag in ("service", "vm"))


def preferred_nodes(conf: Path) -> dict[str, set[str] | None]:
    """service -> the nodes rgmanager would start it on first (None: not started)."""
    root = ET.parse(conf).getroot()
    nodes = {n.get("name", "") for n in root.iter("clusternode")}
    rm = root.find("rm")
    if rm is None:
        return {}
    domains: dict[str, tuple[bool, bool, list[tuple[str, int]]]] = {}
    for fd in rm.iter("failoverdomain"):
        members = [(m.get("name", ""), int(m.get("priority") or "1"))
                   for m in fd.findall("failoverdomainnode") if m.get("name") in nodes]
        domains[fd.get("name", "")] = (fd.get("ordered") in ("1", "yes"),
                                       fd.get("restricted") in ("1", "yes"), members)
    shared = {(r.tag, r.get("name")): r for r in rm.findall("resources/*")}
    out: dict[str, set[str] | None] = {}
    for el in rm:
        if el.tag not in ("service", "vm"):
            continue
        attrs = dict(el.attrib)
        children = [c for c in el if c.tag != "action"]
        if "ref" in attrs:
            base = shared[("service", attrs.pop("ref"))]
            attrs = {**base.attrib, **attrs}
            children = [c for c in base if c.tag != "action"] + children
        name = attrs.get("name") or el.get("ref", "")
        if (rm.get("disabled") in ("1", "yes") or attrs.get("autostart") in ("0", "no")
                or (el.tag == "service" and not children)):
            out[name] = None
            continue
        domain = domains.get(attrs.get("domain", ""))
        if domain is None:
            out[name] = nodes
            continue
        ordered, restricted, members = domain
        if not members:
            out[name] = None if restricted else nodes
        elif ordered:
            best = min(p for _, p in members)
            out[name] = {n for n, p in members if p == best}
        else:
            out[name] = {n for n, _ in members}
    return out


@pytest.mark.parametrize("name", sorted(EXPECTED_REJECTIONS))
def test_expected_rejection(name: str, tmp_path: Path) -> None:
    _reason, words = EXPECTED_REJECTIONS[name]
    result = run_cli(CORPUS / name, "-o", tmp_path / "out")
    assert result.returncode == 1
    lines = [x for x in result.stderr_tail.splitlines() if x.strip()]
    assert len(lines) == 1 and f"{CORPUS / name}:" in lines[0], lines
    assert words in lines[0], lines
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", CONVERTED)
def test_corpus_file_converts_verifies_and_places(name: str, tmp_path: Path) -> None:
    conf = CORPUS / name
    out = tmp_path / "out"
    result = run_cli(conf, "-o", out)
    assert result.returncode == 0, result.stderr_tail
    cib = out / "cib.xml"
    verify = crm_verify(cib)
    assert verify.returncode == 0, verify.stderr_tail
    assert "error" not in verify.stderr_tail.lower(), verify.stderr_tail
    assert "warning" not in verify.stderr_tail.lower(), verify.stderr_tail

    nodes = [n.get("name", "") for n in ET.parse(conf).getroot().iter("clusternode")]
    sim = crm_simulate(cib, nodes, tmp_path / "after.xml")
    root = ET.parse(cib).getroot()
    stopped = {p.get("id") for p in root.iter("primitive")
               if any(nv.get("name") == "target-role" and nv.get("value") == "Stopped"
                      for nv in p.findall("meta_attributes/nvpair"))}
    for service, preferred in preferred_nodes(conf).items():
        members = sim.groups.get(service, [service])
        if preferred is None:
            assert not sim.nodes_of(service), f"{service} should not start"
            continue
        # A group starts its members in order, so nothing after a member left Stopped
        # (a placeholder the report names) can start either.
        running = list(itertools.takewhile(lambda m: m not in stopped, members))
        if not running:
            continue  # only placeholders left: the report says so, nothing can start
        where = [sim.nodes_of(m) for m in running]
        assert all(len(w) == 1 for w in where), (service, where)
        assert len(set().union(*where)) == 1, (service, where)
        assert set().union(*where) <= preferred, (service, where, preferred)
