"""The cache follows the graph: one changed patch rebuilds that component and
its reverse build-dependencies only."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.sourcestack import GOOD_PATCH, SourceStack

from builder import digest, graph, state
from builder.build import Builder, estimate
from builder.command import Runner
from builder.fetch import Fetcher
from builder.outcome import Outcome
from builder.progress import Progress
from builder.stack import Stack
from builder.workspace import Workspace


def builder_for(st: SourceStack) -> Builder:
    ws = Workspace.create(st.dir, st.out, st.root / "cache")
    return Builder(Stack.load(ws, "fake"), Runner(), Fetcher(ws.cache_dir / "downloads"),
                   Progress(stream=open("/dev/null", "w")))


def pretend_built(b: Builder) -> None:
    """Record every stale component as built from its current inputs."""
    entries, _, stale = b.analyse()
    for name in stale:
        e = entries[name]
        arts = b.stack.workspace.artifacts_dir("fake", name)
        arts.mkdir(parents=True, exist_ok=True)
        (arts / f"{name}.deb").write_text("x")
        state.write(b.state_dir, state.ComponentState(
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
    _, deps, stale = builder_for(chain).analyse()
    assert deps == {"base": set(), "middle": {"base"}, "top": {"middle"}, "loner": set()}
    order = graph.order(deps)
    assert order.index("base") < order.index("middle") < order.index("top")
    assert graph.closure(deps, "top") == {"middle", "base"}
    assert sorted(stale) == ["base", "loner", "middle", "top"]


def test_nothing_changed_nothing_stale(chain: SourceStack) -> None:
    pretend_built(builder_for(chain))
    assert builder_for(chain).analyse()[2] == []


def test_changed_patch_rebuilds_reverse_build_deps(chain: SourceStack) -> None:
    pretend_built(builder_for(chain))
    patch = chain.dir / "patches/base/0001-good.patch"
    patch.write_text(patch.read_text().replace("+cluster", "+cluster stack"))
    assert sorted(builder_for(chain).analyse()[2]) == ["base", "middle", "top"]


def test_changed_leaf_rebuilds_only_itself(chain: SourceStack) -> None:
    pretend_built(builder_for(chain))
    control = chain.dir / "packaging/top/debian/control.j2"
    control.write_text(control.read_text().replace("A test.", "A changed test."))
    assert builder_for(chain).analyse()[2] == ["top"]


def test_changed_profile_rebuilds_everything(chain: SourceStack) -> None:
    pretend_built(builder_for(chain))
    profile = chain.dir / "packaging/profiles/fake.yaml"
    profile.write_text(profile.read_text().replace('"+test1"', '"+test2"'))
    assert sorted(builder_for(chain).analyse()[2]) == ["base", "loner", "middle", "top"]


def test_lost_artifact_is_rebuilt(chain: SourceStack) -> None:
    pretend_built(builder_for(chain))
    (chain.out / "fake/artifacts/middle/middle.deb").unlink()
    assert builder_for(chain).analyse()[2] == ["middle"]


def test_missing_patch_dir_is_an_input_too(chain: SourceStack, tmp_path: Path) -> None:
    pretend_built(builder_for(chain))
    (chain.dir / "patches/loner").mkdir()
    (chain.dir / "patches/loner/series").write_text("")
    assert builder_for(chain).analyse()[2] == ["loner"]


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
    state.write(b.state_dir, state.ComponentState(
        component="loner", key="old", inputs={}, own_key="old", source="loner",
        version="1", debs=[], duration=5000.0))
    started.clear()
    monkeypatch.setattr(b, "_one", record)
    b.run()
    assert started[0] == "loner"


def test_first_build_is_estimated_from_its_source_size(chain: SourceStack) -> None:
    entries, _, _ = builder_for(chain).analyse()
    small = estimate(entries["base"])
    assert entries["loner"].tree is not None
    (entries["loner"].tree.parent / "loner_1.orig.tar.gz").write_bytes(b"\0" * 4_000_000)
    assert estimate(entries["loner"]) - small > 150
