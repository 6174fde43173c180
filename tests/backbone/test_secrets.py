"""The signing key stays secret: not in logs, reports or artifacts; its
files are 0600; signing happens in a temporary GNUPGHOME that is removed."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pytest
from support.fakearchive import RUN, StackUnderTest, make_key
from support.secrets import Secret, make_secret

from builder.base.command import Runner
from builder.base.fetch import Fetcher
from builder.base.progress import Progress
from builder.base.workspace import Workspace
from builder.build.analysis import Contexts, analyse
from builder.ci import pipeline
from builder.cli import main
from builder.repo import signing
from builder.repo.signing import HOME_PREFIX, KEY_FILE, scratch_root
from builder.stack.stack import Stack


def _homes() -> set[Path]:
    return set(scratch_root().glob(f"{HOME_PREFIX}*"))


def _pid_alive(home: Path) -> bool:
    match = re.match(rf"{HOME_PREFIX}(\d+)-", home.name)
    return bool(match) and Path(f"/proc/{match.group(1)}").exists()


def _agents_for(home: Path) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "gpg-agent" in text and str(home) in text:
            found.append(text)
    return found


@pytest.fixture
def secret(tmp_path: Path) -> Secret:
    return make_secret(tmp_path / "ci-secret")


def _run_pipeline(pipe: pipeline.Pipeline, cwd: Path, log: Path) -> list[str]:
    """Every job's commands here, in graph order, one output folder standing in
    for the artifacts CI passes between jobs; the messages, as CI shows them."""
    runner = Runner(log_path=log)
    said = []
    for job in pipe.order():
        for command in job.commands:
            res = runner.run(["sh", "-ec", command], cwd=cwd, check=False)
            said.append(f"[{job.name}] $ {command}\n{res.stdout}{res.stderr_tail}")
            assert res.returncode == 0, said[-1]
    return said


def test_ci_dry_run_never_writes_the_key(stack: StackUnderTest, secret: Secret, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """The CI jobs that see the secret (builds, publish, report), run as CI
    runs them; then every byte they wrote anywhere is searched for it."""
    monkeypatch.setenv("CLUSTERSTACK_SIGNING_KEY", secret.armored)
    monkeypatch.setenv("CLUSTERSTACK_REQUIRE_SIGNING_KEY", "1")
    ws = Workspace.create(stack.dir, stack.dir / "out", stack.cache)
    st = Stack.load(ws, "fake")
    found = analyse(Contexts.create(st, Runner(), Fetcher(stack.cache / "downloads")),
                    Progress())
    pipe = pipeline.make(st, found, program=f"{sys.executable} -m builder.cli --stack "
                         f"{stack.dir} --cache {stack.cache}")
    # verify and verify-cluster boot roots; they hold no secret and are
    # tested on their own.
    pipe.jobs = [j for j in pipe.jobs if j.stage != "verify"]
    for job in pipe.jobs:
        job.needs = [n for n in job.needs if n.job not in ("verify", "verify-cluster")]
    before = _homes()
    said = _run_pipeline(pipe, stack.dir, tmp_path / "ci-run.log")
    out = stack.dir / "out"
    inrelease = out / "public/fake/dists/fakesuite/InRelease"
    status = RUN.run(["gpgv", "--status-fd", "1", "--keyring", str(secret.key.keyring),
                      str(inrelease)]).stdout
    assert f"VALIDSIG {secret.key.fingerprint}" in status
    assert (out / "fake/report.json").is_file()
    captured = capsys.readouterr()
    outputs = {"job output": "\n".join(said).encode(),
               "stdout": captured.out.encode(), "stderr": captured.err.encode()}
    for path in tmp_path.rglob("*"):
        if path.is_file() and not path.is_symlink() and \
                not path.is_relative_to(secret.key.home):
            outputs[str(path)] = path.read_bytes()
    leaks = {where: hits for where, data in outputs.items() if (hits := secret.found_in(data))}
    assert leaks == {}
    assert len(outputs) > 20 and (tmp_path / "ci-run.log").stat().st_size > 0
    # No job left a home with the key behind.
    assert [h for h in _homes() - before if not _pid_alive(h)] == []
    assert not list(out.glob("keyring*"))


def test_signing_home_is_temporary_and_removed(stack: StackUnderTest, secret: Secret,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLUSTERSTACK_SIGNING_KEY", secret.armored)
    signer = signing.load(stack.out / "keyring", RUN)
    assert os.environ.get("CLUSTERSTACK_SIGNING_KEY") is None, "children would inherit it"
    home = signer.gnupghome
    assert home.parent == scratch_root() and home.stat().st_mode & 0o777 == 0o700
    assert signer.fingerprint == secret.key.fingerprint
    probe = stack.out / "probe"
    probe.parent.mkdir(parents=True, exist_ok=True)
    probe.write_text("x\n")
    signer.clearsign(probe, probe.with_suffix(".asc"))   # starts its gpg-agent
    signer.close()
    assert not home.exists()
    deadline = time.monotonic() + 2
    while _agents_for(home) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _agents_for(home) == []


def test_publish_removes_its_signing_home(stack: StackUnderTest) -> None:
    assert main(stack.argv("build")) == 0
    before = _homes()
    assert main(stack.argv("publish")) == 0
    assert not list(scratch_root().glob(f"{HOME_PREFIX}{os.getpid()}-*"))
    assert {h for h in _homes() - before if not _pid_alive(h)} == set()


def test_kept_key_files_are_private(stack: StackUnderTest, tmp_path: Path) -> None:
    assert main(stack.argv("build")) == 0
    assert main(stack.argv("publish")) == 0
    keyring = tmp_path / "signing"            # CLUSTERSTACK_GNUPGHOME of the fixture
    assert keyring.stat().st_mode & 0o777 == 0o700
    assert (keyring / KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert "PRIVATE KEY BLOCK" in (keyring / KEY_FILE).read_text()
    for path in keyring.rglob("*"):
        assert path.stat().st_mode & 0o077 == 0, path
    first = (stack.out / "public/fake/clusterstack-archive-keyring.asc").read_text()
    (keyring / KEY_FILE).chmod(0o644)         # loosened by hand: tightened again
    assert main(stack.argv("publish")) == 0
    assert (keyring / KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert (stack.out / "public/fake/clusterstack-archive-keyring.asc").read_text() == first


def test_key_of_an_older_keyring_folder_is_kept(stack: StackUnderTest, tmp_path: Path) -> None:
    """An earlier clusterstack used the keyring folder as a GNUPGHOME."""
    old = make_key(tmp_path / "signing", "ClusterStack Archive Signing Key <a@b.invalid>")
    assert main(stack.argv("build")) == 0
    assert main(stack.argv("publish")) == 0
    status = RUN.run(["gpgv", "--status-fd", "1", "--keyring", str(old.keyring),
                      str(stack.out / "public/fake/dists/fakesuite/InRelease")]).stdout
    assert f"VALIDSIG {old.fingerprint}" in status
    assert (tmp_path / "signing" / KEY_FILE).stat().st_mode & 0o777 == 0o600


def test_key_file_from_ci(stack: StackUnderTest, secret: Secret, tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    key_file = tmp_path / "secret-file.asc"
    key_file.write_text(secret.armored)
    monkeypatch.setenv("CLUSTERSTACK_SIGNING_KEY_FILE", str(key_file))
    assert main(stack.argv("build")) == 0
    assert main(stack.argv("publish")) == 0
    assert secret.key.fingerprint in capsys.readouterr().out
    key_file.write_text("garbage")
    assert main(stack.argv("publish")) == 1
    assert f"CLUSTERSTACK_SIGNING_KEY_FILE={key_file}: does not hold an armored" in \
        capsys.readouterr().err


def test_the_search_would_find_the_secret(secret: Secret, tmp_path: Path) -> None:
    """The search above is not vacuous: it finds the secret's material in an
    export of it, and nothing in the public key alone."""
    exported = tmp_path / "exported.gpg"
    RUN.run(["gpg", "--homedir", str(secret.key.home), "--batch", "--output", str(exported),
             "--export-secret-keys", secret.key.fingerprint])
    assert secret.found_in(exported.read_bytes())
    assert secret.found_in(secret.armored.encode())
    public = RUN.run(["gpg", "--homedir", str(secret.key.home), "--batch", "--armor",
                      "--export", secret.key.fingerprint]).stdout.encode()
    assert secret.found_in(public) == []
    assert secret.found_in(secret.key.keyring.read_bytes()) == []
