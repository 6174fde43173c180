"""The command line: bad input, the output folder, and the crm/pcs scripts."""

from __future__ import annotations

from pathlib import Path

import pytest

from .migrate_helpers import BAD, CONFIGS, Converted, line_of, run_cli

# what the issue asks to be written
OUTPUT_FILES = ("corosync.conf", "cib.xml", "crm.sh", "pcs.sh", "report.txt", "report.json")

BAD_INPUTS = {
    # file: (line the error must name, words the message must contain)
    "not_xml.conf": (4, "not well-formed"),
    "not_cluster.conf": (2, "not a cluster.conf"),
    "dup_nodeid.conf": (6, "duplicate nodeid 2"),
    "missing_domain.conf": (11, "imaginary"),
    "missing_resource.conf": (13, "nowhere"),
    "missing_fence_device.conf": (8, "ipmi-b"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_one_clear_error_and_no_output(name: str, tmp_path: Path) -> None:
    line, words = BAD_INPUTS[name]
    out = tmp_path / "out"
    result = run_cli(BAD / name, "-o", out)
    assert result.returncode == 1
    errors = [x for x in result.stderr_tail.splitlines() if x.strip()]
    assert len(errors) == 1, errors
    assert f"{BAD / name}:{line}: " in errors[0]
    assert words in errors[0]
    assert "Traceback" not in result.stderr_tail
    # nothing left behind: no output folder, no temporary folder beside it
    assert list(tmp_path.iterdir()) == []


def test_every_bad_input_is_tested() -> None:
    assert sorted(p.name for p in BAD.glob("*.conf")) == sorted(BAD_INPUTS)


def test_missing_input_file(tmp_path: Path) -> None:
    result = run_cli(tmp_path / "nope.conf", "-o", tmp_path / "out")
    assert result.returncode == 1 and "cannot read" in result.stderr_tail
    assert not (tmp_path / "out").exists()


def test_output_has_all_files(converted: dict[str, Converted]) -> None:
    for c in converted.values():
        assert sorted(p.name for p in c.out.iterdir()) == sorted(OUTPUT_FILES)
        # cib.xml carries fence passwords: not world-readable
        assert (c.out / "cib.xml").stat().st_mode & 0o077 == 0


def test_existing_conversion_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_cli(CONFIGS / "two_node.conf", "-o", out).returncode == 0
    before = (out / "cib.xml").read_text()
    again = run_cli(CONFIGS / "vm.conf", "-o", out)
    assert again.returncode == 1 and "--force" in again.stderr_tail
    assert (out / "cib.xml").read_text() == before
    forced = run_cli(CONFIGS / "vm.conf", "-o", out, "--force")
    assert forced.returncode == 0
    assert "VirtualDomain" in (out / "cib.xml").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no leftovers


def test_foreign_folder_is_never_replaced(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    result = run_cli(CONFIGS / "two_node.conf", "-o", out, "--force")
    assert result.returncode == 1
    assert (out / "precious.txt").read_text() == "keep me"
    assert sorted(p.name for p in out.iterdir()) == ["precious.txt"]


def test_failed_conversion_keeps_previous_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_cli(CONFIGS / "two_node.conf", "-o", out).returncode == 0
    before = {p.name: p.read_text() for p in out.iterdir()}
    assert run_cli(BAD / "dup_nodeid.conf", "-o", out, "--force").returncode == 1
    assert {p.name: p.read_text() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_address_option_checked(tmp_path: Path) -> None:
    result = run_cli(CONFIGS / "two_node.conf", "-o", tmp_path / "o", "--address", "ghost=1.2.3.4")
    assert result.returncode == 1 and "ghost" in result.stderr_tail
    result = run_cli(CONFIGS / "two_node.conf", "-o", tmp_path / "o", "--address", "node1")
    assert result.returncode == 1
    assert not (tmp_path / "o").exists()


def test_report_points_at_source_lines(converted: dict[str, Converted]) -> None:
    c = converted["four_node.conf"]
    text = c.text("report.txt")
    web_line = line_of(c.conf, '<service name="web"')
    assert f"line {web_line}" in text
    assert text.startswith("cluster-migrate report for ")
