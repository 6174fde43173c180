"""What makes a component stale, and that finding out is cheap (issue 19).

A stack with one component of each strategy (and both generators) is
recorded as built; then each kind of input is changed in turn.  The changed
component, and only what builds against it, must be stale; an unchanged stack
must be analysed without rendering any tree or reading whole indices.  No
timings here: what is checked is the work done, not how long it took.
"""

from __future__ import annotations

import hashlib
import io
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.fakearchive import FakeArchive, make_deb
from support.sourcestack import GOOD_PATCH, SourceStack
from support.tamper import publish_with_sources, rebuild_recipe

from builder.base import digest
from builder.base.command import Runner
from builder.base.fetch import Fetcher
from builder.base.progress import Progress
from builder.base.workspace import Workspace
from builder.build import state
from builder.build.analysis import Analysis, Contexts, analyse
from builder.build.build import Builder
from builder.build.outcome import Status
from builder.build.plan import make_plan
from builder.sources.upstream import UpstreamArchive
from builder.stack.stack import Stack
from builder.tree.strategy import Action

ROOT = Path(__file__).parents[2]
EVERY = ["base", "cluster-stack-upstart", "demosrc", "dh", "top", "ubuntu-cluster"]


@dataclass
class Run:
    """One analysis, and what it said on the progress stream."""

    found: Analysis
    said: str

    @property
    def rendered(self) -> list[str]:
        words = [line.partition("] ")[2].split() for line in self.said.splitlines()]
        return sorted(w[0] for w in words if w[1:2] == ["render"])


def workspace(st: SourceStack) -> Workspace:
    return Workspace.create(st.dir, st.out, st.root / "cache")


def contexts(st: SourceStack) -> Contexts:
    ws = workspace(st)
    return Contexts.create(Stack.load(ws, "fake"), Runner(), Fetcher(ws.cache_dir / "downloads"))


def analysis(st: SourceStack) -> Run:
    said = io.StringIO()
    return Run(analyse(contexts(st), Progress(stream=said)), said.getvalue())


def pretend_built(st: SourceStack) -> None:
    """Record every stale component as built from its current inputs."""
    found = analysis(st).found
    ws = workspace(st)
    for name in found.stale:
        e = found.entries[name]
        arts = ws.artifacts_dir("fake", name)
        arts.mkdir(parents=True, exist_ok=True)
        (arts / f"{name}.deb").write_text("x")
        state.write(ws.state_dir("fake"), state.ComponentState(
            component=name, key=e.key, inputs=e.own, own_key=digest.of_mapping(e.own),
            source=name, version="1", debs=[f"{name}.deb"], binaries=sorted(e.binaries),
            build_depends=e.build_depends, sha256=state.digests(arts, [f"{name}.deb"])))


@pytest.fixture
def built(source_stack: SourceStack) -> SourceStack:
    """Every strategy and both generators, recorded as built."""
    st = source_stack
    # package: an upstream tarball, our patch; `top` builds against it.
    st.component("base", binary="libbase", patches={"0001-good.patch": GOOD_PATCH})
    st.component("top", build_depends="libbase")
    # import: the fake archive's one binary package, from source "dh".
    (st.dir / "packaging/dh").mkdir(parents=True)
    (st.dir / "packaging/dh/recipe.yaml").write_text(
        "name: dh\ndescription: imported\nstrategy: import\nimport:\n  source: dh\n")
    # rebuild: a Debian source package of the fake archive, plus our delta.
    archive = FakeArchive(st.mirror, st.url, st.key)
    publish_with_sources(archive, "fakesuite", st.root / "srcpkg")
    (st.dir / "packaging/demosrc").mkdir(parents=True)
    (st.dir / "packaging/demosrc/recipe.yaml").write_text(rebuild_recipe())
    # native, with each generator: the project's own recipes, seed and jobs.
    for name in ("ubuntu-cluster", "cluster-stack-upstart"):
        shutil.copytree(ROOT / "packaging" / name, st.dir / "packaging" / name)
    shutil.copy(ROOT / "tasksel/cluster-node.seed", st.dir / "tasksel")
    shutil.copytree(ROOT / "upstart", st.dir / "upstart")
    pretend_built(st)
    return st


def test_unchanged_inputs_are_up_to_date_without_rendering(built: SourceStack) -> None:
    run = analysis(built)
    assert sorted(run.found.entries) == EVERY
    assert run.found.stale == []
    assert run.rendered == []


def test_a_no_op_plan_and_build_read_no_whole_index(built: SourceStack,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # `provided` is every name of the base archive's Packages: only a build
    # of a stale source component needs it.
    def everything(self: UpstreamArchive) -> set[str]:
        raise AssertionError("a no-op read every binary package name of the base archive")

    monkeypatch.setattr(UpstreamArchive, "provided", property(everything))
    rows = make_plan(contexts(built), Progress(stream=io.StringIO()))
    assert {r.component: r.action for r in rows} == {n: Action.UP_TO_DATE for n in EVERY}
    ws = workspace(built)
    b = Builder(Stack.load(ws, "fake"), Runner(), Fetcher(ws.cache_dir / "downloads"),
                Progress(stream=io.StringIO()))
    assert {o.component: o.status for o in b.run()} == {n: Status.UP_TO_DATE for n in EVERY}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path} has no {old!r}"
    path.write_text(text.replace(old, new, 1))


def change_template(st: SourceStack) -> None:
    edit(st.dir / "packaging/top/debian/control.j2", "A test.", "A changed test.")


def change_patch(st: SourceStack) -> None:
    edit(st.dir / "patches/base/0001-good.patch", "+cluster", "+cluster stack")


def change_recipe(st: SourceStack) -> None:
    edit(st.dir / "packaging/demosrc/recipe.yaml", "reason: test", "reason: a new reason")


def change_profile(st: SourceStack) -> None:
    edit(st.dir / "packaging/profiles/fake.yaml", '"+test1"', '"+test2"')


def change_tarball_pin(st: SourceStack) -> None:
    # A new upstream tarball, and the recipe pinning its sha256.
    _url, sha = st.tarball("base", {"hello.txt": "hello\nworld\n", "NEWS": "1.0.1\n"})
    recipe = st.dir / "packaging/base/recipe.yaml"
    old = next(ln for ln in recipe.read_text().splitlines() if "sha256:" in ln)
    edit(recipe, old, f'    sha256: "{sha}"')


def change_dsc_pin(st: SourceStack) -> None:
    dsc = next((st.mirror / "pool/main").glob("demosrc_*.dsc"))
    sha = hashlib.sha256(dsc.read_bytes()).hexdigest()
    recipe = st.dir / "packaging/demosrc/recipe.yaml"
    recipe.write_text(recipe.read_text() + f"  dsc_sha256: {sha}\n")


def change_upstream_release(st: SourceStack) -> None:
    # The base archive moves on (a point release): what is imported from it
    # is stale, what is built from pinned sources is not.
    debs = st.root / "debs"
    FakeArchive(st.mirror, st.url, st.key).publish(
        "fakesuite", [*debs.glob("*.deb"), make_deb(debs, "extra-tool", "1.0", source="extra")])


def change_seed(st: SourceStack) -> None:
    seed = st.dir / "tasksel/cluster-node.seed"
    seed.write_text(seed.read_text() + "\n")


def change_preseed_template(st: SourceStack) -> None:
    # The cluster-node-preseed generator's input.
    template = st.dir / "packaging/ubuntu-cluster/templates/cluster-node.preseed.j2"
    template.write_text(template.read_text() + "# changed\n")


def change_upstart_job(st: SourceStack) -> None:
    # The upstart-jobs generator's input.
    job = st.dir / "upstart/corosync.conf.j2"
    job.write_text(job.read_text() + "# changed\n")


@pytest.mark.parametrize(("change", "stale"), [
    (change_template, ["top"]),
    (change_patch, ["base", "top"]),
    (change_recipe, ["demosrc"]),
    (change_profile, EVERY),
    (change_tarball_pin, ["base", "top"]),
    (change_dsc_pin, ["demosrc"]),
    (change_upstream_release, ["dh"]),
    (change_seed, ["ubuntu-cluster"]),
    (change_preseed_template, ["ubuntu-cluster"]),
    (change_upstart_job, ["cluster-stack-upstart"]),
], ids=lambda v: v.__name__.removeprefix("change_") if callable(v) else None)
def test_a_changed_input_makes_its_component_stale(
        built: SourceStack, change: Callable[[SourceStack], None], stale: list[str]) -> None:
    change(built)
    run = analysis(built)
    assert sorted(run.found.stale) == stale
    # Only a tree whose own inputs changed is rendered again; a reverse
    # build-dependency is stale by its key and keeps what it learned.
    builds = {n for n, e in run.found.entries.items() if e.builds}
    changed_own = {n for n, e in run.found.entries.items()
                   if e.previous and e.previous.own_key != digest.of_mapping(e.own)}
    assert run.rendered == sorted(builds & changed_own)
