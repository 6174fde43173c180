"""Valid-Until on our Release, and apt refusing an expired one."""

from __future__ import annotations

import calendar
import email.utils
import shutil
from pathlib import Path

import pytest
from debian.deb822 import Release
from support.fakearchive import StackUnderTest

from builder.base.command import Runner
from builder.base.errors import VerificationError
from builder.cli import main
from builder.repo.validity import apt_errors, apt_update, expired_release_refused

RUN = Runner()


def _ts(value: str) -> float:
    parsed = email.utils.parsedate_tz(value)
    assert parsed
    return calendar.timegm(parsed[:9]) - (parsed[9] or 0)


@pytest.fixture
def published(stack: StackUnderTest) -> Path:
    assert main(stack.argv("build")) == 0
    assert main(stack.argv("publish")) == 0
    return stack.out / "public" / "fake"


def test_release_carries_valid_until_from_the_profile(published: Path) -> None:
    release = Release((published / "dists/fakesuite/Release").read_text())
    assert _ts(release["Valid-Until"]) - _ts(release["Date"]) == 7 * 86400


def test_valid_until_days_setting(stack: StackUnderTest) -> None:
    profile = stack.dir / "packaging/profiles/fake.yaml"
    profile.write_text(profile.read_text() + "valid_until_days: 2.5\n")
    assert main(stack.argv("build")) == 0
    assert main(stack.argv("publish")) == 0
    release = Release((stack.out / "public/fake/dists/fakesuite/Release").read_text())
    assert _ts(release["Valid-Until"]) - _ts(release["Date"]) == 2.5 * 86400
    profile.write_text(profile.read_text().replace("2.5", "0"))
    assert main(stack.argv("publish")) == 0
    release = Release((stack.out / "public/fake/dists/fakesuite/Release").read_text())
    assert "Valid-Until" not in release


def test_apt_accepts_the_published_repository(published: Path, tmp_path: Path) -> None:
    key = published / "clusterstack-archive-keyring.gpg"
    result = apt_update(tmp_path / "apt", f"deb [signed-by={key}] file:{published.resolve()} "
                        "fakesuite main\n", RUN)
    assert result.returncode == 0 and not apt_errors(result), result.stdout + result.stderr_tail


def test_apt_refuses_our_release_once_expired(published: Path) -> None:
    detail = expired_release_refused(published, RUN)
    assert "7 days" in detail and "is expired" in detail


def test_check_fails_without_valid_until(stack: StackUnderTest) -> None:
    profile = stack.dir / "packaging/profiles/fake.yaml"
    profile.write_text(profile.read_text() + "valid_until_days: 0\n")
    assert main(stack.argv("build")) == 0
    assert main(stack.argv("publish")) == 0
    repo = stack.out / "public" / "fake"
    with pytest.raises(VerificationError, match=r"dists/fakesuite/Release: has no Valid-Until"):
        expired_release_refused(repo, RUN)


def test_check_fails_on_an_already_expired_repository(published: Path, tmp_path: Path) -> None:
    # A repository nobody re-signed in time: the check says so, naming it.
    copy = tmp_path / "stale"
    shutil.copytree(published.resolve(), copy)
    release = copy / "dists/fakesuite/Release"
    text = release.read_text()
    old = Release(text)
    release.write_text(text.replace(old["Date"], "Mon, 01 Jan 2024 00:00:00 +0000")
                       .replace(old["Valid-Until"], "Mon, 08 Jan 2024 00:00:00 +0000"))
    with pytest.raises(VerificationError, match=r"stale/dists/fakesuite/Release: apt does not "
                       r"accept it as published .*is expired"):
        expired_release_refused(copy, RUN)


def test_bad_valid_until_is_named(stack: StackUnderTest,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    profile = stack.dir / "packaging/profiles/fake.yaml"
    profile.write_text(profile.read_text() + "valid_until_days: -1\n")
    assert main(stack.argv("publish")) == 2
    err = capsys.readouterr().err
    assert str(profile) in err and "valid_until_days" in err
