"""The real thing: build -> publish -> verify of the default profile (trixie).

Native packages are built with sbuild in unshared chroots, imported ones are
fetched through Debian's signed chain, and `verify` installs ubuntu-cluster
and the Cluster node task in a fresh trixie root from our signed repository.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from builder import linkage, recipe
from builder.backends import scratch
from builder.cli import main
from builder.command import Runner

ROOT = Path(__file__).parents[2]
pytestmark = [pytest.mark.e2e, pytest.mark.network]


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e-trixie")


def cs(out: Path, *args: str) -> list[str]:
    return ["--stack", str(ROOT), "--out", str(out), *args, "--profile", "trixie"]


def quick_imports() -> list[str]:
    """Source-built components taken as Debian's binaries in this run: the full
    from-source build is the benchmark (benchmarks/archive.py); here cluster-glue
    is built from source, for its libesmtp proof below."""
    return [r.name for r in recipe.load_all(ROOT / "packaging", "trixie")
            if r.strategy in ("rebuild", "package") and r.name != "cluster-glue"]


def test_pipeline_dry_run(out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every job of the generated CI pipeline, run here in graph order: the
    builds, publish, verify in a fresh root, the short cluster, the report."""
    args = [a for c in quick_imports() for a in ("--import", c)]
    rc = main(cs(out, "ci", "--dry-run", *args))
    captured = capsys.readouterr()
    assert rc == 0, captured.out[-3000:]
    summary = captured.out.strip().splitlines()[-1]
    assert re.match(r"\d+ passed, 0 failed", summary), summary
    for job in ("build-cheap", "build-cluster-glue", "publish", "verify", "verify-cluster",
                "report"):
        assert f"[ci] {job}: ok" in captured.out


def test_build_results(out: Path) -> None:
    meta = out / "trixie/artifacts/ubuntu-cluster/ubuntu-cluster_1.0+cluster13_all.deb"
    fields = subprocess.run(["dpkg-deb", "-f", str(meta), "Depends", "Recommends"],
                            capture_output=True, text=True, check=True).stdout
    assert "pacemaker, corosync, crmsh | pcs, resource-agents, fence-agents" in fields
    assert "keepalived" in fields.split("Recommends:")[1]
    migrate = out / "trixie/artifacts/cluster-migrate/cluster-migrate_1.0+cluster13_all.deb"
    listing = subprocess.run(["dpkg-deb", "-c", str(migrate)], capture_output=True,
                             text=True, check=True).stdout
    assert "./usr/bin/cluster-migrate" in listing
    assert "./usr/lib/python3/dist-packages/cluster_migrate/cli.py" in listing
    for name in ("ubuntu-cluster", "cluster-tasks", "cluster-fs-stack", "openais",
                 "cluster-stack-upstart", "cluster-migrate"):
        st = json.loads((out / f"trixie/state/{name}.json").read_text())
        assert st["lintian"]["error"] == 0, f"{name}: lintian errors"
        log = (out / f"trixie/logs/{name}.log").read_text()
        assert log.count("$ sbuild ") == 1
        # The build root went where `--scratch auto` chose, and is gone again.
        unpacked = re.search(r"^Unpacking \S+\.tar\.zst to (\S+)\.\.\.$", log, re.M)
        assert unpacked, f"{name}: no unpack line in the sbuild log"
        where = scratch.choose("auto")
        expected = f"{where}/clusterstack-{name}_" if where else "/tmp/tmp.sbuild."
        assert unpacked.group(1).startswith(expected), unpacked.group(1)
        assert not where or not Path(unpacked.group(1)).parent.exists()
    report = json.loads((out / "trixie/report.json").read_text())
    assert {c["component"] for c in report["components"]} >= {"ubuntu-cluster", "pacemaker"}
    assert (out / "trixie/report.html").read_text().count("<tr>") > 20


def test_second_build_does_nothing(out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [a for c in quick_imports() for a in ("--import", c)]
    assert main(cs(out, "build", *args)) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1].endswith(" up-to-date")
    assert " built " not in captured.out and "fetch " not in captured.err


def test_verify_table(out: Path) -> None:
    log = (out / "ci-dry-run.log").read_text()
    assert "6 passed, 0 failed" in log
    for check in ("apt-get update (signature)", "apt-get install ubuntu-cluster",
                  "cluster-stack-upstart installed", "tasksel --list-tasks",
                  "tasksel install cluster-node"):
        assert re.search(rf"^{re.escape(check)} +PASS ", log, re.M), check


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
    from builder import profile
    from builder.fetch import Fetcher
    from builder.upstream import UpstreamArchive
    prof = profile.load(ROOT, "trixie")
    fetcher = Fetcher(Path.home() / ".cache/clusterstack/downloads")
    upstream = UpstreamArchive(prof, fetcher, Runner(), tmp_path)
    (esmtp,) = [p for p in upstream.binaries_of_source("esmtp") if p.package == "esmtp"]
    deb = fetcher.fetch_verified(esmtp.url, esmtp.sha256, esmtp.size)
    with pytest.raises(linkage.LinkageError, match=r"esmtp.*(links|names a forbidden)"):
        linkage.check([deb], ("libesmtp",), Runner())
