"""The build report as a person sees it: report.html loaded in a real headless
Chromium (Debian's package), its timeline laid out, every link followed, and a
screenshot written next to it.  No build runs: the outcomes are made up here."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest

from builder.base.serve import serve
from builder.build import report, state
from builder.build.outcome import Outcome, Status

LINTIAN_OUTPUT = """\
$ lintian --no-cfg --suppress-tags bad-distribution-in-changes-file middle_1.0_amd64.changes
E: libmiddle1: embedded-library usr/lib/libmiddle.so.1
W: middle source: debian-watch-file-is-missing
W: libmiddle1: no-manual-page usr/bin/middle-tool
W: libmiddle1: no-manual-page usr/bin/middle-other
# exit status 1 (3.2 s)
"""

# base -> middle -> top is the long chain; loner runs beside it, cached was
# not built at all, broken fails and takes after-broken with it.
DEPS = {"base": set(), "middle": {"base"}, "top": {"middle"}, "loner": set(),
        "cached": set(), "fetched": set(), "broken": set(), "after-broken": {"broken"}}


def outcomes(logs: Path) -> list[Outcome]:
    logs.mkdir(parents=True, exist_ok=True)

    def log(name: str, text: str = "") -> Path:
        path = logs / f"{name}.log"
        path.write_text(f"# clusterstack render {name} (fake)\n$ sbuild ...\n{text}")
        return path

    log("cached", "$ lintian --no-cfg cached_5.0-1_amd64.changes\n"
                  "W: cached source: newer-standards-version 4.7.2 (current is 4.6.2)\n"
                  "# exit status 0 (2.0 s)\n")
    return [
        Outcome("base", Status.BUILT, "1.0-1", "store", 40.0, 0.5, log("base"),
                lintian={"error": 0, "warning": 0}),
        Outcome("middle", "built", "1.0-1", "store", 55.0, 41.0, log("middle", LINTIAN_OUTPUT),
                lintian={"error": 1, "warning": 3}),
        Outcome("top", Status.BUILT, "2.1-1", "store", 30.0, 96.5, log("top"),
                lintian={"error": 0, "warning": 2}),
        Outcome("loner", Status.BUILT, "0.3-1", "store", 70.0, 0.6, log("loner")),
        # the builder gives no log for what it did not build: the report
        # finds the one its last build left
        Outcome("cached", Status.UP_TO_DATE, "5.0-1", lintian={"error": 0, "warning": 1}),
        Outcome("fetched", Status.FETCHED, "3.2-1", "store", 4.0, 0.4, log("fetched")),
        Outcome("broken", Status.FAILED, "", "build", 12.0, 71.0, log("broken"),
                error="sbuild failed\nsecond line"),
        Outcome("after-broken", Status.SKIPPED, stage="waiting",
                error="build-dependency broken failed"),
    ]


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """A profile's out folder with its report written, as `build` leaves it."""
    directory = tmp_path / "out" / "fake"
    report.write(directory, "fake", outcomes(directory / "logs"), 127.0, deps=DEPS)
    return directory


# ---- outcome and status ------------------------------------------------------

def test_status_is_an_enum_that_reads_as_its_string() -> None:
    o = Outcome("x", "failed")
    assert o.status is Status.FAILED and o.status == "failed" and not o.ok
    o.status = "built"   # as the builder sets it when a build succeeds
    assert o.status is Status.BUILT and o.ok
    assert json.dumps({"status": o.status}) == '{"status": "built"}'
    assert [s for s in Status if not s.ok] == [Status.FAILED, Status.SKIPPED]


def test_a_misspelt_status_is_an_error_not_ok() -> None:
    with pytest.raises(ValueError):
        Outcome("x", "missing")
    o = Outcome("x", Status.BUILT)
    with pytest.raises(ValueError):
        o.status = "bulit"


# ---- report.json -------------------------------------------------------------

def test_json_keeps_status_strings_and_names_the_critical_path(out: Path) -> None:
    data = json.loads((out / "report.json").read_text())
    by = {c["component"]: c for c in data["components"]}
    assert by["middle"]["status"] == "built" and by["cached"]["status"] == "up-to-date"
    assert [c["ok"] for c in data["components"]].count(False) == 2 and data["ok"] is False
    # 40 + 55 + 30 beats loner's 70
    assert data["critical_path"] == ["base", "middle", "top"]
    assert data["critical_path_seconds"] == 125.0
    assert by["middle"]["log"] == "logs/middle.log"
    assert by["cached"]["log"] == "logs/cached.log" and by["after-broken"]["log"] is None
    assert by["middle"]["lintian_tags"] == [
        {"severity": "error", "tag": "embedded-library", "count": 1},
        {"severity": "warning", "tag": "no-manual-page", "count": 2},
        {"severity": "warning", "tag": "debian-watch-file-is-missing", "count": 1}]


def test_critical_path_leaves_out_cache_hits() -> None:
    done = [Outcome("base", Status.UP_TO_DATE), Outcome("middle", Status.BUILT, duration=5),
            Outcome("top", Status.BUILT, duration=5), Outcome("loner", Status.BUILT, duration=8)]
    assert report.critical_path(done, DEPS) == ["middle", "top"]
    assert report.critical_path([Outcome("base", Status.UP_TO_DATE)], DEPS) == []
    assert report.critical_path(done, {}) == ["loner"]


def test_from_state_reports_an_unrecorded_build_as_not_ok(tmp_path: Path) -> None:
    directory = tmp_path / "fake"
    state.write(directory / "state", state.ComponentState(
        component="base", key="k", inputs={}, source="base", version="1.0-1",
        source_files=["base_1.0-1.dsc"], binaries=["libbase"], duration=30.0))
    state.write(directory / "state", state.ComponentState(
        component="middle", key="k", inputs={}, source="middle", version="1.0-1",
        source_files=["middle_1.0-1.dsc"], build_depends=[["libbase"]], duration=20.0))
    (directory / "logs").mkdir()
    (directory / "logs/base.log").write_text("$ sbuild ...\n")
    data = json.loads(report.from_state(directory, "fake", ["base", "middle", "top"])
                      .read_text())
    by = {c["component"]: c for c in data["components"]}
    assert by["top"]["status"] == "skipped" and by["top"]["ok"] is False
    assert "no recorded build" in by["top"]["error"]
    assert data["ok"] is False
    assert data["critical_path"] == ["base", "middle"]
    assert by["base"]["log"] == "logs/base.log" and by["middle"]["log"] is None


# ---- report.html in Chromium -------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1400,1000"]

# Loads the report in a frame of the same origin and writes down where the
# browser laid out the timeline: the DOM alone would not show a bar of width 0
# or one drawn outside the picture.
PROBE = """<!DOCTYPE html><html><body>
<iframe src="fake/report.html" style="width:1400px;height:1000px"></iframe>
<script>
window.addEventListener("load", () => {
  const d = document.querySelector("iframe").contentDocument;
  const box = (e) => { const b = e.getBoundingClientRect();
                       return {x: b.x, y: b.y, w: b.width, h: b.height}; };
  const result = {
    svg: box(d.querySelector("svg.timeline")),
    bars: [...d.querySelectorAll("svg.timeline rect.bar")].map((r) => ({
      component: r.dataset.component, critical: r.classList.contains("critical"),
      stroke: getComputedStyle(r).stroke, ...box(r)})),
    links: [...d.querySelectorAll("svg.timeline path.critical-link")].map(box),
  };
  const pre = document.createElement("pre");
  pre.id = "result";
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
});
</script></body></html>
"""


def chromium(tmp_path: Path, *args: str) -> str:
    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("chromium is not installed (it is in the Makefile's APT_PACKAGES)")
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.glob('chromium-profile-*')))}"
    profile.mkdir()
    result = subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                            capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


class Page(HTMLParser):
    """The links, ids and elements of a dumped DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "a" and a.get("href"):
            self.hrefs.append(str(a["href"]))

    def having(self, tag: str, cls: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and cls in (a.get("class") or "").split()]


def test_report_in_chromium(out: Path, tmp_path: Path) -> None:
    (out.parent / "probe.html").write_text(PROBE)
    with serve(out.parent) as base:
        url = f"{base}/fake/report.html"
        page = Page()
        page.feed(chromium(tmp_path, "--dump-dom", url))
        probe = chromium(tmp_path, "--dump-dom", f"{base}/probe.html")
        chromium(tmp_path, f"--screenshot={out / 'report.png'}", url)

        # It loads, with one bar per component that took time and the chain marked.
        bars = page.having("rect", "bar")
        assert sorted(b["data-component"] for b in bars) == [
            "base", "broken", "fetched", "loner", "middle", "top"]
        assert sorted(b["data-component"] for b in page.having("rect", "critical")) == [
            "base", "middle", "top"]
        assert len(page.having("path", "critical-link")) == 2

        # Every link resolves: logs next to the report, lintian counts to their
        # tags on the page, the tags to their description.
        logs = [h for h in page.hrefs if h.startswith("logs/")]
        in_table = [f"logs/{n}.log" for n in ("base", "middle", "top", "loner", "cached",
                                               "fetched", "broken")]
        in_lintian = ["logs/middle.log", "logs/top.log", "logs/cached.log"]
        assert sorted(logs) == sorted(in_table + in_lintian)
        for href in page.hrefs:
            if href.startswith("#"):
                assert href[1:] in page.ids, href
            elif href.startswith("https://"):
                assert href.startswith(report.LINTIAN_TAG_URL), href
            else:
                with urllib.request.urlopen(urllib.parse.urljoin(url, href)) as resp:
                    assert resp.status == 200 and resp.read(), href
        tags = [h.removeprefix(report.LINTIAN_TAG_URL) for h in page.hrefs
                if h.startswith(report.LINTIAN_TAG_URL)]
        assert tags == ["embedded-library", "no-manual-page", "debian-watch-file-is-missing",
                        "newer-standards-version"]
        assert "#lintian-middle" in page.hrefs and "#lintian-cached" in page.hrefs

    # The timeline is laid out: every bar visible inside the picture, the
    # chain one after the other, in the order it was built.
    found = re.search(r'<pre id="result">(.*?)</pre>', probe, re.S)
    assert found, probe[-2000:]
    laid = json.loads(html.unescape(found.group(1)))
    svg = laid["svg"]
    assert svg["w"] > 1000 and svg["h"] > 150
    for b in laid["bars"]:
        assert b["w"] >= 2 and b["h"] > 5, b
        assert svg["x"] <= b["x"] and b["x"] + b["w"] <= svg["x"] + svg["w"] + 1, b
    x = {b["component"]: b for b in laid["bars"]}
    assert x["base"]["x"] + x["base"]["w"] <= x["middle"]["x"] + 3
    assert x["middle"]["x"] + x["middle"]["w"] <= x["top"]["x"] + 3
    assert x["loner"]["w"] > x["top"]["w"] * 2   # 70 s against 30 s
    assert {b["stroke"] for b in laid["bars"] if b["critical"]} == {"rgb(0, 0, 0)"}
    assert {b["stroke"] for b in laid["bars"] if not b["critical"]} == {"none"}
    assert all(link["w"] > 0 or link["h"] > 0 for link in laid["links"])

    shot = (out / "report.png").read_bytes()
    assert shot.startswith(b"\x89PNG\r\n\x1a\n") and len(shot) > 20_000
