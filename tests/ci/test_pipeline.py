"""The CI pipeline is generated from the build graph and checked by the CI
systems' own schemas; publishing in CI needs the secret signing key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from support.fakearchive import StackUnderTest, make_key

from builder.cli import main
from builder.command import Runner
from builder.pipeline import FORMATS

ROOT = Path(__file__).parents[2]
SCHEMAS = {"gitlab": "vendor.gitlab-ci", "github": "vendor.github-workflows"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("ci")
    files = {}
    for fmt in FORMATS:
        files[fmt] = out / f"{fmt}.yml"
        assert main(["--stack", str(ROOT), "--out", str(out / "work"), "ci", "--format", fmt,
                     "-o", str(files[fmt])]) == 0
    return files


@pytest.mark.network
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_committed_pipeline_is_up_to_date(fmt: str, generated: dict[str, Path]) -> None:
    committed = ROOT / FORMATS[fmt]
    assert committed.read_text() == generated[fmt].read_text(), (
        f"{FORMATS[fmt]} is stale: run `clusterstack ci --format {fmt} -o {FORMATS[fmt]}`")


@pytest.mark.network
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_pipeline_passes_the_ci_schema(fmt: str, generated: dict[str, Path]) -> None:
    Runner().run([str(Path(os.sys.executable).parent / "check-jsonschema"), "--builtin-schema",
                  SCHEMAS[fmt], str(generated[fmt])])


@pytest.mark.network
def test_schema_check_can_fail(generated: dict[str, Path], tmp_path: Path) -> None:
    doc = yaml.safe_load(generated["gitlab"].read_text())
    doc["publish"]["needs"] = "build-cheap"     # must be a list
    broken = tmp_path / "broken.yml"
    broken.write_text(yaml.safe_dump(doc))
    res = Runner().run([str(Path(os.sys.executable).parent / "check-jsonschema"),
                        "--builtin-schema", SCHEMAS["gitlab"], str(broken)], check=False)
    assert res.returncode != 0


@pytest.mark.network
def test_needs_follow_build_depends(generated: dict[str, Path]) -> None:
    doc = yaml.safe_load(generated["gitlab"].read_text())
    needs = {name: {n["job"] for n in job.get("needs", [])}
             for name, job in doc.items() if isinstance(job, dict) and "script" in job}
    # pacemaker builds against corosync's libraries, so its job waits for corosync's.
    assert "build-corosync" in needs["build-pacemaker"]
    assert needs["build-corosync"] == set()
    assert needs["publish"] >= {j for j in needs if j.startswith("build-")}
    assert needs["verify"] == {"publish"} and needs["verify-cluster"] == {"publish"}
    assert "--component pacemaker --from-artifacts out" in doc["build-pacemaker"]["script"][0]
    assert doc["publish"]["variables"] == {"CLUSTERSTACK_REQUIRE_SIGNING_KEY": "1"}
    gh = yaml.safe_load(generated["github"].read_text())
    assert gh["jobs"]["build-pacemaker"]["needs"] == sorted(needs["build-pacemaker"])
    assert gh["on"]["schedule"][0]["cron"] and gh["on"]["push"]["paths"]


def test_publish_without_the_secret_fails_and_publishes_nothing(
        stack: StackUnderTest, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(stack.argv("build")) == 0
    assert main(stack.argv("publish")) == 0          # a local key exists now
    before = os.readlink(stack.out / "public/fake")
    monkeypatch.setenv("CLUSTERSTACK_REQUIRE_SIGNING_KEY", "1")
    monkeypatch.delenv("CLUSTERSTACK_SIGNING_KEY", raising=False)
    monkeypatch.delenv("CLUSTERSTACK_SIGNING_KEY_FILE", raising=False)
    assert main(stack.argv("publish")) == 1
    assert "no signing key: set CLUSTERSTACK_SIGNING_KEY" in capsys.readouterr().err
    assert os.readlink(stack.out / "public/fake") == before


def test_publish_with_the_secret_signs_with_it(stack: StackUnderTest, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    key = make_key(tmp_path / "ci-secret", "CI <ci@example.invalid>")
    secret = Runner().run(["gpg", "--homedir", str(key.home), "--batch", "--armor",
                           "--export-secret-keys", key.fingerprint]).stdout
    monkeypatch.setenv("CLUSTERSTACK_REQUIRE_SIGNING_KEY", "1")
    monkeypatch.setenv("CLUSTERSTACK_SIGNING_KEY", secret)
    assert main(stack.argv("build")) == 0
    assert main(stack.argv("publish")) == 0
    inrelease = stack.out / "public/fake/dists/fakesuite/InRelease"
    status = Runner().run(["gpgv", "--status-fd", "1", "--keyring", str(key.keyring),
                           str(inrelease)]).stdout
    assert f"VALIDSIG {key.fingerprint}" in status
