"""Issue 19, item 2: the native packages are built together, in one build root.

The stale components whose strategy shares build roots form one group; the
scheduler gives it one slot; the backend opens one session for all of them
(unpack once, the union of their Build-Depends once), and each still ends up
with its own artifacts, state, log and outcome, as when it was built alone.
The backend here is a fake that records what it was asked: the sharing is
under test, not sbuild (the real root is measured in the issue's report).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import pytest
from support.sourcestack import SourceStack

from builder.base.command import Runner
from builder.base.fetch import Fetcher
from builder.base.progress import Progress
from builder.base.workspace import Workspace
from builder.build import batch, scheduler, state
from builder.build.build import Builder
from builder.build.outcome import Outcome, Status
from builder.buildroot import lintian
from builder.buildroot.backend import Backend, BuildRequest, BuildResult, BuildSession
from builder.buildroot.backends import sharedroot
from builder.stack.stack import Stack
from builder.tree.strategy import for_recipe

ROOT = Path(__file__).parents[2]
NATIVES = ("openais", "cluster-fs-stack")


def fake_build(request: BuildRequest) -> BuildResult:
    """What sbuild leaves: a .deb, a .buildinfo and the .changes naming them."""
    stem = request.dsc.stem
    request.out_dir.mkdir(parents=True, exist_ok=True)
    source = stem.split("_")[0]
    deb, info = f"{stem}_all.deb", f"{stem}_all.buildinfo"
    (request.out_dir / deb).write_bytes(b"deb of " + stem.encode())
    (request.out_dir / info).write_text(f"Source: {source}\n")
    changes = request.out_dir / f"{stem}_all.changes"
    changes.write_text(f"Format: 1.8\nSource: {source}\nBinary: {source}\nArchitecture: all\n"
                       f"Files:\n 0 1 misc optional {info}\n 0 1 misc optional {deb}\n")
    return BuildResult(changes=changes, debs=[request.out_dir / deb])


class FakeSession(BuildSession):
    def __init__(self, requests: Sequence[BuildRequest]) -> None:
        self.requests = list(requests)
        self.built: list[str] = []

    def build(self, request: BuildRequest) -> BuildResult:
        self.built.append(request.dsc.name.split("_")[0])
        return fake_build(request)


class FakeBackend(Backend):
    name: ClassVar[str] = "fake"

    def __init__(self, shares: bool = True) -> None:
        self.shares = shares
        self.sessions: list[FakeSession] = []
        self.alone: list[str] = []

    @classmethod
    def create(cls, workspace, profile, runner, options):  # pragma: no cover - not loaded
        return cls()

    @property
    def shares_build_root(self) -> bool:
        return self.shares

    def prepare(self) -> None:
        pass

    def build(self, request: BuildRequest) -> BuildResult:
        self.alone.append(request.dsc.name.split("_")[0])
        return fake_build(request)

    @contextmanager
    def session(self, requests: Sequence[BuildRequest], runner: Runner
                ) -> Iterator[BuildSession]:
        runner.run(["echo", "unpack and install, once"])
        s = FakeSession(requests)
        self.sessions.append(s)
        yield s


def fake_lintian(changes: Sequence[Path], runner: Runner
                 ) -> tuple[str, int, dict[Path, list[str]]]:
    said = {c: [f"W: {c.name.split('_')[0]}: some-tag [usr/share/x]"] for c in changes}
    return "lintian --fake " + " ".join(map(str, changes)), 0, said


@pytest.fixture
def stack(source_stack: SourceStack, monkeypatch: pytest.MonkeyPatch) -> SourceStack:
    """Two of the project's native recipes, a `package` chain beside them."""
    import shutil
    st = source_stack
    st.component("base", binary="libbase")
    st.component("top", build_depends="libbase")
    for name in NATIVES:
        shutil.copytree(ROOT / "packaging" / name, st.dir / "packaging" / name)
    shutil.copy(ROOT / "tasksel/cluster-fs.seed", st.dir / "tasksel")
    monkeypatch.setattr(lintian, "run_together", fake_lintian)
    monkeypatch.setattr(lintian, "run", lambda changes, runner: {"warning": 0})
    return st


def run(st: SourceStack, backend: FakeBackend, jobs: int = 2) -> tuple[list[Outcome], str]:
    ws = Workspace.create(st.dir, st.out, st.root / "cache")
    said = io.StringIO()
    b = Builder(Stack.load(ws, "fake"), Runner(), Fetcher(ws.cache_dir / "downloads"),
                Progress(stream=said), backend, jobs=jobs)
    return b.run(), said.getvalue()


def test_stale_natives_share_one_root_and_others_build_alone(stack: SourceStack) -> None:
    backend = FakeBackend()
    outcomes, said = run(stack, backend)
    assert {o.component: o.status for o in outcomes} == dict.fromkeys(
        ["base", "cluster-fs-stack", "openais", "top"], Status.BUILT)
    # One root for both natives; neither was built the one-root-each way.
    assert len(backend.sessions) == 1
    assert sorted(r.dsc.name.split("_")[0] for r in backend.sessions[0].requests) == sorted(
        NATIVES)
    assert sorted(backend.sessions[0].built) == sorted(NATIVES)
    assert sorted(backend.alone) == ["base", "top"]
    # Progress names the package and the stage.
    assert "openais" in said and "dpkg-buildpackage" in said and "shared-root" in said


def test_each_native_keeps_its_own_outputs_state_and_log(stack: SourceStack) -> None:
    run(stack, FakeBackend())
    prof = stack.out / "fake"
    report = {c["component"]: c for c in json.loads((prof / "report.json").read_text())[
        "components"]}
    for name in NATIVES:
        arts = sorted(p.name for p in (prof / "artifacts" / name).iterdir())
        st = state.read(prof / "state", name)
        assert st is not None and st.key and st.duration > 0
        # As sbuild leaves them: the state names the packages and the source,
        # the .buildinfo and .changes lie beside them.
        assert {a.rsplit(".", 1)[-1] for a in arts} == {"deb", "buildinfo", "changes", "dsc",
                                                        "xz"}
        assert sorted(st.files) == [a for a in arts if not a.endswith((".buildinfo",
                                                                       ".changes"))]
        assert set(st.sha256) == set(st.files)
        log = (prof / "logs" / f"{name}.log").read_text()
        other = next(n for n in NATIVES if n != name)
        assert "$ dpkg-source -b" in log
        assert f"# built in one build root with 1 other(s): {other}" in log
        assert "unpack and install, once" in log      # the set-up, copied in
        assert f"W: {name}: some-tag" in log and f"W: {other}: some-tag" not in log
        assert report[name]["status"] == "built" and report[name]["log"] == f"logs/{name}.log"
        assert report[name]["lintian"]["warning"] == 1
        assert report[name]["lintian_tags"] == [
            {"severity": "warning", "tag": "some-tag", "count": 1}]
    assert (prof / "logs" / f"{batch.SHARED_LOG}.log").is_file()
    # The group's times add up to its wall time, laid end to end.
    a, b = sorted((report[n] for n in NATIVES), key=lambda c: c["started"])
    assert b["started"] == pytest.approx(a["started"] + a["duration"])


def test_unchanged_natives_are_never_rebuilt(stack: SourceStack) -> None:
    run(stack, FakeBackend())
    backend = FakeBackend()
    outcomes, _ = run(stack, backend)
    assert all(o.status == Status.UP_TO_DATE for o in outcomes)
    assert backend.sessions == [] and backend.alone == []
    # One changed native: a root for it alone; the other stays as built.
    control = stack.dir / "packaging/openais/debian/control.j2"
    control.write_text(control.read_text().replace("transitional package", "transitional pkg"))
    backend = FakeBackend()
    outcomes, _ = run(stack, backend)
    assert {o.component: o.status for o in outcomes}["cluster-fs-stack"] == Status.UP_TO_DATE
    assert [s.built for s in backend.sessions] == [["openais"]]
    assert backend.alone == []


def test_a_backend_that_cannot_share_builds_one_root_each(stack: SourceStack) -> None:
    backend = FakeBackend(shares=False)
    run(stack, backend)
    assert backend.sessions == []
    assert sorted(backend.alone) == sorted(["base", "top", *NATIVES])


def test_a_failed_native_fails_alone(stack: SourceStack, monkeypatch: pytest.MonkeyPatch
                                     ) -> None:
    def build(self, request: BuildRequest) -> BuildResult:
        if request.dsc.name.startswith("openais"):
            raise sharedroot.SharedRootError("dpkg-buildpackage failed")
        return fake_build(request)

    monkeypatch.setattr(FakeSession, "build", build)
    from builder.build.build import BuildFailed
    with pytest.raises(BuildFailed) as exc:
        run(stack, FakeBackend())
    by = {o.component: o for o in exc.value.outcomes}
    assert (by["openais"].status, by["openais"].stage) == (Status.FAILED, "build")
    assert by["cluster-fs-stack"].status == Status.BUILT
    log = (stack.out / "fake/logs/openais.log").read_text()
    assert "# FAILED at stage build: dpkg-buildpackage failed" in log


# --- the grouping decision, on the project's own stack ---

def entry(strategy_shares: bool, builds: bool = True) -> SimpleNamespace:
    return SimpleNamespace(builds=builds,
                           strategy=SimpleNamespace(shares_build_root=strategy_shares))


def test_every_native_recipe_of_the_project_is_grouped(tmp_path: Path) -> None:
    """Would fail if the native packages went back to one build root each."""
    ws = Workspace.create(ROOT, tmp_path / "out", tmp_path / "cache")
    recipes = Stack.load(ws, "trixie").recipes
    natives = sorted(r.name for r in recipes if r.strategy == "native")
    assert len(natives) >= 8
    entries = {r.name: entry(for_recipe(r).shares_build_root, for_recipe(r).builds_from_source)
               for r in recipes}
    assert all(entries[n].strategy.shares_build_root for n in natives)
    assert not any(entries[r.name].strategy.shares_build_root for r in recipes
                   if r.strategy != "native")
    groups = batch.groups(sorted(entries), entries, {}, FakeBackend())
    assert groups == [tuple(natives)]


def test_grouping_leaves_out_what_would_wait_for_the_group() -> None:
    entries = {"a": entry(True), "b": entry(True), "c": entry(True), "d": entry(True),
               "x": entry(False), "imp": entry(True, builds=False)}
    # b builds against a (a member); d against x, which builds against a.
    deps = {"a": set(), "b": {"a"}, "c": set(), "d": {"x"}, "x": {"a"}, "imp": set()}
    assert batch.groups(sorted(entries), entries, deps, FakeBackend()) == [("a", "c")]
    assert batch.groups(["b", "x"], entries, deps, FakeBackend()) == [("b",)]
    assert batch.groups(sorted(entries), entries, deps, FakeBackend(shares=False)) == []
    assert batch.groups(sorted(entries), entries, deps, None) == []


def test_a_group_takes_one_slot_and_one_call() -> None:
    calls: list[tuple[str, ...]] = []

    def start(name: str) -> Outcome:
        calls.append((name,))
        return Outcome(name, Status.FAILED if name == "broken" else Status.BUILT)

    def together(names: tuple[str, ...]) -> dict[str, Outcome]:
        calls.append(names)
        return {n: Outcome(n, Status.BUILT) for n in names}

    deps = {"n1": set(), "n2": set(), "n3": {"broken"}, "broken": set(), "p": set()}
    rank = dict.fromkeys(deps, 1.0)
    out = scheduler.run(set(deps), deps, set(), rank, 1, start, together=[("n1", "n2", "n3")],
                        start_together=together)
    assert out["n3"].status == Status.SKIPPED
    assert ("n1", "n2") in calls and ("n1",) not in calls and ("n2",) not in calls
    assert {out[n].status for n in ("n1", "n2", "p")} == {Status.BUILT}


# --- the shared root's pieces ---

def test_lintian_output_of_one_run_is_split_by_package(tmp_path: Path) -> None:
    a, b = tmp_path / "a_1_all.changes", tmp_path / "b_1_all.changes"
    a.write_text("Source: a\nBinary: a a-doc\n")
    b.write_text("Source: b\nBinary: b\n")
    out = ("W: a-doc: no-manual-page [usr/bin/x]\nE: b changes: bad-thing\n"
           "W: b: other-tag\nN: a note for everyone\n")
    said = lintian.split(out, [a, b])
    assert said[a] == ["W: a-doc: no-manual-page [usr/bin/x]", "N: a note for everyone"]
    assert said[b] == ["E: b changes: bad-thing", "W: b: other-tag", "N: a note for everyone"]
    note = batch.lintian_note("lintian x", 0, 1.5, said[b], "b", 2)
    tags = note.splitlines()
    assert tags[0] == "$ lintian x" and tags[-1] == "# exit status 0 (1.5 s)"


def test_split_times_add_up_to_the_wall_time() -> None:
    assert batch.split_times([1.0, 3.0], 10.0) == [4.0, 6.0]
    assert batch.split_times([], 5.0) == []
    # Two at once: more own time than wall time, scaled down to it.
    assert batch.split_times([6.0, 2.0], 4.0) == [3.0, 1.0]


def dsc(tmp_path: Path, name: str, version: str, bd: str, indep: str = "") -> Path:
    path = tmp_path / f"{name}_{version.split(':')[-1]}.dsc"
    path.write_text(f"Format: 3.0 (native)\nSource: {name}\nVersion: {version}\n"
                    f"Build-Depends: {bd}\n" + (f"Build-Depends-Indep: {indep}\n" if indep
                                                else ""))
    return path


def test_the_root_gets_the_union_of_build_depends(tmp_path: Path) -> None:
    r1 = BuildRequest(dsc(tmp_path, "one", "1.0", "debhelper-compat (= 13)"), tmp_path, True,
                      False)
    r2 = BuildRequest(dsc(tmp_path, "two", "1:2.0-3", "debhelper-compat (= 13),\n dh-python",
                          indep="python3"), tmp_path, True, False, add_depends=("libfoo-dev",))
    depends, conflicts = sharedroot.union([r1, r2])
    assert depends == ["build-essential", "fakeroot", "debhelper-compat (= 13)", "dh-python",
                       "python3", "libfoo-dev"]
    assert conflicts == []
    assert "Build-Depends: build-essential, fakeroot, debhelper-compat (= 13)" in (
        sharedroot.needs_control([r1, r2]))
    # The build directory and command line sbuild would use.
    assert sharedroot.build_dir_name(r1.dsc) == "one-1.0"
    assert sharedroot.build_dir_name(r2.dsc) == "two-2.0"
    assert sharedroot.buildpackage_argv(r1) == [
        "dpkg-buildpackage", "--sanitize-env", "-us", "-uc", "-A", "-rfakeroot"]


def test_the_build_environment_is_sbuilds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    monkeypatch.setenv("DEB_BUILD_OPTIONS", "nocheck")
    req = BuildRequest(tmp_path / "x_1.dsc", tmp_path, True, False, parallel=2)
    env = sharedroot.inside_env(req)
    assert env["DEB_BUILD_OPTIONS"] == "nocheck parallel=2"
    assert env["LC_ALL"] == "C.UTF-8" and env["MAKEFLAGS"] == ""
    assert "DEBEMAIL" not in env   # sbuild's filter drops it too


def test_the_build_step_has_no_network(tmp_path: Path) -> None:
    runs: list[list[str]] = []

    class Recording(Runner):
        def run(self, argv, **kwargs):  # type: ignore[override]
            runs.append([str(a) for a in argv])
            return SimpleNamespace(returncode=0, stdout="", stderr_tail="")

    root = sharedroot.SharedRoot(tmp_path / "root", Recording())
    root.run(["true"], Recording(), env={}, network=False)
    root.run(["true"], Recording(), env={})
    assert "--net" in runs[0][:9] and "--net" not in runs[1]
