"""The CI pipeline is generated from the build graph and checked by the CI
systems' own schemas; both formats are one job model; a job checks what it
starts from; publishing in CI needs the secret signing key.  The pipeline
itself runs under gitlab-ci-local in tests/backbone/test_e2e_trixie.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from support.fakearchive import StackUnderTest, make_key

from builder.base.command import Runner
from builder.ci.pipeline import FORMATS, IMPORT_VARIABLE, Job, imports_from_env
from builder.cli import main

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
    path = FORMATS[fmt].path
    committed = ROOT / path
    assert committed.read_text() == generated[fmt].read_text(), (
        f"{path} is stale: run `clusterstack ci --format {fmt} -o {path}`")


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
    assert doc["build-pacemaker"]["script"] == [
        ".venv/bin/clusterstack --out out ci --profile trixie --job build-pacemaker "
        "--needs build-cluster-glue --needs build-corosync",
        ".venv/bin/clusterstack --out out build --profile trixie --component pacemaker "
        "--from-artifacts out"]
    assert doc["publish"]["variables"] == {"CLUSTERSTACK_REQUIRE_SIGNING_KEY": "1"}
    gh = yaml.safe_load(generated["github"].read_text())
    assert gh["jobs"]["build-pacemaker"]["needs"] == sorted(needs["build-pacemaker"])
    assert gh["on"]["schedule"][0]["cron"] and gh["on"]["push"]["paths"]


def _gitlab_jobs(generated: dict[str, Path]) -> dict[str, dict]:
    doc = yaml.safe_load(generated["gitlab"].read_text())
    return {n: j for n, j in doc.items() if isinstance(j, dict) and "script" in j}


@pytest.mark.network
def test_a_job_without_needs_takes_nothing_from_earlier_jobs(
        generated: dict[str, Path]) -> None:
    """Issue 21: on a first pipeline (no cache) such a job has no output folder
    to take from; it must not ask for one."""
    for name, job in _gitlab_jobs(generated).items():
        script = " ".join(job["script"])
        if not job["needs"]:
            assert "--from-artifacts" not in script and " --needs " not in script, name


@pytest.mark.network
def test_artifacts_and_needs_say_exactly_what_a_job_reads(
        generated: dict[str, Path]) -> None:
    jobs = _gitlab_jobs(generated)
    handed: dict[str, str] = {}
    for name, job in jobs.items():
        for path in job.get("artifacts", {}).get("paths", []):
            # Two jobs handing on one path would overwrite each other downstream.
            assert path not in handed, f"{path}: from {handed.get(path)} and {name}"
            handed[path] = name
    assert jobs["build-pacemaker"]["artifacts"]["paths"] == [
        "out/trixie/artifacts/pacemaker/", "out/trixie/state/pacemaker.json",
        "out/trixie/logs/pacemaker.log"]
    assert jobs["build-pacemaker"]["cache"]["paths"] == jobs["build-pacemaker"]["artifacts"][
        "paths"]
    cheap = jobs["build-cheap"]["artifacts"]["paths"]
    assert "out/trixie/artifacts/ubuntu-cluster/" in cheap
    assert not any(p.endswith(("/artifacts/", "/state/", "/logs/")) for p in cheap)
    # verify and the cluster read the published repository only.
    for name in ("verify", "verify-cluster"):
        assert jobs[name]["needs"] == [{"job": "publish", "artifacts": True}]
    assert jobs["publish"]["artifacts"]["paths"] == ["out/public/"]
    # The report reads the build jobs' state files and logs; the verifications
    # only come before it.
    report = {n["job"]: n["artifacts"] for n in jobs["report"]["needs"]}
    assert report.pop("verify") is False and report.pop("verify-cluster") is False
    assert set(report) == {n for n in jobs if n.startswith("build-")}
    assert all(report.values())
    assert "out/public/" not in jobs["report"]["artifacts"]["paths"]


@pytest.mark.network
def test_both_formats_are_one_job_model(generated: dict[str, Path]) -> None:
    """What gitlab-ci-local proves of the GitLab file holds for the GitHub one
    as far as the model goes: same jobs, commands, needs, artifacts, caches."""
    gl = _gitlab_jobs(generated)
    gh = yaml.safe_load(generated["github"].read_text())["jobs"]
    assert list(gh) == list(gl)
    for name, job in gl.items():
        steps = gh[name]["steps"]
        assert gh[name].get("needs", []) == [n["job"] for n in job["needs"]], name
        runs = [s["run"] for s in steps if "run" in s and "id" not in s]
        assert runs == ["make setup", "\n".join(job["script"])], name
        downloads = [s["with"]["name"] for s in steps
                     if s.get("uses", "").startswith("actions/download-artifact")]
        assert downloads == [n["job"] for n in job["needs"] if n["artifacts"]], name
        uploads = [s["with"]["path"].split("\n") for s in steps
                   if s.get("uses", "").startswith("actions/upload-artifact")]
        assert uploads == ([job["artifacts"]["paths"]] if "artifacts" in job else []), name
        caches = [s["with"]["path"].split("\n") for s in steps
                  if s.get("uses", "").startswith("actions/cache")]
        assert caches == ([job["cache"]["paths"]] if "cache" in job else []), name
    assert gh["build-pacemaker"]["steps"][1]["with"] == {"name": "build-cluster-glue",
                                                        "path": "out/trixie"}
    assert gh["verify"]["steps"][1]["with"] == {"name": "publish", "path": "out/public"}


def test_artifact_root_is_where_a_download_goes_back() -> None:
    def root(*paths: str) -> str:
        return Job("j", "build", [], artifacts=list(paths)).artifact_root
    assert root("out/public/") == "out/public"
    assert root("out/p/artifacts/x/", "out/p/state/x.json", "out/p/logs/x.log") == "out/p"
    assert root("out/p/logs/_verify.log") == "out/p/logs"
    assert root("out/p/report.html", "out/p/report.json") == "out/p"


def test_the_import_variable() -> None:
    assert imports_from_env({IMPORT_VARIABLE: " corosync  pacemaker,keepalived "}) == [
        "corosync", "pacemaker", "keepalived"]
    assert imports_from_env({}) == []


def test_job_check_passes_with_its_inputs(stack: StackUnderTest,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(stack.argv("build")) == 0
    capsys.readouterr()
    assert main(stack.argv("ci", "--job", "publish", "--needs", "build-cheap")) == 0
    assert capsys.readouterr().out.strip() == "job publish: build-cheap: demo (1 files)"


def test_job_check_names_the_job_and_the_missing_artifact(
        stack: StackUnderTest, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(stack.argv("build")) == 0
    (stack.out / "fake/artifacts/demo/demo-daemon_1.0-1_all.deb").unlink()
    capsys.readouterr()
    assert main(stack.argv("ci", "--job", "publish", "--needs", "build-cheap")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("clusterstack: error: job publish: the artifact of job "
                             "build-cheap is missing (")
    assert "demo-daemon_1.0-1_all.deb is not here): it expired, or build-cheap failed" in err[0]
    assert main(stack.argv("ci", "--job", "verify", "--needs", "publish")) == 2
    assert "the artifact of job publish is missing (" in capsys.readouterr().err


def test_job_check_refuses_an_unknown_component_in_the_variable(
        stack: StackUnderTest, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(IMPORT_VARIABLE, "demo nosuch")
    assert main(stack.argv("ci", "--job", "build-cheap")) == 2
    assert capsys.readouterr().err.strip() == (
        f"clusterstack: error: job build-cheap: {IMPORT_VARIABLE} names unknown "
        "component(s) nosuch (known: demo)")
    assert main(stack.argv("ci", "--job", "build-nosuch")) == 2
    assert "no job build-nosuch in the pipeline" in capsys.readouterr().err
    # The build reads the same variable, and names the CI job it runs in.
    monkeypatch.setenv("CI_JOB_NAME", "build-cheap")
    assert main(stack.argv("build")) == 2
    assert capsys.readouterr().err.startswith(
        f"clusterstack: error: job build-cheap: {IMPORT_VARIABLE} names unknown component(s) "
        "nosuch")


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
