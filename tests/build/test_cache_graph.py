"""The cache follows the graph: one changed patch rebuilds that component and
its reverse build-dependencies only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.sourcestack import GOOD_PATCH, SourceStack

from builder.base import digest, graph
from builder.base.command import Runner
from builder.base.fetch import Fetcher
from builder.base.progress import Progress
from builder.base.workspace import Workspace
from builder.build import state
from builder.build.analysis import Analysis, Contexts, analyse
from builder.build.build import Builder, BuildFailed
from builder.build.outcome import Outcome, Status
from builder.build.scheduler import estimate
from builder.stack.stack import Stack
from builder.tree.strategy import Artifacts


def builder_for(st: SourceStack) -> Builder:
    ws = Workspace.create(st.dir, st.out, st.root / "cache")
    return Builder(Stack.load(ws, "fake"), Runner(), Fetcher(ws.cache_dir / "downloads"),
                   Progress(stream=open("/dev/null", "w")))


def analysis_of(st: SourceStack) -> Analysis:
    """What a build of the stack would find, without a Builder."""
    b = builder_for(st)
    return analyse(Contexts.create(b.stack, b.runner, b.fetcher), b.progress)


def pretend_built(st: SourceStack) -> None:
    """Record every stale component as built from its current inputs."""
    b = builder_for(st)
    found = analysis_of(st)
    for name in found.stale:
        e = found.entries[name]
        arts = b.stack.workspace.artifacts_dir("fake", name)
        arts.mkdir(parents=True, exist_ok=True)
        (arts / f"{name}.deb").write_text("x")
        state.write(b.store.state_dir, state.ComponentState(
            component=name, key=e.key, inputs=e.own, own_key=digest.of_mapping(e.own),
            source=name, version="1", debs=[f"{name}.deb"], binaries=sorted(e.binaries),
            build_depends=e.build_depends))


@pytest.fixture
def chain(source_stack: SourceStack) -> SourceStack:
    # libbase <- middle <- top, and an unrelated "loner".
    source_stack.component("base", binary="libbase", patches={"0001-good.patch": GOOD_PATCH})
    source_stack.component("middle", binary="libmiddle", build_depends="libbase")
    source_stack.component("top", binary="top", build_depends="libmiddle")
    source_stack.component("loner")
    return source_stack


def test_graph_follows_build_depends(chain: SourceStack) -> None:
    found = analysis_of(chain)
    deps, stale = found.deps, found.stale
    assert deps == {"base": set(), "middle": {"base"}, "top": {"middle"}, "loner": set()}
    order = graph.order(deps)
    assert order.index("base") < order.index("middle") < order.index("top")
    assert graph.closure(deps, "top") == {"middle", "base"}
    assert sorted(stale) == ["base", "loner", "middle", "top"]


def test_nothing_changed_nothing_stale(chain: SourceStack) -> None:
    pretend_built(chain)
    assert analysis_of(chain).stale == []


def test_changed_patch_rebuilds_reverse_build_deps(chain: SourceStack) -> None:
    pretend_built(chain)
    patch = chain.dir / "patches/base/0001-good.patch"
    patch.write_text(patch.read_text().replace("+cluster", "+cluster stack"))
    assert sorted(analysis_of(chain).stale) == ["base", "middle", "top"]


def test_changed_leaf_rebuilds_only_itself(chain: SourceStack) -> None:
    pretend_built(chain)
    control = chain.dir / "packaging/top/debian/control.j2"
    control.write_text(control.read_text().replace("A test.", "A changed test."))
    assert analysis_of(chain).stale == ["top"]


def test_changed_profile_rebuilds_everything(chain: SourceStack) -> None:
    pretend_built(chain)
    profile = chain.dir / "packaging/profiles/fake.yaml"
    profile.write_text(profile.read_text().replace('"+test1"', '"+test2"'))
    assert sorted(analysis_of(chain).stale) == ["base", "loner", "middle", "top"]


def test_lost_artifact_is_rebuilt(chain: SourceStack) -> None:
    pretend_built(chain)
    (chain.out / "fake/artifacts/middle/middle.deb").unlink()
    assert analysis_of(chain).stale == ["middle"]


def test_missing_patch_dir_is_an_input_too(chain: SourceStack, tmp_path: Path) -> None:
    pretend_built(chain)
    (chain.dir / "patches/loner").mkdir()
    (chain.dir / "patches/loner/series").write_text("")
    assert analysis_of(chain).stale == ["loner"]


def test_critical_path_ranks_long_chains_first() -> None:
    deps = {"base": set(), "middle": {"base"}, "top": {"middle"}, "loner": set()}
    rank = graph.critical_path(deps, {"base": 10, "middle": 10, "top": 10, "loner": 25})
    assert rank == {"base": 30, "middle": 20, "top": 10, "loner": 25}
    heavy = graph.critical_path(deps, {"base": 10, "middle": 10, "top": 10, "loner": 40})
    assert max(heavy, key=heavy.__getitem__) == "loner"


def test_scheduler_starts_the_longest_chain_first(chain: SourceStack,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # By name "loner" would come second; the chain base -> middle -> top is
    # longer, so middle goes before it.  A remembered long duration turns it round.
    b = builder_for(chain)
    started: list[str] = []

    def record(e, extra, started_at):  # the scheduling is under test, not sbuild
        started.append(e.name)
        return Outcome(e.name, "built")

    monkeypatch.setattr(b, "_one", record)
    b.run()
    assert started[:2] == ["base", "middle"]

    b = builder_for(chain)
    state.write(b.store.state_dir, state.ComponentState(
        component="loner", key="old", inputs={}, own_key="old", source="loner",
        version="1", debs=[], duration=5000.0))
    started.clear()
    monkeypatch.setattr(b, "_one", record)
    b.run()
    assert started[0] == "loner"


def test_first_build_is_estimated_from_its_source_size(chain: SourceStack) -> None:
    entries = analysis_of(chain).entries
    small = estimate(entries["base"])
    assert entries["loner"].tree is not None
    (entries["loner"].tree.parent / "loner_1.orig.tar.gz").write_bytes(b"\0" * 4_000_000)
    assert estimate(entries["loner"]) - small > 150


def test_an_os_error_in_a_build_is_that_components_failure(
        chain: SourceStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a bare traceback: the component fails with the message, what builds
    against it is skipped, the others go on, and the report is written."""
    b = builder_for(chain)

    def make(e, ctx, dest):  # the disk fills up while "base" builds
        if e.name == "base":
            raise OSError(28, "No space left on device")
        return Artifacts(e.name, "1")

    monkeypatch.setattr(b, "_make", make)
    with pytest.raises(BuildFailed) as exc:
        b.run()
    by_name = {o.component: o for o in exc.value.outcomes}
    assert (by_name["base"].status, by_name["base"].stage) == (Status.FAILED, "build")
    assert "No space left on device" in by_name["base"].error
    assert by_name["middle"].status == by_name["top"].status == Status.SKIPPED
    assert by_name["loner"].status == Status.BUILT
    report = json.loads((chain.out / "fake/report.json").read_text())
    assert {c["component"]: c["status"] for c in report["components"]} == {
        "base": "failed", "middle": "skipped", "top": "skipped", "loner": "built"}
