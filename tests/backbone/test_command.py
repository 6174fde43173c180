"""The one runner: logged command lines, teed output, one error type."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from builder.base.command import CommandError, Runner


def test_failure_carries_command_status_and_stderr_tail(tmp_path: Path) -> None:
    log = tmp_path / "pkg.log"
    with pytest.raises(CommandError) as exc:
        Runner(log_path=log).run(["sh", "-c", "echo out; echo oops >&2; exit 3"])
    err = exc.value
    assert err.argv == ["sh", "-c", "echo out; echo oops >&2; exit 3"]
    assert err.returncode == 3
    assert err.stderr_tail.strip() == "oops"
    assert str(log) in str(err)
    text = log.read_text()
    assert text.startswith("$ sh -c 'echo out; echo oops >&2; exit 3'\n")
    assert "out\n" in text and "oops\n" in text and "# exit status 3" in text


def test_missing_program_is_the_same_error() -> None:
    with pytest.raises(CommandError) as exc:
        Runner().run(["no-such-program-here"])
    assert exc.value.returncode == 127


def test_timeout_kills_the_whole_process_group() -> None:
    started = time.monotonic()
    res = Runner().run(["sh", "-c", "sleep 301 & sleep 301"], check=False, timeout=1)
    assert res.returncode == -9 and time.monotonic() - started < 10
    time.sleep(0.2)
    left = subprocess.run(["pgrep", "-f", "^sleep 301$"], capture_output=True, text=True)
    assert left.stdout.split() == []
