"""crm.sh and pcs.sh, run by the real crmsh and pcs, build the same CIB as cib.xml."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from builder.base.command import Result

from .migrate_helpers import (
    GOOD_CONFIGS,
    RUNNER,
    Converted,
    cib_summary,
    crm_verify,
    run_crm_script,
    run_pcs_script,
    tool,
)

# pcs takes about a second per command; these cover groups, clones of groups, promotable
# clones, every constraint kind and fencing levels while keeping the run short.
PCS_CONFIGS = ["drbd.conf", "gfs2.conf", "four_node.conf", "fence_levels.conf"]


def _diff(ours: dict, theirs: dict) -> dict:
    return {k: (ours[k], theirs[k]) for k in ours if ours[k] != theirs[k]}


@pytest.mark.parametrize("script", ["crm.sh", "pcs.sh"])
def test_scripts_are_valid_shell(converted: dict[str, Converted], script: str) -> None:
    for c in converted.values():
        result = RUNNER.run([tool("sh"), "-n", c.out / script], check=False)
        assert result.returncode == 0, (c.conf.name, result.stderr_tail)


@pytest.mark.parametrize("name", GOOD_CONFIGS)
def test_crm_script_builds_the_same_cib(converted: dict[str, Converted], name: str,
                                        tmp_path: Path) -> None:
    c = converted[name]
    result, cib = run_crm_script(c.out / "crm.sh", tmp_path)
    assert result.returncode == 0, result.stderr_tail
    theirs = cib_summary(ET.parse(cib).getroot())
    ours = cib_summary(c.cib_root())
    assert theirs["primitives"], "crm.sh created nothing"
    assert _diff(ours, theirs) == {}
    assert crm_verify(cib).returncode == 0


@pytest.fixture(scope="module")
def pcs_runs(converted: dict[str, Converted], tmp_path_factory: pytest.TempPathFactory
             ) -> dict[str, tuple[Result, Path]]:
    """All pcs.sh runs at once: each is a long series of short pcs processes."""
    def one(name: str) -> tuple[Result, Path]:
        return run_pcs_script(converted[name].out / "pcs.sh", tmp_path_factory.mktemp("pcs"))
    with ThreadPoolExecutor(max_workers=len(PCS_CONFIGS)) as pool:
        return dict(zip(PCS_CONFIGS, pool.map(one, PCS_CONFIGS), strict=True))


@pytest.mark.parametrize("name", PCS_CONFIGS)
def test_pcs_script_builds_the_same_cib(converted: dict[str, Converted], name: str,
                                        pcs_runs: dict[str, tuple[Result, Path]]) -> None:
    c = converted[name]
    result, cib = pcs_runs[name]
    assert result.returncode == 0, result.stderr_tail
    theirs = cib_summary(ET.parse(cib).getroot())
    ours = cib_summary(c.cib_root())
    assert theirs["primitives"], "pcs.sh created nothing"
    assert _diff(ours, theirs) == {}
    assert crm_verify(cib).returncode == 0


def test_comparison_notices_a_difference(converted: dict[str, Converted]) -> None:
    # the two tests above can fail: a changed score is a difference
    root = converted["two_node.conf"].cib_root()
    before = cib_summary(root)
    loc = root.find(".//rsc_location")
    assert loc is not None
    loc.set("score", "1")
    assert _diff(before, cib_summary(root)).keys() == {"constraints"}


def test_documented_cibadmin_load_works_on_a_running_cib(converted: dict[str, Converted],
                                                         tmp_path: Path) -> None:
    # MIGRATING.md's cibadmin steps, against a CIB that has moved on (epoch 10)
    live = tmp_path / "live.xml"
    RUNNER.run([tool("cibadmin"), "--empty"], stdout_to=live)
    live.write_text(live.read_text().replace('epoch="1"', 'epoch="10"', 1))
    c = converted["gfs2.conf"]
    conf = tmp_path / "configuration.xml"
    RUNNER.run(["sed", "-n", "/<configuration>/,/<\\/configuration>/p", c.cib],
               stdout_to=conf)
    env = {"CIB_file": str(live)}
    RUNNER.run([tool("cibadmin"), "--replace", "--scope", "configuration", "--xml-file",
                conf], env=env)
    assert cib_summary(ET.parse(live).getroot()) == cib_summary(c.cib_root())
