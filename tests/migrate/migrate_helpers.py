"""Shared helpers for the cluster-migrate tests: convert a fixture, run Pacemaker's and
corosync's own tools on the result, and read what they say.

The tools are required, not optional: if crm_verify, crm_simulate or corosync is missing
the tests fail (the Makefile's host-setup installs them).
"""

from __future__ import annotations

import shutil
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from builder.base.command import Result, Runner

HERE = Path(__file__).parent
CONFIGS = HERE / "configs"
BAD = CONFIGS / "bad"
GOOD_CONFIGS = sorted(p.name for p in CONFIGS.glob("*.conf"))
REPO = HERE.parent.parent

RUNNER = Runner()


def tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        pytest.fail(f"{name} is not installed; the migration tests need Pacemaker's and "
                    f"corosync's own tools (apt-get install pacemaker-cli-utils corosync)")
    return path


def node_names(conf: Path) -> list[str]:
    return [n.get("name", "") for n in ET.parse(conf).getroot().iter("clusternode")]


def link_addresses(conf: Path) -> list[str]:
    """--address options giving every node documentation-range addresses, with a second
    link where cluster.conf has altnames."""
    nodes = list(ET.parse(conf).getroot().iter("clusternode"))
    two = all(n.find("altname") is not None for n in nodes)
    return [f"--address={n.get('name')}=192.0.2.{i + 1}"
            + (f",198.51.100.{i + 1}" if two else "")
            for i, n in enumerate(nodes)]


def run_cli(*args: str | Path) -> Result:
    """The real command line, as an administrator runs it."""
    return RUNNER.run([sys.executable, "-m", "cluster_migrate", *map(str, args)],
                      cwd=REPO, check=False, timeout=60)


@dataclass
class Converted:
    conf: Path
    out: Path
    result: Result

    @property
    def cib(self) -> Path:
        return self.out / "cib.xml"

    def cib_root(self) -> ET.Element:
        return ET.parse(self.cib).getroot()

    def text(self, name: str) -> str:
        return (self.out / name).read_text()

    def report(self) -> list[dict]:
        import json
        return json.loads(self.text("report.json"))["entries"]


def convert(conf_name: str, tmp: Path, *extra: str) -> Converted:
    conf = CONFIGS / conf_name
    out = tmp / conf_name.removesuffix(".conf")
    result = run_cli(conf, "-o", out, *link_addresses(conf), *extra)
    assert result.returncode == 0, result.stderr_tail
    return Converted(conf, out, result)


# ---- Pacemaker's tools ----------------------------------------------------------------

def crm_verify(cib: Path) -> Result:
    return RUNNER.run([tool("crm_verify"), "--xml-file", cib, "-V"], check=False, timeout=60)


@dataclass
class Simulation:
    # resource id -> [(node, role)] for every running instance
    running: dict[str, list[tuple[str, str]]]
    # group id -> member ids
    groups: dict[str, list[str]]
    saved: Path
    raw: str

    def nodes_of(self, rsc: str) -> set[str]:
        if rsc in self.groups:
            return set().union(*(self.nodes_of(m) for m in self.groups[rsc]))
        return {n for n, _ in self.running.get(rsc, [])}

    def role_nodes(self, rsc: str, role: str) -> set[str]:
        return {n for n, r in self.running.get(rsc, []) if r == role}


def crm_simulate(cib: Path, up: list[str], save_as: Path, down: tuple[str, ...] = ()) -> Simulation:
    """Bring `up` online (with quorum) and run the scheduler until the cluster settles."""
    argv: list[str | Path] = [tool("crm_simulate"), "--simulate", "--xml-file", cib,
                              "--quorum", "1", "--output-as", "xml", "--save-output", save_as]
    for node in up:
        argv += ["--node-up", node]
    for node in down:
        argv += ["--node-down", node]
    result = RUNNER.run(argv, check=False, timeout=60)
    assert result.returncode == 0, result.stderr_tail
    root = ET.fromstring(result.stdout)
    revised = root.find("revised_cluster_status")
    assert revised is not None, result.stdout[-2000:]
    running: dict[str, list[tuple[str, str]]] = {}
    groups: dict[str, list[str]] = {}
    for group in revised.iter("group"):
        groups[group.get("id", "")] = [r.get("id", "") for r in group.findall("resource")]
    for res in revised.iter("resource"):
        rid = res.get("id", "")
        for node in res.findall("node"):
            running.setdefault(rid, []).append((node.get("name", ""), res.get("role", "")))
    return Simulation(running, groups, save_as, result.stdout)


# ---- corosync -------------------------------------------------------------------------

def corosync_test(conf: Path, scratch: Path) -> Result:
    """`corosync -t` on the generated file, exactly as written.

    corosync -t insists on reading /etc/corosync/authkey when crypto is on and writes
    to /var/log/corosync; both are bind-mounted from scratch folders in a private mount
    namespace so that the host's own corosync setup is neither needed nor touched.
    """
    keydir = scratch / "etc-corosync"
    logdir = scratch / "log-corosync"
    keydir.mkdir()
    logdir.mkdir()
    key = keydir / "authkey"
    key.write_bytes(bytes(range(256)))
    key.chmod(0o400)
    script = (f"mount --bind {keydir} /etc/corosync && "
              f"mount --bind {logdir} /var/log/corosync && "
              f"exec {tool('corosync')} -t -c {conf}")
    return RUNNER.run([tool("unshare"), "--mount", "--propagation", "private", "sh", "-c",
                       script], check=False, timeout=60)


# ---- what cluster.conf itself asks for (read independently of the converter) ---------

def expected_placement(conf: Path) -> dict[str, set[str] | None]:
    """service -> nodes its failover domain prefers (None: must not run)."""
    root = ET.parse(conf).getroot()
    nodes = set(node_names(conf))
    rm = root.find("rm")
    assert rm is not None
    preferred: dict[str, set[str]] = {}
    for fd in rm.iter("failoverdomain"):
        members = [(n.get("name", ""), int(n.get("priority", "1")))
                   for n in fd.findall("failoverdomainnode")]
        if fd.get("ordered") == "1":
            best = min(p for _, p in members)
            preferred[fd.get("name", "")] = {n for n, p in members if p == best}
        else:
            preferred[fd.get("name", "")] = {n for n, _ in members}
    out: dict[str, set[str] | None] = {}
    for el in rm:
        if el.tag not in ("service", "vm"):
            continue
        name = el.get("name", "")
        if (rm.get("disabled") == "1" or el.get("autostart") == "0"
                or (el.tag == "service" and not [c for c in el if c.tag != "action"])):
            out[name] = None
        elif el.get("domain"):
            out[name] = preferred[el.get("domain", "")]
        else:
            out[name] = nodes
    return out


def primitive_meta(cib_root: ET.Element, rid: str) -> dict[str, str]:
    prim = cib_root.find(f".//primitive[@id='{rid}']")
    assert prim is not None, rid
    return {nv.get("name", ""): nv.get("value", "")
            for nv in prim.findall("meta_attributes/nvpair")}


def params(cib_root: ET.Element, rid: str) -> dict[str, str]:
    prim = cib_root.find(f".//primitive[@id='{rid}']")
    assert prim is not None, rid
    return {nv.get("name", ""): nv.get("value", "")
            for nv in prim.findall("instance_attributes/nvpair")}


def meta(cib_root: ET.Element, rid: str) -> dict[str, str]:
    el = cib_root.find(f".//*[@id='{rid}']")
    assert el is not None, rid
    return {nv.get("name", ""): nv.get("value", "")
            for nv in el.findall("meta_attributes/nvpair")}


def line_of(conf: Path, needle: str) -> int:
    """1-based line of the first line of conf containing needle."""
    for i, line in enumerate(conf.read_text().splitlines(), start=1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in {conf}")


# ---- comparing two CIBs (ours and the one crm.sh builds) -------------------------------

def _nv(el: ET.Element | None, path: str) -> dict[str, str]:
    if el is None:
        return {}
    return {nv.get("name", ""): nv.get("value", "") for nv in el.findall(f"{path}/nvpair")}


def _score(value: str | None) -> str | None:
    # crmsh writes "inf"/"+INFINITY" spellings; Pacemaker reads them all as INFINITY
    if value is None:
        return None
    return {"inf": "INFINITY", "+inf": "INFINITY", "+INFINITY": "INFINITY",
            "-inf": "-INFINITY"}.get(value, value)


def _interval(value: str | None) -> str:
    value = value or "0"
    return "0" if value in ("0", "0s") else value


def cib_summary(root: ET.Element) -> dict[str, object]:
    """The configuration of a CIB, without the ids of nvpairs and other generated noise."""
    conf = root.find("configuration")
    assert conf is not None
    prims = {}
    for p in conf.iter("primitive"):
        ops = sorted(
            (op.get("name", ""), _interval(op.get("interval")), op.get("timeout") or "",
             op.get("role") or "", op.get("on-fail") or "",
             tuple(sorted(_nv(op, "instance_attributes").items())))
            for op in p.iter("op"))
        prims[p.get("id")] = (p.get("class"), p.get("provider"), p.get("type"),
                              _nv(p, "instance_attributes"), _nv(p, "meta_attributes"), ops)
    groups = {g.get("id"): ([p.get("id") for p in g.findall("primitive")],
                            _nv(g, "meta_attributes")) for g in conf.iter("group")}
    clones = {c.get("id"): ([x.get("id") for x in c if x.tag in ("primitive", "group")],
                            _nv(c, "meta_attributes")) for c in conf.iter("clone")}
    constraints = set()
    cons = conf.find("constraints")
    for c in cons if cons is not None else []:
        attrs = {k: v for k, v in c.attrib.items()}
        if "score" in attrs:
            attrs["score"] = _score(attrs["score"]) or ""
        if c.tag == "rsc_order":
            # Pacemaker's defaults; pcs writes them out, the CIB leaves them implied
            attrs.setdefault("kind", "Mandatory")
            attrs.setdefault("first-action", "start")
            attrs.setdefault("then-action", "start")
        if c.tag == "rsc_colocation":
            attrs.setdefault("rsc-role", "Started")
            attrs.setdefault("with-rsc-role", "Started")
        constraints.add((c.tag, tuple(sorted(attrs.items()))))
    levels = {(lv.get("target"), lv.get("index"), lv.get("devices"))
              for lv in conf.iter("fencing-level")}
    return {
        "primitives": prims, "groups": groups, "clones": clones,
        "constraints": constraints, "fencing": levels,
        "properties": _nv(conf.find("crm_config"), "cluster_property_set"),
        "rsc_defaults": _nv(conf.find("rsc_defaults"), "meta_attributes"),
    }


def run_crm_script(script: Path, scratch: Path) -> tuple[Result, Path]:
    """Run crm.sh against an empty CIB file instead of a live cluster.

    crmsh and cibadmin honour CIB_file. crmsh's agent checks are switched off
    (check_frequency=never) because the fence agents and systemd units the fixtures
    name are not installed here; syntax and the CIB it commits are still crmsh's own.
    """
    tool("crm")
    home = scratch / "home"
    (home / ".config" / "crm").mkdir(parents=True)
    (home / ".config" / "crm" / "crm.conf").write_text("[core]\ncheck_frequency = never\n")
    cib = scratch / "crm-cib.xml"
    RUNNER.run([tool("cibadmin"), "--empty"], stdout_to=cib)
    result = RUNNER.run([tool("sh"), script], cwd=scratch, check=False, timeout=120,
                        env={"HOME": str(home), "CIB_file": str(cib)})
    return result, cib


def run_pcs_script(script: Path, scratch: Path) -> tuple[Result, Path]:
    """Run pcs.sh in its build-into-a-file mode (CLUSTER_MIGRATE_CIB), with --force
    because the agents' metadata is not installed here (pcs still parses every command)."""
    tool("pcs")
    cib = scratch / "pcs-cib.xml"
    RUNNER.run([tool("cibadmin"), "--empty"], stdout_to=cib)
    result = RUNNER.run([tool("sh"), script], cwd=scratch, check=False, timeout=300,
                        env={"CLUSTER_MIGRATE_CIB": str(cib),
                             "CLUSTER_MIGRATE_PCS_OPTS": "--force"})
    return result, cib
