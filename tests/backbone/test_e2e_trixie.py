"""The real thing: build -> publish -> verify of the default profile (trixie),
run as the generated CI pipeline under a real GitLab CI implementation.

gitlab-ci-local (npm, pinned; `make gitlab-ci-local`) runs the committed
.gitlab-ci.yml with the shell executor on a fresh clone of this work tree:
each job in its own copy of the tracked files with `make setup` first, the
artifacts of its `needs:` jobs only, and its cache, as a GitLab runner does.
Native packages are built with sbuild in unshared chroots, imported ones are
fetched through Debian's signed chain, `verify` installs ubuntu-cluster and
the Cluster node task in a fresh trixie root from our signed repository, and
the short cluster forms.  Once with an empty cache, once again with the cache
of the first run, which then builds and fetches nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.fakearchive import make_key, stop_agent

from builder.base.command import Runner
from builder.buildroot import linkage
from builder.buildroot.backends import scratch
from builder.ci.pipeline import IMPORT_VARIABLE
from builder.cli import main
from builder.stack import recipe

ROOT = Path(__file__).parents[2]
pytestmark = [pytest.mark.e2e, pytest.mark.network]
STATE = ".gitlab-ci-local"
# Only its parser reads this: no job talks to a remote.
REMOTE = "https://gitlab.example.invalid/clusterstack/clusterstack.git"


def cs(out: Path, *args: str) -> list[str]:
    return ["--stack", str(ROOT), "--out", str(out), *args, "--profile", "trixie"]


# Built from source in this run: cluster-glue for its libesmtp proof below,
# fence-agents and resource-agents because ours make the lean node that
# verify weighs (Debian's pull in 2.7 GiB of cloud SDKs, and verify fails).
FROM_SOURCE = {"cluster-glue", "fence-agents", "resource-agents"}


def quick_imports() -> list[str]:
    """Source-built components taken as Debian's binaries in this run: the full
    from-source build is the benchmark (benchmarks/archive.py)."""
    return [r.name for r in recipe.load_all(ROOT / "packaging", "trixie")
            if r.strategy in ("rebuild", "package") and r.name not in FROM_SOURCE]


@dataclass
class Run:
    """One gitlab-ci-local run: its exit status, wall time, output, and per job
    its status and time."""
    rc: int
    seconds: float
    output: str
    jobs: dict[str, tuple[str, float]]
    project: Path

    def log(self, job: str) -> str:
        """The job's log as GitLab shows it: its lines without the job-name prefix."""
        text = (self.project / STATE / "output" / f"{job}.log").read_text(errors="replace")
        return "\n".join(re.sub(r"^\S+ ([>$]) ?", lambda m: "$ " if m[1] == "$" else "",
                                ln) for ln in text.splitlines())

    def table(self) -> str:
        return "\n".join(f"  {name:<24} {status:<4} {secs:7.1f} s"
                         for name, (status, secs) in self.jobs.items())


_UNITS = {"ns": 1e-9, "μs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0}


def _job_times(output: str) -> dict[str, tuple[str, float]]:
    jobs = {}
    for m in re.finditer(r"^(\S+) +finished in ([\d.]+) (\S+)(?: +(FAIL|WARN) \d+)?", output,
                         re.M):
        if m[1] != "pipeline":       # its closing line, not a job
            jobs[m[1]] = ("FAIL" if m[4] == "FAIL" else "ok",
                          float(m[2]) * _UNITS.get(m[3], 1.0))
    return jobs


@pytest.fixture(scope="module")
def gitlab_ci_local() -> Path:
    """Installed by the Makefile from the npm registry; a machine that cannot
    get it fails here rather than skipping the pipeline."""
    res = subprocess.run(["make", "-s", "-C", str(ROOT), "gitlab-ci-local"],
                         capture_output=True, text=True)
    assert res.returncode == 0, f"make gitlab-ci-local failed:\n{res.stdout}{res.stderr}"
    program = Path(res.stdout.strip().splitlines()[-1])
    assert program.is_file(), res.stdout
    return program


def _snapshot(dest: Path) -> Path:
    """A fresh clone of this work tree as it is now, uncommitted changes
    included (committed in the clone only): what a runner would check out."""
    git = ["git", "-c", "user.name=e2e", "-c", "user.email=e2e@example.invalid"]
    subprocess.run([*git, "clone", "-q", str(ROOT), str(dest)], check=True)
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], capture_output=True, check=True).stdout
    for rel in sorted({p for p in listed.decode().split("\0") if p}):
        src, dst = ROOT / rel, dest / rel
        if not src.exists() and not src.is_symlink():
            dst.unlink(missing_ok=True)          # deleted in the work tree
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.is_symlink() or dst.exists():
            dst.unlink()
        if src.is_symlink():
            dst.symlink_to(os.readlink(src))
        else:
            shutil.copy2(src, dst)
    subprocess.run([*git, "-C", str(dest), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(dest), "commit", "-q", "--allow-empty", "-m",
                    "work tree snapshot"], check=True)
    subprocess.run(["git", "-C", str(dest), "remote", "add", "gcl-origin", REMOTE], check=True)
    return dest


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("e2e-pipeline")
    yield _snapshot(base / "clone")
    # Job copies, artifacts and caches: some GB, not kept even when a test failed.
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def signing_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throw-away key, handed to the publish job as a file variable (never on
    a command line or in a log)."""
    key = make_key(tmp_path_factory.mktemp("ci-key") / "home", "CI <ci@example.invalid>")
    path = key.home / "signing-key.asc"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        subprocess.run(["gpg", "--homedir", str(key.home), "--batch", "--armor",
                        "--export-secret-keys", key.fingerprint], stdout=fh, check=True)
    stop_agent(key.home)  # the jobs import the file into homes of their own
    return path


def run_pipeline(program: Path, project: Path, key: Path, *jobs: str,
                 variables: dict[str, str] | None = None) -> Run:
    values = {IMPORT_VARIABLE: " ".join(quick_imports()),
              "CLUSTERSTACK_SIGNING_KEY_FILE": str(key), **(variables or {})}
    cmd = [str(program), "--shell-isolation", "--no-artifacts-to-source", "--no-color",
           "--home", str(project.parent / "gcl-home"),
           *(a for k, v in values.items() for a in ("--variable", f"{k}={v}")), *jobs]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CLUSTERSTACK_", "PYTEST_"))}
    started = time.monotonic()
    res = subprocess.run(cmd, cwd=project, env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.monotonic() - started
    (project.parent / f"run-{int(time.time())}.log").write_text(res.stdout)
    return Run(res.returncode, seconds, res.stdout, _job_times(res.stdout), project)


def _collect_artifacts(project: Path, out: Path) -> None:
    """Every job's artifacts in one output folder, as `download all artifacts` gives."""
    for job in sorted((project / STATE / "artifacts").iterdir()):
        if (job / "out").is_dir():
            subprocess.run(["rsync", "-a", f"{job}/out/", f"{out}/"], check=True)


ALL_JOBS = {"build-cheap", "build-cluster-glue", "build-corosync", "build-pacemaker",
            "publish", "verify", "verify-cluster", "report"}


@pytest.fixture(scope="module")
def cold(gitlab_ci_local: Path, project: Path, signing_key_file: Path) -> Run:
    run = run_pipeline(gitlab_ci_local, project, signing_key_file)
    print(f"\ncold pipeline: {run.seconds:.0f} s\n{run.table()}")
    return run


@pytest.fixture(scope="module")
def out(cold: Run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cold run's artifacts, gathered: the output folder the tests below read."""
    folder = tmp_path_factory.mktemp("e2e-trixie")
    _collect_artifacts(cold.project, folder)
    return folder


@pytest.fixture(scope="module")
def warm(cold: Run, out: Path, gitlab_ci_local: Path, signing_key_file: Path) -> Run:
    built = {j: s for j, (s, _) in cold.jobs.items() if j.startswith("build-")}
    assert built and set(built.values()) == {"ok"}, f"the cold run's builds failed:\n{cold.table()}"
    # The build stage and publish: what the cache is for.  verify and the
    # cluster would only repeat the cold run's checks (~10 min here).
    run = run_pipeline(gitlab_ci_local, cold.project, signing_key_file, *sorted(built),
                       "publish")
    print(f"\nwarm pipeline: {run.seconds:.0f} s\n{run.table()}")
    return run


def test_pipeline_from_an_empty_cache(cold: Run) -> None:
    """Every job of the generated pipeline, from nothing: a project's first run."""
    assert cold.rc == 0, cold.output[-4000:]
    assert set(cold.jobs) >= ALL_JOBS, cold.table()
    assert all(status == "ok" for status, _ in cold.jobs.values()), cold.table()
    assert len(cold.jobs) >= 12
    glue = cold.log("build-cluster-glue")
    assert re.search(r"^cluster-glue +built ", glue, re.M), glue[-2000:]
    for job in cold.jobs:
        log = cold.log(job)
        # Each job set itself up in its own fresh copy, without a page of warnings.
        assert "$ make setup" in log, job
        assert "project.license" not in log, f"{job}: setuptools' license warning"
        assert "PRIVATE KEY BLOCK" not in log, f"{job} printed the signing key"


def test_pipeline_from_a_warm_cache(warm: Run) -> None:
    """The second run takes every build from its cache: nothing is built or
    fetched; publish runs again."""
    assert warm.rc == 0, warm.output[-4000:]
    wanted = {j for j in ALL_JOBS if j.startswith("build-")} | {"publish"}
    assert set(warm.jobs) >= wanted and all(s == "ok" for s, _ in warm.jobs.values()), \
        warm.table()
    for job in warm.jobs:
        if not job.startswith("build-"):
            continue
        log = warm.log(job)
        # gitlab-ci-local pads job names to the longest one.
        assert re.search(rf"^{re.escape(job)} +imported cache 'clusterstack-trixie-{job}'",
                         warm.output, re.M), job
        summary = [ln for ln in log.splitlines() if re.match(r"^\d+ [a-z-]+(, \d+ [a-z-]+)*$", ln)]
        assert summary and re.fullmatch(r"\d+ up-to-date", summary[-1]), f"{job}:\n{log[-2000:]}"
        assert not re.search(r" (built|fetched) ", log), f"{job} did build work:\n{log[-2000:]}"


def test_unknown_component_in_the_variable(warm: Run, gitlab_ci_local: Path,
                                           signing_key_file: Path) -> None:
    run = run_pipeline(gitlab_ci_local, warm.project, signing_key_file, "build-cheap",
                       variables={IMPORT_VARIABLE: "pacemaker no-such-thing"})
    assert run.rc != 0
    log = run.log("build-cheap")
    errors = [ln for ln in log.splitlines() if ln.startswith("clusterstack: error")]
    assert "Traceback" not in log and "$ .venv/bin/clusterstack --out out build" not in log
    assert errors == [
        f"clusterstack: error: job build-cheap: {IMPORT_VARIABLE} names unknown component(s) "
        f"no-such-thing (known: {errors[0].split('(known: ')[1]}"], errors


def test_expired_artifact(warm: Run, gitlab_ci_local: Path, signing_key_file: Path) -> None:
    """build-corosync's artifacts are gone (expired): build-pacemaker says so."""
    shutil.rmtree(warm.project / STATE / "artifacts" / "build-corosync")
    run = run_pipeline(gitlab_ci_local, warm.project, signing_key_file, "build-pacemaker")
    assert run.rc != 0
    log = run.log("build-pacemaker")
    errors = [ln for ln in log.splitlines() if ln.startswith("clusterstack: error")]
    assert "Traceback" not in log and "$ .venv/bin/clusterstack --out out build" not in log
    assert len(errors) == 1, errors
    assert errors[0].startswith("clusterstack: error: job build-pacemaker: the artifact of job "
                                "build-corosync is missing (out/trixie/state/corosync.json is "
                                "not here)"), errors


def test_build_results(out: Path) -> None:
    meta = out / "trixie/artifacts/ubuntu-cluster/ubuntu-cluster_1.0+cluster13_all.deb"
    fields = subprocess.run(["dpkg-deb", "-f", str(meta), "Depends", "Recommends"],
                            capture_output=True, text=True, check=True).stdout
    assert "pacemaker, corosync, crmsh | pcs, resource-agents, fence-agents" in fields
    assert "keepalived" in fields.split("Recommends:")[1]
    # Our fence-agents is the curated set, not Debian's transitional package
    # for fence-agents-all (issue 13).
    curated = out / "trixie/artifacts/fence-agents/fence-agents_4.16.0-4+cluster13_all.deb"
    depends = subprocess.run(["dpkg-deb", "-f", str(curated), "Depends"], capture_output=True,
                             text=True, check=True).stdout
    assert "fence-agents-ipmilan" in depends and "fence-agents-scsi" in depends
    assert "fence-agents-all" not in depends and "fence-agents-aws" not in depends
    migrate = out / "trixie/artifacts/cluster-migrate/cluster-migrate_1.0+cluster13_all.deb"
    listing = subprocess.run(["dpkg-deb", "-c", str(migrate)], capture_output=True,
                             text=True, check=True).stdout
    assert "./usr/bin/cluster-migrate" in listing
    assert "./usr/lib/python3/dist-packages/cluster_migrate/cli.py" in listing
    for name in ("ubuntu-cluster", "tasksel-data", "cluster-fs-stack", "openais",
                 "cluster-stack-upstart", "cluster-migrate"):
        st = json.loads((out / f"trixie/state/{name}.json").read_text())
        assert st["lintian"]["error"] == 0, f"{name}: lintian errors"
        log = (out / f"trixie/logs/{name}.log").read_text()
        # The natives share one build root (builder/buildroot/backends/sharedroot.py):
        # no sbuild of their own, one dpkg-buildpackage each.
        assert log.count("$ sbuild ") == 0 and "# built in one build root with" in log
        assert "dpkg-buildpackage" in log, f"{name}: no dpkg-buildpackage in its log"
        # The shared root went where `--scratch auto` chose, and is gone again.
        unpacked = re.search(r"^\$ tar --numeric-owner -xpf \S+\.tar\.zst -C (\S+)/root$",
                             log, re.M)
        assert unpacked, f"{name}: no unpack line of the shared root in its log"
        where = scratch.choose("auto") or tempfile.gettempdir()
        assert unpacked.group(1).startswith(f"{where}/clusterstack-shared."), unpacked.group(1)
        assert not Path(unpacked.group(1)).exists()
    report = json.loads((out / "trixie/report.json").read_text())
    assert {c["component"] for c in report["components"]} >= {"ubuntu-cluster", "pacemaker"}
    assert (out / "trixie/report.html").read_text().count("<tr>") > 20


def test_second_build_does_nothing(out: Path, cold: Run,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """The pipeline's results, gathered in one folder, are up to date for a
    plain `build` of the same tree (the clone the pipeline ran on)."""
    args = [a for c in quick_imports() for a in ("--import", c)]
    assert main(["--stack", str(cold.project), *cs(out, "build", *args)[2:]]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1].endswith(" up-to-date")
    assert " built " not in captured.out and "fetch " not in captured.err


def test_verify_table(cold: Run) -> None:
    log = cold.log("verify")
    assert "7 passed, 0 failed" in log
    for check in ("expired Release refused (Valid-Until)", "apt-get update (signature)",
                  "installer's tasksel (DEBIAN_TASKS_ONLY)", "apt-get install ubuntu-cluster",
                  "cluster-stack-upstart installed",
                  "tasksel install cluster-node (installer mode)"):
        assert re.search(rf"^{re.escape(check)} +PASS ", log, re.M), check
    # The node's weight, as verify measured it (issue 13: 766 packages, 2.7 GiB
    # with Debian's fence-agents).
    weight = re.search(r"^apt-get install ubuntu-cluster +PASS .*: (\d+) packages, (\d+) MiB "
                       r"installed \(limit 450 MiB\), no cloud SDK$", log, re.M)
    assert weight and int(weight[2]) <= 450, log[-3000:]
    assert re.search(r"^installer's tasksel \(DEBIAN_TASKS_ONLY\) +PASS .*u cluster-node  "
                     r"Cluster node \(tasksel-data 3\.81\+cluster13\)$", log, re.M)


def test_short_cluster(out: Path) -> None:
    report = json.loads((out / "trixie/cluster/cluster-report.json").read_text())
    assert report["ok"] is True
    assert report["nodes_up"] == 2


def test_cluster_glue_built_without_libesmtp(out: Path) -> None:
    """Issue 4's proof, on the cluster-glue this run built from source."""
    st = json.loads((out / "trixie/state/cluster-glue.json").read_text())
    assert st["version"] == "1.0.12-25+cluster13"
    assert st["lintian"]["error"] == 0
    log = (out / "trixie/logs/cluster-glue.log").read_text()
    # The precondition: libesmtp-dev really was in the build root (.buildinfo
    # does not show --add-depends packages; sbuild's log does).
    assert "--add-depends=libesmtp-dev" in log
    installed = [ln for ln in log.splitlines() if re.search(r"^Get:.* libesmtp-dev amd64", ln)
                 or re.search(r"^Unpacking libesmtp-dev", ln)]
    assert installed, "libesmtp-dev was not installed in the build root"
    assert "Applying patch clusterstack-0001-configure-drop-libesmtp-header-probe.patch" in log
    assert "libesmtp check: no ELF file links libesmtp" in log
    arts = out / "trixie/artifacts/cluster-glue"
    debs = [arts / d for d in st["debs"]]
    names = {d.name.split("_")[0] for d in debs}
    assert {"cluster-glue", "libpils2t64", "libplumb2t64", "libstonith1t64",
            "liblrm2t64"} <= names
    # Checked again here, independently of the build's own check.
    assert linkage.check(debs, ("libesmtp",), Runner()) > 0


def test_linkage_check_catches_a_libesmtp_binary(tmp_path: Path) -> None:
    """Negative control: Debian's esmtp links libesmtp, and the check says so."""
    from builder.base.fetch import Fetcher
    from builder.sources.upstream import UpstreamArchive
    from builder.stack import profile
    prof = profile.load(ROOT, "trixie")
    fetcher = Fetcher(Path.home() / ".cache/clusterstack/downloads")
    upstream = UpstreamArchive(prof, fetcher, Runner(), tmp_path)
    (esmtp,) = [p for p in upstream.binaries_of_source("esmtp") if p.package == "esmtp"]
    deb = fetcher.fetch_verified(esmtp.url, esmtp.sha256, esmtp.size)
    with pytest.raises(linkage.LinkageError, match=r"esmtp.*(links|names a forbidden)"):
        linkage.check([deb], ("libesmtp",), Runner())
