"""Versions follow the inputs: a rebuild from changed inputs is an upgrade."""

from __future__ import annotations

import pytest

from builder.build import versioning
from builder.build.state import ComponentState
from builder.tree import render


def built(version: str, key: str) -> ComponentState:
    return ComponentState(component="demo", key=key, inputs={}, source="demo", version=version)


BASE = "1.0-1+cluster13"


def test_first_build_takes_the_recipe_version() -> None:
    assert versioning.choose("demo", BASE, "k1", None) == BASE


def test_same_inputs_keep_the_version() -> None:
    assert versioning.choose("demo", BASE, "k1", built(f"{BASE}.2", "k1")) == f"{BASE}.2"


def test_changed_inputs_count_up() -> None:
    assert versioning.choose("demo", BASE, "k2", built(BASE, "k1")) == f"{BASE}.1"
    assert versioning.choose("demo", BASE, "k3", built(f"{BASE}.1", "k2")) == f"{BASE}.2"


def test_published_versions_keep_a_lost_state_from_going_backwards() -> None:
    assert versioning.choose("demo", BASE, "k9", None, [BASE, f"{BASE}.4"]) == f"{BASE}.5"


def test_a_new_recipe_version_starts_again() -> None:
    assert versioning.choose("demo", "1.1-1+cluster13", "k2", built(f"{BASE}.3", "k1")) \
        == "1.1-1+cluster13"


def test_a_lower_recipe_version_is_refused_naming_the_component() -> None:
    with pytest.raises(versioning.VersionWentBackwards,
                       match=r"demo: version would go backwards: 1\.0-1\+cluster13\.3 .* "
                             r"0\.9-1\+cluster13"):
        versioning.choose("demo", "0.9-1+cluster13", "k2", built(f"{BASE}.3", "k1"))


def test_counter_sorts_above_the_base_for_dpkg() -> None:
    from debian.debian_support import version_compare
    assert version_compare(f"{BASE}.1", BASE) > 0
    assert version_compare(f"{BASE}.10", f"{BASE}.9") > 0


def test_restamped_changelog_records_why(tmp_path) -> None:
    render.write_changelog(tmp_path, "demo", BASE, "trixie", ["Generated."], when=1754697600)
    render.restamp_changelog(tmp_path, f"{BASE}.1", "Rebuilt from changed inputs (key k2).")
    assert render.changelog_version(tmp_path) == f"{BASE}.1"
    text = (tmp_path / "changelog").read_text()
    assert text.startswith(f"demo ({BASE}.1) trixie;")
    assert "  * Rebuilt from changed inputs (key k2)." in text


def test_published_versions_read_the_sources_index(tmp_path) -> None:
    index = tmp_path / "dists/trixie/main/source/Sources"
    index.parent.mkdir(parents=True)
    index.write_text(f"Package: demo\nVersion: {BASE}.2\n\nPackage: other\nVersion: 9\n")
    assert versioning.published_versions(tmp_path, "demo") == [f"{BASE}.2"]
    assert versioning.published_versions(tmp_path / "none", "demo") == []
