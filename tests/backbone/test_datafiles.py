"""Malformed recipes and profiles: one error naming file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.base import datafile
from builder.base.errors import InputError
from builder.cli import main
from builder.stack import profile, recipe

GOOD = "name: demo\ndescription: demo\nstrategy: import\nimport:\n  source: demo\n"


def write(tmp_path: Path, body: str, name: str = "demo") -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "recipe.yaml").write_text(body)
    return d


def test_good_recipe_loads(tmp_path: Path) -> None:
    r = recipe.load(write(tmp_path, GOOD))
    assert (r.name, r.strategy, r.spec.source) == ("demo", "import", "demo")


@pytest.mark.parametrize(("body", "line", "key", "text"), [
    (GOOD + "colour: blue\n", 6, "colour", "unknown key"),
    (GOOD.replace("strategy: import", "strategy: magic"), 3, "strategy", "is not one of"),
    (GOOD.replace("  source: demo\n", "  source: demo\n  binaries: nope\n"), 6,
     "import.binaries", "is not of type 'array'"),
    ("name: demo\ndescription: demo\nstrategy: import\n", 1, None, "'import' is a required"),
    (GOOD.replace("import:\n  source: demo\n", "import:\n  sauce: demo\n"), 5,
     "import.sauce", "unknown key"),
])
def test_schema_errors_name_line_and_key(tmp_path: Path, body: str, line: int,
                                         key: str | None, text: str) -> None:
    with pytest.raises(InputError) as exc:
        recipe.load(write(tmp_path, body))
    err = exc.value
    assert err.path.name == "recipe.yaml"
    assert err.line == line
    assert err.key == key
    assert text in err.message
    assert str(err).startswith(f"{err.path}:{line}: ")


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        recipe.load(write(tmp_path, GOOD + "description: [unclosed\n"))
    assert exc.value.line == 7
    assert "not valid YAML" in str(exc.value)


def test_name_must_match_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not match its folder"):
        recipe.load(write(tmp_path, GOOD, name="other"))


def test_component_folder_without_recipe(tmp_path: Path) -> None:
    (tmp_path / "lonely").mkdir()
    with pytest.raises(InputError, match="component folder has no recipe"):
        recipe.load_all(tmp_path)


def test_malformed_profile(tmp_path: Path) -> None:
    pdir = tmp_path / "packaging" / "profiles"
    pdir.mkdir(parents=True)
    real = (Path(__file__).parents[2] / "packaging/profiles/trixie.yaml").read_text()
    (pdir / "broken.yaml").write_text(real.replace("name: trixie", "name: broken")
                                      .replace("init: systemd", "init: runit"))
    with pytest.raises(InputError) as exc:
        profile.load(tmp_path, "broken")
    assert exc.value.key == "init"
    assert exc.value.line is not None
    lines = (pdir / "broken.yaml").read_text().splitlines()
    assert lines[exc.value.line - 1].startswith("init:")


def test_unknown_profile_lists_known(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack = Path(__file__).parents[2]
    rc = main(["--stack", str(stack), "--out", str(tmp_path), "plan", "--profile", "nosuch"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "no such profile 'nosuch'" in err and "trixie" in err


PACKAGE = ("name: demo\ndescription: demo\nstrategy: package\npackage:\n  version: 1.0-1\n"
           "  upstream:\n    url: https://example.invalid/demo-1.0.zip\n"
           "    sha256: \"" + "0" * 64 + "\"\n")


def test_strategy_section_is_checked_when_the_recipe_loads(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        recipe.load(write(tmp_path, PACKAGE))
    err = exc.value
    assert (err.path.name, err.line, err.key) == ("recipe.yaml", 7, "package.upstream.url")
    assert "upstream url must end in one of" in err.message


def test_strategy_section_is_typed(tmp_path: Path) -> None:
    r = recipe.load(write(tmp_path, PACKAGE.replace(".zip", ".tar.xz")))
    assert (r.spec.version, r.spec.upstream_version, r.spec.upstream.suffix) == \
        ("1.0-1", "1.0", ".tar.xz")
    assert r.source_name == "demo"


def test_a_passed_check_is_remembered_and_a_changed_file_checked_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checked = datafile.Checked(tmp_path / "checked")
    d = write(tmp_path, GOOD)
    recipe.load(d, checked=checked)
    assert len(list((tmp_path / "checked").iterdir())) == 1
    # Known to pass: not validated again (the schema check is what a no-op
    # plan skips), in this run or the next.
    def no_check(*args: object) -> None:
        raise AssertionError("validated a file known to pass")

    with monkeypatch.context() as m:
        m.setattr(datafile, "_validate", no_check)
        recipe.load(d, checked=datafile.Checked(tmp_path / "checked"))
    # A changed file is checked again, and one that fails is never remembered.
    (d / "recipe.yaml").write_text(GOOD + "colour: blue\n")
    for _ in range(2):
        with pytest.raises(InputError, match="unknown key"):
            recipe.load(d, checked=datafile.Checked(tmp_path / "checked"))
    assert len(list((tmp_path / "checked").iterdir())) == 1
