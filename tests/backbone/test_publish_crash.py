"""A publish killed at any step, and apt readers racing publishes.

Every kill point is a real `clusterstack publish` subprocess, paused at the
step by CLUSTERSTACK_PUBLISH_PAUSE_AT and killed with SIGKILL there.  After
each: the published repository is the previous one (or, past the switch,
the complete new one), apt accepts it, and the next publish succeeds and
leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support.fakearchive import StackUnderTest

from builder.base.command import Runner
from builder.base.serve import serve
from builder.cli import main
from builder.repo import publish as publish_module
from builder.repo.publish import KEEP_RELEASES, PAUSE_ENV, PAUSE_FILE_ENV, STEPS
from builder.repo.signing import HOME_PREFIX, scratch_root
from builder.repo.validity import apt_errors, apt_update

RUN = Runner()


def link(stack: StackUnderTest) -> Path:
    return stack.out / "public" / "fake"


def snapshot(repo: Path) -> dict[str, str]:
    return {str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(repo.rglob("*")) if p.is_file()}


def sources_line(stack: StackUnderTest, url: str, work: Path) -> str:
    """The node's sources line, the key installed once as a node keeps it."""
    work.mkdir(parents=True, exist_ok=True)
    key = work / "clusterstack-archive-keyring.gpg"
    key.write_bytes((link(stack) / "clusterstack-archive-keyring.gpg").read_bytes())
    return f"deb [signed-by={key}] {url}/fake fakesuite main\n"


def apt_accepts(stack: StackUnderTest, work: Path) -> None:
    with serve(stack.out / "public") as url:
        result = apt_update(work, sources_line(stack, url, work), RUN)
    assert result.returncode == 0 and not apt_errors(result), result.stdout + result.stderr_tail


def kill_publish_at(stack: StackUnderTest, step: str, tmp_path: Path) -> int:
    """Run `clusterstack publish` until it pauses at `step`; SIGKILL it there."""
    marker = tmp_path / f"paused-at-{step}"
    env = {**os.environ, PAUSE_ENV: step, PAUSE_FILE_ENV: str(marker)}
    proc = subprocess.Popen([sys.executable, "-m", "builder.cli", *stack.argv("publish")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if not marker.exists():
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"publish never reached step {step}: {err.decode()[-2000:]}")
    os.killpg(proc.pid, signal.SIGKILL)   # the whole job, as a CI runner kills it
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    return proc.pid


@pytest.mark.parametrize("step", STEPS)
def test_publish_killed_at_each_step(stack: StackUnderTest, step: str, tmp_path: Path) -> None:
    assert main(stack.argv("build")) == 0
    assert main(stack.argv("publish")) == 0
    # A second release, so that pruning has something to do.
    assert main(stack.argv("publish")) == 0
    before_target, before = os.readlink(link(stack)), snapshot(link(stack))
    pid = kill_publish_at(stack, step, tmp_path)
    if step == "switched":
        # Killed after the switch: the new release is complete and current.
        assert os.readlink(link(stack)) != before_target
        after = snapshot(link(stack))
        assert {"dists/fakesuite/InRelease", "dists/fakesuite/Release.gpg",
                "clusterstack-archive-keyring.gpg"} <= set(after)
    else:
        assert os.readlink(link(stack)) == before_target
        assert snapshot(link(stack)) == before
    apt_accepts(stack, tmp_path / "apt-after-kill")
    # The next publish succeeds and clears what the killed one left.
    assert main(stack.argv("publish")) == 0
    releases = stack.out / "public" / ".releases"
    assert not list(releases.glob(".staging-*"))
    assert not list((stack.out / "public").glob(".fake.*.link"))
    assert len(list(releases.glob("fake-*"))) == KEEP_RELEASES
    assert not list(scratch_root().glob(f"{HOME_PREFIX}{pid}-*")), "killed run's GNUPGHOME kept"
    apt_accepts(stack, tmp_path / "apt-after-next")


def test_failed_publish_removes_its_staging(stack: StackUnderTest, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(stack.argv("build")) == 0
    assert main(stack.argv("publish")) == 0
    fakebin = tmp_path / "bin"
    fakebin.mkdir()
    (fakebin / "apt-ftparchive").write_text("#!/bin/sh\necho 'disk full' >&2\nexit 1\n")
    (fakebin / "apt-ftparchive").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fakebin}:{os.environ['PATH']}")
    capsys.readouterr()
    assert main(stack.argv("publish")) == 1
    err = capsys.readouterr().err
    assert "command failed with exit status 1: apt-ftparchive" in err and "disk full" in err
    assert not list((stack.out / "public/.releases").glob(".staging-*"))
    assert not list(scratch_root().glob(f"{HOME_PREFIX}{os.getpid()}-*"))


def test_signing_cleanup_never_hides_the_error(stack: StackUnderTest,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(stack.argv("build")) == 0
    assert main(stack.argv("publish")) == 0
    real = publish_module._index

    def index_then_lose_path(*args: object, **kwargs: object) -> None:
        real(*args, **kwargs)  # type: ignore[arg-type]
        monkeypatch.setenv("PATH", "/nonexistent")   # apt-ftparchive and gpgconf gone

    monkeypatch.setattr(publish_module, "_index", index_then_lose_path)
    capsys.readouterr()
    assert main(stack.argv("publish")) == 1
    err = capsys.readouterr().err
    assert "exit status 127: apt-ftparchive" in err and "gpgconf" not in err


def _race(stack: StackUnderTest, tmp_path: Path, publishes: int) -> dict[str, int]:
    """apt-get update in a loop against the served repository while
    `publishes` publishes run, each changing the Packages index."""
    profile = stack.dir / "packaging/profiles/fake.yaml"
    profile.write_text(profile.read_text().replace("mode: desc-key", "mode: task-fields"))
    seed = stack.dir / "tasksel/demo-node.seed"

    def change(i: int) -> None:
        seed.write_text(f"Task-Description: Demo node {i}\nTask-Key: demo-daemon\n\n"
                        f" * libdemo1\n")
        for old in stack.dir.glob("tasksel/round-*.seed"):
            old.unlink()
        (stack.dir / f"tasksel/round-{i}.seed").write_text(
            f"Task-Description: round {i}\nTask-Key: libdemo1\n\n")

    change(0)
    assert main(stack.argv("build")) == 0
    assert main(stack.argv("publish")) == 0
    figures = {"updates": 0, "new_inrelease": 0, "hash_sum_mismatch": 0, "signature": 0,
               "other_errors": 0, "publishes": 0}
    failures: list[str] = []
    stop = threading.Event()
    with serve(stack.out / "public") as url:
        line = sources_line(stack, url, tmp_path / "reader")

        def reader() -> None:
            while not stop.is_set():
                res = apt_update(tmp_path / "reader", line, RUN, timeout=60)
                text = res.stdout + res.stderr_tail
                figures["updates"] += 1
                figures["new_inrelease"] += "InRelease [" in text
                errors = apt_errors(res)
                if res.returncode != 0 or errors:
                    failures.append(text)
                    joined = "\n".join(errors)
                    if "Hash Sum mismatch" in text or "unexpected size" in text:
                        figures["hash_sum_mismatch"] += 1
                    elif any(w in joined for w in ("GPG", "signature", "NO_PUBKEY",
                                                   "not signed", "BADSIG")):
                        figures["signature"] += 1
                    else:
                        figures["other_errors"] += 1

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        try:
            for i in range(1, publishes + 1):
                change(i)
                assert main(stack.argv("publish")) == 0
                figures["publishes"] += 1
        finally:
            stop.set()
            thread.join(120)
    figures["failures_sample"] = len(failures)
    print(f"\nreader race: {figures}")
    if failures:
        print(failures[0][-1500:])
    return figures


def test_readers_racing_publishes(stack: StackUnderTest, tmp_path: Path) -> None:
    figures = _race(stack, tmp_path, publishes=24)
    assert figures["publishes"] == 24
    assert figures["updates"] >= 10 and figures["new_inrelease"] >= 3, figures
    assert figures["hash_sum_mismatch"] == 0 and figures["signature"] == 0, figures
    assert figures["other_errors"] == 0, figures


def _listed_by_hash(repo: Path) -> list[str]:
    """The by-hash paths a client takes from this InRelease (SHA256 ones)."""
    text = (repo / "dists/fakesuite/InRelease").read_text()
    sums = text.split("SHA256:\n", 1)[1].split("\n-----BEGIN PGP SIGNATURE")[0]
    out = []
    for line in sums.splitlines():
        if not line.startswith(" "):
            break
        digest, _, name = line.split()
        out.append(f"dists/fakesuite/{Path(name).parent}/by-hash/SHA256/{digest}")
    return out


@pytest.mark.parametrize("carried", [True, False])
def test_client_of_an_earlier_inrelease_finds_its_files(stack: StackUnderTest,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        carried: bool) -> None:
    """Deterministically, what the race needs: the files an InRelease lists
    two publishes ago are still served; and without carrying them, not."""
    if not carried:
        monkeypatch.setattr(publish_module, "_carry", lambda staging, previous, gens, now: [])
    profile = stack.dir / "packaging/profiles/fake.yaml"
    profile.write_text(profile.read_text().replace("mode: desc-key", "mode: task-fields"))
    assert main(stack.argv("build")) == 0
    listed: list[list[str]] = []
    for i in range(3):
        for old in stack.dir.glob("tasksel/*.seed"):
            old.unlink()
        (stack.dir / f"tasksel/round-{i}.seed").write_text(   # its name: the Task value
            f"Task-Description: round {i}\nTask-Key: demo-daemon\n\n * libdemo1\n")
        assert main(stack.argv("publish")) == 0
        listed.append(_listed_by_hash(link(stack)))
    assert len(set(map(tuple, listed))) == 3, "the indexes did not change"
    missing = [rel for rel in listed[0] + listed[1] if not (link(stack) / rel).is_file()]
    if carried:
        assert missing == []
    else:
        assert missing, "the control should lose the earlier indexes"
